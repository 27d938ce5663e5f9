//! The CPU at EL1: the counter and the EL1 virtual timer (CNTV_*), interrupt masking,
//! WFI, and calls to the hypervisor (`HVC #0`, the SMC Calling Convention).

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Read a system register (not `pure`: each read happens, in program order). Reading
/// changes nothing but what the hypervisor's emulation of a trapped register does.
#[macro_export]
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register this guest may read at EL1 changes no
        // memory; a trapped one is emulated by the hypervisor.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack, preserves_flags)) };
        v
    }};
}

/// Write one of the timer's registers, then synchronize the context.
macro_rules! msr_timer {
    ($reg:literal, $value:expr) => {{
        let v: u64 = $value;
        // SAFETY: the EL1 virtual timer's registers govern its interrupt only, no
        // memory of the program's.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack, preserves_flags)) };
    }};
}

/// CNTFRQ_EL0 as read at boot.
static FREQUENCY: AtomicU64 = AtomicU64::new(0);

/// Read CNTFRQ_EL0 once (62.5 MHz if it reads 0, QEMU's).
pub fn init_counter() {
    let f = mrs!("cntfrq_el0") & 0xffff_ffff;
    FREQUENCY.store(if f == 0 { 62_500_000 } else { f }, Relaxed);
}

/// The counter's frequency (Hz), as [`init_counter`] read it.
pub fn counter_frequency() -> u64 {
    FREQUENCY.load(Relaxed)
}

/// Counter ticks in `us` microseconds (rounded down).
pub fn ticks(us: u64) -> u64 {
    (u128::from(counter_frequency()) * u128::from(us) / 1_000_000) as u64
}

/// The virtual counter (CNTVCT_EL0), read between barriers so it is neither early nor late.
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter changes nothing.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", "isb", out(reg) v, options(nostack, preserves_flags)) };
    v
}

/// Arm the EL1 virtual timer for counter value `deadline` (enabled, not masked): its
/// interrupt (PPI 27) comes when the counter reaches it, at once if it already has.
pub fn timer_arm(deadline: u64) {
    msr_timer!("cntv_cval_el0", deadline);
    msr_timer!("cntv_ctl_el0", 1);
}

/// Stop the virtual timer (its interrupt is level-triggered: this lowers it).
pub fn timer_off() {
    msr_timer!("cntv_ctl_el0", 0);
}

/// Unmask IRQs (PSTATE.I); a pending one is taken before this returns.
pub fn irqs_on() {
    // SAFETY: unmasking interrupts changes no memory; the program's IRQ vector saves
    // and restores whatever it touches.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack, preserves_flags)) };
}

/// Mask IRQs.
pub fn irqs_off() {
    // SAFETY: masking interrupts has no effect on memory.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack, preserves_flags)) };
}

/// Mask IRQs and return the previous DAIF, for [`irqs_restore`].
pub fn irqs_save() -> u64 {
    let daif = mrs!("daif");
    irqs_off();
    daif
}

/// Put PSTATE.I back as [`irqs_save`] found it.
pub fn irqs_restore(daif: u64) {
    if daif & (1 << 7) == 0 {
        irqs_on();
    }
}

/// Wait for an interrupt (returns at once if one is pending, masked or not).
pub fn wfi() {
    // SAFETY: WFI only waits.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}

/// `yield`: a hint that this CPU is only computing or spinning, architecturally nothing
/// (not trapped to the hypervisor). QEMU's single-threaded TCG, which `-icount` uses,
/// ends this CPU's turn on it; a CPU that neither yields nor waits runs until the next
/// timer deadline of any CPU, and QEMU 7.2 then gives the CPUs after it no instructions
/// before that CPU's next turn, so they never run.
pub fn yield_hint() {
    // SAFETY: `yield` is a hint with no architectural effect.
    unsafe { asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// ISR_EL1: bit 7 (I) says an IRQ (a virtual one, for a guest) is pending.
pub fn isr() -> u64 {
    mrs!("isr_el1")
}

/// True if the CPU has the GICv3 system register interface (ID_AA64PFR0_EL1.GIC).
pub fn has_gic_sysregs() -> bool {
    (mrs!("id_aa64pfr0_el1") >> 24) & 0xf != 0
}

/// A call of the SMC Calling Convention by `$insn` with all of `x0..x7`; returns
/// `x0..x3`. SMCCC 1.1 keeps x4..x17, but a hypervisor under test is not trusted to:
/// they are declared clobbered.
///
/// What the call does to the guest is the function's (PSCI CPU_ON starts a vCPU at an
/// entry of the caller's choosing, which must be sound for the program): callers of
/// functions with effects on memory or other vCPUs say why they are sound.
macro_rules! smccc_call {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        pub fn $name(x: [u64; 8]) -> [u64; 4] {
            let (r0, r1, r2, r3): (u64, u64, u64, u64);
            // SAFETY: the hypervisor's answer changes only the registers, which are
            // declared clobbered; functions with other effects are the callers' (above).
            unsafe {
                asm!(
                    $insn,
                    inlateout("x0") x[0] => r0,
                    inlateout("x1") x[1] => r1,
                    inlateout("x2") x[2] => r2,
                    inlateout("x3") x[3] => r3,
                    inlateout("x4") x[4] => _,
                    inlateout("x5") x[5] => _,
                    inlateout("x6") x[6] => _,
                    inlateout("x7") x[7] => _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack),
                );
            }
            [r0, r1, r2, r3]
        }
    };
}

smccc_call!(
    /// A hypercall (`HVC #0`) with `x0..x7`; returns `x0..x3`.
    hvc8,
    "hvc #0"
);
smccc_call!(
    /// A firmware call by `SMC #0` (trapped to the hypervisor as HVC is) with `x0..x7`;
    /// returns `x0..x3`.
    smc8,
    "smc #0"
);
