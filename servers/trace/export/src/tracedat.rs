//! trace-cmd's `trace.dat` (what `trace-cmd report` and KernelShark open), written
//! from the format in trace-cmd's `trace-cmd.dat.v6(5)`.
//!
//! File format version 6: its sections simply follow each other, and Debian 12's
//! trace-cmd (3.1.6) and KernelShark (2.2) read it. Version 7 adds a section table,
//! compression and more options, none of which a Gaon trace needs. Little-endian,
//! 8-byte longs, 4096-byte pages.
//!
//! - `header_page` and `header_event` as a 64-bit Linux writes them, no ftrace
//!   events, empty kallsyms and printk formats, and a cmdline (`id name`) for every
//!   thread the trace names or mentions.
//! - Two event systems. `sched` holds `sched_switch` with Linux's fields (KernelShark
//!   draws its CPU and task plots from them): one per Gaon `Switch`, `common_pid` the
//!   stopped thread, thread 0 being idle (pid 0, comm `swapper/N`). Gaon's state
//!   becomes Linux's `prev_state`: runnable is 0 (`R`), blocked 1 (`S`), stopped (and
//!   anything else) 0x40, Linux's `TASK_PARKED` (`P`; libtraceevent's older table
//!   calls it dead, `x`): it waits for another thread to let it run. A priority `p`
//!   (0..=255, higher first) becomes `255 - p` (lower first, as Linux's `prio`).
//! - `gaon` holds one event per other kind ([`Event::name`]; the server's `Lost` as
//!   `lost`), each `u32 thread; u64 a; u64 b;` as in
//!   the record, `common_pid` the record's thread, printed with what `a` and `b` mean
//!   (`ipc_call: thread=3 badge=0x7 receiver=2`). Unknown event numbers are left out.
//! - Guests that report their own tasks ([`crate::Guests`]: trace hypercalls, a
//!   Linux probe) get a CPU per vCPU thread after the cores (CPU `cores + k` is the
//!   k-th vCPU thread to switch tasks; `trace-cmd report` and docs/trace.md name them),
//!   with a `sched_switch` per task switch between the guest's tasks: their pids are
//!   [`guest_pid`] (from [`GUEST_PID_BASE`]), their comms as the guest named them, so
//!   KernelShark draws each guest task as a task of its own.
//! - Event ids: [`SCHED_SWITCH_ID`] for `sched_switch`, [`GAON_ID_BASE`] plus the
//!   event number for the rest.
//! - The flyrecord data: per core, ring-buffer pages (a u64 timestamp, a u64 commit:
//!   the bytes of events after the 16-byte header), each event a 32-bit header
//!   (`type_len` in bits 0..5: its length in words; `time_delta` in bits 5..32: ns
//!   since the one before, or since the page's timestamp), preceded by a time extend
//!   (`type_len` 30, the delta's bits 27.. in the next word) when the delta does not
//!   fit 27 bits. Times are [`Trace::ns`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use gaon_abi::trace::{Event, Record, split_switch_info};
use gaon_trace::stream::Extra;

use crate::{Kind, Trace, kind};

/// The ring buffer's page size.
pub const PAGE: usize = 4096;
/// Bytes of a page's header (timestamp and commit).
pub const PAGE_HEADER: usize = 16;
/// Guest tasks' pids start here ([`guest_pid`]): above any Gaon thread id a trace has.
pub const GUEST_PID_BASE: u32 = 1 << 30;
/// `sched_switch`'s event id.
pub const SCHED_SWITCH_ID: u16 = 300;
/// A `gaon` event's id is this plus its event number.
pub const GAON_ID_BASE: u16 = 1000;
/// Linux's `prev_state` for a thread that stopped (`TASK_PARKED`).
pub const STATE_STOPPED: u64 = 0x40;
/// An event header's `type_len` of a time extend.
pub const TYPE_TIME_EXTEND: u32 = 30;
/// The largest `type_len` that is a data length (in 4-byte words).
pub const TYPE_DATA_MAX: u32 = 28;
/// Bits of an event header's `time_delta`.
pub const DELTA_BITS: u32 = 27;
/// Bytes of a comm field (`TASK_COMM_LEN`), its NUL included.
const COMM: usize = 16;
/// The extras that get `gaon` events.
const EXTRAS: [Extra; 1] = [Extra::Lost];

