//! The kernel proper: the object store, scheduling, IPC and invocations, driven by the
//! entry points the exception vectors call ([`Kernel::handle_syscall`],
//! [`Kernel::handle_fault`], [`Kernel::handle_irq`], [`Kernel::handle_tick`]).
//!
//! The kernel has no heap. Objects live in memory retyped from untyped capabilities and
//! are reached through [`Ptr`]s; references between objects are either capabilities in
//! slots (tracked by the derivation tree, so deletion finds them) or back-linked
//! pointers that the destroyed object's `finalise` step clears.

mod boot;
#[cfg(any(test, feature = "consistency-check"))]
mod check;
mod delete;
mod invoke;
mod ipc;
mod objects;
mod sched;
#[cfg(test)]
mod tests;

use gaon_abi::{Error, MsgInfo, ObjType};

pub use boot::{BootAlloc, BootError, BootModule, BootSegment, RootImage};
#[cfg(any(test, feature = "consistency-check"))]
pub use check::{Problem, Report};
pub use objects::{Endpoint, Notification, Reply, SchedContext};

use crate::cap::Cap;
use crate::cdt::{Slot, SlotId, SlotStore};
use crate::obj::{self, Ptr};
use crate::tcb::{LiveState, RunQueues, SLOT_CSPACE, SLOT_IPC_BUFFER, SLOT_VSPACE, TIMESLICE_TICKS, Tcb, ThreadState};
use crate::vspace::Table;

/// What the kernel core needs from the machine. The kernel binary implements it over
/// the real hardware; the host tests over a model.
pub trait Platform {
    /// Write a byte to the kernel console.
    fn put_char(&mut self, b: u8);
    /// Stop the machine (DebugHalt). On the host it records the status and returns.
    fn halt(&mut self, status: u8);
    /// Timer ticks since boot.
    fn ticks(&self) -> u64;
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
    /// True if an interrupt is waiting (long operations stop at preemption points then).
    fn irq_pending(&self) -> bool;
    /// From now on write the console output to the kernel log page at `page`, for good
    /// (but for a halt or a panic): the UART belongs to a user-level server now, which
    /// may have stopped it.
    fn log_to(&mut self, page: usize);
    /// True (once) if console output went to the log page since the last call.
    fn log_pending(&mut self) -> bool;
}

/// The invoker's message registers, bounded by the length it sent.
struct Args {
    t: Ptr<Tcb>,
    len: usize,
}

impl Args {
    fn get<P: Platform>(&self, i: usize) -> Result<u64, Error> {
        if i < self.len {
            Ok(Kernel::<P>::get_mr(self.t, i))
        } else {
            Err(Error::TruncatedMessage)
        }
    }
}

/// A thread fault, decoded by the arch layer from the exception syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A stage-2 translation or permission fault.
    Vm {
        /// Faulting address (IPA).
        addr: u64,
        /// Instruction fetch (not a data access).
        instruction: bool,
        /// ESR_EL2.
        esr: u64,
    },
    /// Any other synchronous exception (undefined instruction, alignment, BRK, ...).
    User {
        /// ESR_EL2.
        esr: u64,
        /// FAR_EL2.
        far: u64,
    },
}

/// ESR_EL2 exception classes the fault decoding tells apart.
mod ec {
    pub const IABT_LOWER: u64 = 0x20;
    pub const PC_ALIGN: u64 = 0x22;
    pub const DABT_LOWER: u64 = 0x24;
    pub const SERROR: u64 = 0x2f;
    pub const WATCHPOINT_LOWER: u64 = 0x34;
    /// ISS bit of instruction and data aborts: FAR is not valid.
    pub const FNV: u64 = 1 << 10;
}

impl Fault {
    /// Decode a synchronous exception taken from EL0 that is not a syscall or an FP
    /// trap. FAR_EL2 is kept only where the syndrome says it holds this exception's
    /// address (aborts without FnV, PC alignment, watchpoints); elsewhere it is
    /// UNKNOWN, in practice the address of an earlier exception of another thread,
    /// and is reported as 0.
    pub const fn from_sync(esr: u64, far: u64) -> Self {
        let class = (esr >> 26) & 0x3f;
        match class {
            ec::IABT_LOWER | ec::DABT_LOWER => Self::Vm {
                addr: if esr & ec::FNV == 0 { far } else { 0 },
                instruction: class == ec::IABT_LOWER,
                esr,
            },
            ec::PC_ALIGN | ec::WATCHPOINT_LOWER => Self::User { esr, far },
            _ => Self::User { esr, far: 0 },
        }
    }

