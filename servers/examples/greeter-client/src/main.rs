#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
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
        0
    }
}

libl4::main!(app::run);
