//! Arm GICv2 and GICv3, through the `arm-gic` crate, each an [`IrqController`]; and
//! [`Gic`], the one boards with a GIC use, which reads the version from
//! `ID_AA64PFR0_EL1.GIC` at boot (so one board description can cover both) and
//! forwards to that version's driver.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};

use arm_gic::gicv2::GicV2;
use arm_gic::gicv3::{GicCpuInterface, GicRedistributorIterator, GicV3, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, UniqueMmioPointer};

use super::regs::gicv2 as v2regs;
use super::{Claim, IrqController, IrqInitError, MmioRanges, read32, write32};
use crate::arch::cpu::{self, CpuSet};
use crate::arch::smp::mpidr_of;
use crate::arch::{dsb_ishst, read_sysreg};
use crate::board::{self, GicFrames, GicV2Frames, GicV3Frames};

/// Priority the kernel gives its own interrupts (lower is more urgent).
const KERNEL_PRIORITY: u8 = 0x80;
/// Priority of interrupts delivered to user level.
const USER_PRIORITY: u8 = 0xa0;
/// Interrupt IDs from here on are special (1020..1023: spurious and the like).
const SPECIAL_IDS: u32 = v2regs::SPECIAL_IDS;
/// The SGI inter-processor interrupts use.
const IPI_SGI: u32 = 0;
/// Bytes of a GICD frame.
const GICD_SIZE: usize = 0x1_0000;
/// Bytes of a GICv2 GICC frame.
const GICC_SIZE: usize = 0x2_0000;
/// Bytes of one CPU's GICv3 redistributor (RD_base and SGI_base frames).
const GICR_SIZE: usize = 0x2_0000;
/// What the kernel keeps of each of GICv2's virtual interface frames (GICH, GICV).
const GICV_FRAME_SIZE: usize = 0x1_0000;

/// GICv2 register offsets the driver reaches itself (arm-gic has no accessor for them,
/// or reads GICC_IAR as an ID where it is not one).
const GICD_SGIR: usize = 0xf00;
/// GICD_ICENABLER<n> (both versions) and, in a GICv3 redistributor's SGI frame (at
/// `GICR_SGI_FRAME`), GICR_ICENABLER0: write 1 to disable a line, one bit each.
const ICENABLER: usize = 0x180;
const ISENABLER: usize = 0x100;
const GICR_SGI_FRAME: usize = 0x1_0000;
const GICD_ITARGETSR: usize = 0x800;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;

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

/// The kernel's lines on any GIC: SGIs and PPIs (per-CPU, including the kernel timer,
/// the guests' virtual timer and the maintenance interrupt), except the EL1 physical
/// timer's PPI where the board gives it to user level.
fn gic_kernel_reserved(line: u32) -> bool {
    line < 32 && Some(line) != board::USER_TIMER_IRQ
}

/// A user line the GIC can deliver: an SPI, or a private line (CPU 0's).
/// Disable `line` by writing its bit of the ICENABLER register bank at `base` (a
/// distributor, or a redistributor's SGI frame for a private line). The register is
/// write-1-to-clear, one bit per line, so no other line changes and no lock is needed.
///
/// # Safety
///
/// `base` is the mapped GICD (or GICR SGI frame), and `line` is below its line count.
unsafe fn disable_by_icenabler(base: usize, line: u32) {
    let reg = base + ICENABLER + 4 * (line as usize / 32);
    // SAFETY: the caller vouches for the frame and the line.
    unsafe { write32(reg, 1 << (line % 32)) };
}

/// Enable or disable private line `line` (below 32) in the ISENABLER0/ICENABLER0 pair
/// at `base` (the calling CPU's banked distributor registers, or its redistributor's
/// SGI frame). Write-1 registers: no other line changes and no lock is needed.
///
/// # Safety
///
/// `base` is the calling CPU's mapped GICD or GICR SGI frame.
unsafe fn set_private_enabled(base: usize, line: u32, enabled: bool) {
    let reg = base + if enabled { ISENABLER } else { ICENABLER };
    // SAFETY: the caller vouches for the frame; bit `line % 32` of register 0.
    unsafe { write32(reg, 1 << (line % 32)) };
}

