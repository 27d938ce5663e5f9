//! The IPC fastpath: Call to a waiting receiver, and ReplyRecv to a caller, in their
//! common case (a short message, no capabilities, a one-level CSpace), as a flat list
//! of guards and then the transfer. It has the slow path's effect exactly (host tests
//! compare them); anything else takes the slow path, with nothing changed.

use gaon_abi::syscall::{CAP_REG, FIRST_MR_REG, INFO_REG, MSG_REGISTERS, REPLY_REG};
use gaon_abi::{MsgInfo, ObjType, Rights};

use super::cspace::{resolve_one_level, slot};
use super::guest::{apply_reply, deliver_exit, reply_raises};
use super::object::endpoint::{Endpoint, EpState};
use super::object::tcb::{SLOT_CSPACE, SLOT_FAULT_EP, State, Tcb};
use super::{Kernel, Platform, Resume};
use crate::cap::Cap;
use crate::obj::Ptr;

/// How a fastpath syscall that was taken ended ([`Kernel::fastpath_switch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fast {
    /// Switched directly to the partner, which resumes as said.
    Direct(Resume),
    /// The partner is queued; the kernel reschedules.
    Queued,
}

impl<P: Platform> Kernel<P> {
    /// Call on an endpoint with a waiting receiver that has a reply object: a short
    /// message, no caps, a one-level CSpace. Same effect as the slow path, with the
    /// checks done once and capabilities read in place. `None`: not taken (nothing
    /// changed; the general path handles the syscall); otherwise how it ended.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(super) fn fastpath_call(&mut self, t: Ptr<Tcb>) -> Option<Fast> {
        let snd = t.get();
        let info = short_message(snd)?;
        let (ep, badge) = endpoint_in_place(snd, Rights::WRITE)?;
        let ep = ep.get();
        if ep.state != EpState::Recv {
            return None;
        }
        // A receiving endpoint's queue is not empty.
        let r = ep.queue.head?;
        let rcv = r.get();
        let rp = rcv.reply?;
        ep.queue.remove(r);
        if ep.queue.is_empty() {
            ep.state = EpState::Idle;
        }
        rcv.reply = None;
        let reply = rp.get();
        reply.receiver = None;
        reply.caller = Some(t);
        snd.reply = Some(rp);
        copy_short(rcv, badge, info, snd);
        Some(self.fastpath_switch(t, State::BlockedOnReply, r))
    }

    /// ReplyRecv answering a caller (not a fault; a guest's exit answered with its
    /// registers) and then waiting on an endpoint with no sender queued: a short
    /// message, no caps, a one-level CSpace. Returns as [`Kernel::fastpath_call`] does.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub(super) fn fastpath_reply_recv(&mut self, t: Ptr<Tcb>) -> Option<Fast> {
        let me = t.get();
        let info = short_message(me)?;
        let rcap = cap_in_place(me, me.ctx.x[REPLY_REG])?;
        if !rcap.is(ObjType::Reply) {
            return None;
        }
        let rp = rcap.reply();
        let c = rp.get().caller?;
        let caller = c.get();
        if caller.fault.is_some() {
            return None;
        }
        // A guest's exit answered with its registers (not by raising an exception, and
        // with no end of interrupt to send first) is applied here, as `do_reply` does.
        if caller.exit.is_some() && !exit_answerable(caller, info) {
            return None;
        }
        let (ep, _) = endpoint_in_place(me, Rights::READ)?;
        if ep.get().state == EpState::Send {
            return None;
        }
        if me.bound_ntfn.is_some_and(|n| n.get().active) {
            return None;
        }
        let reply = rp.get();
        reply.caller = None;
        caller.reply = None;
        if caller.exit.is_some() {
            answer_exit(caller, info, me);
        } else {
            copy_short(caller, 0, info, me);
        }
        me.reply = Some(rp);
        reply.receiver = Some(t);
        let e = ep.get();
        e.queue.push(t);
        e.state = EpState::Recv;
        Some(self.fastpath_switch(t, State::BlockedOnRecv { ep }, c))
    }
}

