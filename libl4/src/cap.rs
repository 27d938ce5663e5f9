//! Typed capability handles. Each wraps a CPtr in the thread's CSpace and offers the
//! invocations of its object type, returning the kernel's error on failure.

use gaon_abi::invocation::{
    CNodeCopyArgs, CNodeDeleteArgs, CNodeIdentifyArgs, CNodeMintArgs, CNodeMoveArgs, CNodeMutateArgs, CNodeRevokeArgs,
    DebugLogBindArgs, FRAME_ATTR_DEVICE, FrameGetAddressArgs, FrameMapArgs, FrameUnmapArgs, IrqControlGetArgs,
    IrqHandlerAckArgs, IrqHandlerClearArgs, IrqHandlerSetNotificationArgs, IrqHandlerSetTimerArgs, PageTableMapArgs,
    PageTableUnmapArgs, REG_COUNT, SchedContextBindArgs, SchedContextConsumedArgs, SchedContextConsumedReply,
    SchedContextUnbindArgs, SchedControlConfigureArgs, TcbBindNotificationArgs, TcbGetStateArgs, TcbReadRegistersArgs,
    TcbResumeArgs, TcbSetAffinityArgs, TcbSetIpcBufferArgs, TcbSetMcpArgs, TcbSetNameArgs, TcbSetPriorityArgs,
    TcbSetSpaceArgs, TcbSetTimeoutEndpointArgs, TcbSuspendArgs, TcbUnbindNotificationArgs, TcbWriteRegistersArgs,
    TraceControlConsumeArgs, TraceControlSetMaskArgs, UntypedRetypeArgs, VCpuAckVppiArgs, VCpuBindTcbArgs,
    VCpuInjectIrqArgs, VCpuReadRegsArgs, VCpuResetArgs, VCpuSetVppiArgs, VCpuTraceArgs, VCpuUnbindTcbArgs,
    VCpuWriteRegsArgs, VSpaceGetVmidArgs, VmidPoolAssignArgs, VmidPoolSplitArgs,
};
use gaon_abi::layout::Unchecked;
use gaon_abi::{Error, Label, Layout, ObjType, ObjectSpec, Rights};

use crate::ipc::{CPtr, invoke, invoke_args};

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
    /// A virtual CPU.
    VCpu,
    /// The kernel debug console and halting (object type `Debug`).
    DebugCap,
    /// The kernel's trace points (object type `TraceControl`, see `gaon_abi::trace`).
    TraceControl,
);

fn unit<R>(r: Result<R, Error>) -> Result<(), Error> {
    r.map(|_| ())
}

impl Untyped {
    /// Create `count` objects of `ty` (`size_bits` for untyped, CNodes (radix) and
    /// frames) in slots `offset..` of `dest`.
    pub fn retype(self, ty: ObjType, size_bits: u8, dest: CNode, offset: u64, count: u64) -> Result<(), Error> {
        let object = ObjectSpec::new(ty, size_bits);
        unit(invoke_args(
            self.0,
            &UntypedRetypeArgs {
                object,
                dest: dest.0,
                first: offset,
                count,
            },
        ))
    }
}

impl CNode {
    /// Copy `src` into slot `index` with `rights`.
    pub fn copy(self, index: u64, src: CPtr, rights: Rights) -> Result<(), Error> {
        unit(invoke_args(self.0, &CNodeCopyArgs { index, src, rights }))
    }
    /// Copy `src` into slot `index` with `rights` and `badge` (a guard for CNodes).
    pub fn mint(self, index: u64, src: CPtr, rights: Rights, badge: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &CNodeMintArgs {
                index,
                src,
                rights,
                badge,
            },
        ))
    }
    /// Move `src` into slot `index`.
    pub fn move_(self, index: u64, src: CPtr) -> Result<(), Error> {
        unit(invoke_args(self.0, &CNodeMoveArgs { index, src }))
    }
    /// Move `src` into slot `index`, badging it.
    pub fn mutate(self, index: u64, src: CPtr, badge: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &CNodeMutateArgs { index, src, badge }))
    }
    /// Delete the cap in slot `index`.
    pub fn delete(self, index: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &CNodeDeleteArgs { index }))
    }
    /// Delete every cap derived from slot `index`.
    pub fn revoke(self, index: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &CNodeRevokeArgs { index }))
    }
    /// `(type + 1 or 0, badge, rights)` of slot `index`.
    pub fn identify(self, index: u64) -> Result<(u64, u64, u64), Error> {
        invoke_args(self.0, &CNodeIdentifyArgs { index }).map(|r| (r.ty, r.badge, r.rights))
    }
}

