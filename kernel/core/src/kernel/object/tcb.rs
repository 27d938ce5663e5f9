//! Threads: the Tcb object, its register context, its slots, and its invocations.

use crate::kernel::message;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use gaon_abi::fault::Fault;
use gaon_abi::invocation::{MAX_PRIORITY, REG_COUNT, REG_PC, REG_SP, REG_SPSR, REG_TPIDR, REG_X0};
use gaon_abi::invocation::{
    TcbBindNotificationArgs, TcbGetStateReply, TcbReadRegistersArgs, TcbSetAffinityArgs, TcbSetIpcBufferArgs,
    TcbSetMcpArgs, TcbSetNameArgs, TcbSetPriorityArgs, TcbSetSpaceArgs, TcbSetTimeoutEndpointArgs,
    TcbWriteRegistersArgs,
};
use gaon_abi::vcpu::Exit;
use gaon_abi::{Error, Label, ObjType, Rights};

use super::Args;
use super::endpoint::Endpoint;
use super::notification::Notification;
use super::reply::Reply;
use super::sched_context::SchedContext;
use super::vcpu::{GuestState, VCpu};
use crate::cap::{Cap, FLAG_DEVICE};
use crate::cdt::{self, Slot};
use crate::kernel::cspace::{Kslots, derived_copy, slot};
use crate::kernel::sched::queues::RunLinks;
use crate::kernel::{Kernel, Platform};
use crate::obj::Ptr;

/// User register state. Its layout is shared with the exception vectors, which save
/// a thread's registers straight into its Tcb (`ctx` is at offset 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UserContext {
    /// x0..x30.
    pub x: [u64; 31],
    /// SP_EL0.
    pub sp: u64,
    /// ELR_EL2: where the thread resumes.
    pub pc: u64,
    /// SPSR_EL2: the thread's PSTATE.
    pub spsr: u64,
    /// ESR_EL2: filled in the kernel's own trap frames (same layout); the vectors pass
    /// a user exception's ESR and FAR in registers and leave these two alone.
    pub esr: u64,
    /// FAR_EL2: as `esr`.
    pub far: u64,
}

/// Bytes in a [`UserContext`], as the vectors use it.
pub const USER_CONTEXT_SIZE: usize = 36 * 8;
static_assertions::const_assert_eq!(core::mem::size_of::<UserContext>(), USER_CONTEXT_SIZE);

/// Bytes of [`ArchState`] in every Tcb.
pub const ARCH_STATE_BYTES: usize = 528;

/// Per-thread machine state that only the arch layer interprets (on AArch64 the
/// FP/SIMD registers, which it switches lazily). The core allocates it zeroed with the
/// Tcb and hands it out only through [`crate::kernel::Kernel::lazy_switch`]; the arch
/// layer views the bytes as its own `FromBytes + IntoBytes` type of the same size and
/// alignment (`zerocopy::transmute_mut!`), so no cast is needed on either side.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ArchState([u8; ARCH_STATE_BYTES]);

impl ArchState {
    /// All zero: the state of a new thread.
    pub const ZERO: Self = Self([0; ARCH_STATE_BYTES]);
}

pub use gaon_abi::invocation::ThreadState;

/// Index of the Tcb's slot for its CSpace root CNode.
pub const SLOT_CSPACE: usize = 0;
/// Index of the slot for its VSpace.
pub const SLOT_VSPACE: usize = 1;
/// Index of the slot for its IPC buffer frame.
pub const SLOT_IPC_BUFFER: usize = 2;
/// Index of the slot for its fault endpoint.
pub const SLOT_FAULT_EP: usize = 3;
/// Index of the slot for its timeout endpoint.
pub const SLOT_TIMEOUT_EP: usize = 4;
/// Slots in a Tcb.
pub const TCB_SLOTS: usize = 5;

