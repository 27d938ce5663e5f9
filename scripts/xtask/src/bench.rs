//! `cargo xtask bench`: the native benchmarks (bench/gaon) and their Linux counterparts
//! (bench/linux) under QEMU with `-icount shift=0` on each benchmark CPU, side by side.
//!
//! Both systems print `bench: case=NAME unit=UNIT iterations=N min=X median=X max=X`
//! lines, timed with CNTVCT_EL0; under icount a counter tick is a fixed number of
//! instructions, so the values are instruction counts. The harness prints the tables,
//! and writes `bench/results/latest.json` and `bench/results/chart.png`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::build::build_board;
use crate::qemu::{self, Target, capture, resolve};
use crate::root_dir;

/// QEMU configurations the benchmarks run on: (configuration, CPU name in results).
pub const CPUS: [(&str, &str); 2] = [("virt-gicv3-a53", "cortex-a53"), ("virt-gicv3-a72", "cortex-a72")];
/// The bench system descriptions (images/virt/...).
const FULL_SYSTEM: &str = "bench";
const QUICK_SYSTEM: &str = "bench-quick";
/// The Linux benchmark in a Gaon VM (its initramfs is the baseline's, quick or full).
const VM_SYSTEM: &str = "bench-vm";
/// The chart of Linux in a Gaon VM against bare Linux, in `bench/results/`.
const VM_CHART: &str = "vm-chart.png";
/// The case made of the counter at which the Linux benchmark starts.
pub const BOOT_CASE: &str = "linux_boot_to_shell";
/// Longest a full run of one system on one CPU may take.
const FULL_TIMEOUT: Duration = Duration::from_mins(20);
/// Longest a quick run may take.
pub const QUICK_TIMEOUT: Duration = Duration::from_mins(2);

/// Cases every run must report (the results file's stable names).
pub const REQUIRED_CASES: [&str; 11] = [
    "null_syscall",
    "ipc_rt_cross_as",
    "ipc_rt_same_as",
    "ipc_rt_idl",
    "ctx_ring_2",
    "ctx_ring_8",
    "ctx_ring_16",
    "signal_wait",
    "irq_to_user",
    "irq_during_delete",
    "irq_during_retype",
];

/// One result: the format of `bench/results/latest.json` (an array of these). Other
/// tools read it; do not rename or drop fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `gaon` or `linux`.
    pub system: String,
    /// `cortex-a53` or `cortex-a72`.
    pub cpu: String,
    /// Case name.
    pub case: String,
    /// `instructions`, or `MB/Minstr` for bandwidth.
    pub unit: String,
    /// Smallest per-operation value over the samples.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest.
    pub max: f64,
    /// Operations timed in all.
    pub iterations: u64,
}

/// What one run printed: its results, failed cases, and its summary line's counts.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Results.
    pub rows: Vec<Row>,
    /// `case: reason` for each failed case.
    pub failures: Vec<String>,
    /// `(passed, failed)` from `bench: N passed, N failed`.
    pub summary: Option<(u32, u32)>,
}

/// Parse a run's output.
pub fn parse(output: &str, system: &str, cpu: &str) -> Parsed {
    let mut p = Parsed::default();
    for line in output.lines() {
        // A VM's lines come with its console prefix.
        let line = line.trim();
        let line = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
            Some((_, rest)) => rest,
            None => line,
        };
        let Some(rest) = line.strip_prefix("bench: ") else {
            continue;
        };
        if let Some(start) = rest.strip_prefix("started at counter ") {
            match boot_row(output, start, system, cpu) {
                Ok(row) => p.rows.push(row),
                Err(why) => p.failures.push(format!("{BOOT_CASE}: {why}")),
            }
            continue;
        }
        if let Some(s) = crate::test::summary(rest).filter(|_| rest.ends_with("failed")) {
            p.summary = Some(s);
            continue;
        }
        let Some(rest) = rest.strip_prefix("case=") else {
            continue;
        };
        if let Some((case, why)) = rest.split_once(" FAILED: ") {
            p.failures.push(format!("{case}: {why}"));
            continue;
        }
        let mut fields = BTreeMap::new();
        let mut words = rest.split_whitespace();
        let case = words.next().unwrap_or_default();
        for w in words {
            if let Some((k, v)) = w.split_once('=') {
                fields.insert(k, v);
            }
        }
        let num = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok());
        match (
            fields.get("unit"),
            num("min"),
            num("median"),
            num("max"),
            fields.get("iterations").and_then(|v| v.parse::<u64>().ok()),
        ) {
            (Some(unit), Some(min), Some(median), Some(max), Some(it)) => p.rows.push(Row {
                system: system.into(),
                cpu: cpu.into(),
                case: case.into(),
                unit: (*unit).into(),
                min,
                median,
                max,
                iterations: it,
            }),
            _ => p.failures.push(format!("{case}: unreadable result line `{line}`")),
        }
    }
    p
}

