//! Regression tests for the isolation holes the security review found: each one
//! failed before its fix.
#![allow(
    clippy::many_single_char_names,
    reason = "k, a, t, c: the kernel, allocator and objects of each scenario, as in tests.rs"
)]

use super::super::Exception;
use super::*;
use crate::cdt::Mdb;
use crate::tcb::SLOT_CSPACE;

/// Issue one Call that must stop at a preemption point; undo the PC rewind (as if the
/// thread were switched out and another thread, or this one later, did something else).
fn preempted_call(k: &mut Kernel<Model>, cptr: u64, label: Label, args: &[u64]) {
    let t = k.current().unwrap();
    let pc = t.get().ctx.pc;
    t.get().ctx.x[0] = cptr;
    t.get().ctx.x[1] = MsgInfo::new(label as u64, args.len(), 0).0;
    t.get().ctx.x[2..2 + args.len()].copy_from_slice(args);
    t.get().ctx.x[7] = Syscall::Call as u64;
    let _ = k.handle_syscall();
    assert_eq!(t.get().ctx.pc, pc - 4, "preempted");
    t.get().ctx.pc = pc;
}

/// A thread whose CSpace C holds the last cap to the thread, while the thread's slot
/// holds the last cap to C, replaces its own CSpace with caps found through a second
/// CNode D. Deleting C would destroy the thread; before the fix the new caps were then
/// linked into the dead Tcb's slots (a CDT link into freed memory). Now the kernel
/// refuses up front and nothing changes.
#[test]
fn tcb_set_space_never_installs_into_a_thread_the_delete_destroyed() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let c = a.obj(&mut k, ObjType::CNode, 2);
    let d = a.obj(&mut k, ObjType::CNode, 2);
    let n = a.obj(&mut k, ObjType::CNode, 2);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let all = Rights::all().bits();
    // D[0] = the new CSpace, D[1] = a VSpace.
    invoke(&mut k, d, Label::CNodeCopy, &[0, n, all]).unwrap();
    invoke(&mut k, d, Label::CNodeCopy, &[1, rs::VSPACE, all]).unwrap();
    // C[1] = D with a 60-bit guard: cptr (1 << 62) | i names D[i] through C.
    invoke(&mut k, c, Label::CNodeMint, &[1, d, all, 60 << 56]).unwrap();
    invoke(&mut k, t, Label::TcbSetSpace, &[c, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let thread = root_slot(&k, t).cap.tcb();
    // C[0] = the only cap to the thread; the thread's slot has the only cap to C.
    invoke(&mut k, c, Label::CNodeMove, &[0, t]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[c]).unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(k.current(), Some(thread));

    let c_obj = thread.get().slots[SLOT_CSPACE].cap.obj;
    let r = invoke(&mut k, 0, Label::TcbSetSpace, &[1 << 62, (1 << 62) | 1, 0]);
    assert_eq!(r.err(), Some(Error::IllegalOperation), "refused up front");
    // Nothing changed: the thread is alive and runs in C with its old VSpace.
    assert_eq!(k.current(), Some(thread));
    assert_eq!(thread.get().state, ThreadState::Running);
    assert_eq!(thread.get().slots[SLOT_CSPACE].cap.obj, c_obj);
    assert!(thread.get().slots[crate::tcb::SLOT_VSPACE].cap.is(ObjType::VSpace));
}

/// A thread deletes the last cap to itself. The delete destroys it, and before the fix
/// the kernel then wrote the invocation's reply into the dead Tcb.
#[test]
fn a_thread_that_deletes_itself_gets_no_reply_written_into_its_dead_tcb() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let root = k.current().unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    let thread = k.current().unwrap();
    assert_ne!(thread, root);
    let info = MsgInfo::new(Label::CNodeDelete as u64, 1, 0).0;
    thread.get().ctx.x[..3].copy_from_slice(&[rs::CNODE, info, t]);
    thread.get().ctx.x[7] = Syscall::Call as u64;
    let _ = k.handle_syscall();
    assert_eq!(thread.get().ctx.x[1], info, "no reply written into the dead thread");
    assert_eq!(k.current(), Some(root), "the root runs again");
    assert!(root_slot(&k, t).cap.is_null());
}

/// The review's exploit: VSpace A with page tables P (level 2) and Q (level 3) mapping
/// frame F; A deleted, then F, whose memory becomes a CNode; P unmapped and mapped into
/// the attacker's own VSpace. Before the fix P (and Q under it) still held the path to
/// F's old memory, so EL0 could read and write the new CNode's slots.
#[test]
fn no_translation_survives_a_deleted_vspace_into_reused_memory() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let vs = a.obj(&mut k, ObjType::VSpace, 0);
    let p = a.obj(&mut k, ObjType::PageTable, 0);
    let q = a.obj(&mut k, ObjType::PageTable, 0);
    let uf = a.obj(&mut k, ObjType::Untyped, 12);
    let f = a.next;
    a.next += 1;
    invoke(
        &mut k,
        uf,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, f, 1],
    )
    .unwrap();
    let va = 0x20_0000_0000u64;
    let rw = (Rights::READ | Rights::WRITE).bits();
    invoke(&mut k, p, Label::PageTableMap, &[vs, va]).unwrap();
    invoke(&mut k, q, Label::PageTableMap, &[vs, va]).unwrap();
    invoke(&mut k, f, Label::FrameMap, &[vs, va, rw, 0]).unwrap();
    let f_pa = root_slot(&k, f).cap.obj;
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[vs]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[f]).unwrap();
    let cn = a.next;
    invoke(
        &mut k,
        uf,
        Label::UntypedRetype,
        &[ObjType::CNode as u64 | 6 << 8, rs::CNODE, cn, 1],
    )
    .unwrap();
    assert_eq!(root_slot(&k, cn).cap.obj, f_pa, "the frame's memory is a CNode now");
    invoke(&mut k, p, Label::PageTableUnmap, &[]).unwrap();
    let own = 0x30_0000_0000u64;
    invoke(&mut k, p, Label::PageTableMap, &[rs::VSPACE, own]).unwrap();
    let root_vs = at(root_slot(&k, rs::VSPACE).cap.obj);
    for off in (0..(1u64 << 30)).step_by(1 << 21) {
        assert_eq!(
            crate::vspace::translate(root_vs, own + off),
            None,
            "nothing mapped at {:#x}",
            own + off
        );
    }
    // Q, unmapped, is empty too and can be mapped again under P.
    invoke(&mut k, q, Label::PageTableUnmap, &[]).unwrap();
    invoke(&mut k, q, Label::PageTableMap, &[rs::VSPACE, own]).unwrap();
    assert_eq!(crate::vspace::translate(root_vs, own), None);
}