    /// An SError (`serror`) or FIQ taken from EL0. An SError has its own syndrome; an
    /// FIQ sets neither ESR_EL2 nor FAR_EL2, so both are reported as 0.
    pub const fn from_async(serror: bool, esr: u64) -> Self {
        if serror && (esr >> 26) & 0x3f == ec::SERROR {
            Self::User { esr, far: 0 }
        } else {
            Self::User { esr: 0, far: 0 }
        }
    }
}

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

/// State of one IRQ line.
#[derive(Clone, Copy, Debug, Default)]
struct IrqLine {
    claimed: bool,
    ntfn: usize,
    badge: u64,
}

/// The kernel's global state.
#[derive(Debug)]
pub struct Kernel<P: Platform> {
    /// The machine.
    pub platform: P,
    current: usize,
    rq: RunQueues,
    vmids: [usize; VMIDS],
    irqs: [IrqLine; MAX_IRQS],
    /// Call/ReplyRecv operations that took the fastpath.
    pub fastpath_count: u64,
    /// For each [`Lazy`] kind of state, the thread whose copy is live in the CPU (0 =
    /// none): the arch layer saves into it before loading another thread's. Deleting
    /// the thread clears it, so nothing is saved into a dead object. Raw addresses, as
    /// the other object links, so the resume path compares one word.
    lazy_owners: [usize; LAZY_KINDS],
    /// Counter value when run time was last charged.
    last_charge: u64,
    /// Throttled scheduling contexts waiting for a refill.
    release_head: usize,
    /// Preempted container deletes: `(slot it started from, zombie it stopped in)`;
    /// `(0, 0)` is a free record.
    delete_resume: [(usize, usize); RESUME_RECORDS],
    /// The record to replace next when all are in use.
    delete_resume_next: usize,
    /// The kernel log page (see `gaon_abi::klog`).
    log_page: usize,
    /// The notification its reader bound (0 = none: the kernel prints directly), and
    /// the badge it is signalled with.
    log_ntfn: usize,
    log_badge: u64,
    /// Slots a container delete has looked at (host tests check the work is linear).
    #[cfg(test)]
    delete_visits: u64,
    /// Syscalls the host-test driver restarted.
    #[cfg(test)]
    restarts: u64,
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
}

/// Kinds of [`Lazy`] state.
const LAZY_KINDS: usize = 2;

/// What the arch layer needs to return to user level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The thread (its registers are at offset 0).
    pub tcb: usize,
    /// Its VSpace's root table.
    pub vspace_root: usize,
    /// Its VMID.
    pub vmid: u16,
}

/// The kernel's slot store: slot ids are slot addresses.
struct Kslots;
impl SlotStore for Kslots {
    fn slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        Some(Ptr::<Slot>::new(id).get())
    }
}

/// The slot at `addr`.
fn slot(addr: usize) -> &'static mut Slot {
    Ptr::<Slot>::new(addr).get()
}

