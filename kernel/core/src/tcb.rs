//! Threads: the Tcb object, its register context and its scheduling queues.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::cdt::Slot;
use crate::obj::Ptr;

/// User register state. Its layout is shared with the exception vectors, which save
/// a thread's registers straight into its Tcb (`ctx` is at offset 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UserContext {
    /// x0..x30.
    pub x: [u64; 31],
    /// SP_EL0.
    pub sp: u64,
    /// ELR_EL2: where the thread resumes.
    pub pc: u64,
    /// SPSR_EL2: the thread's PSTATE.
    pub spsr: u64,
    /// ESR_EL2: filled in the kernel's own trap frames (same layout); the vectors pass
    /// a user exception's ESR and FAR in registers and leave these two alone.
    pub esr: u64,
    /// FAR_EL2: as `esr`.
    pub far: u64,
}

/// Bytes in a [`UserContext`], as the vectors use it.
pub const USER_CONTEXT_SIZE: usize = 36 * 8;
static_assertions::const_assert_eq!(core::mem::size_of::<UserContext>(), USER_CONTEXT_SIZE);

/// Bytes of [`ArchState`] in every Tcb.
pub const ARCH_STATE_BYTES: usize = 528;

/// Per-thread machine state that only the arch layer interprets (on AArch64 the
/// FP/SIMD registers, which it switches lazily). The core allocates it zeroed with the
/// Tcb and hands it out only through [`crate::kernel::Kernel::lazy_switch`]; the arch
/// layer views the bytes as its own `FromBytes + IntoBytes` type of the same size and
/// alignment (`zerocopy::transmute_mut!`), so no cast is needed on either side.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ArchState([u8; ARCH_STATE_BYTES]);

impl ArchState {
    /// All zero: the state of a new thread.
    pub const ZERO: Self = Self([0; ARCH_STATE_BYTES]);
}

pub use gaon_abi::invocation::ThreadState;

/// Index of the Tcb's slot for its CSpace root CNode.
pub const SLOT_CSPACE: usize = 0;
/// Index of the slot for its VSpace.
pub const SLOT_VSPACE: usize = 1;
/// Index of the slot for its IPC buffer frame.
pub const SLOT_IPC_BUFFER: usize = 2;
/// Index of the slot for its fault endpoint.
pub const SLOT_FAULT_EP: usize = 3;
/// Index of the slot for its timeout endpoint.
pub const SLOT_TIMEOUT_EP: usize = 4;
/// Slots in a Tcb.
pub const TCB_SLOTS: usize = 5;

/// IPC flag: the blocked send is a Call.
pub const IPC_CALL: u8 = 1;
/// IPC flag: the sender's cap had the Grant right.
pub const IPC_GRANT: u8 = 2;
/// IPC flag: the blocked send is a fault message (in `fault`).
pub const IPC_FAULT: u8 = 4;

/// A thread.
#[repr(C)]
#[derive(Debug)]
pub struct Tcb {
    /// Saved registers; must stay first.
    pub ctx: UserContext,
    /// The thread pointer (TPIDR_EL0 on AArch64): the one user register outside `ctx`
    /// that the core reads and writes itself (`REG_TPIDR`). The arch layer loads it
    /// into the CPU when the thread runs and saves it back lazily (see
    /// [`crate::kernel::Lazy::ThreadPointer`]); it stays next to `ctx` on purpose.
    pub tpidr: u64,
    /// State.
    pub state: ThreadState,
    /// Priority (0..=255).
    pub prio: u8,
    /// Maximum controlled priority: the highest priority this thread may give.
    pub mcp: u8,
    /// `IPC_*` flags of a blocked send.
    pub ipc_flags: u8,
    /// In the run queue.
    pub queued: bool,
    /// Remaining ticks of the round-robin time slice.
    pub timeslice: u32,
    /// Run-queue links (Tcb addresses, 0 = none).
    pub sched_next: usize,
    /// Run-queue links.
    pub sched_prev: usize,
    /// Endpoint or notification queue links.
    pub ep_next: usize,
    /// Endpoint or notification queue links.
    pub ep_prev: usize,
    /// The endpoint or notification it is blocked on.
    pub blocked_on: usize,
    /// Badge of the cap a blocked send used.
    pub ipc_badge: u64,
    /// Reply object: the one it receives with (BlockedOnRecv) or waits in (BlockedOnReply).
    pub reply: usize,
    /// Bound notification.
    pub bound_ntfn: usize,
    /// Bound scheduling context.
    pub sched_context: usize,
    /// User address of the IPC buffer.
    pub ipc_buffer_vaddr: u64,
    /// Pending fault: kind (0 = none) and four message words.
    pub fault: [u64; 5],
    /// The arch layer's own per-thread state (only through `Kernel::lazy_switch`).
    arch: ArchState,
    /// Capabilities the thread runs with (`SLOT_*`).
    pub slots: [Slot; TCB_SLOTS],
}

static_assertions::const_assert!(core::mem::size_of::<Tcb>() <= 1 << gaon_abi::object::TCB_BITS);
static_assertions::const_assert_eq!(core::mem::offset_of!(Tcb, ctx), 0);

/// The parts of one thread's state the arch layer moves between its Tcb and the CPU
/// (see [`crate::kernel::Kernel::lazy_switch`]).
#[derive(Debug)]
pub struct LiveState<'a> {
    /// The thread pointer (`Tcb::tpidr`).
    pub thread_pointer: &'a mut u64,
    /// The arch layer's area.
    pub arch: &'a mut ArchState,
}

