//! A deterministic discrete-event simulation of the policy.
//!
//! Cores run the vCPUs the [`Scheduler`] picks, preemptively: virtual time jumps to the
//! next event (a periodic vCPU's release, a tick, an accounting, the end of a running
//! vCPU's budget, a job's completion, an LL-boost retry), the time in between is
//! reported to the scheduler ([`Scheduler::ran`]) for each core's running vCPU, the
//! events are handled, and every core asks [`Scheduler::pick`] again. Switching a core
//! to a different vCPU costs `switch_ns`, consumed (and charged) by the incoming vCPU
//! before it makes progress. Ticks fall on every multiple of [`TICK_NS`] on every core,
//! accounting on every multiple of [`ACCT_NS`].
//!
//! Workloads ([`Workload`]): a periodic soft-real-time vCPU (a job of `work_ns` released
//! every `period_ns`; it asks for LL-boost at each release when so configured and leaves
//! it when it has no job left, then blocks until its next release; jobs queue if one is
//! late), a CPU-bound hog, and an LL spinner (a hog that asks for LL-boost whenever the
//! policy would let it). For every activation the simulation records the
//! release-to-start lateness and whether the job finished by the next release.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::credit::{ACCT_NS, Class, Config, CoreId, Dispatch, LlState, Scheduler, TICK_NS, VcpuId, VcpuParams};
use crate::migrate::Move;

/// What a simulated vCPU does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A job of `work_ns` every `period_ns`, the first at `offset_ns`; its deadline is
    /// its next release.
    Periodic {
        /// Release period.
        period_ns: u64,
        /// CPU time per job.
        work_ns: u64,
        /// First release.
        offset_ns: u64,
        /// Ask for LL-boost at the first release and hold it.
        ll: bool,
        /// Its releases are I/O wake-ups (BOOST); false for a wake-up by its own timer.
        io: bool,
    },
    /// Always runnable.
    Hog,
    /// Always runnable, and holding LL-boost from the start.
    LlSpinner,
}

/// A simulated vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimVcpu {
    /// How the scheduler treats it.
    pub params: VcpuParams,
    /// What it does.
    pub work: Workload,
}

/// A simulation run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Cores (1 to [`crate::credit::MAX_CORES`]).
    pub cores: u8,
    /// Scheduler settings.
    pub sched: Config,
    /// The vCPUs, in [`VcpuId`] order.
    pub vcpus: Vec<SimVcpu>,
    /// The cost of switching a core to another vCPU.
    pub switch_ns: u64,
    /// Simulated time; releases at or after it are not made.
    pub duration_ns: u64,
    /// Run one LL-first balancing step after every accounting.
    pub balance: bool,
}

/// One activation of a periodic vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activation {
    /// Release time.
    pub release: u64,
    /// When the job first made progress (`u64::MAX` if never).
    pub start: u64,
    /// When it finished (`u64::MAX` if not within the run).
    pub finish: u64,
    /// Its deadline: the next release.
    pub deadline: u64,
}

impl Activation {
    /// Release-to-start lateness (`u64::MAX` if it never started).
    pub fn lateness_ns(&self) -> u64 {
        self.start.saturating_sub(self.release)
    }

    /// True if it finished by its deadline.
    pub fn met(&self) -> bool {
        self.finish <= self.deadline
    }
}

/// What happened to one vCPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// CPU time consumed (switch costs included).
    pub consumed_ns: u64,
    /// CPU time consumed in the LL-boost class.
    pub ll_ns: u64,
    /// Every LL-boost window in which it ran in LL-boost: (the window's start,
    /// LL-boost time consumed in it).
    pub ll_stints: Vec<(u64, u64)>,
    /// Every activation that finished within the run, and every unfinished one whose
    /// deadline is within it, in release order.
    pub activations: Vec<Activation>,
}

impl VcpuStats {
    /// Activations that did not finish by their deadline.
    pub fn misses(&self) -> usize {
        self.activations.iter().filter(|a| !a.met()).count()
    }

    /// The `per_mille`-th lateness (nearest rank: 500 = median, 990 = p99, 1000 = max).
    pub fn lateness_ns(&self, per_mille: u64) -> u64 {
        let mut l: Vec<u64> = self.activations.iter().map(Activation::lateness_ns).collect();
        if l.is_empty() {
            return 0;
        }
        l.sort_unstable();
        let rank = (l.len() as u64 * per_mille).div_ceil(1000).max(1);
        l[usize::try_from(rank).unwrap_or(usize::MAX).min(l.len()) - 1]
    }

