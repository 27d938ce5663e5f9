//! A Gaon trace stream (`gaon_trace::stream`: a header, then 32-byte records in time
//! order) read into a [`Trace`], and written as files the usual tools open:
//! [`json`] (Chrome's trace event format, which Perfetto opens), [`tracedat`]
//! (trace-cmd's `trace.dat`, which `trace-cmd report` and KernelShark open), and
//! [`ctf`] (CTF 1.8, which babeltrace2 and Trace Compass open). Host only (std).
#![deny(unsafe_code)]

pub mod ctf;
pub mod json;
pub mod tracedat;

use std::collections::BTreeMap;

use gaon_abi::trace::{Event, Record};
use gaon_trace::stream::{self, Extra, Header};
use zerocopy::FromBytes;

/// A whole trace, read from a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The counter's frequency (record times are counter values).
    pub counter_hz: u64,
    /// Cores (every record's `cpu` is below this).
    pub cpus: u32,
    /// The counter when the trace began: its first record's, or the server's start if
    /// that is earlier.
    pub start: u64,
    /// The records, in time order.
    pub records: Vec<Record>,
    /// Thread names by id (the last `ThreadName` of each).
    pub names: BTreeMap<u32, String>,
}

/// Why a stream could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Shorter than its header.
    Short,
    /// Not a Gaon trace stream, or another version.
    NotAStream,
    /// The header's number of cores is 0 or more than a record can name (256).
    BadCores(u32),
    /// A record's time is before the one before it (at record `index`).
    OutOfOrder {
        /// The record.
        index: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short => write!(f, "shorter than a trace stream's header"),
            Self::NotAStream => write!(f, "not a Gaon trace stream (version {})", stream::VERSION),
            Self::BadCores(n) => write!(f, "the header says {n} cores; a trace has 1 to 256"),
            Self::OutOfOrder { index } => write!(f, "record {index} is older than the one before it"),
        }
    }
}

impl Trace {
    /// Read a stream. A partial last record (a trace cut off) is left out.
    pub fn read(bytes: &[u8]) -> Result<Self, ReadError> {
        let (header, rest) = Header::read_from_prefix(bytes).map_err(|_| ReadError::Short)?;
        if header.magic != stream::MAGIC
            || header.version != stream::VERSION
            || header.record_bytes as usize != gaon_abi::trace::RECORD_BYTES
        {
            return Err(ReadError::NotAStream);
        }
        if !(1..=256).contains(&header.cpus) {
            return Err(ReadError::BadCores(header.cpus));
        }
        let records: Vec<Record> = rest
            .chunks_exact(gaon_abi::trace::RECORD_BYTES)
            .filter_map(|c| Record::read_from_bytes(c).ok())
            .collect();
        if let Some(i) = records.windows(2).position(|w| w[1].time < w[0].time) {
            return Err(ReadError::OutOfOrder { index: i + 1 });
        }
        let mut names = BTreeMap::new();
        for r in records.iter().filter(|r| r.event == Event::ThreadName as u16) {
            let (bytes, len) = gaon_abi::trace::name_bytes(r.a, r.b);
            names.insert(r.thread, String::from_utf8_lossy(&bytes[..len]).into_owned());
        }
        // Records the kernel made before the server started (the root server turns
        // tracing on before any server runs) count from the first of them.
        let start = records.first().map_or(header.start, |r| r.time.min(header.start));
        Ok(Self {
            counter_hz: header.counter_hz.max(1),
            cpus: header.cpus,
            start,
            records,
            names,
        })
    }

    /// The name of thread `tid`: its own, `idle` for 0, else `thread-N`.
    pub fn name(&self, tid: u32) -> String {
        match (tid, self.names.get(&tid)) {
            (0, _) => "idle".into(),
            (_, Some(n)) => n.clone(),
            (_, None) => format!("thread-{tid}"),
        }
    }

    /// Nanoseconds from the trace's start to counter value `time`.
    pub fn ns(&self, time: u64) -> u64 {
        let d = u128::from(time.saturating_sub(self.start));
        u64::try_from(d * 1_000_000_000 / u128::from(self.counter_hz)).unwrap_or(u64::MAX)
    }
}

