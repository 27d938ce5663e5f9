//! Kernel trace points: what the kernel records, and where a reader finds it.
//!
//! The kernel keeps one ring of fixed-size [`Record`]s per core in a
//! [`RINGS_BYTES`] frame it allocates at boot: core `n`'s ring is the
//! [`RING_BYTES`] from `n * RING_BYTES` on, a [`RingHeader`] followed by
//! [`CAPACITY`] records. The root server gets the frame read-only (slot
//! [`crate::bootinfo::slot::TRACE_RINGS`]) and may hand copies on; a reader maps it
//! read-only and never writes it.
//!
//! Each ring has a single producer, the kernel (it writes under its lock), and one
//! consumer. The kernel writes record `head` at slot `head % CAPACITY`, then advances
//! `head` in the header (with release ordering: a reader that reads `head` first, then
//! the records below it, sees them whole). A reader takes records `tail..head` and
//! gives the space back with `TraceControlConsume`; the kernel keeps `tail` itself and
//! shows it in the header. When the ring is full the kernel drops the new record and
//! counts it in `lost` (nothing already in the ring is overwritten, so a reader never
//! sees a record change under it).
//!
//! Which [`Class`]es of events are recorded is a mask set with
//! `TraceControlSetMask`; a trace point whose class is off costs one load and one
//! predicted branch. [`Class::THREAD`] (threads created, named, destroyed) is on from
//! boot, so a reader that starts later still learns every thread's name.

use bitflags::bitflags;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// log2 of the frame holding every core's ring (a 2 MiB frame).
pub const RINGS_BITS: u8 = 21;
/// Bytes of the frame holding every core's ring.
pub const RINGS_BYTES: usize = 1 << RINGS_BITS;
/// Cores with a ring (the kernel's `MAX_CORES`).
pub const RING_COUNT: usize = 4;
/// Bytes of one core's ring, its header included.
pub const RING_BYTES: usize = RINGS_BYTES / RING_COUNT;
/// Bytes of a ring's header.
pub const HEADER_BYTES: usize = 64;
/// Bytes of a record.
pub const RECORD_BYTES: usize = 32;
/// Records a ring holds.
pub const CAPACITY: u64 = ((RING_BYTES - HEADER_BYTES) / RECORD_BYTES) as u64;
/// [`RingHeader::magic`].
pub const MAGIC: u64 = u64::from_le_bytes(*b"GAONTRAC");
/// [`RingHeader::version`].
pub const VERSION: u32 = 1;

/// Where core `cpu`'s ring starts in the frame.
pub const fn ring_offset(cpu: usize) -> usize {
    cpu * RING_BYTES
}

/// Where record number `n` (counted from the ring's start, not wrapped) is in core
/// `cpu`'s ring, from the frame's start.
pub const fn record_offset(cpu: usize, n: u64) -> usize {
    ring_offset(cpu) + HEADER_BYTES + (n % CAPACITY) as usize * RECORD_BYTES
}

/// The start of each ring. The kernel writes it; readers only read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RingHeader {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// [`RECORD_BYTES`].
    pub record_bytes: u16,
    /// The core this ring belongs to.
    pub cpu: u16,
    /// [`CAPACITY`].
    pub capacity: u64,
    /// Records written since boot (record `n` is at `n % capacity`).
    pub head: u64,
    /// Records the reader has given back (`TraceControlConsume`): `tail..head` are
    /// waiting, and the ring is full when `head - tail == capacity`.
    pub tail: u64,
    /// Records dropped because the ring was full.
    pub lost: u64,
    /// The counter's frequency (timestamps are counter values).
    pub counter_hz: u64,
    /// Zero.
    pub reserved: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<RingHeader>(), HEADER_BYTES);

/// Offset of [`RingHeader::head`] in a ring (the word a reader polls).
pub const HEAD_OFFSET: usize = 24;
/// Offset of [`RingHeader::tail`].
pub const TAIL_OFFSET: usize = 32;
/// Offset of [`RingHeader::lost`].
pub const LOST_OFFSET: usize = 40;

/// One event. `thread` and the arguments mean what [`Event`] says for each kind.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Record {
    /// The counter when it happened.
    pub time: u64,
    /// The [`Event`] number.
    pub event: u16,
    /// The core it happened on.
    pub cpu: u8,
    /// Zero.
    pub flags: u8,
    /// The thread it is about (its id, see [`Event::ThreadCreate`]; 0: none, the core
    /// was idle).
    pub thread: u32,
    /// First argument.
    pub a: u64,
    /// Second argument.
    pub b: u64,
}

static_assertions::const_assert_eq!(core::mem::size_of::<Record>(), RECORD_BYTES);

