//! The interrupt controllers' register encodings, as pure functions of register values:
//! no MMIO here, so the host tests check them (`kernel/tests/driver_regs.rs`, built
//! with `cargo test`) while the drivers themselves build only for the target.

/// GICv2 CPU interface and distributor encodings.
pub mod gicv2 {
    /// Interrupt IDs from here on are special (1020..1023: spurious and the like).
    pub const SPECIAL_IDS: u32 = 1020;

    /// GICC_IAR: the interrupt ID is bits [9:0]. For an SGI, bits [12:10] are the CPU
    /// that sent it, so the raw value of an SGI from CPU 1 or above is 1024 or more and
    /// is not an ID; the whole value goes back to GICC_EOIR unchanged.
    pub fn iar_line(iar: u32) -> Option<u32> {
        let id = iar & 0x3ff;
        (id < SPECIAL_IDS).then_some(id)
    }

    /// GICD_SGIR that sends SGI `sgi` to the CPU interfaces in `targets` (one bit per
    /// interface number): target-list filter 0 ("the CPUs in the list"), NSATT 0 (a
    /// group 1 SGI when the access is non-secure, as the kernel's are where the GIC
    /// has security extensions).
    pub fn sgir(sgi: u32, targets: u8) -> u32 {
        (u32::from(targets) << 16) | (sgi & 0xf)
    }
}

/// BCM2836 local interrupt controller encodings.
pub mod bcm2836 {
    /// The per-core mailbox 0 interrupt: bit 4 of a core's IRQ source register.
    pub const MAILBOX0_LINE: u32 = 4;

    /// Core `cpu`'s mailbox interrupt control (bit 0: mailbox 0 raises an IRQ).
    pub fn mailbox_irq_control(cpu: usize) -> usize {
        0x50 + 4 * cpu
    }

    /// Core `cpu`'s mailbox 0 write-set register (bits written as 1 are set).
    pub fn mailbox0_set(cpu: usize) -> usize {
        0x80 + 16 * cpu
    }

    /// Core `cpu`'s mailbox 0 read / write-clear register (bits written as 1 are
    /// cleared).
    pub fn mailbox0_clear(cpu: usize) -> usize {
        0xc0 + 16 * cpu
    }

    /// Set in a round's state while a round of claims is under way.
    const IN_ROUND: u32 = 1 << 31;

    /// One `claim` of a round. The controller's sources are levels with no acknowledge,
    /// so a round reads the core's pending sources once (`pending`, called only at the
    /// start of a round) and hands each out once, lowest first; the claim after the
    /// last ends the round (`None`), and the next one starts a new round. `state` is the
    /// calling core's round (0 between rounds); returns its new state and the line.
    pub fn claim(state: u32, pending: impl FnOnce() -> u32) -> (u32, Option<u32>) {
        let left = if state & IN_ROUND == 0 {
            pending() & 0xfff
        } else {
            state & !IN_ROUND
        };
        if left == 0 {
            return (0, None);
        }
        (IN_ROUND | (left & (left - 1)), Some(left.trailing_zeros()))
    }
}
