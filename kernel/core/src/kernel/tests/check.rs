//! The consistency check (`kernel/check.rs`): it passes on a kernel driven through
//! random syscalls, invocations, ticks and interrupts by several threads, and it finds
//! each kind of corruption planted by hand (and ends on a cyclic one).
#![allow(
    clippy::many_single_char_names,
    reason = "k, a, t: the kernel, allocator and thread of each scenario, as in tests.rs"
)]

use super::super::check::Problem;
use super::*;
use crate::tcb::{SLOT_CSPACE, State};

/// Check from the root thread, as the fuzz image's supervisor does.
pub(super) fn check(k: &Kernel<Model>, root: Ptr<Tcb>) -> super::super::Report {
    k.check_consistency(root, true)
}

/// The root's thread (slot 1 of its CNode).
fn root_thread(k: &Kernel<Model>) -> Ptr<Tcb> {
    at(root_slot(k, rs::TCB).cap.obj)
}

#[test]
fn a_booted_kernel_is_consistent_and_the_syscall_says_so() {
    let mut k = boot();
    let root = root_thread(&k);
    let r = check(&k, root);
    assert!(r.ok(), "{r:?}");
    assert!(!r.truncated);
    assert_eq!(r.slots, 5 + 4096, "the root's Tcb and CNode");
    assert!(r.caps >= 16, "every boot capability is on a walked list: {r:?}");
    let out = sys(&mut k, Syscall::DebugCheckConsistency, [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(out[0], 0, "consistent");
    assert_eq!((out[1], out[2], out[3]), (0, r.slots, r.caps));
    assert_eq!(out[6], 0, "not truncated");
}

/// A thread at priority `prio` in the root's CSpace and VSpace, resumed.
fn thread(k: &mut Kernel<Model>, a: &mut Alloc, prio: u64) -> (u64, Ptr<Tcb>) {
    let t = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(k, t, Label::TcbSetPriority, &[prio, rs::TCB]).unwrap();
    invoke(k, t, Label::TcbResume, &[]).unwrap();
    (t, at(root_slot(k, t).cap.obj))
}

#[test]
fn a_corrupted_derivation_link_is_found() {
    let mut k = boot();
    let root = root_thread(&k);
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let copy = a.next;
    a.next += 1;
    invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[copy, ep, Rights::all().bits()]).unwrap();
    let other = a.obj(&mut k, ObjType::Notification, 0);
    assert!(check(&k, root).ok());

    // The copy's `prev` names the notification, which does not name it back.
    let saved = root_slot(&k, copy).mdb;
    let n_addr = core::ptr::from_mut(root_slot(&k, other)) as usize;
    root_slot(&k, copy).mdb.set_prev(Some(n_addr));
    let r = check(&k, root);
    assert!(r.found(Problem::LinkNotMirrored), "{r:?}");
    root_slot(&k, copy).mdb = saved;
    assert!(check(&k, root).ok());

    // A link to an empty slot.
    let empty = core::ptr::from_mut(root_slot(&k, a.next)) as usize;
    root_slot(&k, copy).mdb.set_next(Some(empty));
    let r = check(&k, root);
    assert!(r.found(Problem::LinkToEmpty), "{r:?}");
    root_slot(&k, copy).mdb = saved;

    // An empty slot with links.
    root_slot(&k, a.next).mdb.set_next(Some(n_addr));
    let r = check(&k, root);
    assert!(r.found(Problem::EmptyLinked), "{r:?}");
    root_slot(&k, a.next).mdb = Slot::EMPTY.mdb;
    assert!(check(&k, root).ok());

    // The syscall reports it too, with its code and address, and says so on the console.
    root_slot(&k, copy).mdb.set_prev(Some(n_addr));
    let out = sys(&mut k, Syscall::DebugCheckConsistency, [1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(out[0], Error::IllegalOperation as u64);
    assert!(out[1] >= 1);
    assert_eq!(out[5] >> 48, Problem::LinkNotMirrored as u64);
    let console = core::str::from_utf8(&k.platform.out).unwrap();
    assert!(console.contains("consistency check: LinkNotMirrored"), "{console}");
}

#[test]
fn a_zombie_is_found() {
    let mut k = boot();
    let root = root_thread(&k);
    let mut a = Alloc::new(&k);
    let cn = a.obj(&mut k, ObjType::CNode, 2);
    let copy = a.next;
    a.next += 1;
    invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[copy, cn, Rights::all().bits()]).unwrap();
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    assert!(check(&k, root).ok());
    // A zombie must be the last capability to a container: a CNode with another cap,
    // or an endpoint, is not one.
    root_slot(&k, cn).cap.flags |= FLAG_ZOMBIE;
    let r = check(&k, root);
    assert!(r.found(Problem::Zombie), "{r:?}");
    root_slot(&k, cn).cap.flags &= !FLAG_ZOMBIE;
    root_slot(&k, ep).cap.flags |= FLAG_ZOMBIE;
    let r = check(&k, root);
    assert!(r.found(Problem::Zombie), "{r:?}");
}

#[test]
fn a_queued_blocked_thread_and_a_lost_runnable_one_are_found() {
    let mut k = boot();
    let root = root_thread(&k);
    let mut a = Alloc::new(&k);
    let (_, t) = thread(&mut k, &mut a, 100);
    assert!(t.get().queued());
    assert!(check(&k, root).ok());

    // Blocked on an "endpoint" at an address no endpoint can have.
    t.get().state = State::BlockedOnRecv { ep: at(8) };
    let r = check(&k, root);
    assert!(r.found(Problem::QueuedNotRunnable), "{r:?}");
    assert!(r.found(Problem::IpcQueue), "blocked on nothing: {r:?}");
    t.get().state = State::Running;
    assert!(check(&k, root).ok());

    // Runnable but in no queue: it would never run.
    k.rq_of_cpu(0).dequeue(t);
    let r = check(&k, root);
    assert!(r.found(Problem::RunnableNotQueued), "{r:?}");
    k.rq_of_cpu(0).enqueue(t, false);

    // Queued at the wrong level.
    t.get().prio = 7;
    let r = check(&k, root);
    assert!(r.found(Problem::QueueWrongPriority), "{r:?}");
    t.get().prio = 100;
    assert!(check(&k, root).ok());
}

#[test]
fn broken_ipc_queues_bindings_and_tables_are_found_and_a_cyclic_queue_ends() {
    let mut k = boot();
    let root = root_thread(&k);
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let n = a.obj(&mut k, ObjType::Notification, 0);
    let sc = a.obj(&mut k, ObjType::SchedContext, 0);
    let vs = a.obj(&mut k, ObjType::VSpace, 0);
    let (_, t) = thread(&mut k, &mut a, 255);
    // The thread runs and blocks receiving on the endpoint.
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(k.current(), Some(t));
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, 0]);
    assert_eq!(t.get().state, ThreadState::BlockedOnRecv);
    assert_eq!(k.current(), Some(root));
    assert!(check(&k, root).ok());

    // The endpoint's queue loops on itself: the walk ends and reports it.
    t.get().set_ipc_next(Some(t));
    let r = check(&k, root);
    assert!(r.found(Problem::IpcQueue), "{r:?}");
    t.get().set_ipc_next(None);
    assert!(check(&k, root).ok());

    // A binding named from one side only.
    t.get().bound_ntfn = Some(root_slot(&k, n).cap.notification());
    let r = check(&k, root);
    assert!(r.found(Problem::Binding), "{r:?}");
    t.get().bound_ntfn = None;

    // A throttled scheduling context missing from the release list.
    let s = root_slot(&k, sc).cap.sched_context();
    s.get().throttled = true;
    let r = check(&k, root);
    assert!(r.found(Problem::ReleaseList), "{r:?}");
    s.get().throttled = false;

    // Refills that do not add up to the budget.
    s.get().configure(100, 1000, 0);
    assert!(check(&k, root).ok());
    s.get().refills[0].amount = 99;
    let r = check(&k, root);
    assert!(r.found(Problem::Refills), "{r:?}");
    s.get().configure(100, 1000, 0);

    // A VMID entry that names another table, and one no VSpace names.
    let vmid = root_slot(&k, vs).cap.badge as usize;
    let table = k.vmids[vmid];
    let other = |off: usize| Some(at(table.unwrap().addr() + off));
    k.vmids[vmid] = other(4096);
    let r = check(&k, root);
    assert!(r.found(Problem::Vmid), "{r:?}");
    k.vmids[vmid] = table;
    k.vmids[200] = other(8192);
    let r = check(&k, root);
    assert!(r.found(Problem::Vmid), "{r:?}");
    assert!(
        k.check_consistency(root, false).ok(),
        "only a root caller vouches that it sees every VSpace"
    );
    k.vmids[200] = None;
    assert!(check(&k, root).ok());
}

