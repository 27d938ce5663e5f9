//! Invocation labels: the label of a Call on a kernel object's capability says which
//! operation to perform. Arguments are message registers (MR0..), in the order listed.
//! Capability arguments are CPtrs resolved in the invoker's CSpace. The reply's label is
//! 0 or an [`Error`](crate::Error) code; its message registers hold the results.

/// Invocation labels. The numbering is part of the ABI.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Untyped: MR0 = type | size_bits << 8, MR1 = destination CNode CPtr, MR2 = first
    /// slot index, MR3 = count. Creates `count` objects in consecutive empty slots.
    UntypedRetype = 1,

    /// CNode: MR0 = destination index in this CNode, MR1 = source CPtr, MR2 = rights mask.
    CNodeCopy = 10,
    /// CNode: MR0 = destination index, MR1 = source CPtr, MR2 = rights mask, MR3 = badge.
    CNodeMint = 11,
    /// CNode: MR0 = destination index, MR1 = source CPtr.
    CNodeMove = 12,
    /// CNode: MR0 = destination index, MR1 = source CPtr, MR2 = badge (0 keeps it).
    CNodeMutate = 13,
    /// CNode: MR0 = index. Empties the slot; the object dies with its last cap.
    CNodeDelete = 14,
    /// CNode: MR0 = index. Deletes every capability derived from the slot's.
    CNodeRevoke = 15,
    /// CNode: MR0 = index. Reply MR0 = the type (+1, 0 = empty), MR1 = badge, MR2 = rights.
    CNodeIdentify = 16,

    /// Tcb: MR0 = CSpace root CNode CPtr, MR1 = VSpace CPtr, MR2 = fault endpoint CPtr
    /// (0 = none). Takes copies of the caps.
    TcbSetSpace = 20,
    /// Tcb: MR0 = buffer address (1 KiB aligned), MR1 = frame CPtr (0 = no buffer).
    TcbSetIpcBuffer = 21,
    /// Tcb: MR0 = priority, MR1 = authority Tcb CPtr whose MCP bounds it.
    TcbSetPriority = 22,
    /// Tcb: MR0 = maximum controlled priority, MR1 = authority Tcb CPtr.
    TcbSetMcp = 23,
    /// Tcb: MR0 = first register index, MR1 = count. Reply MRs = registers
    /// (see [`REG_PC`] and friends).
    TcbReadRegisters = 24,
    /// Tcb: MR0 = first register index, MR1 = count, MR2.. = values.
    TcbWriteRegisters = 25,
    /// Tcb: make the thread runnable.
    TcbResume = 26,
    /// Tcb: stop the thread, aborting any IPC it is blocked in.
    TcbSuspend = 27,
    /// Tcb: MR0 = Notification CPtr to bind; signals then also wake a Recv on an endpoint.
    TcbBindNotification = 28,
    /// Tcb: undo `TcbBindNotification`.
    TcbUnbindNotification = 29,
    /// Tcb: MR0 = endpoint CPtr for timeout faults (0 = none).
    TcbSetTimeoutEndpoint = 30,
    /// Tcb: reply MR0 = thread state (see [`ThreadState`]), MR1 = priority, MR2 = MCP.
    TcbGetState = 31,

    /// Frame: MR0 = VSpace CPtr, MR1 = address, MR2 = rights ([`Rights`](crate::Rights)
    /// bits), MR3 = attributes ([`FRAME_ATTR_DEVICE`]). Mapping again at the same place
    /// changes the rights (remap).
    FrameMap = 40,
    /// Frame: remove this cap's mapping.
    FrameUnmap = 41,
    /// Frame: reply MR0 = physical address, MR1 = size_bits, MR2 = mapped address or `u64::MAX`.
    FrameGetAddress = 42,
    /// PageTable: MR0 = VSpace CPtr, MR1 = address it will translate.
    PageTableMap = 43,
    /// PageTable: remove it from its VSpace.
    PageTableUnmap = 44,
    /// VSpace: reply MR0 = VMID (0 = none assigned yet).
    VSpaceGetVmid = 45,
    /// VmidPool: MR0 = VSpace CPtr. Gives the VSpace a free VMID of the pool's range
    /// (`NoVmid` if none is free; `IllegalOperation` if it has one already).
    VmidPoolAssign = 46,
    /// VmidPool: MR0 = count, MR1 = destination CNode CPtr, MR2 = slot index. Moves the
    /// last `count` VMIDs of this pool's range into a new pool (a child of this one:
    /// revoking this pool deletes it; VSpaces keep the VMIDs they were given).
    VmidPoolSplit = 47,

    /// IrqControl: MR0 = IRQ number, MR1 = destination CNode CPtr, MR2 = slot index.
    IrqControlGet = 50,
    /// IrqHandler: MR0 = Notification CPtr the IRQ signals (0 = none).
    IrqHandlerSetNotification = 51,
    /// IrqHandler: the IRQ was handled; let it fire again.
    IrqHandlerAck = 52,
    /// IrqHandler: mask the line and forget the notification.
    IrqHandlerClear = 53,
    /// IrqHandler for the board's user timer line (`timer.user_irq`, the EL1 virtual
    /// timer) only: MR0 = compare value in counter ticks (`CNTVCT_EL0`), MR1 = 1 to arm
    /// the timer, 0 to disarm it. The line fires when the counter reaches the value.
    /// EL0 cannot program the timer itself; holding this handler is the permission.
    IrqHandlerSetTimer = 54,

    /// SchedControl: MR0 = SchedContext CPtr, MR1 = budget (µs), MR2 = period (µs),
    /// MR3 = badge reported in timeout faults.
    SchedControlConfigure = 60,
    /// SchedContext: MR0 = Tcb CPtr to bind.
    SchedContextBind = 61,
    /// SchedContext: unbind from its thread.
    SchedContextUnbind = 62,
    /// SchedContext: reply MR0 = time consumed since the last query (µs).
    SchedContextConsumed = 63,

    /// Debug: MR0 = Notification CPtr (with the write right), or 0 to unbind. From now
    /// on the kernel appends its console output to the kernel log page (boot slot
    /// `KERNEL_LOG`, see [`crate::klog`]) and signals this notification, instead of
    /// printing on the UART; the reader prints it.
    DebugLogBind = 70,
}

