//! Several cores: threads placed on the other cores run there while the root spins on
//! core 0 (so on one core they could not run at all); IPC and notifications across
//! cores both ways; migration by rebinding a scheduling context; a TLB shootdown; a
//! thread deleted, suspended or read while it runs on another core; a stress test of
//! IPC and retype/delete on every core. On a one-core board they are skipped.
//!
//! The root runs at priority 255 on core 0 and waits by spinning on the counter
//! ([`spin_until`]) unless a test needs core 0 for a thread of its own, so whatever
//! progresses meanwhile progresses on another core.
//!
//! Every spinning loop here says so (`libl4::syscall::spin_hint`, a `yield`): QEMU's TCG
//! runs the cores of the machine one at a time, round-robin, and under `-icount` a
//! core that never yields keeps its turn for as long as no timer is due (nothing in
//! the kernel is, while every thread is unbudgeted), so the others would hardly run.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::bootinfo::slot;
use libl4::cap::{SchedControl, Tcb, Untyped};
use libl4::ipc::{self, CPtr};
use libl4::syscall::spin_hint;
use libl4::time::{counter, us_to_ticks};
use libl4::{Error, Fault, MsgInfo, ObjType, Rights};

use crate::env::{Env, ROOT_CNODE, ROOT_VSPACE, entry};
use crate::t_irq_sched::sc;
use crate::t_tcb::park;
use crate::{R, check, err, ok, skip};

crate::tests![
    "each core that came up has a SchedControl, and the boot info says which" => controls,
    "affinities of cores that did not come up are refused" => bad_affinity,
    "a thread placed on another core runs there while the root spins on core 0" => runs_in_parallel,
    "a suspended thread of another core has stopped when the suspend returns" => suspend_remote,
    "reading the registers of a thread running on another core, which goes on" => read_remote,
    "IPC across cores, both ways" => ipc_across,
    "notifications across cores, both ways, none lost" => signal_across,
    "rebinding a scheduling context migrates its thread" => migrate_by_sc,
    "a page unmapped on core 0 faults on the core that used it (TLB shootdown)" => shootdown,
    "deleting a thread that runs on another core" => delete_remote,
    "every core: IPC and retype/delete for a fixed number of rounds" => stress,
];

/// Counters the test threads advance.
static COUNT: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
/// Failures the test threads saw.
static ERRORS: AtomicU64 = AtomicU64::new(0);

/// The cores other than 0 that came up.
fn others(env: &Env) -> impl Iterator<Item = u64> + use<> {
    let cpus = env.bi.cpus;
    (1..4).filter(move |&n| cpus & (1 << n) != 0)
}

/// The first `N` other cores, or a skip.
fn cores<const N: usize>(env: &Env) -> Result<[u64; N], crate::Fail> {
    let mut out = [0; N];
    let mut it = others(env);
    for o in &mut out {
        *o = it.next().ok_or_else(|| skip("needs more cores").unwrap_err())?;
    }
    Ok(out)
}

/// Spin on core 0 (not blocking) until `done` or `ms` milliseconds of the counter.
fn spin_until(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = counter() + us_to_ticks(ms * 1000);
    while counter() < end {
        if done() {
            return true;
        }
        spin_hint();
    }
    done()
}

/// A thread running `f(arg)` at `prio` on core `cpu`, started.
fn on_core(
    env: &mut Env,
    f: extern "C" fn(u64) -> !,
    arg: u64,
    prio: u64,
    cpu: u64,
    fault_ep: CPtr,
) -> Result<Tcb, crate::Fail> {
    let t = ok(env.thread(entry(f), arg, prio, fault_ep), "thread")?;
    ok(t.set_affinity(cpu), "affinity")?;
    ok(t.resume(), "resume")?;
    Ok(t)
}

/// Count in `COUNT[i]` forever.
extern "C" fn count(i: u64) -> ! {
    let c = &COUNT[i as usize % COUNT.len()];
    loop {
        c.fetch_add(1, Ordering::Relaxed);
        spin_hint();
    }
}

/// True if `COUNT[i]` moves within `ms` milliseconds.
fn counting(i: usize, ms: u64) -> bool {
    let before = COUNT[i].load(Ordering::Relaxed);
    spin_until(ms, || COUNT[i].load(Ordering::Relaxed) > before + 100)
}

fn controls(env: &mut Env) -> R {
    check(env.bi.cpus & 1 == 1, "CPU 0 is up")?;
    for cpu in 0..4 {
        let s = slot::sched_control(cpu).unwrap_or(0);
        let (ty, badge, _) = ok(ROOT_CNODE.identify(s), "identify")?;
        let up = env.bi.cpus & (1 << cpu) != 0;
        check(
            (ty == ObjType::SchedControl as u64 + 1) == up && (!up || badge == cpu as u64),
            "a SchedControl for each core that is up, for it",
        )?;
    }
    Ok(())
}