impl Tcb {
    /// Set CSpace root, VSpace and fault endpoint (0 = none).
    pub fn set_space(self, cspace: CNode, vspace: VSpace, fault_ep: CPtr) -> Result<(), Error> {
        let args = TcbSetSpaceArgs {
            cspace: cspace.0,
            vspace: vspace.0,
            fault_ep,
        };
        unit(invoke_args(self.0, &args))
    }
    /// Set the IPC buffer (frame CPtr 0 = none).
    pub fn set_ipc_buffer(self, vaddr: u64, frame: CPtr) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbSetIpcBufferArgs { vaddr, frame }))
    }
    /// Set the priority, with `authority`'s MCP as the bound.
    pub fn set_priority(self, prio: u64, authority: Tcb) -> Result<(), Error> {
        let args = TcbSetPriorityArgs {
            priority: prio,
            authority: authority.0,
        };
        unit(invoke_args(self.0, &args))
    }
    /// Set the maximum controlled priority.
    pub fn set_mcp(self, mcp: u64, authority: Tcb) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &TcbSetMcpArgs {
                mcp,
                authority: authority.0,
            },
        ))
    }
    /// Write registers `first..first + values.len()` (see `gaon_abi::invocation::REG_*`).
    pub fn write_registers(self, first: u64, values: &[u64]) -> Result<(), Error> {
        let mut words = [0u64; TcbWriteRegistersArgs::TAIL + REG_COUNT as usize];
        let args = TcbWriteRegistersArgs {
            first,
            count: values.len() as u64,
        };
        let n = args.encode_with_tail(values, &mut words).ok_or(Error::RangeError)?;
        unit(invoke(self.0, Label::TcbWriteRegisters, &words[..n]))
    }
    /// Read up to four registers starting at `first`: the reply's words (see
    /// [`Label::TcbReadRegisters`]).
    pub fn read_registers(self, first: u64, count: u64) -> Result<[u64; 4], Error> {
        let args = TcbReadRegistersArgs { first, count };
        invoke(self.0, Label::TcbReadRegisters, &args.encode()).map(|m| m.mr)
    }
    /// Read `out.len()` registers from `first` in one call (past four, through this
    /// thread's IPC buffer, which it needs for them).
    pub fn read_registers_into(self, first: u64, out: &mut [u64]) -> Result<(), Error> {
        let args = TcbReadRegistersArgs {
            first,
            count: out.len() as u64,
        };
        let m = invoke(self.0, Label::TcbReadRegisters, &args.encode())?;
        fill(out, m.mr);
        Ok(())
    }
    /// Start or restart the thread.
    pub fn resume(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbResumeArgs {}))
    }
    /// Stop the thread.
    pub fn suspend(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbSuspendArgs {}))
    }
    /// Bind a notification.
    pub fn bind_notification(self, n: Notification) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbBindNotificationArgs { notification: n.0 }))
    }
    /// Unbind the notification.
    pub fn unbind_notification(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbUnbindNotificationArgs {}))
    }
    /// Set the timeout endpoint (0 = none).
    pub fn set_timeout_endpoint(self, ep: CPtr) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbSetTimeoutEndpointArgs { endpoint: ep }))
    }
    /// `(state, priority, mcp)`.
    pub fn state(self) -> Result<(u64, u64, u64), Error> {
        invoke_args(self.0, &TcbGetStateArgs {}).map(|r| (r.state, r.priority, r.mcp))
    }
    /// The core the thread runs on.
    pub fn cpu(self) -> Result<u64, Error> {
        invoke_args(self.0, &TcbGetStateArgs {}).map(|r| r.cpu)
    }
    /// Run on `cpu` while it has no configured scheduling context (see
    /// `Label::TcbSetAffinity`).
    pub fn set_affinity(self, cpu: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &TcbSetAffinityArgs { cpu }))
    }
    /// Name the thread in traces (its first 16 bytes; `gaon_abi::trace::ThreadName`).
    pub fn set_name(self, name: &[u8]) -> Result<(), Error> {
        let (name_lo, name_hi) = gaon_abi::trace::name_words(name);
        unit(invoke_args(self.0, &TcbSetNameArgs { name_lo, name_hi }))
    }
}

impl TraceControl {
    /// Record the event classes in `mask` (`gaon_abi::trace::Class` bits); the mask
    /// before.
    pub fn set_mask(self, mask: u64) -> Result<u64, Error> {
        invoke_args(self.0, &TraceControlSetMaskArgs { mask }).map(|r| r.previous)
    }
    /// Give core `cpu`'s records below `upto` back to the kernel.
    pub fn consume(self, cpu: u64, upto: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &TraceControlConsumeArgs { cpu, upto }))
    }
}

