//! What the RTOS asks of the hypervisor: Gaon's paravirtual hypercalls
//! (`gaon_abi::hypercall`, docs/hypercalls.md) for its console, LL-boost, tracing and
//! its scheduling state, and the end of the VM (PSCI SYSTEM_OFF, or the test device's
//! `EXIT` register to end with a status other than 0).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use gaon_abi::hypercall::Hypercall;
use gaon_guest_bare::cpu;
use gaon_guest_bare::mmio::Mmio;
use gaon_rtos::console::Pieces;
use gaon_rtos::hyper::{SchedState, Status};
use gaon_vmm::{layout, psci, testdev};

/// The VM's exit status when something failed, and when the program crashed.
pub const FAILED: u64 = 1;
pub const CRASHED: u64 = 2;

/// Set once a check failed (the end status is then [`FAILED`]).
static FAILURE: AtomicBool = AtomicBool::new(false);
/// Set if the device tree has the VMM's test device.
static TESTDEV: AtomicBool = AtomicBool::new(false);
/// Set once the first answer of each trace hypercall was reported.
static TRACE_SWITCH_SEEN: AtomicBool = AtomicBool::new(false);
static TRACE_EVENT_SEEN: AtomicBool = AtomicBool::new(false);
static TRACE_NAME_SEEN: AtomicBool = AtomicBool::new(false);

/// Issue `h`; returns `x0..x3`.
pub fn call(h: Hypercall) -> [u64; 4] {
    cpu::hvc8(h.encode())
}

/// Write `bytes` (at most 48) with `CONSOLE_WRITE`; a refusal is a failure.
fn console_write(bytes: &[u8]) {
    if call(Hypercall::console_write(bytes))[0] != 0 {
        fail();
    }
}

/// A writer to the console (through `CONSOLE_WRITE`, in pieces of at most 48 bytes).
pub fn console() -> Pieces<impl FnMut(&[u8])> {
    Pieces::new(console_write)
}

/// Print `args` and a newline.
pub fn print(args: fmt::Arguments<'_>) {
    let mut out = console();
    // Writing to the console cannot fail (a refused piece is counted as a failure).
    let _ = fmt::Write::write_fmt(&mut out, args);
    out.write_bytes(b"\n");
}

/// `println!` as std has it, on the VM's console.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::hv::print(format_args!($($arg)*))
    };
}

/// Note that a check failed: the VM ends with [`FAILED`].
pub fn fail() {
    FAILURE.store(true, Relaxed);
}

pub fn failed() -> bool {
    FAILURE.load(Relaxed)
}

/// The device tree has the test device: [`exit`] may end the VM with any status.
pub fn set_testdev(present: bool) {
    TESTDEV.store(present, Relaxed);
}

/// `CONSOLE_WRITE` with a length of 49 must be refused (`INVALID_PARAMETERS`) and
/// write nothing.
pub fn check_bad_hypercall() {
    let mut x = Hypercall::console_write(b"this must not be written\n").encode();
    x[1] = gaon_abi::hypercall::CONSOLE_MAX as u64 + 1;
    let status = Status::of(cpu::hvc8(x)[0]);
    if status == Status::Error(gaon_abi::hypercall::Error::InvalidParameters) {
        println!("rtos: bad hypercall refused");
    } else {
        println!("rtos: FAIL bad hypercall (CONSOLE_WRITE of 49 bytes) answered {status}");
        fail();
    }
}

/// `SCHED_STATE`, as a line's end: the state, or why there is none.
pub fn sched_state() -> Result<SchedState, Status> {
    SchedState::of(call(Hypercall::SchedState))
}

/// `LL_BOOST_ENTER`: its status, and for `RETRY` the counter value from which it may
/// enter again.
pub fn ll_boost_enter() -> (Status, u64) {
    let r = call(Hypercall::LlBoostEnter);
    (Status::of(r[0]), r[1])
}

/// `LL_BOOST_LEAVE`.
pub fn ll_boost_leave() -> Status {
    Status::of(call(Hypercall::LlBoostLeave)[0])
}

/// `TRACE_TASK_SWITCH(from, to)`; its first answer is reported, the others not.
pub fn trace_task_switch(from: u64, to: u64) {
    let s = Status::of(call(Hypercall::TraceTaskSwitch { from, to })[0]);
    report_once(&TRACE_SWITCH_SEEN, "trace task switch", s);
}

/// `TRACE_TASK_NAME(task, name)` (the name's first 8 bytes); its first answer is
/// reported, the others not.
pub fn trace_task_name(task: u64, name: &str) {
    let mut b = [0u8; 8];
    let n = name.len().min(8);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    let s = Status::of(
        call(Hypercall::TraceTaskName {
            task,
            name: u64::from_le_bytes(b),
        })[0],
    );
    report_once(&TRACE_NAME_SEEN, "trace task name", s);
}

/// `TRACE_EVENT(event, arg)`; its first answer is reported, the others not.
pub fn trace_event(event: u64, arg: u64) {
    let s = Status::of(call(Hypercall::TraceEvent { event, arg })[0]);
    report_once(&TRACE_EVENT_SEEN, "trace event", s);
}

fn report_once(seen: &AtomicBool, what: &str, s: Status) {
    if !seen.load(Relaxed) {
        seen.store(true, Relaxed);
        println!("rtos: {what}: {s}");
    }
}

/// End the VM: status 0 by PSCI SYSTEM_OFF; another status through the test device's
/// `EXIT` if the VM has one, else by SYSTEM_OFF too (the `rtos: FAIL` lines say it).
pub fn exit(status: u64) -> ! {
    if status != 0 && TESTDEV.load(Relaxed) {
        // SAFETY: the test device's page is emulated by the VMM (the device tree says
        // the VM has it): no memory of the program's.
        let dev = unsafe { Mmio::new(layout::TESTDEV) };
        dev.w64(testdev::reg::EXIT, status);
    }
    cpu::hvc8([psci::id::SYSTEM_OFF, 0, 0, 0, 0, 0, 0, 0]);
    loop {
        cpu::irqs_off();
        cpu::wfi();
    }
}
