//! What the measurement records and prints: a histogram of release-to-start lateness in
//! 1 µs buckets up to 1 ms and 100 µs buckets up to 100 ms (no heap: a fixed array, an
//! overflow bucket and the exact maximum), its
//! percentiles and cumulative distribution, and the counters of deadline misses, skipped
//! releases and overruns; and the summary lines, formatted here so the host tests see
//! exactly what a benchmark tool parses.

use core::fmt;

use crate::time::Clock;

/// Buckets of 1 µs: lateness 0..1 µs, 1..2 µs, ... up to [`FINE_US`] µs.
pub const FINE_US: u64 = 1000;
/// Then buckets of [`COARSE_STEP_US`] up to [`COARSE_END_US`]; later ones go to the
/// overflow bucket.
pub const COARSE_STEP_US: u64 = 100;
/// See [`COARSE_STEP_US`].
pub const COARSE_END_US: u64 = 100_000;
/// All buckets.
pub const BUCKETS: usize = (FINE_US + (COARSE_END_US - FINE_US) / COARSE_STEP_US) as usize;

/// The bucket of `us`, if not in the overflow.
fn bucket(us: u64) -> Option<usize> {
    let i = if us < FINE_US {
        us
    } else if us < COARSE_END_US {
        FINE_US + (us - FINE_US) / COARSE_STEP_US
    } else {
        return None;
    };
    usize::try_from(i).ok()
}

/// The last whole µs of bucket `i`: its durations are shorter than that + 1 µs.
fn bucket_last_us(i: usize) -> u64 {
    let i = i as u64;
    if i < FINE_US {
        i
    } else {
        FINE_US + (i - FINE_US + 1) * COARSE_STEP_US - 1
    }
}

/// A histogram of durations in 1 µs buckets (100 µs ones from 1 ms).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    overflow: u32,
    n: u32,
    max_ns: u64,
}

impl Histogram {
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            overflow: 0,
            n: 0,
            max_ns: 0,
        }
    }

    /// Count a duration of `ns` nanoseconds.
    pub fn record(&mut self, ns: u64) {
        match bucket(ns / 1000).and_then(|i| self.counts.get_mut(i)) {
            Some(c) => *c = c.saturating_add(1),
            None => self.overflow = self.overflow.saturating_add(1),
        }
        self.n = self.n.saturating_add(1);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Durations counted.
    pub const fn count(&self) -> u32 {
        self.n
    }

    /// The longest, exactly (`None` if none was counted).
    pub const fn max_ns(&self) -> Option<u64> {
        if self.n == 0 { None } else { Some(self.max_ns) }
    }

    /// The `p`-th percentile (0 < `p` <= 100) in whole microseconds, by nearest rank:
    /// the bucket of the `ceil(p * n / 100)`-th shortest duration, as its last µs (the
    /// exact maximum, rounded down, if that one overflowed, or if it is the maximum's
    /// bucket). `None` if nothing was counted.
    pub fn percentile_us(&self, p: u32) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = (u64::from(p.min(100)) * u64::from(self.n)).div_ceil(100).max(1);
        let mut below = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            below += u64::from(c);
            if below >= rank {
                return Some(bucket_last_us(i).min(self.max_ns / 1000));
            }
        }
        Some(self.max_ns / 1000)
    }

    /// The cumulative distribution at each non-empty bucket: `(us, k)`, where `k`
    /// durations were shorter than `us + 1` µs (`us` the bucket's last µs, or the
    /// maximum's in its bucket); the overflow bucket, if not empty, is the last, at the
    /// exact maximum (rounded down to µs), with every duration.
    pub fn cdf(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut below = 0u32;
        let max_us = self.max_ns / 1000;
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(move |(i, &c)| {
                below += c;
                (bucket_last_us(i).min(max_us), below)
            });
        let overflow = (self.overflow > 0).then_some((self.max_ns / 1000, self.n));
        buckets.chain(overflow)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// One activation of the measured task, in counter ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Its release's index.
    pub index: u64,
    pub release: u64,
    /// Its absolute deadline.
    pub deadline: u64,
    /// When it started its job and ended it.
    pub start: u64,
    pub end: u64,
    /// Its release was handed out late (the previous job overran).
    pub overrun: bool,
}

