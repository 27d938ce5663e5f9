//! Guest exits: what a VCpu thread's guest did that the kernel hands to the VMM, as a
//! message to the thread's fault endpoint (`gaon_abi::vcpu::Exit`), and how the VMM's
//! reply resumes the guest. Decoded from the syndrome once, here.

use gaon_abi::MsgInfo;
use gaon_abi::fault::Fault;
use gaon_abi::hypercall::Hypercall;
use gaon_abi::syscall::INFO_REG;
use gaon_abi::trace::{Class, Event};
use gaon_abi::vcpu::{
    EXIT_REPLY_ABORT, EXIT_REPLY_RETRY, EXIT_REPLY_UNDEF, Exit, GUEST_RESET_PSTATE, MmioAccess, VCpuReg,
};

use super::entry::Exception;
use super::object::tcb::{State, Tcb};
use super::{Kernel, Platform, message};
use crate::obj::Ptr;

/// ESR_EL2 exception classes of guest exits.
mod ec {
    pub const WFX: u64 = 0x01;
    pub const HVC64: u64 = 0x16;
    pub const SMC64: u64 = 0x17;
    pub const SYS64: u64 = 0x18;
    pub const IABT_LOWER: u64 = 0x20;
    pub const DABT_LOWER: u64 = 0x24;
    /// Data abort ISS: the fault came from a stage-1 table walk (not the access itself).
    pub const S1PTW: u64 = 1 << 7;
    /// Data abort ISS: a write.
    pub const WNR: u64 = 1 << 6;
    /// True if a data or instruction abort's status code (DFSC/IFSC) is a translation,
    /// access-flag or permission fault: the ones HPFAR_EL2 holds the address of.
    pub const fn stage2_fault(iss: u64) -> bool {
        matches!(iss & 0x3f, 0x04..=0x0f)
    }
}

/// The value of general register `r` (31: the zero register) of `t`.
fn reg(t: &Tcb, r: u64) -> u64 {
    t.ctx.x.get(r as usize).copied().unwrap_or(0)
}

/// Set general register `r` (31: the zero register, nothing happens) of `t`.
fn set_reg(t: &mut Tcb, r: u64, v: u64) {
    if let Some(x) = t.ctx.x.get_mut(r as usize) {
        *x = v;
    }
}

/// The exit message for `exception` of the guest thread `t`; `None` for an exception
/// that is no exit (sent as a fault message instead).
pub(super) fn exit_of(t: &Tcb, exception: Exception) -> Option<Exit> {
    let pc = t.ctx.pc;
    let x = |i: usize| t.ctx.x[i];
    Some(match exception {
        Exception::Vm { ipa, addr, esr, .. } => {
            let class = (esr >> 26) & 0x3f;
            let iss = esr & 0x1ff_ffff;
            match MmioAccess::from_iss(iss) {
                Some(access) if class == ec::DABT_LOWER && iss & ec::S1PTW == 0 && ec::stage2_fault(iss) => {
                    Exit::Mmio {
                        ipa,
                        access,
                        value: if access.write {
                            access.store_value(reg(t, u64::from(access.reg)))
                        } else {
                            0
                        },
                        pc,
                    }
                }
                _ if class == ec::DABT_LOWER || class == ec::IABT_LOWER => Exit::Abort {
                    ipa,
                    esr,
                    far: addr,
                    pc,
                },
                _ => return None,
            }
        }
        Exception::User { esr, .. } => {
            let iss = esr & 0x1ff_ffff;
            match (esr >> 26) & 0x3f {
                ec::HVC64 | ec::SMC64 => {
                    let (x0, x1, x2, x3, x4, x5, x6, x7) = (x(0), x(1), x(2), x(3), x(4), x(5), x(6), x(7));
                    let imm = iss & 0xffff;
                    if (esr >> 26) & 0x3f == ec::HVC64 {
                        Exit::Hvc {
                            x0,
                            x1,
                            x2,
                            x3,
                            x4,
                            x5,
                            x6,
                            x7,
                            imm,
                        }
                    } else {
                        Exit::Smc {
                            x0,
                            x1,
                            x2,
                            x3,
                            x4,
                            x5,
                            x6,
                            x7,
                            imm,
                        }
                    }
                }
                ec::SYS64 => Exit::Sysreg {
                    iss,
                    value: if iss & 1 == 0 { reg(t, (iss >> 5) & 31) } else { 0 },
                    pc,
                },
                _ => return None,
            }
        }
    })
}

