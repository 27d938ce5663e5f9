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
pub mod trace_control;
pub mod untyped;
pub mod vcpu;
pub mod vspace;

use crate::kernel::message;
use gaon_abi::layout::Layout;
use gaon_abi::{Error, Label, MsgInfo, ObjType};

use super::cspace::slot;
use super::delete::Preempted;
use super::{Kernel, Platform};
use crate::cap::Cap;
use crate::obj::Ptr;
use endpoint::Endpoint;
use notification::Notification;
use reply::Reply;
use sched_context::SchedContext;
use tcb::Tcb;
use vcpu::VCpu;

/// The invoker's message registers, bounded by the length it sent. Decoders read them
/// through the invocation's layout in `gaon_abi::invocation` (the one source of the
/// ABI): `TruncatedMessage` if the message is shorter than the layout, else the first
/// malformed field's error.
pub(super) struct Args {
    t: Ptr<Tcb>,
    len: usize,
}

impl Args {
    /// The arguments as the invocation's layout `L`.
    #[inline]
    pub(super) fn decode<L: Layout>(&self) -> Result<L, Error> {
        L::decode(self.len, |i| message::get_mr(self.t, i))
    }

    /// Word `i` of a layout's variable tail (the decoder checked it is there).
    #[inline]
    pub(super) fn word(&self, i: usize) -> u64 {
        message::get_mr(self.t, i)
    }

    /// The length of the message.
    #[inline]
    pub(super) const fn len(&self) -> usize {
        self.len
    }
}

/// Reply to the invoker `t` with `reply`'s words; returns the reply's length.
pub(super) fn reply_with<L: Layout>(t: Ptr<Tcb>, reply: &L) -> usize {
    let words = reply.encode();
    for (i, w) in words.as_ref().iter().enumerate() {
        message::set_mr(t, i, *w);
    }
    L::LEN
}

impl<P: Platform> Kernel<P> {
    /// Perform the invocation the current thread `t` asked for on the capability in
    /// slot `s` (looked up: not empty, not a zombie). Not inlined, and with register
    /// arguments only, so the IPC syscall that reaches it (`sys_send`) stays small and
    /// ends in a tail call.
    #[inline(never)]
    pub(super) fn invoke(&mut self, t: Ptr<Tcb>, s: usize) {
        let cap = slot(s).cap;
        let info = MsgInfo(t.get().ctx.x[gaon_abi::syscall::INFO_REG]);
        // A message in registers only (the common case) needs no look at the IPC buffer.
        let len = info.length();
        let a = Args {
            t,
            len: if len <= gaon_abi::syscall::MSG_REGISTERS {
                len
            } else {
                len.min(message::mr_capacity(t))
            },
        };
        self.invoker_destroyed = false;
        let result = match Label::from_raw(info.label()) {
            None => Err(Error::UnknownInvocation),
            Some(label) => match self.decode_perform(t, s, cap, label, &a) {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(Preempted)) => {
                    // An interrupt is pending: the invoker runs the same syscall again
                    // (its registers are untouched), which carries on from the progress
                    // recorded in the objects.
                    t.get().ctx.pc -= 4;
                    return;
                }
                Err(e) => Err(e),
            },
        };
        // A delete or revoke may have destroyed the invoker itself (its last Tcb cap was
        // in the slot, or in a CNode that died): a dead thread gets no reply. (One that
        // moved itself to another core does: it is no longer current here, but alive.)
        if !self.invoker_destroyed {
            message::reply_kernel(t, result);
        }
    }

    /// Decode the invocation of `cap` (in slot `s`) with `label`, which checks
    /// everything and changes nothing, then perform it, which cannot fail (only the long
    /// operations stop, at a preemption point). Returns the length of the reply. Each
    /// object type's plan goes straight from its decoder to its performer.
    fn decode_perform(
        &mut self,
        t: Ptr<Tcb>,
        s: usize,
        cap: Cap,
        label: Label,
        a: &Args,
    ) -> Result<Result<usize, Preempted>, Error> {
        Ok(match cap.ty() {
            Some(ObjType::Untyped) => {
                let op = self.decode_untyped(t, s, cap, label, a)?;
                self.perform_untyped(s, op)
            }
            Some(ObjType::CNode) => {
                let op = self.decode_cnode(t, cap, label, a)?;
                self.perform_cnode(t, op)
            }
            Some(ObjType::Tcb) => {
                let target = cap.tcb();
                let op = self.decode_tcb(t, target, label, a)?;
                Ok(self.perform_tcb(t, target, op, a))
            }
            Some(ObjType::Frame) => {
                let op = self.decode_frame(t, cap, label, a)?;
                Ok(self.perform_frame(t, s, &cap, op))
            }
            Some(ObjType::PageTable) => {
                let op = self.decode_page_table(t, cap, label, a)?;
                Ok(self.perform_page_table(s, &cap, op))
            }
            Some(ObjType::VSpace) => {
                let op = Self::decode_vspace(cap, label)?;
                Ok(Self::perform_vspace(t, op))
            }
            Some(ObjType::VmidPool) => {
                let op = self.decode_vmid_pool(t, s, label, a)?;
                Ok(self.perform_vmid_pool(s, op))
            }
            Some(ObjType::IrqControl) => {
                let op = self.decode_irq_control(t, label, a)?;
                Ok(self.perform_irq_control(s, op))
            }
            Some(ObjType::IrqHandler) => {
                let irq = cap.irq();
                let op = self.decode_irq_handler(t, irq, label, a)?;
                Ok(self.perform_irq_handler(irq, op))
            }
            Some(ObjType::SchedControl) => {
                let op = self.decode_sched_control(t, cap.badge, label, a)?;
                Ok(self.perform_sched_control(op))
            }
            Some(ObjType::SchedContext) => {
                let sc = cap.sched_context();
                let op = self.decode_sched_context(t, sc, label, a)?;
                Ok(self.perform_sched_context(t, sc, op))
            }
            Some(ObjType::Debug) => {
                let op = self.decode_debug(t, label, a)?;
                Ok(self.perform_debug(op))
            }
            Some(ObjType::TraceControl) => {
                let op = self.decode_trace_control(label, a)?;
                Ok(self.perform_trace_control(t, op))
            }
            Some(ObjType::VCpu) => {
                let v = cap.vcpu();
                let op = self.decode_vcpu(t, v, label, a)?;
                Ok(self.perform_vcpu(t, v, op, a))
            }
            _ => return Err(Error::UnknownInvocation),
        })
    }
}

