//! The stream the trace server writes: a [`Header`], then [`Record`]s (the kernel's
//! 32-byte layout, `gaon_abi::trace::Record`) in time order. Records from the kernel
//! keep their event numbers; the server adds its own ([`Extra`]) above
//! [`EXTRA_BASE`], with the source in `flags` ([`Source`]).

use gaon_abi::trace::Record;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// [`Header::magic`].
pub const MAGIC: u64 = u64::from_le_bytes(*b"GAONTRCS");
/// [`Header::version`].
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 64;

/// The start of a stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// Bytes of each record (`gaon_abi::trace::RECORD_BYTES`).
    pub record_bytes: u32,
    /// The counter's frequency: record times are counter values.
    pub counter_hz: u64,
    /// Cores the records come from (their `cpu` is below this).
    pub cpus: u32,
    /// Zero.
    pub reserved0: u32,
    /// The counter when the trace began.
    pub start: u64,
    /// Zero.
    pub reserved: [u64; 3],
}

static_assertions::const_assert_eq!(core::mem::size_of::<Header>(), HEADER_BYTES);

impl Header {
    /// A stream's header.
    pub const fn new(counter_hz: u64, cpus: u32, start: u64) -> Self {
        Self {
            magic: MAGIC,
            version: VERSION,
            record_bytes: gaon_abi::trace::RECORD_BYTES as u32,
            counter_hz,
            cpus,
            reserved0: 0,
            start,
            reserved: [0; 3],
        }
    }
}

/// Where a record came from (`Record::flags`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The kernel's rings.
    Kernel = 0,
    /// The trace server itself.
    Server = 1,
    /// A VMM.
    Vmm = 2,
    /// A guest, through its VMM.
    Guest = 3,
}

/// Event numbers the server adds start here (the kernel's are below).
pub const EXTRA_BASE: u16 = 0x100;

/// The server's own events.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extra {
    /// Records a ring dropped since the last such record. `cpu`: the ring's core; `a`:
    /// how many.
    Lost = EXTRA_BASE,
}

/// A record the server makes.
pub const fn extra(time: u64, cpu: u8, what: Extra, source: Source, thread: u32, a: u64, b: u64) -> Record {
    Record {
        time,
        event: what as u16,
        cpu,
        flags: source as u8,
        thread,
        a,
        b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn the_header_is_fixed() {
        let h = Header::new(62_500_000, 2, 7);
        let b = h.as_bytes();
        assert_eq!(&b[..8], b"GAONTRCS");
        assert_eq!(Header::read_from_bytes(b).unwrap(), h);
        assert_eq!(h.record_bytes, 32);
    }
}