/// Everything the reporter keeps.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Release-to-start lateness.
    pub lateness: Histogram,
    /// Activations run, and those that ended after their deadline.
    pub activations: u64,
    pub late: u64,
    /// Releases skipped (their deadline passed before the task could run them).
    pub skipped: u64,
    /// Activations started late because the previous job overran.
    pub overruns: u64,
    /// The release index of the latest start (the first of equals).
    pub max_lateness_index: u64,
    /// The longest release-to-end time.
    pub max_response_ns: u64,
    /// Samples lost (the queue to the reporter was full).
    pub dropped: u64,
}

impl Stats {
    pub const fn new() -> Self {
        Self {
            lateness: Histogram::new(),
            activations: 0,
            late: 0,
            skipped: 0,
            overruns: 0,
            max_lateness_index: 0,
            max_response_ns: 0,
            dropped: 0,
        }
    }

    /// Count an activation.
    pub fn record(&mut self, clock: Clock, s: &Sample) {
        let lateness = clock.ns_from_ticks(s.start.saturating_sub(s.release));
        if self.lateness.max_ns().is_none_or(|max| lateness > max) {
            self.max_lateness_index = s.index;
        }
        self.activations += 1;
        self.lateness.record(lateness);
        self.late += u64::from(s.end > s.deadline);
        self.overruns += u64::from(s.overrun);
        self.max_response_ns = self
            .max_response_ns
            .max(clock.ns_from_ticks(s.end.saturating_sub(s.release)));
    }

    /// Deadlines missed: activations that ended late, and skipped releases.
    pub const fn misses(&self) -> u64 {
        self.late + self.skipped
    }
}

/// The run's parameters, as the summary names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub periods: u64,
    pub period_us: u64,
    pub deadline_us: u64,
    pub work_us: u64,
}

/// A percentile or `-` if there is none.
struct Us(Option<u64>);

impl fmt::Display for Us {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("-"),
        }
    }
}

