//! The system table and the start-info page: how a system description reaches the
//! root server, and how the root server tells each server what it was given.
//!
//! The image tool packs the checked description into the boot module named
//! [`SYSTEM_MODULE`] as a [`SystemTable`]. The root server reads it, builds every server,
//! and maps a [`StartInfo`] page at [`START_INFO_VADDR`] in each one, whose address is
//! also the server's `x0` at entry. Neither the kernel nor the description's author
//! sees these layouts; they are the contract between `gaon-image`, `gaon-root` and
//! libl4.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::boot::NAME_LEN;

/// Name of the boot module that holds the system table.
pub const SYSTEM_MODULE: &str = "system";
/// "GAONSYST".
pub const SYSTEM_MAGIC: u64 = u64::from_le_bytes(*b"GAONSYST");
/// Layout version of [`SystemTable`].
pub const SYSTEM_VERSION: u32 = 3;
/// Servers a system can have.
pub const MAX_SERVERS: usize = 16;
/// Grants (named capabilities) one server can be given.
pub const MAX_GRANTS: usize = 16;
/// Shared-memory regions a system can have.
pub const MAX_SHARED: usize = 16;
/// Endpoints (served interfaces) a system can have.
pub const MAX_ENDPOINTS: usize = 32;
/// Largest priority a server can have (the root server runs at 255).
pub const MAX_SERVER_PRIORITY: u32 = 254;

/// What a grant gives a server.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantKind {
    /// The receive side of endpoint `a`: the server serves an interface on it.
    Serve = 1,
    /// A capability to endpoint `a` with badge `b`: the server is a client.
    Client = 2,
    /// IRQ line `a`, delivered to the server's notification as bit `1 << b`.
    Irq = 3,
    /// Device memory: `b` bytes at physical address `a`, mapped uncached.
    Mmio = 4,
    /// Shared-memory region `a`; `b` is 1 for read-write, 0 for read-only.
    Shared = 5,
    /// The kernel log page (`crate::klog`), mapped read-write; with the Debug
    /// capability the server binds a notification to it and prints the kernel's output.
    KernelLog = 6,
    /// Boot module `a` (its index in `BootInfo::modules`), copied into fresh frames
    /// mapped read-only: a VM's guest program, its initrd, its [`VmConfig`].
    Module = 7,
    /// Page `a` (0 or 1) of the GICv2 virtual CPU interface (`BootInfo::vgic_cpu`), a
    /// frame capability the server maps into a guest's address space itself. On a
    /// board without one the slot stays empty (the start info's `cptr` is 0).
    VgicCpu = 8,
    /// The device page at physical address `a` as a frame capability, mapped nowhere:
    /// a VMM maps it into its guest (a pass-through device, [`Passthrough`]). The start
    /// info's `vaddr` is the physical address.
    DeviceFrame = 9,
    /// The SchedControl capability of core `a`: the scheduling policy server
    /// (`[sched]` in the description) configures scheduling contexts on that core.
    SchedControl = 10,
    /// The TraceControl capability (`crate::trace`): the trace server (`[trace]` in the
    /// description) sets the classes recorded and gives ring space back. `a`: the
    /// classes to record (`crate::trace::Class` bits), passed on in the start info's
    /// `vaddr`; `b`: after how many milliseconds the server stops (0: never), in `size`.
    TraceControl = 11,
    /// The kernel's trace rings (`crate::trace`): their 2 MiB frame, mapped read-only
    /// (the start info's `vaddr`). `a`: where the trace server sends its stream (0: a
    /// host file through semihosting, 1: nowhere), passed on in the start info's `size`.
    TraceRings = 12,
}

impl GrantKind {
    /// Decode a raw kind.
    pub const fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Serve,
            2 => Self::Client,
            3 => Self::Irq,
            4 => Self::Mmio,
            5 => Self::Shared,
            6 => Self::KernelLog,
            7 => Self::Module,
            8 => Self::VgicCpu,
            9 => Self::DeviceFrame,
            10 => Self::SchedControl,
            11 => Self::TraceControl,
            12 => Self::TraceRings,
            _ => return None,
        })
    }
}

/// One named thing given to a server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Grant {
    /// The name the server looks it up by (NUL padded).
    pub name: [u8; NAME_LEN],
    /// A [`GrantKind`].
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// First argument (see [`GrantKind`]).
    pub a: u64,
    /// Second argument.
    pub b: u64,
}

