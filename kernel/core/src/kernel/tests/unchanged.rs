//! The invocation rule (issue 13): a failed invocation — one whose reply label is an
//! error — changes nothing. A world with objects of every type, in most of the states
//! they can be in (see `build`), receives random invocations from the root thread:
//! random caps (the world's, free slots, garbage cptrs), labels (mostly the cap type's
//! from `Label::of`, sometimes any or an unknown one), message lengths (mostly the
//! label's arity, sometimes shorter or longer), and arguments biased toward the ones
//! the decoders look at. Successful invocations are kept, so later ones run in a
//! changing world; the run of a case ends if one leaves the root unable to go on.
//!
//! The snapshot: every byte of the kernel's memory (the RAM region the kernel boots
//! over, and the device region behind the device untyped; both are host allocations
//! made here instead of `ram()`, so the test knows their bounds and can free them) and
//! the `Debug` text of the `Kernel` struct, which includes the model platform. Nothing
//! is excluded from it: no counter changes on a failed invocation (preemption points
//! are never reached; the model's interrupt is never pending). After a failed
//! invocation both must be identical but for the invoker's reply registers `x0` and
//! `x1` (16 bytes at the start of its Tcb's `ctx.x`). The RAM snapshot is kept in step
//! incrementally: copied whole after a success, and patched with what the driver
//! itself writes before each step (the invoker's `x0..x7` and its IPC buffer's MR5).
//!
//! A Call on an endpoint is IPC, not an invocation: such steps are skipped.
#![allow(
    clippy::many_single_char_names,
    reason = "k, a, t: the kernel, allocator and threads of the world, as in tests.rs"
)]

use core::ops::Range;
use std::vec;

use super::*;
use crate::cap::Cap;
use crate::tcb::SLOT_CSPACE;
use gaon_abi::invocation::REG_COUNT;

/// Known violations of the rule, each waiting for a fix larger than the test's scope:
/// `(type of the invoked cap, label, error)`. A failed invocation matching an entry is
/// not compared. Remove an entry when its invocation is fixed; the test then checks it.
const KNOWN_EXCEPTIONS: &[(ObjType, Label, Error)] = &[];

/// The kernel's RAM (as `boot()` has, but smaller: it is copied before every step).
const RAM_BYTES: usize = 4 << 20;
/// The device region: it becomes a device untyped.
const DEVICE_BYTES: usize = 1 << 16;
/// Empty slots of the root CNode kept free for destinations.
const FREE_SLOTS: u64 = 8;

/// Host memory the kernel owns, freed when the case ends.
struct Region {
    start: usize,
    layout: std::alloc::Layout,
}

impl Region {
    fn new(len: usize, align: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(len, align).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a non-zero size.
        let start = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        assert!(start != 0);
        Self { start, layout }
    }

    fn bytes(&self) -> &[u8] {
        #[allow(unsafe_code)]
        // SAFETY: the allocation is live and `layout.size()` long; the kernel is not
        // running while the test reads it.
        unsafe {
            core::slice::from_raw_parts(self.start as *const u8, self.layout.size())
        }
    }

