//! The run queues: one FIFO per priority and a bitmap of the non-empty ones. The
//! running thread is kept out of them (see `Kernel::settle_current`).

use crate::kernel::object::tcb::Tcb;
use crate::obj::Ptr;

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
