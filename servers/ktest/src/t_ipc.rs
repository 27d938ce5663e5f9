//! IPC: Call/ReplyRecv, Send/Recv, badges, long messages, capability transfer,
//! notifications, cancellation, and the fastpath.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::invocation::REG_X0;
use libl4::cap::{CNode, Tcb, VSpace};
use libl4::ipc::{self, MsgInfo};
use libl4::syscall::{call2, yield_now};
use libl4::{Error, Label, ObjType, Rights, Syscall};

use crate::env::{Env, ROOT_CNODE, ROOT_TCB};
use crate::t_tcb::park;
use crate::{R, check, err, ok};

crate::tests![
    "call and reply carry four message registers" => call_reply,
    "the receiver sees the sender's badge" => badge,
    "the label travels with the message" => label,
    "a 20-word message goes through the IPC buffers" => long_message,
    "a sender cannot forge the kernel flag" => no_forged_kernel_flag,
    "send blocks until a receiver takes the message" => send_blocks,
    "NBSend with no receiver drops the message" => nbsend_drops,
    "NBRecv with nothing pending would block" => nbrecv_empty,
    "receiving needs the read right" => recv_needs_read,
    "sending needs the write right" => send_needs_write,
    "call on an empty slot fails the lookup" => call_empty,
    "send on a frame is refused" => send_frame,
    "recv on a frame is refused" => recv_frame,
    "ReplyRecv needs a reply object" => reply_recv_needs_reply,
    "a reply object in use cannot receive again" => reply_busy,
    "calling a receiver without a reply object is cancelled" => call_no_reply,
    "a capability travels with a granted message" => cap_transfer,
    "without the grant right no capability travels" => cap_no_grant,
    "a badged cap to the same endpoint arrives as its badge" => cap_unwrap,
    "an untyped cap does not travel" => cap_untyped,
    "a receiver without an IPC buffer gets four words" => clamp_no_buffer,
    "a message length of 127 is clamped" => clamp_127,
    "deleting the reply object cancels the caller" => reply_deleted,
    "deleting an endpoint cancels a blocked receiver" => ep_deleted_receiver,
    "deleting an endpoint cancels a blocked sender" => ep_deleted_sender,
    "a suspended sender leaves the queue" => suspended_sender,
    "senders are served in order" => fifo,
    "signal then poll returns the bits" => ntfn_poll,
    "poll with nothing pending would block" => ntfn_poll_empty,
    "signals accumulate" => ntfn_accumulate,
    "wait blocks until a signal" => ntfn_wait,
    "signalling needs the write right" => ntfn_needs_write,
    "waiting needs the read right" => ntfn_needs_read,
    "a bound notification wakes a receive" => ntfn_bound_wakes_recv,
    "a pending bound signal returns from recv at once" => ntfn_bound_pending,
    "a notification bound to another thread cannot be waited on" => ntfn_bound_other,
    "deleting a notification cancels its waiter" => ntfn_deleted,
    "call and reply between address spaces take the fastpath" => fastpath_cross_as,
    "call and reply in one address space take the fastpath" => fastpath_same_as,
    "thread pointers survive the fastpath's switches" => fastpath_thread_pointers,
];

static RESULT: AtomicU64 = AtomicU64::new(0);

fn endpoint(env: &mut Env) -> Result<u64, crate::Fail> {
    ok(env.alloc(ObjType::Endpoint, 0), "endpoint")
}
fn reply(env: &mut Env) -> Result<u64, crate::Fail> {
    ok(env.alloc(ObjType::Reply, 0), "reply")
}
fn ntfn(env: &mut Env) -> Result<u64, crate::Fail> {
    ok(env.alloc(ObjType::Notification, 0), "notification")
}

