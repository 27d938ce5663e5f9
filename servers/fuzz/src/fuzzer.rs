//! The untrusted threads: random syscalls and invocations from a CSpace of their own
//! (the fuzzer's, which the second thread shares).
//!
//! Every call picks a syscall number (mostly `Call`, the other IPC syscalls, a few
//! debug syscalls and garbage numbers), a capability (mostly one its CSpace holds, by
//! the type the kernel last said it has), a label (mostly one of that type's), and
//! arguments by what the label decodes (slot indices, its own CPtrs, rights, badges and
//! guards, object specs, page-aligned addresses, priorities, register numbers), each
//! sometimes replaced by an edge value (0, 1, `u64::MAX`, powers of two and their
//! neighbours, random words). Long messages, capability transfers and receive slots go
//! through its IPC buffer. It keeps a table of its slots' types, refreshed with
//! `DebugCapIdentify` (one slot per call, and the target of an invocation whose type
//! is unknown); those calls are not counted.
//!
//! The generator's state lives in statics: the supervisor restarts the fuzzer (after a
//! world is rebuilt, or when it broke its own thread) and it goes on with the next
//! call. Generated values never point into the supervisor's image or mappings (see
//! `Fuzzer::edge`): they end up as other threads' PCs and stack pointers.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use gaon_abi::message::{
    IPC_BUFFER_CAPS_OFFSET, IPC_BUFFER_RECEIVE_CNODE_OFFSET, IPC_BUFFER_RECEIVE_INDEX_OFFSET, MSG_MAX_EXTRA_CAPS,
    MSG_MAX_LENGTH, ipc_buffer_msg_offset,
};
use gaon_abi::{Label, MsgInfo, ObjType, Syscall};
/// The counter (the fuzzer's clock for timers and rates).
pub use libl4::time::{counter, counter_hz};

/// Radix of the fuzzer's CNode (its guard makes a CPtr the slot index).
pub const RADIX: u8 = 6;
/// Slots in it.
pub const SLOTS: u64 = 1 << RADIX;

/// What the supervisor puts in the fuzzer's CNode.
pub mod slot {
    /// Its own CNode.
    pub const CNODE: u64 = 1;
    /// Its own Tcb.
    pub const TCB: u64 = 2;
    /// Untyped memory of its own.
    pub const UNTYPED: u64 = 3;
    /// An endpoint a partner thread serves (echoes every message).
    pub const EP: u64 = 4;
    /// The other thread's fault endpoint.
    pub const FAULT_EP: u64 = 5;
    /// A notification.
    pub const NTFN: u64 = 6;
    /// Its reply object.
    pub const REPLY: u64 = 7;
    /// A 4 KiB frame.
    pub const FRAME: u64 = 8;
    /// Another one.
    pub const FRAME2: u64 = 9;
    /// A 2 MiB frame.
    pub const LARGE_FRAME: u64 = 10;
    /// A page table.
    pub const PAGE_TABLE: u64 = 11;
    /// Another one.
    pub const PAGE_TABLE2: u64 = 12;
    /// An address space (empty).
    pub const VSPACE: u64 = 13;
    /// The other fuzzing thread (the only capability to it: deleting it destroys a
    /// thread that may be running, queued or blocked anywhere).
    pub const OTHER: u64 = 14;
    /// An unconfigured scheduling context.
    pub const SCHED_CONTEXT: u64 = 15;
    /// A configured one, bound to the other thread.
    pub const SCHED_CONTEXT2: u64 = 16;
    /// Scheduling-context control.
    pub const SCHED_CONTROL: u64 = 17;
    /// A small CNode.
    pub const CNODE2: u64 = 18;
    /// A badged copy of `EP`.
    pub const EP_BADGED: u64 = 19;
    /// The user timer's IRQ handler, on boards with one.
    pub const IRQ_TIMER: u64 = 20;
    /// A device line's IRQ handler, on boards with lines for user level.
    pub const IRQ_DEVICE: u64 = 21;
    /// The notification bound to the fuzzer's thread.
    pub const BOUND_NTFN: u64 = 22;
    /// A pool of a few VMIDs, split off the root server's.
    pub const VMID_POOL: u64 = 23;
    /// A virtual CPU, unbound (binding it to a thread makes that thread a guest).
    pub const VCPU: u64 = 24;
    /// The first slot left empty.
    pub const FIRST_FREE: u64 = 25;
}