impl Record {
    /// Its four little-endian words, as it lies in a ring: the time; the event, core,
    /// flags and thread (bits 0..16, 16..24, 24..32, 32..64); `a`; `b`.
    pub const fn words(&self) -> [u64; 4] {
        let ids = self.event as u64 | (self.cpu as u64) << 16 | (self.flags as u64) << 24 | (self.thread as u64) << 32;
        [self.time, ids, self.a, self.b]
    }

    /// The record whose [`Record::words`] are `w`.
    pub const fn from_words(w: [u64; 4]) -> Self {
        Self {
            time: w[0],
            event: w[1] as u16,
            cpu: (w[1] >> 16) as u8,
            flags: (w[1] >> 24) as u8,
            thread: (w[1] >> 32) as u32,
            a: w[2],
            b: w[3],
        }
    }
}

bitflags! {
    /// Classes of events, the bits of `TraceControlSetMask`'s mask.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Class: u64 {
        /// [`Event::Switch`].
        const SCHED = 1 << 0;
        /// [`Event::IpcSend`], [`Event::IpcCall`], [`Event::IpcRecv`], [`Event::IpcReply`].
        const IPC = 1 << 1;
        /// [`Event::Signal`].
        const NOTIFY = 1 << 2;
        /// [`Event::IrqEntry`], [`Event::IrqExit`].
        const IRQ = 1 << 3;
        /// [`Event::Fault`].
        const FAULT = 1 << 4;
        /// [`Event::VmExit`], [`Event::VmEntry`], [`Event::VirqInject`], and the
        /// guests' own: [`Event::GuestTaskSwitch`], [`Event::GuestEvent`],
        /// [`Event::GuestTaskName`], [`Event::GuestTaskNameEnd`], and the devices' accesses
        /// [`Event::VmMmio`].
        const VM = 1 << 5;
        /// [`Event::BudgetExhausted`], [`Event::BudgetReplenished`].
        const BUDGET = 1 << 6;
        /// [`Event::ThreadCreate`], [`Event::ThreadName`], [`Event::ThreadDestroy`]
        /// (on from boot).
        const THREAD = 1 << 7;
    }
}

/// The classes on at boot.
pub const BOOT_CLASSES: Class = Class::THREAD;

/// What a record says happened. Thread ids are the kernel's: a thread gets the next
/// one (from 1) when it is created, and keeps it until it is destroyed; 0 is "no
/// thread" (an idle core).
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The core switched threads. `thread`: the one that stopped (0: idle); `a`: the
    /// one that runs now (0: idle); `b`: [`switch_info`] (the stopped thread's state
    /// and both priorities).
    Switch = 1,
    /// `thread` sent on an endpoint without waiting for an answer (Send, or a Call's
    /// reply-less half is [`Event::IpcCall`]). `a`: the badge of the capability it
    /// sent with; `b`: the receiver's id if one was waiting, else 0 (queued).
    IpcSend = 2,
    /// `thread` called through an endpoint. `a`: the badge; `b`: the receiver's id
    /// if one was waiting, else 0.
    IpcCall = 3,
    /// `thread` received a message. `a`: the badge it came with; `b`: the sender's id.
    IpcRecv = 4,
    /// `thread` replied. `a`: 0; `b`: the caller's id.
    IpcReply = 5,
    /// `thread` signalled a notification. `a`: the badge (the bits set); `b`: the id of
    /// the thread it woke, else 0.
    Signal = 6,
    /// An interrupt arrived. `thread`: the thread it interrupted (0: idle); `a`: the
    /// line.
    IrqEntry = 7,
    /// The kernel finished with an interrupt. `thread`, `a` as for [`Event::IrqEntry`].
    IrqExit = 8,
    /// `thread` faulted. `a`: the `FaultKind`; `b`: the address (data and instruction
    /// aborts) or 0.
    Fault = 9,
    /// A guest's vCPU thread left the guest. `a`: the exit (`gaon_abi::vcpu::ExitKind`
    /// number); `b`: ESR_EL2 of a trap, or the line of an interrupt.
    VmExit = 10,
    /// A vCPU thread is about to run its guest again. `a`, `b`: 0.
    VmEntry = 11,
    /// `thread` injected a virtual interrupt. `a`: the INTID; `b`: the vCPU thread's id.
    VirqInject = 12,
    /// `thread`'s scheduling context ran out of budget. `a`: its budget (counter
    /// ticks); `b`: when it is refilled (counter).
    BudgetExhausted = 13,
    /// `thread`'s scheduling context was refilled. `a`: the budget it has now.
    BudgetReplenished = 14,
    /// A thread was created: `thread` is its id; `a`: the creator's id.
    ThreadCreate = 15,
    /// `thread` was named (`TcbSetName`). `a`, `b`: the name's 16 bytes, NUL-padded,
    /// little-endian (`a` holds bytes 0..8).
    ThreadName = 16,
    /// `thread` was destroyed (its id is not used again).
    ThreadDestroy = 17,
    /// The guest that vCPU thread `thread` runs switched its own tasks (its
    /// `TRACE_TASK_SWITCH` hypercall, recorded at the exit). `a`: the task it left;
    /// `b`: the task that runs now (the guest's numbers).
    GuestTaskSwitch = 18,
    /// A guest-defined event (`TRACE_EVENT`). `a`: its number; `b`: its argument.
    GuestEvent = 19,
    /// A guest named a task (`TRACE_TASK_NAME`). `a`: the task; `b`: its name's first
    /// 8 bytes, little-endian, NUL-padded.
    GuestTaskName = 20,
    /// The rest of the name of the task a [`Event::GuestTaskName`] just before named
    /// (same thread, same core): `a`: the task; `b`: the name's bytes 8..16,
    /// little-endian, NUL-padded (a Linux task's `comm` has 16).
    GuestTaskNameEnd = 21,
    /// The VMM answered vCPU thread `thread`'s access to a device it emulates (an
    /// `Mmio` exit, answered done): `a`: [`mmio_access`] (the guest-physical address,
    /// the size, load or store); `b`: the value stored, or the value the load got.
    VmMmio = 22,
}