#[test]
fn cnodes_holding_each_other_end_the_walk() {
    let mut k = boot();
    let root = root_thread(&k);
    let mut a = Alloc::new(&k);
    let c = a.obj(&mut k, ObjType::CNode, 2);
    let d = a.obj(&mut k, ObjType::CNode, 2);
    let all = Rights::all().bits();
    invoke(&mut k, c, Label::CNodeCopy, &[0, d, all]).unwrap();
    invoke(&mut k, d, Label::CNodeCopy, &[0, c, all]).unwrap();
    invoke(&mut k, c, Label::CNodeCopy, &[1, c, all]).unwrap();
    let r = check(&k, root);
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.slots, 5 + 4096 + 4 + 4, "each container is walked once");
}

// ---- the property test: random syscalls from several threads -------------------

/// Slots of the root CNode the random operations work in.
const SCRATCH: u64 = 48;

/// One random step.
#[derive(Clone, Debug)]
enum Step {
    /// Retype object kind `.0` into scratch slot `.1`.
    Retype(u8, u8),
    /// Make a thread in scratch slot `.0` at priority `.1` with fault endpoint slot `.2`
    /// (if it holds one) and start it.
    Spawn(u8, u8, u8),
    /// A syscall of the current thread: number index, cap (scratch slot or a root slot),
    /// label index, argument choices, reply slot.
    Sys(u8, u8, u8, [Arg; 4], u8),
    /// The current thread yields (another of its priority runs).
    Yield,
    /// Time passes and the timer ticks.
    Tick(u16),
    /// An interrupt on a line.
    Irq(u8),
}

