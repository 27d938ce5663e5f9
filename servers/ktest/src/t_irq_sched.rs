//! IRQ control and handlers; scheduling contexts and control.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::bootinfo::slot;
use libl4::cap::{IrqControl, IrqHandler, SchedContext, SchedControl};
use libl4::ipc::{self, invoke};
use libl4::syscall::yield_now;
use libl4::time::{counter, us_to_ticks};
use libl4::{Error, Fault, Label, ObjType};

use crate::env::ROOT_VSPACE;
use crate::env::{Env, ROOT_CNODE, ROOT_TCB};
use crate::{R, check, err, ok, skip};

crate::tests![
    "IRQ control refuses lines outside the boot info's range" => irq_reserved,
    "IRQ control refuses lines that do not exist" => irq_range,
    "IRQ control hands out a line once" => irq_once,
    "IRQ control refuses an occupied slot" => irq_occupied,
    "an IRQ handler takes a notification, acks and clears" => irq_handler_ops,
    "an IRQ handler refuses a non-notification" => irq_bad_ntfn,
    "deleting an IRQ handler frees the line" => irq_delete,
    "an unknown IRQ handler label is refused" => irq_unknown,
    "a device interrupt reaches its notification and is acked" => irq_delivered,
    "the user timer's handler arms the virtual timer and its interrupt arrives" => user_timer,
    "only the user timer's handler may set the timer" => user_timer_only,
    "sched control configures a scheduling context" => sc_configure,
    "a budget above the period is refused" => sc_budget_range,
    "a zero budget is refused" => sc_zero,
    "sched control needs a scheduling context" => sc_wrong_cap,
    "a scheduling context binds to one thread" => sc_bind_once,
    "unbinding twice is refused" => sc_unbind_twice,
    "a budget keeps a spinning high-priority thread from starving others" => sc_enforced,
    "running out of budget sends a timeout fault" => sc_timeout_fault,
    "consumed time is reported" => sc_consumed,
    "deleting a bound scheduling context unbinds it" => sc_delete_bound,
    "an unknown scheduling-context label is refused" => sc_unknown,
];

const IRQC: IrqControl = IrqControl(slot::IRQ_CONTROL);
pub(crate) const SCHED: SchedControl = SchedControl(slot::SCHED_CONTROL);
/// A line no device on the test boards uses, if the board has lines for user level.
fn spare_irq(env: &Env) -> Option<u64> {
    let line = env.bi.irq_first + 68;
    (line < env.bi.irq_end).then_some(line)
}

/// The boot info's IRQ range is exactly what IrqControl hands out.
fn irq_reserved(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    if env.bi.irq_first > 0 {
        err(
            IRQC.get(env.bi.irq_first - 1, ROOT_CNODE, s),
            Error::RangeError,
            "below the range",
        )?;
    }
    err(
        IRQC.get(0, ROOT_CNODE, s),
        Error::RangeError,
        "line 0 (an SGI, or a per-core source)",
    )?;
    if env.bi.irq_end > env.bi.irq_first {
        ok(IRQC.get(env.bi.irq_first, ROOT_CNODE, s), "first line of the range")?;
        ok(ROOT_CNODE.delete(s), "release")?;
    }
    Ok(())
}
fn irq_range(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    err(
        IRQC.get(env.bi.irq_end.max(env.bi.irq_first), ROOT_CNODE, s),
        Error::RangeError,
        "past the range",
    )?;
    err(IRQC.get(5000, ROOT_CNODE, s), Error::RangeError, "line 5000")?;
    err(IRQC.get(u64::MAX, ROOT_CNODE, s), Error::RangeError, "line 2^64-1")
}
fn irq_once(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let (a, b) = (ok(env.slot(), "slot")?, ok(env.slot(), "slot")?);
    ok(IRQC.get(line, ROOT_CNODE, a), "claim")?;
    let r = err(IRQC.get(line, ROOT_CNODE, b), Error::RevokeFirst, "claimed twice");
    ok(ROOT_CNODE.delete(a), "release")?;
    r
}
fn irq_occupied(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(IRQC.get(line, ROOT_CNODE, ep), Error::DeleteFirst, "occupied")
}
fn irq_handler_ops(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let s = ok(env.slot(), "slot")?;
    ok(IRQC.get(line, ROOT_CNODE, s), "claim")?;
    let h = IrqHandler(s);
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    ok(h.set_notification(n), "set notification")?;
    ok(h.ack(), "ack")?;
    ok(h.clear(), "clear")?;
    ok(h.set_notification(0), "no notification")?;
    ok(ROOT_CNODE.delete(s), "release")
}
fn irq_bad_ntfn(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let s = ok(env.slot(), "slot")?;
    ok(IRQC.get(line, ROOT_CNODE, s), "claim")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let r = err(IrqHandler(s).set_notification(ep), Error::InvalidCapability, "endpoint");
    ok(ROOT_CNODE.delete(s), "release")?;
    r
}
fn irq_delete(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let s = ok(env.slot(), "slot")?;
    ok(IRQC.get(line, ROOT_CNODE, s), "claim")?;
    ok(ROOT_CNODE.delete(s), "delete")?;
    ok(IRQC.get(line, ROOT_CNODE, s), "claim again")?;
    ok(ROOT_CNODE.delete(s), "release")
}
fn irq_unknown(_: &mut Env) -> R {
    err(
        invoke(IRQC.0, Label::IrqHandlerAck, &[]),
        Error::UnknownInvocation,
        "ack on IrqControl",
    )
}

