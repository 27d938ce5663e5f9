//! The tests, in order. Each prints `ok N - name` (`ok N - name # skip why` if it cannot
//! run here) or `not ok N - name: why`, and the next runs whatever happened; every wait
//! is bounded by the counter, so a broken hypervisor fails a test instead of hanging it
//! (but for a WFI that nothing ever wakes).
#![allow(
    clippy::result_large_err,
    reason = "a failure's message is formatted into a 200-byte buffer (no heap), returned once per test"
)]

use core::fmt::{self, Write as _};
use core::hint::spin_loop;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Relaxed};

use gaon_vmm::layout::{self, TESTDEV_IRQ, VTIMER_IRQ};
use gaon_vmm::psci::{self, id, ret};
use gaon_vmm::testdev::{self, reg};

use crate::arch::{self, Caught, SECONDARY_CONTEXT};
use crate::dtb;
use crate::gic::{IRQ_COUNT, LAST_INTID, RTC_COUNT, TESTDEV_COUNT, TESTDEV_HOLD, TIMER_AT, TIMER_COUNT};
use crate::mmio::Mmio;
use crate::uart;

// SAFETY: the test device's page is emulated by the VMM: no memory of the program's.
pub const TESTDEV: Mmio = unsafe { Mmio::new(layout::TESTDEV) };

/// The exit status of a guest stopped by an unexpected exception or a panic.
pub const CRASHED: u64 = 99;

/// How long (µs) an interrupt or a vCPU may take after it should have come.
const PATIENCE_US: u64 = 100_000;
/// How long (µs) a secondary vCPU may take to start, or to be reported off.
const CPU_PATIENCE_US: u64 = 1_000_000;

/// Where nothing is (no RAM, no device): a load there gets a synchronous external abort.
const NOTHING: u64 = 0x2000_0000;

/// ISR_EL1.I: an IRQ is pending.
const ISR_I: u64 = 1 << 7;

/// ESR_EL1 fields of a data abort.
const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
const DFSC_SYNC_EXTERNAL: u64 = 0x10;

/// AFFINITY_INFO's answer for a vCPU that is off.
const AFFINITY_OFF: i64 = 1;
/// The context id given to the secondary vCPU.
const CONTEXT: u64 = 0x5ec0;

/// How a test that did not fail ended.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Pass,
    /// It cannot run on this VM (the reason).
    Skip(&'static str),
}

/// Why a test failed, formatted into a fixed buffer (no heap; cut if too long).
#[derive(Debug)]
pub struct Why {
    buf: [u8; 200],
    len: usize,
}

impl Why {
    fn new(args: fmt::Arguments<'_>) -> Self {
        let mut w = Self { buf: [0; 200], len: 0 };
        // Writing to the buffer cannot fail (it cuts).
        let _ = w.write_fmt(args);
        w
    }
}

impl fmt::Write for Why {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut n = s.len().min(self.buf.len() - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(bad message)"))
    }
}

type Result<T = Outcome> = core::result::Result<T, Why>;

/// Fail the test with the message unless `cond`.
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(Why::new(format_args!($($why)+)));
        }
    };
}

/// Fail the test unless `got == want` (both `u64`), saying what was read.
macro_rules! check_eq {
    ($got:expr, $want:expr, $($what:tt)+) => {{
        let (got, want): (u64, u64) = ($got, $want);
        check!(got == want, "{}: got {got:#x}, want {want:#x}", format_args!($($what)+));
    }};
}

/// Fail if an instruction took a synchronous exception.
fn no_exception(caught: Option<Caught>, what: &str) -> Result<()> {
    match caught {
        Some(c) => Err(Why::new(format_args!(
            "{what} took a synchronous exception ESR={:#x} FAR={:#x}",
            c.esr, c.far
        ))),
        None => Ok(()),
    }
}

/// Spin until `cond` holds or `us` microseconds have passed; returns `cond` then.
pub fn wait_until(us: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = arch::counter() + arch::ticks(us);
    loop {
        if cond() {
            return true;
        }
        if arch::counter() > end {
            return cond();
        }
        spin_loop();
    }
}

