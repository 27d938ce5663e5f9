//! Syscalls: IPC on endpoints, notifications, reply objects, faults, the fastpath.

use gaon_abi::syscall::{CAP_REG, FIRST_MR_REG, INFO_REG, MSG_REGISTERS, REPLY_REG, SYSCALL_NUMBER_REG};
use gaon_abi::{Error, FaultKind, MsgInfo, ObjType, Rights, Syscall};

use super::objects::{EP_IDLE, EP_RECV, EP_SEND, Endpoint, Notification, Reply};
use super::{Fault, Kernel, Kslots, Platform, slot};
use crate::cdt;
use crate::obj::{self, Ptr};
use crate::tcb::{IPC_CALL, IPC_FAULT, IPC_GRANT, SLOT_FAULT_EP, Tcb, ThreadState};

impl<P: Platform> Kernel<P> {
    /// A thread executed `svc`: its registers are in its Tcb. Afterwards the kernel has
    /// chosen the thread to run next ([`Kernel::resume_target`]). Returns false if the
    /// syscall cannot have changed which thread runs or its address space (the caller
    /// may then return to it without looking).
    pub fn handle_syscall(&mut self) -> bool {
        let Some(t) = self.current() else { return true };
        let number = t.get().ctx.x[SYSCALL_NUMBER_REG];
        match Syscall::from_raw(number) {
            Some(Syscall::Null) => {
                t.get().ctx.x[0] = 0;
                return false;
            }
            Some(Syscall::Call) => match self.fastpath_call(t) {
                Some(true) => return true,
                Some(false) => {}
                None => self.sys_send(t, true, true),
            },
            Some(Syscall::ReplyRecv) => match self.fastpath_reply_recv(t) {
                Some(true) => return true,
                Some(false) => {}
                None => self.sys_reply_recv(t),
            },
            Some(Syscall::Send) => self.sys_send(t, true, false),
            Some(Syscall::NbSend) => self.sys_send(t, false, false),
            Some(Syscall::Recv) => self.sys_recv(t, true),
            Some(Syscall::NbRecv) => self.sys_recv(t, false),
            Some(Syscall::Yield) => {
                let tcb = t.get();
                tcb.ctx.x[0] = 0;
                tcb.timeslice = crate::tcb::TIMESLICE_TICKS;
                self.rq.dequeue(t);
                self.rq.enqueue(t, false);
            }
            Some(s) => {
                let r = self.debug_syscall(t, s);
                let ctx = &mut t.get().ctx;
                ctx.x[0] = match r {
                    Ok(()) => 0,
                    Err(e) => e as u64,
                };
            }
            None => self.unknown_syscall(t),
        }
        self.reschedule(t.addr());
        true
    }

    fn debug_syscall(&mut self, t: Ptr<Tcb>, s: Syscall) -> Result<(), Error> {
        let ctx = &mut t.get().ctx;
        match s {
            // The two that reach outside the thread need the Debug capability (`x1`).
            Syscall::DebugPutChar => {
                self.lookup_typed(t, ctx.x[1], ObjType::Debug)?;
                let b = u8::try_from(ctx.x[0]).map_err(|_| Error::InvalidArgument)?;
                self.platform.put_char(b);
            }
            Syscall::DebugHalt => {
                self.lookup_typed(t, ctx.x[1], ObjType::Debug)?;
                let status = u8::try_from(ctx.x[0]).map_err(|_| Error::InvalidArgument)?;
                self.platform.halt(status);
            }
            Syscall::DebugTicks => ctx.x[1] = self.platform.ticks(),
            Syscall::DebugFastpathCount => ctx.x[1] = self.fastpath_count,
            Syscall::DebugCapIdentify => {
                ctx.x[1] = self
                    .lookup_slot(t, ctx.x[0])
                    .map_or(0, |s| slot(s).cap.ty().map_or(0, |ty| ty as u64 + 1));
            }
            #[cfg(any(test, feature = "consistency-check"))]
            Syscall::DebugCheckConsistency => self.debug_check_consistency(t)?,
            _ => return Err(Error::UnknownSyscall),
        }
        Ok(())
    }

    /// An unknown syscall number: a fault to the handler if there is one, else an error.
    fn unknown_syscall(&mut self, t: Ptr<Tcb>) {
        // Only the registers the message needs (the context is 36 words).
        let ctx = &t.get().ctx;
        let (pc, sp, number, x0) = (ctx.pc, ctx.sp, ctx.x[SYSCALL_NUMBER_REG], ctx.x[0]);
        if self.has_fault_handler(t) {
            let words = [FaultKind::UnknownSyscall as u64, pc, sp, number, x0];
            self.send_fault(t, words);
        } else {
            let c = &mut t.get().ctx;
            c.x[0] = Error::UnknownSyscall as u64;
            c.x[1] = MsgInfo::kernel(Error::UnknownSyscall as u64, 0).0;
        }
    }

