//! The BCM2836 local interrupt controller (Raspberry Pi 2 and 3): per-core routing of
//! the generic timers and mailboxes. There is no acknowledge; sources are level signals.

use super::{read32, write32};

const CORE_TIMER_IRQ_CONTROL: usize = 0x40;
const CORE_IRQ_SOURCE: usize = 0x60;

/// The controller at `local`, the local peripherals base.
#[derive(Debug)]
pub struct Bcm2836 {
    local: usize,
}

impl Bcm2836 {
    /// A driver for the controller at `local`.
    pub fn new(local: usize) -> Self {
        Self { local }
    }

    /// Route timer source `bit` (0 CNTPS, 1 CNTPNS, 2 CNTHP, 3 CNTV) of `core` to its IRQ line.
    pub fn enable_timer(&mut self, core: usize, bit: u32) {
        let reg = self.local + CORE_TIMER_IRQ_CONTROL + 4 * core;
        // SAFETY: the per-core timer interrupt control register of this controller.
        unsafe { write32(reg, read32(reg) | (1 << bit)) };
    }

    /// The pending source bits of `core`'s IRQ line.
    pub fn pending(&self, core: usize) -> u32 {
        // SAFETY: reading the per-core IRQ source register has no side effect.
        unsafe { read32(self.local + CORE_IRQ_SOURCE + 4 * core) & 0xfff }
    }
}