/// Server flag: when this server exits, the root server halts the system with its exit
/// status (test systems end this way).
pub const SERVER_HALT_ON_EXIT: u32 = 1;
/// `ServerEntry::flags`: give the server a copy of the Debug capability.
pub const SERVER_DEBUG: u32 = 2;

/// One server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ServerEntry {
    /// Its name (NUL padded); console prefixes and fault reports use it.
    pub name: [u8; NAME_LEN],
    /// The boot module holding its ELF (NUL padded).
    pub module: [u8; NAME_LEN],
    /// Priority, 1..=[`MAX_SERVER_PRIORITY`].
    pub priority: u32,
    /// `SERVER_*` flags.
    pub flags: u32,
    /// Budget per period in µs; 0 = unbudgeted (round robin at its priority).
    pub budget_us: u64,
    /// Period in µs (0 when unbudgeted).
    pub period_us: u64,
    /// Stack pages.
    pub stack_pages: u32,
    /// log2 of the untyped memory it is given for its own objects; 0 = none.
    pub heap_bits: u32,
    /// Valid entries in `grants`.
    pub grant_count: u32,
    /// VMIDs it may give its own VSpaces (a VmidPool split off the root's); 0 = none.
    pub vmids: u32,
    /// The core it runs on (its scheduling context's core, if budgeted). The root
    /// places it on core 0 instead if that core did not come up, and says so.
    pub core: u32,
    /// Zero.
    pub reserved: u32,
    /// What it is given.
    pub grants: [Grant; MAX_GRANTS],
}

/// One shared-memory region.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SharedEntry {
    /// Its name (NUL padded).
    pub name: [u8; NAME_LEN],
    /// Size in pages.
    pub pages: u64,
}

/// The packed system description.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SystemTable {
    /// [`SYSTEM_MAGIC`].
    pub magic: u64,
    /// [`SYSTEM_VERSION`].
    pub version: u32,
    /// Valid entries in `servers`.
    pub server_count: u32,
    /// Valid entries in `shared`.
    pub shared_count: u32,
    /// Endpoints to create (grants name them by index).
    pub endpoint_count: u32,
    /// The servers, in start order.
    pub servers: [ServerEntry; MAX_SERVERS],
    /// The shared-memory regions.
    pub shared: [SharedEntry; MAX_SHARED],
}

/// Why a system table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// Too short to hold a table.
    Truncated,
    /// Wrong magic number.
    BadMagic,
    /// A version this root server does not read.
    BadVersion(u32),
    /// A count is larger than its array.
    BadCount,
    /// Server `.0`'s grant `.1` is malformed.
    BadGrant(usize, usize),
    /// Server `.0` has a bad priority, stack, heap or budget.
    BadServer(usize),
}

impl SystemTable {
    /// Check `bytes` and view them as a table. Every count and every grant is checked,
    /// so the root server can index with what it reads.
    pub fn parse(bytes: &[u8]) -> Result<&Self, TableError> {
        let (t, _) = Self::ref_from_prefix(bytes).map_err(|_| TableError::Truncated)?;
        if t.magic != SYSTEM_MAGIC {
            return Err(TableError::BadMagic);
        }
        if t.version != SYSTEM_VERSION {
            return Err(TableError::BadVersion(t.version));
        }
        if t.server_count as usize > MAX_SERVERS
            || t.shared_count as usize > MAX_SHARED
            || t.endpoint_count as usize > MAX_ENDPOINTS
        {
            return Err(TableError::BadCount);
        }
        for (i, s) in t.servers().iter().enumerate() {
            let timing_ok = (s.budget_us == 0 && s.period_us == 0) || (s.budget_us > 0 && s.budget_us <= s.period_us);
            if s.priority == 0
                || s.priority > MAX_SERVER_PRIORITY
                || s.stack_pages == 0
                || s.stack_pages > 256
                || (s.heap_bits != 0 && !(12..=30).contains(&s.heap_bits))
                || !timing_ok
                || s.grant_count as usize > MAX_GRANTS
            {
                return Err(TableError::BadServer(i));
            }
            for (j, g) in s.grants().iter().enumerate() {
                let ok = match GrantKind::from_raw(g.kind) {
                    Some(GrantKind::Serve | GrantKind::Client) => g.a < u64::from(t.endpoint_count),
                    Some(GrantKind::Irq) => g.b < 63,
                    Some(GrantKind::Mmio) => g.a % 4096 == 0 && g.b > 0 && g.b % 4096 == 0 && g.b <= 1 << 24,
                    Some(GrantKind::Shared) => g.a < u64::from(t.shared_count) && g.b <= 1,
                    Some(GrantKind::KernelLog) => g.a == 0 && g.b == 0 && s.flags & SERVER_DEBUG != 0,
                    Some(GrantKind::Module) => g.a < crate::boot::MAX_MODULES as u64 && g.b == 0,
                    Some(GrantKind::VgicCpu) => g.a < 2 && g.b == 0,
                    Some(GrantKind::DeviceFrame) => g.a % 4096 == 0 && g.b == 0,
                    Some(GrantKind::SchedControl) => g.a < 256 && g.b == 0,
                    Some(GrantKind::TraceControl) => crate::trace::Class::from_bits(g.a).is_some(),
                    Some(GrantKind::TraceRings) => g.a <= 1 && g.b == 0,
                    None => false,
                };
                if !ok || g.name[0] == 0 {
                    return Err(TableError::BadGrant(i, j));
                }
            }
        }
        if t.shared().iter().any(|s| s.pages == 0 || s.pages > 1024) {
            return Err(TableError::BadCount);
        }
        Ok(t)
    }

