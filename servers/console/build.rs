//! Links the root server with libl4's user linker script.
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../libl4/user.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
}
