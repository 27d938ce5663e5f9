//! The capability derivation tree, kept seL4-style as a doubly linked list of slots in
//! derivation order: a capability's descendants follow it, so revoke deletes the run of
//! slots after it for which it is the parent.
//!
//! The tree is generic over where slots live ([`SlotStore`]): the kernel's slots are in
//! CNodes and Tcbs in physical memory (a slot id is the slot's address), the host tests
//! use arrays (a slot id is an index).

use crate::cap::{Cap, FLAG_ZOMBIE, ObjType};

/// Names a slot.
pub type SlotId = usize;

/// Derivation links and flags of one slot. Links store `id + 1`, so 0 means "none".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mdb {
    prev: usize,
    next: usize,
    /// This capability can be a parent (originals, untyped, newly badged).
    pub revocable: bool,
    /// This capability is the first with its badge (minted from an unbadged original).
    pub first_badged: bool,
}

const fn enc(id: Option<SlotId>) -> usize {
    match id {
        Some(i) => i.wrapping_add(1),
        None => 0,
    }
}
const fn dec(raw: usize) -> Option<SlotId> {
    if raw == 0 { None } else { Some(raw.wrapping_sub(1)) }
}

impl Mdb {
    /// Links and flags.
    pub const fn new(prev: Option<SlotId>, next: Option<SlotId>, revocable: bool, first_badged: bool) -> Self {
        Self {
            prev: enc(prev),
            next: enc(next),
            revocable,
            first_badged,
        }
    }
    /// The slot before this one in derivation order.
    pub const fn prev(&self) -> Option<SlotId> {
        dec(self.prev)
    }
    /// The slot after this one.
    pub const fn next(&self) -> Option<SlotId> {
        dec(self.next)
    }
    /// Set the previous link.
    pub fn set_prev(&mut self, id: Option<SlotId>) {
        self.prev = enc(id);
    }
    /// Set the next link.
    pub fn set_next(&mut self, id: Option<SlotId>) {
        self.next = enc(id);
    }
}

/// A capability slot. 64 bytes, so a CNode of `2^r` slots is `2^(r+6)` bytes.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The capability.
    pub cap: Cap,
    /// Its place in the derivation tree.
    pub mdb: Mdb,
}

static_assertions::const_assert_eq!(core::mem::size_of::<Slot>(), 1 << gaon_abi::object::SLOT_BITS);

impl Slot {
    /// An empty slot.
    pub const EMPTY: Self = Self {
        cap: Cap::NULL,
        mdb: Mdb::new(None, None, false, false),
    };
}

/// Where slots live.
pub trait SlotStore {
    /// The slot `id`, or `None` if there is no such slot.
    fn slot(&mut self, id: SlotId) -> Option<&mut Slot>;
}

impl SlotStore for [Slot] {
    fn slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.get_mut(id)
    }
}

impl<const N: usize> SlotStore for [Slot; N] {
    fn slot(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.get_mut(id)
    }
}

/// Why a derivation-tree operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdtError {
    /// The slot id names no slot.
    BadSlot,
    /// The destination slot is not empty.
    Occupied,
    /// The source slot is empty.
    Empty,
    /// The new capability is not a valid derivation of the source.
    NotDerived,
}

fn get<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> Result<Slot, CdtError> {
    s.slot(id).map(|x| *x).ok_or(CdtError::BadSlot)
}

fn at<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> &mut Slot {
    // Ids in links were checked when they were linked; a store never loses slots.
    s.slot(id).expect("linked slot exists")
}

/// Is `b` (which follows `a`) a descendant of `a`?
pub fn is_parent_of(a: &Slot, b: &Slot) -> bool {
    if !a.mdb.revocable || a.cap.is_null() || b.cap.is_null() {
        return false;
    }
    match a.cap.ty() {
        Some(ObjType::Untyped) => b.cap.obj >= a.cap.obj && b.cap.end() <= a.cap.end() && b.cap.obj < a.cap.end(),
        // A pool split off another covers part of the other's original range.
        Some(ObjType::VmidPool) => {
            if !b.cap.is(ObjType::VmidPool) {
                return false;
            }
            let (af, an) = a.cap.vmid_pool();
            let (bf, bn) = b.cap.vmid_pool();
            bf >= af && bf + bn.1 <= af + an.1
        }
        Some(ty) if ty.badgeable() => {
            a.cap.same_object(&b.cap) && (a.cap.badge == 0 || (a.cap.badge == b.cap.badge && !b.mdb.first_badged))
        }
        Some(_) => a.cap.same_object(&b.cap),
        None => false,
    }
}

/// Put `cap` into empty slot `dst` right after `after` in derivation order.
fn link_after<S: SlotStore + ?Sized>(s: &mut S, after: SlotId, dst: SlotId, cap: Cap, revocable: bool, first: bool) {
    let next = at(s, after).mdb.next();
    *at(s, dst) = Slot {
        cap,
        mdb: Mdb::new(Some(after), next, revocable, first),
    };
    at(s, after).mdb.set_next(Some(dst));
    if let Some(n) = next {
        at(s, n).mdb.set_prev(Some(dst));
    }
}

/// Install an original capability with no parent (boot-time objects) in empty `dst`.
pub fn insert_root<S: SlotStore + ?Sized>(s: &mut S, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    if !get(s, dst)?.cap.is_null() {
        return Err(CdtError::Occupied);
    }
    *at(s, dst) = Slot {
        cap,
        mdb: Mdb::new(None, None, true, false),
    };
    Ok(())
}

