//! The UART drivers: ARM PL011 (QEMU virt, Raspberry Pi 3) and Cadence UART (Zynq
//! UltraScale+), through the device window the description maps (`pl011` or `cadence`).
//! Output is polled; input raises an interrupt.

use libl4::mmio::Mmio;

/// A UART.
#[derive(Debug)]
pub enum Uart {
    /// ARM PL011.
    Pl011(Mmio),
    /// Cadence UART.
    Cadence(Mmio),
}

mod pl011 {
    pub const DR: u64 = 0x00;
    pub const FR: u64 = 0x18;
    pub const FR_RXFE: u32 = 1 << 4;
    pub const FR_TXFF: u32 = 1 << 5;
    pub const IMSC: u64 = 0x38;
    pub const ICR: u64 = 0x44;
    /// Receive and receive-timeout interrupts.
    pub const INT_RX: u32 = (1 << 4) | (1 << 6);
}

mod cadence {
    pub const IER: u64 = 0x08;
    pub const ISR: u64 = 0x14;
    pub const RXTOUT: u64 = 0x1c;
    pub const RXWM: u64 = 0x20;
    pub const SR: u64 = 0x2c;
    pub const SR_RXEMPTY: u32 = 1 << 1;
    pub const SR_TXFULL: u32 = 1 << 4;
    pub const FIFO: u64 = 0x30;
    /// Receive trigger and receive timeout interrupts.
    pub const INT_RX: u32 = 1 | (1 << 8);
}

/// Spins before a full transmit FIFO is declared stuck and the byte dropped.
const TX_SPINS: u32 = 1 << 20;

impl Uart {
    /// The UART this server was given, if any.
    pub fn find() -> Option<Self> {
        if let Ok(m) = Mmio::named("pl011") {
            Some(Self::Pl011(m))
        } else {
            Mmio::named("cadence").ok().map(Self::Cadence)
        }
    }

    /// Its name, for messages.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Pl011(_) => "PL011",
            Self::Cadence(_) => "Cadence",
        }
    }

    /// Send one byte, waiting while the transmit FIFO is full.
    pub fn put(&self, b: u8) {
        let (m, status, full, data) = match self {
            Self::Pl011(m) => (m, pl011::FR, pl011::FR_TXFF, pl011::DR),
            Self::Cadence(m) => (m, cadence::SR, cadence::SR_TXFULL, cadence::FIFO),
        };
        for _ in 0..TX_SPINS {
            if m.read(status) & full == 0 {
                m.write(data, u32::from(b));
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// Send text, turning `\n` into `\r\n`.
    pub fn puts(&self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    /// One received byte, if any.
    pub fn get(&self) -> Option<u8> {
        match self {
            Self::Pl011(m) => (m.read(pl011::FR) & pl011::FR_RXFE == 0).then(|| m.read(pl011::DR) as u8),
            Self::Cadence(m) => (m.read(cadence::SR) & cadence::SR_RXEMPTY == 0).then(|| m.read(cadence::FIFO) as u8),
        }
    }

    /// Raise an interrupt when input arrives.
    pub fn enable_rx_interrupt(&self) {
        match self {
            Self::Pl011(m) => {
                m.write(pl011::ICR, pl011::INT_RX);
                m.write(pl011::IMSC, m.read(pl011::IMSC) | pl011::INT_RX);
            }
            Self::Cadence(m) => {
                m.write(cadence::RXWM, 1);
                m.write(cadence::RXTOUT, 8);
                m.write(cadence::ISR, cadence::INT_RX);
                m.write(cadence::IER, cadence::INT_RX);
            }
        }
    }

    /// Clear the receive interrupt (after draining the FIFO).
    pub fn clear_rx_interrupt(&self) {
        match self {
            Self::Pl011(m) => m.write(pl011::ICR, pl011::INT_RX),
            Self::Cadence(m) => m.write(cadence::ISR, cadence::INT_RX),
        }
    }
}
