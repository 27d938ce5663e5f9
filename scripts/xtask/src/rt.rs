//! The soft-real-time experiment (issue 17, docs/realtime.md): paper 000's periodic
//! guest task (2.3 ms period, 60 µs of work: the RTOS guest, servers/guests/rtos) beside
//! a CPU-bound guest on one core, under four configurations of the scheduling policy
//! server (servers/sched), on QEMU's deterministic clock (`-icount shift=0`: 1 ns of
//! virtual time per instruction). `cargo xtask bench rt` (`scripts/bench rt`) runs them
//! and writes `bench/results/rt.json` and `bench/results/rt-cdf.png`; `cargo xtask
//! test` runs a short version ([`short_test`]).
//!
//! Each configuration is a system description written to `build/rt/` from
//! [`description`]: the console, the policy server, `rtvm` (the RTOS guest with an
//! LL-boost reservation of [`SBT_US`] per [`USBT_US`], asking for LL-boost by hypercall)
//! and `hogvm` (the RTOS guest with `hog`, or Linux running a shell loop), both on core
//! 0 at the same priority. In `fixed` the server only measures: both vCPUs keep their
//! VMMs' priority less one, and the kernel shares the core round-robin.
#![allow(
    clippy::cast_precision_loss,
    reason = "microseconds and counts of a run, far below 2^52"
)]

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::build::build_system;
use crate::qemu::{Target, run_captured_icount};
use crate::root_dir;

/// A configuration of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// No policy: the kernel's fixed priorities (both guests equal: round-robin).
    Fixed,
    /// Xen's credit scheduler (tick debit), LL-boost requests denied.
    Credit,
    /// Credit with LL-boost.
    CreditLlboost,
    /// Credit with LL-boost and credit borrowing (10 ms).
    CreditLlboostBorrow,
}

/// The four, in the order they are run and reported.
pub const CONFIGS: [Config; 4] = [
    Config::Fixed,
    Config::Credit,
    Config::CreditLlboost,
    Config::CreditLlboostBorrow,
];

impl Config {
    /// Its name in `rt.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Credit => "credit",
            Self::CreditLlboost => "credit_llboost",
            Self::CreditLlboostBorrow => "credit_llboost_borrow",
        }
    }

    /// Its lines of `[sched]` after `server`.
    const fn sched_lines(self) -> &'static str {
        match self {
            Self::Fixed => "policy = \"fixed\"\n",
            Self::Credit => "ll_boost = false\n",
            Self::CreditLlboost => "",
            Self::CreditLlboostBorrow => "borrow_us = 10000\n",
        }
    }
}

/// The CPU-bound guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hog {
    /// The RTOS guest with `hog` (boots in a millisecond).
    Rtos,
    /// Debian's Linux running `while :; do :; done` (`gaon.hog`).
    Linux,
}

impl Hog {
    const fn name(self) -> &'static str {
        match self {
            Self::Rtos => "rtos",
            Self::Linux => "linux",
        }
    }
}

/// The RT guest's LL-boost reservation: SBT 200 µs per USBT 2.3 ms (8.7 % of the core),
/// room for the 60 µs job and the guest's own switches and timer interrupts.
pub const SBT_US: u64 = 200;
/// See [`SBT_US`].
pub const USBT_US: u64 = 2300;

/// The head of every description: the kernel, root, the console and the policy server.
const HEAD: &str = r#"[kernel]
package = "gaon-kernel"

[root]
package = "gaon-root"

[[server]]
name = "console"
package = "gaon-console"
debug = true
kernel_log = true
priority = 200
mmio = [{ name = "pl011", paddr = 0x0900_0000, size = 0x1000 }]
irq = [{ name = "uart", line = 33 }]

[[server]]
name = "sched"
package = "gaon-sched-server"
priority = 150
heap_kib = 64

[[channel]]
interface = "Console"
server = "console"
clients = ["rtvm", "hogvm", "sched"]
"#;