bitflags::bitflags! {
    /// What kind of send a thread makes (kept while it waits to send).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IpcFlags: u8 {
        /// A Call: the sender waits for the reply.
        const CALL = 1;
        /// The sender's cap had the Grant right: capabilities may go with the message.
        const GRANT = 2;
        /// A fault message (the thread's `fault`), sent by the kernel on its behalf.
        const FAULT = 4;
    }
}

/// What a thread is doing, and what it waits on. The user-visible view is
/// [`ThreadState`] ([`State::abi`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started, suspended, or stopped by a fault nobody can answer.
    Inactive,
    /// Runnable or running.
    Running,
    /// Queued on `ep` to send, with the badge of the cap it sends with.
    BlockedOnSend {
        /// The endpoint.
        ep: Ptr<Endpoint>,
        /// The badge of the capability it sends with.
        badge: u64,
        /// What kind of send.
        flags: IpcFlags,
    },
    /// Queued on `ep` to receive (with its `reply` object, if any).
    BlockedOnRecv {
        /// The endpoint.
        ep: Ptr<Endpoint>,
    },
    /// Waiting in its `reply` object for the answer to a Call.
    BlockedOnReply,
    /// Queued on `ntfn` waiting for a signal.
    BlockedOnNotification {
        /// The notification.
        ntfn: Ptr<Notification>,
    },
    /// A guest in WFI, waiting for a virtual interrupt (`VCpuInjectIrq` wakes it); in no
    /// queue.
    WaitingForInterrupt,
}

impl State {
    /// The state as the ABI reports it (`TcbGetState`).
    pub const fn abi(&self) -> ThreadState {
        match self {
            Self::Inactive => ThreadState::Inactive,
            Self::Running => ThreadState::Running,
            Self::BlockedOnSend { .. } => ThreadState::BlockedOnSend,
            Self::BlockedOnRecv { .. } => ThreadState::BlockedOnRecv,
            Self::BlockedOnReply => ThreadState::BlockedOnReply,
            Self::BlockedOnNotification { .. } => ThreadState::BlockedOnNotification,
            Self::WaitingForInterrupt => ThreadState::WaitingForInterrupt,
        }
    }

    /// Runnable or running.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub const fn is_running(&self) -> bool {
        matches!(self, Self::Running)
    }
}

/// Tests and the consistency check compare states by their ABI view.
impl PartialEq<ThreadState> for State {
    fn eq(&self, other: &ThreadState) -> bool {
        self.abi() == *other
    }
}

/// A thread.
#[repr(C)]
#[derive(Debug)]
pub struct Tcb {
    /// Saved registers; must stay first.
    pub(crate) ctx: UserContext,
    /// The thread pointer (TPIDR_EL0 on AArch64): the one user register outside `ctx`
    /// that the core reads and writes itself (`REG_TPIDR`). The arch layer loads it
    /// into the CPU when the thread runs and saves it back lazily (see
    /// [`crate::kernel::Lazy::ThreadPointer`]); it stays next to `ctx` on purpose.
    pub(crate) tpidr: u64,
    /// What it is doing and waiting on.
    pub(crate) state: State,
    /// Priority (0..=255).
    pub(crate) prio: u8,
    /// Maximum controlled priority: the highest priority this thread may give.
    pub(crate) mcp: u8,
    /// The core it runs on (its scheduling context's, once it has a configured one):
    /// it is queued in that core's run queues and only that core runs it.
    pub(crate) cpu: u8,
    /// The core chosen for it (`TcbSetAffinity`; core 0 at first): where it runs when
    /// it has no configured scheduling context, which would place it on its own core.
    pub(crate) affinity: u8,
    /// Its id in traces (`gaon_abi::trace`), given when it is made; never 0.
    pub(crate) tid: u32,
    /// Its place in the run queues, which only they change ([`Tcb::queued`] reads it).
    pub(crate) run: RunLinks,
    /// Endpoint or notification queue links: changed only by `endpoint::Queue`; others
    /// read [`Tcb::ipc_links`].
    pub(in crate::kernel::object) ep_next: Option<Ptr<Tcb>>,
    /// Endpoint or notification queue links.
    pub(in crate::kernel::object) ep_prev: Option<Ptr<Tcb>>,
    /// Reply object: the one it receives with (BlockedOnRecv) or waits in (BlockedOnReply).
    pub(crate) reply: Option<Ptr<Reply>>,
    /// Bound notification.
    pub(crate) bound_ntfn: Option<Ptr<Notification>>,
    /// Bound scheduling context.
    pub(crate) sched_context: Option<Ptr<SchedContext>>,
    /// Bound virtual CPU: the thread runs a guest at EL1/EL0 (its PSTATE may name EL1).
    pub(crate) vcpu: Option<Ptr<VCpu>>,
    /// User address of the IPC buffer.
    pub(crate) ipc_buffer_vaddr: u64,
    /// The fault it sent (or is sending) to its fault handler and waits to be answered
    /// for; `None` when it waits for nothing of the kind.
    pub(crate) fault: Option<Fault>,
    /// The guest exit it sent (or is sending) to its fault handler and waits to be
    /// answered for (a VCpu thread); as `fault`, for exits.
    pub(crate) exit: Option<Exit>,
    /// The arch layer's own per-thread state (only through `Kernel::lazy_switch`).
    arch: ArchState,
    /// Capabilities the thread runs with (`SLOT_*`).
    pub(crate) slots: [Slot; TCB_SLOTS],
}

