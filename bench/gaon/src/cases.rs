//! The cases. Each builds what it needs (threads, address spaces, shared memory),
//! times a batch of operations per sample with the counter, and checks the answers, so
//! a broken path fails the case instead of producing a number.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::invocation::UntypedRetypeArgs;
use gaon_abi::{MsgInfo, ObjectSpec};
use libl4::cap::{CNode, Frame, IrqControl, IrqHandler, Tcb, Untyped};
use libl4::ipc::{self, CPtr};
use libl4::rpc::EndpointTransport;
use libl4::{ObjType, Rights, Syscall};

use crate::common::{self, now, pipe, role, slot};
use crate::env::{Env, Fail, ROOT_CNODE, ROOT_TCB, ok};
use crate::{Runner, Unit};

include!(concat!(env!("OUT_DIR"), "/bench.rs"));
libl4::uses!(bench::INTERFACE);

/// The benchmark thread's priority.
pub const MAIN_PRIO: u64 = 100;
/// Servers run above it (a call switches straight to them, as a server would).
const SERVER_PRIO: u64 = 150;

pub use libl4::time::counter_hz;

/// Every case, in the order the results are printed.
pub fn all(r: &mut Runner, env: &mut Env) {
    calibrate(r, env);
    r.run(env, "null_syscall", Unit::Instructions, 2000, |_, n| {
        let t0 = now();
        for _ in 0..n {
            null_syscall();
        }
        Ok(now() - t0)
    });
    if let Err(why) = ipc_cases(r, env) {
        r.fail("ipc", why);
    }
    if let Err(why) = notification_cases(r, env) {
        r.fail("signal", why);
    }
    if let Err(why) = crate::vm::cases(r, env, MAIN_PRIO) {
        r.fail("vm", why);
    }
    for n in [2usize, 8, 16] {
        if let Err(why) = ring(r, env, n) {
            r.fail("ctx_ring", why);
        }
    }
    if let Err(why) = bw_pipe(r, env) {
        r.fail("bw_pipe", why);
    }
    if let Err(why) = irq_to_user(r, env) {
        r.fail("irq_to_user", why);
    }
    if let Err(why) = object_cases(r, env) {
        r.fail("objects", why);
    }
    if let Err(why) = cross_core_cases(r, env) {
        r.fail("cross_core", why);
    }
}

fn null_syscall() {
    // SAFETY: the Null syscall only writes x0.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::asm!("svc #0", in("x7") Syscall::Null as u64, lateout("x0") _, options(nostack, nomem));
    }
}

/// A loop of exactly 2 * N + a few instructions: the clock must count instructions.
fn calibrate(r: &mut Runner, env: &mut Env) {
    const N: u64 = 1_000_000;
    let per_tick = r.per_tick;
    r.run(env, "calibrate_2M_instructions", Unit::Instructions, 1, move |_, n| {
        let t0 = now();
        for _ in 0..n {
            // SAFETY: a register-only countdown loop.
            #[allow(unsafe_code)]
            unsafe {
                core::arch::asm!("1: subs {0}, {0}, #1", "b.ne 1b", inout(reg) N => _, options(nomem, nostack));
            }
        }
        let ticks = now() - t0;
        let per_loop = ticks * per_tick / n;
        if per_loop.abs_diff(2 * N) > 2 * N / 100 {
            return Err("the counter does not count instructions (run QEMU with -icount shift=0)");
        }
        Ok(ticks)
    });
}

// ---- IPC round trips ------------------------------------------------------------------

/// Time `n` calls of `len` words on `ep`, checking each answer.
fn call_loop(ep: CPtr, len: usize, n: u64) -> Result<u64, Fail> {
    let mr = [1, 2, 3, 4];
    for i in 4..len {
        ipc::set_mr(i, i as u64);
    }
    let info = MsgInfo::new(0, len, 0);
    let t0 = now();
    for _ in 0..n {
        let m = ipc::call(ep, info, mr);
        if m.info.length() != len {
            return Err("echo answered a different length");
        }
    }
    let t = now() - t0;
    if len > 4 && ipc::get_mr(len - 1) != (len - 1) as u64 {
        return Err("echo lost the words in the IPC buffer");
    }
    Ok(t)
}

extern "C" fn echo_thread(arg: u64) -> ! {
    common::echo(arg & 0xffff_ffff, arg >> 32)
}

