//! The runtime that IDL-generated code (see `docs/idl.md`) builds on: how a message is
//! carried (`Transport`), what can go wrong (`CallError`), and what a server's
//! `dispatch` returns (`Dispatch`).
//!
//! Wire format: the label is the method number (1..); the payload is the request
//! struct's bytes in message registers (8 bytes each, the first four in CPU registers);
//! a capability or lease travels as the message's one extra cap. A reply's label is 0
//! for success, an application error code, or one of the runtime codes below.

use gaon_abi::Error;

use crate::ipc::CPtr;

/// Reply label: the request was malformed or truncated; the server was not called.
pub const BAD_MESSAGE: u64 = 0xffff_0001;
/// Reply label: the label names no method of the interface.
pub const UNKNOWN_METHOD: u64 = 0xffff_0002;
/// Reply label: the server failed (faulted or was stopped) while handling the call.
pub const SERVER_FAILED: u64 = 0xffff_0003;
/// Bytes a lease's frame has.
pub const LEASE_FRAME_SIZE: u64 = 4096;

/// An error type for methods that declare none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoError {}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The kernel refused the IPC (bad capability, cancelled, ...).
    Kernel(Error),
    /// An argument is longer than the interface allows; nothing was sent.
    TooLong,
    /// The server found the request malformed.
    BadMessage,
    /// The server does not know the method.
    UnknownMethod,
    /// The server failed while handling the call.
    ServerFailed,
    /// The reply was malformed.
    BadReply,
    /// The server's own error.
    Remote(E),
}

impl<E> CallError<E> {
    /// The runtime error a reply label names, if it is one of the runtime codes.
    pub const fn from_runtime_code(code: u64) -> Option<Self> {
        match code {
            BAD_MESSAGE => Some(Self::BadMessage),
            UNKNOWN_METHOD => Some(Self::UnknownMethod),
            SERVER_FAILED => Some(Self::ServerFailed),
            _ => None,
        }
    }
}

/// A shared-memory lease: a window `[offset, offset + len)` of a 4 KiB frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The frame capability (the client's when sending, the received copy in a server).
    pub frame: CPtr,
    /// Offset of the window.
    pub offset: u64,
    /// Length of the window.
    pub len: u64,
}

impl Lease {
    /// True if the window lies inside the frame.
    pub const fn is_valid(&self) -> bool {
        match self.offset.checked_add(self.len) {
            Some(end) => end <= LEASE_FRAME_SIZE,
            None => false,
        }
    }
}

/// How a client's messages reach the server.
pub trait Transport {
    /// Send a request and wait for the reply; copy the reply payload into `reply` and
    /// return `(reply label, payload bytes received)`.
    fn call(&self, label: u64, request: &[u8], caps: &[CPtr], reply: &mut [u8]) -> Result<(u64, usize), Error>;
    /// Send a one-way request.
    fn send(&self, label: u64, request: &[u8], caps: &[CPtr]) -> Result<(), Error>;
}

/// A request as a server's `dispatch` sees it.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    /// The badge of the client's capability: its identity.
    pub badge: u64,
    /// The method label.
    pub label: u64,
    /// The payload.
    pub data: &'a [u8],
    /// Capabilities that came with it (already in the server's CSpace).
    pub caps: &'a [CPtr],
}

/// What `dispatch` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Reply with `label` and the first `len` bytes of the reply buffer.
    Reply {
        /// Label: 0, an application error, or a runtime code.
        label: u64,
        /// Payload bytes.
        len: usize,
    },
    /// A one-way method: no reply.
    NoReply,
}

impl Dispatch {
    /// A successful reply with `len` payload bytes.
    pub const fn ok(len: usize) -> Self {
        Self::Reply { label: 0, len }
    }
    /// An application error.
    pub const fn error(code: u64) -> Self {
        Self::Reply { label: code, len: 0 }
    }
    /// The request was malformed.
    pub const fn bad_message() -> Self {
        Self::Reply {
            label: BAD_MESSAGE,
            len: 0,
        }
    }
    /// No such method.
    pub const fn unknown_method() -> Self {
        Self::Reply {
            label: UNKNOWN_METHOD,
            len: 0,
        }
    }
    /// Copy a reply struct into `reply` and answer with it.
    pub fn encode<T: zerocopy::IntoBytes + zerocopy::Immutable>(value: &T, reply: &mut [u8]) -> Self {
        let bytes = value.as_bytes();
        match reply.get_mut(..bytes.len()) {
            Some(out) => {
                out.copy_from_slice(bytes);
                Self::ok(bytes.len())
            }
            None => Self::bad_message(),
        }
    }
}