    fn range(&self) -> Range<usize> {
        self.start..self.start + self.layout.size()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: allocated in `new` with this layout; the kernel using it is gone (it
        // is dropped before its regions, or never touches them in its own drop).
        unsafe {
            std::alloc::dealloc(self.start as *mut u8, self.layout);
        }
    }
}

/// A booted kernel over `ram` with `device` as device memory.
fn boot_over(ram: &Region, device: &Region) -> Kernel<Model> {
    super::boot_over(ram.range(), &[(device.start, device.layout.size())])
}

/// The world's caps, all in the root CNode: `(cptr, what it is)`.
struct World {
    caps: Vec<(u64, &'static str)>,
    free: Range<u64>,
}

/// Make `t` (a thread at priority 255) run in place of the root, issue one syscall as
/// it, which must block it, and return to the root.
fn block_as(k: &mut Kernel<Model>, root: Ptr<Tcb>, t: Ptr<Tcb>, number: Syscall, regs: [u64; 7]) {
    for _ in 0..8 {
        if k.current() == Some(t) {
            break;
        }
        sys(k, Syscall::Yield, [0; 7]);
    }
    assert_eq!(k.current(), Some(t), "the thread runs");
    sys(k, number, regs);
    assert_ne!(t.get().state, ThreadState::Running, "{number:?} blocked it");
    for _ in 0..8 {
        if k.current() == Some(root) {
            break;
        }
        sys(k, Syscall::Yield, [0; 7]);
    }
    assert_eq!(k.current(), Some(root), "back to the root");
}

/// A thread in the root's CSpace and VSpace at `prio`, resumed; its cptr and Tcb.
fn spawn(k: &mut Kernel<Model>, a: &mut Alloc, prio: u64) -> (u64, Ptr<Tcb>) {
    let t = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(k, t, Label::TcbSetPriority, &[prio, rs::TCB]).unwrap();
    invoke(k, t, Label::TcbResume, &[]).unwrap();
    (t, at(root_slot(k, t).cap.obj))
}

/// The next free slot of the root CNode.
fn take(a: &mut Alloc) -> u64 {
    a.next += 1;
    a.next - 1
}

#[allow(clippy::too_many_lines, reason = "one paragraph per kind of object")]
fn build(k: &mut Kernel<Model>) -> World {
    let root = k.current().unwrap();
    let mut a = Alloc::new(k);
    let all = Rights::all().bits();
    let mut caps: Vec<(u64, &'static str)> = std::vec![
        (rs::TCB, "root Tcb"),
        (rs::CNODE, "root CNode"),
        (rs::VSPACE, "root VSpace"),
        (rs::IRQ_CONTROL, "IrqControl"),
        (rs::SCHED_CONTROL, "SchedControl"),
        (rs::BOOTINFO_FRAME, "bootinfo frame"),
        (rs::IPC_BUFFER, "root IPC buffer frame"),
        (rs::SCHED_CONTEXT, "root SchedContext"),
        (rs::DEBUG, "Debug"),
        (rs::VMID_POOL, "root VmidPool (split)"),
        (rs::KERNEL_LOG, "kernel log frame"),
        (rs::TRACE_CONTROL, "TraceControl"),
        (rs::TRACE_RINGS, "trace rings frame (read-only)"),
        (a.ut, "untyped (boot, with children)"),
    ];
    let bi = bootinfo(k);
    let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
    let dev = (0..n)
        .find(|&i| bi.untyped[i].is_device != 0)
        .expect("a device untyped");
    caps.push((bi.untyped_slots.start + dev as u64, "device untyped"));

    // Endpoints: two senders queued on one, a receiver on another, an idle one.
    let ep_send = a.obj(k, ObjType::Endpoint, 0);
    for _ in 0..2 {
        let (_, t) = spawn(k, &mut a, 255);
        block_as(
            k,
            root,
            t,
            Syscall::Send,
            [ep_send, MsgInfo::new(3, 1, 0).0, 9, 0, 0, 0, 0],
        );
    }
    let ep_recv = a.obj(k, ObjType::Endpoint, 0);
    let rp_recv = a.obj(k, ObjType::Reply, 0);
    let (t_recv, tr) = spawn(k, &mut a, 255);
    block_as(k, root, tr, Syscall::Recv, [ep_recv, 0, 0, 0, 0, 0, rp_recv]);
    let ep_idle = a.obj(k, ObjType::Endpoint, 0);
    let ep_badged = take(&mut a);
    invoke(k, rs::CNODE, Label::CNodeMint, &[ep_badged, ep_idle, all, 77]).unwrap();
    caps.extend([
        (ep_send, "endpoint with 2 senders"),
        (ep_recv, "endpoint with a receiver"),
        (rp_recv, "reply object of a receiver"),
        (t_recv, "Tcb blocked on recv"),
        (ep_idle, "idle endpoint"),
        (ep_badged, "badged endpoint"),
    ]);

    // A reply object in use: a client waits in it for a server, which then waits on
    // the endpoint again with a second reply object.
    let ep_call = a.obj(k, ObjType::Endpoint, 0);
    let rp_used = a.obj(k, ObjType::Reply, 0);
    let rp_next = a.obj(k, ObjType::Reply, 0);
    let (t_srv, srv) = spawn(k, &mut a, 255);
    block_as(k, root, srv, Syscall::Recv, [ep_call, 0, 0, 0, 0, 0, rp_used]);
    let (t_cli, cli) = spawn(k, &mut a, 255);
    for _ in 0..8 {
        if k.current() == Some(cli) {
            break;
        }
        sys(k, Syscall::Yield, [0; 7]);
    }
    sys(k, Syscall::Call, [ep_call, MsgInfo::new(5, 0, 0).0, 0, 0, 0, 0, 0]);
    assert_eq!(cli.get().state, ThreadState::BlockedOnReply);
    block_as(k, root, srv, Syscall::Recv, [ep_call, 0, 0, 0, 0, 0, rp_next]);
    caps.extend([
        (ep_call, "endpoint with a server waiting"),
        (rp_used, "reply object in use"),
        (rp_next, "reply object of a waiting server"),
        (t_srv, "Tcb (server) blocked on recv"),
        (t_cli, "Tcb blocked on reply"),
    ]);

    // Notifications: one with a waiter, one bound, a free one with a badged and a
    // read-only copy.
    let n_wait = a.obj(k, ObjType::Notification, 0);
    let (t_nw, nw) = spawn(k, &mut a, 255);
    block_as(k, root, nw, Syscall::Recv, [n_wait, 0, 0, 0, 0, 0, 0]);
    let n_bound = a.obj(k, ObjType::Notification, 0);
    let t_bound = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t_bound, Label::TcbBindNotification, &[n_bound]).unwrap();
    let n_free = a.obj(k, ObjType::Notification, 0);
    let n_badged = take(&mut a);
    invoke(k, rs::CNODE, Label::CNodeMint, &[n_badged, n_free, all, 5]).unwrap();
    let n_ro = take(&mut a);
    invoke(k, rs::CNODE, Label::CNodeCopy, &[n_ro, n_free, Rights::READ.bits()]).unwrap();
    caps.extend([
        (n_wait, "notification with a waiter"),
        (t_nw, "Tcb blocked on a notification"),
        (n_bound, "bound notification"),
        (t_bound, "inactive Tcb with a bound notification"),
        (n_free, "unbound notification"),
        (n_badged, "badged notification"),
        (n_ro, "read-only notification"),
    ]);

