//! The small kernel objects and their wait queues.

use crate::obj::Ptr;
use crate::tcb::Tcb;

/// Endpoint queue state.
pub const EP_IDLE: u8 = 0;
/// Threads queued to send.
pub const EP_SEND: u8 = 1;
/// Threads queued to receive.
pub const EP_RECV: u8 = 2;

/// A synchronous endpoint: a queue of senders or of receivers.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Endpoint {
    /// The queue.
    pub queue: Queue,
    /// `EP_*`.
    pub state: u8,
}
static_assertions::const_assert!(core::mem::size_of::<Endpoint>() <= 1 << gaon_abi::object::ENDPOINT_BITS);

/// A notification: a word of signal bits, waiters, and an optional bound thread.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Notification {
    /// Pending signal bits.
    pub word: u64,
    /// Threads waiting.
    pub queue: Queue,
    /// The bound Tcb (0 = none).
    pub bound: usize,
}
static_assertions::const_assert!(core::mem::size_of::<Notification>() <= 1 << gaon_abi::object::NOTIFICATION_BITS);

/// A reply object: the caller of a Call waits in it until the callee replies.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Reply {
    /// The thread waiting for the reply (0 = none).
    pub caller: usize,
    /// The thread blocked in Recv with this reply object (0 = none).
    pub receiver: usize,
}
static_assertions::const_assert!(core::mem::size_of::<Reply>() <= 1 << gaon_abi::object::REPLY_BITS);

/// Refills a scheduling context can hold (sporadic-server replenishments).
pub const MAX_REFILLS: usize = 8;

/// One replenishment: `amount` of budget usable from time `time`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Refill {
    /// When it becomes usable (counter ticks).
    pub time: u64,
    /// How much (counter ticks).
    pub amount: u64,
}

/// A scheduling context.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SchedContext {
    /// Budget per period (counter ticks); 0 = not configured.
    pub budget: u64,
    /// Period (counter ticks).
    pub period: u64,
    /// Badge reported in timeout faults.
    pub badge: u64,
    /// The bound thread (0 = none).
    pub tcb: usize,
    /// Time consumed since the last `Consumed` query.
    pub consumed: u64,
    /// Refills in a ring: `head` is the next to use.
    pub refills: [Refill; MAX_REFILLS],
    /// Index of the first refill.
    pub head: u8,
    /// Number of refills in use.
    pub count: u8,
    /// Out of budget until its head refill comes due.
    pub throttled: bool,
    /// Next throttled scheduling context (the kernel's release list).
    pub release_next: usize,
}
static_assertions::const_assert!(core::mem::size_of::<SchedContext>() <= 1 << gaon_abi::object::SCHED_CONTEXT_BITS);

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
