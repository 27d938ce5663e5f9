//! Links the console server as a Gaon user program (its stubs come from libl4).
fn main() {
    libl4_build::program(&[]);
}
