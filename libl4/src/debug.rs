//! Formatted output through the kernel debug console. The console server replaces this
//! for normal logging; this path works before any server is up.

use core::fmt::{self, Write};

/// A `fmt::Write` onto the debug console.
#[derive(Debug, Default)]
pub struct DebugConsole;

impl Write for DebugConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(crate::syscall::debug_put_char);
        Ok(())
    }
}

/// Print to the kernel debug console.
#[macro_export]
macro_rules! debug_print {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::debug::DebugConsole, format_args!($($arg)*));
    }};
}

/// Print a line to the kernel debug console.
#[macro_export]
macro_rules! debug_println {
    () => { $crate::debug_print!("\n") };
    ($($arg:tt)*) => { $crate::debug_print!("{}\n", format_args!($($arg)*)) };
}
