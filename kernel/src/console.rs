//! The kernel console: formatted output on the board's UART, behind a lock.

use core::fmt::{self, Write};

use crate::drivers::uart::Console;

static CONSOLE: spin::Once<spin::Mutex<Console>> = spin::Once::new();

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

/// Print formatted text. Used by `kprint!`/`kprintln!`.
pub fn print(args: fmt::Arguments<'_>) {
    if let Some(c) = CONSOLE.get() {
        let _ = Writer(&mut c.lock()).write_fmt(args);
    }
}

/// Print one raw byte (the debug-putchar syscall).
pub fn put_byte(b: u8) {
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
            // SAFETY: see above; this CPU is the only one running and it stops after this.
            unsafe { c.force_unlock() };
        }
        let _ = Writer(&mut c.lock()).write_fmt(args);
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
