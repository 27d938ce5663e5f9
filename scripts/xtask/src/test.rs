//! `cargo xtask test`: host tests, then every QEMU configuration of every board.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::build::{DEFAULT_SYSTEM, KTEST_SYSTEM, build_board, load_board, system_file};
use crate::qemu::{Target, run_captured, run_with_input};
use crate::root_dir;

/// Per-run limit; a boot takes a few seconds under TCG.
const BOOT_TIMEOUT: Duration = Duration::from_mins(1);

fn host_tests() -> Result<(), String> {
    eprintln!("== host tests: cargo test --workspace");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root_dir())
        .args(["test", "--workspace", "--quiet"])
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err("host tests failed".into())
    }
}

/// Find `"<N> passed, <M> failed"` in the output of an in-image test suite.
pub fn summary(output: &str) -> Option<(u32, u32)> {
    output.lines().rev().find_map(|line| {
        let (_, tail) = line.rsplit_once(": ").unwrap_or(("", line));
        let mut words = tail.split_whitespace();
        let passed = words.next()?.parse().ok()?;
        (words.next()? == "passed,").then_some(())?;
        let failed = words.next()?.parse().ok()?;
        (words.next()? == "failed").then_some((passed, failed))
    })
}

/// Check a boot's output against what the configuration promises. Returns the problems.
pub fn check_boot(target: &Target, output: &str, exit_code: Option<i32>) -> Vec<String> {
    let b = &target.board;
    let q = &target.config;
    let mut problems = Vec::new();
    let mut expect = |what: &str, needle: String| {
        if !output.contains(&needle) {
            problems.push(format!("{what}: no `{needle}` in the output"));
        }
    };
    expect("banner", format!("[board {}]", b.board.name));
    expect("banner cpu", format!("cpu:        {}", q.expect_cpu));
    expect("banner EL", format!("el:         EL2 (entered at EL{})", q.entry_el));
    expect(
        "banner memory",
        format!("memory:     {} MiB at {:#x}", b.memory.size >> 20, b.memory.base),
    );
    expect("banner irq", format!("irq:        {}", q.expect_irq));
    expect("timer tick", "timer: first tick".to_string());
    for (what, needle) in DEFAULT_SYSTEM_EXPECTS {
        expect(what, (*needle).to_string());
    }
    match summary(output) {
        Some((p, 0)) if p >= SYSTEST_MIN_CASES => {}
        Some((p, f)) => problems.push(format!("the system test reported {p} passed, {f} failed")),
        None => problems.push("no `N passed, N failed` line".into()),
    }
    if output.contains("kernel panic") || output.contains("panic at") {
        problems.push("something panicked".into());
    }
    match exit_code {
        Some(0) => {}
        Some(c) => problems.push(format!("QEMU exited with status {c}")),
        None => problems.push(format!("timed out after {} s", BOOT_TIMEOUT.as_secs())),
    }
    problems
}

/// Cases the system test (servers/systest) must pass, at least.
pub const SYSTEST_MIN_CASES: u32 = 7;

/// When the system test asks for input, and what the harness types.
pub const SYSTEST_INPUT: (&str, &[u8]) = ("type a line", b"hello gaon\r");

/// What the default system (console, examples, system test) must print: servers built
/// from the description, output through the console with per-client prefixes, and a
/// faulting server reported and reclaimed by the root server.
const DEFAULT_SYSTEM_EXPECTS: &[(&str, &str)] = &[
    ("root server", "root: started 7 servers"),
    ("tutorial example", "[greeter-client] hello world (#1)"),
    ("console driver", "console: "),
    ("prefixed output", "[kv] serving Kv"),
    (
        "tutorial client",
        "[kv-client] stored 2 keys; apples = 7; plums not found, as expected",
    ),
    ("client exit", "root: `kv-client` exited with status 0"),
    ("fault report", "root: server `fragile` faulted: VM fault"),
    ("reclaim", "root: reclaimed `fragile` (1 served channel(s) closed"),
    ("system test output", "[systest] systest: "),
];

/// Test cases the kernel test suite must run, at least.
pub const KTEST_MIN_CASES: u32 = 150;

/// Check a run of the kernel test suite.
pub fn check_ktest(output: &str, exit_code: Option<i32>) -> Vec<String> {
    let mut problems = Vec::new();
    if !output.contains("ktest: hello from EL0") {
        problems.push("the test suite did not start".to_string());
    }
    match summary(output) {
        Some((p, 0)) if p >= KTEST_MIN_CASES => {}
        Some((p, 0)) => problems.push(format!("only {p} test cases ran (at least {KTEST_MIN_CASES} expected)")),
        Some((p, f)) => problems.push(format!("ktest reported {p} passed, {f} failed")),
        None => problems.push("no `N passed, N failed` line".into()),
    }
    if output.contains("kernel panic") {
        problems.push("the kernel panicked".into());
    }
    match exit_code {
        Some(0) => {}
        Some(c) => problems.push(format!("QEMU exited with status {c}")),
        None => problems.push(format!("timed out after {} s", BOOT_TIMEOUT.as_secs())),
    }
    problems
}

/// A kernel that finds a corrupt boot image must panic with a message and make QEMU
/// exit non-zero, never hang.
fn corrupt_image_test(target: &Target, image: &std::path::Path) -> Vec<String> {
    let Ok(mut bytes) = fs::read(image) else {
        return vec!["cannot read image".into()];
    };
    let Some(pos) = bytes.windows(8).rposition(|w| w == gaon_abi_magic()) else {
        return vec!["no boot image magic in the image".into()];
    };
    bytes[pos] ^= 0xff;
    let bad = image.with_extension("corrupt");
    if fs::write(&bad, &bytes).is_err() {
        return vec!["cannot write corrupt image".into()];
    }
    let mut problems = Vec::new();
    match run_captured(target, &bad, BOOT_TIMEOUT) {
        Ok(o) => {
            if !o.output.contains("*** kernel panic at kernel/src/boot.rs") || !o.output.contains("BadMagic") {
                problems.push(format!("no panic report naming the bad magic; output:\n{}", o.output));
            }
            if o.exit_code != Some(2) {
                problems.push(format!("expected QEMU exit status 2, got {:?}", o.exit_code));
            }
        }
        Err(e) => problems.push(e),
    }
    let _ = fs::remove_file(bad);
    problems
}

