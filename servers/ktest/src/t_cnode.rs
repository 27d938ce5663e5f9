//! CNode invocations and CSpace addressing.

use libl4::cap::CNode;
use libl4::ipc::invoke;
use libl4::syscall::call2;
use libl4::{Error, Label, ObjType, Rights, Syscall};

use crate::env::{Env, ROOT_CNODE};
use crate::{R, check, err, ok};

crate::tests![
    "copy makes a second cap to the object" => copy_ok,
    "copy into an occupied slot is refused" => copy_occupied,
    "copy from an empty slot fails the lookup" => copy_empty,
    "copy to an index past the CNode is a range error" => copy_range,
    "copy can only drop rights" => copy_rights,
    "mint badges an endpoint cap" => mint_badge,
    "mint refuses a badge on a frame" => mint_badge_frame,
    "mint refuses to rebadge a badged cap" => mint_rebadge,
    "move empties the source" => move_ok,
    "move onto itself is a no-op" => move_same,
    "move from an empty slot fails the lookup" => move_empty,
    "mutate badges while moving" => mutate_ok,
    "delete empties a slot" => delete_ok,
    "delete of an empty slot succeeds" => delete_empty,
    "revoke deletes copies and keeps the original" => revoke_copies,
    "revoke of a badged cap spares other badges" => revoke_badged,
    "identify reports type, badge and rights" => identify,
    "a two-level CSpace resolves through a guard" => two_level,
    "a wrong guard fails the lookup" => bad_guard,
    "a guard that overflows 64 bits is refused" => guard_too_big,
    "CNode invocations check the message length" => cnode_truncated,
    "an unknown CNode label is refused" => cnode_unknown,
    "deleting a CNode deletes what it holds" => delete_nested,
    "a CNode holding its own last cap can be deleted" => delete_cycle,
    "revoking an untyped tears down nested CNodes and threads" => revoke_nested,
];

fn ty(slot: u64) -> Result<u64, crate::Fail> {
    Ok(ok(ROOT_CNODE.identify(slot), "identify")?.0)
}

fn copy_ok(env: &mut Env) -> R {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(s, ep, Rights::all()), "copy")?;
    check(ty(s)? == ObjType::Endpoint as u64 + 1, "copy is an endpoint")
}
fn copy_occupied(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let b = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(ROOT_CNODE.copy(b, a, Rights::all()), Error::DeleteFirst, "occupied")
}
fn copy_empty(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.copy(s, 4001, Rights::all()),
        Error::FailedLookup,
        "empty source",
    )
}
fn copy_range(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(ROOT_CNODE.copy(4096, a, Rights::all()), Error::RangeError, "index 4096")
}
fn copy_rights(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let ro = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(ro, a, Rights::READ), "read-only copy")?;
    let again = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(again, ro, Rights::all()), "copy of the copy")?;
    let (_, _, rights) = ok(ROOT_CNODE.identify(again), "identify")?;
    check(rights == Rights::READ.bits(), "rights did not grow")
}
fn mint_badge(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(s, a, Rights::WRITE, 0x77), "mint")?;
    let (t, badge, rights) = ok(ROOT_CNODE.identify(s), "identify")?;
    check(
        t == ObjType::Endpoint as u64 + 1 && badge == 0x77 && rights == Rights::WRITE.bits(),
        "badged write-only",
    )
}
fn mint_badge_frame(env: &mut Env) -> R {
    let f = ok(env.alloc(ObjType::Frame, 12), "frame")?;
    let s = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.mint(s, f, Rights::all(), 5),
        Error::InvalidArgument,
        "badged frame",
    )
}
fn mint_rebadge(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(s, a, Rights::all(), 1), "mint")?;
    let s2 = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.mint(s2, s, Rights::all(), 2),
        Error::IllegalOperation,
        "rebadge",
    )
}
fn move_ok(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.move_(s, a), "move")?;
    check(ty(a)? == 0 && ty(s)? == ObjType::Endpoint as u64 + 1, "moved")
}
fn move_same(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    ok(ROOT_CNODE.move_(a, a), "move onto itself")?;
    check(ty(a)? == ObjType::Endpoint as u64 + 1, "still there")
}
fn move_empty(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    err(ROOT_CNODE.move_(s, 4002), Error::FailedLookup, "empty source")
}
fn mutate_ok(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mutate(s, a, 9), "mutate")?;
    let (t, badge, _) = ok(ROOT_CNODE.identify(s), "identify")?;
    check(
        t == ObjType::Endpoint as u64 + 1 && badge == 9 && ty(a)? == 0,
        "moved with a badge",
    )
}
fn delete_ok(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    ok(ROOT_CNODE.delete(a), "delete")?;
    check(ty(a)? == 0, "empty")
}
fn delete_empty(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.delete(s), "delete empty")
}
fn revoke_copies(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let (c1, c2) = (ok(env.slot(), "slot")?, ok(env.slot(), "slot")?);
    ok(ROOT_CNODE.copy(c1, a, Rights::all()), "copy")?;
    ok(ROOT_CNODE.mint(c2, a, Rights::all(), 3), "mint")?;
    ok(ROOT_CNODE.revoke(a), "revoke")?;
    check(
        ty(c1)? == 0 && ty(c2)? == 0 && ty(a)? != 0,
        "children gone, original kept",
    )
}
fn revoke_badged(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let (b1, b2, b1copy) = (
        ok(env.slot(), "slot")?,
        ok(env.slot(), "slot")?,
        ok(env.slot(), "slot")?,
    );
    ok(ROOT_CNODE.mint(b1, a, Rights::all(), 1), "badge 1")?;
    ok(ROOT_CNODE.mint(b2, a, Rights::all(), 2), "badge 2")?;
    ok(ROOT_CNODE.copy(b1copy, b1, Rights::all()), "copy of badge 1")?;
    ok(ROOT_CNODE.revoke(b1), "revoke badge 1")?;
    check(ty(b1copy)? == 0, "copy of badge 1 gone")?;
    check(ty(b1)? != 0 && ty(b2)? != 0, "badge 1 itself and badge 2 stay")
}
fn identify(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(s, a, Rights::READ, 0xabc), "mint")?;
    let got = ok(ROOT_CNODE.identify(s), "identify")?;
    check(
        got == (ObjType::Notification as u64 + 1, 0xabc, Rights::READ.bits()),
        "type, badge, rights",
    )
}

