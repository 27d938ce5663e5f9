//! The device tree the VMM passes in x0 (`gaon_guest_bare::dtb`): `chosen/bootargs`,
//! which says which guest this is (the test guest, the victim of the VMM-deletion test,
//! the idle one), and the initrd's range.

use gaon_guest_bare::dtb::Fdt;
use gaon_vmm::layout::RAM_BASE;

/// The device tree at `dtb`, if one is there (in the first 16 MiB of RAM).
fn fdt(dtb: u64) -> Option<Fdt<'static>> {
    // SAFETY: `dtb` is x0 at entry, the device tree the VMM wrote into this VM's RAM
    // before starting it (docs/vmm.md), which the program never writes; the range only
    // bounds a wrong address to RAM every test VM has.
    unsafe { Fdt::at(dtb, RAM_BASE..RAM_BASE + (16 << 20)) }
}

/// True if the device tree at `dtb` has a `bootargs` property containing `needle`.
pub fn bootargs_contain(dtb: u64, needle: &[u8]) -> bool {
    fdt(dtb).is_some_and(|f| f.bootargs_contain(needle))
}

/// The 64-bit (two-cell) property `name` of the device tree at `dtb`.
pub fn u64_property(dtb: u64, name: &str) -> Option<u64> {
    fdt(dtb)?.u64_property(name)
}