    /// The current thread took a fault (not a syscall).
    pub fn handle_fault(&mut self, fault: Fault) {
        let Some(t) = self.current() else { return };
        let (pc, sp) = (t.get().ctx.pc, t.get().ctx.sp);
        let words = match fault {
            Fault::Vm { addr, instruction, esr } => [FaultKind::VmFault as u64, pc, addr, u64::from(instruction), esr],
            Fault::User { esr, far } => [FaultKind::UserException as u64, pc, sp, esr, far],
        };
        self.send_fault(t, words);
        self.reschedule(t.addr());
    }

    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    fn has_fault_handler(&self, t: Ptr<Tcb>) -> bool {
        let cap = t.get().slots[SLOT_FAULT_EP].cap;
        cap.is(ObjType::Endpoint) && cap.rights().contains(Rights::WRITE)
    }

    /// Send a fault message for `t` to its fault endpoint, or stop it if it has none.
    fn send_fault(&mut self, t: Ptr<Tcb>, words: [u64; 5]) {
        if self.has_fault_handler(t) {
            let cap = t.get().slots[SLOT_FAULT_EP].cap;
            t.get().fault = words;
            self.send_ipc(t, Ptr::new(cap.obj), cap.badge, IPC_FAULT | IPC_CALL, true);
        } else {
            let kind = FaultKind::from_raw(words[0]);
            self.log(format_args!(
                "kernel: thread {:#x} fault {:?} (pc {:#x}, {:#x}, {:#x}, {:#x}) and no fault handler: stopped\n",
                t.addr(),
                kind,
                words[1],
                words[2],
                words[3],
                words[4]
            ));
            self.cancel_ipc(t);
            self.block(t, ThreadState::Inactive);
        }
    }

    // ---- Send / Call ------------------------------------------------------------