/// The system description of `config` with `hog`, the RT guest measuring `periods`
/// releases (its `bootargs`: `rt_args`, after `llboost periods=N`).
pub fn description(config: Config, hog: Hog, periods: u64, rt_args: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# The soft-real-time experiment's `{}` ({} hog), written by scripts/xtask/src/rt.rs.",
        config.name(),
        hog.name()
    );
    let _ = writeln!(
        s,
        "[system]\nname = \"rt-{}-{}\"\nboard = \"virt\"\n",
        config.name(),
        hog.name()
    );
    s.push_str(HEAD);
    let _ = writeln!(s, "\n[sched]\nserver = \"sched\"\n{}", config.sched_lines());
    let _ = writeln!(
        s,
        "[[vm]]\nname = \"rtvm\"\nguest = {{ package = \"gaon-rtos\" }}\nmemory_mib = 4\nvcpus = 1\n\
         bootargs = \"llboost periods={periods}{rt_args}\"\npriority = 100\ndevices = [\"testdev\"]\n\
         halt_on_exit = true\nsched = {{ sbt_us = {SBT_US}, usbt_us = {USBT_US} }}\n"
    );
    let guest = match hog {
        Hog::Rtos => "guest = { package = \"gaon-rtos\" }\nmemory_mib = 4\nbootargs = \"hog\"".to_string(),
        Hog::Linux => "guest = { file = \"../linux/Image\" }\ninitrd = \"../linux/guest-initramfs.cpio\"\n\
                       memory_mib = 128\nbootargs = \"console=ttyAMA0 quiet gaon.hog\""
            .to_string(),
    };
    let _ = writeln!(
        s,
        "[[vm]]\nname = \"hogvm\"\n{guest}\nvcpus = 1\npriority = 100\nsched = {{}}"
    );
    s
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RtResult {
    /// The configuration's name.
    pub config: String,
    /// Cores the guests ran on.
    pub cores: u32,
    /// Releases measured.
    pub periods: u64,
    /// Jobs that missed their deadline, and releases skipped.
    pub misses: u64,
    /// Release-to-start lateness: median, 99th percentile and maximum (µs).
    pub lateness_p50_us: f64,
    pub lateness_p99_us: f64,
    pub lateness_max_us: f64,
    /// The RT guest's and the hog's share of the core (0..1) over the run, from the
    /// policy server's reports; 0 if the run was too short for two reports.
    pub rt_share: f64,
    pub hog_share: f64,
    /// The CPU-bound guest (`rtos` or `linux`).
    pub hog: String,
    /// The clock the run had: `icount` (QEMU's `-icount shift=0`, exact) or `host`
    /// (QEMU's real clock: timing follows the host, and varies from run to run).
    #[serde(default = "icount")]
    pub clock: String,
    /// The RT guest's LL-boost time, its share of the core.
    pub ll_share: f64,
    /// The RT guest's `LL_BOOST_ENTER` answer, as it printed it (`ok`, `denied`, ...).
    pub ll_boost_enter: String,
    /// The lateness CDF: (µs, activations with lateness below µs + 1).
    pub cdf: Vec<(u64, u64)>,
}

/// The value of `key=` in the words of `line`.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// The share of one VM's vCPU 0 between the first and the last usage report of the
/// policy server: (consumed share, LL-boost share).
fn share(output: &str, vm: &str) -> (f64, f64) {
    let tag = format!(" vm={vm} vcpu=0 ");
    let reports: Vec<(u64, u64, u64)> = output
        .lines()
        .filter(|l| l.contains("sched: usage ") && l.contains(&tag))
        .filter_map(|l| Some((field(l, "t_us")?, field(l, "consumed_us")?, field(l, "ll_us")?)))
        .collect();
    match (reports.first(), reports.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            let dt = (b.0 - a.0) as f64;
            ((b.1 - a.1) as f64 / dt, (b.2 - a.2) as f64 / dt)
        }
        _ => (0.0, 0.0),
    }
}

fn icount() -> String {
    "icount".into()
}

/// What one RT guest printed.
struct Figures {
    periods: u64,
    misses: u64,
    p50: u64,
    p99: u64,
    max_ns: u64,
    ll_boost_enter: String,
    cdf: Vec<(u64, u64)>,
}

