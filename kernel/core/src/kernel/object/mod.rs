//! Invocations: a Call on a capability to a kernel object. Each object's module decodes
//! its invocations into a plan (`decode_*`), which checks every argument and capability
//! and changes nothing, and carries the plan out (`perform_*`), which cannot fail. So a
//! failed invocation changes nothing (a host proptest compares the whole state before
//! and after every failed invocation: `tests/unchanged.rs`). The long operations
//! (retype, delete, revoke) may stop at a preemption point in `perform`; their progress
//! is kept in the objects and the restarted syscall carries on.
//!
//! Each object module owns the object's layout and invariants too: [`tcb`],
//! [`endpoint`], [`notification`], [`reply`], [`sched_context`], and the ones whose
//! state is capabilities and tables: [`untyped`], [`cnode`], [`vspace`] (frames, page
//! tables, VSpaces, VMID pools), [`irq`], [`debug`].

pub mod cnode;
pub mod debug;
pub mod endpoint;
pub mod irq;
pub mod notification;
pub mod reply;
pub mod sched_context;
pub mod tcb;
pub mod untyped;
pub mod vspace;

use gaon_abi::{Error, Label, MsgInfo, ObjType};

use super::delete::Preempted;
use super::{Kernel, Platform};
use crate::cap::Cap;
use crate::obj::Ptr;
use endpoint::Endpoint;
use notification::Notification;
use reply::Reply;
use sched_context::SchedContext;
use tcb::Tcb;

/// The invoker's message registers, bounded by the length it sent.
pub(super) struct Args {
    t: Ptr<Tcb>,
    len: usize,
}

impl Args {
    /// Message register `i`, or `TruncatedMessage` if the invoker sent fewer.
    pub(super) fn get<P: Platform>(&self, i: usize) -> Result<u64, Error> {
        if i < self.len {
            Ok(Kernel::<P>::get_mr(self.t, i))
        } else {
            Err(Error::TruncatedMessage)
        }
    }
}

/// A decoded invocation: everything checked, ready to perform.
#[derive(Clone, Copy, Debug)]
enum Plan {
    Untyped(untyped::Op),
    CNode(cnode::Op),
    Tcb(Ptr<Tcb>, tcb::Op),
    Frame(vspace::FrameOp),
    PageTable(vspace::PageTableOp),
    VSpace(vspace::VSpaceOp),
    VmidPool(vspace::VmidPoolOp),
    IrqControl(irq::ControlOp),
    IrqHandler(u32, irq::HandlerOp),
    SchedControl(sched_context::ControlOp),
    SchedContext(Ptr<SchedContext>, sched_context::Op),
    Debug(debug::Op),
}

impl<P: Platform> Kernel<P> {
    /// Perform the invocation the current thread `t` asked for on `cap` (in slot `s`).
    pub(super) fn invoke(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap) {
        let info = MsgInfo(t.get().ctx.x[gaon_abi::syscall::INFO_REG]);
        let a = Args {
            t,
            len: info.length().min(Self::mr_capacity(t)),
        };
        let plan = Label::from_raw(info.label())
            .ok_or(Error::UnknownInvocation)
            .and_then(|label| self.decode(t, s, cap, label, &a));
        let result = match plan {
            Err(e) => Err(e),
            Ok(plan) => {
                let Ok(n) = self.perform(t, s, plan, &a) else {
                    // Preempted: an interrupt is pending. The invoker runs the same
                    // syscall again (its registers are untouched), which carries on
                    // from the progress recorded in the objects.
                    t.get().ctx.pc -= 4;
                    return;
                };
                Ok(n)
            }
        };
        // A delete or revoke may have destroyed the invoker itself (its last Tcb cap was
        // in the slot, or in a CNode that died): destroying the running thread clears
        // `current`, and a dead thread gets no reply.
        if self.current == t.addr() {
            Self::reply_kernel(t, result);
        }
    }

