//! The guests' virtual timer (CNTV): each VCpu has its own (its `CntvCtlEl0`,
//! `CntvCvalEl0` and `Cntvoff` registers, switched with the rest of its EL1 state), and
//! the kernel raises its interrupt in the guest itself, as KVM does:
//!
//! - When the timer of the guest whose state is live in a CPU fires (the board's
//!   `timer.guest_irq`, a private line the kernel keeps), the kernel masks the line
//!   there and makes the same virtual INTID pending in the guest, asking to hear of its
//!   deactivation ([`VIrq::notify_eoi`]); a guest waiting in WFI goes on.
//! - The guest's deactivation (a maintenance interrupt, [`Kernel::guest_eoi`]) unmasks
//!   the line: a timer still due fires again, as a level-triggered line does.
//! - While the interrupt is with the guest ([`VTimer::masked`]), every CPU that loads
//!   the guest's state masks the line ([`Kernel::guest_loaded`]).
//! - A guest waiting in WFI whose state left every CPU (another guest took its CPU, the
//!   VMM read its registers, it moved) has no hardware timer any more: the kernel keeps
//!   it in a list of guest timers of the core that saved it, sorted by deadline, and
//!   its kernel timer wakes it ([`Kernel::guest_timers_due`]). Loading the state again
//!   takes it out: the hardware timer is back.
//!
//! The VMM tells the kernel whether the guest has the virtual PPI enabled and at which
//! priority (`VCpuSetVppi`); one that fires while disabled is latched until enabled.

use gaon_abi::vcpu::VCpuReg;

use super::object::tcb::{State, Tcb};
use super::object::vcpu::{VCpu, VIrq};
use super::{Kernel, Lazy, MAX_CORES, Platform};
use crate::obj::Ptr;

/// `CNTV_CTL_EL0` bits: the timer is enabled, its interrupt masked.
const CTL_ENABLE: u64 = 1 << 0;
const CTL_IMASK: u64 = 1 << 1;

impl<P: Platform> Kernel<P> {
    /// The guests' virtual timer line fired on this core: the timer of the guest whose
    /// state is live here is due. The line is masked here until the guest deactivates
    /// the interrupt (or, with no such guest, until the next guest state is loaded).
    pub fn handle_guest_timer(&mut self) {
        // Whoever was running is only interrupted; a guest woken from WFI may outrank it.
        let prev = self.core.current;
        self.platform.set_guest_timer_masked(true);
        if let Some(v) = self.core.lazy_owners[Lazy::Guest as usize].and_then(|t| t.get().vcpu)
            && !v.get().state.vtimer.masked
        {
            v.get().state.vtimer.masked = true;
            self.vtimer_raise(v);
        }
        self.reschedule(prev);
    }

    /// The guest whose state is live on this core deactivated virtual interrupt
    /// `intid`, which the kernel asked to hear of (the arch layer's maintenance
    /// interrupt). For the virtual timer: its line is unmasked. For a level-triggered
    /// interrupt of the VMM's: the VMM is told with an `Eoi` exit, at once if the guest
    /// runs (or waits in WFI), else when its current exit is answered
    /// (`kernel/guest.rs`).
    pub fn guest_eoi(&mut self, intid: u32) {
        let Some(t) = self.core.lazy_owners[Lazy::Guest as usize] else {
            return;
        };
        let Some(v) = t.get().vcpu else { return };
        if Some(intid) != self.platform.guest_timer_irq() {
            let irq = VIrq {
                intid,
                priority: 0,
                notify_eoi: true,
            };
            // At most one per list register is outstanding: the queue has room.
            let _ = v.get().eois.push(irq);
            let prev = self.core.current;
            if self.send_eoi(t) {
                self.reschedule(prev);
            }
            return;
        }
        let vt = &mut v.get().state.vtimer;
        vt.masked = false;
        vt.latched = false;
        self.platform.set_guest_timer_masked(false);
    }

    /// The arch layer found, as it saved `t`'s guest state to load another guest's, that
    /// `t` had deactivated `intid`, which the kernel asked to hear of, and the
    /// maintenance interrupt had not been taken yet. As [`Kernel::guest_eoi`], except
    /// that nothing is sent from here (the scheduler has chosen): a level-triggered end
    /// waits in the VCpu's list, and a guest waiting in WFI is woken, to send it from
    /// its next WFI; the timer's line is unmasked by the next CPU that loads the guest.
    pub fn guest_eoi_saved(&mut self, t: Ptr<Tcb>, intid: u32) {
        let Some(v) = t.get().vcpu else { return };
        if Some(intid) == self.platform.guest_timer_irq() {
            let vt = &mut v.get().state.vtimer;
            vt.masked = false;
            vt.latched = false;
            return;
        }
        let irq = VIrq {
            intid,
            priority: 0,
            notify_eoi: true,
        };
        let _ = v.get().eois.push(irq);
        self.wake_guest(v);
    }