/// Echo server: `arg = ep | reply << 16`. Replies with the same label, MR0..2 + 1,
/// MR3 = the caller's badge, and message registers 4.. + 1 from its IPC buffer.
extern "C" fn echo(arg: u64) -> ! {
    let (ep, rp) = (arg & 0xffff, arg >> 16);
    let mut m = ipc::recv(ep, rp);
    loop {
        let len = m.info.length();
        for i in 4..len {
            ipc::set_mr(i, ipc::get_mr(i) + 1);
        }
        let out = [m.mr[0] + 1, m.mr[1] + 1, m.mr[2] + 1, m.badge];
        m = ipc::reply_recv(ep, rp, MsgInfo::new(m.info.label(), len.max(4), 0), out);
    }
}

pub(crate) fn echo_server(env: &mut Env, prio: u64) -> Result<(u64, Tcb), crate::Fail> {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let t = ok(env.spawn(echo, ep | (rp << 16), prio, 0), "spawn echo server")?;
    Ok((ep, t))
}

fn call_reply(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    let m = ipc::call(ep, MsgInfo::new(0, 4, 0), [10, 20, 30, 40]);
    ok(t.suspend(), "stop server")?;
    check(m.mr[..3] == [11, 21, 31] && !m.info.is_kernel(), "echoed")
}
fn badge(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, ep, Rights::all(), 0x55), "mint")?;
    let m = ipc::call(b, MsgInfo::new(0, 4, 0), [0; 4]);
    ok(t.suspend(), "stop server")?;
    check(m.mr[3] == 0x55, "badge seen by the server")
}
fn label(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    let m = ipc::call(ep, MsgInfo::new(0xbeef, 1, 0), [0; 4]);
    ok(t.suspend(), "stop server")?;
    check(m.info.label() == 0xbeef, "label round trip")
}
fn long_message(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    for i in 4..20 {
        ipc::set_mr(i, i as u64 * 100);
    }
    let m = ipc::call(ep, MsgInfo::new(1, 20, 0), [1, 2, 3, 4]);
    ok(t.suspend(), "stop server")?;
    check(m.info.length() == 20, "length 20")?;
    check(
        (4..20).all(|i| ipc::get_mr(i) == i as u64 * 100 + 1),
        "words 4..20 echoed",
    )
}
fn no_forged_kernel_flag(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    let forged = MsgInfo(MsgInfo::kernel(Error::Cancelled as u64, 0).0 | 4);
    let m = ipc::call(ep, forged, [0; 4]);
    ok(t.suspend(), "stop server")?;
    // The server replies with the same label; the reply must not look kernel-made.
    check(!m.info.is_kernel(), "kernel flag stripped")
}

