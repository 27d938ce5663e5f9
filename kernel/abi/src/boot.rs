//! The boot image: what the image tool appends to the kernel and the kernel reads at boot.
//!
//! The image tool places one [`BootImageHeader`] at the first 4 KiB boundary after the
//! kernel's last byte (`__kernel_end`), followed by the payloads it describes: the root
//! server's loadable segments and the boot modules. All offsets are relative to the
//! start of the header. All integers are little-endian.

use bitflags::bitflags;
use static_assertions::const_assert_eq;
#[cfg(test)]
use zerocopy::FromZeros;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `GAONBOOT`, the first eight bytes of a boot image header.
pub const BOOT_MAGIC: [u8; 8] = *b"GAONBOOT";
/// Layout version; bumped whenever any struct in this module changes.
pub const BOOT_VERSION: u32 = 1;
/// Alignment of the header and of every payload in the boot image.
pub const BOOT_ALIGN: u64 = 4096;
/// The most loadable segments a root server ELF may have.
pub const MAX_SEGMENTS: usize = 8;
/// The most boot modules one image may carry.
pub const MAX_MODULES: usize = 16;
/// Length of the NUL-padded name fields.
pub const NAME_LEN: usize = 32;

/// Lowest user virtual address a segment may start at (page zero stays unmapped).
pub const USER_VADDR_MIN: u64 = 0x1000;
/// One past the highest user virtual address (a 39-bit stage-2 input address space).
pub const USER_VADDR_LIMIT: u64 = 1 << 39;
/// Size of the stack the kernel gives the root server.
pub const ROOT_STACK_SIZE: u64 = 64 * 1024;
/// The root server's initial stack pointer (the stack grows down from here).
pub const ROOT_STACK_TOP: u64 = 0x80_0000_0000 - 0x1000;

bitflags! {
    /// Access rights of a loadable segment, as in the ELF `p_flags`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SegmentFlags: u32 {
        /// Executable.
        const X = 1;
        /// Writable.
        const W = 2;
        /// Readable.
        const R = 4;
    }
}

/// One loadable segment of the root server.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Segment {
    /// User virtual address of the first byte; 4 KiB aligned.
    pub vaddr: u64,
    /// Offset of the segment's file bytes from the header.
    pub offset: u64,
    /// Bytes present in the image.
    pub filesz: u64,
    /// Bytes in memory; the tail beyond `filesz` is zero.
    pub memsz: u64,
    /// [`SegmentFlags`] bits.
    pub flags: u32,
    /// Zero.
    pub reserved: u32,
}

/// A boot module: an opaque file the root server may use (an ELF, a config blob).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Module {
    /// NUL-padded UTF-8 name from the system description.
    pub name: [u8; NAME_LEN],
    /// Offset of the module's bytes from the header.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Default for Module {
    fn default() -> Self {
        Self {
            name: [0; NAME_LEN],
            offset: 0,
            size: 0,
        }
    }
}

/// The header at the start of the boot image.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BootImageHeader {
    /// [`BOOT_MAGIC`].
    pub magic: [u8; 8],
    /// [`BOOT_VERSION`].
    pub version: u32,
    /// Number of valid entries in `segments`.
    pub segment_count: u32,
    /// Header plus all payloads, in bytes.
    pub total_size: u64,
    /// Root server entry point.
    pub root_entry: u64,
    /// NUL-padded board name the image was built for; the kernel checks it.
    pub board: [u8; NAME_LEN],
    /// NUL-padded name of the system description.
    pub system: [u8; NAME_LEN],
    /// Number of valid entries in `modules`.
    pub module_count: u32,
    /// Zero.
    pub reserved: u32,
    /// Root server segments.
    pub segments: [Segment; MAX_SEGMENTS],
    /// Boot modules.
    pub modules: [Module; MAX_MODULES],
}

const_assert_eq!(core::mem::size_of::<Segment>(), 40);
const_assert_eq!(core::mem::size_of::<Module>(), 48);
const_assert_eq!(
    core::mem::size_of::<BootImageHeader>(),
    8 + 4 + 4 + 8 + 8 + 32 + 32 + 4 + 4 + 40 * MAX_SEGMENTS + 48 * MAX_MODULES
);
const_assert_eq!(core::mem::size_of::<BootImageHeader>() % 8, 0);

/// Why a boot image header was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootImageError {
    /// Fewer bytes than a header.
    Truncated,
    /// The magic is not [`BOOT_MAGIC`].
    BadMagic,
    /// The version is not [`BOOT_VERSION`].
    BadVersion(u32),
    /// A count exceeds its array.
    TooMany,
    /// A payload lies outside `total_size`, or `total_size` exceeds the bytes given.
    OutOfBounds,
    /// A segment is unaligned, outside the user range, overlaps another, or has `filesz > memsz`.
    BadSegment(usize),
}

/// Bytes of a NUL-padded name, up to the first NUL.
pub fn name_bytes(name: &[u8; NAME_LEN]) -> &[u8] {
    let len = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    &name[..len]
}

/// A NUL-padded name field from a string; `None` if it does not fit.
pub fn make_name(s: &str) -> Option<[u8; NAME_LEN]> {
    let bytes = s.as_bytes();
    if bytes.len() > NAME_LEN || bytes.contains(&0) {
        return None;
    }
    let mut out = [0u8; NAME_LEN];
    out[..bytes.len()].copy_from_slice(bytes);
    Some(out)
}

