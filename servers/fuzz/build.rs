//! Links the kernel fuzzer as a Gaon user program.
fn main() {
    libl4_build::program(&[]);
}
