//! Trace points (`gaon_abi::trace`): a ring of fixed-size records per core in a frame
//! allocated at boot, which user level maps read-only.
//!
//! A trace point is `if self.tracing(Class::X) { self.record(...) }`: with the class
//! off it costs one load, a test and one predicted branch, and its arguments are not
//! computed. The fast paths (the IPC fastpath, a guest exit's) have none: they check
//! [`Kernel::traced`] once (a byte: a load and a branch) and leave it to the general
//! paths, which record, when anything they would record is on.
//! Records are written only under the kernel lock, so each ring has one producer at a
//! time (a core may write another core's ring, for a thread it stopped there); the
//! reader gives space back with `TraceControlConsume`. A full ring drops new records
//! and counts them (`lost`).

use gaon_abi::Error;
use gaon_abi::trace::{self, Class, Event};

use super::object::notification::Notification;
use super::object::tcb::{State, Tcb};
use super::{Kernel, MAX_CORES, Platform};
use crate::obj::{Ptr, TraceRings};

/// The kernel's trace state.
#[derive(Debug)]
pub(crate) struct Trace {
    /// The classes recorded ([`Class`] bits); 0 while there are no rings.
    pub(in crate::kernel) mask: u64,
    /// A class the fast paths would have to record is on (all but THREAD and BUDGET):
    /// they leave the work to the general paths then.
    busy: bool,
    /// The rings' frame, once allocated.
    pub(in crate::kernel) rings: Option<TraceRings>,
    /// Per core: records written, given back, and dropped (the kernel's copies; the
    /// headers show them).
    head: [u64; MAX_CORES],
    tail: [u64; MAX_CORES],
    lost: [u64; MAX_CORES],
    /// The last thread id handed out.
    last_tid: u32,
}

impl Trace {
    pub(crate) const fn new() -> Self {
        Self {
            mask: 0,
            busy: false,
            rings: None,
            head: [0; MAX_CORES],
            tail: [0; MAX_CORES],
            lost: [0; MAX_CORES],
            last_tid: 0,
        }
    }
}

/// The thread id of `t`, 0 for none (an idle core).
#[inline]
pub(in crate::kernel) fn tid(t: Option<Ptr<Tcb>>) -> u32 {
    t.map_or(0, |t| t.get().tid)
}

static_assertions::const_assert_eq!(MAX_CORES, trace::RING_COUNT);

impl<P: Platform> Kernel<P> {
    /// Set up the rings in the frame at `rings` (a boot allocation of
    /// `trace::RINGS_BYTES`, zeroed) and record [`trace::BOOT_CLASSES`] from now on.
    pub(in crate::kernel) fn trace_init(&mut self, rings: TraceRings) {
        let hz = self.platform.counter_hz();
        for cpu in 0..MAX_CORES.min(trace::RING_COUNT) {
            let base = trace::ring_offset(cpu);
            let id = u64::from(trace::VERSION) | (trace::RECORD_BYTES as u64) << 32 | (cpu as u64) << 48;
            for (i, w) in [trace::MAGIC, id, trace::CAPACITY, 0, 0, 0, hz, 0]
                .into_iter()
                .enumerate()
            {
                rings.write(base + 8 * i, w);
            }
        }
        self.trace.rings = Some(rings);
        self.set_trace_mask(trace::BOOT_CLASSES.bits());
    }

    /// True if the fast paths must leave this kernel entry to the general paths (which
    /// record what it does).
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on the IPC fastpath, measured in instructions")]
    pub(in crate::kernel) fn traced(&self) -> bool {
        self.trace.busy
    }

    /// True if events of class `c` are recorded: the whole cost of a trace point that
    /// is off.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "every trace point, measured in instructions")]
    pub(in crate::kernel) fn tracing(&self, c: Class) -> bool {
        self.trace.mask & c.bits() != 0
    }

    /// Record `e` on this core (see [`Kernel::record_on`]).
    #[cold]
    #[inline(never)]
    pub(in crate::kernel) fn record(&mut self, e: Event, thread: u32, a: u64, b: u64) {
        self.record_on(self.here(), e, thread, a, b);
    }

    /// Record `e` in core `cpu`'s ring, now: the record, then the head (release), or
    /// one more lost record if the ring is full.
    pub(in crate::kernel) fn record_on(&mut self, cpu: usize, e: Event, thread: u32, a: u64, b: u64) {
        let Some(rings) = self.trace.rings else { return };
        let cpu = cpu % MAX_CORES;
        let base = trace::ring_offset(cpu);
        let head = self.trace.head[cpu];
        if head - self.trace.tail[cpu] >= trace::CAPACITY {
            self.trace.lost[cpu] += 1;
            rings.write(base + trace::LOST_OFFSET, self.trace.lost[cpu]);
            return;
        }
        let off = trace::record_offset(cpu, head);
        let r = trace::Record {
            time: self.platform.now(),
            event: e as u16,
            cpu: cpu as u8,
            flags: 0,
            thread,
            a,
            b,
        };
        for (i, w) in r.words().into_iter().enumerate() {
            rings.write(off + 8 * i, w);
        }
        self.trace.head[cpu] = head + 1;
        // The record before the head that shows it.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        rings.write(base + trace::HEAD_OFFSET, head + 1);
    }

