//! Virtual CPUs: a guest's EL1 register state, bound to the thread that runs the guest,
//! and their invocations. A thread with a VCpu runs at EL1/EL0 under its own stage 1,
//! in the stage-2 address space of its VSpace; the arch layer loads the VCpu's
//! registers lazily ([`crate::kernel::Lazy::Guest`]), and the guest's exits become
//! messages to the thread's fault endpoint (`gaon_abi::vcpu::Exit`, `entry.rs`).
//! The guest's virtual timer is the kernel's business (`kernel/vtimer.rs`).

use gaon_abi::invocation::{
    VCpuAckVppiArgs, VCpuBindTcbArgs, VCpuInjectIrqArgs, VCpuReadRegsArgs, VCpuSetVppiArgs, VCpuTraceArgs,
    VCpuTraceReply, VCpuWriteRegsArgs,
};
use gaon_abi::vcpu::{GUEST_RESET_PSTATE, INJECT_LEVEL, SCTLR_EL1_RESET, VCPU_REG_COUNT, VCpuReg};
use gaon_abi::{Error, Label, ObjType};

use super::Args;
use super::tcb::{State, Tcb};
use crate::kernel::{Kernel, Platform, message};
use crate::obj::Ptr;

/// A guest's registers, by [`VCpuReg`] index.
pub type GuestRegs = [u64; VCPU_REG_COUNT];

/// Words of virtual-interrupt-controller state the arch layer keeps in a VCpu (on
/// GICv3: the list registers, ICH_VMCR_EL2 and the active-priority registers).
pub const VGIC_WORDS: usize = 24;

/// A virtual interrupt to make pending in a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VIrq {
    /// Its INTID (below 1020).
    pub intid: u32,
    /// Its priority.
    pub priority: u8,
    /// The kernel hears when the guest deactivates it (a maintenance interrupt,
    /// [`Kernel::guest_eoi`]): the virtual timer's, whose line stays masked until then,
    /// and the level-triggered ones the VMM injects (it gets an `Eoi` exit).
    pub notify_eoi: bool,
}

impl VIrq {
    const fn pack(self) -> u32 {
        self.intid | (self.priority as u32) << 16 | (self.notify_eoi as u32) << 24
    }

    const fn unpack(e: u32) -> Self {
        Self {
            intid: e & 0xffff,
            priority: (e >> 16) as u8,
            notify_eoi: e >> 24 & 1 != 0,
        }
    }
}

/// Virtual interrupts queued for a guest: made pending by the VMM or the kernel, not
/// yet in a list register (the arch layer moves them there when the guest runs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqQueue {
    /// [`VIrq`]s packed (`intid | priority << 16 | notify_eoi << 24`), oldest first.
    entries: [u32; IRQ_QUEUE],
    /// Entries in use.
    len: u8,
}

/// Virtual interrupts a VCpu queues at most.
pub const IRQ_QUEUE: usize = 32;

impl IrqQueue {
    /// True if `intid` is queued.
    pub fn contains(&self, intid: u32) -> bool {
        self.entries[..usize::from(self.len)]
            .iter()
            .any(|e| e & 0xffff == intid)
    }

    /// Queue `irq`; false if the queue is full. One already queued stays one (an
    /// interrupt is pending or not), asking for its end to be heard of if either does.
    pub fn push(&mut self, irq: VIrq) -> bool {
        let n = usize::from(self.len);
        if let Some(e) = self.entries[..n].iter_mut().find(|e| **e & 0xffff == irq.intid) {
            *e |= u32::from(irq.notify_eoi) << 24;
            return true;
        }
        if n == IRQ_QUEUE {
            return false;
        }
        self.entries[n] = irq.pack();
        self.len += 1;
        true
    }

    /// The oldest queued interrupt, taken out.
    pub fn pop(&mut self) -> Option<VIrq> {
        if self.len == 0 {
            return None;
        }
        let e = self.entries[0];
        self.entries.copy_within(1..usize::from(self.len), 0);
        self.len -= 1;
        Some(VIrq::unpack(e))
    }

    /// Put an interrupt back at the front (no list register was free after all).
    pub fn unpop(&mut self, irq: VIrq) {
        let n = usize::from(self.len).min(IRQ_QUEUE - 1);
        self.entries.copy_within(0..n, 1);
        self.entries[0] = irq.pack();
        self.len = (n + 1) as u8;
    }

