//! The test device: what the test guest (`servers/guests/testguest`) needs to exercise
//! every exit, in one 4 KiB MMIO page of a VM that asks for it (`devices = ["testdev"]`).
//!
//! | offset | register |
//! |---|---|
//! | `0x000..0x100` | scratch bytes, any access width (what a load of each width and sign extension is tested against) |
//! | `0x100` | `IRQ`: its interrupt line's level (write 1 to raise, 0 to lower) |
//! | `0x108` | `DELAY`: write N: the VMM takes the vCPU's state out of its CPU and answers the store only after N counter ticks (a vCPU descheduled while its timer fires) |
//! | `0x110` | `EXIT`: write a status: the VMM ends the VM with it |
//! | `0x118` | `ID`: reads [`ID`] |
//! | `0x120` | `CRASH`: write anything: the VMM faults (a load from an address it has not mapped), as a VMM with a bug would; the root server reports and reclaims it, and the rest of the system goes on |

use crate::device::Device;

/// Registers.
pub mod reg {
    pub const SCRATCH: u64 = 0x000;
    pub const SCRATCH_LEN: u64 = 0x100;
    pub const IRQ: u64 = 0x100;
    pub const DELAY: u64 = 0x108;
    pub const EXIT: u64 = 0x110;
    pub const ID: u64 = 0x118;
    pub const CRASH: u64 = 0x120;
}

/// What the `ID` register reads.
pub const ID: u64 = 0x7e57_de71;

/// What a store asks of the VMM besides the register's own effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Answer the storing vCPU only after this many counter ticks, its state out of
    /// every CPU meanwhile.
    Delay(u64),
    /// End the VM with this status.
    Exit(u64),
    /// Fault the VMM.
    Crash,
}

/// The device.
#[derive(Debug)]
pub struct TestDev {
    base: u64,
    intid: u32,
    scratch: [u8; reg::SCRATCH_LEN as usize],
    level: bool,
    request: Option<Request>,
}

impl TestDev {
    /// The device at `base`, raising `intid`.
    pub const fn new(base: u64, intid: u32) -> Self {
        Self {
            base,
            intid,
            scratch: [0; reg::SCRATCH_LEN as usize],
            level: false,
            request: None,
        }
    }

    /// What the last store asked of the VMM, taken.
    pub const fn take_request(&mut self) -> Option<Request> {
        self.request.take()
    }
}

impl Device for TestDev {
    fn name(&self) -> &'static str {
        "testdev"
    }

    fn range(&self) -> (u64, u64) {
        (self.base, 0x1000)
    }

    fn read(&mut self, off: u64, size: u8) -> u64 {
        let n = usize::from(size);
        if off + u64::from(size) <= reg::SCRATCH_LEN {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&self.scratch[off as usize..off as usize + n]);
            return u64::from_le_bytes(b);
        }
        match (off, size) {
            (reg::IRQ, 8 | 4) => u64::from(self.level),
            (reg::ID, 8 | 4) => ID,
            _ => 0,
        }
    }

    fn write(&mut self, off: u64, size: u8, value: u64) {
        let n = usize::from(size);
        if off + u64::from(size) <= reg::SCRATCH_LEN {
            self.scratch[off as usize..off as usize + n].copy_from_slice(&value.to_le_bytes()[..n]);
            return;
        }
        match (off, size) {
            (reg::IRQ, 8 | 4) => self.level = value & 1 != 0,
            (reg::DELAY, 8 | 4) => self.request = Some(Request::Delay(value)),
            (reg::EXIT, 8 | 4) => self.request = Some(Request::Exit(value)),
            (reg::CRASH, 8 | 4) => self.request = Some(Request::Crash),
            _ => {}
        }
    }

    fn irq(&self) -> Option<(u32, bool)> {
        Some((self.intid, self.level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_takes_every_width_little_endian() {
        let mut d = TestDev::new(0x0b00_0000, 48);
        d.write(0, 8, 0x0807_0605_0403_0201);
        assert_eq!(d.read(0, 1), 0x01);
        assert_eq!(d.read(1, 2), 0x0302);
        assert_eq!(d.read(4, 4), 0x0807_0605);
        d.write(2, 1, 0xff);
        assert_eq!(d.read(0, 8), 0x0807_0605_04ff_0201);
        assert_eq!(d.read(0xfc, 8), 0, "runs past the scratch bytes");
        assert_eq!(d.read(reg::ID, 4), ID);
    }

    #[test]
    fn the_line_and_requests() {
        let mut d = TestDev::new(0x0b00_0000, 48);
        d.write(reg::IRQ, 4, 1);
        assert_eq!((d.irq(), d.read(reg::IRQ, 4)), (Some((48, true)), 1));
        d.write(reg::DELAY, 8, 5000);
        assert_eq!(d.take_request(), Some(Request::Delay(5000)));
        assert_eq!(d.take_request(), None);
        d.write(reg::EXIT, 4, 3);
        assert_eq!(d.take_request(), Some(Request::Exit(3)));
        d.write(reg::EXIT, 1, 3);
        assert_eq!(d.take_request(), None, "a byte store to a register does nothing");
    }
}
