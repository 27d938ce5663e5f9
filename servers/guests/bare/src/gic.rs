//! The interrupt controller, either version: GICv3 (distributor and redistributor
//! emulated by the VMM, the CPU interface by system registers, redirected by the
//! hypervisor to the virtual interface) or GICv2 (distributor emulated, the CPU
//! interface the hardware's virtual one, which the VMM maps at GICC). Every interrupt a
//! guest takes goes to vCPU 0, in the group the guest's driver enables (group 1 on
//! GICv3, group 0 on GICv2), at one priority.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use gaon_vmm::layout::{GICC, GICD, GICR};

use crate::cpu;
use crate::mmio::Mmio;

/// Write a GICv3 CPU interface register, then synchronize the context.
macro_rules! icc_write {
    ($reg:literal, $value:expr) => {{
        let v: u64 = $value;
        // SAFETY: the GIC's CPU interface registers govern interrupt delivery only, no
        // memory of the program's.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack, preserves_flags)) };
    }};
}

// SAFETY: the distributor is emulated by the VMM: no memory of the program's.
const DIST: Mmio = unsafe { Mmio::new(GICD) };
// SAFETY: the GICv2 CPU interface is the hardware's virtual one, a device.
const CPU: Mmio = unsafe { Mmio::new(GICC) };
// SAFETY: vCPU 0's redistributor (RD frame, then SGI frame) is emulated by the VMM.
const REDIST: Mmio = unsafe { Mmio::new(GICR) };

/// Distributor registers (the banked ones also in a GICv3 redistributor's SGI frame).
mod gicd {
    pub const CTLR: u64 = 0x000;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const IROUTER: u64 = 0x6000;
    /// CTLR bits: GICv2 EnableGrp0; GICv3 (one security state) EnableGrp1 and ARE.
    pub const CTLR_V2_ENABLE: u64 = 1;
    pub const CTLR_V3_ENABLE_GRP1: u64 = 1 << 1;
    pub const CTLR_V3_ARE: u64 = 1 << 4;
}

/// GICv3 redistributor registers.
mod gicr {
    pub const WAKER: u64 = 0x014;
    pub const WAKER_CHILDREN_ASLEEP: u64 = 1 << 2;
    /// The SGI frame (the SGIs' and PPIs' distributor registers).
    pub const SGI: u64 = 0x1_0000;
}

/// GICv2 CPU interface registers.
mod gicc {
    pub const CTLR: u64 = 0x000;
    pub const PMR: u64 = 0x004;
    pub const IAR: u64 = 0x00c;
    pub const EOIR: u64 = 0x010;
}

/// INTIDs from this one up are special (1023: spurious).
pub const SPECIAL: u32 = 1020;

/// How long (µs) the redistributor may take to wake.
const WAKE_PATIENCE_US: u64 = 100_000;

/// Which GIC the guest drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// 2 or 3.
    pub const fn number(self) -> u32 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

static V3: AtomicBool = AtomicBool::new(false);

/// The 32-bit bank register (from `base`) that has `intid`, and its bit there.
const fn bank(base: u64, intid: u32) -> (u64, u64) {
    (base + 4 * (intid as u64 / 32), 1 << (intid % 32))
}

