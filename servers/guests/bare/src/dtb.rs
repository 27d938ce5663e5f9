//! The flattened device tree the VMM writes into guest RAM and passes in x0 (the
//! devicetree specification's DTB: a header, a structure block of tokens, a strings
//! block). A guest of the VMM needs little of it: `chosen/bootargs`, the initrd's range,
//! and whether a device is there. Hardware-free: [`Fdt::new`] reads a byte slice.

use core::ops::Range;

/// The header's magic number.
const MAGIC: u32 = 0xd00d_feed;
/// The header's size (version 17): ten big-endian words.
const HEADER: usize = 40;
/// Structure block tokens.
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;

/// A device tree blob, its header checked.
#[derive(Clone, Debug)]
pub struct Fdt<'a> {
    blob: &'a [u8],
    structs: Range<usize>,
    strings: Range<usize>,
}

/// The big-endian word at `off` of `bytes`.
fn be32(bytes: &[u8], off: usize) -> Option<u32> {
    let b = bytes.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `at` rounded up to 4 bytes.
const fn align4(at: usize) -> usize {
    (at + 3) & !3
}

impl<'a> Fdt<'a> {
    /// The device tree in `blob` (which may be longer than it), if its header is sound:
    /// the magic, a total size within `blob`, and its blocks inside the total size.
    pub fn new(blob: &'a [u8]) -> Option<Self> {
        if be32(blob, 0)? != MAGIC {
            return None;
        }
        let total = be32(blob, 4)? as usize;
        let blob = blob.get(..total)?;
        let block = |off: usize, size: usize| -> Option<Range<usize>> {
            let (start, len) = (be32(blob, off)? as usize, be32(blob, size)? as usize);
            let end = start.checked_add(len)?;
            (start >= HEADER && end <= total).then_some(start..end)
        };
        Some(Self {
            blob,
            structs: block(8, 36)?,
            strings: block(12, 32)?,
        })
    }

    /// The device tree at guest-physical address `addr`, if it lies inside `ram` and its
    /// header is sound.
    ///
    /// # Safety
    ///
    /// `ram` is memory the program may read (guest RAM, the MMU off or identity
    /// mapped), and nothing writes the bytes at `addr` while the result is used: the VMM
    /// wrote them before the guest started, and the program does not write there.
    pub unsafe fn at(addr: u64, ram: Range<u64>) -> Option<Fdt<'static>> {
        let fits = |len: u64| addr.checked_add(len).is_some_and(|end| end <= ram.end);
        if !ram.contains(&addr) || !addr.is_multiple_of(8) || !fits(HEADER as u64) {
            return None;
        }
        // SAFETY: the header's eight bytes are inside `ram` (checked above), which the
        // caller says is readable; an aligned read.
        let head = unsafe { core::ptr::read_volatile(addr as *const [u8; 8]) };
        let total = u64::from(u32::from_be_bytes([head[4], head[5], head[6], head[7]]));
        if be32(&head, 0) != Some(MAGIC) || !fits(total) {
            return None;
        }
        // SAFETY: `total` bytes from `addr` lie inside `ram` (checked), readable and not
        // written while the slice lives (the caller's promise).
        let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total as usize) };
        Fdt::new(blob)
    }

    /// Every property of every node, in the order of the structure block.
    pub fn properties(&self) -> Properties<'a> {
        Properties {
            fdt: self.clone(),
            at: self.structs.start,
        }
    }

    /// The value of the first property called `name` (in any node).
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        self.properties().find(|p| p.name == name.as_bytes()).map(|p| p.value)
    }

    /// `chosen/bootargs` without its terminating NUL (the first `bootargs` property).
    pub fn bootargs(&self) -> Option<&'a [u8]> {
        let v = self.property("bootargs")?;
        Some(v.split(|&b| b == 0).next().unwrap_or(v))
    }

    /// True if the bootargs contain `needle` anywhere (not only as a word).
    pub fn bootargs_contain(&self, needle: &[u8]) -> bool {
        self.bootargs().is_some_and(|b| contains(b, needle))
    }

    /// The 64-bit (two-cell) property `name`.
    pub fn u64_property(&self, name: &str) -> Option<u64> {
        let v: [u8; 8] = self.property(name)?.try_into().ok()?;
        Some(u64::from_be_bytes(v))
    }

    /// True if some node's `compatible` list has `compatible` (a device is there).
    pub fn has_compatible(&self, compatible: &str) -> bool {
        self.properties()
            .filter(|p| p.name == b"compatible")
            .any(|p| p.value.split(|&b| b == 0).any(|s| s == compatible.as_bytes()))
    }

    /// The NUL-terminated string at `off` of the strings block.
    fn string(&self, off: usize) -> Option<&'a [u8]> {
        let start = self.strings.start.checked_add(off)?;
        let s = self.blob.get(start..self.strings.end)?;
        s.iter().position(|&b| b == 0).map(|n| &s[..n])
    }
}

