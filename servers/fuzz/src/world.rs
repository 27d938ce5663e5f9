//! The untrusted threads' world: the fuzzer's thread, its CNode and every object in it
//! (among them a second fuzzing thread that shares the CNode, and whose only
//! capability the fuzzer holds), and a partner thread that echoes what arrives on the
//! shared endpoint. All of it is carved from one untyped the supervisor keeps, so one revoke of that
//! untyped destroys the whole world (whatever state the fuzzer left it in) and the
//! memory is reused by the next one.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use gaon_abi::bootinfo::{BootInfo, slot as rs};
use gaon_abi::invocation::REG_TPIDR;
use libl4::alloc::{Allocator, PAGE};
use libl4::cap::{CNode, Frame, IrqControl, SchedContext, SchedControl, Tcb, Untyped, VSpace, VmidPool};
use libl4::ipc::{self, CPtr, MsgInfo};
use libl4::syscall::yield_now;
use libl4::{Error, ObjType, Rights};

use crate::fuzzer::{self, RADIX, slot};

/// The root CNode and VSpace.
const ROOT_CNODE: CNode = CNode(rs::CNODE);
const ROOT_VSPACE: VSpace = VSpace(rs::VSPACE);
/// The root's Tcb (the authority for priorities).
pub const ROOT_TCB: Tcb = Tcb(rs::TCB);

/// Priority of every thread of the run: they share the CPU round-robin, and nothing
/// the fuzzer can reach may rise above it (its MCP is the same).
pub const PRIO: u64 = 100;
/// Size of the world's untyped (8 MiB).
const WORLD_BITS: u8 = 23;
/// Size of the fuzzer's own untyped (64 KiB).
const FUZZ_UNTYPED_BITS: u8 = 16;
/// Pages of the fuzzer's stack.
const STACK_PAGES: u64 = 16;

/// VMIDs the fuzzers' pool holds.
const FUZZ_VMIDS: u64 = 4;

/// Root slots (from `base`) holding what the supervisor keeps a handle on.
mod w {
    pub const F_CNODE: u64 = 0;
    pub const F_CNODE_GUARDED: u64 = 1;
    pub const F_TCB: u64 = 2;
    pub const P_CNODE: u64 = 3;
    pub const P_CNODE_GUARDED: u64 = 4;
    pub const P_TCB: u64 = 5;
    pub const P_REPLY: u64 = 6;
    pub const EP: u64 = 7;
    pub const FAULT_EP: u64 = 8;
    pub const OTHER: u64 = 9;
    pub const SCHED_CONTEXT2: u64 = 10;
    pub const BOUND_NTFN: u64 = 11;
    pub const VMID_POOL: u64 = 12;
    pub const SLOTS: u64 = 13;
}

/// The partner's CNode (radix 3, guarded to a one-level CSpace).
mod p {
    pub const RADIX: u8 = 3;
    pub const EP: u64 = 1;
    pub const REPLY: u64 = 2;
    /// Where a capability sent with a message arrives (deleted again at once).
    pub const RECEIVE: u64 = 3;
    pub const CNODE: u64 = 4;
}

/// Messages the partner echoed.
pub static ECHOES: AtomicU64 = AtomicU64::new(0);

/// What stays from world to world: the untyped, the root slots, stacks, IPC buffers.
#[derive(Debug)]
pub struct World {
    untyped: CPtr,
    base: CPtr,
    f_stack_top: u64,
    f_buffer: (Frame, u64),
    o_stack_top: u64,
    o_buffer: (Frame, u64),
    p_stack_top: u64,
    p_buffer: (Frame, u64),
    irq_lines: (Option<u64>, Option<u64>),
    /// Where the fuzzer, the other fuzzing thread and the partner run: the cores that
    /// are up other than core 0 (the supervisor's), in turn (all on core 0 with one).
    cores: [u64; 3],
    /// Worlds built so far.
    pub built: u64,
}

impl World {
    /// Set aside what every world needs.
    pub fn new(a: &mut Allocator, bi: &BootInfo) -> Result<Self, Error> {
        let untyped = a.alloc(ObjType::Untyped, WORLD_BITS)?;
        let base = a.slots.take_n(w::SLOTS)?;
        let f_stack = a.pages(STACK_PAGES)?;
        let f_buffer = a.page()?;
        let o_stack = a.pages(STACK_PAGES)?;
        let o_buffer = a.page()?;
        let p_stack = a.pages(4)?;
        let p_buffer = a.page()?;
        // A device line nobody uses (the last one user level may have) and the user
        // timer, where the board hands them out.
        let device = (bi.irq_end > bi.irq_first).then(|| bi.irq_end - 1);
        let timer = bi.user_timer();
        let (mut others, mut up) = ([0u64; 3], 0);
        for c in (1..4).filter(|&c| bi.cpus & (1 << c) != 0) {
            others[up] = c;
            up += 1;
        }
        let cores = core::array::from_fn(|i| if up == 0 { 0 } else { others[i % up] });
        Ok(Self {
            untyped,
            base,
            f_stack_top: f_stack + STACK_PAGES * PAGE,
            f_buffer,
            o_stack_top: o_stack + STACK_PAGES * PAGE,
            o_buffer,
            p_stack_top: p_stack + 4 * PAGE,
            p_buffer,
            irq_lines: (timer, device),
            cores,
            built: 0,
        })
    }

