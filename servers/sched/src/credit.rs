//! Xen's credit scheduler with paper 000's LL-boost, SBT/USBT and credit borrowing.
//!
//! The [`Scheduler`] keeps a fixed set of at most [`MAX_VCPUS`] vCPUs on at most
//! [`MAX_CORES`] cores. It is driven by events ([`Scheduler::wake`],
//! [`Scheduler::block`], [`Scheduler::ran`], [`Scheduler::tick`],
//! [`Scheduler::account`], [`Scheduler::ll_request`], [`Scheduler::ll_leave`]) and
//! answers [`Scheduler::pick`]: which vCPU a core runs next. All times are nanoseconds
//! of one clock; credit is nanoseconds of CPU time (a signed balance).
//!
//! # Classes
//!
//! Highest first ([`Class`]): **LL-boost**, **BOOST**, **UNDER**, **OVER**, and
//! **parked** (never run). A core runs the runnable vCPU of the highest class whose home
//! it is; inside a class, round-robin: a vCPU joins the tail of its class when it wakes,
//! enters LL-boost, or is rotated by a tick, and a vCPU preempted by a higher class keeps
//! its place. A wake-up preempts the running vCPU of its core only if the woken vCPU's
//! class is strictly higher ([`Scheduler::wake`] says so); within a class the running
//! vCPU keeps the core until it blocks or until the next tick of its core.
//!
//! # Credit
//!
//! - **Debit and activity**, two modes ([`Debit`]), whatever the class:
//!   - [`Debit::Tick`] (the default; Xen 4.0's rule, the scheduler paper 000 measured):
//!     each tick debits a whole tick, [`TICK_NS`], from the vCPU it finds running on its
//!     core and makes that vCPU *active*. A vCPU that runs briefly between ticks is
//!     rarely debited, and rarely made active, so it seldom takes a share of credit.
//!   - [`Debit::Exact`] (Xen ≥ 4.2's `burn_credits`): [`Scheduler::ran`] debits exactly
//!     the time consumed (the kernel reports it: `SchedContextConsumed`), and a vCPU that
//!     consumed any time is active.
//! - **Tick** (every [`TICK_NS`] = 10 ms per core, [`Scheduler::tick`]): the running
//!   vCPU is debited (tick mode), loses BOOST, becomes active if it was not, and goes to
//!   the tail of its class (the 10 ms time slice); then every vCPU of the core is
//!   re-sampled: UNDER if its credit is ≥ 0, OVER if it is < 0 (parked for capped vCPUs,
//!   below).
//! - **Accounting** (every [`ACCT_NS`] = 30 ms, [`Scheduler::account`]), Xen's
//!   `csched_acct`, per core: the core's 30 ms of credit is split among its *active*
//!   vCPUs in proportion to weight (integer division, remainders dropped); a capped
//!   vCPU gets at most `cap % × 30 ms`. Then, against hoarding: an uncapped vCPU whose
//!   credit exceeds [`CREDIT_BOUND_NS`] (30 ms) stops being active and its credit is
//!   halved (Xen's rule: an idle vCPU no longer takes a share, which goes to the vCPUs
//!   that use it, until a tick finds it running again); an uncapped vCPU's credit is
//!   never below −[`CREDIT_BOUND_NS`]. Then classes are re-sampled as at a tick.
//! - **Caps.** A capped vCPU is always active and its credit is its meter: it is parked
//!   as soon as a debit leaves its credit ≤ 0 (Xen lets it run OVER to −cap first) and
//!   unparked when accounting brings it above 0; its credit is at most one period's
//!   cap, so an idle capped vCPU cannot save up a burst. With exact debit, [`Dispatch`]
//!   gives a capped vCPU its credit as budget, so the server can stop it exactly.
//! - **BOOST.** A vCPU woken by I/O (`io` in [`Scheduler::wake`]) while UNDER is
//!   BOOST until a tick finds it running or it blocks. A wake-up by the vCPU's own timer
//!   is not I/O.
//!
//! # LL-boost with SBT/USBT
//!
//! A vCPU given a [`Reservation`] (SBT, USBT) may ask for LL-boost
//! ([`Scheduler::ll_request`], the guest's `LL_BOOST_ENTER` hypercall) and holds it
//! until it leaves ([`Scheduler::ll_leave`]). While it holds it, time is cut into
//! *windows* of USBT from the entry (`entered`, `entered + USBT`, ...): in each window it
//! is in the LL-boost class until it has consumed SBT ([`LlState::In`]), then in its
//! credit class until the next window begins ([`LlState::Spent`]). A vCPU that left
//! may enter again only when the window it left in is over, USBT after that window
//! began ([`LlError::TooEarly`] before). So in every window the vCPU gets at most SBT in
//! LL-boost, and in the long run at most SBT/USBT of a core, which is what
//! [`crate::admit`] counts. LL-boost time is debited from credit like any other.
//!
//! The vCPU asks once, not at every job: a guest's periodic task wakes by its timer
//! while its vCPU waits, and only a vCPU that already holds LL-boost is sure to get the
//! core at once. SBT is counted by [`Scheduler::ran`] (the simulation, which knows every
//! nanosecond) or by the kernel (the server: the vCPU's scheduling context has budget
//! SBT per period USBT, and its timeout fault is [`Scheduler::ll_spent`]; the server
//! reports consumed time with [`Scheduler::charged`], which leaves SBT alone).
//!
//! Mapping onto the kernel: on entry the server configures the vCPU's scheduling
//! context to budget SBT and period USBT and gives the thread the top priority; the
//! kernel then dispatches it before everything and throttles it when SBT is spent,
//! sending a timeout fault that the server turns into [`Scheduler::ll_spent`]; the
//! server then gives it its credit class's priority and a full budget until the next
//! window ([`Scheduler::ll_next_window`]). On leaving, the same.
//!
//! # Credit borrowing
//!
//! Off by default ([`Config::borrow_ns`] = 0). When on, a soft-real-time vCPU
//! ([`VcpuParams::soft_rt`]) that is OVER but whose credit is at least
//! −`borrow_ns` is treated as UNDER: it borrows up to `borrow_ns` of future credit,
//! repaid by the next accountings since its balance stays negative. The bound is at
//! most [`MAX_BORROW_NS`] (one tick, 10 ms); larger settings are clamped.

