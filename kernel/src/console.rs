//! The kernel console: formatted output on the board's UART, behind a lock, or, once a
//! user-level reader has bound a notification to it (`DebugLogBind`), appended to the
//! kernel log page (`gaon_abi::klog`) for that reader to print: the console server owns
//! the UART from then on, and the kernel never waits on it. A panic or a halt prints
//! what the reader has not taken yet, then prints directly.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use gaon_abi::klog;

use crate::drivers::uart::Console;

static CONSOLE: spin::Once<spin::Mutex<Console>> = spin::Once::new();

/// The kernel log page while a reader is bound, and the kernel's own head counter (the
/// page's copy is for the reader; the kernel never trusts what it reads back).
static LOG: spin::Mutex<Option<Log>> = spin::Mutex::new(None);
/// Output went to the log page since the kernel core last asked.
static LOG_WRITTEN: AtomicBool = AtomicBool::new(false);

struct Log {
    page: usize,
    head: u64,
}

impl Log {
    fn put(&mut self, b: u8) {
        // SAFETY: `page` is the kernel log page, a RAM frame the kernel allocated at boot
        // and never frees, mapped in the kernel's identity map; `offset` stays inside it.
        unsafe {
            ((self.page + klog::offset(self.head)) as *mut u8).write_volatile(b);
        }
        self.head += 1;
        // SAFETY: as above; the head counter is the page's first, aligned word.
        unsafe {
            ((self.page + klog::HEAD) as *mut u64).write_volatile(self.head);
        }
    }

    /// What the reader has not taken yet (its tail, read as a hint and clamped).
    fn unread(&self) -> klog::Span {
        // SAFETY: as in `put`; the reader may write anything there, and `Span` clamps it.
        let tail = unsafe { ((self.page + klog::TAIL) as *const u64).read_volatile() };
        klog::Span::new(self.head, tail)
    }
}

/// Send console output to the log page at `page` from now on.
pub fn set_log(page: usize) {
    let mut log = LOG.lock();
    let head = log.as_ref().map_or(0, |l| l.head);
    *log = Some(Log { page, head });
}

/// True (once) if output went to the log page since the last call.
pub fn take_log_written() -> bool {
    LOG_WRITTEN.load(Ordering::Relaxed) && LOG_WRITTEN.swap(false, Ordering::Relaxed)
}

/// Print what the log's reader has not taken yet on the UART, and print directly from
/// now on: the machine halts or panics, and the reader will not run again.
fn flush_log(c: &mut Console) {
    let Some(l) = LOG.try_lock().and_then(|mut g| g.take()) else {
        return;
    };
    let span = l.unread();
    for pos in span.from..span.to {
        // SAFETY: as in `Log::put`.
        let b = unsafe { ((l.page + klog::offset(pos)) as *const u8).read_volatile() };
        if b == b'\n' {
            c.put(b'\r');
        }
        c.put(b);
    }
}

/// Stop using the log page: print what it still holds, then the UART is the kernel's
/// again (a halt).
pub fn flush_log_direct() {
    if let Some(c) = CONSOLE.get() {
        flush_log(&mut c.lock());
    }
}

/// Take over the board's UART. Output before this is dropped.
pub fn init() {
    CONSOLE.call_once(|| spin::Mutex::new(Console::new(crate::board::UART)));
}

struct Writer<'a>(&'a mut Console);

impl Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.put(b'\r');
            }
            self.0.put(b);
        }
        Ok(())
    }
}

struct LogWriter<'a>(&'a mut Log);

impl Write for LogWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.0.put(b));
        Ok(())
    }
}

/// Print formatted text. Used by `kprint!`/`kprintln!`.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(l) = LOG.lock().as_mut() {
        let _ = LogWriter(l).write_fmt(args);
        LOG_WRITTEN.store(true, Ordering::Relaxed);
        return;
    }
    if let Some(c) = CONSOLE.get() {
        let _ = Writer(&mut c.lock()).write_fmt(args);
    }
}

/// Print one raw byte (the debug-putchar syscall).
pub fn put_byte(b: u8) {
    if let Some(l) = LOG.lock().as_mut() {
        l.put(b);
        LOG_WRITTEN.store(true, Ordering::Relaxed);
        return;
    }
    if let Some(c) = CONSOLE.get() {
        let mut c = c.lock();
        if b == b'\n' {
            c.put(b'\r');
        }
        c.put(b);
    }
}

/// Print from a panic: steals the lock if the panicking code held it.
pub fn print_emergency(args: fmt::Arguments<'_>) {
    if let Some(c) = CONSOLE.get() {
        // SAFETY-free path: a held lock means the owner will never run again (we are
        // about to stop the machine), so forcing it open loses nothing.
        if c.is_locked() {
            // SAFETY: see above. Only CPU 0 runs kernel code after boot (the others park
            // and print only if they fail to come up), and the machine stops after this.
            unsafe { c.force_unlock() };
        }
        let mut c = c.lock();
        flush_log(&mut c);
        let _ = Writer(&mut c).write_fmt(args);
    }
}

/// Print to the kernel console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Print a line to the kernel console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
