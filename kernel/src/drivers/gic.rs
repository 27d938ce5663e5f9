//! Arm GICv2 and GICv3, through the `arm-gic` crate, each an [`IrqController`]; and
//! [`Gic`], the one boards with a GIC use, which reads the version from
//! `ID_AA64PFR0_EL1.GIC` at boot (so one board description can cover both) and
//! forwards to that version's driver.

use core::ptr::NonNull;

use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicV3};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};

use super::{IrqController, IrqInitError, MmioRanges};
use crate::arch::cpu;
use crate::board::{self, GicFrames, GicV2Frames, GicV3Frames};

/// Priority the kernel gives its own interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;
/// Priority of interrupts delivered to user level.
const USER_PRIORITY: u8 = 0xa0;
/// Interrupt IDs from here on are special (1020..1023: spurious and the like).
const SPECIAL_IDS: u32 = 1020;
/// Bytes of a GICD frame.
const GICD_SIZE: usize = 0x1_0000;
/// Bytes of a GICv2 GICC frame.
const GICC_SIZE: usize = 0x2_0000;
/// Bytes of one CPU's GICv3 redistributor (RD_base and SGI_base frames).
const GICR_SIZE: usize = 0x2_0000;

/// Lines whose priority and routing have been set (the first enable does it).
#[derive(Debug)]
struct Configured([u64; SPECIAL_IDS.div_ceil(64) as usize]);

impl Configured {
    /// True the first time for `line`: set it up now.
    fn first(&mut self, line: u32) -> bool {
        let (word, bit) = ((line / 64) as usize, 1u64 << (line % 64));
        let first = self.0[word] & bit == 0;
        self.0[word] |= bit;
        first
    }
}

/// The kernel's lines on any GIC: SGIs and PPIs (per-CPU, including the kernel timer),
/// except the EL1 virtual timer's PPI where the board gives it to user level.
fn gic_kernel_reserved(line: u32) -> bool {
    line < 32 && Some(line) != board::USER_TIMER_IRQ
}

/// A user line the GIC can deliver: an SPI, or a private line (CPU 0's).
fn user_line(line: u32) -> Option<IntId> {
    let id = IntId::try_from(line).ok()?;
    (id.is_spi() || id.is_private()).then_some(id)
}

/// GICv2 (memory-mapped CPU interface).
#[derive(Debug)]
pub struct GicV2Driver {
    gic: GicV2<'static>,
    distributor: usize,
    configured: Configured,
}

impl IrqController for GicV2Driver {
    type Config = GicV2Frames;

    fn el3_prepare(f: &GicV2Frames) {
        crate::arch::el3::gicv2_group1(f);
    }

    fn kernel_mmio(f: &GicV2Frames) -> MmioRanges {
        let mut v = MmioRanges::new();
        let _ = v.push((f.distributor, f.distributor + GICD_SIZE));
        let _ = v.push((f.cpu_interface, f.cpu_interface + GICC_SIZE));
        v
    }

    fn kernel_reserved(line: u32) -> bool {
        gic_kernel_reserved(line)
    }

    fn init(f: &GicV2Frames) -> Result<Self, IrqInitError> {
        // SAFETY: the frames come from the board description, are mapped as device
        // memory in the kernel map, and this is the only driver instance.
        let mut gic = unsafe { GicV2::new(f.distributor as *mut _, f.cpu_interface as *mut _) };
        gic.setup();
        gic.set_priority_mask(0xff);
        Ok(Self {
            gic,
            distributor: f.distributor,
            configured: Configured([0; _]),
        })
    }

    fn name(&self) -> &'static str {
        "GICv2"
    }

    fn line_count(&self) -> u32 {
        self.gic.typer().num_irqs().min(SPECIAL_IDS)
    }

    fn set_user_line_enabled(&mut self, line: u32, enabled: bool) {
        let Some(id) = user_line(line) else { return };
        if enabled && self.configured.first(line) {
            self.gic.set_interrupt_priority(id, USER_PRIORITY);
            if id.is_spi() {
                // GICD_ITARGETSR<n>: one byte per interrupt; route it to CPU 0.
                // arm-gic has no accessor for it.
                let target = (self.distributor + 0x800 + line as usize) as *mut u8;
                // SAFETY: the distributor is mapped as device memory in the kernel
                // map, `line` is an SPI below the implemented line count, and this
                // driver is the distributor's only user.
                unsafe { target.write_volatile(1) };
            }
        }
        let _ = self.gic.enable_interrupt(id, enabled);
    }

    /// The PPI registers are banked per CPU: this is the calling CPU's.
    fn enable_local(&mut self, _cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let id = IntId::try_from(line).map_err(|_| IrqInitError::NoFrames("timer PPI"))?;
        self.gic.set_interrupt_priority(id, KERNEL_PRIORITY);
        self.gic
            .enable_interrupt(id, true)
            .map_err(|_| IrqInitError::NoFrames("timer PPI"))
    }

    fn claim(&mut self) -> Option<u32> {
        // From the non-secure side GICC_IAR is the right register whether or not the GIC
        // has the security extensions.
        self.gic
            .get_and_acknowledge_interrupt(InterruptGroup::Group0)
            .map(u32::from)
            .filter(|&i| i < SPECIAL_IDS)
    }

    fn complete(&mut self, line: u32) {
        if let Ok(id) = IntId::try_from(line) {
            self.gic.end_interrupt(id, InterruptGroup::Group0);
        }
    }
}

/// GICv3 (system-register CPU interface).
#[derive(Debug)]
pub struct GicV3Driver {
    gic: GicV3<'static>,
    configured: Configured,
}

