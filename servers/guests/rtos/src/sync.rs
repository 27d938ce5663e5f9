//! The state of the synchronization objects, without the blocking: a counting
//! semaphore's count and a message queue's ring of messages. Which task waits and which
//! one a signal wakes is the kernel's (`crate::sched`).

use heapless::Deque;

/// A counting semaphore's count, at most `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Semaphore {
    count: u32,
    limit: u32,
}

/// A signal would take the count past its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl Semaphore {
    /// A semaphore with `count` units, at most `limit` (a binary semaphore: limit 1).
    pub const fn new(count: u32, limit: u32) -> Self {
        Self {
            count: if count < limit { count } else { limit },
            limit,
        }
    }

    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Take a unit if there is one.
    pub fn try_take(&mut self) -> bool {
        let took = self.count > 0;
        self.count -= u32::from(took);
        took
    }

    /// Put a unit back (nobody was waiting for it).
    pub fn give(&mut self) -> Result<(), Overflow> {
        if self.count >= self.limit {
            return Err(Overflow);
        }
        self.count += 1;
        Ok(())
    }
}

/// A bounded first-in first-out queue of `N` messages, which counts what did not fit.
/// Blocking on an empty queue is a semaphore's (the kernel's) business: its count is
/// the number of messages.
#[derive(Debug)]
pub struct MessageQueue<T, const N: usize> {
    ring: Deque<T, N>,
    dropped: u64,
}

impl<T, const N: usize> MessageQueue<T, N> {
    pub const fn new() -> Self {
        Self {
            ring: Deque::new(),
            dropped: 0,
        }
    }

    /// Add `m` at the end; if the queue is full `m` is dropped (counted) and given back.
    pub fn try_send(&mut self, m: T) -> Result<(), T> {
        self.ring.push_back(m).inspect_err(|_| self.dropped += 1)
    }

    /// The oldest message, if there is one.
    pub fn try_receive(&mut self) -> Option<T> {
        self.ring.pop_front()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    /// Messages dropped because the queue was full.
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl<T, const N: usize> Default for MessageQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_semaphore_counts_within_its_limit() {
        let mut s = Semaphore::new(1, 2);
        assert!(s.try_take());
        assert!(!s.try_take(), "empty");
        assert_eq!(s.give(), Ok(()));
        assert_eq!(s.give(), Ok(()));
        assert_eq!(s.give(), Err(Overflow));
        assert_eq!(s.count(), 2);
        assert_eq!(Semaphore::new(5, 1).count(), 1, "the initial count is capped");
    }

    #[test]
    fn a_queue_is_fifo_and_counts_what_did_not_fit() {
        let mut q: MessageQueue<u32, 3> = MessageQueue::new();
        assert!(q.is_empty());
        assert_eq!(q.try_receive(), None);
        for m in 1..=3 {
            assert_eq!(q.try_send(m), Ok(()));
        }
        assert!(q.is_full());
        assert_eq!(q.try_send(4), Err(4));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.try_receive(), Some(1));
        assert_eq!(q.try_send(5), Ok(()), "room again");
        assert_eq!(q.len(), 3);
        let rest: Vec<_> = core::iter::from_fn(|| q.try_receive()).collect();
        assert_eq!(rest, [2, 3, 5]);
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 1);
    }
}
