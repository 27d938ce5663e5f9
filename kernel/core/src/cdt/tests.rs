//! Derivation-tree tests: fixed scenarios, then random operation sequences with the
//! tree's invariants checked after every step.

extern crate std;

use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::cap::{Cap, ObjType, Rights};
use crate::untyped::Untyped;

const SLOTS: usize = 24;

fn table() -> [Slot; SLOTS] {
    let mut t = [Slot::EMPTY; SLOTS];
    t[0] = Slot {
        cap: Cap::new(ObjType::Untyped, 0x10_0000, 16),
        mdb: Mdb::new(None, None, true, false),
    };
    t
}

fn endpoint(t: &mut [Slot], ut: &mut Untyped, dst: SlotId) {
    let addr = ut.retype(4, 1).unwrap();
    insert_retyped(t, 0, dst, Cap::new(ObjType::Endpoint, addr, 4)).unwrap();
}

#[test]
fn revoke_badged_removes_only_its_copies() {
    let mut t = table();
    let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
    endpoint(&mut t, &mut ut, 1);
    let badged = t[1].cap.mint(Rights::WRITE, 7).unwrap();
    derive(&mut t, 1, 2, badged).unwrap();
    derive(&mut t, 2, 3, badged).unwrap(); // a copy of the badged cap
    {
        let c = t[1].cap;
        derive(&mut t, 1, 4, c)
    }
    .unwrap(); // an unbadged copy
    assert!(has_children(&mut t, 2));
    assert_eq!(revoke(&mut t, 2, |_| {}), Ok(1));
    assert!(t[3].cap.is_null());
    assert!(!t[2].cap.is_null() && !t[4].cap.is_null());
    // The original still parents the badged cap and the unbadged copy.
    assert_eq!(revoke(&mut t, 1, |_| {}), Ok(2));
    assert!(is_final(&mut t, 1));
}

#[test]
fn revoke_badged_spares_its_siblings() {
    let mut t = table();
    let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
    endpoint(&mut t, &mut ut, 1);
    let b1 = t[1].cap.mint(Rights::all(), 1).unwrap();
    derive(&mut t, 1, 2, b1).unwrap();
    let b2 = t[1].cap.mint(Rights::all(), 2).unwrap();
    derive(&mut t, 1, 3, b2).unwrap(); // order: 1, 3 (badge 2), 2 (badge 1)
    let b2_again = t[1].cap.mint(Rights::all(), 2).unwrap();
    derive(&mut t, 1, 4, b2_again).unwrap(); // order: 1, 4 (badge 2), 3 (badge 2), 2
    assert_eq!(
        revoke(&mut t, 4, |_| {}),
        Ok(0),
        "a fresh badge does not parent an older one"
    );
    assert_eq!(revoke(&mut t, 3, |_| {}), Ok(0), "badge 2 does not parent badge 1");
    assert!(!t[2].cap.is_null() && !t[3].cap.is_null() && !t[4].cap.is_null());
}

#[test]
fn revoke_untyped_destroys_each_object_once() {
    let mut t = table();
    let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
    endpoint(&mut t, &mut ut, 1);
    endpoint(&mut t, &mut ut, 2);
    {
        let c = t[1].cap;
        derive(&mut t, 1, 3, c)
    }
    .unwrap();
    let mut destroyed = Vec::new();
    assert_eq!(revoke(&mut t, 0, |c| destroyed.push(c.obj)), Ok(3));
    destroyed.sort_unstable();
    assert_eq!(destroyed, [0x10_0000, 0x10_0010]);
    assert!(!has_children(&mut t, 0));
}

#[test]
fn derive_rejects_what_is_not_a_derivation() {
    let mut t = table();
    let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
    endpoint(&mut t, &mut ut, 1);
    let weak = t[1].cap.mint(Rights::READ, 0).unwrap();
    derive(&mut t, 1, 2, weak).unwrap();
    // More rights than the source.
    assert_eq!(
        {
            let c = t[1].cap;
            derive(&mut t, 2, 3, c)
        },
        Err(CdtError::NotDerived)
    );
    // Another object.
    let mut other = weak;
    other.obj = 0x20_0000;
    assert_eq!(derive(&mut t, 2, 3, other), Err(CdtError::NotDerived));
    // Re-badging a badged cap.
    let badged = t[1].cap.mint(Rights::all(), 5).unwrap();
    derive(&mut t, 1, 4, badged).unwrap();
    assert_eq!(t[4].cap.mint(Rights::all(), 6), None);
    assert_eq!(
        derive(&mut t, 4, 5, {
            let mut c = badged;
            c.badge = 6;
            c
        }),
        Err(CdtError::NotDerived)
    );
    // Occupied destination, empty source, slot out of range.
    assert_eq!(derive(&mut t, 1, 2, weak), Err(CdtError::Occupied));
    assert_eq!(derive(&mut t, 9, 10, weak), Err(CdtError::Empty));
    assert_eq!(derive(&mut t, 1, SLOTS, weak), Err(CdtError::BadSlot));
    // Frames are not badgeable.
    let frame = Cap::new(ObjType::Frame, 0x10_1000, 12);
    assert_eq!(frame.mint(Rights::READ, 1), None);
}

