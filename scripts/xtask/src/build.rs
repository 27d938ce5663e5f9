//! Building kernels, user programs and images.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;

use gaon_image::{PackInput, System};
use gaon_platform::{Board, ImageFormat, list_boards};

use crate::root_dir;

/// Target the kernel is built for (no FP/SIMD in the kernel).
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Target user programs are built for.
pub const USER_TARGET: &str = "aarch64-unknown-none";

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Builds run with --quiet, which also hides cargo's progress bar; a first build takes
    // a minute or more, so on a terminal ask for the bar (scripts/run and scripts/test do
    // the same for the build of xtask itself).
    if std::env::var_os("CARGO_TERM_PROGRESS_WHEN").is_none()
        && std::io::stderr().is_terminal()
        && let Some(width) = terminal_width()
    {
        cmd.env("CARGO_TERM_PROGRESS_WHEN", "always")
            .env("CARGO_TERM_PROGRESS_WIDTH", width.to_string());
    }
    cmd
}

/// The terminal's width in columns, from `tput cols`.
fn terminal_width() -> Option<u32> {
    let out = Command::new("tput")
        .arg("cols")
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Build a `no_std` binary package for `target` (with `GAON_BOARD` set to `board`, if
/// given) with Cargo `features`; returns the ELF's path.
fn build_package(package: &str, target: &str, board: Option<&str>, features: &[String]) -> Result<PathBuf, String> {
    let mut cmd = cargo();
    cmd.current_dir(root_dir())
        .args(["build", "--release", "--quiet", "-p", package, "--target", target]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    if let Some(b) = board {
        cmd.env("GAON_BOARD", b);
    }
    run(&mut cmd)?;
    Ok(root_dir().join("target").join(target).join("release").join(package))
}

/// The default system description of a board.
pub const DEFAULT_SYSTEM: &str = "system";
/// The system that runs the kernel test suite.
pub const KTEST_SYSTEM: &str = "ktest";
/// The system that runs the VMM with the test guest (on boards that have one).
pub const VM_SYSTEM: &str = "vm";

/// The system with Debian's kernel in a VM (on boards that have one).
pub const LINUX_SYSTEM: &str = "linux";
/// The system with two Linux VMs side by side.
pub const LINUX_PAIR_SYSTEM: &str = "linux-pair";

/// The system description `images/<board>/<name>.toml`.
pub fn system_file(board: &str, name: &str) -> PathBuf {
    root_dir().join("images").join(board).join(format!("{name}.toml"))
}

fn platforms_dir() -> PathBuf {
    root_dir().join("platforms")
}

/// Load a board by name.
pub fn load_board(name: &str) -> Result<Board, String> {
    Board::load(&platforms_dir(), name).map_err(|e| e.to_string())
}

/// Build the image of system `name` for `board`; returns its path under
/// `build/<board>/` (the default system) or `build/<board>/<name>/`.
pub fn build_board(board: &str, name: &str) -> Result<PathBuf, String> {
    let file = system_file(board, name);
    if !file.is_file() {
        let known = list_boards(&platforms_dir()).join(", ");
        return Err(format!("no system description {} (boards: {known})", file.display()));
    }
    let mut out_dir = root_dir().join("build").join(board);
    if name != DEFAULT_SYSTEM {
        out_dir = out_dir.join(name);
    }
    build_system(&file, &out_dir)
}

/// Build the image the system description `file` describes into `out_dir`.
pub fn build_system(file: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    build_system_with(file, out_dir, &[])
}

/// Like [`build_system`], with `extra` boot modules (name, file) added to the
/// description's (before the system table): how `cargo xtask fuzz` passes its
/// parameters to the fuzzer.
pub fn build_system_with(file: &Path, out_dir: &Path, extra: &[(String, PathBuf)]) -> Result<PathBuf, String> {
    crate::linux::assets_for(file)?;
    let mut system = System::load(file, &platforms_dir()).map_err(|e| e.to_string())?;
    let table = system.modules.len().saturating_sub(1);
    for (i, (name, path)) in extra.iter().enumerate() {
        let m = gaon_image::ModuleDesc {
            name: name.clone(),
            source: gaon_image::ModuleSource::File(path.clone()),
        };
        system.modules.insert(table + i, m);
    }
    let board = system.board.board.name.clone();
    let board = board.as_str();
    eprintln!("building {} for board `{board}`", system.name);
    let kernel = build_package(
        &system.kernel_package,
        KERNEL_TARGET,
        Some(board),
        &system.kernel_features,
    )?;
    // User programs see the board too (`GAON_BOARD`): the kernel test suite checks the
    // boot info against the board's device map.
    let root = build_package(&system.root_package, USER_TARGET, Some(board), &[])?;
    let modules = system.read_modules(|_, p| build_package(p, USER_TARGET, Some(board), &[]))?;
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let (kernel_bytes, root_bytes) = (read(&kernel)?, read(&root)?);
    let input = PackInput {
        system: &system,
        kernel: &kernel_bytes,
        root: &root_bytes,
        modules: &modules,
    };
    let image = gaon_image::pack(&input).map_err(|e| match e {
        // Names the file the channel or server is in (a fragment, perhaps).
        gaon_image::PackError::Channel(d) => d.to_string(),
        e => format!("{}: {e}", file.display()),
    })?;
    fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let name = match system.board.board.image_format {
        ImageFormat::Elf => format!("gaon-{board}.elf"),
        ImageFormat::Raw => "kernel8.img".to_string(),
    };
    let out = out_dir.join(name);
    fs::write(&out, image).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// The workspace's user programs and libl4, the packages built for [`USER_TARGET`]: libl4
/// and every member with a build-dependency on `libl4-build`, which links a program for
/// Gaon (docs/tutorial-server.md), read from `cargo metadata`. `scripts/test` lints
/// these for the target, so a new server is linted without being listed anywhere.
pub fn user_packages() -> Result<Vec<String>, String> {
    let out = cargo()
        .current_dir(root_dir())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed with {}", out.status));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = meta["packages"].as_array().ok_or("cargo metadata: no packages")?;
    Ok(packages
        .iter()
        .filter(|p| {
            p["name"] == "libl4"
                || p["dependencies"]
                    .as_array()
                    .is_some_and(|deps| deps.iter().any(|d| d["name"] == "libl4-build" && d["kind"] == "build"))
        })
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect())
}

/// `cargo xtask check FILE`.
pub fn check(file: &str) -> Result<(), String> {
    let system = System::load(Path::new(file), &platforms_dir()).map_err(|e| e.to_string())?;
    println!(
        "{file}: ok: system `{}` for board `{}`",
        system.name, system.board.board.name
    );
    println!(
        "  kernel {}, root server {}",
        system.kernel_package, system.root_package
    );
    for m in &system.modules {
        println!("  module {}: {:?}", m.name, m.source);
    }
    Ok(())
}

/// `cargo xtask list`.
pub fn list() {
    for name in list_boards(&platforms_dir()) {
        match load_board(&name) {
            Ok(b) => {
                println!("{name}: {}", b.board.description);
                for q in &b.qemu {
                    println!("    {}", q.name);
                }
            }
            Err(e) => println!("{name}: INVALID: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_packages_are_found_in_the_workspace() {
        let p = super::user_packages().unwrap();
        for name in [
            "libl4",
            "gaon-root",
            "gaon-console",
            "gaon-example-greeter",
            "gaon-systest",
            "gaon-bench",
        ] {
            assert!(p.iter().any(|n| n == name), "{name} missing from {p:?}");
        }
        for name in [
            "gaon-kernel",
            "xtask",
            "gaon-idl-testsuite",
            "gaon-bench-linux",
            "libl4-build",
        ] {
            assert!(!p.iter().any(|n| n == name), "{name} is not a user program");
        }
    }
}