/// An argument, biased toward what the kernel decodes.
#[derive(Clone, Copy, Debug)]
enum Arg {
    Slot(u8),
    Root(u8),
    Small(u8),
    Edge(u8),
    Page(u16),
    Word(u64),
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        4 => (0u8..SCRATCH as u8).prop_map(Arg::Slot),
        1 => (0u8..5).prop_map(Arg::Root),
        2 => any::<u8>().prop_map(Arg::Small),
        1 => any::<u8>().prop_map(Arg::Edge),
        1 => any::<u16>().prop_map(Arg::Page),
        1 => any::<u64>().prop_map(Arg::Word),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..13, 0u8..SCRATCH as u8).prop_map(|(t, s)| Step::Retype(t, s)),
        2 => (0u8..SCRATCH as u8, any::<u8>(), 0u8..SCRATCH as u8).prop_map(|(s, p, f)| Step::Spawn(s, p, f)),
        12 => (any::<u8>(), any::<u8>(), any::<u8>(), proptest::array::uniform4(arg()), any::<u8>())
            .prop_map(|(n, c, l, a, r)| Step::Sys(n, c, l, a, r)),
        3 => Just(Step::Yield),
        1 => any::<u16>().prop_map(Step::Tick),
        1 => any::<u8>().prop_map(Step::Irq),
    ]
}

