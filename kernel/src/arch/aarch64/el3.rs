//! What EL3 firmware would do before entering a hypervisor, for machines where QEMU
//! starts us at EL3 (`secure=on`): route every interrupt to the non-secure world. CPU 0
//! does the machine's part and its own; each secondary does its own when CPU 0 releases
//! it from the holding pen. Runs with the MMU off (on CPU 0 before `.bss` is cleared),
//! so it touches no statics.

use super::{isb, write_sysreg};
use crate::board::{self, GicV2Frames, GicV3Frames};
use crate::drivers::IrqController;

fn write32(addr: usize, value: u32) {
    // SAFETY: `addr` is a GIC register from the board description; with the MMU off all
    // accesses are Device-nGnRnE. Only CPU 0 writes the machine's registers, before it
    // releases any other CPU; a secondary writes only its own banked ones.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
}

fn read32(addr: usize) -> u32 {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// Called from `start.S` at EL3 on CPU 0 with a stack but no `.bss`: the interrupt
/// controller's part (a GIC's interrupt groups; nothing for other controllers), for the
/// whole machine and for CPU 0.
#[unsafe(no_mangle)]
extern "C" fn el3_prepare() {
    board::IrqDriver::el3_prepare(&board::IRQ_CONFIG);
}

/// Called from `start.S` at EL3 on secondary CPU `cpu` once CPU 0 has released it from
/// the holding pen, on its own stack with the MMU off: that CPU's own (banked) part of
/// the interrupt controller. The distributor is CPU 0's business and is not touched.
#[unsafe(no_mangle)]
extern "C" fn el3_prepare_secondary(cpu: usize) {
    board::IrqDriver::el3_prepare_cpu(&board::IRQ_CONFIG, cpu);
}

/// A GICv3 at EL3, the machine's part (CPU 0): every SPI in non-secure group 1, and
/// affinity routing.
pub fn gicv3_global(f: &GicV3Frames) {
    let lines = (read32(f.distributor + 4) & 0x1f) as usize + 1;
    for n in 1..lines {
        write32(f.distributor + 0x80 + 4 * n, !0); // SPIs: non-secure group 1
    }
    write32(f.distributor, (1 << 4) | (1 << 5)); // ARE_S | ARE_NS
}

/// A GICv3 at EL3, CPU `cpu`'s part (run on that CPU): system-register access at every
/// EL, its redistributor awake, its SGIs and PPIs in non-secure group 1.
pub fn gicv3_cpu(f: &GicV3Frames, cpu: usize) {
    // SAFETY: ICC_SRE_EL3 = SRE | DFB | DIB | Enable: system-register access at every EL.
    unsafe { write_sysreg!(icc_sre_el3, 0xf) };
    isb();
    let rd = f.redistributor + cpu * GICR_STRIDE; // this CPU's RD_base and SGI_base frames
    write32(rd + 0x14, read32(rd + 0x14) & !(1 << 1)); // GICR_WAKER.ProcessorSleep = 0
    while read32(rd + 0x14) & (1 << 2) != 0 {}
    write32(rd + 0x1_0080, !0); // SGIs/PPIs: non-secure group 1
}

/// Bytes from one CPU's GICv3 redistributor to the next (RD_base and SGI_base, GICv3
/// without VLPIs).
const GICR_STRIDE: usize = 0x2_0000;

/// A GICv2 at EL3, the machine's part (CPU 0): every shared interrupt in group 1
/// (non-secure), both groups enabled in the distributor.
pub fn gicv2_global(f: &GicV2Frames) {
    let lines = (read32(f.distributor + 4) & 0x1f) as usize + 1;
    for n in 1..lines {
        write32(f.distributor + 0x80 + 4 * n, !0); // everything group 1 (non-secure)
    }
    write32(f.distributor, 0b11); // enable both groups (secure view)
}

/// A GICv2 at EL3, the calling CPU's banked part: its SGIs and PPIs in group 1, its CPU
/// interface with both groups enabled and no priority masked.
pub fn gicv2_cpu(f: &GicV2Frames) {
    write32(f.distributor + 0x80, !0); // GICD_IGROUPR0, banked per CPU
    write32(f.cpu_interface, 0b11); // GICC_CTLR secure view: both groups
    write32(f.cpu_interface + 4, 0xff); // GICC_PMR
}
