//! An emulated PL011 UART, enough for Linux's `amba-pl011` driver (and its early
//! console) and for bare-metal guests: transmitting is instant (the bytes go to the
//! VMM, which hands them to the console server), receiving takes bytes the VMM pushes
//! from the console's input, and the interrupt works as the hardware's (RX, receive
//! timeout and TX, masked by IMSC, cleared by ICR).

use crate::device::{Device, narrow};

/// Registers.
mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    /// PeriphID0..3 and PCellID0..3, which the AMBA bus reads to match a driver.
    pub const ID: u64 = 0xfe0;
}

/// FR bits.
const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;
/// Interrupt bits (RIS, MIS, IMSC, ICR).
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
const INT_ALL: u32 = 0x7ff;

/// The ID registers: a PL011 r1p5 (what QEMU's is too).
const ID: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Receive FIFO depth.
const RX_FIFO: usize = 32;
/// Transmitted bytes kept for the VMM at most (it takes them after each store).
const TX_BUFFER: usize = 256;

/// The UART.
#[derive(Debug)]
pub struct Pl011 {
    base: u64,
    intid: u32,
    rx: heapless::Deque<u8, RX_FIFO>,
    tx: heapless::Vec<u8, TX_BUFFER>,
    /// Raw interrupt status (RIS) for TX; RX and receive timeout follow the FIFO.
    tx_raised: bool,
    imsc: u32,
    /// Registers only read back: IBRD, FBRD, LCR_H, CR, IFLS, DMACR, ILPR.
    regs: [u32; 7],
}

impl Pl011 {
    /// A UART at `base` raising `intid`.
    pub fn new(base: u64, intid: u32) -> Self {
        Self {
            base,
            intid,
            rx: heapless::Deque::new(),
            tx: heapless::Vec::new(),
            tx_raised: false,
            imsc: 0,
            // CR: UART, TX and RX enabled (reset value 0x300 plus UARTEN, as firmware
            // leaves it); IFLS: half-full triggers.
            regs: [0, 0, 0, 0x301, 0x12, 0, 0],
        }
    }

    /// Bytes the guest sent since the last call.
    pub fn take_output(&mut self) -> heapless::Vec<u8, TX_BUFFER> {
        core::mem::take(&mut self.tx)
    }

    /// True if transmitted bytes wait for the VMM.
    pub fn has_output(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Input for the guest; returns how many bytes fitted in the receive FIFO.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        bytes.iter().take_while(|&&b| self.rx.push_back(b).is_ok()).count()
    }

    /// Room in the receive FIFO.
    pub fn input_room(&self) -> usize {
        RX_FIFO - self.rx.len()
    }

    fn ris(&self) -> u32 {
        let rx = if self.rx.is_empty() { 0 } else { INT_RX | INT_RT };
        rx | if self.tx_raised { INT_TX } else { 0 }
    }

    fn fr(&self) -> u32 {
        let rx = if self.rx.is_empty() { FR_RXFE } else { 0 };
        let full = if self.rx.is_full() { FR_RXFF } else { 0 };
        FR_TXFE | rx | full
    }

    fn slot(off: u64) -> Option<usize> {
        match off {
            reg::IBRD => Some(0),
            reg::FBRD => Some(1),
            reg::LCR_H => Some(2),
            reg::CR => Some(3),
            reg::IFLS => Some(4),
            reg::DMACR => Some(5),
            reg::ILPR => Some(6),
            _ => None,
        }
    }
}

impl Device for Pl011 {
    fn name(&self) -> &'static str {
        "pl011"
    }

    fn range(&self) -> (u64, u64) {
        (self.base, 0x1000)
    }

    fn read(&mut self, off: u64, size: u8) -> u64 {
        let (word, shift) = (off & !3, off & 3);
        let v = match word {
            reg::DR => u32::from(self.rx.pop_front().unwrap_or(0)),
            reg::RSR => 0,
            reg::FR => self.fr(),
            reg::IMSC => self.imsc,
            reg::RIS => self.ris(),
            reg::MIS => self.ris() & self.imsc,
            w if (reg::ID..reg::ID + 0x20).contains(&w) => u32::from(ID[((w - reg::ID) / 4) as usize]),
            w => Self::slot(w).map_or(0, |i| self.regs[i]),
        };
        narrow(v, shift, size)
    }

    fn write(&mut self, off: u64, _size: u8, value: u64) {
        let v = value as u32;
        match off {
            reg::DR => {
                // A full buffer drops bytes (the VMM takes them after every store).
                let _ = self.tx.push(v as u8);
                self.tx_raised = true;
            }
            reg::IMSC => self.imsc = v & INT_ALL,
            reg::ICR => {
                if v & INT_TX != 0 {
                    self.tx_raised = false;
                }
            }
            w => {
                if let Some(i) = Self::slot(w) {
                    self.regs[i] = v;
                }
            }
        }
    }

    fn irq(&self) -> Option<(u32, bool)> {
        Some((self.intid, self.ris() & self.imsc != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_amba_driver() {
        let mut u = Pl011::new(0x0900_0000, 33);
        let id: Vec<u64> = (0..8).map(|i| u.read(0xfe0 + 4 * i, 4)).collect();
        assert_eq!(id, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(u.read(0xfd0, 4), 0, "no such register");
    }

    #[test]
    fn transmit_goes_to_the_vmm_and_raises_tx() {
        let mut u = Pl011::new(0x0900_0000, 33);
        assert_eq!(u.irq(), Some((33, false)));
        u.write(reg::IMSC, 4, u64::from(INT_TX));
        for b in b"hi\n" {
            u.write(reg::DR, 4, u64::from(*b));
        }
        assert_eq!(u.irq(), Some((33, true)));
        assert_eq!(&u.take_output()[..], b"hi\n");
        assert!(!u.has_output());
        u.write(reg::ICR, 4, u64::from(INT_TX));
        assert_eq!(u.irq(), Some((33, false)));
        assert_eq!(u.read(reg::FR, 4) as u32 & FR_TXFE, FR_TXFE, "always empty");
    }

    #[test]
    fn input_fills_the_fifo_and_raises_rx_until_read() {
        let mut u = Pl011::new(0x0900_0000, 33);
        u.write(reg::IMSC, 4, u64::from(INT_RX | INT_RT));
        assert_eq!(u.read(reg::FR, 4) as u32 & FR_RXFE, FR_RXFE);
        assert_eq!(u.push_input(&[b'x'; 40]), 32, "the FIFO holds 32");
        assert_eq!(u.input_room(), 0);
        assert_eq!(u.read(reg::FR, 4) as u32 & FR_RXFF, FR_RXFF);
        assert_eq!(u.irq(), Some((33, true)));
        assert_eq!(u.read(reg::MIS, 4) as u32, INT_RX | INT_RT);
        for _ in 0..32 {
            assert_eq!(u.read(reg::DR, 4), u64::from(b'x'));
        }
        assert_eq!(u.irq(), Some((33, false)));
        assert_eq!(u.read(reg::DR, 4), 0, "an empty FIFO reads 0");
    }

    #[test]
    fn configuration_reads_back_and_narrow_reads_work() {
        let mut u = Pl011::new(0x0900_0000, 33);
        u.write(reg::IBRD, 4, 0x27);
        u.write(reg::LCR_H, 4, 0x70);
        assert_eq!((u.read(reg::IBRD, 4), u.read(reg::LCR_H, 4)), (0x27, 0x70));
        assert_eq!(u.read(reg::CR, 2), 0x301);
        assert_eq!(u.read(reg::CR + 1, 1), 0x03);
    }
}
