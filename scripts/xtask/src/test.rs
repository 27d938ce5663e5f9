//! `cargo xtask test`: host tests, then every QEMU configuration of every board.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::build::{
    DEFAULT_SYSTEM, KTEST_SYSTEM, LINUX_PAIR_SYSTEM, LINUX_SYSTEM, VM_SYSTEM, build_board, load_board, system_file,
};
use crate::qemu::{Input, Target, run_captured, run_captured_icount, run_console, run_with_input};
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

/// What the system test's input case must report: the line the harness typed, or that
/// nobody typed (the case is then skipped, and the run still passes).
#[derive(Clone, Copy, Debug)]
pub enum Typed<'a> {
    /// This line (without its Enter) was typed.
    Line(&'a str),
    /// Nothing was typed.
    Nothing,
}

/// Check a boot's output against what the configuration promises. Returns the problems.
pub fn check_boot(target: &Target, output: &str, exit_code: Option<i32>, typed: Typed<'_>) -> Vec<String> {
    let b = &target.board;
    let q = &target.config;
    let mut problems = cpu_problems(target, output);
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
    expect("banner timer", "one-shot kernel timer".to_string());
    for (what, needle) in DEFAULT_SYSTEM_EXPECTS {
        expect(what, (*needle).to_string());
    }
    let min_passed = match typed {
        Typed::Line(line) => {
            expect(
                "the typed line, intact",
                format!("[systest] read a line of {} bytes: \"{line}\"", line.len()),
            );
            SYSTEST_MIN_CASES
        }
        Typed::Nothing => {
            expect("input check skipped", SYSTEST_SKIPPED.to_string());
            expect("skip counted", "[systest] systest: 1 skipped".to_string());
            SYSTEST_MIN_CASES - 1
        }
    };
    if matches!(typed, Typed::Line(_)) && output.contains("input check skipped") {
        problems.push("a line was typed, yet the system test skipped a case".into());
    }
    match summary(output) {
        Some((p, 0)) if p >= min_passed => {}
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

/// What the banner must say about the CPUs: every CPU QEMU has (`-smp`) online, and,
/// with more than one, each answered CPU 0's inter-processor interrupt with one of its
/// own (the kernel's boot check).
pub fn cpu_problems(target: &Target, output: &str) -> Vec<String> {
    let smp = target.board.smp(&target.config);
    let mut needles = vec![format!("cpus:       {smp} of {} up (", target.board.board.cpus)];
    if smp > 1 {
        needles.push(", IPIs answered\n".to_string());
    }
    needles
        .into_iter()
        .filter(|n| !output.contains(n.as_str()))
        .map(|n| format!("CPUs: no `{}` in the output", n.trim_end()))
        .collect()
}

/// Cases the system test (servers/systest) must pass, at least, when a line is typed
/// (one fewer when nothing is: its input case is then skipped).
pub const SYSTEST_MIN_CASES: u32 = 14;

/// When the system test asks for input, and what the harness types (Enter is CR, as a
/// terminal sends it).
pub const SYSTEST_INPUT: (&str, &[u8]) = ("type a line", b"hello gaon\r");

/// What the default system (console, examples, system test) must print: servers built
/// from the description, output through the console with per-client prefixes, and a
/// faulting server reported and reclaimed by the root server.
const DEFAULT_SYSTEM_EXPECTS: &[(&str, &str)] = &[
    ("root server", "root: started 7 servers"),
    ("tutorial example", "[greeter-client] hello world (#1)"),
    ("tutorial example's lease", "[greeter-client] hello lease (#2)"),
    (
        "a missing capability is refused with its reason",
        "greeter: refused `greet_in_place` from client 0x2: no capability for `page`",
    ),
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

/// What the system test prints when nobody types.
const SYSTEST_SKIPPED: &str = "[systest] no line typed within 10 s (0 bytes without Enter): input check skipped";

/// What the harness pipes into `cargo xtask run`'s console before the system has
/// booted, as `echo ... | scripts/run` does (Enter is LF, end of input follows).
const PIPED_INPUT: &[u8] = b"piped in before the prompt\n";

/// `input` as the line the system test must report.
fn line_of(input: &[u8]) -> &str {
    std::str::from_utf8(input).unwrap_or("").trim_end()
}

/// Boot `image` the way `scripts/run` does (`cargo xtask run`: QEMU's console through
/// this process), with `input` on stdin. Returns the problems.
fn console_run(target: &Target, image: &std::path::Path, input: &'static [u8], typed: Typed<'_>) -> Vec<String> {
    let mut raw = Vec::new();
    let code = match run_console(
        target,
        image,
        BOOT_TIMEOUT,
        Input::Stream(Box::new(input)),
        &mut |_, bytes| {
            raw.extend_from_slice(bytes);
        },
    ) {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let output = String::from_utf8_lossy(&raw).replace('\r', "");
    let problems = check_boot(target, &output, code, typed);
    if !problems.is_empty() {
        eprintln!("----- output of {} -----\n{output}-----", target.config.name);
    }
    problems
}

/// Test cases the kernel test suite must run, at least.
pub const KTEST_MIN_CASES: u32 = 150;

/// What is wrong with any test run: a kernel panic, QEMU's exit status, a timeout.
fn run_problems(output: &str, exit_code: Option<i32>) -> Vec<String> {
    let mut problems = Vec::new();
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
    problems.extend(run_problems(output, exit_code));
    problems
}

/// Test cases the test guest must run, at least (`servers/guests/testguest`).
pub const TESTGUEST_MIN_CASES: u32 = 19;

/// The test guest's `testguest: N passed, M failed`.
fn guest_summary(output: &str) -> Option<(u32, u32)> {
    output.lines().filter(|l| l.contains("testguest:")).find_map(summary)
}

/// The line the test guest writes with the `CONSOLE_WRITE` hypercall (its case 19).
const HYPERCALL_LINE: &str = "[testvm] hypercall console: written by CONSOLE_WRITE";

/// What the root server says when the victim's VMM faults (the test device's `CRASH`:
/// a load from the page below its guest RAM window).
const VICTIM_FAULT: &str = "root: server `victim` faulted: VM fault at pc ";

/// Check a run of the VM system: the victim VM's VMM was deleted while its second vCPU
/// ran (it faulted on purpose, the root server reported it and revoked its heap) before
/// the test guest finished, the test guest's summary says no failure, and the system
/// halted with its status 0.
pub fn check_vm(output: &str, exit_code: Option<i32>) -> Vec<String> {
    let mut problems = Vec::new();
    let reclaimed = output.find("root: reclaimed `victim`").filter(|&at| {
        output[at..].lines().next().is_some_and(|l| l.contains("heap revoked")) && output.contains(VICTIM_FAULT)
    });
    let finished = output.find("testguest: ").and_then(|_| output.rfind(" passed, "));
    match (reclaimed, finished) {
        (Some(r), Some(f)) if r < f => {}
        (Some(_), Some(_)) => problems.push("the victim VM's VMM went only after the test guest finished".into()),
        _ => problems
            .push("the victim VM's VMM was not deleted (no `root: reclaimed `victim`` with its heap revoked)".into()),
    }
    match guest_summary(output) {
        Some((p, 0)) if p >= TESTGUEST_MIN_CASES => {}
        Some((p, 0)) => problems.push(format!(
            "only {p} guest tests ran (at least {TESTGUEST_MIN_CASES} expected)"
        )),
        Some((p, f)) => problems.push(format!("the test guest reported {p} passed, {f} failed")),
        None => problems.push("no `testguest: N passed, N failed` line".into()),
    }
    if !output.contains("[testvm] initrd: ") {
        problems.push("the test guest found no initrd (no `[testvm] initrd: ` line)".into());
    }
    if !output.contains("[testvm] pass-through: ") {
        problems
            .push("the test guest did not drive its pass-through device (no `[testvm] pass-through: ` line)".into());
    }
    if !output.contains(HYPERCALL_LINE) {
        problems.push(format!(
            "the test guest's CONSOLE_WRITE hypercall did not reach the console (no `{HYPERCALL_LINE}`)"
        ));
    }
    if !output.contains(VM_INPUT_ECHO) {
        problems.push(format!(
            "the line typed did not reach the test guest's UART (no `{VM_INPUT_ECHO}`)"
        ));
    }
    match output.lines().filter(|l| l.contains("vmctl: ")).find_map(summary) {
        Some((p, 0)) if p >= VMCTL_MIN_CASES => {}
        Some((p, f)) => problems.push(format!(
            "the VM control test reported {p} passed, {f} failed (at least {VMCTL_MIN_CASES} expected)"
        )),
        None => problems.push("no `vmctl: N passed, N failed` line".into()),
    }
    problems.extend(run_problems(output, exit_code));
    problems
}

/// Cases the VM control test (servers/vmctl) must pass, at least.
pub const VMCTL_MIN_CASES: u32 = 5;

/// Run the VMM and its test guest, on QEMU's deterministic clock (the guest's timer
/// tests have deadlines). Returns the problems.
fn vm_run(target: &Target, image: &std::path::Path) -> Vec<String> {
    suite_run(target, image, "the test guest", Some(VM_INPUT), |output, code| {
        (check_vm(output, code), guest_summary(output))
    })
}

/// What the harness types into the VM system's console once the root server has
/// started the servers (QEMU's PL011 would drop a byte that came before the kernel set
/// it up; the console keeps it for `testvm`, which has the focus; the test guest's
/// `uart input` case, tests later, prints it back as [`VM_INPUT_ECHO`]).
pub const VM_INPUT: (&str, &[u8]) = ("root: started", b"typed into the VM\r");
const VM_INPUT_ECHO: &str = "[testvm] uart input: \"typed into the VM\"";

/// Run a test suite's image on QEMU's deterministic clock and judge it with `check`,
/// which returns the problems and the suite's `N passed, M failed`; print the count, or
/// the output if there are problems.
fn suite_run(
    target: &Target,
    image: &std::path::Path,
    what: &str,
    input: Option<(&str, &[u8])>,
    check: impl Fn(&str, Option<i32>) -> (Vec<String>, Option<(u32, u32)>),
) -> Vec<String> {
    match run_captured_icount(target, image, BOOT_TIMEOUT, input) {
        Ok(o) => {
            let (p, counts) = check(&o.output, o.exit_code);
            if p.is_empty() {
                if let Some((n, _)) = counts {
                    eprintln!("     {what}: {n} passed");
                }
            } else {
                eprintln!(
                    "----- output of {what} on {} -----\n{}-----",
                    target.config.name, o.output
                );
            }
            p
        }
        Err(e) => vec![e],
    }
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

/// Boot the default image with its console captured; type the harness's line at the
/// system test's prompt. Returns the problems.
fn typed_at_prompt_run(target: &Target, image: &std::path::Path) -> Vec<String> {
    match run_with_input(target, image, BOOT_TIMEOUT, Some(SYSTEST_INPUT)) {
        Ok(o) => {
            let p = check_boot(target, &o.output, o.exit_code, Typed::Line(line_of(SYSTEST_INPUT.1)));
            if !p.is_empty() {
                eprintln!("----- output of {} -----\n{}-----", target.config.name, o.output);
            }
            p
        }
        Err(e) => vec![e],
    }
}

/// Run the kernel test suite, on QEMU's deterministic clock (its time tests measure
/// budgets to 2 %, which host load would spoil). Returns the problems.
fn ktest_run(target: &Target, ktest: &std::path::Path) -> Vec<String> {
    suite_run(target, ktest, "kernel test suite", None, |output, code| {
        let mut p = check_ktest(output, code);
        p.extend(cpu_problems(target, output));
        (p, summary(output))
    })
}

/// The virtual machine tests on `target` that have images: the test guest (`vm`), the
/// Linux VM (`linux`: its image, vCPUs, kernel release), two of them (`pair`) and
/// `scripts/run`'s unattended Linux session (both on [`PAIR_CONFIGS`]). Returns each
/// test's name and problems.
fn guest_tests(
    target: &Target,
    vm: Option<&std::path::Path>,
    linux: Option<&(PathBuf, usize, String)>,
    pair: Option<&std::path::Path>,
) -> Vec<(String, Vec<String>)> {
    let name = &target.config.name;
    let mut tests = Vec::new();
    if let Some(vm) = vm {
        tests.push((format!("VMM and test guest on {name}"), vm_run(target, vm)));
    }
    if let Some((image, vcpus, release)) = linux {
        let p = crate::guest::linux_run(target, image, *vcpus, release);
        tests.push((format!("Linux VM on {name}"), p));
    }
    if vm.is_some() && name == crate::rt::TARGET {
        tests.push((
            format!(
                "soft real time on {name}: LL-boost keeps every deadline, plain credit does not, SBT per USBT holds"
            ),
            crate::rt::short_test(target),
        ));
    }
    if name == crate::trace::TARGET {
        tests.push((
            format!("the trace of the default system on {name}, read by trace-cmd, babeltrace2 and the JSON check"),
            crate::trace::test(target),
        ));
        if linux.is_some() {
            tests.push((
                format!("the integrated trace on {name}: a Linux probe, the RTOS and native servers on one timeline"),
                crate::trace::probe_test(target),
            ));
        }
    }
    if let Some(pair) = pair.filter(|_| PAIR_CONFIGS.contains(&name.as_str())) {
        tests.push((format!("two Linux VMs on {name}"), crate::guest::pair_run(target, pair)));
        if let Some((image, _, _)) = linux {
            let p = crate::guest::demo_run(target, image);
            tests.push((format!("scripts/run on {name}, no terminal: a session in Linux"), p));
        }
    }
    tests
}

/// The configurations the two-VM Linux system boots on (one per GIC version: the rest
/// is the one-VM test's).
const PAIR_CONFIGS: &[&str] = &["virt-gicv3-a53", "virt-gicv2-a72"];

/// The Linux system's `image` for `board`, its VM's vCPUs and the guest kernel's release.
fn linux_system(board: &str, image: PathBuf) -> Result<(PathBuf, usize, String), String> {
    let file = system_file(board, LINUX_SYSTEM);
    let system = gaon_image::System::load(&file, &root_dir().join("platforms")).map_err(|e| e.to_string())?;
    let vm = system.vms.first().ok_or("the Linux system has no [[vm]]")?;
    let cfg = <gaon_abi::system::VmConfig as zerocopy::FromBytes>::read_from_bytes(&vm.config)
        .map_err(|_| "the VM's configuration is no VmConfig")?;
    let release = crate::linux::cached_release().ok_or("no cached guest kernel")?;
    Ok((image, cfg.vcpus as usize, release))
}

/// Every QEMU configuration of every board that has a system description (or of
/// `only` that board), then the quick bench check (not with `only`).
fn boot_tests(only: Option<&str>) -> (u32, u32) {
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
        if !system_file(&board_name, DEFAULT_SYSTEM).is_file() || only.is_some_and(|b| b != board_name) {
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
        let mut optional = |system: &str, what: &str| {
            if !system_file(&board_name, system).is_file() {
                return None;
            }
            build_board(&board_name, system)
                .map_err(|e| record(&format!("build {what} for {board_name}"), vec![e]))
                .ok()
        };
        let ktest_image = optional(KTEST_SYSTEM, "ktest");
        let vm_image = optional(VM_SYSTEM, "the VM system");
        let linux_pair = optional(LINUX_PAIR_SYSTEM, "the two-VM Linux system");
        let linux = optional(LINUX_SYSTEM, "the Linux system").and_then(|image| {
            linux_system(&board_name, image)
                .map_err(|e| record(&format!("the Linux system for {board_name}"), vec![e]))
                .ok()
        });
        for (i, config) in board.qemu.iter().enumerate() {
            let target = Target {
                board: board.clone(),
                config: config.clone(),
                icount: false,
            };
            record(&format!("boot {}", config.name), typed_at_prompt_run(&target, &image));
            if let Some(ktest) = &ktest_image {
                record(
                    &format!("kernel test suite on {}", config.name),
                    ktest_run(&target, ktest),
                );
            }
            for (name, problems) in guest_tests(&target, vm_image.as_deref(), linux.as_ref(), linux_pair.as_deref()) {
                record(&name, problems);
            }
            if i == 0 {
                // `scripts/run`'s console, once per board: a line piped in before the
                // system has booted arrives whole; with nobody typing the run passes.
                record(
                    &format!("scripts/run on {}, a line piped in at boot", config.name),
                    console_run(&target, &image, PIPED_INPUT, Typed::Line(line_of(PIPED_INPUT))),
                );
                record(
                    &format!("scripts/run on {}, no input", config.name),
                    console_run(&target, &image, b"", Typed::Nothing),
                );
                record(
                    &format!("corrupt boot image panics cleanly on {}", config.name),
                    corrupt_image_test(&target, &image),
                );
            }
        }
    }
    if only.is_some() {
        return (passed, failed);
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

/// `cargo xtask test --linux CONFIG`: the Linux VM's test alone, on one configuration.
fn linux_only(name: &str) -> Result<(), String> {
    let target = crate::qemu::resolve(name)?;
    let image = build_board(&target.board.board.name, LINUX_SYSTEM)?;
    let (image, vcpus, release) = linux_system(&target.board.board.name, image)?;
    report(
        &target,
        &crate::guest::linux_run(&target, &image, vcpus, &release),
        "Linux VM",
    )
}

/// Say how test `what` went on `target`.
fn report(target: &Target, problems: &[String], what: &str) -> Result<(), String> {
    if problems.is_empty() {
        println!("{what} on {}: passed", target.config.name);
        return Ok(());
    }
    for p in problems {
        eprintln!("     {p}");
    }
    Err(format!("{what} on {}: {} problems", target.config.name, problems.len()))
}

/// `cargo xtask test [--quick] [--board BOARD] [--linux CONFIG] [--linux-pair CONFIG]`:
/// `--quick` runs the host tests only, `--board` one board's boot tests only (no host
/// tests, no bench check), `--linux` the Linux VM's test on one QEMU configuration,
/// `--linux-pair` the two-VM test.
pub fn run_all(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--board" => {
                only = Some(
                    it.next()
                        .ok_or("--board needs a board name (cargo xtask list)")?
                        .as_str(),
                );
            }
            "--linux" => {
                let name = it
                    .next()
                    .ok_or("--linux needs a QEMU configuration (cargo xtask list)")?;
                return linux_only(name);
            }
            "--trace" => {
                let target = crate::qemu::resolve(crate::trace::TARGET)?;
                return report(&target, &crate::trace::test(&target), "trace");
            }
            "--trace-probe" => {
                let target = crate::qemu::resolve(crate::trace::TARGET)?;
                return report(&target, &crate::trace::probe_test(&target), "integrated trace");
            }
            "--rt" => {
                let target = crate::qemu::resolve(crate::rt::TARGET)?;
                return report(&target, &crate::rt::short_test(&target), "soft real time (short)");
            }
            "--linux-pair" => {
                let name = it
                    .next()
                    .ok_or("--linux-pair needs a QEMU configuration (cargo xtask list)")?;
                let target = crate::qemu::resolve(name)?;
                let image = build_board(&target.board.board.name, LINUX_PAIR_SYSTEM)?;
                return report(&target, &crate::guest::pair_run(&target, &image), "two Linux VMs");
            }
            other => return Err(format!("unknown option `{other}` for test")),
        }
    }
    if only.is_none() || quick {
        host_tests()?;
    }
    if quick {
        return Ok(());
    }
    let (passed, failed) = boot_tests(only);
    if passed + failed == 0 {
        return Err(format!("no boot tests ran: is `{}` a board?", only.unwrap_or("?")));
    }
    println!("boot tests: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} boot tests failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::{HYPERCALL_LINE, VM_INPUT_ECHO, check_vm, summary};

    #[test]
    fn a_vm_run_passes_only_with_every_guest_test() {
        let victim = "root: server `victim` faulted: VM fault at pc 0x401234, address 0x4fffffff000 (data access)\nroot: reclaimed `victim` (reply object destroyed, heap revoked)\n";
        let vmctl = "[vmctl] vmctl: 5 passed, 0 failed\n";
        let typed = format!("{VM_INPUT_ECHO}\n");
        let initrd = "[testvm] initrd: 300 bytes at 0x40dff000\n";
        let rtc = "[testvm] pass-through: PL031 at 0x9010000, 1764500000 s, its interrupt taken twice\n";
        let good = format!(
            "{vmctl}{victim}[testvm] ok 1 - hvc\n{typed}{initrd}{rtc}{HYPERCALL_LINE}\n[testvm] testguest: 19 passed, 0 failed\n"
        );
        let good = good.as_str();
        assert!(check_vm(good, Some(0)).is_empty());
        assert!(
            !check_vm(&good.replace(vmctl, ""), Some(0)).is_empty(),
            "no control test"
        );
        assert!(
            !check_vm(&good.replace("5 passed, 0 failed", "4 passed, 1 failed"), Some(0)).is_empty(),
            "a control test failed"
        );
        assert!(!check_vm(&good.replace(victim, ""), Some(0)).is_empty(), "no victim");
        assert!(
            !check_vm(&good.replace(", heap revoked", ""), Some(0)).is_empty(),
            "its guest stayed"
        );
        assert!(!check_vm(&good.replace("0 failed", "1 failed"), Some(0)).is_empty());
        assert!(!check_vm(&good.replace("19 passed", "3 passed"), Some(0)).is_empty());
        assert!(
            !check_vm(&good.replace(HYPERCALL_LINE, ""), Some(0)).is_empty(),
            "no hypercall line"
        );
        assert!(!check_vm(&good.replace(rtc, ""), Some(0)).is_empty(), "no pass-through");
        assert!(!check_vm(&good.replace(initrd, ""), Some(0)).is_empty(), "no initrd");
        assert!(!check_vm(&good.replace(&typed, ""), Some(0)).is_empty(), "input lost");
        assert!(!check_vm("[testvm] ok 1 - hvc\n", Some(0)).is_empty());
        assert!(!check_vm(good, None).is_empty(), "a timeout");
        assert!(!check_vm(good, Some(3)).is_empty());
    }

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
        let system = file("images/common/examples.toml") + &file("images/common/demo.toml");
        for line in b[5].lines() {
            assert!(
                system.contains(line),
                "images/common/examples.toml and demo.toml lack `{line}`"
            );
        }
    }

    /// Every code fence opens and closes on a line of its own.
    #[test]
    fn tutorial_fences_are_whole_lines() {
        let doc = file("docs/tutorial-server.md");
        let fences: Vec<&str> = doc.lines().filter(|l| l.contains("```")).collect();
        assert_eq!(fences.len() % 2, 0, "an odd number of fences");
        for (i, f) in fences.iter().enumerate() {
            if i % 2 == 1 {
                assert_eq!(*f, "```", "a closing fence with text beside it");
            } else {
                assert!(f.starts_with("```"), "text before an opening fence: `{f}`");
            }
        }
    }

    /// The example error names the Greeter channel by its index in the description.
    #[test]
    fn tutorial_error_names_the_greeter_channel() {
        let doc = file("docs/tutorial-server.md");
        let (_, rest) = doc.split_once("field `channel[").expect("the example error");
        let index: usize = rest.split(']').next().unwrap().parse().unwrap();
        let system = file("images/common/demo.toml");
        let channel = system.split("[[channel]]").nth(index + 1).expect("so many channels");
        assert!(
            channel.contains("interface = \"Greeter\""),
            "channel[{index}] is not the Greeter channel"
        );
    }
}
