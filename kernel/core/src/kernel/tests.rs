//! Host tests of the kernel proper: a model platform, real host memory as "physical"
//! memory, and a driver that issues syscalls as whichever thread is current, exactly
//! as the exception vectors would.

extern crate std;

use std::vec::Vec;

use gaon_abi::bootinfo::{BootInfo, slot as rs};
use gaon_abi::{Error, Label, MsgInfo, ObjType, Rights, Syscall};
use proptest::prelude::*;

use super::cspace::slot as kslot;
use super::object::sched_context::{MAX_REFILLS, SchedContext};
use super::sched::queues::RunQueues;
use super::{After, BootAlloc, BootSegment, Kernel, Lazy, Platform, RootImage};
use crate::cap::FLAG_ZOMBIE;
use crate::cdt::Slot;
use crate::obj::Ptr;
use crate::tcb::{Tcb, ThreadState};

/// The object or memory at `addr`: tests reach kernel objects by the addresses in
/// caps and slots, read frames the kernel wrote, and damage structures on purpose.
#[allow(unsafe_code, reason = "tests reach objects and memory by address")]
fn at<T>(addr: usize) -> Ptr<T> {
    // SAFETY: every caller passes the non-zero, aligned address of an object the kernel
    // made (read from a cap or slot) or of host memory the test owns, or (to test the
    // consistency check) an address only the check looks at, which tests alignment
    // before following it. Tests run one kernel operation at a time.
    unsafe { Ptr::new(addr) }
}

/// The machine model.
#[derive(Debug, Default)]
pub struct Model {
    out: Vec<u8>,
    halted: Option<u8>,
    now: u64,
    flushes: u64,
    enabled: Vec<u32>,
    user_timer: Option<u64>,
    /// The kernel timer's deadline, and how often it fired (`fire_timer`).
    timer: Option<u64>,
    timer_interrupts: u64,
    /// Time the kernel itself takes: every read of the clock advances it this much.
    read_cost: u64,
    drift: core::cell::Cell<u64>,
    /// Preemption points passed (one per step of a long operation).
    preemption_checks: core::cell::Cell<u64>,
    /// An interrupt is pending at every `pending_every`-th preemption point (0: never).
    pending_every: u64,
    /// The kernel log page, once bound, what went there, and whether since last asked.
    log_page: Option<usize>,
    logged: Vec<u8>,
    log_written: bool,
    /// Cores stalled (`Platform::stall`), in order, and the lazily switched state each
    /// stall or local save was asked to save (its owners' addresses).
    stalls: Vec<usize>,
    lazy_saved: Vec<usize>,
    /// The guests' virtual timer line is masked on the (one modelled) core.
    guest_timer_masked: bool,
}

impl Platform for Model {
    fn put_char(&mut self, b: u8) {
        // Bound to a log page, output goes there (the model keeps it apart).
        if self.log_page.is_some() {
            self.logged.push(b);
            self.log_written = true;
        } else {
            self.out.push(b);
        }
    }
    fn halt(&mut self, status: u8) {
        self.halted = Some(status);
    }
    fn ticks(&self) -> u64 {
        self.timer_interrupts
    }
    fn set_timer(&mut self, deadline: Option<u64>) {
        self.timer = deadline;
    }
    fn flush_vmid(&mut self, _: u16) {
        self.flushes += 1;
    }
    fn sync_icache(&mut self, _: usize, _: usize) {}
    fn irq_count(&self) -> u32 {
        256
    }
    fn irq_reserved(&self, irq: u32) -> bool {
        irq < 32
    }
    fn irq_set_enabled(&mut self, irq: u32, enabled: bool) {
        self.enabled.retain(|&i| i != irq);
        if enabled {
            self.enabled.push(irq);
        }
    }
    fn now(&self) -> u64 {
        self.drift.set(self.drift.get() + self.read_cost);
        self.now + self.drift.get()
    }
    fn counter_hz(&self) -> u64 {
        1_000_000
    }
    fn user_timer_irq(&self) -> Option<u32> {
        Some(USER_TIMER_IRQ)
    }
    fn has_vgic(&self) -> bool {
        true
    }
    fn guest_irq_pending(&self) -> bool {
        false
    }
    fn guest_timer_irq(&self) -> Option<u32> {
        Some(GUEST_TIMER_IRQ)
    }
    fn set_guest_timer_masked(&mut self, masked: bool) {
        self.guest_timer_masked = masked;
    }
    fn set_user_timer(&mut self, cval: Option<u64>) {
        self.user_timer = cval;
    }
    fn log_to(&mut self, page: usize) {
        self.log_page = Some(page);
    }
    fn log_pending(&mut self) -> bool {
        core::mem::take(&mut self.log_written)
    }
    fn stall(&mut self, cpu: usize, saves: super::LazySaves<'_>) {
        self.stalls.push(cpu);
        self.save_lazy(saves);
    }
    fn save_lazy(&mut self, saves: super::LazySaves<'_>) {
        for s in saves.into_iter().flatten() {
            self.lazy_saved.push(core::ptr::from_mut(s.thread_pointer) as usize);
        }
    }
    fn irq_pending(&self) -> bool {
        let n = self.preemption_checks.get() + 1;
        self.preemption_checks.set(n);
        self.pending_every != 0 && n.is_multiple_of(self.pending_every)
    }
}

/// The model's user timer line.
const USER_TIMER_IRQ: u32 = 40;
/// The model's guest timer line (a private one, as on a GIC).
const GUEST_TIMER_IRQ: u32 = 27;

/// Memory the kernel treats as physical RAM: leaked, aligned host memory.
fn ram(size: usize) -> (usize, usize) {
    let layout = std::alloc::Layout::from_size_align(size, 1 << 21).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: a fresh allocation with a non-zero size, leaked so it outlives the kernel.
    let p = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
    assert!(p != 0);
    (p, p + size)
}

/// A booted kernel with the root server current.
fn boot() -> Kernel<Model> {
    let (start, end) = ram(24 << 20);
    boot_over(start..end, &[])
}

/// A kernel booted over the RAM `ram`, with the device memory `device` (`(base, size)`
/// regions), and the root server current.
fn boot_over(ram: core::ops::Range<usize>, device: &[(usize, usize)]) -> Kernel<Model> {
    boot_over_cpus(ram, device, 0b1111)
}

/// [`boot_over`] with the cores in `cpus` up.
fn boot_over_cpus(ram: core::ops::Range<usize>, device: &[(usize, usize)], cpus: u8) -> Kernel<Model> {
    let code = std::boxed::Box::leak(std::vec![0u8; 4096].into_boxed_slice());
    let seg = [BootSegment {
        vaddr: 0x40_0000,
        src: code.as_ptr() as usize,
        filesz: 4096,
        memsz: 8192,
        write: false,
        execute: true,
    }];
    let image = RootImage {
        segments: &seg,
        entry: 0x40_0000,
        modules: &[],
        device,
        timer_hz: 1_000_000,
        cpus,
        vgic_cpu: None,
    };
    let mut k = Kernel::new(Model::default());
    let mut alloc = BootAlloc {
        next: ram.start,
        end: ram.end,
        used: 0,
    };
    k.boot_root(&image, &mut alloc).expect("boot");
    k
}

/// A word at an edge of a range, chosen by `x`: 0, 1, all ones, a power of two, one
/// below or one above one (random tests' argument values).
fn edge_value(x: u8) -> u64 {
    match x % 6 {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 1 << (x % 64),
        4 => (1 << (x % 64)) - 1,
        _ => (1u64 << (x % 63)) + 1,
    }
}

