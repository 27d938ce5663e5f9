//! Traps from user level: syscalls, faults, lazy FP switching, interrupts, and the way
//! back to a user thread (or the idle loop).

use crate::arch::exception::Trap;
use crate::arch::{self, read_sysreg, stage2, thread};
use crate::platform::{self, Guard, Hw};
use crate::{irq, smp};
use gaon_abi::Syscall;
use gaon_abi::syscall::SYSCALL_NUMBER_REG;
use gaon_kcore::kernel::{After, Exception, Kernel};
use gaon_kcore::tcb::UserContext;

unsafe extern "C" {
    /// Restore a user context and `eret` to it (in `start.S`).
    fn restore_user(ctx: *mut UserContext) -> !;
}

/// ESR_EL2 class of an HVC (from a guest: at EL0 it is undefined).
const EC_HVC64: u64 = 0x16;

/// Rust side of every exception from EL0. `ctx` is the running thread's context in its
/// Tcb, `kind` the vector slot, `esr`/`far` ESR_EL2 and FAR_EL2 (passed in registers,
/// not stored in the context); the return value is the context to resume.
#[unsafe(no_mangle)]
extern "C" fn handle_user_trap(ctx: *mut UserContext, kind: u64, esr: u64, far: u64) -> *mut UserContext {
    // Every thread is an EL0 thread today; a VCpu (an EL1 guest, whose traps arrive in
    // the same lower-EL slots) would make this a match on (thread kind, trap).
    match Trap::decode(kind, esr, far) {
        // The common case (IPC is measured in instructions): decoded first.
        Trap::Syscall => {
            // Null reads and writes nothing of the kernel's: answered without the lock
            // (the kernel core's `handle_syscall` does the same under it).
            // SAFETY: `ctx` is the trapping thread's saved context; this CPU runs it,
            // and another CPU changes it only after stalling this one (`smp::stall`),
            // which waits for this CPU to take the stall's interrupt.
            unsafe {
                if (*ctx).x[SYSCALL_NUMBER_REG] == Syscall::Null as u64 {
                    (*ctx).x[0] = 0;
                    return ctx;
                }
            }
            // A stall answered while waiting for the lock: the syscall is issued again
            // when the thread next runs (its `svc` once more; the registers are as the
            // thread left them).
            let (mut k, stalled) = platform::lock_entry(|| {
                // SAFETY: `ctx` is the trapping thread's context, alive until this CPU
                // answers the stall (the lock's holder waits for the answer).
                unsafe { (*ctx).pc -= 4 };
            });
            if stalled {
                k.handle_ipi();
                return resume_or_idle(k);
            }
            match k.handle_syscall() {
                // Nothing changed who runs or where: straight back to the caller.
                After::Caller => ctx,
                // The fastpath's direct switch: the target is known already.
                After::Direct { from, to } => {
                    stage2::activate(to.vspace_root, to.vmid);
                    if k.is_guest(to.tcb) {
                        // A VMM's answer to its guest's exit: the guest's state the
                        // general way, and the timer for its slice (a guest that spins
                        // never enters the kernel to let its equals run).
                        k.arm_timer();
                        thread::load_guest(&mut k, to.tcb);
                    } else {
                        thread::load_direct(&mut k, from, to.tcb);
                    }
                    release(k);
                    to.tcb.addr() as *mut UserContext
                }
                After::Chosen => resume_or_idle(k),
            }
        }
        Trap::Irq => {
            let mut k = None;
            irq::handle(&mut k);
            resume_or_idle(k.unwrap_or_else(platform::lock))
        }
        Trap::FpAccess => {
            // After a stall the FP/SIMD instruction simply traps again.
            let (mut k, stalled) = platform::lock_entry(|| {});
            if stalled {
                k.handle_ipi();
                return resume_or_idle(k);
            }
            thread::fpu_take(&mut k);
            ctx
        }
        // Any other synchronous exception: only the syndrome's valid parts are sent.
        Trap::Sync { esr, far } => {
            // The guest-physical address of a stage-2 abort (read while the syndrome
            // registers still hold this exception's).
            let hpfar = read_sysreg!(hpfar_el2);
            // After a stall the instruction is simply taken again, except an HVC (only a
            // guest's), whose exception returns after it: it is rewound to be taken again.
            let hvc = (esr >> 26) & 0x3f == EC_HVC64;
            fault_then(Exception::from_sync(esr, far, hpfar), || {
                if hvc {
                    // SAFETY: `ctx` is the trapping thread's context, alive until this
                    // CPU answers the stall (the lock's holder waits for the answer).
                    unsafe { (*ctx).pc -= 4 };
                }
            })
        }
        // An FIQ or SError taken from user level.
        Trap::Fiq => fault(Exception::from_async(false, esr)),
        Trap::SError { esr } => fault(Exception::from_async(true, esr)),
    }
}

