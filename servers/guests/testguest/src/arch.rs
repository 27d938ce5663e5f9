//! The CPU: the entry points (`_start` for vCPU 0, `gaon_guest_bare::entry!`'s, and
//! `_secondary` for a vCPU PSCI starts), the exception vectors (`gaon_guest_bare::vectors!`)
//! and their handler, the system registers the tests use, and hypercalls.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use gaon_vmm::psci;

pub use gaon_guest_bare::cpu::{
    counter, counter_frequency, init_counter, irqs_off, irqs_on, isr, ticks, timer_arm, timer_off, wfi,
};
use gaon_guest_bare::vectors::Frame;
use gaon_guest_bare::vectors::kind::{CURRENT_SPX_IRQ, CURRENT_SPX_SYNC};
use gaon_guest_bare::{cpu, mrs};

/// The context id that makes the secondary vCPU spin for good instead of turning itself
/// off (the victim of the VMM-deletion test).
pub const SPIN: u64 = 0x5917;

/// The value the secondary vCPU found in x0 (its PSCI context id), 0 until it ran.
pub static SECONDARY_CONTEXT: AtomicU64 = AtomicU64::new(0);

/// Set while a test expects a synchronous exception: the handler then records it and
/// steps over the instruction instead of stopping the guest.
static EXPECT_ABORT: AtomicBool = AtomicBool::new(false);
/// Synchronous exceptions taken while expected, and the last one's ESR_EL1 and FAR_EL1.
static SYNC_COUNT: AtomicU64 = AtomicU64::new(0);
static LAST_ESR: AtomicU64 = AtomicU64::new(0);
static LAST_FAR: AtomicU64 = AtomicU64::new(0);

gaon_guest_bare::entry!(crate::guest_main, "testguest_vectors");
// Every exception saves the whole context (`Frame`) and calls `exception`.
gaon_guest_bare::vectors!("testguest_vectors", exception);

global_asm!(
    // A secondary vCPU's entry (PSCI CPU_ON): EL1h, MMU off, DAIF masked, x0 = the
    // context id. It takes its own stack, turns FP/SIMD on, installs the vectors (an
    // exception reports itself), writes the context id where vCPU 0 waits for it, and
    // turns itself off (PSCI CPU_OFF, which does not return).
    ".section .text.secondary, \"ax\"",
    ".global _secondary",
    "_secondary:",
    "    msr daifset, #0xf",
    "    mov x19, x0",
    "    mov x1, #(3 << 20)",
    "    msr cpacr_el1, x1",
    "    isb",
    "    msr spsel, #1",
    "    adrp x1, __secondary_stack_top",
    "    add x1, x1, :lo12:__secondary_stack_top",
    "    mov sp, x1",
    "    adrp x1, testguest_vectors",
    "    add x1, x1, :lo12:testguest_vectors",
    "    msr vbar_el1, x1",
    "    isb",
    "    adrp x1, {context}",
    "    add x1, x1, :lo12:{context}",
    "    stlr x19, [x1]",
    "    dsb sy",
    // The victim's second vCPU (context SPIN) spins until its VMM is deleted.
    "    mov x2, #{spin}",
    "    cmp x19, x2",
    "    b.ne 6f",
    "5:  add x20, x20, #1",
    "    b 5b",
    "6:  movz x0, #{cpu_off_lo}",
    "    movk x0, #{cpu_off_hi}, lsl #16",
    "    hvc #0",
    "4:  wfi",
    "    b 4b",
    ".text",
    context = sym SECONDARY_CONTEXT,
    spin = const SPIN,
    cpu_off_lo = const psci::id::CPU_OFF & 0xffff,
    cpu_off_hi = const psci::id::CPU_OFF >> 16,
);

unsafe extern "C" {
    /// The secondary vCPU's entry (in the assembly above); only its address is used.
    fn _secondary();
}

