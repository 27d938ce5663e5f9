//! AArch64 at EL2 (no VHE): boot, exception vectors, EL2 stage-1 MMU, stage-2 address
//! spaces, generic timer, and system exit. This and `drivers` are the only modules
//! with `unsafe`.

pub mod cpu;
pub mod el3;
pub mod exception;
pub mod exit;
pub mod guest;
pub mod klock;
pub mod mmu;
pub mod smp;
pub mod stage2;
pub mod thread;
pub mod timer;
pub mod vgic;

core::arch::global_asm!(
    include_str!("start.S"),
    CPUS = const crate::board::CPUS,
    STACK_STRIDE = const cpu::STACK_STRIDE,
    CPU_LOCAL_SIZE = const cpu::CPU_LOCAL_SIZE,
);

/// Read a system register.
macro_rules! read_sysreg {
    ($name:ident) => {{
        let v: u64;
        // SAFETY: reading a system register has no side effect on memory.
        unsafe { core::arch::asm!(concat!("mrs {}, ", stringify!($name)), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Write a system register. The caller's `unsafe` block states why the value is right.
macro_rules! write_sysreg {
    ($name:ident, $v:expr) => {{
        let v: u64 = $v;
        core::arch::asm!(concat!("msr ", stringify!($name), ", {}"), in(reg) v, options(nostack, preserves_flags))
    }};
}

pub(crate) use {read_sysreg, write_sysreg};

/// Instruction synchronisation barrier.
#[inline]
pub fn isb() {
    // SAFETY: a barrier has no memory or register effects beyond ordering.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// A hint that this CPU is spinning on something another CPU will change: `yield`.
/// QEMU's single-threaded TCG (which `-icount` uses) ends this CPU's turn on it, so the
/// others run; a busy loop without it keeps them waiting until its turn runs out,
/// which on the deterministic clock may be the whole wait.
#[inline]
pub fn spin_hint() {
    // SAFETY: `yield` is a hint with no architectural effect.
    unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
}

/// Full-system data synchronisation barrier.
#[inline]
pub fn dsb_sy() {
    // SAFETY: a barrier has no memory or register effects beyond ordering.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Inner-shareable store barrier: earlier stores are seen by the other CPUs before
/// anything after it (such as an inter-processor interrupt).
#[inline]
pub fn dsb_ishst() {
    // SAFETY: a barrier has no memory or register effects beyond ordering.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Wait for an interrupt (with interrupts unmasked it is taken before this returns).
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: `wfi` only suspends execution until an event.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Unmask IRQs at EL2.
#[inline]
pub fn enable_irqs() {
    // SAFETY: the vector table is installed before kernel_main runs, so an IRQ is handled.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack, preserves_flags)) };
}

/// Mask IRQs at EL2.
#[inline]
pub fn disable_irqs() {
    // SAFETY: masking interrupts cannot break memory safety.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) };
}