use heapless::Vec;

use crate::admit::{self, AdmitError, Reservation};
use crate::migrate::{self, Candidate, Move};

/// The most vCPUs one scheduler manages.
pub const MAX_VCPUS: usize = 16;
/// The most cores one scheduler manages.
pub const MAX_CORES: usize = 8;
/// The tick: time slice and class re-sampling period of every core (10 ms).
pub const TICK_NS: u64 = 10_000_000;
/// The accounting period (30 ms): one core's worth of credit is handed out per period.
pub const ACCT_NS: u64 = 30_000_000;
/// The weight of a vCPU nobody set one for (Xen's default).
pub const DEFAULT_WEIGHT: u16 = 256;
/// Bound on an uncapped vCPU's credit balance, both ways (one accounting period).
pub const CREDIT_BOUND_NS: i64 = 30_000_000;
/// The largest borrowing bound (one tick of credit).
pub const MAX_BORROW_NS: u64 = TICK_NS;

const PPM: u64 = 1_000_000;

/// A vCPU, by the order in which it was added (0, 1, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuId(pub u8);

impl VcpuId {
    /// The index of the vCPU.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A core, 0 to the scheduler's core count − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u8);

impl CoreId {
    /// The index of the core.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A vCPU's scheduling class, lowest first (the derived order is the priority order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A capped vCPU that used its cap: not run until accounting gives it credit.
    Parked,
    /// Credit < 0.
    Over,
    /// Credit ≥ 0 (or borrowing, when enabled, for a soft-real-time vCPU).
    Under,
    /// Woken by I/O while UNDER, until its next tick.
    Boost,
    /// Paper 000's low-latency boost: above everything, limited by SBT/USBT.
    LlBoost,
}

impl Class {
    /// The class's priority level above the server's base priority: 0 (parked) to 4
    /// (LL-boost). A parked vCPU is not run at all.
    pub const fn level(self) -> u8 {
        self as u8
    }
}

/// How a vCPU is scheduled: set when it is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuParams {
    /// Relative weight (Xen's, default [`DEFAULT_WEIGHT`]); must not be 0.
    pub weight: u16,
    /// The most it may use, in percent of a core (1 to 100); 0 = no cap.
    pub cap_pct: u8,
    /// The core it runs on.
    pub home: CoreId,
    /// Its LL-boost reservation, if it may enter LL-boost.
    pub ll: Option<Reservation>,
    /// A soft-real-time vCPU: may borrow credit when borrowing is on.
    pub soft_rt: bool,
}

