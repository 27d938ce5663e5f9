//! `cargo xtask fuzz`: build the fuzz image (`images/<board>/fuzz.toml`) with this run's
//! parameters and boot it, streaming its progress lines. The fuzzer's untrusted thread
//! makes random syscalls and invocations while the kernel's consistency check runs
//! every few thousand calls (servers/fuzz). The run fails, with the seed and the last
//! call count, if the kernel panics, if nothing is printed for a minute (a hang), if a
//! consistency check fails, if the liveness thread stops, or if QEMU's status is not 0.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::build::{build_system_with, system_file};
use crate::qemu::{self, Target, resolve};
use crate::root_dir;

/// Calls of a run without `--calls`: about a minute under TCG (the fuzzer makes some
/// 70 000 calls a second on the machine this was measured on).
pub const DEFAULT_CALLS: u64 = 4_000_000;
/// Calls of the run `cargo xtask test` makes.
pub const TEST_CALLS: u64 = 100_000;
/// Seed of the run `cargo xtask test` makes (fixed, so a failure reproduces).
pub const TEST_SEED: u64 = 1;
/// The configuration `cargo xtask test` fuzzes.
pub const TEST_CONFIG: &str = "virt-gicv3-a53";
/// Longest silence before the run is declared hung.
const IDLE: Duration = Duration::from_mins(1);

/// One run's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Random syscalls to make.
    pub calls: u64,
    /// The generator's seed.
    pub seed: u64,
    /// Calls between consistency checks.
    pub check_every: u64,
    /// Calls a world lives.
    pub world: u64,
    /// A QEMU configuration or board.
    pub target: String,
    /// Overall limit; by default from the number of calls.
    pub timeout: Option<Duration>,
}

impl Options {
    /// Parse `cargo xtask fuzz` arguments.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            calls: DEFAULT_CALLS,
            seed: time_seed(),
            check_every: 1_000,
            world: 10_000,
            target: "virt".into(),
            timeout: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |what: &str| -> Result<u64, String> {
                let v = it.next().ok_or(format!("{a} needs {what}"))?;
                number(v).ok_or(format!("{a}: `{v}` is not a number"))
            };
            match a.as_str() {
                "--calls" => o.calls = value("a number of calls")?,
                "--seed" => o.seed = value("a seed")?,
                "--check-every" => o.check_every = value("a number of calls")?.max(1),
                "--world" => o.world = value("a number of calls")?.max(1),
                "--timeout" => o.timeout = Some(Duration::from_secs(value("seconds")?)),
                "--board" | "--config" => o.target.clone_from(it.next().ok_or(format!("{a} needs a name"))?),
                s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
                s => o.target = s.to_string(),
            }
        }
        Ok(o)
    }

    /// The `fuzz-params` module's text (servers/fuzz/src/params.rs reads it).
    pub fn module_text(&self) -> String {
        let report = (self.calls / 20).max(10_000);
        format!(
            "calls={}\nseed={:#x}\ncheck_every={}\nworld={}\nreport_every={report}\n",
            self.calls, self.seed, self.check_every, self.world
        )
    }
}

/// A decimal or `0x` hex number, `_` allowed.
fn number(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn time_seed() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// What a finished run reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `fuzz: N calls in T s: R calls/s (seed S)`.
    pub rate_line: Option<String>,
    /// `(passed, failed)` consistency checks.
    pub summary: Option<(u32, u32)>,
    /// The liveness thread progressed in every interval.
    pub live: bool,
    /// The last progress line (where a failed run got to).
    pub last_progress: Option<String>,
    /// The kernel's panic line, if it panicked.
    pub panic: Option<String>,
    /// QEMU's status; `None` if it was killed.
    pub exit_code: Option<i32>,
    /// Why it was killed.
    pub killed: Option<String>,
}

impl Outcome {
    /// Fold one output line in.
    fn line(&mut self, l: &str) {
        if l.contains("kernel panic") || l.contains("panic at") {
            self.panic.get_or_insert_with(|| l.to_string());
        }
        let Some(rest) = l.strip_prefix("fuzz: ") else {
            return;
        };
        if rest.contains(" calls in ") {
            self.rate_line = Some(l.to_string());
        } else if rest.contains(" calls, ") {
            self.last_progress = Some(l.to_string());
        } else if rest.starts_with("liveness:") && rest.contains("progress in every interval") {
            self.live = true;
        } else if let Some(s) = crate::test::summary(l) {
            self.summary = Some(s);
        }
    }

