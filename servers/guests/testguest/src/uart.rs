//! Output on the VMM's PL011: 32-bit stores of each byte to its data register (the
//! emulated transmitter is always ready, so the flag register need not be polled).

use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

use gaon_vmm::layout;

use crate::mmio::Mmio;

// SAFETY: the PL011's page is a device the VMM emulates; no memory of the program's.
const UART: Mmio = unsafe { Mmio::new(layout::UART) };
/// The data register.
const DR: u64 = 0x000;

/// The flag register, and its receive-FIFO-empty bit.
const FR: u64 = 0x018;
const FR_RXFE: u64 = 1 << 4;
/// The interrupt mask register, and its receive and receive-timeout bits.
const IMSC: u64 = 0x038;
const IMSC_RX: u64 = 1 << 4 | 1 << 6;

/// Bytes received (by the interrupt handler), at most `RECEIVED.len()`.
static RECEIVED: [AtomicU8; 64] = [const { AtomicU8::new(0) }; 64];
static RECEIVED_LEN: AtomicUsize = AtomicUsize::new(0);

/// Take receive interrupts, or stop.
pub fn receive(on: bool) {
    UART.w32(IMSC, if on { IMSC_RX } else { 0 });
}

/// The receive interrupt's work: empty the FIFO into [`RECEIVED`] (what does not fit is
/// dropped), which lowers the line.
pub fn drain() {
    while UART.r32(FR) & FR_RXFE == 0 {
        let b = u8::try_from(UART.r32(DR) & 0xff).unwrap_or(0);
        let n = RECEIVED_LEN.load(Relaxed);
        if let Some(slot) = RECEIVED.get(n) {
            slot.store(b, Relaxed);
            RECEIVED_LEN.store(n + 1, Relaxed);
        }
    }
}

/// The bytes received so far (in a buffer, and how many).
pub fn received() -> ([u8; 64], usize) {
    let n = RECEIVED_LEN.load(Relaxed).min(RECEIVED.len());
    let mut bytes = [0; 64];
    for (b, r) in bytes.iter_mut().zip(&RECEIVED[..n]) {
        *b = r.load(Relaxed);
    }
    (bytes, n)
}

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
