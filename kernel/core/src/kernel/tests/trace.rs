//! Trace points: the rings' layout, the events of a call and its reply, names, the
//! mask's and consume's checks, and a full ring dropping new records.

use gaon_abi::bootinfo::slot as rs;
use gaon_abi::trace::{self, Class, Event, Record};
use gaon_abi::{Error, Label, MsgInfo, ObjType, Syscall};

use super::Vec;

use super::{Alloc, Model, boot, invoke, root_slot, sys};
use crate::kernel::Kernel;

/// Core `cpu`'s records `from..head`, as a reader of the frame sees them.
pub(super) fn records(k: &Kernel<Model>, cpu: usize, from: u64) -> Vec<Record> {
    let rings = k.trace.rings.expect("rings");
    let head = rings.read(trace::ring_offset(cpu) + trace::HEAD_OFFSET);
    (from..head)
        .map(|n| {
            let off = trace::record_offset(cpu, n);
            Record::from_words(core::array::from_fn(|i| rings.read(off + 8 * i)))
        })
        .collect()
}

pub(super) fn header(k: &Kernel<Model>, cpu: usize, off: usize) -> u64 {
    k.trace.rings.expect("rings").read(trace::ring_offset(cpu) + off)
}

pub(super) fn events(r: &[Record]) -> Vec<Event> {
    r.iter()
        .map(|r| Event::from_raw(r.event).expect("a known event"))
        .collect()
}

#[test]
fn boot_sets_up_the_rings_and_records_the_root_thread() {
    let k = boot();
    for cpu in 0..trace::RING_COUNT {
        assert_eq!(header(&k, cpu, 0), trace::MAGIC);
        assert_eq!(header(&k, cpu, 16), trace::CAPACITY);
    }
    let r = records(&k, 0, 0);
    assert_eq!(events(&r), [Event::ThreadCreate]);
    let root = k.current().unwrap().get().tid;
    assert_eq!((r[0].thread, r[0].a), (root, 0), "the root thread, made by nobody");
    assert_eq!(k.trace.mask, trace::BOOT_CLASSES.bits());
    // The root gets the rings read-only, and TraceControl.
    let rings = root_slot(&k, rs::TRACE_RINGS).cap;
    assert_eq!(rings.ty(), Some(ObjType::Frame));
    assert_eq!(rings.rights(), gaon_abi::Rights::READ);
    assert_eq!(root_slot(&k, rs::TRACE_CONTROL).cap.ty(), Some(ObjType::TraceControl));
}

/// The rings' 2 MiB come from low memory, the bytes skipped to align them are handed
/// over too, and the high half of RAM stays one untyped (a VM's RAM needs large
/// blocks: from the top, the rings broke the 512 MiB one and the benchmark's Linux VM
/// did not fit).
#[test]
fn the_rings_leave_the_large_blocks_whole() {
    let size = 64 << 20;
    let layout = super::std::alloc::Layout::from_size_align(size, size).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: a fresh allocation with a non-zero size, leaked so it outlives the kernel.
    let base = unsafe { super::std::alloc::alloc_zeroed(layout) } as usize;
    let k = super::boot_over(base..base + size, &[]);
    let bi = super::bootinfo(&k);
    let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
    let ram = || bi.untyped[..n].iter().filter(|d| d.is_device == 0);
    assert_eq!(ram().map(|d| d.size_bits).max(), Some(25), "the high 32 MiB in one");
    let total: u64 = ram().map(|d| 1u64 << d.size_bits).sum();
    let rings = k.trace.rings.expect("rings");
    assert!(rings.addr() < base + (4 << 20), "low");
    // Everything but the rings and the root's objects (under 1 MiB).
    assert!(total as usize >= size - (3 << 20), "{total}");
}

