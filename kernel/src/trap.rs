//! Traps from user level: syscalls, faults, lazy FP switching, interrupts, and the way
//! back to a user thread (or the idle loop).

use gaon_kcore::kernel::{Fault, Kernel};
use gaon_kcore::tcb::{FpState, Tcb, UserContext};
use spin::MutexGuard;

use crate::arch::{self, read_sysreg, stage2, write_sysreg};
use crate::irq;
use crate::platform::{Hw, KERNEL};

unsafe extern "C" {
    /// Restore a user context and `eret` to it (in `start.S`).
    fn restore_user(ctx: *mut UserContext) -> !;
    fn fp_save(state: *mut FpState);
    fn fp_restore(state: *const FpState);
}

const EC_SVC64: u64 = 0x15;
const EC_FP: u64 = 0x07;
/// CPTR_EL2.TFP: trap FP/SIMD.
const CPTR_TFP: u64 = 1 << 10;
/// CPTR_EL2 RES1 bits.
const CPTR_RES1: u64 = 0x33ff;

/// Rust side of every exception from EL0. `ctx` is the running thread's context in its
/// Tcb, `kind` the vector slot, `esr`/`far` ESR_EL2 and FAR_EL2 (passed in registers,
/// not stored in the context); the return value is the context to resume.
#[unsafe(no_mangle)]
extern "C" fn handle_user_trap(ctx: *mut UserContext, kind: u64, esr: u64, far: u64) -> *mut UserContext {
    let ec = (esr >> 26) & 0x3f;
    // Syscalls first: they are the common case, and IPC is measured in instructions.
    if kind == 8 && ec == EC_SVC64 {
        let mut k = KERNEL.lock();
        if !k.handle_syscall() {
            // Nothing changed who runs or where: straight back to the caller.
            return ctx;
        }
        return resume_or_idle(k);
    }
    if kind % 4 == 1 {
        irq::handle();
        return resume_or_idle(KERNEL.lock());
    }
    let mut k = KERNEL.lock();
    match (kind, ec) {
        (8, EC_FP) => {
            fp_take_ownership(&mut k);
            return ctx;
        }
        // Any other synchronous exception: only the syndrome's valid parts are sent.
        (8 | 12, _) => k.handle_fault(Fault::from_sync(esr, far)),
        // An FIQ or SError taken from user level.
        _ => k.handle_fault(Fault::from_async(kind % 4 == 3, esr)),
    }
    resume_or_idle(k)
}

/// Return to the thread the kernel picked, or idle until there is one.
fn resume_or_idle(mut k: MutexGuard<'static, Kernel<Hw>>) -> *mut UserContext {
    if let Some(ctx) = prepare_resume(&mut k) {
        return ctx;
    }
    drop(k);
    idle()
}

/// Load the chosen thread's address space, TPIDR_EL0 and FP trap setting.
fn prepare_resume(k: &mut Kernel<Hw>) -> Option<*mut UserContext> {
    let target = k.resume_target()?;
    stage2::activate(target.vspace_root, target.vmid);
    if k.hw_owner != target.tcb {
        if let Some(old) = core::num::NonZeroUsize::new(k.hw_owner) {
            let tpidr = read_sysreg!(tpidr_el0);
            // SAFETY: hw_owner is cleared when its Tcb dies, so it names a live Tcb.
            unsafe { (*(old.get() as *mut Tcb)).tpidr = tpidr };
        }
        // SAFETY: `target.tcb` is the live, chosen thread.
        let tpidr = unsafe { (*(target.tcb as *const Tcb)).tpidr };
        // SAFETY: TPIDR_EL0 is the thread's own register.
        unsafe { write_sysreg!(tpidr_el0, tpidr) };
        k.hw_owner = target.tcb;
    }
    let cptr = if k.fpu_owner == target.tcb {
        CPTR_RES1
    } else {
        CPTR_RES1 | CPTR_TFP
    };
    // No isb: the kernel uses no FP/SIMD from here on, and the eret synchronises.
    set_cptr(cptr, false);
    Some(target.tcb as *mut UserContext)
}

/// Set CPTR_EL2 (cached). `sync`: the kernel itself uses FP/SIMD next, so the change
/// must take effect at once (`isb`); otherwise the `eret` to the thread synchronises.
fn set_cptr(v: u64, sync: bool) {
    static CURRENT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(CPTR_RES1 | CPTR_TFP);
    if CURRENT.load(core::sync::atomic::Ordering::Relaxed) != v {
        CURRENT.store(v, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: only the FP/SIMD trap bit changes.
        unsafe { write_sysreg!(cptr_el2, v) };
        if sync {
            arch::isb();
        }
    }
}

/// The current thread touched FP/SIMD: save the previous owner's registers and load its.
fn fp_take_ownership(k: &mut Kernel<Hw>) {
    let Some(cur) = k.current() else { return };
    set_cptr(CPTR_RES1, true);
    if k.fpu_owner != cur.addr() {
        if let Some(old) = core::num::NonZeroUsize::new(k.fpu_owner) {
            // SAFETY: fpu_owner is cleared when its Tcb dies, so it is a live Tcb.
            unsafe { fp_save(&raw mut (*(old.get() as *mut Tcb)).fp) };
        }
        // SAFETY: the current thread's Tcb is live.
        unsafe { fp_restore(&raw const (*(cur.addr() as *const Tcb)).fp) };
        k.fpu_owner = cur.addr();
    }
}

/// Enter user level for the first time (or from the idle loop).
pub fn enter_user() -> ! {
    let ctx = resume_or_idle(KERNEL.lock());
    // SAFETY: `ctx` is the chosen live thread's context; its address space is loaded.
    unsafe { restore_user(ctx) }
}

/// Nothing to run: wait for interrupts (taken at EL2 on this stack) until a thread is
/// runnable, then switch to it.
pub fn idle() -> ! {
    loop {
        arch::enable_irqs();
        arch::wait_for_interrupt();
        arch::disable_irqs();
        let mut k = KERNEL.lock();
        if let Some(ctx) = prepare_resume(&mut k) {
            drop(k);
            // SAFETY: as in `enter_user`; the idle loop's stack is abandoned.
            unsafe { restore_user(ctx) }
        }
    }
}
