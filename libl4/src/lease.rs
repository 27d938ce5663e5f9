//! Leases without `unsafe`: a window of a 4 KiB frame a client lends a server for one
//! call (IDL `lease<read>`, `lease<write>`, `lease<readwrite>`; on the wire the frame
//! capability plus an offset and a length, see `docs/idl.md`).
//!
//! - A client lends a [`SharedPage`]: a fresh frame from its heap
//!   ([`crate::alloc::Allocator::from_start`]) mapped read-write in its own address
//!   space. It fills and reads it with bounds-checked copies and names a window of it
//!   in a call with [`SharedPage::lease`].
//! - A server makes a [`Leases`] once (a page of its own addresses, page tables made)
//!   and, in the handler, maps what arrived with [`Leases::map`], which gives a
//!   [`Window`]: bounds-checked reads and writes inside the lent window only. Dropping
//!   the window unmaps the frame; the server loop deletes the received capability after
//!   the handler returns. The server needs a receive slot
//!   ([`crate::alloc::Allocator::recv_slot`] as its `Server::cap_slot`).
//!
//! The bytes are copied, never borrowed: the other side may change them at any time
//! (a client with a second thread, say), and a copy of bytes is well defined whatever
//! they are.

use core::marker::PhantomData;

use gaon_abi::{Error, ObjType, Rights};

use crate::alloc::{Allocator, PAGE};
use crate::cap::{CNode, Frame, VSpace};
use crate::rpc::Lease;

/// Bytes `[offset, offset + n)` of a window of `len` bytes at `base`: the address, if
/// they lie inside it.
fn span(base: u64, len: u64, offset: usize, n: usize) -> Result<u64, Error> {
    let offset = offset as u64;
    match offset.checked_add(n as u64) {
        Some(end) if end <= len => Ok(base + offset),
        _ => Err(Error::RangeError),
    }
}

/// Copy `buf.len()` bytes from `at` (checked by `span` to lie in a mapped window).
#[cfg(target_os = "none")]
fn copy_out(at: u64, buf: &mut [u8]) {
    // SAFETY: `span` checked that `at..at + buf.len()` lies inside a window that is
    // mapped readable for as long as its owner (a `SharedPage` or a `Window`) lives, and
    // the owner is borrowed for this copy. No reference to that memory is made: the
    // bytes are copied into `buf`, and any byte value is a valid `u8`.
    unsafe { core::ptr::copy_nonoverlapping(at as *const u8, buf.as_mut_ptr(), buf.len()) };
}

/// Copy `data` to `at` (checked by `span` to lie in a mapped, writable window).
#[cfg(target_os = "none")]
fn copy_in(at: u64, data: &[u8]) {
    // SAFETY: `span` checked that `at..at + data.len()` lies inside a window mapped
    // writable for as long as its owner lives (the owner checked it is writable), and
    // the owner is mutably borrowed for this copy; nothing in this program holds a
    // reference to that memory.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), at as *mut u8, data.len()) };
}

/// Host builds map nothing.
#[cfg(not(target_os = "none"))]
fn copy_out(_at: u64, buf: &mut [u8]) {
    buf.fill(0);
}

/// Host builds map nothing.
#[cfg(not(target_os = "none"))]
fn copy_in(_at: u64, _data: &[u8]) {}

/// A page of this program's memory to lend: a fresh frame mapped read-write here.
#[derive(Debug)]
pub struct SharedPage {
    frame: Frame,
    va: u64,
}

impl SharedPage {
    /// A fresh, zeroed page from `heap`.
    pub fn new<const N: usize>(heap: &mut Allocator<N>) -> Result<Self, Error> {
        let (frame, va) = heap.page()?;
        Ok(Self { frame, va })
    }

    /// Its frame capability.
    pub const fn frame(&self) -> Frame {
        self.frame
    }

    /// The window `[offset, offset + len)` of this page to pass as a `lease<..>`
    /// argument; `RangeError` if it does not lie inside the page.
    pub fn lease(&self, offset: u64, len: u64) -> Result<Lease, Error> {
        let l = Lease {
            frame: self.frame.0,
            offset,
            len,
        };
        if l.is_valid() { Ok(l) } else { Err(Error::RangeError) }
    }

    /// Copy `buf.len()` bytes from `offset` into `buf`; `RangeError` past the page.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        copy_out(span(self.va, PAGE, offset, buf.len())?, buf);
        Ok(())
    }

    /// Copy `data` to `offset`; `RangeError` past the page.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), Error> {
        copy_in(span(self.va, PAGE, offset, data.len())?, data);
        Ok(())
    }
}