fn ipc_cases(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    // Same address space: a thread of the root.
    let (ep, rp) = (env.endpoint()?, env.reply()?);
    env.thread(echo_thread, ep | rp << 32, SERVER_PRIO)?;
    r.run(env, "ipc_rt_same_as", Unit::Instructions, 500, |_, n| {
        call_loop(ep, 0, n)
    });

    // Another address space, hand-written IPC.
    let ep = env.endpoint()?;
    let rp = env.reply()?;
    env.worker(role::ECHO, 0, SERVER_PRIO, &[(slot::EP, ep), (slot::REPLY, rp)], &[])?;
    r.run(env, "ipc_rt_cross_as", Unit::Instructions, 500, |_, n| {
        call_loop(ep, 0, n)
    });
    r.run(env, "ipc_rt_cross_as_32b", Unit::Instructions, 500, |_, n| {
        call_loop(ep, 4, n)
    });
    r.run(env, "ipc_rt_cross_as_256b", Unit::Instructions, 500, |_, n| {
        call_loop(ep, 32, n)
    });

    // A 4 KiB lease: the client fills a shared page, the server copies it out.
    let (lease_va, frames) = env.shared(1)?;
    let (ep, rp) = (env.endpoint()?, env.reply()?);
    env.worker(
        role::LEASE,
        0,
        SERVER_PRIO,
        &[(slot::EP, ep), (slot::REPLY, rp)],
        &frames,
    )?;
    let src = [0x5au8; 4096];
    r.run(env, "ipc_rt_cross_as_4k_lease", Unit::Instructions, 200, |_, n| {
        let t0 = now();
        for _ in 0..n {
            // SAFETY: the lease page is mapped at `lease_va` in this address space.
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::copy_nonoverlapping(src.as_ptr(), lease_va as *mut u8, src.len());
            }
            let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [4096, 0, 0, 0]);
            if m.mr[0] != 0x5a {
                return Err("the server did not see the lease's bytes");
            }
        }
        Ok(now() - t0)
    });

    // The same messages through the IDL stubs and the server runtime.
    let (ep, rp) = (env.endpoint()?, env.reply()?);
    env.worker(role::IDL, 0, SERVER_PRIO, &[(slot::EP, ep), (slot::REPLY, rp)], &[])?;
    let client = bench::BenchClient::new(EndpointTransport { ep });
    r.run(env, "ipc_rt_idl", Unit::Instructions, 500, |_, n| {
        let t0 = now();
        for _ in 0..n {
            client.nop().map_err(|_| "nop failed")?;
        }
        Ok(now() - t0)
    });
    // Like `call_loop`, each iteration checks that the call succeeded and the contents
    // are compared once, after the timed loop (a per-iteration compare would time the
    // comparison, not the stubs).
    r.run(env, "ipc_rt_idl_32b", Unit::Instructions, 500, |_, n| {
        let a = [1, 2, 3, 4];
        let mut last = [0; 4];
        let t0 = now();
        for _ in 0..n {
            last = client.echo32(&a).map_err(|_| "echo32 failed")?;
        }
        let t = now() - t0;
        if n > 0 && last != a {
            return Err("echo32 answered other words");
        }
        Ok(t)
    });
    r.run(env, "ipc_rt_idl_256b", Unit::Instructions, 500, |_, n| {
        let mut a = [0u64; 32];
        for (i, w) in a.iter_mut().enumerate() {
            *w = i as u64;
        }
        let mut last = [0; 32];
        let t0 = now();
        for _ in 0..n {
            last = client.echo256(&a).map_err(|_| "echo256 failed")?;
        }
        let t = now() - t0;
        if n > 0 && last != a {
            return Err("echo256 answered other words");
        }
        Ok(t)
    });

    // One-way: Send to a higher-priority receiver that waits again at once.
    let ep = env.endpoint()?;
    let rp = env.reply()?;
    env.worker(
        role::WAITER_EP,
        0,
        SERVER_PRIO,
        &[(slot::EP, ep), (slot::REPLY, rp)],
        &[],
    )?;
    r.run(env, "ipc_oneway", Unit::Instructions, 500, |_, n| {
        let t0 = now();
        for i in 0..n {
            ok(ipc::send(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]), "send")?;
        }
        Ok(now() - t0)
    });
    Ok(())
}

