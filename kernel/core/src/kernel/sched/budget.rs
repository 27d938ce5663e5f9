//! Scheduling contexts: budget and period, enforced with sporadic-server refills, and
//! the kernel timer that enforces them.
//!
//! A scheduling context holds up to [`MAX_REFILLS`] refills whose amounts always add
//! up to its budget. The thread may run while the head refill is due (its time has
//! come) and not empty. Time the thread runs is taken from the head refill and the
//! same amount is scheduled again one period after the refill it came from became
//! due: that is the sporadic-server rule, and it bounds the thread to `budget` in any
//! window of `period`. A thread out of budget is throttled (left out of the run
//! queue, its scheduling context in the release list, sorted by the time its head
//! refill comes due) until its head refill is due; if it has a timeout endpoint, a
//! timeout fault is sent there first. Threads without a scheduling context are
//! scheduled round-robin inside their priority and are not budgeted.
//!
//! Time is kept in counter ticks, exact. Run time is charged when the CPU passes from
//! one thread to another and when the kernel timer fires (not on every kernel entry: a
//! syscall that does not switch pays nothing). The kernel timer is a one-shot,
//! programmed after every scheduling decision ([`Kernel::arm_timer`]) for the earliest
//! of: the running thread's budget expiry (the last charge plus its head refill), the
//! release of the first throttled scheduling context, and the end of the current time
//! slice if a thread of the running thread's priority waits. The slice belongs to the
//! core, not to a thread: it starts when a second thread of the running priority
//! becomes runnable, and when it ends the running thread goes behind its equals and
//! the next slice starts; switching threads (IPC, yield) hands the rest over. With none of
//! these the timer is off: an idle core takes no periodic interrupts. The IPC
//! fastpath's direct switch between two threads without a budget charges nothing and
//! leaves `last_charge` alone: it only matters while a budgeted thread runs, and every
//! way a budgeted thread becomes current sets it.

use gaon_abi::fault::Fault;
use gaon_abi::trace::{Class, Event};
use gaon_abi::{ObjType, Rights};

use crate::kernel::object::sched_context::SchedContext;
use crate::kernel::object::tcb::{IpcFlags, SLOT_TIMEOUT_EP, Tcb};
use crate::kernel::{Kernel, MAX_CORES, NO_SLICE, Platform, trace};
use crate::obj::Ptr;

impl<P: Platform> Kernel<P> {
    /// Charge `t`, which ran until `now` since the last charge, and throttle it if its
    /// budget is gone; true if it was throttled now. Run time is charged lazily: at
    /// ticks, and when the CPU passes to another thread (so a syscall that does not
    /// switch costs no accounting).
    #[inline]
    pub(in crate::kernel) fn charge(&mut self, t: Ptr<Tcb>, now: u64) -> bool {
        let used = now.saturating_sub(self.core.last_charge);
        self.core.last_charge = now;
        self.charge_used(t, used, now)
    }

    /// [`Kernel::charge`] for the thread running on core `cpu` (stopped from here).
    pub(in crate::kernel) fn charge_on(&mut self, cpu: usize, t: Ptr<Tcb>, now: u64) -> bool {
        let core = self.state_mut(cpu);
        let used = now.saturating_sub(core.last_charge);
        core.last_charge = now;
        self.charge_used(t, used, now)
    }

    #[inline]
    fn charge_used(&mut self, t: Ptr<Tcb>, used: u64, now: u64) -> bool {
        match t.get().sched_context {
            // An unconfigured scheduling context (the root server's, and those root
            // gives threads without a budget) has nothing to charge.
            Some(sc) if sc.get().budget != 0 => self.charge_budget(t, sc, used, now),
            _ => false,
        }
    }

