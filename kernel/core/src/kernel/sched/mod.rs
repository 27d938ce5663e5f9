//! Scheduling: fixed priorities with round-robin inside a priority ([`queues`]), and
//! budgets enforced with scheduling contexts ([`budget`]). Every change of the running
//! thread goes through [`Kernel::schedule`] (or the fastpath's direct switch, which
//! makes the same choice); the running thread stays out of the run queues while it
//! runs, seL4-style.

pub mod budget;
pub mod queues;

use gaon_abi::ObjType;
use gaon_abi::trace::Class;

use super::fastpath::Fast;
use super::object::tcb::{SLOT_VSPACE, State, Tcb};
use super::{Kernel, MAX_CORES, Platform};
use crate::obj::Ptr;
use crate::vspace::Table;

/// What the arch layer needs to return to user level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// The thread (its registers are at offset 0).
    pub tcb: Ptr<Tcb>,
    /// Its VSpace's root table.
    pub vspace_root: usize,
    /// Its VMID.
    pub vmid: u16,
}

impl<P: Platform> Kernel<P> {
    /// Make `t` runnable. `front`: run it before its equals (a direct hand-over).
    #[inline]
    pub(in crate::kernel) fn make_runnable(&mut self, t: Ptr<Tcb>, front: bool) {
        t.get().state = State::Running;
        if self.running(t) && !t.get().queued() {
            // A running thread: already first in its priority.
            return;
        }
        if !front
            && usize::from(t.get().cpu) == self.core.cpu
            && self.core.candidate.is_none()
            && self.core.current.is_none_or(|c| c.get().prio < t.get().prio)
            && !t.get().queued()
            && !self.throttled(t)
        {
            // It outranks the running thread: the next `schedule` (at the end of this
            // kernel entry) most likely switches to it. Kept aside instead of queued,
            // so that switch needs no queue operation (seL4's scheduler action).
            self.core.candidate = Some(t);
            return;
        }
        if front && usize::from(t.get().cpu) == self.core.cpu {
            // Ahead of the running thread too, if they are equals.
            self.settle_current();
        }
        if !self.throttled(t) {
            self.enqueue(t, front);
        }
    }

    /// Queue `t` in its core's run queues. A thread of another core is that core's to
    /// run: it is told with an IPI once the kernel is left ([`Kernel::take_ipis`]).
    #[inline]
    pub(in crate::kernel) fn enqueue(&mut self, t: Ptr<Tcb>, front: bool) {
        let cpu = usize::from(t.get().cpu) % MAX_CORES;
        if cpu != self.here() {
            self.core.ipis |= 1 << cpu;
        }
        self.rq_of_cpu(cpu).enqueue(t, front);
    }

    /// Take `t` out of its core's run queues (no-op if not queued). A thread running on
    /// another core is stopped there first ([`Kernel::settle`]); should one not have
    /// been, its core is told to choose again.
    #[inline]
    pub(in crate::kernel) fn dequeue(&mut self, t: Ptr<Tcb>) {
        let cpu = usize::from(t.get().cpu) % MAX_CORES;
        if cpu != self.here() && self.state(cpu).current == Some(t) {
            self.core.ipis |= 1 << cpu;
        }
        self.rq_of_cpu(cpu).dequeue(t);
    }

    /// The cores this kernel entry woke or changed a thread of, to be told with an
    /// IPI, as a bit mask (the arch layer sends them after leaving the kernel lock).
    /// Zero (one load, no store) on the common path, where nothing changed elsewhere.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on every slow-path exit, measured in instructions")]
    pub fn take_ipis(&mut self) -> u8 {
        if self.core.ipis == 0 {
            return 0;
        }
        core::mem::take(&mut self.core.ipis)
    }

