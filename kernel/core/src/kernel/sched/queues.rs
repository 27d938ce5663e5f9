//! The run queues: one FIFO per priority and a bitmap of the non-empty ones. The
//! running thread is kept out of them (see `Kernel::settle_current`).

use crate::kernel::object::tcb::Tcb;
use crate::obj::Ptr;

/// The first (or last) thread of each priority's queue.
type Ends = [Option<Ptr<Tcb>>; 256];

/// A thread's place in the run queues. Its fields are private to this module: only
/// the run queues link and unlink threads; everyone else reads [`RunLinks::queued`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RunLinks {
    queued: bool,
    next: Option<Ptr<Tcb>>,
    prev: Option<Ptr<Tcb>>,
}

impl RunLinks {
    /// Not in a run queue (all zero).
    pub const NONE: Self = Self {
        queued: false,
        next: None,
        prev: None,
    };

    /// In a run queue (the running thread is not: see `Kernel::settle_current`).
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "IPC fastpath, measured in instructions (docs/benchmarks.md)"
    )]
    pub const fn queued(&self) -> bool {
        self.queued
    }

    /// `(prev, next)`, for the consistency check and tests.
    #[cfg(any(test, feature = "consistency-check"))]
    pub(crate) const fn links(&self) -> (Option<Ptr<Tcb>>, Option<Ptr<Tcb>>) {
        (self.prev, self.next)
    }
}

/// Which priority levels have queued threads: a two-level bitmap (`words` has a bit
/// per level, `summary` a bit per non-zero word), so the highest level takes two
/// `clz`s. Kept apart from the levels' ends (4 KiB) so a core's bitmap can sit with
/// its other hot state (`Kernel`'s `Core`) and the fastpath reads it at a fixed place.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bitmap {
    words: [u64; 4],
    summary: u64,
}

impl Bitmap {
    /// No level non-empty.
    pub const fn new() -> Self {
        Self {
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

    /// True if a thread of priority `p` is queued.
    #[inline]
    pub fn has_queued(&self, p: u8) -> bool {
        self.words[usize::from(p) / 64] & (1 << (p % 64)) != 0
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

/// The first and last thread of each priority's queue.
#[derive(Debug)]
pub struct Levels {
    heads: Ends,
    tails: Ends,
}

impl Levels {
    /// All empty.
    pub const fn new() -> Self {
        Self {
            heads: [None; 256],
            tails: [None; 256],
        }
    }

    /// The first thread of level `p`.
    #[inline]
    pub fn head(&self, p: u8) -> Option<Ptr<Tcb>> {
        self.heads[usize::from(p)]
    }
}

impl Default for Levels {
    fn default() -> Self {
        Self::new()
    }
}

/// Fixed-priority run queues: one FIFO per priority ([`Levels`]) and the bitmap of the
/// non-empty ones ([`Bitmap`]), borrowed from wherever they are kept.
#[derive(Debug)]
pub struct Rq<'a> {
    /// The bitmap.
    pub bits: &'a mut Bitmap,
    /// The levels.
    pub levels: &'a mut Levels,
}

/// Run queues that own their parts (host tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RunQueues {
    bits: Bitmap,
    levels: Levels,
}

#[cfg(test)]
impl RunQueues {
    /// Empty queues.
    pub const fn new() -> Self {
        Self {
            bits: Bitmap::new(),
            levels: Levels::new(),
        }
    }

    /// The queues, to change.
    pub fn rq(&mut self) -> Rq<'_> {
        Rq {
            bits: &mut self.bits,
            levels: &mut self.levels,
        }
    }

    /// See `Rq::enqueue`.
    pub fn enqueue(&mut self, t: Ptr<Tcb>, front: bool) {
        self.rq().enqueue(t, front);
    }

    /// See `Rq::dequeue`.
    pub fn dequeue(&mut self, t: Ptr<Tcb>) {
        self.rq().dequeue(t);
    }

    /// See `Rq::rotate`.
    #[cfg(test)]
    pub fn rotate(&mut self, head: Ptr<Tcb>, t: Ptr<Tcb>) {
        self.rq().rotate(head, t);
    }

    /// The first thread of level `p`.
    #[cfg(test)]
    pub fn head_of(&self, p: u8) -> Option<Ptr<Tcb>> {
        self.levels.head(p)
    }

    /// The highest priority with a queued thread.
    pub fn highest_prio(&self) -> Option<u8> {
        self.bits.highest_prio()
    }

    /// The first thread of the highest non-empty priority.
    pub fn highest(&self) -> Option<Ptr<Tcb>> {
        self.levels.heads[usize::from(self.bits.highest_prio()?)]
    }
}

impl Rq<'_> {
    /// Append `t` at its priority's tail (or head, for a direct hand-over).
    #[inline]
    pub fn enqueue(&mut self, t: Ptr<Tcb>, front: bool) {
        let tcb = t.get();
        if tcb.run.queued {
            return;
        }
        let p = usize::from(tcb.prio);
        tcb.run.queued = true;
        let lv = &mut *self.levels;
        match lv.heads[p] {
            None => {
                tcb.run.next = None;
                tcb.run.prev = None;
                lv.heads[p] = Some(t);
                lv.tails[p] = Some(t);
                self.bits.mark(p);
            }
            Some(head) if front => {
                tcb.run.prev = None;
                tcb.run.next = Some(head);
                head.get().run.prev = Some(t);
                lv.heads[p] = Some(t);
            }
            Some(_) => {
                let tail = tail_of_non_empty(lv, p);
                tcb.run.next = None;
                tcb.run.prev = Some(tail);
                tail.get().run.next = Some(t);
                lv.tails[p] = Some(t);
            }
        }
    }

