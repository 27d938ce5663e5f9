//! The EL2 physical timer (CNTHP), which drives the kernel tick.

use super::{isb, read_sysreg, write_sysreg};

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn frequency() -> u64 {
    read_sysreg!(cntfrq_el0)
}

/// Arm the timer to fire `ticks` counter ticks from now, with its interrupt unmasked.
pub fn arm(ticks: u64) {
    // SAFETY: programming the EL2 timer only schedules an interrupt the kernel handles.
    unsafe {
        write_sysreg!(cnthp_tval_el2, ticks);
        write_sysreg!(cnthp_ctl_el2, 1); // ENABLE, IMASK clear
    }
    isb();
}
