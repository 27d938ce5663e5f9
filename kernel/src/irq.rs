//! Interrupt dispatch and the kernel timer's interrupt, over the board's interrupt controller
//! (`board::IrqDriver`, an [`IrqController`] chosen at build time: every call here is
//! static, and nothing outside the drivers knows which controller it is).

use core::sync::atomic::Ordering;

use crate::arch::cpu;
use crate::board;
use crate::drivers::{IrqController, IrqInitError, MmioRanges};
use crate::platform::KERNEL;

/// The board's interrupt controller driver.
type Driver = board::IrqDriver;

static CONTROLLER: spin::Once<spin::Mutex<Driver>> = spin::Once::new();

/// Lines the kernel tracks at most (`gaon_kcore::kernel::MAX_IRQS`).
const MAX_LINES: u32 = gaon_kcore::kernel::MAX_IRQS as u32;

/// Bring up the interrupt controller and route the kernel timer to this CPU (CPU 0).
pub fn init() -> Result<&'static str, IrqInitError> {
    let mut ctrl = Driver::init(&board::IRQ_CONFIG)?;
    ctrl.enable_local(cpu::current_index(), board::TIMER_IRQ)?;
    let name = ctrl.name();
    CONTROLLER.call_once(|| spin::Mutex::new(ctrl));
    Ok(name)
}

/// Handle every pending interrupt. Called from the IRQ vectors with interrupts
/// masked. The controller lock is not held while the kernel runs, since the kernel
/// masks and unmasks user lines through it.
pub fn handle() {
    let Some(ctrl) = CONTROLLER.get() else { return };
    loop {
        let Some(id) = ctrl.lock().claim() else { break };
        dispatch(id);
        ctrl.lock().complete(id);
    }
}

fn dispatch(id: u32) {
    if id == board::TIMER_IRQ {
        cpu::this_cpu().ticks.fetch_add(1, Ordering::Relaxed);
        KERNEL.lock().handle_timer();
    } else {
        // A user-level handler's line (the kernel masks it until the handler acks) or
        // an unclaimed one (masked for good).
        KERNEL.lock().handle_irq(id);
    }
}

/// Interrupt lines that exist.
pub fn line_count() -> u32 {
    CONTROLLER.get().map(|c| c.lock().line_count()).unwrap_or_default()
}

/// Lines the kernel keeps (see [`IrqController::kernel_reserved`]).
pub fn reserved(line: u32) -> bool {
    Driver::kernel_reserved(line)
}

/// Mask or unmask a user line.
pub fn set_enabled(line: u32, enabled: bool) {
    if reserved(line) || line >= MAX_LINES {
        return;
    }
    if let Some(c) = CONTROLLER.get() {
        c.lock().set_user_line_enabled(line, enabled);
    }
}

/// The interrupt controller's MMIO ranges `[start, end)`, which the kernel drives: never
/// device untyped (nor are the board's `[[reserved]]` regions and withheld devices).
pub fn kernel_mmio() -> MmioRanges {
    Driver::kernel_mmio(&board::IRQ_CONFIG)
}