/// A radix-4 CNode minted into the root CNode with a 48-bit guard, so that
/// `slot << 52 | index` names `index` inside it.
fn second_level(env: &mut Env) -> Result<(u64, u64), crate::Fail> {
    let cn = ok(env.alloc(ObjType::CNode, 4), "CNode")?;
    let s = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(s, cn, Rights::all(), 48 << 56), "guarded copy")?;
    Ok((cn, s))
}

static RESULT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

extern "C" fn identify_reporter(cptr: u64) -> ! {
    RESULT.store(
        call2(Syscall::DebugCapIdentify, cptr, 0).unwrap_or(0xdead),
        core::sync::atomic::Ordering::SeqCst,
    );
    crate::t_tcb::park()
}

/// Look `cptr` up in a thread whose CSpace is a radix-4 CNode with no guard (the top
/// four bits pick a slot) whose slot 5 holds a radix-4 CNode with a 56-bit guard.
fn lookup_two_level(env: &mut Env, cptr: u64) -> Result<u64, crate::Fail> {
    let top = ok(env.alloc(ObjType::CNode, 4), "top CNode")?;
    let (second, _) = second_level(env)?;
    let guarded = ok(env.slot(), "slot")?;
    ok(
        ROOT_CNODE.mint(guarded, second, Rights::all(), 56 << 56),
        "56-bit guard",
    )?;
    ok(CNode(top).move_(5, guarded), "second level in slot 5")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    ok(CNode(second).move_(3, ep), "endpoint in slot 3")?;
    RESULT.store(u64::MAX, core::sync::atomic::Ordering::SeqCst);
    let t = ok(env.thread(crate::env::entry(identify_reporter), cptr, 255, 0), "thread")?;
    ok(t.set_space(CNode(top), crate::env::ROOT_VSPACE, 0), "its CSpace")?;
    ok(t.resume(), "resume")?;
    libl4::syscall::yield_now();
    ok(t.suspend(), "stop")?;
    Ok(RESULT.load(core::sync::atomic::Ordering::SeqCst))
}