/// Random syscalls started (the current one included).
pub static CALLS: AtomicU64 = AtomicU64::new(0);
/// The fuzzer waits (yielding) once `CALLS` reaches this.
pub static STOP: AtomicU64 = AtomicU64::new(0);
/// The generator's state, kept across restarts.
pub static RNG: AtomicU64 = AtomicU64::new(1);
/// Random syscalls started by each thread (0: the fuzzer, 1: the other thread).
pub static CALLS_BY: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
/// Results by error code (0 = success).
pub static RESULTS: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
/// Successful invocations by label (index in `Label::ALL`).
pub static LABEL_OK: [AtomicU64; Label::ALL.len()] = [const { AtomicU64::new(0) }; Label::ALL.len()];
/// `DebugCapIdentify` calls made to keep the type table (not counted in `CALLS`).
pub static IDENTIFIES: AtomicU64 = AtomicU64::new(0);

/// Shadow-table entry for a slot whose type is not known.
const UNKNOWN: u8 = 0xff;

/// A fuzzing thread's entry: call after call until the supervisor says stop. `arg` is
/// the address of its IPC buffer (page aligned), plus 1 for the second thread.
pub extern "C" fn entry(arg: u64) -> ! {
    let mut f = Fuzzer {
        rng: RNG.load(Relaxed) ^ (arg & 1),
        types: [UNKNOWN; SLOTS as usize],
        next_refresh: 0,
        buffer: arg & !0xfff,
        id: (arg & 1) as usize,
    };
    loop {
        if CALLS.load(Relaxed) >= STOP.load(Relaxed) {
            libl4::syscall::yield_now();
            libl4::syscall::spin_hint();
            continue;
        }
        f.refresh();
        f.one();
    }
}

/// What one fuzzing thread knows.
struct Fuzzer {
    rng: u64,
    /// Its IPC buffer's address.
    buffer: u64,
    /// 0 for the fuzzer, 1 for the other thread.
    id: usize,
    /// Each slot's type as `DebugCapIdentify` last said (type + 1, 0 = empty).
    types: [u8; SLOTS as usize],
    next_refresh: u64,
}

/// How the kernel decodes an argument.
#[derive(Clone, Copy)]
enum A {
    /// A slot index in a CNode.
    Index,
    /// A CPtr to a capability of this type.
    Cap(ObjType),
    /// The same, or 0 (none).
    CapOr0(ObjType),
    /// A CPtr to any capability.
    Any,
    /// A fault endpoint: mostly the one the partner does not serve (a thread whose
    /// faults the partner answers faults again at once, and the two hog the CPU).
    FaultEp,
    /// A thread other than the fuzzer's own, mostly (binding a budget to itself
    /// slows the fuzzer down until its world is rebuilt).
    Other,
    /// Rights bits.
    Rights,
    /// A badge or a CNode guard.
    Badge,
    /// `type | size_bits << 8`.
    ObjSpec,
    /// An object count.
    Count,
    /// A virtual address.
    VAddr,
    /// Frame mapping attributes.
    Attr,
    /// A priority.
    Prio,
    /// A core (mostly one that exists).
    Core,
    /// A register number.
    Reg,
    /// A register count.
    RegCount,
    /// Any word.
    Word,
    /// Microseconds of budget or period.
    Micros,
    /// A timer compare value.
    Cval,
    /// Timer arm flag.
    Arm,
    /// An IPC buffer address.
    Buffer,
    /// An IRQ number.
    Irq,
    /// A private line: mostly the guests' virtual timer's.
    Ppi,
}