extern "C" fn sender(arg: u64) -> ! {
    let (ep, done) = (arg & 0xffff, arg >> 16);
    let r = ipc::send(ep, MsgInfo::new(7, 1, 0), [99, 0, 0, 0]);
    RESULT.store(
        match r {
            Ok(()) => 1,
            Err(e) => 100 + e as u64,
        },
        Ordering::SeqCst,
    );
    let _ = ipc::signal(done);
    park()
}
fn send_blocks(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(sender, ep | (done << 16), 255, 0), "spawn")?;
    yield_now();
    check(RESULT.load(Ordering::SeqCst) == 0, "sender still blocked")?;
    let m = ipc::recv(ep, 0);
    check(m.info.label() == 7 && m.mr[0] == 99, "message received")?;
    ok(ipc::wait(done), "wait")?;
    ok(t.suspend(), "stop")?;
    check(RESULT.load(Ordering::SeqCst) == 1, "send returned Ok")
}
fn nbsend_drops(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    ok(ipc::nb_send(ep, MsgInfo::new(1, 1, 0), [5, 0, 0, 0]), "nb_send")?;
    err(ipc::nb_recv(ep, 0).ok(), Error::WouldBlock, "nothing queued")
}
fn nbrecv_empty(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    err(ipc::nb_recv(ep, 0).ok(), Error::WouldBlock, "empty endpoint")
}
fn recv_needs_read(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let w = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(w, ep, Rights::WRITE), "write-only copy")?;
    err(ipc::nb_recv(w, 0).ok(), Error::NoRights, "recv on write-only")
}
fn send_needs_write(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let r = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(r, ep, Rights::READ), "read-only copy")?;
    err(
        ipc::call(r, MsgInfo::new(0, 0, 0), [0; 4]).ok(),
        Error::NoRights,
        "call on read-only",
    )?;
    err(
        ipc::send(r, MsgInfo::new(0, 0, 0), [0; 4]),
        Error::NoRights,
        "send on read-only",
    )
}
fn call_empty(_: &mut Env) -> R {
    err(
        ipc::call(4003, MsgInfo::new(0, 0, 0), [0; 4]).ok(),
        Error::FailedLookup,
        "empty slot",
    )
}
fn send_frame(env: &mut Env) -> R {
    let f = ok(env.alloc(ObjType::Frame, 12), "frame")?;
    err(
        ipc::send(f, MsgInfo::new(0, 0, 0), [0; 4]),
        Error::InvalidCapability,
        "send on a frame",
    )
}
fn recv_frame(env: &mut Env) -> R {
    let f = ok(env.alloc(ObjType::Frame, 12), "frame")?;
    err(ipc::nb_recv(f, 0).ok(), Error::InvalidCapability, "recv on a frame")
}
fn reply_recv_needs_reply(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    err(
        ipc::reply_recv(ep, 0, MsgInfo(0), [0; 4]).ok(),
        Error::InvalidCapability,
        "no reply object",
    )?;
    err(
        ipc::reply_recv(ep, ep, MsgInfo(0), [0; 4]).ok(),
        Error::InvalidCapability,
        "endpoint as reply",
    )
}
fn reply_busy(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let t = ok(env.spawn(echo, ep | (rp << 16), 255, 0), "server")?;
    yield_now(); // the server blocks in Recv holding the reply object
    let ep2 = endpoint(env)?;
    let r = ipc::nb_recv(ep2, rp).ok();
    ok(t.suspend(), "stop server")?;
    err(r, Error::IllegalOperation, "reply object in use")
}
extern "C" fn recv_no_reply(ep: u64) -> ! {
    loop {
        let _ = ipc::recv(ep, 0);
    }
}
fn call_no_reply(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let t = ok(env.spawn(recv_no_reply, ep, 255, 0), "receiver")?;
    yield_now();
    let r = ipc::call(ep, MsgInfo::new(0, 1, 0), [1, 0, 0, 0]).ok();
    ok(t.suspend(), "stop")?;
    err(r, Error::Cancelled, "no reply possible")
}