impl Frame {
    /// Map at `vaddr` in `vspace` with `rights`; `device` maps it as device memory.
    pub fn map(self, vspace: VSpace, vaddr: u64, rights: Rights, device: bool) -> Result<(), Error> {
        let attributes = if device { FRAME_ATTR_DEVICE } else { 0 };
        let args = FrameMapArgs {
            vspace: vspace.0,
            vaddr,
            rights,
            attributes,
        };
        unit(invoke_args(self.0, &args))
    }
    /// Remove this cap's mapping.
    pub fn unmap(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &FrameUnmapArgs {}))
    }
    /// `(physical address, size_bits, mapped address or u64::MAX)`.
    pub fn address(self) -> Result<(u64, u64, u64), Error> {
        invoke_args(self.0, &FrameGetAddressArgs {}).map(|r| (r.paddr, r.size_bits, r.vaddr))
    }
}

impl PageTable {
    /// Map into `vspace` so it translates `vaddr`.
    pub fn map(self, vspace: VSpace, vaddr: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &PageTableMapArgs {
                vspace: vspace.0,
                vaddr,
            },
        ))
    }
    /// Unmap it.
    pub fn unmap(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &PageTableUnmapArgs {}))
    }
}

impl VSpace {
    /// The VMID.
    pub fn vmid(self) -> Result<u64, Error> {
        invoke_args(self.0, &VSpaceGetVmidArgs {}).map(|r| r.vmid)
    }
}

impl DebugCap {
    /// Send the kernel's console output to the kernel log page and signal `ntfn` (a
    /// notification CPtr with the write right) when there is more; 0 = stop.
    pub fn log_bind(self, ntfn: CPtr) -> Result<(), Error> {
        unit(invoke_args(self.0, &DebugLogBindArgs { notification: ntfn }))
    }
}

impl VmidPool {
    /// Give `vspace` a VMID of this pool (`NoVmid` when none is left).
    pub fn assign(self, vspace: VSpace) -> Result<(), Error> {
        unit(invoke_args(self.0, &VmidPoolAssignArgs { vspace: vspace.0 }))
    }
    /// Move the last `count` VMIDs of this pool into a new pool in slot `index` of `dest`.
    pub fn split(self, count: u64, dest: CNode, index: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &VmidPoolSplitArgs {
                count,
                dest: dest.0,
                index,
            },
        ))
    }
}

impl IrqControl {
    /// Claim `irq` into slot `index` of `dest`.
    pub fn get(self, irq: u64, dest: CNode, index: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &IrqControlGetArgs {
                irq,
                dest: dest.0,
                index,
            },
        ))
    }
}

impl IrqHandler {
    /// Deliver the IRQ to `n` (CPtr 0 = nowhere).
    pub fn set_notification(self, n: CPtr) -> Result<(), Error> {
        unit(invoke_args(self.0, &IrqHandlerSetNotificationArgs { notification: n }))
    }
    /// Let the IRQ fire again.
    pub fn ack(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &IrqHandlerAckArgs {}))
    }
    /// Mask it and forget the notification.
    pub fn clear(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &IrqHandlerClearArgs {}))
    }
    /// For the handler of the board's user timer line (the EL1 virtual timer): fire
    /// when `CNTVCT_EL0` reaches `cval` (`Some`), or disarm (`None`). Any other
    /// handler: `IllegalOperation`.
    pub fn set_timer(self, cval: Option<u64>) -> Result<(), Error> {
        let args = IrqHandlerSetTimerArgs {
            compare: cval.unwrap_or(0),
            arm: Unchecked::new(cval.is_some()),
        };
        unit(invoke_args(self.0, &args))
    }
}

impl SchedControl {
    /// Give `sc` `budget_us` every `period_us`; `badge` identifies it in timeout faults.
    pub fn configure(self, sc: SchedContext, budget_us: u64, period_us: u64, badge: u64) -> Result<(), Error> {
        let args = SchedControlConfigureArgs {
            sched_context: sc.0,
            budget_us,
            period_us,
            badge,
        };
        unit(invoke_args(self.0, &args))
    }
}

/// A reply's words: the first four from its registers, the rest from the IPC buffer.
fn fill(out: &mut [u64], mr: [u64; 4]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = mr.get(i).copied().unwrap_or_else(|| crate::ipc::get_mr(i));
    }
}

