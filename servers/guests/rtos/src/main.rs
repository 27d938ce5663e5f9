//! The paravirtual RTOS guest (docs/rtos.md): a bare-metal AArch64 program at EL1 that
//! the VMM loads as an ELF guest. Fixed-priority preemptive tasks, periodic releases from
//! the EL1 virtual timer (one-shot, for the earliest release), a semaphore and a message
//! queue, idle by WFI; Gaon's hypercalls for its console, LL-boost, tracing and its
//! scheduling state. It measures how late a periodic task starts after each release
//! and whether it meets its deadlines, prints a summary (`rtos: periods=...`, the
//! lateness CDF) and ends the VM.
//!
//! The kernel's decisions and everything else without hardware are the library
//! (`lib.rs`, tested on the host); this is the guest around it. Built for
//! `aarch64-unknown-none` it is the guest (linked at 0x4008_0000 by `link.ld`); built
//! for the host it is a stub that says so.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[macro_use]
#[expect(unsafe_code, reason = "the test device's registers, for the exit status")]
mod hv;
#[cfg(target_os = "none")]
mod app;
#[cfg(target_os = "none")]
#[expect(unsafe_code, reason = "the system call's SVC")]
mod arch;
#[cfg(target_os = "none")]
#[expect(unsafe_code, reason = "the kernel's state behind IRQ masking (IrqCell)")]
mod rt;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-rtos is a bare-metal guest for the VMM; build it for aarch64-unknown-none");
    std::process::exit(2);
}

/// Where `_start` goes once the CPU is set up (stack, FP/SIMD, vectors, .bss zeroed),
/// with the device tree's address.
#[cfg(target_os = "none")]
extern "C" fn guest_main(dtb: u64) -> ! {
    app::boot(dtb)
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    gaon_guest_bare::cpu::irqs_off();
    println!("rtos: panic: {info}");
    hv::exit(hv::CRASHED)
}