impl VcpuParams {
    /// Default weight, no cap, no reservation, not soft-real-time, on `home`.
    pub const fn new(home: CoreId) -> Self {
        Self {
            weight: DEFAULT_WEIGHT,
            cap_pct: 0,
            home,
            ll: None,
            soft_rt: false,
        }
    }

    /// The same with `weight`.
    #[must_use]
    pub const fn weight(mut self, weight: u16) -> Self {
        self.weight = weight;
        self
    }

    /// The same with a cap of `pct` % of a core.
    #[must_use]
    pub const fn cap(mut self, pct: u8) -> Self {
        self.cap_pct = pct;
        self
    }

    /// The same with an LL-boost reservation.
    #[must_use]
    pub const fn ll(mut self, reservation: Reservation) -> Self {
        self.ll = Some(reservation);
        self
    }

    /// The same, marked soft-real-time.
    #[must_use]
    pub const fn soft_rt(mut self) -> Self {
        self.soft_rt = true;
        self
    }
}

/// How credit is debited (module documentation, "Credit").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Debit {
    /// Each tick debits [`TICK_NS`] from the vCPU it finds running (Xen 4.0).
    #[default]
    Tick,
    /// [`Scheduler::ran`] debits the time consumed (Xen ≥ 4.2).
    Exact,
}

/// Scheduler-wide settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Credit borrowing bound for soft-real-time vCPUs in ns; 0 (the default) = off.
    /// Clamped to [`MAX_BORROW_NS`].
    pub borrow_ns: u64,
    /// How credit is debited; [`Debit::Tick`] by default.
    pub debit: Debit,
}

impl Config {
    /// The same with borrowing on, with the largest bound, [`MAX_BORROW_NS`].
    #[must_use]
    pub const fn borrowing(mut self) -> Self {
        self.borrow_ns = MAX_BORROW_NS;
        self
    }

    /// The same with `debit`.
    #[must_use]
    pub const fn debit(mut self, debit: Debit) -> Self {
        self.debit = debit;
        self
    }
}

/// Where a vCPU stands with LL-boost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlState {
    /// Never entered.
    Off,
    /// Holds LL-boost, in the window that began at `entered`, having used `used_ns` of
    /// its SBT: in the LL-boost class.
    In {
        /// When the window began.
        entered: u64,
        /// LL-boost time consumed in it.
        used_ns: u64,
    },
    /// Holds LL-boost, but has used the SBT of the window that began at `entered`: in
    /// its credit class until `entered + USBT`.
    Spent {
        /// When the window began.
        entered: u64,
    },
    /// Left LL-boost in the window that began at `entered`.
    Out {
        /// When that window began.
        entered: u64,
    },
}

/// Why [`Scheduler::ll_request`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LlError {
    /// No such vCPU.
    NoSuchVcpu,
    /// The vCPU has no LL-boost reservation.
    NoReservation,
    /// Less than USBT since the last entry; it may enter at `retry_at`.
    TooEarly {
        /// The earliest time it may enter again.
        retry_at: u64,
    },
}

/// Why [`Scheduler::add_vcpu`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddError {
    /// Already [`MAX_VCPUS`] vCPUs.
    TooManyVcpus,
    /// The home core is not one of the scheduler's.
    NoSuchCore,
    /// A weight of 0.
    ZeroWeight,
    /// A cap above 100 %.
    BadCap,
    /// The LL-boost reservation does not fit on the home core.
    Admission(AdmitError),
}

