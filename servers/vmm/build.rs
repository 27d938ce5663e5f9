//! Link the VMM as a Gaon user program.
fn main() {
    libl4_build::program(&[]);
}