/// Operations of the address-space property test, on a few scratch slots.
#[derive(Clone, Debug)]
enum VmOp {
    Retype(u8),
    MapTable(u8, u8, u8),
    MapFrame(u8, u8, u8, u8),
    UnmapTable(u8),
    UnmapFrame(u8),
    Copy(u8, u8),
    Move(u8, u8),
    Delete(u8),
    Revoke(u8),
    RevokeUntyped,
}

const VM_SCRATCH: u8 = 7;
/// Addresses the test maps at: shared level-1 and level-2 entries, so maps collide.
const VM_VAS: [u64; 4] = [0x20_0000_0000, 0x20_0000_1000, 0x20_0020_0000, 0x20_4000_0000];

/// Slot classes: 0 a VSpace, 1..3 page tables, 3..6 frames, 6 a large frame. Ops
/// draw from the class they need, so the sequences that matter (map a table into a
/// VSpace, a frame under it, delete the VSpace) are common.
fn slot_type(x: u8) -> (ObjType, u64) {
    match x {
        0 => (ObjType::VSpace, 0),
        1..3 => (ObjType::PageTable, 0),
        3..6 => (ObjType::Frame, 12),
        _ => (ObjType::Frame, 21),
    }
}

fn vm_op() -> impl Strategy<Value = VmOp> {
    let s = 0u8..VM_SCRATCH;
    let v = prop_oneof![3 => Just(0u8), 1 => Just(VM_SCRATCH)]; // VM_SCRATCH: the root's own VSpace
    let va = 0u8..VM_VAS.len() as u8;
    prop_oneof![
        4 => s.clone().prop_map(VmOp::Retype),
        4 => (1u8..3, v.clone(), va.clone()).prop_map(|(a, b, c)| VmOp::MapTable(a, b, c)),
        4 => (3u8..7, v, va, 0u8..8).prop_map(|(a, b, c, r)| VmOp::MapFrame(a, b, c, r)),
        1 => (1u8..3).prop_map(VmOp::UnmapTable),
        1 => (3u8..7).prop_map(VmOp::UnmapFrame),
        1 => (3u8..6, 3u8..6).prop_map(|(a, b)| VmOp::Copy(a, b)),
        1 => (s.clone(), s.clone()).prop_map(|(a, b)| VmOp::Move(a, b)),
        2 => s.clone().prop_map(VmOp::Delete),
        1 => s.prop_map(VmOp::Revoke),
        1 => Just(VmOp::RevokeUntyped),
    ]
}

/// Every cap reachable from the root: its CNode's slots and, transitively, the slots of
/// the CNodes and Tcbs those caps name.
fn live_caps(k: &Kernel<Model>) -> Vec<crate::cap::Cap> {
    let root = k.current().unwrap();
    let mut containers = std::vec![root.get().slots[SLOT_CSPACE].cap];
    let mut seen = std::collections::BTreeSet::new();
    let mut caps = Vec::new();
    while let Some(c) = containers.pop() {
        if !seen.insert(c.obj) {
            continue;
        }
        let slots: Vec<usize> = if c.is(ObjType::CNode) {
            (0..1usize << (c.size_bits - gaon_abi::object::SLOT_BITS))
                .map(|i| c.obj + i * 64)
                .collect()
        } else {
            (0..crate::tcb::TCB_SLOTS)
                .map(|i| crate::tcb::slot_addr(at(c.obj), i))
                .collect()
        };
        for s in slots {
            let sc = kslot(s);
            if sc.cap.is_null() {
                continue;
            }
            // No derivation link points at an empty slot (a dead object's or a freed one).
            for l in [sc.mdb.next(), sc.mdb.prev()].into_iter().flatten() {
                assert!(!kslot(l).cap.is_null(), "a link to an empty slot");
            }
            if sc.cap.is(ObjType::CNode) || sc.cap.is(ObjType::Tcb) {
                containers.push(sc.cap);
            }
            caps.push(sc.cap);
        }
    }
    caps
}

/// The address-space invariant: walking every live VSpace, each table entry points to
/// a live page table whose cap records this place, each leaf to a live frame one of
/// whose caps records this mapping; every live page table that no VSpace reaches is
/// empty; and every live VSpace owns its VMID. `boot` lists the entries the kernel made
/// for the root server at boot (its tables and image frames have no caps).
fn check_vm(k: &Kernel<Model>, boot: &std::collections::BTreeSet<(usize, u64)>) {
    let caps = live_caps(k);
    let find = |ty: ObjType, obj: usize| caps.iter().filter(move |c| c.is(ty) && c.obj == obj);
    let mut reached = std::collections::BTreeSet::new();
    for (vmid, root) in k.vmids.iter().enumerate().skip(1) {
        let Some(root) = root.map(Ptr::addr) else {
            continue;
        };
        assert!(
            find(ObjType::VSpace, root).any(|c| c.badge == vmid as u64),
            "VMID {vmid} names a dead VSpace"
        );
        let mut stack = std::vec![(root, 1u32, 0u64)];
        while let Some((table, level, base)) = stack.pop() {
            for i in 0..crate::vspace::ENTRIES {
                let d = at::<crate::vspace::Table>(table).get()[i];
                if d & 1 == 0 {
                    continue;
                }
                let va = base + i as u64 * crate::vspace::entry_span(level);
                let out = crate::vspace::output(d);
                if boot.contains(&(table + i * 8, d)) {
                    if crate::vspace::is_table(d, level) {
                        stack.push((out, level + 1, va));
                    }
                    continue;
                }
                if crate::vspace::is_table(d, level) {
                    let ok = find(ObjType::PageTable, out)
                        .any(|c| c.mapped() == Some((vmid as u16, va)) && u32::from(c.guard_bits) == level + 1);
                    assert!(
                        ok,
                        "VMID {vmid} {va:#x}: a table entry to {out:#x}, not a live table mapped here"
                    );
                    assert!(reached.insert(out), "table {out:#x} reached twice");
                    stack.push((out, level + 1, va));
                } else {
                    assert!(level > 1, "no level-1 blocks");
                    let bits = if level == 2 { 21 } else { 12 };
                    let ok =
                        find(ObjType::Frame, out).any(|c| c.size_bits == bits && c.mapped() == Some((vmid as u16, va)));
                    assert!(
                        ok,
                        "VMID {vmid} {va:#x}: a leaf to {out:#x}, not a live frame mapped here"
                    );
                }
            }
        }
    }
    for c in caps.iter().filter(|c| c.is(ObjType::PageTable)) {
        if !reached.contains(&c.obj) {
            let t = at::<crate::vspace::Table>(c.obj).get();
            assert!(
                t.iter().all(|&d| d == 0),
                "unreachable table {:#x} holds entries",
                c.obj
            );
        }
    }
    for c in caps.iter().filter(|c| c.is(ObjType::VSpace)) {
        assert_eq!(
            k.vmids[c.badge as usize].map(Ptr::addr),
            Some(c.obj),
            "a live VSpace lost its VMID"
        );
    }
}