#[test]
fn move_keeps_the_tree() {
    let mut t = table();
    let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
    endpoint(&mut t, &mut ut, 1);
    {
        let c = t[1].cap;
        derive(&mut t, 1, 2, c)
    }
    .unwrap();
    move_cap(&mut t, 1, 9).unwrap();
    assert!(t[1].cap.is_null());
    assert_eq!(t[0].mdb.next(), Some(9));
    assert_eq!(revoke(&mut t, 9, |_| {}), Ok(1));
    assert_eq!(move_cap(&mut t, 1, 3), Err(CdtError::Empty));
}

#[test]
fn retyped_cap_must_lie_inside_its_untyped() {
    let mut t = table();
    let outside = Cap::new(ObjType::Endpoint, 0x20_0000, 4);
    assert_eq!(insert_retyped(&mut t, 0, 1, outside), Err(CdtError::NotDerived));
    let inside = Cap::new(ObjType::Endpoint, 0x10_0000, 4);
    insert_retyped(&mut t, 0, 1, inside).unwrap();
    assert_eq!(insert_retyped(&mut t, 1, 2, inside), Err(CdtError::NotDerived)); // parent not untyped
}

/// The order the list visits non-null slots, checking its links on the way.
fn walk(t: &[Slot]) -> Vec<SlotId> {
    let heads: Vec<SlotId> = (0..t.len())
        .filter(|&i| !t[i].cap.is_null() && t[i].mdb.prev().is_none())
        .collect();
    assert_eq!(heads, [0], "exactly one head, the root untyped");
    let mut order = Vec::new();
    let mut cur = Some(0);
    while let Some(i) = cur {
        assert!(order.len() <= t.len(), "cycle");
        assert!(!t[i].cap.is_null(), "null slot {i} linked");
        if let Some(n) = t[i].mdb.next() {
            assert_eq!(t[n].mdb.prev(), Some(i), "broken back link {i}->{n}");
        }
        order.push(i);
        cur = t[i].mdb.next();
    }
    let linked = t.iter().filter(|s| !s.cap.is_null()).count();
    assert_eq!(order.len(), linked, "every capability is in the list");
    order
}

fn check_invariants(t: &[Slot]) {
    let order = walk(t);
    for (pos, &i) in order.iter().enumerate().skip(1) {
        // Every capability descends from some capability before it.
        assert!(
            order[..pos].iter().any(|&a| is_parent_of(&t[a], &t[i])),
            "slot {i} is an orphan"
        );
        // Capabilities to one object are contiguous.
        let first = order.iter().position(|&j| t[j].cap.same_object(&t[i].cap)).unwrap();
        assert!(
            order[first..=pos].iter().all(|&j| t[j].cap.same_object(&t[i].cap)),
            "object of {i} not contiguous"
        );
    }
}

#[derive(Clone, Debug)]
enum Op {
    Retype(SlotId),
    Copy(SlotId, SlotId),
    Mint(SlotId, SlotId, u64, u8),
    Move(SlotId, SlotId),
    Delete(SlotId),
    Revoke(SlotId),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 1..SLOTS;
    prop_oneof![
        s.clone().prop_map(Op::Retype),
        (s.clone(), s.clone()).prop_map(|(a, b)| Op::Copy(a, b)),
        (s.clone(), s.clone(), 0u64..4, any::<u8>()).prop_map(|(a, b, badge, r)| Op::Mint(a, b, badge, r)),
        (s.clone(), s.clone()).prop_map(|(a, b)| Op::Move(a, b)),
        s.clone().prop_map(Op::Delete),
        (0..SLOTS).prop_map(Op::Revoke),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_tree_sound(ops in proptest::collection::vec(op(), 1..80)) {
        let mut t = table();
        let mut ut = Untyped::new(0x10_0000, 16, false).unwrap();
        for op in ops {
            match op {
                Op::Retype(dst) => {
                    if t[dst].cap.is_null() && let Ok(addr) = ut.retype(4, 1) {
                        insert_retyped(&mut t, 0, dst, Cap::new(ObjType::Endpoint, addr, 4)).unwrap();
                    }
                }
                Op::Copy(src, dst) => { let _ = { let c = t[src].cap; derive(&mut t, src, dst, c) }; }
                Op::Mint(src, dst, badge, r) => {
                    if let Some(c) = t[src].cap.mint(Rights::from_bits_truncate(u64::from(r)), badge) {
                        let _ = derive(&mut t, src, dst, c);
                    }
                }
                Op::Move(src, dst) => { let _ = move_cap(&mut t, src, dst); }
                Op::Delete(s) => { let _ = delete(&mut t, s); }
                Op::Revoke(s) => {
                    if !t[s].cap.is_null() {
                        revoke(&mut t, s, |_| {}).unwrap();
                        prop_assert!(!has_children(&mut t, s));
                        if s == 0 {
                            ut.reset();
                        }
                    }
                }
            }
            check_invariants(&t);
        }
    }
}
