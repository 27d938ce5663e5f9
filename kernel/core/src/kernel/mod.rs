//! The kernel proper, driven by the entry points the exception vectors call
//! ([`Kernel::handle_syscall`], [`Kernel::handle_fault`], [`Kernel::handle_irq`],
//! [`Kernel::handle_timer`], all in `entry.rs`).
//!
//! The kernel has no heap. Objects live in memory retyped from untyped capabilities and
//! are reached through [`Ptr`]s; references between objects are either capabilities in
//! slots (tracked by the derivation tree, so deletion finds them) or back-linked
//! pointers that the destroyed object's `finalise` step clears.
//!
//! Layout: `entry` (every way into the kernel, one shape), `object/` (one module per
//! object type: its layout, invariants, and its invocations as `decode_*` then
//! `perform_*`), `cspace` (capability lookup), `message` (message registers), `ipc`
//! (the slow-path IPC engine), `fastpath` (Call and ReplyRecv in their common case),
//! `sched/` (run queues, the scheduler, budgets), `delete` (deletion and object
//! destruction, preemptible), `boot` (the root server), `check` (the consistency
//! check). This module holds the kernel's global state, [`Kernel`]; its fields are
//! private to these modules.

mod boot;
#[cfg(any(test, feature = "consistency-check"))]
mod check;
mod cspace;
mod delete;
mod entry;
mod fastpath;
mod guest;
mod ipc;
mod message;
pub mod object;
mod sched;
#[cfg(test)]
mod tests;
mod trace;
mod vtimer;

pub use boot::{BootAlloc, BootError, BootModule, BootSegment, RootImage};
#[cfg(any(test, feature = "consistency-check"))]
pub use check::{Problem, Report};
pub use cspace::resolve;
pub use entry::{After, Exception};
pub use object::endpoint::Endpoint;
pub use object::notification::Notification;
pub use object::reply::Reply;
pub use object::sched_context::SchedContext;
pub use sched::Resume;

use crate::obj::Ptr;
use crate::vspace::Table;
use object::irq::IrqLine;
use object::tcb::{LiveState, Tcb};
use sched::queues::{Bitmap, Levels, Rq};