/// The entries (address, descriptor) of the root's VSpace as the kernel built it.
fn boot_entries(k: &Kernel<Model>) -> std::collections::BTreeSet<(usize, u64)> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = std::vec![(root_slot(k, rs::VSPACE).cap.obj, 1u32)];
    while let Some((table, level)) = stack.pop() {
        for i in 0..crate::vspace::ENTRIES {
            let d = at::<crate::vspace::Table>(table).get()[i];
            if d & 1 != 0 {
                out.insert((table + i * 8, d));
                if crate::vspace::is_table(d, level) {
                    stack.push((crate::vspace::output(d), level + 1));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    /// Random map, unmap, copy, move, delete, revoke and retype of VSpaces, page tables
    /// and frames from a small untyped (so memory is reused often): after every step no
    /// translation leads anywhere but to a live frame mapped there, unreachable tables
    /// are empty, and no capability links to a dead slot.
    #[test]
    fn address_spaces_never_keep_a_translation_to_dead_memory(ops in proptest::collection::vec(vm_op(), 1..80), every in 0u64..4) {
        let mut k = boot();
        k.platform.pending_every = every;
        let mut a = Alloc::new(&k);
        let ut = a.obj(&mut k, ObjType::Untyped, 23);
        let boot_entries = boot_entries(&k);
        let base = a.next;
        let slot = |x: u8| base + u64::from(x);
        let vspace = |x: u8| if x == VM_SCRATCH { rs::VSPACE } else { slot(x) };
        for op in ops {
            let _ = match op {
                VmOp::Retype(d) => {
                    let (ty, bits) = slot_type(d);
                    let r = invoke(&mut k, ut, Label::UntypedRetype, &[ty as u64 | bits << 8, rs::CNODE, slot(d), 1]);
                    if r.is_ok() && ty == ObjType::VSpace {
                        invoke(&mut k, rs::VMID_POOL, Label::VmidPoolAssign, &[slot(d)]).unwrap();
                    }
                    r
                }
                VmOp::MapTable(p, v, va) => invoke(&mut k, slot(p), Label::PageTableMap, &[vspace(v), VM_VAS[usize::from(va)]]),
                VmOp::MapFrame(f, v, va, r) => {
                    let va = VM_VAS[usize::from(va)] & !((1 << root_slot(&k, slot(f)).cap.size_bits.max(12)) - 1);
                    invoke(&mut k, slot(f), Label::FrameMap, &[vspace(v), va, u64::from(r) | 1, 0])
                }
                VmOp::UnmapTable(p) => invoke(&mut k, slot(p), Label::PageTableUnmap, &[]),
                VmOp::UnmapFrame(f) => invoke(&mut k, slot(f), Label::FrameUnmap, &[]),
                VmOp::Copy(x, y) => invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[slot(y), slot(x), 0xf]),
                VmOp::Move(x, y) => invoke(&mut k, rs::CNODE, Label::CNodeMove, &[slot(y), slot(x)]),
                VmOp::Delete(x) => invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[slot(x)]),
                VmOp::Revoke(x) => invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[slot(x)]),
                VmOp::RevokeUntyped => invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[ut]),
            };
            check_vm(&k, &boot_entries);
            let report = k.check_consistency(k.current().unwrap(), true);
            prop_assert!(report.ok(), "{report:?}");
        }
    }
}

/// A scheduling context runs out of budget, its thread is deleted, and it is bound to a
/// new runnable thread. Before the fix the new thread ran at once on the throttled
/// context, escaping its budget until the refill.
#[test]
fn a_throttled_scheduling_context_keeps_its_new_thread_waiting_for_the_refill() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    let sc = a.obj(&mut k, ObjType::SchedContext, 0);
    invoke(
        &mut k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc, 1000, 10_000, 0],
    )
    .unwrap();
    let spawn = |k: &mut Kernel<Model>, a: &mut Alloc| {
        let t = a.obj(k, ObjType::Tcb, 0);
        invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
        invoke(k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
        t
    };
    let t1 = spawn(&mut k, &mut a);
    invoke(&mut k, sc, Label::SchedContextBind, &[t1]).unwrap();
    invoke(&mut k, t1, Label::TcbResume, &[]).unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_ne!(k.current(), Some(root), "the budgeted thread runs");
    k.platform.now += 5_000;
    k.handle_timer();
    assert_eq!(k.current(), Some(root), "throttled: the root runs");
    let s = root_slot(&k, sc).cap.sched_context();
    assert!(s.get().throttled);

    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[t1]).unwrap();
    let t2 = spawn(&mut k, &mut a);
    let thread2 = root_slot(&k, t2).cap.tcb();
    invoke(&mut k, t2, Label::TcbResume, &[]).unwrap();
    invoke(&mut k, sc, Label::SchedContextBind, &[t2]).unwrap();
    assert!(!thread2.get().queued(), "waits for the refill off the run queue");
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(
        k.current(),
        Some(root),
        "the new thread does not run on the throttled context"
    );

    k.platform.now += 10_000;
    k.handle_timer();
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(k.current(), Some(thread2), "it runs after the refill");
}

/// Before the fix a RAM frame could be mapped with the device attribute.
#[test]
fn ram_frames_cannot_be_mapped_as_device_memory() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let f = a.obj(&mut k, ObjType::Frame, 12);
    let (l2, l3) = (
        a.obj(&mut k, ObjType::PageTable, 0),
        a.obj(&mut k, ObjType::PageTable, 0),
    );
    let va = 0x20_0000_0000u64;
    invoke(&mut k, l2, Label::PageTableMap, &[rs::VSPACE, va]).unwrap();
    invoke(&mut k, l3, Label::PageTableMap, &[rs::VSPACE, va]).unwrap();
    let rw = (Rights::READ | Rights::WRITE).bits();
    let device = gaon_abi::invocation::FRAME_ATTR_DEVICE;
    assert_eq!(
        invoke(&mut k, f, Label::FrameMap, &[rs::VSPACE, va, rw, device]).err(),
        Some(Error::IllegalOperation)
    );
    invoke(&mut k, f, Label::FrameMap, &[rs::VSPACE, va, rw, 0]).unwrap();
    // Nor remapped as device memory in place.
    assert_eq!(
        invoke(&mut k, f, Label::FrameMap, &[rs::VSPACE, va, rw, device]).err(),
        Some(Error::IllegalOperation)
    );
}