    // Scheduling contexts: configured and bound to a runnable thread below the root's
    // priority, configured and unbound, unconfigured.
    let (t_run, _) = spawn(k, &mut a, 100);
    let sc_bound = a.obj(k, ObjType::SchedContext, 0);
    invoke(
        k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc_bound, 1000, 10_000, 7],
    )
    .unwrap();
    invoke(k, sc_bound, Label::SchedContextBind, &[t_run]).unwrap();
    let sc_conf = a.obj(k, ObjType::SchedContext, 0);
    invoke(
        k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc_conf, 500, 500, 0],
    )
    .unwrap();
    let sc_new = a.obj(k, ObjType::SchedContext, 0);
    caps.extend([
        (t_run, "runnable Tcb with a SchedContext"),
        (sc_bound, "bound SchedContext"),
        (sc_conf, "configured SchedContext"),
        (sc_new, "unconfigured SchedContext"),
    ]);

    // Virtual CPUs: one bound to an inactive thread (a guest), one unbound.
    let (t_guest, _) = spawn(k, &mut a, 50);
    invoke(k, t_guest, Label::TcbSuspend, &[]).unwrap();
    let vcpu_bound = a.obj(k, ObjType::VCpu, 0);
    invoke(k, vcpu_bound, Label::VCpuBindTcb, &[t_guest]).unwrap();
    let vcpu_free = a.obj(k, ObjType::VCpu, 0);
    caps.extend([
        (t_guest, "Tcb with a VCpu"),
        (vcpu_bound, "bound VCpu"),
        (vcpu_free, "unbound VCpu"),
    ]);

    // CNodes: small ones (one partly full), and a two-level CSpace: `top[1]` is `leaf`
    // with a 60-bit guard.
    let cn_small = a.obj(k, ObjType::CNode, 2);
    invoke(k, cn_small, Label::CNodeCopy, &[0, ep_idle, all]).unwrap();
    invoke(k, cn_small, Label::CNodeMint, &[3, n_free, all, 9]).unwrap();
    let cn_big = a.obj(k, ObjType::CNode, 4);
    let top = a.obj(k, ObjType::CNode, 2);
    let leaf = a.obj(k, ObjType::CNode, 2);
    invoke(k, leaf, Label::CNodeCopy, &[0, ep_idle, all]).unwrap();
    invoke(k, top, Label::CNodeMint, &[1, leaf, all, 60 << 56]).unwrap();
    let top_guarded = take(&mut a);
    invoke(k, rs::CNODE, Label::CNodeMint, &[top_guarded, top, all, (62 - 2) << 56]).unwrap();
    caps.extend([
        (cn_small, "CNode radix 2 (slots 0, 3 full)"),
        (cn_big, "empty CNode radix 4"),
        (top, "top CNode of a two-level CSpace"),
        (leaf, "leaf CNode of a two-level CSpace"),
        (top_guarded, "guarded copy of the top CNode"),
    ]);

    // Address spaces: a VSpace with a VMID and page tables and a frame mapped in it, a
    // VSpace without a VMID, unmapped frames and table.
    let vs = a.obj(k, ObjType::VSpace, 0);
    let vs_novmid = take(&mut a);
    invoke(
        k,
        a.ut,
        Label::UntypedRetype,
        &[ObjType::VSpace as u64, rs::CNODE, vs_novmid, 1],
    )
    .unwrap();
    let pt2 = a.obj(k, ObjType::PageTable, 0);
    let pt3 = a.obj(k, ObjType::PageTable, 0);
    let pt_free = a.obj(k, ObjType::PageTable, 0);
    let va = 0x10_0000_0000;
    invoke(k, pt2, Label::PageTableMap, &[vs, va]).unwrap();
    invoke(k, pt3, Label::PageTableMap, &[vs, va]).unwrap();
    let f_mapped = a.obj(k, ObjType::Frame, 12);
    invoke(k, f_mapped, Label::FrameMap, &[vs, va, all, 0]).unwrap();
    let f_free = a.obj(k, ObjType::Frame, 12);
    let f_ro = take(&mut a);
    invoke(k, rs::CNODE, Label::CNodeCopy, &[f_ro, f_free, Rights::READ.bits()]).unwrap();
    let dev_ut = caps.iter().find(|c| c.1 == "device untyped").unwrap().0;
    let f_dev = take(&mut a);
    invoke(
        k,
        dev_ut,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, f_dev, 1],
    )
    .unwrap();
    caps.extend([
        (vs, "VSpace with a VMID"),
        (vs_novmid, "VSpace without a VMID"),
        (pt2, "mapped level-2 page table"),
        (pt3, "mapped level-3 page table"),
        (pt_free, "unmapped page table"),
        (f_mapped, "mapped frame"),
        (f_free, "unmapped frame"),
        (f_ro, "read-only frame copy"),
        (f_dev, "device frame"),
    ]);

    // Threads with everything set: a two-level CSpace, fault and timeout endpoints, an
    // IPC buffer, a low MCP (an authority for priorities around it); an inactive one.
    let (t_full, _) = spawn(k, &mut a, 50);
    invoke(k, t_full, Label::TcbSetSpace, &[top, rs::VSPACE, ep_idle]).unwrap();
    invoke(k, t_full, Label::TcbSetIpcBuffer, &[0x1000_0000, f_free]).unwrap();
    invoke(k, t_full, Label::TcbSetTimeoutEndpoint, &[ep_badged]).unwrap();
    invoke(k, t_full, Label::TcbSetMcp, &[100, rs::TCB]).unwrap();
    let t_new = a.obj(k, ObjType::Tcb, 0);
    caps.extend([(t_full, "Tcb with everything set, MCP 100"), (t_new, "fresh Tcb")]);

    // Untypeds: one with children, one empty, one whose children are all gone (a
    // non-zero watermark).
    let ut_kids = a.obj(k, ObjType::Untyped, 14);
    let kid = take(&mut a);
    invoke(
        k,
        ut_kids,
        Label::UntypedRetype,
        &[ObjType::Endpoint as u64, rs::CNODE, kid, 1],
    )
    .unwrap();
    let ut_empty = a.obj(k, ObjType::Untyped, 12);
    let ut_freed = a.obj(k, ObjType::Untyped, 13);
    let gone = a.next;
    invoke(
        k,
        ut_freed,
        Label::UntypedRetype,
        &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, gone, 1],
    )
    .unwrap();
    invoke(k, rs::CNODE, Label::CNodeDelete, &[gone]).unwrap();
    caps.extend([
        (ut_kids, "untyped with a child"),
        (kid, "endpoint made from it"),
        (ut_empty, "empty untyped"),
        (ut_freed, "untyped whose children are gone"),
    ]);

    // VMID pools: a split one with a child of its own, and one whose only child was
    // deleted (fewer VMIDs left than it was made with).
    let pool_a = take(&mut a);
    invoke(k, rs::VMID_POOL, Label::VmidPoolSplit, &[8, rs::CNODE, pool_a]).unwrap();
    let pool_b = take(&mut a);
    invoke(k, pool_a, Label::VmidPoolSplit, &[2, rs::CNODE, pool_b]).unwrap();
    let pool_c = take(&mut a);
    invoke(k, rs::VMID_POOL, Label::VmidPoolSplit, &[4, rs::CNODE, pool_c]).unwrap();
    let pool_d = a.next;
    invoke(k, pool_c, Label::VmidPoolSplit, &[1, rs::CNODE, pool_d]).unwrap();
    invoke(k, rs::CNODE, Label::CNodeDelete, &[pool_d]).unwrap();
    caps.extend([
        (pool_a, "VmidPool with a child"),
        (pool_b, "VmidPool split off it"),
        (pool_c, "VmidPool whose child is gone"),
    ]);

    // IRQ handlers: the user timer's, and one bound to a notification.
    let h_timer = take(&mut a);
    invoke(k, rs::IRQ_CONTROL, Label::IrqControlGet, &[40, rs::CNODE, h_timer]).unwrap();
    let h_33 = take(&mut a);
    invoke(k, rs::IRQ_CONTROL, Label::IrqControlGet, &[33, rs::CNODE, h_33]).unwrap();
    invoke(k, h_33, Label::IrqHandlerSetNotification, &[n_badged]).unwrap();
    caps.extend([
        (h_timer, "user timer IrqHandler"),
        (h_33, "IrqHandler 33 with a notification"),
    ]);

    assert_eq!(k.current(), Some(root));
    for &(c, what) in &caps {
        assert!(!root_slot(k, c).cap.is_null(), "{what} at {c}");
    }
    World {
        caps,
        free: a.next..a.next + FREE_SLOTS,
    }
}

