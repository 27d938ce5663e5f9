//! What EL3 firmware would do before entering a hypervisor, for machines where QEMU
//! starts us at EL3 (`secure=on`): route every interrupt to the non-secure world.
//! Runs with the MMU off, before `.bss` is cleared, so it touches no statics.

use super::{isb, write_sysreg};
use crate::board::{self, GicV2Frames, GicV3Frames};
use crate::drivers::IrqController;

fn write32(addr: usize, value: u32) {
    // SAFETY: `addr` is a GIC register from the board description; with the MMU off all
    // accesses are Device-nGnRnE, and nothing else runs yet.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
}

fn read32(addr: usize) -> u32 {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Called from `start.S` at EL3 with a stack but no `.bss`: the interrupt controller's
/// part (a GIC's interrupt groups; nothing for other controllers).
#[unsafe(no_mangle)]
extern "C" fn el3_prepare() {
    board::IrqDriver::el3_prepare(&board::IRQ_CONFIG);
}

/// A GICv3 at EL3: system-register access at every EL, affinity routing, and every
/// SGI, PPI and SPI in non-secure group 1 (CPU 0's redistributor).
pub fn gicv3_group1(f: &GicV3Frames) {
    // SAFETY: ICC_SRE_EL3 = SRE | DFB | DIB | Enable: system-register access at every EL.
    unsafe { write_sysreg!(icc_sre_el3, 0xf) };
    isb();
    let lines = (read32(f.distributor + 4) & 0x1f) as usize + 1;
    for n in 1..lines {
        write32(f.distributor + 0x80 + 4 * n, !0); // SPIs: non-secure group 1
    }
    write32(f.distributor, (1 << 4) | (1 << 5)); // ARE_S | ARE_NS
    let rd = f.redistributor; // CPU 0's frame
    write32(rd + 0x14, read32(rd + 0x14) & !(1 << 1)); // GICR_WAKER.ProcessorSleep = 0
    while read32(rd + 0x14) & (1 << 2) != 0 {}
    write32(rd + 0x1_0080, !0); // SGIs/PPIs: non-secure group 1
}

/// A GICv2 at EL3: every interrupt in group 1 (non-secure), both groups enabled.
pub fn gicv2_group1(f: &GicV2Frames) {
    let lines = (read32(f.distributor + 4) & 0x1f) as usize + 1;
    for n in 0..lines {
        write32(f.distributor + 0x80 + 4 * n, !0); // everything group 1 (non-secure)
    }
    write32(f.distributor, 0b11); // enable both groups (secure view)
    write32(f.cpu_interface, 0b11); // GICC_CTLR secure view: both groups
    write32(f.cpu_interface + 4, 0xff); // GICC_PMR
}
