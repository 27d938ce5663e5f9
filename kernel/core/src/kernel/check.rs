//! The kernel's consistency check (`DebugCheckConsistency`), compiled only into test
//! and fuzz kernels (the `consistency-check` feature, and the host tests).
//!
//! It reads, and never changes, what the calling thread can reach and the kernel's
//! global structures, and counts every invariant it finds broken:
//!
//! - **Slots.** Every slot reachable from the caller's Tcb (its CSpace root, and
//!   through it every CNode and Tcb whose capability sits in a reachable slot): a
//!   non-empty slot's derivation links are mirrored (`next.prev` and `prev.next` name
//!   it back) and name no empty slot, an empty slot has no links, and a zombie (a
//!   container a preempted delete left half deleted) is a CNode or Tcb capability that
//!   is the last one to its object.
//! - **Derivation lists.** From every reachable slot that heads a list (no `prev`), the
//!   whole list is walked: every capability on it, reachable or not, has mirrored links
//!   and an object that passes the object checks below.
//! - **Objects.** A Tcb's run-queue membership agrees with its state (queued means
//!   `Running`, not throttled and not current, linked at its priority's level; a
//!   `Running` thread that is neither queued, current nor throttled would never run
//!   again); a thread blocked on an endpoint or notification is linked in its queue, one
//!   waiting for a reply is named by its reply object, and its notification and
//!   scheduling-context bindings are mirrored. Endpoint and notification queues hold
//!   only threads blocked on them, in the right state, with consistent links and tail
//!   (and no waiter while a notification has pending bits). A reply object's caller and
//!   receiver wait in it. A scheduling context's refills add up to its budget, it is on
//!   the release list exactly when throttled, and its thread names it back. A VSpace
//!   capability's VMID, if it has one yet, names it in the VMID table; an IRQ
//!   handler's line is claimed.
//! - **Global state.** Every run-queue level is a well-linked list of runnable threads
//!   of that priority whose head, tail and bitmap bits agree; the current thread is
//!   running and not queued; the owners of lazily switched state are Tcb addresses
//!   (or none); the release list holds only throttled scheduling contexts
//!   and ends; VMID entries are distinct page-aligned tables, and (when the caller says
//!   it holds every boot capability, as the root server does) each is named by a
//!   VSpace capability found on the walked lists; an IRQ line with a notification is
//!   claimed.
//!
//! The kernel has no heap and the check allocates nothing: it walks CNodes and Tcbs
//! iteratively with a fixed-size explicit stack, remembers the containers it entered in
//! a fixed-size table (so cycles of CNodes holding each other end), and bounds every
//! walk (slots, list nodes, queue steps), so it terminates on a corrupted structure
//! too. Links are checked for alignment before they are followed. When a bound cuts the
//! walk short the report says so (`truncated`), which is not a failure.

use gaon_abi::object::{
    CNODE_MAX_RADIX, ENDPOINT_BITS, NOTIFICATION_BITS, PAGE_BITS, REPLY_BITS, SCHED_CONTEXT_BITS, SLOT_BITS, TCB_BITS,
    VCPU_BITS,
};
use gaon_abi::{Error, ObjType};

use super::cspace::slot;
use super::object::endpoint::{Endpoint, EpState, Queue};
use super::object::notification::Notification;
use super::object::reply::Reply;
use super::object::sched_context::{MAX_REFILLS, SchedContext};
use super::object::tcb::{self, State, TCB_SLOTS, Tcb, ThreadState};
use super::object::vcpu::VCpu;
use super::{Kernel, MAX_CORES, Platform, VMIDS};
use crate::cap::{Cap, FLAG_ZOMBIE};
use crate::cdt::{Mdb, Slot};
use crate::obj::Ptr;

/// Containers (CNodes, Tcbs) one check enters, at most.
const MAX_CONTAINERS: usize = 256;
/// Depth of the explicit walk stack (CNodes and Tcbs nested in one another).
const MAX_DEPTH: usize = 16;
/// Slots and list nodes one check visits, at most.
const MAX_VISITS: u64 = 1 << 22;
/// Steps along one queue or list, at most.
const MAX_STEPS: usize = 1 << 16;
/// Problems a report remembers (all are counted).
pub const KEPT: usize = 4;

