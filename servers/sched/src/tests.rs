//! Host tests: the policy's rules, and the simulation's measurements against them.

use alloc::vec;
use alloc::vec::Vec;
use std::println;

use crate::admit::{AdmitError, LL_BOUND_PPM, MIN_SBT_NS, Reservation, admit};
use crate::credit::{
    AddError, CREDIT_BOUND_NS, Class, Config, CoreId, Debit, LlError, LlState, MAX_BORROW_NS, Scheduler, TICK_NS,
    VcpuId, VcpuParams,
};
use crate::migrate::{Candidate, Move, plan};
use crate::sim::{self, SimConfig, SimResult, SimVcpu, VcpuStats, Workload};

/// The soft-real-time task of paper 000: 60 µs of work every 2.3 ms.
const PERIOD: u64 = 2_300_000;
const WORK: u64 = 60_000;
/// Its reservation: SBT 200 µs (the job and its switch cost with room to spare, so a
/// job never runs out of LL-boost), USBT 2 ms (below the period, so the task may enter
/// at every release even if a release is late by up to 300 µs). 10 % of a core.
const SBT: u64 = 200_000;
const USBT: u64 = 2_000_000;
/// The simulated cost of switching a core to another vCPU.
const SWITCH: u64 = 3_000;
/// 10 000 periods.
const RUN: u64 = 10_000 * PERIOD;

const C0: CoreId = CoreId(0);

fn rt(ll: bool, io: bool) -> SimVcpu {
    SimVcpu {
        params: VcpuParams::new(C0).ll(Reservation::new(SBT, USBT)).soft_rt(),
        work: Workload::Periodic {
            period_ns: PERIOD,
            work_ns: WORK,
            offset_ns: 0,
            ll,
            io,
        },
    }
}

fn hog(params: VcpuParams) -> SimVcpu {
    SimVcpu {
        params,
        work: Workload::Hog,
    }
}

fn one_core(sched: Config, vcpus: Vec<SimVcpu>, duration_ns: u64) -> SimResult {
    sim::run(&SimConfig {
        cores: 1,
        sched,
        vcpus,
        switch_ns: SWITCH,
        duration_ns,
        balance: false,
    })
}

fn report(name: &str, s: &VcpuStats, duration_ns: u64) {
    println!(
        "{name}: {} activations, {} misses, lateness p50 {} ns, p99 {} ns, max {} ns, share {} ppm",
        s.activations.len(),
        s.misses(),
        s.lateness_ns(500),
        s.lateness_ns(990),
        s.lateness_ns(1000),
        s.share_ppm(duration_ns)
    );
}

/// RT + hog on one core for 10 000 periods, LL-boost on or off.
fn rt_and_hog(ll: bool, io: bool, sched: Config) -> SimResult {
    one_core(sched, vec![rt(ll, io), hog(VcpuParams::new(C0))], RUN)
}

#[test]
fn ll_boost_meets_every_deadline() {
    let r = rt_and_hog(true, false, Config::default());
    let s = &r.vcpus[0];
    report("credit + LL-boost: RT", s, RUN);
    report("credit + LL-boost: hog", &r.vcpus[1], RUN);
    assert_eq!(s.activations.len(), 10_000);
    assert_eq!(s.misses(), 0);
    // The RT vCPU is the only LL-boost vCPU of its core and enters LL-boost at every
    // release (USBT < period), so it preempts the hog at once: its lateness is the
    // switch and nothing else.
    let bound = SWITCH;
    assert!(
        s.lateness_ns(1000) <= bound,
        "max lateness {} > {bound}",
        s.lateness_ns(1000)
    );
    assert_eq!(s.ll_stints.len(), 10_000, "one LL-boost stint per release");
    // The hog has everything else (work-conserving), within 1 % of the core.
    let expected_hog = 1_000_000 - s.share_ppm(RUN);
    assert!(r.vcpus[1].share_ppm(RUN).abs_diff(expected_hog) < 10_000);
}

