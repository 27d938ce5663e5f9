//! The benchmark's environment: libl4's allocator over the root server's boot info,
//! and the workers it loads into address spaces of their own.

use gaon_abi::bootinfo::{BootInfo, slot};
use gaon_abi::invocation::REG_TPIDR;
use libl4::alloc::{Allocator, PAGE, Slots, VaRange};
use libl4::cap::{CNode, Frame, Notification, Tcb, VSpace};
use libl4::ipc::CPtr;
use libl4::{Error, ObjType, Rights};

use crate::common::{IPC_BUFFER, SHARED, STACK_PAGES, STACK_TOP, WORKING_SET, WORKING_SET_MAX};

/// The root CNode.
pub const ROOT_CNODE: CNode = CNode(slot::CNODE);
/// The root Tcb.
pub const ROOT_TCB: Tcb = Tcb(slot::TCB);

/// Where the allocator maps frames in the root's address space.
const MAP_BASE: u64 = 0x10_0000_0000;
const MAP_END: u64 = 0x20_0000_0000;

/// Why a case could not be built or run.
pub type Fail = &'static str;

/// Turn a kernel error into a failure naming the step.
pub fn ok<T>(r: Result<T, Error>, what: Fail) -> Result<T, Fail> {
    r.map_err(|_| what)
}

/// The allocator, the worker program and the IRQ control capability.
#[derive(Debug)]
pub struct Env {
    /// Objects, slots and mappings.
    pub a: Allocator,
    /// The worker ELF (boot module `bench-worker`).
    worker: &'static [u8],
    /// The cores that came up (bit n: core n).
    pub cpus: u64,
    /// The user timer's line, if the board gives user level one.
    pub user_timer: Option<u64>,
    /// The kernel drives a GICv2 virtual interface (guests use its memory-mapped CPU
    /// interface, not GICv3's system registers).
    pub gicv2: bool,
}

/// A worker: a thread in an address space and CSpace of its own.
#[derive(Clone, Copy, Debug)]
pub struct Worker {
    /// Its thread.
    pub tcb: Tcb,
    /// Its CNode (as the root names it).
    pub cnode: CNode,
}

/// Objects a worker is given: (its slot, the root's capability).
pub type Grants<'a> = &'a [(u64, CPtr)];

impl Env {
    /// Set up from the boot info.
    pub fn new(bi: &'static BootInfo) -> Result<Self, Fail> {
        let mut a = Allocator::new(
            ROOT_CNODE,
            libl4::cap::VSpace(slot::VSPACE),
            Slots::new(bi.empty.start, bi.empty.end),
            VaRange::new(MAP_BASE, MAP_END),
        );
        a.vmid_pool = Some(libl4::cap::VmidPool(slot::VMID_POOL));
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        for (i, d) in bi.untyped[..n].iter().enumerate() {
            ok(
                a.add_untyped(libl4::cap::Untyped(bi.untyped_slots.start + i as u64), d),
                "untyped",
            )?;
        }
        let worker = libl4::start::boot_module("bench-worker").ok_or("no boot module `bench-worker`")?;
        Ok(Self {
            a,
            worker,
            cpus: bi.cpus,
            user_timer: bi.user_timer(),
            gicv2: bi.vgic_cpu.start != bi.vgic_cpu.end,
        })
    }

    /// A new endpoint.
    pub fn endpoint(&mut self) -> Result<CPtr, Fail> {
        ok(self.a.alloc(ObjType::Endpoint, 0), "endpoint")
    }

    /// A new reply object.
    pub fn reply(&mut self) -> Result<CPtr, Fail> {
        ok(self.a.alloc(ObjType::Reply, 0), "reply object")
    }

    /// A new scheduling context (not configured).
    pub fn sched_context(&mut self) -> Result<libl4::cap::SchedContext, Fail> {
        ok(self.a.alloc(ObjType::SchedContext, 0), "scheduling context").map(libl4::cap::SchedContext)
    }

    /// A new notification.
    pub fn notification(&mut self) -> Result<Notification, Fail> {
        ok(self.a.alloc(ObjType::Notification, 0), "notification").map(Notification)
    }

