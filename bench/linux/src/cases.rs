//! The cases, in the order and under the names of bench/gaon. Each builds what it needs
//! (processes, threads, pipes, shared memory), times a batch of operations per sample
//! with the counter and checks the answers, so that a broken path fails the case instead
//! of producing a number. Child processes are killed when a case ends.

use std::fmt::Display;
use std::fs::File;
use std::hint::black_box;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

use crate::sys::{self, Child, CounterClock, Shared, now};
use crate::{Fail, Runner, Unit};

/// The benchmark process's SCHED_FIFO priority.
pub const MAIN_PRIO: i32 = 50;
/// Servers and woken waiters run above it (a request switches straight to them, as on
/// Gaon, where servers run at 150 and the benchmark at 100).
const SERVER_PRIO: i32 = 60;
/// A waiter below the benchmark (`signal_lower`).
const LOW_PRIO: i32 = 40;
/// Below everything: runs only when all the others are blocked.
const LOWEST_PRIO: i32 = 30;

/// Per-process working set of the `_16k` rings, in bytes.
const WS_BYTES: usize = 16 * 1024;
/// Bytes per write in `bw_pipe`.
const CHUNK: usize = 16 * 1024;
/// Counter ticks from taking the time to the timer's deadline in `irq_to_user`. Gaon uses
/// 200, but Linux needs about that much (~3,200 instructions) to enter clock_nanosleep,
/// arm the hrtimer and switch to idle: with 200 or less the deadline passes before the
/// CPU idles and the result shifts with the lead (at 150 it is 800 instructions more, at
/// 200 80 fewer, as the idle exit is skipped). From 250 to 5,000 ticks it is flat; 400
/// is well inside that.
const IRQ_LEAD: u64 = 400;

/// Give an error the step it happened in.
trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Make a child SCHED_FIFO at `prio`. A failure counts on aarch64 only: a host smoke run
/// may lack the privilege.
fn set_prio(child: &Child, prio: i32) -> Result<(), Fail> {
    match child.set_fifo(prio) {
        Err(e) if cfg!(target_arch = "aarch64") => Err(format!("SCHED_FIFO {prio} for a child: {e}")),
        _ => Ok(()),
    }
}

/// Fork a child running `body` (at `prio`, or at the benchmark's priority if `None`).
/// Whatever `body` owns (moved in) is closed in the parent when this returns, so a pipe
/// end given to the child belongs to the child alone.
fn spawn(prio: Option<i32>, body: impl FnOnce() -> io::Result<()>) -> Result<Child, Fail> {
    let child = sys::fork(|| i32::from(body().is_err())).ctx("fork")?;
    if let Some(p) = prio {
        set_prio(&child, p)?;
    }
    Ok(child)
}

fn pipe() -> Result<(PipeReader, PipeWriter), Fail> {
    io::pipe().ctx("pipe")
}

/// Every case, in the order the results are printed.
pub fn all(r: &mut Runner) {
    calibrate(r);
    null_syscall(r);
    if let Err(why) = ipc_cases(r) {
        r.fail("ipc", &why);
    }
    if let Err(why) = signal_cases(r) {
        r.fail("signal", &why);
    }
    for n in [2usize, 8, 16] {
        if let Err(why) = ring(r, n) {
            r.fail("ctx_ring", &why);
        }
    }
    if let Err(why) = bw_pipe(r) {
        r.fail("bw_pipe", &why);
    }
    if let Err(why) = irq_to_user(r) {
        r.fail("irq_to_user", &why);
    }
    object_cases(r);
}

/// `calibrate_2M_instructions`: a loop of exactly 2,000,000 instructions (plus a few):
/// the clock must count instructions, within 1% (checked on aarch64 only).
fn calibrate(r: &mut Runner) {
    const N: u64 = 1_000_000;
    let per_tick = r.per_tick;
    r.run("calibrate_2M_instructions", Unit::Instructions, 1, |n| {
        let t0 = now();
        for _ in 0..n {
            sys::count_down(N);
        }
        let ticks = now() - t0;
        let per_loop = ticks * per_tick / n;
        if cfg!(target_arch = "aarch64") && per_loop.abs_diff(2 * N) > 2 * N / 100 {
            return Err(format!(
                "{per_loop} instructions for 2000000: the counter does not count instructions (run QEMU with -icount shift=0)"
            ));
        }
        Ok(ticks)
    });
}

