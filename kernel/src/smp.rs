//! The secondary CPUs: how CPU 0 starts them (the board's way, PSCI `CPU_ON` or a spin
//! table; the holding pen in `start.S` when the kernel was entered at EL3), what each
//! does once started, and inter-processor interrupts (IPIs).
//!
//! A secondary sets up the EL2 state CPU 0 has (`start.S`, then its MMU with the
//! kernel's map, HCR_EL2 and VTCR_EL2, its side of the interrupt controller and its
//! timer's interrupt), marks itself online and enters the idle loop: from then on it
//! runs the threads placed on it, taking the one kernel lock like CPU 0
//! (docs/decisions/0004-big-kernel-lock.md). At boot CPU 0 checks that IPIs work both
//! ways: it sends each online secondary an IPI asking for an answer, and each answers
//! with an IPI to CPU 0.
//!
//! IPIs carry three requests: the boot check's answer, "choose again" (the kernel core
//! changed what this CPU should run: `Kernel::take_ipis`), and a stall (the lock's
//! holder needs this CPU out of user level and its lazily switched state saved before
//! it goes on: [`stall`]).

use core::sync::atomic::Ordering;

use gaon_kcore::kernel::LazySaves;

use crate::arch::cpu::{self, CpuSet};
use crate::arch::smp::{self as start, PsciError};
use crate::arch::{self, mmu, stage2, thread, timer};
use crate::board::{self, CpuStart};
use crate::{irq, kprintln, platform, trap};

/// Bits of a CPU's `ipi_requests`: what an IPI asks of the CPU it is sent to.
pub mod request {
    /// Answer with an IPI to CPU 0 (the boot check).
    pub const PING: u32 = 1;
    /// Take the kernel lock and choose again what to run.
    pub const RESCHEDULE: u32 = 2;
}

/// How long CPU 0 waits for a started CPU to come online, and for an IPI's answer.
pub const TIMEOUT_MS: u64 = 1000;

/// How CPU 0 starts the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// PSCI `CPU_ON` over SMC.
    Psci,
    /// The board's spin table at this address.
    SpinTable(usize),
    /// The holding pen in `start.S` (entered at EL3: every CPU started at the entry).
    HoldingPen,
}

impl Method {
    /// For the banner.
    pub fn name(self) -> &'static str {
        match self {
            Self::Psci => "PSCI CPU_ON",
            Self::SpinTable(_) => "spin table",
            Self::HoldingPen => "holding pen",
        }
    }
}

/// Why a CPU is not online.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// PSCI refused to start it (QEMU says `InvalidParameters` for a CPU `-smp` left out).
    Psci(PsciError),
    /// It was started but did not come online within the timeout.
    Timeout,
}

/// What bringing up the secondaries found, for the banner.
#[derive(Debug)]
pub struct Report {
    /// How they were started.
    pub method: Method,
    /// The CPUs online, CPU 0 included.
    pub online: CpuSet,
    /// Why each CPU that is not online is not.
    pub failed: [Option<Failure>; board::CPUS],
    /// Online secondaries whose IPI answer did not reach CPU 0 within the timeout.
    pub unanswered: CpuSet,
}

/// Start every other CPU, wait (bounded) for each to come online, and check IPIs with
/// each online one. CPU 0, at boot, after the interrupt controller is up. A CPU that
/// does not come up is reported, never waited for longer.
pub fn start_secondaries(entry_el: u64) -> Report {
    cpu::this_cpu().online.store(true, Ordering::Release);
    let method = match board::CPU_START {
        _ if entry_el == 3 => Method::HoldingPen,
        CpuStart::Psci => Method::Psci,
        CpuStart::SpinTable(table) => Method::SpinTable(table),
    };
    let mut failed = [None; board::CPUS];
    for (n, failure) in failed.iter_mut().enumerate().skip(1) {
        let started = match method {
            Method::Psci => start::psci_cpu_on(n).map_err(Failure::Psci),
            Method::SpinTable(table) => {
                start::spin_table_release(table, n);
                Ok(())
            }
            Method::HoldingPen => {
                start::holding_pen_release(n);
                Ok(())
            }
        };
        *failure = match started {
            Err(f) => Some(f),
            Ok(()) if wait(false, || cpu::cpu(n).online.load(Ordering::Acquire)) => None,
            Ok(()) => Some(Failure::Timeout),
        };
    }
    let online = cpu::online();
    for n in online.iter() {
        failed[n] = None; // one that came up late is up
    }
    let unanswered = online
        .iter()
        .filter(|&n| n != 0 && !ping(n))
        .fold(CpuSet::EMPTY, CpuSet::with);
    Report {
        method,
        online,
        failed,
        unanswered,
    }
}

/// Send CPU `n` an IPI that asks for an answer, and wait (bounded, taking interrupts)
/// for the answering IPI. True if it came.
fn ping(n: usize) -> bool {
    let me = cpu::this_cpu();
    let before = me.ipis.load(Ordering::Relaxed);
    cpu::cpu(n).ipi_requests.fetch_or(request::PING, Ordering::Release);
    irq::send_ipi(CpuSet::of(n));
    wait(true, || me.ipis.load(Ordering::Relaxed) != before)
}

