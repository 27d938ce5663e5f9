//! The policy server's side of the policy, hardware-free: what the scheduling policy
//! server (`servers/sched/server`) does with each event it gets, and how the policy's
//! answers become kernel settings. The kernel operations go through [`Kernel`], which
//! the server implements with capabilities and the host tests with a model.
//!
//! # The mapping onto kernel mechanisms
//!
//! Every managed vCPU thread has a scheduling context (the server's) and a priority in
//! a band of four below the server's: `top` for LL-boost, `top - 1` BOOST, `top - 2`
//! UNDER and `top - 3` OVER (a parked, capped vCPU stays at OVER's: its cap is its
//! scheduling context's budget). The kernel dispatches by priority, round-robin within
//! one; the server changes priorities and budgets only at its events:
//!
//! - **Tick** (every [`TICK_NS`], its own timer): every vCPU's consumed time and last
//!   charge (`SchedContextConsumed`); the vCPU charged at or after the tick's time is
//!   the one the tick preempted (the server outranks every vCPU): it is debited (tick
//!   debit), loses BOOST and goes behind its equals (its priority is set again, which
//!   queues it last). Every third tick is the accounting. Then every vCPU's class is
//!   applied.
//! - **LL-boost** (`ll_enter`, a guest's hypercall forwarded by its VMM): the
//!   scheduling context gets budget SBT per period USBT and the thread the top
//!   priority. The kernel dispatches it before every other vCPU and throttles it when
//!   SBT is spent, sending a timeout fault to the server ([`Manager::timeout`]), which
//!   gives it its credit class and a budget as good as none until its next window
//!   ([`Manager::deadline`] wakes the server then).
//! - **I/O wake-ups** (`io_wake`, from the VMM when it injects a device's interrupt):
//!   an UNDER vCPU becomes BOOST until a tick finds it running. The server does not see
//!   other wake-ups or blocks (a guest's WFI waits in the kernel).
//! - **Caps**: a capped vCPU's scheduling context has budget `cap %` of [`TICK_NS`]
//!   per tick, so the kernel enforces the cap exactly.
//!
//! Outside LL-boost a scheduling context has budget and period of an hour
//! ([`UNBUDGETED_NS`]): the kernel counts only configured scheduling contexts' time.

use heapless::Vec;

use crate::admit::Reservation;
use crate::credit::{
    AddError, Class, Config, CoreId, LlError, LlState, MAX_VCPUS, Scheduler, TICK_NS, VcpuId, VcpuParams,
};
use crate::migrate::Move;

/// How often accounting comes, in ticks (30 ms).
const TICKS_PER_ACCT: u64 = 3;
/// The budget and period of a scheduling context outside LL-boost and without a cap:
/// an hour, as good as none, while the kernel still counts the time consumed.
pub const UNBUDGETED_NS: u64 = 3_600_000_000_000;
/// VMs one server manages at most (`gaon_abi::system::MAX_SCHED_VMS`).
pub const MAX_VMS: usize = 8;

/// What the manager needs from the kernel. Times are nanoseconds of the server's clock.
pub trait Kernel {
    /// Set the priority of `v`'s thread (its place: last among its equals).
    fn set_priority(&mut self, v: VcpuId, priority: u8) -> bool;
    /// Give `v`'s scheduling context `budget_ns` per `period_ns`, a full refill now.
    fn configure(&mut self, v: VcpuId, budget_ns: u64, period_ns: u64) -> bool;
    /// The time `v` consumed since it was last asked, and the time of its last
    /// charge; `None` if its thread is gone (its VMM was reclaimed).
    fn usage(&mut self, v: VcpuId) -> Option<(u64, u64)>;
    /// True if `v`'s thread is runnable: running or waiting for a CPU (not waiting in
    /// WFI, nor for its VMM).
    fn runnable(&mut self, v: VcpuId) -> bool;
    /// Move `v` to `core`: its scheduling context configured through that core's
    /// SchedControl, `budget_ns` per `period_ns` (a full refill now).
    fn move_to(&mut self, v: VcpuId, core: u8, budget_ns: u64, period_ns: u64) -> bool;
}

/// One managed VM, as the system description says (`gaon_abi::system::SchedVm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmParams {
    /// Its VMM's badge on the server's channel.
    pub badge: u64,
    /// Its vCPUs.
    pub vcpus: u8,
    /// The core of vCPU 0; vCPU n runs on core `(core + n) % cores`.
    pub core: u8,
    /// Credit weight.
    pub weight: u16,
    /// Cap in percent of a core, 0 = none.
    pub cap_pct: u8,
    /// LL-boost reservation per vCPU.
    pub ll: Option<Reservation>,
}