/// Receives one message with a cap into slot `arg >> 32` of the root CNode, replies
/// with the received slot's type and the message info.
extern "C" fn cap_receiver(arg: u64) -> ! {
    let (ep, rp, dest) = (arg & 0xffff, (arg >> 16) & 0xffff, arg >> 32);
    if let Some(b) = ipc::ipc_buffer() {
        b.receive_cnode = ROOT_CNODE.0;
        b.receive_index = dest;
    }
    let m = ipc::recv(ep, rp);
    let ty = ROOT_CNODE.identify(dest).map_or(u64::MAX, |t| t.0);
    let badge0 = ipc::ipc_buffer().map_or(0, |b| b.caps_or_badges[0]);
    let _ = ipc::reply_recv(ep, rp, MsgInfo::new(0, 4, 0), [ty, m.info.0, badge0, 0]);
    park()
}
fn cap_exchange(env: &mut Env, send_cap: u64, via: Option<u64>) -> Result<(u64, MsgInfo, u64), crate::Fail> {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let dest = ok(env.slot(), "slot")?;
    let t = ok(
        env.spawn(cap_receiver, ep | (rp << 16) | (dest << 32), 255, 0),
        "receiver",
    )?;
    yield_now();
    let target = match via {
        Some(rights) => {
            let s = ok(env.slot(), "slot")?;
            ok(ROOT_CNODE.copy(s, ep, Rights::from_bits_truncate(rights)), "copy")?;
            s
        }
        None => ep,
    };
    let send_cap = if send_cap == u64::MAX { ep } else { send_cap };
    if let Some(b) = ipc::ipc_buffer() {
        b.caps_or_badges[0] = send_cap;
    }
    let m = ipc::call(target, MsgInfo::new(0, 0, 1), [0; 4]);
    ok(t.suspend(), "stop")?;
    Ok((m.mr[0], MsgInfo(m.mr[1]), m.mr[2]))
}
fn cap_transfer(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let (ty, info, _) = cap_exchange(env, n, None)?;
    check(
        info.extra_caps() == 1 && info.caps_unwrapped() == 0,
        "one cap transferred",
    )?;
    check(ty == ObjType::Notification as u64 + 1, "receiver holds a notification")
}
fn cap_no_grant(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let (ty, info, _) = cap_exchange(env, n, Some((Rights::WRITE).bits()))?;
    check(info.extra_caps() == 0 && ty == 0, "nothing transferred")
}
fn cap_unwrap(env: &mut Env) -> R {
    // The message carries a cap to the very endpoint it goes through.
    let (ty, info, _) = cap_exchange(env, u64::MAX, None)?;
    // Unbadged caps to the same endpoint unwrap to badge 0.
    check(
        info.extra_caps() == 1 && info.caps_unwrapped() == 1 && ty == 0,
        "unwrapped, not copied",
    )
}
fn cap_untyped(env: &mut Env) -> R {
    let u = ok(env.alloc(ObjType::Untyped, 12), "untyped")?;
    let (ty, info, _) = cap_exchange(env, u, None)?;
    check(info.extra_caps() == 0 && ty == 0, "untyped not transferred")
}
fn clamp_no_buffer(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let t = ok(env.thread(crate::env::entry(echo), ep | (rp << 16), 200, 0), "server")?;
    ok(t.set_ipc_buffer(0, 0), "remove its IPC buffer")?;
    ok(t.write_registers(gaon_abi::invocation::REG_TPIDR, &[0]), "no TPIDR")?;
    ok(t.resume(), "resume")?;
    let m = ipc::call(ep, MsgInfo::new(0, 30, 0), [1, 2, 3, 4]);
    ok(t.suspend(), "stop")?;
    check(m.info.length() == 4, "clamped to 4")
}
fn clamp_127(_: &mut Env) -> R {
    let m = ipc::call(
        ROOT_CNODE.0,
        MsgInfo(MsgInfo::new(Label::CNodeIdentify as u64, 1, 0).0 | 0x7f),
        [2, 0, 0, 0],
    );
    let m = ok(m.ok(), "identify with length 127")?;
    check(m.mr[0] == ObjType::CNode as u64 + 1, "still works")
}