/// The `linux_boot_to_shell` row: the instructions from QEMU's reset until the Linux
/// benchmark started (its init script's first command, `start`, the virtual counter),
/// with a VMM's counter offset (`vmm: ..., counter offset N`, none on bare QEMU) added
/// back; a tick is `1e9 / 62.5 MHz` = 16 instructions under `-icount shift=0`.
fn boot_row(output: &str, start: &str, system: &str, cpu: &str) -> Result<Row, String> {
    const PER_TICK: u64 = 16;
    let start: u64 = start
        .trim()
        .parse()
        .map_err(|_| format!("unreadable counter `{start}`"))?;
    let offset = match output.lines().find_map(|l| l.split_once("counter offset ")) {
        Some((_, n)) => n
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("unreadable offset `{n}`"))?,
        None => 0,
    };
    // Exact in an f64 below 2^53 instructions (104 days of icount time).
    #[allow(clippy::cast_precision_loss)]
    let instructions = (start.saturating_add(offset).saturating_mul(PER_TICK)) as f64;
    Ok(Row {
        system: system.into(),
        cpu: cpu.into(),
        case: BOOT_CASE.into(),
        unit: "instructions".into(),
        min: instructions,
        median: instructions,
        max: instructions,
        iterations: 1,
    })
}

/// Cases only Gaon has (Linux has no IDL, and no user-level capability deletion or
/// retype to interrupt).
const GAON_ONLY: [&str; 3] = ["ipc_rt_idl", "irq_during_delete", "irq_during_retype"];

/// Problems with a parsed run of `system`: failures, a missing or bad summary, missing
/// cases.
pub fn problems(p: &Parsed, system: &str, exit_code: Option<i32>) -> Vec<String> {
    let mut v: Vec<String> = p.failures.iter().map(|f| format!("case {f}")).collect();
    match p.summary {
        Some((_, 0)) => {}
        Some((ok, bad)) => v.push(format!("{ok} passed, {bad} failed")),
        None => v.push("no `bench: N passed, N failed` line".into()),
    }
    for c in REQUIRED_CASES {
        if system != "gaon" && GAON_ONLY.contains(&c) {
            continue;
        }
        if !p.rows.iter().any(|r| r.case == c) {
            v.push(format!("no result for `{c}`"));
        }
    }
    match exit_code {
        Some(0) => {}
        Some(c) => v.push(format!("exit status {c}")),
        None => v.push("timed out".into()),
    }
    v
}

/// The QEMU command that boots a Gaon bench image on `config` under icount, serial on
/// stdout (the profiler adds its trace options).
pub fn gaon_command(image: &Path, config: &str) -> Result<std::process::Command, String> {
    let target: Target = resolve(config)?;
    Ok(qemu::serial_command(&target, image, true))
}

/// Boot the Gaon bench image on `config` under icount; returns the output and status.
fn run_gaon(image: &Path, config: &str, timeout: Duration) -> Result<qemu::Outcome, String> {
    capture(gaon_command(image, config)?, timeout, None)
}

