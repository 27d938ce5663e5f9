//! Precise time: the one-shot kernel timer, budgets shorter than the old 10 ms tick,
//! budget accuracy, timeout faults on every overrun, `YieldBudget`, round-robin time
//! slices, and no timer interrupts while nothing needs one.
//!
//! Time here is the counter (`libl4::time`), which under TCG follows the host's clock:
//! the checks compare the kernel's accounting (`SchedContext::consumed_ticks`, exact
//! to the counter) with budgets, and with what the budgeted thread measured itself.

use core::sync::atomic::{AtomicU64, Ordering};

use libl4::cap::SchedContext;
use libl4::ipc;
use libl4::syscall::{debug_ticks, yield_budget, yield_now};
use libl4::time::{counter, us_to_ticks};
use libl4::{Fault, MsgInfo, ObjType};

use crate::env::{Env, ROOT_TCB, entry};
use crate::t_irq_sched::{SCHED, sc, with_root_low};
use crate::{R, check, ok};

crate::tests![
    "a 1 ms budget every 5 ms is enforced: lower threads run, the spinner gets 20 %" => sub_tick_budget,
    "100 us every 1 ms for 100 periods is 10 % of the core within 2 %" => budget_accuracy,
    "every overrun sends a timeout fault, and answering it keeps the thread running" => timeout_every_overrun,
    "YieldBudget gives up the rest of the budget until the next refill" => yield_budget_waits,
    "equal priorities take turns by time slice on the one-shot timer" => time_slices,
    "no timer interrupts while nothing needs a deadline" => no_idle_interrupts,
];

/// Counter ticks a [`meter`] thread saw itself run, and the longest gap it counts as
/// running (a longer one means it was not running).
static RAN: AtomicU64 = AtomicU64::new(0);
static LOOPS: AtomicU64 = AtomicU64::new(0);

/// Spin, adding to [`RAN`] every step of the counter shorter than `gap` ticks: the time
/// this thread ran, measured by itself.
extern "C" fn meter(gap: u64) -> ! {
    let mut last = counter();
    loop {
        let now = counter();
        let d = now.wrapping_sub(last);
        if d < gap {
            RAN.fetch_add(d, Ordering::Relaxed);
        }
        LOOPS.fetch_add(1, Ordering::Relaxed);
        last = now;
    }
}

/// Spin with the root below priority 100 until the counter reaches `until`.
fn root_low_until(until: u64) -> R {
    with_root_low(|| while counter() < until {})
}

/// A thread at priority 100 running [`meter`] with scheduling context `c`.
fn metered(env: &mut Env, c: SchedContext, gap_us: u64) -> Result<libl4::cap::Tcb, crate::Fail> {
    RAN.store(0, Ordering::Relaxed);
    LOOPS.store(0, Ordering::Relaxed);
    let t = ok(env.thread(entry(meter), us_to_ticks(gap_us), 100, 0), "meter thread")?;
    ok(c.bind(t), "bind")?;
    Ok(t)
}

/// `got` is within `percent` % of `want`.
fn within(got: u64, want: u64, percent: u64) -> bool {
    got.abs_diff(want) * 100 <= want * percent
}

fn sub_tick_budget(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 1_000, 5_000, 0), "1 ms every 5 ms")?;
    let t = metered(env, c, 200)?;
    let start = counter();
    ok(t.resume(), "resume")?;
    // The root, below the spinner, runs only while the spinner is out of budget. The
    // old 10 ms tick let the spinner run for the whole second.
    let mut root_turns = 0u64;
    with_root_low(|| {
        let end = start + us_to_ticks(200_000);
        let mut last = counter();
        while last < end {
            let now = counter();
            if now - last > us_to_ticks(500) {
                root_turns += 1;
            }
            last = now;
        }
    })?;
    ok(t.suspend(), "stop")?;
    let elapsed = counter() - start;
    let used = ok(c.consumed_ticks(), "consumed")?;
    check(root_turns >= 20, "the root ran between the spinner's budgets")?;
    // 40 periods of 1 ms in 200 ms (41 if the last had begun): 20 % of the time.
    check(within(used, elapsed / 5, 5), "the spinner used 20 % of the core")
}

fn budget_accuracy(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 100, 1_000, 0), "100 us every 1 ms")?;
    let t = metered(env, c, 200)?;
    let start = counter();
    ok(t.resume(), "resume")?;
    // 100 periods, stopped half-way into the 100th's idle part: 100 budgets.
    root_low_until(start + us_to_ticks(99_500))?;
    ok(t.suspend(), "stop")?;
    let elapsed = counter() - start;
    let used = ok(c.consumed_ticks(), "consumed")?;
    let ran = RAN.load(Ordering::Relaxed);
    let tenth = elapsed / 10;
    check(
        within(used, tenth, 2),
        "the kernel charged 10 % of the core, within 2 %",
    )?;
    check(
        within(ran, tenth, 2),
        "the thread measured 10 % of the core, within 2 %",
    )
}