/// [`Event::VmMmio`]'s `a`: the guest-physical address (bits 0..48), log2 of the access
/// size in bytes (bits 48..50), and bit 50 set for a store.
pub const fn mmio_access(ipa: u64, size_log2: u8, write: bool) -> u64 {
    (ipa & ((1 << 48) - 1)) | ((size_log2 as u64 & 3) << 48) | ((write as u64) << 50)
}

/// Split [`mmio_access`]: (guest-physical address, log2 of the size, a store).
pub const fn split_mmio_access(a: u64) -> (u64, u8, bool) {
    (a & ((1 << 48) - 1), ((a >> 48) & 3) as u8, (a >> 50) & 1 == 1)
}

impl Event {
    /// Every event, in numeric order.
    pub const ALL: [Self; 22] = [
        Self::Switch,
        Self::IpcSend,
        Self::IpcCall,
        Self::IpcRecv,
        Self::IpcReply,
        Self::Signal,
        Self::IrqEntry,
        Self::IrqExit,
        Self::Fault,
        Self::VmExit,
        Self::VmEntry,
        Self::VirqInject,
        Self::BudgetExhausted,
        Self::BudgetReplenished,
        Self::ThreadCreate,
        Self::ThreadName,
        Self::ThreadDestroy,
        Self::GuestTaskSwitch,
        Self::GuestEvent,
        Self::GuestTaskName,
        Self::GuestTaskNameEnd,
        Self::VmMmio,
    ];

    /// Decode an event number.
    pub const fn from_raw(raw: u16) -> Option<Self> {
        if raw == 0 || raw as usize > Self::ALL.len() {
            return None;
        }
        Some(Self::ALL[raw as usize - 1])
    }

    /// Its class.
    pub const fn class(self) -> Class {
        match self {
            Self::Switch => Class::SCHED,
            Self::IpcSend | Self::IpcCall | Self::IpcRecv | Self::IpcReply => Class::IPC,
            Self::Signal => Class::NOTIFY,
            Self::IrqEntry | Self::IrqExit => Class::IRQ,
            Self::Fault => Class::FAULT,
            Self::VmExit
            | Self::VmEntry
            | Self::VirqInject
            | Self::GuestTaskSwitch
            | Self::GuestEvent
            | Self::GuestTaskName
            | Self::GuestTaskNameEnd
            | Self::VmMmio => Class::VM,
            Self::BudgetExhausted | Self::BudgetReplenished => Class::BUDGET,
            Self::ThreadCreate | Self::ThreadName | Self::ThreadDestroy => Class::THREAD,
        }
    }

    /// Its name in traces (`gaon_` and this are the trace event names).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::IpcSend => "ipc_send",
            Self::IpcCall => "ipc_call",
            Self::IpcRecv => "ipc_recv",
            Self::IpcReply => "ipc_reply",
            Self::Signal => "signal",
            Self::IrqEntry => "irq_entry",
            Self::IrqExit => "irq_exit",
            Self::Fault => "fault",
            Self::VmExit => "vm_exit",
            Self::VmEntry => "vm_entry",
            Self::VirqInject => "virq_inject",
            Self::BudgetExhausted => "budget_exhausted",
            Self::BudgetReplenished => "budget_replenished",
            Self::ThreadCreate => "thread_create",
            Self::ThreadName => "thread_name",
            Self::ThreadDestroy => "thread_destroy",
            Self::GuestTaskSwitch => "guest_task_switch",
            Self::GuestEvent => "guest_event",
            Self::GuestTaskName => "guest_task_name",
            Self::GuestTaskNameEnd => "guest_task_name_end",
            Self::VmMmio => "vm_mmio",
        }
    }
}

