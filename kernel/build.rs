//! Generates the kernel's board constants and linker script for the board named by
//! `GAON_BOARD` (default `virt`) from `platforms/<board>/board.toml`.

use std::env;
use std::fs;
use std::path::PathBuf;

use gaon_platform::{Board, kernel_config_rs};

fn main() {
    println!("cargo:rerun-if-env-changed=GAON_BOARD");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let platforms = manifest.join("../platforms");
    let name = env::var("GAON_BOARD").unwrap_or_else(|_| "virt".to_string());
    let board_file = Board::path(&platforms, &name);
    println!("cargo:rerun-if-changed={}", board_file.display());
    println!("cargo:rerun-if-changed=link.ld.in");
    let board = match Board::load(&platforms, &name) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    fs::write(out.join("board_config.rs"), kernel_config_rs(&board)).expect("write board_config.rs");

    let template = fs::read_to_string(manifest.join("link.ld.in")).expect("read link.ld.in");
    let script = template.replace("@LOAD_ADDRESS@", &format!("{:#x}", board.board.load_address));
    fs::write(out.join("link.ld"), script).expect("write link.ld");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{}", out.join("link.ld").display());
    }
}