    /// What went wrong, if anything.
    pub fn problems(&self, seed: u64) -> Vec<String> {
        let at = self
            .last_progress
            .as_deref()
            .unwrap_or("before the first progress line");
        let mut p = Vec::new();
        if let Some(l) = &self.panic {
            p.push(format!(
                "the kernel panicked (seed {seed:#x}; last progress: {at}): {l}"
            ));
        }
        if let Some(k) = &self.killed {
            p.push(format!("{k} (seed {seed:#x}; last progress: {at})"));
        }
        match self.summary {
            Some((_, 0)) => {}
            Some((passed, failed)) => p.push(format!(
                "{failed} consistency checks failed, {passed} passed (seed {seed:#x})"
            )),
            None if self.panic.is_none() && self.killed.is_none() => {
                p.push(format!(
                    "no `N passed, N failed` line (seed {seed:#x}; last progress: {at})"
                ));
            }
            None => {}
        }
        if self.summary.is_some() && !self.live {
            p.push(format!("the liveness thread stopped making progress (seed {seed:#x})"));
        }
        if self.summary.is_some() && self.rate_line.is_none() {
            p.push("no `calls in` line: not every call was made".into());
        }
        match self.exit_code {
            Some(0) | None => {}
            Some(c) => p.push(format!("QEMU exited with status {c}")),
        }
        p
    }
}

/// Build the image for `o` and boot it; `echo` prints the progress lines as they come.
/// The whole output goes to `build/<board>/fuzz/fuzz.log`.
pub fn run(o: &Options, echo: bool) -> Result<(Outcome, PathBuf, Duration), String> {
    let target: Target = resolve(&o.target)?;
    let board = target.board.board.name.clone();
    let out_dir = root_dir().join("build").join(&board).join("fuzz");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let params = out_dir.join("fuzz-params");
    fs::write(&params, o.module_text()).map_err(|e| format!("{}: {e}", params.display()))?;
    let image = build_system_with(
        &system_file(&board, "fuzz"),
        &out_dir,
        &[("fuzz-params".to_string(), params)],
    )?;
    let log_path = out_dir.join("fuzz.log");
    let mut log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    // Generous: a tenth of the measured rate, plus building and booting.
    let timeout = o.timeout.unwrap_or(Duration::from_secs(o.calls / 3_000 + 120));
    let mut cmd = qemu::command(&target, &image);
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let start = Instant::now();
    let mut last_line = Instant::now();
    let mut out = Outcome::default();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let line = line.replace('\r', "");
                let _ = writeln!(log, "{line}");
                last_line = Instant::now();
                if echo
                    && (line.starts_with("fuzz:")
                        || line.contains("panic")
                        || line.starts_with("kernel: consistency check"))
                {
                    eprintln!("{line}");
                }
                out.line(&line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            // Drain what is left.
            for line in rx.try_iter() {
                let line = line.replace('\r', "");
                let _ = writeln!(log, "{line}");
                if echo && line.starts_with("fuzz:") {
                    eprintln!("{line}");
                }
                out.line(&line);
            }
            out.exit_code = status.code();
            break;
        }
        let why = if last_line.elapsed() > IDLE {
            Some(format!(
                "no output for {} s: the kernel or the fuzzer hung",
                IDLE.as_secs()
            ))
        } else if start.elapsed() > timeout {
            Some(format!("timed out after {} s", timeout.as_secs()))
        } else {
            None
        };
        if let Some(why) = why {
            let _ = child.kill();
            let _ = child.wait();
            out.killed = Some(why);
            break;
        }
    }
    if out.exit_code.is_none() && out.killed.is_none() {
        out.exit_code = child.wait().map_err(|e| e.to_string())?.code();
    }
    Ok((out, log_path, start.elapsed()))
}