/// What a core should run: the answer of [`Scheduler::pick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The vCPU.
    pub vcpu: VcpuId,
    /// Its class; its priority is `base + class.level()`.
    pub class: Class,
    /// How long it may run before the policy must be told ([`Scheduler::ran`]) and
    /// asked again, apart from ticks and other events: for LL-boost, what is left of
    /// SBT and of the stint; for a capped vCPU, its credit; otherwise `u64::MAX`.
    pub budget_ns: u64,
    /// The period of the scheduling context that enforces it: USBT for LL-boost,
    /// [`TICK_NS`] otherwise (with a full budget).
    pub period_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    Under,
    Over,
    Parked,
}

#[derive(Clone, Copy, Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts of Xen's credit state (BOOST, runnable, active), and retirement"
)]
struct Vcpu {
    params: VcpuParams,
    credit: i64,
    base: Base,
    boost: bool,
    runnable: bool,
    active: bool,
    ll: LlState,
    /// Round-robin position: lower runs first within a class.
    seq: u64,
    consumed_ns: u64,
    runnable_since: u64,
    /// Time runnable (running or waiting) since the last accounting.
    acct_runnable_ns: u64,
    /// Runnable time in the last accounting period, in ppm of it.
    load_ppm: u32,
    /// Its thread is gone ([`Scheduler::retire`]): never runnable, reserves nothing,
    /// never moved.
    retired: bool,
}

impl Vcpu {
    fn capped(&self) -> bool {
        self.params.cap_pct != 0
    }

    /// The most credit one accounting period gives a capped vCPU.
    fn cap_credit(&self) -> i64 {
        (ACCT_NS * u64::from(self.params.cap_pct) / 100).cast_signed()
    }

    /// Moves a vCPU that holds LL-boost into the window `now` is in (a fresh SBT).
    fn expire_ll(&mut self, now: u64) {
        let (LlState::In { entered, .. } | LlState::Spent { entered }, Some(r)) = (self.ll, self.params.ll) else {
            return;
        };
        if now >= entered.saturating_add(r.usbt_ns) {
            let windows = (now - entered) / r.usbt_ns.max(1);
            self.ll = LlState::In {
                entered: entered + windows * r.usbt_ns,
                used_ns: 0,
            };
        }
    }

    /// Takes `ns` from the credit balance, parking a capped vCPU that is out of it.
    fn debit(&mut self, ns: u64) {
        self.credit = self.credit.saturating_sub(i64::try_from(ns).unwrap_or(i64::MAX));
        if self.capped() && self.credit <= 0 {
            self.base = Base::Parked;
        }
    }

    /// UNDER, OVER or parked, from the credit balance.
    fn resample(&mut self) {
        self.base = if self.capped() && self.active && self.credit <= 0 {
            Base::Parked
        } else if self.credit >= 0 {
            Base::Under
        } else {
            Base::Over
        };
    }
}

/// The credit scheduler with LL-boost: see the module documentation for its rules.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    cores: u8,
    vcpus: Vec<Vcpu, MAX_VCPUS>,
    current: [Option<VcpuId>; MAX_CORES],
    next_seq: u64,
    last_acct: u64,
}

impl Scheduler {
    /// A scheduler for `cores` cores (1 to [`MAX_CORES`]) with no vCPUs.
    pub fn new(cores: u8, config: Config) -> Self {
        assert!(cores >= 1 && usize::from(cores) <= MAX_CORES, "1 to {MAX_CORES} cores");
        let config = Config {
            borrow_ns: config.borrow_ns.min(MAX_BORROW_NS),
            ..config
        };
        Self {
            config,
            cores,
            vcpus: Vec::new(),
            current: [None; MAX_CORES],
            next_seq: 0,
            last_acct: 0,
        }
    }

