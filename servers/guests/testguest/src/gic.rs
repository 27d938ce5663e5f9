//! The interrupt controller, either version: GICv3 (distributor and redistributor
//! emulated by the VMM, the CPU interface by system registers) or GICv2 (distributor
//! emulated, the CPU interface the hardware's virtual one mapped at GICC). Two
//! interrupts are used: the virtual timer's PPI and the test device's SPI, both at
//! priority 0x80, to vCPU 0.
//!
//! The IRQ handler records what it acknowledged, and quiets each source before ending
//! it (both are level-triggered): it stops the timer, or lowers the test device's line.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

pub use gaon_guest_bare::gic::Version;
use gaon_guest_bare::gic::{self, SPECIAL};
use gaon_vmm::layout::{TESTDEV_IRQ, UART_IRQ, VTIMER_IRQ};

use crate::arch;
use crate::tests::TESTDEV;

/// The priority of both interrupts.
const PRIORITY: u8 = 0x80;
/// The SPIs the guest takes: the test device's, the UART's, and the pass-through
/// RTC's (`crate::tests::RTC_IRQ`; enabling a line nothing drives is harmless).
const SPIS: [u32; 3] = [TESTDEV_IRQ, UART_IRQ, crate::tests::RTC_IRQ];
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

/// Set up the GIC (`gaon_guest_bare::gic`) with the timer's PPI and the SPIs enabled;
/// IRQs stay masked at the CPU.
pub fn init() -> Version {
    let version = gic::init(&[VTIMER_IRQ], &SPIS, PRIORITY);
    if gic::redistributor_asleep() {
        println!("testguest: GICR_WAKER.ChildrenAsleep stays set");
    }
    version
}

/// The IRQ vector's work: acknowledge, quiet the source, record, end.
pub fn handle_irq() {
    let now = arch::counter();
    let Some(irq) = gic::ack() else {
        // Nothing to end.
        bump(&SPURIOUS_COUNT);
        return;
    };
    let intid = irq.intid();
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
    gic::eoi(irq);
}
