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

/// Give up the rest of this time slice.
pub fn yield_now() {
    let _ = call2(Syscall::Yield, 0, 0);
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
