//! The program: the boot (bootargs, the checks of the hypercall interface, the GIC, the
//! work loop's calibration, LL-boost) and its three tasks:
//!
//! | # | task | priority | what |
//! |---|---|---|---|
//! | 0 | `measure` | 30 | periodic (`period_us`, `deadline_us`): each job reads the counter as it starts, does `work_us` of work, and sends its times to the reporter (release 0 is a warm-up, not recorded) |
//! | 1 | `reporter` | 20 | receives them from a message queue into the statistics; after the last, prints the summary and ends the VM |
//! | 2 | `idle` | 0 | WFI, interrupts unmasked |

use gaon_abi::hypercall::Error;
use gaon_guest_bare::dtb::Fdt;
use gaon_guest_bare::{cpu, gic};
use gaon_rtos::config::{self, Config};
use gaon_rtos::hyper::Status;
use gaon_rtos::stats::{self, Run, Sample, Stats};
use gaon_rtos::time::Clock;
use gaon_rtos::work;
use gaon_vmm::layout::{RAM_BASE, VTIMER_IRQ};

use crate::hv;
use crate::rt::{self, IrqCell, Queue};

/// The tasks' priorities (larger is more urgent).
const MEASURE_PRIORITY: u8 = 30;
const REPORTER_PRIORITY: u8 = 20;
const IDLE_PRIORITY: u8 = 0;

/// The timer interrupt's priority at the GIC.
const IRQ_PRIORITY: u8 = 0x80;

/// The most guest RAM a VM has (the device tree is in it).
const MAX_RAM: u64 = 512 << 20;

/// `TRACE_EVENT` numbers: a job starts (argument: its release's index), a job ends.
const EVENT_JOB_START: u64 = 1;
const EVENT_JOB_END: u64 = 2;

/// The most LL-boost's `RETRY` makes the boot wait before entering again (1 s).
const RETRY_PATIENCE_US: u64 = 1_000_000;

/// What the boot found, for the tasks.
#[derive(Clone, Copy, Debug)]
struct Setup {
    config: Config,
    /// Rounds of the work loop that take `work_us`.
    rounds: u64,
    clock: Clock,
}

static SETUP: IrqCell<Setup> = IrqCell::new(Setup {
    config: Config::DEFAULT,
    rounds: 0,
    clock: Clock::new(0),
});

fn setup() -> Setup {
    SETUP.with(|s| *s)
}

/// What the measurement task sends the reporter.
#[derive(Clone, Copy, Debug)]
enum Msg {
    /// An activation's times.
    Sample(Sample),
    /// Releases skipped (their deadline passed before the task could run them).
    Skipped(u64),
    /// The last release is done; the answer of `LL_BOOST_LEAVE` if it left LL-boost.
    Done { leave: Option<Status> },
}

static QUEUE: Queue<Msg, 32> = Queue::new();