    /// Share of one core over `duration_ns`, in ppm.
    pub fn share_ppm(&self, duration_ns: u64) -> u64 {
        self.consumed_ns * 1_000_000 / duration_ns.max(1)
    }
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimResult {
    /// Per vCPU, in [`VcpuId`] order.
    pub vcpus: Vec<VcpuStats>,
    /// Migrations made by balancing, in order.
    pub moves: Vec<Move>,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    release: u64,
    left: u64,
    start: u64,
}

#[derive(Debug)]
struct VState {
    work: Workload,
    jobs: VecDeque<Job>,
    next_release: u64,
    ll_retry: u64,
    stats: VcpuStats,
}

#[derive(Clone, Copy, Debug, Default)]
struct CoreState {
    running: Option<Dispatch>,
    switch_left: u64,
    last: Option<VcpuId>,
}

/// Runs a simulation.
pub fn run(config: &SimConfig) -> SimResult {
    let mut sim = Sim::new(config);
    sim.run();
    let mut vcpus = Vec::new();
    for mut v in sim.v {
        for j in v.jobs {
            if j.release + period(v.work) <= config.duration_ns {
                v.stats.activations.push(Activation {
                    release: j.release,
                    start: j.start,
                    finish: u64::MAX,
                    deadline: j.release + period(v.work),
                });
            }
        }
        vcpus.push(v.stats);
    }
    SimResult {
        vcpus,
        moves: sim.moves,
    }
}

fn period(w: Workload) -> u64 {
    match w {
        Workload::Periodic { period_ns, .. } => period_ns,
        Workload::Hog | Workload::LlSpinner => u64::MAX / 2,
    }
}

#[derive(Debug)]
struct Sim<'a> {
    config: &'a SimConfig,
    sched: Scheduler,
    now: u64,
    v: Vec<VState>,
    cores: Vec<CoreState>,
    next_tick: u64,
    next_acct: u64,
    moves: Vec<Move>,
}

impl<'a> Sim<'a> {
    fn new(config: &'a SimConfig) -> Self {
        let mut sched = Scheduler::new(config.cores, config.sched);
        let mut v = Vec::new();
        for s in &config.vcpus {
            sched.add_vcpu(s.params).expect("the simulated vCPUs are admissible");
            let next_release = match s.work {
                Workload::Periodic { offset_ns, .. } => offset_ns,
                Workload::Hog | Workload::LlSpinner => u64::MAX,
            };
            v.push(VState {
                work: s.work,
                jobs: VecDeque::new(),
                next_release,
                ll_retry: 0,
                stats: VcpuStats::default(),
            });
        }
        let cores = alloc::vec![CoreState::default(); usize::from(config.cores)];
        Self {
            config,
            sched,
            now: 0,
            v,
            cores,
            next_tick: TICK_NS,
            next_acct: ACCT_NS,
            moves: Vec::new(),
        }
    }

    fn run(&mut self) {
        for i in 0..self.v.len() {
            if matches!(self.v[i].work, Workload::Hog | Workload::LlSpinner) {
                self.sched.wake(VcpuId(i as u8), 0, false);
            }
        }
        self.events();
        self.dispatch();
        let mut stuck = 0;
        loop {
            let t = self.next_event().min(self.config.duration_ns);
            stuck = if t == self.now { stuck + 1 } else { 0 };
            assert!(stuck < 1000, "the simulation makes no progress at {t} ns");
            self.advance(t);
            if t >= self.config.duration_ns {
                break;
            }
            self.events();
            self.dispatch();
        }
    }

    /// The earliest pending event.
    fn next_event(&self) -> u64 {
        let mut t = self.next_tick.min(self.next_acct);
        for (i, s) in self.v.iter().enumerate() {
            // A vCPU whose LL-boost window is spent gets it back when the next begins.
            let vcpu = VcpuId(i as u8);
            if let (Some(LlState::Spent { .. }), Some(w)) = (self.sched.ll_state(vcpu), self.sched.ll_next_window(vcpu))
            {
                t = t.min(w);
            }
            t = t.min(s.next_release);
            if matches!(s.work, Workload::LlSpinner) && s.ll_retry > self.now {
                t = t.min(s.ll_retry);
            }
        }
        for c in &self.cores {
            let Some(d) = c.running else { continue };
            t = t.min(self.now.saturating_add(d.budget_ns));
            if let Some(j) = self.v[d.vcpu.index()].jobs.front() {
                t = t.min(self.now + c.switch_left + j.left);
            }
        }
        t
    }

