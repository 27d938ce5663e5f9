//! The kernel in the guest: its state ([`gaon_rtos::sched::Kernel`]) behind IRQ
//! masking, the tasks' stacks, the exception handler that drives it (the timer's
//! interrupt, system calls), and what tasks call: [`wait_next_period`], semaphores,
//! [`Queue`], [`sleep_until`], [`end`].
//!
//! One vCPU runs this program (vCPU 0; nothing starts another), and the kernel's state
//! is touched only with IRQs masked: in the exception handler (the CPU masks them on
//! entry) or in [`IrqCell::with`]. A task must not call the kernel from inside `with`.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use gaon_guest_bare::vectors::kind::{CURRENT_SPX_IRQ, CURRENT_SPX_SYNC};
use gaon_guest_bare::vectors::{ELR_WORD, FRAME_WORDS, Frame, SPSR_WORD};
use gaon_guest_bare::{cpu, gic, mrs};
use gaon_rtos::periodic::{Job, Periodic};
use gaon_rtos::sched::{Call, Kernel, MAX_TASKS, SemId, Switch, TaskId};
use gaon_rtos::sync::{MessageQueue, Semaphore};
use gaon_rtos::time::Clock;
use gaon_vmm::layout::VTIMER_IRQ;

use crate::arch::{self, EC_SVC64, TASK_PSTATE};
use crate::hv;

/// A value only code with IRQs masked touches, one borrow at a time.
pub struct IrqCell<T> {
    value: UnsafeCell<T>,
    busy: AtomicBool,
}

// SAFETY: one vCPU runs the program, and `with` hands out the value only with IRQs
// masked (no handler can run and borrow it too) and never twice at once (`busy`), so
// no two references to it exist; `T: Send` because handler and tasks both use it.
unsafe impl<T: Send> Sync for IrqCell<T> {}

impl<T> IrqCell<T> {
    pub const fn new(value: T) -> Self {
        Self {
            value: UnsafeCell::new(value),
            busy: AtomicBool::new(false),
        }
    }

    /// Run `f` on the value with IRQs masked (as they were before, afterwards).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let daif = cpu::irqs_save();
        assert!(!self.busy.load(Relaxed), "IrqCell::with inside itself");
        self.busy.store(true, Relaxed);
        // SAFETY: IRQs are masked and `busy` was clear: no other reference to the value
        // exists until `busy` is cleared below (see `Sync`).
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Relaxed);
        cpu::irqs_restore(daif);
        r
    }
}

static KERNEL: IrqCell<Kernel> = IrqCell::new(Kernel::new(Clock::new(0)));

/// Set while the bootargs ask for `TRACE_TASK_SWITCH` on every task switch.
static TRACE: AtomicBool = AtomicBool::new(false);

/// A task's stack.
const STACK_BYTES: usize = 16 * 1024;
const STACK_WORDS: usize = STACK_BYTES / 8;
/// What an unused stack word holds: how far a stack was used shows, and its lowest word
/// is a canary (a task that overflowed its stack is stopped at its next switch).
const PAINT: u64 = 0x5354_4143_4b5f_5f5f;

#[repr(C, align(16))]
struct Stack([AtomicU64; STACK_WORDS]);

/// A stack for each task (their memory is the tasks' as the vectors and Rust code use
/// it; from here only plain loads and stores of whole words touch a stack: painting it
/// before its task runs, reading how much of it was used, and its canary).
static STACKS: [Stack; MAX_TASKS] = [const { Stack([const { AtomicU64::new(0) }; STACK_WORDS]) }; MAX_TASKS];

impl Stack {
    fn base(&self) -> u64 {
        self.0.as_ptr() as u64
    }

    /// Words never written since it was painted (from the bottom).
    fn unused_words(&self) -> usize {
        self.0.iter().take_while(|w| w.load(Relaxed) == PAINT).count()
    }
}

/// Set the kernel's clock (before any task is made) and whether task switches are traced.
pub fn init(clock: Clock, trace: bool) {
    KERNEL.with(|k| k.set_clock(clock));
    TRACE.store(trace, Relaxed);
}