    /// Take `t` off the run queue with a blocked or inactive state.
    #[inline]
    pub(in crate::kernel) fn block(&mut self, t: Ptr<Tcb>, state: State) {
        t.get().state = state;
        self.dequeue(t);
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
    pub(in crate::kernel) fn settle_current(&mut self) {
        if let Some(c) = self.current()
            && c.get().state.is_running()
            && !self.throttled(c)
        {
            self.rq().enqueue(c, true);
        }
    }

    /// Make `t` an ordinary thread, running nowhere, before an operation that changes
    /// how or where it runs or reads its registers: this core's running thread goes
    /// first in its priority ([`Kernel::settle_current`]; it stays current until the
    /// next [`Kernel::schedule`]); a thread running on another core is stopped there
    /// ([`Kernel::stop_remote`]).
    pub(in crate::kernel) fn settle(&mut self, t: Ptr<Tcb>) {
        if self.core.current == Some(t) {
            self.settle_current();
            return;
        }
        let cpu = usize::from(t.get().cpu) % MAX_CORES;
        if cpu != self.here() && self.state(cpu).current == Some(t) {
            self.stop_remote(cpu);
        }
    }

    /// Stop the thread running on core `cpu` (another core): that core leaves user
    /// level and saves its lazily switched state (the platform waits for it), the
    /// thread is charged for its run and, if still runnable, queued first in its
    /// priority there, and the core is told to choose again.
    pub(in crate::kernel) fn stop_remote(&mut self, cpu: usize) {
        let cpu = cpu % MAX_CORES;
        let saves = self.take_lazy(cpu, None);
        self.stall_core(cpu, saves);
        let Some(t) = self.state(cpu).current else { return };
        let now = self.platform.now();
        let _ = self.charge_on(cpu, t, now);
        if self.tracing(Class::SCHED) {
            self.trace_switch(cpu, Some(t), None);
        }
        self.state_mut(cpu).current = None;
        if t.get().state.is_running() && !self.throttled(t) {
            self.rq_of_cpu(cpu).enqueue(t, true);
        }
    }

    /// Make every other core whose running thread may be using the VSpace with root
    /// `root` (its VSpace, or one whose last capability went since it was loaded) leave
    /// user level: when it chooses again, a thread without a live VSpace does not run.
    pub(in crate::kernel) fn stall_users_of(&mut self, root: Ptr<Table>) {
        for cpu in 0..MAX_CORES {
            if cpu == self.here() {
                continue;
            }
            if let Some(c) = self.state(cpu).current
                && self.vspace_of(c).is_none_or(|(r, _)| r == root)
            {
                self.stall_core(cpu, [None, None, None]);
            }
        }
    }

    /// Stall core `cpu` (another core: [`Platform::stall`], saving `saves`); it chooses
    /// again once it has the lock, which it is told with an IPI.
    fn stall_core(&mut self, cpu: usize, saves: super::LazySaves<'_>) {
        self.platform.stall(cpu, saves);
        self.core.ipis |= 1 << cpu;
    }

    /// Core `cpu`'s lazily switched state owners (only `t`'s, if given), forgotten
    /// there, as the places to save the core's live copies to.
    fn take_lazy(&mut self, cpu: usize, only: Option<Ptr<Tcb>>) -> super::LazySaves<'static> {
        let owners = &mut self.state_mut(cpu).lazy_owners;
        core::array::from_fn(|kind| {
            let o = owners[kind]?;
            if only.is_some_and(|t| t != o) {
                return None;
            }
            owners[kind] = None;
            Some(o.get().live_state())
        })
    }

    /// Save `t`'s lazily switched state from whichever cores hold it live (this one
    /// directly, another by a stall), and forget it there: the Tcb then holds all of
    /// the thread's state (the next core to run it loads it from there).
    pub(in crate::kernel) fn save_lazy_of(&mut self, t: Ptr<Tcb>) {
        for c in 0..MAX_CORES {
            if self.state(c).lazy_owners.contains(&Some(t)) {
                let saves = self.take_lazy(c, Some(t));
                if c == self.here() {
                    self.platform.save_lazy(saves);
                } else {
                    self.stall_core(c, saves);
                }
                // A guest waiting in WFI keeps its timer in the kernel now.
                self.guest_saved(t);
            }
        }
    }

    /// Move `t` to core `cpu` (one of the cores that came up): it stops wherever it
    /// runs, its lazily switched state is saved from whichever core holds it, and it is
    /// queued on the new core if it is runnable.
    pub(in crate::kernel) fn migrate(&mut self, t: Ptr<Tcb>, cpu: usize) {
        let cpu = cpu % MAX_CORES;
        let from = usize::from(t.get().cpu) % MAX_CORES;
        if from == cpu {
            return;
        }
        self.settle(t);
        self.save_lazy_of(t);
        let mut queued = t.get().queued();
        if queued {
            self.rq_of_cpu(from).dequeue(t);
        }
        if self.core.candidate == Some(t) {
            self.core.candidate = None;
            queued = true;
        }
        if self.core.current == Some(t) {
            // This core's running thread, settled (queued) above: it runs elsewhere now.
            self.switch_to(None);
        }
        t.get().cpu = cpu as u8;
        if queued {
            self.enqueue(t, false);
        }
    }