/// Issue syscall `number` with `x0..x6` as the current thread; returns its `x0..x6`. A
/// syscall the kernel restarts at a preemption point (PC moved back to the `svc`, the
/// registers untouched) is issued again, as the thread would.
fn sys(k: &mut Kernel<Model>, number: Syscall, regs: [u64; 7]) -> [u64; 7] {
    let t = k.current().expect("a thread is current");
    loop {
        let pc = t.get().ctx.pc;
        t.get().ctx.x[..7].copy_from_slice(&regs);
        t.get().ctx.x[7] = number as u64;
        // As the arch layer left it when `t` resumed: `t` owns the thread pointer.
        let _ = k.lazy_switch(Lazy::ThreadPointer, t);
        match k.handle_syscall() {
            // The fastpath's direct switch says what the general way would read back.
            After::Direct { from, to } => {
                assert_eq!(from, t, "a direct switch is from the caller");
                assert_eq!(Some(to), k.resume_target(), "a direct switch's resume target");
                let (old, _) = k.lazy_hand_over(Lazy::ThreadPointer, from, to.tcb);
                assert!(
                    core::ptr::eq(old.thread_pointer, &raw const from.get().tpidr),
                    "saved to the caller"
                );
                assert!(k.lazy_owned_by(Lazy::ThreadPointer, to.tcb));
            }
            After::Caller => assert_eq!(k.current(), Some(t), "a syscall that changed nothing"),
            After::Chosen => {}
        }
        let mut out = [0; 7];
        out.copy_from_slice(&t.get().ctx.x[..7]);
        if t.get().ctx.pc == pc.wrapping_sub(4) && k.current() == Some(t) {
            assert_eq!(out, regs, "a restarted syscall leaves its registers alone");
            t.get().ctx.pc = pc;
            k.restarts += 1;
            continue;
        }
        return out;
    }
}

/// Invoke `cptr` with `label` and up to four arguments as the current thread.
fn invoke(k: &mut Kernel<Model>, cptr: u64, label: Label, args: &[u64]) -> Result<[u64; 4], Error> {
    let mut r = [cptr, MsgInfo::new(label as u64, args.len(), 0).0, 0, 0, 0, 0, 0];
    r[2..2 + args.len()].copy_from_slice(args);
    let out = sys(k, Syscall::Call, r);
    match MsgInfo(out[1]).error() {
        Some(e) => Err(e),
        None => Ok([out[2], out[3], out[4], out[5]]),
    }
}

fn bootinfo(k: &Kernel<Model>) -> &'static BootInfo {
    let root = k.current().unwrap();
    let cn = root.get().slots[crate::tcb::SLOT_CSPACE].cap;
    let frame = kslot(cn.obj + rs::BOOTINFO_FRAME as usize * 64).cap;
    at::<BootInfo>(frame.obj).get()
}

/// Slot `i` of the root CNode.
fn root_slot(k: &Kernel<Model>, i: u64) -> &'static mut Slot {
    let root = k.current().unwrap();
    let cn = root.get().slots[crate::tcb::SLOT_CSPACE].cap;
    kslot(cn.obj + i as usize * 64)
}

struct Alloc {
    next: u64,
    ut: u64,
}

impl Alloc {
    fn new(k: &Kernel<Model>) -> Self {
        let bi = bootinfo(k);
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        let largest = (0..n).max_by_key(|&i| bi.untyped[i].size_bits).expect("some untyped");
        Self {
            next: bi.empty.start,
            ut: bi.untyped_slots.start + largest as u64,
        }
    }
    fn obj(&mut self, k: &mut Kernel<Model>, ty: ObjType, bits: u64) -> u64 {
        let s = self.next;
        self.next += 1;
        invoke(
            k,
            self.ut,
            Label::UntypedRetype,
            &[ty as u64 | bits << 8, rs::CNODE, s, 1],
        )
        .expect("retype");
        if ty == ObjType::VSpace {
            invoke(k, rs::VMID_POOL, Label::VmidPoolAssign, &[s]).expect("a VMID");
        }
        s
    }
}

/// Zeroed memory is an empty object: links are `Option<Ptr<T>>`, whose `None` is
/// zero, so memory a retype zeroed and the `Default` value the kernel writes agree.
#[test]
fn zeroed_memory_is_an_empty_object() {
    use super::object::endpoint::Queue;
    use super::object::irq::IrqLine;
    use super::{Endpoint, Notification, Reply};
    /// A `T` in zeroed memory (never written).
    fn zeroed<T>() -> Ptr<T> {
        at(std::boxed::Box::leak(std::boxed::Box::<T>::new_zeroed()).as_mut_ptr() as usize)
    }
    fn zeroed_is_default<T: Default + core::fmt::Debug>() {
        assert_eq!(
            std::format!("{:?}", zeroed::<T>().get()),
            std::format!("{:?}", T::default()),
            "zeroed {} is not its default",
            core::any::type_name::<T>()
        );
    }
    static_assertions::const_assert_eq!(core::mem::size_of::<Option<Ptr<Tcb>>>(), 8);
    zeroed_is_default::<Queue>();
    zeroed_is_default::<Endpoint>();
    zeroed_is_default::<Notification>();
    zeroed_is_default::<Reply>();
    zeroed_is_default::<SchedContext>();
    zeroed_is_default::<IrqLine>();
    zeroed_is_default::<RunQueues>();
    // A Tcb is always written whole (`Tcb::new`), but its links too are empty when
    // zeroed.
    let t = zeroed::<Tcb>();
    let t = t.get();
    assert!(
        [t.run_links().1, t.run_links().0, t.ipc_links().1, t.ipc_links().0]
            .iter()
            .all(Option::is_none)
    );
    assert!(t.reply.is_none() && t.bound_ntfn.is_none() && t.sched_context.is_none());
}

#[test]
fn boot_hands_over_all_memory() {
    let k = boot();
    let bi = bootinfo(&k);
    assert_eq!(bi.magic, gaon_abi::bootinfo::BOOTINFO_MAGIC);
    assert_eq!(
        (bi.irq_first, bi.irq_end),
        (32, 256),
        "the model reserves lines 0..32 of 256"
    );
    let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
    assert!(n > 0);
    let total: u64 = bi.untyped[..n].iter().map(|d| 1u64 << d.size_bits).sum();
    assert!(
        total > 20 << 20,
        "most of the 24 MiB is untyped (2 MiB are the trace rings): {total}"
    );
    for i in 0..n {
        let c = root_slot(&k, bi.untyped_slots.start + i as u64).cap;
        assert_eq!(c.ty(), Some(ObjType::Untyped));
        assert_eq!(c.obj as u64, bi.untyped[i].paddr);
    }
    let root = k.current().unwrap();
    assert_eq!(root.get().ctx.pc, 0x40_0000);
    assert_eq!(root.get().state, ThreadState::Running);
}

#[test]
fn retype_accounts_exactly() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let u = a.obj(&mut k, ObjType::Untyped, 12);
    let first = a.next;
    // 4 KiB holds 128 endpoints of 32 bytes, and not one more.
    assert!(
        invoke(
            &mut k,
            u,
            Label::UntypedRetype,
            &[ObjType::Endpoint as u64, rs::CNODE, first, 128]
        )
        .is_ok()
    );
    assert_eq!(
        invoke(
            &mut k,
            u,
            Label::UntypedRetype,
            &[ObjType::Endpoint as u64, rs::CNODE, first + 128, 1]
        ),
        Err(Error::NotEnoughMemory)
    );
    // Revoking frees everything for reuse.
    assert!(invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[u]).is_ok());
    assert!(
        invoke(
            &mut k,
            u,
            Label::UntypedRetype,
            &[ObjType::Frame as u64 | 12 << 8, rs::CNODE, first, 1]
        )
        .is_ok()
    );
}

#[test]
fn run_queues_pick_the_highest_priority_in_fifo_order() {
    let tcbs: Vec<Ptr<Tcb>> = (0..4)
        .map(|_| Ptr::from_static(std::boxed::Box::leak(std::boxed::Box::new(Tcb::new()))))
        .collect();
    let mut rq = RunQueues::new();
    for (t, p) in tcbs.iter().zip([10u8, 200, 200, 5]) {
        t.get().prio = p;
        rq.enqueue(*t, false);
    }
    assert_eq!(rq.highest(), Some(tcbs[1]));
    rq.dequeue(tcbs[1]);
    assert_eq!(rq.highest(), Some(tcbs[2]));
    rq.enqueue(tcbs[1], true);
    assert_eq!(rq.highest(), Some(tcbs[1]), "front insertion runs first");
    rq.dequeue(tcbs[1]);
    rq.dequeue(tcbs[2]);
    assert_eq!(rq.highest(), Some(tcbs[0]));
    rq.dequeue(tcbs[0]);
    rq.dequeue(tcbs[0]); // twice is harmless
    assert_eq!(rq.highest(), Some(tcbs[3]));
    rq.dequeue(tcbs[3]);
    assert_eq!(rq.highest(), None);
}

