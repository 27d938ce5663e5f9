//! Gaon's paravirtual hypercalls: what a guest asks of its VMM beyond the firmware
//! interfaces (PSCI, SMCCC), laid out once for the VMM, the guests and the docs
//! (`docs/hypercalls.md`).
//!
//! A hypercall is an `HVC #0` (or `SMC #0`, which Gaon traps the same way) following the
//! SMC Calling Convention: the function ID in `w0`, arguments in `x1..x7`, results in
//! `x0..x3`, and every other register preserved. The function IDs are SMCCC fast calls
//! of the 64-bit convention owned by the *vendor-specific hypervisor service* (owning
//! entity 6): `0xC600_0000 | number`. `x0` comes back as a status, 0 or a negative
//! [`Error`], unless the function says otherwise.

/// The function IDs' common part: fast call (bit 31), SMC64 (bit 30), owning entity 6
/// (vendor-specific hypervisor service, bits 29..24).
pub const BASE: u64 = 0xC600_0000;

/// The interface's version in `VERSION`'s `x0`: major in bits 31..16, minor in 15..0.
pub const VERSION_1_0: u64 = 0x1_0000;

/// The most bytes one `CONSOLE_WRITE` carries (in `x2..x7`).
pub const CONSOLE_MAX: usize = 48;

/// The function numbers (`BASE | number` is the ID).
pub mod id {
    use super::BASE;

    /// `VERSION()` -> `x0` = [`super::VERSION_1_0`] (never an error).
    pub const VERSION: u64 = BASE;
    /// `CONSOLE_WRITE(x1 = length <= 48, x2..x7 = the bytes, little-endian, first
    /// byte in x2's low byte)` -> `x0` = 0. The bytes go to the VM's console as its
    /// UART's output does.
    pub const CONSOLE_WRITE: u64 = BASE | 0x01;
    /// `LL_BOOST_ENTER()` -> 0: the vCPU holds LL-boost until it leaves, at most SBT
    /// in each window of USBT from its entry; or `DENIED` (the VM has no LL-boost
    /// reservation), `RETRY` with `x1` = the virtual counter value from which it may
    /// enter again (the end of the window it left in), `NOT_SUPPORTED` (no scheduling
    /// policy server).
    pub const LL_BOOST_ENTER: u64 = BASE | 0x02;
    /// `LL_BOOST_LEAVE()` -> 0 (also when not in LL-boost).
    pub const LL_BOOST_LEAVE: u64 = BASE | 0x03;
    /// `TRACE_TASK_SWITCH(x1 = from task, x2 = to task)` -> 0: the guest's own
    /// scheduler switched tasks (an event for the system trace).
    pub const TRACE_TASK_SWITCH: u64 = BASE | 0x04;
    /// `TRACE_EVENT(x1 = event number, x2 = argument)` -> 0: a guest-defined event
    /// for the system trace.
    pub const TRACE_EVENT: u64 = BASE | 0x05;
    /// `SCHED_STATE()` -> `x0` = 0, `x1` = the vCPU's class (`SchedClass`), `x2` =
    /// its credit in nanoseconds (signed), `x3` = LL-boost time left in this stint in
    /// nanoseconds (0 outside LL-boost).
    pub const SCHED_STATE: u64 = BASE | 0x06;
    /// `TRACE_TASK_NAME(x1 = task, x2 = its name's first 8 bytes, little-endian,
    /// NUL-padded)` -> 0: names a task in the system trace.
    pub const TRACE_TASK_NAME: u64 = BASE | 0x07;
}

/// Why a hypercall failed: `x0` as a signed number (SMCCC's convention: -1 is "not
/// supported").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Error {
    /// No such function, or nobody serves it in this system.
    NotSupported = -1,
    /// An argument is out of range (a length over [`CONSOLE_MAX`]).
    InvalidParameters = -2,
    /// The VM may not do this (no LL-boost reservation).
    Denied = -3,
    /// Not now: `x1` says when (a virtual counter value).
    Retry = -4,
}

impl Error {
    /// `x0` for this error.
    pub const fn x0(self) -> u64 {
        (self as i64).cast_unsigned()
    }
}

/// A vCPU's scheduling class, as `SCHED_STATE` reports it in `x1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum SchedClass {
    /// Used its cap: waits for the next accounting.
    Parked = 0,
    /// Credit below zero.
    Over = 1,
    /// Credit left.
    Under = 2,
    /// Woken by I/O.
    Boost = 3,
    /// Low-latency boost (paper 000), within its SBT/USBT reservation.
    LlBoost = 4,
}

/// A decoded hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    Version,
    /// The bytes (`len` of them) of a `CONSOLE_WRITE`.
    ConsoleWrite {
        len: usize,
        bytes: [u8; CONSOLE_MAX],
    },
    LlBoostEnter,
    LlBoostLeave,
    TraceTaskSwitch {
        from: u64,
        to: u64,
    },
    TraceEvent {
        event: u64,
        arg: u64,
    },
    SchedState,
    TraceTaskName {
        task: u64,
        name: u64,
    },
}

impl Hypercall {
    /// True if `x0` is in this interface's range (the VMM sends other HVCs elsewhere).
    pub const fn owns(x0: u64) -> bool {
        x0 & 0xffff_ff00 == BASE
    }