/// `null_syscall`: getppid as a raw `svc` (enter the kernel, read one field, return).
fn null_syscall(r: &mut Runner) {
    let ppid = i64::from(std::os::unix::process::parent_id());
    r.run("null_syscall", Unit::Instructions, 2000, |n| {
        let t0 = now();
        for _ in 0..n {
            sys::null_syscall();
        }
        let t = now() - t0;
        if sys::null_syscall() != ppid {
            return Err("getppid returned another pid".into());
        }
        Ok(t)
    });
}

// ---- IPC round trips ------------------------------------------------------------------

/// Answer every message read from `rx` with the same bytes on `tx`, until `rx` ends. A
/// client waits for each answer before it sends again, and writes of at most PIPE_BUF
/// bytes are atomic, so one read is one message.
fn echo(mut rx: impl Read, mut tx: impl Write) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = rx.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        tx.write_all(&buf[..n])?;
    }
}

/// Time `n` round trips of `size`-byte messages: send on `tx`, wait for the answer on `rx`.
fn round_trips(tx: &mut impl Write, rx: &mut impl Read, size: usize, n: u64) -> Result<u64, Fail> {
    let mut msg = [0u8; 256];
    for (i, b) in msg.iter_mut().enumerate() {
        *b = (i as u8) ^ 0x5a;
    }
    let mut back = [0u8; 256];
    let t0 = now();
    for _ in 0..n {
        tx.write_all(&msg[..size]).ctx("send")?;
        rx.read_exact(&mut back[..size]).ctx("receive the answer")?;
    }
    let t = now() - t0;
    if back[..size] != msg[..size] {
        return Err("the server answered other bytes".into());
    }
    Ok(t)
}

/// Copy each request's lease (`len` bytes of the shared page) out, then answer with the
/// last byte it saw.
fn lease_server(page: &Shared, mut rx: impl Read, mut tx: impl Write) -> io::Result<()> {
    let mut copy = vec![0u8; 4096];
    let mut req = [0u8; 8];
    loop {
        rx.read_exact(&mut req)?;
        let len = usize::try_from(u64::from_ne_bytes(req)).map_or(copy.len(), |l| l.clamp(1, copy.len()));
        page.copy_out(&mut copy[..len]);
        tx.write_all(&u64::from(copy[len - 1]).to_ne_bytes())?;
    }
}

