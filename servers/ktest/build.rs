//! Links the kernel test suite with libl4's user linker script, and generates the IDL
//! stubs its IPC tests use.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("libl4/user.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
    gaon_idl::build(&[&root.join("idl/tests/every_kind.idl")]);
}
