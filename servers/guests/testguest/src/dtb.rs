//! Reading the device tree the VMM passes in x0: `chosen/bootargs`, which says which
//! guest this is (the test guest, the victim of the VMM-deletion test, the idle one),
//! and the initrd's range.

/// Read big-endian word `off` bytes into the blob at `dtb`.
fn word(dtb: u64, off: u64) -> u32 {
    // SAFETY: callers stay inside the blob (its header's sizes bound every offset), which
    // the VMM wrote into guest RAM; an aligned 32-bit read of RAM.
    u32::from_be(unsafe { core::ptr::read_volatile((dtb + off) as *const u32) })
}

fn byte(dtb: u64, off: u64) -> u8 {
    // SAFETY: as for `word`.
    unsafe { core::ptr::read_volatile((dtb + off) as *const u8) }
}

/// The first property named `name` (NUL-terminated) in the device tree at `dtb`:
/// where its value is and how long it is.
fn property(dtb: u64, name: &[u8]) -> Option<(u64, u64)> {
    // Only a blob in the first 16 MiB of RAM, 8-byte aligned, with the FDT magic.
    if !(0x4000_0000..0x4100_0000).contains(&dtb) || !dtb.is_multiple_of(8) || word(dtb, 0) != 0xd00d_feed {
        return None;
    }
    let total = u64::from(word(dtb, 4)).min(1 << 20);
    let (structs, strings) = (u64::from(word(dtb, 8)), u64::from(word(dtb, 12)));
    let end = (structs + u64::from(word(dtb, 36))).min(total);
    let mut at = structs;
    while at + 4 <= end {
        match word(dtb, at) {
            // BEGIN_NODE: a NUL-terminated name, padded to 4 bytes.
            1 => {
                at += 4;
                while at < end && byte(dtb, at) != 0 {
                    at += 1;
                }
                at = (at + 4) & !3;
            }
            // PROP: length, name offset, value padded to 4 bytes.
            3 => {
                let len = u64::from(word(dtb, at + 4));
                let this = strings + u64::from(word(dtb, at + 8));
                let value = at + 12;
                if value + len > end {
                    return None;
                }
                let named = name
                    .iter()
                    .enumerate()
                    .all(|(i, &c)| this + (i as u64) < total && byte(dtb, this + i as u64) == c);
                if named {
                    return Some((value, len));
                }
                at = (value + len + 3) & !3;
            }
            // END_NODE, NOP.
            2 | 4 => at += 4,
            _ => return None,
        }
    }
    None
}

/// True if the device tree at `dtb` has a `bootargs` property containing `needle`.
pub fn bootargs_contain(dtb: u64, needle: &[u8]) -> bool {
    let Some((value, len)) = property(dtb, b"bootargs\0") else {
        return false;
    };
    (0..=len.saturating_sub(needle.len() as u64)).any(|s| {
        needle
            .iter()
            .enumerate()
            .all(|(i, &c)| byte(dtb, value + s + i as u64) == c)
    })
}

/// The 64-bit (two-cell) property `name` (NUL-terminated) of the device tree at `dtb`.
pub fn u64_property(dtb: u64, name: &[u8]) -> Option<u64> {
    let (value, len) = property(dtb, name)?;
    (len == 8).then(|| u64::from(word(dtb, value)) << 32 | u64::from(word(dtb, value + 4)))
}
