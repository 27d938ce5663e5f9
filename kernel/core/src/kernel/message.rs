//! Message registers: the first four are in the thread's registers (x2..x5), the
//! rest in its IPC buffer, a frame the kernel reads and writes at its physical address.
//! Plain functions of the thread: they need no kernel state. `#[inline]`: they are
//! not generic, so without it the kernel binary could not inline them across crates.

use gaon_abi::{Error, MsgInfo, ObjType};

use super::object::tcb::{SLOT_IPC_BUFFER, Tcb};
use crate::obj::{IpcBuffer, Ptr};

/// `t`'s IPC buffer, if it has a usable one.
#[allow(unsafe_code, reason = "a thread's IPC buffer cap vouches for the buffer's memory")]
#[inline]
pub(in crate::kernel) fn ipc_buffer(t: Ptr<Tcb>) -> Option<IpcBuffer> {
    let tcb = t.get();
    let cap = tcb.slots[SLOT_IPC_BUFFER].cap;
    // The kernel both reads and writes it: it needs both rights (TcbSetIpcBuffer
    // checks them; this holds for every way a cap reaches the slot).
    if !cap.is(ObjType::Frame)
        || cap.has(crate::cap::FLAG_DEVICE)
        || !cap.rights().contains(gaon_abi::Rights::READ | gaon_abi::Rights::WRITE)
    {
        return None;
    }
    let offset = (tcb.ipc_buffer_vaddr as usize) & ((1usize << cap.size_bits) - 1);
    // SAFETY: a Frame cap names a live frame (objects live while a cap to them
    // exists) of at least a page; it is normal memory (not `FLAG_DEVICE`), and
    // `ipc_buffer_vaddr` is aligned to the buffer's size (TcbSetIpcBuffer checks it,
    // boot sets an aligned one), so the buffer lies inside the frame, aligned.
    Some(unsafe { IpcBuffer::new(cap.obj + offset) })
}

/// Message register `i` of `t` (0 if it lies in a missing IPC buffer).
#[inline]
pub(in crate::kernel) fn get_mr(t: Ptr<Tcb>, i: usize) -> u64 {
    if i < gaon_abi::syscall::MSG_REGISTERS {
        return t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i];
    }
    match ipc_buffer(t) {
        Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => b.msg(i),
        _ => 0,
    }
}

/// Set message register `i` of `t`; false if it would need a missing IPC buffer.
#[inline]
pub(in crate::kernel) fn set_mr(t: Ptr<Tcb>, i: usize, v: u64) -> bool {
    if i < gaon_abi::syscall::MSG_REGISTERS {
        t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i] = v;
        return true;
    }
    match ipc_buffer(t) {
        Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => {
            b.set_msg(i, v);
            true
        }
        _ => false,
    }
}

/// Message registers `t` can receive: 4, or 120 with an IPC buffer.
#[inline]
pub(in crate::kernel) fn mr_capacity(t: Ptr<Tcb>) -> usize {
    if ipc_buffer(t).is_some() {
        gaon_abi::message::MSG_MAX_LENGTH
    } else {
        gaon_abi::syscall::MSG_REGISTERS
    }
}

/// Finish a syscall of `t` with a kernel reply: `label` 0 or an error.
#[inline]
pub(in crate::kernel) fn reply_kernel(t: Ptr<Tcb>, result: Result<usize, Error>) {
    let ctx = &mut t.get().ctx;
    ctx.x[0] = 0;
    ctx.x[1] = match result {
        Ok(len) => MsgInfo::kernel(0, len).0,
        Err(e) => MsgInfo::kernel(e as u64, 0).0,
    };
}
