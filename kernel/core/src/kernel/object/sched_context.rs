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
    /// Refills in a ring: `head` is the next to use.
    pub(crate) refills: [Refill; MAX_REFILLS],
    /// Index of the first refill.
    pub(crate) head: u8,
    /// Number of refills in use.
    pub(crate) count: u8,
    /// Out of budget until its head refill comes due.
    pub(crate) throttled: bool,
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

    /// Charge `used` ticks of run time.
    pub fn charge(&mut self, used: u64) {
        if self.budget == 0 || self.count == 0 {
            return;
        }
        self.consumed = self.consumed.saturating_add(used);
        let mut used = used.min(self.budget);
        while used > 0 {
            let h = usize::from(self.head);
            let take = used.min(self.refills[h].amount);
            let due = self.refills[h].time.saturating_add(self.period);
            self.refills[h].amount -= take;
            used -= take;
            if self.refills[h].amount == 0 {
                self.head = ((h + 1) % MAX_REFILLS) as u8;
                self.count -= 1;
            }
            if take > 0 {
                if usize::from(self.count) == MAX_REFILLS || (self.count > 0 && take < self.budget / 64) {
                    // Full ring, or a sliver: fold into the last refill.
                    let t = self.tail_index();
                    self.refills[t].amount += take;
                    self.refills[t].time = self.refills[t].time.max(due);
                } else {
                    let t = (usize::from(self.head) + usize::from(self.count)) % MAX_REFILLS;
                    self.refills[t] = Refill {
                        time: due,
                        amount: take,
                    };
                    self.count += 1;
                }
            }
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

/// A checked SchedControl invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum ControlOp {
    /// Give `sc` this budget and period (µs) and timeout-fault badge.
    Configure {
        sc: Ptr<SchedContext>,
        budget: u64,
        period: u64,
        badge: u64,
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
    pub(super) fn decode_sched_control(&self, t: Ptr<Tcb>, label: Label, a: &Args) -> Result<ControlOp, Error> {
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
        if budget == 0 || budget > period || period > MAX_PERIOD_US {
            return Err(Error::RangeError);
        }
        Ok(ControlOp::Configure {
            sc: cap.sched_context(),
            budget,
            period,
            badge,
        })
    }

    pub(super) fn perform_sched_control(&mut self, op: ControlOp) -> usize {
        let ControlOp::Configure {
            sc,
            budget,
            period,
            badge,
        } = op;
        self.sc_forget(sc);
        let now = self.platform.now();
        let (budget_ticks, period_ticks) = (self.us_to_ticks(budget).max(1), self.us_to_ticks(period).max(1));
        let s = sc.get();
        s.configure(budget_ticks, period_ticks, now);
        s.badge = badge;
        if s.tcb.is_some() && s.tcb == self.current {
            // From now on it is charged; it ran unbudgeted until now.
            self.last_charge = now;
        }
        self.settle_current();
        if let Some(bound) = s.tcb
            && bound.get().state.is_running()
        {
            self.rq.enqueue(bound, false);
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
                sc.get().tcb = Some(target);
                target.get().sched_context = Some(sc);
                let now = self.platform.now();
                if self.current == Some(target) {
                    self.last_charge = now;
                }
                if sc.get().throttled {
                    // Still waiting for its refill (its last thread was deleted or
                    // unbound while throttled): the new thread waits with it.
                    self.rq.dequeue(target);
                } else if !sc.get().available(now) {
                    self.throttle_quietly(target, sc);
                }
                0
            }
            Op::Unbind(target) => {
                sc.get().tcb = None;
                target.get().sched_context = None;
                self.sc_forget(sc);
                self.sc_unbound(target);
                0
            }
            Op::Consumed => {
                let consumed_us = self.ticks_to_us(core::mem::take(&mut sc.get().consumed));
                super::reply_with(t, &SchedContextConsumedReply { consumed_us })
            }
        }
    }
}