/// A frame held without both read and write rights cannot become an IPC buffer: before
/// the fix the kernel wrote replies into a read-only frame and read arguments from a
/// rights-less one.
#[test]
fn an_ipc_buffer_needs_read_and_write_rights() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let f = a.obj(&mut k, ObjType::Frame, 12);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let va = 0x20_0000_0000u64;
    for rights in [
        Rights::READ,
        Rights::WRITE,
        Rights::empty(),
        Rights::READ | Rights::EXECUTE,
    ] {
        let c = a.next;
        a.next += 1;
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[c, f, rights.bits()]).unwrap();
        let r = invoke(&mut k, t, Label::TcbSetIpcBuffer, &[va, c]);
        assert_eq!(r.err(), Some(Error::NoRights), "{rights:?}");
    }
    let c = a.next;
    invoke(
        &mut k,
        rs::CNODE,
        Label::CNodeCopy,
        &[c, f, (Rights::READ | Rights::WRITE).bits()],
    )
    .unwrap();
    invoke(&mut k, t, Label::TcbSetIpcBuffer, &[va, c]).unwrap();
}

/// FAR_EL2 is reported only for exceptions that set it. Before the fix an undefined
/// instruction's fault message carried the address of an earlier fault.
#[test]
fn fault_messages_carry_only_what_the_syndrome_makes_valid() {
    let stale = 0x31_2345_6780;
    // HPFAR_EL2 of that address: IPA bits 12.. in its bits 4...
    let hpfar = 0x31_2345_6780 >> 8 & !0xf;
    // udf: EC 0, FAR unknown.
    assert_eq!(
        Exception::from_sync(0x0200_0000, stale, hpfar),
        Exception::User {
            esr: 0x0200_0000,
            far: 0
        }
    );
    // brk: EC 0x3c.
    let brk = 0x3c << 26 | 1 << 25 | 7;
    assert_eq!(
        Exception::from_sync(brk, stale, hpfar),
        Exception::User { esr: brk, far: 0 }
    );
    // A data abort keeps its address, unless FnV says it is not valid.
    let dabt = 0x24 << 26 | 1 << 25 | 0x7;
    assert_eq!(
        Exception::from_sync(dabt, stale, hpfar),
        Exception::Vm {
            addr: stale,
            ipa: 0x31_2345_6780,
            instruction: false,
            esr: dabt
        }
    );
    assert_eq!(
        Exception::from_sync(dabt | 1 << 10, stale, hpfar),
        Exception::Vm {
            addr: 0,
            ipa: 0x31_2345_6000,
            instruction: false,
            esr: dabt | 1 << 10
        }
    );
    let iabt = 0x20 << 26 | 1 << 25;
    assert_eq!(
        Exception::from_sync(iabt, stale, hpfar),
        Exception::Vm {
            addr: stale,
            ipa: 0x31_2345_6780,
            instruction: true,
            esr: iabt
        }
    );
    // PC alignment: FAR is the misaligned PC.
    let pc_align = 0x22 << 26 | 1 << 25;
    assert_eq!(
        Exception::from_sync(pc_align, stale, hpfar),
        Exception::User {
            esr: pc_align,
            far: stale
        }
    );
    // An FIQ sets no syndrome at all; an SError has its own.
    assert_eq!(Exception::from_async(false, brk), Exception::User { esr: 0, far: 0 });
    let serror = 0x2f << 26 | 1 << 25;
    assert_eq!(
        Exception::from_async(true, serror),
        Exception::User { esr: serror, far: 0 }
    );
}

/// EL0 no longer programs the virtual timer; the handler of its line does, through the
/// kernel, and deleting the handler disarms it.
#[test]
fn only_the_user_timer_handler_sets_the_user_timer() {
    let mut k = boot();
    let a = Alloc::new(&k);
    let (h, other) = (a.next, a.next + 1);
    invoke(
        &mut k,
        rs::IRQ_CONTROL,
        Label::IrqControlGet,
        &[u64::from(super::USER_TIMER_IRQ), rs::CNODE, h],
    )
    .unwrap();
    invoke(&mut k, rs::IRQ_CONTROL, Label::IrqControlGet, &[100, rs::CNODE, other]).unwrap();
    invoke(&mut k, h, Label::IrqHandlerSetTimer, &[1234, 1]).unwrap();
    assert_eq!(k.platform.user_timer, Some(1234));
    assert_eq!(
        invoke(&mut k, h, Label::IrqHandlerSetTimer, &[1234, 2]).err(),
        Some(Error::InvalidArgument)
    );
    assert_eq!(
        invoke(&mut k, other, Label::IrqHandlerSetTimer, &[99, 1]).err(),
        Some(Error::IllegalOperation)
    );
    assert_eq!(k.platform.user_timer, Some(1234));
    invoke(&mut k, h, Label::IrqHandlerSetTimer, &[0, 0]).unwrap();
    assert_eq!(k.platform.user_timer, None);
    invoke(&mut k, h, Label::IrqHandlerSetTimer, &[77, 1]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[h]).unwrap();
    assert_eq!(k.platform.user_timer, None, "deleting the handler disarms the timer");
}

/// Before the fix any thread could halt the machine or write to the kernel console.
#[test]
fn debug_output_and_halt_need_the_debug_capability() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let err = |r: [u64; 7]| Error::from_raw(r[0]);
    // Without the cap (CPtr 0, an empty slot, a cap of another type): refused.
    for cptr in [0, 4000, ep] {
        assert!(
            err(sys(
                &mut k,
                Syscall::DebugPutChar,
                [u64::from(b'x'), cptr, 0, 0, 0, 0, 0]
            ))
            .is_some()
        );
        assert!(err(sys(&mut k, Syscall::DebugHalt, [3, cptr, 0, 0, 0, 0, 0])).is_some());
    }
    assert!(
        k.platform.out.is_empty() && k.platform.halted.is_none(),
        "nothing printed, no halt"
    );
    // With it (the root's, or a copy): allowed.
    sys(
        &mut k,
        Syscall::DebugPutChar,
        [u64::from(b'y'), rs::DEBUG, 0, 0, 0, 0, 0],
    );
    let copy = a.next;
    invoke(
        &mut k,
        rs::CNODE,
        Label::CNodeCopy,
        &[copy, rs::DEBUG, Rights::all().bits()],
    )
    .unwrap();
    assert_eq!(err(sys(&mut k, Syscall::DebugHalt, [3, copy, 0, 0, 0, 0, 0])), None);
    assert_eq!(k.platform.out, b"y");
    assert_eq!(k.platform.halted, Some(3));
}