/// The boot, with the device tree's address: set everything up and start the tasks.
pub fn boot(dtb: u64) -> ! {
    cpu::init_counter();
    let clock = Clock::new(cpu::counter_frequency());
    // SAFETY: `dtb` is x0 at entry, the device tree the VMM wrote into this VM's RAM
    // before starting it (docs/vmm.md), which the program never writes; the range only
    // bounds a wrong address to RAM a VM may have.
    #[expect(unsafe_code, reason = "the device tree is read where the VMM put it")]
    let fdt = unsafe { Fdt::at(dtb, RAM_BASE..RAM_BASE + MAX_RAM) };
    hv::set_testdev(fdt.as_ref().is_some_and(|f| f.has_compatible("gaon,testdev")));
    let bootargs = fdt.as_ref().and_then(Fdt::bootargs).unwrap_or_default();
    println!(
        "rtos: the paravirtual RTOS guest, bootargs \"{}\"",
        core::str::from_utf8(bootargs).unwrap_or("(not UTF-8)")
    );
    hv::check_bad_hypercall();
    let config = config::parse(bootargs).unwrap_or_else(|e| {
        println!("rtos: FAIL bootargs: {e}");
        hv::exit(hv::FAILED)
    });
    let version = gic::init(&[VTIMER_IRQ], &[], IRQ_PRIORITY);
    if gic::redistributor_asleep() {
        println!("rtos: FAIL GICR_WAKER.ChildrenAsleep stays set");
        hv::fail();
    }
    let cal = work::calibrate(clock.ticks_from_us(config.work_us), |n| {
        let t = cpu::counter();
        work::work(n);
        cpu::counter().wrapping_sub(t)
    });
    println!(
        "rtos: up, GICv{}, counter {} Hz, work loop {} iterations",
        version.number(),
        clock.hz,
        cal.rounds
    );
    println!(
        "rtos: config periods={} period_us={} deadline_us={} work_us={} llboost={} trace={} (calibrated: {} iterations in {} ticks)",
        config.periods,
        config.period_us,
        config.deadline_us,
        config.work_us,
        config.llboost,
        config.trace,
        cal.trial_rounds,
        cal.trial_ticks
    );
    print_sched_state();
    if config.llboost {
        enter_ll_boost(clock);
    }
    if config.hog {
        hog(clock, cal.rounds, config.work_us, config.hog_ms)
    }

    rt::init(clock, config.trace);
    SETUP.with(|s| {
        *s = Setup {
            config,
            rounds: cal.rounds,
            clock,
        };
    });
    QUEUE.init();
    let measure = rt::spawn("measure", MEASURE_PRIORITY, measure);
    let reporter = rt::spawn("reporter", REPORTER_PRIORITY, reporter);
    let idle = rt::spawn("idle", IDLE_PRIORITY, idle);
    println!(
        "rtos: task {measure} measure priority {MEASURE_PRIORITY} period_us={} deadline_us={}",
        config.period_us, config.deadline_us
    );
    println!("rtos: task {reporter} reporter priority {REPORTER_PRIORITY}");
    println!("rtos: task {idle} idle priority {IDLE_PRIORITY}");
    // Release 0 (the warm-up) one period from now.
    let start = cpu::counter() + clock.ticks_from_us(config.period_us);
    rt::set_periodic(measure, start, config.period_us, config.deadline_us);
    rt::start()
}

/// A hog's `yield` comes after at most this much work (µs).
const HOG_SLICE_US: u64 = 5;

/// `hog`: compute in pieces of `work_us`, never waiting (a CPU-bound guest), for ever
/// or for `ms` milliseconds (then the VM ends, after its scheduling state is printed).
/// A piece is done in slices of [`HOG_SLICE_US`], each followed by a `yield` hint
/// (nothing on hardware; under QEMU's `-icount` it lets the other CPUs run, see
/// [`cpu::yield_hint`]).
fn hog(clock: Clock, rounds: u64, work_us: u64, ms: u64) -> ! {
    let end = (ms != 0).then(|| cpu::counter() + clock.ticks_from_us(ms * 1000));
    println!("rtos: hog: computing for {}", if ms == 0 { "ever" } else { "a while" });
    let slice = (rounds * HOG_SLICE_US / work_us.max(1)).max(1);
    let mut pieces = 0u64;
    loop {
        let mut left = rounds;
        while left > 0 {
            let n = left.min(slice);
            work::work(n);
            cpu::yield_hint();
            left -= n;
        }
        pieces += 1;
        if end.is_some_and(|e| cpu::counter() >= e) {
            println!("rtos: hog: done, {pieces} pieces of work in {ms} ms");
            print_sched_state();
            hv::exit(0)
        }
    }
}

/// `rtos: sched state: ...`.
fn print_sched_state() {
    match hv::sched_state() {
        Ok(s) => println!("rtos: sched state: {s}"),
        Err(status) => println!("rtos: sched state: {status}"),
    }
}

/// Enter LL-boost for the measurement (`llboost`): once, again after the time a `RETRY`
/// names if that is within a second. Whatever the answer, the run goes on.
fn enter_ll_boost(clock: Clock) {
    let (mut status, mut from) = hv::ll_boost_enter();
    if status == Status::Error(Error::Retry) {
        let wait = from.saturating_sub(cpu::counter());
        if wait <= clock.ticks_from_us(RETRY_PATIENCE_US) {
            println!("rtos: ll-boost enter: retry in {} us", clock.us_from_ticks(wait));
            wait_until(from);
            (status, from) = hv::ll_boost_enter();
        }
    }
    if status == Status::Error(Error::Retry) {
        println!("rtos: ll-boost enter: retry (not before counter {from})");
    } else {
        println!("rtos: ll-boost enter: {status}");
    }
}