fn bad_affinity(env: &mut Env) -> R {
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    err(t.set_affinity(4), Error::RangeError, "core 4")?;
    err(t.set_affinity(u64::MAX), Error::RangeError, "core 2^64 - 1")?;
    if let Some(down) = (1..4).find(|n| env.bi.cpus & (1 << n) == 0) {
        err(t.set_affinity(down), Error::RangeError, "a core that is not up")?;
    }
    for cpu in others(env) {
        ok(t.set_affinity(cpu), "a core that is up")?;
        check(ok(t.cpu(), "cpu")? == cpu, "placed there")?;
    }
    ok(t.set_affinity(0), "core 0")
}

fn runs_in_parallel(env: &mut Env) -> R {
    let [c] = cores::<1>(env)?;
    let t = on_core(env, count, 0, 100, c, 0)?;
    check(ok(t.cpu(), "cpu")? == c, "on its core")?;
    let ran = counting(0, 2000);
    ok(t.suspend(), "stop")?;
    check(ran, "it ran while the root, above it, spun on core 0")
}

/// A thread on another core counting in `COUNT[i]`, checked to be counting.
fn counter_elsewhere(env: &mut Env, i: usize) -> Result<Tcb, crate::Fail> {
    let [c] = cores::<1>(env)?;
    let t = on_core(env, count, i as u64, 100, c, 0)?;
    if !counting(i, 2000) {
        ok(t.suspend(), "stop")?;
        check(false, "running")?;
    }
    Ok(t)
}

fn suspend_remote(env: &mut Env) -> R {
    let t = counter_elsewhere(env, 1)?;
    ok(t.suspend(), "suspend")?;
    let at = COUNT[1].load(Ordering::Relaxed);
    check(!counting(1, 20), "stopped at once")?;
    check(COUNT[1].load(Ordering::Relaxed) == at, "not a step more")?;
    ok(t.resume(), "resume")?;
    let again = counting(1, 2000);
    ok(t.suspend(), "stop")?;
    check(again, "runs again on its core after a resume")
}

fn read_remote(env: &mut Env) -> R {
    let t = counter_elsewhere(env, 2)?;
    let pc = entry(count);
    for _ in 0..20 {
        let regs = ok(t.read_registers(0, 1), "read pc")?;
        // The counting loop is a few instructions into `count`.
        if !(pc..pc + 256).contains(&regs[0]) {
            ok(t.suspend(), "stop")?;
            return check(false, "the pc is in the thread's loop");
        }
    }
    let goes_on = counting(2, 2000);
    ok(t.suspend(), "stop")?;
    check(goes_on, "it goes on after each read")
}

/// Answer calls on `ep` (low 16 bits of `arg`) with reply `rp` (next 16 bits): the
/// first word plus one.
extern "C" fn serve(arg: u64) -> ! {
    let (ep, rp) = (arg & 0xffff, (arg >> 16) & 0xffff);
    let mut m = ipc::recv(ep, rp);
    loop {
        m = ipc::reply_recv(ep, rp, MsgInfo::new(0, 1, 0), [m.mr[0] + 1, 0, 0, 0]);
    }
}

/// Call `ep` (low 16 bits) 100 times, counting wrong answers in [`ERRORS`], then signal
/// `done` (bits 16..32) and stop.
extern "C" fn client(arg: u64) -> ! {
    let (ep, done) = (arg & 0xffff, (arg >> 16) & 0xffff);
    for i in 0..100 {
        let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]);
        if m.info.error().is_some() || m.mr[0] != i + 1 {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = ipc::signal(done);
    park()
}

fn ipc_across(env: &mut Env) -> R {
    let [c] = cores::<1>(env)?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    // Core 0 calls core c.
    let server = on_core(env, serve, ep | rp << 16, 100, c, 0)?;
    let mut right = 0;
    for i in 0..100 {
        let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]);
        right += u64::from(m.info.error().is_none() && m.mr[0] == i + 1);
    }
    ok(server.suspend(), "stop server")?;
    check(right == 100, "core 0 to core c: every answer")?;
    // Core c calls core 0: the server runs on core 0 below the root, which waits.
    ERRORS.store(0, Ordering::Relaxed);
    let ep2 = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp2 = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let done = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let server = on_core(env, serve, ep2 | rp2 << 16, 100, 0, 0)?;
    let cl = on_core(env, client, ep2 | done << 16, 100, c, 0)?;
    let r = ipc::wait(done);
    ok(cl.suspend(), "stop client")?;
    ok(server.suspend(), "stop server")?;
    ok(r, "done")?;
    check(ERRORS.load(Ordering::Relaxed) == 0, "core c to core 0: every answer")
}

