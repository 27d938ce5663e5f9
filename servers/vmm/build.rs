//! Link the VMM as a Gaon user program, with its control interface's stubs and the
//! scheduling policy server's (it is a client of `Sched` when its VM is managed).
fn main() {
    libl4_build::program(&["../../idl/vmm.idl", "../../idl/sched.idl"]);
}
