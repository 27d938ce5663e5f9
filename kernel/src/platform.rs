//! The kernel core's view of this machine ([`Hw`], its `Platform`), and the one kernel
//! instance every trap locks.

use gaon_kcore::kernel::{Kernel, LazySaves, Platform};

use crate::arch::klock::{KernelGuard, KernelLock};
use crate::arch::{self, cpu, exit, read_sysreg, stage2, thread, timer};
use crate::{board, console, irq, kprintln, smp};

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

    fn has_vgic(&self) -> bool {
        crate::arch::guest::has_vgic()
    }

    fn guest_irq_pending(&self) -> bool {
        crate::arch::guest::irq_pending()
    }

    fn guest_timer_irq(&self) -> Option<u32> {
        board::GUEST_TIMER_IRQ
    }

    fn set_guest_timer_masked(&mut self, masked: bool) {
        crate::irq::set_guest_timer_enabled(!masked);
    }

    fn log_to(&mut self, page: usize) {
        console::set_log(page);
    }

    fn log_pending(&mut self) -> bool {
        console::take_log_written()
    }

    fn stall(&mut self, cpu: usize, saves: LazySaves<'_>) {
        smp::stall(cpu, saves);
    }

    fn save_lazy(&mut self, saves: LazySaves<'_>) {
        let to = thread::save_targets(saves);
        // SAFETY: each comes from a live exclusive reference into an owner's Tcb or VCpu.
        unsafe { thread::save_live(to) };
    }

    fn irq_pending(&self) -> bool {
        // ISR_EL1.I: at EL2 with HCR_EL2.IMO set it shows a pending physical IRQ,
        // which stays pending while the kernel runs with IRQs masked.
        read_sysreg!(isr_el1) & (1 << 7) != 0
    }
}

/// The kernel: the big kernel lock (docs/decisions/0004-big-kernel-lock.md). Traps run
/// with interrupts masked and take it with [`lock`] or [`lock_entry`], never directly:
/// those tell the kernel core which CPU it runs on, and answer stalls while they wait.
pub static KERNEL: KernelLock<Kernel<Hw>> = KernelLock::new(Kernel::new(Hw));

/// The kernel, locked for this CPU.
pub type Guard = KernelGuard<Kernel<Hw>>;

/// Take the kernel lock for this CPU (see [`lock_entry`]).
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every kernel entry, measured in instructions")]
pub fn lock() -> Guard {
    lock_entry(|| {}).0
}

/// Take the kernel lock for this CPU, and tell the kernel core which CPU that is (only
/// when another CPU held the lock last: the lock remembers). While another CPU holds
/// it, answer the stalls it asks of this one (`smp::stall`), calling `on_stall` once,
/// before the first answer, while the thread this CPU trapped from is still certainly
/// alive. True
/// with the lock if a stall was answered: that thread may have been stopped, moved or
/// deleted meanwhile, so what it trapped for must not be handled now (it is taken again
/// when the thread next runs).
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every kernel entry, measured in instructions")]
pub fn lock_entry(on_stall: impl FnMut()) -> (Guard, bool) {
    let last = cpu::local().lock_word.load(core::sync::atomic::Ordering::Relaxed);
    match KERNEL.try_lock_again(last) {
        Some(k) => (k, false),
        None => lock_contended(last >> 1, on_stall),
    }
}

#[inline(never)]
fn lock_contended(cpu: usize, mut on_stall: impl FnMut()) -> (Guard, bool) {
    let mut stalled = false;
    let mut k = loop {
        if let Some(k) = KERNEL.try_lock(cpu) {
            break k;
        }
        if cpu::this_cpu()
            .stall_pending
            .load(core::sync::atomic::Ordering::Acquire)
        {
            // Only before the first answer: after it the trapping thread may be gone,
            // and what `on_stall` undoes (a syscall's PC) must be undone once.
            if !stalled {
                on_stall();
            }
            stalled |= smp::answer_stall();
        }
        arch::spin_hint();
    };
    k.enter(cpu);
    (k, stalled)
}

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
