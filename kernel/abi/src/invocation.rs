//! Invocations: the label of a Call on a kernel object's capability says which
//! operation to perform. Arguments are message registers (MR0..), in the order listed.
//! Capability arguments are [`CPtr`]s resolved in the invoker's CSpace. The reply's
//! label is 0 or an [`Error`] code; its message registers hold the
//! results.
//!
//! The layouts below are the one source of this part of the ABI: each invocation's
//! label, object type, arguments in register order with their types, and results are
//! declared once in `invocations!`, which generates [`Label`], an `<Name>Args` struct
//! per invocation (and a `<Name>Reply` where it returns words) implementing
//! [`Layout`] and [`Invocation`], and the metadata
//! ([`InvocationInfo`]) the reference table in `docs/abi.md` is rendered from
//! (`cargo xtask abi-doc`; a host test fails if the file differs). libl4 encodes with
//! these types and the kernel decodes with them; a field's type carries the packing
//! rules the kernel enforces (see [`crate::layout`]).

use crate::layout::{Field, Layout, Unchecked, layout};
use crate::object::ObjectSpec;
use crate::{Error, ObjType, Rights};

/// A capability pointer: an address in the invoker's CSpace (0 names nothing where an
/// argument says "0 = none").
pub type CPtr = u64;

/// An invocation: its arguments' layout, label and object type, and the layout of its
/// reply.
pub trait Invocation: Layout {
    /// The label.
    const LABEL: Label;
    /// The object type whose capabilities it is invoked on.
    const OBJECT: ObjType;
    /// The reply's layout ([`NoReply`] if it returns no words).
    type Reply: Layout;
    /// Name, documentation and fields.
    const INFO: InvocationInfo;
}

layout!(
    /// The reply of an invocation that returns no words.
    NoReply {}
);

/// What `docs/abi.md` and tools know of an invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvocationInfo {
    /// Its label.
    pub label: Label,
    /// The label's name.
    pub name: &'static str,
    /// The object type it applies to.
    pub object: ObjType,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its arguments, from MR0.
    pub args: &'static [Field],
    /// Words after the arguments, as many as a count argument says.
    pub tail: Option<Field>,
    /// Its reply's words, from MR0.
    pub results: &'static [Field],
    /// Reply words after those, as many as a count argument says.
    pub result_tail: Option<Field>,
}

