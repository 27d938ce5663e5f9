//! The capability derivation tree, kept seL4-style as a doubly linked list of slots in
//! derivation order: a capability's descendants follow it, so revoke deletes the run of
//! slots after it for which it is the parent.
//!
//! Slots are addressed by [`SlotId`] into a slice; the kernel's CNodes provide the slice
//! (a slot id is then a slot's index in kernel memory), the host tests provide arrays.

use crate::cap::{Cap, ObjType};

/// Index of a slot.
pub type SlotId = usize;

/// Derivation links and flags of one slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mdb {
    /// The slot before this one in derivation order.
    pub prev: Option<SlotId>,
    /// The slot after this one.
    pub next: Option<SlotId>,
    /// This capability can be a parent (originals, untyped, newly badged).
    pub revocable: bool,
    /// This capability is the first with its badge (minted from an unbadged original).
    pub first_badged: bool,
}

/// A capability slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The capability.
    pub cap: Cap,
    /// Its place in the derivation tree.
    pub mdb: Mdb,
}

impl Slot {
    /// An empty slot.
    pub const EMPTY: Self = Self {
        cap: Cap::NULL,
        mdb: Mdb {
            prev: None,
            next: None,
            revocable: false,
            first_badged: false,
        },
    };
}

/// Why a derivation-tree operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdtError {
    /// The slot id is outside the table.
    BadSlot,
    /// The destination slot is not empty.
    Occupied,
    /// The source slot is empty.
    Empty,
    /// The new capability is not a valid derivation of the source.
    NotDerived,
}

/// Is `b` (which follows `a`) a descendant of `a`?
pub fn is_parent_of(a: &Slot, b: &Slot) -> bool {
    if !a.mdb.revocable || a.cap.is_null() || b.cap.is_null() {
        return false;
    }
    match a.cap.ty {
        Some(ObjType::Untyped) => b.cap.obj >= a.cap.obj && b.cap.end() <= a.cap.end(),
        Some(ty) if ty.badgeable() => {
            a.cap.same_object(&b.cap) && (a.cap.badge == 0 || (a.cap.badge == b.cap.badge && !b.mdb.first_badged))
        }
        Some(_) => a.cap.same_object(&b.cap),
        None => false,
    }
}

fn check(slots: &[Slot], id: SlotId) -> Result<(), CdtError> {
    if id < slots.len() {
        Ok(())
    } else {
        Err(CdtError::BadSlot)
    }
}

/// Put `cap` into empty slot `dst` right after `after` in derivation order.
fn link_after(slots: &mut [Slot], after: SlotId, dst: SlotId, cap: Cap, revocable: bool, first_badged: bool) {
    let next = slots[after].mdb.next;
    slots[dst] = Slot {
        cap,
        mdb: Mdb {
            prev: Some(after),
            next,
            revocable,
            first_badged,
        },
    };
    slots[after].mdb.next = Some(dst);
    if let Some(n) = next {
        slots[n].mdb.prev = Some(dst);
    }
}

/// Install a new object's capability, created by retyping the untyped in `parent`.
pub fn insert_retyped(slots: &mut [Slot], parent: SlotId, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    check(slots, parent)?;
    check(slots, dst)?;
    if slots[parent].cap.ty != Some(ObjType::Untyped) {
        return Err(CdtError::NotDerived);
    }
    if !slots[dst].cap.is_null() {
        return Err(CdtError::Occupied);
    }
    let (p, c) = (slots[parent].cap, cap);
    if c.is_null() || c.obj < p.obj || c.end() > p.end() {
        return Err(CdtError::NotDerived);
    }
    link_after(slots, parent, dst, cap, true, false);
    Ok(())
}

/// Copy or mint `src` into empty `dst` as `cap`, which must name the same object with no
/// more rights (and, if badged, be a fresh badge on an unbadged original).
pub fn derive(slots: &mut [Slot], src: SlotId, dst: SlotId, cap: Cap) -> Result<(), CdtError> {
    check(slots, src)?;
    check(slots, dst)?;
    let s = slots[src].cap;
    if s.is_null() {
        return Err(CdtError::Empty);
    }
    if !slots[dst].cap.is_null() {
        return Err(CdtError::Occupied);
    }
    let same = s.ty == cap.ty && s.obj == cap.obj && s.size_bits == cap.size_bits;
    let badge_ok = cap.badge == s.badge || (s.badge == 0 && cap.ty.is_some_and(ObjType::badgeable));
    if !same || !s.rights.contains(cap.rights) || !badge_ok {
        return Err(CdtError::NotDerived);
    }
    let newly_badged = cap.badge != s.badge;
    let revocable = newly_badged || s.ty == Some(ObjType::Untyped);
    link_after(slots, src, dst, cap, revocable, newly_badged);
    Ok(())
}

/// Move the capability in `src` to empty `dst`, keeping its place in the tree.
pub fn move_cap(slots: &mut [Slot], src: SlotId, dst: SlotId) -> Result<(), CdtError> {
    check(slots, src)?;
    check(slots, dst)?;
    if slots[src].cap.is_null() {
        return Err(CdtError::Empty);
    }
    if src == dst {
        return Ok(());
    }
    if !slots[dst].cap.is_null() {
        return Err(CdtError::Occupied);
    }
    let slot = slots[src];
    slots[dst] = slot;
    slots[src] = Slot::EMPTY;
    if let Some(p) = slot.mdb.prev {
        slots[p].mdb.next = Some(dst);
    }
    if let Some(n) = slot.mdb.next {
        slots[n].mdb.prev = Some(dst);
    }
    Ok(())
}

/// True if no other slot refers to the object of `id` (its neighbours are the only
/// candidates: capabilities to one object are contiguous in derivation order).
pub fn is_final(slots: &[Slot], id: SlotId) -> bool {
    let s = &slots[id];
    let other = |n: Option<SlotId>| n.is_some_and(|n| slots[n].cap.same_object(&s.cap));
    !other(s.mdb.prev) && !other(s.mdb.next)
}

/// Empty slot `id`. Returns the capability if it was the last one to its object, so the
/// caller can destroy the object.
pub fn delete(slots: &mut [Slot], id: SlotId) -> Result<Option<Cap>, CdtError> {
    check(slots, id)?;
    if slots[id].cap.is_null() {
        return Ok(None);
    }
    let final_cap = is_final(slots, id).then_some(slots[id].cap);
    let Mdb { prev, next, .. } = slots[id].mdb;
    if let Some(p) = prev {
        slots[p].mdb.next = next;
    }
    if let Some(n) = next {
        slots[n].mdb.prev = prev;
    }
    slots[id] = Slot::EMPTY;
    Ok(final_cap)
}

/// True if `id` has descendants.
pub fn has_children(slots: &[Slot], id: SlotId) -> bool {
    slots[id].mdb.next.is_some_and(|n| is_parent_of(&slots[id], &slots[n]))
}

/// Delete every descendant of `id`, calling `destroyed` with each capability that was
/// the last to its object. Returns how many slots were emptied.
pub fn revoke(slots: &mut [Slot], id: SlotId, mut destroyed: impl FnMut(Cap)) -> Result<usize, CdtError> {
    check(slots, id)?;
    let mut count = 0;
    while let Some(n) = slots[id].mdb.next {
        if !is_parent_of(&slots[id], &slots[n]) {
            break;
        }
        if let Some(cap) = delete(slots, n)? {
            destroyed(cap);
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
