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
    pub(crate) queue: Queue,
    /// What the queue holds (empty: `Idle`).
    pub(crate) state: EpState,
}
static_assertions::const_assert!(core::mem::size_of::<Endpoint>() <= 1 << gaon_abi::object::ENDPOINT_BITS);

/// An intrusive FIFO of Tcbs through `Tcb::ep_next`/`ep_prev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Queue {
    /// First thread (`None`: empty).
    pub(crate) head: Option<Ptr<Tcb>>,
    /// Last thread.
    pub(crate) tail: Option<Ptr<Tcb>>,
}

impl Queue {
    /// True if empty.
    pub const fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Append `t`.
    #[inline]
    pub fn push(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        tcb.ep_next = None;
        tcb.ep_prev = self.tail;
        match self.tail {
            Some(last) => last.get().ep_next = Some(t),
            None => self.head = Some(t),
        }
        self.tail = Some(t);
    }

    /// Remove `t`, which must be in this queue.
    #[inline]
    pub fn remove(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        let (prev, next) = (tcb.ep_prev, tcb.ep_next);
        match prev {
            Some(p) => p.get().ep_next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => n.get().ep_prev = prev,
            None => self.tail = prev,
        }
        tcb.ep_next = None;
        tcb.ep_prev = None;
    }

    /// The first thread, left in the queue.
    #[inline]
    pub fn first(&self) -> Option<Ptr<Tcb>> {
        self.head
    }

    /// Take the first thread (`remove` of the head, which has no previous thread).
    #[inline]
    pub fn pop(&mut self) -> Option<Ptr<Tcb>> {
        let t = self.head?;
        let tcb = t.get();
        let next = tcb.ep_next;
        self.head = next;
        match next {
            Some(n) => n.get().ep_prev = None,
            None => self.tail = None,
        }
        tcb.ep_next = None;
        tcb.ep_prev = None;
        Some(t)
    }
}
