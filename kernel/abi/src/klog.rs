//! The kernel log: one page the kernel appends its console output to (its own messages
//! and `DebugPutChar`) once a reader has bound a notification to it with
//! `DebugLogBind`, instead of driving the UART a user-level console server owns. Before
//! that, and on a panic or a halt, the kernel prints directly.
//!
//! Layout: `HEAD` (offset 0) is the number of bytes the kernel has ever written, `TAIL`
//! (offset 8) the number the reader has consumed (the reader writes it; the kernel reads
//! it only as a hint of what to print itself at a halt), and the bytes from offset
//! `DATA` on form a ring of `DATA_SIZE` bytes: byte `n` of the stream is at
//! `DATA + n % DATA_SIZE`. The kernel never waits for the reader: a reader that falls
//! more than `DATA_SIZE` bytes behind has lost the oldest ones ([`Span::lost`]).

/// Offset of the head counter (a little-endian `u64`).
pub const HEAD: usize = 0;
/// Offset of the tail counter.
pub const TAIL: usize = 8;
/// Offset of the ring.
pub const DATA: usize = 64;
/// Size of the page.
pub const PAGE_SIZE: usize = 4096;
/// Bytes in the ring.
pub const DATA_SIZE: usize = PAGE_SIZE - DATA;

/// Where stream position `pos` is in the page.
pub const fn offset(pos: u64) -> usize {
    DATA + (pos % DATA_SIZE as u64) as usize
}

/// What a reader at `tail` can take when the kernel is at `head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First position still in the ring.
    pub from: u64,
    /// One past the last written position.
    pub to: u64,
    /// Bytes overwritten before the reader got to them.
    pub lost: u64,
}

impl Span {
    /// The span for a reader at `tail`; a `tail` past `head` (a confused reader) reads
    /// nothing.
    pub const fn new(head: u64, tail: u64) -> Self {
        let oldest = head.saturating_sub(DATA_SIZE as u64);
        if tail > head {
            return Self {
                from: head,
                to: head,
                lost: 0,
            };
        }
        if tail < oldest {
            Self {
                from: oldest,
                to: head,
                lost: oldest - tail,
            }
        } else {
            Self {
                from: tail,
                to: head,
                lost: 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(
            Span::new(10, 4),
            Span {
                from: 4,
                to: 10,
                lost: 0
            }
        );
        let big = DATA_SIZE as u64 + 100;
        assert_eq!(
            Span::new(big, 0),
            Span {
                from: 100,
                to: big,
                lost: 100
            }
        );
        assert_eq!(
            Span::new(5, 9),
            Span {
                from: 5,
                to: 5,
                lost: 0
            }
        );
        assert_eq!(offset(0), DATA);
        assert_eq!(offset(DATA_SIZE as u64 + 3), DATA + 3);
    }
}
