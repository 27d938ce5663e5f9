//! A server the system test crashes on purpose (`Fragile::crash`), to check that the
//! root server reports the fault and that the caller gets an error instead of hanging.
//! It also reads the shared region `ring` the test writes.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::mmio::Mmio;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{Handler, Server};
    use libl4::{println, start};

    include!(concat!(env!("OUT_DIR"), "/fragile.rs"));
    use fragile::FragileServer;

    libl4::serves!(fragile::INTERFACE);
    libl4::uses!(libl4::idl::console::INTERFACE);

    /// An address nothing is mapped at in any server (below the program image).
    const UNMAPPED: u64 = 0x1000;

    struct Fragile {
        ring: Option<Mmio>,
    }

    impl FragileServer for Fragile {
        fn ping(&mut self, _client: u64, x: u64) -> u64 {
            x.wrapping_add(1)
        }

        fn peek(&mut self, _client: u64, offset: u32) -> u32 {
            match &self.ring {
                Some(r) if u64::from(offset) + 4 <= r.size() && offset.is_multiple_of(4) => r.read(u64::from(offset)),
                _ => u32::MAX,
            }
        }

        fn crash(&mut self, _client: u64) {
            println!("crashing on purpose");
            #[allow(unsafe_code)]
            // SAFETY: none needed for the outcome: nothing is mapped at UNMAPPED, so the
            // load faults and the kernel stops this thread before it completes.
            let _ = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
        }
    }

    impl Handler for Fragile {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            fragile::dispatch(self, msg)
        }
    }

    pub fn run() -> u8 {
        let Ok(ep) = start::serve("fragile") else {
            println!("no `fragile` channel to serve");
            return 1;
        };
        let ring = Mmio::named("ring").ok();
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: None,
        }
        .run(&mut Fragile { ring })
    }
}

libl4::main!(app::run);