/// A stopped thread's state in [`switch_info`]: it may run again (preempted, yielded).
pub const PREV_RUNNABLE: u8 = 0;
/// ... it waits (IPC, a notification, a reply, a fault's answer).
pub const PREV_BLOCKED: u8 = 1;
/// ... it is suspended, out of budget, or gone.
pub const PREV_STOPPED: u8 = 2;

/// [`Event::Switch`]'s `b`: the stopped thread's state (bits 0..8: [`PREV_RUNNABLE`],
/// [`PREV_BLOCKED`] or [`PREV_STOPPED`]), its priority (bits 8..16) and the next
/// thread's (bits 16..24).
pub const fn switch_info(prev_state: u8, prev_prio: u8, next_prio: u8) -> u64 {
    prev_state as u64 | (prev_prio as u64) << 8 | (next_prio as u64) << 16
}

/// Split [`switch_info`]: (state, previous priority, next priority).
pub const fn split_switch_info(b: u64) -> (u8, u8, u8) {
    (b as u8, (b >> 8) as u8, (b >> 16) as u8)
}

/// A thread name's 16 bytes as [`Event::ThreadName`]'s two words (and
/// `TcbSetName`'s arguments).
pub fn name_words(name: &[u8]) -> (u64, u64) {
    let mut b = [0u8; 16];
    let n = name.len().min(16);
    b[..n].copy_from_slice(&name[..n]);
    let (lo, hi) = b.split_at(8);
    (
        u64::from_le_bytes(lo.try_into().unwrap_or([0; 8])),
        u64::from_le_bytes(hi.try_into().unwrap_or([0; 8])),
    )
}

/// The name in [`Event::ThreadName`]'s two words: its bytes up to the first NUL.
pub fn name_bytes(a: u64, b: u64) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    let len = out.iter().position(|&c| c == 0).unwrap_or(16);
    (out, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_fixed() {
        assert_eq!(core::mem::offset_of!(RingHeader, head), HEAD_OFFSET);
        assert_eq!(core::mem::offset_of!(RingHeader, tail), TAIL_OFFSET);
        assert_eq!(core::mem::offset_of!(RingHeader, lost), LOST_OFFSET);
        assert_eq!(CAPACITY, 16_382);
        assert_eq!(record_offset(1, 0), RING_BYTES + HEADER_BYTES);
        assert_eq!(
            record_offset(0, CAPACITY),
            HEADER_BYTES,
            "record n wraps at the capacity"
        );
        assert!(record_offset(3, CAPACITY - 1) + RECORD_BYTES <= RINGS_BYTES);
    }

    #[test]
    fn a_records_words_are_its_bytes() {
        use zerocopy::IntoBytes;
        let r = Record {
            time: 1,
            event: 0x0203,
            cpu: 4,
            flags: 5,
            thread: 0x0607_0809,
            a: 10,
            b: 11,
        };
        let mut bytes = [0u8; RECORD_BYTES];
        for (chunk, w) in bytes.chunks_mut(8).zip(r.words()) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&bytes[..], r.as_bytes());
        assert_eq!(Record::from_words(r.words()), r);
    }

    #[test]
    fn events_round_trip_and_have_classes() {
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i + 1);
            assert_eq!(Event::from_raw(*e as u16), Some(*e));
            assert_eq!(e.class().bits().count_ones(), 1);
        }
        assert_eq!(Event::from_raw(0), None);
        assert_eq!(Event::from_raw(Event::ALL.len() as u16 + 1), None);
        let a = mmio_access(0x900_0010, 2, true);
        assert_eq!(split_mmio_access(a), (0x900_0010, 2, true));
        assert_eq!(
            split_mmio_access(mmio_access(u64::MAX, 7, false)),
            ((1 << 48) - 1, 3, false)
        );
        let all = Event::ALL.iter().fold(Class::empty(), |c, e| c | e.class());
        assert_eq!(all, Class::all(), "every class has an event");
    }

    #[test]
    fn names_and_switch_info_round_trip() {
        let (a, b) = name_words(b"vm0.vcpu1");
        let (bytes, len) = name_bytes(a, b);
        assert_eq!(&bytes[..len], b"vm0.vcpu1");
        let (a, b) = name_words(b"a-name-longer-than-sixteen");
        assert_eq!(name_bytes(a, b).1, 16);
        assert_eq!(
            split_switch_info(switch_info(PREV_BLOCKED, 100, 200)),
            (PREV_BLOCKED, 100, 200)
        );
    }
}
