//! Reply objects: where the caller of a Call waits until the callee answers.

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