// ---- notifications and yield -----------------------------------------------------------

/// A word in the root's view of a shared page.
fn word(va: u64, i: usize) -> &'static AtomicU64 {
    // SAFETY: `va` is a shared page mapped in the root for the whole run.
    #[allow(unsafe_code)]
    unsafe {
        &*((va as *const AtomicU64).add(i))
    }
}

extern "C" fn signal_forever(ntfn: u64) -> ! {
    loop {
        let _ = ipc::signal(ntfn);
    }
}

extern "C" fn yield_forever(_: u64) -> ! {
    loop {
        libl4::syscall::yield_now();
    }
}

fn notification_cases(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    // To a higher-priority waiter in another address space: from before the signal to
    // the waiter's first instruction after its wait (it stamps the time).
    let (stamp_va, frames) = env.shared(1)?;
    let n = env.notification()?;
    env.worker(role::WAKE_STAMP, 0, SERVER_PRIO, &[(slot::NTFN, n.0)], &frames)?;
    r.run(env, "signal_wait", Unit::Instructions, 500, |_, k| {
        let mut total = 0;
        for _ in 0..k {
            let t0 = now();
            ok(ipc::signal(n.0), "signal")?;
            let t1 = word(stamp_va, 0).load(Ordering::Acquire);
            if t1 < t0 {
                return Err("the waiter did not run");
            }
            total += t1 - t0;
        }
        Ok(total)
    });

    // To a lower-priority waiter: the signal alone (no switch). The waiter runs and
    // waits again while the benchmark waits on `back`, which a lowest-priority thread
    // signals once both have blocked.
    let low = env.notification()?;
    let back = env.notification()?;
    env.worker(role::WAITER, 0, MAIN_PRIO - 10, &[(slot::NTFN, low.0)], &[])?;
    let signaller = env.thread(signal_forever, back.0, MAIN_PRIO - 20)?;
    r.run(env, "signal_lower", Unit::Instructions, 200, |_, k| {
        let mut total = 0;
        for _ in 0..k {
            let t0 = now();
            ok(ipc::signal(low.0), "signal")?;
            total += now() - t0;
            ok(ipc::wait(back.0), "wait")?;
        }
        Ok(total)
    });
    // It would spin whenever the benchmark blocks in later cases.
    ok(signaller.suspend(), "suspend the signaller")?;

    // Yield to another thread of the same priority: two yields per round.
    let other = env.thread(yield_forever, 0, MAIN_PRIO)?;
    r.run(env, "yield", Unit::Instructions, 500, |_, k| {
        let t0 = now();
        for _ in 0..k {
            libl4::syscall::yield_now();
        }
        Ok((now() - t0) / 2)
    });
    ok(other.suspend(), "suspend the yielder")
}

// ---- lat_ctx ----------------------------------------------------------------------------

/// A token passes round `n` threads in `n` address spaces (the root is one); each
/// touches its working set per turn. Per context switch.
fn ring(r: &mut Runner, env: &mut Env, n: usize) -> Result<(), Fail> {
    let mut eps = heapless::Vec::<CPtr, 16>::new();
    for _ in 0..n {
        eps.push(env.endpoint()?).map_err(|_| "ring too long")?;
    }
    let rp = env.reply()?;
    for i in 1..n {
        let next = eps[(i + 1) % n];
        let wrp = env.reply()?;
        env.worker(
            role::RING,
            0,
            MAIN_PRIO,
            &[(slot::EP, eps[i]), (slot::REPLY, wrp), (slot::NEXT, next)],
            &[],
        )?;
    }
    let (ws_va, _) = env.shared(common::WORKING_SET_MAX / 4096)?;
    for (ws, suffix) in [(0u64, ""), (common::WORKING_SET_MAX, "_16k")] {
        let mut name = heapless::String::<32>::new();
        let _ = core::fmt::write(&mut name, format_args!("ctx_ring_{n}{suffix}"));
        r.run(env, &name, Unit::Instructions, 200, |_, laps| {
            let t0 = now();
            for _ in 0..laps {
                let sum = common::touch(ws_va, ws);
                ok(
                    ipc::send(eps[1], MsgInfo::new(0, 2, 0), [ws, sum, 0, 0]),
                    "pass the token",
                )?;
                let m = ipc::recv(eps[0], rp);
                if m.info.is_kernel() || m.mr[0] != ws {
                    return Err("the token came back wrong");
                }
            }
            Ok((now() - t0) / n as u64)
        });
    }
    Ok(())
}

