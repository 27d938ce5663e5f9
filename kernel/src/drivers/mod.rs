//! Device drivers the kernel itself needs: the console UART and the interrupt
//! controller. Each board picks its drivers in `platforms/<board>/board.toml`.

pub mod bcm2836;
pub mod gic;
pub mod uart;

/// Read a 32-bit MMIO register.
///
/// # Safety
/// `addr` must be a device register mapped as device memory whose read has no effect
/// the caller has not accounted for.
unsafe fn read32(addr: usize) -> u32 {
    // SAFETY: the caller guarantees `addr` is a mapped device register.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Write a 32-bit MMIO register.
///
/// # Safety
/// `addr` must be a device register mapped as device memory, and the write must be one
/// the device expects.
unsafe fn write32(addr: usize, value: u32) {
    // SAFETY: the caller guarantees `addr` is a mapped device register.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}