    /// Interrupts queued.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True if none is queued.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What a CPU holds live while the guest runs, and the VCpu keeps otherwise.
#[repr(C)]
#[derive(Debug)]
pub struct GuestState {
    /// The guest's registers. While a CPU holds them live (the bound thread is the
    /// `Lazy::Guest` owner there) this copy is stale; `save_lazy_of` refreshes it.
    pub regs: GuestRegs,
    /// The arch layer's virtual interrupt controller state, saved with the registers.
    pub vgic: [u64; VGIC_WORDS],
    /// Virtual interrupts not yet in a list register.
    pub queue: IrqQueue,
    /// The virtual timer's interrupt state.
    pub vtimer: VTimer,
}

/// What the kernel knows of a guest's virtual timer interrupt (the timer itself is in
/// the registers: `CntvCtlEl0`, `CntvCvalEl0`, `Cntvoff`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VTimer {
    /// Its interrupt was raised and the guest has not deactivated it yet: the physical
    /// line stays masked while this guest's timer is in a CPU, so a level-triggered
    /// timer does not fire again and again.
    pub masked: bool,
    /// It came while the guest had the virtual PPI disabled: raised once enabled.
    pub latched: bool,
    /// The guest has the virtual PPI enabled (`VCpuSetVppi`).
    pub enabled: bool,
    /// Its priority (`VCpuSetVppi`).
    pub priority: u8,
}

impl Default for VTimer {
    fn default() -> Self {
        Self {
            masked: false,
            latched: false,
            enabled: true,
            priority: 0xa0,
        }
    }
}

/// A virtual CPU.
#[repr(C)]
#[derive(Debug)]
pub struct VCpu {
    /// The bound thread, which runs the guest.
    pub(crate) tcb: Option<Ptr<Tcb>>,
    /// Its registers and virtual interrupts.
    pub(crate) state: GuestState,
    /// The core whose list of guest timers holds this VCpu (`kernel/vtimer.rs`): its
    /// thread waits in WFI with its state out of every CPU and its timer armed.
    pub(crate) timer_core: Option<u8>,
    /// The next VCpu in that list (sorted by `timer_at`).
    pub(crate) timer_next: Option<Ptr<VCpu>>,
    /// When its timer fires, in physical counter ticks.
    pub(crate) timer_at: u64,
    /// The guest's last stage-2 abort exit: its virtual address (FAR_EL2, 0 if not
    /// valid) and ESR_EL2, for an abort its VMM answers by raising one in the guest.
    pub(crate) last_abort: (u64, u64),
    /// Level-triggered interrupts the guest deactivated, not yet sent to the VMM as
    /// `Eoi` exits (`kernel/guest.rs`).
    pub(crate) eois: IrqQueue,
}
static_assertions::const_assert!(core::mem::size_of::<VCpu>() <= 1 << gaon_abi::object::VCPU_BITS);

impl Default for VCpu {
    /// Unbound, its registers as a CPU's out of reset (MMU off), nothing pending.
    fn default() -> Self {
        let mut regs = [0; VCPU_REG_COUNT];
        regs[VCpuReg::SctlrEl1 as usize] = SCTLR_EL1_RESET;
        Self {
            tcb: None,
            state: GuestState {
                regs,
                vgic: [0; VGIC_WORDS],
                queue: IrqQueue::default(),
                vtimer: VTimer::default(),
            },
            timer_core: None,
            timer_next: None,
            timer_at: 0,
            last_abort: (0, 0),
            eois: IrqQueue::default(),
        }
    }
}

/// A checked VCpu invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    Bind(Ptr<Tcb>),
    Unbind(Ptr<Tcb>),
    ReadRegs {
        first: usize,
        count: usize,
    },
    WriteRegs {
        first: usize,
        count: usize,
    },
    Inject(VIrq),
    SetVppi {
        enabled: bool,
        priority: u8,
    },
    AckVppi,
    Reset,
    /// Record this guest event for the bound thread.
    Trace(gaon_abi::trace::Event, u64, u64),
}

