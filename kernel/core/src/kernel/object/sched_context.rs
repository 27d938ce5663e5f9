//! Scheduling contexts: budget and period, kept with sporadic-server refills (the rule
//! is explained in `sched/budget.rs`), and their invocations.

use gaon_abi::invocation::{SchedContextBindArgs, SchedContextConsumedReply, SchedControlConfigureArgs};
use gaon_abi::{Error, Label, ObjType};

use super::Args;
use super::tcb::Tcb;
use crate::kernel::{Kernel, Platform};
use crate::obj::Ptr;

/// Refills a scheduling context can hold (sporadic-server replenishments).
pub const MAX_REFILLS: usize = 8;

/// One replenishment: `amount` of budget usable from time `time`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Refill {
    /// When it becomes usable (counter ticks).
    pub time: u64,
    /// How much (counter ticks).
    pub amount: u64,
}

/// A scheduling context.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SchedContext {
    /// Budget per period (counter ticks); 0 = not configured.
    pub(crate) budget: u64,
    /// Period (counter ticks).
    pub(crate) period: u64,
    /// Badge reported in timeout faults.
    pub(crate) badge: u64,
    /// The bound thread.
    pub(crate) tcb: Option<Ptr<Tcb>>,
    /// Time consumed since the last `Consumed` query.
    pub(crate) consumed: u64,
    /// The counter value of its last charge: when its thread last stopped running,
    /// or was last charged while running (a timer interrupt, a `Consumed` query).
    pub(crate) charged_at: u64,
    /// Refills in a ring: `head` is the next to use.
    pub(crate) refills: [Refill; MAX_REFILLS],
    /// Index of the first refill.
    pub(crate) head: u8,
    /// Number of refills in use.
    pub(crate) count: u8,
    /// Out of budget until its head refill comes due.
    pub(crate) throttled: bool,
    /// The core it belongs to (its SchedControl's): its thread runs there, and it waits
    /// in that core's release list.
    pub(crate) cpu: u8,
    /// Next throttled scheduling context (the kernel's release list).
    pub(crate) release_next: Option<Ptr<SchedContext>>,
}
static_assertions::const_assert!(core::mem::size_of::<SchedContext>() <= 1 << gaon_abi::object::SCHED_CONTEXT_BITS);

impl SchedContext {
    /// True if the thread may run at `now`.
    pub fn available(&self, now: u64) -> bool {
        if self.budget == 0 {
            return true;
        }
        self.count > 0 && {
            let h = self.refills[usize::from(self.head)];
            h.time <= now && h.amount > 0
        }
    }

    fn tail_index(&self) -> usize {
        (usize::from(self.head) + usize::from(self.count) - 1) % MAX_REFILLS
    }

    fn index(&self, i: usize) -> usize {
        (usize::from(self.head) + i) % MAX_REFILLS
    }

    /// Set budget and period; one full refill due now.
    pub fn configure(&mut self, budget: u64, period: u64, now: u64) {
        self.budget = budget;
        self.period = period;
        self.refills = [Refill::default(); MAX_REFILLS];
        self.refills[0] = Refill {
            time: now,
            amount: budget,
        };
        self.head = 0;
        self.count = 1;
    }

    /// Charge `used` ticks of run time, up to `now` (counted in
    /// [`SchedContext::consumed`]).
    pub fn charge(&mut self, used: u64, now: u64) {
        if self.budget == 0 || self.count == 0 {
            return;
        }
        self.charged_at = now;
        self.consumed = self.consumed.saturating_add(used);
        self.spend(used, now);
    }

    /// Give up what is left of the head refill (a `YieldBudget`) at `now`: it is spent
    /// as if it had been used, but not counted as consumed CPU time.
    pub fn forfeit_head(&mut self, now: u64) {
        if self.budget == 0 || self.count == 0 {
            return;
        }
        self.spend(self.head_amount(), now);
    }

