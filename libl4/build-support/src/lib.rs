//! What every Gaon user program's `build.rs` does, in one call: its `main` is
//! `libl4_build::program(&["../kv.idl"]);`.
//!
//! Built for the target (`aarch64-unknown-none`), the package's binaries are linked with
//! `libl4/user.ld` (page-aligned segments from 4 MiB, the `.gaon.idl` section kept).
//! Each IDL file (relative to the package) is compiled into `$OUT_DIR/<stem>.rs`, for
//! `include!(concat!(env!("OUT_DIR"), "/<stem>.rs"))`; a bad file fails the build with
//! `file:line:column: message`.
#![deny(unsafe_code)]

use std::path::{Path, PathBuf};

/// libl4's linker script for user programs.
pub fn linker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../user.ld")
}

/// Link this package's binaries as a Gaon user program and generate the stubs of `idl`.
pub fn program(idl: &[&str]) {
    let script = linker_script();
    println!("cargo:rerun-if-changed={}", script.display());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    }
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("Cargo sets CARGO_MANIFEST_DIR"));
    let files: Vec<PathBuf> = idl.iter().map(|f| dir.join(f)).collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    gaon_idl::build(&refs);
}
