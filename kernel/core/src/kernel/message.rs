//! Message registers: the first four are in the thread's registers (x2..x5), the
//! rest in its IPC buffer, a frame the kernel reads and writes at its physical address.

use gaon_abi::{Error, MsgInfo, ObjType};

use super::object::tcb::{SLOT_IPC_BUFFER, Tcb};
use super::{Kernel, Platform};
use crate::obj::{self, Ptr};

impl<P: Platform> Kernel<P> {
    /// Physical address of `t`'s IPC buffer, if it has a usable one.
    pub(super) fn ipc_buffer(t: Ptr<Tcb>) -> Option<usize> {
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
        Some(cap.obj + offset)
    }

    /// Message register `i` of `t` (0 if it lies in a missing IPC buffer).
    pub(super) fn get_mr(t: Ptr<Tcb>, i: usize) -> u64 {
        if i < gaon_abi::syscall::MSG_REGISTERS {
            return t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i];
        }
        match Self::ipc_buffer(t) {
            Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => {
                obj::read_word(b + gaon_abi::message::ipc_buffer_msg_offset(i))
            }
            _ => 0,
        }
    }

    /// Set message register `i` of `t`; false if it would need a missing IPC buffer.
    pub(super) fn set_mr(t: Ptr<Tcb>, i: usize, v: u64) -> bool {
        if i < gaon_abi::syscall::MSG_REGISTERS {
            t.get().ctx.x[gaon_abi::syscall::FIRST_MR_REG + i] = v;
            return true;
        }
        match Self::ipc_buffer(t) {
            Some(b) if i < gaon_abi::message::MSG_MAX_LENGTH => {
                obj::write_word(b + gaon_abi::message::ipc_buffer_msg_offset(i), v);
                true
            }
            _ => false,
        }
    }

    /// Message registers `t` can receive: 4, or 120 with an IPC buffer.
    pub(super) fn mr_capacity(t: Ptr<Tcb>) -> usize {
        if Self::ipc_buffer(t).is_some() {
            gaon_abi::message::MSG_MAX_LENGTH
        } else {
            gaon_abi::syscall::MSG_REGISTERS
        }
    }

    /// Finish a syscall of `t` with a kernel reply: `label` 0 or an error.
    pub(super) fn reply_kernel(t: Ptr<Tcb>, result: Result<usize, Error>) {
        let ctx = &mut t.get().ctx;
        ctx.x[0] = 0;
        ctx.x[1] = match result {
            Ok(len) => MsgInfo::kernel(0, len).0,
            Err(e) => MsgInfo::kernel(e as u64, 0).0,
        };
    }
}