#[test]
fn sporadic_refills_bound_use_per_period() {
    let mut sc = SchedContext::default();
    sc.configure(100, 1000, 0);
    assert!(sc.available(0));
    sc.charge(60, 60);
    assert!(sc.available(60), "40 left");
    sc.charge(40, 100);
    assert!(!sc.available(100), "budget used up");
    assert!(!sc.available(999));
    assert!(
        sc.available(1000),
        "the first chunk comes back one period after it was due"
    );
    assert_eq!(sc.total(), 100);
    assert!(usize::from(sc.count) <= MAX_REFILLS);
}

proptest! {
    #[test]
    fn refills_always_sum_to_the_budget(charges in proptest::collection::vec(1u64..300, 1..100)) {
        let mut sc = SchedContext::default();
        sc.configure(250, 1000, 0);
        let mut now = 0;
        for c in charges {
            now += c;
            sc.charge(c, now);
            prop_assert_eq!(sc.total(), 250);
            prop_assert!(usize::from(sc.count) <= MAX_REFILLS && sc.count > 0);
            let _ = sc.available(now);
        }
    }
}

#[test]
fn call_and_reply_move_threads_through_their_states() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let root = k.current().unwrap();
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    // Equal priority: the root keeps running until it blocks.
    assert_eq!(k.current(), Some(root));
    let server = root_slot(&k, t).cap.tcb();

    // The root calls: no receiver yet, so it queues as a sender and the server runs.
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(9, 2, 0).0, 5, 6, 0, 0, 0]);
    assert_eq!(root.get().state, ThreadState::BlockedOnSend);
    assert_eq!(k.current(), Some(server));
    // The server receives it (slow path) and the root now waits for the reply.
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    assert_eq!((MsgInfo(got[1]).label(), got[2], got[3]), (9, 5, 6));
    assert_eq!(root.get().state, ThreadState::BlockedOnReply);
    // ReplyRecv answers and blocks the server: the fastpath.
    let slow = k.slowpath_count;
    sys(
        &mut k,
        Syscall::ReplyRecv,
        [ep, MsgInfo::new(0, 1, 0).0, 11, 0, 0, 0, rp],
    );
    assert_eq!(k.slowpath_count, slow);
    assert_eq!(server.get().state, ThreadState::BlockedOnRecv);
    assert_eq!(k.current(), Some(root));
    assert_eq!(root.get().ctx.x[2], 11);
    // The next call takes the fastpath straight to the waiting server.
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(1, 1, 0).0, 7, 0, 0, 0, 0]);
    assert_eq!(k.slowpath_count, slow);
    assert_eq!(k.current(), Some(server));
    assert_eq!(server.get().ctx.x[2], 7);
    // Deleting the reply object cancels the waiting caller.
    k.core.current = Some(root); // act as the root (it is blocked; only the cap matters)
    let rp_slot = core::ptr::from_mut(root_slot(&k, rp)) as usize;
    k.delete_slot(rp_slot);
    assert_eq!(root.get().state, ThreadState::Running);
    assert_eq!(MsgInfo(root.get().ctx.x[1]).error(), Some(Error::Cancelled));
}

#[test]
fn deleting_a_thread_in_every_state_leaves_nothing_behind() {
    for state in [
        ThreadState::BlockedOnRecv,
        ThreadState::BlockedOnNotification,
        ThreadState::Running,
    ] {
        let mut k = boot();
        let mut a = Alloc::new(&k);
        let ep = a.obj(&mut k, ObjType::Endpoint, 0);
        let ntfn = a.obj(&mut k, ObjType::Notification, 0);
        let t = a.obj(&mut k, ObjType::Tcb, 0);
        let root = k.current().unwrap();
        invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
        invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
        invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
        sys(&mut k, Syscall::Yield, [0; 7]);
        let thread = k.current().unwrap();
        assert_ne!(thread, root);
        match state {
            ThreadState::BlockedOnRecv => {
                sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, 0]);
            }
            ThreadState::BlockedOnNotification => {
                sys(&mut k, Syscall::Recv, [ntfn, 0, 0, 0, 0, 0, 0]);
            }
            _ => {
                sys(&mut k, Syscall::Yield, [0; 7]);
            }
        }
        assert_eq!(k.current(), Some(root));
        invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[t]).unwrap();
        assert_eq!(thread.get().state, ThreadState::Inactive);
        assert!(!thread.get().queued());
        // The endpoint and notification queues are empty again: a send does not block.
        let r = sys(&mut k, Syscall::NbRecv, [ep, 0, 0, 0, 0, 0, 0]);
        assert_eq!(MsgInfo(r[1]).error(), Some(Error::WouldBlock));
        let r = sys(&mut k, Syscall::NbRecv, [ntfn, 0, 0, 0, 0, 0, 0]);
        assert_eq!(MsgInfo(r[1]).error(), Some(Error::WouldBlock));
        assert_eq!(k.current(), Some(root));
    }
}

#[test]
fn a_frame_maps_unmaps_and_dies_unmapped() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let f = a.obj(&mut k, ObjType::Frame, 12);
    let l2 = a.obj(&mut k, ObjType::PageTable, 0);
    let l3 = a.obj(&mut k, ObjType::PageTable, 0);
    let va = 0x10_0000_0000u64;
    invoke(&mut k, l2, Label::PageTableMap, &[rs::VSPACE, va]).unwrap();
    invoke(&mut k, l3, Label::PageTableMap, &[rs::VSPACE, va]).unwrap();
    let rw = (Rights::READ | Rights::WRITE).bits();
    invoke(&mut k, f, Label::FrameMap, &[rs::VSPACE, va, rw, 0]).unwrap();
    let root_vs = at(root_slot(&k, rs::VSPACE).cap.obj);
    let pa = root_slot(&k, f).cap.obj;
    assert_eq!(crate::vspace::translate(root_vs, va + 8), Some((pa + 8, true, false)));
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[f]).unwrap();
    assert_eq!(
        crate::vspace::translate(root_vs, va),
        None,
        "deleting the cap unmapped it"
    );
}

/// Operations the property test draws from.
#[derive(Clone, Debug)]
enum Op {
    Retype(u8, u8),
    Copy(u8, u8, u8),
    Mint(u8, u8, u64),
    Move(u8, u8),
    Mutate(u8, u8, u64),
    Delete(u8),
    Revoke(u8),
    Garbage(u64, u64, [u64; 4], u8),
}

const SCRATCH: u64 = 64;

fn op() -> impl Strategy<Value = Op> {
    let s = 0u8..SCRATCH as u8;
    prop_oneof![
        (0u8..10, s.clone()).prop_map(|(t, d)| Op::Retype(t, d)),
        (s.clone(), s.clone(), 0u8..16).prop_map(|(a, b, r)| Op::Copy(a, b, r)),
        (s.clone(), s.clone(), 0u64..4).prop_map(|(a, b, x)| Op::Mint(a, b, x)),
        (s.clone(), s.clone()).prop_map(|(a, b)| Op::Move(a, b)),
        (s.clone(), s.clone(), 0u64..4).prop_map(|(a, b, x)| Op::Mutate(a, b, x)),
        s.clone().prop_map(Op::Delete),
        s.clone().prop_map(Op::Revoke),
        (any::<u64>(), any::<u64>(), any::<[u64; 4]>(), s).prop_map(|(a, b, c, d)| Op::Garbage(a, b, c, d)),
    ]
}

