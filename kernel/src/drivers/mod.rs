//! Device drivers the kernel itself needs: the console UART and the interrupt
//! controller. Each board picks its drivers in `platforms/<board>/board.toml`.

// Every driver is compiled (and linted) for every board; the board uses one.
#[allow(dead_code, reason = "only boards with this controller use it")]
pub mod bcm2836;
#[allow(dead_code, reason = "only boards with a GIC use it")]
pub mod gic;
pub mod regs;
pub mod uart;

use crate::arch::cpu::CpuSet;

/// Ranges `[start, end)` of MMIO a driver keeps for the kernel.
pub type MmioRanges = heapless::Vec<(usize, usize), 8>;

/// Why an interrupt controller could not be brought up.
#[derive(Clone, Copy, Debug)]
pub enum IrqInitError {
    /// The CPU has a GICv3 interface but the board lists no GICv3 frames, or vice versa
    /// (or the named line could not be enabled).
    NoFrames(#[allow(dead_code, reason = "read through Debug in the boot panic")] &'static str),
    /// The GICv3 redistributor region did not look like one.
    Redistributor,
}

/// An interrupt `claim` took: its line, and what `complete` hands back to the controller
/// (on a GICv2 the whole GICC_IAR value, whose bits [12:10] name an SGI's sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The interrupt line (GIC INTID, BCM2836 source bit).
    pub line: u32,
    /// The controller's acknowledge value for this interrupt.
    pub ack: u32,
}

/// An interrupt controller: GICv2, GICv3 or the BCM2836 local controller. The board
/// picks the implementation at build time (`board::IrqDriver`, generated from
/// `board.toml` with its `board::IRQ_CONFIG`), so every call is static.
///
/// Two sides, as on a GIC. The *distributor* side is shared by all CPUs: which lines
/// exist, which the kernel keeps, and enabling and routing the lines user level gets;
/// a driver serialises it with a lock of its own. The *CPU-interface* side acts on the
/// calling CPU (on registers banked per CPU, or the CPU's own): bringing up its
/// interface, its private lines (the kernel timer), taking and completing its
/// interrupts, and sending inter-processor interrupts. Every CPU calls it at once,
/// without a lock, so a driver keeps no state there that is not per CPU.
pub trait IrqController: Sized + Sync {
    /// Where the board puts the controller.
    type Config;

    /// The line inter-processor interrupts arrive on (a GIC SGI, a BCM2836 mailbox);
    /// always a kernel line.
    const IPI: u32;

    // ---- before the controller exists -------------------------------------------

    /// What EL3 firmware would have set up (interrupt groups), when the kernel was
    /// entered at EL3: the machine's part and CPU 0's. Runs on CPU 0 with the MMU off
    /// before `.bss` is cleared: it must touch no statics. Nothing by default.
    fn el3_prepare(_config: &Self::Config) {}

    /// The same for secondary CPU `cpu`, run on it: only its own (banked) part. Runs
    /// with the MMU off. Nothing by default.
    fn el3_prepare_cpu(_config: &Self::Config, _cpu: usize) {}

    /// The controller's MMIO, which the kernel drives: never device untyped.
    fn kernel_mmio(config: &Self::Config) -> MmioRanges;

    /// True for lines the kernel keeps (never given to user level): on a GIC the SGIs
    /// and PPIs but the user timer's, on the BCM2836 every line.
    fn kernel_reserved(line: u32) -> bool;

    /// Bring up the distributor and the boot CPU's interface, every line disabled but
    /// the boot CPU's [`Self::IPI`].
    fn init(config: &Self::Config) -> Result<Self, IrqInitError>;

    // ---- distributor --------------------------------------------------------------

    /// Name for the banner.
    fn name(&self) -> &'static str;

    /// Lines `0..line_count()` exist.
    fn line_count(&self) -> u32;

    /// Enable or mask a line delivered to user level (not a kernel line): routed to
    /// CPU 0 at user priority. The first enable sets priority and routing, so later
    /// ones (each acknowledge) only flip the enable bit.
    fn set_user_line_enabled(&self, line: u32, enabled: bool);

    // ---- CPU interface (the calling CPU's) ----------------------------------------

    /// Bring up the interface of CPU `cpu`, the calling secondary CPU, after `init`:
    /// every line of its own disabled but its [`Self::IPI`].
    fn init_cpu(&self, cpu: usize) -> Result<(), IrqInitError>;

    /// Enable private line `line` (a per-CPU timer) of CPU `cpu`, the calling CPU, at
    /// kernel priority.
    fn enable_local(&self, cpu: usize, line: u32) -> Result<(), IrqInitError>;

    /// Unmask or mask private line `line` of CPU `cpu`, the calling CPU, after
    /// [`Self::enable_local`] set it up (the guests' virtual timer, masked while a guest
    /// handles its interrupt). Takes no lock. Nothing where there is no such line.
    fn set_local_enabled(&self, cpu: usize, line: u32, enabled: bool);

    /// The next interrupt to handle on this CPU, acknowledged; `None` once there is
    /// none (spurious IDs are never returned). Called in a loop by the IRQ path.
    fn claim(&self) -> Option<Claim>;

    /// The interrupt `claim` returned has been handled.
    fn complete(&self, claim: Claim);

    /// Send an inter-processor interrupt ([`Self::IPI`]) to the CPUs in `targets`
    /// (online ones). Stores made before it are visible to them when it arrives.
    fn send_ipi(&self, targets: CpuSet);
}

/// Read a 32-bit MMIO register.
///
/// # Safety
/// `addr` must be a device register mapped as device memory whose read has no effect
/// the caller has not accounted for.
unsafe fn read32(addr: usize) -> u32 {
    // SAFETY: the caller guarantees `addr` is a mapped device register.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Write a 32-bit MMIO register.
///
/// # Safety
/// `addr` must be a device register mapped as device memory, and the write must be one
/// the device expects.
unsafe fn write32(addr: usize, value: u32) {
    // SAFETY: the caller guarantees `addr` is a mapped device register.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}