/// Server-wide settings (from the description's `[sched]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The LL-boost priority; the other classes are the three below.
    pub top: u8,
    /// Cores of the board.
    pub cores: u8,
    /// LL-boost requests are served (else `Denied`).
    pub ll_boost: bool,
    /// No policy: the manager only measures (priorities stay as the VMMs set them,
    /// nothing is budgeted; `ll_boost` is then off).
    pub fixed: bool,
    /// Balance the cores at each accounting: LL-boost-first migration
    /// ([`crate::migrate`]). Off, every vCPU stays on the core its VMM put it on.
    pub balance: bool,
    /// The credit policy's settings (debit, borrowing).
    pub config: Config,
}

/// A vCPU's scheduling state, as [`Manager::state`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuState {
    /// Its class.
    pub class: Class,
    /// Its credit (ns).
    pub credit_ns: i64,
    /// LL-boost time left in its window (ns, as the policy knows it: the kernel's
    /// count is exact); 0 outside LL-boost.
    pub ll_left_ns: u64,
    /// When it may enter LL-boost again; 0: now (or it was never refused).
    pub retry_at: u64,
}

/// Why a request was refused (`idl/sched.idl`'s `SchedError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No such VM or vCPU.
    NoSuchVcpu,
    /// Registered already.
    Registered,
    /// Not registered.
    NotRegistered,
    /// No LL-boost for it.
    Denied,
    /// Not before its last window is over.
    TooEarly,
    /// The kernel refused to set it up, or the policy could not take it (admission, a
    /// full table).
    Refused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Budget SBT per USBT.
    Ll,
    /// A cap's budget, or none.
    Credit,
}

#[derive(Clone, Copy, Debug)]
struct Managed {
    badge: u64,
    vcpu: u8,
    home: CoreId,
    mode: Mode,
    priority: u8,
    gone: bool,
    /// CPU time consumed, in all and in LL-boost, and LL-boost windows entered.
    usage: Usage,
}

/// What one managed vCPU used, as the kernel counted it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time consumed since it was registered (ns).
    pub consumed_ns: u64,
    /// Of that, in LL-boost: while its scheduling context had the LL-boost budget.
    pub ll_ns: u64,
    /// LL-boost windows it was given the LL-boost budget for (one per entry, and one
    /// each time a spent window was followed by a new one).
    pub windows: u64,
}

/// The scheduling policy, applied through the kernel.
#[derive(Debug)]
pub struct Manager {
    sched: Scheduler,
    settings: Settings,
    vms: Vec<VmParams, MAX_VMS>,
    vcpus: Vec<Managed, MAX_VCPUS>,
    next_tick: u64,
    ticks: u64,
    /// The last migration, for the server to report (taken by [`Manager::take_move`]).
    moved: Option<Move>,
    /// The move the last accounting planned, not made yet.
    planned: Option<Move>,
    /// The time of the event being handled.
    now: u64,
}

impl Manager {
    /// A manager of `vms` from `now` (its first tick is a tick later).
    pub fn new(settings: Settings, vms: &[VmParams], now: u64) -> Self {
        let mut list = Vec::new();
        for v in vms.iter().take(MAX_VMS) {
            let _ = list.push(*v);
        }
        Self {
            sched: Scheduler::new(settings.cores, settings.config),
            settings,
            vms: list,
            vcpus: Vec::new(),
            next_tick: now + TICK_NS,
            ticks: 0,
            moved: None,
            planned: None,
            now,
        }
    }

    /// The policy (for reports and tests).
    pub fn policy(&self) -> &Scheduler {
        &self.sched
    }

    /// The vCPU `vcpu` of the VM with `badge`, if registered.
    pub fn find(&self, badge: u64, vcpu: u8) -> Option<VcpuId> {
        let i = self
            .vcpus
            .iter()
            .position(|m| m.badge == badge && m.vcpu == vcpu && !m.gone)?;
        Some(VcpuId(i as u8))
    }

    /// The VM with `badge`.
    fn vm(&self, badge: u64) -> Option<&VmParams> {
        self.vms.iter().find(|v| v.badge == badge)
    }

    /// True if the VM with `badge` has a vCPU `vcpu`.
    pub fn exists(&self, badge: u64, vcpu: u8) -> bool {
        self.vm(badge).is_some_and(|vm| vcpu < vm.vcpus)
    }

