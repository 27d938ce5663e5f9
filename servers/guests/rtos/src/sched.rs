//! The kernel's state and decisions, without the hardware: a static table of tasks with
//! fixed priorities, which one runs, what a task's request (a system call) does, what
//! the timer releases, and when the timer must fire next. The guest's exception handler
//! (`arch.rs`, `rt.rs`) saves the running task's registers on its stack, hands the
//! kernel the stack pointer and the counter, lets it decide, programs the timer for
//! [`Kernel::next_wakeup`] and resumes the task [`Kernel::schedule`] chose.
//!
//! The rules:
//! - The ready task of the highest priority runs (larger numbers are more urgent); among
//!   ready tasks of one priority, the one that became ready first (a task preempted by a
//!   more urgent one stays first in its priority; [`Call::Yield`] puts it last).
//! - Preemption: whenever the handler runs (a timer interrupt, a system call), the choice
//!   is made again, so a release of a more urgent task switches to it at once.
//! - A task waits for its next periodic release, a time, or a semaphore; the timer is
//!   one-shot, programmed for the earliest release or wake-up (tickless).
//! - A semaphore's signal hands its unit to the most urgent waiting task (the first to
//!   wait among equals), or keeps it if nobody waits.

use heapless::Vec;

use crate::periodic::{Job, Periodic};
use crate::sync::Semaphore;
use crate::time::Clock;

/// The most tasks and semaphores a kernel has.
pub const MAX_TASKS: usize = 8;
pub const MAX_SEMAPHORES: usize = 4;

/// A task's number: its index in the table, in the order they were made (the number
/// `TRACE_TASK_SWITCH` reports).
pub type TaskId = usize;
/// A semaphore's number, in the order they were made.
pub type SemId = usize;

/// What a task is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Ready to run (the running task is ready too).
    Ready,
    /// Waiting for its next periodic release, at this counter value.
    Release(u64),
    /// Sleeping until this counter value.
    Sleep(u64),
    /// Waiting for a unit of this semaphore.
    Semaphore(SemId),
    /// Ended: it never runs again.
    Ended,
}

/// A task of the table.
#[derive(Clone, Copy, Debug)]
pub struct Task {
    pub name: &'static str,
    pub priority: u8,
    pub state: State,
    /// Its saved stack pointer: its registers are there while it does not run.
    sp: u64,
    /// When it became ready or began to wait for a semaphore (a sequence number): the
    /// order among tasks of one priority.
    order: u64,
    periodic: Option<Periodic>,
    /// Its current job, if it is periodic and has asked for one.
    job: Option<Job>,
}

impl Task {
    /// Its periodic timing, if it has one.
    pub const fn periodic(&self) -> Option<&Periodic> {
        self.periodic.as_ref()
    }
}

/// A request of the running task to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// The first dispatch, from the boot code (no task runs yet).
    Start,
    /// Let the other ready tasks of its priority run first.
    Yield,
    /// Its job is done: wait for its next release ([`Periodic::next_job`]).
    WaitNextPeriod,
    /// Wait until the counter reaches this value.
    SleepUntil(u64),
    /// Take a unit of this semaphore, waiting for one if there is none.
    SemWait(SemId),
    /// Give a unit of this semaphore (to the most urgent waiting task, if any).
    SemSignal(SemId),
    /// End the task.
    End,
}

impl Call {
    /// The call in two registers (`x0`, `x1`): what a task passes to the kernel.
    pub const fn encode(self) -> (u64, u64) {
        match self {
            Self::Start => (0, 0),
            Self::Yield => (1, 0),
            Self::WaitNextPeriod => (2, 0),
            Self::SleepUntil(t) => (3, t),
            Self::SemWait(s) => (4, s as u64),
            Self::SemSignal(s) => (5, s as u64),
            Self::End => (6, 0),
        }
    }