    /// `TraceControlSetMask`'s check: `mask` names classes only, and there are rings.
    pub(in crate::kernel) fn check_trace_mask(&self, mask: u64) -> Result<(), Error> {
        Class::from_bits(mask).ok_or(Error::InvalidArgument)?;
        self.trace.rings.map(|_| ()).ok_or(Error::IllegalOperation)
    }

    /// `TraceControlSetMask` (checked): the classes to record; the ones before.
    pub(in crate::kernel) fn set_trace_mask(&mut self, mask: u64) -> u64 {
        self.trace.busy = mask & !(Class::THREAD | Class::BUDGET).bits() != 0;
        core::mem::replace(&mut self.trace.mask, mask)
    }

    /// `TraceControlConsume`'s check: core `cpu` has a ring and `upto` lies between its
    /// tail and its head, or is `u64::MAX` (everything written so far).
    pub(in crate::kernel) fn check_trace_consume(&self, cpu: u64, upto: u64) -> Result<(), Error> {
        if self.trace.rings.is_none() {
            return Err(Error::IllegalOperation);
        }
        let cpu = usize::try_from(cpu)
            .ok()
            .filter(|&c| c < MAX_CORES.min(trace::RING_COUNT))
            .ok_or(Error::RangeError)?;
        if upto != u64::MAX && (upto < self.trace.tail[cpu] || upto > self.trace.head[cpu]) {
            return Err(Error::RangeError);
        }
        Ok(())
    }

    /// `TraceControlConsume` (checked): the reader read core `cpu`'s records below
    /// `upto`.
    pub(in crate::kernel) fn trace_consume(&mut self, cpu: u64, upto: u64) {
        let Some(rings) = self.trace.rings else { return };
        let cpu = cpu as usize % MAX_CORES;
        let upto = upto.min(self.trace.head[cpu]);
        self.trace.tail[cpu] = upto;
        rings.write(trace::ring_offset(cpu) + trace::TAIL_OFFSET, upto);
    }

    /// A new thread's id: the next one (ids wrap after 2^32 - 1 threads, skipping 0).
    pub(in crate::kernel) fn new_tid(&mut self) -> u32 {
        self.trace.last_tid = self.trace.last_tid.checked_add(1).unwrap_or(1);
        self.trace.last_tid
    }

    /// Give the new thread `t` its id and record its creation.
    pub(in crate::kernel) fn trace_created(&mut self, t: Ptr<Tcb>) {
        let id = self.new_tid();
        t.get().tid = id;
        if self.tracing(Class::THREAD) {
            let by = tid(self.current());
            self.record(Event::ThreadCreate, id, u64::from(by), 0);
        }
    }

    /// A message passes from `sender` to `receiver` with `badge`: the sender's
    /// [`Event::IpcCall`] or [`Event::IpcSend`] (if it did not wait: when it was queued
    /// it was recorded then) and the receiver's [`Event::IpcRecv`].
    #[cold]
    #[inline(never)]
    pub(in crate::kernel) fn trace_delivery(&mut self, sender: Ptr<Tcb>, receiver: Ptr<Tcb>, badge: u64, call: bool) {
        let (s, r) = (sender.get().tid, receiver.get().tid);
        if !matches!(sender.get().state, State::BlockedOnSend { .. }) {
            let e = if call { Event::IpcCall } else { Event::IpcSend };
            self.record(e, s, badge, u64::from(r));
        }
        self.record(Event::IpcRecv, r, badge, u64::from(s));
    }

    /// `n` is signalled with `badge` by this core's running thread (or an interrupt):
    /// [`Event::Signal`] with the thread it wakes, if any.
    #[cold]
    #[inline(never)]
    pub(in crate::kernel) fn trace_signal(&mut self, n: Ptr<Notification>, badge: u64) {
        let nt = n.get();
        let woken = nt.queue.first().or_else(|| {
            nt.bound
                .filter(|b| matches!(b.get().state, State::BlockedOnRecv { .. }))
        });
        self.record(Event::Signal, tid(self.current()), badge, u64::from(tid(woken)));
    }

    /// A stopped thread's state in a switch record: out of budget (throttled) or
    /// inactive is stopped.
    fn prev_state(&self, t: Ptr<Tcb>) -> u8 {
        match t.get().state {
            State::Running if self.throttled(t) => trace::PREV_STOPPED,
            State::Running => trace::PREV_RUNNABLE,
            State::Inactive => trace::PREV_STOPPED,
            _ => trace::PREV_BLOCKED,
        }
    }

    /// The running thread of this core changes from `prev` to `next` (neither the
    /// same): the switch record.
    #[cold]
    #[inline(never)]
    pub(in crate::kernel) fn trace_switch(&mut self, cpu: usize, prev: Option<Ptr<Tcb>>, next: Option<Ptr<Tcb>>) {
        let (state, prev_prio) = prev.map_or((trace::PREV_RUNNABLE, 0), |p| (self.prev_state(p), p.get().prio));
        let next_prio = next.map_or(0, |n| n.get().prio);
        let info = trace::switch_info(state, prev_prio, next_prio);
        self.record_on(cpu, Event::Switch, tid(prev), u64::from(tid(next)), info);
    }
}
