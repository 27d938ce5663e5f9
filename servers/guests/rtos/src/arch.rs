//! The CPU: the entry point and the exception vectors (`gaon_guest_bare`'s `entry!` and
//! `vectors!`), and the system call.
//!
//! Tasks run at EL1h on their own stacks (SP_EL1), interrupts unmasked. Every exception
//! (the timer's interrupt, a task's `SVC`) pushes the whole context of the running task
//! (x0..x30, ELR_EL1, SPSR_EL1, FPCR, FPSR and q0..q31: Rust code may use FP/SIMD, so it
//! is saved too) as a `Frame` on the task's own stack, and calls `rt::exception` with
//! it. The kernel decides, and returns the frame of the task to resume (the same or
//! another): the vector loads that frame and returns into it. So a task switch is a
//! change of stack pointer between saving and restoring, and a task that never ran
//! starts from a frame made for it on its empty stack.

use core::arch::asm;

/// What a new task's SPSR_EL1 says: EL1h, IRQs unmasked (D, A and F masked).
pub const TASK_PSTATE: u64 = 0x345;

/// ESR_EL1's exception class of an `SVC` from AArch64.
pub const EC_SVC64: u64 = 0x15;

gaon_guest_bare::entry!(crate::guest_main, "rtos_vectors");
gaon_guest_bare::vectors!("rtos_vectors", crate::rt::exception);

/// A system call: `SVC #0` with `x0`, `x1` (`rtos::sched::Call::encode`). It returns when
/// the kernel resumes the caller, perhaps after other tasks ran.
pub fn svc(x0: u64, x1: u64) {
    // SAFETY: the exception pushes its frame below SP (hence no `nostack`), saves
    // every register of the caller there and restores them before it returns here (the
    // kernel only moves between stacks); without `nomem` the compiler assumes memory
    // changed meanwhile, as it may have.
    unsafe { asm!("svc #0", in("x0") x0, in("x1") x1) };
}