/// The arguments `label` decodes.
fn args_of(label: Label) -> &'static [A] {
    use A::{
        Any, Arm, Attr, Badge, Buffer, Cap, CapOr0, Core, Count, Cval, FaultEp, Index, Irq, Micros, ObjSpec, Other,
        Ppi, Prio, Reg, RegCount, Rights, VAddr, Word,
    };
    use {Label as L, ObjType as T};
    match label {
        L::UntypedRetype => &[ObjSpec, Cap(T::CNode), Index, Count],
        L::CNodeCopy => &[Index, Any, Rights],
        L::CNodeMint => &[Index, Cap(T::Endpoint), Rights, Badge],
        L::CNodeMove => &[Index, Any],
        L::CNodeMutate => &[Index, Any, Badge],
        L::CNodeDelete | L::CNodeRevoke | L::CNodeIdentify => &[Index],
        L::TcbSetSpace => &[Cap(T::CNode), Cap(T::VSpace), FaultEp],
        L::TcbSetIpcBuffer => &[Buffer, CapOr0(T::Frame)],
        L::TcbSetPriority | L::TcbSetMcp => &[Prio, Cap(T::Tcb)],
        L::TcbReadRegisters | L::VCpuReadRegs => &[Reg, RegCount],
        L::TcbWriteRegisters | L::VCpuWriteRegs => &[Reg, RegCount, Word, Word, Word, Word],
        L::TcbBindNotification => &[Cap(T::Notification)],
        L::TcbSetTimeoutEndpoint => &[CapOr0(T::Endpoint)],
        L::TcbSetAffinity => &[Core],
        L::FrameMap => &[Cap(T::VSpace), VAddr, Rights, Attr],
        L::PageTableMap => &[Cap(T::VSpace), VAddr],
        L::IrqControlGet => &[Irq, Cap(T::CNode), Index],
        L::IrqHandlerSetNotification | L::DebugLogBind => &[CapOr0(T::Notification)],
        L::IrqHandlerSetTimer => &[Cval, Arm],
        L::VCpuInjectIrq => &[Irq, Word, Arm],
        L::VCpuSetVppi => &[Ppi, Arm, Prio],
        L::VCpuAckVppi => &[Ppi],
        L::SchedControlConfigure => &[Cap(T::SchedContext), Micros, Micros, Badge],
        L::SchedContextBind | L::VCpuBindTcb => &[Other],
        L::VmidPoolAssign => &[Cap(T::VSpace)],
        L::VmidPoolSplit => &[RegCount, Cap(T::CNode), Index],
        _ => &[],
    }
}

/// Syscall numbers never made: they would halt the machine, write the console, or
/// run the consistency check (the supervisor's job).
const RESERVED: [u64; 3] = [
    Syscall::DebugHalt as u64,
    Syscall::DebugPutChar as u64,
    Syscall::DebugCheckConsistency as u64,
];