fn gaon_abi_magic() -> &'static [u8] {
    b"GAONBOOT"
}

/// Every QEMU configuration of every board that has a system description.
fn boot_tests() -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    let mut record = |name: &str, problems: Vec<String>| {
        if problems.is_empty() {
            eprintln!("PASS {name}");
            passed += 1;
        } else {
            eprintln!("FAIL {name}");
            for p in problems {
                eprintln!("     {p}");
            }
            failed += 1;
        }
    };
    for board_name in gaon_platform::list_boards(&root_dir().join("platforms")) {
        if !system_file(&board_name, DEFAULT_SYSTEM).is_file() {
            continue;
        }
        let board = match load_board(&board_name) {
            Ok(b) => b,
            Err(e) => {
                record(&format!("board {board_name}"), vec![e]);
                continue;
            }
        };
        eprintln!("== boot tests: {board_name}");
        let image = match build_board(&board_name, DEFAULT_SYSTEM) {
            Ok(i) => i,
            Err(e) => {
                record(&format!("build {board_name}"), vec![e]);
                continue;
            }
        };
        let ktest_image = if system_file(&board_name, KTEST_SYSTEM).is_file() {
            match build_board(&board_name, KTEST_SYSTEM) {
                Ok(i) => Some(i),
                Err(e) => {
                    record(&format!("build ktest for {board_name}"), vec![e]);
                    None
                }
            }
        } else {
            None
        };
        for (i, config) in board.qemu.iter().enumerate() {
            let target = Target {
                board: board.clone(),
                config: config.clone(),
            };
            let problems = match run_with_input(&target, &image, BOOT_TIMEOUT, Some(SYSTEST_INPUT)) {
                Ok(o) => {
                    let p = check_boot(&target, &o.output, o.exit_code);
                    if !p.is_empty() {
                        eprintln!("----- output of {} -----\n{}-----", config.name, o.output);
                    }
                    p
                }
                Err(e) => vec![e],
            };
            record(&format!("boot {}", config.name), problems);
            if let Some(ktest) = &ktest_image {
                let problems = match run_captured(&target, ktest, BOOT_TIMEOUT) {
                    Ok(o) => {
                        let p = check_ktest(&o.output, o.exit_code);
                        if p.is_empty() {
                            if let Some((n, _)) = summary(&o.output) {
                                eprintln!("     kernel test suite: {n} passed");
                            }
                        } else {
                            eprintln!("----- output of ktest on {} -----\n{}-----", config.name, o.output);
                        }
                        p
                    }
                    Err(e) => vec![e],
                };
                record(&format!("kernel test suite on {}", config.name), problems);
            }
            if i == 0 {
                record(
                    &format!("corrupt boot image panics cleanly on {}", config.name),
                    corrupt_image_test(&target, &image),
                );
            }
        }
    }
    eprintln!("== benchmarks, quick run (only checks that every case works)");
    record(
        &format!(
            "bench image (quick) on {} with -icount shift=0",
            crate::bench::CPUS[0].0
        ),
        crate::bench::quick_check(),
    );
    record(&crate::fuzz::test_name(), crate::fuzz::test_check());
    (passed, failed)
}

/// `cargo xtask test`.
pub fn run_all(quick: bool) -> Result<(), String> {
    host_tests()?;
    if quick {
        return Ok(());
    }
    let (passed, failed) = boot_tests();
    println!("boot tests: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} boot tests failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn finds_summary_line() {
        assert_eq!(summary("x\nroot: 3 passed, 0 failed\n"), Some((3, 0)));
        assert_eq!(summary("12 passed, 1 failed"), Some((12, 1)));
        assert_eq!(summary("passed failed"), None);
        assert_eq!(summary("root: 3 passed 0 failed"), None);
    }
}

#[cfg(test)]
mod tutorial {
    use crate::root_dir;

    /// The code blocks of docs/tutorial-server.md, in order.
    fn blocks() -> Vec<String> {
        let doc = std::fs::read_to_string(root_dir().join("docs/tutorial-server.md")).unwrap();
        doc.split("```")
            .skip(1)
            .step_by(2)
            .map(|b| b.split_once('\n').unwrap().1.to_string())
            .collect()
    }

    fn file(path: &str) -> String {
        std::fs::read_to_string(root_dir().join(path)).unwrap()
    }

    /// The tutorial shows the worked example exactly as it is in servers/examples, which
    /// CI builds and runs in every default image.
    #[test]
    fn tutorial_code_is_the_worked_example() {
        let b = blocks();
        assert_eq!(b[0], file("servers/examples/greeter.idl"));
        assert_eq!(b[2], file("servers/examples/greeter/build.rs"));
        assert_eq!(b[3], file("servers/examples/greeter/src/main.rs"));
        assert!(file("servers/examples/greeter-client/src/main.rs").contains(&b[4]));
        let cargo = file("servers/examples/greeter/Cargo.toml");
        assert_eq!(b[1], cargo);
        let system = file("images/virt/system.toml");
        for line in b[5].lines() {
            assert!(system.contains(line), "images/virt/system.toml lacks `{line}`");
        }
    }
}
