//! The kernel fuzzer: the root server of the `fuzz` system (`cargo xtask fuzz`).
//!
//! An untrusted thread (`fuzzer`) holds a realistic set of capabilities in a CSpace of
//! its own (its CNode and Tcb, untyped memory, endpoints, notifications, a reply
//! object, frames, page tables, a VSpace, a second thread, scheduling contexts and
//! their control, a second CNode, IRQ handlers where the board has lines) and makes
//! random syscalls and invocations; the second thread runs the same code in the same
//! CSpace (the fuzzer may suspend, reconfigure or destroy it at any point). A partner
//! thread echoes what they send on its endpoint, and a liveness thread counts its turns
//! on the CPU. All of them share one priority with this supervisor. The fuzzer, the
//! second thread and the partner run on the other cores that are up (one each, in
//! turn), so their calls race the supervisor's on core 0 and each other's; the
//! fuzzer may move them (affinity, its SchedControl, which is the second thread's
//! core's). The supervisor:
//!
//! - every `check_every` calls (the fuzzer waits at that count), runs the kernel's
//!   consistency check (`DebugCheckConsistency`) and puts the fuzzer's thread back in
//!   shape (CSpace, VSpace, IPC buffer, priority);
//! - every `world` calls destroys the whole world (one revoke of the untyped it was
//!   carved from), checks again, and builds a fresh one;
//! - when the fuzzer stops making progress (it blocked, stopped, faulted, lowered its
//!   priority or ran out of budget) resumes it, then restores it, then restarts it, and
//!   as a last resort rebuilds its world;
//! - prints a progress line every `report_every` calls and requires the liveness
//!   thread to have run in between.
//!
//! At the end it prints the rate, what the calls returned, and `N passed, N failed`
//! (consistency checks), and halts with status 0 only if every check passed, the
//! liveness thread always progressed and every call was made.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[allow(unsafe_code, reason = "raw syscalls, the counter and the IPC buffer")]
mod fuzzer;
#[cfg(target_os = "none")]
mod params;
#[cfg(target_os = "none")]
mod world;

#[cfg(target_os = "none")]
mod app {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use gaon_abi::bootinfo::slot as rs;
    use libl4::alloc::{Allocator, Slots, VaRange};
    use libl4::cap::{CNode, Untyped, VSpace};
    use libl4::syscall::{debug_check_consistency, spin_hint, yield_now};
    use libl4::{Error, Label, debug_println};

    use crate::fuzzer::{self, CALLS, CALLS_BY, STOP, counter, counter_hz};
    use crate::params::{self, Params};
    use crate::world::{self, PRIO, ROOT_TCB, World};

    libl4::main!(main);

    /// Where the supervisor maps what it needs (stacks, IPC buffers) in the address
    /// space it shares with the fuzzing threads: away from every address their
    /// generator makes (`fuzzer::Fuzzer::edge`), so a stack pointer or PC they write
    /// into a thread's registers cannot land in the supervisor's memory.
    const MAP_BASE: u64 = 0x30_0000_0000;
    const MAP_END: u64 = 0x38_0000_0000;
    /// Rebuilds in a row without a call made before the run gives up.
    const MAX_BARREN_WORLDS: u32 = 20;

    /// Turns the liveness thread had on the CPU.
    static LIVE: AtomicU64 = AtomicU64::new(0);

    extern "C" fn live(_: u64) -> ! {
        loop {
            LIVE.fetch_add(1, Relaxed);
            yield_now();
        }
    }

    fn main() -> u8 {
        let Some(bi) = libl4::start::boot_info() else {
            debug_println!("fuzz: no boot info");
            return 2;
        };
        let p = match libl4::start::boot_module(params::MODULE).map_or(Ok(Params::DEFAULT), Params::parse) {
            Ok(p) => p,
            Err(e) => {
                debug_println!("fuzz: bad `{}` module: {e}", params::MODULE);
                return 2;
            }
        };
        debug_println!(
            "fuzz: seed {:#x}, {} calls, a consistency check every {} calls, a new world every {}",
            p.seed,
            p.calls,
            p.check_every,
            p.world
        );
        match run(bi, &p) {
            Ok(status) => status,
            Err(e) => {
                debug_println!("fuzz: the supervisor failed: {e:?}");
                2
            }
        }
    }

    /// What the supervisor counts.
    #[derive(Debug, Default)]
    struct Tally {
        passed: u64,
        failed: u64,
        repairs: u64,
        rebuilds: u64,
        live_failed: u64,
    }

    /// Check the kernel's structures and count the result; false if it failed (the
    /// kernel has printed what it found).
    fn check(t: &mut Tally, seed: u64, when: &str) -> Result<bool, Error> {
        let r = debug_check_consistency(true)?;
        if r.problems == 0 {
            t.passed += 1;
            return Ok(true);
        }
        t.failed += 1;
        debug_println!(
            "fuzz: CHECK FAILED {when}after call {} (seed {seed:#x}): {} problems, the first code {} at {:#x}",
            CALLS.load(Relaxed),
            r.problems,
            r.first >> 48,
            r.first & ((1 << 48) - 1)
        );
        Ok(false)
    }