    /// Manage vCPU `vcpu` of the VM with `badge`, which runs on `home` (where its VMM
    /// placed its thread), from `now`. The caller gave the thread a scheduling context
    /// (configured on `home` by [`Kernel::configure`]); it gets its class's priority
    /// and budget.
    pub fn add(&mut self, k: &mut impl Kernel, badge: u64, vcpu: u8, home: u8, now: u64) -> Result<VcpuId, Error> {
        self.now = self.now.max(now);
        if !self.exists(badge, vcpu) {
            return Err(Error::NoSuchVcpu);
        }
        if home >= self.settings.cores {
            return Err(Error::Refused);
        }
        if self.find(badge, vcpu).is_some() {
            return Err(Error::Registered);
        }
        let vm = *self.vm(badge).ok_or(Error::NoSuchVcpu)?;
        let mut params = VcpuParams::new(CoreId(home)).weight(vm.weight).cap(vm.cap_pct);
        if let (Some(r), true) = (vm.ll, self.settings.ll_boost) {
            params = params.ll(r).soft_rt();
        }
        // The image tool admitted the description's reservations; a refusal here
        // (a full table, or a VMM made again whose old vCPUs still count) is refused.
        let v = self.sched.add_vcpu(params).map_err(|_: AddError| Error::Refused)?;
        self.vcpus
            .push(Managed {
                badge,
                vcpu,
                home: CoreId(home),
                mode: Mode::Credit,
                priority: 0,
                gone: false,
                usage: Usage::default(),
            })
            .map_err(|_| Error::Refused)?;
        // Runnable from the start: the kernel, not the policy, knows when it waits.
        self.sched.wake(v, now, false);
        let budget = self.credit_budget(v);
        if !k.configure(v, budget.0, budget.1) || !self.apply(k, v, true) {
            self.vcpus[v.index()].gone = true;
            self.sched.retire(v, now);
            return Err(Error::Refused);
        }
        Ok(v)
    }

    /// The budget and period of `v` outside LL-boost.
    fn credit_budget(&self, v: VcpuId) -> (u64, u64) {
        match self.sched.params(v) {
            Some(p) if p.cap_pct != 0 => (TICK_NS * u64::from(p.cap_pct) / 100, TICK_NS),
            _ => (UNBUDGETED_NS, UNBUDGETED_NS),
        }
    }

    /// The priority of `class`.
    const fn priority(&self, class: Class) -> u8 {
        let down = match class {
            Class::LlBoost => 0,
            Class::Boost => 1,
            Class::Under => 2,
            Class::Over | Class::Parked => 3,
        };
        self.settings.top.saturating_sub(down)
    }

    /// Give `v` the kernel settings of its class; `requeue`: set its priority even if
    /// unchanged (it goes behind its equals). False if the kernel refused.
    fn apply(&mut self, k: &mut impl Kernel, v: VcpuId, requeue: bool) -> bool {
        let Some(m) = self.vcpus.get(v.index()).copied().filter(|m| !m.gone) else {
            return true;
        };
        if self.settings.fixed {
            return true;
        }
        let class = self.sched.class(v).unwrap_or(Class::Over);
        let mode = if class == Class::LlBoost {
            Mode::Ll
        } else {
            Mode::Credit
        };
        let mut ok = true;
        if mode != m.mode {
            // The time so far was consumed in the old mode.
            self.take_usage(k, v);
            if mode == Mode::Ll {
                self.vcpus[v.index()].usage.windows += 1;
            }
            let (budget, period) = match (mode, self.sched.params(v).and_then(|p| p.ll)) {
                (Mode::Ll, Some(r)) => (r.sbt_ns, r.usbt_ns),
                _ => self.credit_budget(v),
            };
            ok &= k.configure(v, budget, period);
        }
        let priority = self.priority(class);
        if requeue || priority != m.priority {
            ok &= k.set_priority(v, priority);
        }
        let m = &mut self.vcpus[v.index()];
        (m.mode, m.priority) = (mode, priority);
        ok
    }

    /// Apply every vCPU's class; `requeued` is set again even if unchanged, last.
    fn apply_all(&mut self, k: &mut impl Kernel, requeued: &[Option<VcpuId>]) {
        for i in 0..self.vcpus.len() {
            let v = VcpuId(i as u8);
            if !requeued.contains(&Some(v)) {
                self.apply(k, v, false);
            }
        }
        for v in requeued.iter().flatten() {
            self.apply(k, *v, true);
        }
    }

    /// The guest of vCPU `vcpu` asks for LL-boost at `now`.
    pub fn ll_enter(&mut self, k: &mut impl Kernel, badge: u64, vcpu: u8, now: u64) -> Result<(), Error> {
        self.now = self.now.max(now);
        let v = self.registered(badge, vcpu)?;
        if !self.settings.ll_boost || self.settings.fixed {
            return Err(Error::Denied);
        }
        match self.sched.ll_request(v, now) {
            Ok(_) => {
                self.apply(k, v, false);
                Ok(())
            }
            Err(LlError::NoReservation | LlError::NoSuchVcpu) => Err(Error::Denied),
            Err(LlError::TooEarly { .. }) => Err(Error::TooEarly),
        }
    }

    /// The guest of vCPU `vcpu` leaves LL-boost at `now`.
    pub fn ll_leave(&mut self, k: &mut impl Kernel, badge: u64, vcpu: u8, now: u64) -> Result<(), Error> {
        self.now = self.now.max(now);
        let v = self.registered(badge, vcpu)?;
        self.sched.ll_leave(v, now);
        self.apply(k, v, false);
        Ok(())
    }