    /// [`Kernel::charge`] for a thread with a scheduling context.
    fn charge_budget(&mut self, t: Ptr<Tcb>, sc: Ptr<SchedContext>, used: u64, now: u64) -> bool {
        let s = sc.get();
        if s.throttled {
            // Throttled while it ran (out of budget in the same syscall): charging moves
            // its refills, so it takes its new place in the sorted release list.
            self.sc_forget(sc);
            s.charge(used, now);
            self.release_insert(sc);
            return false;
        }
        s.charge(used, now);
        if s.available(now) {
            return false;
        }
        self.throttle(t, sc);
        true
    }

    /// Choose who runs after an event that happened while `prev` (`None`: nobody) ran, and
    /// if that is another thread, charge `prev` up to now. A thread found out of budget
    /// here has finished what it trapped for: it is throttled (and sent its timeout
    /// fault if it is still runnable), and the choice is made again. Then the timer is
    /// set for the next deadline.
    pub(in crate::kernel) fn reschedule(&mut self, prev: Option<Ptr<Tcb>>) {
        self.signal_log();
        self.schedule();
        if self.core.current != prev {
            let now = self.platform.now();
            match prev {
                Some(t) => {
                    if self.charge(t, now) {
                        self.schedule();
                    }
                }
                None => self.core.last_charge = now,
            }
        }
        self.arm_timer();
    }

