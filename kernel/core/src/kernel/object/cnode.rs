//! CNodes: arrays of capability slots. Their invocations copy, mint, move, mutate,
//! delete, revoke and identify the capabilities in them (the derivation tree is kept
//! by `cdt`; deleting and revoking are the preemptible engine in `delete.rs`).

use gaon_abi::invocation::{
    CNodeCopyArgs, CNodeDeleteArgs, CNodeIdentifyArgs, CNodeIdentifyReply, CNodeMintArgs, CNodeMoveArgs,
    CNodeMutateArgs, CNodeRevokeArgs,
};
use gaon_abi::object::SLOT_BITS;
use gaon_abi::{Error, Label};

use super::Args;
use crate::cap::{Cap, FLAG_ZOMBIE};
use crate::cdt;
use crate::kernel::cspace::{Kslots, cnode_slot, derived_copy, slot};
use crate::kernel::delete::Preempted;
use crate::kernel::object::tcb::Tcb;
use crate::kernel::{Kernel, Platform};
use crate::obj::Ptr;

/// A checked CNode invocation. Slots are slot addresses.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    Delete(usize),
    Revoke(usize),
    Identify(usize),
    /// Copy or Mint: `cap` (rights and badge applied) derived from `src` into `dst`.
    Derive {
        src: usize,
        dst: usize,
        cap: Cap,
    },
    /// Move or Mutate: `src`'s cap moves to `dst` as `cap`; `badged`: it got a new
    /// badge (and so becomes the revocable first of its badge).
    Move {
        src: usize,
        dst: usize,
        cap: Cap,
        badged: bool,
    },
    /// A Move onto itself: nothing to do.
    Nothing,
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_cnode(&self, t: Ptr<Tcb>, cn: Cap, label: Label, a: &Args) -> Result<Op, Error> {
        use Label as L;
        let index = |i: u64| cnode_slot(&cn, i).ok_or(Error::RangeError);
        match label {
            L::CNodeDelete => Ok(Op::Delete(index(a.decode::<CNodeDeleteArgs>()?.index)?)),
            L::CNodeRevoke => Ok(Op::Revoke(index(a.decode::<CNodeRevokeArgs>()?.index)?)),
            L::CNodeIdentify => Ok(Op::Identify(index(a.decode::<CNodeIdentifyArgs>()?.index)?)),
            L::CNodeCopy | L::CNodeMint => {
                let (dst, src, rights, badge) = if label == L::CNodeMint {
                    let m: CNodeMintArgs = a.decode()?;
                    (m.index, m.src, m.rights, m.badge)
                } else {
                    let c: CNodeCopyArgs = a.decode()?;
                    (c.index, c.src, c.rights, 0)
                };
                let dst = index(dst)?;
                let (src, sc) = self.lookup_cap(t, src)?;
                if !slot(dst).cap.is_null() {
                    return Err(Error::DeleteFirst);
                }
                let mut cap = derived_copy(sc)?.with_rights(sc.rights() & rights);
                if badge != 0 {
                    cap = rebadge(cap, badge)?;
                }
                Ok(Op::Derive { src, dst, cap })
            }
            L::CNodeMove | L::CNodeMutate => {
                let (dst, src, badge) = if label == L::CNodeMutate {
                    let m: CNodeMutateArgs = a.decode()?;
                    (m.index, m.src, m.badge)
                } else {
                    let m: CNodeMoveArgs = a.decode()?;
                    (m.index, m.src, 0)
                };
                let dst = index(dst)?;
                let (src, sc) = self.lookup_cap(t, src)?;
                if src == dst {
                    return if badge == 0 {
                        Ok(Op::Nothing)
                    } else {
                        Err(Error::DeleteFirst)
                    };
                }
                if !slot(dst).cap.is_null() {
                    return Err(Error::DeleteFirst);
                }
                let cap = if badge == 0 { sc } else { rebadge(sc, badge)? };
                let badged = badge != 0 && sc.badgeable();
                if badged && cdt::has_children(&mut Kslots, src) {
                    return Err(Error::RevokeFirst);
                }
                Ok(Op::Move { src, dst, cap, badged })
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_cnode(&mut self, t: Ptr<Tcb>, op: Op) -> Result<usize, Preempted> {
        match op {
            Op::Delete(s) => self.delete_slot_in(s, true)?,
            Op::Revoke(s) => self.revoke_slot_in(s, true)?,
            Op::Identify(s) => {
                // A half-deleted container (a zombie) reads as empty: its words are the
                // kernel's bookkeeping (slot addresses), not the user's.
                let c = if slot(s).cap.has(FLAG_ZOMBIE) {
                    Cap::NULL
                } else {
                    slot(s).cap
                };
                return Ok(super::reply_with(
                    t,
                    &CNodeIdentifyReply {
                        ty: c.ty().map_or(0, |ty| ty as u64 + 1),
                        badge: c.badge,
                        rights: c.rights().bits(),
                    },
                ));
            }
            Op::Derive { src, dst, cap } => {
                let r = cdt::derive(&mut Kslots, src, dst, cap);
                debug_assert!(r.is_ok(), "decode made a valid derived capability");
            }
            Op::Move { src, dst, cap, badged } => {
                let r = cdt::move_cap(&mut Kslots, src, dst);
                debug_assert!(r.is_ok(), "decode checked both slots");
                let d = slot(dst);
                d.cap = cap;
                if badged {
                    d.mdb.revocable = true;
                    d.mdb.first_badged = true;
                }
            }
            Op::Nothing => {}
        }
        Ok(0)
    }
}

/// Give a copy a badge (endpoints, notifications) or a guard (CNodes:
/// `guard_bits << 56 | guard`).
fn rebadge(mut c: Cap, badge: u64) -> Result<Cap, Error> {
    match c.ty() {
        Some(gaon_abi::ObjType::CNode) => {
            let bits = (badge >> 56) as u8;
            let guard = badge & ((1 << 56) - 1);
            let radix = c.size_bits - SLOT_BITS;
            if u32::from(bits) + u32::from(radix) > 64 || (bits < 56 && guard >> bits != 0) {
                return Err(Error::RangeError);
            }
            c.set_guard(guard, bits);
            Ok(c)
        }
        Some(ty) if ty.badgeable() => {
            if c.badge != 0 {
                return Err(Error::IllegalOperation);
            }
            c.badge = badge;
            Ok(c)
        }
        _ => Err(Error::InvalidArgument),
    }
}