fn ipc_cases(r: &mut Runner) -> Result<(), Fail> {
    // ipc_rt_same_as: round trip of an 8-byte token over a pair of pipes to a server
    // thread of this process (a higher-priority SCHED_FIFO thread): write, the server
    // wakes, reads, writes back, blocks in read; the client's read returns.
    {
        let (req_rx, mut req_tx) = pipe()?;
        let (mut ans_rx, ans_tx) = pipe()?;
        let server = std::thread::Builder::new()
            .spawn(move || -> Result<(), Fail> {
                match sys::set_fifo(SERVER_PRIO) {
                    Err(e) if cfg!(target_arch = "aarch64") => return Err(format!("SCHED_FIFO for the thread: {e}")),
                    _ => {}
                }
                echo(req_rx, ans_tx).ctx("echo thread")
            })
            .ctx("spawn the server thread")?;
        r.run("ipc_rt_same_as", Unit::Instructions, 500, |n| {
            round_trips(&mut req_tx, &mut ans_rx, 8, n)
        });
        // End of the request pipe: the server reads 0 bytes and returns.
        drop(req_tx);
        server.join().map_err(|_| "the server thread panicked".to_string())??;
    }

    // ipc_rt_cross_as (lat_pipe): the same with a server process (another address
    // space), 8-byte token; _32b and _256b: 32- and 256-byte messages echoed back.
    {
        let (req_rx, mut req_tx) = pipe()?;
        let (mut ans_rx, ans_tx) = pipe()?;
        let _server = spawn(Some(SERVER_PRIO), move || echo(req_rx, ans_tx))?;
        r.run("ipc_rt_cross_as", Unit::Instructions, 500, |n| {
            round_trips(&mut req_tx, &mut ans_rx, 8, n)
        });
        r.run("ipc_rt_cross_as_32b", Unit::Instructions, 500, |n| {
            round_trips(&mut req_tx, &mut ans_rx, 32, n)
        });
        r.run("ipc_rt_cross_as_256b", Unit::Instructions, 500, |n| {
            round_trips(&mut req_tx, &mut ans_rx, 256, n)
        });
    }

    // ipc_rt_unix (lat_unix): 8-byte round trips over a unix stream socketpair to a
    // server process.
    {
        let (client, server_end) = UnixStream::pair().ctx("socketpair")?;
        let _server = spawn(Some(SERVER_PRIO), move || echo(&server_end, &server_end))?;
        let (mut tx, mut rx) = (&client, &client);
        r.run("ipc_rt_unix", Unit::Instructions, 500, |n| {
            round_trips(&mut tx, &mut rx, 8, n)
        });
    }

    // ipc_rt_cross_as_4k_lease: the client writes 4 KiB into a MAP_SHARED page it shares
    // with the server process and sends an 8-byte request (the length) over the pipe;
    // the server copies the 4 KiB out and answers 8 bytes (the last byte it read).
    {
        let page = Shared::new(4096).ctx("shared page")?;
        let (req_rx, mut req_tx) = pipe()?;
        let (mut ans_rx, ans_tx) = pipe()?;
        let lease = &page;
        let _server = spawn(Some(SERVER_PRIO), move || lease_server(lease, req_rx, ans_tx))?;
        let src = [0x5au8; 4096];
        r.run("ipc_rt_cross_as_4k_lease", Unit::Instructions, 200, |n| {
            let mut ans = [0u8; 8];
            let t0 = now();
            for _ in 0..n {
                page.copy_in(&src);
                req_tx.write_all(&4096u64.to_ne_bytes()).ctx("request")?;
                ans_rx.read_exact(&mut ans).ctx("answer")?;
                if u64::from_ne_bytes(ans) != 0x5a {
                    return Err("the server did not see the lease's bytes".into());
                }
            }
            Ok(now() - t0)
        });
    }

    // ipc_oneway: write 8 bytes into a pipe whose reader, a higher-priority process,
    // wakes, reads them and blocks in read again at once; per message.
    {
        let (mut rx, mut tx) = pipe()?;
        let _reader = spawn(Some(SERVER_PRIO), move || {
            let mut b = [0u8; 8];
            loop {
                rx.read_exact(&mut b)?;
            }
        })?;
        r.run("ipc_oneway", Unit::Instructions, 500, |n| {
            let t0 = now();
            for i in 0..n {
                tx.write_all(&i.to_ne_bytes()).ctx("write")?;
            }
            Ok(now() - t0)
        });
    }
    Ok(())
}

// ---- signals and yield -----------------------------------------------------------------

fn signal_cases(r: &mut Runner) -> Result<(), Fail> {
    let one = 1u64.to_ne_bytes();

    // signal_wait: wake a higher-priority waiter process blocked in read() on an eventfd
    // (Gaon: a notification). Measured from before the write in this process to the
    // waiter's first instruction after its read returns (it stores the counter in a
    // shared page before it reads again); per wake.
    {
        let stamp = Shared::new(4096).ctx("shared page")?;
        let efd = sys::eventfd().ctx("eventfd")?;
        let (st, ev) = (&stamp, &efd);
        let _waiter = spawn(Some(SERVER_PRIO), move || {
            let mut b = [0u8; 8];
            let mut ev: &File = ev;
            loop {
                ev.read_exact(&mut b)?;
                st.word(0).store(now(), Ordering::Release);
            }
        })?;
        r.run("signal_wait", Unit::Instructions, 500, |k| {
            let mut total = 0;
            for _ in 0..k {
                let t0 = now();
                (&efd).write_all(&one).ctx("eventfd write")?;
                let t1 = stamp.word(0).load(Ordering::Acquire);
                if t1 < t0 {
                    return Err("the waiter did not run".into());
                }
                total += t1 - t0;
            }
            Ok(total)
        });
    }

    // signal_lower: the eventfd write alone when the waiter has a lower priority (no
    // switch). Before each write this process blocks on `back`, which a lowest-priority
    // process writes once both this process and the waiter (which has consumed the
    // previous wake and read again) are blocked; so each write wakes a blocked waiter.
    {
        let low = sys::eventfd().ctx("eventfd")?;
        let back = sys::eventfd().ctx("eventfd")?;
        let (lo, bk) = (&low, &back);
        let _waiter = spawn(Some(LOW_PRIO), move || {
            let mut b = [0u8; 8];
            let mut lo: &File = lo;
            loop {
                lo.read_exact(&mut b)?;
            }
        })?;
        let _signaller = spawn(Some(LOWEST_PRIO), move || {
            let mut bk: &File = bk;
            loop {
                bk.write_all(&one)?;
            }
        })?;
        // Debian's kernel randomizes the kernel stack offset on every syscall and refills
        // its batch of random numbers every 48 syscalls (about 2,800 instructions). Only
        // one of the four syscalls per round is timed here, so with a fixed count per
        // round the refill would fall on the timed write always or never, depending on
        // the phase the case starts in (2,290 or 2,054 instructions, from run to run).
        // A pseudo-random number (0 to 47) of untimed getppid calls before each write
        // makes the write pay its average share, as each syscall in `null_syscall` does.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        r.run("signal_lower", Unit::Instructions, 200, |k| {
            let mut total = 0;
            let mut b = [0u8; 8];
            for _ in 0..k {
                (&back).read_exact(&mut b).ctx("wait for the waiter")?;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                for _ in 0..rng % 48 {
                    sys::null_syscall();
                }
                let t0 = now();
                (&low).write_all(&one).ctx("eventfd write")?;
                total += now() - t0;
            }
            Ok(total)
        });
        // The children are killed here, the signaller first.
    }

    // yield: sched_yield between this process and another SCHED_FIFO process of the
    // same priority that yields in a loop; each of our yields switches there and back,
    // so a round is two yields; per yield.
    {
        let _other = spawn(None, || {
            loop {
                sys::yield_now();
            }
        })?;
        r.run("yield", Unit::Instructions, 500, |k| {
            let t0 = now();
            for _ in 0..k {
                sys::yield_now();
            }
            Ok((now() - t0) / 2)
        });
    }
    Ok(())
}