    /// The call two registers hold, if they hold one.
    pub fn decode(x0: u64, x1: u64) -> Option<Self> {
        let sem = || usize::try_from(x1).ok();
        Some(match x0 {
            0 => Self::Start,
            1 => Self::Yield,
            2 => Self::WaitNextPeriod,
            3 => Self::SleepUntil(x1),
            4 => Self::SemWait(sem()?),
            5 => Self::SemSignal(sem()?),
            6 => Self::End,
            _ => return None,
        })
    }
}

/// Why the kernel refused a call or a change of the table (a bug in the program).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A call that needs a running task with none running, or `Start` with one.
    NoTask,
    Started,
    /// `WaitNextPeriod` of a task that is not periodic.
    NotPeriodic,
    NoSuchTask,
    NoSuchSemaphore,
    /// A signal would take the semaphore past its limit.
    Overflow,
    /// The table is full.
    Full,
}

/// The current task changed (`from` is `None` at the first dispatch), or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    pub from: Option<TaskId>,
    pub to: TaskId,
}

impl Switch {
    /// True if another task runs now.
    pub fn changed(&self) -> bool {
        self.from != Some(self.to)
    }
}

/// The kernel's state.
#[derive(Debug)]
pub struct Kernel {
    tasks: Vec<Task, MAX_TASKS>,
    semaphores: Vec<Semaphore, MAX_SEMAPHORES>,
    current: Option<TaskId>,
    clock: Clock,
    /// The next sequence number for [`Task::order`].
    order: u64,
    /// Task switches so far.
    switches: u64,
}

impl Kernel {
    /// A kernel with no task yet, timing with `clock`.
    pub const fn new(clock: Clock) -> Self {
        Self {
            tasks: Vec::new(),
            semaphores: Vec::new(),
            current: None,
            clock,
            order: 0,
            switches: 0,
        }
    }

    pub const fn clock(&self) -> Clock {
        self.clock
    }

    /// Set the counter's frequency (before any task is made).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    /// Add a ready task with registers saved at `sp` (its first context).
    pub fn spawn(&mut self, name: &'static str, priority: u8, sp: u64) -> Result<TaskId, Error> {
        let order = self.next_order();
        let task = Task {
            name,
            priority,
            state: State::Ready,
            sp,
            order,
            periodic: None,
            job: None,
        };
        self.tasks.push(task).map_err(|_| Error::Full)?;
        Ok(self.tasks.len() - 1)
    }

    /// Make task `id` periodic (its first [`Call::WaitNextPeriod`] waits for release 0).
    pub fn set_periodic(&mut self, id: TaskId, periodic: Periodic) -> Result<(), Error> {
        self.tasks.get_mut(id).ok_or(Error::NoSuchTask)?.periodic = Some(periodic);
        Ok(())
    }

    /// Add a semaphore.
    pub fn semaphore(&mut self, s: Semaphore) -> Result<SemId, Error> {
        self.semaphores.push(s).map_err(|_| Error::Full)?;
        Ok(self.semaphores.len() - 1)
    }