/// Invoke to completion (through restarts); returns the result and the restarts.
fn invoke_to_completion(k: &mut Kernel<Model>, cptr: u64, label: Label, args: &[u64]) -> (Result<(), Error>, u64) {
    let before = k.restarts;
    let r = invoke(k, cptr, label, args).map(|_| ());
    (r, k.restarts - before)
}

/// A CNode of `2^radix` slots in root slot `at`, every slot holding a copy of an
/// endpoint.
fn full_cnode(k: &mut Kernel<Model>, a: &mut Alloc, radix: u64) -> u64 {
    let cn = a.obj(k, ObjType::CNode, radix);
    let ep = a.obj(k, ObjType::Endpoint, 0);
    for i in 0..1u64 << radix {
        invoke(k, cn, Label::CNodeCopy, &[i, ep, Rights::all().bits()]).unwrap();
    }
    cn
}

/// Deleting a full CNode is linear in its slots (before the fix every delete rescanned
/// from slot 0: a radix-16 CNode took 10.9 s in one syscall) and stops at a preemption
/// point whenever an interrupt is pending (before, it never stopped: the first call
/// finished, with interrupts masked throughout).
#[test]
fn deleting_a_large_cnode_is_linear_and_preemptible() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let radix = 12;
    let cn = full_cnode(&mut k, &mut a, radix);
    k.platform.pending_every = 100;
    let before = k.platform.preemption_checks.get();
    let (r, restarts) = invoke_to_completion(&mut k, rs::CNODE, Label::CNodeDelete, &[cn]);
    r.unwrap();
    let steps = k.platform.preemption_checks.get() - before;
    let slots = 1u64 << radix;
    assert!(
        restarts >= slots / 100 - 1,
        "stopped at the pending interrupts: {restarts}"
    );
    assert!(steps <= 2 * slots + 2 * restarts + 4, "{steps} steps for {slots} slots");
    assert!(root_slot(&k, cn).cap.is_null());
    check_tree(&k, a.next - 3, 3);
}

/// A chain of CNodes, each holding the last cap to the next: deleting its head was
/// quadratic in the length (1.3 s for 16384) and unpreemptible.
#[test]
fn deleting_a_chain_of_cnodes_is_linear_and_preemptible() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let n = 1500u64;
    // Built from the tail: each new CNode takes the previous head into its slot 0.
    let mut head = a.obj(&mut k, ObjType::CNode, 1);
    for _ in 0..n {
        let new = a.obj(&mut k, ObjType::CNode, 1);
        invoke(&mut k, new, Label::CNodeMove, &[0, head]).unwrap();
        head = new;
    }
    k.platform.pending_every = 7;
    let before = k.platform.preemption_checks.get();
    let (r, restarts) = invoke_to_completion(&mut k, rs::CNODE, Label::CNodeDelete, &[head]);
    r.unwrap();
    let steps = k.platform.preemption_checks.get() - before;
    // Per link: zombify, clear; a restart goes straight back to where it stopped.
    assert!(steps <= 3 * (n + 1) + restarts, "{steps} steps for {n} links");
    assert!(
        k.delete_visits <= 4 * (n + 1),
        "{} visits for {n} links",
        k.delete_visits
    );
    assert!(restarts >= (2 * n) / 7 - 1, "{restarts} restarts");
    assert!(root_slot(&k, head).cap.is_null());
}

/// A retype zeroes the memory it hands out in chunks, with a preemption point between
/// them, and carries on where it stopped when restarted (before, a retype of up to the
/// whole untyped zeroed it in one go with interrupts masked). Memory freed by deleting
/// every child is zeroed again, even after a preempted retype left progress behind.
#[test]
fn retype_zeroes_preemptibly_and_never_hands_out_old_data() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ut = a.obj(&mut k, ObjType::Untyped, 22);
    let f = a.next;
    // 2 MiB of frame, filled with garbage by its user, then deleted.
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 21 << 8, rs::CNODE, f, 1],
    )
    .unwrap();
    let pa = root_slot(&k, f).cap.obj;
    let mem = |off: usize| at::<u64>(pa + off);
    for off in (0..1 << 21).step_by(4096) {
        *mem(off).get() = 0xdead_beef;
    }
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[f]).unwrap();
    // Retyped again with an interrupt pending at every preemption point.
    k.platform.pending_every = 1;
    let (r, restarts) = invoke_to_completion(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 21 << 8, rs::CNODE, f, 1],
    );
    r.unwrap();
    let chunks = (1u64 << 21) / super::super::RETYPE_ZERO_CHUNK as u64;
    assert_eq!(restarts, chunks - 1, "one preemption point between chunks");
    assert_eq!(root_slot(&k, f).cap.obj, pa);
    assert!((0..1 << 21).step_by(4096).all(|off| *mem(off).get() == 0), "zeroed");
    // Garbage again; delete; a retype preempted half way; then a different, smaller
    // retype over the same memory: every byte handed out is zero.
    for off in (0..1 << 21).step_by(4096) {
        *mem(off).get() = 0xbad;
    }
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[f]).unwrap();
    k.platform.pending_every = 3;
    preempted_call(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 21 << 8, rs::CNODE, f, 1],
    );
    k.platform.pending_every = 0;
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::CNode as u64 | 12 << 8, rs::CNODE, f, 1],
    )
    .unwrap();
    let cn = root_slot(&k, f).cap;
    assert_eq!(cn.obj, pa);
    assert!(
        (0..1 << 18).step_by(8).all(|off| *mem(off).get() == 0),
        "an empty CNode"
    );
    invoke(&mut k, f, Label::CNodeCopy, &[5, rs::CNODE, Rights::all().bits()]).unwrap();
}

