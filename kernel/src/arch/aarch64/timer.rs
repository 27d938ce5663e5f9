//! The EL2 physical timer (CNTHP), the kernel's one-shot timer: the kernel core sets
//! it for its next scheduling deadline (`Kernel::arm_timer`).

use super::{isb, read_sysreg, write_sysreg};

/// Counter frequency in Hz (CNTFRQ_EL0).
pub fn frequency() -> u64 {
    read_sysreg!(cntfrq_el0)
}

/// The physical counter (CNTPCT_EL0).
pub fn now() -> u64 {
    read_sysreg!(cntpct_el0)
}

/// Interrupt when the physical counter reaches `deadline` (at once if it has), or
/// switch the timer off (`None`; its interrupt is then no longer asserted).
pub fn set_deadline(deadline: Option<u64>) {
    // SAFETY: programming the EL2 timer only schedules (or cancels) an interrupt the
    // kernel handles.
    unsafe {
        if let Some(d) = deadline {
            write_sysreg!(cnthp_cval_el2, d);
            write_sysreg!(cnthp_ctl_el2, 1); // ENABLE, IMASK clear
        } else {
            write_sysreg!(cnthp_ctl_el2, 0);
        }
    }
    isb();
}

/// Arm the EL1 physical timer (the one user level may have, through an IrqHandler for
/// its line) to fire when the physical counter reaches `cval`, or disarm it. Neither
/// EL0 (`CNTKCTL_EL1.EL0PTEN` clear) nor a guest's EL1 (`CNTHCTL_EL2.EL1PCEN` clear)
/// can program it. The EL1 virtual timer is the guests' (`guest.rs`).
pub fn set_user(cval: Option<u64>) {
    // SAFETY: the EL1 physical timer only raises its own PPI, which the kernel routes
    // to the handler's notification; no kernel state depends on it.
    unsafe {
        if let Some(v) = cval {
            write_sysreg!(cntp_cval_el0, v);
            write_sysreg!(cntp_ctl_el0, 1); // ENABLE, IMASK clear
        } else {
            write_sysreg!(cntp_ctl_el0, 0);
        }
    }
    isb();
}
