//! The kernel's consistency check (`DebugCheckConsistency`, compiled into the ktest
//! kernel): it runs last, after every other test has created, blocked, faulted and
//! deleted objects of every kind, and must find nothing wrong.

use libl4::syscall::debug_check_consistency;

use crate::env::Env;
use crate::{R, check, ok};

crate::tests![
    "the kernel's structures are consistent after the whole suite" => consistent_after_the_suite,
];

fn consistent_after_the_suite(env: &mut Env) -> R {
    let r = ok(debug_check_consistency(true), "consistency check")?;
    check(!r.truncated, "the check walked everything")?;
    // The root's Tcb (5 slots) and its CNode, at least, and every boot capability.
    let root_slots = 5 + (1u64 << env.bi.cnode_radix);
    check(r.slots >= root_slots, "slots walked")?;
    check(
        r.caps >= env.bi.untyped_slots.end - env.bi.untyped_slots.start,
        "capabilities walked",
    )?;
    check(r.threads > 0, "threads checked")?;
    check(r.problems == 0, "no problem found (the kernel console names each)")
}