pub(crate) fn sc(env: &mut Env) -> Result<SchedContext, crate::Fail> {
    Ok(SchedContext(ok(env.alloc(ObjType::SchedContext, 0), "sched context")?))
}

fn sc_configure(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 1000, 10_000, 7), "configure")
}
fn sc_budget_range(env: &mut Env) -> R {
    let c = sc(env)?;
    err(
        SCHED.configure(c, 20_000, 10_000, 0),
        Error::RangeError,
        "budget > period",
    )?;
    err(SCHED.configure(c, 1, 1 << 40, 0), Error::RangeError, "period too long")
}
fn sc_zero(env: &mut Env) -> R {
    let c = sc(env)?;
    err(SCHED.configure(c, 0, 10_000, 0), Error::RangeError, "zero budget")
}
fn sc_wrong_cap(env: &mut Env) -> R {
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    err(
        SCHED.configure(SchedContext(n), 10, 100, 0),
        Error::InvalidCapability,
        "notification",
    )
}
fn sc_bind_once(env: &mut Env) -> R {
    let c = sc(env)?;
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    let t2 = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    ok(c.bind(t), "bind")?;
    err(c.bind(t2), Error::IllegalOperation, "bound already")?;
    let c2 = sc(env)?;
    err(c2.bind(t), Error::IllegalOperation, "thread has one")
}
fn sc_unbind_twice(env: &mut Env) -> R {
    let c = sc(env)?;
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    ok(c.bind(t), "bind")?;
    ok(c.unbind(), "unbind")?;
    err(c.unbind(), Error::IllegalOperation, "nothing bound")
}

static SPINS: AtomicU64 = AtomicU64::new(0);

extern "C" fn spin(_: u64) -> ! {
    loop {
        SPINS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Lower the root below `prio` so a spinning thread at `prio` would starve it.
pub(crate) fn with_root_low<T>(f: impl FnOnce() -> T) -> Result<T, crate::Fail> {
    ok(ROOT_TCB.set_priority(10, ROOT_TCB), "lower root")?;
    let r = f();
    ok(ROOT_TCB.set_priority(255, ROOT_TCB), "restore root")?;
    Ok(r)
}

fn sc_enforced(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 20_000, 200_000, 0), "20 ms every 200 ms")?;
    let t = ok(env.thread(crate::env::entry(spin), 0, 100, 0), "spinner")?;
    ok(c.bind(t), "bind")?;
    ok(t.resume(), "resume")?;
    // If the budget were not enforced, the root would never run again. The spinner
    // gets up to a second (5 periods) to be seen running: under TCG the timer follows
    // host time, so a loaded host can use up a whole budget before the spinner's first
    // instruction.
    let give_up = counter() + us_to_ticks(1_000_000);
    loop {
        with_root_low(yield_now)?;
        if SPINS.load(Ordering::Relaxed) > 0 || counter() > give_up {
            break;
        }
    }
    ok(t.suspend(), "stop")?;
    check(SPINS.load(Ordering::Relaxed) > 0, "the spinner ran")
}
fn sc_timeout_fault(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 20_000, 1_000_000, 0x5c), "20 ms every second")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let t = ok(env.thread(crate::env::entry(spin), 0, 100, 0), "spinner")?;
    ok(t.set_timeout_endpoint(ep), "timeout endpoint")?;
    ok(c.bind(t), "bind")?;
    ok(t.resume(), "resume")?;
    let m = with_root_low(|| ipc::recv(ep, rp))?;
    ok(t.suspend(), "stop")?;
    let Some(Fault::Timeout { badge, consumed_us }) = Fault::decode(m.info.label(), m.mr) else {
        return check(false, "timeout fault");
    };
    check(badge == 0x5c && consumed_us >= 10_000, "badge and consumed time")
}
fn sc_consumed(env: &mut Env) -> R {
    let c = sc(env)?;
    ok(SCHED.configure(c, 30_000, 100_000, 0), "configure")?;
    let t = ok(env.thread(crate::env::entry(spin), 0, 100, 0), "spinner")?;
    ok(c.bind(t), "bind")?;
    ok(t.resume(), "resume")?;
    with_root_low(yield_now)?;
    ok(t.suspend(), "stop")?;
    let used = ok(c.consumed(), "consumed")?;
    // It ran until its budget was gone (the kernel charges to the counter tick), and
    // not much longer: the timer was set for the end of the budget.
    check((30_000..40_000).contains(&used), "its budget of run time")?;
    check(ok(c.consumed(), "again")? == 0, "reset by reading")
}
fn sc_delete_bound(env: &mut Env) -> R {
    let c = sc(env)?;
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    ok(c.bind(t), "bind")?;
    ok(ROOT_CNODE.delete(c.0), "delete")?;
    let c2 = sc(env)?;
    ok(c2.bind(t), "thread is free to bind again")
}
fn sc_unknown(env: &mut Env) -> R {
    let c = sc(env)?;
    err(
        invoke(c.0, Label::TcbResume, &[]),
        Error::UnknownInvocation,
        "Tcb label",
    )
}

