//! Stopping the machine: semihosting SYS_EXIT (carries an exit status to QEMU), with
//! PSCI SYSTEM_OFF and a parked core as fallbacks when semihosting is not enabled.

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once an exit has been attempted, so a trap from the semihosting call (QEMU
/// without `-semihosting`) falls through to PSCI instead of looping.
static EXITING: AtomicBool = AtomicBool::new(false);

/// True while an exit is in progress.
pub fn exiting() -> bool {
    EXITING.load(Ordering::Relaxed)
}

/// Stop the system with `status` (0 = success). Never returns.
pub fn exit(status: u32) -> ! {
    super::disable_irqs();
    if !EXITING.swap(true, Ordering::Relaxed) {
        semihosting_exit(status);
    }
    psci_system_off()
}

fn semihosting_exit(status: u32) {
    // ADP_Stopped_ApplicationExit and the status, as the AArch64 SYS_EXIT block.
    let block: [u64; 2] = [0x20026, u64::from(status)];
    // SAFETY: `hlt #0xf000` is the semihosting trap; QEMU reads the two-word block and
    // exits. Without semihosting it raises an exception that `exception` turns into
    // another `exit` call, which then skips this path.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") 0x18u64, in("x1") block.as_ptr(), options(nostack));
    }
}

/// PSCI SYSTEM_OFF over SMC (QEMU emulates PSCI when it has no EL3 firmware), or park.
pub fn psci_system_off() -> ! {
    // SAFETY: SYSTEM_OFF does not return when PSCI is there; where it is not, SMC is
    // either undefined (caught: EXITING is set so we end up parked below) or a no-op.
    unsafe {
        core::arch::asm!("smc #0", in("x0") 0x8400_0008u64, options(nostack));
    }
    park()
}

/// Stop this core for good.
pub fn park() -> ! {
    super::disable_irqs();
    loop {
        super::wait_for_interrupt();
    }
}