/// What the kernel core needs from the machine. The kernel binary implements it over
/// the real hardware; the host tests over a model.
pub trait Platform {
    /// Write a byte to the kernel console.
    fn put_char(&mut self, b: u8);
    /// Stop the machine (DebugHalt). On the host it records the status and returns.
    fn halt(&mut self, status: u8);
    /// Kernel timer interrupts taken since boot (`DebugTicks`).
    fn ticks(&self) -> u64;
    /// Program the kernel's one-shot timer to interrupt when the counter ([`Platform::now`])
    /// reaches `deadline`, at once if it has; `None`: switch it off.
    fn set_timer(&mut self, deadline: Option<u64>);
    /// Invalidate every TLB entry tagged with `vmid`.
    fn flush_vmid(&mut self, vmid: u16);
    /// Make instructions written to `[pa, pa + len)` visible to instruction fetch.
    fn sync_icache(&mut self, pa: usize, len: usize);
    /// IRQ lines `0..irq_count()` exist.
    fn irq_count(&self) -> u32;
    /// True for lines the kernel keeps (its timer, the interrupt controller's own).
    fn irq_reserved(&self, irq: u32) -> bool;
    /// Unmask or mask an IRQ line.
    fn irq_set_enabled(&mut self, irq: u32, enabled: bool);
    /// The free-running counter (the generic timer's count).
    fn now(&self) -> u64;
    /// The counter's frequency in Hz.
    fn counter_hz(&self) -> u64;
    /// The line of the timer user level may have (the EL1 virtual timer), if any.
    fn user_timer_irq(&self) -> Option<u32>;
    /// Arm the user timer to fire when the counter reaches `cval`, or disarm it.
    fn set_user_timer(&mut self, cval: Option<u64>);
    /// True if the kernel drives this machine's virtual CPU interface (list registers),
    /// so virtual interrupts can be injected.
    fn has_vgic(&self) -> bool;
    /// True if a virtual interrupt is pending in this CPU's list registers (those of
    /// the guest that trapped here: its state is live).
    fn guest_irq_pending(&self) -> bool;
    /// The line of the guests' virtual timer (CNTV), which the kernel keeps and injects
    /// as the same virtual INTID; `None`: guests have no virtual timer here.
    fn guest_timer_irq(&self) -> Option<u32>;
    /// Mask or unmask the guests' virtual timer line on this CPU.
    fn set_guest_timer_masked(&mut self, masked: bool);
    /// True if an interrupt is waiting (long operations stop at preemption points then).
    fn irq_pending(&self) -> bool;
    /// From now on write the console output to the kernel log page at `page`, for good
    /// (but for a halt or a panic): the UART belongs to a user-level server now, which
    /// may have stopped it.
    fn log_to(&mut self, page: usize);
    /// True (once) if console output went to the log page since the last call.
    fn log_pending(&mut self) -> bool;
    /// Stop core `cpu` (another core) from running user code, and return once it has:
    /// it has left user level (the running thread's registers are saved in its Tcb)
    /// and saved its live copies of lazily switched state into `saves`. It then waits
    /// for the kernel lock and chooses again: what it trapped for (a syscall, a fault)
    /// is taken again when the thread next runs. The caller holds the kernel lock.
    fn stall(&mut self, cpu: usize, saves: LazySaves<'_>);
    /// Save this core's live copies of lazily switched state into `saves`.
    fn save_lazy(&mut self, saves: LazySaves<'_>);
}

/// Where to save a core's live copies of lazily switched state, by [`Lazy`] kind
/// (`None`: keep that kind), see [`Platform::stall`].
pub type LazySaves<'a> = [Option<LiveState<'a>>; LAZY_KINDS];

/// Largest number of IRQ lines the kernel tracks.
pub const MAX_IRQS: usize = 1024;
/// Preempted container deletes whose stopping point the kernel remembers.
pub const RESUME_RECORDS: usize = 16;
/// Bytes a retype zeroes between two preemption points.
pub const RETYPE_ZERO_CHUNK: usize = 16 << 10;
/// Largest number of objects one retype creates.
pub const MAX_RETYPE_COUNT: u64 = 256;
/// VMIDs the kernel hands out (8-bit VMIDs work on every Armv8.0 core); 0 is unused.
pub const VMIDS: usize = 256;

/// The kernel's global state.
#[repr(C)]
#[derive(Debug)]
pub struct Kernel<P: Platform> {
    /// The machine.
    pub platform: P,
    /// The scheduling state of the core running the kernel now, at a fixed place: the
    /// common paths reach it as on one core. [`Kernel::enter`] swaps it with the
    /// others' when the kernel lock passes to another core.
    core: Core,
    /// The cores threads may be placed on (bit n: core n), set at boot.
    online: u8,
    /// The running thread was destroyed during this invocation (it gets no reply).
    invoker_destroyed: bool,
    /// The other cores' scheduling state, by core (the entry of the core in `core` is
    /// unused). Objects and the derivation tree are global; every core takes the one
    /// kernel lock (docs/decisions/0004-big-kernel-lock.md).
    others: [Core; MAX_CORES],
    /// Each core's run-queue levels, by core (4 KiB each: not moved with `core`, which
    /// holds the bitmap of the non-empty ones).
    levels: [Levels; MAX_CORES],
    /// Call and ReplyRecv syscalls the fastpath did not take (`DebugSlowpathCount`;
    /// counted on the general path, so the fastpath pays nothing for it).
    pub slowpath_count: u64,
    /// Preempted container deletes: `(slot it started from, zombie it stopped in)`;
    /// `(0, 0)` is a free record.
    delete_resume: [(usize, usize); RESUME_RECORDS],
    /// The record to replace next when all are in use.
    delete_resume_next: usize,
    /// The kernel log page (see `gaon_abi::klog`).
    log_page: usize,
    /// The notification its reader bound (`None`: the kernel prints directly), and
    /// the badge it is signalled with.
    log_ntfn: Option<Ptr<Notification>>,
    log_badge: u64,
    /// The trace rings and what is recorded (`trace.rs`).
    trace: trace::Trace,
    /// The big tables last.
    vmids: [Option<Ptr<Table>>; VMIDS],
    irqs: [IrqLine; MAX_IRQS],
    /// Slots a container delete has looked at (host tests check the work is linear).
    #[cfg(test)]
    delete_visits: u64,
    /// Syscalls the host-test driver restarted.
    #[cfg(test)]
    restarts: u64,
}

/// `Core::slice_level` when no slice is being shared (no priority is this high).
pub(crate) const NO_SLICE: u16 = 0x100;
/// Cores the kernel schedules at most (a power of two: the index is masked, not
/// bounds-checked, on the fast paths).
pub const MAX_CORES: usize = 4;
static_assertions::const_assert!(MAX_CORES.is_power_of_two());

/// A core's scheduling state but its run queues: what runs, its time. One per core
/// (the objects and the derivation tree stay global); small, so that handing the
/// kernel to another core moves a few words.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Core {
    /// The core this is the state of.
    cpu: usize,
    /// The running thread, if any.
    current: Option<Ptr<Tcb>>,
    /// A thread made runnable in this kernel entry that outranks the running one, not
    /// queued yet: [`Kernel::schedule`] switches to it or queues it.
    candidate: Option<Ptr<Tcb>>,
    /// Counter value when run time was last charged.
    last_charge: u64,
    /// The deadline the kernel timer is programmed for (`u64::MAX`: off).
    timer_deadline: u64,
    /// Throttled scheduling contexts waiting for a refill, sorted by release time.
    release_head: Option<Ptr<SchedContext>>,
    /// When the current time slice ends (counter).
    slice_end: u64,
    /// The round-robin time slice in counter ticks (`TIMESLICE_US`, set at boot).
    timeslice: u64,
    /// The priority whose threads share the slice that ends at `slice_end`
    /// ([`NO_SLICE`]: none): a thread of that priority waited behind a running one at
    /// the last [`Kernel::arm_timer`] that saw one of them run. A thread of a higher
    /// priority that runs meanwhile (alone at its level) leaves the slice as it is, so
    /// the level below still rotates when its slice is over.
    slice_level: u16,
    /// For each [`Lazy`] kind of state, the thread whose copy is live in the CPU, if
    /// any: the arch layer saves into it before loading another thread's. Deleting the
    /// thread clears it, so nothing is saved into a dead object. One word each, as the
    /// other object links, so the resume path compares one word.
    lazy_owners: [Option<Ptr<Tcb>>; LAZY_KINDS],
    /// Which levels of this core's run queues are non-empty (the levels themselves are
    /// in `Kernel::levels`).
    bits: Bitmap,
    /// Cores to tell with an IPI when this kernel entry ends ([`Kernel::take_ipis`]);
    /// kept by the core the kernel runs on (next to what every exit reads).
    ipis: u8,
    /// Guests waiting in WFI whose timer the kernel keeps, sorted by deadline
    /// (`vtimer.rs`).
    guest_timers: Option<Ptr<object::vcpu::VCpu>>,
}

