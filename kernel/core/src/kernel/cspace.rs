//! Capability spaces: resolving a CPtr through a thread's CNodes to a slot, seL4
//! style, the kernel's slot store for the derivation tree (`cdt`), and the rules for
//! what a copy of a capability is.

use gaon_abi::{Error, ObjType};

use super::object::tcb::{SLOT_CSPACE, Tcb};
use super::{Kernel, Platform};
use crate::cap::{Cap, FLAG_ZOMBIE};
use crate::cdt::{CdtError, Slot, SlotId, SlotStore};
use crate::obj::Ptr;

/// The kernel's slot store: slot ids are slot addresses.
pub(super) struct Kslots;
impl SlotStore for Kslots {
    fn slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        Some(slot(id))
    }
}

/// The slot at `addr`.
///
/// Slot addresses are only made from capabilities: a CNode cap's object plus an index
/// below its size (`resolve`, `resolve_one_level`, `cnode_slot`), a Tcb cap's object
/// plus a slot number (`tcb::slot_addr`), or links the derivation tree keeps between
/// such slots (it unlinks a slot before its container is deleted). The kernel keeps
/// that rule; this is where it is relied on.
#[allow(
    unsafe_code,
    reason = "slot addresses are vouched for by the caps they come from (crate::obj rule 1)"
)]
pub(super) fn slot(addr: usize) -> &'static mut Slot {
    // SAFETY: by the rule above, `addr` is a slot inside a live CNode or Tcb (named by
    // a cap, so live and never at 0) and aligned to `Slot`; the reference follows
    // `Ptr::get`'s rules 2 and 3.
    unsafe { Ptr::<Slot>::new(addr) }.get()
}

impl<P: Platform> Kernel<P> {
    /// Resolve `cptr` (all 64 bits) in thread `t`'s CSpace to a slot address.
    #[allow(
        clippy::unused_self,
        reason = "kernel state accessors take the kernel, so callers need not know which read no state"
    )]
    #[inline]
    pub(super) fn lookup_slot(&self, t: Ptr<Tcb>, cptr: u64) -> Result<usize, Error> {
        let root = &t.get().slots[SLOT_CSPACE].cap;
        match resolve_one_level(root, cptr) {
            Some(s) => Ok(s),
            None => resolve(*root, cptr),
        }
    }

    /// Resolve `cptr` to a non-empty slot and its capability.
    #[inline]
    pub(super) fn lookup_cap(&self, t: Ptr<Tcb>, cptr: u64) -> Result<(usize, Cap), Error> {
        let s = self.lookup_slot(t, cptr)?;
        let cap = slot(s).cap;
        // A zombie is a container half deleted by a preempted delete: only deleting
        // it again (which carries on) touches it.
        if cap.is_null() || cap.has(FLAG_ZOMBIE) {
            return Err(Error::FailedLookup);
        }
        Ok((s, cap))
    }

    /// Resolve `cptr` to a capability of type `ty`.
    pub(super) fn lookup_typed(&self, t: Ptr<Tcb>, cptr: u64, ty: ObjType) -> Result<(usize, Cap), Error> {
        let (s, cap) = self.lookup_cap(t, cptr)?;
        if cap.is(ty) {
            Ok((s, cap))
        } else {
            Err(Error::InvalidCapability)
        }
    }
}

/// The common case of [`resolve`], inlined on the IPC paths: a root CNode whose guard
/// and radix take all 64 bits (a guarded single-level CSpace, what every server has).
/// `None` means "take the general walk", not "not found".
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
pub(super) fn resolve_one_level(root: &Cap, cptr: u64) -> Option<usize> {
    // The guard's words are read before the type is known, in one condition with the
    // type check (the order the compiler makes the fewest instructions of: this is on
    // the IPC fastpath), so not through `Cap::guard`, which checks the type first.
    let radix = u32::from(root.size_bits.wrapping_sub(gaon_abi::object::SLOT_BITS));
    let guard_bits = u32::from(root.guard_bits);
    if !root.is(ObjType::CNode) || root.has(FLAG_ZOMBIE) || radix + guard_bits != 64 || guard_bits == 0 {
        return None;
    }
    // Here 0 <= radix <= 63: the shifts are in range and the guard is never empty.
    if cptr.wrapping_shr(radix) != root.badge {
        return None;
    }
    // The bits below the guard, by taking the guard away: the guard is equal to the top
    // bits (checked above), so this is `cptr & ((1 << radix) - 1)` in two instructions.
    let index = cptr ^ (root.badge << radix);
    Some(root.obj + (index as usize) * core::mem::size_of::<Slot>())
}

/// Resolve `cptr` through a CSpace rooted at `root`, seL4-style: each CNode consumes
/// its guard and radix bits from the top of the remaining bits; the walk stops at a
/// slot whose cap is not a CNode, or when all 64 bits are used.
pub fn resolve(root: Cap, cptr: u64) -> Result<usize, Error> {
    let mut node = root;
    let mut left: u32 = 64;
    loop {
        if !node.is(ObjType::CNode) || node.has(FLAG_ZOMBIE) {
            return Err(Error::FailedLookup);
        }
        let radix = u32::from(node.size_bits - gaon_abi::object::SLOT_BITS);
        let (guard, guard_bits) = node.guard();
        let guard_bits = u32::from(guard_bits);
        let level = radix + guard_bits;
        if level == 0 || level > left {
            return Err(Error::FailedLookup);
        }
        if guard_bits > 0 {
            let g = (cptr >> (left - guard_bits)) & mask(guard_bits);
            if g != guard {
                return Err(Error::FailedLookup);
            }
        }
        let index = (cptr >> (left - level)) & mask(radix);
        let s = node.obj + (index as usize) * core::mem::size_of::<Slot>();
        left -= level;
        let cap = slot(s).cap;
        if left == 0 || !cap.is(ObjType::CNode) {
            return Ok(s);
        }
        node = cap;
    }
}

const fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1 << bits) - 1 }
}

/// The slot at `index` of the CNode `cn`, if in range.
pub(super) fn cnode_slot(cn: &Cap, index: u64) -> Option<usize> {
    let radix = u32::from(cn.size_bits - gaon_abi::object::SLOT_BITS);
    (index < (1u64 << radix)).then(|| cn.obj + (index as usize) * core::mem::size_of::<Slot>())
}

/// The capability a Copy (or cap transfer) of `cap` creates: untyped and page-table
/// caps cannot be copied (their state lives in the cap), a frame copy starts unmapped.
pub(super) fn derived_copy(cap: Cap) -> Result<Cap, Error> {
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

impl From<CdtError> for Error {
    fn from(e: CdtError) -> Self {
        match e {
            CdtError::BadSlot => Error::RangeError,
            CdtError::Occupied => Error::DeleteFirst,
            CdtError::Empty => Error::FailedLookup,
            CdtError::NotDerived => Error::InvalidArgument,
        }
    }
}
