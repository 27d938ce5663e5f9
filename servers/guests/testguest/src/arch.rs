//! The CPU: the entry points (`_start` for vCPU 0, `_secondary` for a vCPU PSCI
//! starts), the exception vectors, the system registers the tests use, and hypercalls.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use gaon_vmm::psci;

/// Read a system register (not `pure`: each read happens, in program order).
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register this guest may read at EL1 changes no
        // memory; a trapped one is emulated by the hypervisor.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack, preserves_flags)) };
        v
    }};
}

/// Write a system register, then synchronize the context.
macro_rules! msr {
    ($reg:literal, $value:expr) => {{
        let v: u64 = $value;
        // SAFETY: only the registers of the timer, the GIC's CPU interface and ACTLR_EL1
        // (trapped) are written here: none affects memory the program uses.
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) v, options(nostack, preserves_flags)) };
    }};
}

/// The exception frame: x0..x18, x29, x30, ELR_EL1, SPSR_EL1, FPCR, FPSR (208 bytes with
/// padding), then q0..q31. Everything the interrupted code may hold that a Rust handler
/// may clobber (FP/SIMD too: Rust code may use it).
const FRAME: usize = 208 + 32 * 16;

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

/// CNTFRQ_EL0 as read at boot.
static FREQUENCY: AtomicU64 = AtomicU64::new(0);