    /// The IPC fastpath's direct switch. `t`, the running thread (out of the queues),
    /// has just blocked with `state`, and `next` has just become runnable. If `next` is
    /// the thread [`Kernel::schedule`] would pick (nothing queued outranks it: it would
    /// go first in its priority) and neither has a budget to charge (see `sched.rs`),
    /// it becomes current with no queue operation, scan or charge, and its resume
    /// target is returned. Otherwise `next` is queued the general way and the caller
    /// reschedules.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(in crate::kernel) fn fastpath_switch(&mut self, t: Ptr<Tcb>, state: State, next: Ptr<Tcb>) -> Fast {
        t.get().state = state;
        let n = next.get();
        n.state = State::Running;
        // Neither is queued: `t` is the running thread and `next` was blocked (the
        // consistency check's invariants), so no queue is looked at here.
        debug_assert!(!t.get().queued() && !n.queued());
        if !self.budgeted(t)
            && !self.budgeted(next)
            // Same core: `t` runs here (the running thread is always its core's).
            && n.cpu == t.get().cpu
            && self.core.bits.highest_prio().is_none_or(|p| p <= n.prio)
            && let Some((root, vmid)) = self.vspace_of(next)
        {
            // What `schedule` would pick (`first_in_line`), and what `resume_target`
            // would then say, without reading it back. Untraced: the fastpath is not
            // taken while switches are traced (`Kernel::traced`).
            self.core.current = Some(next);
            return Fast::Direct(Resume {
                tcb: next,
                vspace_root: root.addr(),
                vmid,
            });
        }
        self.fastpath_fallback(t, next);
        Fast::Queued
    }

    /// The fastpath's other way: `t` out of the queues, `next` queued the general way
    /// (on its own core). Out of line, so the direct switch keeps its registers.
    #[inline(never)]
    fn fastpath_fallback(&mut self, t: Ptr<Tcb>, next: Ptr<Tcb>) {
        self.rq().dequeue(t);
        if !self.throttled(next) {
            self.enqueue(next, true);
        }
    }

    /// Make `next` the running thread (`None`: nobody runs; the CPU idles), and record
    /// the switch. The one place the running thread changes: the scheduler and a
    /// running thread's destruction come here; the fastpath's direct switch does the
    /// same without the trace point, as it runs only while switches are not traced. The arch layer loads the thread's registers,
    /// address space and lazily switched state on the way out ([`Kernel::resume_target`]).
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(in crate::kernel) fn switch_to(&mut self, next: Option<Ptr<Tcb>>) {
        if self.tracing(Class::SCHED) && self.core.current != next {
            self.trace_switch(self.here(), self.core.current, next);
        }
        self.core.current = next;
    }

    /// True if `t`, runnable and not queued, is what [`Kernel::schedule`] picks: nothing
    /// queued outranks it (among equals it goes first) and it has a live VSpace.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(in crate::kernel) fn first_in_line(&self, t: Ptr<Tcb>) -> bool {
        self.core.bits.highest_prio().is_none_or(|p| p <= t.get().prio) && self.vspace_of(t).is_some()
    }

    /// Pick the thread to run: the highest-priority runnable one that can run, which
    /// leaves the run queue while it runs. A thread whose VSpace was deleted under it
    /// is stopped here.
    #[inline]
    pub fn schedule(&mut self) {
        if let Some(n) = self.core.candidate {
            self.core.candidate = None;
            if self.take_candidate(n) {
                return;
            }
        }
        if let Some(c) = self.current() {
            let tcb = c.get();
            if tcb.state.is_running() && !tcb.queued() && !self.throttled(c) && self.first_in_line(c) {
                // Still first among the runnable: it goes on.
                return;
            }
        }
        self.settle_current();
        loop {
            let Some(t) = self.highest_here() else {
                self.switch_to(None);
                return;
            };
            if self.vspace_of(t).is_some() {
                self.rq().dequeue(t);
                self.switch_to(Some(t));
                return;
            }
            self.block(t, State::Inactive);
        }
    }

    /// The thread `make_runnable` kept aside: if it is still runnable and outranks
    /// every queued thread and the running one, it runs now, with no queue operation
    /// (true). Otherwise it is queued the general way (if still runnable) and the
    /// choice is made as usual (false).
    #[inline]
    fn take_candidate(&mut self, n: Ptr<Tcb>) -> bool {
        let tcb = n.get();
        if !tcb.state.is_running() || tcb.queued() || self.core.current == Some(n) || self.throttled(n) {
            return false;
        }
        let prio = tcb.prio;
        let current_below = self
            .core
            .current
            .is_none_or(|c| !c.get().state.is_running() || self.throttled(c) || c.get().prio < prio);
        if current_below && self.core.bits.highest_prio().is_none_or(|p| p < prio) && self.vspace_of(n).is_some() {
            self.settle_current();
            self.switch_to(Some(n));
            return true;
        }
        self.enqueue(n, false);
        false
    }

    /// Where to return to user level, after [`Kernel::schedule`].
    #[inline]
    pub fn resume_target(&self) -> Option<Resume> {
        let t = self.current()?;
        let (root, vmid) = self.vspace_of(t)?;
        Some(Resume {
            tcb: t,
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
    pub(in crate::kernel) fn vspace_of(&self, t: Ptr<Tcb>) -> Option<(Ptr<Table>, u16)> {
        let cap = t.get().slots[SLOT_VSPACE].cap;
        if !cap.is(ObjType::VSpace) {
            return None;
        }
        Some((cap.vspace(), cap.vmid()))
    }
}