#[test]
fn ll_boost_latency_with_two_rt_vcpus() {
    // Two LL-boost vCPUs (2.3 ms and 3.1 ms) and a hog: one may wait behind the other's
    // stint, at most the other's job and two switches (its SBT would be the bound for a
    // job that did not finish: 60 µs < SBT).
    let mut other = rt(true, false);
    other.work = Workload::Periodic {
        period_ns: 3_100_000,
        work_ns: WORK,
        offset_ns: 0,
        ll: true,
        io: false,
    };
    let r = one_core(
        Config::default(),
        vec![rt(true, false), other, hog(VcpuParams::new(C0))],
        RUN,
    );
    report("two LL-boost vCPUs: RT 2.3 ms", &r.vcpus[0], RUN);
    report("two LL-boost vCPUs: RT 3.1 ms", &r.vcpus[1], RUN);
    let bound = WORK + 2 * SWITCH;
    for s in &r.vcpus[..2] {
        assert_eq!(s.misses(), 0);
        assert!(
            s.lateness_ns(1000) <= bound,
            "max lateness {} > {bound}",
            s.lateness_ns(1000)
        );
    }
    let worst = r.vcpus[..2].iter().map(|s| s.lateness_ns(1000)).max().unwrap();
    assert!(worst > SWITCH, "the two never collided: the test tests nothing");
}

#[test]
fn plain_credit_shows_the_problem() {
    let ll = rt_and_hog(true, false, Config::default());
    let plain = rt_and_hog(false, false, Config::default());
    let s = &plain.vcpus[0];
    report("plain credit (timer wake-ups): RT", s, RUN);
    report("plain credit (timer wake-ups): hog", &plain.vcpus[1], RUN);
    let boost = rt_and_hog(false, true, Config::default());
    report("plain credit (I/O wake-ups, BOOST): RT", &boost.vcpus[0], RUN);
    let exact = rt_and_hog(false, false, Config::default().debit(Debit::Exact));
    report("plain credit, exact debit: RT", &exact.vcpus[0], RUN);
    let borrow = rt_and_hog(false, false, Config::default().borrowing());
    report("plain credit + borrowing: RT", &borrow.vcpus[0], RUN);
    let all = rt_and_hog(true, false, Config::default().borrowing());
    report("credit + LL-boost + borrowing: RT", &all.vcpus[0], RUN);
    assert_eq!(s.activations.len(), 10_000);
    // Measured, not assumed: the hog holds the core for whole ticks while both are
    // UNDER, so the lateness is larger than with LL-boost by orders of magnitude.
    assert!(s.misses() > 0, "plain credit missed no deadline");
    assert!(s.lateness_ns(1000) >= 100 * ll.vcpus[0].lateness_ns(1000).max(1));
    assert!(s.lateness_ns(990) > 10 * ll.vcpus[0].lateness_ns(990).max(1));
}

fn shares(r: &SimResult, duration_ns: u64) -> Vec<u64> {
    r.vcpus.iter().map(|s| s.share_ppm(duration_ns)).collect()
}

#[test]
fn shares_follow_weights() {
    const T: u64 = 6_000_000_000;
    let r = one_core(
        Config::default(),
        vec![hog(VcpuParams::new(C0)), hog(VcpuParams::new(C0).weight(512))],
        T,
    );
    let s = shares(&r, T);
    println!("hogs 256/512: {s:?} ppm");
    assert!(
        s[0].abs_diff(333_333) < 20_000 && s[1].abs_diff(666_667) < 20_000,
        "{s:?}"
    );

    let w = [256, 256, 512];
    let r = one_core(
        Config::default(),
        w.iter().map(|&w| hog(VcpuParams::new(C0).weight(w))).collect(),
        T,
    );
    let s = shares(&r, T);
    println!("hogs 256/256/512: {s:?} ppm");
    for (share, want) in s.iter().zip([250_000, 250_000, 500_000]) {
        assert!(share.abs_diff(want) < 20_000, "{s:?}");
    }
}

