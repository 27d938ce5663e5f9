//! The boot-info page the kernel gives the root server. Its address is in the root's
//! `x0` at entry (and is always [`BOOTINFO_VADDR`]).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::boot::NAME_LEN;

/// Where the boot-info page is mapped in the root server (read-only).
pub const BOOTINFO_VADDR: u64 = 0x7f_fff0_0000;
/// Where the root server's IPC buffer is mapped.
pub const ROOT_IPC_BUFFER_VADDR: u64 = 0x7f_fff1_0000;
/// Where boot modules are mapped, read-only, one after another, page aligned.
pub const MODULES_VADDR: u64 = 0x40_0000_0000;
/// "GAONINFO".
pub const BOOTINFO_MAGIC: u64 = u64::from_le_bytes(*b"GAONINFO");
/// Untyped regions the boot info can list.
pub const MAX_BOOT_UNTYPED: usize = 128;
/// Modules the boot info can list.
pub const MAX_BOOT_MODULES: usize = 16;
/// log2 of the root CNode's slot count.
pub const ROOT_CNODE_RADIX: u8 = 12;

/// Fixed slots in the root CNode. The root CNode is the root server's whole CSpace,
/// with no guard, so a CPtr is simply a slot index (depth 64 with 52 leading zero bits).
pub mod slot {
    /// Always empty: CPtr 0 means "no capability".
    pub const NULL: u64 = 0;
    /// The root server's Tcb.
    pub const TCB: u64 = 1;
    /// The root CNode itself.
    pub const CNODE: u64 = 2;
    /// The root server's VSpace.
    pub const VSPACE: u64 = 3;
    /// IrqControl.
    pub const IRQ_CONTROL: u64 = 4;
    /// SchedControl for CPU 0 (the others': [`sched_control`]).
    pub const SCHED_CONTROL: u64 = 5;
    /// The boot-info frame.
    pub const BOOTINFO_FRAME: u64 = 6;
    /// The root server's IPC buffer frame.
    pub const IPC_BUFFER: u64 = 7;
    /// The root server's SchedContext.
    pub const SCHED_CONTEXT: u64 = 8;
    /// The Debug capability (the kernel console, halting).
    pub const DEBUG: u64 = 9;
    /// A VmidPool of every VMID but the root's own.
    pub const VMID_POOL: u64 = 10;
    /// The kernel log page (a frame; see `crate::klog`).
    pub const KERNEL_LOG: u64 = 11;
    /// SchedControl for CPU 1; CPUs 2 and 3 follow.
    pub const SCHED_CONTROL_1: u64 = 12;
    /// The TraceControl capability (`crate::trace`).
    pub const TRACE_CONTROL: u64 = 15;
    /// The frame of the kernel's trace rings (`crate::trace`), read-only.
    pub const TRACE_RINGS: u64 = 16;
    /// First slot the kernel may fill with boot-time caps (untyped).
    pub const FIRST_FREE: u64 = 18;

    /// The slot of CPU `cpu`'s SchedControl (filled only for the CPUs in
    /// `BootInfo::cpus`), or `None` past the fourth CPU.
    pub const fn sched_control(cpu: usize) -> Option<u64> {
        match cpu {
            0 => Some(SCHED_CONTROL),
            1..=3 => Some(SCHED_CONTROL_1 + cpu as u64 - 1),
            _ => None,
        }
    }
}

/// A range of slots `[start, end)` in the root CNode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SlotRegion {
    /// First slot.
    pub start: u64,
    /// One past the last.
    pub end: u64,
}

/// One untyped capability the root server received.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct UntypedDesc {
    /// Physical address.
    pub paddr: u64,
    /// log2 of its size.
    pub size_bits: u8,
    /// 1 for device memory (MMIO): it can only become frames.
    pub is_device: u8,
    /// Padding.
    pub reserved: [u8; 6],
}

/// One boot module, mapped read-only in the root server.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ModuleDesc {
    /// NUL-padded name.
    pub name: [u8; NAME_LEN],
    /// Where it is mapped.
    pub vaddr: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// The boot-info page.
#[repr(C)]
#[derive(Clone, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BootInfo {
    /// [`BOOTINFO_MAGIC`].
    pub magic: u64,
    /// Layout version (1).
    pub version: u64,
    /// Radix of the root CNode.
    pub cnode_radix: u64,
    /// Empty slots the root server may use.
    pub empty: SlotRegion,
    /// Slots holding the untyped caps; `untyped[i]` describes slot `untyped.start + i`.
    pub untyped_slots: SlotRegion,
    /// Number of valid entries in `modules`.
    pub module_count: u64,
    /// Timer frequency (counter ticks per second).
    pub timer_hz: u64,
    /// IRQ lines IrqControl hands out: `[irq_first, irq_end)`, empty if none.
    pub irq_first: u64,
    /// One past the last such line.
    pub irq_end: u64,
    /// The CPUs that came up, bit n for CPU n (CPU 0 always). Each has a SchedControl
    /// ([`slot::sched_control`]), and threads may be placed on them.
    pub cpus: u64,
    /// The line of the timer user level may have (the EL1 physical timer's PPI, armed
    /// with `IrqHandlerSetTimer`), or [`NO_USER_TIMER`] where the board has none.
    pub user_timer_irq: u64,
    /// Device frames of the GICv2 virtual CPU interface (GICV), its first two pages in
    /// order, where the kernel drives GICv2's virtual interface (empty otherwise: with
    /// GICv3 a guest uses system registers). A VMM maps them at the guest's GICC
    /// address; they exist nowhere else (no untyped covers them).
    pub vgic_cpu: SlotRegion,
    /// Their physical address (0 if none).
    pub vgic_cpu_paddr: u64,
    /// Untyped descriptions.
    pub untyped: [UntypedDesc; MAX_BOOT_UNTYPED],
    /// Module descriptions.
    pub modules: [ModuleDesc; MAX_BOOT_MODULES],
}

static_assertions::const_assert!(core::mem::size_of::<BootInfo>() <= 4096);

/// [`BootInfo::user_timer_irq`] where the board gives user level no timer.
pub const NO_USER_TIMER: u64 = u64::MAX;

impl BootInfo {
    /// The user timer's line, if the board gives user level one.
    pub const fn user_timer(&self) -> Option<u64> {
        if self.user_timer_irq == NO_USER_TIMER {
            None
        } else {
            Some(self.user_timer_irq)
        }
    }
}