/// The trace as a `trace.dat` file.
pub fn write(t: &Trace) -> Vec<u8> {
    write_window(t, None)
}

/// The part of the trace from `from` to `to` (ns from its start) as a `trace.dat`
/// file, its threads and guest tasks named as in the whole trace (KernelShark draws a
/// core's plot only where it finds that core's events among the others', so a dense
/// trace is best looked at a window at a time: `scripts/trace-picture`).
pub fn write_window(whole: &Trace, window: Option<(u64, u64)>) -> Vec<u8> {
    let part;
    let t = match window {
        Some((from, to)) => {
            part = Trace {
                records: whole
                    .records
                    .iter()
                    .copied()
                    .filter(|r| (from..to).contains(&whole.ns(r.time)))
                    .collect(),
                ..whole.clone()
            };
            &part
        }
        None => whole,
    };
    let guests = crate::Guests::of(whole);
    let mut out = vec![0x17, 0x08, 0x44];
    out.extend_from_slice(b"tracing6\0");
    out.push(0); // little-endian
    out.push(8); // bytes per long
    put_u32(&mut out, PAGE as u32);
    section(&mut out, "header_page", &header_page());
    section(&mut out, "header_event", HEADER_EVENT);
    put_u32(&mut out, 0); // ftrace event formats
    put_u32(&mut out, 2); // event systems
    out.extend_from_slice(b"sched\0");
    put_u32(&mut out, 1);
    put_text(&mut out, &sched_switch_format());
    out.extend_from_slice(b"gaon\0");
    let kinds = gaon_kinds();
    put_u32(&mut out, kinds.len() as u32);
    for k in kinds {
        put_text(&mut out, &gaon_format(k));
    }
    put_u32(&mut out, 0); // kallsyms
    put_u32(&mut out, 0); // printk formats
    put_text(&mut out, &cmdlines(t, &guests));
    put_u32(&mut out, t.cpus + guests.vcpus.len() as u32);
    out.extend_from_slice(b"flyrecord\0");
    let mut data: Vec<Vec<u8>> = (0..t.cpus).map(|cpu| cpu_data(t, cpu)).collect();
    data.extend(guests.vcpus.iter().map(|&v| guest_cpu_data(t, &guests, v)));
    let mut at = (out.len() + data.len() * 16).next_multiple_of(PAGE);
    for d in &data {
        put_u64(&mut out, at as u64);
        put_u64(&mut out, d.len() as u64);
        at += d.len();
    }
    out.resize(out.len().next_multiple_of(PAGE), 0);
    for d in &data {
        out.extend_from_slice(d);
    }
    out
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `text` after its length (a u64).
fn put_text(out: &mut Vec<u8>, text: &str) {
    put_u64(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A header section: its NUL-terminated name, then `text` after its length.
fn section(out: &mut Vec<u8>, name: &str, text: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    put_text(out, text);
}

/// The ring buffer's page header, as Linux's `events/header_page` describes it.
fn header_page() -> String {
    format!(
        "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
         \tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
         \tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
         \tfield: char data;\toffset:{PAGE_HEADER};\tsize:{};\tsigned:1;\n",
        PAGE - PAGE_HEADER
    )
}

/// The ring buffer's event header, as Linux's `events/header_event` describes it.
const HEADER_EVENT: &str = "# compressed entry header\n\
    \ttype_len    :    5 bits\n\
    \ttime_delta  :   27 bits\n\
    \tarray       :   32 bits\n\
    \n\
    \tpadding     : type == 29\n\
    \ttime_extend : type == 30\n\
    \ttime_stamp : type == 31\n\
    \tdata max type_len  == 28\n";

/// A format file: `name`, `id`, the common fields, `fields` (type, name, offset,
/// size, signed) and `print`.
fn format(name: &str, id: u16, fields: &[(&str, &str, usize, usize, bool)], print: &str) -> String {
    let line = |s: &mut String, (ty, name, offset, size, signed): (&str, &str, usize, usize, bool)| {
        let signed = u8::from(signed);
        let _ = writeln!(
            s,
            "\tfield:{ty} {name};\toffset:{offset};\tsize:{size};\tsigned:{signed};"
        );
    };
    let mut s = format!("name: {name}\nID: {id}\nformat:\n");
    line(&mut s, ("unsigned short", "common_type", 0, 2, false));
    line(&mut s, ("unsigned char", "common_flags", 2, 1, false));
    line(&mut s, ("unsigned char", "common_preempt_count", 3, 1, false));
    line(&mut s, ("int", "common_pid", 4, 4, true));
    s.push('\n');
    for f in fields {
        line(&mut s, *f);
    }
    let _ = writeln!(s, "\nprint fmt: {print}");
    s
}

/// `sched_switch`'s format, Linux's fields.
fn sched_switch_format() -> String {
    let fields = [
        ("char", "prev_comm[16]", 8, 16, false),
        ("pid_t", "prev_pid", 24, 4, true),
        ("int", "prev_prio", 28, 4, true),
        ("long", "prev_state", 32, 8, true),
        ("char", "next_comm[16]", 40, 16, false),
        ("pid_t", "next_pid", 56, 4, true),
        ("int", "next_prio", 60, 4, true),
    ];
    let print = format!(
        "\"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s ==> next_comm=%s next_pid=%d \
         next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, \
         __print_symbolic(REC->prev_state, {{ 0, \"R\" }}, {{ 1, \"S\" }}, {{ {STATE_STOPPED:#x}, \"P\" }}), \
         REC->next_comm, REC->next_pid, REC->next_prio"
    );
    format("sched_switch", SCHED_SWITCH_ID, &fields, &print)
}

/// The kinds with a `gaon` event: every kernel event but `Switch`, and the extras.
fn gaon_kinds() -> Vec<Kind> {
    let kernel = Event::ALL.into_iter().filter(|&e| e != Event::Switch).map(Kind::Kernel);
    kernel.chain(EXTRAS.into_iter().map(Kind::Extra)).collect()
}

/// A `gaon` event's name.
fn gaon_name(k: Kind) -> String {
    match k {
        Kind::Kernel(e) => e.name().into(),
        Kind::Extra(Extra::Lost) => "lost".into(),
        Kind::Unknown(n) => format!("event_{n}"),
    }
}

/// A `gaon` event's id.
fn gaon_id(k: Kind) -> u16 {
    let raw = match k {
        Kind::Kernel(e) => e as u16,
        Kind::Extra(x) => x as u16,
        Kind::Unknown(n) => n,
    };
    GAON_ID_BASE + raw
}

/// How a `gaon` event prints `a` and `b` (what they mean, `gaon_abi::trace::Event`).
fn arg_formats(k: Kind) -> (&'static str, &'static str) {
    match k {
        Kind::Kernel(Event::IpcSend | Event::IpcCall) => ("badge=0x%llx", "receiver=%llu"),
        Kind::Kernel(Event::IpcRecv) => ("badge=0x%llx", "sender=%llu"),
        Kind::Kernel(Event::IpcReply) => ("a=%llu", "caller=%llu"),
        Kind::Kernel(Event::Signal) => ("badge=0x%llx", "woke=%llu"),
        Kind::Kernel(Event::IrqEntry | Event::IrqExit) => ("line=%llu", "b=%llu"),
        Kind::Kernel(Event::Fault) => ("kind=%llu", "address=0x%llx"),
        Kind::Kernel(Event::VmExit) => ("exit=%llu", "info=0x%llx"),
        Kind::Kernel(Event::VirqInject) => ("intid=%llu", "vcpu=%llu"),
        Kind::Kernel(Event::BudgetExhausted) => ("budget=%llu", "refill=%llu"),
        Kind::Kernel(Event::BudgetReplenished) => ("budget=%llu", "b=%llu"),
        Kind::Kernel(Event::ThreadCreate) => ("creator=%llu", "b=%llu"),
        Kind::Kernel(Event::ThreadName | Event::GuestEvent) => ("a=0x%llx", "b=0x%llx"),
        Kind::Kernel(Event::GuestTaskSwitch) => ("from=%llu", "to=%llu"),
        Kind::Kernel(Event::GuestTaskName | Event::GuestTaskNameEnd) => ("task=%llu", "name=0x%llx"),
        Kind::Kernel(Event::VmMmio) => ("access=0x%llx", "value=0x%llx"),
        Kind::Extra(Extra::Lost) => ("count=%llu", "b=%llu"),
        _ => ("a=%llu", "b=%llu"),
    }
}

/// A `gaon` event's format.
fn gaon_format(k: Kind) -> String {
    let fields = [
        ("u32", "thread", 8, 4, false),
        ("u64", "a", 16, 8, false),
        ("u64", "b", 24, 8, false),
    ];
    let (a, b) = arg_formats(k);
    let print = format!("\"thread=%u {a} {b}\", REC->thread, REC->a, REC->b");
    format(&gaon_name(k), gaon_id(k), &fields, &print)
}

/// `id name` for every thread named or mentioned (as a record's thread or a switch's
/// next), idle left out, and for every guest task.
fn cmdlines(t: &Trace, guests: &crate::Guests) -> String {
    let mut tids: BTreeSet<u32> = t.names.keys().copied().collect();
    for r in &t.records {
        tids.insert(r.thread);
        if kind(r) == Kind::Kernel(Event::Switch) {
            tids.insert(r.a as u32);
        }
    }
    tids.remove(&0);
    let mut s = String::new();
    for tid in tids {
        let _ = writeln!(s, "{tid} {}", t.name(tid));
    }
    for (&(g, task), name) in &guests.tasks {
        let _ = writeln!(s, "{} {name}", guest_pid(g, task));
    }
    s
}

/// A guest task's pid in `trace.dat`: [`GUEST_PID_BASE`], the guest's index (its low 8
/// bits) from bit 22, the task's number (its low 22 bits: a Linux pid is below 2^22) in
/// the bits below.
pub fn guest_pid(guest: usize, task: u64) -> u32 {
    GUEST_PID_BASE + ((guest as u32 & 0xff) << 22) + (task as u32 & 0x3f_ffff)
}

/// A comm field: `name` cut to 15 bytes, NUL-padded.
fn comm_of(name: &str) -> [u8; COMM] {
    let mut c = [0; COMM];
    let n = name.len().min(COMM - 1);
    c[..n].copy_from_slice(&name.as_bytes()[..n]);
    c
}

/// vCPU thread `vcpu` of guest `guest` as a CPU of its own: a `sched_switch` per task
/// switch its guest reported, between the guest's tasks (prio 120, Linux's default;
/// the state is not known: `R`).
fn guest_cpu_data(t: &Trace, guests: &crate::Guests, (vcpu, guest): (u32, usize)) -> Vec<u8> {
    let mut pages = Pages::default();
    let switches = t
        .records
        .iter()
        .filter(|r| r.thread == vcpu && kind(r) == Kind::Kernel(Event::GuestTaskSwitch));
    for r in switches {
        let (prev, next) = (guest_pid(guest, r.a), guest_pid(guest, r.b));
        let mut e = common(SCHED_SWITCH_ID, prev);
        e.extend_from_slice(&comm_of(&guests.task_name(guest, r.a)));
        e.extend_from_slice(&prev.to_le_bytes());
        e.extend_from_slice(&120i32.to_le_bytes());
        e.extend_from_slice(&0u64.to_le_bytes());
        e.extend_from_slice(&comm_of(&guests.task_name(guest, r.b)));
        e.extend_from_slice(&next.to_le_bytes());
        e.extend_from_slice(&120i32.to_le_bytes());
        pages.push(t.ns(r.time), &e);
    }
    pages.finish()
}

/// The common fields.
fn common(id: u16, pid: u32) -> Vec<u8> {
    let mut e = id.to_le_bytes().to_vec();
    e.extend_from_slice(&[0, 0]); // flags, preempt count
    e.extend_from_slice(&pid.to_le_bytes());
    e
}

/// Thread `tid`'s comm on `cpu`: its name cut to 15 bytes, NUL-padded; `swapper/N`
/// for idle.
fn comm(t: &Trace, tid: u32, cpu: u8) -> [u8; COMM] {
    let name = if tid == 0 {
        format!("swapper/{cpu}")
    } else {
        t.name(tid)
    };
    comm_of(&name)
}

/// A Gaon priority as a Linux `prio`.
fn prio(p: u8) -> i32 {
    255 - i32::from(p)
}

/// A Gaon stopped thread's state as Linux's `prev_state`.
fn prev_state(state: u8) -> u64 {
    match state {
        gaon_abi::trace::PREV_RUNNABLE => 0,
        gaon_abi::trace::PREV_BLOCKED => 1,
        _ => STATE_STOPPED,
    }
}

/// A `Switch` record as a `sched_switch` event.
fn sched_switch(t: &Trace, r: &Record) -> Vec<u8> {
    let next = r.a as u32;
    let (state, prev_prio, next_prio) = split_switch_info(r.b);
    let mut e = common(SCHED_SWITCH_ID, r.thread);
    e.extend_from_slice(&comm(t, r.thread, r.cpu));
    e.extend_from_slice(&r.thread.to_le_bytes());
    e.extend_from_slice(&prio(prev_prio).to_le_bytes());
    e.extend_from_slice(&prev_state(state).to_le_bytes());
    e.extend_from_slice(&comm(t, next, r.cpu));
    e.extend_from_slice(&next.to_le_bytes());
    e.extend_from_slice(&prio(next_prio).to_le_bytes());
    e
}

/// A record as an event's bytes, or `None` if it has none (unknown).
fn event(t: &Trace, r: &Record) -> Option<Vec<u8>> {
    match kind(r) {
        Kind::Kernel(Event::Switch) => Some(sched_switch(t, r)),
        Kind::Unknown(_) => None,
        k => {
            let mut e = common(gaon_id(k), r.thread);
            e.extend_from_slice(&r.thread.to_le_bytes());
            e.extend_from_slice(&[0; 4]);
            e.extend_from_slice(&r.a.to_le_bytes());
            e.extend_from_slice(&r.b.to_le_bytes());
            Some(e)
        }
    }
}

/// Core `cpu`'s events as ring-buffer pages.
fn cpu_data(t: &Trace, cpu: u32) -> Vec<u8> {
    let mut pages = Pages::default();
    for r in t.records.iter().filter(|r| u32::from(r.cpu) == cpu) {
        if let Some(e) = event(t, r) {
            pages.push(t.ns(r.time), &e);
        }
    }
    pages.finish()
}

/// Ring-buffer pages being filled.
#[derive(Debug, Default)]
struct Pages {
    /// The pages, the last one open.
    bytes: Vec<u8>,
    /// Where the open page starts, if one is.
    page: Option<usize>,
    /// The time of the last event (or the open page's timestamp).
    last: u64,
}

impl Pages {
    /// Add an event's `data` (padded to 4 bytes) at `ns`.
    fn push(&mut self, ns: u64, data: &[u8]) {
        let words = data.len().div_ceil(4);
        // Longer than `type_len` can say: `type_len` 0 and the length in a word.
        let long = words > TYPE_DATA_MAX as usize;
        let extend = if ns.saturating_sub(self.last) >> DELTA_BITS == 0 {
            0
        } else {
            8
        };
        let size = 4 * (1 + usize::from(long) + words);
        let page = match self.page {
            Some(p) if self.bytes.len() + extend + size <= p + PAGE => p,
            _ => self.open(ns),
        };
        let mut delta = ns.saturating_sub(self.last);
        if delta >> DELTA_BITS != 0 {
            // `time_delta` takes the low 27 bits (the shift drops the rest).
            put_u32(&mut self.bytes, TYPE_TIME_EXTEND | (delta as u32) << 5);
            put_u32(&mut self.bytes, (delta >> DELTA_BITS) as u32);
            delta = 0;
        }
        let delta = (delta as u32) << 5;
        if long {
            put_u32(&mut self.bytes, delta);
            put_u32(&mut self.bytes, (words * 4 + 4) as u32);
        } else {
            put_u32(&mut self.bytes, words as u32 | delta);
        }
        self.bytes.extend_from_slice(data);
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
        self.last = ns;
        let commit = (self.bytes.len() - page - PAGE_HEADER) as u64;
        self.bytes[page + 8..page + PAGE_HEADER].copy_from_slice(&commit.to_le_bytes());
    }

    /// Close the open page and open one at `ns`; where it starts.
    fn open(&mut self, ns: u64) -> usize {
        self.bytes.resize(self.bytes.len().next_multiple_of(PAGE), 0);
        let page = self.bytes.len();
        put_u64(&mut self.bytes, ns);
        put_u64(&mut self.bytes, 0);
        self.page = Some(page);
        self.last = ns;
        page
    }

    /// The pages, the last one padded.
    fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(self.bytes.len().next_multiple_of(PAGE), 0);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a file front to back.
    struct Reader<'a> {
        /// The file.
        bytes: &'a [u8],
        /// Where the next read starts.
        at: usize,
    }

    impl<'a> Reader<'a> {
        /// The next `n` bytes.
        fn take(&mut self, n: usize) -> &'a [u8] {
            self.at += n;
            &self.bytes[self.at - n..self.at]
        }
        /// The next u32.
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.take(4).try_into().unwrap())
        }
        /// The next u64.
        fn u64(&mut self) -> u64 {
            u64::from_le_bytes(self.take(8).try_into().unwrap())
        }
        /// The next NUL-terminated string.
        fn cstr(&mut self) -> &'a str {
            let n = self.bytes[self.at..].iter().position(|&b| b == 0).unwrap();
            let s = std::str::from_utf8(self.take(n)).unwrap();
            self.take(1);
            s
        }
        /// The next text after its u64 length.
        fn text(&mut self) -> &'a str {
            let n = self.u64() as usize;
            std::str::from_utf8(self.take(n)).unwrap()
        }
    }

    /// What a file holds: its event formats, cmdlines and each core's (offset, size).
    struct File {
        /// (system, format file) of every event.
        formats: Vec<(String, String)>,
        /// The cmdlines section.
        cmdlines: String,
        /// (offset, size) of each core's data.
        cpus: Vec<(usize, usize)>,
    }

    /// Read a file's header, checking what every file has.
    fn read(bytes: &[u8]) -> File {
        let mut r = Reader { bytes, at: 0 };
        assert_eq!(r.take(10), b"\x17\x08\x44tracing");
        assert_eq!(r.cstr(), "6");
        assert_eq!(r.take(2), [0, 8], "little-endian, 8-byte longs");
        assert_eq!(r.u32(), 4096);
        assert_eq!(r.cstr(), "header_page");
        assert!(r.text().contains("field: local_t commit;\toffset:8;\tsize:8;"));
        assert_eq!(r.cstr(), "header_event");
        assert!(r.text().contains("time_extend : type == 30"));
        assert_eq!(r.u32(), 0, "no ftrace events");
        let mut formats = Vec::new();
        for _ in 0..r.u32() {
            let system = r.cstr().to_string();
            for _ in 0..r.u32() {
                formats.push((system.clone(), r.text().to_string()));
            }
        }
        assert_eq!((r.u32(), r.u32()), (0, 0), "no kallsyms or printk formats");
        let cmdlines = r.text().to_string();
        let n = r.u32();
        assert_eq!(r.take(10), b"flyrecord\0");
        let cpus = (0..n).map(|_| (r.u64() as usize, r.u64() as usize)).collect();
        File {
            formats,
            cmdlines,
            cpus,
        }
    }

    /// A core's events: (time, bytes), and the pages' timestamps.
    fn events(data: &[u8]) -> (Vec<(u64, Vec<u8>)>, Vec<u64>) {
        let (mut out, mut stamps) = (Vec::new(), Vec::new());
        for page in data.chunks(PAGE) {
            let mut r = Reader { bytes: page, at: 0 };
            let mut time = r.u64();
            stamps.push(time);
            let end = PAGE_HEADER + r.u64() as usize;
            assert!(end <= PAGE);
            while r.at < end {
                let h = r.u32();
                time += u64::from(h >> 5);
                let len = match h & 31 {
                    TYPE_TIME_EXTEND => {
                        time += u64::from(r.u32()) << DELTA_BITS;
                        continue;
                    }
                    0 => r.u32() as usize - 4,
                    n if n <= TYPE_DATA_MAX => n as usize * 4,
                    n => panic!("type_len {n}"),
                };
                out.push((time, r.take(len).to_vec()));
            }
        }
        (out, stamps)
    }

    /// The i32 at `at` in event `e`.
    fn i32_at(e: &[u8], at: usize) -> i32 {
        i32::from_le_bytes(e[at..at + 4].try_into().unwrap())
    }

    /// The comm at `at` in event `e`.
    fn comm_at(e: &[u8], at: usize) -> &str {
        let c = &e[at..at + 16];
        std::str::from_utf8(&c[..c.iter().position(|&b| b == 0).unwrap()]).unwrap()
    }

    #[test]
    fn the_sections_are_in_order_and_each_core_has_whole_pages() {
        let bytes = write(&crate::sample());
        let f = read(&bytes);
        // sched_switch, a gaon event per kernel event but the switch, and the server's Lost.
        assert_eq!(f.formats.len(), 1 + (Event::ALL.len() - 1) + EXTRAS.len());
        assert!(f.formats[0].1.starts_with("name: sched_switch\nID: 300\n"));
        assert!(
            f.formats[0]
                .1
                .contains("\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n")
        );
        let mut ids: Vec<&str> = f.formats.iter().map(|(_, t)| t.lines().nth(1).unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), f.formats.len(), "ids are unique");
        let names: Vec<String> = f
            .formats
            .iter()
            .map(|(s, t)| format!("{s}/{}", &t.lines().next().unwrap()[6..]))
            .collect();
        for n in [
            "sched/sched_switch",
            "gaon/ipc_call",
            "gaon/vm_exit",
            "gaon/lost",
            "gaon/guest_event",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
        }
        assert_eq!(f.cmdlines, "1 console\n2 kv\n3 kv-client\n4 linux.vcpu0\n");
        assert_eq!(f.cpus.len(), 2);
        let mut end = 0;
        for &(offset, size) in &f.cpus {
            assert_eq!((offset % PAGE, size % PAGE), (0, 0));
            assert!(size > 0 && offset >= end && offset + size <= bytes.len());
            end = offset + size;
        }
        assert_eq!(end, bytes.len());
    }

    #[test]
    fn switches_decode_back_with_linux_states_and_priorities() {
        let t = crate::sample();
        let bytes = write(&t);
        let f = read(&bytes);
        let (offset, size) = f.cpus[0];
        let (evs, stamps) = events(&bytes[offset..offset + size]);
        assert_eq!(stamps, [100], "one page, stamped with its first event");
        let times: Vec<u64> = evs.iter().map(|e| e.0).collect();
        let cpu0: Vec<u64> = t.records.iter().filter(|r| r.cpu == 0).map(|r| r.time).collect();
        assert_eq!(times, cpu0, "every record on core 0, at its time");
        let (time, e) = &evs[6];
        assert_eq!((*time, e.len()), (2_010, 64));
        assert_eq!(u16::from_le_bytes([e[0], e[1]]), SCHED_SWITCH_ID);
        assert_eq!(i32_at(e, 4), 3, "common_pid is the stopped thread");
        assert_eq!((comm_at(e, 8), i32_at(e, 24), i32_at(e, 28)), ("kv-client", 3, 155));
        assert_eq!(u64::from_le_bytes(e[32..40].try_into().unwrap()), 1, "blocked is S");
        assert_eq!((comm_at(e, 40), i32_at(e, 56), i32_at(e, 60)), ("kv", 2, 105));
        let (offset, size) = f.cpus[1];
        let (evs, _) = events(&bytes[offset..offset + size]);
        assert_eq!(evs.len(), 3);
        assert_eq!(
            (comm_at(&evs[0].1, 8), comm_at(&evs[0].1, 40)),
            ("swapper/1", "linux.vcpu0")
        );
        let exit = &evs[1].1;
        assert_eq!(
            u16::from_le_bytes([exit[0], exit[1]]),
            GAON_ID_BASE + Event::VmExit as u16
        );
        assert_eq!((i32_at(exit, 4), i32_at(exit, 8)), (4, 4));
        assert_eq!(u64::from_le_bytes(exit[24..32].try_into().unwrap()), 0x5a00_0000);
    }

    #[test]
    fn long_gaps_use_time_extends_and_full_pages_start_new_ones() {
        let rec = |time: u64, event: u16| Record {
            time,
            event,
            cpu: 0,
            thread: 5,
            ..Record::default()
        };
        let mut records: Vec<Record> = (0..300)
            .map(|i| rec(i * 1_000_000_007, Event::IpcSend as u16))
            .collect();
        records.push(rec(300 * 1_000_000_007, 0x999));
        let t = Trace::read(&crate::write_stream(1_000_000_000, 1, 0, &records)).unwrap();
        let bytes = write(&t);
        let f = read(&bytes);
        let (offset, size) = f.cpus[0];
        let (evs, stamps) = events(&bytes[offset..offset + size]);
        let times: Vec<u64> = evs.iter().map(|e| e.0).collect();
        let want: Vec<u64> = (0..300).map(|i| i * 1_000_000_007).collect();
        assert_eq!(times, want, "the unknown event is left out");
        assert_eq!(size / PAGE, 4, "36 bytes an event and 8 for its time extend: 92 a page");
        assert_eq!(stamps, [0, 92, 184, 276].map(|i| i * 1_000_000_007));
    }

    #[test]
    fn a_guests_vcpus_are_cpus_of_their_own_with_its_tasks() {
        use crate::testing::{rec, word as w};
        let records = [
            rec(1, 4, Event::ThreadName, w(b"linux.vc"), w(b"pu0")),
            rec(10, 4, Event::GuestTaskName, 42, w(b"kworker/")),
            rec(10, 4, Event::GuestTaskNameEnd, 42, w(b"0:1H-kb")),
            rec(10, 4, Event::GuestTaskName, 0, w(b"swapper/")),
            rec(10, 4, Event::GuestTaskNameEnd, 0, w(b"0")),
            rec(20, 4, Event::GuestTaskSwitch, 0, 42),
            rec(40, 4, Event::GuestTaskSwitch, 42, 0),
        ];
        let t = Trace::read(&crate::write_stream(1_000_000_000, 1, 0, &records)).unwrap();
        let bytes = write(&t);
        let f = read(&bytes);
        assert_eq!(f.cpus.len(), 2, "core 0 and linux.vcpu0");
        let (kw, idle) = (guest_pid(0, 42), guest_pid(0, 0));
        assert_eq!(kw, (1 << 30) + 42);
        assert!(
            f.cmdlines.contains(&format!("{kw} kworker/0:1H-kb\n")),
            "{}",
            f.cmdlines
        );
        let (offset, size) = f.cpus[1];
        let (evs, _) = events(&bytes[offset..offset + size]);
        let times: Vec<u64> = evs.iter().map(|e| e.0).collect();
        assert_eq!(times, [20, 40]);
        let e = &evs[0].1;
        assert_eq!(u16::from_le_bytes([e[0], e[1]]), SCHED_SWITCH_ID);
        assert_eq!((comm_at(e, 8), i32_at(e, 24)), ("swapper/0", idle.cast_signed()));
        assert_eq!((comm_at(e, 40), i32_at(e, 56)), ("kworker/0:1H-kb", kw.cast_signed()));
        // A window: its records only, named as in the whole trace.
        let bytes = write_window(&t, Some((30, 50)));
        let f = read(&bytes);
        assert!(
            f.cmdlines.contains(&format!("{kw} kworker/0:1H-kb\n")),
            "{}",
            f.cmdlines
        );
        let (offset, size) = f.cpus[1];
        let (evs, _) = events(&bytes[offset..offset + size]);
        assert_eq!(evs.len(), 1);
        assert_eq!((evs[0].0, comm_at(&evs[0].1, 8)), (40, "kworker/0:1H-kb"));
    }

    #[test]
    fn trace_cmd_reports_the_switches_between_named_threads() {
        let path = std::env::temp_dir().join(format!("gaon-tracedat-{}.dat", std::process::id()));
        std::fs::write(&path, write(&crate::sample())).unwrap();
        let run = std::process::Command::new("trace-cmd")
            .arg("report")
            .arg("-i")
            .arg(&path)
            .output();
        let _ = std::fs::remove_file(&path);
        let out = match run {
            Err(e)
                if e.kind() != std::io::ErrorKind::NotFound
                    || std::env::var("GAON_REQUIRE_TOOLS").as_deref() == Ok("1") =>
            {
                panic!("trace-cmd: {e} (GAON_REQUIRE_TOOLS=1 needs it on PATH)")
            }
            Err(e) => {
                eprintln!("note: trace-cmd not run ({e}); install trace-cmd to check trace.dat files");
                return;
            }
            Ok(out) => out,
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{errors}");
        let line = |cpu: &str, what: &[&str]| {
            text.lines()
                .any(|l| l.contains(cpu) && what.iter().all(|w| l.contains(w)))
        };
        assert!(
            line("[000]", &["sched_switch", "kv-client", "==>", "kv:2"]),
            "{text}\n{errors}"
        );
        assert!(line("[001]", &["sched_switch", "linux.vcpu0"]), "{text}");
        assert!(line("[000]", &["ipc_call", "thread=3", "receiver=2"]), "{text}");
        assert!(line("[001]", &["vm_exit", "exit=1", "info=0x5a000000"]), "{text}");
    }
}
