//! Links the server; generates the `Greeter` stubs.
fn main() {
    libl4_build::program(&["../greeter.idl"]);
}
