//! Links the benchmark worker; generates the `Bench` IDL server stubs.
fn main() {
    libl4_build::program(&["../../bench.idl"]);
}