global_asm!(
    // vCPU 0's entry, at the image's first address: EL1h, MMU and caches off, DAIF
    // masked, x0 = the device tree (not used).
    ".section .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "    msr daifset, #0xf",
    // FP/SIMD on at EL1 (CPACR_EL1.FPEN = 0b11) before any Rust code, which may use it.
    "    mov x1, #(3 << 20)",
    "    msr cpacr_el1, x1",
    "    isb",
    "    msr spsel, #1",
    "    adrp x1, __stack_top",
    "    add x1, x1, :lo12:__stack_top",
    "    mov sp, x1",
    "    adrp x1, testguest_vectors",
    "    add x1, x1, :lo12:testguest_vectors",
    "    msr vbar_el1, x1",
    "    isb",
    "    adrp x1, __bss_start",
    "    add x1, x1, :lo12:__bss_start",
    "    adrp x2, __bss_end",
    "    add x2, x2, :lo12:__bss_end",
    "1:  cmp x1, x2",
    "    b.hs 2f",
    "    str xzr, [x1], #8",
    "    b 1b",
    "2:  mov x29, xzr",
    "    mov x30, xzr",
    "    bl {main}",
    "3:  wfi",
    "    b 3b",
    "",
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
    "",
    // The vector table: 16 entries of 0x80 bytes (current EL with SP_EL0, with SP_ELx,
    // lower EL AArch64, lower EL AArch32; each sync, IRQ, FIQ, SError). Each saves x0 and
    // x1, puts its number in x0 and goes to the common path.
    ".section .text.vectors, \"ax\"",
    ".balign 2048",
    ".global testguest_vectors",
    "testguest_vectors:",
    ".irp kind, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
    ".balign 128",
    "    sub sp, sp, #{frame}",
    "    stp x0, x1, [sp]",
    "    mov x0, #\\kind",
    "    b testguest_exception",
    ".endr",
    // Save the frame, call `exception(kind, elr)`, which returns where to go on, restore
    // the frame and return there.
    "testguest_exception:",
    "    stp x2, x3, [sp, #16]",
    "    stp x4, x5, [sp, #32]",
    "    stp x6, x7, [sp, #48]",
    "    stp x8, x9, [sp, #64]",
    "    stp x10, x11, [sp, #80]",
    "    stp x12, x13, [sp, #96]",
    "    stp x14, x15, [sp, #112]",
    "    stp x16, x17, [sp, #128]",
    "    stp x18, x29, [sp, #144]",
    "    mrs x1, elr_el1",
    "    stp x30, x1, [sp, #160]",
    "    mrs x1, spsr_el1",
    "    mrs x2, fpcr",
    "    stp x1, x2, [sp, #176]",
    "    mrs x1, fpsr",
    "    str x1, [sp, #192]",
    "    stp q0, q1, [sp, #208]",
    "    stp q2, q3, [sp, #240]",
    "    stp q4, q5, [sp, #272]",
    "    stp q6, q7, [sp, #304]",
    "    stp q8, q9, [sp, #336]",
    "    stp q10, q11, [sp, #368]",
    "    stp q12, q13, [sp, #400]",
    "    stp q14, q15, [sp, #432]",
    "    stp q16, q17, [sp, #464]",
    "    stp q18, q19, [sp, #496]",
    "    stp q20, q21, [sp, #528]",
    "    stp q22, q23, [sp, #560]",
    "    stp q24, q25, [sp, #592]",
    "    stp q26, q27, [sp, #624]",
    "    stp q28, q29, [sp, #656]",
    "    stp q30, q31, [sp, #688]",
    "    ldr x1, [sp, #168]",
    "    mov x29, xzr",
    "    bl {handler}",
    "    str x0, [sp, #168]",
    "    ldp q0, q1, [sp, #208]",
    "    ldp q2, q3, [sp, #240]",
    "    ldp q4, q5, [sp, #272]",
    "    ldp q6, q7, [sp, #304]",
    "    ldp q8, q9, [sp, #336]",
    "    ldp q10, q11, [sp, #368]",
    "    ldp q12, q13, [sp, #400]",
    "    ldp q14, q15, [sp, #432]",
    "    ldp q16, q17, [sp, #464]",
    "    ldp q18, q19, [sp, #496]",
    "    ldp q20, q21, [sp, #528]",
    "    ldp q22, q23, [sp, #560]",
    "    ldp q24, q25, [sp, #592]",
    "    ldp q26, q27, [sp, #624]",
    "    ldp q28, q29, [sp, #656]",
    "    ldp q30, q31, [sp, #688]",
    "    ldp x1, x2, [sp, #176]",
    "    msr spsr_el1, x1",
    "    msr fpcr, x2",
    "    ldr x1, [sp, #192]",
    "    msr fpsr, x1",
    "    ldp x30, x1, [sp, #160]",
    "    msr elr_el1, x1",
    "    ldp x18, x29, [sp, #144]",
    "    ldp x16, x17, [sp, #128]",
    "    ldp x14, x15, [sp, #112]",
    "    ldp x12, x13, [sp, #96]",
    "    ldp x10, x11, [sp, #80]",
    "    ldp x8, x9, [sp, #64]",
    "    ldp x6, x7, [sp, #48]",
    "    ldp x4, x5, [sp, #32]",
    "    ldp x2, x3, [sp, #16]",
    "    ldp x0, x1, [sp]",
    "    add sp, sp, #{frame}",
    "    eret",
    ".text",
    main = sym crate::guest_main,
    handler = sym exception,
    context = sym SECONDARY_CONTEXT,
    frame = const FRAME,
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

/// Vector numbers (`kind`): the entry's offset in the table is `kind * 0x80`.
const CURRENT_SPX_SYNC: u64 = 4;
const CURRENT_SPX_IRQ: u64 = 5;

/// Every exception: `kind` is the vector's number, `elr` ELR_EL1; returns where to go on.
extern "C" fn exception(kind: u64, elr: u64) -> u64 {
    match kind {
        CURRENT_SPX_IRQ => {
            crate::gic::handle_irq();
            elr
        }
        CURRENT_SPX_SYNC if EXPECT_ABORT.load(Relaxed) => {
            LAST_ESR.store(mrs!("esr_el1"), Relaxed);
            LAST_FAR.store(mrs!("far_el1"), Relaxed);
            SYNC_COUNT.store(SYNC_COUNT.load(Relaxed) + 1, Relaxed);
            elr + 4
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

/// Read CNTFRQ_EL0 once (62.5 MHz if it reads 0, QEMU's).
pub fn init_counter() {
    let f = mrs!("cntfrq_el0") & 0xffff_ffff;
    FREQUENCY.store(if f == 0 { 62_500_000 } else { f }, Relaxed);
}

/// The counter's frequency (Hz).
pub fn counter_frequency() -> u64 {
    FREQUENCY.load(Relaxed)
}

/// Counter ticks in `us` microseconds.
pub fn ticks(us: u64) -> u64 {
    counter_frequency() * us / 1_000_000
}

/// The virtual counter (CNTVCT_EL0), read between barriers so it is neither early nor late.
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter changes nothing.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", "isb", out(reg) v, options(nostack, preserves_flags)) };
    v
}

/// Arm the virtual timer for counter value `deadline` (enabled, not masked).
pub fn timer_arm(deadline: u64) {
    msr!("cntv_cval_el0", deadline);
    msr!("cntv_ctl_el0", 1);
}

/// Stop the virtual timer (its interrupt is level-triggered: this lowers it).
pub fn timer_off() {
    msr!("cntv_ctl_el0", 0);
}

/// Unmask IRQs (PSTATE.I); a pending one is taken before this returns.
pub fn irqs_on() {
    // SAFETY: the IRQ vector saves and restores everything it touches.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack, preserves_flags)) };
}

/// Mask IRQs.
pub fn irqs_off() {
    // SAFETY: masking interrupts has no effect on memory.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack, preserves_flags)) };
}

/// Wait for an interrupt (returns at once if one is pending, masked or not).
pub fn wfi() {
    // SAFETY: WFI only waits.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}

/// ISR_EL1: bit 7 (I) says an IRQ (a virtual one, for a guest) is pending.
pub fn isr() -> u64 {
    mrs!("isr_el1")
}

/// True if the CPU has the GICv3 system register interface (ID_AA64PFR0_EL1.GIC).
pub fn has_gic_sysregs() -> bool {
    (mrs!("id_aa64pfr0_el1") >> 24) & 0xf != 0
}

/// GICv3: enable the system register CPU interface, unmask every priority and enable
/// group 1.
pub fn icc_init() {
    msr!("icc_sre_el1", 7);
    msr!("icc_pmr_el1", 0xff);
    msr!("icc_igrpen1_el1", 1);
}

/// GICv3: acknowledge (ICC_IAR1_EL1).
pub fn icc_ack() -> u64 {
    mrs!("icc_iar1_el1")
}

/// GICv3: end an interrupt (ICC_EOIR1_EL1, priority drop and deactivation).
pub fn icc_eoi(iar: u64) {
    msr!("icc_eoir1_el1", iar);
}

/// ACTLR_EL1 (trapped by HCR_EL2.TACR).
pub fn actlr() -> u64 {
    mrs!("actlr_el1")
}

/// Write ACTLR_EL1 (trapped).
pub fn set_actlr(v: u64) {
    msr!("actlr_el1", v);
}

/// PMCR_EL0 (trapped by MDCR_EL2.TPM/TPMCR).
pub fn pmcr() -> u64 {
    mrs!("pmcr_el0")
}

/// An SMC Calling Convention call by `$insn`: function `f`, arguments `a1..a3`, result
/// x0. SMCCC 1.1 keeps x4..x17, but a hypervisor under test is not trusted to.
macro_rules! smccc_call {
    ($(#[$doc:meta])* $name:ident, $insn:literal) => {
        $(#[$doc])*
        pub fn $name(f: u64, a1: u64, a2: u64, a3: u64) -> u64 {
            let r: u64;
            // SAFETY: the call's effects on this guest are PSCI's (another vCPU started
            // at an entry of ours, writing only its flag) or the device's; the registers
            // it may change are declared clobbered.
            unsafe {
                asm!(
                    $insn,
                    inlateout("x0") f => r,
                    inlateout("x1") a1 => _,
                    inlateout("x2") a2 => _,
                    inlateout("x3") a3 => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                    out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                    out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _,
                    options(nostack),
                );
            }
            r
        }
    };
}

smccc_call!(
    /// A hypercall (`hvc #0`).
    hvc,
    "hvc #0"
);

/// A hypercall with all of `x0..x7` (`hvc #0`); returns `x0`.
pub fn hvc8(x: [u64; 8]) -> u64 {
    let r: u64;
    // SAFETY: a paravirtual hypercall (gaon_abi::hypercall) changes nothing in this
    // guest but the registers, which are declared clobbered.
    unsafe {
        asm!(
            "hvc #0",
            inlateout("x0") x[0] => r,
            inlateout("x1") x[1] => _,
            inlateout("x2") x[2] => _,
            inlateout("x3") x[3] => _,
            inlateout("x4") x[4] => _,
            inlateout("x5") x[5] => _,
            inlateout("x6") x[6] => _,
            inlateout("x7") x[7] => _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    r
}
smccc_call!(
    /// A firmware call (`smc #0`, trapped to the hypervisor).
    smc,
    "smc #0"
);
