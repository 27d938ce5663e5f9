//! The generic timer's counter, which user level may read (`CNTVCT_EL0`; the kernel
//! keeps the virtual offset at zero, so it is the physical count the kernel schedules
//! by, and budgets and `SchedContext::consumed_ticks` are in its ticks).

/// The counter now.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects; EL0 may read it. The
    // `isb` keeps the read from being taken early.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack));
    }
    v
}

/// The counter's frequency in Hz (also the boot info's `timer_hz`).
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn counter_hz() -> u64 {
    let v: u64;
    // SAFETY: reading the counter frequency has no side effects; EL0 may read it.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack));
    }
    v
}

/// Host builds have no counter: time stands still.
#[cfg(not(target_arch = "aarch64"))]
pub fn counter() -> u64 {
    0
}

/// Host builds: a nominal 1 MHz.
#[cfg(not(target_arch = "aarch64"))]
pub fn counter_hz() -> u64 {
    1_000_000
}

/// `us` microseconds in counter ticks.
pub fn us_to_ticks(us: u64) -> u64 {
    (u128::from(us) * u128::from(counter_hz()) / 1_000_000) as u64
}
