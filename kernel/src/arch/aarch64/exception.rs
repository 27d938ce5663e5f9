//! Exception entry from the vectors in `start.S`.

use super::{cpu, exit, read_sysreg};
use crate::{irq, kprintln};

/// Registers saved on exception entry: the same layout as a thread's context in its
/// Tcb (`SAVE_REST` in `start.S` fills both), so the vectors have one frame format.
pub type TrapFrame = gaon_kcore::tcb::UserContext;

static_assertions::const_assert_eq!(core::mem::size_of::<TrapFrame>(), 36 * 8);

/// The EL2 vector slots, the `kind` the vectors in `start.S` pass: `source + class`.
#[allow(dead_code, reason = "the whole table is named; not every slot is matched by name")]
pub mod slot {
    /// Source: EL2 with SP_EL0.
    pub const CURRENT_SP0: u64 = 0;
    /// Source: EL2 with SP_EL2.
    pub const CURRENT_SPX: u64 = 4;
    /// Source: a lower EL in AArch64 (EL0 threads; EL1 guests would arrive here too).
    pub const LOWER_A64: u64 = 8;
    /// Source: a lower EL in AArch32.
    pub const LOWER_A32: u64 = 12;
    /// Class: synchronous.
    pub const SYNC: u64 = 0;
    /// Class: IRQ.
    pub const IRQ: u64 = 1;
    /// Class: FIQ.
    pub const FIQ: u64 = 2;
    /// Class: SError.
    pub const SERROR: u64 = 3;
    /// Sources are multiples of this; the class is the remainder.
    pub const CLASSES: u64 = 4;
}

/// ESR_EL2 exception classes the trap decoding tells apart.
const EC_SVC64: u64 = 0x15;
const EC_FP: u64 = 0x07;

/// An exception taken from a lower EL, decoded once from its vector slot and ESR_EL2.
/// `trap::handle_user_trap` dispatches on it with one `match`; a thread kind that
/// handles traps differently (a VCpu) becomes one more case of a match on (thread
/// kind, trap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// SVC from AArch64: a syscall. Decoded first and cheapest: IPC is measured in
    /// instructions.
    Syscall,
    /// An FP/SIMD access trapped by CPTR_EL2.TFP (lazy FP switching).
    FpAccess,
    /// Any other synchronous exception, with ESR_EL2 and FAR_EL2 (valid or not: the
    /// fault decoding keeps FAR only where the syndrome says it holds).
    Sync {
        /// ESR_EL2.
        esr: u64,
        /// FAR_EL2.
        far: u64,
    },
    /// An IRQ.
    Irq,
    /// An FIQ (nothing routes FIQs to EL2 on purpose; ESR and FAR are not set).
    Fiq,
    /// An SError, with its syndrome.
    SError {
        /// ESR_EL2.
        esr: u64,
    },
}

impl Trap {
    /// Decode a lower-EL exception: `kind` is its vector slot (`slot::LOWER_*`),
    /// `esr` and `far` ESR_EL2 and FAR_EL2.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "the syscall path, measured in instructions (docs/benchmarks.md)"
    )]
    pub fn decode(kind: u64, esr: u64, far: u64) -> Self {
        let ec = (esr >> 26) & 0x3f;
        // Slot and class in one word, so a syscall is told apart with one compare (the
        // two tests apart cost a second compare and branch on every syscall).
        if (ec << 4 | kind) == (EC_SVC64 << 4 | (slot::LOWER_A64 + slot::SYNC)) {
            return Self::Syscall;
        }
        let a64_sync = kind == slot::LOWER_A64 + slot::SYNC;
        match kind % slot::CLASSES {
            slot::SYNC if a64_sync && ec == EC_FP => Self::FpAccess,
            slot::SYNC => Self::Sync { esr, far },
            slot::IRQ => Self::Irq,
            slot::FIQ => Self::Fiq,
            _ => Self::SError { esr },
        }
    }
}

/// Where a kernel-level (EL2) exception was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    CurrentSp0,
    CurrentSpx,
}

/// Class names, indexed by `slot::SYNC`..`slot::SERROR`.
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
    let source = match kind - kind % slot::CLASSES {
        slot::CURRENT_SP0 => Source::CurrentSp0,
        _ => Source::CurrentSpx,
    };
    let class = kind % slot::CLASSES;
    match (source, class) {
        (Source::CurrentSpx, slot::IRQ) => irq::handle(&mut None),
        (Source::CurrentSpx, slot::SYNC) if exit::exiting() => exit::psci_system_off(),
        (Source::CurrentSpx, slot::SYNC) if let Some(n) = cpu::stack_guard_of(frame.far) => {
            // The vectors' own pushes fault too until SP leaves the guard page, so
            // this report runs on whatever lies below it; the machine stops after.
            report(
                frame,
                &format_title(format_args!("kernel stack overflow on CPU {n}; stopping")),
            );
            exit::exit(3)
        }
        _ => {
            report(frame, &kernel_exception_title(source, KIND_NAMES[class as usize]));
            exit::exit(3)
        }
    }
    frame
}

fn kernel_exception_title(source: Source, kind: &str) -> heapless::String<96> {
    let from = match source {
        Source::CurrentSp0 => "EL2 (SP_EL0)",
        Source::CurrentSpx => "EL2",
    };
    format_title(format_args!("unexpected {kind} exception from {from}; stopping"))
}

fn format_title(args: core::fmt::Arguments<'_>) -> heapless::String<96> {
    let mut s = heapless::String::new();
    let _ = core::fmt::Write::write_fmt(&mut s, args);
    s
}