/// The address of the secondary vCPU's entry, for PSCI CPU_ON.
pub fn secondary_entry() -> u64 {
    _secondary as *const () as usize as u64
}

/// Every exception: `kind` is the vector's number, `frame` the interrupted context (its
/// ELR_EL1 is where it goes on: a caught exception steps over the instruction). Returns
/// the frame to restore, its own.
extern "C" fn exception(kind: u64, frame: &mut Frame) -> u64 {
    let elr = frame.elr;
    match kind {
        CURRENT_SPX_IRQ => crate::gic::handle_irq(),
        CURRENT_SPX_SYNC if EXPECT_ABORT.load(Relaxed) => {
            LAST_ESR.store(mrs!("esr_el1"), Relaxed);
            LAST_FAR.store(mrs!("far_el1"), Relaxed);
            SYNC_COUNT.store(SYNC_COUNT.load(Relaxed) + 1, Relaxed);
            frame.elr = elr + 4;
        }
        CURRENT_SPX_SYNC => {
            let (esr, far) = (mrs!("esr_el1"), mrs!("far_el1"));
            println!("unexpected exception ESR={esr:#x} FAR={far:#x} ELR={elr:#x}");
            crate::tests::exit(crate::tests::CRASHED)
        }
        _ => {
            let (esr, far) = (mrs!("esr_el1"), mrs!("far_el1"));
            println!(
                "unexpected exception (vector {:#x}) ESR={esr:#x} FAR={far:#x} ELR={elr:#x}",
                kind * 0x80
            );
            crate::tests::exit(crate::tests::CRASHED)
        }
    }
    core::ptr::from_mut(frame) as u64
}

/// A synchronous exception taken (and stepped over) while expected.
#[derive(Clone, Copy, Debug)]
pub struct Caught {
    pub esr: u64,
    pub far: u64,
}

/// Run `f` with synchronous exceptions expected: each is recorded and the instruction
/// that took it skipped. Returns `f`'s result and the last exception, if one came.
pub fn catching<R>(f: impl FnOnce() -> R) -> (R, Option<Caught>) {
    let before = SYNC_COUNT.load(Relaxed);
    EXPECT_ABORT.store(true, Relaxed);
    // The accesses in `f` are assembly with memory effects: the compiler keeps them
    // between the flag's store and the one below, and the exception is synchronous.
    let r = f();
    EXPECT_ABORT.store(false, Relaxed);
    let caught = (SYNC_COUNT.load(Relaxed) != before).then(|| Caught {
        esr: LAST_ESR.load(Relaxed),
        far: LAST_FAR.load(Relaxed),
    });
    (r, caught)
}

/// ACTLR_EL1 (trapped by HCR_EL2.TACR).
pub fn actlr() -> u64 {
    mrs!("actlr_el1")
}

/// Write ACTLR_EL1 (trapped).
pub fn set_actlr(v: u64) {
    // SAFETY: ACTLR_EL1 is trapped (HCR_EL2.TACR): the hypervisor ignores the write.
    unsafe { asm!("msr actlr_el1, {}", "isb", in(reg) v, options(nostack, preserves_flags)) };
}

/// PMCR_EL0 (trapped by MDCR_EL2.TPM/TPMCR).
pub fn pmcr() -> u64 {
    mrs!("pmcr_el0")
}

/// A hypercall (`hvc #0`): function `f`, arguments `a1..a3`; returns x0.
pub fn hvc(f: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    cpu::hvc8([f, a1, a2, a3, 0, 0, 0, 0])[0]
}

/// A hypercall with all of `x0..x7` (`hvc #0`); returns `x0`.
pub fn hvc8(x: [u64; 8]) -> u64 {
    cpu::hvc8(x)[0]
}

/// A firmware call (`smc #0`, trapped to the hypervisor): function `f`, arguments
/// `a1..a3`; returns x0.
pub fn smc(f: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    cpu::smc8([f, a1, a2, a3, 0, 0, 0, 0])[0]
}