#[test]
fn a_call_and_its_reply_are_recorded_with_names_and_switches() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let root = k.current().unwrap();
    let server = root_slot(&k, t).cap.tcb();
    let (lo, hi) = trace::name_words(b"server");
    invoke(&mut k, t, Label::TcbSetName, &[lo, hi]).unwrap();
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    let mask = (Class::SCHED | Class::IPC | Class::THREAD).bits();
    let before = invoke(&mut k, rs::TRACE_CONTROL, Label::TraceControlSetMask, &[mask]).unwrap();
    assert_eq!(before[0], trace::BOOT_CLASSES.bits());
    let start = header(&k, 0, trace::HEAD_OFFSET);
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let badge = 0;
    // The root calls; the server runs, receives, and replies with ReplyRecv.
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(9, 1, 0).0, 5, 0, 0, 0, 0]);
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    sys(
        &mut k,
        Syscall::ReplyRecv,
        [ep, MsgInfo::new(0, 1, 0).0, 11, 0, 0, 0, rp],
    );
    assert_eq!(k.current(), Some(root));
    assert_eq!(root.get().ctx.x[2], 11, "traced IPC still works (the general path)");
    let (caller, callee) = (root.get().tid, server.get().tid);
    let got: Vec<(Event, u32, u64, u64)> = records(&k, 0, start)
        .iter()
        .map(|x| (Event::from_raw(x.event).unwrap(), x.thread, x.a, x.b))
        .collect();
    let info = |state, p, n| trace::switch_info(state, p, n);
    assert_eq!(
        got,
        [
            (Event::IpcCall, caller, badge, 0),
            (
                Event::Switch,
                caller,
                u64::from(callee),
                info(trace::PREV_BLOCKED, 255, 255)
            ),
            (Event::IpcRecv, callee, badge, u64::from(caller)),
            (Event::IpcReply, callee, 0, u64::from(caller)),
            (
                Event::Switch,
                callee,
                u64::from(caller),
                info(trace::PREV_BLOCKED, 255, 255)
            ),
        ]
    );
    // The name went in at `TcbSetName`, before the mask changed (THREAD is on from boot).
    let named = records(&k, 0, 0)
        .into_iter()
        .find(|x| x.event == Event::ThreadName as u16)
        .expect("a name record");
    assert_eq!(named.thread, callee);
    let (bytes, len) = trace::name_bytes(named.a, named.b);
    assert_eq!(&bytes[..len], b"server");
    // Timestamps never go back.
    let all = records(&k, 0, 0);
    assert!(all.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(all.iter().all(|x| x.cpu == 0 && x.flags == 0));
}

#[test]
fn bad_masks_and_consumes_are_refused() {
    let mut k = boot();
    let tc = rs::TRACE_CONTROL;
    assert_eq!(
        invoke(&mut k, tc, Label::TraceControlSetMask, &[1 << 40]),
        Err(Error::InvalidArgument)
    );
    assert_eq!(k.trace.mask, trace::BOOT_CLASSES.bits(), "unchanged");
    let head = header(&k, 0, trace::HEAD_OFFSET);
    assert!(head >= 1);
    for (cpu, upto) in [(4, 0), (u64::MAX, 0), (0, head + 1), (0, u64::MAX - 1)] {
        assert_eq!(
            invoke(&mut k, tc, Label::TraceControlConsume, &[cpu, upto]),
            Err(Error::RangeError),
            "core {cpu} up to {upto}"
        );
    }
    invoke(&mut k, tc, Label::TraceControlConsume, &[0, head]).unwrap();
    assert_eq!(header(&k, 0, trace::TAIL_OFFSET), head);
    assert_eq!(
        invoke(&mut k, tc, Label::TraceControlConsume, &[0, head - 1]),
        Err(Error::RangeError),
        "the tail does not go back"
    );
    // Everything written so far, read or not.
    k.record(Event::Signal, 7, 0, 0);
    invoke(&mut k, tc, Label::TraceControlConsume, &[0, u64::MAX]).unwrap();
    assert_eq!(header(&k, 0, trace::TAIL_OFFSET), head + 1);
    assert_eq!(header(&k, 0, trace::HEAD_OFFSET), head + 1);
    // Only TraceControl invokes TraceControl.
    assert_eq!(
        invoke(&mut k, rs::DEBUG, Label::TraceControlSetMask, &[0]),
        Err(Error::UnknownInvocation)
    );
}

