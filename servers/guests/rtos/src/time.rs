//! Time: the virtual counter's ticks (CNTVCT_EL0, at CNTFRQ_EL0 Hz: 62.5 MHz on QEMU
//! virt, 16 ns a tick) and microseconds and nanoseconds, converted exactly with integer
//! arithmetic (128-bit intermediates, rounded down).

/// `a * b / c` without overflow in the product, rounded down (saturating at
/// `u64::MAX`; `c` = 0 gives `u64::MAX`).
pub const fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    if c == 0 {
        return u64::MAX;
    }
    let q = a as u128 * b as u128 / c as u128;
    if q > u64::MAX as u128 { u64::MAX } else { q as u64 }
}

/// The counter's frequency, and conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Ticks a second (CNTFRQ_EL0).
    pub hz: u64,
}

impl Clock {
    pub const fn new(hz: u64) -> Self {
        Self { hz }
    }

    /// Ticks in `us` microseconds (rounded down).
    pub const fn ticks_from_us(self, us: u64) -> u64 {
        mul_div(us, self.hz, 1_000_000)
    }

    /// Nanoseconds in `ticks` (rounded down).
    pub const fn ns_from_ticks(self, ticks: u64) -> u64 {
        mul_div(ticks, 1_000_000_000, self.hz)
    }

    /// Microseconds in `ticks` (rounded down).
    pub const fn us_from_ticks(self, ticks: u64) -> u64 {
        mul_div(ticks, 1_000_000, self.hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_exact_at_qemus_frequency() {
        let c = Clock::new(62_500_000);
        assert_eq!(c.ticks_from_us(2300), 143_750);
        assert_eq!(c.ticks_from_us(60), 3750);
        assert_eq!(c.ns_from_ticks(1), 16);
        assert_eq!(c.ns_from_ticks(143_750), 2_300_000);
        assert_eq!(c.us_from_ticks(143_750), 2300);
        assert_eq!(c.us_from_ticks(62), 0, "992 ns is 0 µs, rounded down");
        assert_eq!(c.us_from_ticks(63), 1);
    }

    #[test]
    fn conversions_round_down_at_other_frequencies() {
        // 19.2 MHz (a Raspberry Pi's): 1 µs is 19.2 ticks.
        let c = Clock::new(19_200_000);
        assert_eq!(c.ticks_from_us(1), 19);
        assert_eq!(c.ticks_from_us(5), 96);
        assert_eq!(c.ns_from_ticks(1), 52);
        assert_eq!(c.ns_from_ticks(u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn mul_div_does_not_overflow() {
        assert_eq!(mul_div(u64::MAX, 2, 2), u64::MAX);
        assert_eq!(mul_div(u64::MAX, 3, 2), u64::MAX, "saturates");
        assert_eq!(mul_div(1 << 40, 1 << 40, 1 << 50), 1 << 30);
        assert_eq!(mul_div(1, 1, 0), u64::MAX);
    }
}
