//! A benchmark worker: the program the benchmark root loads into each address space it
//! needs besides its own. Its start argument says what it does (`common::role`); its
//! objects are at fixed slots (`common::slot`) and addresses.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[path = "../../common.rs"]
mod common;

#[cfg(target_os = "none")]
mod app {
    use core::sync::atomic::{AtomicU64, Ordering};

    use libl4::ipc;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{Handler, Server};

    use crate::common::{self, SHARED, WORKING_SET, pipe, role, slot};

    include!(concat!(env!("OUT_DIR"), "/bench.rs"));
    libl4::serves!(bench::INTERFACE);

    struct Impl;

    impl bench::BenchServer for Impl {
        fn nop(&mut self, _client: u64) {}
        fn echo32(&mut self, _client: u64, a: &[u64; 4]) -> [u64; 4] {
            *a
        }
        fn echo256(&mut self, _client: u64, a: &[u64; 32]) -> [u64; 32] {
            *a
        }
    }

    impl Handler for Impl {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            bench::dispatch(self, msg)
        }
    }

    fn shared_word(i: usize) -> &'static AtomicU64 {
        // SAFETY: the root maps the shared pages at SHARED before starting a worker
        // whose role uses them; AtomicU64 is valid for any bits.
        #[allow(unsafe_code)]
        unsafe {
            &*((SHARED as *const AtomicU64).add(i))
        }
    }

    /// Pass the token round the ring: MR0 is the working-set size to touch.
    fn ring() -> ! {
        let mut m = ipc::recv(slot::EP, slot::REPLY);
        loop {
            let ws = m.mr[0].min(common::WORKING_SET_MAX);
            let sum = common::touch(WORKING_SET, ws);
            let _ = ipc::send(slot::NEXT, m.info, [m.mr[0], sum, 0, 0]);
            m = ipc::recv(slot::EP, slot::REPLY);
        }
    }

    /// Each request's MR0 bytes of the shared page are copied out before the answer.
    fn lease() -> ! {
        let mut local = [0u8; 4096];
        let mut m = ipc::recv(slot::EP, slot::REPLY);
        loop {
            let len = (m.mr[0] as usize).min(local.len());
            // SAFETY: the shared page is mapped at SHARED for this role.
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::copy_nonoverlapping(SHARED as *const u8, local.as_mut_ptr(), len);
            }
            m = ipc::reply_recv(
                slot::EP,
                slot::REPLY,
                gaon_abi::MsgInfo::new(0, 1, 0),
                [u64::from(local[len.max(1) - 1]), 0, 0, 0],
            );
        }
    }

    /// Wake on the notification and stamp the time in shared word 0.
    fn wake_stamp() -> ! {
        loop {
            let _ = ipc::wait(slot::NTFN);
            shared_word(0).store(common::now(), Ordering::Release);
        }
    }

    /// The consumer end of the bandwidth benchmark's ring: header word 0 counts slots
    /// written, word 1 slots read; NTFN says data came, NTFN_OUT that space freed up.
    fn sink() -> ! {
        let mut local = [0u8; pipe::SLOT];
        let (written, read) = (shared_word(0), shared_word(1));
        loop {
            let r = read.load(Ordering::Relaxed);
            while written.load(Ordering::Acquire) == r {
                let _ = ipc::wait(slot::NTFN);
            }
            let at = SHARED + 4096 + (r as usize % pipe::SLOTS * pipe::SLOT) as u64;
            // SAFETY: the ring is mapped at SHARED; the slot is the producer's no more
            // until `read` moves past it.
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::copy_nonoverlapping(at as *const u8, local.as_mut_ptr(), pipe::SLOT);
            }
            core::hint::black_box(&local);
            read.store(r + 1, Ordering::Release);
            let _ = ipc::signal(slot::NTFN_OUT);
        }
    }

    pub fn run() -> u8 {
        let arg = libl4::start::arg();
        match arg & 0xff {
            role::ECHO => common::echo(slot::EP, slot::REPLY),
            role::IDL => Server {
                ep: slot::EP,
                reply: slot::REPLY,
                cap_slot: None,
            }
            .run(&mut Impl),
            role::RING => ring(),
            role::LEASE => lease(),
            role::WAKE_STAMP => wake_stamp(),
            role::WAITER => loop {
                let _ = ipc::wait(slot::NTFN);
            },
            role::SINK => sink(),
            role::WAITER_EP => loop {
                let _ = ipc::recv(slot::EP, slot::REPLY);
            },
            _ => 2,
        }
    }
}

libl4::main!(app::run);