    fn sys_send(&mut self, t: Ptr<Tcb>, blocking: bool, is_call: bool) {
        let cptr = t.get().ctx.x[CAP_REG];
        let (s, cap) = match self.lookup_cap(t, cptr) {
            Ok(c) => c,
            Err(e) => return Self::reply_kernel(t, Err(e)),
        };
        match cap.ty() {
            Some(ObjType::Endpoint) => {
                if !cap.rights().contains(Rights::WRITE) {
                    return Self::reply_kernel(t, Err(Error::NoRights));
                }
                let mut flags = if is_call { IPC_CALL } else { 0 };
                if cap.rights().contains(Rights::GRANT) {
                    flags |= IPC_GRANT;
                }
                self.send_ipc(t, Ptr::new(cap.obj), cap.badge, flags, blocking);
            }
            Some(ObjType::Notification) => {
                if !cap.rights().contains(Rights::WRITE) {
                    return Self::reply_kernel(t, Err(Error::NoRights));
                }
                Self::reply_kernel(t, Ok(0));
                self.signal(Ptr::new(cap.obj), cap.badge);
            }
            Some(ObjType::Reply) if !is_call => {
                // Sending on a reply object answers its caller without receiving.
                self.do_reply(t, Ptr::new(cap.obj));
                Self::reply_kernel(t, Ok(0));
            }
            Some(_) if is_call => self.invoke(t, s, cap),
            _ => Self::reply_kernel(t, Err(Error::InvalidCapability)),
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
    fn deliver(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, badge: u64, flags: u8, ep: usize) {
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
                s.fault[0] = 0;
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
    fn transfer(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, badge: u64, flags: u8, ep: usize) {
        if flags & IPC_FAULT != 0 {
            let f = sender.get().fault;
            for (i, w) in f[1..].iter().enumerate() {
                Self::set_mr(receiver, i, *w);
            }
            let r = &mut receiver.get().ctx;
            r.x[CAP_REG] = badge;
            r.x[INFO_REG] = MsgInfo::new(f[0], gaon_abi::fault::FAULT_MSG_LENGTH, 0).0;
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
    fn transfer_caps(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, n: usize, ep: usize) -> (usize, u64) {
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

    // ---- Recv / ReplyRecv -------------------------------------------------------

    fn sys_recv(&mut self, t: Ptr<Tcb>, blocking: bool) {
        let (cptr, reply_cptr) = (t.get().ctx.x[CAP_REG], t.get().ctx.x[REPLY_REG]);
        let cap = match self.lookup_cap(t, cptr) {
            Ok((_, c)) => c,
            Err(e) => return Self::reply_kernel(t, Err(e)),
        };
        match cap.ty() {
            Some(ObjType::Endpoint) => {
                if !cap.rights().contains(Rights::READ) {
                    return Self::reply_kernel(t, Err(Error::NoRights));
                }
                let reply = match self.reply_arg(t, reply_cptr) {
                    Ok(r) => r,
                    Err(e) => return Self::reply_kernel(t, Err(e)),
                };
                if reply.is_some_and(|r| r.get().caller != 0 || r.get().receiver != 0) {
                    return Self::reply_kernel(t, Err(Error::IllegalOperation));
                }
                self.recv_ipc(t, Ptr::new(cap.obj), reply, blocking);
            }
            Some(ObjType::Notification) => {
                if !cap.rights().contains(Rights::READ) {
                    return Self::reply_kernel(t, Err(Error::NoRights));
                }
                let n = Ptr::<Notification>::new(cap.obj);
                let bound = n.get().bound;
                if bound != 0 && bound != t.addr() {
                    return Self::reply_kernel(t, Err(Error::IllegalOperation));
                }
                self.wait(t, n, blocking);
            }
            _ => Self::reply_kernel(t, Err(Error::InvalidCapability)),
        }
    }

    /// The reply object named by `cptr` (0 = none).
    fn reply_arg(&self, t: Ptr<Tcb>, cptr: u64) -> Result<Option<Ptr<Reply>>, Error> {
        if cptr == 0 {
            return Ok(None);
        }
        let (_, cap) = self.lookup_typed(t, cptr, ObjType::Reply)?;
        Ok(Some(Ptr::new(cap.obj)))
    }

    fn sys_reply_recv(&mut self, t: Ptr<Tcb>) {
        let (cptr, reply_cptr) = (t.get().ctx.x[CAP_REG], t.get().ctx.x[REPLY_REG]);
        let reply = match self.reply_arg(t, reply_cptr) {
            Ok(Some(r)) => r,
            Ok(None) => return Self::reply_kernel(t, Err(Error::InvalidCapability)),
            Err(e) => return Self::reply_kernel(t, Err(e)),
        };
        self.do_reply(t, reply);
        if reply.get().receiver != 0 {
            return Self::reply_kernel(t, Err(Error::IllegalOperation));
        }
        let cap = match self.lookup_typed(t, cptr, ObjType::Endpoint) {
            Ok((_, c)) => c,
            Err(e) => return Self::reply_kernel(t, Err(e)),
        };
        if !cap.rights().contains(Rights::READ) {
            return Self::reply_kernel(t, Err(Error::NoRights));
        }
        self.recv_ipc(t, Ptr::new(cap.obj), Some(reply), true);
    }

    /// Receive on `ep` with reply object `reply`.
    fn recv_ipc(&mut self, t: Ptr<Tcb>, ep: Ptr<Endpoint>, reply: Option<Ptr<Reply>>, blocking: bool) {
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
    fn do_reply(&mut self, t: Ptr<Tcb>, reply: Ptr<Reply>) {
        let Some(c) = Ptr::<Tcb>::from_raw(core::mem::take(&mut reply.get().caller)) else {
            return;
        };
        let caller = c.get();
        caller.reply = 0;
        if caller.fault[0] != 0 {
            let len = MsgInfo(t.get().ctx.x[INFO_REG]).length();
            if len >= 1 {
                caller.ctx.pc = Self::get_mr(t, 0);
            }
            if len >= 2 {
                caller.ctx.sp = Self::get_mr(t, 1);
            }
            caller.fault[0] = 0;
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

    fn wait(&mut self, t: Ptr<Tcb>, n: Ptr<Notification>, blocking: bool) {
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

    // ---- the fastpath -----------------------------------------------------------

    /// Call on an endpoint with a waiting receiver that has a reply object: a short
    /// message, no caps, a one-level CSpace. Same effect as the slow path, with the
    /// checks done once and capabilities read in place. `None`: not taken (nothing
    /// changed); `Some(switched)`: done, `switched` as [`Kernel::fastpath_switch`] says.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    fn fastpath_call(&mut self, t: Ptr<Tcb>) -> Option<bool> {
        let snd = t.get();
        let info = short_message(snd)?;
        let (ep_addr, badge) = endpoint_in_place(snd, Rights::WRITE)?;
        let ep = Ptr::<Endpoint>::new(ep_addr).get();
        if ep.state != EP_RECV {
            return None;
        }
        let r = Ptr::<Tcb>::new(ep.queue.head);
        let rcv = r.get();
        let rp = Ptr::<Reply>::from_raw(rcv.reply)?;
        ep.queue.pop();
        if ep.queue.is_empty() {
            ep.state = EP_IDLE;
        }
        rcv.reply = 0;
        rcv.blocked_on = 0;
        let reply = rp.get();
        reply.receiver = 0;
        reply.caller = t.addr();
        snd.reply = rp.addr();
        copy_short(rcv, badge, info, snd);
        self.fastpath_count += 1;
        Some(self.fastpath_switch(t, ThreadState::BlockedOnReply, r))
    }

    /// ReplyRecv answering a caller (not a fault) and then waiting on an endpoint with
    /// no sender queued: a short message, no caps, a one-level CSpace. Returns as
    /// [`Kernel::fastpath_call`] does.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    fn fastpath_reply_recv(&mut self, t: Ptr<Tcb>) -> Option<bool> {
        let me = t.get();
        let info = short_message(me)?;
        let rcap = cap_in_place(me, me.ctx.x[REPLY_REG])?;
        if !rcap.is(ObjType::Reply) {
            return None;
        }
        let rp = Ptr::<Reply>::new(rcap.obj);
        let c = Ptr::<Tcb>::from_raw(rp.get().caller)?;
        let caller = c.get();
        if caller.fault[0] != 0 {
            return None;
        }
        let (ep_addr, _) = endpoint_in_place(me, Rights::READ)?;
        let ep = Ptr::<Endpoint>::new(ep_addr);
        if ep.get().state == EP_SEND {
            return None;
        }
        if me.bound_ntfn != 0 && Ptr::<Notification>::new(me.bound_ntfn).get().word != 0 {
            return None;
        }
        let reply = rp.get();
        reply.caller = 0;
        caller.reply = 0;
        copy_short(caller, 0, info, me);
        me.reply = rp.addr();
        reply.receiver = t.addr();
        me.blocked_on = ep.addr();
        let e = ep.get();
        e.queue.push(t);
        e.state = EP_RECV;
        self.fastpath_count += 1;
        Some(self.fastpath_switch(t, ThreadState::BlockedOnRecv, c))
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
    (info.extra_caps() == 0 && info.length() <= MSG_REGISTERS).then_some(info)
}

/// The endpoint (address, badge) of the capability in `t`'s `x0`, if it carries `right`.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn endpoint_in_place(t: &Tcb, right: Rights) -> Option<(usize, u64)> {
    let cap = cap_in_place(t, t.ctx.x[CAP_REG])?;
    (cap.is(ObjType::Endpoint) && cap.rights().contains(right)).then_some((cap.obj, cap.badge))
}

/// Deliver a short message of `from` to `to`: badge, message info, the registers.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
fn copy_short(to: &mut Tcb, badge: u64, info: MsgInfo, from: &Tcb) {
    to.ctx.x[CAP_REG] = badge;
    to.ctx.x[INFO_REG] = MsgInfo::new(info.label(), info.length(), 0).0;
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
fn cap_in_place(t: &Tcb, cptr: u64) -> Option<&'static crate::cap::Cap> {
    let s = super::resolve_one_level(&t.slots[crate::tcb::SLOT_CSPACE].cap, cptr)?;
    Some(&Ptr::<crate::cdt::Slot>::new(s).get().cap)
}

/// The slot at `index` of the CNode `cn`, if in range.
pub(super) fn cnode_slot(cn: &crate::cap::Cap, index: u64) -> Option<usize> {
    let radix = u32::from(cn.size_bits - gaon_abi::object::SLOT_BITS);
    (index < (1u64 << radix)).then(|| cn.obj + (index as usize) * core::mem::size_of::<crate::cdt::Slot>())
}

/// The capability a Copy (or cap transfer) of `cap` creates: untyped and page-table
/// caps cannot be copied (their state lives in the cap), a frame copy starts unmapped.
pub(super) fn derived_copy(cap: crate::cap::Cap) -> Result<crate::cap::Cap, Error> {
    match cap.ty() {
        // Their state lives in the cap (an untyped's watermark, a table's mapping, a
        // pool's remaining VMIDs): a copy would duplicate it.
        Some(ObjType::Untyped | ObjType::PageTable | ObjType::VmidPool) => Err(Error::IllegalOperation),
        Some(ObjType::Frame) => {
            let mut c = cap;
            c.set_mapped(None);
            Ok(c)
        }
        Some(_) => Ok(cap),
        None => Err(Error::FailedLookup),
    }
}