/// RT guest `vm`'s summary, CDF and LL-boost answer from a run's output.
fn figures(output: &str, vm: &str) -> Result<Figures, String> {
    let tag = format!("[{vm}] rtos: ");
    let line = |what: &str| {
        let key = format!("{tag}{what}");
        output
            .lines()
            .find(|l| l.contains(&key))
            .ok_or(format!("no `{what}` line from {vm}"))
    };
    let summary = line("periods=")?;
    let detail = line("activations=")?;
    line("done, status 0").map_err(|_| format!("{vm} did not end with status 0"))?;
    // Its boot makes a CONSOLE_WRITE of 49 bytes, which must be refused.
    line("bad hypercall refused").map_err(|_| format!("{vm}'s bad hypercall was not refused"))?;
    let ll_boost_enter = line("ll-boost enter: ")
        .ok()
        .and_then(|l| l.split("ll-boost enter: ").nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let get = |line: &str, key: &str| field(line, key).ok_or(format!("no `{key}=` in `{line}`"));
    let cdf_tag = format!("{tag}cdf ");
    let cdf = output
        .lines()
        .filter_map(|l| l.split(cdf_tag.as_str()).nth(1))
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    Ok(Figures {
        periods: get(summary, "periods")?,
        misses: get(summary, "misses")?,
        p50: get(summary, "p50")?,
        p99: get(summary, "p99")?,
        max_ns: get(detail, "max_lateness_ns")?,
        ll_boost_enter,
        cdf,
    })
}

/// Read a run's output: the RT guest's summary, its CDF and the shares.
pub fn parse(output: &str, config: Config, hog: Hog) -> Result<RtResult, String> {
    let f = figures(output, "rtvm")?;
    let (rt_share, ll_share) = share(output, "rtvm");
    Ok(RtResult {
        config: config.name().into(),
        cores: 1,
        periods: f.periods,
        misses: f.misses,
        lateness_p50_us: f.p50 as f64,
        lateness_p99_us: f.p99 as f64,
        lateness_max_us: f.max_ns as f64 / 1000.0,
        rt_share,
        hog_share: share(output, "hogvm").0,
        hog: hog.name().into(),
        clock: icount(),
        ll_share,
        ll_boost_enter: f.ll_boost_enter,
        cdf: f.cdf,
    })
}

/// The count of a cumulative CDF at `us` (its last step at or below).
fn cdf_at(cdf: &[(u64, u64)], us: u64) -> u64 {
    cdf.iter().take_while(|&&(x, _)| x <= us).last().map_or(0, |&(_, n)| n)
}

/// Read the two-core run's output: both RT guests together (periods and misses added,
/// the worse of their percentiles, CDFs added), shares of both cores.
pub fn parse_smp(output: &str, config: Config, hog: Hog) -> Result<RtResult, String> {
    let (a, b) = (figures(output, "rtvm")?, figures(output, "rtvm2")?);
    let mut xs: Vec<u64> = a.cdf.iter().chain(&b.cdf).map(|&(x, _)| x).collect();
    xs.sort_unstable();
    xs.dedup();
    let cdf = xs.iter().map(|&x| (x, cdf_at(&a.cdf, x) + cdf_at(&b.cdf, x))).collect();
    let both = |vm1: &str, vm2: &str| {
        let (s1, l1) = share(output, vm1);
        let (s2, l2) = share(output, vm2);
        (f64::midpoint(s1, s2), f64::midpoint(l1, l2))
    };
    let (rt_share, ll_share) = both("rtvm", "rtvm2");
    let ll_boost_enter = if a.ll_boost_enter == b.ll_boost_enter {
        a.ll_boost_enter
    } else {
        format!("{} / {}", a.ll_boost_enter, b.ll_boost_enter)
    };
    Ok(RtResult {
        config: config.name().into(),
        cores: 2,
        periods: a.periods + b.periods,
        misses: a.misses + b.misses,
        lateness_p50_us: a.p50.max(b.p50) as f64,
        lateness_p99_us: a.p99.max(b.p99) as f64,
        lateness_max_us: a.max_ns.max(b.max_ns) as f64 / 1000.0,
        rt_share,
        hog_share: both("hogvm", "hogvm2").0,
        hog: hog.name().into(),
        clock: icount(),
        ll_share,
        ll_boost_enter,
        cdf,
    })
}

/// The two-core system: two RT guests and two RTOS hogs, all started on core 0 of the
/// two the policy server may use, balancing on (`rtvm2` measures 100 periods more and
/// ends the run, so both summaries are printed).
pub fn description_smp(config: Config, periods: u64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# The soft-real-time experiment's two-core `{}`, written by scripts/xtask/src/rt.rs.",
        config.name()
    );
    let _ = writeln!(s, "[system]\nname = \"rt2-{}\"\nboard = \"virt\"\n", config.name());
    s.push_str(&HEAD.replace(
        "clients = [\"rtvm\", \"hogvm\", \"sched\"]",
        "clients = [\"rtvm\", \"rtvm2\", \"hogvm\", \"hogvm2\", \"sched\"]",
    ));
    let _ = writeln!(
        s,
        "\n[sched]\nserver = \"sched\"\ncores = 2\nbalance = true\n{}",
        config.sched_lines()
    );
    for (name, n, halt) in [("rtvm", periods, false), ("rtvm2", periods + 100, true)] {
        let _ = writeln!(
            s,
            "[[vm]]\nname = \"{name}\"\nguest = {{ package = \"gaon-rtos\" }}\nmemory_mib = 4\nvcpus = 1\n\
             bootargs = \"llboost periods={n}\"\npriority = 100\ndevices = [\"testdev\"]\n\
             halt_on_exit = {halt}\nsched = {{ sbt_us = {SBT_US}, usbt_us = {USBT_US} }}\n"
        );
    }
    for name in ["hogvm", "hogvm2"] {
        let _ = writeln!(
            s,
            "[[vm]]\nname = \"{name}\"\nguest = {{ package = \"gaon-rtos\" }}\nmemory_mib = 4\nbootargs = \"hog\"\n\
             vcpus = 1\npriority = 100\nsched = {{}}\n"
        );
    }
    s
}