/// Wait for another vCPU (bounded by [`CPU_PATIENCE_US`]), keeping the virtual timer
/// armed a little ahead and pushed on, never firing: a deadline the machine's clock
/// knows, so an emulator that runs its CPUs in turn (QEMU with `-icount`) gives the
/// others theirs instead of running this loop until its budget is gone.
fn wait_for_vcpu(mut cond: impl FnMut() -> bool) -> bool {
    let seen = wait_until(CPU_PATIENCE_US, || {
        arch::timer_arm(arch::counter() + arch::ticks(100));
        cond()
    });
    arch::timer_off();
    seen
}

/// Spin for `us` microseconds.
fn delay(us: u64) {
    let end = arch::counter() + arch::ticks(us);
    while arch::counter() < end {
        spin_loop();
    }
}

/// The device tree's address (x0 at entry).
pub static DTB: AtomicU64 = AtomicU64::new(0);

/// What the test VM's initrd starts with (`images/virt/testvm-initrd.txt`).
const INITRD_START: &[u8] = b"gaon test initrd\n";

/// The victim of the VMM-deletion test (`bootargs` has `victim`): it starts its second
/// vCPU spinning for good, then has the test device crash its VMM while that vCPU runs:
/// the VMM faults, the root server reports it and revokes the VMM's heap, and the
/// spinning vCPU is deleted where it runs. The rest of the system must not notice.
pub fn victim() -> ! {
    println!("victim: vCPU 1 spins, then this VM's VMM crashes");
    SECONDARY_CONTEXT.store(0, Relaxed);
    let r = arch::hvc(id::CPU_ON, 1, arch::secondary_entry(), arch::SPIN).cast_signed();
    let spinning = r == ret::SUCCESS && wait_for_vcpu(|| SECONDARY_CONTEXT.load(Acquire) == arch::SPIN);
    if !spinning {
        println!("victim: vCPU 1 did not start (CPU_ON returned {r})");
        exit(CRASHED);
    }
    TESTDEV.w64(reg::CRASH, 1);
    println!("victim: the VMM did not crash");
    exit(CRASHED)
}

/// A VM for the control interface's test (`bootargs` has `idle`; images/virt/vm.toml's
/// `ctlvm`, driven by `servers/vmctl`): once a millisecond it makes an HVC
/// (PSCI_VERSION), so its VMM's exit count shows whether it runs, and waits in WFI for
/// its timer in between.
pub fn idle() -> ! {
    println!("idle: an HVC a millisecond");
    loop {
        let _ = arch::hvc(id::PSCI_VERSION, 0, 0, 0);
        arch::irqs_off();
        arch::timer_arm(arch::counter() + arch::ticks(1000));
        arch::wfi();
        // The handler takes the timer's interrupt and switches the timer off.
        arch::irqs_on();
    }
}

/// End the VM with `status` (the test device's `EXIT`), and wait if it goes on anyway.
pub fn exit(status: u64) -> ! {
    TESTDEV.w64(reg::EXIT, status);
    loop {
        arch::irqs_off();
        arch::wfi();
    }
}

/// What the interrupt handler has seen, for messages.
struct Seen;

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} interrupts handled, the last INTID {}",
            IRQ_COUNT.load(Relaxed),
            LAST_INTID.load(Relaxed)
        )
    }
}

/// Run every test; returns how many passed (skipped ones included) and how many failed.
pub fn run() -> (u32, u32) {
    println!("1..{}", TESTS.len());
    let (mut passed, mut failed) = (0, 0);
    for (n, (name, test)) in (1u32..).zip(TESTS) {
        match test() {
            Ok(Outcome::Pass) => {
                passed += 1;
                println!("ok {n} - {name}");
            }
            Ok(Outcome::Skip(why)) => {
                passed += 1;
                println!("ok {n} - {name} # skip {why}");
            }
            Err(why) => {
                failed += 1;
                println!("not ok {n} - {name}: {why}");
                settle();
            }
        }
    }
    (passed, failed)
}

/// After a failure, leave nothing for the next test: the timer stopped, the test
/// device's line low, whatever is still pending taken, expected exceptions not.
fn settle() {
    arch::timer_off();
    TESTDEV.w32(reg::IRQ, 0);
    arch::irqs_on();
    delay(1000);
    arch::irqs_off();
    arch::timer_off();
}