#[test]
fn a_cap_is_not_exceeded() {
    const T: u64 = 6_000_000_000;
    let r = one_core(
        Config::default(),
        vec![hog(VcpuParams::new(C0).cap(20)), hog(VcpuParams::new(C0))],
        T,
    );
    let s = shares(&r, T);
    println!("hog capped at 20 % beside a hog: {s:?} ppm");
    assert!(s[0] <= 200_000, "{s:?}");
    assert!(s[0] >= 190_000, "the capped hog should get its cap: {s:?}");
    assert!(s[1] >= 790_000, "the other hog gets the rest: {s:?}");
    // Alone, a capped hog leaves the core idle rather than exceed its cap.
    let r = one_core(Config::default(), vec![hog(VcpuParams::new(C0).cap(30))], T);
    println!("hog capped at 30 % alone: {:?} ppm", shares(&r, T));
    assert!(r.vcpus[0].share_ppm(T) <= 300_000);
}

#[test]
fn sbt_and_usbt_bound_a_spinner() {
    const T: u64 = 5_000_000_000;
    let spinner = SimVcpu {
        params: VcpuParams::new(C0).ll(Reservation::new(SBT, USBT)),
        work: Workload::LlSpinner,
    };
    let r = one_core(Config::default(), vec![spinner, hog(VcpuParams::new(C0))], T);
    let s = &r.vcpus[0];
    println!(
        "LL spinner: {} stints, {} ns in LL-boost ({} ppm), {} ns in all ({} ppm)",
        s.ll_stints.len(),
        s.ll_ns,
        s.ll_ns * 1_000_000 / T,
        s.consumed_ns,
        s.share_ppm(T)
    );
    for w in s.ll_stints.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= USBT,
            "re-entered {} ns after entering",
            w[1].0 - w[0].0
        );
    }
    for &(entry, used) in &s.ll_stints {
        assert!(used <= SBT, "stint at {entry} used {used} > SBT");
    }
    assert_eq!(s.ll_stints.iter().map(|x| x.1).sum::<u64>(), s.ll_ns);
    assert!(s.ll_stints.len() as u64 <= T / USBT + 1);
    assert!(s.ll_ns <= SBT * (T / USBT + 1));
    // It did spin: nearly every stint used all of SBT (else the test tests nothing).
    assert!(s.ll_ns >= SBT * s.ll_stints.len() as u64 * 99 / 100);
    assert!(s.ll_stints.len() as u64 >= T / USBT * 99 / 100);
}