/// The test command's check: the quick bench image on the first benchmark CPU.
pub fn quick_check() -> Vec<String> {
    let image = match build_board("virt", QUICK_SYSTEM) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    match run_gaon(&image, CPUS[0].0, QUICK_TIMEOUT) {
        Ok(o) => {
            let p = problems(&parse(&o.output, "gaon", CPUS[0].1), "gaon", o.exit_code);
            if !p.is_empty() {
                eprintln!("----- output of the quick bench run -----\n{}-----", o.output);
            }
            p
        }
        Err(e) => vec![e],
    }
}

/// Run one system on one CPU and parse it, failing on any problem.
fn one_run(system: &str, cpu: &str, out: Result<qemu::Outcome, String>) -> Result<Vec<Row>, String> {
    checked_run(system, cpu, out, false)
}

/// As [`one_run`]; with `traced`, the Linux benchmark's calibration (the counter
/// advances one tick a 16 instructions of the benchmark alone) is left out: under
/// icount the clock also counts what the trace server and the kernel's recording do,
/// which is what a traced run measures.
fn checked_run(system: &str, cpu: &str, out: Result<qemu::Outcome, String>, traced: bool) -> Result<Vec<Row>, String> {
    let o = out?;
    let mut p = parse(&o.output, system, cpu);
    if traced {
        let before = p.failures.len();
        p.failures.retain(|f| !f.starts_with("calibrate"));
        let dropped = (before - p.failures.len()) as u32;
        p.summary = p.summary.map(|(ok, bad)| (ok, bad - dropped.min(bad)));
        p.rows.retain(|r| !r.case.starts_with("calibrate"));
    }
    let bad = problems(&p, system, o.exit_code);
    if bad.is_empty() {
        Ok(p.rows)
    } else {
        Err(format!(
            "{system} on {cpu}: {}\n----- output -----\n{}",
            bad.join("; "),
            o.output
        ))
    }
}