/// A cptr or other argument, biased toward what the decoders look at.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// What the label expects here: a cap of the world of the right type, or a number
    /// of the right kind.
    Fit(u8),
    /// A cap of the world (its index).
    Cap(u8),
    /// An empty slot of the root CNode.
    Free(u8),
    /// A cptr that names nothing: out of range, through the guarded CNode, huge.
    Garbage(u8),
    /// A small number: slot indices of the small CNodes, counts.
    Small(u8),
    /// A priority around an MCP (100 and 255).
    Prio(u8),
    /// A register index around `REG_COUNT`.
    Reg(u8),
    /// A retype's type and size word.
    Obj(u8, u8),
    /// 0, 1, `u64::MAX`, powers of two and their neighbours.
    Edge(u8),
    /// An address in the world VSpace's range, page- or block-aligned.
    Page(u16),
    Word(u64),
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        12 => any::<u8>().prop_map(Arg::Fit),
        4 => any::<u8>().prop_map(Arg::Cap),
        2 => any::<u8>().prop_map(Arg::Free),
        1 => any::<u8>().prop_map(Arg::Garbage),
        3 => any::<u8>().prop_map(Arg::Small),
        1 => any::<u8>().prop_map(Arg::Prio),
        1 => any::<u8>().prop_map(Arg::Reg),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(t, b)| Arg::Obj(t, b)),
        2 => any::<u8>().prop_map(Arg::Edge),
        1 => any::<u16>().prop_map(Arg::Page),
        1 => any::<u64>().prop_map(Arg::Word),
    ]
}

