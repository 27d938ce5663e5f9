//! The merge: records from several sources (each in time order: a core's ring, the
//! VMM's events) into one stream in time order. A record is let out only once no
//! source can still produce an earlier one: the caller says up to when each source is
//! complete (its watermark: the counter when it last read that source, less the time
//! a record takes to appear), and [`Merger::take`] gives the records at or below the
//! lowest watermark, oldest first (ties: the lower source first).

use gaon_abi::trace::Record;
use heapless::Deque;

/// Records waiting, per source: `S` sources of at most `N` records each.
#[derive(Debug)]
pub struct Merger<const S: usize, const N: usize> {
    pending: [Deque<Record, N>; S],
    /// Per source: every record at or before this time has been pushed.
    complete: [u64; S],
    /// The last time let out (the stream never goes back).
    last: u64,
}

/// Why a push was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// No such source.
    NoSource,
    /// Its queue is full: take records first.
    Full,
    /// Older than what the source pushed before (a source must be in time order).
    OutOfOrder,
}

impl<const S: usize, const N: usize> Default for Merger<S, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const N: usize> Merger<S, N> {
    /// Nothing waiting; every source complete up to 0.
    pub const fn new() -> Self {
        Self {
            pending: [const { Deque::new() }; S],
            complete: [0; S],
            last: 0,
        }
    }

    /// Queue `r` from `source`.
    pub fn push(&mut self, source: usize, r: Record) -> Result<(), PushError> {
        let q = self.pending.get_mut(source).ok_or(PushError::NoSource)?;
        if q.back().is_some_and(|b| b.time > r.time) {
            return Err(PushError::OutOfOrder);
        }
        q.push_back(r).map_err(|_| PushError::Full)
    }

    /// The time of the last record `source` pushed that is still waiting, if any.
    pub fn last_time(&self, source: usize) -> Option<u64> {
        self.pending.get(source)?.back().map(|r| r.time)
    }

    /// Room left in `source`'s queue.
    pub fn room(&self, source: usize) -> usize {
        self.pending.get(source).map_or(0, |q| N - q.len())
    }

    /// `source` has pushed every record at or before `time`.
    pub fn complete_to(&mut self, source: usize, time: u64) {
        if let Some(c) = self.complete.get_mut(source) {
            *c = (*c).max(time);
        }
    }

    /// The oldest record every source is complete to, if any (call until `None`).
    pub fn take(&mut self) -> Option<Record> {
        let limit = self.complete.iter().copied().min().unwrap_or(0);
        self.take_while(|t| t <= limit)
    }

    /// The oldest waiting record, whatever the watermarks (at the end of a trace).
    pub fn flush(&mut self) -> Option<Record> {
        self.take_while(|_| true)
    }

    fn take_while(&mut self, ok: impl Fn(u64) -> bool) -> Option<Record> {
        let (i, _) = self
            .pending
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|r| (i, r.time)))
            .filter(|&(_, t)| ok(t))
            .min_by_key(|&(i, t)| (t, i))?;
        let r = self.pending[i].pop_front()?;
        self.last = self.last.max(r.time);
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(time: u64, cpu: u8) -> Record {
        Record {
            time,
            cpu,
            event: 1,
            ..Record::default()
        }
    }

    #[test]
    fn records_come_out_in_time_order_once_every_source_is_past_them() {
        let mut m: Merger<2, 8> = Merger::new();
        for t in [1, 4, 9] {
            m.push(0, rec(t, 0)).unwrap();
        }
        for t in [2, 3, 10] {
            m.push(1, rec(t, 1)).unwrap();
        }
        assert_eq!(m.take(), None, "no source is complete past anything yet");
        m.complete_to(0, 9);
        assert_eq!(m.take(), None, "source 1 might still have something older");
        m.complete_to(1, 5);
        let out: std::vec::Vec<u64> = core::iter::from_fn(|| m.take()).map(|r| r.time).collect();
        assert_eq!(out, [1, 2, 3, 4], "up to the lowest watermark");
        m.complete_to(1, 20);
        m.complete_to(0, 20);
        let out: std::vec::Vec<u64> = core::iter::from_fn(|| m.take()).map(|r| r.time).collect();
        assert_eq!(out, [9, 10]);
    }

    #[test]
    fn ties_go_to_the_lower_source_and_flush_empties_everything() {
        let mut m: Merger<2, 4> = Merger::new();
        m.push(1, rec(5, 1)).unwrap();
        m.push(0, rec(5, 0)).unwrap();
        m.push(0, rec(7, 0)).unwrap();
        let out: std::vec::Vec<u8> = core::iter::from_fn(|| m.flush()).map(|r| r.cpu).collect();
        assert_eq!(out, [0, 1, 0]);
    }

    #[test]
    fn bad_pushes_are_refused() {
        let mut m: Merger<1, 2> = Merger::new();
        assert_eq!(m.push(1, rec(1, 0)), Err(PushError::NoSource));
        m.push(0, rec(5, 0)).unwrap();
        assert_eq!(m.push(0, rec(4, 0)), Err(PushError::OutOfOrder));
        m.push(0, rec(6, 0)).unwrap();
        assert_eq!(m.last_time(0), Some(6), "what a later record must not precede");
        assert_eq!(m.last_time(3), None);
        assert_eq!(m.room(0), 0);
        assert_eq!(m.push(0, rec(7, 0)), Err(PushError::Full));
    }
}