/// `cargo xtask bench [--quick] [--gaon-only] [--trace] [--cpu a53|a72]`.
pub fn bench_command(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    // --trace: Gaon's cases with every trace class recorded and drained (docs/trace.md).
    let traced = args.iter().any(|a| a == "--trace");
    let gaon_only = args.iter().any(|a| a == "--gaon-only");
    let with_linux = !gaon_only && !traced;
    // --trace without --gaon-only: also Linux in a Gaon VM with tracing off, on, with a
    // `__switch_to` probe and tracing off, and with both (the trace server drains and
    // discards).
    let vm_traced = traced && !gaon_only;
    let only_cpu = args.iter().position(|a| a == "--cpu").and_then(|i| args.get(i + 1));
    let cpus: Vec<(&str, &str)> = CPUS
        .iter()
        .copied()
        .filter(|(_, cpu)| only_cpu.is_none_or(|c| cpu.ends_with(c.as_str())))
        .collect();
    if cpus.is_empty() {
        return Err("--cpu takes a53 or a72".into());
    }
    let timeout = if quick { QUICK_TIMEOUT } else { FULL_TIMEOUT };
    let system = if quick { QUICK_SYSTEM } else { FULL_SYSTEM };
    let image = if traced {
        crate::trace::traced_bench_image("virt", system)?
    } else {
        build_board("virt", system)?
    };
    let linux = if with_linux || vm_traced {
        Some(crate::linux::prepare(quick)?)
    } else {
        None
    };
    // Built after `prepare`, which made the initramfs it boots.
    let vm_image = if with_linux || vm_traced {
        Some(build_board("virt", VM_SYSTEM)?)
    } else {
        None
    };
    let vm_variants = if vm_traced {
        let probe = ["__switch_to".to_string()];
        vec![
            (
                "gaon-vm-traced",
                crate::trace::traced_vm_image(VM_SYSTEM, "traced", true, &[])?,
            ),
            (
                "gaon-vm-probe-only",
                crate::trace::traced_vm_image(VM_SYSTEM, "probe-only", false, &probe)?,
            ),
            (
                "gaon-vm-probed",
                crate::trace::traced_vm_image(VM_SYSTEM, "probed", true, &probe)?,
            ),
        ]
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    for &(config, cpu) in &cpus {
        eprintln!("bench: Gaon on {cpu} (QEMU {config}, -icount shift=0)");
        rows.extend(one_run("gaon", cpu, run_gaon(&image, config, timeout))?);
        if let Some(img) = linux.as_ref().filter(|_| with_linux) {
            eprintln!("bench: Linux {} on {cpu} (-icount shift=0)", img.version);
            let cmd = crate::linux::command(img, cpu);
            rows.extend(one_run("linux", cpu, capture(cmd, timeout, None))?);
        }
        if let Some(vm) = &vm_image {
            eprintln!("bench: the same Linux in a Gaon VM on {cpu} (QEMU {config}, -icount shift=0)");
            rows.extend(one_run("gaon-vm", cpu, run_gaon(vm, config, timeout))?);
        }
        for (system, image) in &vm_variants {
            eprintln!("bench: the same Linux in a Gaon VM, {system}, on {cpu} (QEMU {config}, -icount shift=0)");
            rows.extend(checked_run(system, cpu, run_gaon(image, config, timeout), true)?);
        }
    }
    print!("{}", table(&rows));
    if vm_traced {
        print!("{}", traced_vm_table(&rows));
    }
    // Only a whole run (both CPUs, Linux too) replaces the results: a partial one would
    // leave them with rows missing.
    if quick || traced || !with_linux || cpus.len() != CPUS.len() {
        eprintln!("bench: partial run (quick, traced, Gaon only or one CPU); results not written");
        return Ok(());
    }
    let dir = root_dir().join("bench").join("results");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    write(&dir.join("latest.json"), format!("{json}\n").as_bytes())?;
    let chart = dir.join("chart.png");
    crate::chart::draw(&rows, &chart)?;
    eprintln!(
        "bench: wrote {} and {}",
        dir.join("latest.json").display(),
        chart.display()
    );
    if rows.iter().any(|r| r.system == "gaon-vm") {
        let vm_chart = dir.join(VM_CHART);
        crate::chart::draw_vm(&rows, &vm_chart)?;
        eprintln!("bench: wrote {}", vm_chart.display());
    }
    Ok(())
}

/// `cargo xtask chart`: draw `bench/results/chart.png` again from
/// `bench/results/latest.json`, without running anything.
pub fn chart_command() -> Result<(), String> {
    let dir = root_dir().join("bench").join("results");
    let json = dir.join("latest.json");
    let text = fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let rows: Vec<Row> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let chart = dir.join("chart.png");
    crate::chart::draw(&rows, &chart)?;
    eprintln!("bench: wrote {} from {}", chart.display(), json.display());
    if rows.iter().any(|r| r.system == "gaon-vm") {
        let vm_chart = dir.join(VM_CHART);
        crate::chart::draw_vm(&rows, &vm_chart)?;
        eprintln!("bench: wrote {} from {}", vm_chart.display(), json.display());
    }
    let rt = dir.join("rt.json");
    if let Ok(text) = fs::read_to_string(&rt) {
        let results: Vec<crate::rt::RtResult> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", rt.display()))?;
        crate::chart::draw_rt(&results, &dir.join("rt-cdf.png"))?;
        eprintln!(
            "bench: wrote {} from {}",
            dir.join("rt-cdf.png").display(),
            rt.display()
        );
    }
    Ok(())
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The side-by-side table, one block per CPU: Gaon's min/median/max, Linux's median and
/// the ratio Gaon/Linux of the medians (for bandwidth, higher is better).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let mut cpus: Vec<&str> = rows.iter().map(|r| r.cpu.as_str()).collect();
    cpus.dedup();
    for cpu in cpus {
        let _ = writeln!(
            s,
            "\n{cpu} (QEMU virt, -icount shift=0: instructions per operation, except bandwidth)"
        );
        let _ = writeln!(
            s,
            "{:<26} {:>10} {:>10} {:>10} {:>10}  {:>9} {:>7}",
            "case", "gaon min", "median", "max", "unit", "linux", "g/l"
        );
        for r in rows.iter().filter(|r| r.cpu == cpu && r.system == "gaon") {
            let linux = rows
                .iter()
                .find(|l| l.system == "linux" && l.cpu == cpu && l.case == r.case);
            let (l, ratio) = match linux {
                Some(l) if l.median > 0.0 => (format!("{:.1}", l.median), format!("{:.2}", r.median / l.median)),
                _ => ("-".into(), "-".into()),
            };
            let unit = if r.unit == "instructions" { "instr" } else { &r.unit };
            let _ = writeln!(
                s,
                "{:<26} {:>10.1} {:>10.1} {:>10.1} {:>10}  {:>9} {:>7}",
                r.case, r.min, r.median, r.max, unit, l, ratio
            );
        }
        for l in rows.iter().filter(|l| l.cpu == cpu && l.system == "linux").filter(|l| {
            !rows
                .iter()
                .any(|g| g.system == "gaon" && g.cpu == cpu && g.case == l.case)
        }) {
            let _ = writeln!(
                s,
                "{:<26} {:>10} {:>10} {:>10} {:>10}  {:>9.1} {:>7}",
                l.case, "-", "-", "-", "instr", l.median, "-"
            );
        }
        vm_table(&mut s, rows, cpu);
    }
    s
}

/// Linux in a Gaon VM with tracing off, with every class traced, with a `__switch_to`
/// probe and tracing off (the probe's own cost: it records nothing), and with both
/// (`bench --trace`): medians, and each over off.
fn traced_vm_table(rows: &[Row]) -> String {
    const VARIANTS: [&str; 3] = ["gaon-vm-traced", "gaon-vm-probe-only", "gaon-vm-probed"];
    let mut s = String::new();
    let cpus: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.cpu.as_str()).collect();
    for cpu in cpus {
        let _ = writeln!(
            s,
            "\n{cpu}: Linux in a Gaon VM: tracing off; every class traced; a __switch_to probe, tracing off; both"
        );
        let _ = writeln!(
            s,
            "{:<26} {:>13} {:>13} {:>7} {:>13} {:>7} {:>13} {:>7} {:>10}",
            "case", "off", "traced", "/off", "probe only", "/off", "probed", "/off", "unit"
        );
        for off in rows.iter().filter(|r| r.cpu == cpu && r.system == "gaon-vm") {
            let _ = write!(s, "{:<26} {:>13.1}", off.case, off.median);
            for system in VARIANTS {
                let row = rows
                    .iter()
                    .find(|r| r.cpu == cpu && r.system == system && r.case == off.case);
                match row {
                    Some(r) if off.median > 0.0 => {
                        let _ = write!(s, " {:>13.1} {:>7.3}", r.median, r.median / off.median);
                    }
                    _ => {
                        let _ = write!(s, " {:>13} {:>7}", "-", "-");
                    }
                }
            }
            let unit = if off.unit == "instructions" { "instr" } else { &off.unit };
            let _ = writeln!(s, " {unit:>10}");
        }
    }
    s
}