/// The two-core run of `config`: its result, and the migrations the server made.
pub fn run_smp(
    target: &Target,
    config: Config,
    periods: u64,
    timeout: Duration,
) -> Result<(RtResult, Vec<String>), String> {
    let name = format!("smp-{}", config.name());
    let output = run_file(target, &name, &description_smp(config, periods), timeout)?;
    let moves = output
        .lines()
        .filter(|l| l.contains("sched: moved vCPU"))
        .map(|l| l.trim().to_string())
        .collect();
    let r = parse_smp(&output, config, Hog::Rtos).map_err(|e| format!("{name}: {e}; output:\n{}", tail(&output)))?;
    Ok((r, moves))
}

/// Write `config`'s description (with `hog`, `periods`, `rt_args`) to `build/rt/`,
/// build it and run it on `target` under `-icount`; the output.
fn run_output(
    target: &Target,
    config: Config,
    hog: Hog,
    periods: u64,
    rt_args: &str,
    timeout: Duration,
) -> Result<String, String> {
    let name = format!(
        "{}-{}{}",
        config.name(),
        hog.name(),
        if rt_args.is_empty() { "" } else { "-x" }
    );
    run_file(target, &name, &description(config, hog, periods, rt_args), timeout)
}

/// Write description `text` as `build/rt/NAME.toml`, build it and run it on `target`
/// under `-icount` (its console output also goes to `build/rt/NAME.log`); the output.
fn run_file(target: &Target, name: &str, text: &str, timeout: Duration) -> Result<String, String> {
    let dir = root_dir().join("build").join("rt");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let image = build_system(&file, &dir.join(name))?;
    let o = run_captured_icount(target, &image, timeout, None)?;
    // The whole console output beside the description, to read afterwards.
    let log = dir.join(format!("{name}.log"));
    std::fs::write(&log, &o.output).map_err(|e| format!("{}: {e}", log.display()))?;
    if o.exit_code != Some(0) {
        return Err(format!(
            "{name}: QEMU ended with {:?}; output:\n{}",
            o.exit_code,
            tail(&o.output)
        ));
    }
    Ok(o.output)
}

/// One run of `config`.
pub fn run(target: &Target, config: Config, hog: Hog, periods: u64, timeout: Duration) -> Result<RtResult, String> {
    let output = run_output(target, config, hog, periods, "", timeout)?;
    parse(&output, config, hog).map_err(|e| format!("{}: {e}; output:\n{}", config.name(), tail(&output)))
}

/// The last lines of `output`.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The table of `results`, as in docs/realtime.md.
pub fn table(results: &[RtResult]) -> String {
    let mut s = String::from(
        "| configuration | cores | periods | misses | lateness p50 (µs) | p99 (µs) | max (µs) | RT share | of it in LL-boost | hog share |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.2} % | {:.2} % | {:.2} % |",
            r.config,
            r.cores,
            r.periods,
            r.misses,
            r.lateness_p50_us,
            r.lateness_p99_us,
            r.lateness_max_us,
            r.rt_share * 100.0,
            r.ll_share * 100.0,
            r.hog_share * 100.0
        );
    }
    s
}

