//! Stage-2 address spaces. Native threads run at EL0 with stage 1 off (HCR_EL2.TGE and
//! DC set), so a thread's stage-2 table is its whole address space; a guest's address
//! space will use the same tables under its own stage 1.

use super::{cpu, isb, write_sysreg};

/// HCR_EL2 while a native (non-guest) thread runs: stage 2 on (VM), AArch64 EL1 (RW),
/// physical interrupts to EL2 (IMO/FMO/AMO), EL0 exceptions to EL2 (TGE), stage-1-off
/// accesses cacheable (DC), and EL1 system-register, TLB and set/way operations trapped.
pub const HCR_NATIVE: u64 = (1 << 0)   // VM
    | (1 << 1)                          // SWIO
    | (1 << 3) | (1 << 4) | (1 << 5)    // FMO, IMO, AMO
    | (1 << 12)                         // DC
    | (1 << 19)                         // TSC
    | (1 << 21)                         // TACR
    | (1 << 25) | (1 << 26)             // TTLB, TVM
    | (1 << 27)                         // TGE
    | (1 << 31); // RW

/// Set up stage-2 translation for native threads and the routing of interrupts to EL2:
/// VTCR and HCR, on every CPU at boot (physical IRQs reach EL2 only with HCR_EL2.IMO or
/// TGE set, so before any CPU takes an interrupt).
pub fn init() {
    let ps = cpu::pa_range().min(5);
    // T0SZ=25 (39-bit IPA), SL0=1 (start at level 1), IRGN0=ORGN0=WBWA, SH0=inner,
    // TG0=4K, PS, RES1 bit 31.
    let vtcr = 0x19 | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (ps << 16) | (1 << 31);
    // SAFETY: no thread runs on this CPU yet; VTTBR is loaded before the first return
    // to EL0.
    unsafe {
        write_sysreg!(vtcr_el2, vtcr);
        write_sysreg!(hcr_el2, HCR_NATIVE);
    }
    isb();
}

/// Make the address space with root table `root` and `vmid` current for the next
/// return to EL0. No `isb`: stage 2 only translates EL1/EL0 accesses, and the `eret`
/// that enters the thread is a context synchronization event.
pub fn activate(root: usize, vmid: u16) {
    let vttbr = root as u64 | (u64::from(vmid) << 48);
    // The VSpace this CPU's VTTBR_EL2 holds (root | VMID << 48), so switches between
    // threads of one address space cost nothing; only this CPU touches it.
    let loaded = &cpu::local().vttbr;
    if loaded.load(core::sync::atomic::Ordering::Relaxed) == vttbr {
        return;
    }
    loaded.store(vttbr, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: the kernel core only hands out roots of live VSpaces, whose tables map
    // only frames their owner holds capabilities to; TLB entries are tagged by VMID and
    // flushed whenever a VMID is reused or a mapping removed.
    unsafe { write_sysreg!(vttbr_el2, vttbr) };
}

/// Invalidate all stage-1 and stage-2 TLB entries tagged with `vmid`, on every core of
/// the inner-shareable domain (`tlbi ...is`, completed by `dsb ish`). The leading
/// `dsb ishst` makes the page-table writes that made the entries stale visible to every
/// core's table walker first, so no core can refill an entry from the old table.
pub fn flush_vmid(vmid: u16) {
    let loaded = cpu::local().vttbr.load(core::sync::atomic::Ordering::Relaxed);
    // SAFETY: TLB maintenance for a VMID selects it through VTTBR_EL2.VMID; EL2's own
    // translation does not use VTTBR, and the loaded value is put back before return.
    unsafe {
        core::arch::asm!("dsb ishst", options(nostack, preserves_flags));
        write_sysreg!(vttbr_el2, u64::from(vmid) << 48);
        core::arch::asm!("isb", "tlbi vmalls12e1is", "dsb ish", options(nostack, preserves_flags));
        write_sysreg!(vttbr_el2, loaded);
    }
    isb();
}

/// Make freshly written instructions in `[start, start + len)` visible to instruction fetch.
pub fn sync_icache(start: usize, len: usize) {
    const LINE: usize = 64;
    let mut a = start & !(LINE - 1);
    while a < start + len {
        // SAFETY: cleaning a cache line by VA to the point of unification only writes back
        // data; the range is mapped in the kernel's identity map.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += LINE;
    }
    // SAFETY: invalidating the instruction cache and barriers have no memory effects.
    unsafe {
        // `ic ialluis`: every core's instruction cache, as a thread may run elsewhere.
        core::arch::asm!(
            "dsb ish",
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        );
    }
}