/// The table of Linux in a Gaon VM against bare Linux on `cpu` (paper 004's comparison),
/// if there are `gaon-vm` rows: bare Linux's median, the VM's min/median/max, the ratio
/// of the medians (VM / bare; for bandwidth, higher is better).
fn vm_table(s: &mut String, rows: &[Row], cpu: &str) {
    let vm: Vec<&Row> = rows.iter().filter(|r| r.cpu == cpu && r.system == "gaon-vm").collect();
    if vm.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n{cpu}: Linux in a Gaon VM and on bare QEMU (the same kernel, initramfs, memory, one CPU)"
    );
    let _ = writeln!(
        s,
        "{:<26} {:>13} {:>13} {:>13} {:>13} {:>10}  {:>7}",
        "case", "bare linux", "vm min", "vm median", "vm max", "unit", "vm/bare"
    );
    for r in vm {
        let bare = rows
            .iter()
            .find(|l| l.system == "linux" && l.cpu == cpu && l.case == r.case);
        let (b, ratio) = match bare {
            Some(l) if l.median > 0.0 => (format!("{:.1}", l.median), format!("{:.2}", r.median / l.median)),
            _ => ("-".into(), "-".into()),
        };
        let unit = if r.unit == "instructions" { "instr" } else { &r.unit };
        let _ = writeln!(
            s,
            "{:<26} {:>13} {:>13.1} {:>13.1} {:>13.1} {:>10}  {:>7}",
            r.case, b, r.min, r.median, r.max, unit, ratio
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
bench: full run; counter 62500000 Hz, 16 instructions per tick under -icount shift=0
bench: case=null_syscall unit=instructions iterations=50000 min=192.000 median=200.000 max=208.000
bench: case=bw_pipe unit=MB/Minstr iterations=6400 min=0.931 median=0.940 max=0.950
bench: case=irq_to_user FAILED: claim the virtual timer's IRQ
bench: 2 passed, 1 failed
";

    /// The programs' side of the format (bench/report) and this parser agree.
    #[test]
    fn parses_what_the_bench_programs_print() {
        use gaon_bench_report::{Failed, Line, Tally, Unit};
        let mut values = [459_000, 460_125, 458_500];
        let line = Line::new("ipc_rt_cross_as", Unit::Instructions, 500, &mut values).unwrap();
        let mut bw = [937];
        let bw = Line::new("bw_pipe", Unit::MbPerMinstr { bytes: 1 << 20 }, 8, &mut bw).unwrap();
        let out = format!(
            "{line}\n{bw}\n{}\n{}\n",
            Failed {
                name: "yield",
                why: "no partner"
            },
            Tally { passed: 2, failed: 1 }
        );
        let p = parse(&out, "gaon", "cortex-a53");
        assert_eq!(p.rows.len(), 2);
        let r = &p.rows[0];
        assert_eq!(
            (r.case.as_str(), r.unit.as_str(), r.iterations),
            ("ipc_rt_cross_as", "instructions", 1500)
        );
        assert!((r.min - 458.5).abs() < 1e-9 && (r.median - 459.0).abs() < 1e-9 && (r.max - 460.125).abs() < 1e-9);
        assert_eq!((p.rows[1].unit.as_str(), p.rows[1].median), ("MB/Minstr", 0.937));
        assert_eq!(p.failures, vec!["yield: no partner".to_string()]);
        assert_eq!(p.summary, Some((2, 1)));
    }

    #[test]
    fn parses_results_failures_and_summary() {
        let p = parse(OUTPUT, "gaon", "cortex-a53");
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].case, "null_syscall");
        assert!((p.rows[0].median - 200.0).abs() < 1e-9);
        assert_eq!(p.rows[0].iterations, 50000);
        assert_eq!(p.rows[1].unit, "MB/Minstr");
        assert_eq!(
            p.failures,
            vec!["irq_to_user: claim the virtual timer's IRQ".to_string()]
        );
        assert_eq!(p.summary, Some((2, 1)));
        let bad = problems(&p, "gaon", Some(1));
        assert!(bad.iter().any(|b| b.contains("irq_to_user")), "{bad:?}");
        assert!(
            bad.iter().any(|b| b.contains("no result for `ipc_rt_cross_as`")),
            "{bad:?}"
        );
        assert!(bad.iter().any(|b| b.contains("exit status 1")), "{bad:?}");
    }

    #[test]
    fn results_file_fields_are_stable() {
        let p = parse(OUTPUT, "linux", "cortex-a72");
        let text = serde_json::to_string(&p.rows[0]).expect("serialises");
        let keys = ["system", "cpu", "case", "unit", "min", "median", "max", "iterations"];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).expect("field present"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("\"system\":\"linux\"") && text.contains("\"unit\":\"instructions\""));
    }

    #[test]
    fn table_puts_linux_beside_gaon() {
        let mut rows = parse(OUTPUT, "gaon", "cortex-a53").rows;
        let mut l = rows[0].clone();
        l.system = "linux".into();
        l.median = 400.0;
        rows.push(l);
        let t = table(&rows);
        let line = t.lines().find(|l| l.starts_with("null_syscall")).expect("row");
        assert!(line.contains("400.0") && line.ends_with("0.50"), "{line}");
    }
}