    /// Adds a blocked vCPU with credit 0 (UNDER, not active). A reservation is admitted
    /// against those already on the home core ([`admit::admit`]).
    pub fn add_vcpu(&mut self, params: VcpuParams) -> Result<VcpuId, AddError> {
        if self.vcpus.is_full() {
            return Err(AddError::TooManyVcpus);
        }
        if params.home.0 >= self.cores {
            return Err(AddError::NoSuchCore);
        }
        if params.weight == 0 {
            return Err(AddError::ZeroWeight);
        }
        if params.cap_pct > 100 {
            return Err(AddError::BadCap);
        }
        if let Some(r) = params.ll {
            admit::admit(self.reservations(params.home), r).map_err(AddError::Admission)?;
        }
        let id = VcpuId(self.vcpus.len() as u8);
        let mut v = Vcpu {
            params,
            credit: 0,
            base: Base::Under,
            boost: false,
            runnable: false,
            active: params.cap_pct != 0,
            ll: LlState::Off,
            seq: 0,
            consumed_ns: 0,
            runnable_since: 0,
            acct_runnable_ns: 0,
            load_ppm: 0,
            retired: false,
        };
        v.resample();
        self.vcpus.push(v).map_err(|_| AddError::TooManyVcpus)?;
        Ok(id)
    }

    /// The number of cores.
    pub fn cores(&self) -> u8 {
        self.cores
    }