/// The guests that report their own tasks (`guest_task_switch`, `guest_task_name`,
/// from trace hypercalls or a VMM's Linux probe), as the exporters draw them: a guest
/// is a VM (its vCPU threads are named `<vm>.vcpuN`), its vCPU threads in the order
/// they first switched tasks, and its tasks' last names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guests {
    /// The guests' names (the VM's), in order of their first task switch.
    pub names: Vec<String>,
    /// vCPU threads that switched tasks, in that order, each with its guest's index.
    pub vcpus: Vec<(u32, usize)>,
    /// Task names by (guest, task), the last each was given; a long name (a Linux
    /// `comm`) joined from its two records.
    pub tasks: BTreeMap<(usize, u64), String>,
}

impl Guests {
    /// The guests of `t`.
    pub fn of(t: &Trace) -> Self {
        let mut g = Self::default();
        // Each thread's guest, the guests in order of their first record.
        let mut guest_of_thread: BTreeMap<u32, usize> = BTreeMap::new();
        let mut guest_of = |g: &mut Self, thread: u32| {
            *guest_of_thread.entry(thread).or_insert_with(|| {
                let name = t.name(thread);
                let vm = name
                    .rsplit_once(".vcpu")
                    .map_or(name.as_str(), |(vm, _)| vm)
                    .to_string();
                g.names.iter().position(|n| *n == vm).unwrap_or_else(|| {
                    g.names.push(vm);
                    g.names.len() - 1
                })
            })
        };
        // Names as bytes (a name's halves are joined before they are decoded: a
        // character may straddle them).
        let mut raw: BTreeMap<(usize, u64), [u8; 16]> = BTreeMap::new();
        for r in &t.records {
            match kind(r) {
                Kind::Kernel(e @ (Event::GuestTaskName | Event::GuestTaskNameEnd)) => {
                    let i = guest_of(&mut g, r.thread);
                    let name = raw.entry((i, r.a)).or_default();
                    if e == Event::GuestTaskName {
                        *name = [0; 16];
                        name[..8].copy_from_slice(&r.b.to_le_bytes());
                    } else {
                        name[8..].copy_from_slice(&r.b.to_le_bytes());
                    }
                }
                Kind::Kernel(Event::GuestTaskSwitch) => {
                    let i = guest_of(&mut g, r.thread);
                    // vCPUs in the order of their first switch.
                    if !g.vcpus.iter().any(|v| v.0 == r.thread) {
                        g.vcpus.push((r.thread, i));
                    }
                }
                _ => {}
            }
        }
        for (key, bytes) in raw {
            let len = bytes.iter().position(|&b| b == 0).unwrap_or(16);
            g.tasks.insert(key, String::from_utf8_lossy(&bytes[..len]).into_owned());
        }
        g
    }

    /// Guest `guest`'s task `task`'s name, `task N` if it has none.
    pub fn task_name(&self, guest: usize, task: u64) -> String {
        self.tasks
            .get(&(guest, task))
            .cloned()
            .unwrap_or_else(|| format!("task {task}"))
    }
}

/// What a record is: a kernel event, one the server added, or unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A kernel event.
    Kernel(Event),
    /// An event the trace server added.
    Extra(Extra),
    /// Neither (a newer producer): kept, shown by number.
    Unknown(u16),
}

/// What `r` is.
pub fn kind(r: &Record) -> Kind {
    if let Some(e) = Event::from_raw(r.event) {
        return Kind::Kernel(e);
    }
    match r.event {
        x if x == Extra::Lost as u16 => Kind::Extra(Extra::Lost),
        x => Kind::Unknown(x),
    }
}

/// A stream of `records` (for tests and tools that make one).
pub fn write_stream(counter_hz: u64, cpus: u32, start: u64, records: &[Record]) -> Vec<u8> {
    use zerocopy::IntoBytes;
    let mut out = Header::new(counter_hz, cpus, start).as_bytes().to_vec();
    for r in records {
        out.extend_from_slice(r.as_bytes());
    }
    out
}

