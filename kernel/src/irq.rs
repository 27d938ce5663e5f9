//! Interrupt dispatch and the kernel timer's interrupt, over the board's interrupt controller
//! (`board::IrqDriver`, an [`IrqController`] chosen at build time: every call here is
//! static, and nothing outside the drivers knows which controller it is).

use core::sync::atomic::Ordering;

use crate::arch::cpu::{self, CpuSet};
use crate::drivers::{IrqController, IrqInitError, MmioRanges};
use crate::platform::Guard;
use crate::{board, platform, smp};

/// The board's interrupt controller driver.
type Driver = board::IrqDriver;

/// The controller. Its CPU-interface calls (`claim`, `complete`, `send_ipi`) take no
/// lock: each CPU acts on its own registers; the driver locks its distributor side.
static CONTROLLER: spin::Once<Driver> = spin::Once::new();

/// Lines the kernel tracks at most (`gaon_kcore::kernel::MAX_IRQS`).
const MAX_LINES: u32 = gaon_kcore::kernel::MAX_IRQS as u32;

/// Bring up the interrupt controller and route the kernel timer to this CPU (CPU 0).
pub fn init() -> Result<&'static str, IrqInitError> {
    let ctrl = Driver::init(&board::IRQ_CONFIG)?;
    enable_kernel_ppis(&ctrl, cpu::current_index())?;
    let name = ctrl.name();
    CONTROLLER.call_once(|| ctrl);
    Ok(name)
}

/// Bring up the calling secondary CPU's side of the controller (after [`init`]): its
/// inter-processor interrupts and its kernel timer reach it (user lines go to CPU 0).
pub fn init_cpu(cpu: usize) -> Result<(), IrqInitError> {
    let ctrl = CONTROLLER.get().ok_or(IrqInitError::NoFrames("controller not up"))?;
    ctrl.init_cpu(cpu)?;
    enable_kernel_ppis(ctrl, cpu)
}

/// The private lines the kernel takes on CPU `cpu` (the calling one): its timer, the
/// guests' virtual timer, and the virtual interface's maintenance interrupt where the
/// kernel drives that interface.
fn enable_kernel_ppis(ctrl: &Driver, cpu: usize) -> Result<(), IrqInitError> {
    ctrl.enable_local(cpu, board::TIMER_IRQ)?;
    if let Some(line) = board::GUEST_TIMER_IRQ {
        ctrl.enable_local(cpu, line)?;
    }
    if let Some(line) = board::MAINTENANCE_IRQ
        && crate::arch::guest::has_vgic()
    {
        ctrl.enable_local(cpu, line)?;
    }
    Ok(())
}

/// Unmask or mask the guests' virtual timer line on the calling CPU (the guest whose
/// state is live here decides: masked while its timer interrupt is with it).
pub fn set_guest_timer_enabled(enabled: bool) {
    if let (Some(c), Some(line)) = (CONTROLLER.get(), board::GUEST_TIMER_IRQ) {
        c.set_local_enabled(cpu::current_index(), line, enabled);
    }
}

/// Send an inter-processor interrupt to `targets`.
pub fn send_ipi(targets: CpuSet) {
    if let Some(c) = CONTROLLER.get() {
        c.send_ipi(targets);
    }
}

/// Handle every pending interrupt of this CPU. Called from the IRQ vectors with
/// interrupts masked. `k`: the kernel lock, taken here when an interrupt needs it and
/// kept for the caller (who returns to a thread next, and needs it too).
pub fn handle(k: &mut Option<Guard>) {
    let Some(ctrl) = CONTROLLER.get() else { return };
    while let Some(claim) = ctrl.claim() {
        dispatch(claim.line, k);
        ctrl.complete(claim);
    }
}

fn dispatch(id: u32, k: &mut Option<Guard>) {
    if id == board::TIMER_IRQ {
        cpu::this_cpu().ticks.fetch_add(1, Ordering::Relaxed);
        k.get_or_insert_with(platform::lock).handle_timer();
    } else if id == Driver::IPI {
        smp::handle_ipi(k);
    } else if Some(id) == board::GUEST_TIMER_IRQ {
        k.get_or_insert_with(platform::lock).handle_guest_timer();
    } else if Some(id) == board::MAINTENANCE_IRQ {
        crate::arch::guest::maintenance(k.get_or_insert_with(platform::lock));
    } else {
        // A user-level handler's line (the kernel masks it until the handler acks) or
        // an unclaimed one (masked for good). Only CPU 0 gets these: user lines are
        // routed there.
        k.get_or_insert_with(platform::lock).handle_irq(id);
    }
}

/// Interrupt lines that exist.
pub fn line_count() -> u32 {
    CONTROLLER.get().map(IrqController::line_count).unwrap_or_default()
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
        c.set_user_line_enabled(line, enabled);
    }
}

/// The interrupt controller's MMIO ranges `[start, end)`, which the kernel drives: never
/// device untyped (nor are the board's `[[reserved]]` regions and withheld devices).
pub fn kernel_mmio() -> MmioRanges {
    Driver::kernel_mmio(&board::IRQ_CONFIG)
}