/// `cargo xtask fuzz [--calls N] [--seed S] [--check-every K] [--world W] [--timeout SECS] [CONFIG|BOARD]`.
pub fn fuzz_command(args: &[String]) -> Result<(), String> {
    let o = Options::parse(args)?;
    eprintln!(
        "fuzz: {} calls on {} with seed {:#x} (whole output: build/BOARD/fuzz/fuzz.log)",
        o.calls, o.target, o.seed
    );
    let (out, log, wall) = run(&o, true)?;
    let problems = out.problems(o.seed);
    eprintln!(
        "fuzz: QEMU ran for {:.1} s of wall-clock time ({} calls/s, boot included)",
        wall.as_secs_f64(),
        u128::from(o.calls) * 1000 / wall.as_millis().max(1)
    );
    if let Some((p, f)) = out.summary {
        println!("{p} passed, {f} failed");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\nfull output: {}", problems.join("\n"), log.display()))
    }
}

/// What the test command calls its fuzz run.
pub fn test_name() -> String {
    format!("fuzz ({TEST_CALLS} calls, consistency checks, liveness) on {TEST_CONFIG}")
}

/// The test command's fuzz run: [`TEST_CALLS`] calls on [`TEST_CONFIG`].
pub fn test_check() -> Vec<String> {
    eprintln!("== fuzz: {TEST_CALLS} random syscalls on {TEST_CONFIG} (seed {TEST_SEED})");
    let o = Options {
        calls: TEST_CALLS,
        seed: TEST_SEED,
        check_every: 1_000,
        world: 10_000,
        target: TEST_CONFIG.into(),
        timeout: Some(Duration::from_mins(2)),
    };
    match run(&o, false) {
        Ok((out, log, _)) => {
            let p = out.problems(o.seed);
            if p.is_empty() {
                if let Some(r) = &out.rate_line {
                    eprintln!("     {r}");
                }
                p
            } else {
                p.into_iter()
                    .chain([format!("full output: {}", log.display())])
                    .collect()
            }
        }
        Err(e) => vec![e],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_and_become_the_module_text() {
        let o = Options::parse(&args("--calls 1_000 --seed 0x2a zcu102 --check-every 100")).unwrap();
        assert_eq!(
            (o.calls, o.seed, o.check_every, o.target.as_str()),
            (1000, 42, 100, "zcu102")
        );
        assert_eq!(
            o.module_text(),
            "calls=1000\nseed=0x2a\ncheck_every=100\nworld=10000\nreport_every=10000\n"
        );
        assert!(Options::parse(&args("--calls")).is_err());
        assert!(Options::parse(&args("--calls x")).is_err());
        assert!(Options::parse(&args("--bogus 1")).is_err());
        let o = Options::parse(&args("--config virt-gicv2-a72")).unwrap();
        assert_eq!(o.target, "virt-gicv2-a72");
    }

    #[test]
    fn outcome_needs_every_line_and_names_the_seed() {
        let mut o = Outcome::default();
        for l in [
            "fuzz: 10000 calls, 30000 calls/s, liveness 5 (+5), checks 7 passed, 0 failed",
            "fuzz: 20000 calls in 1.0 s: 20000 calls/s (seed 0x1)",
            "fuzz: liveness: 9 turns, progress in every interval",
            "fuzz: 14 passed, 0 failed",
        ] {
            o.line(l);
        }
        o.exit_code = Some(0);
        assert_eq!(o.problems(1), Vec::<String>::new());
        assert_eq!(o.summary, Some((14, 0)), "not the progress line's counts");

        let mut bad = Outcome::default();
        bad.line("fuzz: 10000 calls, 30000 calls/s, liveness 5 (+5), checks 7 passed, 0 failed");
        bad.line("*** kernel panic at kernel/core/src/cdt.rs:120: linked slot exists");
        bad.exit_code = Some(2);
        let p = bad.problems(7);
        assert!(
            p[0].contains("panicked") && p[0].contains("0x7") && p[0].contains("10000 calls"),
            "{p:?}"
        );
        assert!(p.iter().any(|x| x.contains("status 2")));

        let mut hung = Outcome {
            killed: Some("no output for 60 s".into()),
            ..Outcome::default()
        };
        hung.line("fuzz: 5 passed, 1 failed");
        let p = hung.problems(3);
        assert!(p.iter().any(|x| x.contains("no output")));
        assert!(p.iter().any(|x| x.contains("1 consistency checks failed")));
        assert!(p.iter().any(|x| x.contains("liveness")));
    }
}