impl IrqController for GicV3Driver {
    type Config = GicV3Frames;

    fn el3_prepare(f: &GicV3Frames) {
        crate::arch::el3::gicv3_group1(f);
    }

    fn kernel_mmio(f: &GicV3Frames) -> MmioRanges {
        let mut v = MmioRanges::new();
        let _ = v.push((f.distributor, f.distributor + GICD_SIZE));
        let _ = v.push((f.redistributor, f.redistributor + GICR_SIZE * board::CPUS));
        v
    }

    fn kernel_reserved(line: u32) -> bool {
        gic_kernel_reserved(line)
    }

    fn init(f: &GicV3Frames) -> Result<Self, IrqInitError> {
        GicCpuInterface::enable_system_register_el2(true);
        crate::arch::isb();
        // SAFETY: the frames come from the board description, are mapped as device
        // memory in the kernel map, and this is the only driver instance.
        let mut gic = unsafe {
            let gicd =
                UniqueMmioPointer::new(NonNull::new(f.distributor as *mut _).ok_or(IrqInitError::Redistributor)?);
            let gicr = NonNull::new(f.redistributor as *mut _).ok_or(IrqInitError::Redistributor)?;
            // Only CPU 0's redistributor is touched: how many a machine populates is not
            // in the board file, and each CPU brings up its own when SMP starts it.
            GicV3::new(gicd, gicr, 1).map_err(|_| IrqInitError::Redistributor)?
        };
        gic.setup(0);
        GicCpuInterface::set_priority_mask(0xff);
        Ok(Self {
            gic,
            configured: Configured([0; _]),
        })
    }

    fn name(&self) -> &'static str {
        "GICv3"
    }

    fn line_count(&self) -> u32 {
        (32 + self.gic.typer().num_spis()).min(SPECIAL_IDS)
    }

    fn set_user_line_enabled(&mut self, line: u32, enabled: bool) {
        let Some(id) = user_line(line) else { return };
        let cpu = (!id.is_spi()).then_some(0);
        if enabled && self.configured.first(line) {
            let _ = self.gic.set_interrupt_priority(id, cpu, USER_PRIORITY);
        }
        let _ = self.gic.enable_interrupt(id, cpu, enabled);
    }

    /// On `cpu`'s redistributor (only CPU 0's is set up until SMP).
    fn enable_local(&mut self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let id = IntId::try_from(line).map_err(|_| IrqInitError::NoFrames("timer PPI"))?;
        let ok = self.gic.set_interrupt_priority(id, Some(cpu), KERNEL_PRIORITY).is_ok()
            && self.gic.enable_interrupt(id, Some(cpu), true).is_ok();
        if ok {
            Ok(())
        } else {
            Err(IrqInitError::NoFrames("timer PPI"))
        }
    }

    fn claim(&mut self) -> Option<u32> {
        GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)
            .map(u32::from)
            .filter(|&i| i < SPECIAL_IDS)
    }

    fn complete(&mut self, line: u32) {
        if let Ok(id) = IntId::try_from(line) {
            GicCpuInterface::end_interrupt(id, InterruptGroup::Group1);
        }
    }
}

/// The GIC of a board whose description lists GICv2 and/or GICv3 frames: the version
/// this CPU has, read at boot.
#[derive(Debug)]
pub enum Gic {
    /// A GICv2.
    V2(GicV2Driver),
    /// A GICv3.
    V3(GicV3Driver),
}

/// Forward a call to the version's driver.
macro_rules! forward {
    ($self:expr, $g:ident => $e:expr) => {
        match $self {
            Gic::V2($g) => $e,
            Gic::V3($g) => $e,
        }
    };
}

impl IrqController for Gic {
    type Config = GicFrames;

    fn el3_prepare(f: &GicFrames) {
        if cpu::gic_sysreg_version() != 0 {
            if let Some(v3) = &f.v3 {
                GicV3Driver::el3_prepare(v3);
            }
        } else if let Some(v2) = &f.v2 {
            GicV2Driver::el3_prepare(v2);
        }
    }

    /// Both versions' frames, where the board lists both.
    fn kernel_mmio(f: &GicFrames) -> MmioRanges {
        let mut v = MmioRanges::new();
        for r in f.v2.iter().flat_map(GicV2Driver::kernel_mmio) {
            let _ = v.push(r);
        }
        for r in f.v3.iter().flat_map(GicV3Driver::kernel_mmio) {
            let _ = v.push(r);
        }
        v
    }

    fn kernel_reserved(line: u32) -> bool {
        gic_kernel_reserved(line)
    }

    fn init(f: &GicFrames) -> Result<Self, IrqInitError> {
        if cpu::gic_sysreg_version() != 0 {
            let v3 = f.v3.as_ref().ok_or(IrqInitError::NoFrames("GICv3"))?;
            GicV3Driver::init(v3).map(Self::V3)
        } else {
            let v2 = f.v2.as_ref().ok_or(IrqInitError::NoFrames("GICv2"))?;
            GicV2Driver::init(v2).map(Self::V2)
        }
    }

    fn name(&self) -> &'static str {
        forward!(self, g => g.name())
    }

    fn line_count(&self) -> u32 {
        forward!(self, g => g.line_count())
    }

    fn set_user_line_enabled(&mut self, line: u32, enabled: bool) {
        forward!(self, g => g.set_user_line_enabled(line, enabled));
    }

    fn enable_local(&mut self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        forward!(self, g => g.enable_local(cpu, line))
    }

    fn claim(&mut self) -> Option<u32> {
        forward!(self, g => g.claim())
    }

    fn complete(&mut self, line: u32) {
        forward!(self, g => g.complete(line));
    }
}
