//! Output on the VMM's PL011: 32-bit stores of each byte to its data register (the
//! emulated transmitter is always ready, so the flag register need not be polled).

use core::fmt;

use gaon_vmm::layout;

use crate::mmio::Mmio;

// SAFETY: the PL011's page is a device the VMM emulates; no memory of the program's.
const UART: Mmio = unsafe { Mmio::new(layout::UART) };
/// The data register.
const DR: u64 = 0x000;

/// The UART, for `core::fmt` (`\n` goes out as `\r\n`).
#[derive(Debug)]
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                UART.w32(DR, u64::from(b'\r'));
            }
            UART.w32(DR, u64::from(b));
        }
        Ok(())
    }
}

/// Print `args` and a newline.
pub fn println(args: fmt::Arguments<'_>) {
    // Writing to the UART cannot fail.
    let _ = fmt::Write::write_fmt(&mut Uart, format_args!("{args}\n"));
}

/// `println!` as std has it, on the UART.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::uart::println(format_args!($($arg)*))
    };
}