#[test]
fn ll_request_rules() {
    let mut s = Scheduler::new(1, Config::default());
    let v = s.add_vcpu(VcpuParams::new(C0).ll(Reservation::new(SBT, USBT))).unwrap();
    let plain = s.add_vcpu(VcpuParams::new(C0)).unwrap();
    assert_eq!(s.ll_request(plain, 0), Err(LlError::NoReservation));
    assert_eq!(s.ll_request(VcpuId(9), 0), Err(LlError::NoSuchVcpu));
    s.wake(plain, 0, false);
    assert_eq!(s.pick(C0, 0).unwrap().vcpu, plain);
    assert!(!s.wake(v, 1_000, false), "same class: no preemption");
    assert_eq!(s.ll_request(v, 1_000), Ok(true), "LL-boost preempts");
    let d = s.pick(C0, 1_000).unwrap();
    assert_eq!(
        (d.vcpu, d.class, d.budget_ns, d.period_ns),
        (v, Class::LlBoost, SBT, USBT)
    );
    // It holds LL-boost across jobs: the next window gives a fresh SBT.
    s.ran(v, 50_000);
    s.block(v, 51_000);
    assert_eq!(
        s.ll_state(v),
        Some(LlState::In {
            entered: 1_000,
            used_ns: 50_000
        })
    );
    assert!(s.wake(v, 1_000 + USBT + 5, false), "woken in LL-boost: preempts");
    assert_eq!(
        s.ll_state(v),
        Some(LlState::In {
            entered: 1_000 + USBT,
            used_ns: 0
        })
    );
    assert_eq!(s.ll_next_window(v), Some(1_000 + 2 * USBT));
    // Using up SBT spends the window: its credit class until the next one.
    let w1 = 1_000 + USBT;
    s.ran(v, SBT);
    assert_eq!(s.ll_state(v), Some(LlState::Spent { entered: w1 }));
    assert_eq!(s.class(v), Some(Class::Under));
    assert_eq!(s.ll_request(v, w1 + SBT), Ok(false), "asking again changes nothing");
    assert_eq!(s.class(v), Some(Class::Under));
    let d = s.pick(C0, w1 + USBT).unwrap();
    assert_eq!(
        (d.vcpu, d.class, d.budget_ns),
        (v, Class::LlBoost, SBT),
        "back in the next window"
    );
    // The kernel's word (a timeout fault) spends it the same way.
    s.ll_spent(v, w1 + USBT + 10);
    assert_eq!(s.ll_state(v), Some(LlState::Spent { entered: w1 + USBT }));
    // Leaving: no re-entry before the window it left in is over.
    let w2 = w1 + USBT;
    s.ll_leave(v, w2 + 20);
    assert_eq!(s.ll_state(v), Some(LlState::Out { entered: w2 }));
    assert_eq!(s.ll_next_window(v), None);
    assert_eq!(
        s.ll_request(v, w2 + USBT - 1),
        Err(LlError::TooEarly { retry_at: w2 + USBT })
    );
    assert_eq!(
        s.ll_request(v, w2 + USBT + 7),
        Ok(false),
        "it runs already: nothing to preempt"
    );
    assert_eq!(
        s.ll_state(v),
        Some(LlState::In {
            entered: w2 + USBT + 7,
            used_ns: 0
        })
    );
    // `charged` (the server's report at a tick) leaves SBT to the kernel.
    s.charged(v, 10 * SBT);
    assert_eq!(s.class(v), Some(Class::LlBoost));
}

#[test]
fn admission_control() {
    let r = Reservation::new(SBT, USBT); // 10 %
    assert_eq!(r.ppm(), 100_000);
    let mut on_core = Vec::new();
    for i in 1..=5 {
        assert_eq!(admit(on_core.iter().copied(), r), Ok(i * 100_000));
        on_core.push(r);
    }
    assert_eq!(
        admit(on_core.iter().copied(), Reservation::new(10_000, USBT)),
        Err(AdmitError::Overloaded {
            total_ppm: 505_000,
            bound_ppm: LL_BOUND_PPM
        })
    );
    // Rounding is up, so an exact 50 % passes and a hair more does not.
    assert_eq!(admit([], Reservation::new(1_000_000, 2_000_000)), Ok(500_000));
    assert!(admit([], Reservation::new(1_000_001, 2_000_000)).is_err());
    assert_eq!(
        admit([], Reservation::new(MIN_SBT_NS - 1, USBT)),
        Err(AdmitError::SbtTooSmall { sbt_ns: 9_999 })
    );
    assert_eq!(
        admit([], Reservation::new(3_000_000, USBT)),
        Err(AdmitError::SbtAboveUsbt {
            sbt_ns: 3_000_000,
            usbt_ns: USBT
        })
    );
    let msg = std::format!(
        "{}",
        AdmitError::Overloaded {
            total_ppm: 505_000,
            bound_ppm: LL_BOUND_PPM
        }
    );
    assert!(msg.contains("50.5000 %") && msg.contains("50.0000 %"), "{msg}");

    // The scheduler admits per core.
    let mut s = Scheduler::new(2, Config::default());
    for _ in 0..5 {
        s.add_vcpu(VcpuParams::new(C0).ll(r)).unwrap();
    }
    assert!(matches!(
        s.add_vcpu(VcpuParams::new(C0).ll(r)),
        Err(AddError::Admission(AdmitError::Overloaded { .. }))
    ));
    let other = s.add_vcpu(VcpuParams::new(CoreId(1)).ll(r)).unwrap();
    assert!(matches!(s.migrate(other, C0), Err(AddError::Admission(_))));
}

