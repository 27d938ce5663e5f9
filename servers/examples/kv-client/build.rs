//! Links the client; generates the `Kv` stubs.
fn main() {
    libl4_build::program(&["../kv.idl"]);
}
