//! Typed capability handles. Each wraps a CPtr in the thread's CSpace and offers the
//! invocations of its object type, returning the kernel's error on failure.

use gaon_abi::{Error, Label, ObjType, Rights};

use crate::ipc::{CPtr, Msg, invoke};

macro_rules! handle {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub CPtr);
        impl $name {
            /// The CPtr.
            pub const fn cptr(self) -> CPtr {
                self.0
            }
        }
    )*};
}

handle!(
    /// Untyped memory.
    Untyped,
    /// A CNode.
    CNode,
    /// A thread.
    Tcb,
    /// An endpoint.
    Endpoint,
    /// A notification.
    Notification,
    /// A reply object.
    Reply,
    /// A frame.
    Frame,
    /// A page table.
    PageTable,
    /// An address space.
    VSpace,
    /// IRQ control.
    IrqControl,
    /// One IRQ line.
    IrqHandler,
    /// Scheduling-context control.
    SchedControl,
    /// A scheduling context.
    SchedContext,
    /// A quota of VMIDs.
    VmidPool,
    /// The kernel debug console and halting (object type `Debug`).
    DebugCap,
);

fn unit(r: Result<Msg, Error>) -> Result<(), Error> {
    r.map(|_| ())
}

impl Untyped {
    /// Create `count` objects of `ty` (`size_bits` for untyped, CNodes (radix) and
    /// frames) in slots `offset..` of `dest`.
    pub fn retype(self, ty: ObjType, size_bits: u8, dest: CNode, offset: u64, count: u64) -> Result<(), Error> {
        let w0 = ty as u64 | (u64::from(size_bits) << 8);
        unit(invoke(self.0, Label::UntypedRetype, &[w0, dest.0, offset, count]))
    }
}

impl CNode {
    /// Copy `src` into slot `index` with `rights`.
    pub fn copy(self, index: u64, src: CPtr, rights: Rights) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeCopy, &[index, src, rights.bits()]))
    }
    /// Copy `src` into slot `index` with `rights` and `badge` (a guard for CNodes).
    pub fn mint(self, index: u64, src: CPtr, rights: Rights, badge: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeMint, &[index, src, rights.bits(), badge]))
    }
    /// Move `src` into slot `index`.
    pub fn move_(self, index: u64, src: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeMove, &[index, src]))
    }
    /// Move `src` into slot `index`, badging it.
    pub fn mutate(self, index: u64, src: CPtr, badge: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeMutate, &[index, src, badge]))
    }
    /// Delete the cap in slot `index`.
    pub fn delete(self, index: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeDelete, &[index]))
    }
    /// Delete every cap derived from slot `index`.
    pub fn revoke(self, index: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::CNodeRevoke, &[index]))
    }
    /// `(type + 1 or 0, badge, rights)` of slot `index`.
    pub fn identify(self, index: u64) -> Result<(u64, u64, u64), Error> {
        invoke(self.0, Label::CNodeIdentify, &[index]).map(|m| (m.mr[0], m.mr[1], m.mr[2]))
    }
}

impl Tcb {
    /// Set CSpace root, VSpace and fault endpoint (0 = none).
    pub fn set_space(self, cspace: CNode, vspace: VSpace, fault_ep: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSetSpace, &[cspace.0, vspace.0, fault_ep]))
    }
    /// Set the IPC buffer (frame CPtr 0 = none).
    pub fn set_ipc_buffer(self, vaddr: u64, frame: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSetIpcBuffer, &[vaddr, frame]))
    }
    /// Set the priority, with `authority`'s MCP as the bound.
    pub fn set_priority(self, prio: u64, authority: Tcb) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSetPriority, &[prio, authority.0]))
    }
    /// Set the maximum controlled priority.
    pub fn set_mcp(self, mcp: u64, authority: Tcb) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSetMcp, &[mcp, authority.0]))
    }
    /// Write registers `first..first + values.len()` (see `gaon_abi::invocation::REG_*`).
    pub fn write_registers(self, first: u64, values: &[u64]) -> Result<(), Error> {
        let mut args = [0u64; 2 + gaon_abi::invocation::REG_COUNT as usize];
        if values.len() > gaon_abi::invocation::REG_COUNT as usize {
            return Err(Error::RangeError);
        }
        args[0] = first;
        args[1] = values.len() as u64;
        args[2..2 + values.len()].copy_from_slice(values);
        unit(invoke(self.0, Label::TcbWriteRegisters, &args[..2 + values.len()]))
    }
    /// Read up to four registers starting at `first`.
    pub fn read_registers(self, first: u64, count: u64) -> Result<[u64; 4], Error> {
        invoke(self.0, Label::TcbReadRegisters, &[first, count]).map(|m| m.mr)
    }
    /// Start or restart the thread.
    pub fn resume(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbResume, &[]))
    }
    /// Stop the thread.
    pub fn suspend(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSuspend, &[]))
    }
    /// Bind a notification.
    pub fn bind_notification(self, n: Notification) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbBindNotification, &[n.0]))
    }
    /// Unbind the notification.
    pub fn unbind_notification(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbUnbindNotification, &[]))
    }
    /// Set the timeout endpoint (0 = none).
    pub fn set_timeout_endpoint(self, ep: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::TcbSetTimeoutEndpoint, &[ep]))
    }
    /// `(state, priority, mcp)`.
    pub fn state(self) -> Result<(u64, u64, u64), Error> {
        invoke(self.0, Label::TcbGetState, &[]).map(|m| (m.mr[0], m.mr[1], m.mr[2]))
    }
}