/// The summary, one line each (each starting `rtos: `):
///
/// ```text
/// rtos: periods=200 misses=0 lateness_us p50=3 p99=7 max=9 work_us=60 period_us=2300
/// rtos: activations=200 late=0 skipped=0 overruns=0 dropped=0 deadline_us=2300 max_lateness_ns=9360 max_lateness_at=17 max_response_us=70
/// rtos: cdf 2 12
/// rtos: cdf 3 150
/// ...
/// ```
///
/// Lateness values are whole microseconds, rounded down (`max` is the exact maximum's);
/// each `cdf US COUNT` line says that COUNT activations started less than US + 1 µs
/// after their release, for every microsecond some activation's lateness falls in (the
/// last line, COUNT = activations, is at the maximum).
pub fn write_summary(w: &mut impl fmt::Write, stats: &Stats, run: &Run) -> fmt::Result {
    let h = &stats.lateness;
    writeln!(
        w,
        "rtos: periods={} misses={} lateness_us p50={} p99={} max={} work_us={} period_us={}",
        run.periods,
        stats.misses(),
        Us(h.percentile_us(50)),
        Us(h.percentile_us(99)),
        Us(h.max_ns().map(|ns| ns / 1000)),
        run.work_us,
        run.period_us,
    )?;
    writeln!(
        w,
        "rtos: activations={} late={} skipped={} overruns={} dropped={} deadline_us={} max_lateness_ns={} max_lateness_at={} max_response_us={}",
        stats.activations,
        stats.late,
        stats.skipped,
        stats.overruns,
        stats.dropped,
        run.deadline_us,
        Us(h.max_ns()),
        stats.max_lateness_index,
        stats.max_response_ns / 1000,
    )?;
    for (us, k) in h.cdf() {
        writeln!(w, "rtos: cdf {us} {k}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_data() {
        let mut h = Histogram::new();
        assert_eq!(h.percentile_us(50), None);
        assert_eq!(h.max_ns(), None);
        // 1..=100 µs, each once (plus 999 ns, in each bucket's upper end).
        for us in 1..=100u64 {
            h.record(us * 1000 + 999);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile_us(50), Some(50));
        assert_eq!(h.percentile_us(99), Some(99));
        assert_eq!(h.percentile_us(100), Some(100));
        assert_eq!(h.percentile_us(1), Some(1));
        assert_eq!(h.percentile_us(0), Some(1), "rank at least 1");
        assert_eq!(h.max_ns(), Some(100_999));
        // 200 samples: 198 at 3 µs, 2 at 7 µs: p99 is the 198th, p100 the 200th.
        let mut h = Histogram::new();
        (0..198).for_each(|_| h.record(3500));
        (0..2).for_each(|_| h.record(7000));
        assert_eq!(h.percentile_us(50), Some(3));
        assert_eq!(h.percentile_us(99), Some(3));
        assert_eq!(h.percentile_us(100), Some(7));
    }

    #[test]
    fn overflow_keeps_the_exact_maximum() {
        let mut h = Histogram::new();
        h.record(0);
        h.record(999);
        h.record(150_000_000);
        h.record(120_000_000);
        assert_eq!(h.percentile_us(50), Some(0));
        assert_eq!(h.percentile_us(75), Some(150_000), "in the overflow: the maximum");
        assert_eq!(h.max_ns(), Some(150_000_000));
        let cdf: Vec<_> = h.cdf().collect();
        assert_eq!(cdf, [(0, 2), (150_000, 4)]);
    }

    #[test]
    fn from_a_millisecond_the_buckets_are_100_us() {
        let mut h = Histogram::new();
        h.record(999_999); // the last fine bucket
        h.record(1_000_000); // the first coarse one: 1000..1100 µs
        h.record(1_099_999);
        h.record(20_050_000); // 20000..20100 µs
        h.record(19_866_544);
        assert_eq!(h.percentile_us(20), Some(999));
        assert_eq!(h.percentile_us(60), Some(1099));
        assert_eq!(h.percentile_us(80), Some(19_899), "19800..19900 µs");
        assert_eq!(h.percentile_us(100), Some(20_050), "the maximum's bucket: the maximum");
        let cdf: Vec<_> = h.cdf().collect();
        assert_eq!(cdf, [(999, 1), (1099, 3), (19_899, 4), (20_050, 5)]);
    }

    #[test]
    fn the_cdf_is_cumulative_over_non_empty_buckets() {
        let mut h = Histogram::new();
        for ns in [2100, 2900, 3000, 9000, 9999, 2000] {
            h.record(ns);
        }
        let cdf: Vec<_> = h.cdf().collect();
        assert_eq!(cdf, [(2, 3), (3, 4), (9, 6)]);
    }

    #[test]
    fn stats_count_misses_overruns_and_response() {
        let clock = Clock::new(62_500_000);
        let mut s = Stats::new();
        let on_time = Sample {
            index: 0,
            release: 1000,
            deadline: 1000 + 143_750,
            start: 1000 + 200, // 3.2 µs
            end: 1000 + 4000,  // 64 µs
            overrun: false,
        };
        s.record(clock, &on_time);
        let late = Sample {
            index: 1,
            start: on_time.deadline + 10,
            end: on_time.deadline + 100,
            overrun: true,
            ..on_time
        };
        s.record(clock, &late);
        s.skipped += 1;
        assert_eq!((s.activations, s.late, s.overruns, s.misses()), (2, 1, 1, 2));
        assert_eq!(s.max_lateness_index, 1);
        assert_eq!(s.lateness.max_ns(), Some(2_300_160));
        assert_eq!(s.max_response_ns, 2_301_600);
        assert_eq!(s.lateness.percentile_us(50), Some(3));
    }

    #[test]
    fn the_summary_is_one_parseable_line_each() {
        let clock = Clock::new(62_500_000);
        let mut s = Stats::new();
        for (i, late) in [200u64, 200, 250, 600].into_iter().enumerate() {
            let release = 1_000_000 * i as u64;
            s.record(
                clock,
                &Sample {
                    index: i as u64,
                    release,
                    deadline: release + 143_750,
                    start: release + late,
                    end: release + late + 3750,
                    overrun: false,
                },
            );
        }
        let run = Run {
            periods: 4,
            period_us: 2300,
            deadline_us: 2300,
            work_us: 60,
        };
        let mut out = String::new();
        write_summary(&mut out, &s, &run).unwrap();
        assert_eq!(
            out,
            "rtos: periods=4 misses=0 lateness_us p50=3 p99=9 max=9 work_us=60 period_us=2300\n\
             rtos: activations=4 late=0 skipped=0 overruns=0 dropped=0 deadline_us=2300 max_lateness_ns=9600 max_lateness_at=3 max_response_us=69\n\
             rtos: cdf 3 2\n\
             rtos: cdf 4 3\n\
             rtos: cdf 9 4\n"
        );
        let mut out = String::new();
        write_summary(&mut out, &Stats::new(), &run).unwrap();
        assert!(
            out.starts_with("rtos: periods=4 misses=0 lateness_us p50=- p99=- max=- "),
            "{out}"
        );
    }
}
