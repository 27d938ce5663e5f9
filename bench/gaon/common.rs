#![allow(dead_code, reason = "each program uses part of the shared layout")]

//! What the benchmark root and its workers share: the worker address-space layout, the
//! capability slots a worker finds its objects in, the roles, and the loops both run
//! (the same echo loop serves in the root's address space and in a worker's).

use gaon_abi::MsgInfo;
use libl4::ipc::{self, CPtr};

/// A worker's stack: `STACK_PAGES` pages below `STACK_TOP`.
pub const STACK_TOP: u64 = 0x10_0000_0000;
/// Pages of stack a worker gets.
pub const STACK_PAGES: u64 = 8;
/// A worker's IPC buffer.
pub const IPC_BUFFER: u64 = 0x10_0001_0000;
/// Memory a worker shares with the root (a lease, a ring buffer, a timestamp).
pub const SHARED: u64 = 0x11_0000_0000;
/// A worker's working set (ring benchmarks).
pub const WORKING_SET: u64 = 0x12_0000_0000;
/// Largest working set in bytes.
pub const WORKING_SET_MAX: u64 = 16 * 1024;

/// Slots in a worker's CSpace (a guarded CNode, so a CPtr is the slot index).
pub mod slot {
    /// The endpoint it receives on.
    pub const EP: u64 = 1;
    /// Its reply object.
    pub const REPLY: u64 = 2;
    /// The next ring member's endpoint.
    pub const NEXT: u64 = 3;
    /// A notification it waits on.
    pub const NTFN: u64 = 4;
    /// A notification it signals.
    pub const NTFN_OUT: u64 = 5;
}

/// What a worker does (the low byte of its start argument; the rest is a parameter).
pub mod role {
    /// Answer every call with the message it carried.
    pub const ECHO: u64 = 1;
    /// Serve the `Bench` IDL interface.
    pub const IDL: u64 = 2;
    /// A ring member: receive the token, touch the working set, pass the token on.
    pub const RING: u64 = 3;
    /// Copy each request's lease (the shared page) out, then answer.
    pub const LEASE: u64 = 4;
    /// Wait on a notification and record when it woke in the shared page.
    pub const WAKE_STAMP: u64 = 5;
    /// Wait on a notification, forever.
    pub const WAITER: u64 = 6;
    /// Consume a shared ring buffer (the bandwidth benchmark).
    pub const SINK: u64 = 7;
    /// Receive on the endpoint, forever (one-way sends).
    pub const WAITER_EP: u64 = 8;
}

/// The shared ring buffer of the bandwidth benchmark: a header page (producer and
/// consumer counters) followed by `RING_SLOTS` slots of `RING_SLOT` bytes.
pub mod pipe {
    /// Bytes per slot (one write).
    pub const SLOT: usize = 16 * 1024;
    /// Slots in the ring.
    pub const SLOTS: usize = 4;
    /// Pages the ring and its header take.
    pub const PAGES: u64 = 1 + (SLOT * SLOTS / 4096) as u64;
}

/// The counter both systems time with (CNTVCT_EL0). Under `-icount shift=0` a counter
/// tick is `1e9 / CNTFRQ_EL0` instructions.
#[inline]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects; the kernel lets EL0 read it.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack));
    }
    v
}

/// Answer every call on `ep` with the message it carried (same label and length; words
/// past the registers are still in the IPC buffer, so they go back as they came).
pub fn echo(ep: CPtr, reply: CPtr) -> ! {
    let mut m = ipc::recv(ep, reply);
    loop {
        m = ipc::reply_recv(ep, reply, MsgInfo::new(m.info.label(), m.info.length(), 0), m.mr);
    }
}

/// Sum `bytes` of the working set at `base`, a word at a time (LMBench's lat_ctx does
/// the same to its per-process array).
pub fn touch(base: u64, bytes: u64) -> u64 {
    let mut sum = 0u64;
    let mut p = base;
    while p < base + bytes {
        // SAFETY: the caller maps `bytes` of working set at `base`.
        #[allow(unsafe_code)]
        let w = unsafe { core::ptr::read_volatile(p as *const u64) };
        sum = sum.wrapping_add(w);
        p += 8;
    }
    sum
}
