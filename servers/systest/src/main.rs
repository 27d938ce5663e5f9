//! The system test: a server in the default image that checks, from user level, that
//! the root server built the system the description names, and then ends the run
//! (`halt_on_exit`). It runs at the lowest priority, after the other servers are idle.
//!
//! It checks its start info, the console (prefixes are checked by the harness; bad
//! messages and focus here), typed input routed to the focused client, the example Kv
//! server (badge identity), shared memory, and supervision: a server that faults is
//! reported by the root server and its caller gets an error instead of hanging. It
//! prints `systest: N passed, M failed` (after `systest: K skipped` if any were).
//!
//! The input case asks for a line and prints the line it read, whatever it is; the test
//! harness, which knows what it typed, compares the two (`cargo xtask test`). When
//! nobody types within 10 s the case is skipped, not failed, so the demo passes with
//! nobody at the keyboard or with its input from a pipe or `/dev/null`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use gaon_abi::system::GrantKind;
    use libl4::idl::console::{self, ConsoleClient, ConsoleError};
    use libl4::mmio::Mmio;
    use libl4::rpc::{CallError, EndpointTransport, Transport};
    use libl4::{Error, println, start};

    include!(concat!(env!("OUT_DIR"), "/fragile.rs"));
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
    use fragile::FragileClient;
    use kv::{KvClient, KvError};

    libl4::uses!(console::INTERFACE, kv::INTERFACE, fragile::INTERFACE);

    /// Timer ticks to wait for typed input (10 s at the kernel's 100 Hz tick).
    const INPUT_TICKS: u64 = 1000;
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
        for name in ["console", "kv", "fragile"] {
            let c = start::named(name).ok_or("a channel is missing from the start info")?;
            check(c.kind == GrantKind::Client as u32, "channels are client endpoints")?;
            check(c.size != 0, "client endpoints carry their badge")?;
        }
        check(start::serve("kv").is_err(), "no serve end of someone else's channel")?;
        check(info.caps().len() == 4, "exactly the 3 channels and 1 shared region")
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
        check(c.focus().is_ok(), "focus")?;
        println!("type a line and press Enter (within 10 s; otherwise this check is skipped)");
        let start = libl4::syscall::debug_ticks().map_err(|_| "ticks")?;
        let mut line: heapless::Vec<u8, SHOWN> = heapless::Vec::new();
        let mut len = 0usize;
        loop {
            match c.read(32) {
                Ok(bytes) => {
                    check(!bytes.is_empty(), "a read that succeeds returns bytes")?;
                    for &b in &bytes {
                        if b == b'\n' {
                            println!("read a line of {len} bytes: \"{}\"", escaped(&line));
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
            if libl4::syscall::debug_ticks().map_err(|_| "ticks")? > start + INPUT_TICKS {
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
        ("kv keeps clients apart by badge", kv_badges_keep_clients_apart),
        ("shared memory is shared", shared_memory),
        (
            "a faulting server is reclaimed; its caller gets an error",
            faulting_server_is_reclaimed,
        ),
    ];

    pub fn run() -> u8 {
        let (mut passed, mut failed, mut skipped) = (0u8, 0u8, 0u8);
        let (console, rest) = TESTS.split_at(3);
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
