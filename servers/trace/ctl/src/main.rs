//! The trace control interfaces' test (docs/trace.md, "Control"): drives the trace
//! server behind its `trace` channel (`idl/trace.idl`: classes, stop, start, flush) and,
//! if it has one, the `vmm` channel of a Linux VM with a `__switch_to` probe
//! (`idl/vmm.idl`: the probe, once hit, taken out for a second and put back), and prints
//! `tracectl: N passed, M failed`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::gaon_abi::trace::{BOOT_CLASSES, Class};
    use libl4::rpc::{CallError, EndpointTransport};
    use libl4::time::{counter, us_to_ticks};
    use libl4::{println, start, syscall};

    include!(concat!(env!("OUT_DIR"), "/trace.rs"));
    include!(concat!(env!("OUT_DIR"), "/vmm.rs"));
    use trace::{TraceClient, TraceError};
    use vmm::{VmmClient, VmmError};

    libl4::uses!(trace::INTERFACE, libl4::idl::console::INTERFACE);
    libl4::uses_optional!(vmm::INTERFACE);

    /// The probe the VM behind `vmm` has.
    const PROBE: &str = "__switch_to";
    /// How long the probe stays out.
    const OUT_US: u64 = 1_000_000;
    /// How long Linux may take to hit the probe (it boots on the host's clock).
    const PATIENCE_US: u64 = 4_000_000;

    type Trace = TraceClient<EndpointTransport>;
    type Vmm = VmmClient<EndpointTransport>;
    type R = Result<(), &'static str>;

    fn check(cond: bool, what: &'static str) -> R {
        if cond { Ok(()) } else { Err(what) }
    }

    fn classes(t: Trace) -> R {
        check(
            t.set_classes(1 << 40) == Err(CallError::Remote(TraceError::BadClasses)),
            "set_classes with a bit that names no class: BadClasses",
        )?;
        let before = t.set_classes(Class::SCHED.bits()).map_err(|_| "set_classes(sched)")?;
        check(before & BOOT_CLASSES.bits() != 0, "the classes before include thread")?;
        let now = t.set_classes(before).map_err(|_| "set_classes back")?;
        check(
            now == Class::SCHED.bits() | BOOT_CLASSES.bits(),
            "thread is always added",
        )
    }

    fn stop_start(t: Trace) -> R {
        check(t.stop() == Ok(()), "stop()")?;
        check(
            t.stop() == Err(CallError::Remote(TraceError::NoChange)),
            "stop() while stopped: NoChange",
        )?;
        check(t.start() == Ok(()), "start()")?;
        check(
            t.start() == Err(CallError::Remote(TraceError::NoChange)),
            "start() while recording: NoChange",
        )
    }

    fn flush(t: Trace) -> R {
        let first = t.flush().map_err(|_| "flush()")?;
        check(first > 0, "flush() has written records")?;
        let second = t.flush().map_err(|_| "flush() again")?;
        check(second >= first, "the count does not go back")
    }

    /// Wait `us` (yielding: this program runs below what it watches).
    fn wait(us: u64) {
        let until = counter() + us_to_ticks(us);
        while counter() < until {
            syscall::yield_now();
        }
    }

    /// The probe's hits once they pass `than`, within `us`; `None` if they do not.
    fn hits_above(v: Vmm, than: u64, us: u64) -> Option<u64> {
        let until = counter() + us_to_ticks(us);
        loop {
            let n = v.probe_hits(PROBE).ok()?;
            if n > than {
                return Some(n);
            }
            if counter() > until {
                return None;
            }
            wait(1_000);
        }
    }

    fn probe(v: Vmm) -> R {
        check(
            v.remove_probe("schedule") == Err(CallError::Remote(VmmError::NoProbe)),
            "remove_probe of a probe the VM does not have: NoProbe",
        )?;
        check(
            v.probe_hits("schedule") == Err(CallError::Remote(VmmError::NoProbe)),
            "probe_hits of a probe the VM does not have: NoProbe",
        )?;
        // Linux switches tasks once its scheduler runs.
        let hits = hits_above(v, 0, PATIENCE_US).ok_or("the probe is hit once Linux runs")?;
        check(v.remove_probe(PROBE) == Ok(()), "remove_probe(__switch_to)")?;
        check(
            v.remove_probe(PROBE) == Err(CallError::Remote(VmmError::NoChange)),
            "remove_probe again: NoChange",
        )?;
        let out = v.probe_hits(PROBE).map_err(|_| "probe_hits")?;
        check(out >= hits, "hits do not go back")?;
        wait(OUT_US);
        check(v.probe_hits(PROBE) == Ok(out), "no hits while the probe is out")?;
        check(v.add_probe(PROBE) == Ok(()), "add_probe(__switch_to)")?;
        // Armed again at the guest's next exit (the VMM says so on the console, which
        // the test reads): when Linux switches next depends on where its boot is.
        check(
            v.add_probe(PROBE) == Err(CallError::Remote(VmmError::NoChange)),
            "add_probe again: NoChange",
        )
    }

    pub fn run() -> u8 {
        let Ok(ep) = start::client("trace") else {
            println!("tracectl: no `trace` channel");
            return 1;
        };
        let t = TraceClient::new(EndpointTransport { ep: ep.0 });
        let v = start::client("vmm")
            .ok()
            .map(|e| VmmClient::new(EndpointTransport { ep: e.0 }));
        let mut cases: heapless::Vec<(&str, R), 4> = heapless::Vec::new();
        let _ = cases.push(("classes", classes(t)));
        let _ = cases.push(("stop and start", stop_start(t)));
        let _ = cases.push(("flush", flush(t)));
        if let Some(v) = v {
            let _ = cases.push(("a probe out and in again", probe(v)));
        }
        println!("1..{}", cases.len());
        let mut failed = 0;
        for (i, (name, r)) in cases.iter().enumerate() {
            match r {
                Ok(()) => println!("ok {} - {name}", i + 1),
                Err(why) => {
                    failed += 1;
                    println!("not ok {} - {name}: {why}", i + 1);
                }
            }
        }
        println!("tracectl: {} passed, {failed} failed", cases.len() - failed);
        u8::from(failed != 0)
    }
}

libl4::main!(app::run);