/// Wait for the counter to reach `at`, IRQs masked (before the tasks start): WFI wakes
/// on the timer's interrupt, which stays pending until the kernel takes it.
fn wait_until(at: u64) {
    cpu::timer_arm(at);
    while cpu::counter() < at {
        cpu::wfi();
    }
    cpu::timer_off();
}

/// The measured task. Release 0 is a warm-up: its job runs and nothing of it is
/// recorded (under QEMU without -icount a path's first run is much slower, its code
/// translated then); releases 1 to `periods` are measured. Each job starts by reading
/// the counter (its lateness is that minus its release), does its work, and sends its
/// times to the reporter.
extern "C" fn measure() -> ! {
    let s = setup();
    let last = s.config.periods;
    loop {
        let job = rt::wait_next_period();
        // Skipped releases among the measured ones, 1..=last.
        let skipped = job.skipped_below(last + 1) - job.skipped_below(1);
        if skipped > 0 {
            send(Msg::Skipped(skipped));
        }
        if job.index > last {
            break;
        }
        let start = cpu::counter();
        if s.config.trace {
            hv::trace_event(EVENT_JOB_START, job.index);
        }
        work::work(s.rounds);
        if s.config.trace {
            hv::trace_event(EVENT_JOB_END, job.index);
        }
        let end = cpu::counter();
        if job.index > 0 {
            send(Msg::Sample(Sample {
                index: job.index,
                release: job.release,
                deadline: job.deadline,
                start,
                end,
                overrun: job.overrun,
            }));
        }
        if job.index == last {
            break;
        }
    }
    let leave = s.config.llboost.then(hv::ll_boost_leave);
    // The end must arrive: wait for room (only this task sends).
    while QUEUE.is_full() {
        rt::sleep_until(cpu::counter() + s.clock.ticks_from_us(s.config.period_us));
    }
    send(Msg::Done { leave });
    rt::end()
}

/// Send a message to the reporter; a full queue drops it (counted).
fn send(m: Msg) {
    let _ = QUEUE.send(m);
}

/// The reporter: collects the samples, and after the last prints the summary and ends
/// the VM.
extern "C" fn reporter() -> ! {
    let s = setup();
    let mut stats = Stats::new();
    let leave = loop {
        match QUEUE.receive() {
            Msg::Sample(sample) => stats.record(s.clock, &sample),
            Msg::Skipped(n) => stats.skipped += n,
            Msg::Done { leave } => break leave,
        }
    };
    stats.dropped = QUEUE.dropped();
    let run = Run {
        periods: s.config.periods,
        period_us: s.config.period_us,
        deadline_us: s.config.deadline_us,
        work_us: s.config.work_us,
    };
    // Writing to the console cannot fail (a refused piece is counted as a failure).
    let _ = stats::write_summary(&mut hv::console(), &stats, &run);
    if let Some(status) = leave {
        println!("rtos: ll-boost leave: {status}");
    }
    print_sched_state();
    let mut out = hv::console();
    out.write_bytes(b"rtos: stacks");
    rt::stack_use(|name, used, size| {
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!(" {name}={used}/{size}"));
    });
    out.write_bytes(b"\n");
    drop(out);
    println!("rtos: task switches {}", rt::switches());
    if stats.activations + stats.skipped != run.periods {
        println!(
            "rtos: FAIL {} activations and {} skipped releases of {}",
            stats.activations, stats.skipped, run.periods
        );
        hv::fail();
    }
    if stats.dropped > 0 {
        println!("rtos: FAIL {} samples dropped (the queue was full)", stats.dropped);
        hv::fail();
    }
    let status = if hv::failed() { hv::FAILED } else { 0 };
    println!("rtos: done, status {status}");
    hv::exit(status)
}

/// The idle task: wait for an interrupt, with interrupts unmasked.
extern "C" fn idle() -> ! {
    loop {
        cpu::wfi();
    }
}
