//! The system test: a server in the default image that checks, from user level, that
//! the root server built the system the description names, and then ends the run
//! (`halt_on_exit`). It runs at the lowest priority, after the other servers are idle.
//!
//! It checks its start info, the console (prefixes are checked by the harness; bad
//! messages, focus and the notification it signals input with here), typed input routed
//! to the focused client (and signalled to it), the example Kv
//! server (badge identity), shared memory, hostile messages to every server it can
//! reach (each must answer or drop them and keep serving), leases to the greeter
//! (malformed ones refused, a real one through a page of its heap), and supervision: a
//! server that faults is reported by the root server and its caller gets an error
//! instead of hanging. It prints `systest: N passed, M failed` (after `systest: K
//! skipped` if any were).
//!
//! The input case asks for a line and prints the line it read, whatever it is; the test
//! harness, which knows what it typed, compares the two (`cargo xtask test`). When
//! nobody types within 10 s the case is skipped, not failed, so the demo passes with
//! nobody at the keyboard or with its input from a pipe or `/dev/null`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use gaon_abi::system::{GrantKind, server_slot};
    use libl4::alloc::Heap;
    use libl4::idl::console::{self, ConsoleClient, ConsoleError};
    use libl4::idl::supervisor;
    use libl4::lease::SharedPage;
    use libl4::mmio::Mmio;
    use libl4::rpc::{BAD_MESSAGE, CallError, EndpointTransport, Lease, Transport, UNKNOWN_METHOD};
    use libl4::{Error, println, start};
    use zerocopy::FromZeros;

    include!(concat!(env!("OUT_DIR"), "/fragile.rs"));
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
    include!(concat!(env!("OUT_DIR"), "/greeter.rs"));
    use fragile::FragileClient;
    use greeter::{GreetError, GreeterClient};
    use kv::{KvClient, KvError};

    libl4::uses!(
        console::INTERFACE,
        kv::INTERFACE,
        fragile::INTERFACE,
        greeter::INTERFACE
    );

    /// How long to wait for typed input (10 s).
    const INPUT_WAIT_US: u64 = 10_000_000;
    /// Bytes of the typed line shown in the output.
    const SHOWN: usize = 64;

    /// A case's failure: why.
    type R = Result<(), &'static str>;

    /// How the input case ended, if it did not fail.
    enum Input {
        /// A line arrived.
        Read,
        /// Nobody typed a line in time.
        Skipped,
    }

    fn check(cond: bool, what: &'static str) -> R {
        if cond { Ok(()) } else { Err(what) }
    }

    fn transport(name: &str) -> Result<EndpointTransport, &'static str> {
        start::client(name)
            .map(|e| EndpointTransport { ep: e.0 })
            .map_err(|_| "a channel the description names is missing")
    }

    fn start_info() -> R {
        let info = start::info().ok_or("no start info")?;
        check(start::name() == "systest", "my name is `systest`")?;
        for name in ["console", "kv", "fragile", "greeter"] {
            let c = start::named(name).ok_or("a channel is missing from the start info")?;
            check(c.kind == GrantKind::Client as u32, "channels are client endpoints")?;
            check(c.size != 0, "client endpoints carry their badge")?;
        }
        check(start::serve("kv").is_err(), "no serve end of someone else's channel")?;
        check(info.caps().len() == 5, "exactly the 4 channels and 1 shared region")
    }

    fn console_calls() -> R {
        let c = ConsoleClient::new(transport("console")?);
        check(c.set_name("systest").is_ok(), "set_name")?;
        check(
            c.write("console write works\n") == Ok(20),
            "write returns the bytes accepted",
        )?;
        check(
            c.write(core::str::from_utf8(&[b'x'; 513]).unwrap_or("")) == Err(CallError::TooLong),
            "the stub refuses text over the IDL bound",
        )
    }

    fn console_rejects_bad_messages() -> R {
        let t = transport("console")?;
        // A whole write request whose length word claims more than the 512 bytes the
        // IDL allows.
        let mut bad = [0u64; console::WriteRequest::WORDS];
        bad[0] = 4096;
        let code = t
            .call(console::label::WRITE, &bad, &[], |code, _| code)
            .map_err(|_| "call")?;
        check(code == libl4::rpc::BAD_MESSAGE, "oversized length is a bad message")?;
        let code = t
            .call(console::label::WRITE, &[1, 2], &[], |code, _| code)
            .map_err(|_| "call")?;
        check(code == libl4::rpc::BAD_MESSAGE, "truncated request is a bad message")?;
        let code = t.call(99, &[], &[], |code, _| code).map_err(|_| "call")?;
        check(code == libl4::rpc::UNKNOWN_METHOD, "unknown label")?;
        // The console still works afterwards.
        let c = ConsoleClient::new(t);
        check(c.write("still here\n").is_ok(), "console survives bad messages")
    }

    /// The console takes a notification to signal input with, and nothing else.
    fn console_notify_input() -> R {
        let t = transport("console")?;
        check(
            raw_call(t, console::label::NOTIFY_INPUT, &[], &[])? == BAD_MESSAGE,
            "notify_input without a capability",
        )?;
        let c = ConsoleClient::new(t);
        check(
            c.notify_input(server_slot::SUPERVISOR) == Err(CallError::Remote(ConsoleError::NotNotification)),
            "notify_input with an endpoint is refused",
        )?;
        check(
            c.notify_input(server_slot::NOTIFICATION).is_ok(),
            "notify_input with this server's notification",
        )?;
        check(
            c.notify_input(server_slot::NOTIFICATION).is_ok(),
            "notify_input again replaces the notification",
        )
    }

    /// A Call by hand: the reply's label (0, an error code or a runtime code).
    fn raw_call(t: EndpointTransport, label: u64, words: &[u64], caps: &[u64]) -> Result<u64, &'static str> {
        t.call(label, words, caps, |code, _| code)
            .map_err(|_| "a hostile call failed in the kernel (the server is gone?)")
    }

    /// Labels no interface here uses (method labels are 1, 2, ...; labels have 48 bits).
    const UNKNOWN_LABELS: [u64; 4] = [0, 99, 0xffff, (1 << 48) - 1];

    /// What every libl4 server must survive, whatever its interface: unknown labels
    /// (empty, in registers, and 120 words long), requests cut short for each method in
    /// `with_args` (methods that take arguments), the same sent without waiting, and a
    /// capability nobody asked for. Each Call must be answered; each Send dropped.
    fn hostile(t: EndpointTransport, with_args: &[u64]) -> R {
        let long = [0xdead_beef_u64; 120];
        for label in UNKNOWN_LABELS {
            check(raw_call(t, label, &[], &[])? == UNKNOWN_METHOD, "an unknown label")?;
            check(
                raw_call(t, label, &long, &[])? == UNKNOWN_METHOD,
                "an unknown 120-word message",
            )?;
            check(t.send(label, &[1, 2, 3], &[]).is_ok(), "an unknown label sent")?;
        }
        for &label in with_args {
            check(
                raw_call(t, label, &[], &[])? == BAD_MESSAGE,
                "a request with no arguments",
            )?;
            check(t.send(label, &[], &[]).is_ok(), "a truncated request sent")?;
        }
        check(
            raw_call(t, UNKNOWN_LABELS[1], &[], &[server_slot::NOTIFICATION])? == UNKNOWN_METHOD,
            "an unknown label with a capability",
        )
    }

    fn console_survives_hostile_clients() -> R {
        let t = transport("console")?;
        hostile(
            t,
            &[console::label::WRITE, console::label::READ, console::label::SET_NAME],
        )?;
        // A one-way method called with Call: the caller gets an (empty) answer and the
        // console does not spin on its reply object.
        check(
            raw_call(t, console::label::FOCUS, &[], &[])? == 0,
            "focus called with Call",
        )?;
        check(
            raw_call(t, console::label::FOCUS, &[1, 2, 3, 4, 5], &[])? == 0,
            "focus called with Call and stray words",
        )?;
        // A two-way method sent without waiting: handled, the reply dropped.
        let c = ConsoleClient::new(t);
        let mut req = console::WriteRequest::new_zeroed();
        let text = b"sent without waiting\n";
        req.text[..text.len()].copy_from_slice(text);
        req.text_len = text.len() as u64;
        check(t.send(console::label::WRITE, req.as_words(), &[]).is_ok(), "write sent")?;
        check(c.write("still serving\n") == Ok(14), "the console still answers")
    }

    fn kv_survives_hostile_clients() -> R {
        let t = transport("kv")?;
        hostile(t, &[kv::label::PUT, kv::label::GET])?;
        // A two-way method sent without waiting is still done.
        let mut req = kv::PutRequest::new_zeroed();
        req.key[..4].copy_from_slice(b"sent");
        req.key_len = 4;
        req.value = 5;
        check(t.send(kv::label::PUT, req.as_words(), &[]).is_ok(), "put sent")?;
        check(t.send(kv::label::LEN, &[], &[]).is_ok(), "len sent")?;
        let kv = KvClient::new(t);
        check(kv.get("sent") == Ok(5), "kv still answers, and did the put it was sent")
    }

    fn greeter_survives_hostile_clients() -> R {
        let t = transport("greeter")?;
        hostile(t, &[greeter::label::GREET, greeter::label::GREET_IN_PLACE])?;
        let g = GreeterClient::new(t);
        check(
            g.greet("systest")
                .is_ok_and(|s| s.as_str().starts_with("hello systest (#")),
            "the greeter still answers",
        )
    }

    fn leases_are_checked_and_work() -> R {
        let t = transport("greeter")?;
        let g = GreeterClient::new(t);
        let mut heap = Heap::from_start().map_err(|_| "the system test has a heap")?;
        let mut page = SharedPage::new(&mut heap).map_err(|_| "a page to lend")?;
        // A lease argument without its frame: refused (the greeter prints why).
        let mut req = greeter::GreetInPlaceRequest::new_zeroed();
        req.page_len = 64;
        check(
            raw_call(t, greeter::label::GREET_IN_PLACE, req.as_words(), &[])? == BAD_MESSAGE,
            "a lease without its frame",
        )?;
        // A window past the end of the frame, and a capability that is not a frame.
        let past = Lease {
            frame: page.frame().0,
            offset: 4000,
            len: 200,
        };
        check(
            g.greet_in_place(past) == Err(CallError::BadMessage),
            "a window past the frame",
        )?;
        let not_a_frame = Lease {
            frame: server_slot::NOTIFICATION,
            offset: 0,
            len: 64,
        };
        check(
            g.greet_in_place(not_a_frame) == Err(CallError::Remote(GreetError::BadLease)),
            "a lease of something that is not a frame",
        )?;
        // A capability with `greet`, which takes none: dropped, so the next one arrives.
        let mut greet = greeter::GreetRequest::new_zeroed();
        greet.name[..1].copy_from_slice(b"x");
        greet.name_len = 1;
        check(
            raw_call(t, greeter::label::GREET, greet.as_words(), &[server_slot::NOTIFICATION])? == 0,
            "a capability nobody asked for",
        )?;
        // The real thing: the greeting replaces the name in the lent page.
        page.write(0, b"lease\0").map_err(|_| "write the page")?;
        let lease = page.lease(0, 64).map_err(|_| "a window of the page")?;
        let n = g.greet_in_place(lease).map_err(|_| "greet_in_place")? as usize;
        let mut text = [0u8; 64];
        page.read(0, &mut text[..n.min(64)]).map_err(|_| "read the page")?;
        check(text.starts_with(b"hello lease (#"), "the greeting is in the page")?;
        // A window too small for the greeting.
        page.write(0, b"lease\0").map_err(|_| "write the page")?;
        let small = page.lease(0, 8).map_err(|_| "a window of the page")?;
        check(
            g.greet_in_place(small) == Err(CallError::Remote(GreetError::TooSmall)),
            "a window too small",
        )
    }

    fn fragile_survives_hostile_clients() -> R {
        let t = transport("fragile")?;
        // Not `crash` (label 3, no arguments): that one is for the supervision test.
        hostile(t, &[fragile::label::PING, fragile::label::PEEK])?;
        check(t.send(fragile::label::PING, &[1], &[]).is_ok(), "ping sent")?;
        check(FragileClient::new(t).ping(6) == Ok(7), "fragile still answers")
    }

    fn root_survives_hostile_clients() -> R {
        // The root server's supervisor endpoint. `exit` is one-way; calling it well
        // formed would end this test (the root server reclaims the caller), so only
        // malformed ones: an empty request and a status that is not a u8, called and
        // sent.
        let t = EndpointTransport {
            ep: server_slot::SUPERVISOR,
        };
        hostile(t, &[supervisor::label::EXIT])?;
        check(
            raw_call(t, supervisor::label::EXIT, &[256], &[])? == BAD_MESSAGE,
            "exit with a status over 255, called",
        )?;
        check(t.send(supervisor::label::EXIT, &[256], &[]).is_ok(), "the same, sent")?;
        check(
            raw_call(t, UNKNOWN_LABELS[1], &[], &[])? == UNKNOWN_METHOD,
            "the root server still answers",
        )
    }

    /// `bytes` as text for the log: printable ASCII as is, anything else (and `"`, `\`)
    /// as `\xNN`, so the harness can compare exactly what arrived.
    fn escaped(bytes: &[u8]) -> heapless::String<{ 4 * SHOWN }> {
        use core::fmt::Write;
        let mut s = heapless::String::new();
        for &b in bytes {
            let _ = if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                s.push(b as char).map_err(|_| core::fmt::Error)
            } else {
                write!(s, "\\x{b:02x}")
            };
        }
        s
    }

    fn console_input() -> Result<Input, &'static str> {
        let c = ConsoleClient::new(transport("console")?);
        check(
            matches!(c.read(16), Err(CallError::Remote(ConsoleError::NotFocused))),
            "no input before taking the focus",
        )?;
        // The console has this server's notification (`console_notify_input`) but does
        // not signal it before the focus comes here: forget anything pending.
        let _ = libl4::ipc::poll(server_slot::NOTIFICATION);
        check(c.focus().is_ok(), "focus")?;
        println!("type a line and press Enter (within 10 s; otherwise this check is skipped)");
        let deadline = libl4::time::counter() + libl4::time::us_to_ticks(INPUT_WAIT_US);
        let mut line: heapless::Vec<u8, SHOWN> = heapless::Vec::new();
        let mut len = 0usize;
        loop {
            match c.read(32) {
                Ok(bytes) => {
                    check(!bytes.is_empty(), "a read that succeeds returns bytes")?;
                    for &b in &bytes {
                        if b == b'\n' {
                            println!("read a line of {len} bytes: \"{}\"", escaped(&line));
                            // The console signals when input starts waiting (or the
                            // focus arrives with input waiting), before it answers a
                            // read with it; nothing else signals this notification, and
                            // calls do not take its signals (only a receive would).
                            check(
                                libl4::ipc::poll(server_slot::NOTIFICATION).is_ok(),
                                "the console signalled the notification it was given",
                            )?;
                            return Ok(Input::Read);
                        }
                        check(b != b'\r', "the console turns Enter (CR) into a newline")?;
                        let _ = line.push(b);
                        len += 1;
                    }
                }
                Err(CallError::Remote(ConsoleError::Empty)) => libl4::syscall::yield_now(),
                Err(_) => return Err("read failed"),
            }
            if libl4::time::counter() > deadline {
                println!("no line typed within 10 s ({len} bytes without Enter): input check skipped");
                return Ok(Input::Skipped);
            }
        }
    }

    fn kv_badges_keep_clients_apart() -> R {
        let kv = KvClient::new(transport("kv")?);
        // The example client stored `apples` under its own badge; this client sees none.
        check(
            kv.get("apples") == Err(CallError::Remote(KvError::NotFound)),
            "another client's key is invisible",
        )?;
        check(kv.put("apples", 1).is_ok(), "put")?;
        check(kv.get("apples") == Ok(1), "get what was put")?;
        check(kv.len() == Ok(1), "len counts this client's keys only")
    }

    fn shared_memory() -> R {
        let ring = Mmio::named("ring").map_err(|_| "no `ring` mapping")?;
        check(ring.size() == 4096, "one page")?;
        ring.write(8, 0x5eed_cafe);
        let f = FragileClient::new(transport("fragile")?);
        check(
            f.peek(8) == Ok(0x5eed_cafe),
            "the other server reads what this one wrote",
        )
    }

    fn faulting_server_is_reclaimed() -> R {
        let f = FragileClient::new(transport("fragile")?);
        check(f.ping(41) == Ok(42), "the server answers before it crashes")?;
        check(
            f.crash() == Err(CallError::Kernel(Error::Cancelled)),
            "the caller of a server that faults gets Cancelled",
        )?;
        check(
            matches!(f.ping(1), Err(CallError::Kernel(_))),
            "later calls to the reclaimed server fail at once",
        )
    }

    type Test = (&'static str, fn() -> R);

    /// The input case, run apart from the others (between the console cases and the
    /// rest) because it may be skipped.
    const INPUT_CASE: &str = "console routes typed input to the focused client";

    const TESTS: &[Test] = &[
        ("start info lists what the description gives", start_info),
        ("console calls through the generated stubs", console_calls),
        (
            "console rejects bad messages and survives",
            console_rejects_bad_messages,
        ),
        (
            "console takes a notification to signal input with",
            console_notify_input,
        ),
        ("kv keeps clients apart by badge", kv_badges_keep_clients_apart),
        ("shared memory is shared", shared_memory),
        (
            "the console answers hostile messages and keeps serving",
            console_survives_hostile_clients,
        ),
        (
            "kv answers hostile messages and keeps serving",
            kv_survives_hostile_clients,
        ),
        (
            "the greeter answers hostile messages and keeps serving",
            greeter_survives_hostile_clients,
        ),
        ("leases are checked, and work", leases_are_checked_and_work),
        (
            "fragile answers hostile messages and keeps serving",
            fragile_survives_hostile_clients,
        ),
        (
            "the root server answers hostile messages and keeps serving",
            root_survives_hostile_clients,
        ),
        (
            "a faulting server is reclaimed; its caller gets an error",
            faulting_server_is_reclaimed,
        ),
    ];

    pub fn run() -> u8 {
        let (mut passed, mut failed, mut skipped) = (0u8, 0u8, 0u8);
        let (console, rest) = TESTS.split_at(4);
        let mut record = |name: &str, result: R| match result {
            Ok(()) => passed += 1,
            Err(why) => {
                println!("FAIL {name}: {why}");
                failed += 1;
            }
        };
        for (name, t) in console {
            record(name, t());
        }
        match console_input() {
            Ok(Input::Read) => record(INPUT_CASE, Ok(())),
            Ok(Input::Skipped) => skipped += 1,
            Err(why) => record(INPUT_CASE, Err(why)),
        }
        for (name, t) in rest {
            record(name, t());
        }
        if skipped > 0 {
            println!("systest: {skipped} skipped (nobody typed a line)");
        }
        println!("systest: {passed} passed, {failed} failed");
        failed
    }
}

libl4::main!(app::run);
