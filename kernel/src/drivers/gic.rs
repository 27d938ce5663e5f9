//! Arm GICv2 and GICv3, through the `arm-gic` crate. The version is read from
//! `ID_AA64PFR0_EL1.GIC` at boot, so one board description can cover both.

use core::ptr::NonNull;

use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};

use crate::board::{GicV2Frames, GicV3Frames};

/// Priority the kernel gives its own interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;
/// Priority of interrupts delivered to user-level handlers.
const USER_PRIORITY: u8 = 0xa0;

/// A GIC of either version.
#[derive(Debug)]
pub enum Gic {
    /// GICv2 (memory-mapped CPU interface), and its distributor's address.
    V2(GicV2<'static>, usize),
    /// GICv3 (system-register CPU interface).
    V3(GicV3<'static>),
}

/// Why the GIC could not be brought up.
#[derive(Clone, Copy, Debug)]
pub enum GicInitError {
    /// The CPU has a GICv3 interface but the board lists no GICv3 frames, or vice versa.
    NoFrames(#[allow(dead_code, reason = "read through Debug in the boot panic")] &'static str),
    /// The redistributor region did not look like one.
    Redistributor,
}

impl Gic {
    /// Bring up the distributor and CPU 0's interface for the GIC this CPU has.
    pub fn init(v2: Option<GicV2Frames>, v3: Option<GicV3Frames>, sysreg_version: u64) -> Result<Self, GicInitError> {
        if sysreg_version != 0 {
            let f = v3.ok_or(GicInitError::NoFrames("GICv3"))?;
            GicCpuInterface::enable_system_register_el2(true);
            crate::arch::isb();
            // SAFETY: the frames come from the board description, are mapped as device
            // memory in the kernel map, and this is the only driver instance.
            let mut gic = unsafe {
                let gicd =
                    UniqueMmioPointer::new(NonNull::new(f.distributor as *mut _).ok_or(GicInitError::Redistributor)?);
                let gicr = NonNull::new(f.redistributor as *mut _).ok_or(GicInitError::Redistributor)?;
                // Only CPU 0's redistributor is touched: how many a machine populates is not
                // in the board file, and each CPU brings up its own when SMP starts it.
                GicV3::new(gicd, gicr, 1).map_err(|_| GicInitError::Redistributor)?
            };
            gic.setup(0);
            GicCpuInterface::set_priority_mask(0xff);
            Ok(Self::V3(gic))
        } else {
            let f = v2.ok_or(GicInitError::NoFrames("GICv2"))?;
            // SAFETY: as above, for the GICv2 distributor and CPU interface.
            let mut gic = unsafe { GicV2::new(f.distributor as *mut _, f.cpu_interface as *mut _) };
            gic.setup();
            gic.set_priority_mask(0xff);
            Ok(Self::V2(gic, f.distributor))
        }
    }

    /// "GICv2" or "GICv3", for the banner.
    pub fn name(&self) -> &'static str {
        match self {
            Self::V2(..) => "GICv2",
            Self::V3(_) => "GICv3",
        }
    }

    /// Enable a private (PPI) interrupt on CPU 0 at kernel priority.
    pub fn enable_ppi(&mut self, intid: u32) -> bool {
        let Ok(id) = IntId::try_from(intid) else {
            return false;
        };
        match self {
            Self::V2(g, _) => {
                g.set_interrupt_priority(id, KERNEL_PRIORITY);
                g.enable_interrupt(id, true).is_ok()
            }
            Self::V3(g) => {
                g.set_interrupt_priority(id, Some(0), KERNEL_PRIORITY).is_ok()
                    && g.enable_interrupt(id, Some(0), true).is_ok()
            }
        }
    }

    /// Interrupt lines the distributor implements.
    pub fn line_count(&self) -> u32 {
        match self {
            Self::V2(g, _) => g.typer().num_irqs(),
            Self::V3(g) => 32 + g.typer().num_spis(),
        }
        .min(1020)
    }

    /// Enable or disable a line delivered to user level: an SPI (routed to CPU 0) or
    /// a PPI the board gives to user level (CPU 0's). Priority and routing are set
    /// the first time a line is enabled, so an acknowledge only flips its enable bit.
    pub fn set_user_line_enabled(&mut self, intid: u32, enabled: bool, configured: &mut bool) {
        let Ok(id) = IntId::try_from(intid) else { return };
        if !id.is_spi() && !id.is_private() {
            return;
        }
        let cpu = (!id.is_spi()).then_some(0);
        match self {
            Self::V2(g, gicd) => {
                if enabled && !*configured {
                    g.set_interrupt_priority(id, USER_PRIORITY);
                    if id.is_spi() {
                        // GICD_ITARGETSR<n>: one byte per interrupt; route it to CPU 0.
                        // arm-gic has no accessor for it.
                        let target = (*gicd + 0x800 + intid as usize) as *mut u8;
                        // SAFETY: the distributor is mapped as device memory in the
                        // kernel map, `intid` is an SPI below the implemented line
                        // count, and this driver is the distributor's only user.
                        unsafe { target.write_volatile(1) };
                    }
                    *configured = true;
                }
                let _ = g.enable_interrupt(id, enabled);
            }
            Self::V3(g) => {
                if enabled && !*configured {
                    let _ = g.set_interrupt_priority(id, cpu, USER_PRIORITY);
                    *configured = true;
                }
                let _ = g.enable_interrupt(id, cpu, enabled);
            }
        }
    }

    /// Acknowledge the highest-priority pending interrupt.
    pub fn acknowledge(&mut self) -> Option<u32> {
        match self {
            // From the non-secure side GICC_IAR is the right register whether or not the
            // GIC has the security extensions.
            Self::V2(g, _) => g.get_and_acknowledge_interrupt(InterruptGroup::Group0),
            Self::V3(_) => GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1),
        }
        .map(u32::from)
    }

    /// Signal the end of an interrupt `acknowledge` returned.
    pub fn end(&mut self, intid: u32) {
        let Ok(id) = IntId::try_from(intid) else {
            return;
        };
        match self {
            Self::V2(g, _) => g.end_interrupt(id, InterruptGroup::Group0),
            Self::V3(_) => GicCpuInterface::end_interrupt(id, InterruptGroup::Group1),
        }
    }
}