    /// What the supervisor knows about the fuzzer's progress (the other fuzzing thread
    /// is left as it is: blocked, stopped or destroyed until the next world).
    #[derive(Debug, Default)]
    struct Watch {
        calls: u64,
        idle_turns: u32,
        blocked_turns: u32,
        stuck: u32,
    }

    impl Watch {
        /// Look at the fuzzer after the others had a turn. If it made no call since:
        /// blocked or stopped (after a second turn, the other thread's chance to wake
        /// it), resume it, and each time that does not help do more: restore its
        /// thread, then restart it. Lowered its priority: raise it again. Runnable but not running
        /// (it is queued ahead of the supervisor, which yields, so it would have run):
        /// out of budget, a scheduling context it bound itself to. False: nothing
        /// helps, rebuild the world.
        fn look(&mut self, wd: &World, t: &mut Tally) -> Result<bool, Error> {
            let calls = CALLS_BY[0].load(Relaxed);
            if calls != self.calls {
                *self = Self {
                    calls,
                    ..Self::default()
                };
                return Ok(true);
            }
            let f = wd.fuzzer();
            let (state, prio, _) = f.state()?;
            if state == gaon_abi::invocation::ThreadState::Running as u64 {
                self.blocked_turns = 0;
                if prio < PRIO {
                    t.repairs += 1;
                    f.set_priority(PRIO, ROOT_TCB)?;
                    return Ok(true);
                }
                self.idle_turns += 1;
                return Ok(self.idle_turns < 3);
            }
            self.blocked_turns += 1;
            if self.blocked_turns < 2 {
                return Ok(true);
            }
            self.blocked_turns = 0;
            self.stuck += 1;
            t.repairs += 1;
            let _ = f.suspend();
            let repaired = match self.stuck {
                1 => Ok(()),
                2 => wd.restore(f, false),
                3 => wd.restore(f, true),
                _ => Err(Error::IllegalOperation),
            };
            Ok(repaired.is_ok() && f.resume().is_ok())
        }
    }