    /// A yield's rotation: `head`, first of its level, leaves the queues and `t` (of the
    /// same priority, not queued) joins the back of that level, which stays non-empty
    /// (so its bitmap bits are left alone). The same as `dequeue(head)` then
    /// `enqueue(t, false)`.
    #[inline]
    pub fn rotate(&mut self, head: Ptr<Tcb>, t: Ptr<Tcb>) {
        let p = usize::from(head.get().prio);
        debug_assert!(self.levels.heads[p] == Some(head) && !t.get().run.queued && t.get().prio == head.get().prio);
        let lv = &mut *self.levels;
        let h = head.get();
        let rest = h.run.next;
        h.run.queued = false;
        h.run.next = None;
        h.run.prev = None;
        let tcb = t.get();
        tcb.run.queued = true;
        tcb.run.next = None;
        match rest {
            None => {
                tcb.run.prev = None;
                lv.heads[p] = Some(t);
            }
            Some(r) => {
                r.get().run.prev = None;
                lv.heads[p] = Some(r);
                let tail = tail_of_non_empty(lv, p);
                tcb.run.prev = Some(tail);
                tail.get().run.next = Some(t);
            }
        }
        lv.tails[p] = Some(t);
    }

    /// Take `t` out of the queues (no-op if not queued).
    #[inline]
    pub fn dequeue(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        if !tcb.run.queued {
            return;
        }
        let p = usize::from(tcb.prio);
        let (prev, next) = (tcb.run.prev, tcb.run.next);
        tcb.run.queued = false;
        tcb.run.prev = None;
        tcb.run.next = None;
        let lv = &mut *self.levels;
        match prev {
            Some(pp) => pp.get().run.next = next,
            None => lv.heads[p] = next,
        }
        match next {
            Some(np) => np.get().run.prev = prev,
            None => lv.tails[p] = prev,
        }
        if lv.heads[p].is_none() {
            self.bits.unmark(p);
        }
    }
}

/// The last thread of level `p`, whose head is set.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "on every enqueue, measured in instructions (docs/benchmarks.md)"
)]
#[allow(
    unsafe_code,
    reason = "a level's head and tail are set together (a run-queue invariant)"
)]
fn tail_of_non_empty(lv: &Levels, p: usize) -> Ptr<Tcb> {
    debug_assert!(lv.heads[p].is_some() && lv.tails[p].is_some());
    // SAFETY: a level's head and tail are both set or both empty: `enqueue` sets both on
    // an empty level and `dequeue` clears both when it takes the last thread (the
    // consistency check verifies it, `Problem::QueueLinks`); the caller found the head
    // set.
    unsafe { lv.tails[p].unwrap_unchecked() }
}

/// What the kernel's consistency check reads (`kernel/check.rs`).
#[cfg(any(test, feature = "consistency-check"))]
impl Levels {
    /// Heads and tails of every level.
    pub(crate) const fn raw(&self) -> (&Ends, &Ends) {
        (&self.heads, &self.tails)
    }
}

/// What the kernel's consistency check reads (`kernel/check.rs`).
#[cfg(any(test, feature = "consistency-check"))]
impl Bitmap {
    /// The bitmap words and their summary.
    pub(crate) const fn raw(&self) -> (&[u64; 4], u64) {
        (&self.words, self.summary)
    }
}
