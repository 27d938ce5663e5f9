//! Raw syscalls: `svc #0` with the number in `x7`, arguments in `x0`.., result in `x0`
//! (0 or an [`Error`]) and values in `x1`.., as `gaon_abi::syscall` defines.

use gaon_abi::{Error, Syscall};

/// Perform syscall `s` with up to two arguments; returns `x1` on success.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn call2(s: Syscall, a0: u64, a1: u64) -> Result<u64, Error> {
    let r0: u64;
    let r1: u64;
    // SAFETY: `svc #0` enters the kernel, which only reads the argument registers and
    // writes x0/x1; it never touches this program's memory for these syscalls.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") a0 => r0, inlateout("x1") a1 => r1, in("x7") s as u64, options(nostack));
    }
    match r0 {
        0 => Ok(r1),
        e => Err(Error::from_raw(e).unwrap_or(Error::InvalidArgument)),
    }
}

/// Host builds (unit tests) have no kernel to call.
#[cfg(not(target_arch = "aarch64"))]
pub fn call2(_s: Syscall, _a0: u64, _a1: u64) -> Result<u64, Error> {
    Err(Error::UnknownSyscall)
}

/// Write one byte to the kernel debug console. Needs the Debug capability (the root
/// server has it; a server has it where its description says `debug = true`); without
/// it the kernel refuses and the byte is dropped.
pub fn debug_put_char(b: u8) {
    let _ = call2(Syscall::DebugPutChar, u64::from(b), crate::start::debug_cap());
}

/// Timer ticks the kernel has taken since boot.
pub fn debug_ticks() -> Result<u64, Error> {
    call2(Syscall::DebugTicks, 0, 0)
}

/// Stop the system with `status` (0..=255). Needs the Debug capability. Returns only if
/// the kernel refused.
pub fn debug_halt(status: u8) -> Error {
    match call2(Syscall::DebugHalt, u64::from(status), crate::start::debug_cap()) {
        Ok(_) => Error::InvalidArgument,
        Err(e) => e,
    }
}

/// What the kernel's consistency check (`DebugCheckConsistency`) reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Consistency {
    /// Problems found (0: consistent); the kernel prints each on its console.
    pub problems: u64,
    /// Slots visited from the caller's Tcb.
    pub slots: u64,
    /// Capabilities visited on the derivation lists.
    pub caps: u64,
    /// Thread checks made.
    pub threads: u64,
    /// The first problem: its code (`kernel::Problem`) `<< 48 | address`.
    pub first: u64,
    /// A bound cut the walk short.
    pub truncated: bool,
}

/// Run the kernel's consistency check. `root`: the caller holds every boot capability
/// (the root server), so every VMID in use must be named by a VSpace it reaches.
/// `Err(UnknownSyscall)`: the kernel was built without the `consistency-check` feature.
#[cfg(target_arch = "aarch64")]
pub fn debug_check_consistency(root: bool) -> Result<Consistency, Error> {
    let (x0, x1, x2, x3, x4, x5, x6): (u64, u64, u64, u64, u64, u64, u64);
    // SAFETY: `svc #0` enters the kernel, which only reads x0 and writes x0..x6 for
    // this syscall; it never touches this program's memory.
    unsafe {
        core::arch::asm!(
            "svc #0",
            inlateout("x0") u64::from(root) => x0, lateout("x1") x1, lateout("x2") x2, lateout("x3") x3,
            lateout("x4") x4, lateout("x5") x5, lateout("x6") x6,
            in("x7") Syscall::DebugCheckConsistency as u64,
            options(nostack),
        );
    }
    let report = Consistency {
        problems: x1,
        slots: x2,
        caps: x3,
        threads: x4,
        first: x5,
        truncated: x6 != 0,
    };
    match Error::from_raw(x0) {
        None if x0 == 0 => Ok(report),
        Some(Error::IllegalOperation) => Ok(report),
        Some(e) => Err(e),
        None => Err(Error::InvalidArgument),
    }
}

/// Host builds have no kernel to check.
#[cfg(not(target_arch = "aarch64"))]
pub fn debug_check_consistency(_root: bool) -> Result<Consistency, Error> {
    Err(Error::UnknownSyscall)
}

/// Give up the rest of this time slice.
pub fn yield_now() {
    let _ = call2(Syscall::Yield, 0, 0);
}

/// Say that this thread is spinning, waiting for another core: the `yield` hint (not a
/// syscall). On hardware it only hints; QEMU's TCG, which runs the machine's cores one
/// at a time, switches to the next core on it, so the one being waited for runs.
/// (`core::hint::spin_loop` is an `isb` on AArch64, which TCG does not take as one.)
#[inline]
pub fn spin_hint() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `yield` is a hint with no architectural effect.
    unsafe {
        core::arch::asm!("yield", options(nomem, nostack, preserves_flags));
    }
    #[cfg(not(target_arch = "aarch64"))]
    core::hint::spin_loop();
}

/// Give up the rest of this budget: a thread with a scheduling context runs again at
/// its next refill (without one, this is [`yield_now`]).
pub fn yield_budget() {
    let _ = call2(Syscall::YieldBudget, 0, 0);
}

/// The registers an IPC syscall reads and writes: `x0..x6`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs(pub [u64; 7]);

/// Perform IPC syscall `s` with `r` as `x0..x6`; `r` holds `x0..x6` afterwards.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn ipc_syscall(s: Syscall, r: &mut Regs) {
    let x = &mut r.0;
    // SAFETY: `svc #0` enters the kernel, which reads and writes only x0..x6 for the
    // IPC syscalls (and the IPC buffer, which the kernel reaches by physical address).
    unsafe {
        core::arch::asm!(
            "svc #0",
            inlateout("x0") x[0], inlateout("x1") x[1], inlateout("x2") x[2], inlateout("x3") x[3],
            inlateout("x4") x[4], inlateout("x5") x[5], inlateout("x6") x[6],
            in("x7") s as u64,
            options(nostack),
        );
    }
}

/// Host builds have no kernel: every IPC fails with `UnknownSyscall`.
#[cfg(not(target_arch = "aarch64"))]
pub fn ipc_syscall(_s: Syscall, r: &mut Regs) {
    r.0[1] = gaon_abi::MsgInfo::kernel(Error::UnknownSyscall as u64, 0).0;
}
