#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::alloc::Heap;
    use libl4::lease::SharedPage;
    use libl4::rpc::EndpointTransport;
    use libl4::{println, start};

    include!(concat!(env!("OUT_DIR"), "/greeter.rs"));
    use greeter::GreeterClient;

    libl4::uses!(greeter::INTERFACE, libl4::idl::console::INTERFACE);

    pub fn run() -> u8 {
        let Ok(ep) = start::client("greeter") else { return 1 };
        let g = GreeterClient::new(EndpointTransport { ep: ep.0 });
        match g.greet("world") {
            Ok(text) => println!("{text}"),
            Err(e) => println!("greet failed: {e:?}"),
        }

        // The same through a page of this program's memory, lent for the call.
        let Ok(mut heap) = Heap::from_start() else { return 1 };
        let Ok(mut page) = SharedPage::new(&mut heap) else {
            return 1;
        };
        let _ = page.write(0, b"lease\0");
        let Ok(lease) = page.lease(0, 64) else { return 1 };
        match g.greet_in_place(lease) {
            Ok(n) => {
                let mut text = [0u8; 64];
                let n = (n as usize).min(text.len());
                let _ = page.read(0, &mut text[..n]);
                println!("{}", core::str::from_utf8(&text[..n]).unwrap_or("?"));
            }
            Err(e) => println!("greet_in_place failed: {e:?}"),
        }
        0
    }
}

libl4::main!(app::run);
