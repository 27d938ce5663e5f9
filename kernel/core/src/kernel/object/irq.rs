//! Interrupts: IrqControl hands out one IrqHandler capability per line; a handler
//! names the notification its line signals, acknowledges it, and (for the user timer
//! line) programs the timer. The kernel keeps one [`IrqLine`] per line.

use gaon_abi::invocation::{IrqControlGetArgs, IrqHandlerSetNotificationArgs, IrqHandlerSetTimerArgs};
use gaon_abi::trace::{Class, Event};
use gaon_abi::{Error, Label, ObjType, Rights};

use super::Args;
use super::notification::Notification;
use super::tcb::Tcb;
use crate::cap::Cap;
use crate::cdt;
use crate::kernel::cspace::{Kslots, cnode_slot, slot};
use crate::kernel::{Kernel, Platform, trace};
use crate::obj::Ptr;

/// State of one IRQ line.
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqLine {
    /// An IrqHandler capability for it exists.
    pub(in crate::kernel) claimed: bool,
    /// The notification it signals.
    pub(in crate::kernel) ntfn: Option<Ptr<Notification>>,
    /// The badge it signals with.
    pub(in crate::kernel) badge: u64,
}

impl IrqLine {
    /// A line nobody claimed.
    pub const FREE: Self = Self {
        claimed: false,
        ntfn: None,
        badge: 0,
    };
}

/// A checked IrqControl invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum ControlOp {
    /// Put a handler for `irq` into the empty slot `dst`.
    Get { irq: u32, dst: usize },
}

/// A checked IrqHandler invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum HandlerOp {
    /// Signal this notification with this badge (None: nothing; the line is masked).
    SetNotification(Option<(Ptr<Notification>, u64)>),
    Ack,
    Clear,
    /// Arm the user timer at this counter value, or disarm it.
    SetTimer(Option<u64>),
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_irq_control(&self, t: Ptr<Tcb>, label: Label, a: &Args) -> Result<ControlOp, Error> {
        if label != Label::IrqControlGet {
            return Err(Error::UnknownInvocation);
        }
        let IrqControlGetArgs { irq, dest: cn, index } = a.decode()?;
        let count = u64::from(self.platform.irq_count()).min(self.irqs.len() as u64);
        if irq >= count || self.platform.irq_reserved(irq as u32) {
            return Err(Error::RangeError);
        }
        if self.irqs[irq as usize].claimed {
            return Err(Error::RevokeFirst);
        }
        let (_, cncap) = self.lookup_typed(t, cn, ObjType::CNode)?;
        let dst = cnode_slot(&cncap, index).ok_or(Error::RangeError)?;
        if !slot(dst).cap.is_null() {
            return Err(Error::DeleteFirst);
        }
        Ok(ControlOp::Get { irq: irq as u32, dst })
    }

    pub(super) fn perform_irq_control(&mut self, s: usize, op: ControlOp) -> usize {
        let ControlOp::Get { irq, dst } = op;
        let r = cdt::insert_child(&mut Kslots, s, dst, Cap::new_irq_handler(irq));
        debug_assert!(r.is_ok(), "decode checked the slot is empty");
        self.irqs[irq as usize].claimed = true;
        0
    }

    pub(super) fn decode_irq_handler(&self, t: Ptr<Tcb>, irq: u32, label: Label, a: &Args) -> Result<HandlerOp, Error> {
        // The user timer is core 0's (its timer and its private interrupt line, whose
        // mask is banked per core): only a thread running there may drive it.
        if self.platform.user_timer_irq() == Some(irq)
            && self.here() != 0
            && Label::of(ObjType::IrqHandler).contains(&label)
        {
            return Err(Error::IllegalOperation);
        }
        match label {
            Label::IrqHandlerSetNotification => {
                let c = a.decode::<IrqHandlerSetNotificationArgs>()?.notification;
                Ok(HandlerOp::SetNotification(self.decode_signal_target(t, c)?))
            }
            Label::IrqHandlerAck => Ok(HandlerOp::Ack),
            Label::IrqHandlerClear => Ok(HandlerOp::Clear),
            Label::IrqHandlerSetTimer => {
                let IrqHandlerSetTimerArgs { compare, arm } = a.decode()?;
                if self.platform.user_timer_irq() != Some(irq) {
                    return Err(Error::IllegalOperation);
                }
                Ok(HandlerOp::SetTimer(arm.check()?.then_some(compare)))
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_irq_handler(&mut self, irq: u32, op: HandlerOp) -> usize {
        let line = &mut self.irqs[irq as usize];
        match op {
            HandlerOp::SetNotification(Some((n, badge))) => {
                line.ntfn = Some(n);
                line.badge = badge;
                self.platform.irq_set_enabled(irq, true);
            }
            HandlerOp::SetNotification(None) | HandlerOp::Clear => {
                line.ntfn = None;
                self.platform.irq_set_enabled(irq, false);
            }
            HandlerOp::Ack => {
                if line.ntfn.is_some() {
                    self.platform.irq_set_enabled(irq, true);
                }
            }
            HandlerOp::SetTimer(cval) => self.platform.set_user_timer(cval),
        }
        0
    }

    /// A device interrupt arrived (already acknowledged at the controller): mask the
    /// line until the handler acks it, and signal its notification.
    pub fn handle_irq(&mut self, irq: u32) {
        // Whoever was running is only interrupted; it resumes where it was.
        let prev = self.core.current;
        let traced = self.tracing(Class::IRQ);
        if traced {
            self.record(Event::IrqEntry, trace::tid(prev), u64::from(irq), 0);
        }
        self.platform.irq_set_enabled(irq, false);
        let line = self.irqs.get(irq as usize).copied().unwrap_or(IrqLine::FREE);
        if let Some(n) = line.ntfn {
            self.signal(n, line.badge);
        }
        if !line.claimed && self.platform.user_timer_irq() == Some(irq) {
            // The user timer fired with no handler (deleted from another core, which
            // could not disarm core 0's timer): disarmed here, on core 0, so it does not
            // fire again into a handler made later.
            self.platform.set_user_timer(None);
        }
        if traced {
            self.record(Event::IrqExit, trace::tid(prev), u64::from(irq), 0);
        }
        self.reschedule(prev);
    }
}

impl<P: Platform> Kernel<P> {
    /// The notification a capability given to the kernel to signal names (an IRQ
    /// line's, the log's): `None` for CPtr 0, else the notification (the cap needs
    /// `WRITE`) and the badge it is signalled with: the cap's own, or 1 if it has none,
    /// so the waiter sees a non-zero word.
    pub(super) fn decode_signal_target(
        &self,
        t: Ptr<Tcb>,
        cptr: u64,
    ) -> Result<Option<(Ptr<Notification>, u64)>, Error> {
        if cptr == 0 {
            return Ok(None);
        }
        let (_, nc) = self.lookup_typed(t, cptr, ObjType::Notification)?;
        if !nc.rights().contains(Rights::WRITE) {
            return Err(Error::NoRights);
        }
        Ok(Some((nc.notification(), if nc.badge == 0 { 1 } else { nc.badge })))
    }
}