macro_rules! invocations {
    (@see $obj:ident, $args:ident) => {
        concat!("Invoked on [`ObjType::", stringify!($obj), "`]; arguments: [`", stringify!($args), "`].")
    };
    (@see $obj:ident, $args:ident, $reply:ident) => {
        concat!("Invoked on [`ObjType::", stringify!($obj), "`]; arguments: [`", stringify!($args),
            "`]; reply: [`", stringify!($reply), "`].")
    };
    (@reply) => { NoReply };
    (@reply $r:ident) => { $r };
    (@tail) => { None };
    (@tail $name:ident, $count:ident, $doc:expr) => {
        Some(Field { name: stringify!($name), ty: concat!("[u64; ", stringify!($count), "]"), doc: $doc })
    };
    ($(
        $(#[doc = $doc:literal])*
        $label:ident = $num:literal on $obj:ident => $args:ident {
            $( $(#[doc = $adoc:literal])* $arg:ident : $aty:ty ),* $(,)?
        }
        $( tail $(#[doc = $tdoc:literal])* $tail:ident [$count:ident] )?
        $( -> $reply:ident {
            $( $(#[doc = $rdoc:literal])* $res:ident : $rty:ty ),* $(,)?
        } )?
        $( => reply $(#[doc = $rtdoc:literal])* $rtail:ident [$rcount:ident] )?
        ;
    )*) => {
        /// Invocation labels. The numbering is part of the ABI.
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Label {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = invocations!(@see $obj, $args $(, $reply)?)]
                $label = $num,
            )*
        }

        impl Label {
            /// Every label.
            pub const ALL: [Self; <[&str]>::len(&[$(stringify!($label)),*])] = [$(Self::$label),*];

            /// Decode a label.
            pub const fn from_raw(raw: u64) -> Option<Self> {
                match raw {
                    $($num => Some(Self::$label),)*
                    _ => None,
                }
            }

            /// The object type whose capabilities this label is invoked on.
            pub const fn object(self) -> ObjType {
                match self {
                    $(Self::$label => ObjType::$obj,)*
                }
            }

            /// Name, documentation, argument and result fields.
            pub const fn info(self) -> &'static InvocationInfo {
                match self {
                    $(Self::$label => &<$args as Invocation>::INFO,)*
                }
            }
        }

        $(
            layout!(
                #[doc = concat!("Arguments of [`Label::", stringify!($label), "`], from MR0.")]
                $args {
                    $( $(#[doc = $adoc])* $arg : $aty ),*
                }
            );

            $(
                layout!(
                    #[doc = concat!("Reply of [`Label::", stringify!($label), "`], from MR0.")]
                    $reply {
                        $( $(#[doc = $rdoc])* $res : $rty ),*
                    }
                );
            )?

            impl Invocation for $args {
                const LABEL: Label = Label::$label;
                const OBJECT: ObjType = ObjType::$obj;
                type Reply = invocations!(@reply $($reply)?);
                const INFO: InvocationInfo = InvocationInfo {
                    label: Label::$label,
                    name: stringify!($label),
                    object: ObjType::$obj,
                    doc: concat!($($doc),*),
                    args: <Self as Layout>::FIELDS,
                    tail: invocations!(@tail $($tail, $count, concat!($($tdoc),*))?),
                    results: <<Self as Invocation>::Reply as Layout>::FIELDS,
                    result_tail: invocations!(@tail $($rtail, $rcount, concat!($($rtdoc),*))?),
                };
            }

            $(
                impl $args {
                    /// The register of the first tail word.
                    pub const TAIL: usize = <Self as Layout>::LEN;

                    #[doc = concat!("`Ok` if a message of `len` registers holds the `", stringify!($count),
                        "` tail words; else [`Error::TruncatedMessage`].")]
                    #[inline]
                    pub fn check_tail(&self, len: usize) -> Result<(), Error> {
                        match self.$count.checked_add(Self::TAIL as u64) {
                            Some(n) if n <= len as u64 => Ok(()),
                            _ => Err(Error::TruncatedMessage),
                        }
                    }

                    #[doc = concat!("Tail word `i` (`i < ", stringify!($count), "`; the caller has called `check_tail`) as `mr(Self::TAIL + i)`.")]
                    #[inline]
                    pub fn tail_word(i: usize, mr: impl Fn(usize) -> u64) -> u64 {
                        mr(Self::TAIL + i)
                    }

                    #[doc = concat!("The arguments then `", stringify!($tail), "` written to `out`; the number of words, or `None` if `",
                        stringify!($count), "` is not `", stringify!($tail), ".len()` or `out` is too short.")]
                    #[inline]
                    pub fn encode_with_tail(&self, $tail: &[u64], out: &mut [u64]) -> Option<usize> {
                        let n = Self::TAIL + $tail.len();
                        let (head, rest) = out.get_mut(..n)?.split_at_mut(Self::TAIL);
                        if self.$count != $tail.len() as u64 {
                            return None;
                        }
                        head.copy_from_slice(&self.encode());
                        rest.copy_from_slice($tail);
                        Some(n)
                    }
                }
            )?
        )*
    };
}

invocations! {
    /// Creates `count` (1..=256) objects in consecutive empty slots of a CNode, from the
    /// untyped's free memory.
    UntypedRetype = 1 on Untyped => UntypedRetypeArgs {
        /// Type and `size_bits` (type \| size_bits≪8).
        object: ObjectSpec,
        /// Destination CNode.
        dest: CPtr,
        /// First slot index in it.
        first: u64,
        /// Number of objects.
        count: u64,
    };

    /// Copies a capability into a slot of this CNode, with at most `rights`.
    CNodeCopy = 10 on CNode => CNodeCopyArgs {
        /// Destination slot index in this CNode.
        index: u64,
        /// Source capability.
        src: CPtr,
        /// Rights mask.
        rights: Rights,
    };
    /// Copies a capability with at most `rights` and a badge.
    CNodeMint = 11 on CNode => CNodeMintArgs {
        /// Destination slot index.
        index: u64,
        /// Source capability.
        src: CPtr,
        /// Rights mask.
        rights: Rights,
        /// Badge (endpoints, notifications) or, for a CNode, its guard:
        /// guard_bits≪56 \| guard.
        badge: u64,
    };
    /// Moves a capability into a slot of this CNode.
    CNodeMove = 12 on CNode => CNodeMoveArgs {
        /// Destination slot index.
        index: u64,
        /// Source capability.
        src: CPtr,
    };
    /// Moves a capability, giving it a badge (or a CNode its guard).
    CNodeMutate = 13 on CNode => CNodeMutateArgs {
        /// Destination slot index.
        index: u64,
        /// Source capability.
        src: CPtr,
        /// Badge or guard (0 keeps it).
        badge: u64,
    };
    /// Empties a slot; the object dies with its last capability.
    CNodeDelete = 14 on CNode => CNodeDeleteArgs {
        /// Slot index.
        index: u64,
    };
    /// Deletes every capability derived from the slot's.
    CNodeRevoke = 15 on CNode => CNodeRevokeArgs {
        /// Slot index.
        index: u64,
    };
    /// Says what a slot holds.
    CNodeIdentify = 16 on CNode => CNodeIdentifyArgs {
        /// Slot index.
        index: u64,
    } -> CNodeIdentifyReply {
        /// The object type + 1 (0 = empty).
        ty: u64,
        /// The badge.
        badge: u64,
        /// The rights (`Rights` bits).
        rights: u64,
    };

    /// Sets the thread's CSpace, VSpace and fault endpoint, taking copies of the caps:
    /// all three or nothing, and not if it would delete the last cap to a CNode or Tcb.
    TcbSetSpace = 20 on Tcb => TcbSetSpaceArgs {
        /// CSpace root CNode.
        cspace: CPtr,
        /// VSpace (with a VMID).
        vspace: CPtr,
        /// Fault endpoint (0 = none).
        fault_ep: CPtr,
    };
    /// Sets the thread's IPC buffer.
    TcbSetIpcBuffer = 21 on Tcb => TcbSetIpcBufferArgs {
        /// Its address (1 KiB aligned).
        vaddr: u64,
        /// The frame, with read and write rights (0 = no buffer).
        frame: CPtr,
    };
    /// Sets the thread's priority.
    TcbSetPriority = 22 on Tcb => TcbSetPriorityArgs {
        /// The priority (0..=255).
        priority: u64,
        /// A Tcb whose MCP bounds it.
        authority: CPtr,
    };
    /// Sets the thread's maximum controlled priority.
    TcbSetMcp = 23 on Tcb => TcbSetMcpArgs {
        /// The MCP (0..=255).
        mcp: u64,
        /// A Tcb whose MCP bounds it.
        authority: CPtr,
    };
    /// Reads registers of another thread (see `REG_PC` and friends).
    TcbReadRegisters = 24 on Tcb => TcbReadRegistersArgs {
        /// First register index.
        first: u64,
        /// Number of registers.
        count: u64,
    } => reply
        /// The registers.
        values[count];
    /// Writes registers of another thread.
    TcbWriteRegisters = 25 on Tcb => TcbWriteRegistersArgs {
        /// First register index.
        first: u64,
        /// Number of registers.
        count: u64,
    } tail
        /// The values.
        values[count];
    /// Makes the thread runnable.
    TcbResume = 26 on Tcb => TcbResumeArgs {};
    /// Stops the thread, aborting any IPC it is blocked in.
    TcbSuspend = 27 on Tcb => TcbSuspendArgs {};
    /// Binds a notification: its signals then also wake a Recv on an endpoint.
    TcbBindNotification = 28 on Tcb => TcbBindNotificationArgs {
        /// The notification (with the read right).
        notification: CPtr,
    };
    /// Undoes `TcbBindNotification`.
    TcbUnbindNotification = 29 on Tcb => TcbUnbindNotificationArgs {};
    /// Sets the endpoint timeout faults go to.
    TcbSetTimeoutEndpoint = 30 on Tcb => TcbSetTimeoutEndpointArgs {
        /// The endpoint (0 = none).
        endpoint: CPtr,
    };
    /// Reports the thread's state and priorities.
    TcbGetState = 31 on Tcb => TcbGetStateArgs {} -> TcbGetStateReply {
        /// The thread state (a `ThreadState`).
        state: u64,
        /// The priority.
        priority: u64,
        /// The MCP.
        mcp: u64,
        /// The core it runs on (its configured scheduling context's, or its affinity).
        cpu: u64,
    };
    /// Chooses the core the thread runs on while it has no configured scheduling
    /// context (one places its thread on its SchedControl's core). `RangeError` for a
    /// core that did not come up (`BootInfo::cpus`).
    TcbSetAffinity = 32 on Tcb => TcbSetAffinityArgs {
        /// The core.
        cpu: u64,
    };
    /// Names the thread for traces: records `ThreadName` (`gaon_abi::trace`) with the
    /// name's 16 bytes (NUL-padded, little-endian; `trace::name_words`). The kernel
    /// keeps nothing but the record.
    TcbSetName = 33 on Tcb => TcbSetNameArgs {
        /// Bytes 0..8 of the name.
        name_lo: u64,
        /// Bytes 8..16.
        name_hi: u64,
    };

    /// Maps the frame. Mapping again at the same place changes the rights (remap).
    FrameMap = 40 on Frame => FrameMapArgs {
        /// The VSpace.
        vspace: CPtr,
        /// The address (aligned to the frame's size).
        vaddr: u64,
        /// Rights R/W/X (at most the cap's).
        rights: Rights,
        /// Attributes: `FRAME_ATTR_DEVICE` maps device memory, refused with
        /// `IllegalOperation` for a RAM frame (RAM is always mapped write-back
        /// cacheable: the kernel zeroes it through the cache).
        attributes: u64,
    };
    /// Removes this cap's mapping.
    FrameUnmap = 41 on Frame => FrameUnmapArgs {};
    /// Reports where the frame is.
    FrameGetAddress = 42 on Frame => FrameGetAddressArgs {} -> FrameGetAddressReply {
        /// Physical address.
        paddr: u64,
        /// log2 of its size.
        size_bits: u64,
        /// Mapped address, or `u64::MAX`.
        vaddr: u64,
    };
    /// Maps the page table into a VSpace.
    PageTableMap = 43 on PageTable => PageTableMapArgs {
        /// The VSpace.
        vspace: CPtr,
        /// An address it will translate.
        vaddr: u64,
    };
    /// Removes the page table from its VSpace.
    PageTableUnmap = 44 on PageTable => PageTableUnmapArgs {};
    /// Reports the VSpace's VMID.
    VSpaceGetVmid = 45 on VSpace => VSpaceGetVmidArgs {} -> VSpaceGetVmidReply {
        /// The VMID (0 = none assigned yet).
        vmid: u64,
    };
    /// Gives a VSpace a free VMID of the pool's range (`NoVmid` if none is free;
    /// `IllegalOperation` if it has one already).
    VmidPoolAssign = 46 on VmidPool => VmidPoolAssignArgs {
        /// The VSpace.
        vspace: CPtr,
    };
    /// Moves the last `count` VMIDs of this pool's range into a new pool, a child of
    /// this one: revoking this pool deletes it, and once no pool split off it is left
    /// this one has its whole range again; VSpaces keep the VMIDs they were given.
    VmidPoolSplit = 47 on VmidPool => VmidPoolSplitArgs {
        /// VMIDs to move.
        count: u64,
        /// Destination CNode.
        dest: CPtr,
        /// Slot index in it.
        index: u64,
    };

    /// Claims an IRQ line: a handler capability for it.
    IrqControlGet = 50 on IrqControl => IrqControlGetArgs {
        /// The IRQ number.
        irq: u64,
        /// Destination CNode.
        dest: CPtr,
        /// Slot index in it.
        index: u64,
    };
    /// Sets the notification the IRQ signals.
    IrqHandlerSetNotification = 51 on IrqHandler => IrqHandlerSetNotificationArgs {
        /// The notification (with the write right; 0 = none).
        notification: CPtr,
    };
    /// The IRQ was handled; lets it fire again.
    IrqHandlerAck = 52 on IrqHandler => IrqHandlerAckArgs {};
    /// Masks the line and forgets the notification.
    IrqHandlerClear = 53 on IrqHandler => IrqHandlerClearArgs {};
    /// For the handler of the board's user timer line (`timer.user_irq`, the EL1
    /// physical timer) only, else `IllegalOperation`: arms or disarms the timer. The line
    /// fires when the counter reaches the value. EL0 cannot program the timer itself;
    /// holding this handler is the permission. The user timer is CPU 0's: every
    /// invocation of its handler from a thread on another core is `IllegalOperation`.
    IrqHandlerSetTimer = 54 on IrqHandler => IrqHandlerSetTimerArgs {
        /// Compare value in counter ticks (`CNTVCT_EL0`, which equals the physical count for native threads).
        compare: u64,
        /// 1 = arm, 0 = disarm (checked after the handler's line).
        arm: Unchecked<bool>,
    };

    /// Configures a scheduling context.
    SchedControlConfigure = 60 on SchedControl => SchedControlConfigureArgs {
        /// The SchedContext.
        sched_context: CPtr,
        /// Budget (µs, at least 10: the kernel programs its timer for the end of it).
        budget_us: u64,
        /// Period (µs, at least the budget, at most an hour).
        period_us: u64,
        /// Badge reported in timeout faults.
        badge: u64,
    };
    /// Binds the scheduling context to a thread.
    SchedContextBind = 61 on SchedContext => SchedContextBindArgs {
        /// The Tcb.
        tcb: CPtr,
    };
    /// Unbinds the scheduling context from its thread.
    SchedContextUnbind = 62 on SchedContext => SchedContextUnbindArgs {};
    /// Reports the time consumed since the last query.
    SchedContextConsumed = 63 on SchedContext => SchedContextConsumedArgs {} -> SchedContextConsumedReply {
        /// Microseconds consumed (rounded down).
        consumed_us: u64,
        /// The same in counter ticks (`timer_hz` in the boot info), exact.
        consumed_ticks: u64,
        /// The counter value of its last charge (0 before the first): when its thread
        /// last stopped running, or was last charged while running (a timer interrupt,
        /// this query). A value at or after a moment `T` means the thread ran at `T` or
        /// later: a policy server that wakes at `T` finds so which thread its wake-up
        /// preempted (Xen's credit tick debits the vCPU it finds running).
        charged_at: u64,
    };

    /// Binds the VCpu to a thread, which then runs a guest: at EL1h with interrupts
    /// masked (its PSTATE is reset so), in the stage-2 address space of its VSpace, with
    /// this VCpu's EL1 registers. Neither may be bound already, and the thread must be
    /// inactive (suspended or never started), not the caller.
    VCpuBindTcb = 80 on VCpu => VCpuBindTcbArgs {
        /// The Tcb.
        tcb: CPtr,
    };
    /// Unbinds the VCpu from its thread, which is stopped (made inactive) and from then
    /// on a native thread at EL0.
    VCpuUnbindTcb = 81 on VCpu => VCpuUnbindTcbArgs {};
    /// Reads guest registers (`gaon_abi::vcpu::VCpuReg` indices).
    VCpuReadRegs = 82 on VCpu => VCpuReadRegsArgs {
        /// First register index.
        first: u64,
        /// Number of registers.
        count: u64,
    } => reply
        /// The registers.
        values[count];
    /// Writes guest registers (`gaon_abi::vcpu::VCpuReg` indices).
    VCpuWriteRegs = 83 on VCpu => VCpuWriteRegsArgs {
        /// First register index.
        first: u64,
        /// Number of registers.
        count: u64,
    } tail
        /// The values.
        values[count];
    /// Makes a virtual interrupt pending in the guest (group 1). The kernel puts it in
    /// a list register of the virtual CPU interface when the guest next runs, or keeps
    /// it queued while they are full; one already pending stays one. `NotEnoughMemory`
    /// when the queue (32) is full; `IllegalOperation` on a board whose virtual CPU
    /// interface the kernel does not drive (no GIC). With
    /// [`crate::vcpu::INJECT_LEVEL`] the VMM hears when the guest deactivates it (an
    /// `Eoi` exit, `docs/vmm.md`): a level-triggered line still up is injected again
    /// then. `InvalidArgument` for unknown flags, or the level flag on the INTID the
    /// kernel raises itself (the virtual timer's).
    VCpuInjectIrq = 84 on VCpu => VCpuInjectIrqArgs {
        /// The virtual INTID (SGI 0..16, PPI 16..32, SPI 32..1020).
        intid: u64,
        /// Its priority (0 highest .. 255; the interface keeps the top 5 bits).
        priority: u64,
        /// [`crate::vcpu::INJECT_LEVEL`], or 0 (edge: nothing is reported).
        flags: u64,
    };
    /// Tells the kernel how the guest's interrupt controller has a virtual PPI that the
    /// kernel raises itself, the guest's virtual timer (the board's `timer.guest_irq`,
    /// 27 on virt): the VMM's distributor/redistributor model forwards the guest's
    /// enable and priority. Until set: enabled, priority 0xa0. A timer interrupt that
    /// comes while it is disabled waits, and is made pending once it is enabled.
    /// `IllegalOperation` where guests have no virtual timer; `RangeError` for another
    /// INTID or a priority above 255.
    VCpuSetVppi = 85 on VCpu => VCpuSetVppiArgs {
        /// The virtual PPI (the virtual timer's INTID).
        intid: u64,
        /// 1 = enabled (the guest may take it), 0 = disabled.
        enabled: bool,
        /// Its priority (0 highest .. 255).
        priority: u64,
    };
    /// Acknowledges a virtual PPI the kernel raises: its physical line, masked while
    /// its interrupt is with the guest, is unmasked. The guest's deactivation of the
    /// interrupt normally does this; a VMM that resets the vCPU's interrupt state (a
    /// PSCI CPU_ON, a reset) does it itself. Errors as for `VCpuSetVppi`.
    VCpuAckVppi = 86 on VCpu => VCpuAckVppiArgs {
        /// The virtual PPI (the virtual timer's INTID).
        intid: u64,
    };
    /// Puts the VCpu back in the state of a CPU out of reset, as a new VCpu's: its EL1
    /// registers (MMU and caches off, SCTLR_EL1 RES1 bits only; the counter offset and
    /// MPIDR 0), its virtual CPU interface (no interrupt in a list register or queued,
    /// group enables, priority mask and active priorities 0), no end of interrupt
    /// waiting, its virtual timer off with the PPI enabled at priority 0xa0 and its line
    /// unmasked. A bound thread's PSTATE becomes EL1h with D, A, I and F masked; its
    /// general registers and PC are the VMM's to set. How a VMM reboots a guest or
    /// starts a CPU by PSCI CPU_ON. `IllegalOperation` if the bound thread is not
    /// inactive (suspend it first).
    VCpuReset = 87 on VCpu => VCpuResetArgs {};
    /// Records a guest event for this VCpu's guest, as if the guest had made the trace
    /// hypercall (`gaon_abi::trace`): how a VMM reports what it saw in the guest
    /// without its help (a Linux probe's task switch and task names). `event` is one of
    /// the guest events (`GuestTaskSwitch`, `GuestEvent`, `GuestTaskName`,
    /// `GuestTaskNameEnd`), else `InvalidArgument`; `IllegalOperation` if no thread is
    /// bound. Recorded, with the bound thread's id, only while VM events are traced.
    VCpuTrace = 88 on VCpu => VCpuTraceArgs {
        /// The `gaon_abi::trace::Event` number.
        event: u64,
        /// Its first argument.
        a: u64,
        /// Its second argument.
        b: u64,
    } -> VCpuTraceReply {
        /// 1 if VM events are traced (it went to the ring, which counts it as lost if
        /// it is full), else 0.
        recorded: u64,
    };

    /// From now on the kernel appends its console output to the kernel log page (boot
    /// slot `KERNEL_LOG`, see `gaon_abi::klog`) and signals the notification, instead
    /// of printing on the UART; the reader prints it.
    DebugLogBind = 70 on Debug => DebugLogBindArgs {
        /// The notification (with the write right), or 0 to unbind.
        notification: CPtr,
    };

    /// Chooses the classes of events the kernel records (`gaon_abi::trace::Class`
    /// bits; `InvalidArgument` for a bit that names no class). Returns the mask before.
    TraceControlSetMask = 90 on TraceControl => TraceControlSetMaskArgs {
        /// The classes to record from now on.
        mask: u64,
    } -> TraceControlSetMaskReply {
        /// The classes recorded until now.
        previous: u64,
    };
    /// Gives back core `cpu`'s records below `upto` (the ring's new tail): the reader
    /// has read them, and the kernel may write there again; `u64::MAX` gives back
    /// everything written so far (read or not). `RangeError` for a core without a ring,
    /// or another `upto` below the tail or above the head.
    TraceControlConsume = 91 on TraceControl => TraceControlConsumeArgs {
        /// The core.
        cpu: u64,
        /// The new tail.
        upto: u64,
    };
}

impl Label {
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
                Self::TcbSetAffinity,
                Self::TcbSetName,
            ],
            T::Frame => &[Self::FrameMap, Self::FrameUnmap, Self::FrameGetAddress],
            T::PageTable => &[Self::PageTableMap, Self::PageTableUnmap],
            T::VSpace => &[Self::VSpaceGetVmid],
            T::VmidPool => &[Self::VmidPoolAssign, Self::VmidPoolSplit],
            T::VCpu => &[
                Self::VCpuBindTcb,
                Self::VCpuUnbindTcb,
                Self::VCpuReadRegs,
                Self::VCpuWriteRegs,
                Self::VCpuInjectIrq,
                Self::VCpuSetVppi,
                Self::VCpuAckVppi,
                Self::VCpuReset,
                Self::VCpuTrace,
            ],
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
            T::TraceControl => &[Self::TraceControlSetMask, Self::TraceControlConsume],
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
    /// A guest waiting in WFI for a virtual interrupt.
    WaitingForInterrupt = 6,
}

#[cfg(test)]
mod tests {
    extern crate std;

    use proptest::prelude::*;

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

    /// `Label::of` lists exactly the labels declared on each type.
    #[test]
    fn labels_of_a_type_match_the_layouts() {
        for l in Label::ALL {
            for t in crate::ObjType::ALL {
                assert_eq!(Label::of(t).contains(&l), l.object() == t, "{l:?} on {t:?}");
            }
            let info = l.info();
            assert_eq!((info.label, info.object), (l, l.object()));
            assert!(!info.doc.trim().is_empty(), "{l:?} has no doc");
            assert!(info.args.iter().chain(info.results).all(|f| !f.doc.trim().is_empty()));
        }
    }

    /// The words libl4 has always sent.
    #[test]
    fn register_positions() {
        let r = UntypedRetypeArgs {
            object: ObjectSpec::new(ObjType::CNode, 4),
            dest: 9,
            first: 3,
            count: 2,
        };
        assert_eq!(r.encode(), [1 | 4 << 8, 9, 3, 2]);
        let m = FrameMapArgs {
            vspace: 5,
            vaddr: 0x4000,
            rights: Rights::READ | Rights::WRITE,
            attributes: FRAME_ATTR_DEVICE,
        };
        assert_eq!(m.encode(), [5, 0x4000, 3, 1]);
        let t = IrqHandlerSetTimerArgs {
            compare: 77,
            arm: Unchecked::new(true),
        };
        assert_eq!(t.encode(), [77, 1]);
        assert_eq!(TcbResumeArgs {}.encode(), []);
    }

    #[test]
    fn decode_errors_in_the_kernel_order() {
        let words = [ObjType::Endpoint as u64, 1, 2, 3];
        let mr = |i: usize| words[i];
        // Truncation first, whatever the words.
        assert_eq!(
            UntypedRetypeArgs::decode(3, |i| [1 << 20, 0, 0][i]),
            Err(Error::TruncatedMessage)
        );
        assert!(UntypedRetypeArgs::decode(4, mr).is_ok());
        let bad = |w0: u64| UntypedRetypeArgs::decode(4, |i| if i == 0 { w0 } else { 0 });
        assert_eq!(bad(1 << 16), Err(Error::InvalidArgument));
        assert_eq!(bad(99), Err(Error::InvalidArgument));
        assert_eq!(bad(ObjType::Frame as u64 | 13 << 8), Err(Error::InvalidArgument));
        // A deferred flag decodes; its check fails later.
        let t = IrqHandlerSetTimerArgs::decode(2, |i| [5, 2][i]).unwrap();
        assert_eq!(t.arm.check(), Err(Error::InvalidArgument));
        // Tails.
        let w = TcbWriteRegistersArgs { first: 0, count: 3 };
        assert_eq!(w.check_tail(5), Ok(()));
        assert_eq!(w.check_tail(4), Err(Error::TruncatedMessage));
        let huge = TcbWriteRegistersArgs {
            first: 0,
            count: u64::MAX,
        };
        assert_eq!(huge.check_tail(usize::MAX), Err(Error::TruncatedMessage));
        let mut out = [0; 8];
        assert_eq!(w.encode_with_tail(&[7, 8, 9], &mut out), Some(5));
        assert_eq!(out[..5], [0, 3, 7, 8, 9]);
        assert_eq!(w.encode_with_tail(&[7], &mut out), None);
        assert_eq!(TcbWriteRegistersArgs::tail_word(1, |i| out[i]), 8);
    }

    fn any_rights() -> impl Strategy<Value = Rights> {
        (0u64..16).prop_map(Rights::from_bits_truncate)
    }

    proptest! {
        #[test]
        fn args_round_trip(ty in 0usize..16, size_bits in 0u8..64, dest: u64, first: u64, count: u64) {
            let object = ObjectSpec::new(ObjType::ALL[ty], size_bits);
            let a = UntypedRetypeArgs { object, dest, first, count };
            let w = a.encode();
            let d = UntypedRetypeArgs::decode(w.len(), |i| w[i]);
            if object.object_bits().is_some() {
                prop_assert_eq!(d, Ok(a));
            } else {
                prop_assert_eq!(d, Err(Error::InvalidArgument));
            }
        }

        #[test]
        fn mint_round_trips(index: u64, src: u64, rights in any_rights(), badge: u64, len in 0usize..6) {
            let a = CNodeMintArgs { index, src, rights, badge };
            let w = a.encode();
            let d = CNodeMintArgs::decode(len, |i| w[i]);
            prop_assert_eq!(d, if len < 4 { Err(Error::TruncatedMessage) } else { Ok(a) });
        }

        #[test]
        fn replies_round_trip(ty: u64, badge: u64, rights in any_rights()) {
            let r = CNodeIdentifyReply { ty, badge, rights: rights.bits() };
            let w = r.encode();
            prop_assert_eq!(CNodeIdentifyReply::decode(3, |i| w[i]), Ok(r));
        }
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
