//! Address spaces: frames, page tables, VSpaces.

use libl4::cap::{Frame, PageTable, VSpace};
use libl4::ipc::invoke;
use libl4::{Error, Label, ObjType, Rights};

use crate::env::{Env, ROOT_CNODE, ROOT_VSPACE};
use crate::{R, check, err, ok};

crate::tests![
    "a mapped frame can be written and read" => map_rw,
    "a frame is zeroed when created" => frame_zeroed,
    "two caps to one frame share memory" => shared,
    "remap at the same place changes the rights" => remap,
    "map refuses a misaligned address" => misaligned,
    "map refuses an address past the IPA space" => past_limit,
    "map without a page table fails the lookup" => no_table,
    "a frame cap maps only once" => maps_once,
    "map refuses an address already mapped" => occupied,
    "map needs the read right" => needs_read,
    "map refuses unknown attributes" => bad_attrs,
    "map needs a VSpace" => needs_vspace,
    "unmap of an unmapped frame succeeds" => unmap_unmapped,
    "get address reports the physical address and mapping" => get_address,
    "a 2 MiB frame maps as a block" => large_frame,
    "a page table maps only once" => pt_once,
    "a page table cannot go where one is" => pt_occupied,
    "page table map refuses an address past the IPA space" => pt_past_limit,
    "each VSpace has its own VMID" => vmids,
    "a VSpace without a VMID can be neither mapped into nor run in" => no_vmid,
    "a VMID pool gives exactly its quota, then NoVmid" => vmid_quota,
    "deleting a mapped frame cap unmaps it" => delete_unmaps,
    "unmapping a page table and remapping elsewhere exposes nothing" => pt_unmap_clears,
    "a device frame maps as device memory" => device_map,
    "an unknown frame label is refused" => frame_unknown,
];

fn frame(env: &mut Env) -> Result<Frame, crate::Fail> {
    Ok(Frame(ok(env.alloc(ObjType::Frame, 12), "frame")?))
}

fn read(va: u64) -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: callers pass an address the test mapped readable.
    unsafe {
        core::ptr::read_volatile(va as *const u64)
    }
}
fn write(va: u64, v: u64) {
    #[allow(unsafe_code)]
    // SAFETY: callers pass an address the test mapped writable.
    unsafe {
        core::ptr::write_volatile(va as *mut u64, v);
    }
}

