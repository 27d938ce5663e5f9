//! Links the server; generates the `Fragile` stubs.
fn main() {
    libl4_build::program(&["../fragile.idl"]);
}
