//! Stage-2 address spaces. Native threads run at EL0 with stage 1 off (HCR_EL2.TGE and
//! DC set), so a thread's stage-2 table is its whole address space; a guest's address
//! space will use the same tables under its own stage 1.

use super::mmu::{self, MapError, Table, TableSource, XN};
use super::{cpu, isb, write_sysreg};

/// Stage-2 MemAttr: Normal, inner and outer write-back.
const MEMATTR_NORMAL: u64 = 0b1111 << 2;
/// Stage-2 MemAttr: Device-nGnRE.
const MEMATTR_DEVICE: u64 = 0b0001 << 2;
const S2AP_RO: u64 = 0b01 << 6;
const S2AP_RW: u64 = 0b11 << 6;
const SH_INNER: u64 = 3 << 8;

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

/// Access rights of a stage-2 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights {
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// Memory type of a stage-2 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// RAM.
    Normal,
    /// MMIO.
    Device,
}

/// One address space: a stage-2 root table and its VMID.
#[derive(Debug)]
pub struct AddressSpace {
    root: &'static mut Table,
    vmid: u16,
}

impl AddressSpace {
    /// A new, empty address space.
    pub fn new(src: &mut dyn TableSource, vmid: u16) -> Option<Self> {
        Some(Self {
            root: src.table()?,
            vmid,
        })
    }

    /// Map `size` bytes of physical memory at `pa` to `ipa`.
    pub fn map(
        &mut self,
        src: &mut dyn TableSource,
        ipa: usize,
        pa: usize,
        size: usize,
        rights: Rights,
        mem: MemType,
    ) -> Result<(), MapError> {
        let mut attrs = SH_INNER | if rights.write { S2AP_RW } else { S2AP_RO };
        attrs |= match mem {
            MemType::Normal => MEMATTR_NORMAL,
            MemType::Device => MEMATTR_DEVICE,
        };
        if !rights.execute || mem == MemType::Device {
            attrs |= XN;
        }
        mmu::map_range(self.root, src, ipa, pa, size, attrs)
    }

    /// Make this the current stage-2 translation, for native threads.
    pub fn activate(&self) {
        let root = core::ptr::from_ref::<Table>(self.root) as u64;
        let ps = cpu::pa_range().min(5);
        // T0SZ=25, SL0=1 (start at level 1), IRGN0=ORGN0=WBWA, SH0=inner, TG0=4K, PS, RES1 bit 31.
        let vtcr = 0x19 | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (ps << 16) | (1 << 31);
        // SAFETY: the root table maps only frames the kernel gave this address space, so
        // EL0 code running under it cannot reach kernel memory; stale translations for the
        // VMID are invalidated before use.
        unsafe {
            write_sysreg!(vtcr_el2, vtcr);
            write_sysreg!(vttbr_el2, root | (u64::from(self.vmid) << 48));
            write_sysreg!(hcr_el2, HCR_NATIVE);
            isb();
            core::arch::asm!("tlbi vmalls12e1", "dsb sy", "isb", options(nostack, preserves_flags));
        }
    }
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
        core::arch::asm!(
            "dsb ish",
            "ic iallu",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        );
    }
}
