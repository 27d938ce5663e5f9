//! Every way into the kernel: syscalls ([`Kernel::handle_syscall`], which decodes each
//! syscall's registers and hands IPC to `ipc.rs` or the fastpath and invocations to
//! `object/`), faults ([`Kernel::handle_fault`]), interrupts (`Kernel::handle_irq`, in
//! `object/irq.rs`) and the kernel timer ([`Kernel::handle_timer`]). Each leaves the kernel
//! having chosen the thread to run next ([`Kernel::resume_target`]).

use super::message;
use gaon_abi::fault::Fault;
use gaon_abi::syscall::{CAP_REG, REPLY_REG, SYSCALL_NUMBER_REG};
use gaon_abi::{Error, MsgInfo, ObjType, Rights, Syscall};

use super::cspace::slot;
use super::fastpath::Fast;
use super::object::reply::Reply;
use super::object::tcb::{IpcFlags, Tcb};
use super::{Kernel, Platform, Resume};
use crate::obj::Ptr;

/// Where a syscall left the CPU ([`Kernel::handle_syscall`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Nothing changed which thread runs or its address space: back to the caller.
    Caller,
    /// The IPC fastpath switched directly from `from`, the thread that made the
    /// syscall, to `to`, whose VSpace is live: what [`Kernel::resume_target`] would
    /// say, known without reading it back. `from` ran at user level until its
    /// syscall, so it owns the CPU's thread pointer ([`Kernel::lazy_hand_over`]).
    Direct {
        /// The thread that made the syscall (now blocked).
        from: Ptr<Tcb>,
        /// The thread to resume.
        to: Resume,
    },
    /// Anything else: [`Kernel::resume_target`] says who runs.
    Chosen,
}

/// An exception a thread took (not a syscall), decoded by the arch layer from the
/// syndrome; the kernel sends it as a fault message ([`gaon_abi::fault::Fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// A stage-2 translation or permission fault.
    Vm {
        /// Faulting address (FAR_EL2: for a native thread, whose stage 1 is off, the
        /// IPA; for a guest its virtual address), 0 where it is not valid.
        addr: u64,
        /// The guest-physical address, from HPFAR_EL2 (and FAR_EL2's page offset where
        /// it is valid).
        ipa: u64,
        /// Instruction fetch (not a data access).
        instruction: bool,
        /// ESR_EL2.
        esr: u64,
    },
    /// Any other synchronous exception (undefined instruction, alignment, BRK, ...).
    User {
        /// ESR_EL2.
        esr: u64,
        /// FAR_EL2.
        far: u64,
    },
}

/// ESR_EL2 exception classes the fault decoding tells apart.
mod ec {
    pub const IABT_LOWER: u64 = 0x20;
    pub const PC_ALIGN: u64 = 0x22;
    pub const DABT_LOWER: u64 = 0x24;
    pub const SERROR: u64 = 0x2f;
    pub const WATCHPOINT_LOWER: u64 = 0x34;
    /// ISS bit of instruction and data aborts: FAR is not valid.
    pub const FNV: u64 = 1 << 10;
}

impl Exception {
    /// Decode a synchronous exception taken from EL0 that is not a syscall or an FP
    /// trap. FAR_EL2 is kept only where the syndrome says it holds this exception's
    /// address (aborts without FnV, PC alignment, watchpoints); elsewhere it is
    /// UNKNOWN, in practice the address of an earlier exception of another thread,
    /// and is reported as 0.
    /// `hpfar` is HPFAR_EL2 (read for aborts only; anything for the rest).
    pub const fn from_sync(esr: u64, far: u64, hpfar: u64) -> Self {
        let class = (esr >> 26) & 0x3f;
        match class {
            ec::IABT_LOWER | ec::DABT_LOWER => {
                let far_valid = esr & ec::FNV == 0;
                // HPFAR_EL2.FIPA (bits 4..44) holds IPA bits 12..52.
                let page = (hpfar & 0x0fff_ffff_fff0) << 8;
                Self::Vm {
                    addr: if far_valid { far } else { 0 },
                    ipa: if far_valid { page | (far & 0xfff) } else { page },
                    instruction: class == ec::IABT_LOWER,
                    esr,
                }
            }
            ec::PC_ALIGN | ec::WATCHPOINT_LOWER => Self::User { esr, far },
            _ => Self::User { esr, far: 0 },
        }
    }

