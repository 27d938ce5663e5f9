//! Link the VMM as a Gaon user program, with its control interface's stubs.
fn main() {
    libl4_build::program(&["../../idl/vmm.idl"]);
}
