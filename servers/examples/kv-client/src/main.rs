//! The client of the tutorial's second example: stores and reads back a few values through the generated
//! `KvClient` stub, logging to the console, then exits.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::rpc::{CallError, EndpointTransport};
    use libl4::{println, start};

    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
    use kv::{KvClient, KvError};

    // Tell the image tool this program is a client of `Kv` (and of the console, which
    // `println!` uses).
    libl4::uses!(kv::INTERFACE, libl4::idl::console::INTERFACE);

    pub fn run() -> u8 {
        let Ok(ep) = start::client("kv") else {
            println!("no `kv` channel");
            return 1;
        };
        let kv = KvClient::new(EndpointTransport { ep: ep.0 });
        for (key, value) in [("apples", 3), ("pears", 5), ("apples", 7)] {
            if let Err(e) = kv.put(key, value) {
                println!("put {key}: {e:?}");
                return 1;
            }
        }
        match (kv.get("apples"), kv.get("plums"), kv.len()) {
            (Ok(7), Err(CallError::Remote(KvError::NotFound)), Ok(2)) => {
                println!("stored 2 keys; apples = 7; plums not found, as expected");
                0
            }
            other => {
                println!("unexpected answers: {other:?}");
                1
            }
        }
    }
}

libl4::main!(app::run);
