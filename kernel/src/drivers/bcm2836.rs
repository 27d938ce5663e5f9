//! The BCM2836 local interrupt controller (Raspberry Pi 2 and 3): per-core routing of
//! the generic timers and mailboxes. There is no acknowledge; sources are level signals.

use super::{IrqController, IrqInitError, MmioRanges, read32, write32};
use crate::arch::cpu;
use crate::board::Bcm2836Frames;

const CORE_TIMER_IRQ_CONTROL: usize = 0x40;
const CORE_IRQ_SOURCE: usize = 0x60;
/// Bytes of the local peripherals block.
const LOCAL_SIZE: usize = 0x1000;

/// The controller at `local`, the local peripherals base.
#[derive(Debug)]
pub struct Bcm2836 {
    local: usize,
    /// Sources of the current round of `claim`s not handed out yet: a round reads the
    /// core's pending sources once and hands each out once (they are levels with no
    /// acknowledge); `None` between rounds.
    round: Option<u32>,
}

impl Bcm2836 {
    /// The pending source bits of `core`'s IRQ line.
    fn pending(&self, core: usize) -> u32 {
        // SAFETY: reading the per-core IRQ source register has no side effect.
        unsafe { read32(self.local + CORE_IRQ_SOURCE + 4 * core) & 0xfff }
    }
}

impl IrqController for Bcm2836 {
    type Config = Bcm2836Frames;

    fn kernel_mmio(config: &Bcm2836Frames) -> MmioRanges {
        let mut v = MmioRanges::new();
        let _ = v.push((config.local, config.local + LOCAL_SIZE));
        v
    }

    /// Every line: they are per-core timers and mailboxes.
    fn kernel_reserved(_line: u32) -> bool {
        true
    }

    fn init(config: &Bcm2836Frames) -> Result<Self, IrqInitError> {
        Ok(Self {
            local: config.local,
            round: None,
        })
    }

    fn name(&self) -> &'static str {
        "BCM2836 local"
    }

    fn line_count(&self) -> u32 {
        32
    }

    fn set_user_line_enabled(&mut self, _line: u32, _enabled: bool) {}

    /// Route timer source `line` (0 CNTPS, 1 CNTPNS, 2 CNTHP, 3 CNTV) of `cpu` to its IRQ.
    fn enable_local(&mut self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let reg = self.local + CORE_TIMER_IRQ_CONTROL + 4 * cpu;
        // SAFETY: the per-core timer interrupt control register of this controller.
        unsafe { write32(reg, read32(reg) | (1 << line)) };
        Ok(())
    }

    fn claim(&mut self) -> Option<u32> {
        let pending = match self.round.take() {
            Some(rest) => rest,
            None => self.pending(cpu::current_index()),
        };
        if pending == 0 {
            // The round is over; the next claim starts a new one.
            return None;
        }
        self.round = Some(pending & (pending - 1));
        Some(pending.trailing_zeros())
    }

    fn complete(&mut self, _line: u32) {}
}