type Test = (&'static str, fn() -> Result);

const TESTS: [Test; 19] = [
    ("hvc", hvc),
    ("smc", smc),
    ("mmio widths", mmio_widths),
    ("sign extension", sign_extension),
    ("zero register", zero_register),
    ("undecodable access", undecodable_access),
    ("wfi with pending interrupt", wfi_pending),
    ("wfi without pending interrupt", wfi_idle),
    ("virtual timer while running", timer_running),
    ("virtual timer while descheduled", timer_descheduled),
    ("injected SPI", injected_spi),
    ("level-triggered SPI", level_spi),
    ("sysreg trap", sysreg_trap),
    ("external abort", external_abort),
    ("cpu_on", cpu_on),
    ("uart input", uart_input),
    ("initrd", initrd),
    ("pass-through device", passthrough),
    ("paravirtual hypercalls", paravirtual),
];

/// What the test guest writes with `CONSOLE_WRITE` (`scripts/test` looks for it).
const HYPERCALL_LINE: &[u8] = b"hypercall console: written by CONSOLE_WRITE\n";

/// Test 19: Gaon's paravirtual hypercalls (docs/hypercalls.md): the version, a console
/// write, a length over 48 refused, and functions nobody serves in this system.
fn paravirtual() -> Result {
    use gaon_abi::hypercall::{self, Error, Hypercall};
    check_eq!(
        arch::hvc8(Hypercall::Version.encode()),
        hypercall::VERSION_1_0,
        "VERSION"
    );
    check_eq!(
        arch::hvc8(Hypercall::console_write(HYPERCALL_LINE).encode()),
        0,
        "CONSOLE_WRITE"
    );
    let mut long = Hypercall::console_write(b"x").encode();
    long[1] = hypercall::CONSOLE_MAX as u64 + 1;
    check_eq!(
        arch::hvc8(long),
        Error::InvalidParameters.x0(),
        "CONSOLE_WRITE of 49 bytes"
    );
    check_eq!(
        arch::hvc8(Hypercall::LlBoostEnter.encode()),
        Error::NotSupported.x0(),
        "LL_BOOST_ENTER without a policy server"
    );
    check_eq!(
        arch::hvc8([hypercall::BASE | 0xff, 0, 0, 0, 0, 0, 0, 0]),
        Error::NotSupported.x0(),
        "function 0xc60000ff"
    );
    Ok(Outcome::Pass)
}

/// Test 1: PSCI by HVC: the version, a feature, an unknown function.
fn hvc() -> Result {
    check_eq!(
        arch::hvc(id::PSCI_VERSION, 0, 0, 0),
        psci::VERSION.cast_unsigned(),
        "PSCI_VERSION"
    );
    check_eq!(
        arch::hvc(id::PSCI_FEATURES, id::CPU_ON, 0, 0),
        0,
        "PSCI_FEATURES(CPU_ON)"
    );
    check_eq!(
        arch::hvc(0x8400_00ff, 0, 0, 0),
        ret::NOT_SUPPORTED.cast_unsigned(),
        "function 0x840000ff"
    );
    Ok(Outcome::Pass)
}

/// Test 2: PSCI by SMC (trapped).
fn smc() -> Result {
    check_eq!(
        arch::smc(id::PSCI_VERSION, 0, 0, 0),
        psci::VERSION.cast_unsigned(),
        "PSCI_VERSION by SMC"
    );
    Ok(Outcome::Pass)
}

/// Test 3: Stores and loads of every width on the scratch bytes, little endian.
fn mmio_widths() -> Result {
    let d = TESTDEV;
    d.w64(0x00, 0x0807_0605_0403_0201);
    for i in 0..8 {
        check_eq!(d.r8(i), i + 1, "ldrb at {i}");
    }
    for i in (0..8).step_by(2) {
        check_eq!(d.r16(i), (i + 2) << 8 | (i + 1), "ldrh at {i}");
    }
    check_eq!(d.r32(0), 0x0403_0201, "ldr w at 0");
    check_eq!(d.r32(4), 0x0807_0605, "ldr w at 4");
    check_eq!(d.r64(0), 0x0807_0605_0403_0201, "ldr x at 0");
    // Narrow stores into the middle store only their bytes.
    d.w8(0x03, 0xffff_ff5a);
    d.w16(0x04, 0x1234_abcd);
    check_eq!(d.r64(0), 0x0807_abcd_5a03_0201, "ldr x after strb at 3 and strh at 4");

    for i in 0..8 {
        d.w8(0x10 + i, 0xa0 + i);
    }
    check_eq!(d.r64(0x10), 0xa7a6_a5a4_a3a2_a1a0, "ldr x after eight strb");
    d.w16(0x18, 0xb1b0);
    d.w16(0x1a, 0xb3b2);
    d.w16(0x1c, 0xb5b4);
    d.w16(0x1e, 0xb7b6);
    check_eq!(d.r64(0x18), 0xb7b6_b5b4_b3b2_b1b0, "ldr x after four strh");
    d.w32(0x20, 0xc3c2_c1c0);
    d.w32(0x24, 0xc7c6_c5c4);
    check_eq!(d.r64(0x20), 0xc7c6_c5c4_c3c2_c1c0, "ldr x after two str w");
    check_eq!(d.r16(0x22), 0xc3c2, "ldrh at 0x22");
    check_eq!(d.r8(0x27), 0xc7, "ldrb at 0x27");

    check_eq!(d.r32(reg::ID), testdev::ID, "ldr w of ID");
    check_eq!(d.r64(reg::ID), testdev::ID, "ldr x of ID");
    Ok(Outcome::Pass)
}

/// Test 4: Sign-extending loads into X and W registers (a W register's upper half is 0).
fn sign_extension() -> Result {
    let d = TESTDEV;
    d.w8(0x30, 0x80);
    check_eq!(d.rs8_x(0x30), 0xffff_ffff_ffff_ff80, "ldrsb x of 0x80");
    check_eq!(d.rs8_w(0x30), 0xffff_ff80, "ldrsb w of 0x80");
    check_eq!(d.r8(0x30), 0x80, "ldrb w of 0x80");
    d.w16(0x32, 0x8000);
    check_eq!(d.rs16_x(0x32), 0xffff_ffff_ffff_8000, "ldrsh x of 0x8000");
    check_eq!(d.rs16_w(0x32), 0xffff_8000, "ldrsh w of 0x8000");
    check_eq!(d.r16(0x32), 0x8000, "ldrh w of 0x8000");
    d.w32(0x34, 0x8000_0000);
    check_eq!(d.rs32_x(0x34), 0xffff_ffff_8000_0000, "ldrsw x of 0x80000000");
    check_eq!(d.r32(0x34), 0x8000_0000, "ldr w of 0x80000000");
    d.w8(0x38, 0x7f);
    check_eq!(d.rs8_x(0x38), 0x7f, "ldrsb x of 0x7f");
    Ok(Outcome::Pass)
}

/// Test 5: Stores of the zero register.
fn zero_register() -> Result {
    let d = TESTDEV;
    d.w64(0x40, u64::MAX);
    d.zero64(0x40);
    check_eq!(d.r64(0x40), 0, "ldr x after str xzr");
    d.w64(0x48, u64::MAX);
    d.zero32(0x48);
    check_eq!(d.r64(0x48), 0xffff_ffff_0000_0000, "ldr x after str wzr");
    d.w64(0x50, u64::MAX);
    d.zero8(0x50);
    check_eq!(d.r64(0x50), 0xffff_ffff_ffff_ff00, "ldr x after strb wzr");
    Ok(Outcome::Pass)
}

/// Test 6: A load pair and a store pair (no valid syndrome: the VMM decodes them).
fn undecodable_access() -> Result {
    const A: u64 = 0x1122_3344_5566_7788;
    const B: u64 = 0x99aa_bbcc_ddee_ff00;
    const C: u64 = 0x0123_4567_89ab_cdef;
    const D: u64 = 0xfedc_ba98_7654_3210;
    let d = TESTDEV;
    d.w64(0x60, A);
    d.w64(0x68, B);
    let ((a, b), caught) = arch::catching(|| d.ldp(0x60));
    no_exception(caught, "ldp x2, x3")?;
    check_eq!(a, A, "ldp x2");
    check_eq!(b, B, "ldp x3");
    let ((), caught) = arch::catching(|| d.stp(0x70, C, D));
    no_exception(caught, "stp x4, x5")?;
    check_eq!(d.r64(0x70), C, "ldr x after stp x4");
    check_eq!(d.r64(0x78), D, "ldr x after stp x5");
    Ok(Outcome::Pass)
}

/// Test 7: WFI with an interrupt pending (masked at the CPU) returns; unmasked, it is taken.
fn wfi_pending() -> Result {
    arch::irqs_off();
    let before = TESTDEV_COUNT.load(Relaxed);
    TESTDEV.w32(reg::IRQ, 1);
    arch::wfi();
    arch::irqs_on();
    let seen = wait_until(PATIENCE_US, || TESTDEV_COUNT.load(Relaxed) != before);
    arch::irqs_off();
    check!(
        seen,
        "WFI returned, but INTID {TESTDEV_IRQ} was not taken once unmasked ({})",
        Seen
    );
    Ok(Outcome::Pass)
}

/// Test 8: WFI with nothing pending waits for the virtual timer, 1 ms ahead.
fn wfi_idle() -> Result {
    arch::irqs_off();
    let before = TIMER_COUNT.load(Relaxed);
    let start = arch::counter();
    let armed = start + arch::ticks(1000);
    let deadline = start + arch::ticks(PATIENCE_US);
    arch::timer_arm(armed);
    let mut wakes = 0u64;
    while TIMER_COUNT.load(Relaxed) == before && arch::counter() < deadline {
        // Masked while it waits, so an interrupt between the test and the WFI is not
        // lost: WFI returns for a pending one, which is taken right after.
        arch::wfi();
        wakes += 1;
        arch::irqs_on();
        arch::irqs_off();
    }
    arch::timer_off();
    check!(
        TIMER_COUNT.load(Relaxed) != before,
        "no INTID {VTIMER_IRQ} within {} ms of arming the timer ({wakes} WFIs returned; {})",
        PATIENCE_US / 1000,
        Seen
    );
    let at = TIMER_AT.load(Relaxed);
    check!(
        at >= armed,
        "the timer's interrupt was taken at {at:#x}, before its deadline {armed:#x}"
    );
    Ok(Outcome::Pass)
}

/// Test 9: The virtual timer fires, 200 µs ahead, into a vCPU that spins.
fn timer_running() -> Result {
    arch::irqs_off();
    let before = TIMER_COUNT.load(Relaxed);
    let armed = arch::counter() + arch::ticks(200);
    arch::timer_arm(armed);
    arch::irqs_on();
    let seen = wait_until(PATIENCE_US, || TIMER_COUNT.load(Relaxed) != before);
    arch::irqs_off();
    arch::timer_off();
    check!(
        seen,
        "no INTID {VTIMER_IRQ} within {} ms of arming the timer ({})",
        PATIENCE_US / 1000,
        Seen
    );
    let at = TIMER_AT.load(Relaxed);
    check!(
        at >= armed,
        "the timer's interrupt was taken at {at:#x}, before its deadline {armed:#x}"
    );
    Ok(Outcome::Pass)
}

/// Test 10: The virtual timer's deadline (500 µs ahead) passes while the VMM keeps the vCPU
/// out (3 ms): the interrupt is pending when it comes back.
fn timer_descheduled() -> Result {
    arch::irqs_off();
    let before = TIMER_COUNT.load(Relaxed);
    let armed = arch::counter() + arch::ticks(500);
    arch::timer_arm(armed);
    TESTDEV.w64(reg::DELAY, arch::ticks(3000));
    let back = arch::counter();
    check!(
        back >= armed,
        "the DELAY store returned at {back:#x}, before the timer's deadline {armed:#x}"
    );
    let pending = wait_until(PATIENCE_US, || arch::isr() & ISR_I != 0);
    check!(
        pending,
        "ISR_EL1.I stays clear after the timer's deadline (ISR_EL1 = {:#x})",
        arch::isr()
    );
    arch::irqs_on();
    let seen = wait_until(PATIENCE_US, || TIMER_COUNT.load(Relaxed) != before);
    arch::irqs_off();
    check!(
        seen,
        "an IRQ was pending, but INTID {VTIMER_IRQ} was not taken once unmasked ({})",
        Seen
    );
    Ok(Outcome::Pass)
}

/// Test 11: The test device's line raised with IRQs unmasked: its SPI is taken exactly once.
fn injected_spi() -> Result {
    arch::irqs_off();
    let (before, all_before) = (TESTDEV_COUNT.load(Relaxed), IRQ_COUNT.load(Relaxed));
    arch::irqs_on();
    TESTDEV.w32(reg::IRQ, 1);
    let seen = wait_until(PATIENCE_US, || TESTDEV_COUNT.load(Relaxed) != before);
    // A second delivery would come now.
    delay(1000);
    arch::irqs_off();
    check!(
        seen,
        "INTID {TESTDEV_IRQ} not taken within {} ms of raising the line ({})",
        PATIENCE_US / 1000,
        Seen
    );
    let (n, all) = (
        TESTDEV_COUNT.load(Relaxed) - before,
        IRQ_COUNT.load(Relaxed) - all_before,
    );
    check!(
        n == 1 && all == 1,
        "{all} interrupts taken, {n} of them INTID {TESTDEV_IRQ}; want exactly one ({})",
        Seen
    );
    Ok(Outcome::Pass)
}

/// Test 12: The test device's line is level-triggered: the handler leaves it up twice,
/// so the end of the interrupt finds it up and the SPI comes again, then lowers it; the
/// SPI is taken exactly three times (the VMM hears each end: `Exit::Eoi`).
fn level_spi() -> Result {
    arch::irqs_off();
    let (before, all_before) = (TESTDEV_COUNT.load(Relaxed), IRQ_COUNT.load(Relaxed));
    TESTDEV_HOLD.store(2, Relaxed);
    TESTDEV.w32(reg::IRQ, 1);
    arch::irqs_on();
    let seen = wait_until(PATIENCE_US, || TESTDEV_COUNT.load(Relaxed) - before >= 3);
    // A fourth delivery would come now.
    delay(1000);
    arch::irqs_off();
    TESTDEV_HOLD.store(0, Relaxed);
    let (n, all) = (
        TESTDEV_COUNT.load(Relaxed) - before,
        IRQ_COUNT.load(Relaxed) - all_before,
    );
    check!(
        seen && n == 3 && all == 3,
        "{all} interrupts taken, {n} of them INTID {TESTDEV_IRQ}; want three: the line stayed up at two ends ({})",
        Seen
    );
    Ok(Outcome::Pass)
}

/// Test 13: Trapped system registers: ACTLR_EL1 (read as zero, writes ignored) and the PMU's
/// PMCR_EL0 (read as zero).
fn sysreg_trap() -> Result {
    let (actlr, caught) = arch::catching(arch::actlr);
    no_exception(caught, "mrs actlr_el1")?;
    check_eq!(actlr, 0, "mrs actlr_el1");
    let ((), caught) = arch::catching(|| arch::set_actlr(actlr));
    no_exception(caught, "msr actlr_el1")?;
    let (actlr, caught) = arch::catching(arch::actlr);
    no_exception(caught, "mrs actlr_el1 after msr")?;
    check_eq!(actlr, 0, "mrs actlr_el1 after msr");
    let (pmcr, caught) = arch::catching(arch::pmcr);
    no_exception(caught, "mrs pmcr_el0")?;
    check_eq!(pmcr, 0, "mrs pmcr_el0");
    Ok(Outcome::Pass)
}

/// Test 14: A load from where nothing is: a synchronous external abort at the address.
fn external_abort() -> Result {
    // SAFETY: nothing is at NOTHING (the VMM answers with an abort); no memory of the
    // program's.
    let nothing = unsafe { Mmio::new(NOTHING) };
    let (v, caught) = arch::catching(|| nothing.r64(0));
    let Some(c) = caught else {
        return Err(Why::new(format_args!(
            "a load from {NOTHING:#x} returned {v:#x}, without an abort"
        )));
    };
    let (ec, dfsc) = ((c.esr >> 26) & 0x3f, c.esr & 0x3f);
    check!(
        ec == EC_DATA_ABORT_SAME_EL,
        "ESR={:#x}: EC {ec:#x}, want {EC_DATA_ABORT_SAME_EL:#x} (a data abort from EL1)",
        c.esr
    );
    check!(
        dfsc == DFSC_SYNC_EXTERNAL,
        "ESR={:#x}: DFSC {dfsc:#x}, want {DFSC_SYNC_EXTERNAL:#x} (a synchronous external abort)",
        c.esr
    );
    check!(c.esr & (1 << 6) == 0, "ESR={:#x}: WnR set for a load", c.esr);
    check_eq!(c.far, NOTHING, "FAR_EL1");
    Ok(Outcome::Pass)
}

/// Test 15: PSCI CPU_ON of vCPU 1: it runs (writes its context id) and turns itself off.
fn cpu_on() -> Result {
    let affinity = || arch::hvc(id::AFFINITY_INFO, 1, 0, 0).cast_signed();
    let state = affinity();
    if state == ret::INVALID_PARAMETERS {
        return Ok(Outcome::Skip("one vCPU"));
    }
    check!(
        state == AFFINITY_OFF,
        "AFFINITY_INFO(1) is {state} before CPU_ON, want {AFFINITY_OFF} (off)"
    );
    SECONDARY_CONTEXT.store(0, Relaxed);
    let r = arch::hvc(id::CPU_ON, 1, arch::secondary_entry(), CONTEXT).cast_signed();
    check!(r == ret::SUCCESS, "CPU_ON(1) returned {r}, want {}", ret::SUCCESS);
    let ran = wait_for_vcpu(|| SECONDARY_CONTEXT.load(Acquire) == CONTEXT);
    check!(
        ran,
        "vCPU 1 did not write its context id within {} ms (found {:#x}, want {CONTEXT:#x})",
        CPU_PATIENCE_US / 1000,
        SECONDARY_CONTEXT.load(Acquire)
    );
    let off = wait_for_vcpu(|| {
        delay(100);
        affinity() == AFFINITY_OFF
    });
    check!(
        off,
        "AFFINITY_INFO(1) is {} {} ms after its CPU_OFF, want {AFFINITY_OFF} (off)",
        affinity(),
        CPU_PATIENCE_US / 1000
    );
    Ok(Outcome::Pass)
}

/// Test 16: Input typed on the console reaches the UART (the VMM has the console's
/// focus: `focus = true`): with receive interrupts on, a line comes in, and is printed
/// as `uart input: "..."` (scripts/test types it and checks). Skipped if nothing is
/// typed.
fn uart_input() -> Result {
    arch::irqs_off();
    uart::receive(true);
    arch::irqs_on();
    let line = || {
        let (b, n) = uart::received();
        b[..n].iter().any(|&c| c == b'\r' || c == b'\n')
    };
    let ended = wait_until(PATIENCE_US, line);
    arch::irqs_off();
    uart::receive(false);
    let (bytes, n) = uart::received();
    if n == 0 {
        return Ok(Outcome::Skip("nothing typed"));
    }
    let text = core::str::from_utf8(&bytes[..n]).unwrap_or("(not UTF-8)");
    check!(ended, "{n} bytes received, no end of line: {text:?}");
    println!("uart input: \"{}\"", text.trim_end());
    Ok(Outcome::Pass)
}

/// Test 17: The initrd (`initrd` in the VM's description) is where the device tree's
/// `chosen` says, whole: it starts with [`INITRD_START`], inside RAM, below the device
/// tree. Skipped without one.
fn initrd() -> Result {
    let dtb = DTB.load(Relaxed);
    let (Some(start), Some(end)) = (
        dtb::u64_property(dtb, "linux,initrd-start"),
        dtb::u64_property(dtb, "linux,initrd-end"),
    ) else {
        return Ok(Outcome::Skip("no initrd"));
    };
    check!(
        start.is_multiple_of(0x1000) && start < end && end <= dtb,
        "initrd [{start:#x}, {end:#x}): not page-aligned below the device tree at {dtb:#x}"
    );
    let len = INITRD_START.len() as u64;
    check!(end - start >= len, "initrd [{start:#x}, {end:#x}) is too short");
    for (i, &want) in INITRD_START.iter().enumerate() {
        // SAFETY: guest RAM the VMM loaded the initrd into, inside [start, end).
        let got = unsafe { core::ptr::read_volatile((start + i as u64) as *const u8) };
        check!(got == want, "initrd byte {i} is {got:#x}, want {want:#x}");
    }
    println!("initrd: {} bytes at {start:#x}", end - start);
    Ok(Outcome::Pass)
}

/// The pass-through device of the test VM (`images/virt/vm.toml`): QEMU virt's PL031
/// real-time clock, its page mapped at its physical address and its line (SPI 2)
/// forwarded.
const RTC_BASE: u64 = 0x0901_0000;
pub const RTC_IRQ: u32 = 34;
// SAFETY: the RTC's page, mapped as device memory by the VMM when the VM has it (the
// test runs only then); no memory of the program's.
const RTC: Mmio = unsafe { Mmio::new(RTC_BASE) };
/// PL031 registers: data (seconds), match, interrupt mask, clear; PeriphID0/1.
mod rtc {
    pub const DR: u64 = 0x000;
    pub const MR: u64 = 0x004;
    pub const IMSC: u64 = 0x010;
    pub const RIS: u64 = 0x014;
    pub const ICR: u64 = 0x01c;
    pub const PERIPH_ID0: u64 = 0xfe0;
    pub const PERIPH_ID1: u64 = 0xfe4;
}

/// The RTC interrupt's work: clear it (the line goes down).
pub fn rtc_clear() {
    RTC.w32(rtc::ICR, 1);
}

/// Test 18: A pass-through device (bootargs `passthrough`): the real PL031 answers
/// loads with no exit (its ID registers, its count of seconds), and its interrupt,
/// raised by a match value equal to the count, is taken, cleared by the handler, and taken
/// again the second time (the VMM acknowledged the physical line at the end of the
/// first). Skipped without it.
fn passthrough() -> Result {
    if !dtb::bootargs_contain(DTB.load(Relaxed), b"passthrough") {
        return Ok(Outcome::Skip("no pass-through device"));
    }
    let (id0, id1) = (RTC.r32(rtc::PERIPH_ID0), RTC.r32(rtc::PERIPH_ID1));
    check!(
        id0 == 0x31 && id1 == 0x10,
        "PL031 PeriphID0/1 read {id0:#x}/{id1:#x}, want 0x31/0x10"
    );
    let seconds = RTC.r32(rtc::DR);
    check!(seconds > 0, "the RTC's count of seconds reads 0");
    for round in 1..=2u64 {
        arch::irqs_off();
        let before = RTC_COUNT.load(Relaxed);
        RTC.w32(rtc::IMSC, 1);
        // A match value equal to the count raises the interrupt at once (QEMU's PL031);
        // if the count moved on between the read and the write, once more.
        for _ in 0..3 {
            RTC.w32(rtc::MR, RTC.r32(rtc::DR));
            if RTC.r32(rtc::RIS) & 1 != 0 {
                break;
            }
        }
        arch::irqs_on();
        // The line reaches the VMM through CPU 0 (where user lines go): under -icount
        // QEMU runs the CPUs in turn, and that takes up to a few hundred milliseconds
        // of virtual time (about 1 ms without it).
        let seen = wait_until(CPU_PATIENCE_US, || RTC_COUNT.load(Relaxed) != before);
        delay(1000);
        arch::irqs_off();
        RTC.w32(rtc::IMSC, 0);
        let n = RTC_COUNT.load(Relaxed) - before;
        check!(
            seen && n == 1,
            "round {round}: the RTC's interrupt (INTID {RTC_IRQ}) taken {n} times, want once ({})",
            Seen
        );
    }
    println!("pass-through: PL031 at {RTC_BASE:#x}, {seconds} s, its interrupt taken twice");
    Ok(Outcome::Pass)
}
