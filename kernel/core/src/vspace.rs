//! Stage-2 translation tables: the address spaces of native threads (and, later, of
//! guests). A VSpace is a level-1 table covering a 39-bit IPA space; PageTable objects
//! become level-2 tables (1 GiB each) or level-3 tables (2 MiB each); frames are 4 KiB
//! pages at level 3 or 2 MiB blocks at level 2. The descriptor format is the Armv8-A
//! stage-2 VMSA one; it is plain data, so it is tested on the host.

use crate::obj::Ptr;

/// Entries per table.
pub const ENTRIES: usize = 512;
/// A translation table (a PageTable or VSpace object).
pub type Table = [u64; ENTRIES];

/// First IPA past the address space.
pub const IPA_LIMIT: u64 = 1 << 39;

const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 3 << 8;
const S2AP_RO: u64 = 1 << 6;
const S2AP_RW: u64 = 3 << 6;
const MEMATTR_NORMAL: u64 = 0b1111 << 2;
const MEMATTR_DEVICE: u64 = 0b0001 << 2;
const XN: u64 = 1 << 54;
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

/// How a frame is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAttrs {
    /// Writable.
    pub write: bool,
    /// Executable (never for device memory).
    pub execute: bool,
    /// Device-nGnRE instead of normal write-back memory.
    pub device: bool,
}

/// Index of `ipa` in a table at `level` (1..=3).
pub const fn index(ipa: u64, level: u32) -> usize {
    ((ipa >> (12 + 9 * (3 - level))) & 0x1ff) as usize
}

/// Bytes one entry at `level` covers.
pub const fn entry_span(level: u32) -> u64 {
    1 << (12 + 9 * (3 - level))
}

/// A table descriptor pointing at `table`.
pub const fn table_desc(table: usize) -> u64 {
    (table as u64 & OA_MASK) | TABLE_OR_PAGE | VALID
}

/// A leaf descriptor: a page at level 3, a block at level 2.
pub const fn leaf_desc(pa: usize, level: u32, attrs: MapAttrs) -> u64 {
    let mut d = (pa as u64 & OA_MASK) | AF | SH_INNER | VALID;
    if level == 3 {
        d |= TABLE_OR_PAGE;
    }
    d |= if attrs.write { S2AP_RW } else { S2AP_RO };
    d |= if attrs.device { MEMATTR_DEVICE } else { MEMATTR_NORMAL };
    if !attrs.execute || attrs.device {
        d |= XN;
    }
    d
}

/// True if `d` is a valid table descriptor (levels 1 and 2).
pub const fn is_table(d: u64, level: u32) -> bool {
    level < 3 && d & (VALID | TABLE_OR_PAGE) == (VALID | TABLE_OR_PAGE)
}

/// The output address of a descriptor.
pub const fn output(d: u64) -> usize {
    (d & OA_MASK) as usize
}

/// The table at `level + 1` that `d` (at `level`) points to, if it is a table.
///
/// `d` must be an entry read from a live table: the rule this relies on is that a
/// valid table descriptor in a live table points to a live table, because unmapping
/// or deleting a table clears the entries that point to it (see [`clear_tree`]).
#[allow(unsafe_code, reason = "a valid table descriptor vouches for the table it points to")]
pub(crate) fn next_table(d: u64, level: u32) -> Option<Ptr<Table>> {
    // SAFETY: by the rule above the descriptor's output address holds a live table: a
    // page-table object, page-aligned and never at 0 (crate::obj rule 1).
    is_table(d, level).then(|| unsafe { Ptr::new(output(d)) })
}

/// The entry that maps `ipa` at `level` (2 or 3), walking down from `root`; `None`
/// if a table on the way is missing.
pub fn entry_at(root: Ptr<Table>, ipa: u64, level: u32) -> Option<(Ptr<Table>, usize)> {
    let mut table = root;
    for l in 1..level {
        table = next_table(table.get()[index(ipa, l)], l)?;
    }
    Some((table, index(ipa, level)))
}

/// Empty the table at `level` (1 for a VSpace root) and, first, every table below it.
/// Tables reachable through a live table are live page-table objects (unmapping or
/// deleting one clears its parent's entry, and a cleared table holds nothing), so the
/// walk never touches freed memory. At most 1 + 512 + 512 * 512 tables.
pub fn clear_tree(table: Ptr<Table>, level: u32) {
    for i in 0..ENTRIES {
        let d = table.get()[i];
        if d & VALID == 0 {
            continue;
        }
        if let Some(next) = next_table(d, level) {
            clear_tree(next, level + 1);
        }
        table.get()[i] = 0;
    }
}

/// Translate `ipa` like the MMU would: `(pa, writable, executable)`.
#[allow(dead_code, reason = "the MMU's view of a VSpace: host tests use it")]
pub fn translate(root: Ptr<Table>, ipa: u64) -> Option<(usize, bool, bool)> {
    let mut table = root;
    for level in 1..=3 {
        let d = table.get()[index(ipa, level)];
        if d & VALID == 0 {
            return None;
        }
        if let Some(next) = next_table(d, level) {
            table = next;
            continue;
        }
        if level == 1 {
            return None; // Gaon never makes level-1 blocks.
        }
        let offset = (ipa & (entry_span(level) - 1)) as usize;
        return Some((output(d) + offset, d & S2AP_RW == S2AP_RW, d & XN == 0));
    }
    None
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn table() -> Ptr<Table> {
        let b = std::boxed::Box::leak(std::boxed::Box::new(Aligned([0; ENTRIES])));
        Ptr::from_static(&mut b.0)
    }
    #[repr(align(4096))]
    struct Aligned(Table);

    #[test]
    fn walk_and_translate() {
        let (root, l2, l3) = (table(), table(), table());
        let va = 0x4020_3000u64;
        root.get()[index(va, 1)] = table_desc(l2.addr());
        l2.get()[index(va, 2)] = table_desc(l3.addr());
        let attrs = MapAttrs {
            write: false,
            execute: true,
            device: false,
        };
        l3.get()[index(va, 3)] = leaf_desc(0x8765_4000, 3, attrs);
        assert_eq!(translate(root, va + 0x10), Some((0x8765_4010, false, true)));
        assert_eq!(translate(root, va + 0x1000), None);
        assert_eq!(entry_at(root, va, 3).map(|(t, i)| (t.addr(), i)), Some((l3.addr(), 3)));
        // A 2 MiB block at level 2.
        let block = 0x4060_0000u64;
        l2.get()[index(block, 2)] = leaf_desc(
            0x1_0000_0000,
            2,
            MapAttrs {
                write: true,
                execute: false,
                device: true,
            },
        );
        assert_eq!(translate(root, block + 0x12_3456), Some((0x1_0012_3456, true, false)));
        assert!(entry_at(root, block, 3).is_none(), "a block is not a table");
    }
}