fn timeout_every_overrun(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 1_000, 3_000, 0x77), "1 ms every 3 ms")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let t = metered(env, c, 200)?;
    ok(t.set_timeout_endpoint(ep), "timeout endpoint")?;
    ok(t.resume(), "resume")?;
    // The root (priority 255) is the handler: each overrun is a fault message, and the
    // reply lets the thread run again at its next refill.
    let mut last_loops = 0;
    let mut consumed = 0;
    for i in 0..10 {
        let m = ipc::recv(ep, rp);
        let Some(Fault::Timeout { badge, consumed_us }) = Fault::decode(m.info.label(), m.mr) else {
            return check(false, "a timeout fault");
        };
        check(badge == 0x77, "the scheduling context's badge")?;
        // Consumed since the last query (there is none): a budget more each time, give
        // or take the late end of a budget (which the next budget pays for).
        let budgets = (i + 1) * 1_000;
        check(
            consumed_us + 200 >= budgets && consumed_us < budgets + 2_000 && consumed_us > consumed,
            "one more budget consumed",
        )?;
        consumed = consumed_us;
        let loops = LOOPS.load(Ordering::Relaxed);
        check(i == 0 || loops > last_loops, "the thread ran since the last fault")?;
        last_loops = loops;
        // An empty reply resumes it where it was.
        ok(ipc::send(rp, MsgInfo::new(0, 0, 0), [0; 4]), "answer the fault")?;
    }
    ok(t.suspend(), "stop")
}

static YIELDS: AtomicU64 = AtomicU64::new(0);

extern "C" fn budget_yielder(_: u64) -> ! {
    loop {
        YIELDS.fetch_add(1, Ordering::Relaxed);
        yield_budget();
    }
}

fn yield_budget_waits(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 10_000, 100_000, 0), "10 ms every 100 ms")?;
    YIELDS.store(0, Ordering::Relaxed);
    let t = ok(env.thread(entry(budget_yielder), 0, 100, 0), "thread")?;
    ok(c.bind(t), "bind")?;
    let start = counter();
    ok(t.resume(), "resume")?;
    // Half a period with the root below it: it runs once, gives up its budget, and is
    // not run again before its refill (without giving it up, it would yield to itself
    // until 10 ms were used).
    root_low_until(start + us_to_ticks(50_000))?;
    let once = YIELDS.load(Ordering::Relaxed);
    let used = ok(c.consumed_ticks(), "consumed")?;
    // After its refill, it runs once more.
    root_low_until(start + us_to_ticks(150_000))?;
    ok(t.suspend(), "stop")?;
    check(once == 1, "one turn before its refill")?;
    check(
        used < us_to_ticks(1_000),
        "the budget given up is not counted as consumed",
    )?;
    check(YIELDS.load(Ordering::Relaxed) == 2, "one more turn after the refill")
}

fn time_slices(env: &mut Env) -> R {
    // A meter thread at the root's priority, without a budget: the root yields to it,
    // and gets the CPU back when the thread's 50 ms time slice ends.
    RAN.store(0, Ordering::Relaxed);
    let t = ok(env.thread(entry(meter), us_to_ticks(200), 255, 0), "thread")?;
    let before = ok(debug_ticks(), "timer interrupts")?;
    let start = counter();
    ok(t.resume(), "resume")?;
    yield_now();
    let back = counter();
    ok(t.suspend(), "stop")?;
    let after = ok(debug_ticks(), "timer interrupts")?;
    let ran = RAN.load(Ordering::Relaxed);
    check(after > before, "the slice ended with a timer interrupt")?;
    check(
        within(back - start, us_to_ticks(50_000), 20),
        "the root was back after one 50 ms slice",
    )?;
    check(ran > us_to_ticks(40_000), "the thread ran for its slice")
}

fn no_idle_interrupts(_: &mut Env) -> R {
    // Nothing of the root's priority is runnable and it has no budget: once what earlier
    // tests left in the release list is released, its spinning needs no deadline.
    let settle = counter() + us_to_ticks(300_000);
    ok(ROOT_TCB.set_priority(255, ROOT_TCB), "priority")?;
    while counter() < settle {
        yield_now();
    }
    let before = ok(debug_ticks(), "timer interrupts")?;
    let end = counter() + us_to_ticks(100_000);
    while counter() < end {}
    let after = ok(debug_ticks(), "timer interrupts")?;
    // A periodic 100 Hz tick would have fired 10 times.
    check(after == before, "no timer interrupt in 100 ms")
}
