//! Links the program; generates the `Trace` and `Vmm` stubs.
fn main() {
    libl4_build::program(&["../../../idl/trace.idl", "../../../idl/vmm.idl"]);
}