/// How long one run may take: 10 000 periods are 23 s of virtual time, about 23 G
/// instructions, and QEMU runs a few hundred million a second.
const RUN_TIMEOUT: Duration = Duration::from_mins(15);
/// The short test's runs: 200 periods.
const SHORT_TIMEOUT: Duration = Duration::from_mins(2);
/// The two-core run: 10 000 periods (and 10 100) took 28 s on this machine.
const SMP_TIMEOUT: Duration = Duration::from_mins(5);
/// The short test's two-core run: periods of `rtvm` (`rtvm2` runs 100 more).
const SHORT_SMP_PERIODS: u64 = 300;
/// The configuration the experiment runs on.
pub const TARGET: &str = "virt-gicv3-a53";

/// `cargo xtask bench rt [--periods N] [--hog rtos|linux] [--config NAME] [--cores 2]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let periods = arg("--periods").map_or(Ok(10_000), |p| p.parse().map_err(|_| "--periods takes a number"))?;
    match arg("--cores").map(String::as_str) {
        None | Some("1") => {}
        Some("2") => return command_smp(periods),
        Some(c) => return Err(format!("--cores takes 1 or 2, not {c}")),
    }
    let hog = match arg("--hog").map(String::as_str) {
        None | Some("linux") => Hog::Linux,
        Some("rtos") => Hog::Rtos,
        Some(h) => return Err(format!("--hog takes rtos or linux, not {h}")),
    };
    let only = arg("--config");
    let configs: Vec<Config> = CONFIGS
        .into_iter()
        .filter(|c| only.is_none_or(|o| o == c.name()))
        .collect();
    if configs.is_empty() {
        return Err("--config takes fixed, credit, credit_llboost or credit_llboost_borrow".into());
    }
    if hog == Hog::Linux {
        crate::linux::prepare(false)?;
    }
    let target = crate::qemu::resolve(TARGET)?;
    let mut results = Vec::new();
    for c in configs {
        eprintln!(
            "rt: {} with a {} hog, {periods} periods ({TARGET}, -icount shift=0)",
            c.name(),
            hog.name()
        );
        let r = run(&target, c, hog, periods, RUN_TIMEOUT)?;
        eprintln!(
            "rt: {}: {} misses, lateness p99 {} us, max {:.1} us",
            r.config, r.misses, r.lateness_p99_us, r.lateness_max_us
        );
        results.push(r);
    }
    save(results)
}

/// `--cores 2`: the two-core run, credit with LL-boost and balancing (two RT guests,
/// two RTOS hogs, all started on core 0).
fn command_smp(periods: u64) -> Result<(), String> {
    let target = crate::qemu::resolve(TARGET)?;
    let config = Config::CreditLlboost;
    eprintln!(
        "rt: {} on two cores, two RT guests and two hogs started on core 0, {periods} periods ({TARGET}, -icount shift=0)",
        config.name()
    );
    let (r, moves) = run_smp(&target, config, periods, SMP_TIMEOUT)?;
    for m in &moves {
        eprintln!("rt: {m}");
    }
    eprintln!(
        "rt: {} misses, lateness p99 {} us, max {:.1} us",
        r.misses, r.lateness_p99_us, r.lateness_max_us
    );
    save(vec![r])
}

/// Put `results` into `bench/results/rt.json` (replacing the rows of the same
/// configuration and core count), print the table and draw the chart.
fn save(results: Vec<RtResult>) -> Result<(), String> {
    let out = root_dir().join("bench").join("results");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let file = out.join("rt.json");
    let mut all: Vec<RtResult> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.retain(|old| !results.iter().any(|r| r.config == old.config && r.cores == old.cores));
    all.extend(results);
    all.sort_by_key(|r| (r.cores, CONFIGS.iter().position(|c| c.name() == r.config)));
    print!("{}", table(&all));
    let json = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    std::fs::write(&file, json + "\n").map_err(|e| e.to_string())?;
    crate::chart::draw_rt(&all, &out.join("rt-cdf.png"))?;
    eprintln!("rt: wrote bench/results/rt.json and bench/results/rt-cdf.png");
    Ok(())
}

