//! Trace points on the machine: the rings' frame (read-only), a call and its reply in
//! this core's ring with the threads' ids and names, and the checks of
//! `TraceControlSetMask` and `TraceControlConsume`.

use gaon_abi::bootinfo::slot;
use gaon_abi::trace::{self, Class, Event};
use libl4::cap::{Frame, PageTable, TraceControl};
use libl4::ipc::{self, MsgInfo};
use libl4::{Error, ObjType, Rights};

use crate::env::{Env, ROOT_VSPACE};
use crate::{R, check, err, ok};

crate::tests![
    "the trace rings are mapped read-only and describe themselves" => rings_mapped,
    "a call and its reply are recorded in order, with ids, names and switches" => call_recorded,
    "bad trace masks and consumes are refused and change nothing" => bad_arguments,
];

const TC: TraceControl = TraceControl(slot::TRACE_CONTROL);
/// Where the rings are mapped: a 1 GiB region of its own.
const VA: u64 = 0x21_0000_0000;

fn read(va: u64) -> u64 {
    #[allow(unsafe_code)]
    // SAFETY: callers pass an address in the rings' frame, mapped readable by `map`.
    unsafe {
        core::ptr::read_volatile(va as *const u64)
    }
}

/// Map the rings (once per boot: later calls find them mapped).
fn map(env: &mut Env) -> R {
    if read_mapped() {
        return Ok(());
    }
    let pt = PageTable(ok(env.alloc(ObjType::PageTable, 0), "level-2 table")?);
    ok(pt.map(ROOT_VSPACE, VA), "map table")?;
    // The cap has the read right only, so the mapping is read-only whatever is asked
    // (a map gives at most the cap's rights).
    ok(
        Frame(slot::TRACE_RINGS).map(ROOT_VSPACE, VA, Rights::READ, false),
        "map the rings read-only",
    )
}

/// True if the rings are mapped at [`VA`] already (the frame says where it is mapped).
fn read_mapped() -> bool {
    Frame(slot::TRACE_RINGS).address().is_ok_and(|(_, _, va)| va == VA)
}

fn head(cpu: usize) -> u64 {
    read(VA + (trace::ring_offset(cpu) + trace::HEAD_OFFSET) as u64)
}

/// Core 0's records `from..to`: (time, event, thread, a, b).
fn records(from: u64, to: u64) -> impl Iterator<Item = (u64, u16, u32, u64, u64)> {
    (from..to).map(|n| {
        let off = VA + trace::record_offset(0, n) as u64;
        let r = trace::Record::from_words(core::array::from_fn(|i| read(off + 8 * i as u64)));
        (r.time, r.event, r.thread, r.a, r.b)
    })
}

fn rings_mapped(env: &mut Env) -> R {
    map(env)?;
    for cpu in 0..trace::RING_COUNT {
        let base = VA + trace::ring_offset(cpu) as u64;
        check(read(base) == trace::MAGIC, "each ring starts with the magic")?;
        check(read(base + 16) == trace::CAPACITY, "and says its capacity")?;
        check(read(base + 48) != 0, "and the counter's frequency")?;
    }
    check(head(0) > 0, "core 0 has records (the threads made at boot)")
}

fn call_recorded(env: &mut Env) -> R {
    map(env)?;
    let (ep, server) = crate::t_ipc::echo_server(env, 200)?;
    ok(server.set_name(b"echo"), "name the server")?;
    // The server waits in its receive before the call.
    ok(crate::env::let_others_run(), "let the server wait")?;
    let before = ok(
        TC.set_mask((Class::SCHED | Class::IPC | Class::THREAD).bits()),
        "trace IPC",
    )?;
    let from = head(0);
    let m = ipc::call(ep, MsgInfo::new(0, 1, 0), [41, 0, 0, 0]);
    ok(TC.set_mask(before), "trace as before")?;
    let to = head(0);
    ok(server.suspend(), "stop the server")?;
    check(m.mr[0] == 42, "the traced call was answered")?;
    // The server's id, from its name record (THREAD is on from boot).
    let named = records(0, to)
        .filter(|r| r.1 == Event::ThreadName as u16)
        .filter(|r| &trace::name_bytes(r.3, r.4).0[..5] == b"echo\0")
        .last();
    let Some((_, _, echo, _, _)) = named else {
        return check(false, "a ThreadName record names the server");
    };
    let got: heapless::Vec<(u16, u32, u64, u64), 16> = records(from, to).map(|r| (r.1, r.2, r.3, r.4)).collect();
    let call = got.iter().find(|r| r.0 == Event::IpcCall as u16);
    let Some(&(_, root, _, callee)) = call else {
        return check(false, "an IpcCall record");
    };
    check(callee == u64::from(echo), "the call went to the waiting server")?;
    check(
        got.contains(&(Event::IpcRecv as u16, echo, 0, u64::from(root))),
        "the server's receive, from the root",
    )?;
    check(
        got.contains(&(Event::IpcReply as u16, echo, 0, u64::from(root))),
        "the server's reply, to the root",
    )?;
    check(
        got.iter()
            .any(|r| r.0 == Event::Switch as u16 && r.1 == root && r.2 == u64::from(echo)),
        "a switch from the root to the server",
    )?;
    let times: heapless::Vec<u64, 16> = records(from, to).map(|r| r.0).collect();
    check(times.windows(2).all(|w| w[0] <= w[1]), "timestamps never go back")?;
    // Give the records back: the tail follows.
    ok(TC.consume(0, to), "consume")?;
    check(
        read(VA + (trace::ring_offset(0) + trace::TAIL_OFFSET) as u64) == to,
        "the header shows the new tail",
    )?;
    check(read(VA + trace::LOST_OFFSET as u64) == 0, "nothing was lost")
}

fn bad_arguments(env: &mut Env) -> R {
    map(env)?;
    err(
        TC.set_mask(1 << 40),
        Error::InvalidArgument,
        "a bit that names no class",
    )?;
    let mask = ok(TC.set_mask(Class::THREAD.bits()), "the mask")?;
    check(mask == Class::THREAD.bits(), "unchanged by the bad mask")?;
    let h = head(0);
    err(TC.consume(4, 0), Error::RangeError, "a core without a ring")?;
    err(TC.consume(u64::MAX, 0), Error::RangeError, "a huge core")?;
    err(TC.consume(0, h + 1), Error::RangeError, "past the head")?;
    ok(TC.consume(0, h), "consume up to the head")?;
    err(TC.consume(0, h - 1), Error::RangeError, "below the tail")
}