/// The type of cap a label expects as argument `pos`.
fn expected(label: Option<Label>, pos: usize) -> Option<ObjType> {
    use Label as L;
    use ObjType as T;
    Some(match (label?, pos) {
        (L::UntypedRetype | L::VmidPoolSplit | L::IrqControlGet, 1) | (L::TcbSetSpace, 0) => T::CNode,
        (L::TcbSetSpace, 1) | (L::FrameMap | L::PageTableMap | L::VmidPoolAssign, 0) => T::VSpace,
        (L::TcbSetSpace, 2) | (L::TcbSetTimeoutEndpoint, 0) => T::Endpoint,
        (L::TcbSetIpcBuffer, 1) => T::Frame,
        (L::TcbSetPriority | L::TcbSetMcp, 1) | (L::SchedContextBind | L::VCpuBindTcb, 0) => T::Tcb,
        (L::TcbBindNotification | L::IrqHandlerSetNotification | L::DebugLogBind, 0) => T::Notification,
        (L::SchedControlConfigure, 0) => T::SchedContext,
        _ => return None,
    })
}

/// A number of the kind a label decodes as argument `pos` (valid or just beside it).
fn fitting_word(label: Option<Label>, pos: usize, i: u8) -> Option<u64> {
    use Label as L;
    use ObjType as T;
    let pick = |xs: &[u64]| xs[usize::from(i) % xs.len()];
    let guard = [0, 5, 60 << 56, 62 << 56, 58 << 56 | 3, 1 << 56 | 3, u64::MAX];
    Some(match (label?, pos) {
        (L::UntypedRetype, 0) => {
            let kinds = [
                (T::Endpoint, 0),
                (T::Notification, 0),
                (T::Reply, 0),
                (T::Tcb, 0),
                (T::SchedContext, 0),
                (T::VCpu, 0),
                (T::CNode, 2),
                (T::CNode, 8),
                (T::CNode, 21),
                (T::Frame, 12),
                (T::Frame, 21),
                (T::PageTable, 0),
                (T::VSpace, 0),
                (T::Untyped, 4),
                (T::Untyped, 12),
                (T::Untyped, 20),
                (T::Untyped, 48),
                (T::IrqHandler, 0),
            ];
            let (ty, bits) = kinds[usize::from(i) % kinds.len()];
            ty as u64 | bits << 8
        }
        (L::UntypedRetype, 3) | (L::VmidPoolSplit, 0) => pick(&[1, 2, 3, 4, 8, 64, 255, 256, 257, 0]),
        (L::TcbSetIpcBuffer, 0) => 0x1000_0000 + (u64::from(i % 8) << 9),
        (L::FrameMap | L::PageTableMap, 1) => {
            0x10_0000_0000 + (u64::from(i % 8) << if i >= 128 { 21 } else { 12 }) + u64::from(i % 16 == 15) * (1 << 48)
        }
        (L::FrameMap | L::CNodeCopy | L::CNodeMint, 2) => u64::from(i % 16),
        (L::FrameMap, 3) | (L::IrqHandlerSetTimer, 1) => u64::from(i % 3),
        (L::TcbSetPriority | L::TcbSetMcp, 0) => pick(&[0, 50, 99, 100, 101, 254, 255, 256]),
        (L::TcbReadRegisters | L::TcbWriteRegisters, 0 | 1) => pick(&[
            0,
            1,
            2,
            3,
            REG_COUNT - 2,
            REG_COUNT - 1,
            REG_COUNT,
            REG_COUNT + 1,
            34,
            36,
        ]),
        (L::VCpuReadRegs | L::VCpuWriteRegs, 0 | 1) => pick(&[0, 1, 2, 24, 25, 26, 27, u64::MAX]),
        (L::VCpuInjectIrq, 0) => pick(&[0, 27, 40, 1019, 1020, 1023, u64::MAX]),
        (L::VCpuInjectIrq, 1) => pick(&[0, 0x80, 255, 256]),
        (L::VCpuInjectIrq, 2) => pick(&[0, 1, 2, 3, u64::MAX]),
        (L::IrqControlGet, 0) => pick(&[0, 31, 32, 33, 40, 41, 255, 256, 1024]),
        (L::SchedControlConfigure, 1 | 2) => pick(&[0, 1, 500, 1000, 10_000, 1 << 40, u64::MAX]),
        (L::CNodeMint, 3) | (L::CNodeMutate, 2) => pick(&guard),
        _ => return None,
    })
}