/// The short experiment in `cargo xtask test`: 200 periods beside the RTOS hog. Credit
/// with LL-boost misses no deadline; plain credit, the same run without LL-boost, is
/// later (so the policy server is in control); and a guest spinning in LL-boost gets at
/// most SBT in each window of USBT.
pub fn short_test(target: &Target) -> Vec<String> {
    let mut problems = Vec::new();
    let ll = run(target, Config::CreditLlboost, Hog::Rtos, 200, SHORT_TIMEOUT);
    let credit = run(target, Config::Credit, Hog::Rtos, 200, SHORT_TIMEOUT);
    match (&ll, &credit) {
        (Ok(ll), Ok(credit)) => problems.extend(check_short(ll, credit)),
        (l, c) => problems.extend([l.as_ref().err(), c.as_ref().err()].into_iter().flatten().cloned()),
    }
    match run_output(
        target,
        Config::CreditLlboost,
        Hog::Rtos,
        1,
        " hog hog_ms=3000",
        SHORT_TIMEOUT,
    ) {
        Ok(output) => problems.extend(check_spinner(&output)),
        Err(e) => problems.push(e),
    }
    match run_smp(target, Config::CreditLlboost, SHORT_SMP_PERIODS, SHORT_TIMEOUT) {
        Ok((r, moves)) => problems.extend(check_smp(&r, &moves, SHORT_SMP_PERIODS)),
        Err(e) => problems.push(e),
    }
    problems
}

/// Where each VM of the two-core run ends, from the server's move lines (`sched: moved
/// vCPU slot S (vm=NAME vcpu=N CLASS) from core A to core B`; every VM starts on core 0).
fn final_cores(moves: &[String]) -> Vec<(String, u64)> {
    let mut at: Vec<(String, u64)> = ["rtvm", "rtvm2", "hogvm", "hogvm2"].map(|v| (v.to_string(), 0)).into();
    for m in moves {
        let vm = m.split("(vm=").nth(1).and_then(|r| r.split(' ').next());
        let to = m.rsplit(' ').next().and_then(|c| c.parse().ok());
        if let (Some(vm), Some(to)) = (vm, to)
            && let Some(e) = at.iter_mut().find(|(n, _)| n == vm)
        {
            e.1 = to;
        }
    }
    at
}

/// The short two-core run's checks (host-tested): no misses, lateness within the
/// target, an LL-boost vCPU moved first, and the hogs end on different cores.
fn check_smp(r: &RtResult, moves: &[String], periods: u64) -> Vec<String> {
    let mut p = Vec::new();
    if r.misses != 0 || r.periods != 2 * periods + 100 {
        p.push(format!(
            "two cores: {} misses in {} periods, want 0 in {}",
            r.misses,
            r.periods,
            2 * periods + 100
        ));
    }
    if r.lateness_max_us > 50.0 {
        p.push(format!(
            "two cores: lateness up to {:.1} us, want at most 50",
            r.lateness_max_us
        ));
    }
    match moves.first() {
        Some(m) if m.contains(" ll-boost)") => {}
        Some(m) => p.push(format!("two cores: the first move is not of an LL-boost vCPU: `{m}`")),
        None => p.push("two cores: the policy server moved nothing off the overloaded core".into()),
    }
    let at = final_cores(moves);
    let core = |vm: &str| at.iter().find(|(n, _)| n == vm).map(|e| e.1);
    if core("hogvm") == core("hogvm2") {
        p.push(format!(
            "two cores: both hogs end on core {:?} ({moves:?})",
            core("hogvm")
        ));
    }
    p
}

/// The short runs' checks (host-tested).
fn check_short(ll: &RtResult, credit: &RtResult) -> Vec<String> {
    let mut p = Vec::new();
    for (r, want) in [(ll, "ok"), (credit, "denied")] {
        if r.ll_boost_enter != want {
            p.push(format!(
                "{}: LL_BOOST_ENTER answered `{}`, want `{want}`",
                r.config, r.ll_boost_enter
            ));
        }
    }
    if ll.misses != 0 || ll.periods != 200 {
        p.push(format!(
            "credit + LL-boost: {} misses in {} periods, want 0 in 200",
            ll.misses, ll.periods
        ));
    }
    if ll.lateness_max_us > 50.0 {
        p.push(format!(
            "credit + LL-boost: lateness up to {:.1} us, want at most 50",
            ll.lateness_max_us
        ));
    }
    if credit.lateness_max_us < 10.0 * ll.lateness_max_us.max(1.0) {
        p.push(format!(
            "plain credit's lateness ({:.1} us at most) is not larger than with LL-boost ({:.1} us): is the policy server in control?",
            credit.lateness_max_us, ll.lateness_max_us
        ));
    }
    p
}

