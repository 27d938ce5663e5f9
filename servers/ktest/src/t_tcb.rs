//! Tcb invocations, thread lifecycle, priorities, and lazy FP/SIMD switching.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::invocation::{REG_COUNT, REG_PC, REG_SPSR, REG_TPIDR, ThreadState};
use libl4::cap::{Frame, Notification, Tcb, VSpace};
use libl4::ipc::{self, invoke};
use libl4::syscall::yield_now;
use libl4::{Error, Label, ObjType};

use crate::env::{Env, ROOT_CNODE, ROOT_TCB, ROOT_VSPACE};
use crate::{R, check, err, ok};

crate::tests![
    "a new thread runs and signals" => runs,
    "a new thread gets its argument in x0" => gets_arg,
    "priority above 255 is a range error" => prio_range,
    "priority above the authority's MCP is refused" => prio_mcp,
    "MCP above the authority's MCP is refused" => mcp_mcp,
    "set priority shows in the thread state" => prio_state,
    "write then read registers" => regs_round_trip,
    "reading one's own registers is refused" => regs_own,
    "register ranges are checked" => regs_range,
    "write registers checks the message length" => regs_truncated,
    "PSTATE keeps only the condition flags" => regs_spsr,
    "TPIDR_EL0 is a register" => regs_tpidr,
    "resume without an address space is refused" => resume_no_space,
    "suspend stops a thread and resume restarts it" => suspend_resume,
    "thread state: inactive, running, blocked" => states,
    "set space refuses a non-CNode" => space_bad_cnode,
    "set space refuses a non-VSpace" => space_bad_vspace,
    "set space refuses a fault endpoint that is not one" => space_bad_fault,
    "set IPC buffer refuses a misaligned address" => buffer_misaligned,
    "set IPC buffer refuses a device frame" => buffer_device,
    "set IPC buffer refuses a non-frame" => buffer_not_frame,
    "binding a second notification is refused" => bind_twice,
    "unbinding with nothing bound is refused" => unbind_none,
    "set timeout endpoint refuses a non-endpoint" => timeout_bad,
    "an unknown Tcb label is refused" => tcb_unknown,
    "deleting a running thread stops it" => delete_running,
    "a thread can delete itself" => delete_self,
    "FP/SIMD registers are private to each thread" => fp_private,
];

static COUNTER: AtomicU64 = AtomicU64::new(0);
static VALUE: AtomicU64 = AtomicU64::new(0);

/// Signal the notification in `arg`, then stop.
extern "C" fn signal_and_stop(arg: u64) -> ! {
    VALUE.store(arg, Ordering::SeqCst);
    let _ = ipc::signal(arg);
    park()
}

/// A notification nobody signals: parked threads wait on it.
static PARK: AtomicU64 = AtomicU64::new(0);

/// Create the notification `park` waits on.
pub fn init_park(env: &mut Env) -> Result<(), Error> {
    PARK.store(env.alloc(ObjType::Notification, 0)?, Ordering::SeqCst);
    Ok(())
}

/// Block forever (until the test suspends or deletes the thread).
pub fn park() -> ! {
    loop {
        let _ = ipc::wait(PARK.load(Ordering::SeqCst));
        yield_now();
    }
}

/// Count and yield forever.
extern "C" fn count_and_yield(_: u64) -> ! {
    loop {
        COUNTER.fetch_add(1, Ordering::SeqCst);
        yield_now();
    }
}

fn ntfn(env: &mut Env) -> Result<u64, crate::Fail> {
    ok(env.alloc(ObjType::Notification, 0), "notification")
}

fn runs(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let t = ok(env.spawn(signal_and_stop, n, 100, 0), "spawn")?;
    ok(ipc::wait(n), "wait")?;
    ok(t.suspend(), "suspend")
}

fn gets_arg(env: &mut Env) -> R {
    let n = ntfn(env)?;
    VALUE.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(signal_and_stop, n, 100, 0), "spawn")?;
    ok(ipc::wait(n), "wait")?;
    ok(t.suspend(), "suspend")?;
    check(VALUE.load(Ordering::SeqCst) == n, "argument arrived")
}

fn fresh(env: &mut Env) -> Result<Tcb, crate::Fail> {
    ok(env.thread(0x1000, 0, 1, 0), "thread")
}