    /// Runs every core's vCPU from `now` to `t`.
    fn advance(&mut self, t: u64) {
        let dt = t - self.now;
        for c in &mut self.cores {
            let Some(d) = c.running else { continue };
            let overhead = c.switch_left.min(dt);
            c.switch_left -= overhead;
            let s = &mut self.v[d.vcpu.index()];
            if d.class == Class::LlBoost
                && let Some(LlState::In { entered, .. }) = self.sched.ll_state(d.vcpu)
            {
                s.stats.ll_ns += dt;
                let stints = &mut s.stats.ll_stints;
                match stints.last_mut() {
                    Some(w) if w.0 == entered => w.1 += dt,
                    _ => stints.push((entered, dt)),
                }
            }
            self.sched.ran(d.vcpu, dt);
            s.stats.consumed_ns += dt;
            if let Some(j) = s.jobs.front_mut()
                && dt > overhead
            {
                if j.start == u64::MAX {
                    j.start = self.now + overhead;
                }
                j.left -= dt - overhead;
            }
        }
        self.now = t;
    }

    /// Handles everything due at `now`.
    fn events(&mut self) {
        let now = self.now;
        for i in 0..self.v.len() {
            self.complete(i);
        }
        if now == self.next_tick {
            for c in 0..self.config.cores {
                self.sched.tick(CoreId(c), now);
            }
            self.next_tick += TICK_NS;
        }
        if now == self.next_acct {
            self.sched.account(now);
            if self.config.balance
                && let Some(m) = self.sched.balance()
            {
                self.cores[m.from.index()].running = None;
                self.moves.push(m);
            }
            self.next_acct += ACCT_NS;
        }
        for i in 0..self.v.len() {
            self.release(i);
            self.spin(i);
        }
    }

    /// Finishes vCPU `i`'s head job if it is done.
    fn complete(&mut self, i: usize) {
        let (now, vcpu) = (self.now, VcpuId(i as u8));
        let s = &mut self.v[i];
        let Workload::Periodic { period_ns, .. } = s.work else {
            return;
        };
        if s.jobs.front().is_none_or(|j| j.left > 0) {
            return;
        }
        let j = s.jobs.pop_front().expect("a head job");
        s.stats.activations.push(Activation {
            release: j.release,
            start: j.start,
            finish: now,
            deadline: j.release + period_ns,
        });
        if s.jobs.is_empty() {
            self.sched.block(vcpu, now);
        }
    }

    /// Releases vCPU `i`'s next job if it is due.
    fn release(&mut self, i: usize) {
        let (now, vcpu) = (self.now, VcpuId(i as u8));
        let s = &mut self.v[i];
        let Workload::Periodic {
            period_ns,
            work_ns,
            ll,
            io,
            ..
        } = s.work
        else {
            return;
        };
        if s.next_release != now {
            return;
        }
        s.next_release += period_ns;
        s.jobs.push_back(Job {
            release: now,
            left: work_ns,
            start: u64::MAX,
        });
        if s.jobs.len() == 1 {
            self.sched.wake(vcpu, now, io);
        }
        if ll && self.sched.ll_state(vcpu) == Some(LlState::Off) {
            self.request_ll(i);
        }
    }

    /// An LL spinner asks for LL-boost when it is out of it and may be let in.
    fn spin(&mut self, i: usize) {
        if self.v[i].work == Workload::LlSpinner && self.v[i].ll_retry <= self.now {
            self.request_ll(i);
        }
    }

    fn request_ll(&mut self, i: usize) {
        let (now, vcpu) = (self.now, VcpuId(i as u8));
        match self.sched.ll_request(vcpu, now) {
            Ok(_) => {}
            Err(crate::credit::LlError::TooEarly { retry_at }) => self.v[i].ll_retry = retry_at,
            Err(e) => panic!("LL-boost request refused: {e:?}"),
        }
    }

    /// Every core asks the scheduler what to run.
    fn dispatch(&mut self) {
        for c in 0..self.cores.len() {
            let d = self.sched.pick(CoreId(c as u8), self.now);
            let core = &mut self.cores[c];
            let new = d.map(|d| d.vcpu);
            if new != core.running.map(|d| d.vcpu) {
                core.switch_left = if new.is_some() && new != core.last {
                    self.config.switch_ns
                } else {
                    0
                };
            }
            if new.is_some() {
                core.last = new;
            }
            core.running = d;
        }
    }
}
