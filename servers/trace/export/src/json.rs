//! Chrome's trace event format (the JSON Perfetto and `chrome://tracing` open):
//!
//! - one process per core (`pid` = core + 1, named `cpu N`), whose one track shows the
//!   thread running on it as complete events (`ph: "X"`), from the switch to it to the
//!   switch away (named after the thread; idle time is left empty);
//! - one process for the threads (`pid` 1000, `Gaon threads`), a track per thread
//!   (`tid` = its id, named after it), with every other event as an instant event
//!   (`ph: "i"`) on the thread it is about, its arguments in `args`.
//!
//! Times are microseconds from the trace's start (`ts`, with fractions);
//! `displayTimeUnit` is `ns`.

use gaon_abi::trace::{Event, split_switch_info};
use serde_json::{Value, json};

use crate::{Kind, Trace, kind};

/// The process of the thread tracks.
pub const THREADS_PID: u64 = 1000;
/// The guests' task processes start here (+ the vCPU thread's id).
pub const GUEST_PID_BASE: u64 = 100_000;

/// The trace as a Chrome trace event JSON document.
#[allow(
    clippy::cast_precision_loss,
    reason = "µs as the format's float: exact below 2^53 ns (104 days of trace)"
)]
pub fn write(t: &Trace) -> String {
    let us = |time: u64| t.ns(time) as f64 / 1000.0;
    let mut events: Vec<Value> = Vec::new();
    for cpu in 0..t.cpus {
        events.push(
            json!({"ph": "M", "name": "process_name", "pid": cpu_pid(cpu), "args": {"name": format!("cpu {cpu}")}}),
        );
        events.push(json!({"ph": "M", "name": "thread_name", "pid": cpu_pid(cpu), "tid": 0, "args": {"name": format!("cpu {cpu}")}}));
    }
    events.push(json!({"ph": "M", "name": "process_name", "pid": THREADS_PID, "args": {"name": "Gaon threads"}}));
    let mut tids: Vec<u32> = t.records.iter().map(|r| r.thread).filter(|&x| x != 0).collect();
    tids.sort_unstable();
    tids.dedup();
    for tid in tids {
        events.push(
            json!({"ph": "M", "name": "thread_name", "pid": THREADS_PID, "tid": tid, "args": {"name": t.name(tid)}}),
        );
    }
    // What runs on each core since when.
    let mut running: Vec<Option<(u32, u64)>> = vec![None; t.cpus as usize];
    let end = t.records.last().map_or(t.start, |r| r.time);
    for r in &t.records {
        match kind(r) {
            Kind::Kernel(Event::Switch) => {
                let cpu = usize::from(r.cpu);
                let Some(slot) = running.get_mut(cpu) else { continue };
                if let Some((tid, since)) = slot.take()
                    && tid != 0
                {
                    events.push(slice(t, r.cpu, tid, us(since), us(r.time)));
                }
                let next = r.a as u32;
                let (state, prev_prio, next_prio) = split_switch_info(r.b);
                *slot = Some((next, r.time));
                events.push(json!({
                    "ph": "i", "s": "t", "name": "switch", "cat": "sched",
                    "pid": cpu_pid(u32::from(r.cpu)), "tid": 0, "ts": us(r.time),
                    "args": {"prev": t.name(r.thread), "next": t.name(next), "prev_state": state,
                             "prev_prio": prev_prio, "next_prio": next_prio},
                }));
            }
            Kind::Kernel(Event::VmMmio) => {
                let (ipa, size_log2, write) = gaon_abi::trace::split_mmio_access(r.a);
                let device = gaon_vmm::layout::emulated_at(ipa).unwrap_or("no device");
                events.push(json!({
                    "ph": "i", "s": "t", "name": "vm_mmio", "cat": "vm",
                    "pid": THREADS_PID, "tid": r.thread, "ts": us(r.time),
                    "args": {"cpu": r.cpu, "ipa": ipa, "device": device, "bytes": 1u32 << size_log2,
                             "store": write, "value": r.b},
                }));
            }
            k => events.push(json!({
                "ph": "i", "s": "t", "name": name(k), "cat": category(k),
                "pid": THREADS_PID, "tid": r.thread, "ts": us(r.time),
                "args": {"cpu": r.cpu, "a": r.a, "b": r.b},
            })),
        }
    }
    for (cpu, slot) in running.iter().enumerate() {
        if let Some((tid, since)) = *slot
            && tid != 0
        {
            events.push(slice(t, cpu as u8, tid, us(since), us(end)));
        }
    }
    guest_tasks(t, &mut events);
    json!({"traceEvents": events, "displayTimeUnit": "ns"}).to_string()
}