    /// The valid server entries.
    pub fn servers(&self) -> &[ServerEntry] {
        &self.servers[..(self.server_count as usize).min(MAX_SERVERS)]
    }

    /// The valid shared-memory entries.
    pub fn shared(&self) -> &[SharedEntry] {
        &self.shared[..(self.shared_count as usize).min(MAX_SHARED)]
    }
}

impl ServerEntry {
    /// The valid grants.
    pub fn grants(&self) -> &[Grant] {
        &self.grants[..(self.grant_count as usize).min(MAX_GRANTS)]
    }
}

/// Where the start-info page is mapped in every server the root server starts.
pub const START_INFO_VADDR: u64 = 0x7f_fff2_0000;
/// Where a server's IPC buffer is mapped.
pub const SERVER_IPC_BUFFER_VADDR: u64 = 0x7f_fff1_0000;
/// Top of a server's stack (it grows down from here; the page above is unmapped).
pub const SERVER_STACK_TOP: u64 = 0x7f_ff00_0000;
/// Where device memory and shared regions are mapped in a server, one after another
/// with a guard page between (all below [`SERVER_FREE_VADDR`]).
pub const SERVER_MAP_BASE: u64 = 0x20_0000_0000;
/// Start of the addresses a server maps its own frames at (libl4's heap allocator takes
/// them from here, `libl4::alloc::Allocator::from_start`): the root server maps
/// nothing in `[SERVER_FREE_VADDR, SERVER_FREE_END)`.
pub const SERVER_FREE_VADDR: u64 = 0x30_0000_0000;
/// End of the server's own addresses.
pub const SERVER_FREE_END: u64 = 0x40_0000_0000;
/// "GAONSTRT".
pub const START_MAGIC: u64 = u64::from_le_bytes(*b"GAONSTRT");
/// Named capabilities a start-info page lists.
pub const MAX_START_CAPS: usize = MAX_GRANTS;
/// log2 of the slot count of a server's CNode: 1024 slots (32 KiB), room for a VMM's
/// guest RAM (512 MiB is 256 frames of 2 MiB, each mapped in the guest and in the VMM).
pub const SERVER_CNODE_RADIX: u8 = 10;

/// Fixed slots in every server's CNode (single level: a CPtr is a slot index).
pub mod server_slot {
    /// The server's own Tcb.
    pub const TCB: u64 = 1;
    /// Its CNode.
    pub const CNODE: u64 = 2;
    /// Its VSpace.
    pub const VSPACE: u64 = 3;
    /// A reply object for its receives.
    pub const REPLY: u64 = 4;
    /// Its notification, bound to its Tcb; IRQs arrive here.
    pub const NOTIFICATION: u64 = 5;
    /// A badged endpoint to its supervisor (the root server), speaking
    /// `idl/supervisor.idl` (`exit`).
    pub const SUPERVISOR: u64 = 6;
    /// Untyped memory for its own objects, if it was given some.
    pub const HEAP: u64 = 7;
    /// A copy of the Debug capability, if the description grants it (`debug = true`).
    pub const DEBUG: u64 = 8;
    /// Its VmidPool, if the description gives it VMIDs (`vmids = N`).
    pub const VMID_POOL: u64 = 9;
    /// First slot of the named capabilities.
    pub const FIRST_NAMED: u64 = 10;
    /// First slot the server may use freely (after the named ones): slots
    /// `FIRST_FREE..END` are empty when it starts and the root server never touches
    /// them (libl4's heap allocator hands them out, `Allocator::from_start`).
    pub const FIRST_FREE: u64 = 64;
    /// One past the last slot of a server's CNode.
    pub const END: u64 = 1 << super::SERVER_CNODE_RADIX;
}