fn map_rw(env: &mut Env) -> R {
    let (_, va) = ok(env.page(), "page")?;
    write(va + 8, 0x1234);
    check(read(va + 8) == 0x1234, "read back")
}
fn frame_zeroed(env: &mut Env) -> R {
    let (_, va) = ok(env.page(), "page")?;
    check((0..512).all(|i| read(va + i * 8) == 0), "all zero")
}
fn shared(env: &mut Env) -> R {
    let (f, va) = ok(env.page(), "page")?;
    let c = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(c, f.0, Rights::all()), "copy")?;
    let va2 = env.va(1);
    ok(
        env.map_in(ROOT_VSPACE, Frame(c), va2, Rights::READ | Rights::WRITE),
        "map the copy",
    )?;
    write(va, 77);
    check(read(va2) == 77, "same memory")
}
fn remap(env: &mut Env) -> R {
    let f = frame(env)?;
    let va = env.va(1);
    ok(env.map_in(ROOT_VSPACE, f, va, Rights::READ), "map read-only")?;
    ok(
        f.map(ROOT_VSPACE, va, Rights::READ | Rights::WRITE, false),
        "remap read-write",
    )?;
    write(va, 5);
    check(read(va) == 5, "writable now")
}
fn misaligned(env: &mut Env) -> R {
    let f = frame(env)?;
    let va = env.va(1);
    err(
        f.map(ROOT_VSPACE, va + 0x800, Rights::READ, false),
        Error::AlignmentError,
        "misaligned",
    )
}
fn past_limit(env: &mut Env) -> R {
    let f = frame(env)?;
    err(
        f.map(ROOT_VSPACE, 1 << 39, Rights::READ, false),
        Error::RangeError,
        "2^39",
    )?;
    err(
        f.map(ROOT_VSPACE, !0xfff, Rights::READ, false),
        Error::RangeError,
        "top",
    )
}
fn no_table(env: &mut Env) -> R {
    let f = frame(env)?;
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    err(
        f.map(vs, 0x1000, Rights::READ, false),
        Error::FailedLookup,
        "empty VSpace",
    )
}
fn maps_once(env: &mut Env) -> R {
    let (f, _) = ok(env.page(), "page")?;
    let va2 = env.va(1);
    err(
        f.map(ROOT_VSPACE, va2, Rights::READ, false),
        Error::IllegalOperation,
        "second place",
    )
}
fn occupied(env: &mut Env) -> R {
    let (_, va) = ok(env.page(), "page")?;
    let g = frame(env)?;
    err(g.map(ROOT_VSPACE, va, Rights::READ, false), Error::DeleteFirst, "taken")
}
fn needs_read(env: &mut Env) -> R {
    let f = frame(env)?;
    let va = env.va(1);
    err(
        env.map_in(ROOT_VSPACE, f, va, Rights::WRITE),
        Error::NoRights,
        "write-only",
    )?;
    let ro = ok(env.slot(), "slot")?;
    let g = frame(env)?;
    ok(ROOT_CNODE.copy(ro, g.0, Rights::WRITE), "cap without read")?;
    err(
        env.map_in(ROOT_VSPACE, Frame(ro), va, Rights::all()),
        Error::NoRights,
        "cap lacks read",
    )
}
fn bad_attrs(env: &mut Env) -> R {
    let f = frame(env)?;
    let va = env.va(1);
    err(
        invoke(f.0, Label::FrameMap, &[ROOT_VSPACE.0, va, Rights::READ.bits(), 0x10]),
        Error::RangeError,
        "attribute 0x10",
    )
}
fn needs_vspace(env: &mut Env) -> R {
    let f = frame(env)?;
    err(
        f.map(VSpace(ROOT_CNODE.0), 0x1000, Rights::READ, false),
        Error::InvalidCapability,
        "CNode as VSpace",
    )
}
fn unmap_unmapped(env: &mut Env) -> R {
    let f = frame(env)?;
    ok(f.unmap(), "unmap")?;
    ok(f.unmap(), "twice")
}
fn get_address(env: &mut Env) -> R {
    let (f, va) = ok(env.page(), "page")?;
    let (pa, bits, mapped) = ok(f.address(), "address")?;
    check(
        pa != 0 && pa % 4096 == 0 && bits == 12 && mapped == va,
        "pa, size, mapping",
    )?;
    ok(f.unmap(), "unmap")?;
    check(ok(f.address(), "address")?.2 == u64::MAX, "unmapped")
}
fn large_frame(env: &mut Env) -> R {
    let f = Frame(ok(env.alloc(ObjType::Frame, 21), "2 MiB frame")?);
    // A fresh 1 GiB region so no level-3 table is in the way.
    let va = 0x20_0000_0000u64;
    let pt = PageTable(ok(env.alloc(ObjType::PageTable, 0), "level-2 table")?);
    ok(pt.map(ROOT_VSPACE, va), "map table")?;
    ok(f.map(ROOT_VSPACE, va, Rights::READ | Rights::WRITE, false), "map block")?;
    write(va + 0x1f_fff8, 99);
    check(read(va + 0x1f_fff8) == 99, "last word of the block")
}
fn pt_once(env: &mut Env) -> R {
    let pt = PageTable(ok(env.alloc(ObjType::PageTable, 0), "table")?);
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    ok(pt.map(vs, 0), "map")?;
    err(pt.map(vs, 0x4000_0000), Error::IllegalOperation, "again")
}
fn pt_occupied(env: &mut Env) -> R {
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    let mut tables = [PageTable(0); 3];
    for t in &mut tables {
        *t = PageTable(ok(env.alloc(ObjType::PageTable, 0), "table")?);
    }
    ok(tables[0].map(vs, 0), "level 2")?;
    ok(tables[1].map(vs, 0), "level 3")?;
    err(tables[2].map(vs, 0), Error::DeleteFirst, "both levels taken")
}
fn pt_past_limit(env: &mut Env) -> R {
    let pt = PageTable(ok(env.alloc(ObjType::PageTable, 0), "table")?);
    err(pt.map(ROOT_VSPACE, 1 << 39), Error::RangeError, "2^39")
}
fn vmids(env: &mut Env) -> R {
    let a = VSpace(ok(env.alloc(ObjType::VSpace, 0), "a")?);
    let b = VSpace(ok(env.alloc(ObjType::VSpace, 0), "b")?);
    let (va, vb, vr) = (ok(a.vmid(), "a")?, ok(b.vmid(), "b")?, ok(ROOT_VSPACE.vmid(), "root")?);
    check(
        va != vb && va != vr && vb != vr && va != 0 && vb != 0,
        "distinct, non-zero",
    )
}
/// A VSpace retyped by hand (not through the allocator, which assigns) has no VMID.
fn bare_vspace(env: &mut Env) -> Result<VSpace, crate::Fail> {
    let s = ok(env.slot(), "slot")?;
    let ut = ok(env.alloc(ObjType::Untyped, 12), "untyped")?;
    ok(
        libl4::cap::Untyped(ut).retype(ObjType::VSpace, 0, ROOT_CNODE, s, 1),
        "retype",
    )?;
    Ok(VSpace(s))
}
fn no_vmid(env: &mut Env) -> R {
    let vs = bare_vspace(env)?;
    check(ok(vs.vmid(), "vmid")? == 0, "no VMID yet")?;
    let pt = PageTable(ok(env.alloc(ObjType::PageTable, 0), "table")?);
    err(pt.map(vs, 0), Error::IllegalOperation, "map a table")?;
    let t = libl4::cap::Tcb(ok(env.alloc(ObjType::Tcb, 0), "tcb")?);
    err(t.set_space(ROOT_CNODE, vs, 0), Error::IllegalOperation, "run in it")?;
    ok(
        libl4::cap::VmidPool(gaon_abi::bootinfo::slot::VMID_POOL).assign(vs),
        "assign from the root's pool",
    )?;
    ok(pt.map(vs, 0), "then it maps")
}
fn vmid_quota(env: &mut Env) -> R {
    let root_pool = libl4::cap::VmidPool(gaon_abi::bootinfo::slot::VMID_POOL);
    let p = ok(env.slot(), "slot")?;
    ok(root_pool.split(2, ROOT_CNODE, p), "a pool of two")?;
    let pool = libl4::cap::VmidPool(p);
    let (a, b, c) = (bare_vspace(env)?, bare_vspace(env)?, bare_vspace(env)?);
    ok(pool.assign(a), "first")?;
    ok(pool.assign(b), "second")?;
    err(pool.assign(c), Error::NoVmid, "third")?;
    let copy = ok(env.slot(), "slot")?;
    err(
        ROOT_CNODE.copy(copy, p, Rights::all()),
        Error::IllegalOperation,
        "copy a pool",
    )?;
    ok(root_pool.assign(c), "the root's pool still has VMIDs")?;
    ok(ROOT_CNODE.delete(a.0), "free one")?;
    ok(pool.assign(bare_vspace(env)?), "its VMID is the pool's again")
}
fn delete_unmaps(env: &mut Env) -> R {
    let (f, va) = ok(env.page(), "page")?;
    let c = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.copy(c, f.0, Rights::all()), "keep the frame alive")?;
    ok(ROOT_CNODE.delete(f.0), "delete the mapped cap")?;
    let g = frame(env)?;
    ok(g.map(ROOT_VSPACE, va, Rights::READ, false), "the address is free again")
}
fn pt_unmap_clears(env: &mut Env) -> R {
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    let l2 = PageTable(ok(env.alloc(ObjType::PageTable, 0), "l2")?);
    let l3 = PageTable(ok(env.alloc(ObjType::PageTable, 0), "l3")?);
    ok(l2.map(vs, 0), "l2")?;
    ok(l3.map(vs, 0), "l3")?;
    let f = frame(env)?;
    ok(f.map(vs, 0x5000, Rights::READ, false), "frame")?;
    ok(l3.unmap(), "unmap l3")?;
    ok(l3.map(vs, 0x20_0000), "remap l3 for the next 2 MiB")?;
    // The old entry must be gone: a new frame fits at 0x20_5000.
    let g = frame(env)?;
    ok(g.map(vs, 0x20_5000, Rights::READ, false), "slot is empty")?;
    err(
        f.map(vs, 0x5000, Rights::READ, false),
        Error::FailedLookup,
        "old range has no table",
    )
}
fn device_map(env: &mut Env) -> R {
    let Some(u) = env.device_untyped() else {
        return check(false, "no device untyped");
    };
    let s = ok(env.slot(), "slot")?;
    ok(u.retype(ObjType::Frame, 12, ROOT_CNODE, s, 1), "device frame")?;
    let va = env.va(1);
    ok(
        env.map_with(ROOT_VSPACE, Frame(s), va, Rights::READ, true),
        "map device frame",
    )
}
fn frame_unknown(env: &mut Env) -> R {
    let f = frame(env)?;
    err(
        invoke(f.0, Label::TcbResume, &[]),
        Error::UnknownInvocation,
        "Tcb label on a frame",
    )
}