/// The guests' own tasks ([`crate::Guests`]: from trace hypercalls or a VMM's Linux
/// probe): a process per guest (`pid` = [`GUEST_PID_BASE`] + its index, named `guest
/// <vm>`), a track per task (`tid` = the task's number, a Linux pid, named as the guest
/// last named it, a Linux `comm` in full), and the task's runs as complete events,
/// from the switch to it to the next switch of that vCPU.
#[allow(clippy::cast_precision_loss, reason = "as in `write`")]
fn guest_tasks(t: &Trace, events: &mut Vec<Value>) {
    let us = |time: u64| t.ns(time) as f64 / 1000.0;
    let end = t.records.last().map_or(t.start, |r| r.time);
    let g = crate::Guests::of(t);
    let pid = |i: usize| GUEST_PID_BASE + i as u64;
    for (i, name) in g.names.iter().enumerate() {
        events
            .push(json!({"ph": "M", "name": "process_name", "pid": pid(i), "args": {"name": format!("guest {name}")}}));
    }
    for (&(i, task), name) in &g.tasks {
        events.push(json!({"ph": "M", "name": "thread_name", "pid": pid(i), "tid": task, "args": {"name": name}}));
    }
    for &(vcpu, i) in &g.vcpus {
        let mut running: Option<(u64, u64)> = None;
        let switches = t
            .records
            .iter()
            .filter(|r| r.thread == vcpu && kind(r) == Kind::Kernel(Event::GuestTaskSwitch));
        for r in switches {
            if let Some((task, since)) = running.replace((r.b, r.time)) {
                events.push(task_slice(pid(i), task, &g.task_name(i, task), us(since), us(r.time)));
            }
        }
        if let Some((task, since)) = running {
            events.push(task_slice(pid(i), task, &g.task_name(i, task), us(since), us(end)));
        }
    }
}

/// Guest task `task` (`name`) of process `pid` ran from `from` to `to` (µs).
fn task_slice(pid: u64, task: u64, name: &str, from: f64, to: f64) -> Value {
    json!({"ph": "X", "name": name, "cat": "guest", "pid": pid, "tid": task, "ts": from, "dur": (to - from).max(0.0)})
}

/// Check `text` against the trace event format's rules as Perfetto and
/// `chrome://tracing` read them (the JSON schema check of docs/trace.md: Perfetto's
/// trace processor needs a download this machine cannot make): a JSON object whose
/// `traceEvents` is an array of objects, each with a string `name` and a known `ph`;
/// `pid` and `tid` integers where the phase needs them; `ts` a number of µs, at least 0,
/// on every event but metadata; `dur` at least 0 on complete events; `s` one of `g`,
/// `p`, `t` on instant events. The problems, empty if none.
pub fn check(text: &str) -> Vec<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("not JSON: {e}")],
    };
    let Some(events) = v.get("traceEvents").and_then(Value::as_array) else {
        return vec!["no `traceEvents` array".into()];
    };
    let mut p = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut bad = |what: &str| p.push(format!("event {i}: {what}: {e}"));
        let Some(ph) = e.get("ph").and_then(Value::as_str) else {
            bad("no `ph`");
            continue;
        };
        if e.get("name").and_then(Value::as_str).is_none() {
            bad("no string `name`");
        }
        if !matches!(ph, "M" | "X" | "i" | "B" | "E" | "C") {
            bad("an unknown phase");
            continue;
        }
        if e.get("pid").and_then(Value::as_u64).is_none() {
            bad("no integer `pid`");
        }
        if (ph != "M" || e["name"] == "thread_name") && e.get("tid").and_then(Value::as_u64).is_none() {
            bad("no integer `tid`");
        }
        if ph != "M" && !e.get("ts").and_then(Value::as_f64).is_some_and(|t| t >= 0.0) {
            bad("no `ts` of at least 0");
        }
        if ph == "X" && !e.get("dur").and_then(Value::as_f64).is_some_and(|d| d >= 0.0) {
            bad("a complete event without a `dur` of at least 0");
        }
        if ph == "i" && !matches!(e.get("s").and_then(Value::as_str), Some("g" | "p" | "t")) {
            bad("an instant event without a scope `s`");
        }
    }
    p
}