/// A small trace for the exporters' tests: two cores; `console` (1) and `kv` (2) on
/// core 0, a call from `kv-client` (3) to `kv` answered, and `linux.vcpu0` (4) on core
/// 1 taking a VM exit; counter at 1 GHz so times are nanoseconds.
pub fn sample() -> Trace {
    use gaon_abi::trace::{PREV_BLOCKED, PREV_RUNNABLE, name_words, switch_info};
    let rec = |time: u64, cpu: u8, e: Event, thread: u32, a: u64, b: u64| Record {
        time,
        event: e as u16,
        cpu,
        flags: 0,
        thread,
        a,
        b,
    };
    let name = |time, tid, n: &str| {
        let (a, b) = name_words(n.as_bytes());
        rec(time, 0, Event::ThreadName, tid, a, b)
    };
    let records = vec![
        name(100, 1, "console"),
        name(110, 2, "kv"),
        name(120, 3, "kv-client"),
        name(130, 4, "linux.vcpu0"),
        rec(1_000, 0, Event::Switch, 0, 3, switch_info(PREV_RUNNABLE, 0, 100)),
        rec(1_050, 1, Event::Switch, 0, 4, switch_info(PREV_RUNNABLE, 0, 99)),
        rec(2_000, 0, Event::IpcCall, 3, 7, 2),
        rec(2_010, 0, Event::Switch, 3, 2, switch_info(PREV_BLOCKED, 100, 150)),
        rec(2_020, 0, Event::IpcRecv, 2, 7, 3),
        rec(3_000, 1, Event::VmExit, 4, 1, 0x5a00_0000),
        rec(3_500, 0, Event::IpcReply, 2, 0, 3),
        rec(3_510, 0, Event::Switch, 2, 3, switch_info(PREV_BLOCKED, 150, 100)),
        rec(4_000, 1, Event::VmEntry, 4, 0, 0),
        rec(5_000, 0, Event::Switch, 3, 1, switch_info(PREV_RUNNABLE, 100, 200)),
        rec(6_000, 0, Event::Switch, 1, 0, switch_info(PREV_BLOCKED, 200, 0)),
    ];
    Trace::read(&write_stream(1_000_000_000, 2, 0, &records)).expect("a good stream")
}

/// Helpers of the exporters' tests.
#[cfg(test)]
pub(crate) mod testing {
    use gaon_abi::trace::{Event, Record};

    /// A record on core 0.
    pub fn rec(time: u64, thread: u32, e: Event, a: u64, b: u64) -> Record {
        Record {
            time,
            event: e as u16,
            cpu: 0,
            flags: 0,
            thread,
            a,
            b,
        }
    }

    /// Up to 8 bytes as a name word (little-endian, NUL-padded).
    pub fn word(s: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_read_with_its_names() {
        let t = sample();
        assert_eq!(t.cpus, 2);
        assert_eq!(t.records.len(), 15);
        assert_eq!(t.name(2), "kv");
        assert_eq!(t.name(0), "idle");
        assert_eq!(t.name(99), "thread-99");
        assert_eq!(t.ns(2_000), 2_000);
        assert_eq!(kind(&t.records[4]), Kind::Kernel(Event::Switch));
    }

    #[test]
    fn bad_streams_are_refused() {
        assert_eq!(Trace::read(b"short"), Err(ReadError::Short));
        let mut s = write_stream(1, 1, 0, &[]);
        s[0] = b'X';
        assert_eq!(Trace::read(&s), Err(ReadError::NotAStream));
        let r = |time| Record {
            time,
            ..Record::default()
        };
        let s = write_stream(1, 1, 0, &[r(5), r(3)]);
        assert_eq!(Trace::read(&s), Err(ReadError::OutOfOrder { index: 1 }));
        assert_eq!(Trace::read(&write_stream(1, 0, 0, &[])), Err(ReadError::BadCores(0)));
        assert_eq!(
            Trace::read(&write_stream(1, u32::MAX, 0, &[])),
            Err(ReadError::BadCores(u32::MAX)),
            "an exporter would make a stream per core"
        );
        // A record cut off at the end is left out.
        let mut s = write_stream(1, 1, 0, &[r(5)]);
        s.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Trace::read(&s).unwrap().records.len(), 1);
    }
}
