//! Notifications: a word of signal bits, the threads waiting for them, and an
//! optional bound thread (whose endpoint Recv a signal also ends).

use super::endpoint::Queue;
use crate::obj::Ptr;
use crate::tcb::Tcb;

/// A notification: a word of signal bits, waiters, and an optional bound thread.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Notification {
    /// Pending signal bits.
    pub word: u64,
    /// Threads waiting.
    pub queue: Queue,
    /// The bound Tcb.
    pub bound: Option<Ptr<Tcb>>,
}
static_assertions::const_assert!(core::mem::size_of::<Notification>() <= 1 << gaon_abi::object::NOTIFICATION_BITS);
