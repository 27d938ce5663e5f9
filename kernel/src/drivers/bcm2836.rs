//! The BCM2836 local interrupt controller (Raspberry Pi 2 and 3): per-core routing of
//! the generic timers and mailboxes. There is no acknowledge; sources are levels. Every
//! register the kernel uses is per core, so there is no distributor side to lock; the
//! round of `claim`s is kept per core.

use core::sync::atomic::{AtomicU32, Ordering};

use super::regs::bcm2836 as regs;
use super::{Claim, IrqController, IrqInitError, MmioRanges, read32, write32};
use crate::arch::cpu::{self, CpuSet};
use crate::arch::dsb_ishst;
use crate::board::{self, Bcm2836Frames};

const CORE_TIMER_IRQ_CONTROL: usize = 0x40;
const CORE_IRQ_SOURCE: usize = 0x60;
/// Bytes of the local peripherals block.
const LOCAL_SIZE: usize = 0x1000;

/// The controller at `local`, the local peripherals base.
#[derive(Debug)]
pub struct Bcm2836 {
    local: usize,
    /// Each core's round of `claim`s (`regs::bcm2836::claim`): the sources it read at
    /// the round's start and has not handed out yet. Only the core itself touches its
    /// entry.
    rounds: [AtomicU32; board::CPUS],
}

impl Bcm2836 {
    /// The pending source bits of `core`'s IRQ line.
    fn pending(&self, core: usize) -> u32 {
        // SAFETY: reading the per-core IRQ source register has no side effect.
        unsafe { read32(self.local + CORE_IRQ_SOURCE + 4 * core) }
    }

    /// Let mailbox 0 of `cpu` raise its IRQ: the IPI line.
    fn enable_ipi(&self, cpu: usize) {
        let reg = self.local + regs::mailbox_irq_control(cpu);
        // SAFETY: core `cpu`'s mailbox interrupt control register, which only that core
        // writes (from `init` or `init_cpu`, run on it).
        unsafe { write32(reg, read32(reg) | 1) };
    }
}

impl IrqController for Bcm2836 {
    type Config = Bcm2836Frames;

    const IPI: u32 = regs::MAILBOX0_LINE;

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
        let c = Self {
            local: config.local,
            rounds: [const { AtomicU32::new(0) }; board::CPUS],
        };
        c.enable_ipi(cpu::current_index());
        Ok(c)
    }

    fn name(&self) -> &'static str {
        "BCM2836 local"
    }

    fn line_count(&self) -> u32 {
        32
    }

    fn set_user_line_enabled(&self, _line: u32, _enabled: bool) {}

    fn set_local_enabled(&self, _cpu: usize, _line: u32, _enabled: bool) {}

    fn init_cpu(&self, cpu: usize) -> Result<(), IrqInitError> {
        self.enable_ipi(cpu);
        Ok(())
    }

    /// Route timer source `line` (0 CNTPS, 1 CNTPNS, 2 CNTHP, 3 CNTV) of `cpu` to its IRQ.
    fn enable_local(&self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let reg = self.local + CORE_TIMER_IRQ_CONTROL + 4 * cpu;
        // SAFETY: the per-core timer interrupt control register of this controller,
        // which only core `cpu` (the caller) writes.
        unsafe { write32(reg, read32(reg) | (1 << line)) };
        Ok(())
    }

    fn claim(&self) -> Option<Claim> {
        let core = cpu::current_index();
        let round = &self.rounds[core];
        let (state, line) = regs::claim(round.load(Ordering::Relaxed), || self.pending(core));
        round.store(state, Ordering::Relaxed);
        let line = line?;
        if line == regs::MAILBOX0_LINE {
            // Clear what arrived before handling it: a message sent from now on raises
            // the line again, for the next round.
            let clear = self.local + regs::mailbox0_clear(core);
            // SAFETY: this core's mailbox 0 read / write-1-to-clear register; only the
            // bits read are cleared.
            unsafe { write32(clear, read32(clear)) };
        }
        Some(Claim { line, ack: line })
    }

    fn complete(&self, _claim: Claim) {}

    fn send_ipi(&self, targets: CpuSet) {
        // Earlier stores (what the IPI asks) reach the targets before it does.
        dsb_ishst();
        for n in targets.iter().filter(|&n| n < board::CPUS) {
            // SAFETY: core n's mailbox 0 write-set register: sets bit 0, which raises
            // its mailbox interrupt.
            unsafe { write32(self.local + regs::mailbox0_set(n), 1) };
        }
    }
}
