//! Gaon: an L4-style capability microkernel for AArch64, running at EL2.
//!
//! The kernel only exists for `aarch64-unknown-none-softfloat` (no FP/SIMD in the
//! kernel, so exception entry never saves vector registers). On the host this crate
//! builds to a stub that says so, which keeps `cargo test --workspace` working.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod board;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod drivers;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod platform;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod trap;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-kernel runs on aarch64-unknown-none-softfloat only; use scripts/run to boot it in QEMU");
    std::process::exit(2);
}