    /// vCPU `vcpu`'s state at `now` (the guest's `SCHED_STATE`).
    pub fn state(&mut self, badge: u64, vcpu: u8, now: u64) -> Result<VcpuState, Error> {
        let v = self.registered(badge, vcpu)?;
        self.sched.advance(now);
        let class = self.sched.class(v).unwrap_or(Class::Over);
        let credit_ns = self.sched.credit(v).unwrap_or(0);
        let r = self.sched.params(v).and_then(|p| p.ll);
        let (ll_left_ns, retry_at) = match (self.sched.ll_state(v), r) {
            (Some(LlState::In { used_ns, .. }), Some(r)) => (r.sbt_ns.saturating_sub(used_ns), 0),
            (Some(LlState::Out { entered }), Some(r)) if now < entered + r.usbt_ns => (0, entered + r.usbt_ns),
            _ => (0, 0),
        };
        Ok(VcpuState {
            class,
            credit_ns,
            ll_left_ns,
            retry_at,
        })
    }

    /// The VMM injected a device's interrupt into vCPU `vcpu` at `now`.
    pub fn io_wake(&mut self, k: &mut impl Kernel, badge: u64, vcpu: u8, now: u64) {
        self.now = self.now.max(now);
        let Ok(v) = self.registered(badge, vcpu) else { return };
        // The server sees no blocks: each I/O wake-up counts as a wake-up from blocked.
        self.sched.block(v, now);
        self.sched.wake(v, now, true);
        self.apply(k, v, false);
    }

    /// `v`'s scheduling context ran out of budget at `now` (its timeout fault): in
    /// LL-boost, its window's SBT is spent.
    pub fn timeout(&mut self, k: &mut impl Kernel, v: VcpuId, now: u64) {
        self.now = self.now.max(now);
        if v.index() >= self.vcpus.len() {
            return;
        }
        self.sched.ll_spent(v, now);
        self.apply(k, v, false);
    }

    /// The server's timer fired at `now`: the ticks and accountings due, LL-boost
    /// windows that began. Call it whenever [`Manager::deadline`] has passed.
    pub fn timer(&mut self, k: &mut impl Kernel, now: u64) {
        self.now = self.now.max(now);
        let mut requeued: Vec<Option<VcpuId>, { crate::credit::MAX_CORES }> = Vec::new();
        if now >= self.next_tick {
            let at = self.next_tick;
            // A server that was kept from its timer catches up with one tick.
            self.next_tick = now - (now - at) % TICK_NS + TICK_NS;
            requeued = self.tick(k, at, now);
            self.ticks += 1;
            if self.ticks.is_multiple_of(TICKS_PER_ACCT) {
                self.sched.account(now);
                if self.settings.balance && !self.settings.fixed {
                    self.moved = self.rebalance(k);
                }
            }
        }
        self.sched.advance(now);
        self.apply_all(k, &requeued);
    }

    /// One tick at `at` (handled at `now`): who ran at `at` on each core, debits.
    /// Returns the vCPUs found running (to go behind their equals).
    fn tick(&mut self, k: &mut impl Kernel, at: u64, now: u64) -> Vec<Option<VcpuId>, { crate::credit::MAX_CORES }> {
        let mut running: Vec<Option<VcpuId>, { crate::credit::MAX_CORES }> = Vec::new();
        for _ in 0..self.settings.cores {
            let _ = running.push(None);
        }
        for i in 0..self.vcpus.len() {
            let v = VcpuId(i as u8);
            if self.vcpus[i].gone {
                continue;
            }
            let Some((consumed, charged_at)) = self.take_usage(k, v) else {
                continue;
            };
            // The server sees no wake-ups and blocks: each tick samples them, for the
            // cores' loads (balancing) and the end of BOOST at a block.
            if k.runnable(v) {
                self.sched.wake(v, now, false);
            } else {
                self.sched.block(v, now);
            }
            if consumed > 0
                && charged_at >= at
                && let Some(slot) = running.get_mut(self.vcpus[i].home.index())
            {
                *slot = Some(v);
            }
        }
        for (core, r) in running.iter().enumerate() {
            self.sched.set_running(CoreId(core as u8), *r);
            self.sched.tick(CoreId(core as u8), now);
        }
        running
    }

