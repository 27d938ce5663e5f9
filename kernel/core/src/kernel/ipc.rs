//! The slow-path IPC engine: sending and receiving on endpoints (with capability
//! transfer), replies, notifications, fault messages, and taking a thread out of the
//! IPC it is blocked in. The syscalls that start it are decoded in `entry.rs`; the
//! common Call and ReplyRecv take `fastpath.rs` instead.

use super::message;
use gaon_abi::fault::Fault;
use gaon_abi::syscall::{CAP_REG, FIRST_MR_REG, INFO_REG, MSG_REGISTERS};
use gaon_abi::trace::{Class, Event};
use gaon_abi::{Error, MsgInfo, ObjType, Rights};

use super::cspace::{Kslots, cnode_slot, derived_copy, slot};
use super::object::endpoint::{Endpoint, EpState};
use super::object::notification::Notification;
use super::object::reply::Reply;
use super::object::tcb::{IpcFlags, SLOT_FAULT_EP, State, Tcb};
use super::{Kernel, Platform};
use crate::cdt;
use crate::obj::Ptr;

impl<P: Platform> Kernel<P> {
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    pub(super) fn has_fault_handler(&self, t: Ptr<Tcb>) -> bool {
        let cap = t.get().slots[SLOT_FAULT_EP].cap;
        cap.is(ObjType::Endpoint) && cap.rights().contains(Rights::WRITE)
    }

    /// Send a fault message for `t` to its fault endpoint, or stop it if it has none.
    pub(super) fn send_fault(&mut self, t: Ptr<Tcb>, fault: Fault) {
        if self.tracing(Class::FAULT) {
            let addr = if let Fault::VmFault { addr, .. } = fault {
                addr
            } else {
                0
            };
            self.record(Event::Fault, t.get().tid, fault.kind() as u64, addr);
        }
        if self.has_fault_handler(t) {
            t.get().fault = Some(fault);
            self.call_fault_handler(t);
        } else {
            let (kind, words) = fault.encode();
            self.stop_unhandled(t, "fault", &kind, words);
        }
    }

    /// Send `t`'s recorded fault or guest exit to its fault endpoint, as a Call.
    pub(super) fn call_fault_handler(&mut self, t: Ptr<Tcb>) {
        let cap = t.get().slots[SLOT_FAULT_EP].cap;
        self.send_ipc(t, cap.endpoint(), cap.badge, IpcFlags::FAULT | IpcFlags::CALL, true);
    }

    /// `t` has no fault handler for its `what` (a fault or a guest exit) of `kind`: say
    /// so with the first message words, and stop it.
    pub(super) fn stop_unhandled(&mut self, t: Ptr<Tcb>, what: &str, kind: &dyn core::fmt::Debug, words: [u64; 4]) {
        self.log(format_args!(
            "kernel: thread {:#x} {what} {kind:?} ({:#x}, {:#x}, {:#x}, {:#x}) and no fault handler: stopped\n",
            t.addr(),
            words[0],
            words[1],
            words[2],
            words[3]
        ));
        self.cancel_ipc(t);
        self.block(t, State::Inactive);
    }

    /// Send from `sender` on `ep` with the badge of the cap it used.
    pub(super) fn send_ipc(
        &mut self,
        sender: Ptr<Tcb>,
        ep: Ptr<Endpoint>,
        badge: u64,
        flags: IpcFlags,
        blocking: bool,
    ) {
        let e = ep.get();
        if e.state == EpState::Recv {
            let r = e.queue.pop().expect("receive queue is non-empty");
            if e.queue.is_empty() {
                e.state = EpState::Idle;
            }
            self.deliver(sender, r, badge, flags, Some(ep));
        } else if blocking {
            if self.tracing(Class::IPC) {
                let e = if flags.contains(IpcFlags::CALL) {
                    Event::IpcCall
                } else {
                    Event::IpcSend
                };
                self.record(e, sender.get().tid, badge, 0);
            }
            self.block(sender, State::BlockedOnSend { ep, badge, flags });
            e.queue.push(sender);
            e.state = EpState::Send;
        } else {
            message::reply_kernel(sender, Ok(0));
        }
    }

