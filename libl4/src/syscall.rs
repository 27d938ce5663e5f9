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

/// Write one byte to the kernel debug console.
pub fn debug_put_char(b: u8) {
    let _ = call2(Syscall::DebugPutChar, u64::from(b), 0);
}

/// Timer ticks the kernel has taken since boot.
pub fn debug_ticks() -> Result<u64, Error> {
    call2(Syscall::DebugTicks, 0, 0)
}

/// Stop the system with `status` (0..=255). Returns only if the kernel refused.
pub fn debug_halt(status: u8) -> Error {
    match call2(Syscall::DebugHalt, u64::from(status), 0) {
        Ok(_) => Error::InvalidArgument,
        Err(e) => e,
    }
}

/// Give up the rest of this time slice.
pub fn yield_now() {
    let _ = call2(Syscall::Yield, 0, 0);
}
