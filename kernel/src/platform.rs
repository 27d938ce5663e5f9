//! The kernel core's view of this machine ([`Hw`], its `Platform`), and the one kernel
//! instance every trap locks.

use gaon_kcore::kernel::{Kernel, Platform};

use crate::arch::{cpu, exit, read_sysreg, stage2, timer};
use crate::{board, console, irq, kprintln};

/// The hardware behind the kernel core.
#[derive(Debug)]
pub struct Hw;

impl Platform for Hw {
    fn put_char(&mut self, b: u8) {
        console::put_byte(b);
    }

    fn halt(&mut self, status: u8) {
        // The log's reader will not run again: what it has not printed, the kernel does.
        console::flush_log_direct();
        kprintln!(
            "kernel: halt requested with status {status} after {} timer interrupts",
            cpu::total_ticks()
        );
        exit::exit(u32::from(status));
    }

    fn ticks(&self) -> u64 {
        cpu::total_ticks()
    }

    fn set_timer(&mut self, deadline: Option<u64>) {
        timer::set_deadline(deadline);
    }

    fn flush_vmid(&mut self, vmid: u16) {
        stage2::flush_vmid(vmid);
    }

    fn sync_icache(&mut self, pa: usize, len: usize) {
        stage2::sync_icache(pa, len);
    }

    fn irq_count(&self) -> u32 {
        irq::line_count()
    }

    fn irq_reserved(&self, line: u32) -> bool {
        irq::reserved(line)
    }

    fn irq_set_enabled(&mut self, line: u32, enabled: bool) {
        irq::set_enabled(line, enabled);
    }

    fn now(&self) -> u64 {
        read_sysreg!(cntpct_el0)
    }

    fn counter_hz(&self) -> u64 {
        timer::frequency()
    }

    fn user_timer_irq(&self) -> Option<u32> {
        board::USER_TIMER_IRQ
    }

    fn set_user_timer(&mut self, cval: Option<u64>) {
        timer::set_user(cval);
    }

    fn log_to(&mut self, page: usize) {
        console::set_log(page);
    }

    fn log_pending(&mut self) -> bool {
        console::take_log_written()
    }

    fn irq_pending(&self) -> bool {
        // ISR_EL1.I: at EL2 with HCR_EL2.IMO set it shows a pending physical IRQ,
        // which stays pending while the kernel runs with IRQs masked.
        read_sysreg!(isr_el1) & (1 << 7) != 0
    }
}

/// The kernel. Traps run with interrupts masked and take this lock. Only CPU 0 takes it
/// yet (the other CPUs come online and park, taking only inter-processor interrupts),
/// so it is never contended; it is where the big kernel lock goes when they run threads.
pub static KERNEL: spin::Mutex<Kernel<Hw>> = spin::Mutex::new(Kernel::new(Hw));

/// The device memory the root server gets as device untyped, `(base, size)`: exactly
/// the board's devices with user access (`[[device]]` entries in `board.toml`; DMA
/// masters only with an explicit opt-in). Nothing else in the `[[mmio]]` windows (the
/// interrupt controller's frames, `[[reserved]]` regions, withheld devices, gaps) ever
/// reaches user level. `gaon-platform` checks this when it generates the list; the
/// boot check here catches the kernel's own idea of its frames drifting from it.
pub fn device_regions() -> &'static [(usize, usize)] {
    let keep = irq::kernel_mmio();
    for &(base, size) in board::USER_DEVICES {
        assert!(
            keep.iter().all(|&(kb, ke)| base + size <= kb || ke <= base),
            "board device {base:#x}+{size:#x} overlaps a region the kernel keeps"
        );
    }
    board::USER_DEVICES
}