/// What a server may do with a lease it maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read it (`lease<read>`).
    Read,
    /// Read and write it (`lease<write>`, `lease<readwrite>`).
    Write,
}

/// Where a server maps the leases it receives: one page of its own addresses, with the
/// page tables for it made, so mapping a lease is one invocation.
#[derive(Debug)]
pub struct Leases {
    cnode: CNode,
    vspace: VSpace,
    va: u64,
}

impl Leases {
    /// A page of addresses (and its page tables) from `heap`; see
    /// [`Allocator::map_window`].
    pub fn new<const N: usize>(heap: &mut Allocator<N>) -> Result<Self, Error> {
        let va = heap.map_window()?;
        Ok(Self {
            cnode: heap.cnode,
            vspace: heap.vspace,
            va,
        })
    }

    /// Map the frame of `lease` (a capability the server received, named by its slot in
    /// the heap's CNode) for `access`. Fails with `RangeError` if the window does not lie
    /// inside the frame, `InvalidCapability` if the capability is not a frame (a client
    /// can lend anything: invoking a notification, say, would signal it rather than
    /// fail), or with the kernel's error if mapping is refused (a read-only frame lent
    /// for writing, a large frame). One lease is mapped at a time: the window borrows
    /// this `Leases` until it is dropped.
    pub fn map(&mut self, lease: Lease, access: Access) -> Result<Window<'_>, Error> {
        if !lease.is_valid() {
            return Err(Error::RangeError);
        }
        let (ty, _, _) = self.cnode.identify(lease.frame)?;
        if ty != ObjType::Frame as u64 + 1 {
            return Err(Error::InvalidCapability);
        }
        let rights = match access {
            Access::Read => Rights::READ,
            Access::Write => Rights::READ | Rights::WRITE,
        };
        let frame = Frame(lease.frame);
        frame.map(self.vspace, self.va, rights, false)?;
        Ok(Window {
            frame,
            base: self.va + lease.offset,
            len: lease.len,
            writable: access == Access::Write,
            _leases: PhantomData,
        })
    }
}

/// A received lease, mapped: reads and writes inside the lent window only. Dropping it
/// unmaps the frame.
#[derive(Debug)]
pub struct Window<'a> {
    frame: Frame,
    base: u64,
    len: u64,
    writable: bool,
    _leases: PhantomData<&'a mut Leases>,
}

impl Window<'_> {
    /// Bytes in the window.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an empty window.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copy `buf.len()` bytes from `offset` of the window into `buf`; `RangeError` if
    /// that goes past the window.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Error> {
        copy_out(span(self.base, self.len, offset, buf.len())?, buf);
        Ok(())
    }

    /// Copy `data` to `offset` of the window; `RangeError` if that goes past the
    /// window, `NoRights` if it was mapped for reading only.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), Error> {
        if !self.writable {
            return Err(Error::NoRights);
        }
        copy_in(span(self.base, self.len, offset, data.len())?, data);
        Ok(())
    }
}

impl Drop for Window<'_> {
    fn drop(&mut self) {
        // If this fails the mapping goes when the server loop deletes the capability.
        let _ = self.frame.unmap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_stay_inside_their_window() {
        assert_eq!(span(0x1000, 16, 0, 16), Ok(0x1000));
        assert_eq!(span(0x1000, 16, 15, 1), Ok(0x100f));
        assert_eq!(span(0x1000, 16, 16, 0), Ok(0x1010), "an empty copy at the end");
        assert_eq!(span(0x1000, 16, 15, 2), Err(Error::RangeError));
        assert_eq!(span(0x1000, 16, 17, 0), Err(Error::RangeError));
        assert_eq!(span(0x1000, 16, usize::MAX, 1), Err(Error::RangeError));
        assert_eq!(span(0x1000, 0, 0, 1), Err(Error::RangeError));
    }

    #[test]
    fn a_read_only_window_refuses_writes_and_bounds_are_checked() {
        let mut w = Window {
            frame: Frame(9),
            base: 0x3000_0000_0100,
            len: 8,
            writable: false,
            _leases: PhantomData,
        };
        assert_eq!(w.write(0, b"x"), Err(Error::NoRights));
        let mut buf = [1u8; 8];
        assert_eq!(w.read(0, &mut buf), Ok(()));
        assert_eq!(w.read(1, &mut buf), Err(Error::RangeError));
        w.writable = true;
        assert_eq!(w.write(4, b"abcd"), Ok(()));
        assert_eq!(w.write(5, b"abcd"), Err(Error::RangeError));
        assert_eq!((w.len(), w.is_empty()), (8, false));
    }
}
