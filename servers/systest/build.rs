//! Links the system test; generates the stubs of the servers it calls.
fn main() {
    libl4_build::program(&["fragile.idl", "../examples/kv.idl", "../examples/greeter.idl"]);
}
