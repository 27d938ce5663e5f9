//! The VMM's test guest: a bare-metal AArch64 program at EL1 that exercises every kind of
//! guest exit of the hypervisor (HVC, SMC, MMIO loads and stores of every width, a load
//! and store pair the VMM decodes itself, trapped system registers, an external abort,
//! WFI, the virtual timer and injected interrupts on GICv2 or GICv3, PSCI CPU_ON) and
//! reports each test on the VMM's PL011 (`ok N - name` or `not ok N - name: why`), then
//! `testguest: N passed, M failed`, and ends the VM through the test device's `EXIT`
//! register with the number of failures (`servers/vmm/src/testdev.rs`, `docs/vmm.md`).
//!
//! Built for `aarch64-unknown-none` it is the guest (linked at 0x4008_0000 by
//! `link.ld`); built for the host it is a stub that says so.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[macro_use]
mod uart;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod dtb;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
use gaon_guest_bare::mmio;
#[cfg(target_os = "none")]
mod tests;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-testguest is a bare-metal guest for the VMM; build it for aarch64-unknown-none");
    std::process::exit(2);
}

/// Where `_start` goes once the CPU is set up (stack, FP/SIMD, vectors, .bss zeroed),
/// with the device tree's address.
#[cfg(target_os = "none")]
extern "C" fn guest_main(dtb: u64) -> ! {
    arch::init_counter();
    tests::DTB.store(dtb, core::sync::atomic::Ordering::Relaxed);
    if dtb::bootargs_contain(dtb, b"victim") {
        tests::victim();
    }
    println!("testguest: the VMM's test guest");
    let version = gic::init();
    if dtb::bootargs_contain(dtb, b"idle") {
        tests::idle();
    }
    println!(
        "testguest: GICv{}, counter {} Hz",
        version.number(),
        arch::counter_frequency()
    );
    let (passed, failed) = tests::run();
    println!("testguest: {passed} passed, {failed} failed");
    tests::exit(u64::from(failed))
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("testguest: panic: {info}");
    tests::exit(tests::CRASHED)
}
