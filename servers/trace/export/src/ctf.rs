//! CTF 1.8, the Common Trace Format (what `babeltrace2` and Trace Compass open): a
//! directory holding
//!
//! - `metadata`: the trace's description in plain-text TSDL: a little-endian trace
//!   whose packets start with a header (magic [`MAGIC`], the trace's UUID, stream 0),
//!   an `env` (`domain` and `tracer_name` `gaon`), the clock `gaon` (1 GHz: times are
//!   nanoseconds from the trace's start, so its offset is 0), and one stream class
//!   whose packet context has the packet's first and last event times, its sizes (in
//!   bits), `events_discarded` and `cpu_id`;
//! - `stream_N`, one per core: that core's events in time order, in packets of at most
//!   [`PACKET_BYTES`] (no padding: a packet's size is its content's).
//!
//! Every Gaon event is an event class `gaon:<name>` ([`Event::name`], and `lost`,
//! `guest_task`, `guest_event` for the server's) whose id is its event number; events
//! of a number neither knows are `gaon:unknown` (id 0) with the number in `number`.
//! Their fields are `thread`, `thread_name`, `a`, `b`, except `switch` (the previous
//! and next thread's id, name and priority, and the previous one's state) and
//! `thread_name` (`thread`, `name`). Names are the last each thread had. `a` and `b`
//! are shown in hex where they hold badges, addresses, registers or raw words.
//!
//! A stream's `events_discarded` counts the records its core's ring dropped (the
//! `a` of the server's `Lost` records on that core) up to the end of each packet;
//! babeltrace2 reports the increases as discarded events (a count already in a
//! stream's first packet only as events it "may have discarded").

use std::fmt::Write as _;
use std::path::Path;

use gaon_abi::trace::{Event, Record, name_bytes, split_switch_info};
use gaon_trace::stream::Extra;

use crate::{Kind, Trace, kind};

/// A packet header's first word.
pub const MAGIC: u32 = 0xc1fc_1fc1;
/// The most bytes a packet takes (one larger event gets a packet of its own).
pub const PACKET_BYTES: usize = 64 * 1024;
/// Bytes of a packet's header: magic, UUID, stream id.
pub const HEADER_BYTES: usize = 4 + 16 + 4;
/// Bytes of a packet's context: two times, two sizes, `events_discarded`, `cpu_id`.
pub const CONTEXT_BYTES: usize = 5 * 8 + 4;

/// The server's events, in number order.
const EXTRAS: [Extra; 1] = [Extra::Lost];

/// Write `t` into `dir` (made if missing) as a CTF trace: a stream for each of its
/// cores (at most 256, as a record's `cpu` is a byte) and any core a record names.
pub fn write(t: &Trace, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let uuid = uuid(t);
    std::fs::write(dir.join("metadata"), metadata(t, &uuid))?;
    let cores = t
        .records
        .iter()
        .map(|r| u32::from(r.cpu) + 1)
        .fold(t.cpus.min(256), u32::max);
    let mut by_core: Vec<Vec<&Record>> = vec![Vec::new(); cores as usize];
    for r in &t.records {
        by_core[usize::from(r.cpu)].push(r);
    }
    for (cpu, records) in (0..cores).zip(by_core) {
        std::fs::write(dir.join(format!("stream_{cpu}")), stream(t, cpu, &records, &uuid))?;
    }
    Ok(())
}