// ---- bw_pipe ----------------------------------------------------------------------------

/// Bulk transfer through a shared ring buffer, a notification each way.
fn bw_pipe(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    let (va, frames) = env.shared(pipe::PAGES)?;
    let data = env.notification()?;
    let space = env.notification()?;
    env.worker(
        role::SINK,
        0,
        MAIN_PRIO,
        &[(slot::NTFN, data.0), (slot::NTFN_OUT, space.0)],
        &frames,
    )?;
    let (written, read) = (word(va, 0), word(va, 1));
    let src = [0xa5u8; pipe::SLOT];
    let bytes_full: u64 = 4 << 20;
    let slots = r.batch(bytes_full / pipe::SLOT as u64);
    let bytes = slots * pipe::SLOT as u64;
    r.run(env, "bw_pipe", Unit::MbPerMinstr { bytes }, slots, |_, k| {
        let t0 = now();
        for _ in 0..k {
            let w = written.load(Ordering::Relaxed);
            while w - read.load(Ordering::Acquire) >= pipe::SLOTS as u64 {
                ok(ipc::wait(space.0), "wait for space")?;
            }
            let at = va + 4096 + (w as usize % pipe::SLOTS * pipe::SLOT) as u64;
            // SAFETY: the slot is in the shared ring, mapped here, and free (the
            // consumer has read it).
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::copy_nonoverlapping(src.as_ptr(), at as *mut u8, pipe::SLOT);
            }
            written.store(w + 1, Ordering::Release);
            ok(ipc::signal(data.0), "signal data")?;
        }
        // Wait until the consumer has everything.
        while read.load(Ordering::Acquire) != written.load(Ordering::Relaxed) {
            ok(ipc::wait(space.0), "wait for the consumer")?;
        }
        Ok(now() - t0)
    });
    Ok(())
}

// ---- IRQ latency ------------------------------------------------------------------------

/// From the timer firing to the first instruction of the user-level handler (this
/// thread, waiting on the notification bound to the line).
fn irq_to_user(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    let handler = ok(env.a.slot(), "slot")?;
    let line = env.user_timer.ok_or("the board gives user level no timer")?;
    ok(
        IrqControl(gaon_abi::bootinfo::slot::IRQ_CONTROL).get(line, ROOT_CNODE, handler),
        "claim the virtual timer's IRQ (does the board give it to user level?)",
    )?;
    let irq = IrqHandler(handler);
    let n = env.notification()?;
    ok(irq.set_notification(n.0), "bind")?;
    r.run(env, "irq_to_user", Unit::Instructions, 50, |_, k| {
        let mut total = 0;
        for _ in 0..k {
            let cval = now() + 200;
            ok(irq.set_timer(Some(cval)), "arm the timer")?;
            ok(ipc::wait(n.0), "wait for the IRQ")?;
            let t = now();
            ok(irq.set_timer(None), "disarm the timer")?;
            ok(irq.ack(), "ack")?;
            if t < cval {
                return Err("woke before the timer fired");
            }
            total += t - cval;
        }
        Ok(total)
    });
    irq_during_long_operations(r, env, irq)
}

/// Radix of the CNode `irq_during_delete` deletes: 16384 endpoint caps.
const LONG_DELETE_RADIX: u8 = 14;
/// Size of the untyped `irq_during_retype` retypes into 2 MiB frames: 8 MiB.
const LONG_RETYPE_BITS: u8 = 23;

