//! `cargo xtask`: builds images, boots them in QEMU and runs the test suites.
//! `scripts/run` and `scripts/test` are thin wrappers around it.
#![deny(unsafe_code)]

mod abidoc;
mod bench;
mod build;
mod chart;
mod fuzz;
mod guest;
mod linux;
mod profile;
mod qemu;
mod rt;
mod test;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

  build [BOARD] [SYSTEM]        build the image of images/BOARD/SYSTEM.toml (default: virt, system)
  run [CONFIG|BOARD] [--system SYSTEM] [--timeout SECS]
                                build and boot in QEMU with the console on this terminal
  test [--quick] [--board BOARD]
                                run every test: host tests, description checks, QEMU boots
                                (--quick: host tests only; --board: that board's boots only;
                                --trace, --trace-probe, --rt, --linux CONFIG: one boot test)
  fuzz [--calls N] [--seed S] [--check-every K] [--world W] [--timeout SECS] [CONFIG|BOARD]
                                random syscalls from an untrusted thread, with kernel
                                consistency checks (images/BOARD/fuzz.toml; default virt)
  bench [--quick] [--gaon-only] [--trace] [--cpu a53|a72]
                                the benchmarks, Gaon and Linux, under QEMU -icount shift=0
                                (--trace: Gaon's with every trace class on, and Linux in a
                                VM off, traced and with a probe; not written)
  bench rt [--periods N] [--hog linux|rtos] [--config NAME]
                                the soft-real-time experiment (docs/realtime.md): bench/results/rt.json
  trace [--system SYSTEM] [--for SECONDS] [--probe SYMBOL]
                                run a system with the trace server (default: virt's `system`,
                                2 s) and write build/trace/{trace.dat,trace.json,ctf/}
                                (docs/trace.md); --probe: in each Linux VM
  trace-window FROM TO          the last trace from FROM to TO s as build/trace/window.dat
  chart                         draw bench/results/chart.png (and rt-cdf.png) again from their JSON
  profile CASE [--batch N] [--cpu a53|a72] [--top N] [--keep]
                                kernel instructions per operation of one bench case, by function
  check SYSTEM.toml             check a system description and print what it describes
  abi-doc                       write the invocation and fault tables of docs/abi.md from
                                gaon-abi's layouts (a host test fails when they differ)
  list                          list boards and their QEMU configurations
  user-packages                 the packages built for aarch64-unknown-none (libl4 and the
                                user programs), one per line";

/// The workspace root (two levels above this crate).
pub fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root exists")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build::build_board(
            args.get(1).map_or("virt", String::as_str),
            args.get(2).map_or(build::DEFAULT_SYSTEM, String::as_str),
        )
        .map(|p| {
            println!("image: {}", p.display());
        }),
        Some("run") => qemu::run_command(&args[1..]),
        Some("bench") if args.get(1).is_some_and(|a| a == "rt") => rt::command(&args[2..]),
        Some("bench") => bench::bench_command(&args[1..]),
        Some("chart") => bench::chart_command(),
        Some("fuzz") => fuzz::fuzz_command(&args[1..]),
        Some("trace") => trace::command(&args[1..]),
        Some("trace-window") => trace::window_command(&args[1..]),
        Some("profile") => profile::profile_command(&args[1..]),
        Some("test") => test::run_all(&args[1..]),
        Some("check") => match args.get(1) {
            Some(f) => build::check(f),
            None => Err(USAGE.to_string()),
        },
        Some("user-packages") => build::user_packages().map(|p| {
            for name in p {
                println!("{name}");
            }
        }),
        Some("abi-doc") => abidoc::abi_doc_command(),
        Some("list") => {
            build::list();
            Ok(())
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