fn two_level(env: &mut Env) -> R {
    let got = lookup_two_level(env, (5 << 60) | 3)?;
    check(got == ObjType::Endpoint as u64 + 1, "found through the guard")
}
fn bad_guard(env: &mut Env) -> R {
    let got = lookup_two_level(env, (5 << 60) | (1 << 20) | 3)?;
    check(got == 0, "guard mismatch finds nothing")
}
fn guard_too_big(env: &mut Env) -> R {
    let cn = ok(env.alloc(ObjType::CNode, 4), "CNode")?;
    let s = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.mint(s, cn, Rights::all(), 61 << 56),
        Error::RangeError,
        "61 + 4 bits",
    )
}
fn cnode_truncated(_: &mut Env) -> R {
    err(
        invoke(ROOT_CNODE.0, Label::CNodeCopy, &[]),
        Error::TruncatedMessage,
        "no arguments",
    )?;
    err(
        invoke(ROOT_CNODE.0, Label::CNodeMint, &[100, 1, 7]),
        Error::TruncatedMessage,
        "mint without badge",
    )
}
fn cnode_unknown(_: &mut Env) -> R {
    err(
        invoke(ROOT_CNODE.0, Label::FrameMap, &[1, 2, 3, 4]),
        Error::UnknownInvocation,
        "frame label on a CNode",
    )
}

fn delete_nested(env: &mut Env) -> R {
    let outer = ok(env.alloc(ObjType::CNode, 2), "outer")?;
    let inner = ok(env.alloc(ObjType::CNode, 2), "inner")?;
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let keep = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(keep, ep, Rights::all()), "second cap to the endpoint")?;
    ok(CNode(inner).move_(1, ep), "endpoint into inner")?;
    ok(CNode(outer).move_(2, inner), "inner into outer")?;
    ok(ROOT_CNODE.delete(outer), "delete outer")?;
    check(
        ty(outer)? == 0 && ty(keep)? == ObjType::Endpoint as u64 + 1,
        "outer gone, other cap kept",
    )
}
fn delete_cycle(env: &mut Env) -> R {
    let a = ok(env.alloc(ObjType::CNode, 2), "a")?;
    let b = ok(env.alloc(ObjType::CNode, 2), "b")?;
    let a2 = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(a2, a, Rights::all()), "copy a")?;
    ok(CNode(a).move_(0, a2), "a holds a cap to itself")?;
    ok(CNode(b).move_(1, a), "b holds the other cap to a")?;
    ok(ROOT_CNODE.delete(b), "delete b")?;
    check(ty(b)? == 0, "b gone")
}
fn revoke_nested(env: &mut Env) -> R {
    let u = ok(env.alloc(ObjType::Untyped, 18), "untyped")?;
    let base = ok(env.slot(), "slot")?;
    for _ in 0..3 {
        ok(env.slot(), "slot")?;
    }
    let un = libl4::cap::Untyped(u);
    ok(un.retype(ObjType::CNode, 3, ROOT_CNODE, base, 2), "two CNodes")?;
    ok(un.retype(ObjType::Tcb, 0, ROOT_CNODE, base + 2, 1), "a Tcb")?;
    ok(un.retype(ObjType::Endpoint, 0, ROOT_CNODE, base + 3, 1), "an endpoint")?;
    // A thread whose CSpace is the first CNode, which holds the second, which holds
    // the endpoint and the only other cap to the first.
    let (c1, c2, tcb, ep) = (base, base + 1, base + 2, base + 3);
    let c1copy = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(c1copy, c1, Rights::all()), "copy c1")?;
    ok(
        libl4::cap::Tcb(tcb).set_space(CNode(c1), crate::env::ROOT_VSPACE, 0),
        "set space",
    )?;
    ok(CNode(c2).move_(0, ep), "endpoint into c2")?;
    ok(CNode(c2).move_(1, c1copy), "c1 into c2")?;
    ok(CNode(c1).move_(0, c2), "c2 into c1")?;
    ok(ROOT_CNODE.revoke(u), "revoke the untyped")?;
    check(ty(c1)? == 0 && ty(tcb)? == 0, "all gone")?;
    ok(un.retype(ObjType::Frame, 12, ROOT_CNODE, base, 1), "memory reusable")
}
