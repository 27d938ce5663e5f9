//! The runtime that IDL-generated code (see `docs/idl.md`) builds on: how a message is
//! carried (`Transport`), what can go wrong (`CallError`), and what a server's
//! `dispatch` returns (`Dispatch`).
//!
//! Wire format: the label is the method number (1..); the payload is the request
//! struct's words in message registers (the first four in CPU registers, the rest in the
//! IPC buffer);
//! a capability or lease travels as the message's one extra cap. A reply's label is 0
//! for success, an application error code, or one of the runtime codes below.

use gaon_abi::message::MSG_MAX_LENGTH;
use gaon_abi::syscall::MSG_REGISTERS;
use gaon_abi::{Error, MsgInfo};

use crate::ipc::{CPtr, Msg};

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

/// How a client's messages reach the server. Messages are 64-bit words (message
/// registers); the generated stubs view their `#[repr(C)]` request and reply structs as
/// words.
pub trait Transport {
    /// Send a request of `request.len()` words (with `caps`, at most one) and wait for the
    /// reply; hand its label and words to `reply` and return what that returns.
    fn call<R>(
        &self,
        label: u64,
        request: &[u64],
        caps: &[CPtr],
        reply: impl FnOnce(u64, &[u64]) -> R,
    ) -> Result<R, Error>;
    /// Send a one-way request.
    fn send(&self, label: u64, request: &[u64], caps: &[CPtr]) -> Result<(), Error>;
}

/// A request as a server's handler and `dispatch` see it, and where the reply is written.
///
/// The request's words are message registers: the first four arrive in CPU registers
/// (`mr`), the rest in the IPC buffer's message words (`buf`). A request longer than four
/// words is viewed in place in `buf` (the first four are stored in front of the rest), so
/// nothing is copied for it; a reply is written the same way.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The badge of the client's capability: its identity.
    pub badge: u64,
    /// The method label.
    pub label: u64,
    /// Capabilities that came with it (already in the server's CSpace).
    pub caps: &'a [CPtr],
    /// Message registers 0..3: the request's, then the reply's.
    mr: [u64; MSG_REGISTERS],
    /// The request's length in words.
    len: usize,
    /// The IPC buffer's message words (all of them, including the unused 0..3).
    buf: &'a mut [u64],
    /// The message info word as it arrived (for [`Incoming::no_cap`]).
    info: MsgInfo,
    /// The server gives the kernel a slot for received capabilities.
    accepts_caps: bool,
}

/// Why no capability came with a request (what a server logs when a method that takes
/// one is refused, see [`Incoming::refuse_missing_cap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoCap {
    /// The server accepts none: its `Server::cap_slot` is `None`, so the kernel had
    /// nowhere to put one.
    NotAccepted,
    /// The client sent a capability to this very endpoint, which arrives as its badge.
    Unwrapped,
    /// None arrived: the client sent none, named a capability it does not hold, or its
    /// endpoint capability lacks the grant right.
    NoneArrived,
}

impl NoCap {
    /// The reason, in words.
    pub const fn why(self) -> &'static str {
        match self {
            Self::NotAccepted => "this server takes no capabilities (Server::cap_slot is None)",
            Self::Unwrapped => "a capability to this endpoint arrives as its badge",
            Self::NoneArrived => "none arrived (not sent, not the client's, or its endpoint lacks the grant right)",
        }
    }
}

impl<'a> Incoming<'a> {
    /// A request of `len` words: words 0..3 in `mr`, the rest in `buf[4..len]`. If `buf`
    /// is too short for it, the request is cut to what is there (and so is malformed).
    #[inline]
    pub fn new(
        badge: u64,
        label: u64,
        caps: &'a [CPtr],
        mr: [u64; MSG_REGISTERS],
        len: usize,
        buf: &'a mut [u64],
    ) -> Self {
        let len = if len > MSG_REGISTERS {
            match buf.get_mut(..MSG_REGISTERS) {
                Some(head) => {
                    head.copy_from_slice(&mr);
                    len.min(buf.len())
                }
                None => MSG_REGISTERS,
            }
        } else {
            len
        };
        Self {
            badge,
            label,
            caps,
            mr,
            len,
            buf,
            info: MsgInfo::new(label, len, caps.len()),
            accepts_caps: true,
        }
    }