fn cpu_pid(cpu: u32) -> u64 {
    u64::from(cpu) + 1
}

/// Thread `tid` ran on `cpu` from `from` to `to` (µs).
fn slice(t: &Trace, cpu: u8, tid: u32, from: f64, to: f64) -> Value {
    json!({
        "ph": "X", "name": t.name(tid), "cat": "run",
        "pid": cpu_pid(u32::from(cpu)), "tid": 0, "ts": from, "dur": (to - from).max(0.0),
        "args": {"thread": tid},
    })
}

/// An event's name in the JSON.
pub fn name(k: Kind) -> String {
    match k {
        Kind::Kernel(e) => e.name().into(),
        Kind::Extra(x) => format!("{x:?}").to_lowercase(),
        Kind::Unknown(n) => format!("event_{n}"),
    }
}

fn category(k: Kind) -> &'static str {
    match k {
        Kind::Kernel(e) => match e {
            Event::Switch => "sched",
            Event::IpcSend | Event::IpcCall | Event::IpcRecv | Event::IpcReply => "ipc",
            Event::Signal => "notify",
            Event::IrqEntry | Event::IrqExit => "irq",
            Event::Fault => "fault",
            Event::VmExit | Event::VmEntry | Event::VirqInject | Event::VmMmio => "vm",
            Event::GuestTaskSwitch | Event::GuestEvent | Event::GuestTaskName | Event::GuestTaskNameEnd => "guest",
            Event::BudgetExhausted | Event::BudgetReplenished => "budget",
            Event::ThreadCreate | Event::ThreadName | Event::ThreadDestroy => "thread",
        },
        Kind::Extra(_) => "gaon",
        Kind::Unknown(_) => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guests_tasks_get_their_own_tracks_by_name() {
        use gaon_abi::trace::Record;
        let rec = |time: u64, e: Event, a: u64, b: u64| Record {
            time,
            event: e as u16,
            cpu: 0,
            flags: 0,
            thread: 9,
            a,
            b,
        };
        let name = u64::from_le_bytes(*b"measure\0");
        let records = [
            rec(10, Event::GuestTaskName, 1, name),
            rec(20, Event::GuestTaskSwitch, 0, 1),
            rec(80, Event::GuestTaskSwitch, 1, 2),
            rec(100, Event::GuestEvent, 7, 3),
        ];
        let t = Trace::read(&crate::write_stream(1_000_000_000, 1, 0, &records)).unwrap();
        let text = write(&t);
        assert!(check(&text).is_empty(), "{:?}", check(&text));
        let v: Value = serde_json::from_str(&text).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let pid = GUEST_PID_BASE;
        let tasks: Vec<(String, u64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == pid)
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["tid"].as_u64().unwrap(),
                    e["dur"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(tasks.len(), 2);
        assert_eq!((tasks[0].0.as_str(), tasks[0].1), ("measure", 1));
        assert!((tasks[0].2 - 0.06).abs() < 1e-9);
        assert_eq!((tasks[1].0.as_str(), tasks[1].1), ("task 2", 2), "unnamed, to the end");
        assert!(events.iter().any(|e| e["name"] == "process_name" && e["pid"] == pid));
    }

    #[test]
    fn a_vms_vcpus_are_one_guest_and_long_names_are_joined() {
        use crate::testing::{rec, word as w};
        let records = [
            rec(1, 4, Event::ThreadName, w(b"linux.vc"), w(b"pu0")),
            rec(2, 5, Event::ThreadName, w(b"linux.vc"), w(b"pu1")),
            rec(10, 4, Event::GuestTaskName, 42, w(b"kworker/")),
            rec(10, 4, Event::GuestTaskNameEnd, 42, w(b"0:1H-kb")),
            rec(20, 4, Event::GuestTaskSwitch, 0, 42),
            rec(30, 5, Event::GuestTaskSwitch, 7, 42),
            rec(40, 4, Event::GuestTaskSwitch, 42, 0),
        ];
        let t = Trace::read(&crate::write_stream(1_000_000_000, 1, 0, &records)).unwrap();
        let g = crate::Guests::of(&t);
        assert_eq!(g.names, ["linux"]);
        assert_eq!(g.vcpus, [(4, 0), (5, 0)]);
        assert_eq!(g.task_name(0, 42), "kworker/0:1H-kb");
        // A character split between the two halves is joined before decoding.
        let e_acute = "abcdefg\u{e9}x";
        let bytes = e_acute.as_bytes();
        let split = [
            rec(1, 4, Event::ThreadName, w(b"linux.vc"), w(b"pu0")),
            rec(2, 4, Event::GuestTaskName, 9, w(&bytes[..8])),
            rec(2, 4, Event::GuestTaskNameEnd, 9, w(&bytes[8..])),
        ];
        let t2 = Trace::read(&crate::write_stream(1_000_000_000, 1, 0, &split)).unwrap();
        assert_eq!(crate::Guests::of(&t2).task_name(0, 9), e_acute);
        let text = write(&t);
        assert!(check(&text).is_empty(), "{:?}", check(&text));
        let v: Value = serde_json::from_str(&text).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let runs = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == GUEST_PID_BASE && e["tid"] == 42)
            .count();
        assert_eq!(runs, 2, "task 42 ran on both vCPUs, on one track");
        assert!(
            events
                .iter()
                .any(|e| e["name"] == "process_name" && e["args"]["name"] == "guest linux")
        );
    }

    #[test]
    fn what_is_written_passes_the_check_and_bad_documents_do_not() {
        assert_eq!(check(&write(&crate::sample())), Vec::<String>::new());
        assert_eq!(check("[1, 2]").len(), 1, "no traceEvents");
        assert_eq!(check("{").len(), 1, "not JSON");
        let bad = r#"{"traceEvents": [
            {"ph": "Q", "name": "x", "pid": 1, "tid": 1, "ts": 0},
            {"ph": "X", "name": "x", "pid": 1, "tid": 1, "ts": 1},
            {"ph": "i", "name": "x", "pid": 1, "tid": 1, "ts": -1, "s": "t"},
            {"ph": "i", "pid": 1, "tid": 1, "ts": 1}
        ]}"#;
        assert_eq!(check(bad).len(), 5, "{:?}", check(bad));
    }

    #[test]
    fn cores_show_who_ran_and_threads_their_events() {
        let t = crate::sample();
        let v: Value = serde_json::from_str(&write(&t)).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let slices: Vec<(u64, String, f64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| {
                (
                    e["pid"].as_u64().unwrap(),
                    e["name"].as_str().unwrap().to_string(),
                    e["ts"].as_f64().unwrap(),
                    e["dur"].as_f64().unwrap(),
                )
            })
            .collect();
        let has = |pid: u64, name: &str, ts: f64, dur: f64| {
            slices
                .iter()
                .any(|s| s.0 == pid && s.1 == name && (s.2 - ts).abs() < 1e-9 && (s.3 - dur).abs() < 1e-9)
        };
        assert!(has(1, "kv-client", 1.0, 1.01), "{slices:?}");
        assert!(has(1, "kv", 2.01, 1.5));
        assert!(has(1, "kv-client", 3.51, 1.49));
        assert!(has(1, "console", 5.0, 1.0));
        assert!(has(2, "linux.vcpu0", 1.05, 4.95), "runs to the end of the trace");
        assert_eq!(slices.len(), 5);
        let names: Vec<&str> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["pid"] == THREADS_PID)
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["console", "kv", "kv-client", "linux.vcpu0"]);
        let call = events.iter().find(|e| e["name"] == "ipc_call").unwrap();
        assert_eq!((call["tid"].as_u64(), call["args"]["b"].as_u64()), (Some(3), Some(2)));
        assert!(events.iter().all(|e| e["ph"] == "M" || e["ts"].as_f64().is_some()));
    }
}