/// Install `cap`, an object created under the authority of the cap in `parent` (an
/// IRQ handler under IrqControl), right after it.
pub fn insert_child<S: SlotStore + ?Sized>(s: &mut S, parent: SlotId, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    if get(s, parent)?.cap.is_null() {
        return Err(CdtError::Empty);
    }
    if !get(s, dst)?.cap.is_null() {
        return Err(CdtError::Occupied);
    }
    link_after(s, parent, dst, cap, true, false);
    Ok(())
}

/// Install a new object's capability, created by retyping the untyped in `parent`.
pub fn insert_retyped<S: SlotStore + ?Sized>(s: &mut S, parent: SlotId, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    let p = get(s, parent)?.cap;
    let d = get(s, dst)?;
    if !p.is(ObjType::Untyped) {
        return Err(CdtError::NotDerived);
    }
    if !d.cap.is_null() {
        return Err(CdtError::Occupied);
    }
    if cap.is_null() || cap.obj < p.obj || cap.end() > p.end() {
        return Err(CdtError::NotDerived);
    }
    link_after(s, parent, dst, cap, true, false);
    Ok(())
}

/// Copy or mint `src` into empty `dst` as `cap`, which must name the same object with no
/// more rights (and, if badged, be a fresh badge on an unbadged original).
pub fn derive<S: SlotStore + ?Sized>(s: &mut S, src: SlotId, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    let sc = get(s, src)?.cap;
    if sc.is_null() {
        return Err(CdtError::Empty);
    }
    if !get(s, dst)?.cap.is_null() {
        return Err(CdtError::Occupied);
    }
    let same = sc.ty() == cap.ty() && sc.obj == cap.obj && sc.size_bits == cap.size_bits;
    // A CNode's "badge" is its guard, which any copy may set.
    let guard = sc.is(ObjType::CNode);
    let badge_ok = guard || cap.badge == sc.badge || (sc.badge == 0 && cap.badgeable());
    if !same || !sc.rights().contains(cap.rights()) || !badge_ok {
        return Err(CdtError::NotDerived);
    }
    let newly_badged = !guard && cap.badge != sc.badge;
    let revocable = newly_badged || sc.is(ObjType::Untyped);
    link_after(s, src, dst, cap, revocable, newly_badged);
    Ok(())
}

/// Move the capability in `src` to empty `dst`, keeping its place in the tree.
pub fn move_cap<S: SlotStore + ?Sized>(s: &mut S, src: SlotId, dst: SlotId) -> Result<(), CdtError> {
    let slot = get(s, src)?;
    if slot.cap.is_null() {
        return Err(CdtError::Empty);
    }
    if src == dst {
        return Ok(());
    }
    if !get(s, dst)?.cap.is_null() {
        return Err(CdtError::Occupied);
    }
    *at(s, dst) = slot;
    *at(s, src) = Slot::EMPTY;
    if let Some(p) = slot.mdb.prev() {
        at(s, p).mdb.set_next(Some(dst));
    }
    if let Some(n) = slot.mdb.next() {
        at(s, n).mdb.set_prev(Some(dst));
    }
    Ok(())
}

/// True if no other slot refers to the object of `id` (its neighbours are the only
/// candidates: capabilities to one object are contiguous in derivation order).
pub fn is_final<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> bool {
    let Ok(slot) = get(s, id) else { return false };
    let mut other = |n: Option<SlotId>| n.is_some_and(|n| at(s, n).cap.same_object(&slot.cap));
    !other(slot.mdb.prev()) && !other(slot.mdb.next())
}

/// Take slot `id` out of the tree and empty it. Returns the capability if it was the
/// last one to its object, so the caller can destroy the object.
pub fn delete<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> Result<Option<Cap>, CdtError> {
    let slot = get(s, id)?;
    if slot.cap.is_null() {
        return Ok(None);
    }
    let final_cap = (slot.cap.has(FLAG_ZOMBIE) || is_final(s, id)).then_some(slot.cap);
    unlink(s, id);
    *at(s, id) = Slot::EMPTY;
    Ok(final_cap)
}

/// Take slot `id` out of the tree but leave its capability in place (a zombie).
pub fn unlink<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) {
    let m = at(s, id).mdb;
    if let Some(p) = m.prev() {
        at(s, p).mdb.set_next(m.next());
    }
    if let Some(n) = m.next() {
        at(s, n).mdb.set_prev(m.prev());
    }
    at(s, id).mdb = Mdb::default();
}

/// True if `id` has descendants.
pub fn has_children<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> bool {
    let Ok(slot) = get(s, id) else { return false };
    slot.mdb.next().is_some_and(|n| is_parent_of(&slot, at(s, n)))
}

/// The first descendant of `id`, if any: what revoke deletes next.
pub fn first_child<S: SlotStore + ?Sized>(s: &mut S, id: SlotId) -> Option<SlotId> {
    let slot = get(s, id).ok()?;
    let n = slot.mdb.next()?;
    is_parent_of(&slot, at(s, n)).then_some(n)
}

/// Delete every descendant of `id`, calling `destroyed` with each capability that was
/// the last to its object. Returns how many slots were emptied. (The kernel revokes
/// through `Kernel::revoke`, which destroys objects as it goes; this is the plain tree
/// operation the host tests exercise.)
pub fn revoke<S: SlotStore + ?Sized>(s: &mut S, id: SlotId, mut destroyed: impl FnMut(Cap)) -> Result<usize, CdtError> {
    get(s, id)?;
    let mut count = 0;
    while let Some(n) = first_child(s, id) {
        if let Some(cap) = delete(s, n)? {
            destroyed(cap);
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
