//! Syscall numbers, register convention and error codes.
//!
//! A user thread enters the kernel with `svc #0`. The syscall number is in `x7`;
//! arguments are in `x0`..`x5`. On return `x0` holds `0` for success or an [`Error`]
//! code, and `x1`.. hold results.

/// The syscall number register (`x7`).
pub const SYSCALL_NUMBER_REG: usize = 7;

/// Syscall numbers. The numbering is part of the ABI: never reuse a retired number.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// Write one byte (`x0`) to the kernel console.
    DebugPutChar = 0x100,
    /// Stop the whole system. `x0` is the exit status QEMU reports (0 = success).
    DebugHalt = 0x101,
    /// Return in `x1` the number of timer ticks the kernel has taken since boot.
    DebugTicks = 0x102,
    /// Give up the rest of the current time slice.
    Yield = 0x200,
}

impl Syscall {
    /// Decode a syscall number. Unknown numbers are `None`, never a panic.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0x100 => Self::DebugPutChar,
            0x101 => Self::DebugHalt,
            0x102 => Self::DebugTicks,
            0x200 => Self::Yield,
            _ => return None,
        })
    }
}

/// Error codes returned in `x0`. `0` means success and is not an `Error`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The syscall number is not one the kernel knows.
    UnknownSyscall = 1,
    /// An argument is out of range.
    InvalidArgument = 2,
}

impl Error {
    /// Decode an error code; `0` (success) and unknown codes give `None`.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            1 => Some(Self::UnknownSyscall),
            2 => Some(Self::InvalidArgument),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip() {
        for s in [
            Syscall::DebugPutChar,
            Syscall::DebugHalt,
            Syscall::DebugTicks,
            Syscall::Yield,
        ] {
            assert_eq!(Syscall::from_raw(s as u64), Some(s));
        }
        assert_eq!(Syscall::from_raw(0), None);
        assert_eq!(Syscall::from_raw(u64::MAX), None);
    }

    #[test]
    fn error_codes_round_trip() {
        assert_eq!(Error::from_raw(0), None);
        assert_eq!(
            Error::from_raw(Error::InvalidArgument as u64),
            Some(Error::InvalidArgument)
        );
        assert_eq!(Error::from_raw(99), None);
    }
}