impl VCpu {
    /// Bind to a thread, which then runs a guest (at EL1h, interrupts masked).
    pub fn bind(self, tcb: Tcb) -> Result<(), Error> {
        unit(invoke_args(self.0, &VCpuBindTcbArgs { tcb: tcb.0 }))
    }
    /// Unbind from its thread, which stops.
    pub fn unbind(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &VCpuUnbindTcbArgs {}))
    }
    /// Write guest registers `first..first + values.len()` (`gaon_abi::vcpu::VCpuReg`).
    pub fn write_regs(self, first: u64, values: &[u64]) -> Result<(), Error> {
        let mut words = [0u64; VCpuWriteRegsArgs::TAIL + gaon_abi::vcpu::VCPU_REG_COUNT];
        let args = VCpuWriteRegsArgs {
            first,
            count: values.len() as u64,
        };
        let n = args.encode_with_tail(values, &mut words).ok_or(Error::RangeError)?;
        unit(invoke(self.0, Label::VCpuWriteRegs, &words[..n]))
    }
    /// Make virtual interrupt `intid` pending in the guest at `priority` (an edge:
    /// nothing is reported when the guest is done with it).
    pub fn inject(self, intid: u64, priority: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &VCpuInjectIrqArgs {
                intid,
                priority,
                flags: 0,
            },
        ))
    }
    /// Make the level-triggered virtual interrupt `intid` pending in the guest at
    /// `priority`: the guest's deactivation comes back as an `Exit::Eoi`
    /// (`gaon_abi::vcpu::INJECT_LEVEL`).
    pub fn inject_level(self, intid: u64, priority: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &VCpuInjectIrqArgs {
                intid,
                priority,
                flags: gaon_abi::vcpu::INJECT_LEVEL,
            },
        ))
    }
    /// Say whether the guest has the kernel-raised virtual PPI `intid` (its virtual
    /// timer) enabled, and at which priority.
    pub fn set_vppi(self, intid: u64, enabled: bool, priority: u64) -> Result<(), Error> {
        unit(invoke_args(
            self.0,
            &VCpuSetVppiArgs {
                intid,
                enabled,
                priority,
            },
        ))
    }
    /// Unmask the kernel-raised virtual PPI `intid` (after resetting the guest's
    /// interrupt state; the guest's deactivation does it otherwise).
    pub fn ack_vppi(self, intid: u64) -> Result<(), Error> {
        unit(invoke_args(self.0, &VCpuAckVppiArgs { intid }))
    }
    /// Put the VCpu back in a CPU's reset state (`VCpuReset`; its thread must be
    /// suspended): for a reboot, or a CPU started by PSCI.
    pub fn reset(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &VCpuResetArgs {}))
    }
    /// Read up to four guest registers starting at `first`.
    pub fn read_regs(self, first: u64, count: u64) -> Result<[u64; 4], Error> {
        let args = VCpuReadRegsArgs { first, count };
        invoke(self.0, Label::VCpuReadRegs, &args.encode()).map(|m| m.mr)
    }
    /// Read `out.len()` guest registers from `first` in one call (past four, through
    /// this thread's IPC buffer, which it needs for them).
    pub fn read_regs_into(self, first: u64, out: &mut [u64]) -> Result<(), Error> {
        let args = VCpuReadRegsArgs {
            first,
            count: out.len() as u64,
        };
        let m = invoke(self.0, Label::VCpuReadRegs, &args.encode())?;
        fill(out, m.mr);
        Ok(())
    }

    /// Record a guest event (`gaon_abi::trace::Event` number `event`) for this VCpu's
    /// guest, as its trace hypercall would; true if it was recorded (VM events are
    /// traced).
    pub fn trace(self, event: u64, a: u64, b: u64) -> Result<bool, Error> {
        invoke_args(self.0, &VCpuTraceArgs { event, a, b }).map(|r| r.recorded != 0)
    }
}

impl SchedContext {
    /// Bind to a thread.
    pub fn bind(self, tcb: Tcb) -> Result<(), Error> {
        unit(invoke_args(self.0, &SchedContextBindArgs { tcb: tcb.0 }))
    }
    /// Unbind from its thread.
    pub fn unbind(self) -> Result<(), Error> {
        unit(invoke_args(self.0, &SchedContextUnbindArgs {}))
    }
    /// Microseconds consumed since the last query (this or [`SchedContext::consumed_ticks`]).
    pub fn consumed(self) -> Result<u64, Error> {
        invoke_args(self.0, &SchedContextConsumedArgs {}).map(|r| r.consumed_us)
    }
    /// Counter ticks consumed since the last query, exact (the counter runs at the boot
    /// info's `timer_hz`).
    pub fn consumed_ticks(self) -> Result<u64, Error> {
        invoke_args(self.0, &SchedContextConsumedArgs {}).map(|r| r.consumed_ticks)
    }
    /// The whole `SchedContextConsumed` reply: the time consumed since the last query
    /// (µs and exact ticks) and the counter value of its last charge (`charged_at`:
    /// at or after a moment `T` if its thread ran at `T` or later).
    pub fn usage(self) -> Result<SchedContextConsumedReply, Error> {
        invoke_args(self.0, &SchedContextConsumedArgs {})
    }
}
