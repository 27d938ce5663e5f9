fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("../../../libl4/user.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
    gaon_idl::build(&[&dir.join("../greeter.idl")]);
}