/// Wait on `ntfn` (low 16 bits) and count each wake-up in `COUNT[3]`; then, 100 times,
/// signal `to` (bits 16..32) and wait for `ack` (bits 32..48).
extern "C" fn waiter(arg: u64) -> ! {
    let (ntfn, to, ack) = (arg & 0xffff, (arg >> 16) & 0xffff, (arg >> 32) & 0xffff);
    for _ in 0..100 {
        if ipc::wait(ntfn).is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        COUNT[3].fetch_add(1, Ordering::Relaxed);
    }
    for _ in 0..100 {
        let _ = ipc::signal(to);
        if ipc::wait(ack).is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    park()
}

/// A notification and a copy of its cap with badge 1 (so a poll tells a signal apart).
fn badged_notification(env: &mut Env) -> Result<(CPtr, CPtr), crate::Fail> {
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(s, n, Rights::all(), 1), "badged copy")?;
    Ok((n, s))
}

fn signal_across(env: &mut Env) -> R {
    let [c] = cores::<1>(env)?;
    ERRORS.store(0, Ordering::Relaxed);
    COUNT[3].store(0, Ordering::Relaxed);
    let to_thread = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let ack = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let (to_root, to_root_badged) = badged_notification(env)?;
    let t = on_core(env, waiter, to_thread | to_root_badged << 16 | ack << 32, 100, c, 0)?;
    // Core 0 wakes core c: each signal is taken before the next is sent.
    for i in 1..=100 {
        ok(ipc::signal(to_thread), "signal")?;
        if !spin_until(1000, || COUNT[3].load(Ordering::Relaxed) >= i) {
            ok(t.suspend(), "stop")?;
            return check(false, "core c woke for every signal from core 0");
        }
    }
    // Core c wakes core 0, which polls (spinning) for each.
    for _ in 0..100 {
        if !spin_until(1000, || ipc::poll(to_root).is_ok_and(|b| b == 1)) {
            ok(t.suspend(), "stop")?;
            return check(false, "core 0 saw every signal from core c");
        }
        ok(ipc::signal(ack), "ack")?;
    }
    ok(t.suspend(), "stop")?;
    check(ERRORS.load(Ordering::Relaxed) == 0, "no failed wait")
}

fn migrate_by_sc(env: &mut Env) -> R {
    let [a, b] = cores::<2>(env)?;
    let (on_a, on_b) = (sc(env)?, sc(env)?);
    ok(
        SchedControl(slot::sched_control(a as usize).unwrap_or(0)).configure(on_a, 5_000, 5_000, 0),
        "configure on a",
    )?;
    ok(
        SchedControl(slot::sched_control(b as usize).unwrap_or(0)).configure(on_b, 5_000, 5_000, 0),
        "configure on b",
    )?;
    let t = ok(env.thread(entry(count), 4, 100, 0), "thread")?;
    ok(on_a.bind(t), "bind a")?;
    check(ok(t.cpu(), "cpu")? == a, "placed on a by its scheduling context")?;
    ok(t.resume(), "resume")?;
    let ran_a = counting(4, 2000);
    ok(on_a.unbind(), "unbind a")?;
    ok(on_b.bind(t), "bind b")?;
    let on = ok(t.cpu(), "cpu")?;
    let ran_b = counting(4, 2000);
    // Reconfiguring through another core's SchedControl moves it too.
    ok(
        SchedControl(slot::sched_control(a as usize).unwrap_or(0)).configure(on_b, 5_000, 5_000, 0),
        "reconfigure on a",
    )?;
    let back = ok(t.cpu(), "cpu")?;
    let ran_back = counting(4, 2000);
    ok(t.suspend(), "stop")?;
    ok(on_b.unbind(), "unbind b")?;
    check(ran_a, "ran on a")?;
    check(on == b && ran_b, "rebound: runs on b")?;
    check(back == a && ran_back, "reconfigured on a's SchedControl: runs on a")
}

/// Read the page at `va` forever, counting in `COUNT[5]`.
extern "C" fn reader(va: u64) -> ! {
    loop {
        #[allow(unsafe_code)]
        // SAFETY: the root maps a page at `va` for this thread; once it unmaps it the
        // read faults, which is the point.
        let _ = unsafe { core::ptr::read_volatile(va as *const u64) };
        COUNT[5].fetch_add(1, Ordering::Relaxed);
        spin_hint();
    }
}