static_assertions::const_assert!(server_slot::FIRST_NAMED + MAX_START_CAPS as u64 <= server_slot::FIRST_FREE);
static_assertions::const_assert!(server_slot::FIRST_FREE < server_slot::END);
static_assertions::const_assert!(SERVER_MAP_BASE < SERVER_FREE_VADDR && SERVER_FREE_END <= SERVER_STACK_TOP);

/// One named capability (or mapping) in a start-info page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct NamedCap {
    /// The grant's name (NUL padded).
    pub name: [u8; NAME_LEN],
    /// Its [`GrantKind`].
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// The capability (endpoint, IRQ handler, first frame of a mapping).
    pub cptr: u64,
    /// Where a mapping is; for an IRQ, the notification bit it raises.
    pub vaddr: u64,
    /// Bytes of a mapping; for a client endpoint, its badge.
    pub size: u64,
}

/// The start-info page.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StartInfo {
    /// [`START_MAGIC`].
    pub magic: u64,
    /// 1.
    pub version: u64,
    /// The server's name (NUL padded).
    pub name: [u8; NAME_LEN],
    /// Log2 size of the untyped memory in `server_slot::HEAP` (0 = none).
    pub heap_bits: u64,
    /// Physical address of that memory.
    pub heap_paddr: u64,
    /// Valid entries in `caps`.
    pub cap_count: u64,
    /// Named capabilities.
    pub caps: [NamedCap; MAX_START_CAPS],
}

static_assertions::const_assert!(core::mem::size_of::<StartInfo>() <= 4096);

impl StartInfo {
    /// The valid named capabilities.
    pub fn caps(&self) -> &[NamedCap] {
        &self.caps[..(self.cap_count as usize).min(MAX_START_CAPS)]
    }
}

/// Name of the ELF section where a program declares the IDL interfaces it serves and
/// uses (`libl4::serves!` / `libl4::uses!`); the image tool reads it to check channels.
pub const IDL_SECTION: &str = ".gaon.idl";
/// [`IdlRecord::role`]: the program serves the interface.
pub const ROLE_SERVES: u32 = 1;
/// [`IdlRecord::role`]: the program is a client of the interface.
pub const ROLE_USES: u32 = 2;
/// The bits of [`IdlRecord::role`] that say serves or uses.
pub const ROLE_MASK: u32 = 0xff;
/// [`IdlRecord::role`] flag: the program works without a channel for the interface
/// (`libl4::serves_optional!`, `libl4::uses_optional!`); without it, a description that
/// gives the program no such channel is refused.
pub const ROLE_OPTIONAL: u32 = 0x100;
/// [`IdlRecord::role`] flag: the record comes from `print!`/`println!` (a use of
/// `Console`), so the image tool can say so.
pub const ROLE_PRINTS: u32 = 0x200;

/// One entry of the [`IDL_SECTION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct IdlRecord {
    /// [`ROLE_SERVES`] or [`ROLE_USES`].
    pub role: u32,
    /// Bytes of `name` in use.
    pub name_len: u32,
    /// The interface hash the IDL compiler computed.
    pub hash: u64,
    /// The interface name (NUL padded).
    pub name: [u8; NAME_LEN],
}

impl IdlRecord {
    /// A record; a name longer than [`NAME_LEN`] is cut (the image tool reports it).
    pub const fn new(role: u32, name: &str, hash: u64) -> Self {
        let bytes = name.as_bytes();
        let mut out = [0u8; NAME_LEN];
        let mut i = 0;
        while i < bytes.len() && i < NAME_LEN {
            out[i] = bytes[i];
            i += 1;
        }
        Self {
            role,
            name_len: i as u32,
            hash,
            name: out,
        }
    }
}

/// "GAONVMCF".
pub const VM_CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"GAONVMCF");
/// Layout version of [`VmConfig`].
pub const VM_CONFIG_VERSION: u32 = 3;
/// Pass-through devices a VM has at most.
pub const MAX_PASSTHROUGH: usize = 4;
/// Bytes of a pass-through device's `compatible` (NUL-separated strings, NUL padded).
pub const COMPATIBLE_LEN: usize = 64;