/// Every CDT link between non-empty slots is mirrored, and no zombie survives.
fn check_tree(k: &Kernel<Model>, first: u64, count: u64) {
    for i in first..first + count {
        let s = root_slot(k, i);
        assert!(!s.cap.has(FLAG_ZOMBIE), "zombie left in slot {i}");
        if s.cap.is_null() {
            assert_eq!(s.mdb, Slot::EMPTY.mdb, "empty slot {i} still linked");
            continue;
        }
        let me = core::ptr::from_mut(s) as usize;
        if let Some(n) = s.mdb.next() {
            assert_eq!(kslot(n).mdb.prev(), Some(me), "broken back link");
        }
        if let Some(p) = s.mdb.prev() {
            assert_eq!(kslot(p).mdb.next(), Some(me), "broken forward link");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// Random CNode operations and garbage invocations on a scratch range of the root
    /// CNode, all from user level: the kernel never panics, the derivation tree stays
    /// well formed, and the root server keeps running.
    #[test]
    fn random_invocations_keep_the_kernel_sound(ops in proptest::collection::vec(op(), 1..120), every in 0u64..4) {
        let mut k = boot();
        // Interrupts pending at random preemption points: long operations stop and are
        // restarted, and must end in the same sound state.
        k.platform.pending_every = every;
        let bi = bootinfo(&k);
        let base = bi.empty.start;
        let ut = Alloc::new(&k).ut;
        let root = k.current().unwrap();
        let types = [
            (ObjType::Endpoint, 0), (ObjType::Notification, 0), (ObjType::Frame, 12), (ObjType::CNode, 2),
            (ObjType::Tcb, 0), (ObjType::Reply, 0), (ObjType::PageTable, 0), (ObjType::VSpace, 0),
            (ObjType::SchedContext, 0), (ObjType::Untyped, 14),
        ];
        for op in ops {
            let slot = |x: u8| base + u64::from(x);
            match op {
                Op::Retype(t, d) => {
                    let (ty, bits) = types[usize::from(t)];
                    let _ = invoke(&mut k, ut, Label::UntypedRetype, &[ty as u64 | bits << 8, rs::CNODE, slot(d), 1]);
                }
                Op::Copy(a, b, r) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[slot(b), slot(a), u64::from(r)]);
                }
                Op::Mint(a, b, x) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeMint, &[slot(b), slot(a), 0xf, x]);
                }
                Op::Move(a, b) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeMove, &[slot(b), slot(a)]);
                }
                Op::Mutate(a, b, x) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeMutate, &[slot(b), slot(a), x]);
                }
                Op::Delete(a) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[slot(a)]);
                }
                Op::Revoke(a) => {
                    let _ = invoke(&mut k, rs::CNODE, Label::CNodeRevoke, &[slot(a)]);
                }
                Op::Garbage(label, info, mr, target) => {
                    // Any label and argument words, on a scratch cap, as a Call (never
                    // on an endpoint: that would block the only driver thread).
                    let c = root_slot(&k, slot(target)).cap;
                    if !c.is(ObjType::Endpoint) {
                        let info = MsgInfo::new(label % 70, (info % 5) as usize, 0).0;
                        let _ = sys(&mut k, Syscall::Call, [slot(target), info, mr[0] % 80 + base, mr[1], mr[2], mr[3], 0]);
                    }
                }
            }
            // A resumed scratch thread may have preempted the root; put it back.
            if k.current() != Some(root) {
                k.core.current = Some(root);
            }
            check_tree(&k, base, SCRATCH);
            check_tree(&k, bi.untyped_slots.start, bi.untyped_slots.end - bi.untyped_slots.start);
            // The kernel's own consistency check, including the zombies preempted
            // deletes leave (the check is built into host tests).
            let report = k.check_consistency(root, true);
            prop_assert!(report.ok(), "{report:?}");
            prop_assert!(root_slot(&k, rs::CNODE).cap.is(ObjType::CNode), "root CNode intact");
        }
    }
}

/// A thread at priority 255 with 1 ms of budget every 10 ms (the model's counter runs
/// at 1 MHz), running: the root is blocked on an endpoint nobody sends to.
fn budgeted_thread(k: &mut Kernel<Model>, a: &mut Alloc) -> (Ptr<Tcb>, Ptr<SchedContext>) {
    budgeted_thread_with(k, a, 1000, 10_000)
}

/// As [`budgeted_thread`], with this budget and period (µs).
fn budgeted_thread_with(
    k: &mut Kernel<Model>,
    a: &mut Alloc,
    budget: u64,
    period: u64,
) -> (Ptr<Tcb>, Ptr<SchedContext>) {
    let idle_ep = a.obj(k, ObjType::Endpoint, 0);
    let (thread, sc) = resumed_budgeted_thread(k, a, 255, budget, period);
    sys(k, Syscall::Recv, [idle_ep, 0, 0, 0, 0, 0, 0]);
    assert_eq!(k.current(), Some(thread));
    (thread, sc)
}

/// A thread at `prio` in the root's spaces with `budget` every `period` (µs), resumed.
fn resumed_budgeted_thread(
    k: &mut Kernel<Model>,
    a: &mut Alloc,
    prio: u64,
    budget: u64,
    period: u64,
) -> (Ptr<Tcb>, Ptr<SchedContext>) {
    let sc = a.obj(k, ObjType::SchedContext, 0);
    let t = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(k, t, Label::TcbSetPriority, &[prio, rs::TCB]).unwrap();
    invoke(
        k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc, budget, period, 0],
    )
    .unwrap();
    invoke(k, sc, Label::SchedContextBind, &[t]).unwrap();
    invoke(k, t, Label::TcbResume, &[]).unwrap();
    (root_slot(k, t).cap.tcb(), at(root_slot(k, sc).cap.obj))
}

#[test]
fn a_thread_out_of_budget_is_charged_when_it_blocks_and_stays_off_the_run_queue_until_its_refill() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let (thread, s) = budgeted_thread(&mut k, &mut a);

    // A syscall that does not switch is not charged on the way (lazy accounting).
    k.platform.now += 5_000;
    sys(&mut k, Syscall::Null, [0; 7]);
    assert!(!s.get().throttled, "not charged yet");

    // It blocks in Recv: the switch charges it, and it is out of budget.
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, 0]);
    assert_eq!(thread.get().state, ThreadState::BlockedOnRecv);
    assert!(s.get().throttled, "charged at the switch");
    assert_eq!(k.current(), None, "nothing else can run");

    // When its refill comes due it is released, but it stays blocked: a blocked thread
    // is never put back on the run queue.
    k.platform.now += 10_000;
    k.handle_timer();
    assert!(!s.get().throttled);
    assert_eq!(thread.get().state, ThreadState::BlockedOnRecv);
    assert!(!thread.get().queued(), "not queued while blocked");
}

#[test]
fn a_thread_alone_at_its_priority_is_not_charged_by_yield_but_by_the_tick_and_runs_again_after_its_refill() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (thread, _) = budgeted_thread(&mut k, &mut a);
    k.platform.now += 5_000;
    // Alone at its priority, Yield gives the CPU back to it: no switch, no charge.
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(k.current(), Some(thread));
    // The tick charges it: throttled, off the run queue, nothing runs.
    k.handle_timer();
    assert!(!thread.get().queued());
    assert_eq!(k.current(), None);
    k.platform.now += 10_000;
    k.handle_timer();
    assert_eq!(k.current(), Some(thread), "released at its refill");
}

/// Fresh, leaked Tcbs with these priorities.
fn tcbs_with(prios: &[u8]) -> Vec<Ptr<Tcb>> {
    prios
        .iter()
        .map(|&p| {
            let t = Ptr::from_static(std::boxed::Box::leak(std::boxed::Box::new(Tcb::new())));
            t.get().prio = p;
            t
        })
        .collect()
}

/// The order the queues would run their threads in, as indices into `tcbs`.
fn drain(rq: &mut RunQueues, tcbs: &[Ptr<Tcb>]) -> Vec<usize> {
    let mut order = Vec::new();
    while let Some(t) = rq.highest() {
        order.push(tcbs.iter().position(|&x| x == t).expect("a known thread"));
        rq.dequeue(t);
    }
    order
}

proptest! {
    /// The run queues' two-level bitmap finds the highest priority after any sequence
    /// of queue operations, and they run threads in priority, then FIFO, order.
    #[test]
    fn run_queues_follow_priority_then_fifo(
        prios in proptest::collection::vec(0u8..=255, 1..12),
        ops in proptest::collection::vec((0usize..12, 0u8..4), 0..40),
    ) {
        let tcbs = tcbs_with(&prios);
        let mut rq = RunQueues::new();
        // A model: per priority, the FIFO of thread indices.
        let mut model = std::collections::BTreeMap::<u8, std::collections::VecDeque<usize>>::new();
        for (i, kind) in ops {
            let i = i % tcbs.len();
            let p = prios[i];
            let level = model.entry(p).or_default();
            let queued = level.contains(&i);
            match kind {
                0 | 1 => {
                    let front = kind == 1;
                    rq.enqueue(tcbs[i], front);
                    if !queued {
                        if front { level.push_front(i) } else { level.push_back(i) }
                    }
                }
                2 => {
                    rq.dequeue(tcbs[i]);
                    level.retain(|&x| x != i);
                }
                // A yield's rotation: the level's head leaves, `i` joins its back.
                _ => {
                    if !queued && let Some(&h) = level.front() {
                        prop_assert_eq!(rq.head_of(p), Some(tcbs[h]));
                        rq.rotate(tcbs[h], tcbs[i]);
                        level.pop_front();
                        level.push_back(i);
                    }
                }
            }
            let top = model.iter().rev().find(|(_, q)| !q.is_empty());
            prop_assert_eq!(rq.highest_prio(), top.map(|(p, _)| *p));
            prop_assert_eq!(rq.highest(), top.map(|(_, q)| tcbs[q[0]]));
        }
        let expected: Vec<usize> = model.values().rev().flat_map(|q| q.iter().copied()).collect();
        prop_assert_eq!(drain(&mut rq, &tcbs), expected);
    }
}

