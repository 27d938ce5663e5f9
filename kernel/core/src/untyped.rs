//! Untyped memory: a power-of-two region from which objects are carved in order.
//! The kernel has no heap; every object comes from a retype of an untyped.

/// Smallest object and untyped size (16 bytes).
pub const MIN_SIZE_BITS: u8 = 4;
/// Largest untyped (2^47 bytes, beyond any physical memory Gaon supports).
pub const MAX_SIZE_BITS: u8 = 47;

/// An untyped object's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untyped {
    /// Physical address of the first byte; aligned to its size.
    pub base: usize,
    /// log2 of its size.
    pub size_bits: u8,
    /// Bytes from `base` already handed out.
    pub watermark: usize,
    /// Device memory: may only become frames, and is never zeroed by the kernel.
    pub device: bool,
}

/// Why a retype failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetypeError {
    /// Object size out of range, or larger than the untyped.
    InvalidSize,
    /// Zero objects asked for.
    InvalidCount,
    /// Not enough room left.
    NotEnoughMemory,
}

impl Untyped {
    /// An untyped covering `[base, base + 2^size_bits)`; `None` if unaligned or out of range.
    pub fn new(base: usize, size_bits: u8, device: bool) -> Option<Self> {
        if !(MIN_SIZE_BITS..=MAX_SIZE_BITS).contains(&size_bits) || !base.is_multiple_of(1 << size_bits) {
            return None;
        }
        base.checked_add(1 << size_bits)?;
        Some(Self {
            base,
            size_bits,
            watermark: 0,
            device,
        })
    }

    /// Size in bytes.
    pub const fn size(&self) -> usize {
        1 << self.size_bits
    }

    /// Bytes not yet handed out.
    pub const fn free(&self) -> usize {
        self.size() - self.watermark
    }

    /// Carve `count` objects of `2^obj_bits` bytes; returns the first one's address. The
    /// objects are contiguous and each aligned to its size. On error nothing changes.
    pub fn retype(&mut self, obj_bits: u8, count: usize) -> Result<usize, RetypeError> {
        if !(MIN_SIZE_BITS..=self.size_bits).contains(&obj_bits) {
            return Err(RetypeError::InvalidSize);
        }
        if count == 0 {
            return Err(RetypeError::InvalidCount);
        }
        let start = self.watermark.next_multiple_of(1 << obj_bits);
        let bytes = count.checked_mul(1 << obj_bits).ok_or(RetypeError::NotEnoughMemory)?;
        let end = start.checked_add(bytes).ok_or(RetypeError::NotEnoughMemory)?;
        if end > self.size() {
            return Err(RetypeError::NotEnoughMemory);
        }
        self.watermark = end;
        Ok(self.base + start)
    }

    /// Forget every object carved so far; only valid once they have all been deleted
    /// (the caller checks the untyped has no children in the derivation tree).
    pub fn reset(&mut self) {
        self.watermark = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_alignment_and_range() {
        assert!(Untyped::new(0x1000, 12, false).is_some());
        assert!(Untyped::new(0x1800, 12, false).is_none());
        assert!(Untyped::new(0, 3, false).is_none());
        assert!(Untyped::new(0, 48, false).is_none());
    }

    #[test]
    fn retype_aligns_each_batch_and_accounts_exactly() {
        let mut u = Untyped::new(0x10_0000, 16, false).unwrap();
        assert_eq!(u.retype(4, 1), Ok(0x10_0000));
        assert_eq!(u.watermark, 16);
        // A page-sized object skips to the next page boundary.
        assert_eq!(u.retype(12, 2), Ok(0x10_1000));
        assert_eq!(u.watermark, 0x3000);
        assert_eq!(u.free(), 0x1_0000 - 0x3000);
    }

    #[test]
    fn retype_failures_change_nothing() {
        let mut u = Untyped::new(0, 12, false).unwrap();
        let before = u;
        assert_eq!(u.retype(13, 1), Err(RetypeError::InvalidSize));
        assert_eq!(u.retype(3, 1), Err(RetypeError::InvalidSize));
        assert_eq!(u.retype(4, 0), Err(RetypeError::InvalidCount));
        assert_eq!(u.retype(4, 257), Err(RetypeError::NotEnoughMemory));
        assert_eq!(u.retype(4, usize::MAX), Err(RetypeError::NotEnoughMemory));
        assert_eq!(u, before);
        assert_eq!(u.retype(4, 256), Ok(0));
        assert_eq!(u.retype(4, 1), Err(RetypeError::NotEnoughMemory));
        u.reset();
        assert_eq!(u.retype(12, 1), Ok(0));
    }
}