    /// Take `used` ticks, run until `now`, from the refills that are due, head first;
    /// each amount taken comes back one period after the refill it came from became
    /// due (the sporadic-server rule). Run time beyond the due refills (an overrun: the
    /// interrupt that ends a budget comes a little late) delays the next refill by as
    /// much, so over time the thread gets no more than its budget per period.
    fn spend(&mut self, used: u64, now: u64) {
        let mut left = used;
        while left > 0 && self.count > 0 {
            let h = usize::from(self.head);
            let Refill { time, amount } = self.refills[h];
            if time > now {
                break;
            }
            let take = left.min(amount);
            left -= take;
            self.refills[h].amount -= take;
            if self.refills[h].amount == 0 {
                self.head = ((h + 1) % MAX_REFILLS) as u8;
                self.count -= 1;
            }
            self.schedule_used(time.saturating_add(self.period), take);
        }
        if left > 0 && self.count > 0 {
            let h = usize::from(self.head);
            self.refills[h].time = self.refills[h].time.saturating_add(left);
            // Keep the refills in time order: a head pushed past the next one joins it.
            while self.count > 1 && self.refills[usize::from(self.head)].time > self.refills[self.index(1)].time {
                let (h, n) = (usize::from(self.head), self.index(1));
                self.refills[n].amount += self.refills[h].amount;
                self.refills[n].time = self.refills[h].time;
                self.head = n as u8;
                self.count -= 1;
            }
        }
    }

    /// Add a refill of `amount` at `time` (never earlier than the last refill's). One
    /// that starts before the last refill ends joins it (used back to back, they are
    /// the same window); with the ring full, it joins the last refill, which then
    /// comes at the later time.
    fn schedule_used(&mut self, time: u64, amount: u64) {
        if amount == 0 {
            return;
        }
        if self.count > 0 {
            let t = self.tail_index();
            let tail = self.refills[t];
            if time <= tail.time.saturating_add(tail.amount) || usize::from(self.count) == MAX_REFILLS {
                self.refills[t].amount += amount;
                if time > tail.time.saturating_add(tail.amount) {
                    // Full ring: the merged refill waits for the later time.
                    self.refills[t].time = time;
                }
                return;
            }
        }
        let t = self.index(usize::from(self.count));
        self.refills[t] = Refill { time, amount };
        self.count += 1;
    }

    /// What is left of the head refill: how long the thread may run from the last
    /// charge before it is out of budget (when the head is due).
    pub fn head_amount(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.refills[usize::from(self.head)].amount
        }
    }

    /// When a throttled context may run again: its head refill's time (the head is
    /// never empty while it has a budget: charging removes emptied refills).
    pub fn release_time(&self) -> u64 {
        if self.count == 0 {
            u64::MAX
        } else {
            self.refills[usize::from(self.head)].time
        }
    }

    /// Sum of all refills (always the budget).
    pub fn total(&self) -> u64 {
        (0..usize::from(self.count))
            .map(|i| self.refills[(usize::from(self.head) + i) % MAX_REFILLS].amount)
            .sum()
    }
}

// ---- invocations ---------------------------------------------------------------------

/// Longest period: one hour.
const MAX_PERIOD_US: u64 = 3_600_000_000;
/// Shortest budget. The timer is programmed for the end of a budget, so a budget must
/// be long enough to run something between two kernel entries.
pub const MIN_BUDGET_US: u64 = 10;

/// A checked SchedControl invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum ControlOp {
    /// Give `sc` this budget and period (µs) and timeout-fault badge, on core `cpu`
    /// (the SchedControl's).
    Configure {
        sc: Ptr<SchedContext>,
        budget: u64,
        period: u64,
        badge: u64,
        cpu: u8,
    },
}

/// A checked SchedContext invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    Bind(Ptr<Tcb>),
    Unbind(Ptr<Tcb>),
    Consumed,
}

impl<P: Platform> Kernel<P> {
    /// `control`: the SchedControl cap's badge word, its core.
    pub(super) fn decode_sched_control(
        &self,
        t: Ptr<Tcb>,
        control: u64,
        label: Label,
        a: &Args,
    ) -> Result<ControlOp, Error> {
        if label != Label::SchedControlConfigure {
            return Err(Error::UnknownInvocation);
        }
        let SchedControlConfigureArgs {
            sched_context: sc_cptr,
            budget_us: budget,
            period_us: period,
            badge,
        } = a.decode()?;
        let (_, cap) = self.lookup_typed(t, sc_cptr, ObjType::SchedContext)?;
        if budget < MIN_BUDGET_US || budget > period || period > MAX_PERIOD_US {
            return Err(Error::RangeError);
        }
        // Only the kernel makes SchedControl caps, one for each core that came up.
        let cpu = u8::try_from(control).map_err(|_| Error::InvalidCapability)?;
        Ok(ControlOp::Configure {
            sc: cap.sched_context(),
            budget,
            period,
            badge,
            cpu,
        })
    }