#[test]
fn fastpath_switches_directly_only_to_the_thread_schedule_would_pick() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let root = k.current().unwrap();
    let mut thread = |k: &mut Kernel<Model>, prio: u64| {
        let t = a.obj(k, ObjType::Tcb, 0);
        invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
        invoke(k, t, Label::TcbSetPriority, &[prio, rs::TCB]).unwrap();
        invoke(k, t, Label::TcbResume, &[]).unwrap();
        root_slot(k, t).cap.tcb()
    };
    // A server at 50 waits; a bystander at 80 is runnable; the client at 100 calls.
    let server = thread(&mut k, 50);
    let bystander = thread(&mut k, 80);
    invoke(&mut k, rs::TCB, Label::TcbSetPriority, &[100, rs::TCB]).unwrap();
    assert_eq!(k.current(), Some(root));
    // Switch to `t` as schedule would: the running thread back into the queues, `t` out.
    let act_as = |k: &mut Kernel<Model>, t: Ptr<Tcb>| {
        k.settle_current();
        k.rq_of_cpu(0).dequeue(t);
        k.core.current = Some(t);
    };
    act_as(&mut k, server);
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    act_as(&mut k, root);
    assert_eq!(server.get().state, ThreadState::BlockedOnRecv);
    // The fastpath delivers, but the bystander outranks the server: it runs next.
    let slow = k.slowpath_count;
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(1, 1, 0).0, 7, 0, 0, 0, 0]);
    assert_eq!(k.slowpath_count, slow);
    assert_eq!(k.current(), Some(bystander));
    assert_eq!(server.get().state, ThreadState::Running);
    assert_eq!(root.get().state, ThreadState::BlockedOnReply);
    // With the bystander gone, the server's reply goes straight back to the client.
    k.block(bystander, crate::tcb::State::Inactive);
    k.schedule();
    assert_eq!(k.current(), Some(server));
    sys(
        &mut k,
        Syscall::ReplyRecv,
        [ep, MsgInfo::new(0, 1, 0).0, 8, 0, 0, 0, rp],
    );
    assert_eq!(k.slowpath_count, slow);
    assert_eq!(k.current(), Some(root));
    assert_eq!(root.get().ctx.x[2], 8);
    // The running thread is kept out of the queues; the blocked server is not queued.
    assert!(!root.get().queued());
    assert!(!server.get().queued());
}

mod check;
mod hardening;
mod trace;
mod unchanged;
mod vcpu;

/// The order of an invocation's errors (docs/abi.md): a label of another object type
/// first, then a short message, then the arguments and capabilities in order.
#[test]
fn invocation_errors_come_in_the_documented_order() {
    let mut k = boot();
    // A Tcb label on a CNode: whatever the message.
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::TcbResume, &[]),
        Err(Error::UnknownInvocation)
    );
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::TcbResume, &[u64::MAX]),
        Err(Error::UnknownInvocation)
    );
    // Too short, with an index out of range: the length is checked first.
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[u64::MAX]),
        Err(Error::TruncatedMessage)
    );
    // Long enough: the index, then the source.
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[u64::MAX, u64::MAX, 0]),
        Err(Error::RangeError)
    );
    let free = bootinfo(&k).empty.start;
    assert_eq!(
        invoke(&mut k, rs::CNODE, Label::CNodeCopy, &[free, free + 1, 0]),
        Err(Error::FailedLookup)
    );
}

/// The release list is sorted by release time (equals in the order they were
/// throttled), and a release takes exactly the due ones, against the model's clock.
#[test]
fn the_release_list_is_sorted_and_releases_exactly_what_is_due() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let due = [700u64, 300, 500, 300];
    let mut scs = Vec::new();
    for &d in &due {
        let sc_cptr = a.obj(&mut k, ObjType::SchedContext, 0);
        invoke(
            &mut k,
            rs::SCHED_CONTROL,
            Label::SchedControlConfigure,
            &[sc_cptr, 1000, 10_000, 0],
        )
        .unwrap();
        let sc = root_slot(&k, sc_cptr).cap.sched_context();
        let t_cptr = a.obj(&mut k, ObjType::Tcb, 0);
        let t = root_slot(&k, t_cptr).cap.tcb();
        let head = usize::from(sc.get().head);
        sc.get().refills[head].time = d;
        k.throttle_quietly(t, sc);
        scs.push(sc);
    }
    let list = |k: &Kernel<Model>| {
        let mut v = Vec::new();
        let mut cur = k.core.release_head;
        while let Some(sc) = cur {
            v.push(sc);
            cur = sc.get().release_next;
        }
        v
    };
    assert_eq!(list(&k), [scs[1], scs[3], scs[2], scs[0]]);
    let root = k.current().unwrap();
    assert!(check::check(&k, root).ok());
    k.release_due(299);
    assert_eq!(list(&k).len(), 4, "nothing is due before 300");
    k.release_due(300);
    assert_eq!(list(&k), [scs[2], scs[0]]);
    assert!(!scs[1].get().throttled && !scs[3].get().throttled && scs[2].get().throttled);
    k.release_due(u64::MAX);
    assert!(list(&k).is_empty());
    assert!(check::check(&k, root).ok());
}

/// A signal through an unbadged capability, with nobody waiting, ends the next wait
/// (with badge 0). Before the fix it set no bit in the word and was lost: the waiter
/// slept forever (ktest "a thread can delete itself" hung whenever the thread ran
/// before its creator waited).
#[test]
fn an_unbadged_signal_with_no_waiter_is_not_lost() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let n = a.obj(&mut k, ObjType::Notification, 0);
    let root = k.current().unwrap();
    sys(&mut k, Syscall::Send, [n, 0, 0, 0, 0, 0, 0]);
    let out = sys(&mut k, Syscall::Recv, [n, 0, 0, 0, 0, 0, 0]);
    assert_eq!(k.current(), Some(root), "the wait did not block");
    assert_eq!(out[0], 0, "badge 0");
    assert_eq!(MsgInfo(out[1]), MsgInfo::notification());
    // Taken: the next non-blocking wait finds nothing, and badged bits still add up.
    let out = sys(&mut k, Syscall::NbRecv, [n, 0, 0, 0, 0, 0, 0]);
    assert_eq!(MsgInfo(out[1]).label(), Error::WouldBlock as u64);
    let b = a.next;
    invoke(&mut k, rs::CNODE, Label::CNodeMint, &[b, n, 0xf, 0x30]).unwrap();
    sys(&mut k, Syscall::Send, [b, 0, 0, 0, 0, 0, 0]);
    sys(&mut k, Syscall::Send, [n, 0, 0, 0, 0, 0, 0]);
    let out = sys(&mut k, Syscall::Recv, [n, 0, 0, 0, 0, 0, 0]);
    assert_eq!(out[0], 0x30);
}

/// Advance the model's clock to the kernel timer's deadline and take the interrupt;
/// false if the timer is off.
fn fire_timer(k: &mut Kernel<Model>) -> bool {
    let Some(d) = k.platform.timer else { return false };
    let m = &mut k.platform;
    m.now = (m.now + m.drift.take()).max(d);
    k.platform.timer_interrupts += 1;
    k.handle_timer();
    true
}

/// A spinner with 1 ms every 5 ms (the model's counter runs at 1 MHz), alone: the
/// timer ends each budget exactly and releases it exactly a period after the last
/// release, and with nothing to run the timer is off.
#[test]
fn the_one_shot_timer_ends_budgets_and_releases_them_on_time() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (thread, s) = budgeted_thread_with(&mut k, &mut a, 1_000, 5_000);
    let start = k.platform.now;
    let mut runs = Vec::new();
    for _ in 0..20 {
        assert!(fire_timer(&mut k));
        if k.current() == Some(thread) {
            runs.push(k.platform.now - start);
        }
    }
    assert_eq!(
        runs,
        (1..=10).map(|i| i * 5_000).collect::<Vec<_>>(),
        "released every period"
    );
    assert_eq!(
        s.get().consumed,
        10_000,
        "exactly a budget per period (the last just began)"
    );
}