    /// Check an invocation of `cap` (in slot `s`) with `label` and make its plan.
    /// Changes nothing.
    fn decode(&self, t: Ptr<Tcb>, s: usize, cap: Cap, label: Label, a: &Args) -> Result<Plan, Error> {
        Ok(match cap.ty() {
            Some(ObjType::Untyped) => Plan::Untyped(self.decode_untyped(t, s, cap, label, a)?),
            Some(ObjType::CNode) => Plan::CNode(self.decode_cnode(t, cap, label, a)?),
            Some(ObjType::Tcb) => {
                let target = cap.tcb();
                Plan::Tcb(target, self.decode_tcb(t, target, label, a)?)
            }
            Some(ObjType::Frame) => Plan::Frame(self.decode_frame(t, cap, label, a)?),
            Some(ObjType::PageTable) => Plan::PageTable(self.decode_page_table(t, cap, label, a)?),
            Some(ObjType::VSpace) => Plan::VSpace(Self::decode_vspace(cap, label)?),
            Some(ObjType::VmidPool) => Plan::VmidPool(self.decode_vmid_pool(t, s, label, a)?),
            Some(ObjType::IrqControl) => Plan::IrqControl(self.decode_irq_control(t, label, a)?),
            Some(ObjType::IrqHandler) => {
                let irq = cap.irq();
                Plan::IrqHandler(irq, self.decode_irq_handler(t, irq, label, a)?)
            }
            Some(ObjType::SchedControl) => Plan::SchedControl(self.decode_sched_control(t, label, a)?),
            Some(ObjType::SchedContext) => {
                let sc = cap.sched_context();
                Plan::SchedContext(sc, self.decode_sched_context(t, sc, label, a)?)
            }
            Some(ObjType::Debug) => Plan::Debug(self.decode_debug(t, label, a)?),
            _ => return Err(Error::UnknownInvocation),
        })
    }

    /// Carry out a decoded invocation; returns the length of the reply. Only the long
    /// operations stop, at a preemption point.
    fn perform(&mut self, t: Ptr<Tcb>, s: usize, plan: Plan, a: &Args) -> Result<usize, Preempted> {
        Ok(match plan {
            Plan::Untyped(op) => return self.perform_untyped(s, op),
            Plan::CNode(op) => return self.perform_cnode(t, op),
            Plan::Tcb(target, op) => self.perform_tcb(t, target, op, a),
            Plan::Frame(op) => self.perform_frame(t, s, op),
            Plan::PageTable(op) => self.perform_page_table(s, op),
            Plan::VSpace(op) => Self::perform_vspace(t, op),
            Plan::VmidPool(op) => self.perform_vmid_pool(s, op),
            Plan::IrqControl(op) => self.perform_irq_control(s, op),
            Plan::IrqHandler(irq, op) => self.perform_irq_handler(irq, op),
            Plan::SchedControl(op) => self.perform_sched_control(op),
            Plan::SchedContext(sc, op) => self.perform_sched_context(t, sc, op),
            Plan::Debug(op) => self.perform_debug(op),
        })
    }
}

/// Write a fresh object of type `ty` at `addr` over any memory (boot).
pub(super) fn create_object(ty: ObjType, addr: usize, bits: u8) {
    crate::obj::zero(addr, 1 << bits);
    init_object(ty, addr);
}

/// Write a fresh object of type `ty` at `addr`. CNodes, tables and frames are zeroed
/// memory (zero is an empty CNode, an empty table, a clean frame) and need nothing more;
/// the small objects are written whole.
pub(super) fn init_object(ty: ObjType, addr: usize) {
    match ty {
        ObjType::Tcb => Ptr::<Tcb>::new(addr).init(Tcb::new()),
        ObjType::Endpoint => Ptr::<Endpoint>::new(addr).init(Endpoint::default()),
        ObjType::Notification => Ptr::<Notification>::new(addr).init(Notification::default()),
        ObjType::Reply => Ptr::<Reply>::new(addr).init(Reply::default()),
        ObjType::SchedContext => Ptr::<SchedContext>::new(addr).init(SchedContext::default()),
        ObjType::CNode
        | ObjType::Frame
        | ObjType::PageTable
        | ObjType::VSpace
        | ObjType::Untyped
        | ObjType::IrqControl
        | ObjType::IrqHandler
        | ObjType::SchedControl
        | ObjType::Debug
        | ObjType::VmidPool => {}
    }
}
