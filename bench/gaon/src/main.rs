//! The native benchmarks (LMBench-style), run as the root server of the bench image.
//!
//! Every case is timed with CNTVCT_EL0, the clock the Linux counterparts use too. Under
//! QEMU's `-icount shift=0` the virtual clock advances one nanosecond per instruction,
//! so a counter tick is `1e9 / CNTFRQ_EL0` instructions and every result is an
//! instruction count (`calibrate` checks that). A case runs `SAMPLES` samples of a batch
//! of operations each and prints one line per case:
//!
//! `bench: case=NAME unit=UNIT iterations=N min=X median=X max=X`
//!
//! (per operation, over the samples), then the summary `bench: N passed, N failed`
//! and halts with status 0 if nothing failed. A boot module `bench-config` holding
//! `quick` makes every case run a few iterations only (the test command's check);
//! `only=NAME batch=N` runs one case with `N` operations per sample (for profiling);
//! `trace=MASK` turns on the kernel's trace classes `MASK` (`gaon_abi::trace::Class`
//! bits) for the whole run and empties the rings before every sample, outside its
//! timing (what tracing costs, docs/trace.md).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod cases;
#[cfg(target_os = "none")]
#[path = "../common.rs"]
mod common;
#[cfg(target_os = "none")]
mod env;
#[cfg(target_os = "none")]
mod vm;

#[cfg(target_os = "none")]
mod app {
    use libl4::debug_println;

    use crate::env::{Env, ROOT_TCB};

    /// The root server's TraceControl (`trace=MASK`).
    const TRACE: libl4::cap::TraceControl = libl4::cap::TraceControl(libl4::gaon_abi::bootinfo::slot::TRACE_CONTROL);

    pub use gaon_bench_report::Unit;
    use gaon_bench_report::{Failed, Line, QUICK_BATCH, QUICK_SAMPLES, SAMPLES, Tally};

    /// Runs cases and prints their results.
    #[derive(Debug)]
    pub struct Runner {
        /// Only check that every case works.
        pub quick: bool,
        /// Run only this case (`only=NAME` in the config), with `batch` operations per
        /// sample if given (`batch=N`): for profiling one path.
        only: Option<&'static str>,
        batch: Option<u64>,
        /// Instructions per counter tick.
        pub per_tick: u64,
        tally: Tally,
        /// The kernel records events (`trace=MASK`): empty its rings before each sample.
        trace: bool,
    }

    impl Runner {
        /// Samples per case.
        pub fn samples(&self) -> usize {
            if self.quick { QUICK_SAMPLES } else { SAMPLES }
        }

        /// Operations per sample: `full` in a full run, `QUICK_BATCH` in a quick one,
        /// or the configuration's `batch=N`.
        pub fn batch(&self, full: u64) -> u64 {
            match self.batch {
                Some(b) => b,
                None if self.quick => QUICK_BATCH,
                None => full,
            }
        }

        /// Run `case`: `sample(batch)` performs `batch` operations and returns the
        /// counter ticks they took.
        pub fn run(
            &mut self,
            env: &mut Env,
            name: &str,
            unit: Unit,
            batch: u64,
            mut sample: impl FnMut(&mut Env, u64) -> Result<u64, crate::env::Fail>,
        ) {
            if self.only.is_some_and(|o| o != name) {
                return;
            }
            let batch = self.batch(batch);
            let mut values = heapless::Vec::<u64, SAMPLES>::new();
            // One untimed sample first: page tables, first touches, lazy FP state.
            let mut result = sample(env, batch).map(|_| ());
            while result.is_ok() && values.len() < self.samples() {
                self.empty_trace_rings();
                result = sample(env, batch).map(|ticks| {
                    let _ = values.push(unit.per_op(ticks, self.per_tick, batch));
                });
            }
            match (result, Line::new(name, unit, batch, &mut values)) {
                (Ok(()), Some(line)) => {
                    self.tally.passed += 1;
                    debug_println!("{line}");
                }
                (Err(why), _) => self.fail(name, why),
                (Ok(()), None) => self.fail(name, "no samples"),
            }
        }

        /// With `trace=MASK`: give every ring's records back, so none is dropped (a full
        /// ring drops new records, which costs less than recording them).
        fn empty_trace_rings(&self) {
            if self.trace {
                for cpu in 0..libl4::gaon_abi::trace::RING_COUNT as u64 {
                    let _ = TRACE.consume(cpu, u64::MAX);
                }
            }
        }

        /// Record a failure found outside `run`.
        pub fn fail(&mut self, name: &str, why: &str) {
            self.tally.failed += 1;
            debug_println!("{}", Failed { name, why });
        }
    }

    /// The `bench-config` module's words: `quick`, `only=NAME`, `batch=N`.
    fn config() -> impl Iterator<Item = &'static str> {
        let text = libl4::start::boot_module("bench-config").unwrap_or_default();
        core::str::from_utf8(text).unwrap_or_default().split_whitespace()
    }

    pub fn run() -> u8 {
        let Some(bi) = libl4::start::boot_info() else {
            debug_println!("bench: not started as the root server");
            return 1;
        };
        let mut env = match Env::new(bi) {
            Ok(e) => e,
            Err(why) => {
                debug_println!("bench: setup failed: {why}");
                return 1;
            }
        };
        // The benchmark thread runs at 100; servers and waiters are placed around it.
        if ROOT_TCB.set_priority(crate::cases::MAIN_PRIO, ROOT_TCB).is_err() {
            debug_println!("bench: cannot set the root's priority");
            return 1;
        }
        let freq = crate::cases::counter_hz();
        let mut r = Runner {
            quick: config().any(|w| w == "quick"),
            only: config().find_map(|w| w.strip_prefix("only=")),
            batch: config().find_map(|w| w.strip_prefix("batch=")?.parse().ok()),
            per_tick: 1_000_000_000 / freq.max(1),
            tally: Tally::default(),
            trace: false,
        };
        if let Some(mask) = config().find_map(|w| w.strip_prefix("trace=")) {
            let mask = u64::from_str_radix(mask.trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
            match TRACE.set_mask(mask) {
                Ok(_) => r.trace = true,
                Err(e) => {
                    debug_println!("bench: the kernel refused trace classes {mask:#x}: {e:?}");
                    return 1;
                }
            }
            debug_println!("bench: tracing classes {mask:#x}");
        }
        debug_println!(
            "bench: {} run; counter {} Hz, {} instructions per tick under -icount shift=0",
            if r.quick { "quick" } else { "full" },
            freq,
            r.per_tick
        );
        crate::cases::all(&mut r, &mut env);
        debug_println!("{}", r.tally);
        u8::from(r.tally.failed != 0)
    }
}

#[cfg(target_os = "none")]
pub use app::{Runner, Unit};

libl4::main!(app::run);
