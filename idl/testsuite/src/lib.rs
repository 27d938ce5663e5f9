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

/// Bytes a message can carry.
pub const MAX: usize = 960;

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

impl<S, F> Loopback<S, F>
where
    F: Fn(&mut S, &Incoming<'_>, &mut [u8]) -> Dispatch,
{
    /// Hand one request to the server's dispatch, with its reply going to `buf`.
    fn deliver(&self, label: u64, request: &[u8], caps: &[CPtr], buf: &mut [u8]) -> Dispatch {
        let msg = Incoming {
            badge: self.badge,
            label,
            data: request,
            caps,
        };
        (self.dispatch)(&mut self.server.borrow_mut(), &msg, buf)
    }
}

impl<S, F> Transport for &Loopback<S, F>
where
    F: Fn(&mut S, &Incoming<'_>, &mut [u8]) -> Dispatch,
{
    fn call(&self, label: u64, request: &[u8], caps: &[CPtr], reply: &mut [u8]) -> Result<(u64, usize), Error> {
        if request.len() > MAX {
            return Err(Error::InvalidArgument);
        }
        let mut buf = [0u8; MAX];
        match self.deliver(label, request, caps, &mut buf) {
            Dispatch::Reply { label, len } => {
                let n = len.min(reply.len());
                reply[..n].copy_from_slice(&buf[..n]);
                Ok((label, len))
            }
            Dispatch::NoReply => Err(Error::Cancelled),
        }
    }

    fn send(&self, label: u64, request: &[u8], caps: &[CPtr]) -> Result<(), Error> {
        let _ = self.deliver(label, request, caps, &mut [0u8; MAX]);
        Ok(())
    }
}
