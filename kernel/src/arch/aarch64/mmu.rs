//! Translation tables: the walker shared by the kernel's EL2 stage-1 map and the stage-2
//! address spaces, and the EL2 identity map the kernel runs on.
//!
//! Both regimes use the 4 KiB granule and a 39-bit input range starting at level 1, so
//! one walker serves both; only the leaf attribute bits differ.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::{cpu, dsb_sy, isb, write_sysreg};
use crate::board;

/// Entries per table.
const ENTRIES: usize = 512;
/// Bytes mapped by one entry at levels 1, 2 and 3.
const LEVEL_SIZE: [usize; 4] = [0, 1 << 30, 1 << 21, 1 << 12];
/// Output-address mask of a descriptor (bits 47:12).
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Input addresses must be below this (39 bits, T0SZ = 25).
pub const VA_LIMIT: usize = 1 << 39;

const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
/// Execute-never (stage 1 at EL2) / XN[1] (stage 2).
pub const XN: u64 = 1 << 54;

/// One translation table.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    /// An empty table.
    pub const EMPTY: Self = Self([0; ENTRIES]);
}

/// Where new tables come from.
pub trait TableSource {
    /// A zeroed table that lives as long as the tree it joins, or `None` when exhausted.
    fn table(&mut self) -> Option<&'static mut Table>;
}

/// Why a mapping failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not 4 KiB aligned, or beyond the 39-bit range.
    BadRange,
    /// Part of the range is already mapped.
    Overlap,
    /// The table source is exhausted.
    NoTables,
}

/// Map `size` bytes at input address `va` to output address `pa` with leaf attributes
/// `attrs` (everything except the address, the type bits and AF), using the largest
/// blocks alignment allows.
pub fn map_range(
    root: &mut Table,
    src: &mut dyn TableSource,
    va: usize,
    pa: usize,
    size: usize,
    attrs: u64,
) -> Result<(), MapError> {
    let page = LEVEL_SIZE[3];
    if !va.is_multiple_of(page)
        || !pa.is_multiple_of(page)
        || !size.is_multiple_of(page)
        || va.checked_add(size).is_none_or(|e| e > VA_LIMIT)
    {
        return Err(MapError::BadRange);
    }
    let (mut va, mut pa, mut left) = (va, pa, size);
    while left > 0 {
        let level = (1..=3)
            .find(|&l| va.is_multiple_of(LEVEL_SIZE[l]) && pa.is_multiple_of(LEVEL_SIZE[l]) && left >= LEVEL_SIZE[l])
            .unwrap_or(3);
        let table = walk(root, src, va, level)?;
        let idx = (va / LEVEL_SIZE[level]) % ENTRIES;
        if table.0[idx] & VALID != 0 {
            return Err(MapError::Overlap);
        }
        let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
        table.0[idx] = (pa as u64 & ADDR_MASK) | attrs | AF | kind | VALID;
        va += LEVEL_SIZE[level];
        pa += LEVEL_SIZE[level];
        left -= LEVEL_SIZE[level];
    }
    Ok(())
}

/// The table at `level` covering `va`, creating intermediate tables as needed.
fn walk<'t>(
    root: &'t mut Table,
    src: &mut dyn TableSource,
    va: usize,
    level: usize,
) -> Result<&'t mut Table, MapError> {
    let mut table = root;
    for size in &LEVEL_SIZE[1..level] {
        let idx = (va / size) % ENTRIES;
        let entry = table.0[idx];
        let next: *mut Table = if entry & VALID == 0 {
            let fresh = src.table().ok_or(MapError::NoTables)?;
            let ptr: *mut Table = fresh;
            table.0[idx] = (ptr as u64 & ADDR_MASK) | TABLE_OR_PAGE | VALID;
            ptr
        } else if entry & TABLE_OR_PAGE == 0 {
            return Err(MapError::Overlap); // a block already covers this range
        } else {
            (entry & ADDR_MASK) as *mut Table
        };
        // SAFETY: `next` is either a table just handed out by `src` (which promises it
        // lives as long as the tree) or one installed earlier the same way; the kernel
        // runs on an identity map, so the descriptor's output address is its pointer.
        table = unsafe { &mut *next };
    }
    Ok(table)
}

// ---- The kernel's own EL2 stage-1 map ------------------------------------------------

/// MAIR_EL2 attribute indices.
const ATTR_DEVICE: u64 = 0 << 2; // Device-nGnRE
const ATTR_NORMAL: u64 = 1 << 2; // Normal, inner/outer write-back
const MAIR: u64 = 0x04 | (0xff << 8);
/// AP[2]: read-only. AP[1] is RES1 in the EL2 regime.
const AP_RO: u64 = 1 << 7;
const AP_RES1: u64 = 1 << 6;

const KERNEL_TABLES: usize = 24;

struct BootTables {
    root: Table,
    pool: [Table; KERNEL_TABLES],
    used: usize,
}