static_assertions::const_assert!(core::mem::size_of::<Tcb>() <= 1 << gaon_abi::object::TCB_BITS);
static_assertions::const_assert_eq!(core::mem::offset_of!(Tcb, ctx), 0);

/// The parts of one thread's state the arch layer moves between its Tcb and the CPU
/// (see [`crate::kernel::Kernel::lazy_switch`]).
#[derive(Debug)]
pub struct LiveState<'a> {
    /// The thread pointer (`Tcb::tpidr`).
    pub thread_pointer: &'a mut u64,
    /// The arch layer's area.
    pub arch: &'a mut ArchState,
    /// Its VCpu binding (read only when asked: [`LiveState::guest`]), so that the
    /// switch of the other kinds reads nothing for it.
    vcpu: &'a Option<Ptr<VCpu>>,
}

impl<'a> LiveState<'a> {
    /// Its VCpu's guest state, if it is a VCpu thread.
    #[inline]
    pub fn guest(&self) -> Option<&'a mut GuestState> {
        self.vcpu.map(|v| &mut v.get().state)
    }
}

impl Tcb {
    /// In a run queue (the running thread is not: see `Kernel::settle_current`).
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(crate) const fn queued(&self) -> bool {
        self.run.queued()
    }

    /// Its run-queue links `(prev, next)`, for the consistency check and tests.
    #[cfg(any(test, feature = "consistency-check"))]
    pub(crate) const fn run_links(&self) -> (Option<Ptr<Tcb>>, Option<Ptr<Tcb>>) {
        self.run.links()
    }

    /// Its endpoint or notification queue links `(prev, next)`, for the consistency
    /// check and tests.
    #[cfg(any(test, feature = "consistency-check"))]
    pub(crate) const fn ipc_links(&self) -> (Option<Ptr<Tcb>>, Option<Ptr<Tcb>>) {
        (self.ep_prev, self.ep_next)
    }

    /// Corrupt its endpoint-queue link (tests of the consistency check).
    #[cfg(test)]
    pub(crate) fn set_ipc_next(&mut self, next: Option<Ptr<Tcb>>) {
        self.ep_next = next;
    }
}

impl Tcb {
    /// This thread's [`LiveState`].
    pub(crate) fn live_state(&mut self) -> LiveState<'_> {
        LiveState {
            thread_pointer: &mut self.tpidr,
            arch: &mut self.arch,
            vcpu: &self.vcpu,
        }
    }
}

