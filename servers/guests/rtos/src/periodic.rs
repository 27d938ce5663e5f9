//! Periodic releases: a task with period T and relative deadline D (D <= T) is
//! released at `start + k*T` for k = 0, 1, 2, ..., each release computed from `start`
//! (never by adding T to the previous one, so nothing drifts, and a period that is no
//! whole number of ticks is still right on average), and job k is due at
//! `start + k*T + D`.
//!
//! When a job ends after the next release (an overrun), the task asks for its next job
//! late. Then every release whose deadline has already passed is skipped (counted, not
//! run), and the first one whose deadline is still ahead runs at once, late.

use crate::time::{Clock, mul_div};

/// A periodic task's releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periodic {
    clock: Clock,
    /// Release 0, in counter ticks.
    start: u64,
    period_us: u64,
    deadline_us: u64,
    /// The index of the next release not handed out yet.
    next: u64,
}

/// One release of a periodic task (a job), as [`Periodic::next_job`] hands it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// Its release's index k (0 for the first).
    pub index: u64,
    /// Its release time and absolute deadline, in counter ticks.
    pub release: u64,
    pub deadline: u64,
    /// Releases skipped just before this one: their deadlines had passed when the task
    /// asked for its next job.
    pub skipped: u64,
    /// The task asked for this job after its release: the previous job (or the task's
    /// start) overran, and this one runs at once, late.
    pub overrun: bool,
}

impl Job {
    /// How many of the releases skipped before this job have an index below `limit`
    /// (a run of `limit` releases counts only those).
    pub const fn skipped_below(&self, limit: u64) -> u64 {
        let first = self.index - self.skipped;
        let (a, b) = (
            if first < limit { first } else { limit },
            if self.index < limit { self.index } else { limit },
        );
        b - a
    }
}

impl Periodic {
    /// Releases at `start + k * period_us`, each due `deadline_us` after it.
    pub const fn new(clock: Clock, start: u64, period_us: u64, deadline_us: u64) -> Self {
        Self {
            clock,
            start,
            period_us,
            deadline_us,
            next: 0,
        }
    }

    /// The time `us` microseconds after release 0.
    const fn at(&self, us: u64) -> u64 {
        self.start.saturating_add(mul_div(us, self.clock.hz, 1_000_000))
    }

    /// Release `k`'s time.
    pub const fn release(&self, k: u64) -> u64 {
        self.at(k.saturating_mul(self.period_us))
    }

    /// Job `k`'s absolute deadline.
    pub const fn deadline(&self, k: u64) -> u64 {
        self.at(k.saturating_mul(self.period_us).saturating_add(self.deadline_us))
    }

    /// The index of the next release not handed out yet.
    pub const fn next_index(&self) -> u64 {
        self.next
    }

    /// The task asks for its next job at `now` (at its start, or when its job ends): the
    /// next release not handed out yet whose deadline is after `now`, skipping those
    /// whose deadline has passed. It runs at once if its release is not after `now`,
    /// else the task waits until then.
    pub fn next_job(&mut self, now: u64) -> Job {
        let first = self.next;
        let mut k = first;
        if self.deadline(k) <= now && self.period_us > 0 {
            // Far behind (a VM stopped for a while): start near the answer.
            let elapsed = self.clock.us_from_ticks(now.saturating_sub(self.start));
            k = k.max((elapsed.saturating_sub(self.deadline_us) / self.period_us).saturating_sub(1));
        }
        while self.deadline(k) <= now {
            k += 1;
        }
        self.next = k + 1;
        let release = self.release(k);
        Job {
            index: k,
            release,
            deadline: self.deadline(k),
            skipped: k - first,
            overrun: release < now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock::new(62_500_000);
    /// 2.3 ms at 62.5 MHz.
    const T: u64 = 143_750;

    #[test]
    fn releases_do_not_drift() {
        let p = Periodic::new(CLOCK, 1000, 2300, 2300);
        assert_eq!(p.release(0), 1000);
        assert_eq!(p.release(1), 1000 + T);
        assert_eq!(p.release(1_000_000), 1000 + 1_000_000 * T);
        assert_eq!(p.deadline(0), 1000 + T);
        // A period that is no whole number of ticks: 1 µs at 19.2 MHz is 19.2 ticks;
        // release k is at floor(19.2 k), so five periods are exactly 96 ticks.
        let q = Periodic::new(Clock::new(19_200_000), 0, 1, 1);
        let r: Vec<u64> = (0..6).map(|k| q.release(k)).collect();
        assert_eq!(r, [0, 19, 38, 57, 76, 96]);
        assert_eq!(q.release(1000), 19_200);
    }

    #[test]
    fn a_task_on_time_waits_for_each_release() {
        let mut p = Periodic::new(CLOCK, 5000, 2300, 2000);
        // Asked before the first release: job 0, not late.
        let j = p.next_job(100);
        assert_eq!((j.index, j.release, j.skipped, j.overrun), (0, 5000, 0, false));
        assert_eq!(j.deadline, 5000 + 125_000);
        // Its job ends within the period: job 1, at its release.
        let j = p.next_job(5000 + 4000);
        assert_eq!((j.index, j.release, j.skipped, j.overrun), (1, 5000 + T, 0, false));
        // Asked exactly at the release: it runs at once, but it is not an overrun.
        let j = p.next_job(5000 + 2 * T);
        assert_eq!((j.index, j.skipped, j.overrun), (2, 0, false));
    }

    #[test]
    fn an_overrun_runs_the_next_job_late_or_skips_releases_whose_deadline_passed() {
        let mut p = Periodic::new(CLOCK, 0, 2300, 2300);
        assert_eq!(p.next_job(0).index, 0);
        // Job 0 ends after release 1 but before its deadline: job 1 runs at once, late.
        let j = p.next_job(T + 10);
        assert_eq!((j.index, j.release, j.skipped, j.overrun), (1, T, 0, true));
        // Job 1 ends after release 3: releases 2 (deadline 3T, passed) is skipped, 3
        // runs late.
        let j = p.next_job(3 * T + 5);
        assert_eq!((j.index, j.release, j.skipped, j.overrun), (3, 3 * T, 1, true));
        // Ending exactly at a deadline: that release is skipped too (its deadline is
        // not after now), the next one is on time.
        let j = p.next_job(5 * T);
        assert_eq!((j.index, j.skipped, j.overrun), (5, 1, false));
        // Far behind: everything up to now is skipped in one step.
        let j = p.next_job(1_000_000 * T + 7);
        assert_eq!((j.index, j.skipped, j.overrun), (1_000_000, 1_000_000 - 6, true));
        assert_eq!(p.next_index(), 1_000_001);
    }

    #[test]
    fn a_constrained_deadline_skips_earlier() {
        // D = T/2: a job asked for after its release's deadline is skipped.
        let mut p = Periodic::new(CLOCK, 0, 2300, 1150);
        assert_eq!(p.next_job(0).index, 0);
        let j = p.next_job(T + T / 2 + 1);
        assert_eq!((j.index, j.release, j.skipped, j.overrun), (2, 2 * T, 1, false));
    }

    #[test]
    fn skipped_releases_are_counted_within_a_run() {
        let j = Job {
            index: 10,
            release: 0,
            deadline: 0,
            skipped: 4,
            overrun: true,
        };
        // Releases 6..10 were skipped.
        assert_eq!(j.skipped_below(200), 4);
        assert_eq!(j.skipped_below(8), 2);
        assert_eq!(j.skipped_below(6), 0);
        assert_eq!(j.skipped_below(10), 4);
    }
}