impl Core {
    const fn new(cpu: usize) -> Self {
        Self {
            cpu,
            current: None,
            candidate: None,
            last_charge: 0,
            timer_deadline: u64::MAX,
            release_head: None,
            slice_end: 0,
            timeslice: 0,
            slice_level: NO_SLICE,
            lazy_owners: [None; LAZY_KINDS],
            bits: Bitmap::new(),
            ipis: 0,
            guest_timers: None,
        }
    }
}

/// Thread state the arch layer keeps in the CPU for the last thread that used it and
/// saves only when another thread needs the CPU's copy ([`Kernel::lazy_switch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lazy {
    /// The thread pointer (`Tcb::tpidr`), loaded whenever a different thread resumes.
    ThreadPointer = 0,
    /// The FP/SIMD registers (in the Tcb's `ArchState`), loaded when a thread first
    /// uses them after another thread did.
    Fpu = 1,
    /// A guest's EL1 registers (in its VCpu), loaded when a different VCpu thread
    /// resumes; a native thread in between pays nothing for them (the arch layer only
    /// puts back the few EL1 registers that govern EL0).
    Guest = 2,
}

/// Kinds of [`Lazy`] state.
pub const LAZY_KINDS: usize = 3;

impl<P: Platform> Kernel<P> {
    /// A kernel with no threads yet.
    #[allow(
        clippy::large_stack_arrays,
        reason = "evaluated at compile time into the kernel's static"
    )]
    pub const fn new(platform: P) -> Self {
        Self {
            platform,
            core: Core::new(0),
            online: 1,
            invoker_destroyed: false,
            others: [Core::new(0), Core::new(1), Core::new(2), Core::new(3)],
            levels: [const { Levels::new() }; MAX_CORES],
            vmids: [None; VMIDS],
            irqs: [IrqLine::FREE; MAX_IRQS],
            slowpath_count: 0,
            delete_resume: [(0, 0); RESUME_RECORDS],
            delete_resume_next: 0,
            log_page: 0,
            log_ntfn: None,
            log_badge: 0,
            trace: trace::Trace::new(),
            #[cfg(test)]
            delete_visits: 0,
            #[cfg(test)]
            restarts: 0,
        }
    }

    /// The running thread of this core, if any.
    pub fn current(&self) -> Option<Ptr<Tcb>> {
        self.core.current
    }

    /// The kernel runs on core `cpu` until the next `enter` (the arch layer calls this
    /// under the kernel lock, before handling anything). When the lock comes from
    /// another core, the two cores' scheduling states change places (a few words).
    /// Cores past [`MAX_CORES`] are folded onto the others (boards have four at most).
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on every kernel entry, measured in instructions")]
    pub fn enter(&mut self, cpu: usize) {
        let cpu = cpu % MAX_CORES;
        if cpu != self.core.cpu {
            self.change_core(cpu);
        }
    }

    /// [`Kernel::enter`] when the lock comes from another core.
    #[inline(never)]
    fn change_core(&mut self, cpu: usize) {
        let old = self.core.cpu % MAX_CORES;
        core::mem::swap(&mut self.core, &mut self.others[old]);
        core::mem::swap(&mut self.core, &mut self.others[cpu]);
    }

    /// The core the kernel runs on now.
    #[inline]
    pub(in crate::kernel) fn here(&self) -> usize {
        self.core.cpu % MAX_CORES
    }

    /// The scheduling state of core `cpu`.
    #[inline]
    pub(in crate::kernel) fn state(&self, cpu: usize) -> &Core {
        if cpu == self.core.cpu {
            &self.core
        } else {
            &self.others[cpu % MAX_CORES]
        }
    }

    /// The scheduling state of core `cpu`, to change.
    #[inline]
    pub(in crate::kernel) fn state_mut(&mut self, cpu: usize) -> &mut Core {
        if cpu == self.core.cpu {
            &mut self.core
        } else {
            &mut self.others[cpu % MAX_CORES]
        }
    }

    /// This core's run queues.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "on every path that schedules, measured in instructions"
    )]
    pub(in crate::kernel) fn rq(&mut self) -> Rq<'_> {
        Rq {
            bits: &mut self.core.bits,
            levels: &mut self.levels[self.core.cpu % MAX_CORES],
        }
    }

    /// Core `cpu`'s run queues.
    #[inline]
    pub(in crate::kernel) fn rq_of_cpu(&mut self, cpu: usize) -> Rq<'_> {
        let cpu = cpu % MAX_CORES;
        let bits = if cpu == self.core.cpu {
            &mut self.core.bits
        } else {
            &mut self.others[cpu].bits
        };
        Rq {
            bits,
            levels: &mut self.levels[cpu],
        }
    }

    /// The first thread of the highest non-empty level of this core's run queues.
    #[inline]
    pub(in crate::kernel) fn highest_here(&self) -> Option<Ptr<Tcb>> {
        let p = self.core.bits.highest_prio()?;
        self.levels[self.core.cpu % MAX_CORES].head(p)
    }

    /// The first thread of the highest non-empty level of core `cpu`'s run queues.
    #[inline]
    #[cfg_attr(not(test), allow(dead_code, reason = "the tests look at other cores' queues"))]
    pub(in crate::kernel) fn highest_on(&self, cpu: usize) -> Option<Ptr<Tcb>> {
        let p = self.state(cpu).bits.highest_prio()?;
        self.levels[cpu % MAX_CORES].head(p)
    }

    /// True if `t` is the running thread of its core.
    #[inline]
    pub(in crate::kernel) fn running(&self, t: Ptr<Tcb>) -> bool {
        self.state(usize::from(t.get().cpu)).current == Some(t)
    }

    // ---- lazily switched thread state (for the arch layer) -----------------------

    /// The thread whose `which` state is live in the CPU, if any.
    pub fn lazy_owner(&self, which: Lazy) -> Option<Ptr<Tcb>> {
        self.core.lazy_owners[which as usize]
    }

    /// True if `t`'s `which` state is the one live in the CPU (one compare: the resume
    /// path asks this on every switch).
    #[inline]
    pub fn lazy_owned_by(&self, which: Lazy, t: Ptr<Tcb>) -> bool {
        self.core.lazy_owners[which as usize] == Some(t)
    }

    /// Make `to` the owner of the CPU's `which` state. `None` if it already is;
    /// otherwise the previous owner's state (to save the CPU's copy into; `None` if
    /// there was no owner) and `to`'s (to load). The arch layer must do both before
    /// `to` runs.
    #[inline]
    pub fn lazy_switch(&mut self, which: Lazy, to: Ptr<Tcb>) -> Option<(Option<LiveState<'_>>, LiveState<'_>)> {
        let owner = &mut self.core.lazy_owners[which as usize];
        if *owner == Some(to) {
            return None;
        }
        // Distinct Tcbs (the owner is not `to`), both live: an owner is cleared when
        // its Tcb is destroyed (`detach_tcb`).
        let old = owner.map(|o| o.get().live_state());
        *owner = Some(to);
        Some((old, to.get().live_state()))
    }

    /// True if `t` runs a guest (a VCpu is bound to it).
    #[inline]
    pub fn is_guest(&self, t: Ptr<Tcb>) -> bool {
        let _ = self;
        t.get().vcpu.is_some()
    }

    /// Where this CPU's live guest state belongs: the guest state of its
    /// [`Lazy::Guest`] owner, if that thread still has a VCpu.
    #[inline]
    pub fn live_guest(&mut self) -> Option<&mut object::vcpu::GuestState> {
        let owner = self.core.lazy_owners[Lazy::Guest as usize]?;
        owner.get().vcpu.map(|v| &mut v.get().state)
    }

    /// [`Kernel::lazy_switch`] for the fastpath's direct switch from `from`, which ran
    /// at user level until this kernel entry, to `to`, another thread: `from` owns the
    /// CPU's `which` state (a thread resumes only after [`Kernel::lazy_switch`] made
    /// it the owner, and nothing else runs on its CPU until it enters the kernel), so
    /// both are known without a look at the owner.
    #[inline]
    pub fn lazy_hand_over(&mut self, which: Lazy, from: Ptr<Tcb>, to: Ptr<Tcb>) -> (LiveState<'_>, LiveState<'_>) {
        let owner = &mut self.core.lazy_owners[which as usize];
        debug_assert!(*owner == Some(from) && from != to, "the caller owns its CPU's state");
        *owner = Some(to);
        (from.get().live_state(), to.get().live_state())
    }
}