impl<P: Platform> Kernel<P> {
    /// A guest's exit (recorded in `t.exit`; `t` has a fault handler) to its VMM
    /// waiting in a receive with a reply object on the fault endpoint: the exit's words
    /// written straight into the VMM's registers (and IPC buffer), `t` waiting in the
    /// reply object, and a direct switch if the VMM is what the scheduler would pick.
    /// The slow path's effect (`call_fault_handler`) exactly; `None`: not taken,
    /// nothing changed.
    #[inline]
    pub(super) fn fastpath_exit(&mut self, t: Ptr<Tcb>) -> Option<Fast> {
        let g = t.get();
        let exit = g.exit?;
        let cap = g.slots[SLOT_FAULT_EP].cap;
        let e = cap.endpoint().get();
        if e.state != EpState::Recv {
            return None;
        }
        // A receiving endpoint's queue is not empty.
        let r = e.queue.head?;
        let rcv = r.get();
        let rp = rcv.reply?;
        e.queue.remove(r);
        if e.queue.is_empty() {
            e.state = EpState::Idle;
        }
        rcv.reply = None;
        let reply = rp.get();
        reply.receiver = None;
        reply.caller = Some(t);
        g.reply = Some(rp);
        deliver_exit(r, cap.badge, exit);
        Some(self.fastpath_switch(t, State::BlockedOnReply, r))
    }
}

/// True if the guest `caller`'s exit can be answered by the fastpath with the reply
/// `info`: no exception to raise, no end of interrupt to send first. Out of line, as
/// [`answer_exit`]: the IPC fastpath between native threads keeps its registers
/// (measured).
#[cold]
#[inline(never)]
fn exit_answerable(caller: &Tcb, info: MsgInfo) -> bool {
    !reply_raises(info.label()) && caller.vcpu.is_some_and(|v| v.get().eois.is_empty())
}

/// Apply the VMM `me`'s short reply `info` to the exit of the guest `caller`, as
/// `do_reply` does.
#[cold]
#[inline(never)]
fn answer_exit(caller: &mut Tcb, info: MsgInfo, me: &Tcb) {
    if let Some(e) = caller.exit.take() {
        apply_reply(caller, e, info.label(), info.length(), |i| me.ctx.x[FIRST_MR_REG + i]);
    }
}

/// The message of a fastpath syscall of `t`: registers only, no capabilities.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn short_message(t: &Tcb) -> Option<MsgInfo> {
    let info = MsgInfo(t.ctx.x[INFO_REG]);
    // Length (bits 0..7) and extra caps (bits 7..9) in one compare: any cap makes the
    // two fields together at least 128.
    let short = info.0 & 0x1ff <= MSG_REGISTERS as u64;
    debug_assert_eq!(short, info.extra_caps() == 0 && info.length() <= MSG_REGISTERS);
    short.then_some(info)
}

/// The endpoint and badge of the capability in `t`'s `x0`, if it carries `right`.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn endpoint_in_place(t: &Tcb, right: Rights) -> Option<(Ptr<Endpoint>, u64)> {
    let cap = cap_in_place(t, t.ctx.x[CAP_REG])?;
    (cap.is(ObjType::Endpoint) && cap.rights().contains(right)).then(|| (cap.endpoint(), cap.badge))
}

/// Deliver a short message of `from` to `to`: badge, message info, the registers.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn copy_short(to: &mut Tcb, badge: u64, info: MsgInfo, from: &Tcb) {
    to.ctx.x[CAP_REG] = badge;
    // Label and length as sent (a short message: no caps); the flag bits cleared.
    let delivered = info.0 & !0xff80;
    debug_assert_eq!(delivered, MsgInfo::new(info.label(), info.length(), 0).0);
    to.ctx.x[INFO_REG] = delivered;
    to.ctx.x[FIRST_MR_REG..FIRST_MR_REG + MSG_REGISTERS]
        .copy_from_slice(&from.ctx.x[FIRST_MR_REG..FIRST_MR_REG + MSG_REGISTERS]);
}

/// The capability `cptr` names in `t`'s CSpace, read in place, when the CSpace is a
/// one-level CNode (the fastpath's condition; anything else takes the slow path).
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn cap_in_place(t: &Tcb, cptr: u64) -> Option<&'static Cap> {
    let s = resolve_one_level(&t.slots[SLOT_CSPACE].cap, cptr)?;
    Some(&slot(s).cap)
}