/// While a preempted delete has left a container half deleted (a zombie), nothing but
/// deleting it again reaches it.
#[test]
fn a_half_deleted_cnode_cannot_be_used() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let cn = full_cnode(&mut k, &mut a, 8);
    let spare = a.next;
    k.platform.pending_every = 5;
    preempted_call(&mut k, rs::CNODE, Label::CNodeDelete, &[cn]);
    k.platform.pending_every = 0;
    assert!(root_slot(&k, cn).cap.has(FLAG_ZOMBIE));
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeIdentify, &[cn]).unwrap()[..2],
        [0, 0],
        "a zombie reads as empty: no kernel addresses leak"
    );
    assert_eq!(
        invoke(&mut k, cn, Label::CNodeCopy, &[0, rs::VSPACE, 0xf]).err(),
        Some(Error::FailedLookup)
    );
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[spare, cn, 0xf]).err(),
        Some(Error::FailedLookup)
    );
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeMove, &[spare, cn]).err(),
        Some(Error::FailedLookup)
    );
    let ut = Alloc::new(&k).ut;
    assert_eq!(
        invoke(
            &mut k,
            ut,
            Label::UntypedRetype,
            &[ObjType::Endpoint as u64, rs::CNODE, cn, 1]
        )
        .err(),
        Some(Error::DeleteFirst)
    );
    // Deleting it again finishes the job.
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[cn]).unwrap();
    assert!(root_slot(&k, cn).cap.is_null());
    check_tree(&k, cn - 1, 3);
}

/// Revoking an untyped with many children stops at pending interrupts (before, it ran
/// to the end with interrupts masked) and carries on when restarted.
#[test]
fn revoke_is_preemptible() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ut = a.obj(&mut k, ObjType::Untyped, 16);
    let first = a.next;
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::Endpoint as u64, rs::CNODE, first, 256],
    )
    .unwrap();
    k.platform.pending_every = 10;
    let (r, restarts) = invoke_to_completion(&mut k, rs::CNODE, Label::CNodeRevoke, &[ut]);
    r.unwrap();
    assert!(restarts >= 25, "{restarts} restarts");
    assert!((first..first + 256).all(|s| root_slot(&k, s).cap.is_null()));
    check_tree(&k, first, 256);
}

/// VMIDs are a quota handed out as VmidPool capabilities. Before the fix any holder of
/// a 1 MiB untyped could retype 255 VSpaces and leave no VMID for anyone (and the next
/// VSpace retype failed with `NotEnoughMemory`).
#[test]
fn vmids_are_a_capability_managed_quota() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ut = a.obj(&mut k, ObjType::Untyped, 21);
    let first = a.next;
    a.next += 300;
    // 256 VSpaces from one untyped, and more: retype takes no VMID.
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::VSpace as u64, rs::CNODE, first, 256],
    )
    .unwrap();
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::VSpace as u64, rs::CNODE, first + 256, 10],
    )
    .unwrap();
    // Without a VMID a VSpace can be neither mapped into nor run in.
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    assert_eq!(
        invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, first, 0]).err(),
        Some(Error::IllegalOperation)
    );
    let pt = a.obj(&mut k, ObjType::PageTable, 0);
    assert_eq!(
        invoke(&mut k, pt, Label::PageTableMap, &[first, 0x20_0000_0000]).err(),
        Some(Error::IllegalOperation)
    );
    // A pool of 3, split off the root's, gives exactly 3.
    let pool = a.next;
    a.next += 1;
    invoke(&mut k, rs::VMID_POOL, Label::VmidPoolSplit, &[3, rs::CNODE, pool]).unwrap();
    for i in 0..3 {
        invoke(&mut k, pool, Label::VmidPoolAssign, &[first + i]).unwrap();
    }
    assert_eq!(
        invoke(&mut k, pool, Label::VmidPoolAssign, &[first + 3]).err(),
        Some(Error::NoVmid)
    );
    assert_eq!(
        invoke(&mut k, pool, Label::VmidPoolAssign, &[first]).err(),
        Some(Error::IllegalOperation),
        "it has one"
    );
    // A pool cannot be copied (that would double the quota), only moved.
    let copy = a.next;
    a.next += 1;
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[copy, pool, Rights::all().bits()]).err(),
        Some(Error::IllegalOperation)
    );
    // Everyone else still gets VMIDs from the root's pool; the three are not in it.
    let vmid = |k: &mut Kernel<Model>, s: u64| invoke(k, s, Label::VSpaceGetVmid, &[]).unwrap()[0];
    invoke(&mut k, rs::VMID_POOL, Label::VmidPoolAssign, &[first + 3]).unwrap();
    let theirs: Vec<u64> = (0..3).map(|i| vmid(&mut k, first + i)).collect();
    assert!(!theirs.contains(&vmid(&mut k, first + 3)));
    // Deleting a VSpace returns its VMID to whichever pool covers it.
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[first]).unwrap();
    invoke(&mut k, pool, Label::VmidPoolAssign, &[first + 4]).unwrap();
    assert_eq!(vmid(&mut k, first + 4), theirs[0]);
    // Every copy of a VSpace cap carries the VMID.
    let c = a.next;
    invoke(
        &mut k,
        rs::CNODE,
        Label::CNodeCopy,
        &[c, first + 5, Rights::all().bits()],
    )
    .unwrap();
    invoke(&mut k, rs::VMID_POOL, Label::VmidPoolAssign, &[first + 5]).unwrap();
    assert_eq!(vmid(&mut k, c), vmid(&mut k, first + 5));
    assert_ne!(vmid(&mut k, c), 0);
}

/// Once a reader binds a notification with `DebugLogBind`, the kernel's console output
/// (its own messages, `DebugPutChar`) goes to the kernel log page and the reader is
/// signalled, instead of the UART the console server owns. When the reader's
/// notification dies the output stays in the page (unsignalled) for the next reader: the
/// kernel never goes back to a UART a server may have stopped.
#[test]
fn kernel_output_goes_to_the_log_once_a_reader_binds() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let n = a.obj(&mut k, ObjType::Notification, 0);
    let badged = a.next;
    a.next += 1;
    invoke(
        &mut k,
        rs::CNODE,
        Label::CNodeMint,
        &[badged, n, Rights::all().bits(), 0x40],
    )
    .unwrap();
    // Binding needs the Debug cap and a notification it may signal.
    assert_eq!(
        invoke(&mut k, rs::IRQ_CONTROL, Label::DebugLogBind, &[badged]).err(),
        Some(Error::UnknownInvocation)
    );
    let ro = a.next;
    invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[ro, n, Rights::READ.bits()]).unwrap();
    assert_eq!(
        invoke(&mut k, rs::DEBUG, Label::DebugLogBind, &[ro]).err(),
        Some(Error::NoRights)
    );
    invoke(&mut k, rs::DEBUG, Label::DebugLogBind, &[badged]).unwrap();
    assert_eq!(k.platform.log_page, Some(root_slot(&k, rs::KERNEL_LOG).cap.obj));

    sys(
        &mut k,
        Syscall::DebugPutChar,
        [u64::from(b'z'), rs::DEBUG, 0, 0, 0, 0, 0],
    );
    assert_eq!(k.platform.logged, b"z");
    assert!(k.platform.out.is_empty(), "nothing on the UART");
    let r = sys(&mut k, Syscall::NbRecv, [n, 0, 0, 0, 0, 0, 0]);
    assert_eq!(r[0] & 0x40, 0x40, "the reader was signalled with its badge");

    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[badged]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[ro]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[n]).unwrap();
    assert_eq!(k.log_ntfn, None, "its reader is gone: nothing is signalled");
    sys(
        &mut k,
        Syscall::DebugPutChar,
        [u64::from(b'y'), rs::DEBUG, 0, 0, 0, 0, 0],
    );
    assert_eq!(k.platform.logged, b"zy", "still to the page");
    assert!(k.platform.out.is_empty(), "never the UART again");
}