/// The round-robin time slice among threads of equal priority.
pub const TIMESLICE_US: u64 = 50_000;

impl Tcb {
    /// A new, inactive thread with priority 0.
    pub const fn new() -> Self {
        Self {
            ctx: UserContext {
                x: [0; 31],
                sp: 0,
                pc: 0,
                spsr: 0,
                esr: 0,
                far: 0,
            },
            tpidr: 0,
            state: State::Inactive,
            tid: 0,
            prio: 0,
            mcp: 0,
            cpu: 0,
            affinity: 0,
            run: RunLinks::NONE,
            ep_next: None,
            ep_prev: None,
            reply: None,
            bound_ntfn: None,
            sched_context: None,
            vcpu: None,
            ipc_buffer_vaddr: 0,
            fault: None,
            exit: None,
            arch: ArchState::ZERO,
            slots: [Slot::EMPTY; TCB_SLOTS],
        }
    }
}

impl Default for Tcb {
    fn default() -> Self {
        Self::new()
    }
}

/// Address of a Tcb's slot `i`.
pub fn slot_addr(t: Ptr<Tcb>, i: usize) -> usize {
    t.addr() + core::mem::offset_of!(Tcb, slots) + i * core::mem::size_of::<Slot>()
}

// ---- invocations ---------------------------------------------------------------------

/// A capability to copy into a Tcb slot: `(source slot, the cap)`, or none (empty it).
type Install = Option<(usize, Cap)>;

/// A checked Tcb invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    /// Replace slots (SetSpace: three; SetIpcBuffer and SetTimeoutEndpoint: one) and,
    /// for SetIpcBuffer, the buffer's address.
    Slots {
        slots: [(usize, Install); 3],
        count: usize,
        ipc_buffer: Option<u64>,
    },
    SetPriority(u8),
    SetMcp(u8),
    ReadRegisters {
        first: u64,
        count: u64,
    },
    WriteRegisters {
        first: u64,
        count: u64,
    },
    Resume,
    Suspend,
    Bind(Ptr<Notification>),
    Unbind(Ptr<Notification>),
    GetState,
    SetAffinity(u8),
    /// The name's two words (`gaon_abi::trace::name_words`).
    SetName(u64, u64),
}