impl Label {
    /// Every label.
    pub const ALL: [Self; 38] = [
        Self::UntypedRetype,
        Self::CNodeCopy,
        Self::CNodeMint,
        Self::CNodeMove,
        Self::CNodeMutate,
        Self::CNodeDelete,
        Self::CNodeRevoke,
        Self::CNodeIdentify,
        Self::TcbSetSpace,
        Self::TcbSetIpcBuffer,
        Self::TcbSetPriority,
        Self::TcbSetMcp,
        Self::TcbReadRegisters,
        Self::TcbWriteRegisters,
        Self::TcbResume,
        Self::TcbSuspend,
        Self::TcbBindNotification,
        Self::TcbUnbindNotification,
        Self::TcbSetTimeoutEndpoint,
        Self::TcbGetState,
        Self::FrameMap,
        Self::FrameUnmap,
        Self::FrameGetAddress,
        Self::PageTableMap,
        Self::PageTableUnmap,
        Self::VSpaceGetVmid,
        Self::VmidPoolAssign,
        Self::VmidPoolSplit,
        Self::IrqControlGet,
        Self::IrqHandlerSetNotification,
        Self::IrqHandlerAck,
        Self::IrqHandlerClear,
        Self::IrqHandlerSetTimer,
        Self::SchedControlConfigure,
        Self::SchedContextBind,
        Self::SchedContextUnbind,
        Self::SchedContextConsumed,
        Self::DebugLogBind,
    ];