/// Spin until `done` or the timeout; with `irqs`, interrupts are taken meanwhile.
fn wait(irqs: bool, mut done: impl FnMut() -> bool) -> bool {
    let deadline = timer::now() + timer::frequency() * TIMEOUT_MS / 1000;
    while !done() {
        if timer::now() >= deadline {
            return done();
        }
        if irqs {
            arch::enable_irqs();
            arch::spin_hint();
            arch::disable_irqs();
        } else {
            arch::spin_hint();
        }
    }
    true
}

/// An IPI arrived on this CPU: count it and do what it asks. `k`: the kernel lock if
/// this CPU holds it already (then no other CPU can be waiting for a stall), taken
/// here if the IPI needs it, and kept for the caller.
pub fn handle_ipi(k: &mut Option<platform::Guard>) {
    let me = cpu::this_cpu();
    me.ipis.fetch_add(1, Ordering::Relaxed);
    let requests = me.ipi_requests.swap(0, Ordering::Acquire);
    if requests & request::PING != 0 {
        irq::send_ipi(CpuSet::of(0));
    }
    let stalled = answer_stall();
    if requests & request::RESCHEDULE != 0 || stalled {
        k.get_or_insert_with(platform::lock).handle_ipi();
    }
}

/// Tell the CPUs in `mask` (bit n: CPU n) to choose again what to run (the kernel core
/// changed it: `Kernel::take_ipis`). After the kernel lock is released.
#[inline(never)]
pub fn send_reschedule(mask: u8) {
    let mut targets = CpuSet::EMPTY;
    for n in (0..board::CPUS).filter(|&n| mask & (1 << n) != 0) {
        cpu::cpu(n)
            .ipi_requests
            .fetch_or(request::RESCHEDULE, Ordering::Release);
        targets = targets.with(n);
    }
    irq::send_ipi(targets);
}

/// Make CPU `n` (another one) leave user level and save its live copies of lazily
/// switched state into `saves`, and wait until it has: `Platform::stall`. The caller
/// holds the kernel lock, so the CPU answers from wherever it is: an IPI taken at user
/// level or in the idle loop, or its wait for the lock ([`answer_stall`]). A CPU that
/// is not online runs nothing to stop.
pub fn stall(n: usize, saves: LazySaves<'_>) {
    if n >= board::CPUS || n == cpu::local().index.load(Ordering::Relaxed) {
        return;
    }
    let target = cpu::cpu(n);
    if !target.online.load(Ordering::Acquire) {
        return;
    }
    let to = thread::save_targets(saves);
    target.save_thread_pointer.store(to.thread_pointer, Ordering::Relaxed);
    target.save_fp.store(to.fp.cast(), Ordering::Relaxed);
    target.save_guest.store(to.guest, Ordering::Relaxed);
    let answered = target.stalls.load(Ordering::Acquire);
    target.stall_pending.store(true, Ordering::Release);
    irq::send_ipi(CpuSet::of(n));
    while target.stalls.load(Ordering::Acquire) == answered {
        arch::spin_hint();
    }
}

/// If a stall is asked of this CPU, answer it: save the lazily switched state it asks
/// for, then let the lock's holder go on. True if one was answered (what this CPU
/// trapped for then waits: the thread may have been stopped or moved meanwhile).
pub fn answer_stall() -> bool {
    let me = cpu::this_cpu();
    if !me.stall_pending.swap(false, Ordering::Acquire) {
        return false;
    }
    let to = thread::SaveTargets {
        thread_pointer: me.save_thread_pointer.swap(core::ptr::null_mut(), Ordering::Relaxed),
        fp: me.save_fp.swap(core::ptr::null_mut(), Ordering::Relaxed).cast(),
        guest: me.save_guest.swap(core::ptr::null_mut(), Ordering::Relaxed),
    };
    // SAFETY: the lock's holder took these from live Tcbs and VCpus (the kernel core's
    // lazy owners of this CPU, which it forgot) and waits, touching nothing, until
    // `stalls` changes.
    unsafe { thread::save_live(to) };
    me.stalls.fetch_add(1, Ordering::Release);
    true
}

/// Where a started secondary CPU `n` comes from `start.S`, at EL2 on its own stack
/// with its vectors, MMU off, interrupts masked.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(n: usize) -> ! {
    // The caches first: the locks and atomics below need them.
    mmu::enable_this_cpu();
    cpu::init_local(n);
    stage2::init();
    timer::set_deadline(None);
    if let Err(e) = irq::init_cpu(n) {
        kprintln!("smp: CPU {n}: interrupt controller: {e:?}; not going online");
        arch::exit::park();
    }
    cpu::cpu(n).online.store(true, Ordering::Release);
    // Nothing is placed here until the root server places it; the kernel core's state
    // for this CPU is ready from the start (`Kernel::new`).
    trap::idle()
}
