//! Notifications: a word of signal bits, the threads waiting for them, and an
//! optional bound thread (whose endpoint Recv a signal also ends).

use super::endpoint::Queue;
use crate::obj::Ptr;
use crate::tcb::Tcb;

/// A notification: a word of signal bits, waiters, and an optional bound thread.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Notification {
    /// Pending signal bits (the badges of the signals since the last wait).
    pub(crate) word: u64,
    /// A signal is pending. Apart from `word`: a signal through an unbadged capability
    /// adds no bit, and must still end the next wait ([`Notification::post`]).
    pub(crate) active: bool,
    /// Threads waiting.
    pub(crate) queue: Queue,
    /// The bound Tcb.
    pub(crate) bound: Option<Ptr<Tcb>>,
}
static_assertions::const_assert!(core::mem::size_of::<Notification>() <= 1 << gaon_abi::object::NOTIFICATION_BITS);

impl Notification {
    /// Record a signal with `badge` (0 for an unbadged capability) for the next wait.
    #[inline]
    pub(crate) fn post(&mut self, badge: u64) {
        self.word |= badge;
        self.active = true;
    }

    /// Take what is pending: the badges, or `None` if no signal came since the last take.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<u64> {
        if !self.active {
            return None;
        }
        self.active = false;
        Some(core::mem::take(&mut self.word))
    }

    /// Take the pending badges, if any, to add to a signal delivered now.
    #[inline]
    pub(crate) fn take_word(&mut self) -> u64 {
        self.active = false;
        core::mem::take(&mut self.word)
    }
}
