//! Exception entry from the vectors in `start.S`.

use super::{exit, read_sysreg};
use crate::{irq, kprintln};

/// Registers saved on exception entry: the same layout as a thread's context in its
/// Tcb (`SAVE_REST` in `start.S` fills both), so the vectors have one frame format.
pub type TrapFrame = gaon_kcore::tcb::UserContext;

static_assertions::const_assert_eq!(core::mem::size_of::<TrapFrame>(), 36 * 8);

/// The EL2 vector slots (those for exceptions from EL0 go to `trap::handle_user_trap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    CurrentSp0,
    CurrentSpx,
}

const KIND_NAMES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];

/// Exception class names for the report.
fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE trapped",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC (AArch64)",
        0x16 => "HVC (AArch64)",
        0x17 => "SMC (AArch64)",
        0x18 => "MSR/MRS/system instruction trapped",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort at EL2",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort at EL2",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// Print everything known about an exception.
pub fn report(frame: &TrapFrame, what: &str) {
    let ec = (frame.esr >> 26) & 0x3f;
    kprintln!("*** {what}");
    kprintln!(
        "    ESR_EL2 {:#018x}: EC {:#04x} ({}), ISS {:#x}",
        frame.esr,
        ec,
        class_name(ec),
        frame.esr & 0x1ff_ffff
    );
    kprintln!(
        "    FAR_EL2 {:#018x}  HPFAR_EL2 {:#018x}",
        frame.far,
        read_sysreg!(hpfar_el2) << 8
    );
    kprintln!(
        "    ELR_EL2 {:#018x}  SPSR_EL2 {:#018x}  SP_EL0 {:#018x}",
        frame.pc,
        frame.spsr,
        frame.sp
    );
    for row in 0..8 {
        let mut line = heapless::String::<128>::new();
        for col in 0..4 {
            let i = row * 4 + col;
            if i < 31 {
                let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" x{i:<2} {:#018x}", frame.x[i]));
            }
        }
        kprintln!("   {}", line);
    }
}

/// Rust side of every exception taken at EL2 (exceptions from EL0 go to
/// `trap::handle_user_trap`). Returns the frame to resume.
#[unsafe(no_mangle)]
extern "C" fn handle_trap(frame: &mut TrapFrame, kind: u64) -> *mut TrapFrame {
    let source = match kind / 4 {
        0 => Source::CurrentSp0,
        _ => Source::CurrentSpx,
    };
    let class = (kind % 4) as usize;
    match (source, class) {
        (Source::CurrentSpx, 1) => irq::handle(),
        (Source::CurrentSpx, 0) if exit::exiting() => exit::psci_system_off(),
        _ => {
            report(frame, &kernel_exception_title(source, KIND_NAMES[class]));
            exit::exit(3)
        }
    }
    frame
}

fn kernel_exception_title(source: Source, kind: &str) -> heapless::String<96> {
    let mut s = heapless::String::new();
    let from = match source {
        Source::CurrentSp0 => "EL2 (SP_EL0)",
        Source::CurrentSpx => "EL2",
    };
    let _ = core::fmt::Write::write_fmt(
        &mut s,
        format_args!("unexpected {kind} exception from {from}; stopping"),
    );
    s
}
