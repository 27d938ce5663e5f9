//! Links the kernel test suite; generates the stubs its IPC tests use.
fn main() {
    libl4_build::program(&["../../idl/tests/every_kind.idl"]);
}