impl BootImageHeader {
    /// Parse and validate a header at the start of `image`, whose length bounds every payload.
    pub fn parse(image: &[u8]) -> Result<&Self, BootImageError> {
        let (hdr, _) = Self::ref_from_prefix(image).map_err(|_| BootImageError::Truncated)?;
        hdr.validate(image.len() as u64)?;
        Ok(hdr)
    }

    /// Check every field against the rules in this module.
    pub fn validate(&self, available: u64) -> Result<(), BootImageError> {
        if self.magic != BOOT_MAGIC {
            return Err(BootImageError::BadMagic);
        }
        if self.version != BOOT_VERSION {
            return Err(BootImageError::BadVersion(self.version));
        }
        if self.segment_count as usize > MAX_SEGMENTS || self.module_count as usize > MAX_MODULES {
            return Err(BootImageError::TooMany);
        }
        if self.total_size > available || self.total_size < core::mem::size_of::<Self>() as u64 {
            return Err(BootImageError::OutOfBounds);
        }
        let in_bounds = |off: u64, len: u64| off.checked_add(len).is_some_and(|end| end <= self.total_size);
        let segs = &self.segments[..self.segment_count as usize];
        for (i, s) in segs.iter().enumerate() {
            let end = s.vaddr.checked_add(s.memsz);
            let ok = s.vaddr % BOOT_ALIGN == 0
                && s.vaddr >= USER_VADDR_MIN
                && end.is_some_and(|e| e <= USER_VADDR_LIMIT)
                && s.filesz <= s.memsz
                && s.memsz > 0
                && s.offset % BOOT_ALIGN == 0
                && in_bounds(s.offset, s.filesz)
                && SegmentFlags::from_bits(s.flags).is_some();
            if !ok {
                return Err(BootImageError::BadSegment(i));
            }
            let this_end = end.unwrap_or(u64::MAX);
            for t in &segs[..i] {
                let t_end = t.vaddr.saturating_add(t.memsz).next_multiple_of(BOOT_ALIGN);
                if s.vaddr < t_end && t.vaddr < this_end {
                    return Err(BootImageError::BadSegment(i));
                }
            }
        }
        for m in &self.modules[..self.module_count as usize] {
            if !in_bounds(m.offset, m.size) {
                return Err(BootImageError::OutOfBounds);
            }
        }
        Ok(())
    }

    /// The valid segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..(self.segment_count as usize).min(MAX_SEGMENTS)]
    }

    /// The valid modules.
    pub fn modules(&self) -> &[Module] {
        &self.modules[..(self.module_count as usize).min(MAX_MODULES)]
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn header() -> BootImageHeader {
        let mut h = BootImageHeader::new_zeroed();
        h.magic = BOOT_MAGIC;
        h.version = BOOT_VERSION;
        h.total_size = 3 * BOOT_ALIGN;
        h.segment_count = 1;
        h.segments[0] = Segment {
            vaddr: 0x40_0000,
            offset: BOOT_ALIGN,
            filesz: 100,
            memsz: 0x2000,
            flags: (SegmentFlags::R | SegmentFlags::X).bits(),
            reserved: 0,
        };
        h
    }

    fn image(h: &BootImageHeader) -> std::vec::Vec<u8> {
        let mut v = vec![0u8; 3 * BOOT_ALIGN as usize];
        v[..size_of::<BootImageHeader>()].copy_from_slice(h.as_bytes());
        v
    }

    #[test]
    fn accepts_valid_header() {
        let h = header();
        let img = image(&h);
        assert_eq!(BootImageHeader::parse(&img).unwrap().segments().len(), 1);
    }

    #[test]
    fn rejects_each_kind_of_corruption() {
        let mut h = header();
        h.magic[0] = b'X';
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::BadMagic
        );
        let mut h = header();
        h.version = 7;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::BadVersion(7)
        );
        let mut h = header();
        h.segment_count = 99;
        assert_eq!(BootImageHeader::parse(&image(&h)).unwrap_err(), BootImageError::TooMany);
        let mut h = header();
        h.total_size = 1 << 40;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::OutOfBounds
        );
        let mut h = header();
        h.segments[0].vaddr = 0x40_0010;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::BadSegment(0)
        );
        let mut h = header();
        h.segments[0].vaddr = !0xfff;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::BadSegment(0)
        );
        let mut h = header();
        h.segment_count = 2;
        h.segments[1] = h.segments[0];
        h.segments[1].vaddr += 0x1000;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::BadSegment(1)
        );
        let mut h = header();
        h.module_count = 1;
        h.modules[0].offset = 2 * BOOT_ALIGN;
        h.modules[0].size = BOOT_ALIGN + 1;
        assert_eq!(
            BootImageHeader::parse(&image(&h)).unwrap_err(),
            BootImageError::OutOfBounds
        );
        assert_eq!(
            BootImageHeader::parse(&[0u8; 16]).unwrap_err(),
            BootImageError::Truncated
        );
    }

    #[test]
    fn names_round_trip() {
        let n = make_name("console").unwrap();
        assert_eq!(name_bytes(&n), b"console");
        assert!(make_name(&"x".repeat(33)).is_none());
        assert!(make_name("a\0b").is_none());
    }
}