extern "C" fn caller(arg: u64) -> ! {
    let (ep, done) = (arg & 0xffff, arg >> 16);
    let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [1, 0, 0, 0]);
    RESULT.store(m.error().map_or(1, |e| 100 + e as u64), Ordering::SeqCst);
    let _ = ipc::signal(done);
    park()
}
fn reply_deleted(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(caller, ep | (done << 16), 100, 0), "caller")?;
    let m = ipc::recv(ep, rp);
    check(m.mr[0] == 1, "call received")?;
    ok(ROOT_CNODE.delete(rp), "delete the reply object")?;
    ok(ipc::wait(done), "caller woke")?;
    ok(t.suspend(), "stop")?;
    check(
        RESULT.load(Ordering::SeqCst) == 100 + Error::Cancelled as u64,
        "caller cancelled",
    )
}
extern "C" fn receiver_reporting(arg: u64) -> ! {
    let (ep, done) = (arg & 0xffff, arg >> 16);
    let m = ipc::recv(ep, 0);
    RESULT.store(m.error().map_or(1, |e| 100 + e as u64), Ordering::SeqCst);
    let _ = ipc::signal(done);
    park()
}
fn ep_deleted_receiver(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(receiver_reporting, ep | (done << 16), 255, 0), "receiver")?;
    yield_now();
    ok(ROOT_CNODE.delete(ep), "delete endpoint")?;
    ok(ipc::wait(done), "receiver woke")?;
    ok(t.suspend(), "stop")?;
    check(
        RESULT.load(Ordering::SeqCst) == 100 + Error::Cancelled as u64,
        "receiver cancelled",
    )
}
fn ep_deleted_sender(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(sender, ep | (done << 16), 255, 0), "sender")?;
    yield_now();
    ok(ROOT_CNODE.delete(ep), "delete endpoint")?;
    ok(ipc::wait(done), "sender woke")?;
    ok(t.suspend(), "stop")?;
    check(
        RESULT.load(Ordering::SeqCst) == 100 + Error::Cancelled as u64,
        "sender cancelled",
    )
}
fn suspended_sender(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let done = ntfn(env)?;
    let t = ok(env.spawn(sender, ep | (done << 16), 255, 0), "sender")?;
    yield_now();
    ok(t.suspend(), "suspend the blocked sender")?;
    err(ipc::nb_recv(ep, 0).ok(), Error::WouldBlock, "queue empty")
}
extern "C" fn badge_sender(arg: u64) -> ! {
    let _ = ipc::send(arg, MsgInfo::new(0, 0, 0), [0; 4]);
    park()
}
fn fifo(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let mut ts = [Tcb(0); 3];
    for (i, t) in ts.iter_mut().enumerate() {
        let b = ok(env.slot(), "slot")?;
        ok(ROOT_CNODE.mint(b, ep, Rights::all(), i as u64 + 1), "badge")?;
        *t = ok(env.spawn(badge_sender, b, 255, 0), "sender")?;
        yield_now();
    }
    let mut got = [0; 3];
    for g in &mut got {
        *g = ipc::recv(ep, 0).badge;
    }
    for t in ts {
        ok(t.suspend(), "stop")?;
    }
    check(got == [1, 2, 3], "first come, first served")
}

fn ntfn_poll(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 0b100), "badge")?;
    ok(ipc::signal(b), "signal")?;
    check(ok(ipc::poll(n), "poll")? == 0b100, "bits")
}
fn ntfn_poll_empty(env: &mut Env) -> R {
    let n = ntfn(env)?;
    err(ipc::poll(n), Error::WouldBlock, "nothing pending")
}
fn ntfn_accumulate(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let (a, b) = (ok(env.slot(), "slot")?, ok(env.slot(), "slot")?);
    ok(ROOT_CNODE.mint(a, n, Rights::all(), 1), "badge 1")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 8), "badge 8")?;
    ok(ipc::signal(a), "signal a")?;
    ok(ipc::signal(b), "signal b")?;
    check(ok(ipc::poll(n), "poll")? == 9, "ORed")?;
    err(ipc::poll(n), Error::WouldBlock, "cleared by the wait")
}
extern "C" fn ntfn_waiter(arg: u64) -> ! {
    let (n, done) = (arg & 0xffff, arg >> 16);
    RESULT.store(ipc::wait(n).unwrap_or(0xdead), Ordering::SeqCst);
    let _ = ipc::signal(done);
    park()
}
fn ntfn_wait(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let done = ntfn(env)?;
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 0x40), "badge")?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(ntfn_waiter, n | (done << 16), 255, 0), "waiter")?;
    yield_now();
    check(RESULT.load(Ordering::SeqCst) == 0, "still waiting")?;
    ok(ipc::signal(b), "signal")?;
    ok(ipc::wait(done), "done")?;
    ok(t.suspend(), "stop")?;
    check(RESULT.load(Ordering::SeqCst) == 0x40, "woken with the bits")
}
fn ntfn_needs_write(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let r = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(r, n, Rights::READ), "read-only")?;
    err(ipc::signal(r), Error::NoRights, "signal read-only")
}
fn ntfn_needs_read(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let w = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(w, n, Rights::WRITE), "write-only")?;
    err(ipc::poll(w), Error::NoRights, "poll write-only")
}
extern "C" fn recv_reporting_badge(arg: u64) -> ! {
    let (ep, done) = (arg & 0xffff, arg >> 16);
    let m = ipc::recv(ep, 0);
    RESULT.store(
        if m.info.is_notification() { m.badge } else { 0xdead },
        Ordering::SeqCst,
    );
    let _ = ipc::signal(done);
    park()
}
fn ntfn_bound_wakes_recv(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let n = ntfn(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(
        env.thread(crate::env::entry(recv_reporting_badge), ep | (done << 16), 255, 0),
        "thread",
    )?;
    ok(t.bind_notification(libl4::cap::Notification(n)), "bind")?;
    ok(t.resume(), "resume")?;
    yield_now();
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 0x20), "badge")?;
    ok(ipc::signal(b), "signal")?;
    ok(ipc::wait(done), "done")?;
    ok(t.suspend(), "stop")?;
    check(RESULT.load(Ordering::SeqCst) == 0x20, "recv returned the notification")
}
fn ntfn_bound_pending(env: &mut Env) -> R {
    let ep = endpoint(env)?;
    let n = ntfn(env)?;
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 0x2), "badge")?;
    ok(ROOT_TCB.bind_notification(libl4::cap::Notification(n)), "bind to root")?;
    ok(ipc::signal(b), "signal")?;
    let m = ipc::recv(ep, 0);
    ok(ROOT_TCB.unbind_notification(), "unbind")?;
    check(
        m.info.is_notification() && m.badge == 2,
        "returned at once with the bits",
    )
}
fn ntfn_bound_other(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    ok(t.bind_notification(libl4::cap::Notification(n)), "bind")?;
    err(ipc::poll(n), Error::IllegalOperation, "bound elsewhere")
}
fn ntfn_deleted(env: &mut Env) -> R {
    let n = ntfn(env)?;
    let done = ntfn(env)?;
    RESULT.store(0, Ordering::SeqCst);
    let t = ok(env.spawn(ntfn_waiter, n | (done << 16), 255, 0), "waiter")?;
    yield_now();
    ok(ROOT_CNODE.delete(n), "delete")?;
    ok(ipc::wait(done), "done")?;
    ok(t.suspend(), "stop")?;
    check(RESULT.load(Ordering::SeqCst) == 0xdead, "waiter got an error")
}