/// A device a VM's guest drives itself (`passthrough` in its `[[vm]]`): its pages are
/// mapped into the guest at their physical addresses (grant `<name>.<k>` for page k:
/// [`GrantKind::DeviceFrame`]), its interrupt
/// line is forwarded as the same virtual INTID (IRQ grant `<name>`), and the guest's
/// device tree has a node for it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Passthrough {
    /// Its name (NUL padded); empty: no device.
    pub name: [u8; NAME_LEN],
    /// Physical (and guest-physical) address, page aligned.
    pub paddr: u64,
    /// Bytes, a multiple of 4 KiB.
    pub size: u64,
    /// Its interrupt line (an SPI), 0 for none.
    pub irq: u32,
    /// Zero.
    pub reserved: u32,
    /// Its device tree `compatible` strings, each NUL-terminated, NUL padded.
    pub compatible: [u8; COMPATIBLE_LEN],
}
/// Bytes of a VM's kernel command line, NUL padded.
pub const BOOTARGS_LEN: usize = 256;
/// [`VmConfig::flags`]: the VM has the test device (`servers/vmm/src/testdev.rs`).
pub const VM_TESTDEV: u32 = 1;
/// [`VmConfig::flags`]: the guest program is an arm64 Linux `Image` (else an ELF).
pub const VM_LINUX_IMAGE: u32 = 2;
/// [`VmConfig::flags`]: the VM has an initrd (module grant `initrd`).
pub const VM_INITRD: u32 = 4;
/// [`VmConfig::flags`]: the VMM builds the VM but starts it only when a client of its
/// `vmm` channel says `start` (`idl/vmm.idl`; `autostart = false`).
pub const VM_MANUAL_START: u32 = 8;
/// [`VmConfig::flags`]: the VMM takes the console's focus when it starts, so typed input
/// goes to the guest's UART from boot (`focus = true`).
pub const VM_CONSOLE_FOCUS: u32 = 16;

/// What a VMM runs: the image tool writes it from a `[[vm]]` entry into a boot module
/// the VMM is given as module grant `vm-config`; the guest program is module grant
/// `guest`. The contract between `gaon-image` and `gaon-vmm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VmConfig {
    /// [`VM_CONFIG_MAGIC`].
    pub magic: u64,
    /// [`VM_CONFIG_VERSION`].
    pub version: u32,
    /// `VM_*` flags.
    pub flags: u32,
    /// Guest-physical base of its RAM (2 MiB aligned).
    pub ram_base: u64,
    /// Bytes of RAM (a multiple of 2 MiB).
    pub ram_size: u64,
    /// vCPUs, 1..=4.
    pub vcpus: u32,
    /// Zero.
    pub reserved: u32,
    /// The kernel command line (`chosen/bootargs`), NUL padded.
    pub bootargs: [u8; BOOTARGS_LEN],
    /// Its pass-through devices (unused entries are zero).
    pub passthrough: [Passthrough; MAX_PASSTHROUGH],
    /// Probes in the guest's Linux kernel (`probes` in its `[[vm]]`; unused entries are
    /// zero), and what the VMM needs to read the tasks they see.
    pub probes: [ProbeConfig; MAX_PROBES],
    /// Where a Linux kernel's `task_struct` holds what a probe records.
    pub task: TaskLayout,
}

/// Probes a VM has at most.
pub const MAX_PROBES: usize = 4;
/// Bytes of a probe's name (the kernel symbol), NUL padded.
pub const PROBE_NAME_LEN: usize = 48;
/// The VMM arms probe `k` by writing `HVC #(PROBE_HVC_IMM + k)` over its instruction;
/// an HVC exit with such an immediate at the probe is a hit (Linux's own HVCs use
/// `#0`).
pub const PROBE_HVC_IMM: u16 = 0x4750;

/// A probe in a Linux guest (`docs/trace.md`, "Linux probes"): the image tool resolves
/// the symbol from the kernel's `System.map`, steps over the entry's hint instructions
/// (`PACIASP`, `BTI`), and checks that the VMM can emulate the instruction it displaces.
/// Only a task-switch probe (`__switch_to`, whose `x0` and `x1` are the previous and
/// next `task_struct`) is known.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ProbeConfig {
    /// The symbol (NUL padded); empty: no probe.
    pub name: [u8; PROBE_NAME_LEN],
    /// Link-time virtual address of the probed instruction (the symbol's, plus the
    /// hints stepped over); the VMM adds the kernel's KASLR offset.
    pub va: u64,
    /// The instruction there, which the `HVC` displaces.
    pub insn: u32,
    /// Bytes from the symbol to the probed instruction.
    pub skip: u32,
}