/// Copy `bytes` into message registers: the first four into `mr`, the rest into the IPC
/// buffer. Returns the number of words, or `None` if they do not fit.
pub fn bytes_to_mrs(bytes: &[u8], mr: &mut [u64; 4]) -> Option<usize> {
    let words = bytes.len().div_ceil(8);
    if words > gaon_abi::message::MSG_MAX_LENGTH {
        return None;
    }
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let v = u64::from_le_bytes(w);
        match mr.get_mut(i) {
            Some(r) => *r = v,
            None => {
                if !crate::ipc::set_mr(i, v) {
                    return None;
                }
            }
        }
    }
    Some(words)
}

/// Copy `words` received message registers (the first four from `mr`) into `out`;
/// returns the bytes written (at most `out.len()`).
pub fn mrs_to_bytes(mr: &[u64; 4], words: usize, out: &mut [u8]) -> usize {
    let mut n = 0;
    for (i, chunk) in out.chunks_mut(8).take(words).enumerate() {
        let v = mr.get(i).copied().unwrap_or_else(|| crate::ipc::get_mr(i));
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        n += chunk.len();
    }
    n
}

/// Lay out a request: its bytes in message registers (the first four returned, the
/// rest in the IPC buffer) and its capability, if any, in the IPC buffer.
fn message(label: u64, request: &[u8], caps: &[CPtr]) -> Result<(gaon_abi::MsgInfo, [u64; 4]), Error> {
    let mut mr = [0u64; 4];
    let words = bytes_to_mrs(request, &mut mr).ok_or(Error::InvalidArgument)?;
    if let Some(&c) = caps.first() {
        crate::ipc::ipc_buffer().ok_or(Error::InvalidArgument)?.caps_or_badges[0] = c;
    }
    Ok((gaon_abi::MsgInfo::new(label, words, caps.len().min(1)), mr))
}

/// A client's transport over an endpoint capability (badged: the badge is its identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointTransport {
    /// The endpoint.
    pub ep: CPtr,
}

impl Transport for EndpointTransport {
    fn call(&self, label: u64, request: &[u8], caps: &[CPtr], reply: &mut [u8]) -> Result<(u64, usize), Error> {
        let (info, mr) = message(label, request, caps)?;
        let m = crate::ipc::call(self.ep, info, mr).ok()?;
        mrs_to_bytes(&m.mr, m.info.length(), reply);
        Ok((m.info.label(), m.info.length() * 8))
    }

    fn send(&self, label: u64, request: &[u8], caps: &[CPtr]) -> Result<(), Error> {
        let (info, mr) = message(label, request, caps)?;
        crate::ipc::send(self.ep, info, mr)
    }
}

/// An IDL interface's identity, as the compiler generates it (`<module>::INTERFACE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceId {
    /// The interface name.
    pub name: &'static str,
    /// Hash of its methods and errors.
    pub hash: u64,
}

/// Declare that this program serves these IDL interfaces:
/// `libl4::serves!(console::INTERFACE);`. The image tool checks every channel whose
/// server end is this program against the list.
#[macro_export]
macro_rules! serves {
    ($($iface:expr),+ $(,)?) => {
        $( $crate::__idl_record!($crate::gaon_abi::system::ROLE_SERVES, $iface); )+
    };
}

/// Declare that this program is a client of these IDL interfaces:
/// `libl4::uses!(console::INTERFACE);`.
#[macro_export]
macro_rules! uses {
    ($($iface:expr),+ $(,)?) => {
        $( $crate::__idl_record!($crate::gaon_abi::system::ROLE_USES, $iface); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __idl_record {
    ($role:expr, $iface:expr) => {
        const _: () = {
            #[used]
            #[allow(unsafe_code)]
            #[unsafe(link_section = ".gaon.idl")]
            static RECORD: $crate::gaon_abi::system::IdlRecord =
                $crate::gaon_abi::system::IdlRecord::new($role, $iface.name, $iface.hash);
        };
    };
}