/// The value of an argument choice; `base` is the first scratch slot.
fn value(a: Arg, base: u64) -> u64 {
    match a {
        Arg::Slot(s) => base + u64::from(s),
        Arg::Root(r) => [rs::CNODE, rs::VSPACE, rs::TCB, rs::SCHED_CONTROL, rs::IRQ_CONTROL][usize::from(r)],
        Arg::Small(x) => u64::from(x % 40),
        Arg::Edge(x) => edge_value(x),
        Arg::Page(p) => 0x10_0000_0000 + (u64::from(p) << 12),
        Arg::Word(w) => w,
    }
}

/// Object kinds `Step::Retype` makes.
const KINDS: [(ObjType, u64); 13] = [
    (ObjType::Endpoint, 0),
    (ObjType::Notification, 0),
    (ObjType::Reply, 0),
    (ObjType::Tcb, 0),
    (ObjType::Tcb, 0),
    (ObjType::SchedContext, 0),
    (ObjType::CNode, 2),
    (ObjType::Frame, 12),
    (ObjType::PageTable, 0),
    (ObjType::VSpace, 0),
    (ObjType::Untyped, 14),
    (ObjType::Endpoint, 0),
    (ObjType::VCpu, 0),
];

/// Syscalls the random threads make (never `DebugHalt` or `DebugPutChar`).
const NUMBERS: [u64; 12] = [1, 1, 1, 1, 2, 3, 4, 5, 6, 0x200, 0x201, 0x1ff];

/// A label for a capability of type `ty`: mostly one of its type's, else any.
fn label_for(ty: Option<ObjType>, pick: u8) -> Label {
    let of_type = ty.map_or(&[][..], Label::of);
    if !pick.is_multiple_of(4) && !of_type.is_empty() {
        of_type[usize::from(pick / 4) % of_type.len()]
    } else {
        Label::ALL[usize::from(pick) % Label::ALL.len()]
    }
}

/// Wake the root if it blocked or stopped (the QEMU fuzzer's supervisor does the same
/// with TcbSuspend and TcbResume), and let the kernel pick who runs.
fn wake_root(k: &mut Kernel<Model>, root: Ptr<Tcb>) {
    if root.get().state != ThreadState::Running {
        k.cancel_ipc(root);
        root.get().fault = None;
        k.block(root, State::Inactive);
        k.make_runnable(root, false);
        // As at the end of any kernel entry: a thread made runnable is queued or run.
        k.schedule();
    }
    if k.current().is_none() {
        k.schedule();
    }
}