/// Two spinners share a priority while a higher thread runs now and then (100 µs
/// every 10 ms, as the scheduling policy server's tick does): the time slice belongs to
/// the spinners' level, so each still gets the core within a slice. Before the fix
/// every run of the higher thread started the level's slice again, and the spinner
/// that ran first kept the core for good (found by the soft-real-time experiment's
/// `fixed` configuration: the RT guest never ran again beside a Linux hog).
#[test]
fn a_higher_thread_running_now_and_then_does_not_restart_the_time_slice_below() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let idle_ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let spinner = |k: &mut Kernel<Model>, a: &mut Alloc| {
        let t = a.obj(k, ObjType::Tcb, 0);
        invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
        invoke(k, t, Label::TcbSetPriority, &[100, rs::TCB]).unwrap();
        invoke(k, t, Label::TcbResume, &[]).unwrap();
        root_slot(k, t).cap.tcb()
    };
    let first = spinner(&mut k, &mut a);
    let second = spinner(&mut k, &mut a);
    let (high, _) = resumed_budgeted_thread(&mut k, &mut a, 200, 100, 10_000);
    sys(&mut k, Syscall::Recv, [idle_ep, 0, 0, 0, 0, 0, 0]);
    let start = k.platform.now;
    let (mut ran, mut high_ran) = ([false; 2], 0);
    while k.platform.now - start < 120_000 {
        assert!(fire_timer(&mut k), "a deadline is always pending");
        match k.current() {
            Some(t) if t == first => ran[0] = true,
            Some(t) if t == second => ran[1] = true,
            Some(t) if t == high => high_ran += 1,
            other => panic!("{other:?} runs"),
        }
    }
    assert!(high_ran >= 10, "the higher thread ran every 10 ms: {high_ran}");
    assert_eq!(ran, [true, true], "both spinners ran within 120 ms (50 ms slices)");
}

/// `SchedContextConsumed` reports when the scheduling context was last charged (a
/// policy server that wakes at `T` tells so which thread ran at `T`): 0 before its
/// thread ever ran, then the time of each charge: a switch away, a timer interrupt, a
/// query by the thread itself.
#[test]
fn consumed_reports_when_the_thread_was_last_charged() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let idle_ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let sc = a.obj(&mut k, ObjType::SchedContext, 0);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[100, rs::TCB]).unwrap();
    invoke(
        &mut k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc, 1_000, 10_000, 0],
    )
    .unwrap();
    invoke(&mut k, sc, Label::SchedContextBind, &[t]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let thread = root_slot(&k, t).cap.tcb();
    let r = invoke(&mut k, sc, Label::SchedContextConsumed, &[]).unwrap();
    assert_eq!((r[1], r[2]), (0, 0), "never ran, never charged");

    // The root blocks; the thread runs from `start`, and asks about itself.
    sys(&mut k, Syscall::Recv, [idle_ep, 0, 0, 0, 0, 0, 0]);
    assert_eq!(k.current(), Some(thread));
    let start = k.platform.now;
    k.platform.now += 300;
    let r = invoke(&mut k, sc, Label::SchedContextConsumed, &[]).unwrap();
    assert_eq!((r[1], r[2]), (300, start + 300), "charged up to the query");
    // The timer ends its budget: charged there.
    assert!(fire_timer(&mut k));
    assert_eq!(k.current(), None, "throttled");
    let end = k.platform.now;
    assert_eq!(end, start + 1_000);
    assert_eq!(thread.get().sched_context.unwrap().get().charged_at, end);
}

/// A small charge on a scheduling context with one refill (an interrupt while it runs)
/// leaves the rest of that refill usable now. Before the fix the sliver was folded into
/// the refill it came from, moving it a period away: the thread was throttled with
/// budget left, and got every other period (ktest: 5 % of the core for 10 %).
#[test]
fn a_sliver_charged_from_the_only_refill_leaves_the_rest_usable() {
    let mut sc = SchedContext::default();
    sc.configure(6_400, 64_000, 0);
    sc.charge(10, 10);
    assert!(sc.available(10), "6390 left now");
    assert_eq!(sc.head_amount(), 6_390);
    assert_eq!(sc.total(), 6_400);
    sc.charge(6_390, 6_400);
    assert!(!sc.available(6_400));
    assert!(sc.available(64_000), "it all comes back a period later");
    assert_eq!(sc.head_amount(), 6_400, "in one refill: used back to back, one window");
}

/// As above, with the root runnable below the spinner (priority 10) instead of
/// blocked: it runs between the spinner's budgets, and the spinner still gets every
/// period.
#[test]
fn a_budgeted_spinner_above_a_running_thread_gets_every_period() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (thread, s) = resumed_budgeted_thread(&mut k, &mut a, 100, 1_000, 5_000);
    let root = k.current().unwrap();
    invoke(&mut k, rs::TCB, Label::TcbSetPriority, &[10, rs::TCB]).unwrap();
    assert_eq!(k.current(), Some(thread));
    // The kernel takes a little time whenever it reads the clock.
    k.platform.read_cost = 3;
    let start = k.platform.now;
    let mut runs = Vec::new();
    for _ in 0..20 {
        assert!(fire_timer(&mut k));
        if k.current() == Some(thread) {
            runs.push(k.platform.now - start);
        } else {
            assert_eq!(k.current(), Some(root));
        }
    }
    // Every period, a little later each time: the kernel's own time at each budget's
    // end (6 ticks in the model) is an overrun, which delays the next refill by as much.
    assert_eq!(runs.len(), 10, "released every period: {runs:?}");
    for (i, w) in runs.windows(2).enumerate() {
        assert!((5_000..=5_010).contains(&(w[1] - w[0])), "period {i}: {runs:?}");
    }
    let used = s.get().consumed;
    assert!(
        (10_000..10_100).contains(&used),
        "a budget per period and the overruns: {used}"
    );
}

/// A new thread at priority 200 in the root's spaces, placed on core `cpu`, stopped.
fn thread_on(k: &mut Kernel<Model>, a: &mut Alloc, cpu: u8) -> (u64, Ptr<Tcb>) {
    let t = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(k, t, Label::TcbSetPriority, &[200, rs::TCB]).unwrap();
    let tcb = root_slot(k, t).cap.tcb();
    tcb.get().cpu = cpu;
    (t, tcb)
}

/// A thread placed on core 1 that core 0 wakes is queued on core 1, which is told
/// with an IPI; core 0 never runs it, core 1 does. An IPC from it to a thread of core 0
/// does not switch to the receiver across cores: the receiver is queued on its own
/// core, which is told in turn.
#[test]
fn a_thread_of_another_core_is_queued_and_run_there() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let root = k.current().unwrap();
    let (t, tcb) = thread_on(&mut k, &mut a, 1);
    assert_eq!(k.take_ipis(), 0);
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    assert!(tcb.get().queued(), "runnable");
    assert_eq!(k.take_ipis(), 0b10, "core 1 is told");
    assert_eq!(k.current(), Some(root), "core 0 does not run it");
    assert!(k.highest_on(0).is_none() && k.highest_on(1) == Some(tcb));
    // The root blocks: core 0 has nothing to run.
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    assert_eq!(k.current(), None);
    // Core 1 takes the interrupt and runs it.
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), Some(tcb));
    assert!(check::check(&k, root).ok());
    // It calls the root: the root is queued on core 0 and core 0 is told; the caller
    // waits for the reply, and core 1 idles.
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(0, 1, 0).0, 7, 0, 0, 0, 0]);
    assert_eq!(k.current(), None, "core 1 idles while its thread waits");
    assert!(root.get().queued() && k.highest_on(0) == Some(root), "on core 0");
    assert_eq!(k.take_ipis(), 0b01);
    k.enter(0);
    k.handle_ipi();
    assert_eq!(k.current(), Some(root));
    assert_eq!(root.get().ctx.x[2], 7, "the message");
    // The reply wakes the caller on core 1.
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 1, 0).0, 8, 0, 0, 0, 0]);
    assert_eq!(k.take_ipis(), 0b10);
    assert_eq!(k.current(), Some(root));
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), Some(tcb));
    assert_eq!(tcb.get().ctx.x[2], 8, "the reply");
    assert!(check::check(&k, root).ok());
}