/// The trace's UUID: a hash of its start, counter, cores and records, so the same
/// trace always gets the same one (RFC 9562 version 8, "custom").
pub fn uuid(t: &Trace) -> [u8; 16] {
    let mut words = vec![t.start, t.counter_hz, u64::from(t.cpus), t.records.len() as u64];
    words.extend(t.records.first().map(|r| r.time));
    words.extend(t.records.last().map(|r| r.time));
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    // FNV-1a from two bases, one per half.
    let fnv = |basis: u64| {
        bytes
            .iter()
            .fold(basis, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    out[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    out[6] = (out[6] & 0x0f) | 0x80;
    out[8] = (out[8] & 0x3f) | 0x80;
    out
}

/// `uuid` as text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
fn uuid_text(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `metadata` file: TSDL describing the trace, its clock, stream and events.
pub fn metadata(t: &Trace, uuid: &[u8; 16]) -> String {
    let uuid = uuid_text(uuid);
    let precision = 1_000_000_000u64.div_ceil(t.counter_hz.max(1));
    let mut m = format!(
        "/* CTF 1.8 */

typealias integer {{ size = 8; align = 8; signed = false; }} := uint8_t;
typealias integer {{ size = 16; align = 8; signed = false; }} := uint16_t;
typealias integer {{ size = 32; align = 8; signed = false; }} := uint32_t;
typealias integer {{ size = 64; align = 8; signed = false; }} := uint64_t;
typealias integer {{ size = 64; align = 8; signed = false; base = 16; }} := uint64_hex_t;

trace {{
\tmajor = 1;
\tminor = 8;
\tuuid = \"{uuid}\";
\tbyte_order = le;
\tpacket.header := struct {{
\t\tuint32_t magic;
\t\tuint8_t uuid[16];
\t\tuint32_t stream_id;
\t}};
}};

env {{
\tdomain = \"gaon\";
\ttracer_name = \"gaon\";
\thostname = \"gaon\";
\tcpus = {cpus};
\tcounter_hz = {hz};
}};

clock {{
\tname = gaon;
\tdescription = \"Gaon trace time: nanoseconds from the trace's start (the counter ran at {hz} Hz and read {start} at the start)\";
\tfreq = 1000000000;
\tprecision = {precision};
\toffset_s = 0;
\toffset = 0;
\tabsolute = false;
}};

typealias integer {{ size = 64; align = 8; signed = false; map = clock.gaon.value; }} := uint64_clock_gaon_t;

stream {{
\tid = 0;
\tpacket.context := struct {{
\t\tuint64_clock_gaon_t timestamp_begin;
\t\tuint64_clock_gaon_t timestamp_end;
\t\tuint64_t content_size;
\t\tuint64_t packet_size;
\t\tuint64_t events_discarded;
\t\tuint32_t cpu_id;
\t}};
\tevent.header := struct {{
\t\tuint16_t id;
\t\tuint64_clock_gaon_t timestamp;
\t}};
}};
",
        cpus = t.cpus,
        hz = t.counter_hz,
        start = t.start,
    );
    for (id, name, fields) in classes(t) {
        let _ = write!(
            m,
            "\nevent {{\n\tname = \"{name}\";\n\tid = {id};\n\tstream_id = 0;\n\tfields := struct {{\n"
        );
        for (field, value) in fields {
            let _ = writeln!(m, "\t\t{} {field};", value.tsdl());
        }
        m.push_str("\t};\n};\n");
    }
    m
}

/// An event's fields, named, in order.
type Fields = Vec<(&'static str, Field)>;

/// Every event class: its id, name and fields (their values are placeholders).
fn classes(t: &Trace) -> Vec<(u16, String, Fields)> {
    let template = |event| {
        payload(
            t,
            &Record {
                event,
                ..Record::default()
            },
        )
    };
    let mut out: Vec<_> = Event::ALL
        .iter()
        .map(|&e| (e as u16, format!("gaon:{}", e.name()), template(e as u16)))
        .collect();
    out.extend(
        EXTRAS
            .iter()
            .map(|&x| (x as u16, format!("gaon:{}", extra_name(x)), template(x as u16))),
    );
    out.push((0, "gaon:unknown".into(), template(0)));
    out
}

/// A server event's name.
fn extra_name(x: Extra) -> &'static str {
    match x {
        Extra::Lost => "lost",
    }
}

/// A kind's event class id: its number (0 for numbers no one knows).
fn class_id(k: Kind) -> u16 {
    match k {
        Kind::Kernel(e) => e as u16,
        Kind::Extra(x) => x as u16,
        Kind::Unknown(_) => 0,
    }
}

/// One field's value, and so its type.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    /// An 8-bit number.
    U8(u8),
    /// A 16-bit number.
    U16(u16),
    /// A 32-bit number.
    U32(u32),
    /// A 64-bit number.
    U64(u64),
    /// A 64-bit number shown in hex (badges, addresses, registers).
    Hex(u64),
    /// A NUL-terminated string (NULs in it are left out).
    Text(String),
    /// A switched-out thread's state (`gaon_abi::trace::PREV_*`).
    State(u8),
}

impl Field {
    /// Its TSDL type.
    fn tsdl(&self) -> &'static str {
        match self {
            Self::U8(_) => "uint8_t",
            Self::U16(_) => "uint16_t",
            Self::U32(_) => "uint32_t",
            Self::U64(_) => "uint64_t",
            Self::Hex(_) => "uint64_hex_t",
            Self::Text(_) => "string",
            Self::State(_) => "enum : uint8_t { runnable = 0, blocked = 1, stopped = 2 }",
        }
    }

    /// Append its bytes (little-endian) to `out`.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::U8(v) | Self::State(v) => out.push(*v),
            Self::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::U64(v) | Self::Hex(v) => out.extend_from_slice(&v.to_le_bytes()),
            Self::Text(s) => {
                out.extend(s.bytes().filter(|&b| b != 0));
                out.push(0);
            }
        }
    }
}