    /// The number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpus.len()
    }

    /// The settings, borrowing bound clamped.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The reservations of the vCPUs whose home is `core`.
    pub fn reservations(&self, core: CoreId) -> impl Iterator<Item = Reservation> + '_ {
        self.vcpus
            .iter()
            .filter(move |v| v.params.home == core)
            .filter_map(|v| v.params.ll)
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// `v`'s class now (not expiring an LL-boost stint that has run past USBT: that
    /// happens on the next event that names a time).
    pub fn class(&self, v: VcpuId) -> Option<Class> {
        self.vcpus.get(v.index()).map(|x| self.class_of(x))
    }

    fn class_of(&self, v: &Vcpu) -> Class {
        if matches!(v.ll, LlState::In { .. }) {
            return Class::LlBoost;
        }
        match v.base {
            Base::Parked => Class::Parked,
            Base::Under if v.boost => Class::Boost,
            Base::Under => Class::Under,
            Base::Over => {
                let borrow = i64::try_from(self.config.borrow_ns).unwrap_or(i64::MAX);
                if v.params.soft_rt && borrow > 0 && v.credit >= -borrow {
                    Class::Under
                } else {
                    Class::Over
                }
            }
        }
    }

    /// `v`'s parameters.
    pub fn params(&self, v: VcpuId) -> Option<VcpuParams> {
        self.vcpus.get(v.index()).map(|x| x.params)
    }

    /// `v`'s credit balance in ns.
    pub fn credit(&self, v: VcpuId) -> Option<i64> {
        self.vcpus.get(v.index()).map(|x| x.credit)
    }

    /// The CPU time `v` has consumed in all.
    pub fn consumed(&self, v: VcpuId) -> Option<u64> {
        self.vcpus.get(v.index()).map(|x| x.consumed_ns)
    }

    /// `v`'s LL-boost state.
    pub fn ll_state(&self, v: VcpuId) -> Option<LlState> {
        self.vcpus.get(v.index()).map(|x| x.ll)
    }

    /// The vCPU `core` last picked, if it has not blocked since.
    pub fn current(&self, core: CoreId) -> Option<VcpuId> {
        self.current.get(core.index()).copied().flatten()
    }

    /// Tell the policy what `core` runs (`None`: nothing it manages), when the kernel
    /// dispatches rather than [`Scheduler::pick`]: the server learns at its tick which
    /// vCPU the tick preempted, the one [`Scheduler::tick`] debits.
    pub fn set_running(&mut self, core: CoreId, v: Option<VcpuId>) {
        if let Some(slot) = self.current.get_mut(core.index()) {
            *slot = v.filter(|v| v.index() < self.vcpus.len());
        }
    }

    /// True if `v` outranks what `core` runs (or `core` runs nothing).
    fn outranks_current(&self, v: VcpuId, core: CoreId) -> bool {
        let class = self.class(v);
        match self.current(core) {
            Some(cur) if cur == v => false,
            Some(cur) => class > self.class(cur),
            None => true,
        }
    }

    /// `v` became runnable at `now`; woken by I/O if `io`. Returns true if it should
    /// preempt what its core runs (a strictly higher class, or an idle core).
    pub fn wake(&mut self, v: VcpuId, now: u64, io: bool) -> bool {
        let seq = self.take_seq();
        let Some(x) = self.vcpus.get_mut(v.index()) else {
            return false;
        };
        if x.runnable || x.retired {
            return false;
        }
        x.runnable = true;
        x.runnable_since = now;
        x.seq = seq;
        x.expire_ll(now);
        if io && x.base == Base::Under {
            x.boost = true;
        }
        let home = x.params.home;
        self.outranks_current(v, home)
    }

    /// `v` blocked at `now`: it is no longer runnable and loses BOOST (not LL-boost: a
    /// stint ends only as the module documentation says).
    pub fn block(&mut self, v: VcpuId, now: u64) {
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        if x.runnable {
            x.acct_runnable_ns += now.saturating_sub(x.runnable_since);
        }
        x.runnable = false;
        x.boost = false;
        x.expire_ll(now);
        let home = x.params.home.index();
        if self.current[home] == Some(v) {
            self.current[home] = None;
        }
    }

    /// `v`'s thread is gone: block it for good, drop its LL-boost reservation (so it
    /// no longer counts in its core's admission) and leave it out of balancing. Its
    /// slot stays (slots are never reused).
    pub fn retire(&mut self, v: VcpuId, now: u64) {
        self.block(v, now);
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        x.retired = true;
        x.params.ll = None;
        x.ll = LlState::Off;
        x.load_ppm = 0;
    }

    /// `v` consumed `ns` of CPU time, all in its current class: count it against SBT
    /// if it is in LL-boost (spending the window's SBT when it is used up), and as
    /// [`Scheduler::charged`] does. For a caller that sees every nanosecond (the
    /// simulation).
    pub fn ran(&mut self, v: VcpuId, ns: u64) {
        self.charged(v, ns);
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        if let (LlState::In { entered, used_ns }, Some(r)) = (x.ll, x.params.ll) {
            let used_ns = used_ns + ns;
            x.ll = if used_ns >= r.sbt_ns {
                LlState::Spent { entered }
            } else {
                LlState::In { entered, used_ns }
            };
        }
    }

    /// `v` consumed `ns` of CPU time since it was last told (the kernel's
    /// `SchedContextConsumed`, at a tick): with exact debit take it from its credit and
    /// make it active. SBT is not counted here: the server's kernel counts it (see the
    /// module documentation) and says when it is spent ([`Scheduler::ll_spent`]).
    pub fn charged(&mut self, v: VcpuId, ns: u64) {
        let exact = self.config.debit == Debit::Exact;
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        x.consumed_ns += ns;
        if exact && ns > 0 {
            x.active = true;
            x.debit(ns);
        }
    }

    /// The kernel says `v` used the SBT of its window at `now` (its scheduling
    /// context's timeout fault): it is in its credit class until the next window.
    pub fn ll_spent(&mut self, v: VcpuId, now: u64) {
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        x.expire_ll(now);
        if let LlState::In { entered, .. } = x.ll {
            x.ll = LlState::Spent { entered };
        }
    }

    /// When `v`'s next LL-boost window begins, if it holds LL-boost: the time the
    /// server must give it back the LL-boost class after [`Scheduler::ll_spent`].
    pub fn ll_next_window(&self, v: VcpuId) -> Option<u64> {
        let x = self.vcpus.get(v.index())?;
        match (x.ll, x.params.ll) {
            (LlState::In { entered, .. } | LlState::Spent { entered }, Some(r)) => {
                Some(entered.saturating_add(r.usbt_ns))
            }
            _ => None,
        }
    }

    /// The 10 ms tick of `core` at `now`: the running vCPU is debited a tick (tick
    /// mode), loses BOOST, becomes active and goes to the tail of its class; every vCPU
    /// of the core is re-sampled.
    pub fn tick(&mut self, core: CoreId, now: u64) {
        let seq = self.take_seq();
        let by_tick = self.config.debit == Debit::Tick;
        if let Some(cur) = self.current(core)
            && let Some(x) = self.vcpus.get_mut(cur.index())
        {
            if by_tick {
                x.debit(TICK_NS);
            }
            x.boost = false;
            x.active = true;
            x.seq = seq;
        }
        for x in self.vcpus.iter_mut().filter(|x| x.params.home == core) {
            x.expire_ll(now);
            x.resample();
        }
    }

    /// Bring every vCPU's LL-boost window up to `now` (a vCPU whose window was spent
    /// gets its SBT back when the next begins); the other events do this too.
    pub fn advance(&mut self, now: u64) {
        for x in &mut self.vcpus {
            x.expire_ll(now);
        }
    }

    /// Accounting at `now` (every 30 ms): credit for every core's active vCPUs, by
    /// weight, then the hoarding and debt bounds, then re-sampling (module docs).
    pub fn account(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.last_acct).max(1);
        self.last_acct = now;
        for core in 0..self.cores {
            self.account_core(CoreId(core));
        }
        for x in &mut self.vcpus {
            if x.runnable {
                x.acct_runnable_ns += now.saturating_sub(x.runnable_since);
                x.runnable_since = now;
            }
            x.load_ppm = u32::try_from((x.acct_runnable_ns * PPM / elapsed).min(PPM)).unwrap_or(u32::MAX);
            x.acct_runnable_ns = 0;
            x.expire_ll(now);
        }
    }

    fn account_core(&mut self, core: CoreId) {
        let on_core = |x: &Vcpu| x.params.home == core && x.active;
        let total_weight: u64 = self
            .vcpus
            .iter()
            .filter(|x| on_core(x))
            .map(|x| u64::from(x.params.weight))
            .sum();
        if total_weight == 0 {
            return;
        }
        for x in self.vcpus.iter_mut().filter(|x| on_core(x)) {
            let fair = (ACCT_NS * u64::from(x.params.weight) / total_weight).cast_signed();
            if x.capped() {
                x.credit = (x.credit + fair.min(x.cap_credit())).min(x.cap_credit());
            } else {
                x.credit += fair;
                if x.credit > CREDIT_BOUND_NS {
                    x.active = false;
                    x.credit /= 2;
                }
                x.credit = x.credit.max(-CREDIT_BOUND_NS);
            }
            x.resample();
        }
    }

    /// What `core` runs next at `now`: the runnable vCPU of the highest class, first in
    /// round-robin order within it; `None` if nothing is runnable. It becomes the core's
    /// current vCPU.
    pub fn pick(&mut self, core: CoreId, now: u64) -> Option<Dispatch> {
        let mut best: Option<(usize, Class, u64)> = None;
        for i in 0..self.vcpus.len() {
            self.vcpus[i].expire_ll(now);
            let x = &self.vcpus[i];
            if x.params.home != core || !x.runnable {
                continue;
            }
            let class = self.class_of(x);
            if class == Class::Parked {
                continue;
            }
            if best.is_none_or(|(_, c, s)| class > c || (class == c && x.seq < s)) {
                best = Some((i, class, x.seq));
            }
        }
        let slot = self.current.get_mut(core.index())?;
        *slot = best.map(|(i, _, _)| VcpuId(i as u8));
        let (i, class, _) = best?;
        Some(self.dispatch_of(i, class, now))
    }

    fn dispatch_of(&self, i: usize, class: Class, now: u64) -> Dispatch {
        let x = &self.vcpus[i];
        let (budget_ns, period_ns) = match (x.ll, x.params.ll) {
            (LlState::In { entered, used_ns }, Some(r)) => {
                let stint_left = entered.saturating_add(r.usbt_ns).saturating_sub(now);
                (r.sbt_ns.saturating_sub(used_ns).min(stint_left), r.usbt_ns)
            }
            _ if x.capped() && self.config.debit == Debit::Exact => (u64::try_from(x.credit).unwrap_or(0), TICK_NS),
            _ => (u64::MAX, TICK_NS),
        };
        Dispatch {
            vcpu: VcpuId(i as u8),
            class,
            budget_ns,
            period_ns,
        }
    }

    /// `v` asks for LL-boost at `now` (it holds it until [`Scheduler::ll_leave`]).
    /// Returns whether it should preempt what its core runs; refused without a
    /// reservation, or before the window it last left in is over. Asking while holding
    /// it changes nothing.
    pub fn ll_request(&mut self, v: VcpuId, now: u64) -> Result<bool, LlError> {
        let seq = self.take_seq();
        let x = self.vcpus.get_mut(v.index()).ok_or(LlError::NoSuchVcpu)?;
        let r = x.params.ll.ok_or(LlError::NoReservation)?;
        x.expire_ll(now);
        match x.ll {
            LlState::In { .. } | LlState::Spent { .. } => return Ok(false),
            LlState::Out { entered } if now < entered.saturating_add(r.usbt_ns) => {
                return Err(LlError::TooEarly {
                    retry_at: entered.saturating_add(r.usbt_ns),
                });
            }
            LlState::Out { .. } | LlState::Off => {}
        }
        x.ll = LlState::In {
            entered: now,
            used_ns: 0,
        };
        x.seq = seq;
        let (home, runnable) = (x.params.home, x.runnable);
        Ok(runnable && self.outranks_current(v, home))
    }

    /// `v` leaves LL-boost at `now` (nothing if it does not hold it).
    pub fn ll_leave(&mut self, v: VcpuId, now: u64) {
        let Some(x) = self.vcpus.get_mut(v.index()) else { return };
        x.expire_ll(now);
        if let LlState::In { entered, .. } | LlState::Spent { entered } = x.ll {
            x.ll = LlState::Out { entered };
        }
    }

    /// Moves `v` to `to`, admitting its reservation there first. If it was some core's
    /// current vCPU, that core now runs nothing until its next [`Scheduler::pick`].
    pub fn migrate(&mut self, v: VcpuId, to: CoreId) -> Result<(), AddError> {
        if to.0 >= self.cores {
            return Err(AddError::NoSuchCore);
        }
        let x = *self.vcpus.get(v.index()).ok_or(AddError::NoSuchCore)?;
        if x.params.home == to {
            return Ok(());
        }
        if let Some(r) = x.params.ll {
            admit::admit(self.reservations(to), r).map_err(AddError::Admission)?;
        }
        let from = x.params.home.index();
        if self.current[from] == Some(v) {
            self.current[from] = None;
        }
        let seq = self.take_seq();
        let x = &mut self.vcpus[v.index()];
        x.params.home = to;
        x.seq = seq;
        Ok(())
    }

    /// Load per core and per vCPU over the last accounting period: a vCPU's load is the
    /// share of the period it was runnable (running or waiting), a core's the sum of
    /// its vCPUs' (above 1 000 000 ppm when it is overloaded).
    pub fn loads(&self) -> (Vec<u32, MAX_CORES>, Vec<Candidate, MAX_VCPUS>) {
        let mut cores: Vec<u32, MAX_CORES> = Vec::new();
        for _ in 0..self.cores {
            let _ = cores.push(0);
        }
        let mut vcpus: Vec<Candidate, MAX_VCPUS> = Vec::new();
        for (i, x) in self.vcpus.iter().enumerate().filter(|(_, x)| !x.retired) {
            cores[x.params.home.index()] += x.load_ppm;
            let _ = vcpus.push(Candidate {
                vcpu: VcpuId(i as u8),
                core: x.params.home,
                load_ppm: x.load_ppm,
                ll: x.params.ll,
            });
        }
        (cores, vcpus)
    }

    /// One LL-boost-first balancing step ([`migrate::plan`] on [`Scheduler::loads`]),
    /// applied; returns the move made, if any.
    pub fn balance(&mut self) -> Option<Move> {
        let (cores, vcpus) = self.loads();
        let m = migrate::plan(&cores, &vcpus)?;
        self.migrate(m.vcpu, m.to).ok()?;
        Some(m)
    }
}
