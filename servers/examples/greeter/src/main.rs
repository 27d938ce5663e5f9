#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use core::fmt::Write;
    use libl4::alloc::Heap;
    use libl4::lease::{Access, Leases};
    use libl4::rpc::{Dispatch, Incoming, Lease};
    use libl4::server::{Handler, Server};
    use libl4::{println, start};

    include!(concat!(env!("OUT_DIR"), "/greeter.rs"));
    use greeter::{GreetError, GreeterServer};

    // For the image tool's channel check: this program serves Greeter and logs.
    libl4::serves!(greeter::INTERFACE);
    libl4::uses!(libl4::idl::console::INTERFACE);

    struct Greeter {
        asked: [u32; 8],
        /// Where lent pages are mapped while a call uses them.
        leases: Leases,
    }

    /// The greeting for `name`, counting how often `client` asked.
    fn greeting(asked: &mut [u32; 8], client: u64, name: &str) -> Result<heapless::String<64>, GreetError> {
        if name.is_empty() {
            return Err(GreetError::NoName);
        }
        let n = &mut asked[client as usize % 8];
        *n += 1;
        let mut s = heapless::String::new();
        let _ = write!(s, "hello {name} (#{n})");
        Ok(s)
    }

    impl GreeterServer for Greeter {
        fn greet(&mut self, client: u64, name: &str) -> Result<heapless::String<64>, GreetError> {
            greeting(&mut self.asked, client, name)
        }

        fn greet_in_place(&mut self, client: u64, page: Lease) -> Result<u32, GreetError> {
            // Map the lent window (dispatch checked it lies inside its frame): reads and
            // writes are bounds-checked copies, and dropping `w` unmaps it.
            let mut w = self.leases.map(page, Access::Write).map_err(|_| GreetError::BadLease)?;
            let mut buf = [0u8; 32];
            let n = w.len().min(buf.len());
            w.read(0, &mut buf[..n]).map_err(|_| GreetError::BadLease)?;
            let end = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
            let name = core::str::from_utf8(&buf[..end]).map_err(|_| GreetError::BadLease)?;
            let text = greeting(&mut self.asked, client, name)?;
            w.write(0, text.as_bytes()).map_err(|_| GreetError::TooSmall)?;
            Ok(text.len() as u32)
        }
    }

    impl Handler for Greeter {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            greeter::dispatch(self, msg)
        }
    }

    pub fn run() -> u8 {
        let Ok(ep) = start::serve("greeter") else {
            println!("no `greeter` channel to serve");
            return 1;
        };
        // Slots, memory and addresses of its own (`heap_kib` in the description): a slot
        // to receive lent frames in, and a page of addresses to map them at.
        let Ok(mut heap) = Heap::from_start() else {
            println!("no heap: give me `heap_kib`");
            return 1;
        };
        let (Ok(slot), Ok(leases)) = (heap.recv_slot(), Leases::new(&mut heap)) else {
            println!("my heap is too small");
            return 1;
        };
        println!("ready");
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: Some(slot),
        }
        .run(&mut Greeter { asked: [0; 8], leases })
    }
}

libl4::main!(app::run);
