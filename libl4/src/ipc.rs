//! IPC: Call, ReplyRecv, Send, Recv and friends, and the message registers.
//!
//! Message registers 0..3 travel in `x2..x5`; the rest are in the thread's IPC buffer,
//! which libl4 finds through TPIDR_EL0 (the kernel sets it for the root server; libl4's
//! thread helpers set it for new threads).

use gaon_abi::message::MSG_MAX_LENGTH;
use gaon_abi::syscall::MSG_REGISTERS;
use gaon_abi::{Error, Invocation, Layout, Syscall};
pub use gaon_abi::{IpcBuffer, MsgInfo};

use crate::syscall::{Regs, ipc_syscall};

/// A capability pointer: an address in the thread's CSpace.
pub type CPtr = u64;

/// A received message (or a kernel reply).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Msg {
    /// The sender's badge (or the notification bits).
    pub badge: u64,
    /// Label, length and caps.
    pub info: MsgInfo,
    /// Message registers 0..3.
    pub mr: [u64; MSG_REGISTERS],
}

impl Msg {
    /// The error of a kernel reply, if it is one.
    pub fn error(&self) -> Option<Error> {
        self.info.error()
    }
    /// `Ok(self)` unless the kernel reported an error.
    pub fn ok(self) -> Result<Self, Error> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

fn regs(cptr: CPtr, info: MsgInfo, mr: &[u64; MSG_REGISTERS], reply: CPtr) -> Regs {
    Regs([cptr, info.0, mr[0], mr[1], mr[2], mr[3], reply])
}

fn msg(r: &Regs) -> Msg {
    Msg {
        badge: r.0[0],
        info: MsgInfo(r.0[1]),
        mr: [r.0[2], r.0[3], r.0[4], r.0[5]],
    }
}

/// Call: send and wait for the reply (or invoke a kernel object).
#[inline]
pub fn call(cptr: CPtr, info: MsgInfo, mr: [u64; MSG_REGISTERS]) -> Msg {
    let mut r = regs(cptr, info, &mr, 0);
    ipc_syscall(Syscall::Call, &mut r);
    msg(&r)
}

/// Send, blocking until a receiver takes it (or signal a notification).
#[inline]
pub fn send(cptr: CPtr, info: MsgInfo, mr: [u64; MSG_REGISTERS]) -> Result<(), Error> {
    let mut r = regs(cptr, info, &mr, 0);
    ipc_syscall(Syscall::Send, &mut r);
    msg(&r).ok().map(|_| ())
}

/// Send if a receiver is waiting; otherwise the message is dropped.
#[inline]
pub fn nb_send(cptr: CPtr, info: MsgInfo, mr: [u64; MSG_REGISTERS]) -> Result<(), Error> {
    let mut r = regs(cptr, info, &mr, 0);
    ipc_syscall(Syscall::NbSend, &mut r);
    msg(&r).ok().map(|_| ())
}

/// Receive on an endpoint with reply object `reply` (0 = none), or wait on a
/// notification.
#[inline]
pub fn recv(cptr: CPtr, reply: CPtr) -> Msg {
    let mut r = regs(cptr, MsgInfo(0), &[0; 4], reply);
    ipc_syscall(Syscall::Recv, &mut r);
    msg(&r)
}

/// Receive only if something is pending; otherwise `Error::WouldBlock`.
#[inline]
pub fn nb_recv(cptr: CPtr, reply: CPtr) -> Msg {
    let mut r = regs(cptr, MsgInfo(0), &[0; 4], reply);
    ipc_syscall(Syscall::NbRecv, &mut r);
    msg(&r)
}

/// Reply through `reply`, then receive on `ep` with it.
#[inline]
pub fn reply_recv(ep: CPtr, reply: CPtr, info: MsgInfo, mr: [u64; MSG_REGISTERS]) -> Msg {
    let mut r = regs(ep, info, &mr, reply);
    ipc_syscall(Syscall::ReplyRecv, &mut r);
    msg(&r)
}

/// Signal a notification.
#[inline]
pub fn signal(ntfn: CPtr) -> Result<(), Error> {
    send(ntfn, MsgInfo(0), [0; 4])
}

/// Wait on a notification; returns the signal bits.
#[inline]
pub fn wait(ntfn: CPtr) -> Result<u64, Error> {
    let m = recv(ntfn, 0).ok()?;
    Ok(m.badge)
}

/// Poll a notification: the bits, or `WouldBlock` if none are pending.
#[inline]
pub fn poll(ntfn: CPtr) -> Result<u64, Error> {
    let m = nb_recv(ntfn, 0).ok()?;
    Ok(m.badge)
}

/// This thread's IPC buffer (from TPIDR_EL0), if it has one.
#[cfg(target_arch = "aarch64")]
pub fn ipc_buffer() -> Option<&'static mut IpcBuffer> {
    let p: u64;
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el0", out(reg) p, options(nomem, nostack, preserves_flags)) };
    if p == 0 {
        return None;
    }
    // SAFETY: libl4 keeps TPIDR_EL0 pointing at this thread's IPC buffer, a mapped,
    // 1 KiB-aligned frame the thread alone uses.
    Some(unsafe { &mut *(p as *mut IpcBuffer) })
}

/// Host builds have no IPC buffer.
#[cfg(not(target_arch = "aarch64"))]
pub fn ipc_buffer() -> Option<&'static mut IpcBuffer> {
    None
}

/// Set message register `i` (4 and above go to the IPC buffer). False if there is none.
pub fn set_mr(i: usize, v: u64) -> bool {
    if i >= MSG_MAX_LENGTH {
        return false;
    }
    match ipc_buffer() {
        Some(b) => {
            b.msg[i] = v;
            true
        }
        None => false,
    }
}

/// Message register `i` (4 and above) from the IPC buffer; 0 without one.
pub fn get_mr(i: usize) -> u64 {
    if i >= MSG_MAX_LENGTH {
        return 0;
    }
    ipc_buffer().map_or(0, |b| b.msg[i])
}

/// Invoke a kernel object with one invocation's arguments (a `gaon_abi::invocation`
/// layout, which gives the label and the words): the reply decoded with its layout, or
/// the kernel's error.
#[inline]
pub fn invoke_args<A: Invocation>(cptr: CPtr, args: &A) -> Result<A::Reply, Error> {
    let m = invoke(cptr, A::LABEL, args.encode().as_ref())?;
    // A successful kernel reply always carries its layout's words (at most four: the
    // registers), so its length is not checked again here.
    A::Reply::decode(A::Reply::LEN, |i| m.mr[i % MSG_REGISTERS])
}

/// Invoke a kernel object: label and raw arguments, with arguments past the fourth in
/// the IPC buffer. Returns the reply's message registers 0..3 or the kernel's error.
/// [`invoke_args`] builds the words from the invocation's layout; this is for messages
/// the layouts cannot express (tests of the kernel's checks, tails).
pub fn invoke(cptr: CPtr, label: gaon_abi::Label, args: &[u64]) -> Result<Msg, Error> {
    let mut mr = [0u64; MSG_REGISTERS];
    for (i, a) in args.iter().enumerate() {
        if i < MSG_REGISTERS {
            mr[i] = *a;
        } else if !set_mr(i, *a) {
            return Err(Error::TruncatedMessage);
        }
    }
    call(cptr, MsgInfo::new(label as u64, args.len(), 0), mr).ok()
}
