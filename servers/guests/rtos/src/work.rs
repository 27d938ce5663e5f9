//! The measured task's work: a fixed amount of computation (a number of rounds of a
//! xorshift generator), not "spin until so much time passed", so that what delays it
//! (interrupts, the hypervisor, other VMs) shows in its response time. The number of
//! rounds is calibrated at boot so that the work takes `work_us` when nothing
//! interrupts it.

use core::hint::black_box;

/// Run `rounds` rounds of the work; returns its result (so it cannot be left out).
pub fn work(rounds: u64) -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..black_box(rounds) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// Trials at each size while looking for one long enough, and at the chosen size.
const SEARCH_TRIALS: usize = 3;
const FINAL_TRIALS: usize = 7;
/// A calibration trial is at least this many ticks long (80 µs at 62.5 MHz), so that
/// the counter's resolution is small beside it.
const MIN_TRIAL_TICKS: u64 = 5000;
/// The most rounds a trial runs.
const MAX_TRIAL_ROUNDS: u64 = 1 << 32;

/// What the calibration found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// Rounds of [`work`] that take the target time.
    pub rounds: u64,
    /// The trial's size, and the fewest ticks it took.
    pub trial_rounds: u64,
    pub trial_ticks: u64,
}

/// Choose the number of rounds that takes `target_ticks`: `trial(n)` runs `n` rounds
/// and returns the ticks they took. The trial's size doubles (from 256 rounds) until it
/// takes at least the target and [`MIN_TRIAL_TICKS`]; the fastest of several trials at
/// that size counts (a slower one was interrupted or descheduled), and the rounds are
/// scaled from it, rounded to the nearest.
pub fn calibrate(target_ticks: u64, mut trial: impl FnMut(u64) -> u64) -> Calibration {
    let mut fastest = |n: u64, times: usize| (0..times).map(|_| trial(n)).min().unwrap_or(0).max(1);
    let want = target_ticks.max(MIN_TRIAL_TICKS);
    let mut n = 256;
    while n < MAX_TRIAL_ROUNDS && fastest(n, SEARCH_TRIALS) < want {
        n *= 2;
    }
    let ticks = fastest(n, FINAL_TRIALS);
    let rounds = (u128::from(target_ticks) * u128::from(n) + u128::from(ticks) / 2) / u128::from(ticks);
    Calibration {
        rounds: u64::try_from(rounds).unwrap_or(u64::MAX),
        trial_rounds: n,
        trial_ticks: ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_is_a_fixed_computation() {
        assert_eq!(work(0), 0x9e37_79b9_7f4a_7c15);
        assert_eq!(work(1000), work(1000));
        assert_ne!(work(1000), work(1001));
    }

    #[test]
    fn calibration_scales_the_fastest_trial() {
        // 2 ticks a round: 3750 ticks (60 µs at 62.5 MHz) is 1875 rounds.
        let c = calibrate(3750, |n| 2 * n);
        assert_eq!(c.rounds, 1875);
        assert!(c.trial_ticks >= MIN_TRIAL_TICKS);
        assert_eq!(c.trial_rounds, 4096);
        // Interrupted trials (every other one takes far longer) do not count.
        let mut i = 0;
        let c = calibrate(3750, |n| {
            i += 1;
            if i % 2 == 0 { 2 * n + 100_000 } else { 2 * n }
        });
        assert_eq!(c.rounds, 1875);
        // A fraction of a tick a round, rounded to the nearest.
        let c = calibrate(1000, |n| n / 3);
        assert_eq!(c.rounds, 3000);
        assert_eq!(calibrate(0, |n| n).rounds, 0);
    }

    #[test]
    fn calibration_ends_on_a_counter_that_does_not_move() {
        let c = calibrate(3750, |_| 0);
        assert_eq!(c.trial_rounds, MAX_TRIAL_ROUNDS);
        assert_eq!(c.trial_ticks, 1);
    }
}