// ---- Found by review of the preemptible deletion and retype (each failed before) ----

/// Review finding: a preempted delete leaves its root zombie with parent 0. Deleting the
/// CNode that holds that zombie reaches it as an inner zombie, and going back up from
/// it sets `cur = 0`: next_live_slot(0, ..) dereferences physical address 0.
#[test]
fn deleting_the_container_of_a_preempted_delete_root() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let c = a.obj(&mut k, ObjType::CNode, 1);
    let d = full_cnode(&mut k, &mut a, 6);
    // C[0] = the only cap to D.
    invoke(&mut k, c, Label::CNodeMove, &[0, d]).unwrap();
    k.platform.preemption_checks.set(0);
    k.platform.pending_every = 5;
    preempted_call(&mut k, c, Label::CNodeDelete, &[0]); // root = C[0], badge 0
    k.platform.pending_every = 0;
    // Another thread (or this one, by another path) deletes C itself.
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[c]).unwrap();
    assert!(root_slot(&k, c).cap.is_null());
}

/// Review finding: an unreachable two-CNode cycle across two untypeds. Revoking U2 starts at
/// A[0] (B's cap); after the last cap to A (in B[0]) is deleted, the root zombie A[0]
/// still lives in A's memory, which no cap owns any more. Preempted there, U1 has no
/// children and hands A's memory out again as a user frame while U2's CDT links still
/// point into it.
#[test]
fn a_preempted_revoke_leaves_a_cdt_slot_in_reusable_memory() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let u1 = a.obj(&mut k, ObjType::Untyped, 16);
    let u2 = a.obj(&mut k, ObjType::Untyped, 16);
    let (sa, sb, a2, b2, f) = (a.next, a.next + 1, a.next + 2, a.next + 3, a.next + 4);
    let all = Rights::all().bits();
    invoke(
        &mut k,
        u1,
        Label::UntypedRetype,
        &[ObjType::CNode as u64 | 1 << 8, rs::CNODE, sa, 1],
    )
    .unwrap();
    invoke(
        &mut k,
        u2,
        Label::UntypedRetype,
        &[ObjType::CNode as u64 | 1 << 8, rs::CNODE, sb, 1],
    )
    .unwrap();
    let a_obj = root_slot(&k, sa).cap.obj;
    invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[a2, sa, all]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[b2, sb, all]).unwrap();
    invoke(&mut k, a2, Label::CNodeMove, &[0, sb]).unwrap(); // A[0] = B
    invoke(&mut k, b2, Label::CNodeMove, &[0, sa]).unwrap(); // B[0] = A
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[a2]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[b2]).unwrap();
    // Revoke U2, preempted right after B[0] (the last cap to A) is deleted.
    k.platform.preemption_checks.set(0);
    k.platform.pending_every = 2;
    preempted_call(&mut k, rs::CNODE, Label::CNodeRevoke, &[u2]);
    k.platform.pending_every = 0;
    // U1 has no children: its memory (A's, with the zombie A[0] in it) is reused.
    invoke(
        &mut k,
        u1,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, f, 1],
    )
    .unwrap();
    let frame = root_slot(&k, f).cap;
    let next = root_slot(&k, u2).mdb.next().unwrap();
    assert_eq!(frame.obj, a_obj);
    // The user now writes a forged slot there (through a mapping of the frame): a cap
    // in U2's range with links of its choice.
    let root_tcb = k.current().unwrap().addr();
    let target = root_tcb + 256; // slot whose `mdb.prev` word is the Tcb's tpidr
    let u2_slot = core::ptr::from_mut(root_slot(&k, u2)) as usize;
    let u2_obj = root_slot(&k, u2).cap.obj;
    *kslot(a_obj) = Slot {
        cap: crate::cap::Cap::new(ObjType::Frame, u2_obj, 12),
        mdb: Mdb::new(Some(u2_slot), Some(target), true, false),
    };
    let tpidr_before = k.current().unwrap().get().tpidr;
    invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[u2]).unwrap();
    let tpidr_after = k.current().unwrap().get().tpidr;
    assert!(
        !(frame.obj..frame.end()).contains(&next),
        "U2's CDT link points into a user frame; the kernel wrote {tpidr_after:#x} (was {tpidr_before:#x}) into the root Tcb"
    );
}

/// Sanity of the cycle fix: a three-CNode cycle across three untypeds, with filler, is
/// revoked with interrupts pending at various rates, reusing the other untypeds'
/// memory at every preemption.
#[test]
fn three_cycles_revoked_under_preemption() {
    for every in 1..8u64 {
        for which in 0..3usize {
            let mut k = boot();
            let mut a = Alloc::new(&k);
            let all = Rights::all().bits();
            let us: Vec<u64> = (0..3).map(|_| a.obj(&mut k, ObjType::Untyped, 16)).collect();
            let ep = a.obj(&mut k, ObjType::Endpoint, 0);
            let base = a.next;
            a.next += 20;
            for i in 0..3u64 {
                invoke(
                    &mut k,
                    us[i as usize],
                    Label::UntypedRetype,
                    &[ObjType::CNode as u64 | 3 << 8, rs::CNODE, base + i, 1],
                )
                .unwrap();
                invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[base + 3 + i, base + i, all]).unwrap();
                for j in 1..8 {
                    invoke(&mut k, base + 3 + i, Label::CNodeCopy, &[j, ep, all]).unwrap();
                }
            }
            for i in 0..3u64 {
                // X_i[0] = X_{i+1}
                invoke(&mut k, base + 3 + i, Label::CNodeMove, &[0, base + (i + 1) % 3]).unwrap();
            }
            for i in 0..3u64 {
                invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[base + 3 + i]).unwrap();
            }
            k.platform.preemption_checks.set(0);
            k.platform.pending_every = every;
            let t = k.current().unwrap();
            let mut n = 0;
            loop {
                let pc = t.get().ctx.pc;
                t.get().ctx.x[0] = rs::CNODE;
                t.get().ctx.x[1] = MsgInfo::new(Label::CNodeRevoke as u64, 1, 0).0;
                t.get().ctx.x[2] = us[which];
                t.get().ctx.x[7] = Syscall::Call as u64;
                let _ = k.handle_syscall();
                if t.get().ctx.pc != pc - 4 {
                    break;
                }
                t.get().ctx.pc = pc;
                // Meanwhile: grab and scribble over whatever the other untypeds free.
                let save = k.platform.pending_every;
                k.platform.pending_every = 0;
                for (o, &u) in us.iter().enumerate() {
                    if o == which {
                        continue;
                    }
                    let f = base + 6 + n;
                    n += 1;
                    let r = invoke(
                        &mut k,
                        u,
                        Label::UntypedRetype,
                        &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, f, 1],
                    );
                    if r.is_ok() {
                        let p = root_slot(&k, f).cap.obj;
                        if p == root_slot(&k, u).cap.obj {
                            // The untyped had nothing left: its memory is handed out again.
                            for w in 0..512 {
                                *at::<u64>(p + 8 * w).get() = 0xdead_0000_0000_0040;
                            }
                        } else {
                            invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[f]).unwrap();
                        }
                    }
                }
                k.platform.pending_every = save;
            }
            k.platform.pending_every = 0;
            for &u in &us {
                invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[u]).unwrap();
            }
            check_tree(&k, base - 4, 24);
        }
    }
}