impl<P: Platform> Kernel<P> {
    /// A kernel with no threads yet.
    #[allow(
        clippy::large_stack_arrays,
        reason = "evaluated at compile time into the kernel's static"
    )]
    pub const fn new(platform: P) -> Self {
        Self {
            platform,
            current: 0,
            rq: RunQueues::new(),
            vmids: [0; VMIDS],
            irqs: [IrqLine {
                claimed: false,
                ntfn: 0,
                badge: 0,
            }; MAX_IRQS],
            fastpath_count: 0,
            lazy_owners: [0; LAZY_KINDS],
            last_charge: 0,
            release_head: 0,
            delete_resume: [(0, 0); RESUME_RECORDS],
            delete_resume_next: 0,
            log_page: 0,
            log_ntfn: 0,
            log_badge: 0,
            #[cfg(test)]
            delete_visits: 0,
            #[cfg(test)]
            restarts: 0,
        }
    }

    /// The running thread, if any.
    pub fn current(&self) -> Option<Ptr<Tcb>> {
        Ptr::from_raw(self.current)
    }

    // ---- lazily switched thread state (for the arch layer) -----------------------

    /// The thread whose `which` state is live in the CPU, if any.
    pub fn lazy_owner(&self, which: Lazy) -> Option<Ptr<Tcb>> {
        Ptr::from_raw(self.lazy_owners[which as usize])
    }

    /// True if `t`'s `which` state is the one live in the CPU (one compare: the resume
    /// path asks this on every switch).
    #[inline]
    pub fn lazy_owned_by(&self, which: Lazy, t: Ptr<Tcb>) -> bool {
        self.lazy_owners[which as usize] == t.addr()
    }

    /// Make `to` the owner of the CPU's `which` state. `None` if it already is;
    /// otherwise the previous owner's state (to save the CPU's copy into; `None` if
    /// there was no owner) and `to`'s (to load). The arch layer must do both before
    /// `to` runs.
    #[inline]
    pub fn lazy_switch(&mut self, which: Lazy, to: Ptr<Tcb>) -> Option<(Option<LiveState<'_>>, LiveState<'_>)> {
        let owner = &mut self.lazy_owners[which as usize];
        if *owner == to.addr() {
            return None;
        }
        // Distinct Tcbs (the owner is not `to`), both live: an owner is cleared when
        // its Tcb is destroyed (`detach_tcb`).
        let old = Ptr::<Tcb>::from_raw(*owner).map(|o| o.get().live_state());
        *owner = to.addr();
        Some((old, to.get().live_state()))
    }

    // ---- scheduling -------------------------------------------------------------

    /// Make `t` runnable. `front`: run it before its equals (a direct hand-over).
    #[inline]
    fn make_runnable(&mut self, t: Ptr<Tcb>, front: bool) {
        t.get().state = ThreadState::Running;
        if t.addr() == self.current && !t.get().queued {
            // The running thread: already first in its priority.
            return;
        }
        if front {
            // Ahead of the running thread too, if they are equals.
            self.settle_current();
        }
        if !self.throttled(t) {
            self.rq.enqueue(t, front);
        }
    }

    /// Take `t` off the run queue with a blocked or inactive state.
    #[inline]
    fn block(&mut self, t: Ptr<Tcb>, state: ThreadState) {
        t.get().state = state;
        self.rq.dequeue(t);
    }

    /// Put the running thread back into the run queue, first in its priority (its
    /// place: it was picked from there). The running thread is kept out of the queues
    /// (seL4-style) so the IPC fastpath can switch between two threads without queue
    /// operations, and a syscall after which it keeps running needs none either. It
    /// stands logically first in its priority; the few operations whose result depends
    /// on that place (a thread queued in front of its equals, a priority change, a
    /// scheduling-context change, the time-slice rotation) call this first, and so
    /// does [`Kernel::schedule`] when the running thread does not simply go on.
    #[inline]
    pub(super) fn settle_current(&mut self) {
        if let Some(c) = self.current()
            && c.get().state == ThreadState::Running
            && !self.throttled(c)
        {
            self.rq.enqueue(c, true);
        }
    }

    /// The IPC fastpath's direct switch. `t`, the running thread (out of the queues),
    /// has just blocked with `state`, and `next` has just become runnable. If `next` is
    /// the thread [`Kernel::schedule`] would pick (nothing queued outranks it: it would
    /// go first in its priority) and neither has a budget to charge (see `sched.rs`),
    /// it becomes current with no queue operation, scan or charge: true. Otherwise
    /// `next` is queued the general way and the caller reschedules: false.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    fn fastpath_switch(&mut self, t: Ptr<Tcb>, state: ThreadState, next: Ptr<Tcb>) -> bool {
        t.get().state = state;
        let n = next.get();
        n.state = ThreadState::Running;
        if !t.get().queued && !n.queued && !self.budgeted(t) && !self.budgeted(next) && self.first_in_line(next) {
            self.current = next.addr();
            return true;
        }
        self.rq.dequeue(t);
        if !self.throttled(next) {
            self.rq.enqueue(next, true);
        }
        false
    }

    /// True if `t`, runnable and not queued, is what [`Kernel::schedule`] picks: nothing
    /// queued outranks it (among equals it goes first) and it has a live VSpace.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    fn first_in_line(&self, t: Ptr<Tcb>) -> bool {
        self.rq.highest_prio().is_none_or(|p| p <= t.get().prio) && self.vspace_of(t).is_some()
    }

    /// Pick the thread to run: the highest-priority runnable one that can run, which
    /// leaves the run queue while it runs. A thread whose VSpace was deleted under it
    /// is stopped here.
    #[inline]
    pub fn schedule(&mut self) {
        if let Some(c) = self.current() {
            let tcb = c.get();
            if tcb.state == ThreadState::Running && !tcb.queued && !self.throttled(c) && self.first_in_line(c) {
                // Still first among the runnable: it goes on.
                return;
            }
        }
        self.settle_current();
        loop {
            let Some(t) = self.rq.highest() else {
                self.current = 0;
                return;
            };
            if self.vspace_of(t).is_some() {
                self.rq.dequeue(t);
                self.current = t.addr();
                return;
            }
            self.block(t, ThreadState::Inactive);
        }
    }

    /// Where to return to user level, after [`Kernel::schedule`].
    #[inline]
    pub fn resume_target(&self) -> Option<Resume> {
        let t = self.current()?;
        let (root, vmid) = self.vspace_of(t)?;
        Some(Resume {
            tcb: t.addr(),
            vspace_root: root.addr(),
            vmid,
        })
    }

    /// A thread's VSpace root and VMID, if its VSpace slot holds a live VSpace.
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    #[inline]
    fn vspace_of(&self, t: Ptr<Tcb>) -> Option<(Ptr<Table>, u16)> {
        let cap = t.get().slots[SLOT_VSPACE].cap;
        if !cap.is(ObjType::VSpace) {
            return None;
        }
        Some((Ptr::new(cap.obj), cap.badge as u16))
    }

    /// A timer tick: round-robin among equal priorities.
    pub fn handle_tick(&mut self) {
        self.signal_log();
        // The running thread is only interrupted; it resumes where it was.
        self.settle_current();
        self.account();
        if let Some(t) = self.current() {
            let tcb = t.get();
            tcb.timeslice = tcb.timeslice.saturating_sub(1);
            if tcb.timeslice == 0 {
                tcb.timeslice = TIMESLICE_TICKS;
                if tcb.queued {
                    self.rq.dequeue(t);
                    self.rq.enqueue(t, false);
                }
            }
        }
        self.schedule();
    }

    // ---- capability lookup ------------------------------------------------------

    /// Resolve `cptr` (all 64 bits) in thread `t`'s CSpace to a slot address.
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    #[inline]
    fn lookup_slot(&self, t: Ptr<Tcb>, cptr: u64) -> Result<usize, Error> {
        let root = &t.get().slots[SLOT_CSPACE].cap;
        match resolve_one_level(root, cptr) {
            Some(s) => Ok(s),
            None => resolve(*root, cptr),
        }
    }

    /// Resolve `cptr` to a non-empty slot and its capability.
    #[inline]
    fn lookup_cap(&self, t: Ptr<Tcb>, cptr: u64) -> Result<(usize, Cap), Error> {
        let s = self.lookup_slot(t, cptr)?;
        let cap = slot(s).cap;
        // A zombie is a container half deleted by a preempted delete: only deleting
        // it again (which carries on) touches it.
        if cap.is_null() || cap.has(crate::cap::FLAG_ZOMBIE) {
            return Err(Error::FailedLookup);
        }
        Ok((s, cap))
    }

    /// Resolve `cptr` to a capability of type `ty`.
    fn lookup_typed(&self, t: Ptr<Tcb>, cptr: u64, ty: ObjType) -> Result<(usize, Cap), Error> {
        let (s, cap) = self.lookup_cap(t, cptr)?;
        if cap.is(ty) {
            Ok((s, cap))
        } else {
            Err(Error::InvalidCapability)
        }
    }

    // ---- message registers ------------------------------------------------------

    /// Physical address of `t`'s IPC buffer, if it has a usable one.
    fn ipc_buffer(t: Ptr<Tcb>) -> Option<usize> {
        let tcb = t.get();
        let cap = tcb.slots[SLOT_IPC_BUFFER].cap;
        // The kernel both reads and writes it: it needs both rights (TcbSetIpcBuffer
        // checks them; this holds for every way a cap reaches the slot).
        if !cap.is(ObjType::Frame)
            || cap.has(crate::cap::FLAG_DEVICE)
            || !cap.rights().contains(gaon_abi::Rights::READ | gaon_abi::Rights::WRITE)
        {
            return None;
        }
        let offset = (tcb.ipc_buffer_vaddr as usize) & ((1usize << cap.size_bits) - 1);
        Some(cap.obj + offset)
    }

    /// Message register `i` of `t` (0 if it lies in a missing IPC buffer).
    fn get_mr(t: Ptr<Tcb>, i: usize) -> u64 {
        if i < gaon_abi::syscall::MSG_REGISTERS {
            return t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i];
        }
        match Self::ipc_buffer(t) {
            Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => {
                obj::read_word(b + gaon_abi::message::ipc_buffer_msg_offset(i))
            }
            _ => 0,
        }
    }

    /// Set message register `i` of `t`; false if it would need a missing IPC buffer.
    fn set_mr(t: Ptr<Tcb>, i: usize, v: u64) -> bool {
        if i < gaon_abi::syscall::MSG_REGISTERS {
            t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i] = v;
            return true;
        }
        match Self::ipc_buffer(t) {
            Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => {
                obj::write_word(b + gaon_abi::message::ipc_buffer_msg_offset(i), v);
                true
            }
            _ => false,
        }
    }

    /// Message registers `t` can receive: 4, or 120 with an IPC buffer.
    fn mr_capacity(t: Ptr<Tcb>) -> usize {
        if Self::ipc_buffer(t).is_some() {
            gaon_abi::message::MSG_MAX_LENGTH
        } else {
            gaon_abi::syscall::MSG_REGISTERS
        }
    }

    /// Finish a syscall of `t` with a kernel reply: `label` 0 or an error.
    fn reply_kernel(t: Ptr<Tcb>, result: Result<usize, Error>) {
        let ctx = &mut t.get().ctx;
        ctx.x[0] = 0;
        ctx.x[1] = match result {
            Ok(len) => MsgInfo::kernel(0, len).0,
            Err(e) => MsgInfo::kernel(e as u64, 0).0,
        };
    }

    // ---- console ----------------------------------------------------------------

    /// If console output went to the kernel log page, signal its reader. Called on the
    /// way out of the kernel, before the next thread is chosen.
    #[inline]
    pub(super) fn signal_log(&mut self) {
        if let Some(n) = Ptr::<Notification>::from_raw(self.log_ntfn)
            && self.platform.log_pending()
        {
            self.signal(n, self.log_badge);
        }
    }

    /// `DebugLogBind`: send the console output to the log page and signal `ntfn`.
    fn log_bind(&mut self, t: Ptr<Tcb>, a: &Args) -> Result<usize, Error> {
        let c = a.get::<P>(0)?;
        if c == 0 {
            // Nobody is signalled; the output still goes to the page for the next reader.
            self.log_ntfn = 0;
            return Ok(0);
        }
        let (_, nc) = self.lookup_typed(t, c, ObjType::Notification)?;
        if !nc.rights().contains(gaon_abi::Rights::WRITE) {
            return Err(Error::NoRights);
        }
        self.log_ntfn = nc.obj;
        self.log_badge = if nc.badge == 0 { 1 } else { nc.badge };
        self.platform.log_to(self.log_page);
        Ok(0)
    }

    fn log(&mut self, args: core::fmt::Arguments<'_>) {
        struct W<'a, P: Platform>(&'a mut P);
        impl<P: Platform> core::fmt::Write for W<'_, P> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                for b in s.bytes() {
                    self.0.put_char(b);
                }
                Ok(())
            }
        }
        let _ = core::fmt::write(&mut W(&mut self.platform), args);
    }
}