    fn splitmix(seed: u64) -> u64 {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) | 1
    }

    #[allow(clippy::too_many_lines, reason = "the supervisor's loop, in order")]
    #[allow(
        clippy::many_single_char_names,
        reason = "a, t, p, c, f: allocator, tally, params, calls, fuzzer"
    )]
    fn run(bi: &'static gaon_abi::bootinfo::BootInfo, p: &Params) -> Result<u8, Error> {
        let mut a = Allocator::new(
            CNode(rs::CNODE),
            VSpace(rs::VSPACE),
            Slots::new(bi.empty.start, bi.empty.end),
            VaRange::new(MAP_BASE, MAP_END),
        );
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        for (i, d) in bi.untyped[..n.min(bi.untyped.len())].iter().enumerate() {
            a.add_untyped(Untyped(bi.untyped_slots.start + i as u64), d)?;
        }
        ROOT_TCB.set_priority(PRIO, ROOT_TCB)?;
        let mut wd = World::new(&mut a, bi)?;
        a.spawn(live, 0, PRIO, 0, ROOT_TCB)?;
        fuzzer::RNG.store(splitmix(p.seed), Relaxed);
        let mut t = Tally::default();
        let hz = counter_hz().max(1);
        let ms = |ticks: u64| ticks * 1000 / hz;
        if !check(&mut t, p.seed, "at boot ")? {
            return Ok(1);
        }
        let mut next_check = p.check_every.min(p.calls);
        let mut next_world = p.world;
        let mut next_report = p.report_every;
        STOP.store(next_check, Relaxed);
        wd.build()?;
        let t0 = counter();
        let r = debug_check_consistency(true)?;
        debug_println!(
            "fuzz: the consistency check walks {} slots and {} capabilities in {} us",
            r.slots,
            r.caps,
            (counter() - t0) * 1_000_000 / hz
        );
        let start = counter();
        let (mut last_calls, mut barren, mut watch) = (0, 0u32, Watch::default());
        let (mut window, mut slow) = ((start, 0), 0u32);
        let (mut last_live, mut last_report_time) = (LIVE.load(Relaxed), start);
        // The first failed check ends the run: what follows would only build on a
        // broken kernel.
        let mut last_look = start;
        let sound = loop {
            // The others' turn: on this core (a yield), and on QEMU's other cores (TCG
            // runs the cores in turn, switching at a `yield` hint).
            yield_now();
            spin_hint();
            let c = CALLS.load(Relaxed);
            let now = counter();
            if c >= next_check {
                if !check(&mut t, p.seed, "")? {
                    break false;
                }
                if c >= p.calls {
                    break true;
                }
                if c >= next_world {
                    wd.teardown()?;
                    if !check(&mut t, p.seed, "after tearing a world down ")? {
                        break false;
                    }
                    wd.build()?;
                    next_world = c + p.world;
                } else if wd.restore(wd.fuzzer(), false).is_err() {
                    // The fuzzer holds its CSpace's last capability in its thread.
                    wd.teardown()?;
                    wd.build()?;
                }
                if c >= next_report || ms(now - last_report_time) > 10_000 {
                    let l = LIVE.load(Relaxed);
                    if l == last_live {
                        t.live_failed += 1;
                        debug_println!(
                            "fuzz: LIVENESS FAILED: the liveness thread did not run since the last report (call {c})"
                        );
                    }
                    let elapsed_ms = ms(now - start).max(1);
                    debug_println!(
                        "fuzz: {c} calls, {} calls/s, liveness {l} (+{}), checks {} passed, {} failed",
                        u128::from(c) * 1000 / u128::from(elapsed_ms),
                        l - last_live,
                        t.passed,
                        t.failed
                    );
                    last_live = l;
                    last_report_time = now;
                    next_report = c + p.report_every;
                }
                next_check = (c + p.check_every).min(p.calls);
                STOP.store(next_check, Relaxed);
                let now = counter();
                (window, watch) = ((now, c), Watch::default());
                continue;
            }
            // A world in which the fuzzers crawl for half a second (one made the other
            // and the partner loop on faults) is rebuilt.
            if ms(now - window.0) >= 100 {
                // Slower than a quarter of the run's average rate so far.
                let per_100ms = c * 100 / ms(now - start).max(1);
                slow = if (c - window.1) * 4 < per_100ms { slow + 1 } else { 0 };
                window = (now, c);
            }
            // The fuzzer is looked at once a millisecond: it may run on another core,
            // where a turn of this loop is no turn of its own.
            let fine = if ms(now - last_look) < 1 {
                true
            } else {
                last_look = now;
                watch.look(&wd, &mut t)?
            };
            if slow < 5 && fine {
                if c != last_calls {
                    (last_calls, barren) = (c, 0);
                }
                continue;
            }
            // Nothing helped: a new world.
            t.rebuilds += 1;
            barren += 1;
            if barren > MAX_BARREN_WORLDS {
                debug_println!("fuzz: the fuzzer made no progress in {MAX_BARREN_WORLDS} fresh worlds (call {c})");
                return Ok(3);
            }
            // The kernel may be why it is stuck (a thread lost from the run queue):
            // check before the teardown erases the evidence.
            if !check(&mut t, p.seed, "with the fuzzer stuck ")? {
                break false;
            }
            wd.teardown()?;
            if !check(&mut t, p.seed, "after tearing a stuck world down ")? {
                break false;
            }
            wd.build()?;
            (slow, window, watch) = (0, (counter(), c), Watch::default());
        };
        let elapsed = ms(counter() - start).max(1);
        if sound {
            wd.teardown()?;
            check(&mut t, p.seed, "after the last world ")?;
        }
        report(p, &t, elapsed, wd.built);
        let l = LIVE.load(Relaxed);
        if l == last_live {
            t.live_failed += 1;
            debug_println!("fuzz: LIVENESS FAILED: the liveness thread did not run since the last report");
        }
        if t.live_failed == 0 {
            debug_println!("fuzz: liveness: {l} turns, progress in every interval");
        }
        debug_println!("fuzz: {} passed, {} failed", t.passed, t.failed);
        Ok(u8::from(t.failed > 0 || t.live_failed > 0))
    }

    fn report(p: &Params, t: &Tally, elapsed_ms: u64, worlds: u64) {
        let calls = CALLS.load(Relaxed);
        debug_println!(
            "fuzz: {calls} calls in {}.{:03} s: {} calls/s (seed {:#x})",
            elapsed_ms / 1000,
            elapsed_ms % 1000,
            u128::from(calls) * 1000 / u128::from(elapsed_ms),
            p.seed
        );
        libl4::debug_print!("fuzz: results: ok {}", fuzzer::RESULTS[0].load(Relaxed));
        for (code, n) in fuzzer::RESULTS.iter().enumerate().skip(1) {
            let n = n.load(Relaxed);
            if n > 0 {
                match Error::from_raw(code as u64) {
                    Some(e) => libl4::debug_print!(", {e:?} {n}"),
                    None => libl4::debug_print!(", code {code} {n}"),
                }
            }
        }
        debug_println!();
        let ok = fuzzer::LABEL_OK.iter().filter(|n| n.load(Relaxed) > 0).count();
        libl4::debug_print!("fuzz: invocations that succeeded: {ok} of {} labels", Label::ALL.len());
        let mut first = true;
        for (l, n) in Label::ALL.iter().zip(&fuzzer::LABEL_OK) {
            if n.load(Relaxed) == 0 {
                libl4::debug_print!("{}{l:?}", if first { "; never: " } else { ", " });
                first = false;
            }
        }
        debug_println!();
        debug_println!(
            "fuzz: {worlds} worlds, {} repairs, {} early rebuilds, {} echoes, {} identifies",
            t.repairs,
            t.rebuilds,
            world::ECHOES.load(Relaxed),
            fuzzer::IDENTIFIES.load(Relaxed)
        );
    }
}

#[cfg(not(target_os = "none"))]
fn main() {}