/// Where a Linux kernel keeps what a task-switch probe records, found by the image tool
/// in the kernel's BTF (between `__start_BTF` and `__stop_BTF`), and the link-time
/// addresses the VMM finds the kernel's KASLR offset by (it reads VBAR_EL1).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct TaskLayout {
    /// Offset of `task_struct.pid` (an `int`).
    pub pid: u32,
    /// Offset of `task_struct.comm` (`char[16]`).
    pub comm: u32,
    /// `vectors` (what VBAR_EL1 holds once the kernel runs), 0 if unknown.
    pub vectors: u64,
    /// `__bp_harden_el1_vectors` (what it holds with the Spectre mitigations' vectors,
    /// 2 KiB slots), 0 if unknown.
    pub bp_harden_vectors: u64,
}

/// "GAONSCHD".
pub const SCHED_CONFIG_MAGIC: u64 = u64::from_le_bytes(*b"GAONSCHD");
/// Layout version of [`SchedConfig`].
pub const SCHED_CONFIG_VERSION: u32 = 2;
/// VMs one scheduling policy server manages at most.
pub const MAX_SCHED_VMS: usize = 8;
/// [`SchedConfig::flags`]: LL-boost requests are served (else every one is `DENIED`,
/// and reservations are not used: the plain credit configuration).
pub const SCHED_LL_BOOST: u32 = 1;
/// [`SchedConfig::flags`]: credit is debited exactly by the time consumed (Xen 4.2's
/// rule) rather than a whole tick from the vCPU found running at each tick (Xen 4.0's).
pub const SCHED_EXACT_DEBIT: u32 = 2;
/// [`SchedConfig::flags`]: no policy: the server only measures (every vCPU keeps the
/// priority its VMM gave it, one below the VMM's; the experiment's `fixed`
/// configuration, docs/realtime.md). LL-boost requests are `DENIED`.
pub const SCHED_FIXED: u32 = 4;
/// [`SchedConfig::flags`]: balance the cores at each accounting, moving LL-boost vCPUs
/// first (paper 000's migration); without it every vCPU stays where its VMM put it.
pub const SCHED_BALANCE: u32 = 8;

/// What the scheduling policy server manages: the image tool writes it from the
/// description's `[sched]` table and the `sched` entries of its `[[vm]]`s into a boot
/// module the server is given as module grant `sched-config`. The VMMs of those VMs are
/// the clients of its `sched` channel (`idl/sched.idl`) and register their vCPU threads
/// there; a VM is known by its VMM's badge. The contract between `gaon-image` and the
/// policy server (`servers/sched`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SchedConfig {
    /// [`SCHED_CONFIG_MAGIC`].
    pub magic: u64,
    /// [`SCHED_CONFIG_VERSION`].
    pub version: u32,
    /// `SCHED_*` flags.
    pub flags: u32,
    /// Credit borrowing for OVER soft-real-time vCPUs: how far below zero (µs); 0 = off.
    pub borrow_us: u64,
    /// The priority of the LL-boost class; BOOST, UNDER and OVER are the three below
    /// it. Every managed VMM runs above it.
    pub top_priority: u32,
    /// Valid entries in `vms`.
    pub vm_count: u32,
    /// The cores it may run vCPUs on: 0 to `cores - 1` (0: every core of the board).
    /// Balancing moves vCPUs only among them.
    pub cores: u32,
    /// Zero.
    pub reserved: u32,
    /// The managed VMs.
    pub vms: [SchedVm; MAX_SCHED_VMS],
}

/// One VM the policy server manages (the `sched` table of its `[[vm]]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SchedVm {
    /// Its name (NUL padded): its VMM's.
    pub name: [u8; NAME_LEN],
    /// Its VMM's badge on the `sched` channel.
    pub badge: u64,
    /// Credit weight (Xen's; 256 is the default), 1..=65535.
    pub weight: u32,
    /// Cap: at most this percentage of a core per vCPU; 0 = none.
    pub cap_pct: u32,
    /// LL-boost reservation per vCPU: SBT, the most CPU time in LL-boost per USBT
    /// (µs); 0 = no reservation (its requests are `DENIED`).
    pub sbt_us: u64,
    /// USBT (µs): the window SBT is counted in, and the least time between entries.
    pub usbt_us: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// The core of vCPU 0 (vCPU n runs on the n-th core from it).
    pub core: u32,
}