    /// The running task (`None` before the first dispatch).
    pub const fn current(&self) -> Option<TaskId> {
        self.current
    }

    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id)
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Task switches so far.
    pub const fn switches(&self) -> u64 {
        self.switches
    }

    /// Task `id`'s current job.
    pub fn job(&self, id: TaskId) -> Option<Job> {
        self.tasks.get(id)?.job
    }

    /// The running task's registers are saved at `sp` (it was interrupted or called).
    pub fn save(&mut self, sp: u64) {
        if let Some(t) = self.current.and_then(|c| self.tasks.get_mut(c)) {
            t.sp = sp;
        }
    }

    /// Where task `id`'s registers are saved (0 for no such task).
    pub fn sp(&self, id: TaskId) -> u64 {
        self.tasks.get(id).map_or(0, |t| t.sp)
    }

    /// The running task's request `call`, at counter value `now`. A call that waits
    /// changes the task's state; [`Kernel::schedule`] then runs another.
    pub fn call(&mut self, call: Call, now: u64) -> Result<(), Error> {
        if call == Call::Start {
            return if self.current.is_none() {
                Ok(())
            } else {
                Err(Error::Started)
            };
        }
        let me = self.current.ok_or(Error::NoTask)?;
        match call {
            Call::Start => {}
            Call::Yield => self.tasks[me].order = self.next_order(),
            Call::WaitNextPeriod => {
                let task = &mut self.tasks[me];
                let job = task.periodic.as_mut().ok_or(Error::NotPeriodic)?.next_job(now);
                task.job = Some(job);
                if job.release > now {
                    task.state = State::Release(job.release);
                }
            }
            Call::SleepUntil(t) => {
                if t > now {
                    self.tasks[me].state = State::Sleep(t);
                }
            }
            Call::SemWait(s) => {
                let sem = self.semaphores.get_mut(s).ok_or(Error::NoSuchSemaphore)?;
                if !sem.try_take() {
                    let order = self.next_order();
                    let task = &mut self.tasks[me];
                    (task.state, task.order) = (State::Semaphore(s), order);
                }
            }
            Call::SemSignal(s) => self.signal(s)?,
            Call::End => self.tasks[me].state = State::Ended,
        }
        Ok(())
    }

    /// Give a unit of semaphore `s`: to the most urgent task waiting for it (the first
    /// to wait among equals), which becomes ready, or to the semaphore.
    pub fn signal(&mut self, s: SemId) -> Result<(), Error> {
        if s >= self.semaphores.len() {
            return Err(Error::NoSuchSemaphore);
        }
        let waiter = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == State::Semaphore(s))
            .max_by_key(|(_, t)| (t.priority, u64::MAX - t.order))
            .map(|(i, _)| i);
        match waiter {
            Some(i) => {
                self.ready(i);
                Ok(())
            }
            None => self.semaphores[s].give().map_err(|_| Error::Overflow),
        }
    }

    fn ready(&mut self, id: TaskId) {
        let order = self.next_order();
        let task = &mut self.tasks[id];
        (task.state, task.order) = (State::Ready, order);
    }

    /// The counter reached `now`: tasks whose release or wake-up time has come are ready.
    pub fn tick(&mut self, now: u64) {
        for i in 0..self.tasks.len() {
            if let State::Release(t) | State::Sleep(t) = self.tasks[i].state
                && t <= now
            {
                self.ready(i);
            }
        }
    }

    /// When the timer must fire next: the earliest release or wake-up (`None`: no
    /// task waits for a time, the timer may stay off).
    pub fn next_wakeup(&self) -> Option<u64> {
        self.tasks
            .iter()
            .filter_map(|t| match t.state {
                State::Release(at) | State::Sleep(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Choose the task to run: the most urgent ready one, the first ready among equals.
    /// `None` if no task is ready (a program without an idle task).
    pub fn schedule(&mut self) -> Option<Switch> {
        let to = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.state == State::Ready)
            .max_by_key(|(_, t)| (t.priority, u64::MAX - t.order))
            .map(|(i, _)| i)?;
        let switch = Switch { from: self.current, to };
        if switch.changed() {
            self.switches += 1;
        }
        self.current = Some(to);
        Some(switch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock::new(62_500_000);
    /// 1 ms.
    const MS: u64 = 62_500;

    /// A measurement task (priority 30, periodic 1 ms from `start`), a reporter (20)
    /// and idle (0), dispatched.
    fn kernel(start: u64) -> Kernel {
        let mut k = Kernel::new(CLOCK);
        assert_eq!(k.spawn("measure", 30, 0x100), Ok(0));
        assert_eq!(k.spawn("reporter", 20, 0x200), Ok(1));
        assert_eq!(k.spawn("idle", 0, 0x300), Ok(2));
        k.set_periodic(0, Periodic::new(CLOCK, start, 1000, 1000)).unwrap();
        assert_eq!(k.semaphore(Semaphore::new(0, 16)), Ok(0));
        k.call(Call::Start, 0).unwrap();
        assert_eq!(k.schedule(), Some(Switch { from: None, to: 0 }));
        k
    }

    #[test]
    fn the_most_urgent_ready_task_runs_and_a_release_preempts() {
        let mut k = kernel(MS);
        // measure waits for release 0; the reporter waits for a message; idle runs.
        k.call(Call::WaitNextPeriod, 10).unwrap();
        assert_eq!(k.task(0).unwrap().state, State::Release(MS));
        assert_eq!(k.schedule(), Some(Switch { from: Some(0), to: 1 }));
        k.call(Call::SemWait(0), 20).unwrap();
        assert_eq!(k.schedule(), Some(Switch { from: Some(1), to: 2 }));
        assert_eq!(k.next_wakeup(), Some(MS));
        // An interrupt before the release changes nothing.
        k.save(0x2f0);
        k.tick(MS - 1);
        assert_eq!(k.schedule(), Some(Switch { from: Some(2), to: 2 }));
        // The release: measure preempts idle, whose context stays where it was saved.
        k.tick(MS + 3);
        assert_eq!(k.schedule(), Some(Switch { from: Some(2), to: 0 }));
        assert_eq!(k.sp(2), 0x2f0);
        assert_eq!(k.job(0).map(|j| (j.index, j.release)), Some((0, MS)));
        assert_eq!(k.next_wakeup(), None);
        // Its message wakes the reporter, which is less urgent: measure goes on.
        k.call(Call::SemSignal(0), MS + 100).unwrap();
        assert_eq!(k.task(1).unwrap().state, State::Ready);
        assert_eq!(k.schedule(), Some(Switch { from: Some(0), to: 0 }));
        // Its job done, the reporter runs; the next release preempts the reporter.
        k.call(Call::WaitNextPeriod, MS + 200).unwrap();
        assert_eq!(k.schedule(), Some(Switch { from: Some(0), to: 1 }));
        assert_eq!(k.next_wakeup(), Some(2 * MS));
        k.tick(2 * MS);
        assert_eq!(k.schedule(), Some(Switch { from: Some(1), to: 0 }));
        assert_eq!(k.switches(), 6);
    }

    #[test]
    fn a_job_asked_for_late_runs_at_once() {
        let mut k = kernel(MS);
        k.call(Call::WaitNextPeriod, 10).unwrap();
        k.schedule();
        k.tick(MS);
        k.schedule();
        // Job 0 ends after release 1 (an overrun): job 1 is handed out at once.
        k.call(Call::WaitNextPeriod, 2 * MS + 5).unwrap();
        assert_eq!(k.task(0).unwrap().state, State::Ready);
        let job = k.job(0).unwrap();
        assert_eq!((job.index, job.overrun, job.skipped), (1, true, 0));
        assert_eq!(k.schedule(), Some(Switch { from: Some(0), to: 0 }));
    }

    #[test]
    fn equal_priorities_take_turns_in_the_order_they_became_ready() {
        let mut k = Kernel::new(CLOCK);
        for name in ["a", "b", "c"] {
            k.spawn(name, 5, 0).unwrap();
        }
        k.call(Call::Start, 0).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(0));
        // Preempting nothing: a keeps running until it yields.
        k.tick(100);
        assert_eq!(k.schedule().map(|s| s.to), Some(0));
        k.call(Call::Yield, 100).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(1));
        // b sleeps; c runs, then a; b, woken, comes after them.
        k.call(Call::SleepUntil(500), 200).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(2));
        k.tick(500);
        k.call(Call::Yield, 500).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(0));
        k.call(Call::Yield, 600).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(1));
        // Sleeping until a time already passed does not wait.
        k.call(Call::SleepUntil(10), 700).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(1));
    }

    #[test]
    fn a_signal_wakes_the_most_urgent_waiter_first() {
        let mut k = Kernel::new(CLOCK);
        let low = k.spawn("low", 1, 0).unwrap();
        let high = k.spawn("high", 9, 0).unwrap();
        let low2 = k.spawn("low2", 1, 0).unwrap();
        let main = k.spawn("main", 10, 0).unwrap();
        let s = k.semaphore(Semaphore::new(0, 1)).unwrap();
        k.call(Call::Start, 0).unwrap();
        // Each of the three waits in turn (main is the most urgent: run them by hand).
        for t in [low, high, low2] {
            k.current = Some(t);
            k.call(Call::SemWait(s), 0).unwrap();
        }
        k.current = Some(main);
        k.call(Call::SemSignal(s), 0).unwrap();
        assert_eq!(k.task(high).unwrap().state, State::Ready);
        k.call(Call::SemSignal(s), 0).unwrap();
        assert_eq!(k.task(low).unwrap().state, State::Ready, "the first of equals");
        assert_eq!(k.task(low2).unwrap().state, State::Semaphore(s));
        k.call(Call::SemSignal(s), 0).unwrap();
        // Nobody waits: the unit stays, up to the limit.
        k.call(Call::SemSignal(s), 0).unwrap();
        assert_eq!(k.call(Call::SemSignal(s), 0), Err(Error::Overflow));
        // A wait with a unit there takes it without waiting.
        k.call(Call::SemWait(s), 0).unwrap();
        assert_eq!(k.task(main).unwrap().state, State::Ready);
        k.call(Call::SemWait(s), 0).unwrap();
        assert_eq!(k.task(main).unwrap().state, State::Semaphore(s));
    }

    #[test]
    fn bad_calls_are_refused_and_ended_tasks_never_run() {
        let mut k = Kernel::new(CLOCK);
        assert_eq!(k.call(Call::Yield, 0), Err(Error::NoTask));
        assert_eq!(k.schedule(), None, "no task");
        k.spawn("a", 1, 0).unwrap();
        k.call(Call::Start, 0).unwrap();
        k.schedule();
        assert_eq!(k.call(Call::Start, 0), Err(Error::Started));
        assert_eq!(k.call(Call::WaitNextPeriod, 0), Err(Error::NotPeriodic));
        assert_eq!(k.call(Call::SemWait(3), 0), Err(Error::NoSuchSemaphore));
        assert_eq!(k.call(Call::SemSignal(3), 0), Err(Error::NoSuchSemaphore));
        assert_eq!(k.set_periodic(7, Periodic::new(CLOCK, 0, 1, 1)), Err(Error::NoSuchTask));
        k.call(Call::End, 0).unwrap();
        assert_eq!(k.schedule(), None);
        for i in 1..MAX_TASKS {
            k.spawn("more", 1, 0).unwrap();
            assert_eq!(k.tasks().len(), i + 1);
        }
        assert_eq!(k.spawn("too many", 1, 0), Err(Error::Full));
    }

    #[test]
    fn the_timer_is_for_the_earliest_wakeup() {
        let mut k = kernel(5 * MS);
        k.spawn("sleeper", 25, 0).unwrap();
        k.call(Call::WaitNextPeriod, 0).unwrap();
        assert_eq!(k.schedule().map(|s| s.to), Some(3));
        k.call(Call::SleepUntil(2 * MS), 0).unwrap();
        assert_eq!(k.next_wakeup(), Some(2 * MS));
        k.tick(2 * MS);
        assert_eq!(k.next_wakeup(), Some(5 * MS));
    }

    #[test]
    fn calls_go_through_two_registers() {
        for c in [
            Call::Start,
            Call::Yield,
            Call::WaitNextPeriod,
            Call::SleepUntil(u64::MAX),
            Call::SemWait(3),
            Call::SemSignal(0),
            Call::End,
        ] {
            let (x0, x1) = c.encode();
            assert_eq!(Call::decode(x0, x1), Some(c));
        }
        assert_eq!(Call::decode(7, 0), None);
    }
}