impl Tcb {
    /// This thread's [`LiveState`].
    pub(crate) fn live_state(&mut self) -> LiveState<'_> {
        LiveState {
            thread_pointer: &mut self.tpidr,
            arch: &mut self.arch,
        }
    }
}

/// Default round-robin time slice in timer ticks.
pub const TIMESLICE_TICKS: u32 = 5;

impl Tcb {
    /// A new, inactive thread with priority 0.
    pub const fn new() -> Self {
        Self {
            ctx: UserContext {
                x: [0; 31],
                sp: 0,
                pc: 0,
                spsr: 0,
                esr: 0,
                far: 0,
            },
            tpidr: 0,
            state: ThreadState::Inactive,
            prio: 0,
            mcp: 0,
            ipc_flags: 0,
            queued: false,
            timeslice: TIMESLICE_TICKS,
            sched_next: 0,
            sched_prev: 0,
            ep_next: 0,
            ep_prev: 0,
            blocked_on: 0,
            ipc_badge: 0,
            reply: 0,
            bound_ntfn: 0,
            sched_context: 0,
            ipc_buffer_vaddr: 0,
            fault: [0; 5],
            arch: ArchState::ZERO,
            slots: [Slot::EMPTY; TCB_SLOTS],
        }
    }
}

impl Default for Tcb {
    fn default() -> Self {
        Self::new()
    }
}

/// Address of a Tcb's slot `i`.
pub fn slot_addr(t: Ptr<Tcb>, i: usize) -> usize {
    t.addr() + core::mem::offset_of!(Tcb, slots) + i * core::mem::size_of::<Slot>()
}

/// Fixed-priority run queues: one FIFO per priority and a two-level bitmap of
/// non-empty levels (`words` has a bit per level, `summary` a bit per non-zero word),
/// so the highest level takes two `clz`s.
#[derive(Debug)]
pub struct RunQueues {
    heads: [usize; 256],
    tails: [usize; 256],
    words: [u64; 4],
    summary: u64,
}

impl Default for RunQueues {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueues {
    /// Empty queues.
    pub const fn new() -> Self {
        Self {
            heads: [0; 256],
            tails: [0; 256],
            words: [0; 4],
            summary: 0,
        }
    }

    /// Level `p` became non-empty.
    #[inline]
    fn mark(&mut self, p: usize) {
        self.words[p / 64] |= 1 << (p % 64);
        self.summary |= 1 << (p / 64);
    }

    /// Level `p` became empty.
    #[inline]
    fn unmark(&mut self, p: usize) {
        let w = &mut self.words[p / 64];
        *w &= !(1 << (p % 64));
        if *w == 0 {
            self.summary &= !(1 << (p / 64));
        }
    }

    /// Append `t` at its priority's tail (or head, for a direct hand-over).
    #[inline]
    pub fn enqueue(&mut self, t: Ptr<Tcb>, front: bool) {
        let tcb = t.get();
        if tcb.queued {
            return;
        }
        let p = usize::from(tcb.prio);
        tcb.queued = true;
        if self.heads[p] == 0 {
            tcb.sched_next = 0;
            tcb.sched_prev = 0;
            self.heads[p] = t.addr();
            self.tails[p] = t.addr();
            self.mark(p);
        } else if front {
            tcb.sched_prev = 0;
            tcb.sched_next = self.heads[p];
            Ptr::<Tcb>::new(self.heads[p]).get().sched_prev = t.addr();
            self.heads[p] = t.addr();
        } else {
            tcb.sched_next = 0;
            tcb.sched_prev = self.tails[p];
            Ptr::<Tcb>::new(self.tails[p]).get().sched_next = t.addr();
            self.tails[p] = t.addr();
        }
    }

    /// Take `t` out of the queues (no-op if not queued).
    #[inline]
    pub fn dequeue(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        if !tcb.queued {
            return;
        }
        let p = usize::from(tcb.prio);
        let (prev, next) = (tcb.sched_prev, tcb.sched_next);
        tcb.queued = false;
        tcb.sched_prev = 0;
        tcb.sched_next = 0;
        match Ptr::<Tcb>::from_raw(prev) {
            Some(pp) => pp.get().sched_next = next,
            None => self.heads[p] = next,
        }
        match Ptr::<Tcb>::from_raw(next) {
            Some(np) => np.get().sched_prev = prev,
            None => self.tails[p] = prev,
        }
        if self.heads[p] == 0 {
            self.unmark(p);
        }
    }

    /// The first thread of the highest non-empty priority.
    #[inline]
    pub fn highest(&self) -> Option<Ptr<Tcb>> {
        Ptr::from_raw(self.heads[usize::from(self.highest_prio()?)])
    }

    /// The highest priority with a queued thread.
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub fn highest_prio(&self) -> Option<u8> {
        if self.summary == 0 {
            return None;
        }
        let w = 63 - self.summary.leading_zeros() as usize;
        Some((w * 64 + 63 - self.words[w % 4].leading_zeros() as usize) as u8)
    }
}

/// What the kernel's consistency check reads (`kernel/check.rs`).
#[cfg(any(test, feature = "consistency-check"))]
impl RunQueues {
    /// Heads and tails of every level, the bitmap words and their summary.
    pub(crate) const fn raw(&self) -> (&[usize; 256], &[usize; 256], &[u64; 4], u64) {
        (&self.heads, &self.tails, &self.words, self.summary)
    }
}
