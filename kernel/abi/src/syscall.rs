//! Syscall numbers, the register convention and error codes.
//!
//! A user thread enters the kernel with `svc #0`, the syscall number in `x7`:
//!
//! | register | in                                  | out                       |
//! |----------|-------------------------------------|---------------------------|
//! | `x0`     | capability (CPtr) to send to / receive from | badge of the sender |
//! | `x1`     | [`MsgInfo`](crate::MsgInfo)         | `MsgInfo` of the reply/message |
//! | `x2..x5` | message registers 0..3              | message registers 0..3    |
//! | `x6`     | reply object CPtr (Recv, ReplyRecv)  | unchanged                 |
//! | `x7`     | syscall number                      | unchanged                 |
//!
//! The debug syscalls (`0x100..`) use the simpler convention of the first boot code:
//! arguments in `x0..`, `x0` = 0 or an [`Error`], results in `x1..`.

/// The syscall number register (`x7`).
pub const SYSCALL_NUMBER_REG: usize = 7;
/// Register holding the destination/source capability, and the badge on return.
pub const CAP_REG: usize = 0;
/// Register holding the message info word.
pub const INFO_REG: usize = 1;
/// First message register (`x2`).
pub const FIRST_MR_REG: usize = 2;
/// Message registers passed in CPU registers (`x2..x5`); the rest use the IPC buffer.
pub const MSG_REGISTERS: usize = 4;
/// Register holding the reply object for Recv and ReplyRecv.
pub const REPLY_REG: usize = 6;

/// Syscall numbers. The numbering is part of the ABI: never reuse a retired number.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// Send to an endpoint and wait for the reply, or invoke a kernel object.
    Call = 1,
    /// Reply through the reply object in `x6`, then receive on the endpoint in `x0`.
    ReplyRecv = 2,
    /// Send, blocking until a receiver takes the message; signal a notification.
    Send = 3,
    /// Send only if a receiver is waiting; otherwise drop the message.
    NbSend = 4,
    /// Receive from an endpoint (reply object in `x6`) or wait on a notification.
    Recv = 5,
    /// Receive only if a message or signal is pending; otherwise [`Error::WouldBlock`].
    NbRecv = 6,
    /// Write one byte (`x0`) to the kernel console.
    DebugPutChar = 0x100,
    /// Stop the whole system. `x0` is the exit status QEMU reports (0 = success).
    DebugHalt = 0x101,
    /// Return in `x1` the number of kernel timer interrupts taken since boot, on all
    /// cores. The timer is a one-shot set for the next scheduling deadline (see
    /// `docs/kernel.md`, "Time"), not a periodic tick: this counts deadlines that came.
    DebugTicks = 0x102,
    /// Return in `x1` how many Call and ReplyRecv syscalls the fastpath did not take
    /// (they went the general way) since boot. A test that a round trip takes the
    /// fastpath reads it before and after: the fastpath itself counts nothing.
    DebugSlowpathCount = 0x103,
    /// Return in `x1` the object type (as [`ObjType`](crate::ObjType) + 1, 0 = empty)
    /// of the capability whose CPtr is in `x0`.
    DebugCapIdentify = 0x104,
    /// Check the kernel's structures (kernels built with the `consistency-check`
    /// feature: the test and fuzz images; others return [`Error::UnknownSyscall`] in
    /// `x0`). `x0` bit 0 set: the caller holds every boot capability (the root server),
    /// so every VMID in use must be named by a VSpace capability it can reach. Returns
    /// `x0` = 0 if consistent, else [`Error::IllegalOperation`]; `x1` problems found,
    /// `x2` slots and `x3` derivation-tree capabilities visited, `x4` threads checked,
    /// `x5` the first problem (`code << 48 | address`), `x6` 1 if a bound cut the walk
    /// short. See `kernel/core/src/kernel/check.rs`.
    DebugCheckConsistency = 0x105,
    /// Give up the rest of the current time slice: behind the other runnable threads
    /// of the caller's priority.
    Yield = 0x200,
    /// Do nothing and return 0 in `x0`: the cost of entering and leaving the kernel
    /// (the benchmarks' null syscall).
    Null = 0x201,
    /// Give up the rest of the current budget, then yield: a thread with a scheduling
    /// context is not run again until its next refill is due (the rest of the head
    /// refill is spent, not counted as consumed time, and no timeout fault is sent).
    /// Without a budget it is [`Syscall::Yield`].
    YieldBudget = 0x202,
}