    /// One LL-boost-first balancing step, made in the kernel: the vCPU's scheduling
    /// context goes to the target core with its mode's budget. A move is made only when
    /// two accountings in a row plan it (the loads are sampled at ticks, three per
    /// accounting: one noisy sample must not move a vCPU back and forth). A move the
    /// kernel refuses is taken back.
    fn rebalance(&mut self, k: &mut impl Kernel) -> Option<Move> {
        let (loads, vcpus) = self.sched.loads();
        let planned = crate::migrate::plan(&loads, &vcpus);
        let previous = core::mem::replace(&mut self.planned, planned);
        let m = planned.filter(|&m| previous == Some(m))?;
        self.planned = None;
        self.sched.migrate(m.vcpu, m.to).ok()?;
        let mode = self.vcpus.get(m.vcpu.index())?.mode;
        let (budget, period) = match (mode, self.sched.params(m.vcpu).and_then(|p| p.ll)) {
            (Mode::Ll, Some(r)) => (r.sbt_ns, r.usbt_ns),
            _ => self.credit_budget(m.vcpu),
        };
        // The time so far was consumed where it was.
        self.take_usage(k, m.vcpu);
        if k.move_to(m.vcpu, m.to.0, budget, period) {
            self.vcpus[m.vcpu.index()].home = m.to;
            Some(m)
        } else {
            let _ = self.sched.migrate(m.vcpu, m.from);
            None
        }
    }

    /// The migration the last accounting made, if any (once).
    pub fn take_move(&mut self) -> Option<Move> {
        self.moved.take()
    }

    /// When the server must handle [`Manager::timer`] next: its next tick, or the next
    /// LL-boost window of a vCPU whose window is spent.
    pub fn deadline(&self) -> u64 {
        let mut t = self.next_tick;
        for i in 0..self.vcpus.len() {
            let v = VcpuId(i as u8);
            if let (Some(LlState::Spent { .. }), Some(w)) = (self.sched.ll_state(v), self.sched.ll_next_window(v)) {
                t = t.min(w);
            }
        }
        t
    }

    /// Ask the kernel what `v` consumed since the last time, and count it (in the
    /// mode it had meanwhile) for the policy and the usage report. `None` if its
    /// thread is gone: it is forgotten then (blocked now; it stays in the
    /// policy's table, never runnable again).
    fn take_usage(&mut self, k: &mut impl Kernel, v: VcpuId) -> Option<(u64, u64)> {
        let Some((consumed, charged_at)) = k.usage(v) else {
            self.vcpus[v.index()].gone = true;
            self.sched.retire(v, self.now);
            self.sched.block(v, self.now);
            return None;
        };
        self.sched.charged(v, consumed);
        let m = &mut self.vcpus[v.index()];
        m.usage.consumed_ns += consumed;
        if m.mode == Mode::Ll {
            m.usage.ll_ns += consumed;
        }
        Some((consumed, charged_at))
    }

    /// Whose slot `v` is: (VM badge, vCPU, whether it holds LL-boost).
    pub fn describe(&self, v: VcpuId) -> Option<(u64, u8, bool)> {
        let m = self.vcpus.get(v.index()).filter(|m| !m.gone)?;
        let ll = matches!(self.sched.ll_state(v), Some(LlState::In { .. } | LlState::Spent { .. }));
        Some((m.badge, m.vcpu, ll))
    }