    /// Program the kernel timer for the earliest deadline (see the module's comment).
    /// The hardware is written only when the deadline is earlier than the one it holds:
    /// a later or no deadline leaves the earlier one, which then fires early, and
    /// [`Kernel::handle_timer`] finds nothing due and sets the timer again (one compare
    /// on the common path, instead of a timer write at every switch).
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "after every slow-path switch, measured in instructions (docs/benchmarks.md)"
    )]
    pub fn arm_timer(&mut self) {
        let core = &mut self.core;
        let mut deadline = core.release_head.map_or(u64::MAX, |sc| sc.get().release_time());
        if let Some(c) = core.current {
            let t = c.get();
            if let Some(sc) = t.sched_context
                && sc.get().budget != 0
            {
                deadline = deadline.min(core.last_charge.saturating_add(sc.get().head_amount()));
            }
            if core.bits.has_queued(t.prio) {
                if core.slice_level != u16::from(t.prio) {
                    // Alone at its priority until now (or another level's slice): the
                    // slice starts now.
                    core.slice_level = u16::from(t.prio);
                    core.slice_end = self.platform.now().saturating_add(core.timeslice);
                }
                deadline = deadline.min(core.slice_end);
            } else if core.slice_level == u16::from(t.prio) {
                core.slice_level = NO_SLICE;
            }
        }
        if deadline < core.timer_deadline {
            core.timer_deadline = deadline;
            self.platform.set_timer(Some(deadline));
        }
    }

    /// `t` ran out of budget: throttle it and send a timeout fault if it has a handler.
    pub(in crate::kernel) fn throttle(&mut self, t: Ptr<Tcb>, sc: Ptr<SchedContext>) {
        self.throttle_quietly(t, sc);
        let s = sc.get();
        if self.tracing(Class::BUDGET) {
            self.record(Event::BudgetExhausted, t.get().tid, s.budget, s.release_time());
        }
        let cap = t.get().slots[SLOT_TIMEOUT_EP].cap;
        if cap.is(ObjType::Endpoint) && cap.rights().contains(Rights::WRITE) && t.get().state.is_running() {
            let consumed_us = self.ticks_to_us(s.consumed);
            let fault = Fault::Timeout {
                badge: s.badge,
                consumed_us,
            };
            if self.tracing(Class::FAULT) {
                self.record(Event::Fault, t.get().tid, fault.kind() as u64, 0);
            }
            t.get().fault = Some(fault);
            self.send_ipc(t, cap.endpoint(), cap.badge, IpcFlags::FAULT | IpcFlags::CALL, true);
        }
    }

    /// Release the throttled scheduling contexts whose head refill is due at `now`.
    /// The release list is sorted by that time, so this looks at the due ones and the
    /// first that is not.
    /// This core's list: each core releases its own scheduling contexts, at its timer.
    pub(in crate::kernel) fn release_due(&mut self, now: u64) {
        while let Some(sc) = self.core.release_head
            && sc.get().release_time() <= now
        {
            self.unlink_release(None, sc);
            if self.tracing(Class::BUDGET) {
                let s = sc.get();
                self.record(Event::BudgetReplenished, trace::tid(s.tcb), s.head_amount(), 0);
            }
            if let Some(t) = sc.get().tcb
                && t.get().state.is_running()
            {
                self.enqueue(t, false);
            }
        }
    }

    /// The release list of `sc`'s core.
    fn release_list(&mut self, sc: Ptr<SchedContext>) -> &mut Option<Ptr<SchedContext>> {
        &mut self.state_mut(usize::from(sc.get().cpu)).release_head
    }

    pub(in crate::kernel) fn unlink_release(&mut self, prev: Option<Ptr<SchedContext>>, sc: Ptr<SchedContext>) {
        let s = sc.get();
        match prev {
            Some(p) => p.get().release_next = s.release_next,
            None => *self.release_list(sc) = s.release_next,
        }
        s.release_next = None;
        s.throttled = false;
    }

    /// Take `sc` off its core's release list (it is being destroyed or reconfigured).
    pub(in crate::kernel) fn sc_forget(&mut self, sc: Ptr<SchedContext>) {
        let mut prev = None;
        let mut cur = *self.release_list(sc);
        while let Some(c) = cur {
            if c == sc {
                self.unlink_release(prev, sc);
                return;
            }
            prev = cur;
            cur = c.get().release_next;
        }
    }

    /// `t` lost its scheduling context (unbound, or the scheduling context destroyed):
    /// it is no longer budgeted, and goes back to the core chosen for it.
    pub(in crate::kernel) fn sc_unbound(&mut self, t: Ptr<Tcb>) {
        self.settle_current();
        // Running on another core: stopped there (and queued) first.
        self.settle(t);
        if t.get().state.is_running() {
            self.enqueue(t, false);
        }
        let home = usize::from(t.get().affinity);
        self.migrate(t, home);
    }

    /// True if `t` has a scheduling context with a budget (one that must be charged).
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(in crate::kernel) fn budgeted(&self, t: Ptr<Tcb>) -> bool {
        t.get().sched_context.is_some_and(|sc| sc.get().budget != 0)
    }

    /// True if `t` is out of budget.
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    pub(in crate::kernel) fn throttled(&self, t: Ptr<Tcb>) -> bool {
        t.get().sched_context.is_some_and(|sc| sc.get().throttled)
    }

    pub(in crate::kernel) fn us_to_ticks(&self, us: u64) -> u64 {
        (u128::from(us) * u128::from(self.platform.counter_hz()) / 1_000_000) as u64
    }

    pub(in crate::kernel) fn ticks_to_us(&self, ticks: u64) -> u64 {
        let hz = self.platform.counter_hz().max(1);
        (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64
    }

    /// Keep `t` off the run queue until its scheduling context's head refill is due.
    pub(in crate::kernel) fn throttle_quietly(&mut self, t: Ptr<Tcb>, sc: Ptr<SchedContext>) {
        self.release_insert(sc);
        self.dequeue(t);
    }

    /// Mark `sc` throttled and put it into its core's release list, sorted by release
    /// time (after its equals: FIFO). A new head on another core changes that core's
    /// next deadline: it is told with an IPI.
    fn release_insert(&mut self, sc: Ptr<SchedContext>) {
        let s = sc.get();
        s.throttled = true;
        let time = s.release_time();
        let mut prev: Option<Ptr<SchedContext>> = None;
        let mut next = *self.release_list(sc);
        while let Some(n) = next
            && n.get().release_time() <= time
        {
            prev = next;
            next = n.get().release_next;
        }
        s.release_next = next;
        if let Some(p) = prev {
            p.get().release_next = Some(sc);
        } else {
            *self.release_list(sc) = Some(sc);
            let cpu = usize::from(s.cpu) % MAX_CORES;
            if cpu != self.here() {
                self.core.ipis |= 1 << cpu;
            }
        }
    }
}