    pub(super) fn perform_sched_control(&mut self, op: ControlOp) -> usize {
        let ControlOp::Configure {
            sc,
            budget,
            period,
            badge,
            cpu,
        } = op;
        let bound = sc.get().tcb;
        if let Some(b) = bound {
            // Running nowhere else for the change.
            self.settle(b);
            if self.current() == Some(b) {
                // From now on it is charged as configured now.
                self.core.last_charge = self.platform.now();
            }
        }
        self.sc_forget(sc);
        let now = self.platform.now();
        let (budget_ticks, period_ticks) = (self.us_to_ticks(budget).max(1), self.us_to_ticks(period).max(1));
        let s = sc.get();
        s.configure(budget_ticks, period_ticks, now);
        s.badge = badge;
        s.cpu = cpu;
        if let Some(b) = bound {
            // Its thread runs on the scheduling context's core.
            self.migrate(b, usize::from(cpu));
            if b.get().state.is_running() {
                self.enqueue(b, false);
            }
        }
        0
    }

    pub(super) fn decode_sched_context(
        &self,
        t: Ptr<Tcb>,
        sc: Ptr<SchedContext>,
        label: Label,
        a: &Args,
    ) -> Result<Op, Error> {
        match label {
            Label::SchedContextBind => {
                let (_, tc) = self.lookup_typed(t, a.decode::<SchedContextBindArgs>()?.tcb, ObjType::Tcb)?;
                let target = tc.tcb();
                if sc.get().tcb.is_some() || target.get().sched_context.is_some() {
                    return Err(Error::IllegalOperation);
                }
                Ok(Op::Bind(target))
            }
            Label::SchedContextUnbind => Ok(Op::Unbind(sc.get().tcb.ok_or(Error::IllegalOperation)?)),
            Label::SchedContextConsumed => Ok(Op::Consumed),
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_sched_context(&mut self, t: Ptr<Tcb>, sc: Ptr<SchedContext>, op: Op) -> usize {
        match op {
            Op::Bind(target) => {
                self.settle(target);
                if self.current() == Some(target) {
                    // From now on it is charged; it ran unbudgeted until now.
                    self.core.last_charge = self.platform.now();
                }
                sc.get().tcb = Some(target);
                target.get().sched_context = Some(sc);
                if sc.get().budget != 0 {
                    // A configured scheduling context places its thread on its core.
                    self.migrate(target, usize::from(sc.get().cpu));
                }
                let now = self.platform.now();
                if sc.get().throttled {
                    // Still waiting for its refill (its last thread was deleted or
                    // unbound while throttled): the new thread waits with it.
                    self.dequeue(target);
                } else if !sc.get().available(now) {
                    self.throttle_quietly(target, sc);
                }
                0
            }
            Op::Unbind(target) => {
                self.settle(target);
                sc.get().tcb = None;
                target.get().sched_context = None;
                self.sc_forget(sc);
                // Back to the core chosen for the thread itself.
                self.sc_unbound(target);
                0
            }
            Op::Consumed => {
                // Up to now: a thread asking about its own scheduling context is charged
                // first (and throttled, with its timeout fault, if that ends its budget;
                // it sees this reply when it runs again).
                if let Some(bound) = sc.get().tcb
                    && self.core.current == Some(bound)
                {
                    let now = self.platform.now();
                    let _ = self.charge(bound, now);
                } else if let Some(bound) = sc.get().tcb {
                    // Running on another core: stopped there, which charges it.
                    self.settle(bound);
                }
                let consumed_ticks = core::mem::take(&mut sc.get().consumed);
                let consumed_us = self.ticks_to_us(consumed_ticks);
                let charged_at = sc.get().charged_at;
                super::reply_with(
                    t,
                    &SchedContextConsumedReply {
                        consumed_us,
                        consumed_ticks,
                        charged_at,
                    },
                )
            }
        }
    }
}
