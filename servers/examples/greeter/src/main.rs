#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use core::fmt::Write;
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{Handler, Server};
    use libl4::{println, start};

    include!(concat!(env!("OUT_DIR"), "/greeter.rs"));
    use greeter::{GreetError, GreeterServer};

    // For the image tool's channel check: this program serves Greeter and logs.
    libl4::serves!(greeter::INTERFACE);
    libl4::uses!(libl4::idl::console::INTERFACE);

    #[derive(Default)]
    struct Greeter {
        asked: [u32; 8],
    }

    impl GreeterServer for Greeter {
        fn greet(&mut self, client: u64, name: &str) -> Result<heapless::String<64>, GreetError> {
            if name.is_empty() {
                return Err(GreetError::NoName);
            }
            let n = &mut self.asked[client as usize % 8];
            *n += 1;
            let mut s = heapless::String::new();
            let _ = write!(s, "hello {name} (#{n})");
            Ok(s)
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
        println!("ready");
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: None,
        }
        .run(&mut Greeter::default())
    }
}

libl4::main!(app::run);
