//! The interrupt controller, either version: GICv3 (distributor and redistributor
//! emulated by the VMM, the CPU interface by system registers) or GICv2 (distributor
//! emulated, the CPU interface the hardware's virtual one mapped at GICC). Two
//! interrupts are used: the virtual timer's PPI and the test device's SPI, both at
//! priority 0x80, to vCPU 0.
//!
//! The IRQ handler records what it acknowledged, and quiets each source before ending
//! it (both are level-triggered): it stops the timer, or lowers the test device's line.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use gaon_vmm::layout::{GICC, GICD, GICR, TESTDEV_IRQ, UART_IRQ, VTIMER_IRQ};

use crate::arch;
use crate::mmio::Mmio;
use crate::tests::TESTDEV;

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

/// The priority of both interrupts.
const PRIORITY: u64 = 0x80;
/// The SPIs the guest takes: the test device's, the UART's, and the pass-through
/// RTC's (`crate::tests::RTC_IRQ`; enabling a line nothing drives is harmless).
const SPIS: [u32; 3] = [TESTDEV_IRQ, UART_IRQ, crate::tests::RTC_IRQ];
/// INTIDs from this one up are special (1023: spurious).
const SPECIAL: u32 = 1020;

/// Which GIC the guest drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

static V3: AtomicBool = AtomicBool::new(false);

/// Interrupts handled (not counting spurious ones), the last one's INTID, and per source.
pub static IRQ_COUNT: AtomicU64 = AtomicU64::new(0);
pub static LAST_INTID: AtomicU32 = AtomicU32::new(SPECIAL + 3);
pub static TIMER_COUNT: AtomicU64 = AtomicU64::new(0);
pub static TESTDEV_COUNT: AtomicU64 = AtomicU64::new(0);
/// Interrupts of the pass-through RTC.
pub static RTC_COUNT: AtomicU64 = AtomicU64::new(0);
/// Deliveries of the test device's SPI for which the handler leaves its line up.
pub static TESTDEV_HOLD: AtomicU64 = AtomicU64::new(0);
pub static SPURIOUS_COUNT: AtomicU64 = AtomicU64::new(0);
/// The counter when the last timer interrupt was acknowledged.
pub static TIMER_AT: AtomicU64 = AtomicU64::new(0);

/// One more (only the handler writes these, with interrupts masked: no read-modify-write
/// instruction is needed, none that the MMU-off Device memory might not support).
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// The 32-bit bank register (from `base`) that has `intid`, and its bit there.
const fn bank(base: u64, intid: u32) -> (u64, u64) {
    (base + 4 * (intid as u64 / 32), 1 << (intid % 32))
}

/// Set up the distributor, vCPU 0's redistributor (GICv3) and the CPU interface, with
/// the timer's PPI and the test device's SPI enabled; IRQs stay masked at the CPU.
pub fn init() -> Version {
    let ppi = u64::from(VTIMER_IRQ);
    let (ppi_enable, ppi_bit) = bank(gicd::ISENABLER, VTIMER_IRQ);
    if arch::has_gic_sysregs() {
        V3.store(true, Relaxed);
        // Wake the redistributor.
        REDIST.w32(gicr::WAKER, 0);
        let awake = crate::tests::wait_until(100_000, || REDIST.r32(gicr::WAKER) & gicr::WAKER_CHILDREN_ASLEEP == 0);
        if !awake {
            println!("testguest: GICR_WAKER.ChildrenAsleep stays set");
        }
        // The timer's PPI: group 1, priority, enabled.
        let sgi = gicr::SGI;
        let (group, bit) = bank(sgi + gicd::IGROUPR, VTIMER_IRQ);
        REDIST.w32(group, REDIST.r32(group) | bit);
        REDIST.w8(sgi + gicd::IPRIORITYR + ppi, PRIORITY);
        REDIST.w32(sgi + ppi_enable, ppi_bit);
        // The SPIs: to vCPU 0 (Aff0 = 0), group 1, priority, enabled.
        for intid in SPIS {
            let spi = u64::from(intid);
            DIST.w64(gicd::IROUTER + 8 * spi, 0);
            let (group, bit) = bank(gicd::IGROUPR, intid);
            DIST.w32(group, DIST.r32(group) | bit);
            DIST.w8(gicd::IPRIORITYR + spi, PRIORITY);
            let (enable, bit) = bank(gicd::ISENABLER, intid);
            DIST.w32(enable, bit);
        }
        DIST.w32(gicd::CTLR, gicd::CTLR_V3_ENABLE_GRP1 | gicd::CTLR_V3_ARE);
        arch::icc_init();
        Version::V3
    } else {
        V3.store(false, Relaxed);
        // Group 0 (the reset value), to CPU 0, priority, enabled.
        for intid in SPIS {
            let spi = u64::from(intid);
            DIST.w8(gicd::IPRIORITYR + spi, PRIORITY);
            DIST.w8(gicd::ITARGETSR + spi, 1);
            let (enable, bit) = bank(gicd::ISENABLER, intid);
            DIST.w32(enable, bit);
        }
        DIST.w8(gicd::IPRIORITYR + ppi, PRIORITY);
        DIST.w32(ppi_enable, ppi_bit);
        DIST.w32(gicd::CTLR, gicd::CTLR_V2_ENABLE);
        CPU.w32(gicc::PMR, 0xff);
        CPU.w32(gicc::CTLR, 1);
        Version::V2
    }
}

/// The IRQ vector's work: acknowledge, quiet the source, record, end.
pub fn handle_irq() {
    let v3 = V3.load(Relaxed);
    let now = arch::counter();
    let (iar, intid) = if v3 {
        let iar = arch::icc_ack();
        (iar, (iar & 0xff_ffff) as u32)
    } else {
        let iar = CPU.r32(gicc::IAR);
        (iar, (iar & 0x3ff) as u32)
    };
    if intid >= SPECIAL {
        // Nothing to end.
        bump(&SPURIOUS_COUNT);
        return;
    }
    match intid {
        VTIMER_IRQ => {
            arch::timer_off();
            TIMER_AT.store(now, Relaxed);
            bump(&TIMER_COUNT);
        }
        TESTDEV_IRQ => {
            let hold = TESTDEV_HOLD.load(Relaxed);
            if hold == 0 {
                TESTDEV.w32(gaon_vmm::testdev::reg::IRQ, 0);
            } else {
                TESTDEV_HOLD.store(hold - 1, Relaxed);
            }
            bump(&TESTDEV_COUNT);
        }
        UART_IRQ => crate::uart::drain(),
        crate::tests::RTC_IRQ => {
            crate::tests::rtc_clear();
            bump(&RTC_COUNT);
        }
        _ => {}
    }
    LAST_INTID.store(intid, Relaxed);
    bump(&IRQ_COUNT);
    if v3 {
        arch::icc_eoi(iar);
    } else {
        CPU.w32(gicc::EOIR, iar);
    }
}