fn user_line(line: u32) -> Option<IntId> {
    let id = IntId::try_from(line).ok()?;
    (id.is_spi() || id.is_private()).then_some(id)
}

/// GICv2 (memory-mapped CPU interface).
#[derive(Debug)]
pub struct GicV2Driver {
    /// The distributor side (and the calling CPU's banked registers through it).
    dist: spin::Mutex<GicV2Dist>,
    distributor: usize,
    cpu_interface: usize,
    /// Each CPU's CPU interface number as a GICD_SGIR / GICD_ITARGETSR bit (0: not up).
    interface: [AtomicU8; board::CPUS],
}

#[derive(Debug)]
struct GicV2Dist {
    gic: GicV2<'static>,
    configured: Configured,
}

impl GicV2Driver {
    /// Enable the IPI SGI on the calling CPU (its banked enable and priority) and learn
    /// its CPU interface number: GICD_ITARGETSR0..7 read as the calling CPU's own bit.
    fn init_this_cpu(&self, dist: &mut GicV2Dist, cpu: usize) -> Result<(), IrqInitError> {
        // SAFETY: the distributor is mapped as device memory; GICD_ITARGETSR0 is
        // read-only and banked per CPU.
        let own = unsafe { read32(self.distributor + GICD_ITARGETSR) } as u8;
        // A uniprocessor GIC may read 0 there; its one interface is bit 0.
        let own = if own == 0 { 1 << cpu } else { own };
        self.interface[cpu].store(own, Ordering::Relaxed);
        let id = IntId::sgi(IPI_SGI);
        dist.gic.set_interrupt_priority(id, KERNEL_PRIORITY);
        dist.gic
            .enable_interrupt(id, true)
            .map_err(|_| IrqInitError::NoFrames("IPI SGI"))
    }
}

impl IrqController for GicV2Driver {
    type Config = GicV2Frames;

    const IPI: u32 = IPI_SGI;

    fn el3_prepare(f: &GicV2Frames) {
        crate::arch::el3::gicv2_global(f);
        crate::arch::el3::gicv2_cpu(f);
    }

    fn el3_prepare_cpu(f: &GicV2Frames, _cpu: usize) {
        crate::arch::el3::gicv2_cpu(f);
    }

    fn kernel_mmio(f: &GicV2Frames) -> MmioRanges {
        let mut v = MmioRanges::new();
        let _ = v.push((f.distributor, f.distributor + GICD_SIZE));
        let _ = v.push((f.cpu_interface, f.cpu_interface + GICC_SIZE));
        // The virtual interfaces: GICH the kernel's, GICV handed out only as the
        // frames the kernel makes of it (never device untyped).
        for frame in [f.hyp_interface, f.vcpu_interface].into_iter().flatten() {
            let _ = v.push((frame, frame + GICV_FRAME_SIZE));
        }
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
        let driver = Self {
            dist: spin::Mutex::new(GicV2Dist {
                gic,
                configured: Configured([0; _]),
            }),
            distributor: f.distributor,
            cpu_interface: f.cpu_interface,
            interface: [const { AtomicU8::new(0) }; board::CPUS],
        };
        driver.init_this_cpu(&mut driver.dist.lock(), cpu::current_index())?;
        Ok(driver)
    }