/// True if the reply `label` makes the guest take an exception (its VMM's answer needs
/// the guest's EL1 registers out of every CPU first).
pub(super) const fn reply_raises(label: u64) -> bool {
    label == EXIT_REPLY_ABORT || label == EXIT_REPLY_UNDEF
}

/// Make the guest `t` (its VCpu's registers saved, not live in any CPU) take the
/// synchronous exception of class `ec` (the from-EL0 class: an abort becomes its
/// same-EL class when the guest was at EL1) with syndrome `iss` and, for an abort, the
/// fault address `far`: to its EL1 vector, as a CPU takes one (ELR_EL1 the faulting
/// instruction, SPSR_EL1 its PSTATE, EL1h with D, A, I and F masked).
fn raise(t: &mut Tcb, ec: u64, iss: u64, far: Option<u64>) {
    let Some(v) = t.vcpu else { return };
    let regs = &mut v.get().state.regs;
    let pstate = t.ctx.spsr;
    let offset = match pstate & 0xf {
        0x4 => 0x000, // EL1t: current EL with SP_EL0
        0x5 => 0x200, // EL1h: current EL with SP_ELx
        _ => 0x400,   // EL0t: lower EL, AArch64
    };
    let from_el1 = pstate & 0xc == 0x4;
    let ec = if from_el1 && (ec == ec::IABT_LOWER || ec == ec::DABT_LOWER) {
        ec + 1
    } else {
        ec
    };
    regs[VCpuReg::EsrEl1 as usize] = ec << 26 | 1 << 25 | (iss & 0x1ff_ffff);
    if let Some(far) = far {
        regs[VCpuReg::FarEl1 as usize] = far;
    }
    regs[VCpuReg::ElrEl1 as usize] = t.ctx.pc;
    regs[VCpuReg::SpsrEl1 as usize] = pstate;
    t.ctx.pc = regs[VCpuReg::VbarEl1 as usize].wrapping_add(offset);
    t.ctx.spsr = GUEST_RESET_PSTATE;
}

/// Resume the guest thread `t` as the reply to `exit` says: `label` and the reply's
/// words `mr(i)` (`len` of them).
pub(super) fn apply_reply(t: &mut Tcb, exit: Exit, label: u64, len: usize, mr: impl Fn(usize) -> u64) {
    if let Exit::Eoi { .. } = exit {
        // The guest was stopped between two instructions: it goes on, whatever the VMM says.
        return;
    }
    if reply_raises(label) {
        if let Exit::Hvc { .. } = exit {
            // The exception left the PC past the HVC; the exception is the HVC's.
            t.ctx.pc = t.ctx.pc.wrapping_sub(4);
        }
        let abort = t.vcpu.map(|v| v.get().last_abort);
        match (exit, abort) {
            (Exit::Mmio { .. } | Exit::Abort { .. }, Some((far, esr))) if label == EXIT_REPLY_ABORT => {
                // A synchronous external abort (status 0x10), a data abort keeping
                // whether it was a write (WnR).
                let class = (esr >> 26) & 0x3f;
                let iss = 0x10 | if class == ec::DABT_LOWER { esr & ec::WNR } else { 0 };
                raise(t, class, iss, Some(far));
            }
            _ => raise(t, 0, 0, None),
        }
        return;
    }
    let retry = label == EXIT_REPLY_RETRY;
    match exit {
        // The exception already stepped over the HVC (its preferred return address).
        Exit::Hvc { .. } | Exit::Smc { .. } => {
            for i in 0..len.min(4) {
                t.ctx.x[i] = mr(i);
            }
            let hvc = matches!(exit, Exit::Hvc { .. });
            if retry && hvc {
                t.ctx.pc = t.ctx.pc.wrapping_sub(4);
            } else if !retry && !hvc {
                t.ctx.pc = t.ctx.pc.wrapping_add(4);
            }
        }
        Exit::Mmio { access, .. } => {
            if !retry {
                if !access.write && len >= 1 {
                    set_reg(t, u64::from(access.reg), access.load_value(mr(0)));
                }
                t.ctx.pc = t.ctx.pc.wrapping_add(4);
            }
        }
        Exit::Sysreg { iss, .. } => {
            if !retry {
                if iss & 1 != 0 && len >= 1 {
                    set_reg(t, (iss >> 5) & 31, mr(0));
                }
                t.ctx.pc = t.ctx.pc.wrapping_add(4);
            }
        }
        Exit::Abort { .. } => {
            if !retry {
                t.ctx.pc = t.ctx.pc.wrapping_add(4);
            }
        }
        Exit::Eoi { .. } => {}
    }
}

