//! Building the servers the system table describes: each gets its own CNode, VSpace and
//! thread, its program loaded from its boot module, a stack, an IPC buffer, a start-info
//! page, and the capabilities, channels, shared memory, device memory, IRQs, priority
//! and budget the description names.

use gaon_abi::boot::name_bytes;
use gaon_abi::bootinfo::slot;
use gaon_abi::invocation::REG_TPIDR;
use gaon_abi::system::{
    Grant, GrantKind, NamedCap, SERVER_CNODE_RADIX, SERVER_DEBUG, SERVER_FREE_VADDR, SERVER_IPC_BUFFER_VADDR,
    SERVER_MAP_BASE, SERVER_STACK_TOP, START_INFO_VADDR, START_MAGIC, ServerEntry, StartInfo, SystemTable, server_slot,
};
use heapless::Vec;
use libl4::alloc::{Allocator, LARGE_PAGE, PAGE};
use libl4::cap::{
    CNode, Frame, IrqControl, IrqHandler, Notification, SchedContext, SchedControl, Tcb, Untyped, VSpace, VmidPool,
};
use libl4::ipc::CPtr;
use libl4::server::FAULT_BADGE;
use libl4::{Error, ObjType, Rights};
use zerocopy::{FromZeros, IntoBytes};

use libl4::elf::{LoadError, load};

/// The root CNode.
pub const ROOT_CNODE: CNode = CNode(slot::CNODE);
/// The root Tcb.
pub const ROOT_TCB: Tcb = Tcb(slot::TCB);

/// What the root keeps of a running server, to reclaim it.
#[derive(Clone, Copy, Debug)]
pub struct Running {
    /// Its thread.
    pub tcb: Tcb,
    /// Its CNode (the unguarded original).
    pub cnode: CPtr,
    /// Its VSpace.
    pub vspace: CPtr,
    /// Its reply object: deleting it cancels the call the server is answering.
    pub reply: CPtr,
    /// The parent of its heap untyped (0: none): a revoke of it deletes the heap and
    /// everything the server made from it (a VMM's guest included).
    pub heap: CPtr,
    /// Still running.
    pub alive: bool,
}

/// Why a server could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The boot image has no module of the server's name.
    NoModule,
    /// Its program could not be loaded.
    Load(LoadError),
    /// Grant `.0` could not be made.
    Grant(usize, Error),
    /// The kernel refused a step (named).
    Kernel(&'static str, Error),
}