/// Review finding: the retype zeroing progress (`mapping`) is taken as "[start, mapping) is
/// zero", but a preempted retype only zeroed from its own *aligned* start: a smaller
/// retype afterwards starts below that, in memory never zeroed since its last use.
/// Here that memory holds slots the user wrote into a frame: the new CNode is full of
/// forged capabilities.
#[test]
fn a_preempted_large_retype_lets_a_small_one_skip_zeroing() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ut = a.obj(&mut k, ObjType::Untyped, 22);
    let (g, f0, big, c, got) = (a.next, a.next + 2, a.next + 3, a.next + 4, a.next + 5);
    a.next += 6;
    let frame = ObjType::Frame as u64 | 12 << 8;
    invoke(&mut k, ut, Label::UntypedRetype, &[frame, rs::CNODE, g, 2]).unwrap();
    // The user writes a forged slot into its frame G1 (a frame cap to the root CNode).
    let g1 = root_slot(&k, g + 1).cap.obj;
    let root_cnode = k.current().unwrap().get().slots[crate::tcb::SLOT_CSPACE].cap.obj;
    *kslot(g1) = Slot {
        cap: crate::cap::Cap::new(ObjType::Frame, root_cnode, 12),
        mdb: Mdb::new(None, None, true, false),
    };
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[g]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[g + 1]).unwrap();
    // A 4 KiB frame: the untyped is reset and [0, 4K) zeroed.
    invoke(&mut k, ut, Label::UntypedRetype, &[frame, rs::CNODE, f0, 1]).unwrap();
    // A 2 MiB frame (aligned start 2 MiB), preempted after its first chunk.
    k.platform.preemption_checks.set(0);
    k.platform.pending_every = 1;
    preempted_call(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 21 << 8, rs::CNODE, big, 1],
    );
    k.platform.pending_every = 0;
    // A 4 KiB CNode instead: start 4K, below the progress mark, so nothing is zeroed.
    invoke(
        &mut k,
        ut,
        Label::UntypedRetype,
        &[ObjType::CNode as u64 | 6 << 8, rs::CNODE, c, 1],
    )
    .unwrap();
    assert_eq!(root_slot(&k, c).cap.obj, g1);
    // A thread whose CSpace is the new CNode uses the forged cap (cptr 0 = slot 0).
    let _ = got;
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[c, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    let r = invoke(&mut k, 0, Label::FrameGetAddress, &[]);
    assert_ne!(
        r.map(|w| w[0] as usize),
        Ok(root_cnode),
        "a user thread holds a forged frame cap to the root CNode's memory"
    );
}

/// Review finding: the resume record is global and dropped by any other container delete,
/// and going back down the chain of zombies has no preemption point. A second thread
/// deleting any small CNode between the restarts makes every restart walk the whole
/// chain with interrupts masked: O(depth) per interrupt, O(depth^2) in total.
#[test]
fn interleaved_deletes_make_every_restart_walk_the_whole_chain() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let n = 1500u64;
    let mut head = a.obj(&mut k, ObjType::CNode, 1);
    for _ in 0..n {
        let new = a.obj(&mut k, ObjType::CNode, 1);
        invoke(&mut k, new, Label::CNodeMove, &[0, head]).unwrap();
        head = new;
    }
    let spare = a.next;
    let ut = Alloc::new(&k).ut;
    let t = k.current().unwrap();
    let mut restarts = 0u64;
    let mut longest = 0u64;
    loop {
        let before = k.delete_visits;
        let pc = t.get().ctx.pc;
        k.platform.preemption_checks.set(0);
        k.platform.pending_every = 7;
        t.get().ctx.x[0] = rs::CNODE;
        t.get().ctx.x[1] = MsgInfo::new(Label::CNodeDelete as u64, 1, 0).0;
        t.get().ctx.x[2] = head;
        t.get().ctx.x[7] = Syscall::Call as u64;
        let _ = k.handle_syscall();
        k.platform.pending_every = 0;
        longest = longest.max(k.delete_visits - before);
        if t.get().ctx.pc != pc - 4 {
            break;
        }
        t.get().ctx.pc = pc;
        restarts += 1;
        // "Another thread": create and delete a small CNode (a container delete).
        invoke(
            &mut k,
            ut,
            Label::UntypedRetype,
            &[ObjType::CNode as u64 | 1 << 8, rs::CNODE, spare, 1],
        )
        .unwrap();
        invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[spare]).unwrap();
    }
    assert!(
        k.delete_visits <= 4 * (n + 1) + 4 * restarts,
        "{} visits for {n} links over {restarts} restarts; one syscall visited {longest} zombies before its first preemption point",
        k.delete_visits
    );
}

/// abi.md: "revoking this pool deletes it" (the split-off pool).
#[test]
fn revoking_a_vmid_pool_deletes_the_pools_split_off_it() {
    let mut k = boot();
    let a = Alloc::new(&k);
    let child = a.next;
    invoke(&mut k, rs::VMID_POOL, Label::VmidPoolSplit, &[3, rs::CNODE, child]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[rs::VMID_POOL]).unwrap();
    assert!(
        root_slot(&k, child).cap.is_null(),
        "the split-off pool survived the revoke"
    );
}