// ---- lat_ctx ----------------------------------------------------------------------------

/// A ring member: read the token, sum this process's own working set (as many bytes
/// as the token says), pass the token on.
fn ring_member(mut rx: PipeReader, mut tx: PipeWriter) -> io::Result<()> {
    let ws = vec![1u64; WS_BYTES / 8];
    let mut tok = [0u8; 8];
    loop {
        rx.read_exact(&mut tok)?;
        let words = usize::try_from(u64::from_ne_bytes(tok) / 8).map_or(ws.len(), |w| w.min(ws.len()));
        black_box(sys::touch(&ws[..words]));
        tx.write_all(&tok)?;
    }
}

/// `ctx_ring_N` and `ctx_ring_N_16k` (lat_ctx): N processes (this one and N - 1
/// children, all at the same priority) pass an 8-byte token round a ring of pipes;
/// in the `_16k` variants each sums its own 16 KiB array, a u64 at a time, per turn.
/// Per context switch: time per lap / N.
fn ring(r: &mut Runner, n: usize) -> Result<(), Fail> {
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..n {
        let (rx, tx) = pipe()?;
        readers.push(Some(rx));
        writers.push(Some(tx));
    }
    // Member i reads pipe i and writes pipe i + 1 (mod n); this process is member 0.
    let mut members = Vec::new();
    for i in 1..n {
        let rx = readers[i].take().ok_or("pipe taken twice")?;
        let tx = writers[(i + 1) % n].take().ok_or("pipe taken twice")?;
        members.push(spawn(None, move || ring_member(rx, tx))?);
    }
    let mut rx = readers[0].take().ok_or("pipe taken twice")?;
    let mut tx = writers[1 % n].take().ok_or("pipe taken twice")?;
    let ws = vec![1u64; WS_BYTES / 8];
    for (bytes, suffix) in [(0usize, ""), (WS_BYTES, "_16k")] {
        let tok = (bytes as u64).to_ne_bytes();
        r.run(&format!("ctx_ring_{n}{suffix}"), Unit::Instructions, 200, |laps| {
            let mut back = [0u8; 8];
            let t0 = now();
            for _ in 0..laps {
                black_box(sys::touch(&ws[..bytes / 8]));
                tx.write_all(&tok).ctx("pass the token")?;
                rx.read_exact(&mut back).ctx("wait for the token")?;
                if back != tok {
                    return Err("the token came back wrong".into());
                }
            }
            Ok((now() - t0) / n as u64)
        });
    }
    Ok(())
}

// ---- bw_pipe ----------------------------------------------------------------------------

/// Read 16 KiB chunks, check them, and acknowledge every `per_sample` bytes.
fn sink(mut rx: PipeReader, mut ack: PipeWriter, per_sample: u64) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        rx.read_exact(&mut buf)?;
        if buf[0] != 0xa5 || buf[CHUNK - 1] != 0xa5 {
            return Err(io::Error::other("bad data"));
        }
        got += CHUNK as u64;
        if got.is_multiple_of(per_sample) {
            ack.write_all(&got.to_ne_bytes())?;
        }
    }
}

