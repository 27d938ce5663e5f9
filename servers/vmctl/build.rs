//! Links the program; generates the `Vmm` stubs.
fn main() {
    libl4_build::program(&["../../idl/vmm.idl"]);
}
