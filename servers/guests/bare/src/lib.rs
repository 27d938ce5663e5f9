//! The common ground of the bare-metal guests in `servers/guests` (the VMM's test guest
//! and the RTOS): programs at EL1 with the MMU off, loaded as ELF by the VMM
//! (`servers/vmm`), on the virtual board of `gaon_vmm::layout`.
//!
//! - `entry!` (bare metal only): `_start`, vCPU 0's entry point.
//! - [`dtb`]: the device tree the VMM passes in x0 (its properties, `chosen/bootargs`);
//!   hardware-free, tested on the host.
//! - `cpu` (bare metal only): the counter and the EL1 virtual timer, interrupt masking,
//!   WFI, hypercalls (`HVC #0` with `x0..x7`, results `x0..x3`).
//! - `gic` (bare metal only): the interrupt controller, GICv3 (the CPU interface by
//!   system registers) or GICv2 (the virtual CPU interface the VMM maps at GICC), the
//!   distributor and redistributor being the VMM's emulation.
//! - `mmio` (bare metal only): one named load or store instruction per access.
//! - `vectors!` (bare metal only): an exception vector table that saves the whole
//!   context as a `vectors::Frame` and restores the frame its handler returns (the
//!   same, or another task's).
#![cfg_attr(not(test), no_std)]

pub mod dtb;

#[cfg(target_os = "none")]
#[macro_use]
pub mod cpu;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
pub mod gic;
#[cfg(target_os = "none")]
pub mod mmio;
#[cfg(target_os = "none")]
pub mod vectors;

/// No heap (feature `no-heap`): the VMM library links `alloc` for its device tree;
/// nothing in a guest using this allocates, and an allocation would fail (a panic).
#[cfg(all(target_os = "none", feature = "no-heap"))]
struct NoHeap;

// SAFETY: an allocator that never hands out memory is sound: a null pointer is how
// `GlobalAlloc::alloc` says the allocation failed, and `dealloc` never gets a pointer.
#[cfg(all(target_os = "none", feature = "no-heap"))]
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[cfg(all(target_os = "none", feature = "no-heap"))]
#[global_allocator]
static HEAP: NoHeap = NoHeap;