/// `bw_pipe`: this process writes 16 KiB chunks into a pipe, a process of the same
/// priority reads them; 4 MiB per sample, until the reader has it all (it acknowledges
/// each sample's last byte). Bytes per instruction (MB/Minstr).
fn bw_pipe(r: &mut Runner) -> Result<(), Fail> {
    let slots = r.batch((4 << 20) / CHUNK as u64);
    let bytes = slots * CHUNK as u64;
    let (data_rx, mut data_tx) = pipe()?;
    let (mut ack_rx, ack_tx) = pipe()?;
    let _sink = spawn(None, move || sink(data_rx, ack_tx, bytes))?;
    let src = vec![0xa5u8; CHUNK];
    r.run("bw_pipe", Unit::MbPerMinstr { bytes }, slots, |k| {
        let mut ack = [0u8; 8];
        let t0 = now();
        for _ in 0..k {
            data_tx.write_all(&src).ctx("write")?;
        }
        ack_rx.read_exact(&mut ack).ctx("wait for the reader")?;
        let t = now() - t0;
        if !u64::from_ne_bytes(ack).is_multiple_of(bytes) {
            return Err("the reader lost bytes".into());
        }
        Ok(t)
    });
    Ok(())
}

// ---- IRQ latency ------------------------------------------------------------------------

/// Check that the vDSO's conversion agrees with clock_gettime: for counter readings
/// `c0 < c1` around a CLOCK_MONOTONIC reading `m`, `mono(c0) <= m <= mono(c1)`.
fn check_clock(clock: CounterClock) -> Result<(), Fail> {
    for _ in 0..100 {
        let conv = clock.snapshot()?;
        let c0 = now();
        let m = sys::mono_now();
        let c1 = now();
        let (lo, hi) = (conv.mono_at(c0), conv.mono_at(c1));
        if !(lo..=hi).contains(&m) {
            return Err(format!(
                "the counter-to-CLOCK_MONOTONIC conversion disagrees with clock_gettime ({m} not in {lo}..={hi})"
            ));
        }
    }
    Ok(())
}

/// `irq_to_user`: from a timer interrupt to the first user instruction of the task it
/// wakes. A clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to a deadline `IRQ_LEAD`
/// counter ticks ahead (no timer slack for a SCHED_FIFO task); on waking, counter minus
/// deadline. The deadline is chosen in counter ticks and turned into CLOCK_MONOTONIC
/// with the vDSO's own conversion (exact: CLOCK_MONOTONIC is derived from this counter).
/// It includes the timer's interrupt (the hrtimer expiry in the arch timer's handler,
/// and the delay with which Linux programs the comparator), waking the sleeper, leaving
/// idle, the switch to it and its return to user from clock_nanosleep.
fn irq_to_user(r: &mut Runner) -> Result<(), Fail> {
    let clock = CounterClock::find()?;
    check_clock(clock)?;
    r.run("irq_to_user", Unit::Instructions, 50, |k| {
        let mut total = 0;
        for _ in 0..k {
            let conv = clock.snapshot()?;
            let deadline = now() + IRQ_LEAD;
            sys::sleep_until(conv.mono_at(deadline)).ctx("clock_nanosleep")?;
            let t = now();
            if t < deadline {
                return Err("woke before the deadline".into());
            }
            total += t - deadline;
        }
        Ok(total)
    });
    Ok(())
}

// ---- objects ------------------------------------------------------------------------------

fn object_cases(r: &mut Runner) {
    // thread_create_destroy: spawn a thread (std, so pthread_create: a stack mapping, a
    // guard page, clone) that returns at once, and join it (futex wait, stack unmapped).
    r.run("thread_create_destroy", Unit::Instructions, 50, |k| {
        let t0 = now();
        for _ in 0..k {
            std::thread::Builder::new()
                .spawn(|| {})
                .ctx("spawn a thread")?
                .join()
                .map_err(|_| "the thread panicked".to_string())?;
        }
        Ok(now() - t0)
    });
    // frame_map_unmap: mmap one anonymous 4 KiB page with MAP_POPULATE (a frame is
    // allocated, zeroed and mapped), then munmap it (unmapped, TLB invalidated, freed).
    r.run("frame_map_unmap", Unit::Instructions, 200, |k| {
        let t0 = now();
        for _ in 0..k {
            sys::map_unmap_page().ctx("mmap/munmap")?;
        }
        Ok(now() - t0)
    });
}
