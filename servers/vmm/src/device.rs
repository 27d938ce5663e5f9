//! Emulated devices: a guest-physical range whose loads and stores the VMM answers.
//! Each model is hardware-free behind [`Device`], so it is tested on the host and could
//! move to a server of its own (the VMM would then forward its range through IDL).

/// One emulated device.
pub trait Device {
    /// Its name (for messages).
    fn name(&self) -> &'static str;
    /// Its guest-physical range `[base, base + size)`.
    fn range(&self) -> (u64, u64);
    /// A load of `size` bytes (1, 2, 4 or 8) at offset `off` in the range. Registers that
    /// do not exist, or an access width a register does not take, read as zero.
    fn read(&mut self, off: u64, size: u8) -> u64;
    /// A store; ignored where a load would read zero.
    fn write(&mut self, off: u64, size: u8, value: u64);
    /// Its interrupt line: the INTID and whether it is asserted.
    fn irq(&self) -> Option<(u32, bool)>;
}

/// True if `ipa` lies in `d`'s range with all of an access of `size` bytes.
pub fn covers(d: &dyn Device, ipa: u64, size: u8) -> bool {
    let (base, len) = d.range();
    ipa >= base && ipa.checked_add(u64::from(size)).is_some_and(|end| end <= base + len)
}

/// The devices of a VM, by guest-physical address.
pub struct Bus<'a, const N: usize> {
    devices: heapless::Vec<&'a mut dyn Device, N>,
}

impl<'a, const N: usize> Bus<'a, N> {
    /// No devices.
    pub const fn new() -> Self {
        Self {
            devices: heapless::Vec::new(),
        }
    }

    /// Add `d`; false if the bus is full or `d`'s range overlaps another's.
    pub fn add(&mut self, d: &'a mut dyn Device) -> bool {
        let (base, len) = d.range();
        let overlaps = self.devices.iter().any(|o| {
            let (ob, ol) = o.range();
            base < ob + ol && ob < base + len
        });
        !overlaps && self.devices.push(d).is_ok()
    }

    /// The device an access of `size` bytes at `ipa` hits, and the offset in it.
    pub fn find(&mut self, ipa: u64, size: u8) -> Option<(&mut dyn Device, u64)> {
        let d = self.devices.iter_mut().find(|d| covers(&***d, ipa, size))?;
        let off = ipa - d.range().0;
        Some((&mut **d, off))
    }
}

impl<const N: usize> core::fmt::Debug for Bus<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.devices.iter().map(|d| (d.name(), d.range())))
            .finish()
    }
}

impl<const N: usize> Default for Bus<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes of a `size`-byte access at byte `shift` of a 32-bit register holding
/// `reg`: what a narrow load of a byte-accessible register returns.
pub const fn narrow(reg: u32, shift: u64, size: u8) -> u64 {
    let v = (reg as u64) >> (8 * shift);
    match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        _ => v & 0xffff_ffff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(u64, u64, u64);

    impl Device for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn range(&self) -> (u64, u64) {
            (self.0, self.1)
        }
        fn read(&mut self, off: u64, _: u8) -> u64 {
            off + self.2
        }
        fn write(&mut self, _: u64, _: u8, value: u64) {
            self.2 = value;
        }
        fn irq(&self) -> Option<(u32, bool)> {
            None
        }
    }

    #[test]
    fn the_bus_finds_devices_and_refuses_overlaps() {
        let (mut a, mut b, mut c) = (Fake(0x1000, 0x1000, 0), Fake(0x3000, 0x100, 0), Fake(0x1800, 0x1000, 0));
        let mut bus: Bus<'_, 4> = Bus::new();
        assert!(bus.add(&mut a) && bus.add(&mut b));
        assert!(!bus.add(&mut c), "overlaps a");
        let (d, off) = bus.find(0x1ffc, 4).unwrap();
        assert_eq!((d.name(), off), ("fake", 0xffc));
        assert!(bus.find(0x1ffe, 4).is_none(), "runs past the end");
        assert!(bus.find(0x2000, 1).is_none(), "a gap");
        assert!(bus.find(u64::MAX - 1, 8).is_none(), "wraps");
        bus.find(0x3000, 8).unwrap().0.write(0, 8, 5);
        assert_eq!(bus.find(0x3010, 8).unwrap().0.read(0x10, 8), 0x15);
    }

    #[test]
    fn narrow_loads_take_their_bytes() {
        assert_eq!(narrow(0xa1b2_c3d4, 0, 4), 0xa1b2_c3d4);
        assert_eq!(narrow(0xa1b2_c3d4, 1, 1), 0xc3);
        assert_eq!(narrow(0xa1b2_c3d4, 2, 2), 0xa1b2);
    }
}
