//! Untyped memory: the one invocation, Retype, carves objects out of it. An untyped's
//! state is its capability's words: the watermark (bytes handed out) and the progress
//! of zeroing (see `Cap::watermark` and `Cap::zeroed_to`).

use gaon_abi::invocation::UntypedRetypeArgs;
use gaon_abi::object::SLOT_BITS;
use gaon_abi::{Error, Label, ObjType};

use super::Args;
use crate::cap::{Cap, FLAG_DEVICE};
use crate::cdt;
use crate::kernel::cspace::{Kslots, slot};
use crate::kernel::delete::Preempted;
use crate::kernel::object::tcb::Tcb;
use crate::kernel::{Kernel, MAX_RETYPE_COUNT, Platform, RETYPE_ZERO_CHUNK};
use crate::obj::{self, Ptr};

/// A checked Retype.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) struct Op {
    ty: ObjType,
    obj_bits: u8,
    /// The first destination slot (the rest follow it).
    dst: usize,
    count: u64,
    /// Where the first object goes and where the last ends (offsets in the untyped).
    start: usize,
    end: usize,
    /// The watermark the new objects go above (0 if the untyped has no children).
    watermark: usize,
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_untyped(&self, t: Ptr<Tcb>, s: usize, cap: Cap, label: Label, a: &Args) -> Result<Op, Error> {
        if label != Label::UntypedRetype {
            return Err(Error::UnknownInvocation);
        }
        let args: UntypedRetypeArgs = a.decode()?;
        let (ty, cn_cptr, offset, count) = (args.object.ty, args.dest, args.first, args.count);
        let obj_bits = args.object.object_bits().ok_or(Error::InvalidArgument)?;
        if cap.has(FLAG_DEVICE) && !matches!(ty, ObjType::Frame | ObjType::Untyped) {
            return Err(Error::IllegalOperation);
        }
        if count == 0 || count > MAX_RETYPE_COUNT {
            return Err(Error::RangeError);
        }
        if obj_bits > cap.size_bits {
            return Err(Error::RangeError);
        }
        let (_, cn) = self.lookup_typed(t, cn_cptr, ObjType::CNode)?;
        let radix = u32::from(cn.size_bits - SLOT_BITS);
        if offset >= 1 << radix || offset + count > 1 << radix {
            return Err(Error::RangeError);
        }
        let dst = cn.obj + (offset as usize) * core::mem::size_of::<cdt::Slot>();
        if (0..count).any(|i| !slot(nth(dst, i)).cap.is_null()) {
            return Err(Error::DeleteFirst);
        }
        let watermark = if cdt::has_children(&mut Kslots, s) {
            cap.watermark()
        } else {
            0
        };
        let start = watermark.next_multiple_of(1 << obj_bits);
        let end = (count as usize)
            .checked_mul(1 << obj_bits)
            .and_then(|b| b.checked_add(start))
            .filter(|&e| e <= 1 << cap.size_bits)
            .ok_or(Error::NotEnoughMemory)?;
        Ok(Op {
            ty,
            obj_bits,
            dst,
            count,
            start,
            end,
            watermark,
        })
    }

    /// Zero the objects' memory first, in chunks, with a preemption point after each:
    /// the progress ("zeroed up to") is kept in the untyped cap, so a restarted retype
    /// carries on. All its children gone (a non-zero watermark, no children) means its
    /// memory was freed and may hold anything: the progress starts again from 0, once.
    #[allow(unsafe_code, reason = "retype zeroes the range of its untyped it is about to use")]
    pub(super) fn perform_untyped(&mut self, s: usize, op: Op) -> Result<usize, Preempted> {
        let cap = slot(s).cap;
        if op.watermark == 0 && cap.watermark() != 0 {
            let u = &mut slot(s).cap;
            u.set_watermark(0);
            u.set_zeroed_to(0);
        }
        // Objects that are memory to their user, or tables, are zero when made; the small
        // kernel objects are written whole by `init_object` and need no zeroing.
        let zeroed = matches!(
            op.ty,
            ObjType::CNode | ObjType::Frame | ObjType::PageTable | ObjType::VSpace
        );
        let device = cap.has(FLAG_DEVICE);
        if !device && zeroed {
            let mut z = op.watermark.max(slot(s).cap.zeroed_to());
            while z < op.end {
                let chunk_end = op.end.min((z + RETYPE_ZERO_CHUNK) & !(RETYPE_ZERO_CHUNK - 1));
                // SAFETY: `z..chunk_end` lies in this untyped's memory past its
                // watermark (below `op.end`, checked against its size): no object lives
                // there (they were all deleted, or were never made) and nothing
                // references it; it is normal memory (not device).
                unsafe { obj::zero(cap.obj + z, chunk_end - z) };
                z = chunk_end;
                slot(s).cap.set_zeroed_to(z);
                if z < op.end && self.platform.irq_pending() {
                    return Err(Preempted);
                }
            }
        }
        slot(s).cap.set_watermark(op.end);
        for i in 0..op.count {
            let addr = cap.obj + op.start + ((i as usize) << op.obj_bits);
            let mut c = Cap::new(op.ty, addr, op.obj_bits);
            if device {
                c.flags |= FLAG_DEVICE;
            } else {
                super::init_object(op.ty, addr);
                if op.ty == ObjType::Tcb {
                    self.trace_created(c.tcb());
                }
            }
            let r = cdt::insert_retyped(&mut Kslots, s, nth(op.dst, i), c);
            debug_assert!(r.is_ok(), "decode checked the slots are empty");
        }
        Ok(0)
    }
}

/// The `i`th slot after `first`.
const fn nth(first: usize, i: u64) -> usize {
    first + (i as usize) * core::mem::size_of::<cdt::Slot>()
}