/// True if `needle` occurs in `hay` (an empty needle always does).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A property: its name and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// The iterator of [`Fdt::properties`]; it stops at the end of the structure block or
/// at anything malformed.
#[derive(Clone, Debug)]
pub struct Properties<'a> {
    fdt: Fdt<'a>,
    at: usize,
}

impl<'a> Iterator for Properties<'a> {
    type Item = Property<'a>;

    fn next(&mut self) -> Option<Property<'a>> {
        let (blob, end) = (self.fdt.blob, self.fdt.structs.end);
        while self.at + 4 <= end {
            match be32(blob, self.at)? {
                BEGIN_NODE => {
                    // The name, NUL-terminated, padded to 4 bytes.
                    let name = blob.get(self.at + 4..end)?;
                    let len = name.iter().position(|&b| b == 0)?;
                    self.at = align4(self.at + 4 + len + 1);
                }
                END_NODE | NOP => self.at += 4,
                PROP => {
                    let len = be32(blob, self.at + 4)? as usize;
                    let name = be32(blob, self.at + 8)? as usize;
                    let start = self.at + 12;
                    let value = blob.get(start..start.checked_add(len).filter(|&e| e <= end)?)?;
                    self.at = align4(start + len);
                    return Some(Property {
                        name: self.fdt.string(name)?,
                        value,
                    });
                }
                // END, or a token that is not one.
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    /// A device tree as the VMM writes one: `chosen` with bootargs and an initrd, a
    /// test device, a timer.
    fn blob(bootargs: &str) -> Vec<u8> {
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_string("compatible", "linux,dummy-virt").unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", bootargs).unwrap();
        w.property_u64("linux,initrd-start", 0x4100_0000).unwrap();
        w.property_u32("linux,initrd-end", 7).unwrap();
        w.end_node(chosen).unwrap();
        let dev = w.begin_node("testdev@b000000").unwrap();
        w.property_string_list("compatible", vec!["gaon,testdev".into(), "other".into()])
            .unwrap();
        w.end_node(dev).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn bootargs_and_properties_are_found() {
        let b = blob("periods=200 llboost");
        let fdt = Fdt::new(&b).unwrap();
        assert_eq!(fdt.bootargs(), Some(&b"periods=200 llboost"[..]));
        assert!(fdt.bootargs_contain(b"llboost"));
        assert!(!fdt.bootargs_contain(b"trace"));
        assert_eq!(fdt.u64_property("linux,initrd-start"), Some(0x4100_0000));
        // A 32-bit property is not a 64-bit one.
        assert_eq!(fdt.u64_property("linux,initrd-end"), None);
        assert_eq!(fdt.u64_property("nothing"), None);
        assert!(fdt.has_compatible("gaon,testdev"));
        assert!(fdt.has_compatible("other"));
        assert!(fdt.has_compatible("linux,dummy-virt"));
        assert!(!fdt.has_compatible("gaon"));
        let names: Vec<_> = fdt.properties().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                &b"compatible"[..],
                b"bootargs",
                b"linux,initrd-start",
                b"linux,initrd-end",
                b"compatible"
            ]
        );
    }

    #[test]
    fn a_broken_blob_is_refused_or_read_no_further() {
        let b = blob("x");
        assert!(Fdt::new(&b[..b.len() - 1]).is_none(), "shorter than its total size");
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(Fdt::new(&bad).is_none(), "magic");
        assert!(Fdt::new(&[]).is_none());
        // A structure block that runs past the total size.
        let mut bad = b.clone();
        bad[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Fdt::new(&bad).is_none());
        // A property whose length runs past the structure block: the walk stops there.
        let fdt = Fdt::new(&b).unwrap();
        let first = fdt.structs.start + 8; // root's BEGIN_NODE and empty name
        let mut bad = b.clone();
        assert_eq!(be32(&bad, first), Some(PROP));
        bad[first + 4..first + 8].copy_from_slice(&0x10_0000u32.to_be_bytes());
        assert_eq!(Fdt::new(&bad).unwrap().properties().count(), 0);
        assert_eq!(Fdt::new(&bad).unwrap().bootargs(), None);
    }

    #[test]
    fn contains_finds_substrings() {
        assert!(contains(b"test passthrough", b"passthrough"));
        assert!(contains(b"abc", b""));
        assert!(!contains(b"ab", b"abc"));
    }
}
