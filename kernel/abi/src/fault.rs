//! Fault messages: what the kernel sends to a thread's fault endpoint on its behalf.
//! The message's label is the [`FaultKind`]; the faulting thread waits for a reply.
//! Replying resumes it: if the reply has MR0 it becomes the new PC, MR1 the new SP.

/// Fault kinds (the fault message's label).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// MR0 = PC, MR1 = fault address, MR2 = 1 for an instruction fetch, MR3 = ESR.
    VmFault = 1,
    /// MR0 = PC, MR1 = SP, MR2 = the syscall number (x7), MR3 = x0.
    UnknownSyscall = 2,
    /// MR0 = PC, MR1 = SP, MR2 = ESR, MR3 = FAR.
    UserException = 3,
    /// MR0 = the SchedContext's badge, MR1 = time consumed (µs).
    Timeout = 4,
}

impl FaultKind {
    /// Decode a label.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::VmFault,
            2 => Self::UnknownSyscall,
            3 => Self::UserException,
            4 => Self::Timeout,
            _ => return None,
        })
    }
}

/// Message registers in every fault message.
pub const FAULT_MSG_LENGTH: usize = 4;
