//! The run's settings from the bootargs (`chosen/bootargs` of the device tree, the VM's
//! `bootargs` in the system description): words separated by spaces, in any order.
//!
//! | word | meaning | default |
//! |---|---|---|
//! | `period_us=N` | the measured task's period | 2300 |
//! | `work_us=N` | its work per activation, calibrated at boot | 60 |
//! | `deadline_us=N` | its relative deadline, at most the period | the period |
//! | `periods=N` | releases measured | 200 |
//! | `llboost` | enter LL-boost before the first release, leave after the last | off |
//! | `trace` | `TRACE_TASK_SWITCH` on every task switch, `TRACE_EVENT` at each job's start and end | off |
//! | `hog` | no tasks: compute for ever (after entering LL-boost with `llboost`), a CPU-bound guest | off |
//! | `hog_ms=N` | with `hog`: end the VM (status 0) after N ms | 0: never |
//!
//! Other words are not the RTOS's and are ignored; a known key with a value that is no
//! number or out of range is an error.

use core::fmt;

/// The settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub period_us: u64,
    pub work_us: u64,
    pub deadline_us: u64,
    pub periods: u64,
    pub llboost: bool,
    pub trace: bool,
    /// `hog`: no tasks; the guest computes for ever (the CPU-bound guest of the
    /// soft-real-time experiment, docs/realtime.md).
    pub hog: bool,
    /// With `hog`: end the VM after this many milliseconds (0: never).
    pub hog_ms: u64,
}

impl Config {
    pub const DEFAULT: Self = Self {
        period_us: 2300,
        work_us: 60,
        deadline_us: 2300,
        periods: 200,
        llboost: false,
        trace: false,
        hog: false,
        hog_ms: 0,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A bootarg the RTOS refuses: the word (as far as it is text), and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadArg<'a> {
    pub word: &'a [u8],
    pub why: &'static str,
}

impl fmt::Display for BadArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = core::str::from_utf8(self.word).unwrap_or("(not UTF-8)");
        write!(f, "`{word}`: {}", self.why)
    }
}

/// The ranges values must be in.
const PERIOD_US: (u64, u64) = (10, 10_000_000);
const WORK_US: (u64, u64) = (0, 10_000_000);
const PERIODS: (u64, u64) = (1, 10_000_000);
const HOG_MS: (u64, u64) = (0, 3_600_000);

/// A decimal number of at most 19 digits.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Parse `bootargs`.
pub fn parse(bootargs: &[u8]) -> Result<Config, BadArg<'_>> {
    let mut c = Config::DEFAULT;
    let mut deadline = None;
    for word in bootargs.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()) {
        match word {
            b"llboost" => c.llboost = true,
            b"trace" => c.trace = true,
            b"hog" => c.hog = true,
            _ => {
                let Some(eq) = word.iter().position(|&b| b == b'=') else {
                    continue;
                };
                let (key, value) = (&word[..eq], &word[eq + 1..]);
                let (slot, (lo, hi)) = match key {
                    b"period_us" => (&mut c.period_us, PERIOD_US),
                    b"work_us" => (&mut c.work_us, WORK_US),
                    b"periods" => (&mut c.periods, PERIODS),
                    b"hog_ms" => (&mut c.hog_ms, HOG_MS),
                    b"deadline_us" => (deadline.insert(0), PERIOD_US),
                    _ => continue,
                };
                let n = number(value).ok_or(BadArg {
                    word,
                    why: "not a decimal number",
                })?;
                if !(lo..=hi).contains(&n) {
                    return Err(BadArg {
                        word,
                        why: "out of range",
                    });
                }
                *slot = n;
            }
        }
    }
    c.deadline_us = deadline.unwrap_or(c.period_us);
    if c.deadline_us > c.period_us {
        return Err(BadArg {
            word: b"deadline_us",
            why: "longer than the period",
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse(b""), Ok(Config::DEFAULT));
        assert_eq!(parse(b"console=ttyAMA0 quiet"), Ok(Config::DEFAULT), "not ours");
        let c = parse(b"  periods=5\tperiod_us=1000 work_us=0 llboost  trace hog\n").unwrap();
        assert_eq!(parse(b"hog hog_ms=3000").unwrap().hog_ms, 3000);
        assert_eq!(
            c,
            Config {
                period_us: 1000,
                work_us: 0,
                deadline_us: 1000,
                periods: 5,
                llboost: true,
                trace: true,
                hog: true,
                hog_ms: 0,
            }
        );
        let c = parse(b"deadline_us=500 period_us=1000").unwrap();
        assert_eq!((c.period_us, c.deadline_us), (1000, 500), "in any order");
        // A word that only contains a flag's name is not the flag.
        assert!(!parse(b"notrace llboosted").unwrap().trace);
    }

    #[test]
    fn bad_values_are_refused_with_the_word() {
        let e = parse(b"periods=2x").unwrap_err();
        assert_eq!((e.word, e.why), (&b"periods=2x"[..], "not a decimal number"));
        assert!(parse(b"periods=").is_err());
        assert!(parse(b"periods=-1").is_err());
        assert!(parse(b"periods=0").is_err());
        assert!(parse(b"period_us=99999999999999999999").is_err(), "20 digits");
        assert!(parse(b"period_us=9").is_err());
        let e = parse(b"period_us=1000 deadline_us=1001").unwrap_err();
        assert_eq!(e.why, "longer than the period");
        assert_eq!(format!("{e}"), "`deadline_us`: longer than the period");
    }
}
