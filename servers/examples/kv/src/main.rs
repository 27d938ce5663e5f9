//! The tutorial's second example server: a key-value store. It serves the `Kv` interface
//! (`servers/examples/kv.idl`) on its `kv` channel and keeps each client's keys apart,
//! using the caller's badge as its identity.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use heapless::{String, Vec};
    use libl4::rpc::{Dispatch, Incoming};
    use libl4::server::{Handler, Server};
    use libl4::{println, start};

    // The generated stubs: `kv::KvServer`, `kv::dispatch`, `kv::KvError`, ...
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
    use kv::{KvError, KvServer};

    // Tell the image tool this program serves `Kv`.
    libl4::serves!(kv::INTERFACE);
    libl4::uses!(libl4::idl::console::INTERFACE);

    /// One stored value: whose it is, its key, and the value.
    struct Entry {
        client: u64,
        key: String<32>,
        value: u64,
    }

    #[derive(Default)]
    struct Store {
        entries: Vec<Entry, 64>,
    }

    impl KvServer for Store {
        fn put(&mut self, client: u64, key: &str, value: u64) -> Result<(), KvError> {
            if let Some(e) = self.entries.iter_mut().find(|e| e.client == client && e.key == key) {
                e.value = value;
                return Ok(());
            }
            // The IDL bounds `key` to 32 bytes and dispatch checked it, so it fits.
            let key = String::try_from(key).map_err(|_| KvError::Full)?;
            self.entries
                .push(Entry { client, key, value })
                .map_err(|_| KvError::Full)
        }

        fn get(&mut self, client: u64, key: &str) -> Result<u64, KvError> {
            self.entries
                .iter()
                .find(|e| e.client == client && e.key == key)
                .map(|e| e.value)
                .ok_or(KvError::NotFound)
        }

        fn len(&mut self, client: u64) -> u32 {
            self.entries.iter().filter(|e| e.client == client).count() as u32
        }
    }

    impl Handler for Store {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            kv::dispatch(self, msg)
        }
    }

    pub fn run() -> u8 {
        let Ok(ep) = start::serve("kv") else {
            println!("no `kv` channel to serve");
            return 1;
        };
        println!("serving Kv");
        Server {
            ep: ep.0,
            reply: start::REPLY,
            cap_slot: None,
        }
        .run(&mut Store::default())
    }
}

libl4::main!(app::run);
