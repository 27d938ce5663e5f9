//! CPU identification and per-CPU state.

use core::sync::atomic::{AtomicU64, Ordering};

use super::read_sysreg;
use crate::board;

/// Bytes of kernel stack per CPU; must match `KERNEL_STACK_SIZE` in `start.S`.
pub const KERNEL_STACK_SIZE: usize = 16384;

/// Kernel stacks, one per CPU. `start.S` points CPU 0's SP_EL2 at the top of the first.
#[repr(C, align(4096))]
pub struct KernelStacks([[u8; KERNEL_STACK_SIZE]; board::CPUS]);

/// The stacks themselves. Only assembly touches them, through the symbol.
#[unsafe(no_mangle)]
pub static mut KERNEL_STACKS: KernelStacks = KernelStacks([[0; KERNEL_STACK_SIZE]; board::CPUS]);

/// Per-CPU kernel state. Designed in from the start so SMP only has to fill in more CPUs.
#[derive(Debug)]
pub struct PerCpu {
    /// Timer interrupts taken on this CPU since boot.
    pub ticks: AtomicU64,
}

static PER_CPU: [PerCpu; board::CPUS] = [const {
    PerCpu {
        ticks: AtomicU64::new(0),
    }
}; board::CPUS];

/// Linear index of the running CPU (MPIDR_EL1.Aff0).
pub fn current_index() -> usize {
    let aff0 = (read_sysreg!(mpidr_el1) & 0xff) as usize;
    aff0.min(board::CPUS - 1)
}

/// The running CPU's state.
pub fn this_cpu() -> &'static PerCpu {
    &PER_CPU[current_index()]
}

/// Ticks taken on all CPUs.
pub fn total_ticks() -> u64 {
    PER_CPU.iter().map(|c| c.ticks.load(Ordering::Relaxed)).sum()
}

/// What `MIDR_EL1` says about the core.
#[derive(Clone, Copy, Debug)]
pub struct CpuId {
    /// Raw MIDR_EL1.
    pub midr: u64,
}

impl CpuId {
    /// Read the running core's identity.
    pub fn read() -> Self {
        Self {
            midr: read_sysreg!(midr_el1),
        }
    }

    /// Marketing name for the cores Gaon knows; "unknown" otherwise.
    pub fn name(self) -> &'static str {
        let implementer = (self.midr >> 24) & 0xff;
        let part = (self.midr >> 4) & 0xfff;
        match (implementer, part) {
            (0x41, 0xd03) => "Cortex-A53",
            (0x41, 0xd04) => "Cortex-A35",
            (0x41, 0xd07) => "Cortex-A57",
            (0x41, 0xd08) => "Cortex-A72",
            (0x41, 0xd09) => "Cortex-A73",
            (0x41, 0xd0b) => "Cortex-A76",
            (0x41, 0xd0c) => "Neoverse-N1",
            (0x41, 0xd40) => "Neoverse-V1",
            (0x41, 0xd4f) => "Neoverse-V2",
            (0x41, 0xd49) => "Neoverse-N2",
            (0x41, 0xd05) => "Cortex-A55",
            (0x41, 0xd0d) => "Cortex-A77",
            (0x41, 0xd41) => "Cortex-A78",
            _ => "unknown core",
        }
    }

    /// Variant (rN).
    pub fn variant(self) -> u64 {
        (self.midr >> 20) & 0xf
    }

    /// Revision (pN).
    pub fn revision(self) -> u64 {
        self.midr & 0xf
    }
}

/// The GIC system-register interface version `ID_AA64PFR0_EL1.GIC` reports (0: none, 1: v3/v4).
pub fn gic_sysreg_version() -> u64 {
    (read_sysreg!(id_aa64pfr0_el1) >> 24) & 0xf
}

/// Physical address size `ID_AA64MMFR0_EL1.PARange` encodes (0 = 32 bits ... 5 = 48 bits).
pub fn pa_range() -> u64 {
    read_sysreg!(id_aa64mmfr0_el1) & 0xf
}