impl<P: Platform> Kernel<P> {
    #[allow(clippy::too_many_lines, reason = "one arm per Tcb invocation")]
    pub(super) fn decode_tcb(&self, t: Ptr<Tcb>, target: Ptr<Tcb>, label: Label, a: &Args) -> Result<Op, Error> {
        use Label as L;
        let none = (0, None);
        match label {
            L::TcbSetSpace => {
                let TcbSetSpaceArgs {
                    cspace: cs,
                    vspace: vs,
                    fault_ep: fe,
                } = a.decode()?;
                let cspace = self.lookup_typed(t, cs, ObjType::CNode)?;
                let vspace = self.lookup_typed(t, vs, ObjType::VSpace)?;
                if vspace.1.vmid() == 0 {
                    // No VMID yet (VmidPoolAssign): it cannot be run in.
                    return Err(Error::IllegalOperation);
                }
                let fault = if fe == 0 {
                    None
                } else {
                    Some(self.lookup_typed(t, fe, ObjType::Endpoint)?)
                };
                let slots = [
                    (SLOT_CSPACE, Some(cspace)),
                    (SLOT_VSPACE, Some(vspace)),
                    (SLOT_FAULT_EP, fault),
                ];
                for &(i, src) in &slots {
                    check_install(target, i, src)?;
                }
                Ok(Op::Slots {
                    slots,
                    count: 3,
                    ipc_buffer: None,
                })
            }
            L::TcbSetIpcBuffer => {
                let TcbSetIpcBufferArgs { vaddr: va, frame: fc } = a.decode()?;
                if !va.is_multiple_of(1 << gaon_abi::message::IPC_BUFFER_SIZE_BITS) {
                    return Err(Error::AlignmentError);
                }
                let frame = if fc == 0 {
                    None
                } else {
                    let f = self.lookup_typed(t, fc, ObjType::Frame)?;
                    if f.1.has(FLAG_DEVICE) {
                        return Err(Error::InvalidCapability);
                    }
                    // The kernel reads messages from it and writes replies into it.
                    if !f.1.rights().contains(Rights::READ | Rights::WRITE) {
                        return Err(Error::NoRights);
                    }
                    Some(f)
                };
                check_install(target, SLOT_IPC_BUFFER, frame)?;
                Ok(Op::Slots {
                    slots: [(SLOT_IPC_BUFFER, frame), none, none],
                    count: 1,
                    ipc_buffer: Some(if fc == 0 { 0 } else { va }),
                })
            }
            L::TcbSetTimeoutEndpoint => {
                let c = a.decode::<TcbSetTimeoutEndpointArgs>()?.endpoint;
                let ep = if c == 0 {
                    None
                } else {
                    Some(self.lookup_typed(t, c, ObjType::Endpoint)?)
                };
                check_install(target, SLOT_TIMEOUT_EP, ep)?;
                Ok(Op::Slots {
                    slots: [(SLOT_TIMEOUT_EP, ep), none, none],
                    count: 1,
                    ipc_buffer: None,
                })
            }
            L::TcbSetPriority | L::TcbSetMcp => {
                let (value, auth) = if label == L::TcbSetMcp {
                    let m: TcbSetMcpArgs = a.decode()?;
                    (m.mcp, m.authority)
                } else {
                    let p: TcbSetPriorityArgs = a.decode()?;
                    (p.priority, p.authority)
                };
                let (_, auth) = self.lookup_typed(t, auth, ObjType::Tcb)?;
                if value > MAX_PRIORITY {
                    return Err(Error::RangeError);
                }
                if value > u64::from(auth.tcb().get().mcp) {
                    return Err(Error::IllegalOperation);
                }
                Ok(if label == L::TcbSetMcp {
                    Op::SetMcp(value as u8)
                } else {
                    Op::SetPriority(value as u8)
                })
            }
            L::TcbReadRegisters => {
                let TcbReadRegistersArgs { first, count } = a.decode()?;
                if target == t {
                    return Err(Error::IllegalOperation);
                }
                if first >= REG_COUNT || count > REG_COUNT - first || count as usize > message::mr_capacity(t) {
                    return Err(Error::RangeError);
                }
                Ok(Op::ReadRegisters { first, count })
            }
            L::TcbWriteRegisters => {
                let w: TcbWriteRegistersArgs = a.decode()?;
                let (first, count) = (w.first, w.count);
                if target == t {
                    return Err(Error::IllegalOperation);
                }
                if first >= REG_COUNT || count > REG_COUNT - first {
                    return Err(Error::RangeError);
                }
                // Every value is there.
                w.check_tail(a.len())?;
                Ok(Op::WriteRegisters { first, count })
            }
            L::TcbResume => {
                if matches!(target.get().state, State::Inactive) && self.vspace_of(target).is_none() {
                    return Err(Error::IllegalOperation);
                }
                Ok(Op::Resume)
            }
            L::TcbSuspend => Ok(Op::Suspend),
            L::TcbBindNotification => {
                let (_, nc) = self.lookup_typed(
                    t,
                    a.decode::<TcbBindNotificationArgs>()?.notification,
                    ObjType::Notification,
                )?;
                if !nc.rights().contains(Rights::READ) {
                    return Err(Error::NoRights);
                }
                let n = nc.notification();
                if target.get().bound_ntfn.is_some() || n.get().bound.is_some() {
                    return Err(Error::IllegalOperation);
                }
                if !n.get().queue.is_empty() {
                    return Err(Error::IllegalOperation);
                }
                Ok(Op::Bind(n))
            }
            L::TcbUnbindNotification => Ok(Op::Unbind(target.get().bound_ntfn.ok_or(Error::IllegalOperation)?)),
            L::TcbGetState => Ok(Op::GetState),
            L::TcbSetAffinity => {
                let cpu = a.decode::<TcbSetAffinityArgs>()?.cpu;
                if cpu >= super::super::MAX_CORES as u64 || self.online & (1 << cpu) == 0 {
                    return Err(Error::RangeError);
                }
                Ok(Op::SetAffinity(cpu as u8))
            }
            L::TcbSetName => {
                let n = a.decode::<TcbSetNameArgs>()?;
                Ok(Op::SetName(n.name_lo, n.name_hi))
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_tcb(&mut self, t: Ptr<Tcb>, target: Ptr<Tcb>, op: Op, a: &Args) -> usize {
        match op {
            Op::Slots {
                slots,
                count,
                ipc_buffer,
            } => {
                // Running on another core: stopped there first, so it does not go on
                // in the address space (or with the IPC buffer) it is being moved out of.
                self.settle(target);
                for (i, src) in slots.into_iter().take(count) {
                    self.install(target, i, src);
                }
                if let Some(va) = ipc_buffer {
                    target.get().ipc_buffer_vaddr = va;
                }
            }
            Op::SetMcp(v) => target.get().mcp = v,
            Op::SetPriority(v) => {
                // The running thread is queued again first, so it moves like any other.
                self.settle_current();
                self.settle(target);
                let queued = target.get().queued();
                self.dequeue(target);
                target.get().prio = v;
                if queued {
                    self.enqueue(target, false);
                }
            }
            Op::ReadRegisters { first, count } => {
                // Its registers are in its Tcb only while it runs nowhere, and its thread
                // pointer only while no core holds it live.
                self.settle(target);
                self.save_lazy_of(target);
                for i in 0..count {
                    message::set_mr(t, i as usize, read_reg(target.get(), first + i));
                }
                return count as usize;
            }
            Op::WriteRegisters { first, count } => {
                self.settle(target);
                self.save_lazy_of(target);
                for i in 0..count {
                    // Decode checked the message holds them all.
                    let v = a.word(TcbWriteRegistersArgs::TAIL + i as usize);
                    write_reg(target.get(), first + i, v);
                }
            }
            Op::Resume => {
                if matches!(target.get().state, State::Inactive) {
                    target.get().fault = None;
                    target.get().exit = None;
                    self.make_runnable(target, false);
                    // A guest with ends of interrupts its VMM has not heard of yet
                    // tells them first.
                    self.send_eoi(target);
                }
            }
            Op::Suspend => {
                self.settle(target);
                self.cancel_ipc(target);
                target.get().fault = None;
                target.get().exit = None;
                self.block(target, State::Inactive);
            }
            Op::Bind(n) => {
                target.get().bound_ntfn = Some(n);
                n.get().bound = Some(target);
            }
            Op::Unbind(n) => {
                n.get().bound = None;
                target.get().bound_ntfn = None;
            }
            Op::SetName(lo, hi) => {
                if self.tracing(gaon_abi::trace::Class::THREAD) {
                    self.record(gaon_abi::trace::Event::ThreadName, target.get().tid, lo, hi);
                }
            }
            Op::SetAffinity(cpu) => {
                target.get().affinity = cpu;
                if !self.budgeted(target) {
                    self.migrate(target, usize::from(cpu));
                }
            }
            Op::GetState => {
                let tcb = target.get();
                return super::reply_with(
                    t,
                    &TcbGetStateReply {
                        state: u64::from(tcb.state.abi() as u8),
                        priority: u64::from(tcb.prio),
                        mcp: u64::from(tcb.mcp),
                        cpu: u64::from(tcb.cpu),
                    },
                );
            }
        }
        0
    }

    /// Replace `target`'s slot `i` with a copy of the cap at `src` (or empty it). The
    /// caller has checked the change with [`check_install`], so it cannot fail: the
    /// delete destroys no container, hence neither `target` nor the source.
    fn install(&mut self, target: Ptr<Tcb>, i: usize, src: Install) {
        let dst = slot_addr(target, i);
        self.delete_slot(dst);
        let Some((s, cap)) = src else { return };
        debug_assert!(slot(s).cap.same_object(&cap) && slot(dst).cap.is_null());
        if let Ok(copy) = derived_copy(cap) {
            let r = cdt::derive(&mut Kslots, s, dst, copy);
            debug_assert!(r.is_ok(), "check_install checked the copy");
        }
    }
}

/// Check that `target`'s slot `i` can be replaced by a copy of `src` (or emptied)
/// without side effects beyond it. Refused: a source that cannot be copied, and an old
/// capability that is the last one to a CNode or Tcb. Deleting that would destroy the
/// container and every capability in it, which may include the last capability to
/// `target` itself (a thread whose CSpace holds its own Tcb cap) or to the objects the
/// other slots are about to receive; the caller deletes such a thread instead, or
/// keeps another capability to the container.
fn check_install(target: Ptr<Tcb>, i: usize, src: Install) -> Result<(), Error> {
    let dst = slot_addr(target, i);
    let old = slot(dst).cap;
    if (old.is(ObjType::CNode) || old.is(ObjType::Tcb)) && cdt::is_final(&mut Kslots, dst) {
        return Err(Error::IllegalOperation);
    }
    if let Some((_, cap)) = src {
        derived_copy(cap)?;
    }
    Ok(())
}

fn read_reg(t: &Tcb, i: u64) -> u64 {
    match i {
        REG_PC => t.ctx.pc,
        REG_SP => t.ctx.sp,
        REG_SPSR => t.ctx.spsr,
        REG_TPIDR => t.tpidr,
        _ => t.ctx.x[(i - REG_X0) as usize],
    }
}

/// Write register `i`. A native thread's PSTATE keeps EL0t with interrupts unmasked:
/// only the condition flags (NZCV) can be changed. A guest's ([`guest_pstate`]) may also
/// name EL1h or EL1t and mask interrupts.
fn write_reg(t: &mut Tcb, i: u64, v: u64) {
    match i {
        REG_PC => t.ctx.pc = v,
        REG_SP => t.ctx.sp = v,
        REG_SPSR if t.vcpu.is_some() => t.ctx.spsr = guest_pstate(v),
        REG_SPSR => t.ctx.spsr = v & 0xf000_0000,
        REG_TPIDR => t.tpidr = v,
        _ => t.ctx.x[(i - REG_X0) as usize] = v,
    }
}

/// A guest's PSTATE from `v`: the condition flags, D, A, I and F, and the mode if it is
/// AArch64 EL0t, EL1t or EL1h (anything else becomes EL1h: never EL2, never AArch32).
pub(crate) const fn guest_pstate(v: u64) -> u64 {
    const EL0T: u64 = 0b0000;
    const EL1T: u64 = 0b0100;
    const EL1H: u64 = 0b0101;
    let mode = match v & 0x1f {
        EL0T => EL0T,
        EL1T => EL1T,
        _ => EL1H,
    };
    (v & 0xf000_03c0) | mode
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::format;

    use super::Tcb;

    /// `init_object` makes a Tcb by zeroing its memory: that must be exactly
    /// `Tcb::new()` (no link, no fault, `Inactive`, empty slots).
    #[test]
    fn a_new_tcb_is_zeroed_memory() {
        let zeroed = Box::<Tcb>::new_zeroed();
        // SAFETY: this test is what shows that every Tcb field is valid as zero bytes
        // (the Debug comparison below would show a field that is not its `new()` value).
        #[allow(unsafe_code, reason = "the test checks that zeroed memory is a valid new Tcb")]
        let t = unsafe { zeroed.assume_init() };
        assert_eq!(format!("{t:?}"), format!("{:?}", Tcb::new()));
    }
}
