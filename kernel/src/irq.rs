//! Interrupt dispatch and the kernel tick.

use core::sync::atomic::Ordering;

use crate::arch::{cpu, timer};
use crate::board::{self, IrqController};
use crate::drivers::bcm2836::Bcm2836;
use crate::drivers::gic::{Gic, GicInitError};
use crate::kprintln;

/// The board's interrupt controller.
#[derive(Debug)]
pub enum Controller {
    /// An Arm GIC.
    Gic(Gic),
    /// BCM2836 local controller.
    Bcm2836(Bcm2836),
}

impl Controller {
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

/// Handle every pending interrupt. Called from the IRQ vectors.
pub fn handle() {
    let Some(ctrl) = CONTROLLER.get() else { return };
    let mut ctrl = ctrl.lock();
    match &mut *ctrl {
        Controller::Gic(g) => {
            while let Some(id) = g.acknowledge() {
                if id >= 1020 {
                    break;
                }
                dispatch(id);
                g.end(id);
            }
        }
        Controller::Bcm2836(b) => {
            // Sources are levels with no acknowledge: handle each pending one once.
            let mut pending = b.pending(cpu::current_index());
            while pending != 0 {
                let src = pending.trailing_zeros();
                pending &= pending - 1;
                dispatch(src);
            }
        }
    }
}

fn dispatch(id: u32) {
    if id == board::TIMER_IRQ {
        tick();
    } else {
        kprintln!("irq: spurious or unowned interrupt {id}");
    }
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