/// The value of argument `pos` of an invocation with `label`; `types` are the current
/// types of the world's caps.
fn value(w: &World, types: &[Option<ObjType>], label: Option<Label>, pos: usize, a: Arg) -> u64 {
    match a {
        Arg::Fit(i) if expected(label, pos).is_none() && fitting_word(label, pos, i).is_some() => {
            fitting_word(label, pos, i).unwrap_or_default()
        }
        Arg::Fit(i) => {
            let fits: Vec<u64> = match expected(label, pos) {
                Some(ty) => w
                    .caps
                    .iter()
                    .zip(types)
                    .filter(|(_, t)| **t == Some(ty))
                    .map(|(c, _)| c.0)
                    .collect(),
                None => Vec::new(),
            };
            if fits.is_empty() {
                w.caps[usize::from(i) % w.caps.len()].0
            } else {
                fits[usize::from(i) % fits.len()]
            }
        }
        Arg::Cap(i) => w.caps[usize::from(i) % w.caps.len()].0,
        Arg::Free(i) => w.free.start + u64::from(i) % FREE_SLOTS,
        Arg::Garbage(x) => [4096, 4095, u64::MAX, 1 << 12 | 3, (1 << 62) | 1, w.free.end + 100][usize::from(x) % 6],
        Arg::Small(x) => u64::from(x % 20),
        Arg::Prio(x) => [98, 99, 100, 101, 102, 253, 254, 255, 256, 257][usize::from(x) % 10],
        Arg::Reg(x) => [0, 1, 2, REG_COUNT - 2, REG_COUNT - 1, REG_COUNT, REG_COUNT + 1][usize::from(x) % 7],
        Arg::Obj(t, b) => u64::from(t % 18) | [0u64, 2, 4, 12, 13, 16, 21, 30, 64][usize::from(b) % 9] << 8,
        Arg::Edge(x) => edge_value(x),
        Arg::Page(p) => 0x10_0000_0000 + (u64::from(p % 1024) << if p >= 0x8000 { 21 } else { 12 }),
        Arg::Word(x) => x,
    }
}

/// The invoked cap.
#[derive(Clone, Copy, Debug)]
enum Target {
    Cap(u8),
    Free(u8),
    Garbage(u8),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        14 => any::<u8>().prop_map(Target::Cap),
        1 => any::<u8>().prop_map(Target::Free),
        1 => any::<u8>().prop_map(Target::Garbage),
    ]
}

/// One invocation: cap, label choice, length choice, arguments.
type Step = (Target, u8, u8, [Arg; 6]);

fn step() -> impl Strategy<Value = Step> {
    (target(), any::<u8>(), any::<u8>(), proptest::array::uniform6(arg()))
}

/// Arguments a label decodes.
fn arity(l: Label) -> usize {
    use Label as L;
    match l {
        L::UntypedRetype | L::CNodeMint | L::FrameMap | L::SchedControlConfigure => 4,
        L::CNodeCopy | L::CNodeMutate | L::TcbSetSpace | L::VmidPoolSplit | L::IrqControlGet | L::VCpuInjectIrq => 3,
        L::CNodeMove
        | L::TcbSetIpcBuffer
        | L::TcbSetPriority
        | L::TcbSetMcp
        | L::TcbReadRegisters
        | L::VCpuReadRegs
        | L::PageTableMap
        | L::IrqHandlerSetTimer => 2,
        L::CNodeDelete
        | L::CNodeRevoke
        | L::CNodeIdentify
        | L::TcbBindNotification
        | L::TcbSetTimeoutEndpoint
        | L::VmidPoolAssign
        | L::IrqHandlerSetNotification
        | L::SchedContextBind
        | L::VCpuBindTcb
        | L::DebugLogBind => 1,
        L::TcbWriteRegisters | L::VCpuWriteRegs => 6,
        _ => 0,
    }
}

/// The raw label and length of an invocation of a cap of type `ty`: mostly one of its
/// type's labels with all its arguments, sometimes any label, a garbage one, or a
/// truncated (or longer) message.
fn label_and_len(ty: Option<ObjType>, l: u8, n: u8) -> (u64, usize, Option<Label>) {
    let of_type = ty.map_or(&[][..], Label::of);
    let label = match l % 8 {
        0 => Some(Label::ALL[usize::from(l / 8) % Label::ALL.len()]),
        1 => None,
        _ if !of_type.is_empty() => Some(of_type[usize::from(l / 8) % of_type.len()]),
        _ => Some(Label::ALL[usize::from(l / 8) % Label::ALL.len()]),
    };
    let raw = label.map_or([0, 2, 9, 99, 1 << 40][usize::from(l / 8) % 5], |x| x as u64);
    let len = match (label, n % 4) {
        (Some(x), 1..=3) => arity(x),
        _ => usize::from(n / 4) % 8,
    };
    (raw, len, label)
}

