//! Message layout: the message-info word and the IPC buffer.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Message registers a message can carry in all (registers plus IPC buffer).
pub const MSG_MAX_LENGTH: usize = 120;
/// Capabilities a message can carry.
pub const MSG_MAX_EXTRA_CAPS: usize = 3;
/// log2 of the IPC buffer's size and alignment.
pub const IPC_BUFFER_SIZE_BITS: u32 = 10;

/// The message-info word (`x1`): label, length and capability counts.
///
/// | bits   | field                                                 |
/// |--------|-------------------------------------------------------|
/// | 0..7   | length: message registers used (0..=120)              |
/// | 7..9   | extra caps sent (0..=3)                               |
/// | 9..12  | caps unwrapped: bit i set = cap i arrived as a badge  |
/// | 12     | `KERNEL`: the kernel wrote this (error or invocation) |
/// | 13     | `NOTIFY`: a notification's signal bits are in `x0`    |
/// | 16..64 | label                                                 |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgInfo(pub u64);

impl MsgInfo {
    const KERNEL: u64 = 1 << 12;
    const NOTIFY: u64 = 1 << 13;

    /// What a receive returns when a notification (bound or waited on) delivered the
    /// signal bits in `x0` instead of a message.
    pub const fn notification() -> Self {
        Self(Self::KERNEL | Self::NOTIFY)
    }

    /// True for a notification delivery.
    pub const fn is_notification(self) -> bool {
        self.0 & Self::NOTIFY != 0
    }

    /// A message with `label`, `length` message registers and `extra_caps` caps.
    /// Out-of-range fields are clamped so the word is always well formed.
    pub const fn new(label: u64, length: usize, extra_caps: usize) -> Self {
        let length = if length > MSG_MAX_LENGTH {
            MSG_MAX_LENGTH
        } else {
            length
        };
        let caps = if extra_caps > MSG_MAX_EXTRA_CAPS {
            MSG_MAX_EXTRA_CAPS
        } else {
            extra_caps
        };
        Self(((label & 0xffff_ffff_ffff) << 16) | ((caps as u64) << 7) | length as u64)
    }

    /// A kernel-written reply: `label` is 0 or an [`Error`](crate::Error) code.
    pub const fn kernel(label: u64, length: usize) -> Self {
        Self(Self::new(label, length, 0).0 | Self::KERNEL)
    }

    /// The label.
    pub const fn label(self) -> u64 {
        self.0 >> 16
    }
    /// Message registers used; the kernel clamps a user-supplied value to 120.
    pub const fn length(self) -> usize {
        let l = (self.0 & 0x7f) as usize;
        if l > MSG_MAX_LENGTH { MSG_MAX_LENGTH } else { l }
    }
    /// Extra capabilities.
    pub const fn extra_caps(self) -> usize {
        ((self.0 >> 7) & 3) as usize
    }
    /// Which caps were unwrapped into badges.
    pub const fn caps_unwrapped(self) -> u64 {
        (self.0 >> 9) & 7
    }
    /// True if the kernel wrote this word (an invocation reply or a syscall error).
    pub const fn is_kernel(self) -> bool {
        self.0 & Self::KERNEL != 0
    }
    /// This word with the unwrapped mask set.
    #[must_use]
    pub const fn with_unwrapped(self, mask: u64) -> Self {
        Self((self.0 & !(7 << 9)) | ((mask & 7) << 9))
    }
    /// This word with another extra-cap count.
    #[must_use]
    pub const fn with_extra_caps(self, n: usize) -> Self {
        let n = if n > MSG_MAX_EXTRA_CAPS { MSG_MAX_EXTRA_CAPS } else { n };
        Self((self.0 & !(3 << 7)) | ((n as u64) << 7))
    }
    /// The error this kernel reply reports, if any.
    pub const fn error(self) -> Option<crate::Error> {
        if self.is_kernel() {
            crate::Error::from_raw(self.label())
        } else {
            None
        }
    }
}

/// A thread's IPC buffer: message registers beyond the first four, and capability
/// transfer fields. It lives in a frame the thread maps; `Tcb::SetIpcBuffer` tells the
/// kernel where. It is 1 KiB and must be 1 KiB aligned.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct IpcBuffer {
    /// Unused by the kernel (the tag travels in `x1`).
    pub tag: u64,
    /// Message registers. `msg[0..4]` travel in `x2..x5` and are not read here.
    pub msg: [u64; MSG_MAX_LENGTH],
    /// Free for the thread's own use (libl4 keeps its TLS pointer here).
    pub user_data: u64,
    /// Send: CPtrs of caps to transfer. Receive: badges of unwrapped caps.
    pub caps_or_badges: [u64; MSG_MAX_EXTRA_CAPS],
    /// Receive: CPtr of the CNode for a received cap (0 = accept none).
    pub receive_cnode: u64,
    /// Receive: slot index in that CNode.
    pub receive_index: u64,
    /// Reserved, keep 0.
    pub reserved: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<IpcBuffer>(), 1 << IPC_BUFFER_SIZE_BITS);

/// Byte offset of message register `i` (4..120) in the IPC buffer.
pub const fn ipc_buffer_msg_offset(i: usize) -> usize {
    8 + 8 * i
}
/// Byte offset of `caps_or_badges[0]`.
pub const IPC_BUFFER_CAPS_OFFSET: usize = 8 + 8 * MSG_MAX_LENGTH + 8;
/// Byte offset of `receive_cnode`.
pub const IPC_BUFFER_RECEIVE_CNODE_OFFSET: usize = IPC_BUFFER_CAPS_OFFSET + 8 * MSG_MAX_EXTRA_CAPS;
/// Byte offset of `receive_index`.
pub const IPC_BUFFER_RECEIVE_INDEX_OFFSET: usize = IPC_BUFFER_RECEIVE_CNODE_OFFSET + 8;

static_assertions::const_assert_eq!(core::mem::offset_of!(IpcBuffer, caps_or_badges), IPC_BUFFER_CAPS_OFFSET);
static_assertions::const_assert_eq!(
    core::mem::offset_of!(IpcBuffer, receive_index),
    IPC_BUFFER_RECEIVE_INDEX_OFFSET
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_clamp() {
        let m = MsgInfo::new(0xabc, 7, 2);
        assert_eq!(
            (m.label(), m.length(), m.extra_caps(), m.is_kernel()),
            (0xabc, 7, 2, false)
        );
        let m = MsgInfo::new(1, 500, 9);
        assert_eq!((m.length(), m.extra_caps()), (MSG_MAX_LENGTH, MSG_MAX_EXTRA_CAPS));
        assert_eq!(MsgInfo(0x7f).length(), MSG_MAX_LENGTH);
        let k = MsgInfo::kernel(crate::Error::RangeError as u64, 0);
        assert_eq!(k.error(), Some(crate::Error::RangeError));
        assert_eq!(MsgInfo::kernel(0, 2).error(), None);
        assert_eq!(m.with_unwrapped(5).caps_unwrapped(), 5);
        assert_eq!(m.with_extra_caps(1).extra_caps(), 1);
    }
}
