//! Notifications: a word of signal bits, the threads waiting for them, and an
//! optional bound thread (whose endpoint Recv a signal also ends).

use super::endpoint::Queue;

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