/// What the byte at `addr` is, as far as the caps in the world tell.
fn describe(root: Ptr<Tcb>, addr: usize) -> std::string::String {
    use std::format;
    let root_cn = root.get().slots[SLOT_CSPACE].cap;
    let mut best: Option<(u8, Cap)> = None;
    for i in 0..1usize << (root_cn.size_bits - 6) {
        let c = kslot(root_cn.obj + i * 64).cap;
        if c.is_null() || c.is(ObjType::Untyped) || c.obj == 0 {
            continue;
        }
        let bits = c.size_bits;
        if (c.obj..c.obj + (1 << bits)).contains(&addr) && best.is_none_or(|(b, _)| bits < b) {
            best = Some((bits, c));
        }
    }
    let Some((_, c)) = best else {
        return format!("{addr:#x} (in no object a cap of the root CNode names)");
    };
    let off = addr - c.obj;
    match c.ty() {
        Some(ObjType::CNode) => {
            let (i, o) = (off / 64, off % 64);
            let field = match o {
                0..8 => "cap word obj",
                8..16 => "cap word badge",
                16..24 => "cap word mapping",
                24..32 => "cap bytes size_bits/flags/guard_bits/rights/kind",
                32..48 => "mdb prev/next",
                _ => "mdb flags",
            };
            format!("{addr:#x}: CNode {:#x} slot {i} byte {o} ({field})", c.obj)
        }
        Some(ObjType::Tcb) => {
            let t = c.tcb().get();
            let x0 = core::ptr::from_ref(&t.ctx.x[0]) as usize - c.obj;
            let slots = core::ptr::from_ref(&t.slots) as usize - c.obj;
            let what = if (x0..x0 + 31 * 8).contains(&off) {
                format!("ctx.x[{}]", (off - x0) / 8)
            } else if (slots..slots + 5 * 64).contains(&off) {
                format!("slots[{}] byte {}", (off - slots) / 64, (off - slots) % 64)
            } else {
                format!("offset {off}")
            };
            format!("{addr:#x}: Tcb {:#x} {what}", c.obj)
        }
        ty => format!("{addr:#x}: {ty:?} {:#x} offset {off}", c.obj),
    }
}

/// The first byte that differs, outside `skip`.
fn first_diff(a: &[u8], b: &[u8], skip: &Range<usize>) -> Option<usize> {
    if a[..skip.start] == b[..skip.start] && a[skip.end..] == b[skip.end..] {
        return None;
    }
    (0..a.len()).find(|&i| !skip.contains(&i) && a[i] != b[i])
}

/// The first difference of two Debug texts, with some context.
fn text_diff(a: &str, b: &str) -> Option<std::string::String> {
    if a == b {
        return None;
    }
    let i = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))?;
    let from = a[..i].char_indices().rev().nth(120).map_or(0, |(j, _)| j);
    let cut = |s: &str| -> std::string::String { s.get(from..(i + 80).min(s.len())).unwrap_or("").into() };
    Some(std::format!(
        "at char {i}:\n  before: …{}\n  after:  …{}",
        cut(a),
        cut(b)
    ))
}

/// The argument words of a step invoking `cptr` (a cap of type `ty`) with `label`.
fn arguments(
    k: &Kernel<Model>,
    w: &World,
    cptr: u64,
    ty: Option<ObjType>,
    label: Option<Label>,
    args: [Arg; 6],
) -> [u64; 6] {
    let root = k.current().unwrap();
    let root_cn = root.get().slots[SLOT_CSPACE].cap;
    let types: Vec<Option<ObjType>> = w.caps.iter().map(|c| root_slot(k, c.0).cap.ty()).collect();
    let mut a = [0; 6];
    for (i, x) in args.into_iter().enumerate() {
        a[i] = value(w, &types, label, i, x);
    }
    // A free slot (or a fitting cap) as a destination index names a slot of the
    // destination CNode: for the root CNode the slot numbers are right as they are;
    // for the others they become indices in (and one past) their range.
    let dst = match label {
        Some(Label::UntypedRetype | Label::VmidPoolSplit | Label::IrqControlGet) => Some((2, a[1])),
        Some(_) if ty == Some(ObjType::CNode) => Some((0, cptr)),
        _ => None,
    };
    if let Some((pos, cn)) = dst
        && let Arg::Free(i) | Arg::Fit(i) = args[pos]
        && let Ok((_, c)) = k.lookup_cap(root, cn)
        && c.is(ObjType::CNode)
        && c.obj != root_cn.obj
    {
        a[pos] = u64::from(i) % ((1 << (c.size_bits - 6)) + 1);
    }
    a
}

