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
    pub(crate) word: u64,
    /// Threads waiting.
    pub(crate) queue: Queue,
    /// The bound Tcb.
    pub(crate) bound: Option<Ptr<Tcb>>,
}
static_assertions::const_assert!(core::mem::size_of::<Notification>() <= 1 << gaon_abi::object::NOTIFICATION_BITS);