#[allow(unsafe_code, reason = "the snippet is code for another address space")]
mod snippet {
    core::arch::global_asm!(
        ".section .text.ktest_snippet, \"ax\"",
        ".global ktest_echo_start",
        ".global ktest_echo_end",
        ".balign 4",
        "ktest_echo_start:",
        "    mov x19, x0",
        "    mov x20, x6",
        "    mov x7, #5",
        "    svc #0",
        "1:  add x2, x2, #1",
        "    mov x1, #1",
        "    mov x0, x19",
        "    mov x6, x20",
        "    mov x7, #2",
        "    svc #0",
        "    b 1b",
        "ktest_echo_end:",
        ".text",
    );

    unsafe extern "C" {
        pub static ktest_echo_start: u8;
        pub static ktest_echo_end: u8;
    }
}
use snippet::{ktest_echo_end, ktest_echo_start};

/// A server in its own address space and CSpace: a page of hand-written code that
/// answers every call with MR0 + 1. Returns the endpoint to call and its Tcb.
pub fn foreign_echo(env: &mut Env) -> Result<(u64, Tcb), crate::Fail> {
    let ep = endpoint(env)?;
    let rp = reply(env)?;
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    let cn = ok(env.alloc(ObjType::CNode, 4), "cnode")?;
    let guarded = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(guarded, cn, Rights::all(), 60 << 56), "guarded cnode")?;
    ok(CNode(cn).copy(1, ep, Rights::all()), "endpoint into its CSpace")?;
    ok(CNode(cn).copy(2, rp, Rights::all()), "reply into its CSpace")?;
    let start = (&raw const ktest_echo_start) as usize;
    let end = (&raw const ktest_echo_end) as usize;
    let code2 = ok(env.code_page(start, end), "code page")?;
    ok(
        env.map_in(vs, code2, 0x1000, Rights::READ | Rights::EXECUTE),
        "map code",
    )?;
    let t = Tcb(ok(env.alloc(ObjType::Tcb, 0), "tcb")?);
    ok(t.set_space(CNode(guarded), vs, 0), "space")?;
    ok(t.write_registers(0, &[0x1000, 0]), "pc")?;
    ok(
        t.write_registers(REG_X0, &[1, 0, 0, 0, 0, 0, 2]),
        "x0 = endpoint, x6 = reply",
    )?;
    ok(t.set_priority(200, ROOT_TCB), "priority")?;
    ok(t.resume(), "resume")?;
    Ok((ep, t))
}