#[test]
fn borrowing() {
    // Exact debit, so that `ran` moves the balance.
    let setup = |config: Config, soft_rt: bool| {
        let mut s = Scheduler::new(1, config.debit(Debit::Exact));
        let p = VcpuParams::new(C0);
        let v = s.add_vcpu(if soft_rt { p.soft_rt() } else { p }).unwrap();
        s.wake(v, 0, false);
        s.pick(C0, 0);
        s.ran(v, 5_000_000);
        s.tick(C0, TICK_NS);
        (s, v)
    };
    // Off by default: credit −5 ms is OVER.
    assert_eq!(Config::default().borrow_ns, 0);
    let (s, v) = setup(Config::default(), true);
    assert_eq!(s.credit(v), Some(-5_000_000));
    assert_eq!(s.class(v), Some(Class::Over));
    // On: a soft-RT vCPU borrows down to −MAX_BORROW_NS and runs as UNDER ...
    let (mut s, v) = setup(Config::default().borrowing(), true);
    assert_eq!(s.class(v), Some(Class::Under));
    s.ran(v, MAX_BORROW_NS - 5_000_000);
    assert_eq!(s.class(v), Some(Class::Under), "exactly at the bound");
    // ... and no further.
    s.ran(v, 1);
    assert_eq!(s.class(v), Some(Class::Over));
    // Borrowing, it runs as UNDER: it preempts an OVER hog, which it does not without.
    for (config, preempts) in [(Config::default(), false), (Config::default().borrowing(), true)] {
        let mut s = Scheduler::new(1, config.debit(Debit::Exact));
        let hog = s.add_vcpu(VcpuParams::new(C0)).unwrap();
        let rt = s.add_vcpu(VcpuParams::new(C0).soft_rt()).unwrap();
        s.ran(hog, 20_000_000);
        s.ran(rt, 5_000_000);
        s.tick(C0, TICK_NS);
        s.wake(hog, TICK_NS, false);
        s.pick(C0, TICK_NS);
        assert_eq!(s.wake(rt, TICK_NS + 1, false), preempts);
        let ran = s.pick(C0, TICK_NS + 1).unwrap().vcpu;
        assert_eq!(ran == rt, preempts);
    }
    // Only soft-RT vCPUs borrow; and the bound is clamped.
    let (s, v) = setup(Config::default().borrowing(), false);
    assert_eq!(s.class(v), Some(Class::Over));
    assert_eq!(
        Scheduler::new(
            1,
            Config {
                borrow_ns: u64::MAX,
                ..Config::default()
            }
        )
        .config()
        .borrow_ns,
        MAX_BORROW_NS
    );
}

#[test]
fn accounting_bounds_credit() {
    // Tick debit: the tick that finds a vCPU running debits a tick and activates it.
    let mut s = Scheduler::new(1, Config::default());
    let v = s.add_vcpu(VcpuParams::new(C0)).unwrap();
    s.wake(v, 0, false);
    s.pick(C0, 0);
    s.ran(v, 1_000);
    assert_eq!(s.credit(v), Some(0), "tick mode: running is not debited");
    s.account(5_000_000);
    assert_eq!(s.credit(v), Some(0), "not active yet: no credit");
    s.tick(C0, TICK_NS);
    assert_eq!(s.credit(v), Some(-10_000_000));
    assert_eq!(s.class(v), Some(Class::Over));
    s.block(v, TICK_NS);
    s.account(30_000_000);
    assert_eq!(s.credit(v), Some(20_000_000));
    assert_eq!(s.class(v), Some(Class::Under));
    // An idle vCPU cannot hoard: above the bound it is deactivated and halved.
    s.account(60_000_000);
    assert_eq!(s.credit(v), Some(25_000_000), "50 ms > bound: halved, and inactive now");
    s.account(90_000_000);
    assert_eq!(s.credit(v), Some(25_000_000), "no credit while inactive");
    // Exact debit: what ran is debited and makes the vCPU active; debt is bounded.
    let mut s = Scheduler::new(1, Config::default().debit(Debit::Exact));
    let v = s.add_vcpu(VcpuParams::new(C0)).unwrap();
    s.ran(v, 100_000_000);
    assert_eq!(s.credit(v), Some(-100_000_000));
    s.account(30_000_000);
    assert_eq!(s.credit(v), Some(-CREDIT_BOUND_NS));
}

