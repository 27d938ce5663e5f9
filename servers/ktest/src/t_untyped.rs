//! Untyped::Retype: every object type, and every way to get it wrong.

use libl4::cap::{CNode, Untyped};
use libl4::ipc::invoke;
use libl4::{Error, Label, ObjType, Rights};

use crate::env::{Env, ROOT_CNODE};
use crate::{R, check, err, ok};

crate::tests![
    "retype: CNode" => rt_cnode,
    "retype: Tcb" => rt_tcb,
    "retype: Endpoint" => rt_endpoint,
    "retype: Notification" => rt_ntfn,
    "retype: Reply" => rt_reply,
    "retype: SchedContext" => rt_sc,
    "retype: 4 KiB frame" => rt_frame,
    "retype: 2 MiB frame" => rt_large_frame,
    "retype: PageTable" => rt_pt,
    "retype: VSpace" => rt_vspace,
    "retype: child untyped" => rt_untyped,
    "retype: several objects at once" => rt_many,
    "retype rejects an unknown type" => bad_type,
    "retype rejects IrqControl as a type" => bad_type_irqcontrol,
    "retype rejects a 8 KiB frame" => bad_frame_size,
    "retype rejects a CNode of radix 0" => bad_radix,
    "retype rejects unknown bits in the type word" => bad_bits,
    "retype rejects count 0" => count_zero,
    "retype rejects count 257" => count_big,
    "retype rejects slots past the CNode" => dest_range,
    "retype rejects an occupied slot" => dest_occupied,
    "retype rejects a destination that is not a CNode" => dest_not_cnode,
    "retype rejects a short message" => truncated,
    "retype reports an exhausted untyped" => exhausted,
    "retype rejects an object larger than the untyped" => too_large,
    "retype on a device untyped refuses a Tcb" => device_tcb,
    "retype on a device untyped makes frames" => device_frame,
    "retype reuses memory once every child is gone" => reset,
    "an untyped cap cannot be copied" => no_copy,
    "Retype on a non-untyped cap is an unknown invocation" => wrong_cap,
];

fn one(env: &mut Env, ty: ObjType, bits: u8) -> R {
    let s = ok(env.alloc(ty, bits), "retype")?;
    let (t, _, _) = ok(ROOT_CNODE.identify(s), "identify")?;
    check(t == ty as u64 + 1, "new cap has the type")
}

fn rt_cnode(e: &mut Env) -> R {
    one(e, ObjType::CNode, 4)
}
fn rt_tcb(e: &mut Env) -> R {
    one(e, ObjType::Tcb, 0)
}
fn rt_endpoint(e: &mut Env) -> R {
    one(e, ObjType::Endpoint, 0)
}
fn rt_ntfn(e: &mut Env) -> R {
    one(e, ObjType::Notification, 0)
}
fn rt_reply(e: &mut Env) -> R {
    one(e, ObjType::Reply, 0)
}
fn rt_sc(e: &mut Env) -> R {
    one(e, ObjType::SchedContext, 0)
}
fn rt_frame(e: &mut Env) -> R {
    one(e, ObjType::Frame, 12)
}
fn rt_large_frame(e: &mut Env) -> R {
    one(e, ObjType::Frame, 21)
}
fn rt_pt(e: &mut Env) -> R {
    one(e, ObjType::PageTable, 0)
}
fn rt_vspace(e: &mut Env) -> R {
    one(e, ObjType::VSpace, 0)
}
fn rt_untyped(e: &mut Env) -> R {
    one(e, ObjType::Untyped, 16)
}

fn rt_many(env: &mut Env) -> R {
    let first = ok(env.slot(), "slot")?;
    for _ in 0..7 {
        ok(env.slot(), "slot")?;
    }
    ok(env.ut.retype(ObjType::Endpoint, 0, ROOT_CNODE, first, 8), "retype 8")?;
    for s in first..first + 8 {
        check(
            ok(ROOT_CNODE.identify(s), "identify")?.0 == ObjType::Endpoint as u64 + 1,
            "endpoint",
        )?;
    }
    Ok(())
}

fn raw(env: &mut Env, w0: u64, count: u64) -> Result<(), Error> {
    let s = env.slot()?;
    invoke(env.ut.0, Label::UntypedRetype, &[w0, ROOT_CNODE.0, s, count]).map(|_| ())
}