    /// Decode a label.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Self::ALL.iter().copied().find(|l| *l as u64 == raw)
    }

    /// The invocations of objects of type `ty` (none for endpoints, notifications and
    /// reply objects: a Call on them is IPC).
    pub const fn of(ty: crate::ObjType) -> &'static [Self] {
        use crate::ObjType as T;
        match ty {
            T::Untyped => &[Self::UntypedRetype],
            T::CNode => &[
                Self::CNodeCopy,
                Self::CNodeMint,
                Self::CNodeMove,
                Self::CNodeMutate,
                Self::CNodeDelete,
                Self::CNodeRevoke,
                Self::CNodeIdentify,
            ],
            T::Tcb => &[
                Self::TcbSetSpace,
                Self::TcbSetIpcBuffer,
                Self::TcbSetPriority,
                Self::TcbSetMcp,
                Self::TcbReadRegisters,
                Self::TcbWriteRegisters,
                Self::TcbResume,
                Self::TcbSuspend,
                Self::TcbBindNotification,
                Self::TcbUnbindNotification,
                Self::TcbSetTimeoutEndpoint,
                Self::TcbGetState,
            ],
            T::Frame => &[Self::FrameMap, Self::FrameUnmap, Self::FrameGetAddress],
            T::PageTable => &[Self::PageTableMap, Self::PageTableUnmap],
            T::VSpace => &[Self::VSpaceGetVmid],
            T::VmidPool => &[Self::VmidPoolAssign, Self::VmidPoolSplit],
            T::IrqControl => &[Self::IrqControlGet],
            T::IrqHandler => &[
                Self::IrqHandlerSetNotification,
                Self::IrqHandlerAck,
                Self::IrqHandlerClear,
                Self::IrqHandlerSetTimer,
            ],
            T::SchedControl => &[Self::SchedControlConfigure],
            T::SchedContext => &[
                Self::SchedContextBind,
                Self::SchedContextUnbind,
                Self::SchedContextConsumed,
            ],
            T::Debug => &[Self::DebugLogBind],
            T::Endpoint | T::Notification | T::Reply => &[],
        }
    }
}

/// Register index of the program counter in Read/WriteRegisters.
pub const REG_PC: u64 = 0;
/// Register index of the stack pointer.
pub const REG_SP: u64 = 1;
/// Register index of the saved PSTATE (only the NZCV flags can be written).
pub const REG_SPSR: u64 = 2;
/// Register index of `x0`; `x0..x30` follow.
pub const REG_X0: u64 = 3;
/// Register index of TPIDR_EL0 (the thread pointer).
pub const REG_TPIDR: u64 = 34;
/// Number of registers Read/WriteRegisters address.
pub const REG_COUNT: u64 = 35;

/// Frame map attribute: map as Device-nGnRE memory (never executable).
pub const FRAME_ATTR_DEVICE: u64 = 1;

/// Highest thread priority.
pub const MAX_PRIORITY: u64 = 255;

/// Thread states: what the kernel keeps in each Tcb and `TcbGetState` reports.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Not started or suspended.
    Inactive = 0,
    /// Runnable or running.
    Running = 1,
    /// Blocked sending on an endpoint.
    BlockedOnSend = 2,
    /// Blocked receiving on an endpoint.
    BlockedOnRecv = 3,
    /// Blocked waiting for a reply.
    BlockedOnReply = 4,
    /// Blocked waiting on a notification.
    BlockedOnNotification = 5,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_round_trip() {
        for (i, a) in Label::ALL.iter().enumerate() {
            assert_eq!(Label::from_raw(*a as u64), Some(*a));
            for b in &Label::ALL[i + 1..] {
                assert!(a == b || *a as u64 != *b as u64);
            }
        }
        assert_eq!(Label::from_raw(0), None);
    }

    /// Every label belongs to exactly one object type.
    #[test]
    fn every_label_has_one_type() {
        for l in Label::ALL {
            let owners = crate::ObjType::ALL
                .iter()
                .filter(|&&t| Label::of(t).contains(&l))
                .count();
            assert_eq!(owners, 1, "{l:?}");
        }
    }
}