/// Set up the distributor, vCPU 0's redistributor (GICv3) and the CPU interface, with
/// the private interrupts `ppis` and the shared ones `spis` enabled at `priority`, to
/// vCPU 0; IRQs stay masked at the CPU (PSTATE.I). The version is GICv3 if the CPU has
/// its system registers (ID_AA64PFR0_EL1.GIC), else GICv2.
pub fn init(ppis: &[u32], spis: &[u32], priority: u8) -> Version {
    let priority = u64::from(priority);
    if cpu::has_gic_sysregs() {
        V3.store(true, Relaxed);
        // Wake the redistributor.
        REDIST.w32(gicr::WAKER, 0);
        let patience = cpu::counter() + cpu::ticks(WAKE_PATIENCE_US);
        while redistributor_asleep() && cpu::counter() < patience {
            core::hint::spin_loop();
        }
        // The PPIs: group 1, priority, enabled.
        let sgi = gicr::SGI;
        for &intid in ppis {
            let (group, bit) = bank(sgi + gicd::IGROUPR, intid);
            REDIST.w32(group, REDIST.r32(group) | bit);
            REDIST.w8(sgi + gicd::IPRIORITYR + u64::from(intid), priority);
            let (enable, bit) = bank(sgi + gicd::ISENABLER, intid);
            REDIST.w32(enable, bit);
        }
        // The SPIs: to vCPU 0 (Aff0 = 0), group 1, priority, enabled.
        for &intid in spis {
            let spi = u64::from(intid);
            DIST.w64(gicd::IROUTER + 8 * spi, 0);
            let (group, bit) = bank(gicd::IGROUPR, intid);
            DIST.w32(group, DIST.r32(group) | bit);
            DIST.w8(gicd::IPRIORITYR + spi, priority);
            let (enable, bit) = bank(gicd::ISENABLER, intid);
            DIST.w32(enable, bit);
        }
        DIST.w32(gicd::CTLR, gicd::CTLR_V3_ENABLE_GRP1 | gicd::CTLR_V3_ARE);
        // The CPU interface: system registers on, every priority unmasked, group 1 on.
        icc_write!("icc_sre_el1", 7);
        icc_write!("icc_pmr_el1", 0xff);
        icc_write!("icc_igrpen1_el1", 1);
        Version::V3
    } else {
        V3.store(false, Relaxed);
        // Group 0 (the reset value), to CPU 0, priority, enabled.
        for &intid in spis {
            let spi = u64::from(intid);
            DIST.w8(gicd::IPRIORITYR + spi, priority);
            DIST.w8(gicd::ITARGETSR + spi, 1);
            let (enable, bit) = bank(gicd::ISENABLER, intid);
            DIST.w32(enable, bit);
        }
        for &intid in ppis {
            DIST.w8(gicd::IPRIORITYR + u64::from(intid), priority);
            let (enable, bit) = bank(gicd::ISENABLER, intid);
            DIST.w32(enable, bit);
        }
        DIST.w32(gicd::CTLR, gicd::CTLR_V2_ENABLE);
        CPU.w32(gicc::PMR, 0xff);
        CPU.w32(gicc::CTLR, 1);
        Version::V2
    }
}

/// GICv3: true if vCPU 0's redistributor still says its children are asleep (after
/// [`init`] waited for them for 100 ms, a broken emulation). Always false on GICv2.
pub fn redistributor_asleep() -> bool {
    V3.load(Relaxed) && REDIST.r32(gicr::WAKER) & gicr::WAKER_CHILDREN_ASLEEP != 0
}

/// The version [`init`] found.
pub fn version() -> Version {
    if V3.load(Relaxed) { Version::V3 } else { Version::V2 }
}

/// An acknowledged interrupt, to be ended with [`eoi`].
#[derive(Debug)]
#[must_use = "an acknowledged interrupt must be ended"]
pub struct Irq {
    /// What the acknowledge read (GICv2: with the source CPU of an SGI), written back
    /// to end it.
    iar: u64,
    intid: u32,
}

impl Irq {
    /// Its INTID.
    pub const fn intid(&self) -> u32 {
        self.intid
    }
}

/// Acknowledge the highest-priority pending interrupt (ICC_IAR1_EL1 or GICC_IAR);
/// `None` if there is none (a special INTID, spurious: nothing to end).
pub fn ack() -> Option<Irq> {
    let (iar, intid) = if V3.load(Relaxed) {
        let iar = mrs!("icc_iar1_el1");
        (iar, (iar & 0xff_ffff) as u32)
    } else {
        let iar = CPU.r32(gicc::IAR);
        (iar, (iar & 0x3ff) as u32)
    };
    (intid < SPECIAL).then_some(Irq { iar, intid })
}

/// End an interrupt (priority drop and deactivation: ICC_EOIR1_EL1 or GICC_EOIR).
#[expect(
    clippy::needless_pass_by_value,
    reason = "ending takes the interrupt: it cannot be ended twice"
)]
pub fn eoi(irq: Irq) {
    if V3.load(Relaxed) {
        icc_write!("icc_eoir1_el1", irq.iar);
    } else {
        CPU.w32(gicc::EOIR, irq.iar);
    }
}