    /// An SError (`serror`) or FIQ taken from EL0. An SError has its own syndrome; an
    /// FIQ sets neither ESR_EL2 nor FAR_EL2, so both are reported as 0.
    pub const fn from_async(serror: bool, esr: u64) -> Self {
        if serror && (esr >> 26) & 0x3f == ec::SERROR {
            Self::User { esr, far: 0 }
        } else {
            Self::User { esr: 0, far: 0 }
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// A thread executed `svc`: its registers are in its Tcb. Afterwards the kernel has
    /// chosen the thread to run next; the result says how the caller learns which.
    pub fn handle_syscall(&mut self) -> After {
        // The IPC fastpath and Null are told apart before the general decode (a compare
        // each: the decode's range checks cost the IPC path instructions). The general
        // path stays inline: a call of its own costs the slow paths (Signal, Yield) a
        // second prologue, about 25 instructions (measured), and the fastpath nothing.
        const CALL: u64 = Syscall::Call as u64;
        const REPLY_RECV: u64 = Syscall::ReplyRecv as u64;
        const NULL: u64 = Syscall::Null as u64;
        let Some(t) = self.current() else { return After::Chosen };
        let number = t.get().ctx.x[SYSCALL_NUMBER_REG];
        // Traced IPC takes the general path, which records it.
        let fast = match number {
            CALL if !self.traced() => self.fastpath_call(t),
            REPLY_RECV if !self.traced() => self.fastpath_reply_recv(t),
            NULL => {
                t.get().ctx.x[0] = 0;
                return After::Caller;
            }
            _ => None,
        };
        match fast {
            Some(Fast::Direct(to)) => After::Direct { from: t, to },
            Some(Fast::Queued) => self.reschedule_after(t),
            None => self.general_syscall(t, number),
        }
    }

    /// A syscall the fastpath did not take, then the choice of who runs next.
    #[inline]
    fn general_syscall(&mut self, t: Ptr<Tcb>, number: u64) -> After {
        const CALL: u64 = Syscall::Call as u64;
        const REPLY_RECV: u64 = Syscall::ReplyRecv as u64;
        const YIELD: u64 = Syscall::Yield as u64;
        match number {
            CALL => {
                self.slowpath_count += 1;
                self.sys_send(t, true, true);
            }
            REPLY_RECV => {
                self.slowpath_count += 1;
                self.sys_reply_recv(t);
            }
            YIELD => {
                if self.yield_direct(t) {
                    return After::Chosen;
                }
                self.sys_yield(t);
            }
            _ => self.other_syscall(t, number),
        }
        self.reschedule_after(t)
    }

    /// The general choice of who runs after `t`'s syscall.
    #[inline]
    fn reschedule_after(&mut self, t: Ptr<Tcb>) -> After {
        self.reschedule(Some(t));
        After::Chosen
    }

    /// Yield's common case, as the fastpath is IPC's: `t` (unbudgeted, running, not
    /// queued) yields to the first thread of its own priority (unbudgeted, with a live
    /// VSpace), nothing queued above it and no other thread woken in this entry. That is
    /// exactly what the general path (`sys_yield`, then `reschedule`) would choose; done
    /// here with one queue rotation and no scan, and no charge (neither thread has a
    /// budget: see `fastpath_switch`). True if it switched.
    fn yield_direct(&mut self, t: Ptr<Tcb>) -> bool {
        t.get().ctx.x[0] = 0;
        if t.get().queued() || self.budgeted(t) || self.core.candidate.is_some() {
            return false;
        }
        // The log's reader, if it has something to read, is woken first (as
        // `reschedule` does), which may make it this entry's candidate.
        self.signal_log();
        let prio = t.get().prio;
        if self.core.candidate.is_some() || self.core.bits.highest_prio() != Some(prio) {
            return false;
        }
        let Some(next) = self.highest_here() else { return false };
        if self.budgeted(next) || self.vspace_of(next).is_none() {
            return false;
        }
        self.rq().rotate(next, t);
        self.switch_to(Some(next));
        self.arm_timer();
        true
    }

    /// Every syscall but Call, ReplyRecv and Null.
    fn other_syscall(&mut self, t: Ptr<Tcb>, number: u64) {
        match Syscall::from_raw(number) {
            // Decoded by the caller.
            Some(Syscall::Null | Syscall::Call | Syscall::ReplyRecv | Syscall::Yield) => {}
            Some(Syscall::Send) => self.sys_send(t, true, false),
            Some(Syscall::NbSend) => self.sys_send(t, false, false),
            Some(Syscall::Recv) => self.sys_recv(t, true),
            Some(Syscall::NbRecv) => self.sys_recv(t, false),
            Some(Syscall::YieldBudget) => {
                // Give up the rest of the budget, then yield: the thread runs again at
                // its next refill (a thread without a budget just yields).
                if let Some(sc) = t.get().sched_context
                    && sc.get().budget != 0
                {
                    let now = self.platform.now();
                    if !self.charge(t, now) {
                        let s = sc.get();
                        s.forfeit_head(now);
                        if !s.available(now) {
                            self.throttle_quietly(t, sc);
                        }
                    }
                }
                self.sys_yield(t);
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
            Syscall::DebugSlowpathCount => ctx.x[1] = self.slowpath_count,
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
            self.send_fault(t, Fault::UnknownSyscall { pc, sp, number, x0 });
        } else {
            let c = &mut t.get().ctx;
            c.x[0] = Error::UnknownSyscall as u64;
            c.x[1] = MsgInfo::kernel(Error::UnknownSyscall as u64, 0).0;
        }
    }

    /// The current thread took a fault (not a syscall).
    pub fn handle_fault(&mut self, exception: Exception) {
        let Some(t) = self.current() else { return };
        let (pc, sp) = (t.get().ctx.pc, t.get().ctx.sp);
        if t.get().vcpu.is_some() {
            if !self.guest_exit(t, exception) {
                self.reschedule(Some(t));
            }
            return;
        }
        let fault = match exception {
            Exception::Vm {
                addr, instruction, esr, ..
            } => Fault::VmFault {
                pc,
                addr,
                instruction,
                esr,
            },
            Exception::User { esr, far } => Fault::UserException { pc, sp, esr, far },
        };
        self.send_fault(t, fault);
        self.reschedule(Some(t));
    }

    // ---- Send / Call ------------------------------------------------------------

    fn sys_send(&mut self, t: Ptr<Tcb>, blocking: bool, is_call: bool) {
        let cptr = t.get().ctx.x[CAP_REG];
        let (s, cap) = match self.lookup_cap(t, cptr) {
            Ok(c) => c,
            Err(e) => return message::reply_kernel(t, Err(e)),
        };
        // Told apart by the type byte (`Cap::is`): matching on `cap.ty()`, an `Option`,
        // costs every slow IPC path a range check and a select.
        if cap.is(ObjType::Endpoint) {
            if !cap.rights().contains(Rights::WRITE) {
                return message::reply_kernel(t, Err(Error::NoRights));
            }
            let mut flags = if is_call { IpcFlags::CALL } else { IpcFlags::empty() };
            if cap.rights().contains(Rights::GRANT) {
                flags |= IpcFlags::GRANT;
            }
            self.send_ipc(t, cap.endpoint(), cap.badge, flags, blocking);
        } else if cap.is(ObjType::Notification) {
            if !cap.rights().contains(Rights::WRITE) {
                return message::reply_kernel(t, Err(Error::NoRights));
            }
            message::reply_kernel(t, Ok(0));
            self.signal(cap.notification(), cap.badge);
        } else if cap.is(ObjType::Reply) && !is_call {
            // Sending on a reply object answers its caller without receiving.
            self.do_reply(t, cap.reply());
            message::reply_kernel(t, Ok(0));
        } else if is_call && !cap.is_null() {
            self.invoke(t, s);
        } else {
            message::reply_kernel(t, Err(Error::InvalidCapability));
        }
    }

    fn sys_recv(&mut self, t: Ptr<Tcb>, blocking: bool) {
        let (cptr, reply_cptr) = (t.get().ctx.x[CAP_REG], t.get().ctx.x[REPLY_REG]);
        let cap = match self.lookup_cap(t, cptr) {
            Ok((_, c)) => c,
            Err(e) => return message::reply_kernel(t, Err(e)),
        };
        // By the type byte, as `sys_send`.
        if cap.is(ObjType::Endpoint) {
            if !cap.rights().contains(Rights::READ) {
                return message::reply_kernel(t, Err(Error::NoRights));
            }
            let reply = match self.reply_arg(t, reply_cptr) {
                Ok(r) => r,
                Err(e) => return message::reply_kernel(t, Err(e)),
            };
            if reply.is_some_and(|r| r.get().caller.is_some() || r.get().receiver.is_some()) {
                return message::reply_kernel(t, Err(Error::IllegalOperation));
            }
            self.recv_ipc(t, cap.endpoint(), reply, blocking);
        } else if cap.is(ObjType::Notification) {
            if !cap.rights().contains(Rights::READ) {
                return message::reply_kernel(t, Err(Error::NoRights));
            }
            let n = cap.notification();
            let bound = n.get().bound;
            if bound.is_some_and(|b| b != t) {
                return message::reply_kernel(t, Err(Error::IllegalOperation));
            }
            self.wait(t, n, blocking);
        } else {
            message::reply_kernel(t, Err(Error::InvalidCapability));
        }
    }

    /// The reply object named by `cptr` (0 = none).
    fn reply_arg(&self, t: Ptr<Tcb>, cptr: u64) -> Result<Option<Ptr<Reply>>, Error> {
        if cptr == 0 {
            return Ok(None);
        }
        let (_, cap) = self.lookup_typed(t, cptr, ObjType::Reply)?;
        Ok(Some(cap.reply()))
    }

    fn sys_reply_recv(&mut self, t: Ptr<Tcb>) {
        let (cptr, reply_cptr) = (t.get().ctx.x[CAP_REG], t.get().ctx.x[REPLY_REG]);
        let reply = match self.reply_arg(t, reply_cptr) {
            Ok(Some(r)) => r,
            Ok(None) => return message::reply_kernel(t, Err(Error::InvalidCapability)),
            Err(e) => return message::reply_kernel(t, Err(e)),
        };
        self.do_reply(t, reply);
        if reply.get().receiver.is_some() {
            return message::reply_kernel(t, Err(Error::IllegalOperation));
        }
        let cap = match self.lookup_typed(t, cptr, ObjType::Endpoint) {
            Ok((_, c)) => c,
            Err(e) => return message::reply_kernel(t, Err(e)),
        };
        if !cap.rights().contains(Rights::READ) {
            return message::reply_kernel(t, Err(Error::NoRights));
        }
        self.recv_ipc(t, cap.endpoint(), Some(reply), true);
    }

    /// Yield: behind the other threads of its priority (the rest of the core's time
    /// slice goes to the next).
    fn sys_yield(&mut self, t: Ptr<Tcb>) {
        t.get().ctx.x[0] = 0;
        // The running thread is normally not queued (see `sched`): it joins the back of
        // its level.
        if !self.throttled(t) {
            let mut rq = self.rq();
            rq.dequeue(t);
            rq.enqueue(t, false);
        }
    }

    /// An IPI from another core: it made a thread of this core runnable, stopped the
    /// one running here, or gave this core an earlier deadline. Choose again and set
    /// the timer.
    pub fn handle_ipi(&mut self) {
        let prev = self.core.current;
        self.reschedule(prev);
    }

    /// The kernel timer fired: one of the deadlines [`Kernel::arm_timer`] set came (or
    /// an earlier one it left in place). The running thread is charged (and throttled
    /// if its budget is gone), due scheduling contexts are released, the running thread
    /// goes behind its equals if the time slice is over, and the timer is set again.
    pub fn handle_timer(&mut self) {
        let prev = self.core.current;
        let now = self.platform.now();
        // What the timer held has fired: off until the next deadline is set.
        self.platform.set_timer(None);
        self.core.timer_deadline = u64::MAX;
        self.guest_timers_due(now);
        if let Some(t) = prev {
            // The slice is its level's: a higher thread running when it ends leaves it
            // over, and the level rotates when one of its threads runs again.
            if now >= self.core.slice_end && self.core.slice_level == u16::from(t.get().prio) {
                // The slice is over: behind its equals, and the next slice starts.
                self.settle_current();
                if t.get().queued() {
                    let mut rq = self.rq();
                    rq.dequeue(t);
                    rq.enqueue(t, false);
                }
                self.core.slice_end = now.saturating_add(self.core.timeslice);
            }
            let _ = self.charge(t, now);
        } else {
            self.core.last_charge = now;
        }
        self.release_due(now);
        self.reschedule(prev);
    }
}