fn bad_type(e: &mut Env) -> R {
    err(raw(e, 99, 1), Error::InvalidArgument, "type 99")
}
fn bad_type_irqcontrol(e: &mut Env) -> R {
    err(
        raw(e, ObjType::IrqControl as u64, 1),
        Error::InvalidArgument,
        "IrqControl",
    )
}
fn bad_frame_size(e: &mut Env) -> R {
    err(
        raw(e, ObjType::Frame as u64 | (13 << 8), 1),
        Error::InvalidArgument,
        "8 KiB frame",
    )
}
fn bad_radix(e: &mut Env) -> R {
    err(raw(e, ObjType::CNode as u64, 1), Error::InvalidArgument, "radix 0")
}
fn bad_bits(e: &mut Env) -> R {
    err(
        raw(e, ObjType::Endpoint as u64 | (1 << 40), 1),
        Error::InvalidArgument,
        "high bits",
    )
}
fn count_zero(e: &mut Env) -> R {
    err(raw(e, ObjType::Endpoint as u64, 0), Error::RangeError, "count 0")
}
fn count_big(e: &mut Env) -> R {
    err(raw(e, ObjType::Endpoint as u64, 257), Error::RangeError, "count 257")
}
fn dest_range(e: &mut Env) -> R {
    err(
        e.ut.retype(ObjType::Endpoint, 0, ROOT_CNODE, 4095, 2),
        Error::RangeError,
        "past the end",
    )?;
    err(
        e.ut.retype(ObjType::Endpoint, 0, ROOT_CNODE, 1 << 40, 1),
        Error::RangeError,
        "far past the end",
    )
}
fn dest_occupied(e: &mut Env) -> R {
    let s = ok(e.alloc(ObjType::Endpoint, 0), "first")?;
    err(
        e.ut.retype(ObjType::Endpoint, 0, ROOT_CNODE, s, 1),
        Error::DeleteFirst,
        "occupied",
    )
}
fn dest_not_cnode(e: &mut Env) -> R {
    let ep = ok(e.alloc(ObjType::Endpoint, 0), "endpoint")?;
    err(
        e.ut.retype(ObjType::Endpoint, 0, CNode(ep), 0, 1),
        Error::InvalidCapability,
        "endpoint as CNode",
    )?;
    err(
        e.ut.retype(ObjType::Endpoint, 0, CNode(4000), 0, 1),
        Error::FailedLookup,
        "empty slot as CNode",
    )
}
fn truncated(e: &mut Env) -> R {
    err(
        invoke(e.ut.0, Label::UntypedRetype, &[ObjType::Endpoint as u64, ROOT_CNODE.0]),
        Error::TruncatedMessage,
        "two arguments",
    )
}

fn small_untyped(env: &mut Env, bits: u8) -> Result<Untyped, crate::Fail> {
    Ok(Untyped(ok(env.alloc(ObjType::Untyped, bits), "child untyped")?))
}

fn exhausted(env: &mut Env) -> R {
    let u = small_untyped(env, 12)?;
    let s = ok(env.slot(), "slot")?;
    let s2 = ok(env.slot(), "slot")?;
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, s, 1), "one frame fits")?;
    err(
        u.retype(ObjType::Endpoint, 0, ROOT_CNODE, s2, 1),
        Error::NotEnoughMemory,
        "nothing left",
    )
}
fn too_large(env: &mut Env) -> R {
    let u = small_untyped(env, 12)?;
    let s = ok(env.slot(), "slot")?;
    err(
        u.retype(ObjType::Frame, 21, ROOT_CNODE, s, 1),
        Error::RangeError,
        "2 MiB from 4 KiB",
    )
}

fn device_untyped(env: &mut Env) -> Option<Untyped> {
    env.device_untyped()
}

fn device_tcb(env: &mut Env) -> R {
    let u = device_untyped(env).ok_or(crate::Fail {
        what: "no device untyped",
        got: None,
        skip: false,
    })?;
    let s = ok(env.slot(), "slot")?;
    err(
        u.retype(ObjType::Tcb, 0, ROOT_CNODE, s, 1),
        Error::IllegalOperation,
        "device Tcb",
    )
}
fn device_frame(env: &mut Env) -> R {
    let u = device_untyped(env).ok_or(crate::Fail {
        what: "no device untyped",
        got: None,
        skip: false,
    })?;
    let s = ok(env.slot(), "slot")?;
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, s, 1), "device frame")
}

fn reset(env: &mut Env) -> R {
    let u = small_untyped(env, 14)?;
    let base = ok(env.slot(), "slot")?;
    for _ in 0..3 {
        ok(env.slot(), "slot")?;
    }
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, base, 4), "fill it")?;
    let extra = ok(env.slot(), "slot")?;
    err(
        u.retype(ObjType::Frame, 12, ROOT_CNODE, extra, 1),
        Error::NotEnoughMemory,
        "full",
    )?;
    ok(ROOT_CNODE.revoke(u.0), "revoke the untyped")?;
    check(ok(ROOT_CNODE.identify(base), "identify")?.0 == 0, "children gone")?;
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, base, 4), "memory reused")
}

fn no_copy(env: &mut Env) -> R {
    let s = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.copy(s, env.ut.0, Rights::all()),
        Error::IllegalOperation,
        "copy untyped",
    )
}

fn wrong_cap(env: &mut Env) -> R {
    let f = ok(env.alloc(ObjType::Frame, 12), "frame")?;
    let s = ok(env.slot(), "slot")?;
    let r = Untyped(f).retype(ObjType::Endpoint, 0, ROOT_CNODE, s, 1);
    err(r, Error::UnknownInvocation, "retype via a frame")
}
