//! Endpoints: a queue of threads waiting to send or to receive, and the intrusive
//! thread queue endpoints and notifications share.

use crate::obj::Ptr;
use crate::tcb::Tcb;

/// What an endpoint's queue holds.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EpState {
    /// Nobody.
    #[default]
    Idle,
    /// Threads waiting to send.
    Send,
    /// Threads waiting to receive.
    Recv,
}

/// A synchronous endpoint: a queue of senders or of receivers.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Endpoint {
    /// The queue.
    pub queue: Queue,
    /// What the queue holds (empty: `Idle`).
    pub state: EpState,
}
static_assertions::const_assert!(core::mem::size_of::<Endpoint>() <= 1 << gaon_abi::object::ENDPOINT_BITS);

/// An intrusive FIFO of Tcbs through `Tcb::ep_next`/`ep_prev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Queue {
    /// First thread (0 = empty).
    pub head: usize,
    /// Last thread.
    pub tail: usize,
}

impl Queue {
    /// True if empty.
    pub const fn is_empty(&self) -> bool {
        self.head == 0
    }

    /// Append `t`.
    #[inline]
    pub fn push(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        tcb.ep_next = 0;
        tcb.ep_prev = self.tail;
        match Ptr::<Tcb>::from_raw(self.tail) {
            Some(last) => last.get().ep_next = t.addr(),
            None => self.head = t.addr(),
        }
        self.tail = t.addr();
    }

    /// Remove `t`, which must be in this queue.
    #[inline]
    pub fn remove(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        let (prev, next) = (tcb.ep_prev, tcb.ep_next);
        match Ptr::<Tcb>::from_raw(prev) {
            Some(p) => p.get().ep_next = next,
            None => self.head = next,
        }
        match Ptr::<Tcb>::from_raw(next) {
            Some(n) => n.get().ep_prev = prev,
            None => self.tail = prev,
        }
        tcb.ep_next = 0;
        tcb.ep_prev = 0;
    }

    /// Take the first thread.
    #[inline]
    pub fn pop(&mut self) -> Option<Ptr<Tcb>> {
        let t = Ptr::<Tcb>::from_raw(self.head)?;
        self.remove(t);
        Some(t)
    }
}