/// Record `r`'s fields, named, in the order its event class declares them.
fn payload(t: &Trace, r: &Record) -> Fields {
    let k = kind(r);
    let thread = || {
        [
            ("thread", Field::U32(r.thread)),
            ("thread_name", Field::Text(t.name(r.thread))),
        ]
    };
    match k {
        Kind::Kernel(Event::Switch) => {
            let (state, prev_prio, next_prio) = split_switch_info(r.b);
            let next = r.a as u32;
            vec![
                ("prev_tid", Field::U32(r.thread)),
                ("prev_comm", Field::Text(t.name(r.thread))),
                ("prev_state", Field::State(state)),
                ("prev_prio", Field::U8(prev_prio)),
                ("next_tid", Field::U32(next)),
                ("next_comm", Field::Text(t.name(next))),
                ("next_prio", Field::U8(next_prio)),
            ]
        }
        Kind::Kernel(Event::ThreadName) => {
            let (bytes, len) = name_bytes(r.a, r.b);
            let name = String::from_utf8_lossy(&bytes[..len]).into_owned();
            vec![("thread", Field::U32(r.thread)), ("name", Field::Text(name))]
        }
        _ => {
            let (hex_a, hex_b) = hex(k);
            let arg = |v, hex| if hex { Field::Hex(v) } else { Field::U64(v) };
            let mut out = Vec::with_capacity(5);
            if let Kind::Unknown(n) = k {
                out.push(("number", Field::U16(n)));
            }
            out.extend(thread());
            out.push(("a", arg(r.a, hex_a)));
            out.push(("b", arg(r.b, hex_b)));
            out
        }
    }
}

/// Whether `a` and `b` of kind `k` read better in hex (badges, addresses,
/// registers, raw words).
fn hex(k: Kind) -> (bool, bool) {
    match k {
        Kind::Kernel(e) => match e {
            Event::IpcSend | Event::IpcCall | Event::IpcRecv | Event::Signal => (true, false),
            Event::Fault | Event::VmExit | Event::GuestTaskName | Event::GuestTaskNameEnd => (false, true),
            Event::GuestEvent | Event::VmMmio => (true, true),
            _ => (false, false),
        },
        Kind::Unknown(_) => (true, true),
        Kind::Extra(Extra::Lost) => (false, false),
    }
}

/// Record `r` as an event: header (class id, time) and fields.
fn event(t: &Trace, r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&class_id(kind(r)).to_le_bytes());
    out.extend_from_slice(&t.ns(r.time).to_le_bytes());
    for (_, value) in payload(t, r) {
        value.encode(&mut out);
    }
    out
}

/// A packet on its way: its events' bytes, first and last times.
#[derive(Debug, Default)]
struct Packet {
    /// The events.
    body: Vec<u8>,
    /// The first event's time (ns).
    begin: Option<u64>,
    /// The last event's time (ns).
    end: u64,
}