/// Make a task: `entry` runs on a stack of its own at `priority` (larger is more
/// urgent), with IRQs unmasked. Panics if the table is full.
pub fn spawn(name: &'static str, priority: u8, entry: extern "C" fn() -> !) -> TaskId {
    KERNEL.with(|k| {
        let stack = STACKS.get(k.tasks().len()).expect("a stack for every task");
        // Paint it, then its first frame at the top: every register 0 but ELR_EL1 (the
        // entry) and SPSR_EL1.
        let frame = STACK_WORDS - FRAME_WORDS;
        for (i, w) in stack.0.iter().enumerate() {
            w.store(if i < frame { PAINT } else { 0 }, Relaxed);
        }
        stack.0[frame + ELR_WORD].store(entry as usize as u64, Relaxed);
        stack.0[frame + SPSR_WORD].store(TASK_PSTATE, Relaxed);
        let sp = stack.base() + (frame * 8) as u64;
        let id = k.spawn(name, priority, sp).expect("room in the task table");
        if TRACE.load(Relaxed) {
            hv::trace_task_name(id as u64, name);
        }
        id
    })
}

/// Make task `id` periodic: released at `start + k * period_us`, due `deadline_us`
/// after each release.
pub fn set_periodic(id: TaskId, start: u64, period_us: u64, deadline_us: u64) {
    KERNEL.with(|k| {
        let p = Periodic::new(k.clock(), start, period_us, deadline_us);
        k.set_periodic(id, p).expect("a task to make periodic");
    });
}

/// Make a semaphore.
pub fn semaphore(count: u32, limit: u32) -> SemId {
    KERNEL.with(|k| k.semaphore(Semaphore::new(count, limit)).expect("room for a semaphore"))
}

/// Start the tasks: the most urgent runs first. The boot code's stack is left behind.
pub fn start() -> ! {
    let (x0, x1) = Call::Start.encode();
    arch::svc(x0, x1);
    unreachable!("the boot code resumed after the first dispatch")
}

/// The exception handler (`arch.rs`'s vectors): `kind` is the vector's number, `frame`
/// the running task's registers, on its stack (x0 and x1 are a system call's
/// arguments). Returns the address of the frame to resume.
pub extern "C" fn exception(kind: u64, frame: &mut Frame) -> u64 {
    let now = cpu::counter();
    let call = match kind {
        CURRENT_SPX_IRQ => {
            interrupt();
            None
        }
        CURRENT_SPX_SYNC if mrs!("esr_el1") >> 26 == EC_SVC64 => {
            let (x0, x1) = (frame.x[0], frame.x[1]);
            Some(Call::decode(x0, x1).unwrap_or_else(|| panic!("no such system call {x0:#x}")))
        }
        _ => unexpected(kind, frame),
    };
    let sp = core::ptr::from_mut(frame) as u64;
    let (switch, next) = KERNEL.with(|k| {
        if let Some(me) = k.current() {
            check_stack(k, me, sp);
        }
        k.save(sp);
        if let Some(call) = call {
            k.call(call, now)
                .unwrap_or_else(|e| panic!("system call {call:?} refused: {e:?}"));
        }
        k.tick(now);
        let switch = k.schedule().expect("a ready task (the idle task always is)");
        match k.next_wakeup() {
            Some(at) => cpu::timer_arm(at),
            None => cpu::timer_off(),
        }
        (switch, k.sp(switch.to))
    });
    if switch.changed() && TRACE.load(Relaxed) {
        trace(switch);
    }
    next
}

/// `TRACE_TASK_SWITCH` with the task numbers (`u64::MAX`: the boot code).
fn trace(s: Switch) {
    let from = s.from.map_or(u64::MAX, |t| t as u64);
    hv::trace_task_switch(from, s.to as u64);
}

/// An IRQ: acknowledge it; the timer's is quieted (the kernel programs it again for the
/// next wake-up), anything else is only ended.
fn interrupt() {
    if let Some(irq) = gic::ack() {
        if irq.intid() == VTIMER_IRQ {
            cpu::timer_off();
        }
        gic::eoi(irq);
    }
}