/// True if the syscall would destroy the driver: the root thread or its CSpace (an
/// index of the root CNode outside the scratch range, a move out of it, or a new CSpace
/// for the root).
fn harms_root(k: &Kernel<Model>, t: Ptr<Tcb>, regs: &[u64; 7], root: Ptr<Tcb>, base: u64) -> bool {
    let Ok((_, c)) = k.lookup_cap(t, regs[0]) else {
        return false;
    };
    let root_cn = root.get().slots[SLOT_CSPACE].cap.obj;
    let label = Label::from_raw(MsgInfo(regs[1]).label());
    let outside = |s: usize| s >= root_cn && s < root_cn + 64 * base as usize;
    if c.is(ObjType::CNode) {
        let moving = matches!(label, Some(Label::CNodeMove | Label::CNodeMutate));
        (c.obj == root_cn && regs[2] < base) || (moving && k.lookup_slot(t, regs[3]).is_ok_and(outside))
    } else {
        c.is(ObjType::Tcb) && c.obj == root.addr() && label == Some(Label::TcbSetSpace)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Threads created and driven at random make random syscalls and invocations (the
    /// current thread makes each one), with ticks and interrupts in between; after
    /// every step the check, from the root, finds nothing wrong.
    #[test]
    fn the_kernel_stays_consistent_under_random_syscalls(steps in proptest::collection::vec(step(), 1..160)) {
        let mut k = boot();
        let root = root_thread(&k);
        let root_cn = root.get().slots[SLOT_CSPACE].cap;
        let bi = bootinfo(&k);
        let base = bi.empty.start;
        let ut = Alloc::new(&k).ut;
        for st in steps {
            match st {
                Step::Retype(kind, s) => {
                    if k.current() == Some(root) {
                        let (ty, bits) = KINDS[usize::from(kind)];
                        let _ = invoke(&mut k, ut, Label::UntypedRetype, &[ty as u64 | bits << 8, rs::CNODE, base + u64::from(s), 1]);
                    }
                }
                Step::Spawn(s, prio, fault) => {
                    let t = base + u64::from(s);
                    if k.current() == Some(root)
                        && invoke(&mut k, ut, Label::UntypedRetype, &[ObjType::Tcb as u64, rs::CNODE, t, 1]).is_ok()
                    {
                        let fe = base + u64::from(fault);
                        if invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, fe]).is_err() {
                            let _ = invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]);
                        }
                        // Half of them share the root's priority, so they take turns with it.
                        let prio = if prio % 2 == 0 { 255 } else { u64::from(prio) };
                        let _ = invoke(&mut k, t, Label::TcbSetPriority, &[prio, rs::TCB]);
                        let _ = invoke(&mut k, t, Label::TcbResume, &[]);
                    }
                }
                Step::Sys(n, c, l, args, r) => {
                    let number = NUMBERS[usize::from(n) % NUMBERS.len()];
                    // Mostly a scratch slot that holds something (for IPC, an endpoint,
                    // notification or reply object), sometimes any.
                    let ipc = number != 1 || c % 2 == 0;
                    let held: Vec<u64> = (0..SCRATCH)
                        .filter(|&i| {
                            let cap = kslot(root_cn.obj + 64 * (base + i) as usize).cap;
                            !cap.is_null()
                                && (!ipc || matches!(cap.ty(), Some(ObjType::Endpoint | ObjType::Notification | ObjType::Reply)))
                        })
                        .collect();
                    let cap = match c % 8 {
                        0 => [rs::CNODE, rs::VSPACE, rs::SCHED_CONTROL, rs::IRQ_CONTROL][usize::from(c / 8) % 4],
                        1 => base + u64::from(c) % SCRATCH,
                        _ if !held.is_empty() => base + held[usize::from(c / 8) % held.len()],
                        _ => base + u64::from(c) % SCRATCH,
                    };
                    let t = k.current().expect("someone runs");
                    let ty = k.lookup_cap(t, cap).ok().and_then(|(_, c)| c.ty());
                    let label = label_for(ty, l) as u64;
                    let info = MsgInfo::new(label, usize::from(l / 64) + 1, 0).0;
                    let a = args.map(|x| value(x, base));
                    let reply = if r % 2 == 0 { 0 } else { base + u64::from(r / 2) % SCRATCH };
                    let regs = [cap, info, a[0], a[1], a[2], a[3], reply];
                    if !harms_root(&k, t, &regs, root, base) {
                        t.get().ctx.x[..7].copy_from_slice(&regs);
                        t.get().ctx.x[7] = number;
                        let _ = k.handle_syscall();
                    }
                }
                Step::Yield => {
                    sys(&mut k, Syscall::Yield, [0; 7]);
                }
                Step::Tick(us) => {
                    k.platform.now += u64::from(us) * 10;
                    k.handle_timer();
                }
                Step::Irq(line) => k.handle_irq(32 + u32::from(line) % 16),
            }
            wake_root(&mut k, root);
            let r = check(&k, root);
            prop_assert!(r.ok(), "{:?}", r);
            prop_assert_eq!(root.get().slots[SLOT_CSPACE].cap, root_cn, "the root's CSpace is intact");
        }
    }
}