fn prio_range(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(t.set_priority(256, ROOT_TCB), Error::RangeError, "256")
}
fn prio_mcp(env: &mut Env) -> R {
    let t = fresh(env)?;
    let weak = fresh(env)?;
    ok(weak.set_mcp(10, ROOT_TCB), "mcp 10")?;
    err(t.set_priority(50, weak), Error::IllegalOperation, "50 > mcp 10")?;
    ok(t.set_priority(10, weak), "10 <= mcp 10")
}
fn mcp_mcp(env: &mut Env) -> R {
    let t = fresh(env)?;
    let weak = fresh(env)?;
    ok(weak.set_mcp(10, ROOT_TCB), "mcp 10")?;
    err(t.set_mcp(11, weak), Error::IllegalOperation, "11 > mcp 10")
}
fn prio_state(env: &mut Env) -> R {
    let t = fresh(env)?;
    ok(t.set_priority(77, ROOT_TCB), "priority")?;
    ok(t.set_mcp(33, ROOT_TCB), "mcp")?;
    let (state, prio, mcp) = ok(t.state(), "state")?;
    check(
        state == ThreadState::Inactive as u64 && prio == 77 && mcp == 33,
        "state, prio, mcp",
    )
}
fn regs_round_trip(env: &mut Env) -> R {
    let t = fresh(env)?;
    ok(t.write_registers(REG_PC, &[0x1234, 0x8000, 0, 7]), "write")?;
    let got = ok(t.read_registers(REG_PC, 4), "read")?;
    check(got == [0x1234, 0x8000, 0, 7], "same values")
}
fn regs_own(_: &mut Env) -> R {
    err(ROOT_TCB.read_registers(0, 1), Error::IllegalOperation, "own registers")?;
    err(
        ROOT_TCB.write_registers(0, &[0]),
        Error::IllegalOperation,
        "write own registers",
    )
}
fn regs_range(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(t.read_registers(REG_COUNT, 1), Error::RangeError, "first past the end")?;
    err(
        t.read_registers(REG_COUNT - 2, 4),
        Error::RangeError,
        "count past the end",
    )?;
    err(
        t.write_registers(REG_COUNT - 1, &[1, 2]),
        Error::RangeError,
        "write past the end",
    )
}
fn regs_truncated(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(
        invoke(t.0, Label::TcbWriteRegisters, &[0, 3, 1]),
        Error::TruncatedMessage,
        "3 claimed, 1 sent",
    )
}
fn regs_spsr(env: &mut Env) -> R {
    let t = fresh(env)?;
    ok(t.write_registers(REG_SPSR, &[u64::MAX]), "write PSTATE")?;
    let got = ok(t.read_registers(REG_SPSR, 1), "read")?;
    check(got[0] == 0xf000_0000, "only NZCV kept, EL0t, interrupts unmasked")
}
fn regs_tpidr(env: &mut Env) -> R {
    let t = fresh(env)?;
    ok(t.write_registers(REG_TPIDR, &[0xdead_0000]), "write")?;
    check(ok(t.read_registers(REG_TPIDR, 1), "read")?[0] == 0xdead_0000, "same")
}
fn resume_no_space(env: &mut Env) -> R {
    let t = Tcb(ok(env.alloc(ObjType::Tcb, 0), "tcb")?);
    err(t.resume(), Error::IllegalOperation, "no VSpace")
}
fn suspend_resume(env: &mut Env) -> R {
    let t = ok(env.spawn(count_and_yield, 0, 255, 0), "spawn")?;
    for _ in 0..3 {
        yield_now();
    }
    check(COUNTER.load(Ordering::SeqCst) > 0, "it ran")?;
    ok(t.suspend(), "suspend")?;
    let stopped = COUNTER.load(Ordering::SeqCst);
    for _ in 0..3 {
        yield_now();
    }
    check(
        COUNTER.load(Ordering::SeqCst) == stopped,
        "suspended thread does not run",
    )?;
    ok(t.resume(), "resume")?;
    for _ in 0..3 {
        yield_now();
    }
    check(COUNTER.load(Ordering::SeqCst) > stopped, "resumed thread runs")?;
    ok(t.suspend(), "suspend again")
}

extern "C" fn recv_forever(ep: u64) -> ! {
    loop {
        let _ = ipc::recv(ep, 0);
    }
}

fn states(env: &mut Env) -> R {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let t = ok(env.thread(crate::env::entry(recv_forever), ep, 255, 0), "thread")?;
    check(ok(t.state(), "state")?.0 == ThreadState::Inactive as u64, "inactive")?;
    ok(t.resume(), "resume")?;
    check(ok(t.state(), "state")?.0 == ThreadState::Running as u64, "running")?;
    yield_now();
    check(
        ok(t.state(), "state")?.0 == ThreadState::BlockedOnRecv as u64,
        "blocked in recv",
    )?;
    ok(t.suspend(), "suspend")?;
    check(
        ok(t.state(), "state")?.0 == ThreadState::Inactive as u64,
        "inactive again",
    )
}