/// Handle the current thread's syscall, an invocation. The count of syscalls that
/// went the general way (`DebugSlowpathCount`) is a statistic, not state: checked
/// (an invocation is a Call on the general path) and put back.
fn handle_invocation(k: &mut Kernel<Model>) -> Result<(), TestCaseError> {
    let slow = k.slowpath_count;
    let _ = k.handle_syscall();
    prop_assert_eq!(std::mem::replace(&mut k.slowpath_count, slow), slow + 1);
    Ok(())
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let ram = Region::new(RAM_BYTES, 1 << 21);
    let device = Region::new(DEVICE_BYTES, DEVICE_BYTES);
    let mut k = boot_over(&ram, &device);
    let w = build(&mut k);
    let root = k.current().unwrap();
    let root_cn = root.get().slots[SLOT_CSPACE].cap;
    // The reply registers x0 and x1, as offsets in the RAM snapshot.
    let x0 = core::ptr::from_ref(&root.get().ctx.x[0]) as usize - ram.start;
    let reply_regs = x0..x0 + 16;
    let mut before_ram = ram.bytes().to_vec();
    let mut before_dev = device.bytes().to_vec();
    for (n, &(tgt, l, len, args)) in steps.iter().enumerate() {
        let cptr = match tgt {
            Target::Cap(i) => w.caps[usize::from(i) % w.caps.len()].0,
            Target::Free(i) => value(&w, &[], None, 0, Arg::Free(i)),
            Target::Garbage(i) => value(&w, &[], None, 0, Arg::Garbage(i)),
        };
        let cap = k.lookup_cap(root, cptr).ok().map(|(_, c)| c);
        let ty = cap.and_then(|c| c.ty());
        if ty == Some(ObjType::Endpoint) {
            continue; // a Call on an endpoint is IPC, not an invocation
        }
        let (raw, len, label) = label_and_len(ty, l, len);
        if label == Some(Label::TcbSuspend) && cap.is_some_and(|c| c.obj == root.addr()) {
            continue; // it cannot fail, and it would end the run
        }
        let a = arguments(&k, &w, cptr, ty, label, args);
        let ctx = &mut root.get().ctx;
        ctx.x[0] = cptr;
        ctx.x[1] = MsgInfo::new(raw, len, 0).0;
        ctx.x[2..7].copy_from_slice(&a[..5]);
        ctx.x[7] = Syscall::Call as u64;
        let pc = ctx.pc;
        crate::kernel::message::set_mr(root, 5, a[5]);
        // The snapshot is the state after the last step; the step wrote the invoker's
        // x0..x7 and its IPC buffer's MR5 since.
        let mr5 = crate::kernel::message::ipc_buffer(root)
            .map(|b| b.addr() + gaon_abi::message::ipc_buffer_msg_offset(5) - ram.start);
        for r in [Some(x0..x0 + 64), mr5.map(|m| m..m + 8)].into_iter().flatten() {
            before_ram[r.clone()].copy_from_slice(&ram.bytes()[r]);
        }
        let before = std::format!("{k:?}");
        handle_invocation(&mut k)?;
        prop_assert_ne!(root.get().ctx.pc, pc - 4, "preempted with no interrupt pending");
        let what = || {
            std::format!(
                "step {n}: cptr {cptr} ({}) {label:?} (raw {raw}) length {len} args {a:x?}",
                w.caps
                    .iter()
                    .find(|c| c.0 == cptr)
                    .map_or_else(|| std::format!("{ty:?}"), |c| std::format!("{ty:?}: {}", c.1))
            )
        };
        let Some(e) = MsgInfo(root.get().ctx.x[1]).error() else {
            before_ram.copy_from_slice(ram.bytes());
            before_dev.copy_from_slice(device.bytes());
            // Kept; stop when the root can no longer drive (it deleted or stopped
            // itself, or gave itself another CSpace).
            if k.current() != Some(root)
                || root.get().state != ThreadState::Running
                || root.get().slots[SLOT_CSPACE].cap != root_cn
            {
                return Ok(());
            }
            continue;
        };
        prop_assert_eq!(k.current(), Some(root), "{}: {:?} but another thread runs", what(), e);
        if ty.is_some_and(|t| label.is_some_and(|l| KNOWN_EXCEPTIONS.contains(&(t, l, e)))) {
            before_ram.copy_from_slice(ram.bytes());
            before_dev.copy_from_slice(device.bytes());
            continue;
        }
        if let Some(i) = first_diff(&before_ram, ram.bytes(), &reply_regs) {
            let addr = ram.start + i;
            prop_assert!(
                false,
                "{}: failed with {:?} but changed {} from {:#04x} to {:#04x}",
                what(),
                e,
                describe(root, addr),
                before_ram[i],
                ram.bytes()[i]
            );
        }
        if let Some(i) = first_diff(&before_dev, device.bytes(), &(0..0)) {
            prop_assert!(
                false,
                "{}: failed with {:?} but changed device byte {:#x}",
                what(),
                e,
                device.start + i
            );
        }
        if let Some(d) = text_diff(&before, &std::format!("{k:?}")) {
            prop_assert!(
                false,
                "{}: failed with {:?} but changed the Kernel struct {}",
                what(),
                e,
                d
            );
        }
        before_ram[reply_regs.clone()].copy_from_slice(&ram.bytes()[reply_regs.clone()]);
    }
    Ok(())
}

#[test]
fn the_world_has_every_type() {
    let ram = Region::new(RAM_BYTES, 1 << 21);
    let device = Region::new(DEVICE_BYTES, DEVICE_BYTES);
    let mut k = boot_over(&ram, &device);
    let w = build(&mut k);
    for ty in ObjType::ALL {
        assert!(
            w.caps.iter().any(|&(c, _)| root_slot(&k, c).cap.ty() == Some(ty)),
            "{ty:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Random invocations on the world: every failed one leaves every byte of the
    /// kernel's memory and its global state as they were, but the invoker's x0 and x1.
    #[test]
    fn a_failed_invocation_changes_nothing(steps in proptest::collection::vec(step(), 1..200)) {
        run(&steps)?;
    }
}