/// Something the check found wrong. The code (`as u64`) is what `DebugCheckConsistency`
/// reports in `x5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Problem {
    /// A derivation link is not mirrored (`next.prev` or `prev.next` is not this slot),
    /// or is not a slot address.
    LinkNotMirrored = 1,
    /// A derivation link names an empty slot.
    LinkToEmpty = 2,
    /// An empty slot still has derivation links.
    EmptyLinked = 3,
    /// A capability is a zombie outside a delete operation.
    Zombie = 4,
    /// A capability that cannot be valid (a CNode radix out of range, a misaligned
    /// object).
    BadCap = 5,
    /// A queued thread is not runnable: not `Running`, throttled, or the current thread.
    QueuedNotRunnable = 6,
    /// A queued thread sits at a level other than its priority, or in the queues of a
    /// core other than its own.
    QueueWrongPriority = 7,
    /// Run-queue links, heads or tails disagree.
    QueueLinks = 8,
    /// The run-queue bitmap disagrees with the levels.
    Bitmap = 9,
    /// A `Running` thread is in no run queue, is not current and is not throttled: it
    /// would never run again.
    RunnableNotQueued = 10,
    /// A blocked thread is not linked in the queue of what it is blocked on, or a queue
    /// holds a thread that is not blocked on it (or its links or tail are broken).
    IpcQueue = 11,
    /// A reply object and the thread it names disagree.
    Reply = 12,
    /// A notification or scheduling-context binding is not mirrored.
    Binding = 13,
    /// The release list holds a scheduling context that is not throttled or has no
    /// budget, is cyclic, or misses a throttled one.
    ReleaseList = 14,
    /// A scheduling context's refills do not add up to its budget.
    Refills = 15,
    /// The VMID table disagrees with the VSpaces.
    Vmid = 16,
    /// An IRQ line's state is inconsistent (a notification on an unclaimed line, a
    /// handler for an unclaimed line).
    Irq = 17,
    /// The current thread is not running, or is queued.
    Current = 18,
    /// The owner of lazily switched state (`Kernel::lazy_owner`) is not a Tcb address.
    LazyOwner = 19,
    /// A thread is placed on a core that did not come up, or a thread with a configured
    /// scheduling context is not on that scheduling context's core.
    Placement = 20,
    /// A VCpu binding is not mirrored, or a thread without a VCpu would run above EL0
    /// (its PSTATE names another mode), or one with a VCpu would run at EL2 or AArch32.
    Guest = 21,
}

/// What one check found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems found (0: consistent).
    pub problems: u64,
    /// The first [`KEPT`] problems and the address each was found at.
    pub kept: [Option<(Problem, usize)>; KEPT],
    /// Slots visited by the walk from the caller's Tcb.
    pub slots: u64,
    /// Capabilities visited on the derivation lists.
    pub caps: u64,
    /// Thread checks made.
    pub threads: u64,
    /// A bound cut the walk short (not a failure).
    pub truncated: bool,
}

impl Report {
    /// True if no problem was found.
    pub const fn ok(&self) -> bool {
        self.problems == 0
    }

    /// True if `p` is among the problems remembered.
    pub fn found(&self, p: Problem) -> bool {
        self.kept.iter().flatten().any(|&(q, _)| q == p)
    }

    fn fail(&mut self, p: Problem, at: usize) {
        if let Some(k) = self.kept.get_mut(self.problems as usize) {
            *k = Some((p, at));
        }
        self.problems += 1;
    }
}

const fn aligned(addr: usize, bits: u8) -> bool {
    addr != 0 && addr.is_multiple_of(1 << bits)
}

/// A link's address (0: none): the check compares links as addresses, since it must
/// also describe links that point nowhere sensible.
fn raw<T>(link: Option<Ptr<T>>) -> usize {
    link.map_or(0, Ptr::addr)
}

/// The object at `addr`, which the check found `aligned` for its type.
///
/// The check only follows addresses the kernel keeps as links or in caps, which name
/// live objects by `crate::obj`'s rule 1 (kept by the code this check verifies); it
/// tests their alignment first, so a link damaged into a misaligned or null address is
/// reported rather than followed. It only reads, and runs with the kernel stopped.
#[allow(
    unsafe_code,
    reason = "the consistency check follows the kernel's links to verify them"
)]
fn at<T>(addr: usize) -> &'static T {
    // SAFETY: as above: a non-zero, aligned address from a kernel link or a cap, which
    // names a live `T` while the kernel keeps its rules; read only, under rule 2.
    unsafe { Ptr::<T>::new(addr) }.get()
}