/// Core `cpu`'s data stream: its `records` in packets (one, empty, if it has none).
fn stream(t: &Trace, cpu: u32, records: &[&Record], uuid: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut packet = Packet::default();
    let mut discarded = 0u64;
    for &r in records {
        let e = event(t, r);
        if !packet.body.is_empty() && HEADER_BYTES + CONTEXT_BYTES + packet.body.len() + e.len() > PACKET_BYTES {
            close(&mut out, &std::mem::take(&mut packet), uuid, cpu, discarded);
        }
        if kind(r) == Kind::Extra(Extra::Lost) {
            discarded = discarded.saturating_add(r.a);
        }
        let ns = t.ns(r.time);
        packet.begin.get_or_insert(ns);
        packet.end = ns;
        packet.body.extend_from_slice(&e);
    }
    if !packet.body.is_empty() || out.is_empty() {
        close(&mut out, &packet, uuid, cpu, discarded);
    }
    out
}

/// Append `p` with its header and context to `out`; `discarded` is the stream's
/// count of lost records up to its end.
fn close(out: &mut Vec<u8>, p: &Packet, uuid: &[u8; 16], cpu: u32, discarded: u64) {
    let bits = ((HEADER_BYTES + CONTEXT_BYTES + p.body.len()) * 8) as u64;
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(uuid);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&p.begin.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&p.end.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(&discarded.to_le_bytes());
    out.extend_from_slice(&cpu.to_le_bytes());
    out.extend_from_slice(&p.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one.
    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gaon-ctf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A little-endian word at `at`.
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// Each packet of a stream: (begin, end, size in bytes, events_discarded, cpu_id).
    fn packets(b: &[u8]) -> Vec<(u64, u64, usize, u64, u32)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let p = &b[at..];
            assert_eq!(u32::from_le_bytes(p[..4].try_into().unwrap()), MAGIC);
            let (content, size) = (u64_at(p, 40), u64_at(p, 48));
            assert_eq!(content, size);
            let size = usize::try_from(size / 8).unwrap();
            let cpu = u32::from_le_bytes(p[64..68].try_into().unwrap());
            out.push((u64_at(p, 24), u64_at(p, 32), size, u64_at(p, 56), cpu));
            at += size;
        }
        assert_eq!(at, b.len(), "the packets fill the file");
        out
    }

    #[test]
    fn the_sample_has_metadata_and_a_stream_per_core() {
        let t = crate::sample();
        let dir = temp_dir("sample");
        write(&t, &dir).unwrap();
        let m = std::fs::read_to_string(dir.join("metadata")).unwrap();
        let uuid = uuid(&t);
        assert!(m.starts_with("/* CTF 1.8 */"));
        for want in [
            "major = 1;",
            "minor = 8;",
            "byte_order = le;",
            &format!("uuid = \"{}\";", uuid_text(&uuid)),
            "domain = \"gaon\";",
            "freq = 1000000000;",
            "map = clock.gaon.value;",
            "uint64_t events_discarded;",
            "uint32_t cpu_id;",
            "name = \"gaon:switch\";\n\tid = 1;",
            "name = \"gaon:vm_exit\";\n\tid = 10;",
            "name = \"gaon:guest_task_switch\";\n\tid = 18;",
            "name = \"gaon:lost\";\n\tid = 256;",
            "\t\tstring prev_comm;\n",
            "\t\tstring name;\n",
        ] {
            assert!(m.contains(want), "{want:?} is missing from\n{m}");
        }
        assert_eq!(m.matches("\nevent {").count(), Event::ALL.len() + EXTRAS.len() + 1);
        let s0 = std::fs::read(dir.join("stream_0")).unwrap();
        assert_eq!(&s0[..4], &[0xc1, 0x1f, 0xfc, 0xc1]);
        assert_eq!(&s0[4..20], &uuid);
        assert_eq!(&s0[20..24], &[0; 4], "stream class 0");
        assert_eq!(packets(&s0), [(100, 6_000, s0.len(), 0, 0)]);
        let s1 = std::fs::read(dir.join("stream_1")).unwrap();
        assert_eq!(packets(&s1), [(1_050, 4_000, s1.len(), 0, 1)]);
        assert!(!dir.join("stream_2").exists());
        assert_eq!(uuid, super::uuid(&crate::sample()), "the same trace, the same UUID");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A trace of `n` IPC calls on core 1 of 2, with a `Lost` of 5 records among them.
    fn long_trace(n: u64) -> Trace {
        let mut records: Vec<Record> = (0..n)
            .map(|i| Record {
                time: 10 * i,
                event: Event::IpcCall as u16,
                cpu: 1,
                thread: 7,
                a: i,
                ..Record::default()
            })
            .collect();
        records[usize::try_from(n / 2).unwrap()] =
            gaon_trace::stream::extra(5 * n, 1, Extra::Lost, gaon_trace::stream::Source::Server, 0, 5, 0);
        Trace::read(&crate::write_stream(1_000_000_000, 2, 0, &records)).unwrap()
    }

    #[test]
    fn long_streams_are_cut_into_packets_that_count_lost_records() {
        let t = long_trace(10_000);
        let dir = temp_dir("long");
        write(&t, &dir).unwrap();
        let s0 = std::fs::read(dir.join("stream_0")).unwrap();
        assert_eq!(
            packets(&s0),
            [(0, 0, HEADER_BYTES + CONTEXT_BYTES, 0, 0)],
            "an idle core: one empty packet"
        );
        let ps = packets(&std::fs::read(dir.join("stream_1")).unwrap());
        assert!(ps.len() > 1, "{ps:?}");
        assert!(ps.iter().all(|p| p.2 <= PACKET_BYTES && p.0 <= p.1 && p.4 == 1));
        assert!(ps.windows(2).all(|w| w[0].1 <= w[1].0), "in time order");
        let lost_in = ps.iter().position(|p| p.0 <= 50_000 && 50_000 <= p.1).unwrap();
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(p.3, if i < lost_in { 0 } else { 5 }, "packet {i}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `babeltrace2 ARGS`'s output, or `None` (with a note) if it is not installed
    /// and `GAON_REQUIRE_TOOLS` is not `1`.
    fn babeltrace2(args: &[&std::ffi::OsStr]) -> Option<(String, String)> {
        match std::process::Command::new("babeltrace2").args(args).output() {
            Ok(o) => {
                let (out, err) = (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                );
                assert!(o.status.success(), "babeltrace2 failed:\n{err}");
                Some((out, err))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert_ne!(
                    std::env::var("GAON_REQUIRE_TOOLS").as_deref(),
                    Ok("1"),
                    "babeltrace2 is not installed"
                );
                eprintln!("note: babeltrace2 is not installed; not checking the CTF output with it");
                None
            }
            Err(e) => panic!("babeltrace2: {e}"),
        }
    }

    #[test]
    fn babeltrace2_prints_every_event_of_the_sample() {
        let dir = temp_dir("babeltrace2");
        write(&crate::sample(), &dir).unwrap();
        let Some((out, _)) = babeltrace2(&[dir.as_os_str()]) else {
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        };
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.iter().filter(|l| l.contains(" gaon:")).count(), 15, "{out}");
        let switch = lines
            .iter()
            .filter(|l| l.contains("gaon:switch: { cpu_id = 0 }"))
            .collect::<Vec<_>>();
        assert_eq!(switch.len(), 5, "{out}");
        assert!(
            switch
                .iter()
                .any(|l| l.contains("prev_comm = \"kv-client\"") && l.contains("next_comm = \"kv\"")),
            "{out}"
        );
        let exits: Vec<&&str> = lines.iter().filter(|l| l.contains("gaon:vm_exit:")).collect();
        assert_eq!(exits.len(), 1, "{out}");
        assert!(
            exits[0].contains("{ cpu_id = 1 }") && exits[0].contains("thread_name = \"linux.vcpu0\""),
            "{out}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.contains("gaon:thread_name:")).count(),
            4,
            "{out}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn babeltrace2_reports_lost_records_as_discarded_events() {
        let dir = temp_dir("babeltrace2-lost");
        write(&long_trace(10_000), &dir).unwrap();
        let Some((out, err)) = babeltrace2(&[dir.as_os_str()]) else {
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        };
        assert_eq!(out.lines().count(), 10_000, "every record is an event");
        assert!(err.contains("discarded 5 events"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