/// Call and ReplyRecv syscalls that went the general way, since boot (the fastpath
/// counts nothing, so a round trip that takes it leaves this alone).
fn slowpath_count() -> u64 {
    call2(Syscall::DebugSlowpathCount, 0, 0).unwrap_or(u64::MAX)
}

fn fastpath_cross_as(env: &mut Env) -> R {
    let (ep, t) = foreign_echo(env)?;
    let first = ipc::call(ep, MsgInfo::new(0, 1, 0), [41, 0, 0, 0]);
    check(first.mr[0] == 42, "answer from the other address space")?;
    let before = slowpath_count();
    for i in 0..10 {
        let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]);
        check(m.mr[0] == i + 1, "answer")?;
    }
    let slow = slowpath_count() - before;
    ok(t.suspend(), "stop")?;
    check(slow == 0, "every Call and ReplyRecv took the fastpath")
}
/// This thread's TPIDR_EL0.
fn thread_pointer() -> u64 {
    let v: u64;
    #[allow(unsafe_code)]
    // SAFETY: reads this thread's own register.
    unsafe {
        core::arch::asm!("mrs {}, tpidr_el0", out(reg) v, options(nomem, nostack, preserves_flags));
    }
    v
}

/// Set this thread's TPIDR_EL0 (the test program keeps no thread-local storage).
fn set_thread_pointer(v: u64) {
    #[allow(unsafe_code)]
    // SAFETY: writes this thread's own register, which nothing in this program uses.
    unsafe {
        core::arch::asm!("msr tpidr_el0, {}", in(reg) v, options(nomem, nostack, preserves_flags));
    }
}

/// The fastpath's direct switch hands TPIDR_EL0 over without looking at its owner:
/// each side keeps its own across round trips, and the server's is saved to its Tcb.
fn fastpath_thread_pointers(env: &mut Env) -> R {
    let (ep, t) = foreign_echo(env)?;
    let _ = ipc::call(ep, MsgInfo::new(0, 1, 0), [0; 4]);
    ok(
        t.write_registers(gaon_abi::invocation::REG_TPIDR, &[0x5e4e_0000]),
        "server's pointer",
    )?;
    let mine = thread_pointer();
    set_thread_pointer(0xc11e_0000);
    let before = slowpath_count();
    let mut kept = true;
    for i in 0..10 {
        let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [i, 0, 0, 0]);
        kept &= m.mr[0] == i + 1 && thread_pointer() == 0xc11e_0000;
    }
    let slow = slowpath_count() - before;
    set_thread_pointer(mine);
    ok(t.suspend(), "stop")?;
    let server = ok(t.read_registers(gaon_abi::invocation::REG_TPIDR, 1), "read")?[0];
    check(slow == 0, "every Call and ReplyRecv took the fastpath")?;
    check(kept, "the caller's pointer after each round trip")?;
    check(server == 0x5e4e_0000, "the server's pointer, saved at its switches")
}
fn fastpath_same_as(env: &mut Env) -> R {
    let (ep, t) = echo_server(env, 200)?;
    let _ = ipc::call(ep, MsgInfo::new(0, 1, 0), [0; 4]);
    let before = slowpath_count();
    for _ in 0..5 {
        let _ = ipc::call(ep, MsgInfo::new(0, 4, 0), [0; 4]);
    }
    let slow = slowpath_count() - before;
    ok(t.suspend(), "stop")?;
    check(slow == 0, "fastpath taken")
}
