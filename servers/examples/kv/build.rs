//! Links the server; generates the `Kv` stubs.
fn main() {
    libl4_build::program(&["../kv.idl"]);
}
