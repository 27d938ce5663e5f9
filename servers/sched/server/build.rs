//! Link the scheduling policy server as a Gaon user program, with the stubs of the
//! interface it serves to the VMMs of the VMs it manages.
fn main() {
    libl4_build::program(&["../../../idl/sched.idl"]);
}