    /// Hand `sender`'s message to `receiver` (taken off the endpoint's queue) and move
    /// both on: a Call's sender waits in the receiver's reply object.
    pub(super) fn deliver(
        &mut self,
        sender: Ptr<Tcb>,
        receiver: Ptr<Tcb>,
        badge: u64,
        flags: IpcFlags,
        ep: Option<Ptr<Endpoint>>,
    ) {
        let reply = core::mem::take(&mut receiver.get().reply);
        if let Some(rp) = reply {
            rp.get().receiver = None;
        }
        if self.tracing(Class::IPC) {
            self.trace_delivery(sender, receiver, badge, flags.contains(IpcFlags::CALL));
        }
        self.transfer(sender, receiver, badge, flags, ep);
        let s = sender.get();
        if flags.contains(IpcFlags::CALL) {
            if let Some(rp) = reply {
                rp.get().caller = Some(sender);
                s.reply = reply;
                self.block(sender, State::BlockedOnReply);
            } else if flags.contains(IpcFlags::FAULT) {
                // The handler cannot reply: the faulting thread stays stopped.
                s.fault = None;
                super::guest::take_back_exit(s);
                self.block(sender, State::Inactive);
            } else {
                message::reply_kernel(sender, Err(Error::Cancelled));
                self.make_runnable(sender, false);
            }
        } else {
            message::reply_kernel(sender, Ok(0));
            self.make_runnable(sender, false);
        }
        self.make_runnable(receiver, flags.contains(IpcFlags::CALL));
    }

    /// Copy the message (registers, IPC buffer words, capabilities) and set the
    /// receiver's badge and message info.
    pub(super) fn transfer(
        &mut self,
        sender: Ptr<Tcb>,
        receiver: Ptr<Tcb>,
        badge: u64,
        flags: IpcFlags,
        ep: Option<Ptr<Endpoint>>,
    ) {
        if flags.contains(IpcFlags::FAULT)
            && let Some(exit) = sender.get().exit
        {
            super::guest::deliver_exit(receiver, badge, exit);
            return;
        }
        if flags.contains(IpcFlags::FAULT) {
            // A fault send always has its fault recorded (`send_fault`).
            let (kind, words) = sender.get().fault.map_or((0, [0; 4]), |f| {
                let (kind, words) = f.encode();
                (kind as u64, words)
            });
            for (i, w) in words.iter().enumerate() {
                message::set_mr(receiver, i, *w);
            }
            let r = &mut receiver.get().ctx;
            r.x[CAP_REG] = badge;
            r.x[INFO_REG] = MsgInfo::new(kind, gaon_abi::fault::FAULT_MSG_LENGTH, 0).0;
            return;
        }
        let info = MsgInfo(sender.get().ctx.x[INFO_REG]);
        let len = info
            .length()
            .min(message::mr_capacity(sender))
            .min(message::mr_capacity(receiver));
        for i in 0..len.min(MSG_REGISTERS) {
            receiver.get().ctx.x[FIRST_MR_REG + i] = sender.get().ctx.x[FIRST_MR_REG + i];
        }
        // Beyond the registers, both have an IPC buffer (`mr_capacity`): look them up
        // once for all the words.
        if len > MSG_REGISTERS
            && let (Some(sb), Some(rb)) = (message::ipc_buffer(sender), message::ipc_buffer(receiver))
        {
            for i in MSG_REGISTERS..len {
                rb.set_msg(i, sb.msg(i));
            }
        }
        let (caps, unwrapped) = match ep {
            Some(ep) if info.extra_caps() > 0 && flags.contains(IpcFlags::GRANT) => {
                self.transfer_caps(sender, receiver, info.extra_caps(), ep)
            }
            _ => (0, 0),
        };
        let r = &mut receiver.get().ctx;
        r.x[CAP_REG] = badge;
        r.x[INFO_REG] = MsgInfo::new(info.label(), len, caps).with_unwrapped(unwrapped).0;
    }