/// `t`'s exit will not be answered (its IPC was cancelled: suspended, its VMM's
/// endpoint or reply object went): forget it, and leave the guest as before the exit,
/// so that it does the same again when it runs: the PC back at an HVC (its exception
/// returns after it; every other exit's is at the instruction), an end of interrupt
/// back in its VCpu's list.
pub(super) fn take_back_exit(t: &mut Tcb) {
    match t.exit.take() {
        Some(Exit::Hvc { .. }) => t.ctx.pc = t.ctx.pc.wrapping_sub(4),
        Some(Exit::Eoi { intid }) => {
            let intid = intid as u32;
            if let Some(v) = t.vcpu
                && !v.get().eois.contains(intid)
            {
                v.get().eois.unpop(super::object::vcpu::VIrq {
                    intid,
                    priority: 0,
                    notify_eoi: true,
                });
            }
        }
        _ => {}
    }
}

impl<P: Platform> Kernel<P> {
    /// [`Event::VmExit`] for `t`'s exit (if VM events are recorded), and for a trace
    /// hypercall the guest event it carries (the kernel records it here, at the exit:
    /// the VMM only answers it).
    #[cold]
    #[inline(never)]
    fn trace_exit(&mut self, t: Ptr<Tcb>, exception: Exception) {
        let Some(exit) = t.get().exit else { return };
        if !self.tracing(Class::VM) {
            return;
        }
        let syndrome = match exception {
            Exception::Vm { esr, .. } | Exception::User { esr, .. } => esr,
        };
        let tid = t.get().tid;
        self.record(Event::VmExit, tid, exit.kind() as u64, syndrome);
        if let (Exit::Hvc { .. }, Some(x)) = (exit, exit.call_regs()) {
            let guest = match Hypercall::decode(x) {
                Ok(Hypercall::TraceTaskSwitch { from, to }) => Some((Event::GuestTaskSwitch, from, to)),
                Ok(Hypercall::TraceEvent { event, arg }) => Some((Event::GuestEvent, event, arg)),
                Ok(Hypercall::TraceTaskName { task, name }) => Some((Event::GuestTaskName, task, name)),
                _ => None,
            };
            if let Some((e, a, b)) = guest {
                self.record(e, tid, a, b);
            }
        }
    }

    /// [`Event::VmMmio`] for guest `t`'s `Mmio` exit answered done with `len` words, the
    /// first `mr0`: the access and the value stored, or the value loaded.
    #[cold]
    #[inline(never)]
    pub(super) fn trace_mmio(&mut self, t: Ptr<Tcb>, exit: Exit, label: u64, len: usize, mr0: u64) {
        if let Exit::Mmio { ipa, access, value, .. } = exit
            && label == gaon_abi::vcpu::EXIT_REPLY_DONE
        {
            let value = match (access.write, len) {
                (true, _) => value,
                (false, 0) => 0,
                (false, _) => access.load_value(mr0),
            };
            let a = gaon_abi::trace::mmio_access(ipa, access.size_log2, access.write);
            self.record(Event::VmMmio, t.get().tid, a, value);
        }
    }