/// One check in progress.
struct Walk<'k, P: Platform> {
    k: &'k Kernel<P>,
    r: Report,
    visits: u64,
    containers: [usize; MAX_CONTAINERS],
    entered: usize,
    vmid_seen: [u64; VMIDS / 64],
}

impl<P: Platform> Kernel<P> {
    /// Check the kernel's structures from thread `caller`'s point of view (see the
    /// module documentation). `root`: the caller holds every boot capability, so every
    /// VMID in use must be named by a VSpace capability on the lists it reaches.
    pub fn check_consistency(&self, caller: Ptr<Tcb>, root: bool) -> Report {
        let mut w = Walk {
            k: self,
            r: Report::default(),
            visits: 0,
            containers: [0; MAX_CONTAINERS],
            entered: 0,
            vmid_seen: [0; VMIDS / 64],
        };
        w.current();
        w.run_queues();
        w.release_list();
        w.irqs();
        w.reachable(caller);
        w.vmids(root);
        w.r
    }

    /// `DebugCheckConsistency` from thread `t`: the check, its report in `t`'s
    /// registers (see `gaon_abi::Syscall::DebugCheckConsistency`) and each remembered
    /// problem on the kernel console.
    pub(super) fn debug_check_consistency(&mut self, t: Ptr<Tcb>) -> Result<(), Error> {
        let root = t.get().ctx.x[0] & 1 != 0;
        let r = self.check_consistency(t, root);
        for &(p, at) in r.kept.iter().flatten() {
            self.log(format_args!("kernel: consistency check: {p:?} at {at:#x}\n"));
        }
        let ctx = &mut t.get().ctx;
        ctx.x[1] = r.problems;
        ctx.x[2] = r.slots;
        ctx.x[3] = r.caps;
        ctx.x[4] = r.threads;
        ctx.x[5] = r.kept[0].map_or(0, |(p, at)| ((p as u64) << 48) | (at as u64 & ((1 << 48) - 1)));
        ctx.x[6] = u64::from(r.truncated);
        if r.ok() { Ok(()) } else { Err(Error::IllegalOperation) }
    }
}