/// The spinner's check: its LL-boost time, as the policy server counted it, is at most
/// SBT per window (and it did use it: else the test tests nothing).
fn check_spinner(output: &str) -> Vec<String> {
    let last = output
        .lines()
        .rev()
        .find(|l| l.contains("sched: usage ") && l.contains(" vm=rtvm "));
    let Some(line) = last else {
        return vec!["the LL-boost spinner: no usage report from the policy server".into()];
    };
    let (Some(ll_us), Some(windows)) = (field(line, "ll_us"), field(line, "windows")) else {
        return vec![format!("the LL-boost spinner: cannot read `{line}`")];
    };
    let mut p = Vec::new();
    // The kernel ends a budget at its timer interrupt, a few µs late at most.
    let most = windows * (SBT_US + 5);
    if ll_us > most {
        p.push(format!(
            "the LL-boost spinner used {ll_us} us in LL-boost in {windows} windows: more than SBT ({SBT_US} us) per window"
        ));
    }
    if windows < 100 || ll_us < windows * SBT_US * 9 / 10 {
        p.push(format!(
            "the LL-boost spinner used {ll_us} us in {windows} windows: it did not spin in LL-boost (`{line}`)"
        ));
    }
    if !output.contains("[rtvm] rtos: hog: done") {
        p.push("the LL-boost spinner did not finish".into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
[sched] sched: usage t_us=1000000 vm=rtvm vcpu=0 consumed_us=30000 ll_us=29000 windows=400
[sched] sched: usage t_us=1000000 vm=hogvm vcpu=0 consumed_us=900000 ll_us=0 windows=0
[rtvm] rtos: bad hypercall refused
[rtvm] rtos: ll-boost enter: ok
[rtvm] rtos: periods=200 misses=0 lateness_us p50=2 p99=2 max=2 work_us=60 period_us=2300
[rtvm] rtos: activations=200 late=0 skipped=0 overruns=0 dropped=0 deadline_us=2300 max_lateness_ns=2752 max_lateness_at=115 max_response_us=70
[rtvm] rtos: cdf 1 10
[rtvm] rtos: cdf 2 200
[sched] sched: usage t_us=3000000 vm=rtvm vcpu=0 consumed_us=90000 ll_us=89000 windows=1270
[sched] sched: usage t_us=3000000 vm=hogvm vcpu=0 consumed_us=2800000 ll_us=0 windows=0
[rtvm] rtos: done, status 0
";

    #[test]
    fn a_run_is_read_from_its_output() {
        let r = parse(OUTPUT, Config::CreditLlboost, Hog::Rtos).unwrap();
        assert_eq!((r.periods, r.misses, r.cores), (200, 0, 1));
        assert_eq!((r.lateness_p50_us, r.lateness_p99_us), (2.0, 2.0));
        assert!((r.lateness_max_us - 2.752).abs() < 1e-9);
        assert_eq!(r.cdf, [(1, 10), (2, 200)]);
        assert!((r.rt_share - 0.03).abs() < 1e-9);
        assert!((r.ll_share - 0.03).abs() < 1e-9);
        assert!((r.hog_share - 0.95).abs() < 1e-9);
        assert_eq!(r.config, "credit_llboost");
        // Broken runs are refused.
        assert!(
            parse(
                &OUTPUT.replace("done, status 0", "done, status 1"),
                Config::Fixed,
                Hog::Rtos
            )
            .is_err()
        );
        assert!(parse(&OUTPUT.replace("rtos: periods", "rtos: p"), Config::Fixed, Hog::Rtos).is_err());
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "config",
            "cores",
            "periods",
            "misses",
            "lateness_p50_us",
            "lateness_p99_us",
            "lateness_max_us",
            "rt_share",
            "hog_share",
        ] {
            assert!(json.get(key).is_some(), "rt.json needs `{key}`");
        }
    }

    #[test]
    fn the_two_core_run_adds_both_rt_guests() {
        let two = format!(
            "{OUTPUT}{}",
            OUTPUT
                .replace("[rtvm]", "[rtvm2]")
                .replace("vm=rtvm ", "vm=rtvm2 ")
                .replace("vm=hogvm ", "vm=hogvm2 ")
                .replace("misses=0", "misses=1")
                .replace("cdf 1 10", "cdf 1 5")
        );
        let r = parse_smp(&two, Config::CreditLlboost, Hog::Rtos).unwrap();
        assert_eq!((r.cores, r.periods, r.misses), (2, 400, 1));
        assert_eq!(r.cdf, [(1, 15), (2, 400)]);
        assert!((r.rt_share - 0.03).abs() < 1e-9);
        assert!(
            parse_smp(OUTPUT, Config::CreditLlboost, Hog::Rtos).is_err(),
            "rtvm2 is missing"
        );
    }

    #[test]
    fn the_two_core_checks_want_no_miss_an_ll_boost_move_first_and_the_hogs_apart() {
        let moves = |lines: &[&str]| -> Vec<String> {
            lines
                .iter()
                .map(|l| format!("[sched] sched: moved vCPU slot 0 (vm={l}) from core 0 to core 1"))
                .collect()
        };
        let good = moves(&["rtvm vcpu=0 ll-boost", "rtvm2 vcpu=0 ll-boost", "hogvm vcpu=0 credit"]);
        assert_eq!(
            final_cores(&good),
            [("rtvm", 1), ("rtvm2", 1), ("hogvm", 1), ("hogvm2", 0)].map(|(v, c)| (v.to_string(), c))
        );
        let mut r = parse(OUTPUT, Config::CreditLlboost, Hog::Rtos).unwrap();
        r.periods = 500;
        assert!(check_smp(&r, &good, 200).is_empty());
        assert_eq!(check_smp(&r, &good[..2], 200).len(), 1, "the hogs share a core");
        assert_eq!(check_smp(&r, &good[2..], 200).len(), 1, "a hog moved first");
        assert_eq!(check_smp(&r, &[], 200).len(), 2, "nothing moved");
        r.misses = 1;
        r.lateness_max_us = 60.0;
        assert_eq!(check_smp(&r, &good, 200).len(), 2);
    }

    #[test]
    fn the_short_checks_want_no_miss_and_a_later_plain_credit() {
        let ll = parse(OUTPUT, Config::CreditLlboost, Hog::Rtos).unwrap();
        assert_eq!(ll.ll_boost_enter, "ok");
        let mut credit = ll.clone();
        credit.lateness_max_us = 9_968.0;
        credit.ll_boost_enter = "denied".into();
        assert!(check_short(&ll, &credit).is_empty());
        let mut late = ll.clone();
        late.misses = 3;
        assert_eq!(check_short(&late, &credit).len(), 1);
        let mut same = credit.clone();
        same.lateness_max_us = ll.lateness_max_us;
        assert_eq!(
            check_short(&ll, &same).len(),
            1,
            "plain credit no later: not in control"
        );
        assert_eq!(check_short(&ll, &ll).len(), 2, "and LL-boost not denied there");
    }

    #[test]
    fn the_spinner_check_wants_sbt_per_window_and_no_more() {
        let ok = "[sched] sched: usage t_us=3 vm=rtvm vcpu=0 consumed_us=9 ll_us=200000 windows=1000\n[rtvm] rtos: hog: done";
        assert!(check_spinner(ok).is_empty(), "{:?}", check_spinner(ok));
        assert_eq!(
            check_spinner(&ok.replace("ll_us=200000", "ll_us=400000")).len(),
            1,
            "over SBT"
        );
        assert_eq!(
            check_spinner(&ok.replace("ll_us=200000", "ll_us=2000")).len(),
            1,
            "did not spin"
        );
        assert_eq!(check_spinner("").len(), 1);
    }

    #[test]
    fn every_description_is_a_valid_system() {
        let platforms = root_dir().join("platforms");
        let dir = std::env::temp_dir().join(format!("gaon-rt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for c in CONFIGS {
            let file = dir.join(format!("{}.toml", c.name()));
            std::fs::write(&file, description(c, Hog::Rtos, 200, "")).unwrap();
            let s = gaon_image::System::load(&file, &platforms);
            assert!(s.is_ok(), "{}: {:?}", c.name(), s.err());
        }
        let file = dir.join("smp.toml");
        std::fs::write(&file, description_smp(Config::CreditLlboost, 200)).unwrap();
        let s = gaon_image::System::load(&file, &platforms);
        assert!(s.is_ok(), "two cores: {:?}", s.err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(description(Config::Fixed, Hog::Linux, 1, "").contains("gaon.hog"));
    }
}