static KERNEL_MAP: spin::Mutex<BootTables> = spin::Mutex::new(BootTables {
    root: Table::EMPTY,
    pool: [const { Table::EMPTY }; KERNEL_TABLES],
    used: 0,
});

struct Pool<'a> {
    pool: &'a mut [Table; KERNEL_TABLES],
    used: &'a mut usize,
}

impl TableSource for Pool<'_> {
    fn table(&mut self) -> Option<&'static mut Table> {
        let t = self.pool.get_mut(*self.used)?;
        *self.used += 1;
        let ptr: *mut Table = t;
        // SAFETY: the pool lives in a static, each table is handed out once, and the
        // kernel map that owns it is never torn down.
        Some(unsafe { &mut *ptr })
    }
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// Addresses of the kernel image's sections.
#[derive(Clone, Copy, Debug)]
pub struct KernelLayout {
    /// First byte of text.
    pub start: usize,
    /// End of text, start of rodata.
    pub text_end: usize,
    /// End of rodata, start of data/bss.
    pub rodata_end: usize,
    /// End of bss, page aligned; the boot image starts here.
    pub end: usize,
}

/// The kernel image's layout from the linker script's symbols.
pub fn kernel_layout() -> KernelLayout {
    KernelLayout {
        start: (&raw const __kernel_start) as usize,
        text_end: (&raw const __text_end) as usize,
        rodata_end: (&raw const __rodata_end) as usize,
        end: (&raw const __kernel_end) as usize,
    }
}

/// The root of the kernel's map once CPU 0 has built it (0 before). Written with the MMU
/// off, so the secondaries, which read it with theirs off too, see it in memory.
static KERNEL_ROOT: AtomicUsize = AtomicUsize::new(0);

/// Build the kernel's identity map (text RX, rodata R, data RW but the stack guard
/// pages, rest of RAM RW, MMIO as device memory, all else unmapped) and turn on the MMU
/// and caches. CPU 0, once.
pub fn enable_kernel_map() -> Result<(), MapError> {
    let k = kernel_layout();
    let ram = board::RAM;
    let normal = ATTR_NORMAL | SH_INNER | AP_RES1;
    let mut guard = KERNEL_MAP.lock();
    let BootTables { root, pool, used } = &mut *guard;
    let mut src = Pool { pool, used };
    map_range(root, &mut src, k.start, k.start, k.text_end - k.start, normal | AP_RO)?;
    map_range(
        root,
        &mut src,
        k.text_end,
        k.text_end,
        k.rodata_end - k.text_end,
        normal | AP_RO | XN,
    )?;
    // Data and .bss, with a hole at each CPU's stack guard page (they lie in .bss, in
    // ascending order).
    let mut from = k.rodata_end;
    for g in cpu::stack_guards() {
        map_range(root, &mut src, from, from, g - from, normal | XN)?;
        from = g + cpu::STACK_GUARD_SIZE;
    }
    map_range(root, &mut src, from, from, k.end - from, normal | XN)?;
    map_range(root, &mut src, ram.base, ram.base, k.start - ram.base, normal | XN)?;
    let ram_end = ram.base + ram.size;
    map_range(root, &mut src, k.end, k.end, ram_end - k.end, normal | XN)?;
    for r in board::MMIO {
        map_range(root, &mut src, r.base, r.base, r.size, ATTR_DEVICE | AP_RES1 | XN)?;
    }
    KERNEL_ROOT.store(core::ptr::from_mut(root) as usize, Ordering::Relaxed);
    drop(guard);
    enable_this_cpu();
    Ok(())
}

/// Turn on the calling CPU's MMU and caches with the kernel's map, which CPU 0 has
/// built. Every CPU runs this first thing in Rust: atomics and locks need the caches.
pub fn enable_this_cpu() {
    let root_pa = KERNEL_ROOT.load(Ordering::Relaxed) as u64;
    let ps = cpu::pa_range().min(5);
    // T0SZ=25, IRGN0=ORGN0=WBWA, SH0=inner, TG0=4K, PS, RES1 bits 23 and 31.
    let tcr = 0x19 | (1 << 8) | (1 << 10) | (3 << 12) | (ps << 16) | (1 << 23) | (1 << 31);
    dsb_sy();
    // SAFETY: the tables map the running code, stack and data at their current (identity)
    // addresses with compatible attributes, so execution continues unchanged once the
    // MMU is on; TLBs are invalidated before enabling. CPU 0 built them before it
    // started any other CPU, and they are never changed.
    unsafe {
        write_sysreg!(mair_el2, MAIR);
        write_sysreg!(tcr_el2, tcr);
        write_sysreg!(ttbr0_el2, root_pa);
        isb();
        core::arch::asm!("tlbi alle2", "dsb sy", "isb", options(nostack, preserves_flags));
        // SCTLR_EL2 RES1 | M | C | SA | I | WXN.
        write_sysreg!(sctlr_el2, 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19));
    }
    isb();
}

/// Tables used by the kernel map so far (for the boot log).
pub fn kernel_tables_used() -> usize {
    KERNEL_MAP.lock().used + 1
}