    /// Transfer up to `n` caps named in the sender's IPC buffer. A badged cap to the
    /// endpoint itself arrives as its badge; other caps are copied into the one slot
    /// the receiver offers. Stops at the first cap that cannot be delivered.
    pub(super) fn transfer_caps(
        &mut self,
        sender: Ptr<Tcb>,
        receiver: Ptr<Tcb>,
        n: usize,
        ep: Ptr<Endpoint>,
    ) -> (usize, u64) {
        let (Some(sb), Some(rb)) = (message::ipc_buffer(sender), message::ipc_buffer(receiver)) else {
            return (0, 0);
        };
        let mut dest = None;
        let cnode_cptr = rb.receive_cnode();
        if cnode_cptr != 0
            && let Ok((_, cn)) = self.lookup_typed(receiver, cnode_cptr, ObjType::CNode)
        {
            let index = rb.receive_index();
            if let Some(d) = cnode_slot(&cn, index)
                && slot(d).cap.is_null()
            {
                dest = Some(d);
            }
        }
        let (mut count, mut mask) = (0, 0);
        for i in 0..n {
            let cptr = sb.cap_or_badge(i);
            let Ok((s, cap)) = self.lookup_cap(sender, cptr) else {
                break;
            };
            if cap.is(ObjType::Endpoint) && cap.obj == ep.addr() {
                rb.set_cap_or_badge(i, cap.badge);
                mask |= 1 << i;
            } else {
                let Some(d) = dest.take() else { break };
                let Ok(copy) = derived_copy(cap) else { break };
                if cdt::derive(&mut Kslots, s, d, copy).is_err() {
                    break;
                }
            }
            count = i + 1;
        }
        (count, mask)
    }

    /// Receive on `ep` with reply object `reply`.
    pub(super) fn recv_ipc(&mut self, t: Ptr<Tcb>, ep: Ptr<Endpoint>, reply: Option<Ptr<Reply>>, blocking: bool) {
        if let Some(n) = t.get().bound_ntfn
            && let Some(word) = n.get().take()
        {
            let ctx = &mut t.get().ctx;
            ctx.x[CAP_REG] = word;
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            return;
        }
        let e = ep.get();
        if e.state == EpState::Send {
            let s = e.queue.pop().expect("send queue is non-empty");
            if e.queue.is_empty() {
                e.state = EpState::Idle;
            }
            t.get().reply = reply;
            // A thread queued to send is blocked sending (the consistency check says
            // so); were it not, it gets an empty message rather than stopping the kernel.
            let (badge, flags) = if let State::BlockedOnSend { badge, flags, .. } = s.get().state {
                (badge, flags)
            } else {
                debug_assert!(false, "a thread queued to send is not blocked sending");
                (0, IpcFlags::empty())
            };
            self.deliver(s, t, badge, flags, Some(ep));
        } else if blocking {
            let tcb = t.get();
            tcb.reply = reply;
            if let Some(r) = reply {
                r.get().receiver = Some(t);
            }
            self.block(t, State::BlockedOnRecv { ep });
            e.queue.push(t);
            e.state = EpState::Recv;
        } else {
            message::reply_kernel(t, Err(Error::WouldBlock));
        }
    }

