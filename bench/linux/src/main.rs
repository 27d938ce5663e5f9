//! The Linux baseline of Gaon's native benchmarks (bench/gaon): the same LMBench-style
//! cases with Linux's nearest analogues (processes, threads, pipes, unix sockets,
//! eventfd, sched_yield, hrtimers, mmap), timed the same way and printed in the same
//! format, so that the harness can put the two side by side.
//!
//! It runs as a static binary in an initramfs under QEMU with `-icount shift=0`, where
//! the virtual clock advances one nanosecond per guest instruction: every case is timed
//! with CNTVCT_EL0, a counter tick is `1e9 / CNTFRQ_EL0` instructions, and every result
//! is an instruction count (`calibrate_2M_instructions` checks that). A case runs one
//! untimed sample, then `SAMPLES` samples of a batch of operations, and prints
//!
//! `bench: case=NAME unit=UNIT iterations=N min=X median=X max=X`
//!
//! (per operation, over the samples), or `bench: case=NAME FAILED: reason`; then the
//! summary `bench: N passed, N failed`, and exits with status 1 if anything failed.
//! Before anything it prints `bench: started at counter N`, the virtual counter as it
//! starts: the harness's `linux_boot_to_shell`.
//! `--quick` runs 3 samples of batches of 2 (only to check that every case works).
//!
//! Everything runs on CPU 0 under SCHED_FIFO: the benchmark process at `MAIN_PRIO`,
//! servers and waiters above or below it as each case says. On the host (x86_64) it
//! builds and runs too, with CLOCK_MONOTONIC nanoseconds as the counter, as a smoke test.
#![deny(unsafe_code)]

mod cases;
mod sys;

use std::process::ExitCode;

pub use gaon_bench_report::Unit;
use gaon_bench_report::{Failed, Line, QUICK_BATCH, QUICK_SAMPLES, SAMPLES, Tally};

/// Why a case could not be set up or gave a wrong answer.
pub type Fail = String;

/// Runs cases and prints their results.
#[derive(Debug)]
pub struct Runner {
    /// Only check that every case works.
    pub quick: bool,
    /// Instructions per counter tick.
    pub per_tick: u64,
    tally: Tally,
}

impl Runner {
    /// Samples per case.
    pub fn samples(&self) -> usize {
        if self.quick { QUICK_SAMPLES } else { SAMPLES }
    }

    /// Operations per sample: `full` in a full run, `QUICK_BATCH` in a quick one.
    pub fn batch(&self, full: u64) -> u64 {
        if self.quick { QUICK_BATCH } else { full }
    }

    /// Run `case`: `sample(batch)` performs `batch` operations and returns the counter
    /// ticks they took.
    pub fn run(&mut self, name: &str, unit: Unit, batch: u64, mut sample: impl FnMut(u64) -> Result<u64, Fail>) {
        let batch = self.batch(batch);
        let mut values = Vec::with_capacity(self.samples());
        // One untimed sample first: page faults, first touches, lazy FP state, caches.
        let mut result = sample(batch).map(|_| ());
        while result.is_ok() && values.len() < self.samples() {
            result = sample(batch).map(|ticks| values.push(unit.per_op(ticks, self.per_tick, batch)));
        }
        match (result, Line::new(name, unit, batch, &mut values)) {
            (Ok(()), Some(line)) => {
                self.tally.passed += 1;
                println!("{line}");
            }
            (Err(why), _) => self.fail(name, &why),
            (Ok(()), None) => self.fail(name, "no samples"),
        }
    }

    /// Record a failure found outside `run`.
    pub fn fail(&mut self, name: &str, why: &str) {
        self.tally.failed += 1;
        println!("{}", Failed { name, why });
    }
}

/// Pin to CPU 0, become SCHED_FIFO and let SCHED_FIFO mean what it says.
fn setup() -> Result<(), String> {
    sys::pin_to_cpu0().map_err(|e| format!("sched_setaffinity: {e}"))?;
    // Linux throttles real-time tasks to 95% of every second by default: with the
    // benchmark always runnable that would idle the CPU for 50 ms each second, which
    // icount turns into 50 M "instructions" inside some sample. Gaon has no such limit.
    #[cfg(target_arch = "aarch64")]
    std::fs::write("/proc/sys/kernel/sched_rt_runtime_us", "-1")
        .map_err(|e| format!("cannot turn off real-time throttling: {e}"))?;
    sys::set_fifo(cases::MAIN_PRIO).map_err(|e| format!("SCHED_FIFO: {e} (run as root)"))
}

fn main() -> ExitCode {
    // First of all: how far the machine got before this program ran (the harness adds
    // the counter's offset, a VM's, and makes it `linux_boot_to_shell`).
    println!("bench: started at counter {}", sys::now());
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    if let Err(why) = setup() {
        if cfg!(target_arch = "aarch64") {
            println!("bench: setup failed: {why}");
            return ExitCode::FAILURE;
        }
        eprintln!("gaon-bench-linux: {why}; going on without it (host smoke run)");
    }
    let freq = sys::counter_hz();
    let mut r = Runner {
        quick,
        per_tick: 1_000_000_000 / freq.max(1),
        tally: Tally::default(),
    };
    println!(
        "bench: linux {} run; counter {} Hz, {} instructions per tick under -icount shift=0",
        if quick { "quick" } else { "full" },
        freq,
        r.per_tick
    );
    cases::all(&mut r);
    println!("{}", r.tally);
    if r.tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
