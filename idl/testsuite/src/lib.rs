//! Generated code for the IDL test interfaces, compiled against libl4, plus a loopback
//! transport that hands requests straight to a server's `dispatch` (what the kernel does
//! between two threads, minus the kernel).
#![deny(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/every_kind.rs"));
include!(concat!(env!("OUT_DIR"), "/console.rs"));

use core::cell::RefCell;

use libl4::Error;
use libl4::ipc::CPtr;
use libl4::rpc::{Dispatch, Incoming, Transport};

/// Words a message can carry.
pub const MAX: usize = 120;

/// A transport that calls `dispatch` on a server in the same program.
pub struct Loopback<S, F> {
    /// The server.
    pub server: RefCell<S>,
    /// Its generated dispatch function.
    pub dispatch: F,
    /// The badge the server sees.
    pub badge: u64,
}

impl<S, F> core::fmt::Debug for Loopback<S, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Loopback")
            .field("badge", &self.badge)
            .finish_non_exhaustive()
    }
}

/// Hand `request` to `dispatch` as the server runtime would: words 0..3 in registers, the
/// rest in an IPC buffer (`buf`). Returns the decision and the reply's registers.
pub fn deliver<S>(
    server: &mut S,
    dispatch: impl Fn(&mut S, &mut Incoming<'_>) -> Dispatch,
    badge: u64,
    label: u64,
    request: &[u64],
    caps: &[CPtr],
    buf: &mut [u64; MAX],
) -> (Dispatch, [u64; 4]) {
    let mut mr = [0u64; 4];
    for (i, &w) in request.iter().enumerate() {
        match mr.get_mut(i) {
            Some(r) => *r = w,
            None => buf[i] = w,
        }
    }
    let mut msg = Incoming::new(badge, label, caps, mr, request.len(), buf);
    let d = dispatch(server, &mut msg);
    (d, msg.reply_registers())
}

impl<S, F> Transport for &Loopback<S, F>
where
    F: Fn(&mut S, &mut Incoming<'_>) -> Dispatch,
{
    fn call<R>(
        &self,
        label: u64,
        request: &[u64],
        caps: &[CPtr],
        reply: impl FnOnce(u64, &[u64]) -> R,
    ) -> Result<R, Error> {
        if request.len() > MAX {
            return Err(Error::InvalidArgument);
        }
        let mut buf = [0u64; MAX];
        let server = &mut *self.server.borrow_mut();
        // What the server loop answers for the decision (an empty reply for a one-way
        // method reached by Call).
        let (d, mr) = deliver(server, &self.dispatch, self.badge, label, request, caps, &mut buf);
        let (label, len) = d.answer();
        if len <= 4 {
            Ok(reply(label, &mr[..len]))
        } else {
            Ok(reply(label, &buf[..len.min(MAX)]))
        }
    }

    fn send(&self, label: u64, request: &[u64], caps: &[CPtr]) -> Result<(), Error> {
        if request.len() > MAX {
            return Err(Error::InvalidArgument);
        }
        let server = &mut *self.server.borrow_mut();
        let _ = deliver(server, &self.dispatch, self.badge, label, request, caps, &mut [0; MAX]);
        Ok(())
    }
}