#[test]
fn a_full_ring_drops_new_records_and_counts_them() {
    let mut k = boot();
    let head = header(&k, 0, trace::HEAD_OFFSET);
    let first = records(&k, 0, 0);
    let cap = trace::CAPACITY;
    for i in 0..cap + 10 - head {
        k.record(Event::Signal, 7, i, 0);
    }
    assert_eq!(header(&k, 0, trace::HEAD_OFFSET), cap);
    assert_eq!(header(&k, 0, trace::LOST_OFFSET), 10);
    assert_eq!(&records(&k, 0, 0)[..first.len()], &first[..], "nothing was overwritten");
    // Space given back is used again.
    invoke(&mut k, rs::TRACE_CONTROL, Label::TraceControlConsume, &[0, 5]).unwrap();
    k.record(Event::Signal, 7, 99, 0);
    assert_eq!(header(&k, 0, trace::HEAD_OFFSET), cap + 1);
    let last = records(&k, 0, cap).pop().unwrap();
    assert_eq!((last.thread, last.a), (7, 99));
    assert_eq!(
        trace::record_offset(0, cap),
        trace::record_offset(0, 0),
        "in slot 0 again"
    );
}

#[test]
fn with_tracing_off_nothing_is_recorded_and_the_fastpath_is_taken() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    invoke(&mut k, rs::TRACE_CONTROL, Label::TraceControlSetMask, &[0]).unwrap();
    let head = header(&k, 0, trace::HEAD_OFFSET);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let slow = k.slowpath_count;
    sys(&mut k, Syscall::Call, [ep, MsgInfo::new(1, 0, 0).0, 0, 0, 0, 0, 0]);
    assert_eq!(
        header(&k, 0, trace::HEAD_OFFSET),
        head,
        "no record, not even the new thread's"
    );
    assert!(k.slowpath_count > slow, "the first call queues (the slow path)");
}

#[test]
fn a_vmm_records_guest_events_for_its_vcpu_and_nothing_else() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let v = a.obj(&mut k, ObjType::VCpu, 0);
    let switch = Event::GuestTaskSwitch as u64;
    // No thread bound: nobody to record it for.
    assert_eq!(
        invoke(&mut k, v, Label::VCpuTrace, &[switch, 1, 2]),
        Err(Error::IllegalOperation)
    );
    invoke(&mut k, v, Label::VCpuBindTcb, &[t]).unwrap();
    let tid = root_slot(&k, t).cap.tcb().get().tid;
    // Off while VM events are not traced: nothing recorded, and said so.
    let head = header(&k, 0, trace::HEAD_OFFSET);
    assert_eq!(
        invoke(&mut k, v, Label::VCpuTrace, &[switch, 1, 2]).map(|m| m[0]),
        Ok(0)
    );
    assert_eq!(header(&k, 0, trace::HEAD_OFFSET), head);
    invoke(
        &mut k,
        rs::TRACE_CONTROL,
        Label::TraceControlSetMask,
        &[Class::VM.bits()],
    )
    .unwrap();
    // Only the guest events.
    for bad in [0, Event::Switch as u64, Event::ThreadName as u64, 22, 1 << 16, u64::MAX] {
        assert_eq!(
            invoke(&mut k, v, Label::VCpuTrace, &[bad, 1, 2]),
            Err(Error::InvalidArgument),
            "event {bad}"
        );
    }
    assert_eq!(header(&k, 0, trace::HEAD_OFFSET), head, "nothing for a refused one");
    let name = u64::from_le_bytes(*b"kworker/");
    let end = u64::from_le_bytes(*b"0:1H\0\0\0\0");
    assert_eq!(
        invoke(&mut k, v, Label::VCpuTrace, &[switch, 0, 42]).map(|m| m[0]),
        Ok(1)
    );
    invoke(&mut k, v, Label::VCpuTrace, &[Event::GuestTaskName as u64, 42, name]).unwrap();
    invoke(&mut k, v, Label::VCpuTrace, &[Event::GuestTaskNameEnd as u64, 42, end]).unwrap();
    let got = records(&k, 0, head);
    assert_eq!(
        events(&got),
        [Event::GuestTaskSwitch, Event::GuestTaskName, Event::GuestTaskNameEnd]
    );
    assert!(got.iter().all(|x| x.thread == tid), "the vCPU thread's, not the VMM's");
    assert_eq!(
        [(got[0].a, got[0].b), (got[1].a, got[1].b), (got[2].a, got[2].b)],
        [(0, 42), (42, name), (42, end)]
    );
}
