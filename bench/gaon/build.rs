//! Links the benchmark root; generates the `Bench` IDL client stubs.
fn main() {
    libl4_build::program(&["../bench.idl"]);
}