/// Claim the user timer's line into the root's first free slot: the handler's CPtr.
fn claim_user_timer(k: &mut Kernel<Model>) -> u64 {
    let h = Alloc::new(k).next;
    invoke(
        k,
        rs::IRQ_CONTROL,
        Label::IrqControlGet,
        &[u64::from(USER_TIMER_IRQ), rs::CNODE, h],
    )
    .unwrap();
    h
}

/// Where `t`'s thread pointer is saved (what `Platform::save_lazy` and stalls record).
fn thread_pointer_at(t: Ptr<Tcb>) -> usize {
    core::ptr::from_mut(&mut t.get().tpidr) as usize
}

/// Core 1 runs `t` (placed there and resumed by the root on core 0); back on core 0.
fn run_on_core_1(k: &mut Kernel<Model>, t: u64, tcb: Ptr<Tcb>) {
    invoke(k, t, Label::TcbResume, &[]).unwrap();
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), Some(tcb));
    k.enter(0);
    let _ = k.take_ipis();
}

/// Deleting a thread that runs on another core stalls that core first (so it has left
/// user level and written its registers before the Tcb goes), and the core then runs
/// nothing; the lazily switched state it held for the thread is forgotten, not saved.
#[test]
fn deleting_a_thread_running_on_another_core_stalls_that_core_first() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    let (t, tcb) = thread_on(&mut k, &mut a, 1);
    run_on_core_1(&mut k, t, tcb);
    k.enter(1);
    assert!(k.lazy_switch(super::Lazy::Fpu, tcb).is_some());
    k.enter(0);
    assert!(k.platform.stalls.is_empty());
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[t]).unwrap();
    assert_eq!(k.platform.stalls, [1], "core 1 stalled");
    assert_eq!(k.take_ipis(), 0b10, "and told to choose again");
    assert_eq!(k.state(1).current, None);
    assert!(k.state(1).lazy_owners.iter().all(Option::is_none));
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), None);
    assert!(check::check(&k, root).ok());
}

/// Suspending, reading the registers of, or changing the priority of a thread running
/// on another core stops it there first; a stopped thread that is still runnable is
/// queued first in its priority on its core and runs again there.
#[test]
fn a_thread_running_on_another_core_is_stopped_before_it_is_changed() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    let (t, tcb) = thread_on(&mut k, &mut a, 1);
    run_on_core_1(&mut k, t, tcb);
    invoke(&mut k, t, Label::TcbReadRegisters, &[0, 2]).unwrap();
    assert_eq!(k.platform.stalls, [1]);
    assert!(
        tcb.get().queued() && k.highest_on(1) == Some(tcb),
        "runnable, queued on core 1"
    );
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), Some(tcb), "and runs there again");
    k.enter(0);
    invoke(&mut k, t, Label::TcbSetPriority, &[150, rs::TCB]).unwrap();
    assert_eq!(k.platform.stalls, [1, 1]);
    assert!(tcb.get().queued() && tcb.get().prio == 150);
    assert!(check::check(&k, root).ok());
    k.enter(1);
    k.handle_ipi();
    k.enter(0);
    invoke(&mut k, t, Label::TcbSuspend, &[]).unwrap();
    assert_eq!(k.platform.stalls, [1, 1, 1]);
    assert!(!tcb.get().queued() && k.state(1).current.is_none());
    assert!(check::check(&k, root).ok());
    // A thread that is not running anywhere is changed without a stall.
    invoke(&mut k, t, Label::TcbSetPriority, &[120, rs::TCB]).unwrap();
    assert_eq!(k.platform.stalls.len(), 3);
}

/// A scheduling context configured through core 1's SchedControl places its thread on
/// core 1; configuring it again through core 0's moves the thread back (its lazily
/// switched state saved from core 1 first), and unbinding it returns the thread to
/// its affinity. Only the cores that came up have a SchedControl.
#[test]
fn scheduling_contexts_place_their_threads_on_their_sched_controls_core() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    assert_eq!(bootinfo(&k).cpus, 0b1111);
    let control1 = rs::sched_control(1).unwrap();
    assert!(root_slot(&k, control1).cap.is(ObjType::SchedControl));
    let (t, tcb) = thread_on(&mut k, &mut a, 0);
    let sc = a.obj(&mut k, ObjType::SchedContext, 0);
    invoke(&mut k, sc, Label::SchedContextBind, &[t]).unwrap();
    assert_eq!(tcb.get().cpu, 0, "an unconfigured scheduling context places nothing");
    invoke(&mut k, control1, Label::SchedControlConfigure, &[sc, 1000, 10_000, 0]).unwrap();
    assert_eq!(tcb.get().cpu, 1);
    run_on_core_1(&mut k, t, tcb);
    // The consistency check knows the rule.
    tcb.get().cpu = 3;
    let report = check::check(&k, root);
    assert!(
        report
            .kept
            .iter()
            .any(|p| matches!(p, Some((super::Problem::Placement, _)))),
        "{report:?}"
    );
    tcb.get().cpu = 1;
    assert!(check::check(&k, root).ok());
    let state = invoke(&mut k, t, Label::TcbGetState, &[]).unwrap();
    assert_eq!(state[3], 1, "TcbGetState says where it runs");
    k.enter(1);
    assert!(k.lazy_switch(super::Lazy::ThreadPointer, tcb).is_some());
    k.enter(0);
    invoke(
        &mut k,
        rs::SCHED_CONTROL,
        Label::SchedControlConfigure,
        &[sc, 1000, 10_000, 0],
    )
    .unwrap();
    assert_eq!(tcb.get().cpu, 0, "moved with its scheduling context");
    assert_eq!(k.platform.stalls, [1], "core 1 stopped it and saved its state");
    assert_eq!(k.platform.lazy_saved, [thread_pointer_at(tcb)]);
    assert!(k.state(1).current.is_none() && tcb.get().queued() && k.highest_on(0) == Some(tcb));
    assert!(check::check(&k, root).ok());
    // Affinity: used once the thread has no configured scheduling context.
    assert_eq!(invoke(&mut k, t, Label::TcbSetAffinity, &[4]), Err(Error::RangeError));
    invoke(&mut k, t, Label::TcbSetAffinity, &[2]).unwrap();
    assert_eq!(tcb.get().cpu, 0, "its scheduling context decides");
    invoke(&mut k, sc, Label::SchedContextUnbind, &[]).unwrap();
    assert_eq!(tcb.get().cpu, 2, "back to its affinity");
    assert!(tcb.get().queued() && k.highest_on(2) == Some(tcb));
    assert_eq!(k.take_ipis() & 0b100, 0b100, "core 2 is told");
    assert!(check::check(&k, root).ok());
}

/// The user timer is core 0's: its handler cannot be driven from a thread placed on
/// another core (the timer and the line's mask are that core's), and nothing changes.
#[test]
fn the_user_timer_is_driven_from_core_0_only() {
    let mut k = boot();
    let h = claim_user_timer(&mut k);
    invoke(&mut k, rs::TCB, Label::TcbSetAffinity, &[1]).unwrap();
    k.enter(1);
    let _ = k.take_ipis();
    k.handle_ipi();
    assert_eq!(k.current().map(|t| t.get().cpu), Some(1), "the root runs on core 1");
    for (label, args) in [
        (Label::IrqHandlerSetTimer, &[5, 1][..]),
        (Label::IrqHandlerAck, &[][..]),
        (Label::IrqHandlerClear, &[][..]),
    ] {
        assert_eq!(
            invoke(&mut k, h, label, args),
            Err(Error::IllegalOperation),
            "{label:?}"
        );
    }
    assert_eq!(k.platform.user_timer, None, "not armed");
    invoke(&mut k, rs::TCB, Label::TcbSetAffinity, &[0]).unwrap();
    k.enter(0);
    k.handle_ipi();
    invoke(&mut k, h, Label::IrqHandlerSetTimer, &[5, 1]).unwrap();
    assert_eq!(k.platform.user_timer, Some(5), "armed from core 0");
}