    /// Record how the request arrived: its message info word, and whether the server
    /// offered the kernel a slot for capabilities (the server loop says both, for
    /// [`Incoming::no_cap`]).
    #[inline]
    #[must_use]
    pub const fn arrived(mut self, info: MsgInfo, accepts_caps: bool) -> Self {
        self.info = info;
        self.accepts_caps = accepts_caps;
        self
    }

    /// Why no capability came with the request (`None` if one did).
    pub fn no_cap(&self) -> Option<NoCap> {
        if !self.caps.is_empty() {
            None
        } else if !self.accepts_caps {
            Some(NoCap::NotAccepted)
        } else if self.info.extra_caps() > 0 && self.info.caps_unwrapped() & 1 != 0 {
            Some(NoCap::Unwrapped)
        } else {
            Some(NoCap::NoneArrived)
        }
    }

    /// Refuse a request to `method`, whose argument `param` is a capability (or lease)
    /// that did not come: print why on the console (see [`NoCap`]) and answer
    /// `BAD_MESSAGE`. The generated `dispatch` calls this.
    #[cold]
    #[inline(never)]
    pub fn refuse_missing_cap(&self, method: &str, param: &str) -> Dispatch {
        let why = self
            .no_cap()
            .map_or("it is not a capability this server can use", NoCap::why);
        crate::log::print_fmt(format_args!(
            "{}: refused `{method}` from client {:#x}: no capability for `{param}`: {why}\n",
            crate::start::name(),
            self.badge
        ));
        Dispatch::bad_message()
    }

    /// The request's words.
    #[inline]
    pub fn words(&self) -> &[u64] {
        if self.len <= MSG_REGISTERS {
            &self.mr[..self.len]
        } else {
            &self.buf[..self.len]
        }
    }

    /// Write a successful reply of these words (0 to 4 go in registers, more in the IPC
    /// buffer) and say so. A reply that does not fit is answered with `SERVER_FAILED`.
    #[inline]
    pub fn reply(&mut self, words: &[u64]) -> Dispatch {
        let n = words.len();
        if let Some(regs) = self.mr.get_mut(..n) {
            regs.copy_from_slice(words);
            return Dispatch::ok(n);
        }
        match self.buf.get_mut(..n) {
            Some(out) => {
                out.copy_from_slice(words);
                self.mr.copy_from_slice(&words[..MSG_REGISTERS]);
                Dispatch::ok(n)
            }
            None => Dispatch::Reply {
                label: SERVER_FAILED,
                len: 0,
            },
        }
    }

    /// Message registers 0..3 of the reply written with [`Incoming::reply`]; the rest of
    /// a longer reply is in the buffer, at the same indices.
    #[inline]
    pub const fn reply_registers(&self) -> [u64; MSG_REGISTERS] {
        self.mr
    }
}

/// What `dispatch` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Reply with `label` and `len` words written by [`Incoming::reply`].
    Reply {
        /// Label: 0, an application error, or a runtime code.
        label: u64,
        /// Payload words.
        len: usize,
    },
    /// Nothing to answer (a one-way method). The server loop still answers a caller
    /// that waits (a one-way method reached by Call) with an empty reply, label 0, so
    /// its reply object is free for the next request: see [`Dispatch::answer`].
    NoReply,
}

impl Dispatch {
    /// The label and length of the reply the server loop sends for this decision:
    /// `Reply`'s, or for `NoReply` an empty reply (label 0, no words), which reaches
    /// someone only if the client used Call.
    #[inline]
    pub const fn answer(self) -> (u64, usize) {
        match self {
            Self::Reply { label, len } => (label, len),
            Self::NoReply => (0, 0),
        }
    }

    /// A successful reply with `len` payload words.
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
}