/// The worst-case interrupt latency while the kernel is busy in a long operation on
/// behalf of this (lower-priority) thread: from the user timer firing to the first
/// instruction of a higher-priority handler in another address space, while this
/// thread deletes a CNode full of caps (`irq_during_delete`) or retypes a large untyped
/// whose memory the kernel zeroes (`irq_during_retype`). The kernel stops such
/// operations at a preemption point when an interrupt is pending and restarts them, so
/// the latency is one step of the operation plus `irq_to_user`'s path.
fn irq_during_long_operations(r: &mut Runner, env: &mut Env, irq: IrqHandler) -> Result<(), Fail> {
    let (stamp_va, frames) = env.shared(1)?;
    let n = env.notification()?;
    env.worker(role::WAKE_STAMP, 0, SERVER_PRIO, &[(slot::NTFN, n.0)], &frames)?;
    ok(irq.set_notification(n.0), "route the timer to the handler")?;
    let stamp = || word(stamp_va, 0).load(Ordering::Acquire);
    // Time the timer so it fires inside the operation, a millisecond (of virtual time:
    // a million instructions under icount) after it starts.
    let delay = counter_hz() / 1000;
    let measure = |env: &mut Env, op: &mut dyn FnMut(&mut Env) -> Result<(), Fail>| -> Result<u64, Fail> {
        word(stamp_va, 0).store(0, Ordering::Release);
        let cval = now() + delay;
        ok(irq.set_timer(Some(cval)), "arm the timer")?;
        op(env)?;
        let done = now();
        ok(irq.set_timer(None), "disarm the timer")?;
        ok(irq.ack(), "ack")?;
        let t = stamp();
        if t < cval || done < cval {
            return Err("the operation ended before the timer fired: make it longer");
        }
        if t > done {
            return Err("the handler ran only after the operation: no preemption");
        }
        Ok(t - cval)
    };

    let ep = ok(env.a.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let room = ok(
        env.a.alloc(ObjType::Untyped, LONG_DELETE_RADIX + 7),
        "untyped for the CNode",
    )?;
    let cn = ok(env.a.slot(), "slot")?;
    r.run(env, "irq_during_delete", Unit::Instructions, 1, |env, k| {
        let mut total = 0;
        for _ in 0..k {
            let retype = Untyped(room).retype(ObjType::CNode, LONG_DELETE_RADIX, ROOT_CNODE, cn, 1);
            ok(retype, "retype the CNode")?;
            for i in 0..1u64 << LONG_DELETE_RADIX {
                ok(CNode(cn).copy(i, ep, Rights::all()), "fill the CNode")?;
            }
            total += measure(env, &mut |_| ok(ROOT_CNODE.delete(cn), "delete the CNode"))?;
        }
        Ok(total)
    });

    let big = ok(env.a.alloc(ObjType::Untyped, LONG_RETYPE_BITS), "untyped to retype")?;
    let first = ok(env.a.slot(), "slot")?;
    for _ in 1..1u64 << (LONG_RETYPE_BITS - 21) {
        ok(env.a.slot(), "slot")?;
    }
    r.run(env, "irq_during_retype", Unit::Instructions, 1, |env, k| {
        let mut total = 0;
        for _ in 0..k {
            let count = 1u64 << (LONG_RETYPE_BITS - 21);
            let args = UntypedRetypeArgs {
                object: ObjectSpec::new(ObjType::Frame, 21),
                dest: ROOT_CNODE.0,
                first,
                count,
            };
            total += measure(env, &mut |_| {
                ok(ipc::invoke_args(big, &args).map(|_| ()), "retype into 2 MiB frames")
            })?;
            ok(ROOT_CNODE.revoke(big), "free the frames")?;
        }
        Ok(total)
    });
    Ok(())
}

// ---- objects ------------------------------------------------------------------------------

fn object_cases(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    // Create a thread (retype, configure) and destroy it (delete the last capability).
    r.run(env, "thread_create_destroy", Unit::Instructions, 50, |env, k| {
        let s = ok(env.a.slot(), "slot")?;
        let vs = env.a.vspace;
        let t0 = now();
        for _ in 0..k {
            ok(env.a.alloc_at(ObjType::Tcb, 0, s), "retype a Tcb")?;
            let t = Tcb(s);
            ok(t.set_space(ROOT_CNODE, vs, 0), "set space")?;
            ok(t.set_priority(1, ROOT_TCB), "set priority")?;
            ok(ROOT_CNODE.delete(s), "delete")?;
        }
        Ok(now() - t0)
    });
    // Map a frame and unmap it again (its page table stays).
    let f = Frame(ok(env.a.alloc(ObjType::Frame, 12), "frame")?);
    let va = ok(env.a.va.take(1), "address")?;
    let vs = env.a.vspace;
    ok(env.a.map(vs, f, va, Rights::READ | Rights::WRITE, false), "first map")?;
    ok(f.unmap(), "first unmap")?;
    r.run(env, "frame_map_unmap", Unit::Instructions, 200, |_, k| {
        let t0 = now();
        for _ in 0..k {
            ok(f.map(vs, va, Rights::READ | Rights::WRITE, false), "map")?;
            ok(f.unmap(), "unmap")?;
        }
        Ok(now() - t0)
    });
    Ok(())
}

// ---- across cores -----------------------------------------------------------------------

/// Between cores 0 and 1 (2 for the migration). Under `-icount` QEMU runs the cores one
/// at a time, round-robin, switching when a core halts (`wfi`) or yields: a figure is
/// every instruction any core executed between the two counter reads, the other core's
/// included, with none overlapping. (On hardware the cores overlap; what is measured
/// here is the work done, not the latency.)
fn cross_core_cases(r: &mut Runner, env: &mut Env) -> Result<(), Fail> {
    if env.cpus & 0b110 != 0b110 {
        return Err("needs cores 1 and 2");
    }
    // A round trip to a server in another address space on core 1: core 0 sends, the
    // server's core is told by IPI and wakes from idle, the reply comes back the same way.
    let (ep, rp) = (env.endpoint()?, env.reply()?);
    let server = env.worker(role::ECHO, 0, SERVER_PRIO, &[(slot::EP, ep), (slot::REPLY, rp)], &[])?;
    ok(server.tcb.set_affinity(1), "server to core 1")?;
    r.run(env, "ipc_rt_cross_core", Unit::Instructions, 200, |_, n| {
        call_loop(ep, 0, n)
    });
    ok(server.tcb.suspend(), "stop the server")?;

    // A signal to a waiter on core 1: from before the signal to the waiter's first
    // instruction after its wait (it stamps the time), core 0 spinning meanwhile.
    let (stamp_va, frames) = env.shared(1)?;
    let n = env.notification()?;
    let waiter = env.worker(role::WAKE_STAMP, 0, SERVER_PRIO, &[(slot::NTFN, n.0)], &frames)?;
    ok(waiter.tcb.set_affinity(1), "waiter to core 1")?;
    r.run(env, "signal_cross_core", Unit::Instructions, 200, |_, k| {
        let mut total = 0;
        for _ in 0..k {
            let before = word(stamp_va, 0).load(Ordering::Acquire);
            let t0 = now();
            ok(ipc::signal(n.0), "signal")?;
            let t1 = spin_for_stamp(stamp_va, before)?;
            total += t1 - t0;
        }
        Ok(total)
    });

    // Migration: the waiter's scheduling context is exchanged for one of the other
    // core's (unbind, bind), and a signal runs it there: to its stamp.
    let sc = [env.sched_context()?, env.sched_context()?];
    for (i, &c) in sc.iter().enumerate() {
        let control = libl4::cap::SchedControl(gaon_abi::bootinfo::slot::sched_control(i + 1).unwrap_or(0));
        ok(control.configure(c, 10_000, 10_000, 0), "configure")?;
    }
    ok(sc[0].bind(waiter.tcb), "bind")?;
    let mut on = 0;
    r.run(env, "migrate", Unit::Instructions, 100, |_, k| {
        let mut total = 0;
        for _ in 0..k {
            let before = word(stamp_va, 0).load(Ordering::Acquire);
            let t0 = now();
            ok(sc[on].unbind(), "unbind")?;
            on ^= 1;
            ok(sc[on].bind(waiter.tcb), "bind")?;
            ok(ipc::signal(n.0), "signal")?;
            let t1 = spin_for_stamp(stamp_va, before)?;
            total += t1 - t0;
        }
        if ok(waiter.tcb.cpu(), "cpu")? != on as u64 + 1 {
            return Err("the waiter is not on its scheduling context's core");
        }
        Ok(total)
    });
    ok(waiter.tcb.suspend(), "stop the waiter")
}

/// Spin (with the `yield` hint, so QEMU runs the other cores) until the stamp at `va`
/// moves past `before`; the new stamp.
fn spin_for_stamp(va: u64, before: u64) -> Result<u64, Fail> {
    for _ in 0..10_000_000 {
        let t = word(va, 0).load(Ordering::Acquire);
        if t != before {
            return Ok(t);
        }
        libl4::syscall::spin_hint();
    }
    Err("the thread on the other core did not run")
}