    fn at(&self, i: u64) -> CPtr {
        self.base + i
    }

    /// The fuzzer's thread.
    pub fn fuzzer(&self) -> Tcb {
        Tcb(self.at(w::F_TCB))
    }

    /// Build a world and start the fuzzer, the other fuzzing thread and the partner.
    #[allow(clippy::too_many_lines, reason = "one world's objects and threads, in order")]
    pub fn build(&mut self) -> Result<(), Error> {
        // The fuzzing threads wait (`fuzzer::entry`) until their CSpace is complete: on
        // other cores they start as soon as they are resumed.
        let stop = fuzzer::STOP.swap(fuzzer::CALLS.load(Relaxed), Relaxed);
        let ut = Untyped(self.untyped);
        let f_cnode = CNode(self.at(w::F_CNODE));
        let retype = |ty: ObjType, bits: u8, dest: CNode, index: u64| ut.retype(ty, bits, dest, index, 1);
        let root = |i: u64| (ROOT_CNODE, self.at(i));
        // The large frame first: it needs 2 MiB alignment, at the start of the untyped.
        retype(ObjType::CNode, RADIX, ROOT_CNODE, self.at(w::F_CNODE))?;
        retype(ObjType::Frame, 21, f_cnode, slot::LARGE_FRAME)?;
        for (ty, bits, (dest, index)) in [
            (ObjType::CNode, p::RADIX, root(w::P_CNODE)),
            (ObjType::Tcb, 0, root(w::F_TCB)),
            (ObjType::Tcb, 0, root(w::P_TCB)),
            (ObjType::Tcb, 0, root(w::OTHER)),
            (ObjType::Reply, 0, root(w::P_REPLY)),
            (ObjType::Endpoint, 0, root(w::EP)),
            (ObjType::Endpoint, 0, root(w::FAULT_EP)),
            (ObjType::SchedContext, 0, root(w::SCHED_CONTEXT2)),
            (ObjType::Notification, 0, root(w::BOUND_NTFN)),
            (ObjType::VSpace, 0, (f_cnode, slot::VSPACE)),
            (ObjType::Untyped, FUZZ_UNTYPED_BITS, (f_cnode, slot::UNTYPED)),
            (ObjType::Notification, 0, (f_cnode, slot::NTFN)),
            (ObjType::Reply, 0, (f_cnode, slot::REPLY)),
            (ObjType::Frame, 12, (f_cnode, slot::FRAME)),
            (ObjType::Frame, 12, (f_cnode, slot::FRAME2)),
            (ObjType::PageTable, 0, (f_cnode, slot::PAGE_TABLE)),
            (ObjType::PageTable, 0, (f_cnode, slot::PAGE_TABLE2)),
            (ObjType::SchedContext, 0, (f_cnode, slot::SCHED_CONTEXT)),
            (ObjType::CNode, 2, (f_cnode, slot::CNODE2)),
            (ObjType::VCpu, 0, (f_cnode, slot::VCPU)),
        ] {
            retype(ty, bits, dest, index)?;
        }
        let all = Rights::all();
        // One-level CSpaces: the guard takes the bits the radix leaves.
        ROOT_CNODE.mint(
            self.at(w::F_CNODE_GUARDED),
            self.at(w::F_CNODE),
            all,
            u64::from(64 - RADIX) << 56,
        )?;
        ROOT_CNODE.mint(
            self.at(w::P_CNODE_GUARDED),
            self.at(w::P_CNODE),
            all,
            u64::from(64 - p::RADIX) << 56,
        )?;
        // The partner's CSpace.
        let p_cnode = CNode(self.at(w::P_CNODE));
        p_cnode.copy(p::EP, self.at(w::EP), all)?;
        p_cnode.move_(p::REPLY, self.at(w::P_REPLY))?;
        p_cnode.copy(p::CNODE, self.at(w::P_CNODE_GUARDED), all)?;
        // The other fuzzing thread: the fuzzer's CSpace, this address space, a fault
        // endpoint only the fuzzers can receive on, and a budget (a fifth of the CPU)
        // until they unbind it.
        let other = Tcb(self.at(w::OTHER));
        other.set_space(CNode(self.at(w::F_CNODE_GUARDED)), ROOT_VSPACE, self.at(w::FAULT_EP))?;
        other.set_ipc_buffer(self.o_buffer.1, self.o_buffer.0.0)?;
        other.write_registers(
            0,
            &[
                fuzzer::entry as *const () as u64,
                self.o_stack_top,
                0,
                self.o_buffer.1 | 1,
            ],
        )?;
        other.set_priority(PRIO, ROOT_TCB)?;
        other.set_mcp(PRIO, ROOT_TCB)?;
        let sc = SchedContext(self.at(w::SCHED_CONTEXT2));
        // Its core's SchedControl, which places it there; the fuzzer gets a copy.
        let control = usize::try_from(self.cores[1])
            .ok()
            .and_then(rs::sched_control)
            .unwrap_or(rs::SCHED_CONTROL);
        SchedControl(control).configure(sc, 2_000, 10_000, 0x5c)?;
        sc.bind(other)?;
        other.resume()?;
        // The fuzzer's CSpace.
        f_cnode.copy(slot::CNODE, self.at(w::F_CNODE_GUARDED), all)?;
        f_cnode.copy(slot::TCB, self.at(w::F_TCB), all)?;
        f_cnode.copy(slot::SCHED_CONTROL, control, all)?;
        f_cnode.mint(slot::EP_BADGED, self.at(w::EP), all, 0x5a)?;
        f_cnode.move_(slot::EP, self.at(w::EP))?;
        f_cnode.move_(slot::FAULT_EP, self.at(w::FAULT_EP))?;
        f_cnode.move_(slot::OTHER, self.at(w::OTHER))?;
        f_cnode.move_(slot::SCHED_CONTEXT2, self.at(w::SCHED_CONTEXT2))?;
        // A few VMIDs of its own: it may give them to its VSpace, or split them. They
        // come back to the root's pool when the world (and the pool with it) goes.
        VmidPool(rs::VMID_POOL).split(FUZZ_VMIDS, ROOT_CNODE, self.at(w::VMID_POOL))?;
        f_cnode.move_(slot::VMID_POOL, self.at(w::VMID_POOL))?;
        let irqc = IrqControl(rs::IRQ_CONTROL);
        if let Some(line) = self.irq_lines.0 {
            irqc.get(line, f_cnode, slot::IRQ_TIMER)?;
        }
        if let Some(line) = self.irq_lines.1 {
            irqc.get(line, f_cnode, slot::IRQ_DEVICE)?;
        }
        // The fuzzer's thread, with a notification bound to it.
        let f = self.fuzzer();
        self.restore(f, true)?;
        f.set_mcp(PRIO, ROOT_TCB)?;
        f.bind_notification(libl4::cap::Notification(self.at(w::BOUND_NTFN)))?;
        f_cnode.move_(slot::BOUND_NTFN, self.at(w::BOUND_NTFN))?;
        // The partner.
        let pt = Tcb(self.at(w::P_TCB));
        pt.set_space(CNode(self.at(w::P_CNODE_GUARDED)), ROOT_VSPACE, 0)?;
        pt.set_ipc_buffer(self.p_buffer.1, self.p_buffer.0.0)?;
        pt.write_registers(0, &[partner as *const () as u64, self.p_stack_top, 0, 0])?;
        pt.write_registers(REG_TPIDR, &[self.p_buffer.1])?;
        pt.set_priority(PRIO, ROOT_TCB)?;
        pt.set_affinity(self.cores[2])?;
        pt.resume()?;
        f.resume()?;
        fuzzer::STOP.store(stop, Relaxed);
        self.built += 1;
        Ok(())
    }