    /// The arch layer loaded `t`'s guest state into this core: its hardware timer is
    /// back (out of the guest timer list), and the line is masked here exactly while
    /// the guest has the timer's interrupt.
    pub fn guest_loaded(&mut self, t: Ptr<Tcb>) {
        if let Some(v) = t.get().vcpu {
            self.vtimer_unlink(v);
            self.platform.set_guest_timer_masked(v.get().state.vtimer.masked);
        }
    }

    /// The arch layer saved `t`'s guest state out of this core (another guest's took
    /// its place): a guest waiting in WFI keeps its timer in the kernel.
    pub fn guest_saved(&mut self, t: Ptr<Tcb>) {
        if let Some(v) = t.get().vcpu {
            self.vtimer_rearm(v);
        }
    }

    /// Make the virtual timer's interrupt pending in `v` (or latch it while the guest
    /// has it disabled), and wake the guest if it waits in WFI. `v`'s state is saved,
    /// or live on this core (where its next resume moves the queue into list
    /// registers).
    pub(in crate::kernel) fn vtimer_raise(&mut self, v: Ptr<VCpu>) {
        let Some(intid) = self.platform.guest_timer_irq() else {
            return;
        };
        let vt = &mut v.get().state.vtimer;
        vt.masked = true;
        let irq = VIrq {
            intid,
            priority: vt.priority,
            notify_eoi: true,
        };
        // Disabled, without an interface to raise it in, or no room in the queue (the
        // VMM filled it): it waits until the VMM enables it (or acknowledges it).
        vt.latched = !vt.enabled || !self.platform.has_vgic() || !v.get().state.queue.push(irq);
        if !v.get().state.vtimer.latched {
            self.wake_guest(v);
        }
    }

    /// Put `v` in (or take it out of) the guest timer list, as its saved state says: in
    /// while its thread waits in WFI with its timer armed and not yet raised. Called
    /// when the state was saved or changed; never while it is live in a CPU (the
    /// hardware timer does the work then).
    pub(in crate::kernel) fn vtimer_rearm(&mut self, v: Ptr<VCpu>) {
        self.vtimer_unlink(v);
        let vc = v.get();
        let Some(t) = vc.tcb else { return };
        let waiting = t.get().state == State::WaitingForInterrupt;
        let regs = &vc.state.regs;
        let ctl = regs[VCpuReg::CntvCtlEl0 as usize];
        if !waiting || ctl & (CTL_ENABLE | CTL_IMASK) != CTL_ENABLE || vc.state.vtimer.masked {
            return;
        }
        // The virtual count is the physical count less the offset.
        let at = regs[VCpuReg::CntvCvalEl0 as usize].saturating_add(regs[VCpuReg::Cntvoff as usize]);
        self.vtimer_link(v, at);
    }

    /// Insert `v` (in no list) into this core's guest timer list at `at`, and make
    /// sure the kernel timer fires by then.
    fn vtimer_link(&mut self, v: Ptr<VCpu>, at: u64) {
        let here = self.here();
        let core = &mut self.core;
        let mut prev: Option<Ptr<VCpu>> = None;
        let mut next = core.guest_timers;
        while let Some(n) = next
            && n.get().timer_at <= at
        {
            prev = Some(n);
            next = n.get().timer_next;
        }
        let vc = v.get();
        vc.timer_at = at;
        vc.timer_next = next;
        vc.timer_core = Some(here as u8);
        match prev {
            Some(p) => p.get().timer_next = Some(v),
            None => core.guest_timers = Some(v),
        }
        if at < core.timer_deadline {
            core.timer_deadline = at;
            self.platform.set_timer(Some(at));
        }
    }

    /// Take `v` out of the guest timer list it is in, if any.
    pub(in crate::kernel) fn vtimer_unlink(&mut self, v: Ptr<VCpu>) {
        let Some(c) = v.get().timer_core.take() else { return };
        let core = self.state_mut(usize::from(c) % MAX_CORES);
        let next = v.get().timer_next.take();
        if core.guest_timers == Some(v) {
            core.guest_timers = next;
            return;
        }
        let mut cur = core.guest_timers;
        while let Some(n) = cur {
            if n.get().timer_next == Some(v) {
                n.get().timer_next = next;
                return;
            }
            cur = n.get().timer_next;
        }
    }

    /// The kernel timer fired at `now`: raise the timers of the guests in this core's
    /// list that are due, and make sure the timer fires for the next one.
    pub(in crate::kernel) fn guest_timers_due(&mut self, now: u64) {
        while let Some(v) = self.core.guest_timers
            && v.get().timer_at <= now
        {
            self.vtimer_unlink(v);
            if !v.get().state.vtimer.masked {
                self.vtimer_raise(v);
            }
        }
        if let Some(v) = self.core.guest_timers {
            let at = v.get().timer_at;
            if at < self.core.timer_deadline {
                self.core.timer_deadline = at;
                self.platform.set_timer(Some(at));
            }
        }
    }
}
