//! The VM control interface's test (`README.md`): drives the VM behind its `vmm`
//! channel through `start`, `stop`, `state`, `exits` and `exit_status`, and prints
//! `vmctl: N passed, M failed`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::rpc::{CallError, EndpointTransport, Transport, UNKNOWN_METHOD};
    use libl4::time::{counter, us_to_ticks};
    use libl4::{println, start, syscall};

    include!(concat!(env!("OUT_DIR"), "/vmm.rs"));
    use vmm::{VmmClient, VmmError};

    libl4::uses!(vmm::INTERFACE, libl4::idl::console::INTERFACE);

    /// `state()`'s values.
    const NOT_STARTED: u8 = 0;
    const RUNNING: u8 = 1;
    const STOPPED: u8 = 2;

    /// How long the guest may take to make an exit once running (it makes one a
    /// millisecond).
    const PATIENCE_US: u64 = 1_000_000;

    type Client = VmmClient<EndpointTransport>;
    type R = Result<(), &'static str>;

    fn check(cond: bool, what: &'static str) -> R {
        if cond { Ok(()) } else { Err(what) }
    }

    fn refused(r: Result<(), CallError<VmmError>>, e: VmmError) -> bool {
        r == Err(CallError::Remote(e))
    }

    /// The VM's exit count once it passes `than`, within `us` (yielding meanwhile:
    /// the VM's VMM and vCPU run above this program, on its core); `None` if it does not.
    fn exits_above(c: Client, than: u64, us: u64) -> Option<u64> {
        let until = counter() + us_to_ticks(us);
        loop {
            let n = c.exits().ok()?;
            if n > than {
                return Some(n);
            }
            if counter() > until {
                return None;
            }
            syscall::yield_now();
        }
    }

    fn not_started(c: Client) -> R {
        check(c.state() == Ok(NOT_STARTED), "state() is 0 before the first start")?;
        check(c.exits() == Ok(0), "no exits before the first start")?;
        check(
            refused(c.stop(), VmmError::NoChange),
            "stop() of a VM never started: NoChange",
        )?;
        check(
            c.exit_status() == Err(CallError::Remote(VmmError::NotEnded)),
            "exit_status() before the end: NotEnded",
        )
    }

    fn starts(c: Client) -> R {
        check(c.start() == Ok(()), "start()")?;
        check(c.state() == Ok(RUNNING), "state() is 1 once started")?;
        check(
            refused(c.start(), VmmError::NoChange),
            "start() of a running VM: NoChange",
        )?;
        check(
            exits_above(c, 1, PATIENCE_US).is_some(),
            "the guest makes exits once started",
        )
    }

    fn stops(c: Client) -> R {
        check(c.stop() == Ok(()), "stop()")?;
        check(c.state() == Ok(STOPPED), "state() is 2 once stopped")?;
        check(
            refused(c.stop(), VmmError::NoChange),
            "stop() of a stopped VM: NoChange",
        )?;
        let before = c.exits().map_err(|_| "exits()")?;
        check(
            exits_above(c, before, 5_000).is_none(),
            "a stopped guest makes no exits (5 ms)",
        )
    }

    fn starts_again(c: Client) -> R {
        let before = c.exits().map_err(|_| "exits()")?;
        check(c.start() == Ok(()), "start() again")?;
        check(c.state() == Ok(RUNNING), "state() is 1 again")?;
        check(
            exits_above(c, before, PATIENCE_US).is_some(),
            "the guest goes on after start()",
        )
    }

    fn bad_messages(c: Client, t: EndpointTransport) -> R {
        let code = t.call(99, &[1, 2, 3], &[], |code, _| code).map_err(|_| "call")?;
        check(code == UNKNOWN_METHOD, "an unknown label is refused")?;
        let code = t
            .call(vmm::label::STATE, &[0; 40], &[], |code, _| code)
            .map_err(|_| "call")?;
        check(code == 0, "a request with extra words is answered")?;
        check(c.state() == Ok(RUNNING), "the VMM still answers")?;
        // Leave it stopped: it costs nothing then.
        check(c.stop() == Ok(()), "stop() at the end")
    }

    pub fn run() -> u8 {
        let Ok(ep) = start::client("vmm") else {
            println!("vmctl: no `vmm` channel");
            return 1;
        };
        let t = EndpointTransport { ep: ep.0 };
        let c = VmmClient::new(t);
        let cases: [(&str, &dyn Fn() -> R); 5] = [
            ("not started", &|| not_started(c)),
            ("start", &|| starts(c)),
            ("stop", &|| stops(c)),
            ("start again", &|| starts_again(c)),
            ("bad messages", &|| bad_messages(c, t)),
        ];
        println!("1..{}", cases.len());
        let mut failed = 0;
        for (i, (name, case)) in cases.iter().enumerate() {
            match case() {
                Ok(()) => println!("ok {} - {name}", i + 1),
                Err(why) => {
                    failed += 1;
                    println!("not ok {} - {name}: {why}", i + 1);
                }
            }
        }
        println!("vmctl: {} passed, {failed} failed", cases.len() - failed);
        u8::from(failed != 0)
    }
}

libl4::main!(app::run);