impl Frame {
    /// Map at `vaddr` in `vspace` with `rights`; `device` maps it as device memory.
    pub fn map(self, vspace: VSpace, vaddr: u64, rights: Rights, device: bool) -> Result<(), Error> {
        let attr = if device {
            gaon_abi::invocation::FRAME_ATTR_DEVICE
        } else {
            0
        };
        unit(invoke(self.0, Label::FrameMap, &[vspace.0, vaddr, rights.bits(), attr]))
    }
    /// Remove this cap's mapping.
    pub fn unmap(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::FrameUnmap, &[]))
    }
    /// `(physical address, size_bits, mapped address or u64::MAX)`.
    pub fn address(self) -> Result<(u64, u64, u64), Error> {
        invoke(self.0, Label::FrameGetAddress, &[]).map(|m| (m.mr[0], m.mr[1], m.mr[2]))
    }
}

impl PageTable {
    /// Map into `vspace` so it translates `vaddr`.
    pub fn map(self, vspace: VSpace, vaddr: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::PageTableMap, &[vspace.0, vaddr]))
    }
    /// Unmap it.
    pub fn unmap(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::PageTableUnmap, &[]))
    }
}

impl VSpace {
    /// The VMID.
    pub fn vmid(self) -> Result<u64, Error> {
        invoke(self.0, Label::VSpaceGetVmid, &[]).map(|m| m.mr[0])
    }
}

impl DebugCap {
    /// Send the kernel's console output to the kernel log page and signal `ntfn` (a
    /// notification CPtr with the write right) when there is more; 0 = stop.
    pub fn log_bind(self, ntfn: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::DebugLogBind, &[ntfn]))
    }
}

impl VmidPool {
    /// Give `vspace` a VMID of this pool (`NoVmid` when none is left).
    pub fn assign(self, vspace: VSpace) -> Result<(), Error> {
        unit(invoke(self.0, Label::VmidPoolAssign, &[vspace.0]))
    }
    /// Move the last `count` VMIDs of this pool into a new pool in slot `index` of `dest`.
    pub fn split(self, count: u64, dest: CNode, index: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::VmidPoolSplit, &[count, dest.0, index]))
    }
}

impl IrqControl {
    /// Claim `irq` into slot `index` of `dest`.
    pub fn get(self, irq: u64, dest: CNode, index: u64) -> Result<(), Error> {
        unit(invoke(self.0, Label::IrqControlGet, &[irq, dest.0, index]))
    }
}

impl IrqHandler {
    /// Deliver the IRQ to `n` (CPtr 0 = nowhere).
    pub fn set_notification(self, n: CPtr) -> Result<(), Error> {
        unit(invoke(self.0, Label::IrqHandlerSetNotification, &[n]))
    }
    /// Let the IRQ fire again.
    pub fn ack(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::IrqHandlerAck, &[]))
    }
    /// Mask it and forget the notification.
    pub fn clear(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::IrqHandlerClear, &[]))
    }
    /// For the handler of the board's user timer line (the EL1 virtual timer): fire
    /// when `CNTVCT_EL0` reaches `cval` (`Some`), or disarm (`None`). Any other
    /// handler: `IllegalOperation`.
    pub fn set_timer(self, cval: Option<u64>) -> Result<(), Error> {
        let (v, arm) = cval.map_or((0, 0), |v| (v, 1));
        unit(invoke(self.0, Label::IrqHandlerSetTimer, &[v, arm]))
    }
}

impl SchedControl {
    /// Give `sc` `budget_us` every `period_us`; `badge` identifies it in timeout faults.
    pub fn configure(self, sc: SchedContext, budget_us: u64, period_us: u64, badge: u64) -> Result<(), Error> {
        unit(invoke(
            self.0,
            Label::SchedControlConfigure,
            &[sc.0, budget_us, period_us, badge],
        ))
    }
}

impl SchedContext {
    /// Bind to a thread.
    pub fn bind(self, tcb: Tcb) -> Result<(), Error> {
        unit(invoke(self.0, Label::SchedContextBind, &[tcb.0]))
    }
    /// Unbind from its thread.
    pub fn unbind(self) -> Result<(), Error> {
        unit(invoke(self.0, Label::SchedContextUnbind, &[]))
    }
    /// Microseconds consumed since the last call.
    pub fn consumed(self) -> Result<u64, Error> {
        invoke(self.0, Label::SchedContextConsumed, &[]).map(|m| m.mr[0])
    }
}
