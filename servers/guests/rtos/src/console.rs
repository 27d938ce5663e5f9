//! Text out through `CONSOLE_WRITE`, which carries at most 48 bytes
//! (`gaon_abi::hypercall::CONSOLE_MAX`): a writer that collects what `core::fmt` gives
//! it and hands it on in pieces of at most that many bytes, one ending at each newline.
//! The VMM passes the pieces to the console as they come, and the console makes lines of
//! them, so a long line arrives whole.

use core::fmt;

use gaon_abi::hypercall::CONSOLE_MAX;

/// A `core::fmt` writer that calls `out` with each piece: at most [`CONSOLE_MAX`]
/// bytes, and at most one newline, its last byte. The rest goes out when it is dropped
/// (or on [`Pieces::flush`]).
#[derive(Debug)]
pub struct Pieces<F: FnMut(&[u8])> {
    buf: [u8; CONSOLE_MAX],
    len: usize,
    out: F,
}

impl<F: FnMut(&[u8])> Pieces<F> {
    pub const fn new(out: F) -> Self {
        Self {
            buf: [0; CONSOLE_MAX],
            len: 0,
            out,
        }
    }

    /// Hand on what is collected.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.out)(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    /// Add bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' || self.len == CONSOLE_MAX {
                self.flush();
            }
        }
    }
}

impl<F: FnMut(&[u8])> fmt::Write for Pieces<F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl<F: FnMut(&[u8])> Drop for Pieces<F> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    fn pieces(text: &str) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut p = Pieces::new(|b: &[u8]| got.push(b.to_vec()));
        write!(p, "{text}").unwrap();
        drop(p);
        got
    }

    #[test]
    fn long_lines_are_cut_at_48_bytes_and_lines_end_pieces() {
        let line = format!("rtos: {}\n", "x".repeat(100));
        let got = pieces(&line);
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [48, 48, 11]);
        assert_eq!(got.concat(), line.as_bytes());
        let got = pieces("a\nbc\n\nd");
        assert_eq!(got, [&b"a\n"[..], b"bc\n", b"\n", b"d"]);
        assert!(pieces("").is_empty());
        // Exactly 48 bytes, then the newline alone.
        let got = pieces(&format!("{}\n", "y".repeat(48)));
        assert_eq!(got.iter().map(Vec::len).collect::<Vec<_>>(), [48, 1]);
    }
}