/// `VCpuTrace`: one of the guest events, for a VCpu with a thread bound.
fn decode_trace(v: Ptr<VCpu>, a: &Args) -> Result<Op, Error> {
    use gaon_abi::trace::Event;
    let VCpuTraceArgs {
        event,
        a: first,
        b: second,
    } = a.decode()?;
    let event = u16::try_from(event)
        .ok()
        .and_then(Event::from_raw)
        .filter(|e| {
            matches!(
                e,
                Event::GuestTaskSwitch | Event::GuestEvent | Event::GuestTaskName | Event::GuestTaskNameEnd
            )
        })
        .ok_or(Error::InvalidArgument)?;
    if v.get().tcb.is_none() {
        return Err(Error::IllegalOperation);
    }
    Ok(Op::Trace(event, first, second))
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_vcpu(&self, t: Ptr<Tcb>, v: Ptr<VCpu>, label: Label, a: &Args) -> Result<Op, Error> {
        match label {
            Label::VCpuBindTcb => {
                let (_, tc) = self.lookup_typed(t, a.decode::<VCpuBindTcbArgs>()?.tcb, ObjType::Tcb)?;
                let target = tc.tcb();
                // A thread does not turn into a guest mid-syscall or in the middle of an IPC
                // (it would be resumed at EL1 as a native thread is, the fastpath's way):
                // only an inactive one (suspended, or never started) is bound.
                if target == t
                    || v.get().tcb.is_some()
                    || target.get().vcpu.is_some()
                    || target.get().state != State::Inactive
                {
                    return Err(Error::IllegalOperation);
                }
                Ok(Op::Bind(target))
            }
            Label::VCpuUnbindTcb => Ok(Op::Unbind(v.get().tcb.ok_or(Error::IllegalOperation)?)),
            Label::VCpuReadRegs => {
                let VCpuReadRegsArgs { first, count } = a.decode()?;
                let (first, count) = regs_range(first, count)?;
                if count > message::mr_capacity(t) {
                    return Err(Error::RangeError);
                }
                Ok(Op::ReadRegs { first, count })
            }
            Label::VCpuWriteRegs => {
                let w: VCpuWriteRegsArgs = a.decode()?;
                let (first, count) = regs_range(w.first, w.count)?;
                w.check_tail(a.len())?;
                Ok(Op::WriteRegs { first, count })
            }
            Label::VCpuInjectIrq => {
                // No interface to inject into comes first: no argument can help then.
                if !self.platform.has_vgic() {
                    return Err(Error::IllegalOperation);
                }
                let VCpuInjectIrqArgs { intid, priority, flags } = a.decode()?;
                if intid >= 1020 || priority > 255 {
                    return Err(Error::RangeError);
                }
                let level = flags & INJECT_LEVEL != 0;
                if flags & !INJECT_LEVEL != 0 || (level && Some(intid as u32) == self.platform.guest_timer_irq()) {
                    return Err(Error::InvalidArgument);
                }
                let queue = &v.get().state.queue;
                if queue.len() == IRQ_QUEUE && !queue.contains(intid as u32) {
                    return Err(Error::NotEnoughMemory);
                }
                Ok(Op::Inject(VIrq {
                    intid: intid as u32,
                    priority: priority as u8,
                    notify_eoi: level,
                }))
            }
            Label::VCpuSetVppi => {
                let timer = self.platform.guest_timer_irq().ok_or(Error::IllegalOperation)?;
                let VCpuSetVppiArgs {
                    intid,
                    enabled,
                    priority,
                } = a.decode()?;
                if intid != u64::from(timer) || priority > 255 {
                    return Err(Error::RangeError);
                }
                Ok(Op::SetVppi {
                    enabled,
                    priority: priority as u8,
                })
            }
            Label::VCpuAckVppi => {
                let timer = self.platform.guest_timer_irq().ok_or(Error::IllegalOperation)?;
                let VCpuAckVppiArgs { intid } = a.decode()?;
                if intid != u64::from(timer) {
                    return Err(Error::RangeError);
                }
                Ok(Op::AckVppi)
            }
            Label::VCpuReset => {
                // A thread that runs, waits or is queued would go on in a CPU it did
                // not expect: only an inactive one has its CPU reset under it.
                if v.get().tcb.is_some_and(|b| b.get().state != State::Inactive) {
                    return Err(Error::IllegalOperation);
                }
                Ok(Op::Reset)
            }
            Label::VCpuTrace => decode_trace(v, a),
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_vcpu(&mut self, t: Ptr<Tcb>, v: Ptr<VCpu>, op: Op, a: &Args) -> usize {
        match op {
            Op::Bind(target) => {
                // It runs nowhere while it changes kind, and takes no lazily switched
                // state of its native life into the guest's.
                self.settle(target);
                self.save_lazy_of(target);
                v.get().tcb = Some(target);
                let tc = target.get();
                tc.vcpu = Some(v);
                tc.ctx.spsr = GUEST_RESET_PSTATE;
                0
            }
            Op::Unbind(target) => {
                self.unbind_vcpu(v, target);
                0
            }
            Op::ReadRegs { first, count } => {
                self.refresh_vcpu(v);
                for i in 0..count {
                    message::set_mr(t, i, v.get().state.regs[first + i]);
                }
                count
            }
            Op::Inject(irq) => {
                if self.tracing(gaon_abi::trace::Class::VM) {
                    let target = crate::kernel::trace::tid(v.get().tcb);
                    self.record(
                        gaon_abi::trace::Event::VirqInject,
                        t.get().tid,
                        u64::from(irq.intid),
                        u64::from(target),
                    );
                }
                // The list registers are live in a CPU while the guest's state is: saved
                // from there first, so the next run loads them and fills free ones from
                // the queue.
                self.refresh_vcpu(v);
                let queued = v.get().state.queue.push(irq);
                debug_assert!(queued, "decode checked for room");
                self.wake_guest(v);
                0
            }
            Op::SetVppi { enabled, priority } => {
                let vt = &mut v.get().state.vtimer;
                vt.enabled = enabled;
                vt.priority = priority;
                if enabled && vt.latched {
                    self.refresh_vcpu(v);
                    self.vtimer_raise(v);
                }
                0
            }
            Op::AckVppi => {
                // Out of every CPU first: the next to load the state unmasks the line.
                self.refresh_vcpu(v);
                let vt = &mut v.get().state.vtimer;
                vt.masked = false;
                vt.latched = false;
                self.vtimer_rearm(v);
                0
            }
            Op::Reset => {
                // Out of every CPU and off the guest timer lists first: what is reset is
                // the only copy, and the next CPU to load it unmasks the timer's line.
                self.refresh_vcpu(v);
                self.vtimer_unlink(v);
                let tcb = v.get().tcb;
                *v.get() = VCpu { tcb, ..VCpu::default() };
                if let Some(b) = tcb {
                    b.get().ctx.spsr = GUEST_RESET_PSTATE;
                }
                0
            }
            Op::Trace(event, first, second) => {
                let recorded = self.tracing(gaon_abi::trace::Class::VM);
                if recorded {
                    let tid = crate::kernel::trace::tid(v.get().tcb);
                    self.record(event, tid, first, second);
                }
                super::reply_with(
                    t,
                    &VCpuTraceReply {
                        recorded: u64::from(recorded),
                    },
                )
            }
            Op::WriteRegs { first, count } => {
                // The bound thread runs nowhere and no CPU holds the registers live, so
                // it resumes with these.
                self.refresh_vcpu(v);
                for i in 0..count {
                    v.get().state.regs[first + i] = a.word(VCpuWriteRegsArgs::TAIL + i);
                }
                // A guest waiting in WFI may have a new timer.
                self.vtimer_rearm(v);
                0
            }
        }
    }

    /// A virtual interrupt became pending for `v`: a guest waiting in WFI goes on
    /// (after its WFI) to take it.
    pub(in crate::kernel) fn wake_guest(&mut self, v: Ptr<VCpu>) {
        if let Some(b) = v.get().tcb
            && b.get().state == State::WaitingForInterrupt
        {
            self.vtimer_unlink(v);
            self.make_runnable(b, false);
        }
    }

    /// Make `v`'s register copy current: its thread runs nowhere, and no CPU holds the
    /// registers live (they are saved from wherever they were).
    pub(in crate::kernel) fn refresh_vcpu(&mut self, v: Ptr<VCpu>) {
        if let Some(b) = v.get().tcb {
            self.settle(b);
            self.save_lazy_of(b);
        }
    }

    /// Cut the binding of `v` and `target`: the guest's registers are saved into `v`
    /// first, and the thread, stopped, is a native EL0 thread from then on (a pending
    /// exit is dropped with the IPC it was in).
    pub(in crate::kernel) fn unbind_vcpu(&mut self, v: Ptr<VCpu>, target: Ptr<Tcb>) {
        self.settle(target);
        self.save_lazy_of(target);
        self.vtimer_unlink(v);
        // Its exit goes with the guest (not taken back: the thread is native now).
        target.get().exit = None;
        self.cancel_ipc(target);
        v.get().tcb = None;
        // Ends of interrupts were the old guest's business.
        v.get().eois = IrqQueue::default();
        let tc = target.get();
        tc.vcpu = None;
        tc.fault = None;
        tc.exit = None;
        // Only the condition flags survive: EL0t, as a native thread must run.
        tc.ctx.spsr &= 0xf000_0000;
        self.block(target, State::Inactive);
    }
}

/// A register range of a VCpu, checked.
fn regs_range(first: u64, count: u64) -> Result<(usize, usize), Error> {
    let n = VCPU_REG_COUNT as u64;
    if first >= n || count > n - first {
        return Err(Error::RangeError);
    }
    Ok((first as usize, count as usize))
}