    fn name(&self) -> &'static str {
        "GICv2"
    }

    fn line_count(&self) -> u32 {
        self.dist.lock().gic.typer().num_irqs().min(SPECIAL_IDS)
    }

    fn set_user_line_enabled(&self, line: u32, enabled: bool) {
        let Some(id) = user_line(line) else { return };
        if !enabled {
            // Masking (every interrupt taken for user level): no lock (see
            // `disable_by_icenabler`); a private line is the calling CPU's (banked).
            // SAFETY: the distributor is mapped as device memory; `user_line` checked
            // the line.
            unsafe { disable_by_icenabler(self.distributor, line) };
            return;
        }
        let mut dist = self.dist.lock();
        if dist.configured.first(line) {
            dist.gic.set_interrupt_priority(id, USER_PRIORITY);
            if id.is_spi() {
                // GICD_ITARGETSR<n>: one byte per interrupt; route it to CPU 0.
                let target = (self.distributor + GICD_ITARGETSR + line as usize) as *mut u8;
                let cpu0 = self.interface[0].load(Ordering::Relaxed);
                // SAFETY: the distributor is mapped as device memory in the kernel
                // map, `line` is an SPI below the implemented line count, and the lock
                // serialises the distributor's users.
                unsafe { target.write_volatile(cpu0) };
            }
        }
        let _ = dist.gic.enable_interrupt(id, true);
    }

    /// The GIC-400's CPU interface and the SGI/PPI registers are banked per CPU: the
    /// calling CPU's are set. Its GICD_IGROUPR0 is left as it is: group 0 at reset
    /// where the GIC has no security extensions (as `setup` makes CPU 0's), and set by
    /// the EL3 code where it has them (the non-secure side cannot write it).
    fn init_cpu(&self, cpu: usize) -> Result<(), IrqInitError> {
        let mut dist = self.dist.lock();
        dist.gic.set_priority_mask(0xff);
        // SAFETY: GICC_CTLR is the calling CPU's (banked); bit 0 enables the interface
        // for the interrupts of the caller's view, as `setup` does for CPU 0.
        unsafe { write32(self.cpu_interface, 1) };
        self.init_this_cpu(&mut dist, cpu)
    }

    fn enable_local(&self, _cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let id = IntId::try_from(line).map_err(|_| IrqInitError::NoFrames("timer PPI"))?;
        let mut dist = self.dist.lock();
        dist.gic.set_interrupt_priority(id, KERNEL_PRIORITY);
        dist.gic
            .enable_interrupt(id, true)
            .map_err(|_| IrqInitError::NoFrames("timer PPI"))
    }

    fn set_local_enabled(&self, _cpu: usize, line: u32, enabled: bool) {
        if line < 32 {
            // SAFETY: the distributor is mapped as device memory; its enable register 0
            // is banked per CPU (the calling one's).
            unsafe { set_private_enabled(self.distributor, line, enabled) };
        }
    }

    fn claim(&self) -> Option<Claim> {
        // From the non-secure side GICC_IAR is the right register whether or not the GIC
        // has the security extensions.
        // SAFETY: reading GICC_IAR acknowledges the calling CPU's highest-priority
        // pending interrupt (banked per CPU); `complete` ends it with the same value.
        let iar = unsafe { read32(self.cpu_interface + GICC_IAR) };
        let line = v2regs::iar_line(iar)?;
        Some(Claim { line, ack: iar })
    }

    fn complete(&self, claim: Claim) {
        // SAFETY: GICC_EOIR takes the whole GICC_IAR value `claim` read on this CPU
        // (an SGI's sender bits included).
        unsafe { write32(self.cpu_interface + GICC_EOIR, claim.ack) };
    }

    fn send_ipi(&self, targets: CpuSet) {
        let list = targets
            .iter()
            .filter(|&n| n < board::CPUS)
            .fold(0u8, |l, n| l | self.interface[n].load(Ordering::Relaxed));
        if list == 0 {
            return;
        }
        // Earlier stores (what the IPI asks) reach the targets before it does.
        dsb_ishst();
        // SAFETY: GICD_SGIR only raises an SGI on the listed CPU interfaces.
        unsafe { write32(self.distributor + GICD_SGIR, v2regs::sgir(IPI_SGI, list)) };
    }
}

/// GICv3 (system-register CPU interface).
#[derive(Debug)]
pub struct GicV3Driver {
    dist: spin::Mutex<GicV3Dist>,
    /// GICD and CPU 0's GICR frame (for masking a line without the lock).
    distributor: usize,
    redistributor0: usize,
    /// Redistributors present (at most `board::CPUS`): QEMU populates one per CPU it
    /// has, which may be fewer than the board's.
    redistributors: usize,
}

#[derive(Debug)]
struct GicV3Dist {
    gic: GicV3<'static>,
    configured: Configured,
}

impl GicV3Driver {
    /// The calling CPU's interface: system-register access, group 1 enabled, no
    /// priority masked.
    fn enable_cpu_interface() {
        GicCpuInterface::enable_system_register_el2(true);
        crate::arch::isb();
    }