/// The running thread took an exception: the kernel sends it as a fault, then whoever
/// runs next runs. After a stall the faulting instruction is simply taken again (an
/// asynchronous exception is lost then: the thread was stopped by another core).
fn fault(e: Exception) -> *mut UserContext {
    fault_then(e, || {})
}

/// [`fault`], with `on_stall` run if a stall is answered while waiting for the lock.
fn fault_then(e: Exception, on_stall: impl FnMut()) -> *mut UserContext {
    let (mut k, stalled) = platform::lock_entry(on_stall);
    if stalled {
        k.handle_ipi();
    } else {
        k.handle_fault(e);
    }
    resume_or_idle(k)
}

/// Return to the thread the kernel picked, or idle until there is one. The CPUs the
/// kernel entry changed the threads of are told once the lock is released.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every switch, measured in instructions")]
fn resume_or_idle(mut k: Guard) -> *mut UserContext {
    let Some(ctx) = prepare_resume(&mut k) else {
        release(k);
        idle()
    };
    release(k);
    ctx
}

/// Release the kernel lock, then tell the CPUs whose threads this kernel entry changed.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every switch, measured in instructions")]
fn release(mut k: Guard) {
    let ipis = k.take_ipis();
    drop(k);
    if ipis != 0 {
        smp::send_reschedule(ipis);
    }
}

/// Load the chosen thread's address space and lazily switched state.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every switch, measured in instructions")]
fn prepare_resume(k: &mut Kernel<Hw>) -> Option<*mut UserContext> {
    let target = k.resume_target()?;
    stage2::activate(target.vspace_root, target.vmid);
    thread::load(k, target.tcb);
    // The registers are at offset 0 of the Tcb.
    Some(target.tcb.addr() as *mut UserContext)
}

/// Enter user level for the first time (or from the idle loop).
pub fn enter_user() -> ! {
    let ctx = resume_or_idle(platform::lock());
    // SAFETY: `ctx` is the chosen live thread's context; its address space is loaded.
    unsafe { restore_user(ctx) }
}

/// Nothing to run: wait for an interrupt, handle it here, and switch to a thread once
/// one is runnable. Every CPU has its own, on its own stack.
///
/// `wfi` runs with IRQs masked: a pending interrupt still wakes it. The loop then
/// claims and handles the interrupt itself (`irq::handle`, as the IRQ vector would),
/// without unmasking: taking it through the vector would save and restore every
/// register of this loop for nothing (about 50 instructions of interrupt latency).
/// Unmasking before `wfi` instead would lose the wake-up of an interrupt taken between
/// the two: with a one-shot timer nothing else might ever wake the core.
#[inline(never)]
pub fn idle() -> ! {
    loop {
        arch::wait_for_interrupt();
        let mut k = None;
        irq::handle(&mut k);
        let mut k = k.unwrap_or_else(platform::lock);
        let ctx = prepare_resume(&mut k);
        release(k);
        if let Some(ctx) = ctx {
            // SAFETY: as in `enter_user`; the idle loop's stack is abandoned.
            unsafe { restore_user(ctx) }
        }
    }
}
