//! The virtual board the VMM gives a guest: QEMU virt's addresses (so Linux's `virt`
//! support and the device tree's usual values fit), one VMM-specific test device, and
//! the interrupt numbers. The device tree the VMM writes says the same; bare-metal
//! guests (the test guest) use these constants directly.

/// Where guest RAM starts unless the VM's description says otherwise.
pub const RAM_BASE: u64 = 0x4000_0000;

/// The GIC distributor (64 KiB).
pub const GICD: u64 = 0x0800_0000;
/// GICv2: the CPU interface (the hardware's virtual CPU interface, GICV, two pages).
pub const GICC: u64 = 0x0801_0000;
/// GICv3: the redistributors, one [`crate::gic::REDIST_SIZE`] pair of frames per vCPU.
pub const GICR: u64 = 0x080a_0000;

/// The PL011 UART (4 KiB) and its interrupt (SPI 1).
pub const UART: u64 = 0x0900_0000;
pub const UART_IRQ: u32 = 33;

/// The test device (`crate::testdev`, 4 KiB), given only to VMs that ask for it, and its
/// interrupt (SPI 16).
pub const TESTDEV: u64 = 0x0b00_0000;
pub const TESTDEV_IRQ: u32 = 48;

/// Timer PPIs as INTIDs: the EL1 virtual timer (the guest's, raised by the kernel), the
/// EL1 physical timer (no guest access), the EL2 timers (none for a guest).
pub const VTIMER_IRQ: u32 = 27;
pub const PTIMER_IRQ: u32 = 30;
pub const SECURE_PTIMER_IRQ: u32 = 29;
pub const HYP_TIMER_IRQ: u32 = 26;

/// The guest-physical ranges the VMM emulates, `(name, base, size)`: a pass-through
/// device may not be there (the image tool checks). The redistributors for the most
/// vCPUs a VM has, the GICv2 CPU interface whatever the GIC.
pub const EMULATED: [(&str, u64, u64); 5] = [
    ("the GIC distributor", GICD, 0x1_0000),
    ("the GICv2 CPU interface", GICC, 0x2000),
    (
        "the GICv3 redistributors",
        GICR,
        crate::gic::REDIST_SIZE * crate::psci::MAX_VCPUS as u64,
    ),
    ("the UART", UART, 0x1000),
    ("the test device", TESTDEV, 0x1000),
];

/// Which emulated device guest-physical address `ipa` is in (its name in [`EMULATED`]).
pub fn emulated_at(ipa: u64) -> Option<&'static str> {
    EMULATED
        .iter()
        .find(|&&(_, base, size)| (base..base + size).contains(&ipa))
        .map(|&(name, _, _)| name)
}

/// The INTIDs of the emulated devices' interrupts.
pub const EMULATED_IRQS: [u32; 2] = [UART_IRQ, TESTDEV_IRQ];
