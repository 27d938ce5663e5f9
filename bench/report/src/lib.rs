//! What the Gaon benchmarks (`bench/gaon`, `no_std`) and their Linux baseline
//! (`bench/linux`) share: the samples a case takes, its units, how a sample's counter
//! ticks become a per-operation value, and the lines they print, which the harness
//! (`scripts/xtask/src/bench.rs`) parses:
//!
//! `bench: case=NAME unit=UNIT iterations=N min=X median=X max=X`
//! `bench: case=NAME FAILED: reason`
//! `bench: N passed, N failed`
#![no_std]
#![deny(unsafe_code)]

use core::fmt;

/// Samples per case in a full run (odd, so the median is a sample).
pub const SAMPLES: usize = 25;
/// Samples per case in a quick run (the test command's check).
pub const QUICK_SAMPLES: usize = 3;
/// Operations per sample in a quick run.
pub const QUICK_BATCH: u64 = 2;

/// What a case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Instructions per operation.
    Instructions,
    /// Megabytes (10^6 bytes) per million instructions, for `bytes` per sample.
    MbPerMinstr {
        /// Bytes one sample moves.
        bytes: u64,
    },
}

impl Unit {
    /// The name in the result line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Instructions => "instructions",
            Self::MbPerMinstr { .. } => "MB/Minstr",
        }
    }

    /// A sample's value, times 1000: `batch` operations took `ticks` counter ticks of
    /// `per_tick` instructions each. 0 if there is nothing to divide by.
    pub fn per_op(self, ticks: u64, per_tick: u64, batch: u64) -> u64 {
        let instr = ticks.saturating_mul(per_tick);
        match self {
            Self::Instructions => instr.saturating_mul(1000).checked_div(batch).unwrap_or(0),
            Self::MbPerMinstr { bytes } => bytes.saturating_mul(1000).checked_div(instr).unwrap_or(0),
        }
    }
}

/// The result line of a case that ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    name: &'a str,
    unit: Unit,
    iterations: u64,
    /// Smallest, median and largest value, times 1000.
    min: u64,
    median: u64,
    max: u64,
}

impl<'a> Line<'a> {
    /// The line of case `name`, whose samples of `batch` operations gave `values`
    /// (times 1000; sorted here). `None` without a sample.
    pub fn new(name: &'a str, unit: Unit, batch: u64, values: &mut [u64]) -> Option<Self> {
        values.sort_unstable();
        Some(Self {
            name,
            unit,
            iterations: batch.saturating_mul(values.len() as u64),
            min: *values.first()?,
            median: values[values.len() / 2],
            max: *values.last()?,
        })
    }
}

/// A value times 1000 as a decimal with three places.
struct Milli(u64);

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bench: case={} unit={} iterations={} min={} median={} max={}",
            self.name,
            self.unit.name(),
            self.iterations,
            Milli(self.min),
            Milli(self.median),
            Milli(self.max)
        )
    }
}

/// The line of a case that failed.
#[derive(Clone, Copy, Debug)]
pub struct Failed<'a> {
    /// The case.
    pub name: &'a str,
    /// Why.
    pub why: &'a str,
}

impl fmt::Display for Failed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bench: case={} FAILED: {}", self.name, self.why)
    }
}

/// Passed and failed cases, and the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Cases that ran.
    pub passed: u32,
    /// Cases that failed.
    pub failed: u32,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bench: {} passed, {} failed", self.passed, self.failed)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;

    use super::*;

    #[test]
    fn per_operation_values_are_in_thousandths() {
        // 10 ticks of 16 instructions for 3 operations: 53.333 instructions each.
        assert_eq!(Unit::Instructions.per_op(10, 16, 3), 53_333);
        // 1 MB in 2 million instructions: 0.5 MB per million instructions.
        assert_eq!(Unit::MbPerMinstr { bytes: 1_000_000 }.per_op(125_000, 16, 1), 500);
        assert_eq!(Unit::Instructions.per_op(10, 16, 0), 0, "no operations");
        assert_eq!(Unit::MbPerMinstr { bytes: 5 }.per_op(0, 16, 1), 0, "no time");
    }

    #[test]
    fn the_result_line_has_min_median_and_max_of_the_samples() {
        let mut values = [3_500, 1_000, 2_250];
        let line = Line::new("ipc", Unit::Instructions, 4, &mut values).unwrap();
        assert_eq!(
            format!("{line}"),
            "bench: case=ipc unit=instructions iterations=12 min=1.000 median=2.250 max=3.500"
        );
        assert_eq!(Line::new("none", Unit::Instructions, 4, &mut []), None);
        assert_eq!(
            format!("{}", Failed { name: "x", why: "lost" }),
            "bench: case=x FAILED: lost"
        );
        assert_eq!(
            format!("{}", Tally { passed: 3, failed: 1 }),
            "bench: 3 passed, 1 failed"
        );
    }
}