impl Fuzzer {
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An edge value. These also become the PCs and stack pointers the fuzzers write
    /// into threads' registers (and fault replies), and the fuzzers run in the
    /// supervisor's address space: none of them may point into its image (from
    /// `0x40_0000`, `[0x40_0000, 0x80_0000)` is avoided) or its mappings (from
    /// `0x30_0000_0000`). Anywhere else a thread only faults.
    fn edge(&mut self) -> u64 {
        let k = match self.below(64) {
            22 => 21,
            k => k,
        };
        match self.below(14) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => u64::MAX - 1,
            4 => 1 << k,
            5 => (1 << k) - 1,
            6 => (1u64 << k).wrapping_add(1),
            7 => self.below(1 << 10) << 12,
            8 => 0x10_0000_0000 + (self.below(1 << 10) << 12),
            9 => 1 << 63,
            10 => self.below(SLOTS),
            11 => self.held(),
            12 => self.below(32),
            _ => self.next(),
        }
    }

    /// A slot the table says is not empty; failing that, one whose type it does not
    /// know; failing that, any.
    fn held(&mut self) -> u64 {
        let start = self.below(SLOTS);
        let mut unknown = None;
        for s in (0..SLOTS).map(|i| (start + i) % SLOTS).filter(|&s| s != 0) {
            match self.types[s as usize] {
                0 => {}
                UNKNOWN => unknown = unknown.or(Some(s)),
                _ => return s,
            }
        }
        unknown.unwrap_or(start)
    }

    /// A slot holding a capability of type `ty`, if the table knows one.
    fn of_type(&mut self, ty: ObjType) -> Option<u64> {
        let start = self.below(SLOTS);
        let want = ty as u8 + 1;
        (0..SLOTS)
            .map(|i| (start + i) % SLOTS)
            .find(|&s| self.types[s as usize] == want)
    }

    /// A CPtr: mostly a held slot, sometimes any slot, sometimes an edge value.
    fn cap(&mut self) -> u64 {
        match self.below(100) {
            0..=84 => self.held(),
            85..=92 => self.below(SLOTS),
            _ => self.edge(),
        }
    }

    /// A CPtr for IPC: mostly an endpoint, notification or reply object.
    fn ipc_cap(&mut self) -> u64 {
        const IPC: [u64; 6] = [
            slot::EP,
            slot::EP_BADGED,
            slot::FAULT_EP,
            slot::NTFN,
            slot::BOUND_NTFN,
            slot::REPLY,
        ];
        if self.chance(65) {
            IPC[self.below(IPC.len() as u64) as usize]
        } else {
            self.cap()
        }
    }

    /// An argument of kind `a`; one in five is an edge value instead.
    fn arg(&mut self, a: A) -> u64 {
        if self.chance(20) {
            return self.edge();
        }
        match a {
            A::Index => {
                if self.chance(60) {
                    slot::FIRST_FREE + self.below(SLOTS - slot::FIRST_FREE)
                } else {
                    self.below(SLOTS)
                }
            }
            A::Cap(ty) => match self.below(10) {
                0..=6 => self.of_type(ty).unwrap_or_else(|| self.cap()),
                _ => self.cap(),
            },
            A::Any => self.cap(),
            A::FaultEp => match self.below(10) {
                0..=6 => slot::FAULT_EP,
                7 => 0,
                _ => self.arg(A::CapOr0(ObjType::Endpoint)),
            },
            A::Other => {
                if self.chance(90) {
                    slot::OTHER
                } else {
                    self.arg(A::Cap(ObjType::Tcb))
                }
            }
            A::CapOr0(ty) => {
                if self.chance(25) {
                    0
                } else {
                    self.arg(A::Cap(ty))
                }
            }
            A::Rights => self.below(16),
            A::Badge => match self.below(4) {
                0 => 0,
                1 => 1 + self.below(0x100),
                // A CNode guard: guard_bits << 56 | guard.
                2 => (self.below(60) << 56) | self.below(4),
                _ => self.next(),
            },
            A::ObjSpec => {
                let ty = match self.below(14) {
                    13 => ObjType::VCpu as u64,
                    t => t,
                };
                let bits = match ObjType::from_raw(ty) {
                    Some(ObjType::Untyped) => 4 + self.below(14),
                    Some(ObjType::CNode) => 1 + self.below(6),
                    Some(ObjType::Frame) if self.chance(90) => 12,
                    Some(ObjType::Frame) => 21,
                    _ => 0,
                };
                ty | bits << 8
            }
            A::Count => {
                if self.chance(75) {
                    1
                } else {
                    2 + self.below(4)
                }
            }
            A::VAddr => match self.below(6) {
                0 | 1 => 0x10_0000_0000 + (self.below(512) << 12),
                2 => 0x20_0000_0000 + (self.below(8) << 21),
                3 => self.below(512) << 30,
                4 => self.below(1 << 20),
                _ => (1 << 39) - (self.below(3) << 12),
            },
            A::Attr => u64::from(self.chance(10)),
            A::Prio => {
                if self.chance(75) {
                    self.below(101)
                } else {
                    self.below(256)
                }
            }
            A::Core => self.below(4) + u64::from(self.chance(20)) * 4,
            A::Reg => self.below(36),
            A::RegCount => self.below(6),
            A::Word => self.edge(),
            A::Micros => 1 + self.below(20_000),
            A::Cval => match self.below(3) {
                0 => 0,
                1 => counter() + self.below(100_000),
                _ => u64::MAX,
            },
            A::Arm => self.below(3),
            A::Buffer => {
                if self.chance(50) {
                    self.buffer
                } else {
                    0x10_0000_0000 + (self.below(64) << 10)
                }
            }
            A::Irq => self.below(300),
            A::Ppi => [27, self.below(32)][usize::from(self.chance(50))],
        }
    }

    /// Learn the type of the next slot in turn (one `DebugCapIdentify`).
    fn refresh(&mut self) {
        let s = self.next_refresh;
        self.next_refresh = (s + 1) % SLOTS;
        self.identify(s);
    }

    fn identify(&mut self, s: u64) {
        let mut r = [s, 0, 0, 0, 0, 0, 0];
        raw(Syscall::DebugCapIdentify as u64, &mut r);
        IDENTIFIES.fetch_add(1, Relaxed);
        self.types[s as usize] = if r[0] == 0 { r[1] as u8 } else { UNKNOWN };
    }

    /// The type the table gives `cptr` (looking it up first if unknown).
    fn type_of(&mut self, cptr: u64) -> Option<ObjType> {
        if cptr >= SLOTS {
            return None;
        }
        if self.types[cptr as usize] == UNKNOWN {
            self.identify(cptr);
        }
        ObjType::from_raw(u64::from(self.types[cptr as usize]).wrapping_sub(1))
    }

    /// Forget what a CNode or Untyped invocation may have changed.
    fn forget_after(&mut self, label: Label, args: &[u64]) {
        match label {
            L::CNodeCopy | L::CNodeMint | L::CNodeMove | L::CNodeMutate | L::CNodeDelete => {
                for &s in args.iter().take(2) {
                    self.forget(s);
                }
            }
            L::UntypedRetype => {
                let (first, count) = (args[2], args[3].min(8));
                for s in first..first.saturating_add(count) {
                    self.forget(s);
                }
            }
            L::CNodeRevoke => self.types = [UNKNOWN; SLOTS as usize],
            _ => {}
        }
    }

    fn forget(&mut self, s: u64) {
        if s < SLOTS {
            self.types[s as usize] = UNKNOWN;
        }
    }

    fn buffer_word(&self, offset: usize, v: u64) {
        if self.buffer != 0 {
            // SAFETY: `buffer` is the page-aligned address of this thread's 1 KiB IPC
            // buffer, which the supervisor mapped read-write in this address space for
            // good, and `offset` is inside it (`IpcBuffer` is 1 KiB); no other thread
            // uses it.
            unsafe { core::ptr::write_volatile((self.buffer as usize + offset) as *mut u64, v) }
        }
    }

    /// A syscall number: mostly `Call`, the other IPC syscalls, a few debug syscalls,
    /// and garbage.
    fn number(&mut self) -> u64 {
        match self.below(100) {
            0..=54 => Syscall::Call as u64,
            55..=60 => Syscall::Send as u64,
            61..=65 => Syscall::NbSend as u64,
            66..=70 => Syscall::Recv as u64,
            71..=77 => Syscall::NbRecv as u64,
            78..=82 => Syscall::ReplyRecv as u64,
            83..=84 => Syscall::Yield as u64,
            85 => Syscall::YieldBudget as u64,
            86..=87 => Syscall::Null as u64,
            88 => Syscall::DebugTicks as u64,
            89 => Syscall::DebugSlowpathCount as u64,
            90..=92 => Syscall::DebugCapIdentify as u64,
            _ => match self.edge() {
                n if RESERVED.contains(&n) => 0x1ff,
                n => n,
            },
        }
    }

    /// An invocation (or a call on an endpoint) with arguments that fit its label,
    /// in `r` and the IPC buffer; returns the label.
    fn invocation(&mut self, r: &mut [u64; 7], args: &mut [u64; 6]) -> Label {
        let cap = self.cap();
        let ty = self.type_of(cap);
        let label = match (ty.map(Label::of), self.below(20)) {
            (Some(ls), 0..=16) if !ls.is_empty() => ls[self.below(ls.len() as u64) as usize],
            _ => Label::ALL[self.below(Label::ALL.len() as u64) as usize],
        };
        let kinds = args_of(label);
        for (i, &k) in kinds.iter().enumerate() {
            args[i] = self.arg(k);
        }
        let mut len = kinds.len();
        if label == Label::TcbWriteRegisters {
            len = 2 + args[1].min(4) as usize;
        }
        if self.chance(10) {
            len = self.below(9) as usize;
        }
        let raw_label = if self.chance(3) {
            self.below(1 << 16)
        } else {
            label as u64
        };
        r[0] = cap;
        r[1] = MsgInfo::new(raw_label, len, 0).0;
        r[2..6].copy_from_slice(&args[..4]);
        for (i, &a) in args.iter().enumerate().take(len.min(args.len())).skip(4) {
            self.buffer_word(ipc_buffer_msg_offset(i), a);
        }
        label
    }

    /// A message for an IPC syscall `number`: a capability, a message info (length,
    /// capabilities to transfer), words, a reply object.
    fn message(&mut self, number: u64, r: &mut [u64; 7]) {
        r[0] = if number == Syscall::DebugCapIdentify as u64 {
            self.cap()
        } else {
            self.ipc_cap()
        };
        let len = if self.chance(85) {
            self.below(7) as usize
        } else {
            self.below(MSG_MAX_LENGTH as u64 + 1) as usize
        };
        let caps = if self.chance(12) {
            1 + self.below(MSG_MAX_EXTRA_CAPS as u64) as usize
        } else {
            0
        };
        r[1] = if self.chance(5) {
            self.next()
        } else {
            MsgInfo::new(self.below(8), len, caps).0
        };
        for x in &mut r[2..6] {
            *x = self.edge();
        }
        for i in 4..len.min(12) {
            let v = self.edge();
            self.buffer_word(ipc_buffer_msg_offset(i), v);
        }
        for i in 0..caps {
            let c = self.cap();
            self.buffer_word(IPC_BUFFER_CAPS_OFFSET + 8 * i, c);
        }
        r[6] = match self.below(20) {
            0..=12 => slot::REPLY,
            13..=15 => 0,
            _ => self.cap(),
        };
    }

    /// One random syscall.
    fn one(&mut self) {
        let number = self.number();
        let mut r = [0u64; 7];
        let mut args = [0u64; 6];
        let invocation = if number == Syscall::Call as u64 && self.chance(80) {
            Some(self.invocation(&mut r, &mut args))
        } else {
            self.message(number, &mut r);
            None
        };
        if self.chance(5) {
            // Where a capability sent to this thread would arrive.
            let cnode = match self.below(5) {
                0..=2 => slot::CNODE,
                3 => 0,
                _ => self.cap(),
            };
            self.buffer_word(IPC_BUFFER_RECEIVE_CNODE_OFFSET, cnode);
            let index = self.arg(A::Index);
            self.buffer_word(IPC_BUFFER_RECEIVE_INDEX_OFFSET, index);
        }
        // Counted before it is made: if the thread never comes back from it (it
        // blocked, faulted or lost its thread), a restart goes on with the next one.
        RNG.store(self.rng, Relaxed);
        CALLS.fetch_add(1, Relaxed);
        CALLS_BY[self.id].fetch_add(1, Relaxed);
        raw(number, &mut r);
        self.record(number, &r, invocation, &args);
    }

    /// Count the result and forget what the call may have changed.
    fn record(&mut self, number: u64, r: &[u64; 7], invocation: Option<Label>, args: &[u64]) {
        let code = match Syscall::from_raw(number) {
            Some(
                Syscall::Call | Syscall::ReplyRecv | Syscall::Send | Syscall::NbSend | Syscall::Recv | Syscall::NbRecv,
            ) => {
                let info = MsgInfo(r[1]);
                if info.extra_caps() > 0 {
                    // A capability arrived in the receive slot.
                    self.types = [UNKNOWN; SLOTS as usize];
                }
                info.error().map_or(0, |e| e as u64)
            }
            _ => r[0],
        };
        if let Some(c) = RESULTS.get(code as usize) {
            c.fetch_add(1, Relaxed);
        }
        if let Some(label) = invocation {
            if code == 0
                && MsgInfo(r[1]).is_kernel()
                && let Some(i) = Label::ALL.iter().position(|&l| l == label)
            {
                LABEL_OK[i].fetch_add(1, Relaxed);
            }
            self.forget_after(label, args);
        }
    }
}

use Label as L;

/// Syscall `number` with `r` as `x0..x6`; `r` holds `x0..x6` afterwards.
fn raw(number: u64, r: &mut [u64; 7]) {
    // SAFETY: `svc #0` enters the kernel, which reads and writes only x0..x6 (and the
    // IPC buffer, by physical address) whatever the number; unknown numbers return an
    // error or become a fault message. The thread's memory is not touched.
    unsafe {
        core::arch::asm!(
            "svc #0",
            inlateout("x0") r[0], inlateout("x1") r[1], inlateout("x2") r[2], inlateout("x3") r[3],
            inlateout("x4") r[4], inlateout("x5") r[5], inlateout("x6") r[6],
            in("x7") number,
            options(nostack),
        );
    }
}