    /// Enable the IPI SGI at kernel priority on `cpu`'s redistributor.
    fn enable_ipi(dist: &mut GicV3Dist, cpu: usize) -> Result<(), IrqInitError> {
        let id = IntId::sgi(IPI_SGI);
        let ok = dist.gic.set_interrupt_priority(id, Some(cpu), KERNEL_PRIORITY).is_ok()
            && dist.gic.enable_interrupt(id, Some(cpu), true).is_ok();
        if ok { Ok(()) } else { Err(IrqInitError::Redistributor) }
    }
}

impl IrqController for GicV3Driver {
    type Config = GicV3Frames;

    const IPI: u32 = IPI_SGI;

    fn el3_prepare(f: &GicV3Frames) {
        crate::arch::el3::gicv3_global(f);
        crate::arch::el3::gicv3_cpu(f, 0);
    }

    fn el3_prepare_cpu(f: &GicV3Frames, cpu: usize) {
        crate::arch::el3::gicv3_cpu(f, cpu);
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
        Self::enable_cpu_interface();
        let gicr = NonNull::new(f.redistributor as *mut _).ok_or(IrqInitError::Redistributor)?;
        // How many redistributors there are: QEMU gives one per CPU it runs (the last
        // has GICR_TYPER.Last), however many the board has.
        // SAFETY: the redistributor frames are mapped as device memory in the kernel
        // map up to the board's CPU count; the walk stops at the last frame or there,
        // and the frames are not otherwise in use yet.
        let redistributors = unsafe { GicRedistributorIterator::new(gicr) }
            .map_err(|_| IrqInitError::Redistributor)?
            .take(board::CPUS)
            .count();
        // SAFETY: the frames come from the board description, are mapped as device
        // memory in the kernel map, and this is the only driver instance.
        let mut gic = unsafe {
            let gicd =
                UniqueMmioPointer::new(NonNull::new(f.distributor as *mut _).ok_or(IrqInitError::Redistributor)?);
            GicV3::new(gicd, gicr, redistributors).map_err(|_| IrqInitError::Redistributor)?
        };
        // The distributor, every redistributor present (all their lines disabled) and
        // CPU 0's interface; each secondary wakes its own redistributor (`init_cpu`).
        gic.setup(0);
        GicCpuInterface::set_priority_mask(0xff);
        let mut dist = GicV3Dist {
            gic,
            configured: Configured([0; _]),
        };
        Self::enable_ipi(&mut dist, 0)?;
        Ok(Self {
            dist: spin::Mutex::new(dist),
            distributor: f.distributor,
            redistributor0: f.redistributor,
            redistributors,
        })
    }

