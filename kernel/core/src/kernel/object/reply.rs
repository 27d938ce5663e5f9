//! Reply objects: where the caller of a Call waits until the callee answers.

use crate::obj::Ptr;
use crate::tcb::Tcb;

/// A reply object: the caller of a Call waits in it until the callee replies.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Reply {
    /// The thread waiting for the reply.
    pub(crate) caller: Option<Ptr<Tcb>>,
    /// The thread blocked in Recv with this reply object.
    pub(crate) receiver: Option<Ptr<Tcb>>,
}
static_assertions::const_assert!(core::mem::size_of::<Reply>() <= 1 << gaon_abi::object::REPLY_BITS);