    /// The guest of `t` took `exception`: send the exit to `t`'s fault endpoint (an
    /// exception that is no exit goes as a fault message), or stop `t` if it has none.
    /// True if it switched directly to the VMM (the exit fastpath: nothing to
    /// reschedule).
    pub(super) fn guest_exit(&mut self, t: Ptr<Tcb>, exception: Exception) -> bool {
        if let Exception::User { esr, .. } = exception
            && (esr >> 26) & 0x3f == ec::WFX
        {
            self.guest_wfi(t, esr & 1 != 0);
            return false;
        }
        let Some(exit) = exit_of(t.get(), exception) else {
            let tc = t.get();
            let (pc, sp) = (tc.ctx.pc, tc.ctx.sp);
            let fault = match exception {
                Exception::Vm {
                    ipa, instruction, esr, ..
                } => Fault::VmFault {
                    pc,
                    addr: ipa,
                    instruction,
                    esr,
                },
                Exception::User { esr, far } => Fault::UserException { pc, sp, esr, far },
            };
            self.send_fault(t, fault);
            return false;
        };
        if !self.has_fault_handler(t) {
            let (kind, words, _) = exit.encode();
            self.stop_unhandled(t, "guest exit", &kind, [words[0], words[1], words[2], words[3]]);
            return false;
        }
        // What an abort the VMM answers with `EXIT_REPLY_ABORT` needs (the exit
        // message has the IPA, not the guest's virtual address).
        if let Exception::Vm { addr, esr, .. } = exception
            && let Some(v) = t.get().vcpu
        {
            v.get().last_abort = (addr, esr);
        }
        t.get().exit = Some(exit);
        // While tracing, the exit takes the general path, which records it.
        let fast = if self.traced() {
            self.trace_exit(t, exception);
            None
        } else {
            self.fastpath_exit(t)
        };
        match fast {
            Some(super::fastpath::Fast::Direct(_)) => {
                // The VMM's slice, as the general way's reschedule would set it.
                self.arm_timer();
                true
            }
            Some(super::fastpath::Fast::Queued) => false,
            None => {
                self.call_fault_handler(t);
                false
            }
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// The guest of `t` executed WFI (trapped, `HCR_EL2.TWI`), or WFE (`wfe`, if
    /// trapped: it only yields). It goes on after the instruction at once if a virtual
    /// interrupt is pending for it (queued, or pending in a list register); otherwise it
    /// waits in the kernel, not in its VMM, until `VCpuInjectIrq` makes one pending.
    fn guest_wfi(&mut self, t: Ptr<Tcb>, wfe: bool) {
        let tc = t.get();
        tc.ctx.pc = tc.ctx.pc.wrapping_add(4);
        let queued = tc.vcpu.is_some_and(|v| !v.get().state.queue.is_empty());
        // Without an interface the kernel drives, nothing could ever wake it: it goes on.
        if wfe || queued || !self.platform.has_vgic() || self.platform.guest_irq_pending() || self.send_eoi(t) {
            return;
        }
        self.block(t, State::WaitingForInterrupt);
    }

    /// Send the oldest end of interrupt `t`'s guest has not told its VMM of as an
    /// `Exit::Eoi`, if there is one and `t` can send it now: running (here, or queued),
    /// waiting in WFI, or just answered (the reply to its last exit, `do_reply`), with no
    /// other exit or fault under way. True if sent (`t` then waits for the reply). With
    /// no fault handler there is nobody to tell: they are dropped.
    pub(super) fn send_eoi(&mut self, t: Ptr<Tcb>) -> bool {
        let Some(v) = t.get().vcpu else { return false };
        if v.get().eois.is_empty() {
            return false;
        }
        if !self.has_fault_handler(t) {
            v.get().eois = super::object::vcpu::IrqQueue::default();
            return false;
        }
        let tc = t.get();
        let state_ok = matches!(
            tc.state,
            State::Running | State::WaitingForInterrupt | State::BlockedOnReply
        );
        if !state_ok || tc.exit.is_some() || tc.fault.is_some() {
            return false;
        }
        let Some(irq) = v.get().eois.pop() else { return false };
        // Out of the guest timer list (a WFI wait ends here).
        self.vtimer_unlink(v);
        tc.exit = Some(Exit::Eoi {
            intid: u64::from(irq.intid),
        });
        self.call_fault_handler(t);
        true
    }
}

/// Write `exit` as the message `receiver` gets, with `badge`: as many of its words as
/// the receiver can take (four without an IPC buffer).
pub(super) fn deliver_exit(receiver: Ptr<Tcb>, badge: u64, exit: Exit) {
    let (kind, words, len) = exit.encode();
    let n = len.min(message::mr_capacity(receiver));
    for (i, w) in words.iter().enumerate().take(n) {
        message::set_mr(receiver, i, *w);
    }
    let r = &mut receiver.get().ctx;
    r.x[gaon_abi::syscall::CAP_REG] = badge;
    r.x[INFO_REG] = MsgInfo::new(kind as u64, n, 0).0;
}