    fn name(&self) -> &'static str {
        "GICv3"
    }

    fn line_count(&self) -> u32 {
        (32 + self.dist.lock().gic.typer().num_spis()).min(SPECIAL_IDS)
    }

    fn set_user_line_enabled(&self, line: u32, enabled: bool) {
        let Some(id) = user_line(line) else { return };
        if !enabled {
            // Masking (every interrupt taken for user level): no lock (see
            // `disable_by_icenabler`). A private line is CPU 0's, in its redistributor.
            let base = if id.is_spi() {
                self.distributor
            } else {
                self.redistributor0 + GICR_SGI_FRAME
            };
            // SAFETY: both frames are mapped as device memory; `user_line` checked
            // the line.
            unsafe { disable_by_icenabler(base, line) };
            return;
        }
        let cpu = (!id.is_spi()).then_some(0);
        let mut dist = self.dist.lock();
        if dist.configured.first(line) {
            let _ = dist.gic.set_interrupt_priority(id, cpu, USER_PRIORITY);
            if id.is_spi() {
                // GICD_IROUTER<n>: to CPU 0 (its reset value is UNKNOWN).
                let cpu0 = mpidr_of(0);
                let _ = dist.gic.distributor().set_routing(id, Some(cpu0));
            }
        }
        let _ = dist.gic.enable_interrupt(id, cpu, true);
    }

    /// Redistributor `cpu` (the n-th frame is CPU n's, as QEMU lays them out) woken,
    /// the calling CPU's interface enabled.
    fn init_cpu(&self, cpu: usize) -> Result<(), IrqInitError> {
        if cpu >= self.redistributors {
            return Err(IrqInitError::Redistributor);
        }
        Self::enable_cpu_interface();
        let mut dist = self.dist.lock();
        dist.gic.init_cpu(cpu);
        GicCpuInterface::enable_group1(true);
        GicCpuInterface::set_priority_mask(0xff);
        Self::enable_ipi(&mut dist, cpu)
    }

    /// On `cpu`'s redistributor.
    fn enable_local(&self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        let id = IntId::try_from(line).map_err(|_| IrqInitError::NoFrames("timer PPI"))?;
        let mut dist = self.dist.lock();
        let ok = dist.gic.set_interrupt_priority(id, Some(cpu), KERNEL_PRIORITY).is_ok()
            && dist.gic.enable_interrupt(id, Some(cpu), true).is_ok();
        if ok {
            Ok(())
        } else {
            Err(IrqInitError::NoFrames("timer PPI"))
        }
    }

    fn set_local_enabled(&self, cpu: usize, line: u32, enabled: bool) {
        if line < 32 && cpu < self.redistributors {
            // SAFETY: the redistributors are mapped as device memory, CPU n's frame is
            // the n-th (`init_cpu`), and the caller is CPU `cpu`.
            unsafe {
                set_private_enabled(self.redistributor0 + cpu * GICR_SIZE + GICR_SGI_FRAME, line, enabled);
            }
        }
    }

    fn claim(&self) -> Option<Claim> {
        let line = u32::from(GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1)?);
        (line < SPECIAL_IDS).then_some(Claim { line, ack: line })
    }

    fn complete(&self, claim: Claim) {
        if let Ok(id) = IntId::try_from(claim.ack) {
            GicCpuInterface::end_interrupt(id, InterruptGroup::Group1);
        }
    }

    /// Affinity routing: the targets share the calling CPU's Aff3..Aff1 (one cluster),
    /// and a CPU's index is its Aff0.
    fn send_ipi(&self, targets: CpuSet) {
        let list = targets
            .iter()
            .filter(|&n| n < self.redistributors)
            .fold(0u16, |l, n| l | 1 << n);
        if list == 0 {
            return;
        }
        let mpidr = read_sysreg!(mpidr_el1);
        let target = SgiTarget::List {
            affinity3: (mpidr >> 32) as u8,
            affinity2: (mpidr >> 16) as u8,
            affinity1: (mpidr >> 8) as u8,
            target_list: list,
        };
        // ICC_SGI1R_EL1 is a system register, not a memory access: only a DSB orders
        // the stores before it (what the IPI asks) ahead of the interrupt.
        dsb_ishst();
        let _ = GicCpuInterface::send_sgi(IntId::sgi(IPI_SGI), target, SgiTargetGroup::CurrentGroup1);
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

    const IPI: u32 = IPI_SGI;

    fn el3_prepare(f: &GicFrames) {
        if cpu::gic_sysreg_version() != 0 {
            if let Some(v3) = &f.v3 {
                GicV3Driver::el3_prepare(v3);
            }
        } else if let Some(v2) = &f.v2 {
            GicV2Driver::el3_prepare(v2);
        }
    }

    fn el3_prepare_cpu(f: &GicFrames, cpu: usize) {
        if cpu::gic_sysreg_version() != 0 {
            if let Some(v3) = &f.v3 {
                GicV3Driver::el3_prepare_cpu(v3, cpu);
            }
        } else if let Some(v2) = &f.v2 {
            GicV2Driver::el3_prepare_cpu(v2, cpu);
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

    fn set_user_line_enabled(&self, line: u32, enabled: bool) {
        forward!(self, g => g.set_user_line_enabled(line, enabled));
    }

    fn init_cpu(&self, cpu: usize) -> Result<(), IrqInitError> {
        forward!(self, g => g.init_cpu(cpu))
    }

    fn enable_local(&self, cpu: usize, line: u32) -> Result<(), IrqInitError> {
        forward!(self, g => g.enable_local(cpu, line))
    }

    fn set_local_enabled(&self, cpu: usize, line: u32, enabled: bool) {
        forward!(self, g => g.set_local_enabled(cpu, line, enabled));
    }

    fn claim(&self) -> Option<Claim> {
        forward!(self, g => g.claim())
    }

    fn complete(&self, claim: Claim) {
        forward!(self, g => g.complete(claim));
    }

    fn send_ipi(&self, targets: CpuSet) {
        forward!(self, g => g.send_ipi(targets));
    }
}