impl<P: Platform> Walk<'_, P> {
    /// Count one visit; false (and truncated) once the bound is reached.
    fn visit(&mut self) -> bool {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            self.r.truncated = true;
            return false;
        }
        true
    }

    fn throttled(t: &Tcb) -> bool {
        aligned(raw(t.sched_context), SCHED_CONTEXT_BITS) && at::<SchedContext>(raw(t.sched_context)).throttled
    }

    // ---- the walk from the caller ----------------------------------------------

    /// Walk every slot reachable from `caller`'s Tcb, depth first with an explicit
    /// stack of `(first slot, slots, next index)`.
    fn reachable(&mut self, caller: Ptr<Tcb>) {
        let mut stack = [(0usize, 0usize, 0usize); MAX_DEPTH];
        if !self.enter(caller.addr()) {
            return;
        }
        self.tcb(caller.addr());
        stack[0] = (tcb::slot_addr(caller, 0), TCB_SLOTS, 0);
        let mut depth = 1;
        while depth > 0 {
            let (base, count, next) = stack[depth - 1];
            if next == count {
                depth -= 1;
                continue;
            }
            stack[depth - 1].2 += 1;
            if !self.visit() {
                return;
            }
            let at = base + next * core::mem::size_of::<Slot>();
            let s = *slot(at);
            self.r.slots += 1;
            self.slot_links(at, &s);
            if s.cap.is_null() {
                continue;
            }
            if s.mdb.prev().is_none() {
                self.list(at);
            }
            let Some((first, slots)) = self.container(&s.cap, at) else {
                continue;
            };
            if depth == MAX_DEPTH {
                self.r.truncated = true;
            } else if self.enter(s.cap.obj) {
                if s.cap.is(ObjType::Tcb) {
                    self.tcb(s.cap.obj);
                }
                stack[depth] = (first, slots, 0);
                depth += 1;
            }
        }
    }

    /// Record container `obj` as entered; false if it was already, or if the table is
    /// full (then the walk is truncated).
    fn enter(&mut self, obj: usize) -> bool {
        if self.containers[..self.entered].contains(&obj) {
            return false;
        }
        if self.entered == MAX_CONTAINERS {
            self.r.truncated = true;
            return false;
        }
        self.containers[self.entered] = obj;
        self.entered += 1;
        true
    }

    /// The slots of the container `cap` names: (first slot address, count).
    fn container(&mut self, cap: &Cap, at: usize) -> Option<(usize, usize)> {
        match cap.ty() {
            Some(ObjType::CNode) => {
                let radix = cap.size_bits.wrapping_sub(SLOT_BITS);
                if radix == 0 || radix > CNODE_MAX_RADIX || !aligned(cap.obj, cap.size_bits) {
                    self.r.fail(Problem::BadCap, at);
                    return None;
                }
                Some((cap.obj, 1 << radix))
            }
            Some(ObjType::Tcb) if aligned(cap.obj, TCB_BITS) => Some((tcb::slot_addr(cap.tcb(), 0), TCB_SLOTS)),
            _ => None,
        }
    }

    /// The derivation links of slot `at` (holding `s`).
    fn slot_links(&mut self, at: usize, s: &Slot) {
        if s.cap.is_null() {
            if s.mdb != Mdb::default() {
                self.r.fail(Problem::EmptyLinked, at);
            }
            return;
        }
        if s.cap.has(FLAG_ZOMBIE) {
            // Half deleted by a preempted delete: a container's last capability, still
            // in the tree so its memory stays allocated.
            let container = s.cap.is(ObjType::CNode) || s.cap.is(ObjType::Tcb);
            let shared = |n: Option<usize>| n.is_some_and(|n| aligned(n, SLOT_BITS) && slot(n).cap.same_object(&s.cap));
            if !container || shared(s.mdb.next()) || shared(s.mdb.prev()) {
                self.r.fail(Problem::Zombie, at);
                return;
            }
        }
        if let Some(n) = s.mdb.next() {
            self.neighbour(at, n, Mdb::prev);
        }
        if let Some(p) = s.mdb.prev() {
            self.neighbour(at, p, Mdb::next);
        }
    }

    /// Slot `at` links to `n`, whose link back (`back`) must name `at`.
    fn neighbour(&mut self, at: usize, n: usize, back: impl Fn(&Mdb) -> Option<usize>) {
        if !aligned(n, SLOT_BITS) {
            self.r.fail(Problem::LinkNotMirrored, at);
            return;
        }
        let ns = *slot(n);
        if ns.cap.is_null() {
            self.r.fail(Problem::LinkToEmpty, at);
        } else if back(&ns.mdb) != Some(at) {
            self.r.fail(Problem::LinkNotMirrored, at);
        }
    }

    /// Walk the derivation list headed by slot `head`, checking every capability on it.
    fn list(&mut self, head: usize) {
        let mut at = head;
        let mut prev = None;
        loop {
            if !self.visit() {
                return;
            }
            let s = *slot(at);
            if s.cap.is_null() {
                // The link to it was reported where it was found.
                return;
            }
            if s.mdb.prev() != prev {
                self.r.fail(Problem::LinkNotMirrored, at);
                return;
            }
            self.r.caps += 1;
            self.object(&s.cap, at);
            match s.mdb.next() {
                None => return,
                Some(n) if aligned(n, SLOT_BITS) => {
                    prev = Some(at);
                    at = n;
                }
                Some(_) => {
                    self.r.fail(Problem::LinkNotMirrored, at);
                    return;
                }
            }
        }
    }

    // ---- objects ----------------------------------------------------------------

    /// The checks of the object `cap` (in slot `at`) names.
    fn object(&mut self, cap: &Cap, at: usize) {
        let need = match cap.ty() {
            Some(ObjType::Tcb) => TCB_BITS,
            Some(ObjType::Endpoint) => ENDPOINT_BITS,
            Some(ObjType::Notification) => NOTIFICATION_BITS,
            Some(ObjType::Reply) => REPLY_BITS,
            Some(ObjType::SchedContext) => SCHED_CONTEXT_BITS,
            Some(ObjType::VCpu) => VCPU_BITS,
            Some(ObjType::VSpace) => PAGE_BITS,
            Some(ObjType::IrqHandler) => {
                if !self.k.irqs.get(cap.badge as usize).is_some_and(|l| l.claimed) {
                    self.r.fail(Problem::Irq, at);
                }
                return;
            }
            _ => return,
        };
        if !aligned(cap.obj, need) {
            self.r.fail(Problem::BadCap, at);
            return;
        }
        match cap.ty() {
            Some(ObjType::Tcb) => self.tcb(cap.obj),
            Some(ObjType::Endpoint) => self.endpoint(cap.obj),
            Some(ObjType::Notification) => self.notification(cap.obj),
            Some(ObjType::Reply) => self.reply(cap.obj),
            Some(ObjType::SchedContext) => self.sched_context(cap.obj),
            Some(ObjType::VCpu) => self.vcpu(cap.obj),
            Some(ObjType::VSpace) => {
                let vmid = cap.badge as usize;
                if vmid == 0 {
                    // Not given a VMID yet (VmidPoolAssign): nothing to agree with.
                } else if vmid >= VMIDS || raw(self.k.vmids[vmid]) != cap.obj {
                    self.r.fail(Problem::Vmid, at);
                } else {
                    self.vmid_seen[vmid / 64] |= 1 << (vmid % 64);
                }
            }
            _ => {}
        }
    }

    /// A thread: queue membership against its state, its IPC state, its bindings.
    fn tcb(&mut self, addr: usize) {
        self.r.threads += 1;
        let t = at::<Tcb>(addr);
        let throttled = Self::throttled(t);
        let (state, queued, prio) = (t.state, t.queued(), t.prio);
        let (sched_prev, sched_next) = (raw(t.run_links().0), raw(t.run_links().1));
        let (blocked_on, ep_prev, ep_next, reply) = (
            blocked_on(&t.state),
            raw(t.ipc_links().0),
            raw(t.ipc_links().1),
            raw(t.reply),
        );
        let (ntfn, sc) = (raw(t.bound_ntfn), raw(t.sched_context));
        // Its core's state: a thread is queued in, and runs on, its own core only, one
        // that came up, its configured scheduling context's.
        let cpu = usize::from(t.cpu) % MAX_CORES;
        let sc_cpu = (sc != 0 && aligned(sc, SCHED_CONTEXT_BITS))
            .then(|| at::<SchedContext>(sc))
            .filter(|s| s.budget != 0)
            .map(|s| usize::from(s.cpu));
        if self.k.online & (1 << cpu) == 0 || usize::from(t.cpu) != cpu || sc_cpu.is_some_and(|c| c != cpu) {
            self.r.fail(Problem::Placement, addr);
        }
        let current = raw(self.k.state(cpu).current);
        if queued {
            if state != ThreadState::Running || throttled || addr == current {
                self.r.fail(Problem::QueuedNotRunnable, addr);
            }
            let (heads, tails) = self.k.levels[cpu].raw();
            let linked = |other: usize, end: usize, back: fn(&Tcb) -> usize| {
                if other == 0 {
                    end == addr
                } else {
                    aligned(other, TCB_BITS) && {
                        let o = at::<Tcb>(other);
                        back(o) == addr && o.queued() && o.prio == prio
                    }
                }
            };
            let p = usize::from(prio);
            if !linked(sched_prev, raw(heads[p]), |o| raw(o.run_links().1))
                || !linked(sched_next, raw(tails[p]), |o| raw(o.run_links().0))
            {
                self.r.fail(Problem::QueueLinks, addr);
            }
        } else if state == ThreadState::Running && addr != current && !throttled {
            self.r.fail(Problem::RunnableNotQueued, addr);
        }
        match state {
            State::BlockedOnSend { .. } | State::BlockedOnRecv { .. } => {
                let want = if state == ThreadState::BlockedOnSend {
                    EpState::Send
                } else {
                    EpState::Recv
                };
                let ok = aligned(blocked_on, ENDPOINT_BITS) && {
                    let e = at::<Endpoint>(blocked_on);
                    e.state == want && in_queue(&e.queue, addr, ep_prev, ep_next)
                };
                if !ok {
                    self.r.fail(Problem::IpcQueue, addr);
                }
                if state == ThreadState::BlockedOnRecv
                    && reply != 0
                    && !(aligned(reply, REPLY_BITS) && raw(at::<Reply>(reply).receiver) == addr)
                {
                    self.r.fail(Problem::Reply, addr);
                }
            }
            State::BlockedOnNotification { .. } => {
                let ok = aligned(blocked_on, NOTIFICATION_BITS)
                    && in_queue(&at::<Notification>(blocked_on).queue, addr, ep_prev, ep_next);
                if !ok {
                    self.r.fail(Problem::IpcQueue, addr);
                }
            }
            State::BlockedOnReply => {
                if !(aligned(reply, REPLY_BITS) && raw(at::<Reply>(reply).caller) == addr) {
                    self.r.fail(Problem::Reply, addr);
                }
            }
            State::Running | State::Inactive | State::WaitingForInterrupt => {}
        }
        if ntfn != 0 && !(aligned(ntfn, NOTIFICATION_BITS) && raw(at::<Notification>(ntfn).bound) == addr) {
            self.r.fail(Problem::Binding, addr);
        }
        if sc != 0 && !(aligned(sc, SCHED_CONTEXT_BITS) && raw(at::<SchedContext>(sc).tcb) == addr) {
            self.r.fail(Problem::Binding, addr);
        }
        self.guest_of(addr, t);
    }

    /// A thread's VCpu binding, mirrored, and what only a guest may be: above EL0 (the
    /// mode, and for a native thread the interrupt masks, are what the eret to it would
    /// enter), or waiting in WFI.
    fn guest_of(&mut self, addr: usize, t: &Tcb) {
        let (vcpu, pstate) = (raw(t.vcpu), t.ctx.spsr);
        let guest_ok = vcpu == 0 || (aligned(vcpu, VCPU_BITS) && raw(at::<VCpu>(vcpu).tcb) == addr);
        let state_ok = if vcpu == 0 {
            pstate & 0x3df == 0 && t.state != ThreadState::WaitingForInterrupt
        } else {
            // A guest never receives (it makes no syscalls).
            matches!(pstate & 0x1f, 0b0000 | 0b0100 | 0b0101)
                && !matches!(
                    t.state,
                    State::BlockedOnRecv { .. } | State::BlockedOnNotification { .. }
                )
        };
        if !(guest_ok && state_ok) {
            self.r.fail(Problem::Guest, addr);
        }
    }

    /// A queue of threads that must all be in `want` state and blocked on `obj`.
    fn ipc_queue(&mut self, obj: usize, q: Queue, want: ThreadState) {
        let (mut t, mut prev) = (raw(q.head), 0);
        for _ in 0..MAX_STEPS {
            if t == 0 {
                if raw(q.tail) != prev {
                    self.r.fail(Problem::IpcQueue, obj);
                }
                return;
            }
            if !aligned(t, TCB_BITS) {
                self.r.fail(Problem::IpcQueue, obj);
                return;
            }
            let tc = at::<Tcb>(t);
            if tc.state != want || blocked_on(&tc.state) != obj || raw(tc.ipc_links().0) != prev {
                self.r.fail(Problem::IpcQueue, t);
                return;
            }
            prev = t;
            t = raw(tc.ipc_links().1);
        }
        self.r.fail(Problem::IpcQueue, obj);
    }

    fn endpoint(&mut self, addr: usize) {
        let e = at::<Endpoint>(addr);
        let (state, q) = (e.state, e.queue);
        match state {
            EpState::Idle if q.head.is_none() && q.tail.is_none() => {}
            EpState::Send if q.head.is_some() => self.ipc_queue(addr, q, ThreadState::BlockedOnSend),
            EpState::Recv if q.head.is_some() => self.ipc_queue(addr, q, ThreadState::BlockedOnRecv),
            _ => self.r.fail(Problem::IpcQueue, addr),
        }
    }

    fn notification(&mut self, addr: usize) {
        let n = at::<Notification>(addr);
        let (word, active, q, bound) = (n.word, n.active, n.queue, raw(n.bound));
        // Waiters and a pending signal never meet; bits are only pending with a signal.
        if (q.head.is_some() && active) || (word != 0 && !active) {
            self.r.fail(Problem::IpcQueue, addr);
        }
        self.ipc_queue(addr, q, ThreadState::BlockedOnNotification);
        if bound != 0 && !(aligned(bound, TCB_BITS) && raw(at::<Tcb>(bound).bound_ntfn) == addr) {
            self.r.fail(Problem::Binding, addr);
        }
    }

    fn reply(&mut self, addr: usize) {
        let r = at::<Reply>(addr);
        let (caller, receiver) = (raw(r.caller), raw(r.receiver));
        let waits = |t: usize, state: ThreadState| {
            aligned(t, TCB_BITS) && {
                let tc = at::<Tcb>(t);
                tc.state == state && raw(tc.reply) == addr
            }
        };
        if (caller != 0 && !waits(caller, ThreadState::BlockedOnReply))
            || (receiver != 0 && !waits(receiver, ThreadState::BlockedOnRecv))
        {
            self.r.fail(Problem::Reply, addr);
        }
    }

    fn vcpu(&mut self, addr: usize) {
        let v = at::<VCpu>(addr);
        let tcb = raw(v.tcb);
        if tcb != 0 && !(aligned(tcb, TCB_BITS) && raw(at::<Tcb>(tcb).vcpu) == addr) {
            self.r.fail(Problem::Guest, addr);
        }
        // The kernel keeps the timer only of a bound guest, in its core's list.
        if let Some(c) = v.timer_core
            && (tcb == 0 || !self.on_guest_timer_list(usize::from(c) % MAX_CORES, addr))
        {
            self.r.fail(Problem::Guest, addr);
        }
    }

    /// `addr` is in core `cpu`'s guest timer list, which is sorted up to it.
    fn on_guest_timer_list(&self, cpu: usize, addr: usize) -> bool {
        let (mut cur, mut last) = (raw(self.k.state(cpu).guest_timers), 0);
        for _ in 0..MAX_STEPS {
            if !aligned(cur, VCPU_BITS) {
                return false;
            }
            let v = at::<VCpu>(cur);
            if v.timer_at < last || v.timer_core != Some(cpu as u8) {
                return false;
            }
            if cur == addr {
                return true;
            }
            last = v.timer_at;
            cur = raw(v.timer_next);
        }
        false
    }

    fn sched_context(&mut self, addr: usize) {
        let sc = at::<SchedContext>(addr);
        let (budget, throttled, tcb, head, count) = (sc.budget, sc.throttled, raw(sc.tcb), sc.head, sc.count);
        let refills_ok = usize::from(head) < MAX_REFILLS
            && usize::from(count) <= MAX_REFILLS
            && (budget == 0 || (count > 0 && sc.total() == budget));
        if !refills_ok {
            self.r.fail(Problem::Refills, addr);
        }
        if tcb != 0 && !(aligned(tcb, TCB_BITS) && raw(at::<Tcb>(tcb).sched_context) == addr) {
            self.r.fail(Problem::Binding, addr);
        }
        if throttled && !self.on_release_list(addr) {
            self.r.fail(Problem::ReleaseList, addr);
        }
    }

    fn on_release_list(&self, addr: usize) -> bool {
        let cpu = usize::from(at::<SchedContext>(addr).cpu) % MAX_CORES;
        let mut cur = raw(self.k.state(cpu).release_head);
        for _ in 0..MAX_STEPS {
            if cur == addr {
                return true;
            }
            if !aligned(cur, SCHED_CONTEXT_BITS) {
                return false;
            }
            cur = raw(at::<SchedContext>(cur).release_next);
        }
        false
    }

    // ---- global structures ------------------------------------------------------

    /// Every core's running thread is one of its own, runnable and out of the queues
    /// (a thread stopped for another core stops there at once: `Kernel::stop_remote`).
    fn current(&mut self) {
        for i in 0..MAX_CORES {
            let core = self.k.state(i);
            let c = raw(core.current);
            if c != 0
                && !(aligned(c, TCB_BITS) && {
                    let t = at::<Tcb>(c);
                    t.state == ThreadState::Running && !t.queued() && usize::from(t.cpu) == i
                })
            {
                self.r.fail(Problem::Current, c);
            }
            for o in core.lazy_owners.map(raw) {
                if o != 0 && !aligned(o, TCB_BITS) {
                    self.r.fail(Problem::LazyOwner, o);
                }
            }
        }
    }

    fn run_queues(&mut self) {
        for i in 0..MAX_CORES {
            self.run_queues_of(i);
        }
    }

    fn run_queues_of(&mut self, cpu: usize) {
        let core_current = raw(self.k.state(cpu).current);
        let (heads, tails) = self.k.levels[cpu].raw();
        let (words, summary) = self.k.state(cpu).bits.raw();
        let mut steps = 0;
        for p in 0..256 {
            let bit = (words[p / 64] >> (p % 64)) & 1 != 0;
            if heads[p].is_some() != bit {
                self.r.fail(Problem::Bitmap, p);
            }
            let (mut t, mut prev) = (raw(heads[p]), 0);
            while t != 0 {
                steps += 1;
                if steps > MAX_STEPS || !aligned(t, TCB_BITS) {
                    self.r.fail(Problem::QueueLinks, p);
                    return;
                }
                let tc = at::<Tcb>(t);
                if !tc.queued() || raw(tc.run_links().0) != prev {
                    self.r.fail(Problem::QueueLinks, t);
                }
                if usize::from(tc.prio) != p || usize::from(tc.cpu) != cpu {
                    self.r.fail(Problem::QueueWrongPriority, t);
                }
                if tc.state != ThreadState::Running || Self::throttled(tc) || t == core_current {
                    self.r.fail(Problem::QueuedNotRunnable, t);
                }
                prev = t;
                t = raw(tc.run_links().1);
            }
            if raw(tails[p]) != prev {
                self.r.fail(Problem::QueueLinks, p);
            }
        }
        for (w, word) in words.iter().enumerate() {
            if ((summary >> w) & 1 != 0) != (*word != 0) {
                self.r.fail(Problem::Bitmap, w);
            }
        }
        if summary >> words.len() != 0 {
            self.r.fail(Problem::Bitmap, 0);
        }
    }

    fn release_list(&mut self) {
        for i in 0..MAX_CORES {
            self.release_list_of(i);
        }
    }

    fn release_list_of(&mut self, cpu: usize) {
        let head = raw(self.k.state(cpu).release_head);
        let mut cur = head;
        let mut last = 0;
        for _ in 0..MAX_STEPS {
            if cur == 0 {
                return;
            }
            if !aligned(cur, SCHED_CONTEXT_BITS) {
                self.r.fail(Problem::ReleaseList, cur);
                return;
            }
            let sc = at::<SchedContext>(cur);
            let queued = aligned(raw(sc.tcb), TCB_BITS) && at::<Tcb>(raw(sc.tcb)).queued();
            // Throttled, budgeted, off the run queue, this core's, and sorted by release
            // time.
            if !sc.throttled || sc.budget == 0 || queued || sc.release_time() < last || usize::from(sc.cpu) != cpu {
                self.r.fail(Problem::ReleaseList, cur);
            }
            last = sc.release_time();
            cur = raw(sc.release_next);
        }
        self.r.fail(Problem::ReleaseList, head);
    }

    fn irqs(&mut self) {
        for (i, line) in self.k.irqs.iter().enumerate() {
            if line.ntfn.is_some() && (!line.claimed || !aligned(raw(line.ntfn), NOTIFICATION_BITS)) {
                self.r.fail(Problem::Irq, i);
            }
        }
    }

    /// The VMID table: distinct page-aligned tables; with `root`, and a walk that was
    /// not cut short, every one named by a VSpace capability seen on the lists.
    fn vmids(&mut self, root: bool) {
        let v = self.k.vmids.map(raw);
        if v[0] != 0 {
            self.r.fail(Problem::Vmid, 0);
        }
        for i in 1..VMIDS {
            let a = v[i];
            if a == 0 {
                continue;
            }
            if !aligned(a, PAGE_BITS) || v[i + 1..].contains(&a) {
                self.r.fail(Problem::Vmid, i);
            }
            let seen = self.vmid_seen[i / 64] & (1 << (i % 64)) != 0;
            if root && !self.r.truncated && !seen {
                self.r.fail(Problem::Vmid, i);
            }
        }
    }
}

/// True if thread `t`, with queue links `prev`/`next`, is linked into `q`.
fn in_queue(q: &Queue, t: usize, prev: usize, next: usize) -> bool {
    let back = |other: usize, end: usize, link: fn(&Tcb) -> usize| {
        if other == 0 {
            end == t
        } else {
            aligned(other, TCB_BITS) && link(at::<Tcb>(other)) == t
        }
    };
    back(prev, raw(q.head), |o| raw(o.ipc_links().1)) && back(next, raw(q.tail), |o| raw(o.ipc_links().0))
}

/// The endpoint or notification a thread in `state` is queued on (0: none).
fn blocked_on(state: &State) -> usize {
    match *state {
        State::BlockedOnSend { ep, .. } | State::BlockedOnRecv { ep } => ep.addr(),
        State::BlockedOnNotification { ntfn } => ntfn.addr(),
        State::Inactive | State::Running | State::BlockedOnReply | State::WaitingForInterrupt => 0,
    }
}
