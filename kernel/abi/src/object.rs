//! Kernel object types, their sizes, and capability rights.

use bitflags::bitflags;

/// Kernel object types, as `Untyped::Retype` and `DebugCapIdentify` number them.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjType {
    /// Untyped memory, the source of every other object.
    Untyped = 0,
    /// A table of `2^radix` capability slots.
    CNode = 1,
    /// A thread.
    Tcb = 2,
    /// A synchronous IPC endpoint.
    Endpoint = 3,
    /// A word of signal bits.
    Notification = 4,
    /// A reply object: where a Call's caller waits for its answer.
    Reply = 5,
    /// A scheduling context: budget and period.
    SchedContext = 6,
    /// A page of memory: 4 KiB (`size_bits` 12) or 2 MiB (21).
    Frame = 7,
    /// An intermediate stage-2 translation table (level 2 or 3).
    PageTable = 8,
    /// The root stage-2 table of an address space, with its VMID.
    VSpace = 9,
    /// Authority to create IRQ handlers.
    IrqControl = 10,
    /// One interrupt line.
    IrqHandler = 11,
    /// Authority to configure scheduling contexts.
    SchedControl = 12,
    /// Authority to use the kernel's debug console and to halt the machine
    /// (`DebugPutChar`, `DebugHalt`). The root server gets it; a system description
    /// grants copies (`debug = true`).
    Debug = 13,
    /// A quota of VMIDs: the right to give VSpaces a VMID from a range. A VSpace is
    /// retyped without one and cannot be used until `VmidPoolAssign` gives it one. The
    /// root server gets a pool of every VMID but its own; a system description gives a
    /// server a pool of `vmids = N`, split off the root's. Pool caps cannot be copied,
    /// only moved, so a quota cannot be duplicated.
    VmidPool = 14,
    /// A virtual CPU: a guest's EL1 register state. Bound to a Tcb, it makes that thread
    /// run a guest at EL1/EL0 in the stage-2 address space of its VSpace; the guest's
    /// exits become messages to the thread's fault endpoint (`gaon_abi::exit`).
    VCpu = 15,
    /// Authority over the kernel's trace points (`gaon_abi::trace`): which classes of
    /// events are recorded, and giving back ring space a reader has read. The root
    /// server gets it; a system description grants copies to its trace server.
    TraceControl = 16,
}

impl ObjType {
    /// Every type, in numeric order.
    pub const ALL: [Self; 17] = [
        Self::Untyped,
        Self::CNode,
        Self::Tcb,
        Self::Endpoint,
        Self::Notification,
        Self::Reply,
        Self::SchedContext,
        Self::Frame,
        Self::PageTable,
        Self::VSpace,
        Self::IrqControl,
        Self::IrqHandler,
        Self::SchedControl,
        Self::Debug,
        Self::VmidPool,
        Self::VCpu,
        Self::TraceControl,
    ];

    /// Decode a type number.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        if raw >= Self::ALL.len() as u64 {
            return None;
        }
        Some(Self::ALL[raw as usize])
    }

    /// True for types whose capabilities may carry a badge.
    pub const fn badgeable(self) -> bool {
        matches!(self, Self::Endpoint | Self::Notification)
    }

    /// log2 of the object's size for `Untyped::Retype`, given the caller's `size_bits`
    /// argument (used by Untyped, CNode and Frame). `None`: not retypeable or bad size.
    pub const fn object_bits(self, size_bits: u64) -> Option<u8> {
        Some(match self {
            Self::Untyped if size_bits >= UNTYPED_MIN_BITS as u64 && size_bits <= UNTYPED_MAX_BITS as u64 => {
                size_bits as u8
            }
            Self::CNode if size_bits >= 1 && size_bits <= CNODE_MAX_RADIX as u64 => size_bits as u8 + SLOT_BITS,
            Self::Tcb => TCB_BITS,
            Self::Endpoint => ENDPOINT_BITS,
            Self::Notification => NOTIFICATION_BITS,
            Self::Reply => REPLY_BITS,
            Self::SchedContext => SCHED_CONTEXT_BITS,
            Self::VCpu => VCPU_BITS,
            Self::Frame if size_bits == PAGE_BITS as u64 || size_bits == LARGE_PAGE_BITS as u64 => size_bits as u8,
            Self::PageTable | Self::VSpace => PAGE_BITS,
            _ => return None,
        })
    }
}

/// What `UntypedRetype` makes: a type and the `size_bits` argument of
/// [`ObjType::object_bits`] (untyped: log2 of the size; CNode: radix; frame: 12 or 21;
/// ignored for the rest, send 0). Packed into one word: type in bits 0..8, `size_bits`
/// in bits 8..16 (see [`Word`](crate::layout::Word)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectSpec {
    /// The object type.
    pub ty: ObjType,
    /// Its size argument.
    pub size_bits: u8,
}

impl ObjectSpec {
    /// `size_bits` objects of type `ty`.
    pub const fn new(ty: ObjType, size_bits: u8) -> Self {
        Self { ty, size_bits }
    }

    /// log2 of each object's size; `None` if the type is not retypeable or the size is
    /// not one it allows (a decoded spec always has one).
    pub const fn object_bits(self) -> Option<u8> {
        self.ty.object_bits(self.size_bits as u64)
    }
}

/// Smallest untyped (16 bytes).
pub const UNTYPED_MIN_BITS: u8 = 4;
/// Largest untyped (2^47 bytes).
pub const UNTYPED_MAX_BITS: u8 = 47;
/// log2 of a capability slot's size.
pub const SLOT_BITS: u8 = 6;
/// Largest CNode radix (2^20 slots, 64 MiB).
pub const CNODE_MAX_RADIX: u8 = 20;
/// log2 of a Tcb.
pub const TCB_BITS: u8 = 11;
/// log2 of an Endpoint.
pub const ENDPOINT_BITS: u8 = 5;
/// log2 of a Notification.
pub const NOTIFICATION_BITS: u8 = 6;
/// log2 of a Reply object.
pub const REPLY_BITS: u8 = 5;
/// log2 of a SchedContext.
pub const SCHED_CONTEXT_BITS: u8 = 8;
/// log2 of a VCpu.
pub const VCPU_BITS: u8 = 10;
/// log2 of a small page.
pub const PAGE_BITS: u8 = 12;
/// log2 of a large page (a level-2 block).
pub const LARGE_PAGE_BITS: u8 = 21;

bitflags! {
    /// What a capability allows. Mint and Copy can only take rights away.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u64 {
        /// Receive on an endpoint; read a frame.
        const READ = 1;
        /// Send on an endpoint; write a frame.
        const WRITE = 2;
        /// Transfer capabilities through an endpoint; execute a frame.
        const GRANT = 4;
        /// Execute a mapped frame.
        const EXECUTE = 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_numbers_round_trip() {
        for t in ObjType::ALL {
            assert_eq!(ObjType::from_raw(t as u64), Some(t));
        }
        assert_eq!(ObjType::from_raw(17), None);
    }

    #[test]
    fn object_sizes() {
        assert_eq!(ObjType::CNode.object_bits(4), Some(10));
        assert_eq!(ObjType::CNode.object_bits(0), None);
        assert_eq!(ObjType::Frame.object_bits(13), None);
        assert_eq!(ObjType::Frame.object_bits(21), Some(21));
        assert_eq!(ObjType::IrqControl.object_bits(0), None);
        assert_eq!(ObjType::Untyped.object_bits(3), None);
    }
}