/// Stop with a report on an exception no task should take.
fn unexpected(kind: u64, frame: &Frame) -> ! {
    let (esr, far) = (mrs!("esr_el1"), mrs!("far_el1"));
    println!(
        "rtos: unexpected exception (vector {:#x}) ESR={esr:#x} FAR={far:#x} ELR={:#x} SP={:#x}",
        kind * 0x80,
        frame.elr,
        core::ptr::from_ref(frame) as u64
    );
    hv::exit(hv::CRASHED)
}

/// Stop if task `me`'s stack overflowed: its frame below the stack, or the canary gone.
fn check_stack(k: &Kernel, me: TaskId, sp: u64) {
    let Some(stack) = STACKS.get(me) else { return };
    if sp < stack.base() + 256 || stack.0[0].load(Relaxed) != PAINT {
        let name = k.task(me).map_or("?", |t| t.name);
        panic!("task {me} ({name}) overflowed its stack");
    }
}

/// How much of each task's stack was used so far, in bytes: `(name, used, size)`.
pub fn stack_use(mut f: impl FnMut(&'static str, usize, usize)) {
    let names: heapless::Vec<&'static str, MAX_TASKS> = KERNEL.with(|k| k.tasks().iter().map(|t| t.name).collect());
    for (name, stack) in names.iter().zip(&STACKS) {
        f(name, STACK_BYTES - stack.unused_words() * 8, STACK_BYTES);
    }
}

/// Task switches so far.
pub fn switches() -> u64 {
    KERNEL.with(|k| k.switches())
}

/// Issue `call` from a task.
fn call(c: Call) {
    let (x0, x1) = c.encode();
    arch::svc(x0, x1);
}

/// The calling periodic task's job is done: wait for its next release (skipping those
/// whose deadline already passed) and return it.
pub fn wait_next_period() -> Job {
    call(Call::WaitNextPeriod);
    KERNEL
        .with(|k| k.current().and_then(|me| k.job(me)))
        .expect("a periodic task has a job once it waited")
}

/// Wait until the counter reaches `at`.
pub fn sleep_until(at: u64) {
    call(Call::SleepUntil(at));
}

/// Take a unit of semaphore `s`, waiting for one.
pub fn sem_wait(s: SemId) {
    call(Call::SemWait(s));
}

/// Give a unit of semaphore `s` (to the most urgent task waiting for it).
pub fn sem_signal(s: SemId) {
    call(Call::SemSignal(s));
}

/// End the calling task.
pub fn end() -> ! {
    call(Call::End);
    unreachable!("an ended task ran again")
}

/// A message queue between tasks: a ring of `N` messages and a semaphore counting
/// them. Sending never waits (a full queue drops the message and counts it); receiving
/// waits for a message. Not for the exception handler (it makes system calls).
pub struct Queue<T, const N: usize> {
    ring: IrqCell<MessageQueue<T, N>>,
    /// Its semaphore, once [`Queue::init`] made it.
    items: AtomicUsize,
}

impl<T: Send, const N: usize> Queue<T, N> {
    const UNMADE: usize = usize::MAX;

    pub const fn new() -> Self {
        Self {
            ring: IrqCell::new(MessageQueue::new()),
            items: AtomicUsize::new(Self::UNMADE),
        }
    }

    /// Make its semaphore (before the tasks start).
    pub fn init(&self) {
        let limit = u32::try_from(N).unwrap_or(u32::MAX);
        self.items.store(semaphore(0, limit), Relaxed);
    }

    fn items(&self) -> SemId {
        let s = self.items.load(Relaxed);
        assert_ne!(s, Self::UNMADE, "Queue::init before use");
        s
    }

    /// Send `m`, or give it back if the queue is full.
    pub fn send(&self, m: T) -> Result<(), T> {
        self.ring.with(|q| q.try_send(m))?;
        sem_signal(self.items());
        Ok(())
    }

    /// The oldest message, waiting for one.
    pub fn receive(&self) -> T {
        sem_wait(self.items());
        self.ring
            .with(MessageQueue::try_receive)
            .expect("a unit of the queue's semaphore is a message")
    }

    pub fn is_full(&self) -> bool {
        self.ring.with(|q| q.is_full())
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.ring.with(|q| q.dropped())
    }
}