impl Syscall {
    /// Decode a syscall number. Unknown numbers are `None`, never a panic.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::Call,
            2 => Self::ReplyRecv,
            3 => Self::Send,
            4 => Self::NbSend,
            5 => Self::Recv,
            6 => Self::NbRecv,
            0x100 => Self::DebugPutChar,
            0x101 => Self::DebugHalt,
            0x102 => Self::DebugTicks,
            0x103 => Self::DebugSlowpathCount,
            0x104 => Self::DebugCapIdentify,
            0x105 => Self::DebugCheckConsistency,
            0x200 => Self::Yield,
            0x201 => Self::Null,
            0x202 => Self::YieldBudget,
            _ => return None,
        })
    }

    /// All syscalls, for tests and documentation.
    pub const ALL: [Self; 15] = [
        Self::Call,
        Self::ReplyRecv,
        Self::Send,
        Self::NbSend,
        Self::Recv,
        Self::NbRecv,
        Self::DebugPutChar,
        Self::DebugHalt,
        Self::DebugTicks,
        Self::DebugSlowpathCount,
        Self::DebugCapIdentify,
        Self::DebugCheckConsistency,
        Self::Yield,
        Self::Null,
        Self::YieldBudget,
    ];
}

/// Error codes. An invocation's reply carries one as its label (0 = success); a failed
/// IPC syscall returns one as the label of a [`MsgInfo`](crate::MsgInfo) with the
/// `KERNEL` flag; the debug syscalls return one in `x0`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The syscall number is not one the kernel knows.
    UnknownSyscall = 1,
    /// An argument is out of range or malformed.
    InvalidArgument = 2,
    /// The capability is empty or of the wrong type for the operation.
    InvalidCapability = 3,
    /// The operation is not allowed on this object or in its current state.
    IllegalOperation = 4,
    /// A number is outside the range the object allows.
    RangeError = 5,
    /// An address or size is not aligned as required.
    AlignmentError = 6,
    /// A CPtr does not resolve to a slot (guard mismatch, depth, missing CNode).
    FailedLookup = 7,
    /// The message is shorter than the operation needs.
    TruncatedMessage = 8,
    /// The destination slot or mapping is in use; delete it first.
    DeleteFirst = 9,
    /// The object still has children; revoke it first.
    RevokeFirst = 10,
    /// The untyped has too little room left.
    NotEnoughMemory = 11,
    /// The capability lacks a right the operation needs.
    NoRights = 12,
    /// A non-blocking receive found nothing.
    WouldBlock = 13,
    /// The IPC was aborted: the endpoint, reply or partner was deleted or suspended.
    Cancelled = 14,
    /// The label names no operation of this object type.
    UnknownInvocation = 15,
    /// The VMID pool has no free VMID left.
    NoVmid = 16,
}

impl Error {
    /// Every error code, in numeric order.
    pub const ALL: [Self; 16] = [
        Self::UnknownSyscall,
        Self::InvalidArgument,
        Self::InvalidCapability,
        Self::IllegalOperation,
        Self::RangeError,
        Self::AlignmentError,
        Self::FailedLookup,
        Self::TruncatedMessage,
        Self::DeleteFirst,
        Self::RevokeFirst,
        Self::NotEnoughMemory,
        Self::NoRights,
        Self::WouldBlock,
        Self::Cancelled,
        Self::UnknownInvocation,
        Self::NoVmid,
    ];

    /// Decode an error code; `0` (success) and unknown codes give `None`.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        if raw == 0 || raw > Self::ALL.len() as u64 {
            return None;
        }
        Some(Self::ALL[raw as usize - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip() {
        for s in Syscall::ALL {
            assert_eq!(Syscall::from_raw(s as u64), Some(s));
        }
        assert_eq!(Syscall::from_raw(0), None);
        assert_eq!(Syscall::from_raw(u64::MAX), None);
    }

    #[test]
    fn error_codes_round_trip() {
        assert_eq!(Error::from_raw(0), None);
        for e in Error::ALL {
            assert_eq!(Error::from_raw(e as u64), Some(e));
        }
        assert_eq!(Error::from_raw(99), None);
    }
}
