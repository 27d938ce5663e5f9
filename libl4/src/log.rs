//! Logging: `libl4::print!` and `libl4::println!` write to the console server through
//! the program's `console` channel (generated `Console` stubs), which shows each line
//! with the program's name as a prefix. A program without that channel (the root
//! server, the console server itself, or before the system is up) writes to the kernel
//! debug console instead.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

use crate::idl::console::ConsoleClient;
use crate::rpc::EndpointTransport;

/// The channel name logging looks for.
pub const CONSOLE_CHANNEL: &str = "console";

/// Bytes gathered before they are sent as one `write`.
const CHUNK: usize = 256;

/// 0 = not looked up yet, 1 = no console channel, 2 = named and ready.
static STATE: AtomicU8 = AtomicU8::new(0);

fn console() -> Option<ConsoleClient<EndpointTransport>> {
    let ep = crate::start::client(CONSOLE_CHANNEL).ok()?;
    let client = ConsoleClient::new(EndpointTransport { ep: ep.0 });
    if STATE.load(Ordering::Relaxed) == 0 {
        // The prefix the console shows for this program.
        let ok = client.set_name(crate::start::name()).is_ok();
        STATE.store(if ok { 2 } else { 1 }, Ordering::Relaxed);
    }
    (STATE.load(Ordering::Relaxed) == 2).then_some(client)
}

/// A `fmt::Write` that gathers text and sends it to the console in chunks.
#[derive(Debug)]
pub struct Logger {
    buf: heapless::String<CHUNK>,
}

impl Logger {
    /// An empty logger.
    pub const fn new() -> Self {
        Self {
            buf: heapless::String::new(),
        }
    }

    /// Send what is gathered.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let sent = match console() {
            Some(c) => c.write(&self.buf).is_ok(),
            None => false,
        };
        if !sent {
            // No console (or it failed): the kernel's debug console still works.
            let _ = crate::debug::DebugConsole.write_str(&self.buf);
        }
        self.buf.clear();
    }
}

impl Default for Logger {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Logger {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.buf.push(c).is_err() {
                self.flush();
                let _ = self.buf.push(c);
            }
        }
        Ok(())
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Print `args` to the console server (or the debug console without one). libl4's own
/// messages (a panic, a refused request) go this way; a program prints with `print!`,
/// which also declares it a client of `Console`.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut logger = Logger::new();
    let _ = logger.write_fmt(args);
}

/// Print to the console server (or the debug console without one). A program that
/// prints declares itself a client of the `Console` interface, so the image tool refuses
/// a description that gives it no console channel (its output would go nowhere); a
/// program that prints only if it has one says `libl4::uses_optional!(console)`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        $crate::__idl_record!(
            $crate::gaon_abi::system::ROLE_USES | $crate::gaon_abi::system::ROLE_PRINTS,
            $crate::idl::console::INTERFACE
        );
        $crate::log::print_fmt(format_args!($($arg)*));
    }};
}

/// Print a line to the console server (or the debug console without one); see `print!`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print!("{}\n", format_args!($($arg)*)) };
}