#[test]
fn io_wakeup_boosts_until_the_tick() {
    let mut s = Scheduler::new(1, Config::default().debit(Debit::Exact));
    let h = s.add_vcpu(VcpuParams::new(C0)).unwrap();
    let v = s.add_vcpu(VcpuParams::new(C0)).unwrap();
    s.wake(h, 0, false);
    s.pick(C0, 0);
    assert!(s.wake(v, 100, true), "BOOST preempts UNDER");
    assert_eq!(s.pick(C0, 100).map(|d| (d.vcpu, d.class)), Some((v, Class::Boost)));
    s.tick(C0, TICK_NS);
    assert_eq!(s.class(v), Some(Class::Under));
    // Round-robin: the tick sent v to the tail.
    assert_eq!(s.pick(C0, TICK_NS).unwrap().vcpu, h);
}

#[test]
fn migration_moves_ll_boost_first() {
    let r = Some(Reservation::new(SBT, USBT));
    let c = |vcpu, core, load_ppm, ll| Candidate {
        vcpu: VcpuId(vcpu),
        core: CoreId(core),
        load_ppm,
        ll,
    };
    // Core 0: two hogs and an RT vCPU (listed last, heavier than nothing); core 1: a hog.
    let vcpus = [
        c(0, 0, 1_000_000, None),
        c(1, 0, 1_000_000, None),
        c(2, 0, 40_000, r),
        c(3, 1, 1_000_000, None),
    ];
    let loads = [2_040_000, 1_000_000];
    assert_eq!(
        plan(&loads, &vcpus),
        Some(Move {
            vcpu: VcpuId(2),
            from: CoreId(0),
            to: CoreId(1)
        })
    );
    // With no LL-boost vCPU, the lightest other goes.
    let vcpus2 = [c(0, 0, 1_000_000, None), c(1, 0, 900_000, None), c(3, 1, 0, None)];
    assert_eq!(
        plan(&[1_900_000, 0], &vcpus2),
        Some(Move {
            vcpu: VcpuId(1),
            from: CoreId(0),
            to: CoreId(1)
        })
    );
    // Not overloaded: nothing moves.
    assert_eq!(plan(&[900_000, 0], &vcpus2[..2]), None);
    // A target without room for the reservation: the next candidate goes instead.
    let full = Some(Reservation::new(1_000_000, 2_000_000)); // 50 %
    let vcpus3 = [
        c(0, 0, 1_000_000, None),
        c(1, 0, 500_000, None),
        c(2, 0, 40_000, r),
        c(3, 1, 10_000, full),
    ];
    assert_eq!(
        plan(&[1_540_000, 10_000], &vcpus3),
        Some(Move {
            vcpu: VcpuId(1),
            from: CoreId(0),
            to: CoreId(1)
        })
    );
}

#[test]
fn balancing_on_two_cores_moves_the_rt_vcpu_first() {
    // Core 0 holds two hogs and the RT vCPU with LL-boost: it is overloaded. Core 1 has
    // one hog. The first move is the RT vCPU's, and it keeps every deadline throughout.
    let p = |core| VcpuParams::new(CoreId(core));
    let vcpus = vec![hog(p(0)), hog(p(0)), rt(true, false), hog(p(1))];
    let r = sim::run(&SimConfig {
        cores: 2,
        sched: Config::default(),
        vcpus,
        switch_ns: SWITCH,
        duration_ns: RUN,
        balance: true,
    });
    println!("balancing moves: {:?}", r.moves);
    report("RT after LL-first balancing", &r.vcpus[2], RUN);
    assert_eq!(r.moves.first().map(|m| m.vcpu), Some(VcpuId(2)));
    assert_eq!(r.vcpus[2].misses(), 0);
}