/// Destroying the scheduling context of a thread running on another core stops it
/// there first and returns it to its affinity's core.
#[test]
fn destroying_the_scheduling_context_of_a_thread_running_elsewhere() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    let (t, tcb) = thread_on(&mut k, &mut a, 0);
    let sc = a.obj(&mut k, ObjType::SchedContext, 0);
    let control1 = rs::sched_control(1).unwrap();
    invoke(&mut k, control1, Label::SchedControlConfigure, &[sc, 1000, 10_000, 0]).unwrap();
    invoke(&mut k, sc, Label::SchedContextBind, &[t]).unwrap();
    run_on_core_1(&mut k, t, tcb);
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[sc]).unwrap();
    assert_eq!(k.platform.stalls, [1], "core 1 stopped it");
    assert!(k.state(1).current.is_none());
    assert_eq!(tcb.get().cpu, 0, "back on its affinity's core");
    assert!(tcb.get().queued() && k.highest_on(0) == Some(tcb));
    assert!(check::check(&k, root).ok());
}

/// A thread that moves itself to another core gets its reply (it is no longer this
/// core's running thread, but it is alive); one that deletes itself gets none.
#[test]
fn a_thread_that_moves_itself_gets_its_reply() {
    let mut k = boot();
    let root = k.current().unwrap();
    let info = MsgInfo::new(Label::TcbSetAffinity as u64, 1, 0).0;
    let out = sys(&mut k, Syscall::Call, [rs::TCB, info, 1, 0, 0, 0, 0]);
    assert_eq!(k.current(), None, "core 0 has nothing to run");
    assert_eq!(
        (out[0], out[1]),
        (0, MsgInfo::kernel(0, 0).0),
        "the reply, not the call's registers"
    );
    assert_eq!(root.get().cpu, 1);
    k.enter(1);
    k.handle_ipi();
    assert_eq!(k.current(), Some(root));
    assert!(check::check(&k, root).ok());
}

/// Giving a thread that runs on another core a new address space stops it there first
/// (it must not go on in the old one); reading the registers of a thread whose thread
/// pointer another core holds live gets that core's copy (saved by a stall).
#[test]
fn changing_or_reading_a_thread_of_another_core_takes_its_state_from_there() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let root = k.current().unwrap();
    let (t, tcb) = thread_on(&mut k, &mut a, 1);
    run_on_core_1(&mut k, t, tcb);
    let vs = a.obj(&mut k, ObjType::VSpace, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, vs, 0]).unwrap();
    assert_eq!(k.platform.stalls, [1], "stopped before its VSpace changed");
    assert!(k.state(1).current.is_none());
    // Suspended (it runs nowhere: no stall), with its thread pointer live on core 1,
    // as after it blocked there.
    invoke(&mut k, t, Label::TcbSuspend, &[]).unwrap();
    assert_eq!(k.platform.stalls, [1]);
    k.platform.lazy_saved.clear();
    // Live again on core 1 while not running there: a read stalls core 1 for it.
    k.enter(1);
    assert!(k.lazy_switch(super::Lazy::ThreadPointer, tcb).is_some());
    k.enter(0);
    invoke(&mut k, t, Label::TcbReadRegisters, &[0, 1]).unwrap();
    assert_eq!(k.platform.stalls, [1, 1], "core 1 saved its copy");
    assert_eq!(k.platform.lazy_saved, [thread_pointer_at(tcb)]);
    assert!(check::check(&k, root).ok());
}

/// The user timer firing with no handler (its handler was deleted from another core,
/// which could not disarm core 0's timer) is disarmed and masked where it fires.
#[test]
fn a_user_timer_firing_without_a_handler_is_disarmed() {
    let mut k = boot();
    let h = claim_user_timer(&mut k);
    invoke(&mut k, h, Label::IrqHandlerSetTimer, &[5, 1]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[h]).unwrap();
    // Core 0's timer is still armed (the delete ran on another core).
    k.platform.user_timer = Some(5);
    k.handle_irq(USER_TIMER_IRQ);
    assert_eq!(k.platform.user_timer, None, "disarmed");
    assert!(!k.platform.enabled.contains(&USER_TIMER_IRQ), "masked");
}

/// A kernel whose other cores did not come up hands out no SchedControl for them and
/// refuses to place threads there.
#[test]
fn cores_that_did_not_come_up_get_no_threads() {
    let (start, end) = ram(16 << 20);
    let mut k = boot_over_cpus(start..end, &[], 0b101);
    let mut a = Alloc::new(&k);
    assert_eq!(bootinfo(&k).cpus, 0b101);
    assert!(
        !root_slot(&k, rs::sched_control(1).unwrap())
            .cap
            .is(ObjType::SchedControl)
    );
    assert!(
        root_slot(&k, rs::sched_control(2).unwrap())
            .cap
            .is(ObjType::SchedControl)
    );
    let (t, tcb) = thread_on(&mut k, &mut a, 0);
    assert_eq!(invoke(&mut k, t, Label::TcbSetAffinity, &[1]), Err(Error::RangeError));
    invoke(&mut k, t, Label::TcbSetAffinity, &[2]).unwrap();
    assert_eq!(tcb.get().cpu, 2);
}

/// An operation of the per-core proptest.
#[derive(Clone, Debug)]
enum CoreOp {
    /// Core `.1` makes thread `.0` runnable (then chooses again, as after a syscall).
    Wake(usize, usize),
    /// Core `.1` stops thread `.0` (then chooses again).
    Block(usize, usize),
    /// Core `.0` takes an IPI: it chooses again.
    Schedule(usize),
    /// Core `.2` moves thread `.0` to core `.1` (then chooses again).
    Migrate(usize, usize, usize),
}

fn core_op() -> impl Strategy<Value = CoreOp> {
    prop_oneof![
        (0usize..8, 0usize..4).prop_map(|(i, c)| CoreOp::Wake(i, c)),
        (0usize..8, 0usize..4).prop_map(|(i, c)| CoreOp::Block(i, c)),
        (0usize..4).prop_map(CoreOp::Schedule),
        (0usize..8, 0usize..4, 0usize..4).prop_map(|(i, to, c)| CoreOp::Migrate(i, to, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// What a core runs depends only on its own threads: random wake-ups and blocks of
    /// threads placed on four cores, done by random cores, each followed by that
    /// core's choice; against a model, a core that chooses runs one of the
    /// highest-priority runnable threads placed on it (or nothing), and the consistency
    /// check holds throughout (another core may still run a thread stopped for it: its
    /// IPI is pending).
    #[test]
    fn each_core_runs_its_own_highest_thread(
        mut placing in proptest::collection::vec((0u8..4, 100u8..104), 8),
        ops in proptest::collection::vec(core_op(), 1..80),
    ) {
        let mut k = boot();
        let mut a = Alloc::new(&k);
        let root = k.current().unwrap();
        let threads: Vec<Ptr<Tcb>> = placing
            .iter()
            .map(|&(cpu, prio)| {
                let (_, t) = thread_on(&mut k, &mut a, cpu);
                t.get().prio = prio;
                t
            })
            .collect();
        // The root steps aside (stopped), so core 0 has only the test's threads.
        k.block(root, super::object::tcb::State::Inactive);
        k.schedule();
        let mut runnable = [false; 8];
        for op in ops {
            let c = match op {
                CoreOp::Wake(i, c) => {
                    k.enter(c);
                    k.make_runnable(threads[i], false);
                    runnable[i] = true;
                    c
                }
                CoreOp::Block(i, c) => {
                    k.enter(c);
                    // As a suspend does: stopped wherever it runs first.
                    k.settle(threads[i]);
                    k.block(threads[i], super::object::tcb::State::Inactive);
                    runnable[i] = false;
                    c
                }
                CoreOp::Schedule(c) => {
                    k.enter(c);
                    c
                }
                CoreOp::Migrate(i, to, c) => {
                    k.enter(c);
                    k.migrate(threads[i], to);
                    placing[i].0 = to as u8;
                    c
                }
            };
            k.schedule();
            let best = (0..8)
                .filter(|&i| runnable[i] && usize::from(placing[i].0) == c)
                .map(|i| placing[i].1)
                .max();
            let got = k.current();
            prop_assert_eq!(got.map(|t| t.get().prio), best, "core {} runs its best", c);
            // Every core (not only the one that chose) runs only its own runnable
            // threads: one stopped or moved by another core stopped there at once.
            for cpu in 0..4 {
                if let Some(t) = k.state(cpu).current {
                    prop_assert_eq!(usize::from(t.get().cpu), cpu, "only its own threads");
                    prop_assert!(t.get().state.is_running());
                }
            }
            let _ = k.take_ipis();
            let report = k.check_consistency(root, true);
            prop_assert!(report.ok(), "{report:?}");
        }
    }
}
