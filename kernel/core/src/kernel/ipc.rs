//! The slow-path IPC engine: sending and receiving on endpoints (with capability
//! transfer), replies, notifications, fault messages, and taking a thread out of the
//! IPC it is blocked in. The syscalls that start it are decoded in `entry.rs`; the
//! common Call and ReplyRecv take `fastpath.rs` instead.

use gaon_abi::fault::Fault;
use gaon_abi::syscall::{CAP_REG, FIRST_MR_REG, INFO_REG, MSG_REGISTERS};
use gaon_abi::{Error, MsgInfo, ObjType, Rights};

use super::cspace::{Kslots, cnode_slot, derived_copy, slot};
use super::object::endpoint::{EP_IDLE, EP_RECV, EP_SEND, Endpoint};
use super::object::notification::Notification;
use super::object::reply::Reply;
use super::object::tcb::{IPC_CALL, IPC_FAULT, IPC_GRANT, SLOT_FAULT_EP, Tcb, ThreadState};
use super::{Kernel, Platform};
use crate::cdt;
use crate::obj::{self, Ptr};

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
        if self.has_fault_handler(t) {
            let cap = t.get().slots[SLOT_FAULT_EP].cap;
            t.get().fault = Some(fault);
            self.send_ipc(t, Ptr::new(cap.obj), cap.badge, IPC_FAULT | IPC_CALL, true);
        } else {
            let (kind, words) = fault.encode();
            self.log(format_args!(
                "kernel: thread {:#x} fault {:?} ({:#x}, {:#x}, {:#x}, {:#x}) and no fault handler: stopped\n",
                t.addr(),
                kind,
                words[0],
                words[1],
                words[2],
                words[3]
            ));
            self.cancel_ipc(t);
            self.block(t, ThreadState::Inactive);
        }
    }

    /// Send from `sender` on `ep`. `flags` are `IPC_*`.
    pub(super) fn send_ipc(&mut self, sender: Ptr<Tcb>, ep: Ptr<Endpoint>, badge: u64, flags: u8, blocking: bool) {
        let e = ep.get();
        if e.state == EP_RECV {
            let r = e.queue.pop().expect("receive queue is non-empty");
            if e.queue.is_empty() {
                e.state = EP_IDLE;
            }
            self.deliver(sender, r, badge, flags, ep.addr());
        } else if blocking {
            let s = sender.get();
            s.ipc_badge = badge;
            s.ipc_flags = flags;
            s.blocked_on = ep.addr();
            self.block(sender, ThreadState::BlockedOnSend);
            e.queue.push(sender);
            e.state = EP_SEND;
        } else {
            Self::reply_kernel(sender, Ok(0));
        }
    }

    /// Hand `sender`'s message to `receiver` (taken off the endpoint's queue) and move
    /// both on: a Call's sender waits in the receiver's reply object.
    pub(super) fn deliver(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, badge: u64, flags: u8, ep: usize) {
        let reply = core::mem::take(&mut receiver.get().reply);
        if let Some(rp) = Ptr::<Reply>::from_raw(reply) {
            rp.get().receiver = 0;
        }
        receiver.get().blocked_on = 0;
        self.transfer(sender, receiver, badge, flags, ep);
        let s = sender.get();
        s.ipc_flags = 0;
        s.blocked_on = 0;
        if flags & IPC_CALL != 0 {
            if let Some(rp) = Ptr::<Reply>::from_raw(reply) {
                rp.get().caller = sender.addr();
                s.reply = reply;
                self.block(sender, ThreadState::BlockedOnReply);
            } else if flags & IPC_FAULT != 0 {
                // The handler cannot reply: the faulting thread stays stopped.
                s.fault = None;
                self.block(sender, ThreadState::Inactive);
            } else {
                Self::reply_kernel(sender, Err(Error::Cancelled));
                self.make_runnable(sender, false);
            }
        } else {
            Self::reply_kernel(sender, Ok(0));
            self.make_runnable(sender, false);
        }
        self.make_runnable(receiver, flags & IPC_CALL != 0);
    }

    /// Copy the message (registers, IPC buffer words, capabilities) and set the
    /// receiver's badge and message info.
    pub(super) fn transfer(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, badge: u64, flags: u8, ep: usize) {
        if flags & IPC_FAULT != 0 {
            // A fault send always has its fault recorded (`send_fault`).
            let (kind, words) = sender.get().fault.map_or((0, [0; 4]), |f| {
                let (kind, words) = f.encode();
                (kind as u64, words)
            });
            for (i, w) in words.iter().enumerate() {
                Self::set_mr(receiver, i, *w);
            }
            let r = &mut receiver.get().ctx;
            r.x[CAP_REG] = badge;
            r.x[INFO_REG] = MsgInfo::new(kind, gaon_abi::fault::FAULT_MSG_LENGTH, 0).0;
            return;
        }
        let info = MsgInfo(sender.get().ctx.x[INFO_REG]);
        let len = info
            .length()
            .min(Self::mr_capacity(sender))
            .min(Self::mr_capacity(receiver));
        for i in 0..len.min(MSG_REGISTERS) {
            receiver.get().ctx.x[FIRST_MR_REG + i] = sender.get().ctx.x[FIRST_MR_REG + i];
        }
        for i in MSG_REGISTERS..len {
            Self::set_mr(receiver, i, Self::get_mr(sender, i));
        }
        let (caps, unwrapped) = if info.extra_caps() > 0 && flags & IPC_GRANT != 0 && ep != 0 {
            self.transfer_caps(sender, receiver, info.extra_caps(), ep)
        } else {
            (0, 0)
        };
        let r = &mut receiver.get().ctx;
        r.x[CAP_REG] = badge;
        r.x[INFO_REG] = MsgInfo::new(info.label(), len, caps).with_unwrapped(unwrapped).0;
    }

    /// Transfer up to `n` caps named in the sender's IPC buffer. A badged cap to the
    /// endpoint itself arrives as its badge; other caps are copied into the one slot
    /// the receiver offers. Stops at the first cap that cannot be delivered.
    pub(super) fn transfer_caps(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, n: usize, ep: usize) -> (usize, u64) {
        use gaon_abi::message::{
            IPC_BUFFER_CAPS_OFFSET, IPC_BUFFER_RECEIVE_CNODE_OFFSET, IPC_BUFFER_RECEIVE_INDEX_OFFSET,
        };
        let (Some(sb), Some(rb)) = (Self::ipc_buffer(sender), Self::ipc_buffer(receiver)) else {
            return (0, 0);
        };
        let mut dest = None;
        let cnode_cptr = obj::read_word(rb + IPC_BUFFER_RECEIVE_CNODE_OFFSET);
        if cnode_cptr != 0
            && let Ok((_, cn)) = self.lookup_typed(receiver, cnode_cptr, ObjType::CNode)
        {
            let index = obj::read_word(rb + IPC_BUFFER_RECEIVE_INDEX_OFFSET);
            if let Some(d) = cnode_slot(&cn, index)
                && slot(d).cap.is_null()
            {
                dest = Some(d);
            }
        }
        let (mut count, mut mask) = (0, 0);
        for i in 0..n {
            let cptr = obj::read_word(sb + IPC_BUFFER_CAPS_OFFSET + 8 * i);
            let Ok((s, cap)) = self.lookup_cap(sender, cptr) else {
                break;
            };
            if cap.is(ObjType::Endpoint) && cap.obj == ep {
                obj::write_word(rb + IPC_BUFFER_CAPS_OFFSET + 8 * i, cap.badge);
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
        if let Some(n) = Ptr::<Notification>::from_raw(t.get().bound_ntfn)
            && n.get().word != 0
        {
            let ctx = &mut t.get().ctx;
            ctx.x[CAP_REG] = core::mem::take(&mut n.get().word);
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            return;
        }
        let e = ep.get();
        if e.state == EP_SEND {
            let s = e.queue.pop().expect("send queue is non-empty");
            if e.queue.is_empty() {
                e.state = EP_IDLE;
            }
            t.get().reply = reply.map_or(0, Ptr::addr);
            let (badge, flags) = (s.get().ipc_badge, s.get().ipc_flags);
            self.deliver(s, t, badge, flags, ep.addr());
        } else if blocking {
            let tcb = t.get();
            tcb.reply = reply.map_or(0, Ptr::addr);
            if let Some(r) = reply {
                r.get().receiver = t.addr();
            }
            tcb.blocked_on = ep.addr();
            self.block(t, ThreadState::BlockedOnRecv);
            e.queue.push(t);
            e.state = EP_RECV;
        } else {
            Self::reply_kernel(t, Err(Error::WouldBlock));
        }
    }

    /// Answer the caller waiting in `reply`, if any.
    pub(super) fn do_reply(&mut self, t: Ptr<Tcb>, reply: Ptr<Reply>) {
        let Some(c) = Ptr::<Tcb>::from_raw(core::mem::take(&mut reply.get().caller)) else {
            return;
        };
        let caller = c.get();
        caller.reply = 0;
        if caller.fault.take().is_some() {
            let len = MsgInfo(t.get().ctx.x[INFO_REG]).length();
            if len >= 1 {
                caller.ctx.pc = Self::get_mr(t, 0);
            }
            if len >= 2 {
                caller.ctx.sp = Self::get_mr(t, 1);
            }
        } else {
            self.transfer(t, c, 0, 0, 0);
        }
        self.make_runnable(c, true);
    }

    // ---- notifications ----------------------------------------------------------

    /// Signal `n` with `badge`.
    pub(super) fn signal(&mut self, n: Ptr<Notification>, badge: u64) {
        let nt = n.get();
        if let Some(w) = nt.queue.pop() {
            w.get().blocked_on = 0;
            let ctx = &mut w.get().ctx;
            ctx.x[CAP_REG] = badge | core::mem::take(&mut nt.word);
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            self.make_runnable(w, false);
        } else if let Some(b) = Ptr::<Tcb>::from_raw(nt.bound)
            && b.get().state == ThreadState::BlockedOnRecv
        {
            self.cancel_ipc(b);
            let ctx = &mut b.get().ctx;
            ctx.x[CAP_REG] = badge | core::mem::take(&mut nt.word);
            ctx.x[INFO_REG] = MsgInfo::notification().0;
            self.make_runnable(b, false);
        } else {
            nt.word |= badge;
        }
    }

    pub(super) fn wait(&mut self, t: Ptr<Tcb>, n: Ptr<Notification>, blocking: bool) {
        let nt = n.get();
        if nt.word != 0 {
            let ctx = &mut t.get().ctx;
            ctx.x[CAP_REG] = core::mem::take(&mut nt.word);
            ctx.x[INFO_REG] = MsgInfo::notification().0;
        } else if blocking {
            t.get().blocked_on = n.addr();
            self.block(t, ThreadState::BlockedOnNotification);
            nt.queue.push(t);
        } else {
            Self::reply_kernel(t, Err(Error::WouldBlock));
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
        match tcb.state {
            ThreadState::BlockedOnSend | ThreadState::BlockedOnRecv => {
                let ep = Ptr::<Endpoint>::new(tcb.blocked_on).get();
                ep.queue.remove(t);
                if ep.queue.is_empty() {
                    ep.state = EP_IDLE;
                }
                if let Some(r) = Ptr::<Reply>::from_raw(core::mem::take(&mut tcb.reply)) {
                    r.get().receiver = 0;
                }
            }
            ThreadState::BlockedOnReply => {
                if let Some(r) = Ptr::<Reply>::from_raw(core::mem::take(&mut tcb.reply)) {
                    r.get().caller = 0;
                }
            }
            ThreadState::BlockedOnNotification => {
                Ptr::<Notification>::new(tcb.blocked_on).get().queue.remove(t);
            }
            ThreadState::Inactive | ThreadState::Running => {}
        }
        tcb.blocked_on = 0;
        tcb.ipc_flags = 0;
    }
}
