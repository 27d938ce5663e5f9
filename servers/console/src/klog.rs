//! Reading the kernel log page (`gaon_abi::klog`), free of hardware: the kernel appends
//! its console output there once the console has bound a notification to it, and the
//! console prints it as the `kernel` client's lines. The page is read through 32-bit
//! accesses (`Page`), as the console reads its other windows.

use libl4::gaon_abi::klog::{self, Span};

/// 32-bit access to the page.
pub trait Page {
    /// The word at byte offset `off` (a multiple of 4).
    fn read32(&self, off: usize) -> u32;
    /// Write the word at byte offset `off`.
    fn write32(&self, off: usize, v: u32);
}

fn read64(p: &impl Page, off: usize) -> u64 {
    // High, low, high again: a kernel on another core cannot tear it.
    loop {
        let hi = p.read32(off + 4);
        let lo = p.read32(off);
        if p.read32(off + 4) == hi {
            return u64::from(hi) << 32 | u64::from(lo);
        }
    }
}

fn byte(p: &impl Page, pos: u64) -> u8 {
    let off = klog::offset(pos);
    (p.read32(off & !3) >> (8 * (off & 3))) as u8
}

/// The reader's position in the kernel's output.
#[derive(Debug, Default)]
pub struct Reader {
    tail: u64,
}

impl Reader {
    /// Hand every byte the kernel wrote since the last call to `out`, record how far
    /// the reader got in the page, and return how many bytes were overwritten before
    /// they could be read.
    pub fn drain(&mut self, p: &impl Page, out: &mut impl FnMut(u8)) -> u64 {
        let span = Span::new(read64(p, klog::HEAD), self.tail);
        for pos in span.from..span.to {
            out(byte(p, pos));
        }
        self.tail = span.to;
        p.write32(klog::TAIL, self.tail as u32);
        p.write32(klog::TAIL + 4, (self.tail >> 32) as u32);
        span.lost
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use core::cell::RefCell;
    use std::vec::Vec;

    use super::*;

    /// A page, and a kernel that appends to it as `kernel/src/console.rs` does.
    struct Fake(RefCell<Vec<u8>>, RefCell<u64>);
    impl Fake {
        fn new() -> Self {
            Self(RefCell::new(std::vec![0; klog::PAGE_SIZE]), RefCell::new(0))
        }
        fn kernel_writes(&self, s: &[u8]) {
            let mut head = self.1.borrow_mut();
            for &b in s {
                self.0.borrow_mut()[klog::offset(*head)] = b;
                *head += 1;
            }
            self.0.borrow_mut()[klog::HEAD..klog::HEAD + 8].copy_from_slice(&head.to_le_bytes());
        }
        fn tail(&self) -> u64 {
            u64::from_le_bytes(self.0.borrow()[klog::TAIL..klog::TAIL + 8].try_into().unwrap())
        }
    }
    impl Page for Fake {
        fn read32(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
        }
        fn write32(&self, off: usize, v: u32) {
            self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    fn drain(r: &mut Reader, p: &Fake) -> (Vec<u8>, u64) {
        let mut got = Vec::new();
        let lost = r.drain(p, &mut |b| got.push(b));
        (got, lost)
    }

    #[test]
    fn reads_what_the_kernel_wrote_once_and_reports_its_position() {
        let (p, mut r) = (Fake::new(), Reader::default());
        p.kernel_writes(b"timer: first tick\n");
        assert_eq!(drain(&mut r, &p), (b"timer: first tick\n".to_vec(), 0));
        assert_eq!(drain(&mut r, &p), (Vec::new(), 0));
        p.kernel_writes(b"more");
        assert_eq!(drain(&mut r, &p).0, b"more");
        assert_eq!(p.tail(), 22);
    }

    #[test]
    fn a_reader_left_behind_loses_the_oldest_bytes_and_says_how_many() {
        let (p, mut r) = (Fake::new(), Reader::default());
        let text: Vec<u8> = (0..klog::DATA_SIZE + 10).map(|i| b'a' + (i % 26) as u8).collect();
        p.kernel_writes(&text);
        let (got, lost) = drain(&mut r, &p);
        assert_eq!(lost, 10);
        assert_eq!(got, text[10..]);
    }
}