fn space_bad_cnode(env: &mut Env) -> R {
    let t = fresh(env)?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(
        t.set_space(libl4::cap::CNode(ep), ROOT_VSPACE, 0),
        Error::InvalidCapability,
        "endpoint as CSpace",
    )
}
fn space_bad_vspace(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(
        t.set_space(ROOT_CNODE, VSpace(ROOT_CNODE.0), 0),
        Error::InvalidCapability,
        "CNode as VSpace",
    )
}
fn space_bad_fault(env: &mut Env) -> R {
    let t = fresh(env)?;
    let n = ntfn(env)?;
    err(
        t.set_space(ROOT_CNODE, ROOT_VSPACE, n),
        Error::InvalidCapability,
        "notification as fault endpoint",
    )
}
fn buffer_misaligned(env: &mut Env) -> R {
    let t = fresh(env)?;
    let (f, va) = ok(env.page(), "page")?;
    err(t.set_ipc_buffer(va + 8, f.0), Error::AlignmentError, "misaligned")
}
fn buffer_device(env: &mut Env) -> R {
    let t = fresh(env)?;
    let Some(u) = env.device_untyped() else {
        return check(false, "no device untyped");
    };
    let s = ok(env.slot(), "slot")?;
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, s, 1), "device frame")?;
    err(
        t.set_ipc_buffer(0x1000, Frame(s).0),
        Error::InvalidCapability,
        "device buffer",
    )
}
fn buffer_not_frame(env: &mut Env) -> R {
    let t = fresh(env)?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(
        t.set_ipc_buffer(0x1000, ep),
        Error::InvalidCapability,
        "endpoint as buffer",
    )
}
fn bind_twice(env: &mut Env) -> R {
    let t = fresh(env)?;
    let (a, b) = (ntfn(env)?, ntfn(env)?);
    ok(t.bind_notification(Notification(a)), "bind")?;
    err(
        t.bind_notification(Notification(b)),
        Error::IllegalOperation,
        "second bind",
    )?;
    let t2 = fresh(env)?;
    err(
        t2.bind_notification(Notification(a)),
        Error::IllegalOperation,
        "notification already bound",
    )?;
    ok(t.unbind_notification(), "unbind")?;
    ok(t2.bind_notification(Notification(a)), "bind after unbind")
}
fn unbind_none(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(t.unbind_notification(), Error::IllegalOperation, "nothing bound")
}
fn timeout_bad(env: &mut Env) -> R {
    let t = fresh(env)?;
    let n = ntfn(env)?;
    err(t.set_timeout_endpoint(n), Error::InvalidCapability, "notification")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    ok(t.set_timeout_endpoint(ep), "endpoint")?;
    ok(t.set_timeout_endpoint(0), "none")
}
fn tcb_unknown(env: &mut Env) -> R {
    let t = fresh(env)?;
    err(
        invoke(t.0, Label::UntypedRetype, &[0, 0, 0, 0]),
        Error::UnknownInvocation,
        "retype on a Tcb",
    )?;
    err(
        invoke(t.0, Label::CNodeCopy, &[0, 0, 0]),
        Error::UnknownInvocation,
        "CNode label on a Tcb",
    )
}
fn delete_running(env: &mut Env) -> R {
    let t = ok(env.spawn(count_and_yield, 0, 255, 0), "spawn")?;
    yield_now();
    ok(ROOT_CNODE.delete(t.0), "delete its only cap")?;
    let after = COUNTER.load(Ordering::SeqCst);
    for _ in 0..3 {
        yield_now();
    }
    check(COUNTER.load(Ordering::SeqCst) == after, "deleted thread does not run")
}

extern "C" fn delete_myself(arg: u64) -> ! {
    let (n, me) = (arg & 0xffff, arg >> 16);
    let _ = ipc::signal(n);
    let _ = ROOT_CNODE.delete(me);
    VALUE.store(0xbad, Ordering::SeqCst); // never reached
    park()
}
fn delete_self(env: &mut Env) -> R {
    let n = ntfn(env)?;
    VALUE.store(0, Ordering::SeqCst);
    let t = ok(env.thread(crate::env::entry(delete_myself), 0, 255, 0), "thread")?;
    ok(t.write_registers(3, &[n | (t.0 << 16)]), "argument")?;
    ok(t.resume(), "resume")?;
    ok(ipc::wait(n), "wait")?;
    for _ in 0..3 {
        yield_now();
    }
    check(ok(ROOT_CNODE.identify(t.0), "identify")?.0 == 0, "its cap is gone")?;
    check(
        VALUE.load(Ordering::SeqCst) != 0xbad,
        "it never ran past its own deletion",
    )
}

static FP_OK: AtomicU64 = AtomicU64::new(0);

extern "C" fn fp_worker(value: u64) -> ! {
    let mut good = true;
    for _ in 0..20 {
        let got: u64;
        #[allow(unsafe_code)]
        // SAFETY: only d8 (this thread's own register) is written and read back.
        unsafe {
            core::arch::asm!("fmov d8, {v}", v = in(reg) value, options(nomem, nostack));
        }
        yield_now();
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            core::arch::asm!("fmov {g}, d8", g = out(reg) got, options(nomem, nostack));
        }
        good &= got == value;
    }
    if good {
        FP_OK.fetch_add(1, Ordering::SeqCst);
    }
    park()
}
fn fp_private(env: &mut Env) -> R {
    FP_OK.store(0, Ordering::SeqCst);
    let a = ok(env.spawn(fp_worker, 0x1111_2222_3333_4444, 255, 0), "a")?;
    let b = ok(env.spawn(fp_worker, 0x5555_6666_7777_8888, 255, 0), "b")?;
    for _ in 0..60 {
        yield_now();
    }
    ok(a.suspend(), "suspend a")?;
    ok(b.suspend(), "suspend b")?;
    check(FP_OK.load(Ordering::SeqCst) == 2, "each thread kept its d8")
}