    /// Decode a hypercall from the guest's `x0..x7`. `Err` is what `x0` must say:
    /// `NotSupported` for an unknown function, `InvalidParameters` for a bad argument.
    pub fn decode(x: [u64; 8]) -> Result<Self, Error> {
        Ok(match x[0] & 0xffff_ffff {
            id::VERSION => Self::Version,
            id::CONSOLE_WRITE => {
                let len = usize::try_from(x[1]).ok().filter(|&n| n <= CONSOLE_MAX);
                let len = len.ok_or(Error::InvalidParameters)?;
                let mut bytes = [0u8; CONSOLE_MAX];
                for (chunk, word) in bytes.chunks_mut(8).zip(&x[2..8]) {
                    chunk.copy_from_slice(&word.to_le_bytes());
                }
                Self::ConsoleWrite { len, bytes }
            }
            id::LL_BOOST_ENTER => Self::LlBoostEnter,
            id::LL_BOOST_LEAVE => Self::LlBoostLeave,
            id::TRACE_TASK_SWITCH => Self::TraceTaskSwitch { from: x[1], to: x[2] },
            id::TRACE_EVENT => Self::TraceEvent { event: x[1], arg: x[2] },
            id::SCHED_STATE => Self::SchedState,
            id::TRACE_TASK_NAME => Self::TraceTaskName { task: x[1], name: x[2] },
            _ => return Err(Error::NotSupported),
        })
    }

    /// The guest's `x0..x7` for this hypercall (what a guest library puts in its
    /// registers before the `HVC`).
    pub fn encode(&self) -> [u64; 8] {
        let mut x = [0u64; 8];
        match *self {
            Self::Version => x[0] = id::VERSION,
            Self::ConsoleWrite { len, bytes } => {
                x[0] = id::CONSOLE_WRITE;
                x[1] = len as u64;
                for (word, chunk) in x[2..8].iter_mut().zip(bytes.chunks(8)) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    *word = u64::from_le_bytes(b);
                }
            }
            Self::LlBoostEnter => x[0] = id::LL_BOOST_ENTER,
            Self::LlBoostLeave => x[0] = id::LL_BOOST_LEAVE,
            Self::TraceTaskSwitch { from, to } => x[..3].copy_from_slice(&[id::TRACE_TASK_SWITCH, from, to]),
            Self::TraceEvent { event, arg } => x[..3].copy_from_slice(&[id::TRACE_EVENT, event, arg]),
            Self::SchedState => x[0] = id::SCHED_STATE,
            Self::TraceTaskName { task, name } => x[..3].copy_from_slice(&[id::TRACE_TASK_NAME, task, name]),
        }
        x
    }

    /// A `CONSOLE_WRITE` of `text` (its first [`CONSOLE_MAX`] bytes).
    pub fn console_write(text: &[u8]) -> Self {
        let len = text.len().min(CONSOLE_MAX);
        let mut bytes = [0u8; CONSOLE_MAX];
        bytes[..len].copy_from_slice(&text[..len]);
        Self::ConsoleWrite { len, bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_ids_are_smccc_fast_calls_of_the_vendor_hypervisor_service() {
        for f in [
            id::VERSION,
            id::CONSOLE_WRITE,
            id::LL_BOOST_ENTER,
            id::LL_BOOST_LEAVE,
            id::TRACE_TASK_SWITCH,
            id::TRACE_EVENT,
            id::SCHED_STATE,
            id::TRACE_TASK_NAME,
        ] {
            assert_eq!(f >> 31, 1, "fast call");
            assert_eq!((f >> 30) & 1, 1, "SMC64");
            assert_eq!((f >> 24) & 0x3f, 6, "vendor-specific hypervisor service");
            assert!(Hypercall::owns(f));
        }
        // PSCI's and SMCCC's own ranges are not this interface's.
        assert!(!Hypercall::owns(0x8400_0000));
        assert!(!Hypercall::owns(0x8000_0000));
        assert!(!Hypercall::owns(0xC500_0000));
    }

    #[test]
    fn every_hypercall_decodes_as_it_was_encoded() {
        for h in [
            Hypercall::Version,
            Hypercall::console_write(b"hello from the RTOS\n"),
            Hypercall::console_write(&[b'x'; 60]),
            Hypercall::LlBoostEnter,
            Hypercall::LlBoostLeave,
            Hypercall::TraceTaskSwitch { from: 3, to: 7 },
            Hypercall::TraceEvent {
                event: 9,
                arg: u64::MAX,
            },
            Hypercall::SchedState,
            Hypercall::TraceTaskName {
                task: 2,
                name: u64::from_le_bytes(*b"measure\0"),
            },
        ] {
            assert_eq!(Hypercall::decode(h.encode()), Ok(h), "{h:?}");
        }
        let Hypercall::ConsoleWrite { len, bytes } = Hypercall::console_write(b"ab") else {
            unreachable!()
        };
        assert_eq!((len, &bytes[..3]), (2, &b"ab\0"[..]));
    }

    #[test]
    fn nonsense_gets_an_error_not_a_guess() {
        let mut x = Hypercall::console_write(b"ok").encode();
        x[1] = CONSOLE_MAX as u64 + 1;
        assert_eq!(Hypercall::decode(x), Err(Error::InvalidParameters));
        x[1] = u64::MAX;
        assert_eq!(Hypercall::decode(x), Err(Error::InvalidParameters));
        assert_eq!(
            Hypercall::decode([BASE | 0xff, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::NotSupported)
        );
        // Only w0 counts, as SMCCC says: the upper half of x0 is ignored.
        assert_eq!(
            Hypercall::decode([0xdead_0000_0000_0000 | id::VERSION, 0, 0, 0, 0, 0, 0, 0]),
            Ok(Hypercall::Version)
        );
        assert_eq!(Error::NotSupported.x0(), u64::MAX);
        assert_eq!(Error::Retry.x0().cast_signed(), -4);
    }
}