/// Copy `src` to the front of `dst` (`dst` at least as long), four words at a time: that
/// compiles to paired loads and stores in line, where `copy_from_slice` would call the
/// runtime's generic `memcpy`, which costs several times as many instructions per word.
#[inline]
pub fn copy_words(dst: &mut [u64], src: &[u64]) {
    let mut d = dst.chunks_exact_mut(4);
    let mut s = src.chunks_exact(4);
    for (d, s) in d.by_ref().zip(s.by_ref()) {
        d[0] = s[0];
        d[1] = s[1];
        d[2] = s[2];
        d[3] = s[3];
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Lay out a request: words 0..3 returned (for `x2..x5`), the rest and the capability,
/// if any, in the IPC buffer.
#[inline]
fn message(label: u64, request: &[u64], caps: &[CPtr]) -> Result<(MsgInfo, [u64; MSG_REGISTERS]), Error> {
    let n = request.len();
    let mut mr = [0u64; MSG_REGISTERS];
    if n <= MSG_REGISTERS && caps.is_empty() {
        mr[..n].copy_from_slice(request);
    } else {
        let b = crate::ipc::ipc_buffer().ok_or(Error::InvalidArgument)?;
        if let Some((head, tail)) = request.split_at_checked(MSG_REGISTERS) {
            copy_words(b.msg.get_mut(MSG_REGISTERS..n).ok_or(Error::InvalidArgument)?, tail);
            mr.copy_from_slice(head);
        } else {
            mr[..n].copy_from_slice(request);
        }
        if let Some(&c) = caps.first() {
            b.caps_or_badges[0] = c;
        }
    }
    Ok((MsgInfo::new(label, n, caps.len().min(1)), mr))
}

/// Hand a received message's label and words to `f`: up to four from registers, a longer
/// one viewed in the IPC buffer (its first four words stored in front of the rest).
#[inline]
fn received<R>(m: &Msg, f: impl FnOnce(u64, &[u64]) -> R) -> R {
    let len = m.info.length();
    if len <= MSG_REGISTERS {
        return f(m.info.label(), &m.mr[..len]);
    }
    match crate::ipc::ipc_buffer() {
        Some(b) => {
            b.msg[..MSG_REGISTERS].copy_from_slice(&m.mr);
            f(m.info.label(), &b.msg[..len.min(MSG_MAX_LENGTH)])
        }
        None => f(m.info.label(), &m.mr),
    }
}

/// A client's transport over an endpoint capability (badged: the badge is its identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointTransport {
    /// The endpoint.
    pub ep: CPtr,
}

impl Transport for EndpointTransport {
    #[inline]
    fn call<R>(
        &self,
        label: u64,
        request: &[u64],
        caps: &[CPtr],
        reply: impl FnOnce(u64, &[u64]) -> R,
    ) -> Result<R, Error> {
        let (info, mr) = message(label, request, caps)?;
        let m = crate::ipc::call(self.ep, info, mr).ok()?;
        Ok(received(&m, reply))
    }

    #[inline]
    fn send(&self, label: u64, request: &[u64], caps: &[CPtr]) -> Result<(), Error> {
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

/// Like `serves!`, for an interface the program may be given no channel for (it
/// checks `start::serve` and does without).
#[macro_export]
macro_rules! serves_optional {
    ($($iface:expr),+ $(,)?) => {
        $( $crate::__idl_record!(
            $crate::gaon_abi::system::ROLE_SERVES | $crate::gaon_abi::system::ROLE_OPTIONAL,
            $iface
        ); )+
    };
}

/// Like `uses!`, for an interface the program may be given no channel for. For
/// `Console`, it also lets a program that prints run without a console channel (its
/// output then goes to the kernel debug console if it has the Debug capability, else
/// nowhere).
#[macro_export]
macro_rules! uses_optional {
    ($($iface:expr),+ $(,)?) => {
        $( $crate::__idl_record!(
            $crate::gaon_abi::system::ROLE_USES | $crate::gaon_abi::system::ROLE_OPTIONAL,
            $iface
        ); )+
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