/// The common case of [`resolve`], inlined on the IPC paths: a root CNode whose guard
/// and radix take all 64 bits (a guarded single-level CSpace, what every server has).
/// `None` means "take the general walk", not "not found".
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn resolve_one_level(root: &Cap, cptr: u64) -> Option<usize> {
    let radix = u32::from(root.size_bits.wrapping_sub(gaon_abi::object::SLOT_BITS));
    let guard_bits = u32::from(root.guard_bits);
    if !root.is(ObjType::CNode) || root.has(crate::cap::FLAG_ZOMBIE) || radix + guard_bits != 64 || guard_bits == 0 {
        return None;
    }
    // Here 0 <= radix <= 63: the shifts are in range and the guard is never empty.
    if cptr.wrapping_shr(radix) != root.badge {
        return None;
    }
    let index = cptr & ((1u64 << radix) - 1);
    Some(root.obj + (index as usize) * core::mem::size_of::<Slot>())
}

/// Resolve `cptr` through a CSpace rooted at `root`, seL4-style: each CNode consumes
/// its guard and radix bits from the top of the remaining bits; the walk stops at a
/// slot whose cap is not a CNode, or when all 64 bits are used.
pub fn resolve(root: Cap, cptr: u64) -> Result<usize, Error> {
    let mut node = root;
    let mut left: u32 = 64;
    loop {
        if !node.is(ObjType::CNode) || node.has(crate::cap::FLAG_ZOMBIE) {
            return Err(Error::FailedLookup);
        }
        let radix = u32::from(node.size_bits - gaon_abi::object::SLOT_BITS);
        let guard_bits = u32::from(node.guard_bits);
        let level = radix + guard_bits;
        if level == 0 || level > left {
            return Err(Error::FailedLookup);
        }
        if guard_bits > 0 {
            let g = (cptr >> (left - guard_bits)) & mask(guard_bits);
            if g != node.badge {
                return Err(Error::FailedLookup);
            }
        }
        let index = (cptr >> (left - level)) & mask(radix);
        let s = node.obj + (index as usize) * core::mem::size_of::<Slot>();
        left -= level;
        let cap = slot(s).cap;
        if left == 0 || !cap.is(ObjType::CNode) {
            return Ok(s);
        }
        node = cap;
    }
}

const fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1 << bits) - 1 }
}