    /// Answer the caller waiting in `reply`, if any.
    pub(super) fn do_reply(&mut self, t: Ptr<Tcb>, reply: Ptr<Reply>) {
        let Some(c) = core::mem::take(&mut reply.get().caller) else {
            return;
        };
        if self.tracing(Class::IPC) {
            self.record(Event::IpcReply, t.get().tid, 0, u64::from(c.get().tid));
        }
        let caller = c.get();
        caller.reply = None;
        if caller.fault.take().is_some() {
            let len = MsgInfo(t.get().ctx.x[INFO_REG]).length();
            if len >= 1 {
                caller.ctx.pc = message::get_mr(t, 0);
            }
            if len >= 2 {
                caller.ctx.sp = message::get_mr(t, 1);
            }
        } else if let Some(exit) = caller.exit.take() {
            let info = MsgInfo(t.get().ctx.x[INFO_REG]);
            let len = info.length().min(message::mr_capacity(t));
            if super::guest::reply_raises(info.label())
                && let Some(v) = caller.vcpu
            {
                // The guest takes an exception: its EL1 registers change, so they come
                // out of whichever CPU holds them (the guest waits: nothing else moves).
                self.refresh_vcpu(v);
            }
            super::guest::apply_reply(c.get(), exit, info.label(), len, |i| message::get_mr(t, i));
            if self.tracing(Class::VM) {
                self.trace_mmio(c, exit, info.label(), len, message::get_mr(t, 0));
                self.record(Event::VmEntry, c.get().tid, 0, 0);
            }
            // An end of interrupt that came meanwhile goes to the VMM before the guest
            // runs on.
            if self.send_eoi(c) {
                return;
            }
        } else {
            self.transfer(t, c, 0, IpcFlags::empty(), None);
        }
        self.make_runnable(c, true);
    }

    // ---- notifications ----------------------------------------------------------

    /// Signal `n` with `badge`.
    pub(super) fn signal(&mut self, n: Ptr<Notification>, badge: u64) {
        if self.tracing(Class::NOTIFY) {
            self.trace_signal(n, badge);
        }
        let nt = n.get();
        if let Some(w) = nt.queue.pop() {
            let ctx = &mut w.get().ctx;
            ctx.x[CAP_REG] = badge | nt.take_word();
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            self.make_runnable(w, false);
        } else if let Some(b) = nt.bound
            && matches!(b.get().state, State::BlockedOnRecv { .. })
        {
            self.cancel_ipc(b);
            let ctx = &mut b.get().ctx;
            ctx.x[CAP_REG] = badge | nt.take_word();
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            self.make_runnable(b, false);
        } else {
            nt.post(badge);
        }
    }

    pub(super) fn wait(&mut self, t: Ptr<Tcb>, n: Ptr<Notification>, blocking: bool) {
        let nt = n.get();
        if let Some(word) = nt.take() {
            let ctx = &mut t.get().ctx;
            ctx.x[CAP_REG] = word;
            ctx.x[INFO_REG] = MsgInfo::notification().0;
        } else if blocking {
            self.block(t, State::BlockedOnNotification { ntfn: n });
            nt.queue.push(t);
        } else {
            message::reply_kernel(t, Err(Error::WouldBlock));
        }
    }

    /// Take `t` out of whatever IPC it is blocked in. Its state is left for the caller
    /// to set.
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    pub(super) fn cancel_ipc(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        if matches!(tcb.state, State::BlockedOnSend { .. } | State::BlockedOnReply) {
            // A guest exit nobody will answer now is taken back, so the guest does it
            // again when it runs.
            super::guest::take_back_exit(tcb);
        }
        match tcb.state {
            State::BlockedOnSend { ep, .. } | State::BlockedOnRecv { ep } => {
                let ep = ep.get();
                ep.queue.remove(t);
                if ep.queue.is_empty() {
                    ep.state = EpState::Idle;
                }
                if let Some(r) = core::mem::take(&mut tcb.reply) {
                    r.get().receiver = None;
                }
            }
            State::BlockedOnReply => {
                if let Some(r) = core::mem::take(&mut tcb.reply) {
                    r.get().caller = None;
                }
            }
            State::BlockedOnNotification { ntfn } => ntfn.get().queue.remove(t),
            State::Inactive | State::Running | State::WaitingForInterrupt => {}
        }
    }
}