/// Write a fresh object of type `ty` at `addr` over any memory (boot): `addr` is a
/// boot allocation of `2^bits` bytes aligned to its size, which the caller owns.
#[allow(unsafe_code, reason = "zeroes a boot allocation it is given")]
pub(super) fn create_object(ty: ObjType, addr: usize, bits: u8) {
    // SAFETY: the caller's boot allocation: mapped RAM nothing references yet.
    unsafe { crate::obj::zero(addr, 1 << bits) };
    init_object(ty, addr);
}

/// Write a fresh object of type `ty` at `addr`. CNodes, tables and frames are zeroed
/// memory (zero is an empty CNode, an empty table, a clean frame) and need nothing more;
/// the small objects are written whole.
///
/// `addr` is memory just carved for the object (a retype's range or a boot
/// allocation): non-zero, aligned to the object's size, and referenced by nothing but
/// the cap about to name it.
pub(super) fn init_object(ty: ObjType, addr: usize) {
    match ty {
        // A new Tcb is zeroed memory (host test `a_new_tcb_is_zeroed_memory`): cheaper
        // than writing the 1.4 KiB `Tcb::new()`, which the compiler builds and copies.
        ObjType::Tcb => zero_fresh(addr, core::mem::size_of::<Tcb>()),
        ObjType::Endpoint => write_fresh(addr, Endpoint::default()),
        ObjType::Notification => write_fresh(addr, Notification::default()),
        ObjType::Reply => write_fresh(addr, Reply::default()),
        ObjType::SchedContext => write_fresh(addr, SchedContext::default()),
        ObjType::VCpu => write_fresh(addr, VCpu::default()),
        ObjType::CNode
        | ObjType::Frame
        | ObjType::PageTable
        | ObjType::VSpace
        | ObjType::Untyped
        | ObjType::IrqControl
        | ObjType::IrqHandler
        | ObjType::SchedControl
        | ObjType::Debug
        | ObjType::TraceControl
        | ObjType::VmidPool => {}
    }
}

/// Write `value` as the new object at `addr` (see [`init_object`]'s contract).
#[allow(
    unsafe_code,
    reason = "object creation vouches for the memory it writes the object into"
)]
fn write_fresh<T>(addr: usize, value: T) {
    // SAFETY: by `init_object`'s contract `addr` is fresh memory its creator owns (a
    // retype's range or a boot allocation), non-zero and aligned to the object's size;
    // `init` writes the object before anything reads it.
    unsafe { Ptr::<T>::new(addr) }.init(value);
}

/// Zero `len` bytes of fresh object memory at `addr` (as `write_fresh`'s contract).
#[allow(unsafe_code, reason = "object creation vouches for the memory it zeroes")]
fn zero_fresh(addr: usize, len: usize) {
    // SAFETY: by `init_object`'s contract `addr..addr + len` is fresh memory its creator
    // owns, which nothing references yet.
    unsafe { crate::obj::zero(addr, len) };
}