impl From<LoadError> for BuildError {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

trait Step<T> {
    fn step(self, what: &'static str) -> Result<T, BuildError>;
}

impl<T> Step<T> for Result<T, Error> {
    fn step(self, what: &'static str) -> Result<T, BuildError> {
        self.map_err(|e| BuildError::Kernel(what, e))
    }
}

/// The objects the whole system shares: one endpoint per channel and the frames of
/// every shared region.
#[derive(Debug)]
pub struct Shared {
    /// Endpoint of channel `i`.
    pub endpoints: Vec<CPtr, { gaon_abi::system::MAX_ENDPOINTS }>,
    /// First frame slot and page count of shared region `i`.
    pub regions: Vec<(CPtr, u64), { gaon_abi::system::MAX_SHARED }>,
}

impl Shared {
    /// Make the channels' endpoints and the shared regions' frames.
    pub fn new(a: &mut Allocator, t: &SystemTable) -> Result<Self, BuildError> {
        let mut s = Self {
            endpoints: Vec::new(),
            regions: Vec::new(),
        };
        for _ in 0..t.endpoint_count {
            let ep = a.alloc(ObjType::Endpoint, 0).step("endpoint")?;
            let _ = s.endpoints.push(ep);
        }
        for r in t.shared() {
            let first = a.slots.take_n(r.pages).step("shared region slots")?;
            for p in 0..r.pages {
                a.alloc_at(ObjType::Frame, 12, first + p).step("shared region frame")?;
            }
            let _ = s.regions.push((first, r.pages));
        }
        Ok(s)
    }
}

/// Map a server's stack (`pages` pages below `SERVER_STACK_TOP`) and its IPC buffer,
/// which it returns.
fn map_stack_and_ipc_buffer(a: &mut Allocator, vspace: VSpace, pages: u64) -> Result<Frame, BuildError> {
    for p in 1..=pages {
        let f = Frame(a.alloc(ObjType::Frame, 12).step("stack")?);
        a.map(
            vspace,
            f,
            SERVER_STACK_TOP - p * PAGE,
            Rights::READ | Rights::WRITE,
            false,
        )
        .step("map stack")?;
    }
    let ipc = Frame(a.alloc(ObjType::Frame, 12).step("IPC buffer")?);
    a.map(
        vspace,
        ipc,
        SERVER_IPC_BUFFER_VADDR,
        Rights::READ | Rights::WRITE,
        false,
    )
    .step("map IPC buffer")?;
    Ok(ipc)
}

/// Build server `index` of the table (not started yet), placed on `core` (one that is
/// up). `supervisor` is the root's endpoint: the server's fault endpoint and where it
/// reports its exit.
pub fn build(
    a: &mut Allocator,
    shared: &Shared,
    e: &ServerEntry,
    index: u64,
    core: u64,
    supervisor: CPtr,
) -> Result<Running, BuildError> {
    let module = libl4::start::boot_module(core::str::from_utf8(name_bytes(&e.module)).unwrap_or(""))
        .ok_or(BuildError::NoModule)?;
    let cnode = a.alloc(ObjType::CNode, SERVER_CNODE_RADIX).step("CNode")?;
    let vspace = VSpace(a.alloc(ObjType::VSpace, 0).step("VSpace")?);
    let tcb = Tcb(a.alloc(ObjType::Tcb, 0).step("Tcb")?);
    let reply = a.alloc(ObjType::Reply, 0).step("reply object")?;
    let ntfn = Notification(a.alloc(ObjType::Notification, 0).step("notification")?);
    let child = CNode(cnode);
    // A CNode capability whose guard makes the server's CPtrs plain slot indices.
    let guarded = a.slot().step("slot")?;
    let guard_bits = 64 - u64::from(SERVER_CNODE_RADIX);
    ROOT_CNODE
        .mint(guarded, cnode, Rights::all(), guard_bits << 56)
        .step("guard the CNode")?;

    let entry = load(a, vspace, module)?;

    let ipc = map_stack_and_ipc_buffer(a, vspace, u64::from(e.stack_pages))?;

    // Fixed slots.
    let fault = a.slot().step("slot")?;
    ROOT_CNODE
        .mint(fault, supervisor, Rights::all(), FAULT_BADGE | index)
        .step("fault endpoint")?;
    let exit = a.slot().step("slot")?;
    // Badge index + 1: an unbadged capability could be minted into any badge by its
    // holder, and so forge another server's exit.
    ROOT_CNODE
        .mint(exit, supervisor, Rights::WRITE, index + 1)
        .step("supervisor endpoint")?;
    for (dest, src) in [
        (server_slot::TCB, tcb.0),
        (server_slot::CNODE, guarded),
        (server_slot::VSPACE, vspace.0),
        (server_slot::REPLY, reply),
        (server_slot::NOTIFICATION, ntfn.0),
    ] {
        child.copy(dest, src, Rights::all()).step("give a fixed capability")?;
    }
    child
        .move_(server_slot::SUPERVISOR, exit)
        .step("give the supervisor endpoint")?;

    let mut info = StartInfo::new_zeroed();
    info.magic = START_MAGIC;
    info.version = 1;
    info.name = e.name;
    if e.vmids != 0 {
        let pool = a.slot().step("slot")?;
        VmidPool(slot::VMID_POOL)
            .split(u64::from(e.vmids), ROOT_CNODE, pool)
            .step("split a VMID pool")?;
        child.move_(server_slot::VMID_POOL, pool).step("give the VMID pool")?;
    }
    if e.flags & SERVER_DEBUG != 0 {
        child
            .copy(server_slot::DEBUG, slot::DEBUG, Rights::all())
            .step("give the Debug capability")?;
    }
    let mut heap = 0;
    if e.heap_bits != 0 {
        // An untyped retyped whole from one the root keeps (untyped capabilities are
        // not copied): revoking the parent deletes the heap and what came of it.
        heap = a.alloc(ObjType::Untyped, e.heap_bits as u8).step("heap untyped")?;
        let given = a.slot().step("slot")?;
        Untyped(heap)
            .retype(ObjType::Untyped, e.heap_bits as u8, ROOT_CNODE, given, 1)
            .step("heap untyped")?;
        child.move_(server_slot::HEAP, given).step("give the heap")?;
        info.heap_bits = u64::from(e.heap_bits);
    }

    // Named grants.
    let mut map_va = SERVER_MAP_BASE;
    for (j, g) in e.grants().iter().enumerate() {
        let to = Target {
            cnode: child,
            vspace,
            ntfn,
            slot: server_slot::FIRST_NAMED + j as u64,
        };
        info.caps[j] = give(a, shared, &to, g, &mut map_va).map_err(|e| BuildError::Grant(j, e))?;
        info.cap_count += 1;
    }

    let start = Frame(a.alloc(ObjType::Frame, 12).step("start info")?);
    a.write_frame(start, 0, info.as_bytes()).step("write start info")?;
    a.map(vspace, start, START_INFO_VADDR, Rights::READ, false)
        .step("map start info")?;

    configure(
        a,
        tcb,
        e,
        (index, core),
        Thread {
            cspace: CNode(guarded),
            vspace,
            fault,
            ipc,
            ntfn,
            entry,
        },
    )?;
    Ok(Running {
        tcb,
        cnode,
        vspace: vspace.0,
        reply,
        heap,
        alive: true,
    })
}

/// What a server's thread is set up with.
#[derive(Clone, Copy)]
struct Thread {
    cspace: CNode,
    vspace: VSpace,
    fault: CPtr,
    ipc: Frame,
    ntfn: Notification,
    entry: u64,
}

/// Give the thread its spaces, registers, priority, notification, core and budget
/// (`(index, core)`: the server's index, the timeout-fault badge, and its core).
fn configure(
    a: &mut Allocator,
    tcb: Tcb,
    e: &ServerEntry,
    (index, core): (u64, u64),
    t: Thread,
) -> Result<(), BuildError> {
    tcb.set_space(t.cspace, t.vspace, t.fault).step("set space")?;
    tcb.set_ipc_buffer(SERVER_IPC_BUFFER_VADDR, t.ipc.0)
        .step("set IPC buffer")?;
    tcb.write_registers(0, &[t.entry, SERVER_STACK_TOP, 0, START_INFO_VADDR])
        .step("set registers")?;
    tcb.write_registers(REG_TPIDR, &[SERVER_IPC_BUFFER_VADDR])
        .step("set TPIDR")?;
    tcb.set_mcp(u64::from(e.priority), ROOT_TCB).step("set MCP")?;
    tcb.set_priority(u64::from(e.priority), ROOT_TCB).step("set priority")?;
    tcb.bind_notification(t.ntfn).step("bind notification")?;
    tcb.set_affinity(core).step("place on its core")?;
    tcb.set_name(name_bytes(&e.name)).step("name")?;
    if e.budget_us != 0 {
        let sc = SchedContext(a.alloc(ObjType::SchedContext, 0).step("scheduling context")?);
        // The core's SchedControl: a budgeted thread runs on its scheduling context's.
        let control = usize::try_from(core).ok().and_then(slot::sched_control);
        SchedControl(control.unwrap_or(slot::SCHED_CONTROL))
            .configure(sc, e.budget_us, e.period_us, index)
            .step("configure budget")?;
        sc.bind(tcb).step("bind scheduling context")?;
    }
    Ok(())
}

/// Where a grant goes.
struct Target {
    cnode: CNode,
    vspace: VSpace,
    ntfn: Notification,
    slot: CPtr,
}

/// Make grant `g` for a server: put its capability in `to.slot` or map it at `map_va`
/// (which moves past it and a guard page). Returns the start-info entry.
fn give(a: &mut Allocator, shared: &Shared, to: &Target, g: &Grant, map_va: &mut u64) -> Result<NamedCap, Error> {
    let mut cap = NamedCap {
        name: g.name,
        kind: g.kind,
        reserved: 0,
        cptr: to.slot,
        vaddr: 0,
        size: 0,
    };
    match GrantKind::from_raw(g.kind) {
        Some(GrantKind::Serve) => to.cnode.copy(to.slot, shared.endpoints[g.a as usize], Rights::all())?,
        Some(GrantKind::Client) => {
            let rights = Rights::READ | Rights::WRITE | Rights::GRANT;
            to.cnode.mint(to.slot, shared.endpoints[g.a as usize], rights, g.b)?;
            cap.size = g.b;
        }
        Some(GrantKind::Irq) => {
            let handler = a.slot()?;
            IrqControl(slot::IRQ_CONTROL).get(g.a, ROOT_CNODE, handler)?;
            let badged = a.slot()?;
            ROOT_CNODE.mint(badged, to.ntfn.0, Rights::all(), 1 << g.b)?;
            IrqHandler(handler).set_notification(badged)?;
            to.cnode.move_(to.slot, handler)?;
            cap.vaddr = 1 << g.b;
        }
        Some(GrantKind::Mmio) => {
            below_free(*map_va, g.b)?;
            (cap.cptr, cap.vaddr, cap.size) = (0, *map_va, g.b);
            for p in 0..g.b / PAGE {
                let f = a.device_frame_at(g.a + p * PAGE)?;
                a.map(to.vspace, f, *map_va, Rights::READ | Rights::WRITE, true)?;
                *map_va += PAGE;
            }
            *map_va += PAGE;
        }
        Some(GrantKind::Shared) => {
            let (first, pages) = shared.regions[g.a as usize];
            let rights = if g.b == 1 {
                Rights::READ | Rights::WRITE
            } else {
                Rights::READ
            };
            below_free(*map_va, pages * PAGE)?;
            (cap.cptr, cap.vaddr, cap.size) = (0, *map_va, pages * PAGE);
            for p in 0..pages {
                let copy = a.slot()?;
                ROOT_CNODE.copy(copy, first + p, Rights::all())?;
                a.map(to.vspace, Frame(copy), *map_va, rights, false)?;
                *map_va += PAGE;
            }
            *map_va += PAGE;
        }
        Some(GrantKind::Module) => {
            let (va, size) = give_module(a, to, g, map_va)?;
            (cap.cptr, cap.vaddr, cap.size) = (0, va, size);
        }
        Some(GrantKind::VgicCpu) => {
            let bi = libl4::start::boot_info().ok_or(Error::InvalidArgument)?;
            let frames = bi.vgic_cpu;
            if g.a < frames.end - frames.start {
                to.cnode.copy(to.slot, frames.start + g.a, Rights::all())?;
                (cap.vaddr, cap.size) = (bi.vgic_cpu_paddr + g.a * PAGE, PAGE);
            } else {
                cap.cptr = 0;
            }
        }
        Some(GrantKind::DeviceFrame) => {
            // The page's frame, for the server to map (a VMM, into its guest).
            let f = a.device_frame_at(g.a)?;
            to.cnode.move_(to.slot, f.0)?;
            (cap.vaddr, cap.size) = (g.a, PAGE);
        }
        Some(GrantKind::SchedControl) => {
            // The core's SchedControl: the policy server configures its vCPUs'
            // scheduling contexts with it. A core that did not come up has none: the
            // slot stays empty (cptr 0).
            let bi = libl4::start::boot_info().ok_or(Error::InvalidArgument)?;
            let control = usize::try_from(g.a)
                .ok()
                .filter(|_| g.a < bi.cpus)
                .and_then(slot::sched_control);
            match control {
                Some(c) => to.cnode.copy(to.slot, c, Rights::all())?,
                None => cap.cptr = 0,
            }
            cap.vaddr = g.a;
        }
        Some(GrantKind::TraceControl) => {
            to.cnode.copy(to.slot, slot::TRACE_CONTROL, Rights::all())?;
            (cap.vaddr, cap.size) = (g.a, g.b);
            // Recording starts now, before any server runs (the root builds them all,
            // then starts them): the trace has the system from its first instruction,
            // waiting in the rings until the trace server drains them.
            libl4::cap::TraceControl(slot::TRACE_CONTROL).set_mask(g.a)?;
        }
        Some(GrantKind::TraceRings) => {
            (cap.cptr, cap.vaddr, cap.size) = (0, map_trace_rings(a, to, map_va)?, g.a);
        }
        Some(GrantKind::KernelLog) => {
            let copy = a.slot()?;
            ROOT_CNODE.copy(copy, slot::KERNEL_LOG, Rights::READ | Rights::WRITE)?;
            a.map(to.vspace, Frame(copy), *map_va, Rights::READ | Rights::WRITE, false)?;
            (cap.cptr, cap.vaddr, cap.size) = (0, *map_va, PAGE);
            *map_va += 2 * PAGE;
        }
        None => return Err(Error::InvalidArgument),
    }
    Ok(cap)
}

/// Map the kernel's trace rings read-only (the kernel's cap has only the read right) in
/// `to` at the next 2 MiB boundary from `*map_va`; where.
fn map_trace_rings(a: &mut Allocator, to: &Target, map_va: &mut u64) -> Result<u64, Error> {
    let copy = a.slot()?;
    ROOT_CNODE.copy(copy, slot::TRACE_RINGS, Rights::READ)?;
    *map_va = map_va.next_multiple_of(LARGE_PAGE);
    below_free(*map_va, LARGE_PAGE)?;
    a.map(to.vspace, Frame(copy), *map_va, Rights::READ, false)?;
    let at = *map_va;
    *map_va += LARGE_PAGE;
    Ok(at)
}

/// Copy boot module `g.a` into fresh frames mapped read-only in `to` at `*map_va`
/// (boot modules are mapped only in the root server); returns where, and its length.
fn give_module(a: &mut Allocator, to: &Target, g: &Grant, map_va: &mut u64) -> Result<(u64, u64), Error> {
    let bytes = libl4::start::boot_module_at(g.a as usize).ok_or(Error::InvalidArgument)?;
    let size = bytes.len() as u64;
    // A large module (a guest's kernel) in 2 MiB frames: a 30 MiB one would take
    // thousands of this server's slots in 4 KiB pages.
    let page = if size >= LARGE_PAGE { LARGE_PAGE } else { PAGE };
    *map_va = map_va.next_multiple_of(page);
    below_free(*map_va, size.next_multiple_of(page))?;
    let at = *map_va;
    for chunk in bytes.chunks(page as usize) {
        let f = Frame(a.alloc(ObjType::Frame, page.trailing_zeros() as u8)?);
        if page == LARGE_PAGE {
            a.write_large_frame(f, 0, chunk)?;
        } else {
            a.write_frame(f, 0, chunk)?;
        }
        a.map(to.vspace, f, *map_va, Rights::READ, false)?;
        *map_va += page;
    }
    *map_va += PAGE;
    Ok((at, size))
}

/// A mapping of `size` bytes at `va` (and its guard page) stays below the addresses the
/// server keeps for itself (`SERVER_FREE_VADDR`).
fn below_free(va: u64, size: u64) -> Result<(), Error> {
    match va.checked_add(size).and_then(|e| e.checked_add(PAGE)) {
        Some(end) if end <= SERVER_FREE_VADDR => Ok(()),
        _ => Err(Error::RangeError),
    }
}
