//! Interrupt dispatch and the kernel tick.

use core::sync::atomic::Ordering;

use crate::arch::{cpu, timer};
use crate::board::{self, IrqController};
use crate::drivers::bcm2836::Bcm2836;
use crate::drivers::gic::{Gic, GicInitError};
use crate::kprintln;
use crate::platform::KERNEL;

/// The board's interrupt controller.
#[derive(Debug)]
pub enum Controller {
    /// An Arm GIC.
    Gic(Gic),
    /// BCM2836 local controller.
    Bcm2836(Bcm2836),
}

impl Controller {
    fn line_count(&self) -> u32 {
        match self {
            Self::Gic(g) => g.line_count(),
            Self::Bcm2836(_) => 32,
        }
    }

    /// Name for the banner.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gic(g) => g.name(),
            Self::Bcm2836(_) => "BCM2836 local",
        }
    }
}

static CONTROLLER: spin::Once<spin::Mutex<Controller>> = spin::Once::new();

/// Ticks between timer interrupts.
static TICK_INTERVAL: spin::Once<u64> = spin::Once::new();

/// Bring up the interrupt controller and route the kernel timer to CPU 0.
pub fn init() -> Result<&'static str, GicInitError> {
    let mut ctrl = match board::IRQ_CONTROLLER {
        IrqController::Gic { v2, v3 } => Controller::Gic(Gic::init(v2, v3, cpu::gic_sysreg_version())?),
        IrqController::Bcm2836 { local } => Controller::Bcm2836(Bcm2836::new(local)),
    };
    match &mut ctrl {
        Controller::Gic(g) => {
            if !g.enable_ppi(board::TIMER_IRQ) {
                return Err(GicInitError::NoFrames("timer PPI"));
            }
        }
        Controller::Bcm2836(b) => b.enable_timer(0, board::TIMER_IRQ),
    }
    let name = ctrl.name();
    CONTROLLER.call_once(|| spin::Mutex::new(ctrl));
    Ok(name)
}

/// Start the periodic tick.
pub fn start_tick() {
    let interval = *TICK_INTERVAL.call_once(|| timer::frequency() / u64::from(board::TICK_HZ));
    timer::arm(interval);
}

/// Handle every pending interrupt. Called from the IRQ vectors with interrupts
/// masked. The controller lock is not held while the kernel runs, since the kernel
/// masks and unmasks user lines through it.
pub fn handle() {
    let Some(ctrl) = CONTROLLER.get() else { return };
    let bcm_pending = match &mut *ctrl.lock() {
        Controller::Gic(_) => None,
        Controller::Bcm2836(b) => Some(b.pending(cpu::current_index())),
    };
    if let Some(mut pending) = bcm_pending {
        // Sources are levels with no acknowledge: handle each pending one once.
        while pending != 0 {
            let src = pending.trailing_zeros();
            pending &= pending - 1;
            dispatch(src);
        }
        return;
    }
    loop {
        let id = match &mut *ctrl.lock() {
            Controller::Gic(g) => g.acknowledge(),
            Controller::Bcm2836(_) => None,
        };
        let Some(id) = id.filter(|&i| i < 1020) else { break };
        dispatch(id);
        if let Controller::Gic(g) = &mut *ctrl.lock() {
            g.end(id);
        }
    }
}

fn dispatch(id: u32) {
    if id == board::TIMER_IRQ {
        tick();
        KERNEL.lock().handle_tick();
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

/// Lines the kernel keeps: SGIs and PPIs (per-CPU, including the kernel timer) on a
/// GIC, except the EL1 virtual timer's PPI where the board gives it to user level;
/// every line of the BCM2836 local controller (they are per-core timers and mailboxes).
pub fn reserved(line: u32) -> bool {
    match board::IRQ_CONTROLLER {
        IrqController::Gic { .. } => line < 32 && Some(line) != board::USER_TIMER_IRQ,
        IrqController::Bcm2836 { .. } => true,
    }
}

/// Lines whose priority and routing have been set (the first enable does it).
static CONFIGURED: spin::Mutex<[u64; 16]> = spin::Mutex::new([0; 16]);

/// Mask or unmask a user line.
pub fn set_enabled(line: u32, enabled: bool) {
    if reserved(line) || line >= 1024 {
        return;
    }
    if let Some(c) = CONTROLLER.get()
        && let Controller::Gic(g) = &mut *c.lock()
    {
        let mut done = CONFIGURED.lock();
        let (word, bit) = ((line / 64) as usize, 1u64 << (line % 64));
        let mut configured = done[word] & bit != 0;
        g.set_user_line_enabled(line, enabled, &mut configured);
        if configured {
            done[word] |= bit;
        }
    }
}

/// The interrupt controller's MMIO ranges `[start, end)`, which the kernel drives: never
/// device untyped (nor are the board's `[[reserved]]` regions and withheld devices).
pub fn kernel_mmio() -> heapless::Vec<(usize, usize), 4> {
    let mut v = heapless::Vec::new();
    match board::IRQ_CONTROLLER {
        IrqController::Gic { v2, v3 } => {
            if let Some(f) = v2 {
                let _ = v.push((f.distributor, f.distributor + 0x1_0000));
                let _ = v.push((f.cpu_interface, f.cpu_interface + 0x2_0000));
            }
            if let Some(f) = v3 {
                let _ = v.push((f.distributor, f.distributor + 0x1_0000));
                let _ = v.push((f.redistributor, f.redistributor + 0x2_0000 * board::CPUS));
            }
        }
        IrqController::Bcm2836 { local } => {
            let _ = v.push((local, local + 0x1000));
        }
    }
    v
}

fn tick() {
    let n = cpu::this_cpu().ticks.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 {
        kprintln!(
            "timer: first tick on CPU {} (irq {})",
            cpu::current_index(),
            board::TIMER_IRQ
        );
    }
    if let Some(&interval) = TICK_INTERVAL.get() {
        timer::arm(interval);
    }
}
