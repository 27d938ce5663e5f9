//! Polled console UARTs: Arm PL011 and Cadence (Zynq UltraScale+).
//!
//! The kernel only transmits; receive belongs to the user-level console server. Baud
//! rate and clocks are left as the loader or firmware configured them.

use super::{read32, write32};
use crate::board::Uart;

// PL011 registers and bits.
const PL011_DR: usize = 0x00;
const PL011_FR: usize = 0x18;
const PL011_LCRH: usize = 0x2c;
const PL011_CR: usize = 0x30;
const PL011_FR_TXFF: u32 = 1 << 5;
const PL011_FR_BUSY: u32 = 1 << 3;
const PL011_LCRH_8N1_FIFO: u32 = (0b11 << 5) | (1 << 4);
const PL011_CR_ENABLE_TX_RX: u32 = 1 | (1 << 8) | (1 << 9);

// Cadence registers and bits.
const CDNS_CR: usize = 0x00;
const CDNS_MR: usize = 0x04;
const CDNS_SR: usize = 0x2c;
const CDNS_FIFO: usize = 0x30;
const CDNS_CR_TX_EN_RX_EN: u32 = (1 << 4) | (1 << 2);
const CDNS_MR_8N1: u32 = 0b100 << 3; // no parity, 8 data bits, 1 stop bit
const CDNS_SR_TXFULL: u32 = 1 << 4;

/// Polls of a full transmit FIFO before a byte is dropped (far longer than a byte
/// takes at any baud rate the boards use).
const SPIN_LIMIT: u32 = 1 << 20;

/// A console UART.
#[derive(Debug)]
pub struct Console {
    uart: Uart,
}

impl Console {
    /// Take over the board's UART: 8N1, FIFOs on, transmitter enabled.
    pub fn new(uart: Uart) -> Self {
        // SAFETY: the board description names this UART's registers; the kernel is the
        // only user of the console UART until the console server takes it over.
        unsafe {
            match uart {
                Uart::Pl011(base) => {
                    while read32(base + PL011_FR) & PL011_FR_BUSY != 0 {}
                    write32(base + PL011_CR, 0);
                    write32(base + PL011_LCRH, PL011_LCRH_8N1_FIFO);
                    write32(base + PL011_CR, PL011_CR_ENABLE_TX_RX);
                }
                Uart::Cadence(base) => {
                    write32(base + CDNS_MR, CDNS_MR_8N1);
                    write32(base + CDNS_CR, CDNS_CR_TX_EN_RX_EN);
                }
            }
        }
        Self { uart }
    }

    /// Send one byte, waiting for FIFO space, but not for ever: a UART whose
    /// transmitter a user-level server stopped drops the byte after `SPIN_LIMIT` polls
    /// (the kernel prints directly only before the console server runs, and at a halt
    /// or a panic).
    pub fn put(&mut self, byte: u8) {
        let (status, full, data) = match self.uart {
            Uart::Pl011(base) => (base + PL011_FR, PL011_FR_TXFF, base + PL011_DR),
            Uart::Cadence(base) => (base + CDNS_SR, CDNS_SR_TXFULL, base + CDNS_FIFO),
        };
        for _ in 0..SPIN_LIMIT {
            // SAFETY: as in `new`; these are the status and data registers of our UART.
            unsafe {
                if read32(status) & full == 0 {
                    write32(data, u32::from(byte));
                    return;
                }
            }
        }
    }
}