    /// Give the fuzzer's thread back what it may have changed about itself: its CSpace
    /// and VSpace (and no fault endpoint), its IPC buffer, its priority, its core; with
    /// `restart`, also a fresh stack at its entry point. Refused (by the kernel) when
    /// its CSpace slot holds the last capability to a CNode: then the world is rebuilt.
    pub fn restore(&self, f: Tcb, restart: bool) -> Result<(), Error> {
        f.set_space(CNode(self.at(w::F_CNODE_GUARDED)), ROOT_VSPACE, 0)?;
        f.set_ipc_buffer(self.f_buffer.1, self.f_buffer.0.0)?;
        f.set_priority(PRIO, ROOT_TCB)?;
        f.set_affinity(self.cores[0])?;
        if restart {
            f.write_registers(
                0,
                &[fuzzer::entry as *const () as u64, self.f_stack_top, 0, self.f_buffer.1],
            )?;
        }
        Ok(())
    }

    /// Destroy the world: one revoke of its untyped.
    pub fn teardown(&self) -> Result<(), Error> {
        let _ = self.fuzzer().suspend();
        ROOT_CNODE.revoke(self.untyped)
    }
}

/// The partner thread: receives on the shared endpoint and echoes each message back
/// (up to four words), deleting any capability that came with it.
extern "C" fn partner(_: u64) -> ! {
    if let Some(b) = ipc::ipc_buffer() {
        b.receive_cnode = p::CNODE;
        b.receive_index = p::RECEIVE;
    }
    loop {
        let mut m = ipc::recv(p::EP, p::REPLY);
        while m.error().is_none() {
            ECHOES.fetch_add(1, Relaxed);
            if m.info.extra_caps() > 0 {
                let _ = CNode(p::CNODE).delete(p::RECEIVE);
            }
            let info = MsgInfo::new(0, m.info.length().min(4), 0);
            m = ipc::reply_recv(p::EP, p::REPLY, info, m.mr);
        }
        // Its endpoint or reply object is gone (the fuzzer revoked or deleted them):
        // wait for the next world.
        yield_now();
    }
}