/// A UART whose transmit interrupt a test can raise: where it is, its line, and the
/// register writes that enable, then disable and clear, the interrupt.
pub(crate) struct TxUart {
    pub(crate) pa: u64,
    irq: u64,
    enable: (u64, u32),
    disable: [(u64, u32); 2],
}

/// QEMU virt's PL011 (SPI 1: UARTIMSC.TXIM, then UARTICR) and the ZCU102's Cadence
/// UART0 (SPI 21: IER.TEMPTY, then IDR and ISR).
pub(crate) const TX_UARTS: [TxUart; 2] = [
    TxUart {
        pa: 0x0900_0000,
        irq: 33,
        enable: (0x38, 1 << 5),
        disable: [(0x38, 0), (0x44, 1 << 5)],
    },
    TxUart {
        pa: 0xff00_0000,
        irq: 53,
        enable: (0x08, 1 << 3),
        disable: [(0x0c, 1 << 3), (0x14, 1 << 3)],
    },
];

fn mmio_write(va: u64, v: u32) {
    #[allow(unsafe_code)]
    // SAFETY: `va` is a register of the UART page this test mapped as device memory.
    unsafe {
        core::ptr::write_volatile(va as *mut u32, v);
    }
}

/// Arm the user timer (the EL1 physical timer) through its handler and take its interrupt.
fn user_timer(env: &mut Env) -> R {
    let h = ok(env.slot(), "slot")?;
    let Some(line) = env.bi.user_timer() else {
        return skip("no user timer on this board");
    };
    ok(IRQC.get(line, ROOT_CNODE, h), "claim the user timer's line")?;
    let irq = IrqHandler(h);
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    ok(irq.set_notification(n), "route to the notification")?;
    err(
        invoke(h, Label::IrqHandlerSetTimer, &[0, 2]),
        Error::InvalidArgument,
        "arm flag other than 0 or 1",
    )?;
    // Half a millisecond from now.
    let cval = counter() + us_to_ticks(500);
    ok(irq.set_timer(Some(cval)), "arm")?;
    let got = ipc::wait(n);
    let t = counter();
    ok(irq.set_timer(None), "disarm")?;
    ok(irq.ack(), "ack")?;
    ok(ROOT_CNODE.delete(h), "release the line")?;
    ok(got, "the timer's interrupt")?;
    check(t >= cval, "not before the compare value")
}

fn user_timer_only(env: &mut Env) -> R {
    let Some(line) = spare_irq(env) else {
        return skip("no IRQ lines for user level");
    };
    let h = ok(env.slot(), "slot")?;
    ok(IRQC.get(line, ROOT_CNODE, h), "claim a device line")?;
    let r = IrqHandler(h).set_timer(Some(counter() + 1_000_000));
    ok(ROOT_CNODE.delete(h), "release the line")?;
    err(
        r,
        Error::IllegalOperation,
        "a device line's handler cannot set the timer",
    )
}

/// Map the board's UART, route its interrupt to a notification, and make the UART raise
/// its transmit interrupt (its transmitter is idle, so the interrupt fires at once).
fn irq_delivered(env: &mut Env) -> R {
    let Some(uart) = TX_UARTS
        .iter()
        .find(|u| (env.bi.irq_first..env.bi.irq_end).contains(&u.irq) && env.device_untyped_covers(u.pa))
    else {
        return skip("no known UART interrupt on this board");
    };
    let Ok(frame) = env.device_frame_at(uart.pa) else {
        return check(false, "a frame for the UART");
    };
    let va = env.va(1);
    ok(
        env.map_with(ROOT_VSPACE, frame, va, libl4::Rights::READ | libl4::Rights::WRITE, true),
        "map the UART",
    )?;
    let h = ok(env.slot(), "slot")?;
    ok(IRQC.get(uart.irq, ROOT_CNODE, h), "claim the UART line")?;
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let nb = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(nb, n, libl4::Rights::all(), 0x8), "badge")?;
    ok(IrqHandler(h).set_notification(nb), "route to the notification")?;
    mmio_write(va + uart.enable.0, uart.enable.1);
    let give_up = counter() + us_to_ticks(500_000);
    let mut got = Err(Error::WouldBlock);
    while counter() < give_up {
        got = ipc::poll(n);
        if got.is_ok() {
            break;
        }
        yield_now();
    }
    for (reg, v) in uart.disable {
        mmio_write(va + reg, v);
    }
    ok(IrqHandler(h).ack(), "ack")?;
    ok(ROOT_CNODE.delete(h), "release the line")?;
    check(
        ok(got, "interrupt within half a second")? == 0x8,
        "signalled with the handler's badge",
    )
}