fn shootdown(env: &mut Env) -> R {
    let [c] = cores::<1>(env)?;
    let frame = libl4::cap::Frame(ok(env.alloc(ObjType::Frame, 12), "frame")?);
    let va = env.va(1);
    ok(env.map_in(ROOT_VSPACE, frame, va, Rights::READ | Rights::WRITE), "map")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let t = on_core(env, reader, va, 100, c, ep)?;
    let reading = counting(5, 2000);
    ok(frame.unmap(), "unmap")?;
    let mut fault = None;
    let got = spin_until(2000, || {
        let m = ipc::nb_recv(ep, rp);
        if m.info.length() == gaon_abi::fault::FAULT_MSG_LENGTH {
            fault = Fault::decode(m.info.label(), m.mr);
        }
        fault.is_some()
    });
    let after = COUNT[5].load(Ordering::Relaxed);
    let still = counting(5, 20);
    ok(t.suspend(), "stop")?;
    check(reading, "the thread read the page on its core")?;
    check(got, "a fault came from the other core")?;
    check(
        !still && COUNT[5].load(Ordering::Relaxed) == after,
        "no read succeeded after the unmap",
    )?;
    check(
        matches!(fault, Some(Fault::VmFault { addr, .. }) if addr == va),
        "a VM fault at the unmapped page",
    )
}

fn delete_remote(env: &mut Env) -> R {
    let t = counter_elsewhere(env, 6)?;
    let c = ok(t.cpu(), "cpu")?;
    ok(ROOT_CNODE.delete(t.0), "delete the running thread")?;
    let at = COUNT[6].load(Ordering::Relaxed);
    check(
        !counting(6, 20) && COUNT[6].load(Ordering::Relaxed) == at,
        "gone at once",
    )?;
    // The core goes on with other threads.
    let t2 = on_core(env, count, 7, 100, c, 0)?;
    let runs = counting(7, 2000);
    ok(t2.suspend(), "stop")?;
    check(runs, "the core runs the next thread")
}

/// Rounds of the stress test.
const ROUNDS: u64 = 50;

/// The stress test's thread on one core: `ROUNDS` times, call the next core's server
/// (low 16 bits of `arg`), check the answer, and retype a notification from its own
/// untyped (bits 16..32) into its own slot (bits 32..48) and delete it; then signal
/// `done` (bits 48..64; a badged copy) and stop.
extern "C" fn stress_client(arg: u64) -> ! {
    let (ep, ut, s, done) = (arg & 0xffff, (arg >> 16) & 0xffff, (arg >> 32) & 0xffff, arg >> 48);
    for i in 0..ROUNDS {
        let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]);
        if m.info.error().is_some() || m.mr[0] != i + 1 {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        if Untyped(ut).retype(ObjType::Notification, 0, ROOT_CNODE, s, 1).is_err() || ROOT_CNODE.delete(s).is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = ipc::signal(done);
    park()
}

fn stress(env: &mut Env) -> R {
    let _ = cores::<1>(env)?;
    ERRORS.store(0, Ordering::Relaxed);
    let cpus: heapless::Vec<u64, 4> = (0..4).filter(|n| env.bi.cpus & (1 << n) != 0).collect();
    let done = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let mut eps = heapless::Vec::<CPtr, 4>::new();
    let mut threads = heapless::Vec::<Tcb, 8>::new();
    for &cpu in &cpus {
        let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
        let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
        let _ = eps.push(ep);
        let _ = threads.push(on_core(env, serve, ep | rp << 16, 100, cpu, 0)?);
    }
    let mut all = 0;
    for (i, &cpu) in cpus.iter().enumerate() {
        let next = eps[(i + 1) % eps.len()];
        let ut = ok(env.alloc(ObjType::Untyped, 12), "untyped")?;
        let s = ok(env.slot(), "slot")?;
        let d = ok(env.slot(), "slot")?;
        ok(ROOT_CNODE.mint(d, done, Rights::all(), 1 << i), "badged done")?;
        all |= 1 << i;
        let _ = threads.push(on_core(
            env,
            stress_client,
            next | ut << 16 | s << 32 | d << 48,
            100,
            cpu,
            0,
        )?);
    }
    // The root blocks, so core 0's threads run too.
    let mut seen = 0;
    while seen != all {
        match ipc::wait(done) {
            Ok(bits) => seen |= bits,
            Err(e) => {
                seen = all;
                ERRORS.fetch_add(1000 + e as u64, Ordering::Relaxed);
            }
        }
    }
    for t in &threads {
        ok(t.suspend(), "stop")?;
    }
    check(
        ERRORS.load(Ordering::Relaxed) == 0,
        "every call answered, every retype and delete done",
    )
}