    /// `pages` fresh pages mapped in the root, and their frames (for sharing).
    pub fn shared(&mut self, pages: u64) -> Result<(u64, heapless::Vec<Frame, 32>), Fail> {
        let va = ok(self.a.va.take(pages), "address range")?;
        let mut frames = heapless::Vec::new();
        for i in 0..pages {
            let f = Frame(ok(self.a.alloc(ObjType::Frame, 12), "frame")?);
            ok(
                self.a
                    .map(self.a.vspace, f, va + i * PAGE, Rights::READ | Rights::WRITE, false),
                "map shared page",
            )?;
            frames.push(f).map_err(|_| "too many shared pages")?;
        }
        Ok((va, frames))
    }

    /// A thread in the root's address space running `entry(arg)` at `prio`.
    pub fn thread(&mut self, entry: extern "C" fn(u64) -> !, arg: u64, prio: u64) -> Result<Tcb, Fail> {
        ok(self.a.spawn(entry, arg, prio, 0, ROOT_TCB), "thread")
    }

    /// Load a worker with `role` (and its parameter) at `prio`, its slots holding
    /// `grants`, `shared` frames mapped at `SHARED` (second capabilities, so they stay
    /// mapped in the root too) and a working set of `WORKING_SET_MAX` bytes.
    pub fn worker(
        &mut self,
        role: u64,
        param: u64,
        prio: u64,
        grants: Grants<'_>,
        shared: &[Frame],
    ) -> Result<Worker, Fail> {
        let rw = Rights::READ | Rights::WRITE;
        let vs = VSpace(ok(self.a.alloc(ObjType::VSpace, 0), "vspace")?);
        let cn = ok(self.a.alloc(ObjType::CNode, 4), "cnode")?;
        let guarded = ok(self.a.slot(), "slot")?;
        // Guard of 60 bits: a CPtr is the slot index.
        ok(ROOT_CNODE.mint(guarded, cn, Rights::all(), 60 << 56), "guarded cnode")?;
        for &(at, src) in grants {
            ok(CNode(cn).copy(at, src, Rights::all()), "grant")?;
        }
        let entry = libl4::elf::load(&mut self.a, vs, self.worker).map_err(|_| "load the worker ELF")?;
        for i in 0..STACK_PAGES {
            let f = Frame(ok(self.a.alloc(ObjType::Frame, 12), "stack")?);
            ok(self.a.map(vs, f, STACK_TOP - (i + 1) * PAGE, rw, false), "map stack")?;
        }
        for i in 0..WORKING_SET_MAX / PAGE {
            let f = Frame(ok(self.a.alloc(ObjType::Frame, 12), "working set")?);
            ok(self.a.map(vs, f, WORKING_SET + i * PAGE, rw, false), "map working set")?;
        }
        for (i, f) in shared.iter().enumerate() {
            let again = ok(self.a.slot(), "slot")?;
            ok(ROOT_CNODE.copy(again, f.0, Rights::all()), "shared frame")?;
            ok(
                self.a.map(vs, Frame(again), SHARED + i as u64 * PAGE, rw, false),
                "map shared",
            )?;
        }
        let buf = Frame(ok(self.a.alloc(ObjType::Frame, 12), "ipc buffer")?);
        ok(self.a.map(vs, buf, IPC_BUFFER, rw, false), "map ipc buffer")?;
        let t = Tcb(ok(self.a.alloc(ObjType::Tcb, 0), "tcb")?);
        ok(t.set_space(CNode(guarded), vs, 0), "set space")?;
        ok(t.set_ipc_buffer(IPC_BUFFER, buf.0), "set ipc buffer")?;
        ok(
            t.write_registers(0, &[entry, STACK_TOP, 0, role | param << 8]),
            "registers",
        )?;
        ok(t.write_registers(REG_TPIDR, &[IPC_BUFFER]), "tpidr")?;
        ok(t.set_priority(prio, ROOT_TCB), "priority")?;
        ok(t.resume(), "resume")?;
        Ok(Worker {
            tcb: t,
            cnode: CNode(cn),
        })
    }
}