    /// What each registered vCPU used: (VM badge, vCPU, usage), in registration order.
    pub fn usage(&self) -> impl Iterator<Item = (u64, u8, Usage)> + '_ {
        self.vcpus
            .iter()
            .filter(|m| !m.gone)
            .map(|m| (m.badge, m.vcpu, m.usage))
    }

    fn registered(&self, badge: u64, vcpu: u8) -> Result<VcpuId, Error> {
        if !self.exists(badge, vcpu) {
            return Err(Error::NoSuchVcpu);
        }
        self.find(badge, vcpu).ok_or(Error::NotRegistered)
    }

    /// Slots of vCPUs taken so far: the next [`Manager::add`] that takes one returns
    /// `VcpuId(slots())` (one whose kernel setup failed keeps its slot, forgotten).
    pub fn slots(&self) -> usize {
        self.vcpus.len()
    }

    /// The core `v` runs on.
    pub fn core_of(&self, v: VcpuId) -> Option<u8> {
        self.vcpus.get(v.index()).map(|m| m.home.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec as StdVec;

    use super::*;
    use crate::credit::Debit;

    /// The kernel as the manager sees it: what it was told, and usage to report.
    #[derive(Default)]
    struct Model {
        /// (vCPU, priority) in the order set.
        priorities: StdVec<(u8, u8)>,
        /// (vCPU, budget, period) in the order configured.
        configured: StdVec<(u8, u64, u64)>,
        /// Per vCPU: (consumed, charged_at) to report next, or gone.
        usage: [Option<(u64, u64)>; 4],
        /// Per vCPU: runnable at the next tick.
        runnable: [bool; 4],
        /// (vCPU, core, budget, period) per move.
        moves: StdVec<(u8, u8, u64, u64)>,
        refuse: bool,
    }

    impl Kernel for Model {
        fn set_priority(&mut self, v: VcpuId, priority: u8) -> bool {
            self.priorities.push((v.0, priority));
            !self.refuse
        }
        fn configure(&mut self, v: VcpuId, budget_ns: u64, period_ns: u64) -> bool {
            self.configured.push((v.0, budget_ns, period_ns));
            !self.refuse
        }
        fn usage(&mut self, v: VcpuId) -> Option<(u64, u64)> {
            let u = self.usage[v.index()]?;
            self.usage[v.index()] = Some((0, u.1));
            Some(u)
        }
        fn runnable(&mut self, v: VcpuId) -> bool {
            self.runnable[v.index()]
        }
        fn move_to(&mut self, v: VcpuId, core: u8, budget_ns: u64, period_ns: u64) -> bool {
            self.moves.push((v.0, core, budget_ns, period_ns));
            !self.refuse
        }
    }

    const TOP: u8 = 90;
    const SBT: u64 = 100_000;
    const USBT: u64 = 2_300_000;
    /// Badges: the RT VM (a reservation), the hog VM (none).
    const RT: u64 = 1;
    const HOG: u64 = 2;

    /// The band at [`TOP`] on `cores` cores, tick debit unless `config` says.
    fn settings(cores: u8, ll_boost: bool, fixed: bool, balance: bool, config: Config) -> Settings {
        Settings {
            top: TOP,
            cores,
            ll_boost,
            fixed,
            balance,
            config,
        }
    }

    /// One vCPU on core 0 with the default weight, no cap, and reservation `ll`.
    fn vm(badge: u64, ll: Option<Reservation>) -> VmParams {
        VmParams {
            badge,
            vcpus: 1,
            core: 0,
            weight: 256,
            cap_pct: 0,
            ll,
        }
    }

    fn manager(ll_boost: bool, debit: Debit) -> Manager {
        let settings = settings(1, ll_boost, false, false, Config::default().debit(debit));
        Manager::new(settings, &[vm(RT, Some(Reservation::new(SBT, USBT))), vm(HOG, None)], 0)
    }

    fn both(m: &mut Manager, k: &mut Model) -> (VcpuId, VcpuId) {
        let rt = m.add(k, RT, 0, 0, 0).unwrap();
        let hog = m.add(k, HOG, 0, 0, 0).unwrap();
        k.usage = [Some((0, 0)), Some((0, 0)), None, None];
        (rt, hog)
    }

    #[test]
    fn registration_checks_the_caller_and_sets_up_the_thread() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        assert_eq!(m.add(&mut k, 9, 0, 0, 0), Err(Error::NoSuchVcpu), "not a managed VM");
        assert_eq!(m.add(&mut k, RT, 1, 0, 0), Err(Error::NoSuchVcpu), "it has one vCPU");
        let v = m.add(&mut k, RT, 0, 0, 0).unwrap();
        assert_eq!(m.add(&mut k, RT, 0, 0, 0), Err(Error::Registered));
        assert_eq!(k.configured, [(0, UNBUDGETED_NS, UNBUDGETED_NS)]);
        assert_eq!(k.priorities, [(0, TOP - 2)], "UNDER");
        assert_eq!(m.find(RT, 0), Some(v));
        assert_eq!(m.ll_enter(&mut k, HOG, 0, 0), Err(Error::NotRegistered));
        k.refuse = true;
        assert_eq!(m.add(&mut k, HOG, 0, 0, 0), Err(Error::Refused));
        assert_eq!(m.find(HOG, 0), None, "a refused thread is not managed");
    }

    #[test]
    fn ll_boost_is_a_budget_of_sbt_per_usbt_at_the_top_priority() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        let (rt, _) = both(&mut m, &mut k);
        k.configured.clear();
        k.priorities.clear();
        assert_eq!(m.ll_enter(&mut k, HOG, 0, 10), Err(Error::Denied), "no reservation");
        assert_eq!(m.ll_enter(&mut k, RT, 0, 10), Ok(()));
        assert_eq!(k.configured, [(0, SBT, USBT)]);
        assert_eq!(k.priorities, [(0, TOP)]);
        let st = m.state(RT, 0, 20).unwrap();
        assert_eq!((st.class, st.credit_ns, st.ll_left_ns), (Class::LlBoost, 0, SBT));
        // The kernel throttles it when SBT is spent: its credit class until the next
        // window, which the server's timer brings.
        m.timeout(&mut k, rt, 500);
        assert_eq!(k.configured.last(), Some(&(0, UNBUDGETED_NS, UNBUDGETED_NS)));
        assert_eq!(k.priorities.last(), Some(&(0, TOP - 2)));
        assert_eq!(m.deadline(), 10 + USBT);
        m.timer(&mut k, 10 + USBT);
        assert_eq!(k.configured.last(), Some(&(0, SBT, USBT)), "a fresh SBT");
        assert_eq!(k.priorities.last(), Some(&(0, TOP)));
        assert_eq!(m.deadline(), TICK_NS, "nothing spent: the next tick");
        // Leaving: credit again, and no entry before that window is over.
        m.ll_leave(&mut k, RT, 0, 10 + USBT + 5).unwrap();
        assert_eq!(k.priorities.last(), Some(&(0, TOP - 2)));
        assert_eq!(m.ll_enter(&mut k, RT, 0, 20 + USBT), Err(Error::TooEarly));
        assert_eq!(
            m.state(RT, 0, 20 + USBT).unwrap().retry_at,
            10 + 2 * USBT,
            "when it may"
        );
        assert_eq!(m.ll_enter(&mut k, RT, 0, 10 + 2 * USBT), Ok(()));
    }

    #[test]
    fn usage_counts_ll_boost_time_and_windows() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        let (rt, hog) = both(&mut m, &mut k);
        k.usage[0] = Some((7_000, 5)); // before LL-boost
        m.ll_enter(&mut k, RT, 0, 10).unwrap();
        k.usage[0] = Some((150_000, 200)); // in LL-boost, until its SBT was spent
        m.timeout(&mut k, rt, 300);
        k.usage[0] = Some((40_000, 400)); // in its credit class
        m.timer(&mut k, 10 + USBT);
        k.usage[0] = Some((90_000, 500)); // in the next window
        k.usage[1] = Some((2_000_000, TICK_NS));
        m.timer(&mut k, TICK_NS);
        let u: StdVec<_> = m.usage().collect();
        assert_eq!(
            u[0],
            (
                RT,
                0,
                Usage {
                    consumed_ns: 287_000,
                    ll_ns: 240_000,
                    windows: 2
                }
            )
        );
        assert_eq!(
            u[1],
            (
                HOG,
                0,
                Usage {
                    consumed_ns: 2_000_000,
                    ll_ns: 0,
                    windows: 0
                }
            )
        );
        let _ = hog;
    }

    #[test]
    fn the_fixed_policy_only_measures() {
        let settings = settings(1, false, true, false, Config::default());
        let rt = vm(RT, Some(Reservation::new(SBT, USBT)));
        let (mut m, mut k) = (Manager::new(settings, &[rt], 0), Model::default());
        m.add(&mut k, RT, 0, 0, 0).unwrap();
        assert_eq!(
            k.configured,
            [(0, UNBUDGETED_NS, UNBUDGETED_NS)],
            "counted, not limited"
        );
        assert!(k.priorities.is_empty(), "its VMM's priority stays");
        assert_eq!(m.ll_enter(&mut k, RT, 0, 10), Err(Error::Denied));
        k.usage[0] = Some((5_000_000, TICK_NS));
        m.timer(&mut k, TICK_NS);
        assert!(k.priorities.is_empty());
        assert_eq!(m.usage().next().unwrap().2.consumed_ns, 5_000_000);
    }

    /// Two RT vCPUs and two hogs on core 0 of two: at an accounting the overloaded core
    /// sends an LL-boost vCPU to the idle one first, with its LL-boost budget.
    #[test]
    fn balancing_moves_an_ll_boost_vcpu_first() {
        let settings = settings(2, true, false, true, Config::default());
        let r = Some(Reservation::new(SBT, USBT));
        let vms = [vm(1, r), vm(2, r), vm(3, None), vm(4, None)];
        let (mut m, mut k) = (Manager::new(settings, &vms, 0), Model::default());
        for b in 1..=4 {
            m.add(&mut k, b, 0, 0, 0).unwrap();
        }
        k.usage = [Some((0, 0)); 4];
        m.ll_enter(&mut k, 1, 0, 0).unwrap();
        // The hogs are always runnable, the RT vCPUs rarely found so.
        k.runnable = [false, false, true, true];
        for t in 1..=3 {
            m.timer(&mut k, t * TICK_NS);
        }
        assert!(k.moves.is_empty(), "planned once: not yet");
        for t in 4..=6 {
            m.timer(&mut k, t * TICK_NS);
        }
        assert_eq!(k.moves.len(), 1, "planned twice in a row: moved");
        assert_eq!(
            k.moves[0],
            (0, 1, SBT, USBT),
            "the LL-boost vCPU first, with its LL-boost budget"
        );
        assert_eq!(m.core_of(VcpuId(0)), Some(1));
        assert_eq!(m.take_move().map(|mv| (mv.vcpu, mv.to)), Some((VcpuId(0), CoreId(1))));
        assert_eq!(m.take_move(), None);
        // The report names it: VM 1's vCPU 0, holding LL-boost; VM 2 never entered it.
        assert_eq!(m.describe(VcpuId(0)), Some((1, 0, true)));
        assert_eq!(m.describe(VcpuId(1)), Some((2, 0, false)));
        assert_eq!(m.describe(VcpuId(7)), None);
        // Without balancing nothing moves.
        let (mut m, mut k) = (
            Manager::new(
                Settings {
                    balance: false,
                    ..settings
                },
                &vms,
                0,
            ),
            Model::default(),
        );
        for b in 1..=4 {
            m.add(&mut k, b, 0, 0, 0).unwrap();
        }
        k.usage = [Some((0, 0)); 4];
        k.runnable = [false, false, true, true];
        for t in 1..=6 {
            m.timer(&mut k, t * TICK_NS);
        }
        assert!(k.moves.is_empty());
    }

    #[test]
    fn without_ll_boost_every_request_is_denied() {
        let (mut m, mut k) = (manager(false, Debit::Tick), Model::default());
        both(&mut m, &mut k);
        assert_eq!(m.ll_enter(&mut k, RT, 0, 10), Err(Error::Denied));
        assert_eq!(m.ll_enter(&mut k, HOG, 0, 10), Err(Error::Denied));
    }

    #[test]
    fn a_tick_debits_the_vcpu_it_preempted_and_queues_it_last() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        let (rt, hog) = both(&mut m, &mut k);
        k.priorities.clear();
        // The hog was charged at the tick (it ran then); the RT vCPU earlier.
        k.usage = [
            Some((60_000, TICK_NS - 2_000_000)),
            Some((9_900_000, TICK_NS + 300)),
            None,
            None,
        ];
        m.timer(&mut k, TICK_NS + 300);
        assert_eq!(m.policy().credit(hog), Some(-TICK_NS.cast_signed()), "a whole tick");
        assert_eq!(m.policy().credit(rt), Some(0), "not found running: not debited");
        assert_eq!(
            k.priorities.last(),
            Some(&(hog.0, TOP - 3)),
            "OVER, and behind its equals"
        );
        assert_eq!(m.deadline(), 2 * TICK_NS);
        // Exact debit takes what each consumed.
        let (mut m, mut k) = (manager(true, Debit::Exact), Model::default());
        let (rt, hog) = both(&mut m, &mut k);
        k.usage = [Some((60_000, 100)), Some((9_900_000, TICK_NS + 300)), None, None];
        m.timer(&mut k, TICK_NS + 300);
        assert_eq!(m.policy().credit(rt), Some(-60_000));
        assert_eq!(m.policy().credit(hog), Some(-9_900_000));
    }

    #[test]
    fn an_io_wakeup_boosts_an_under_vcpu_until_a_tick_finds_it_running() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        let (_, hog) = both(&mut m, &mut k);
        m.io_wake(&mut k, HOG, 0, 50);
        assert_eq!(k.priorities.last(), Some(&(hog.0, TOP - 1)), "BOOST");
        k.usage = [Some((0, 0)), Some((1_000, TICK_NS)), None, None];
        m.timer(&mut k, TICK_NS);
        assert_ne!(m.policy().class(hog), Some(Class::Boost));
    }

    #[test]
    fn a_vcpu_whose_thread_is_gone_is_forgotten() {
        let (mut m, mut k) = (manager(true, Debit::Tick), Model::default());
        both(&mut m, &mut k);
        k.usage[0] = None;
        m.timer(&mut k, TICK_NS);
        assert_eq!(m.find(RT, 0), None);
        assert_eq!(m.ll_enter(&mut k, RT, 0, TICK_NS), Err(Error::NotRegistered));
        // Its VMM, made again, may register it again (in a new slot of the policy's
        // table: the old one stays, never runnable).
        let again = m.add(&mut k, RT, 0, 0, TICK_NS).unwrap();
        assert_eq!(again, VcpuId(2));
        assert_eq!(m.find(RT, 0), Some(again));
    }

    /// A gone vCPU's reservation stops counting, and balancing passes it by: before,
    /// the gone LL-boost vCPU (load 0, LL-boost first) was the one "moved" at every
    /// accounting, and the live ones never were.
    #[test]
    fn a_gone_vcpu_reserves_nothing_and_is_not_moved() {
        let settings = settings(2, true, false, true, Config::default());
        // Two reservations of 25 % fill core 0's half: a third fits once one is gone.
        let r = Some(Reservation::new(575_000, USBT));
        let vms = [vm(1, r), vm(2, r), vm(3, None), vm(4, None), vm(5, r)];
        let (mut m, mut k) = (Manager::new(settings, &vms, 0), Model::default());
        for b in 1..=4 {
            m.add(&mut k, b, 0, 0, 0).unwrap();
        }
        k.usage = [None, Some((0, 0)), Some((0, 0)), Some((0, 0))];
        k.runnable = [false, false, true, true];
        for t in 1..=6 {
            m.timer(&mut k, t * TICK_NS);
        }
        assert_eq!(m.find(1, 0), None, "VM 1's vCPU is gone");
        assert_eq!(
            k.moves.first().map(|mv| mv.0),
            Some(1),
            "the live LL-boost vCPU moves first"
        );
        assert_eq!(m.add(&mut k, 5, 0, 0, 6 * TICK_NS).map(|v| v.0), Ok(4));
    }
}
