//! The guest's interrupt controller, the VMM's part: the distributor (GICv2 and GICv3)
//! and GICv3's redistributors, emulated from the guest's loads and stores. The CPU
//! interface is the kernel's (its list registers; `docs/vmm.md`): this model decides
//! which interrupt goes to which vCPU at which priority, and the VMM injects it there
//! (`VCpuInjectIrq`). The virtual timer's PPI is raised by the kernel itself; the
//! guest's enable and priority for it go to the kernel (`VCpuSetVppi`).
//!
//! An interrupt is injected as soon as it is pending and enabled (and its group is);
//! the list register holds it from then on. An edge-triggered one is pending from its
//! line's rising edge (or a guest's set-pending write) until injected. A
//! level-triggered one (`GICD_ICFGR`; SPIs are, until the guest says otherwise) is
//! pending while its line is up: it is injected with the level flag and stays in
//! service until the guest deactivates it, which the kernel reports (`Exit::Eoi`,
//! [`Gic::eoi`]); if the line is still up then, it is injected again. The active
//! state is the CPU interface's: it reads as 0 here.

use crate::psci::MAX_VCPUS;

/// Which GIC the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

/// Shared peripheral interrupts the distributor has (INTIDs 32..32 + SPIS).
pub const SPIS: usize = 96;
/// The distributor's frame size.
pub const DIST_SIZE: u64 = 0x1_0000;
/// One GICv3 redistributor's frames (RD and SGI).
pub const REDIST_SIZE: u64 = 0x2_0000;

/// What the VMM does after an access or a line change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make `intid` pending in vCPU `vcpu` at `priority` (`VCpuInjectIrq`); `level`:
    /// level-triggered, the VMM is to hear of its end ([`Gic::eoi`]).
    Inject {
        vcpu: usize,
        intid: u32,
        priority: u8,
        level: bool,
    },
    /// The guest changed a PPI the kernel raises (`VCpuSetVppi`).
    Vppi {
        vcpu: usize,
        intid: u32,
        enabled: bool,
        priority: u8,
    },
}

/// Actions of one access (a write to an enable register may release many).
pub type Actions = heapless::Vec<Action, 32>;

/// One interrupt's state.
#[derive(Clone, Copy, Debug, Default)]
#[allow(clippy::struct_excessive_bools, reason = "the distributor's bits of one interrupt")]
struct Irq {
    enabled: bool,
    /// Pending here, not injected yet (waits for an enable).
    pending: bool,
    /// The device line's level (SPIs from device models).
    level: bool,
    priority: u8,
    /// ICFGR: edge-triggered.
    edge: bool,
    /// Level-triggered and injected: the guest has not deactivated it yet.
    in_service: bool,
    group1: bool,
    /// GICv2 ITARGETSR: a CPU mask; GICv3 IROUTER: the Aff0 of one vCPU.
    target: u8,
}

/// The distributor and the redistributors of one VM.
#[derive(Debug)]
pub struct Gic {
    version: Version,
    vcpus: usize,
    /// GICD_CTLR: EnableGrp0 (bit 0), EnableGrp1 (bit 1).
    ctlr: u32,
    spis: [Irq; SPIS],
    /// Each vCPU's SGIs and PPIs.
    private: [[Irq; 32]; MAX_VCPUS],
    /// GICR_WAKER.ProcessorSleep of each redistributor.
    asleep: [bool; MAX_VCPUS],
    /// The PPI the kernel raises (the virtual timer's), if any.
    kernel_ppi: Option<u32>,
    /// SPIs that stay level-triggered whatever the guest writes (forwarded physical
    /// lines: their end acknowledges the line), a bit per SPI.
    level_only: u128,
}

/// Register offsets (GICD, and the GICR SGI frame for the banked ones).
mod reg {
    pub const CTLR: u64 = 0x000;
    pub const TYPER: u64 = 0x004;
    pub const IIDR: u64 = 0x008;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ITARGETSR: u64 = 0x800;
    pub const ICFGR: u64 = 0xc00;
    pub const SGIR: u64 = 0xf00;
    pub const PIDR2_V2: u64 = 0xfe8;
    pub const IROUTER: u64 = 0x6000;
    pub const PIDR2_V3: u64 = 0xffe8;
    /// GICR RD frame.
    pub const GICR_IIDR: u64 = 0x004;
    pub const GICR_TYPER: u64 = 0x008;
    pub const GICR_WAKER: u64 = 0x014;
    /// GICR SGI frame.
    pub const SGI_FRAME: u64 = 0x1_0000;
}

/// What an access to a bank register does.
#[derive(Clone, Copy)]
enum Bits {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    Active,
}

impl Gic {
    /// A distributor for `vcpus` vCPUs; `kernel_ppi` is the PPI the kernel raises.
    pub fn new(version: Version, vcpus: usize, kernel_ppi: Option<u32>) -> Self {
        let mut private = [[Irq::default(); 32]; MAX_VCPUS];
        for bank in &mut private {
            // SGIs are edge-triggered (ICFGR0 reads all ones in the edge bits).
            for irq in &mut bank[..16] {
                irq.edge = true;
            }
        }
        Self {
            version,
            vcpus: vcpus.clamp(1, MAX_VCPUS),
            ctlr: 0,
            spis: [Irq::default(); SPIS],
            private,
            asleep: [true; MAX_VCPUS],
            kernel_ppi,
            level_only: 0,
        }
    }

    /// Which GIC this is.
    pub const fn version(&self) -> Version {
        self.version
    }

    /// The interrupt `intid` as vCPU `vcpu` sees it (its own SGIs and PPIs).
    fn irq(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        match intid {
            0..32 => self.private.get_mut(vcpu)?.get_mut(intid as usize),
            _ => self.spis.get_mut(intid as usize - 32),
        }
    }

    /// The vCPU an SPI goes to.
    fn target_of(&self, irq: Irq) -> usize {
        let t = match self.version {
            Version::V2 => irq.target.trailing_zeros() as usize,
            Version::V3 => usize::from(irq.target),
        };
        if t < self.vcpus { t } else { 0 }
    }

    /// Inject `intid` (seen by `vcpu`) if it is pending, enabled and its group is.
    fn deliver(&mut self, vcpu: usize, intid: u32, out: &mut Actions) {
        let ctlr = self.ctlr;
        let version = self.version;
        let Some(&irq) = self.irq(vcpu, intid).map(|i| &*i) else {
            return;
        };
        // A GICv2 guest's interrupts are group 0 (the list registers' group there),
        // a GICv3 guest's group 1.
        let group_on = match version {
            Version::V2 => ctlr & 1 != 0,
            Version::V3 => ctlr & 2 != 0,
        };
        let level = !irq.edge;
        let wanted = irq.pending || (level && irq.level);
        if !(wanted && irq.enabled && group_on) || irq.in_service || Some(intid) == self.kernel_ppi {
            return;
        }
        let to = if intid < 32 { vcpu } else { self.target_of(irq) };
        if out
            .push(Action::Inject {
                vcpu: to,
                intid,
                priority: irq.priority,
                level,
            })
            .is_ok()
            && let Some(i) = self.irq(vcpu, intid)
        {
            i.pending = false;
            i.in_service = level;
        }
    }

    /// Keep SPI `intid` level-triggered whatever the guest configures (a forwarded
    /// physical line).
    pub fn keep_level(&mut self, intid: u32) {
        if (32..32 + SPIS as u32).contains(&intid) {
            self.level_only |= 1 << (intid - 32);
        }
    }

    /// The guest on `vcpu` deactivated the level-triggered `intid` (an `Eoi` exit): it
    /// goes again if its line is still up.
    pub fn eoi(&mut self, vcpu: usize, intid: u32, out: &mut Actions) {
        if let Some(i) = self.irq(vcpu, intid) {
            i.in_service = false;
            self.deliver(vcpu, intid, out);
        }
    }

    /// vCPU `vcpu` was reset (PSCI CPU_ON: its list registers and queue went): what
    /// was in service there (its SGIs and PPIs, the SPIs it is the target of) is not any
    /// more, and goes again if it is still pending or its line up.
    pub fn cpu_reset(&mut self, vcpu: usize, out: &mut Actions) {
        if let Some(private) = self.private.get_mut(vcpu) {
            for irq in private.iter_mut() {
                irq.in_service = false;
            }
        }
        for n in 0..SPIS {
            if self.target_of(self.spis[n]) == vcpu {
                self.spis[n].in_service = false;
            }
        }
        self.deliver_all(out);
    }

    /// Every pending interrupt that can go now goes.
    fn deliver_all(&mut self, out: &mut Actions) {
        for intid in 32..32 + SPIS as u32 {
            self.deliver(0, intid, out);
        }
        for vcpu in 0..self.vcpus {
            for intid in 0..32 {
                self.deliver(vcpu, intid, out);
            }
        }
    }

    /// Tell the kernel about the PPI it raises, as `vcpu` has it now.
    fn kernel_ppi_changed(&mut self, vcpu: usize, out: &mut Actions) {
        if let Some(ppi) = self.kernel_ppi
            && let Some(&irq) = self.irq(vcpu, ppi).map(|i| &*i)
        {
            let _ = out.push(Action::Vppi {
                vcpu,
                intid: ppi,
                enabled: irq.enabled,
                priority: irq.priority,
            });
        }
    }

    /// A device line changed: an edge-triggered SPI goes pending when its line goes
    /// up, a level-triggered one is pending while it is up.
    pub fn set_level(&mut self, intid: u32, level: bool, out: &mut Actions) {
        let Some(irq) = (intid >= 32).then(|| self.irq(0, intid)).flatten() else {
            return;
        };
        let rising = level && !irq.level;
        irq.level = level;
        if rising {
            irq.pending |= irq.edge;
            self.deliver(0, intid, out);
        }
    }

    /// SGI `intid` (below 16) from a vCPU to the vCPUs in `targets` (bit n: vCPU n).
    pub fn sgi(&mut self, targets: u8, intid: u32, out: &mut Actions) {
        if intid >= 16 {
            return;
        }
        for vcpu in (0..self.vcpus).filter(|v| targets & (1 << v) != 0) {
            if let Some(i) = self.irq(vcpu, intid) {
                i.pending = true;
            }
            self.deliver(vcpu, intid, out);
        }
    }

    /// A GICv3 guest's write of ICC_SGI1R_EL1 (a system register exit) from `from`:
    /// TargetList for Aff0 with the higher affinities 0 (vCPU n has Aff0 = n), or
    /// every vCPU but the sender (IRM).
    pub fn sgi1r(&mut self, from: usize, value: u64, out: &mut Actions) {
        let intid = ((value >> 24) & 0xf) as u32;
        let all = (1u8 << self.vcpus) - 1;
        let targets = if value & (1 << 40) != 0 {
            all & !(1 << from)
        } else if value & 0x00ff_00ff_00ff_0000 != 0 {
            0 // Aff1..Aff3 name no vCPU
        } else {
            (value & 0xffff) as u8 & all
        };
        self.sgi(targets, intid, out);
    }

    /// A load from the distributor by `vcpu`.
    pub fn dist_read(&mut self, vcpu: usize, off: u64, size: u8) -> u64 {
        let typer = match self.version {
            // ITLinesNumber, CPUNumber.
            Version::V2 => ((SPIS as u32 + 32) / 32 - 1) | ((self.vcpus as u32 - 1) << 5),
            // ITLinesNumber, IDbits = 9 (10 bits of INTID).
            Version::V3 => ((SPIS as u32 + 32) / 32 - 1) | (9 << 19),
        };
        let v = match off & !3 {
            reg::CTLR => match self.version {
                Version::V2 => self.ctlr,
                // ARE (bit 4) and DS (bit 6) read as one: one security state, affinity
                // routing.
                Version::V3 => self.ctlr | 1 << 4 | 1 << 6,
            },
            reg::TYPER => typer,
            reg::IIDR => 0x0000_043b, // Arm
            reg::PIDR2_V2 if self.version == Version::V2 => 0x20,
            reg::PIDR2_V3 if self.version == Version::V3 => 0x30,
            o if self.version == Version::V3 && (reg::IROUTER..reg::IROUTER + 8 * 1024).contains(&o) => {
                let intid = ((o - reg::IROUTER) / 8) as u32;
                if intid < 32 || o % 8 != 0 {
                    return 0;
                }
                return self.irq(0, intid).map_or(0, |i| u64::from(i.target));
            }
            _ => return self.bank_read(vcpu, off, size, false),
        };
        crate::device::narrow(v, off & 3, size)
    }

    /// A store to the distributor by `vcpu`.
    pub fn dist_write(&mut self, vcpu: usize, off: u64, size: u8, value: u64, out: &mut Actions) {
        match off {
            reg::CTLR => {
                self.ctlr = value as u32 & 3;
                self.deliver_all(out);
            }
            reg::SGIR if self.version == Version::V2 => {
                let v = value as u32;
                let intid = v & 0xf;
                let all = (1u8 << self.vcpus) - 1;
                let targets = match (v >> 24) & 3 {
                    0 => (v >> 16) as u8 & all,
                    1 => all & !(1 << vcpu),
                    2 => 1 << vcpu,
                    _ => 0,
                };
                self.sgi(targets, intid, out);
            }
            o if self.version == Version::V3 && (reg::IROUTER..reg::IROUTER + 8 * 1024).contains(&o) => {
                let intid = ((o - reg::IROUTER) / 8) as u32;
                if intid >= 32
                    && o % 8 == 0
                    && let Some(i) = self.irq(0, intid)
                {
                    // Aff0 only (IRM, "any vCPU", goes to vCPU 0).
                    i.target = if value & (1 << 31) != 0 { 0 } else { value as u8 };
                }
            }
            _ => self.bank_write(vcpu, off, size, value, false, out),
        }
    }

    /// A load from redistributor `rd` (GICv3): its RD frame, then its SGI frame.
    pub fn redist_read(&mut self, rd: usize, off: u64, size: u8) -> u64 {
        if rd >= self.vcpus {
            return 0;
        }
        if off >= reg::SGI_FRAME {
            return self.bank_read(rd, off - reg::SGI_FRAME, size, true);
        }
        let typer = (rd as u64) << 32 | (rd as u64) << 8 | if rd + 1 == self.vcpus { 1 << 4 } else { 0 };
        match off {
            reg::GICR_TYPER if size == 8 => typer,
            reg::GICR_TYPER => typer & 0xffff_ffff,
            o if o == reg::GICR_TYPER + 4 => typer >> 32,
            reg::GICR_IIDR => 0x0000_043b,
            // ChildrenAsleep follows ProcessorSleep at once.
            reg::GICR_WAKER if self.asleep[rd] => 0b110,
            reg::PIDR2_V3 => 0x30,
            _ => 0,
        }
    }

    /// A store to redistributor `rd` (GICv3).
    pub fn redist_write(&mut self, rd: usize, off: u64, size: u8, value: u64, out: &mut Actions) {
        if rd >= self.vcpus {
            return;
        }
        if off >= reg::SGI_FRAME {
            self.bank_write(rd, off - reg::SGI_FRAME, size, value, true, out);
        } else if off == reg::GICR_WAKER {
            self.asleep[rd] = value & 0b10 != 0;
        }
    }

    /// The INTIDs a bank register at `off` (from `base`, `per` interrupts per 32-bit
    /// register) covers: `(first intid, count)`. With `private`, only SGIs and PPIs
    /// (a GICv3 SGI frame); else a GICv3 distributor has no SGIs and PPIs (RAZ/WI).
    fn span(&self, off: u64, base: u64, per: u64, size: u8, private: bool) -> Option<(u32, u32)> {
        let byte = off - base;
        let first = (byte * per / 4) as u32;
        let count = (u64::from(size) * per / 4) as u32;
        let limit = if private { 32 } else { 32 + SPIS as u32 };
        let v3_dist = self.version == Version::V3 && !private;
        (first + count <= limit && !(v3_dist && first < 32)).then_some((first, count))
    }

    fn bank_read(&mut self, vcpu: usize, off: u64, size: u8, private: bool) -> u64 {
        let bits = |g: &mut Self, base: u64, f: fn(&Irq) -> bool| -> u64 {
            if size != 4 {
                return 0;
            }
            let Some((first, n)) = g.span(off, base, 32, size, private) else {
                return 0;
            };
            (0..n).fold(0, |acc, i| {
                acc | u64::from(g.irq(vcpu, first + i).is_some_and(|q| f(q))) << i
            })
        };
        match off {
            o if (reg::IGROUPR..reg::ISENABLER).contains(&o) => bits(self, reg::IGROUPR, |q| q.group1),
            o if (reg::ISENABLER..reg::ISPENDR).contains(&o) => {
                let base = if o >= reg::ICENABLER {
                    reg::ICENABLER
                } else {
                    reg::ISENABLER
                };
                bits(self, base, |q| q.enabled)
            }
            o if (reg::ISPENDR..reg::ISACTIVER).contains(&o) => {
                let base = if o >= reg::ICPENDR { reg::ICPENDR } else { reg::ISPENDR };
                bits(self, base, |q| q.pending || (q.level && !q.edge))
            }
            o if (reg::ISACTIVER..reg::IPRIORITYR).contains(&o) => 0,
            o if (reg::IPRIORITYR..reg::IPRIORITYR + 0x400).contains(&o) => {
                let Some((first, n)) = self.span(o, reg::IPRIORITYR, 4, size, private) else {
                    return 0;
                };
                (0..n).fold(0, |acc, i| {
                    acc | u64::from(self.irq(vcpu, first + i).map_or(0, |q| q.priority)) << (8 * i)
                })
            }
            o if self.version == Version::V2 && !private && (reg::ITARGETSR..reg::ICFGR).contains(&o) => {
                let Some((first, n)) = self.span(o, reg::ITARGETSR, 4, size, false) else {
                    return 0;
                };
                (0..n).fold(0, |acc, i| {
                    let id = first + i;
                    // SGIs and PPIs read as the reading CPU's bit.
                    let t = if id < 32 {
                        1 << vcpu
                    } else {
                        self.irq(vcpu, id).map_or(0, |q| q.target)
                    };
                    acc | u64::from(t) << (8 * i)
                })
            }
            o if (reg::ICFGR..reg::ICFGR + 0x100).contains(&o) => {
                if size != 4 {
                    return 0;
                }
                let Some((first, n)) = self.span(o, reg::ICFGR, 16, size, private) else {
                    return 0;
                };
                (0..n).fold(0, |acc, i| {
                    acc | u64::from(self.irq(vcpu, first + i).is_some_and(|q| q.edge)) << (2 * i + 1)
                })
            }
            _ => 0,
        }
    }

    fn bank_write(&mut self, vcpu: usize, off: u64, size: u8, value: u64, private: bool, out: &mut Actions) {
        let op = match off {
            o if (reg::IGROUPR..reg::ISENABLER).contains(&o) => Some((Bits::Group, reg::IGROUPR)),
            o if (reg::ISENABLER..reg::ICENABLER).contains(&o) => Some((Bits::SetEnable, reg::ISENABLER)),
            o if (reg::ICENABLER..reg::ISPENDR).contains(&o) => Some((Bits::ClearEnable, reg::ICENABLER)),
            o if (reg::ISPENDR..reg::ICPENDR).contains(&o) => Some((Bits::SetPending, reg::ISPENDR)),
            o if (reg::ICPENDR..reg::ISACTIVER).contains(&o) => Some((Bits::ClearPending, reg::ICPENDR)),
            o if (reg::ISACTIVER..reg::IPRIORITYR).contains(&o) => Some((Bits::Active, reg::ISACTIVER)),
            _ => None,
        };
        if let Some((op, base)) = op {
            if size != 4 {
                return;
            }
            let Some((first, n)) = self.span(off, base, 32, size, private) else {
                return;
            };
            for i in (0..n).filter(|i| value & (1 << i) != 0) {
                let id = first + i;
                let Some(q) = self.irq(vcpu, id) else { continue };
                match op {
                    Bits::Group => q.group1 = true,
                    Bits::SetEnable => q.enabled = true,
                    Bits::ClearEnable => q.enabled = false,
                    Bits::SetPending => q.pending = true,
                    Bits::ClearPending => q.pending = false,
                    Bits::Active => {}
                }
                if Some(id) == self.kernel_ppi && matches!(op, Bits::SetEnable | Bits::ClearEnable) {
                    self.kernel_ppi_changed(vcpu, out);
                }
                self.deliver(vcpu, id, out);
            }
            // A group bit written 0 makes the interrupt group 0 again.
            if let Bits::Group = op {
                for i in (0..n).filter(|i| value & (1 << i) == 0) {
                    if let Some(q) = self.irq(vcpu, first + i) {
                        q.group1 = false;
                    }
                }
            }
            return;
        }
        match off {
            o if (reg::IPRIORITYR..reg::IPRIORITYR + 0x400).contains(&o) => {
                let Some((first, n)) = self.span(o, reg::IPRIORITYR, 4, size, private) else {
                    return;
                };
                for i in 0..n {
                    if let Some(q) = self.irq(vcpu, first + i) {
                        q.priority = (value >> (8 * i)) as u8;
                    }
                    if Some(first + i) == self.kernel_ppi {
                        self.kernel_ppi_changed(vcpu, out);
                    }
                }
            }
            o if self.version == Version::V2 && !private && (reg::ITARGETSR..reg::ICFGR).contains(&o) => {
                let Some((first, n)) = self.span(o, reg::ITARGETSR, 4, size, false) else {
                    return;
                };
                for i in 0..n {
                    if let Some(q) = self.irq(vcpu, first + i) {
                        q.target = (value >> (8 * i)) as u8;
                    }
                }
            }
            o if (reg::ICFGR..reg::ICFGR + 0x100).contains(&o) => {
                if size != 4 {
                    return;
                }
                let Some((first, n)) = self.span(o, reg::ICFGR, 16, size, private) else {
                    return;
                };
                // SGIs stay edge-triggered (their configuration is read-only), forwarded
                // lines level-triggered.
                for i in (0..n).filter(|i| first + i >= 16) {
                    let id = first + i;
                    let pinned = id >= 32 && self.level_only & (1 << (id - 32)) != 0;
                    if let Some(q) = self.irq(vcpu, id).filter(|_| !pinned) {
                        q.edge = value & (1 << (2 * i + 1)) != 0;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inject(vcpu: usize, intid: u32, priority: u8) -> Action {
        Action::Inject {
            vcpu,
            intid,
            priority,
            level: intid >= 32,
        }
    }

    #[test]
    fn gicv2_spi_goes_once_enabled_to_its_target() {
        let mut g = Gic::new(Version::V2, 2, Some(27));
        let mut out = Actions::new();
        assert_eq!(g.dist_read(0, reg::TYPER, 4), 3 | 1 << 5);
        // SPI 33 at priority 0xa0, to CPU 1, its line goes up before it is enabled.
        g.dist_write(0, reg::IPRIORITYR + 33, 1, 0xa0, &mut out);
        g.dist_write(0, reg::ITARGETSR + 33, 1, 0b10, &mut out);
        assert_eq!(g.dist_read(0, reg::ITARGETSR + 32, 4), 0x0000_0200);
        g.set_level(33, true, &mut out);
        assert!(out.is_empty(), "not enabled yet");
        assert_eq!(g.dist_read(0, reg::ISPENDR + 4, 4), 1 << 1);
        g.dist_write(0, reg::ISENABLER + 4, 4, 1 << 1, &mut out);
        assert!(out.is_empty(), "the distributor is off");
        g.dist_write(0, reg::CTLR, 4, 1, &mut out);
        assert_eq!(&out[..], [inject(1, 33, 0xa0)]);
        // Level-triggered: in service until the guest ends it; the line going down and
        // up meanwhile changes nothing.
        out.clear();
        g.set_level(33, true, &mut out);
        g.set_level(33, false, &mut out);
        g.set_level(33, true, &mut out);
        assert!(out.is_empty());
        // Ended with the line still up: it goes again; ended with it down: it does not.
        g.eoi(1, 33, &mut out);
        assert_eq!(&out[..], [inject(1, 33, 0xa0)]);
        out.clear();
        g.set_level(33, false, &mut out);
        g.eoi(1, 33, &mut out);
        assert!(out.is_empty());
        assert_eq!(g.dist_read(0, reg::ISPENDR + 4, 4), 0);
        g.set_level(33, true, &mut out);
        assert_eq!(&out[..], [inject(1, 33, 0xa0)]);

        // Edge-triggered: one injection per rising edge, no end to hear of.
        out.clear();
        g.dist_write(0, reg::ICFGR + 8, 4, 0b10 << 2, &mut out);
        g.eoi(1, 33, &mut out);
        g.set_level(33, false, &mut out);
        g.set_level(33, true, &mut out);
        g.set_level(33, true, &mut out);
        let edge = Action::Inject {
            vcpu: 1,
            intid: 33,
            priority: 0xa0,
            level: false,
        };
        assert_eq!(&out[..], [edge]);
        g.set_level(33, false, &mut out);
        g.set_level(33, true, &mut out);
        assert_eq!(&out[..], [edge, edge]);
    }

    #[test]
    fn the_kernel_ppi_goes_to_the_kernel_not_into_a_list_register() {
        let mut g = Gic::new(Version::V2, 2, Some(27));
        let mut out = Actions::new();
        g.dist_write(0, reg::CTLR, 4, 1, &mut out);
        // vCPU 1 enables its PPI 27 at priority 0x90 (banked registers).
        g.dist_write(1, reg::IPRIORITYR + 24, 4, 0x9000_0000, &mut out);
        g.dist_write(1, reg::ISENABLER, 4, 1 << 27, &mut out);
        let vppi = |enabled| Action::Vppi {
            vcpu: 1,
            intid: 27,
            enabled,
            priority: 0x90,
        };
        assert_eq!(&out[..], [vppi(false), vppi(true)]);
        assert_eq!(g.dist_read(1, reg::ISENABLER, 4), 1 << 27);
        assert_eq!(g.dist_read(0, reg::ISENABLER, 4), 0, "vCPU 0's bank");
        out.clear();
        g.dist_write(1, reg::ISPENDR, 4, 1 << 27, &mut out);
        assert!(out.is_empty(), "never injected by the VMM");
    }

    #[test]
    fn sgis_by_gicd_sgir_and_icc_sgi1r() {
        let mut g = Gic::new(Version::V2, 3, None);
        let mut out = Actions::new();
        g.dist_write(0, reg::CTLR, 4, 1, &mut out);
        for v in 0..3 {
            g.dist_write(v, reg::ISENABLER, 4, 0xffff, &mut out);
        }
        // To the list (vCPUs 1 and 2), to all others, to self.
        g.dist_write(0, reg::SGIR, 4, 0b110 << 16 | 5, &mut out);
        g.dist_write(1, reg::SGIR, 4, 1 << 24 | 6, &mut out);
        g.dist_write(2, reg::SGIR, 4, 2 << 24 | 7, &mut out);
        let got: Vec<(usize, u32)> = out
            .iter()
            .map(|a| match *a {
                Action::Inject { vcpu, intid, .. } => (vcpu, intid),
                Action::Vppi { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(got, [(1, 5), (2, 5), (0, 6), (2, 6), (2, 7)]);

        let mut g = Gic::new(Version::V3, 3, None);
        let mut out = Actions::new();
        g.dist_write(0, reg::CTLR, 4, 2, &mut out);
        for v in 0..3 {
            g.redist_write(v, reg::SGI_FRAME + reg::ISENABLER, 4, 0xffff, &mut out);
        }
        g.sgi1r(0, 3 << 24 | 0b110, &mut out);
        g.sgi1r(1, 1 << 40 | 4 << 24, &mut out);
        g.sgi1r(0, 1 << 16 | 1, &mut out); // Aff1 = 1: nobody
        assert_eq!(
            &out[..],
            [inject(1, 3, 0), inject(2, 3, 0), inject(0, 4, 0), inject(2, 4, 0)]
        );
    }

    #[test]
    fn gicv3_redistributors_and_routing() {
        let mut g = Gic::new(Version::V3, 2, Some(27));
        let mut out = Actions::new();
        assert_eq!(g.dist_read(0, reg::CTLR, 4), 0x50, "ARE and DS");
        assert_eq!(g.dist_read(0, reg::PIDR2_V3, 4), 0x30);
        // The last redistributor says so; affinity and processor number are the vCPU.
        assert_eq!(g.redist_read(1, reg::GICR_TYPER, 8), 1 << 32 | 1 << 8 | 1 << 4);
        assert_eq!(g.redist_read(0, reg::GICR_TYPER, 8), 0);
        assert_eq!(g.redist_read(2, reg::GICR_TYPER, 8), 0, "no third vCPU");
        // Waking a redistributor.
        assert_eq!(g.redist_read(0, reg::GICR_WAKER, 4), 0b110);
        g.redist_write(0, reg::GICR_WAKER, 4, 0, &mut out);
        assert_eq!(g.redist_read(0, reg::GICR_WAKER, 4), 0);
        // The distributor's SGI/PPI registers are the redistributors' now (RAZ/WI).
        g.dist_write(0, reg::ISENABLER, 4, 0xffff_ffff, &mut out);
        assert_eq!(g.dist_read(0, reg::ISENABLER, 4), 0);
        // SPI 40 routed to vCPU 1, group 1 enabled, raised.
        g.dist_write(0, reg::IROUTER + 8 * 40, 8, 1, &mut out);
        assert_eq!(g.dist_read(0, reg::IROUTER + 8 * 40, 8), 1);
        g.dist_write(0, reg::IPRIORITYR + 40, 1, 0x80, &mut out);
        g.dist_write(0, reg::ISENABLER + 4, 4, 1 << 8, &mut out);
        g.dist_write(0, reg::CTLR, 4, 2, &mut out);
        g.set_level(40, true, &mut out);
        assert_eq!(&out[..], [inject(1, 40, 0x80)]);
        // The timer PPI through the SGI frame.
        out.clear();
        g.redist_write(1, reg::SGI_FRAME + reg::ISENABLER, 4, 1 << 27, &mut out);
        assert_eq!(
            &out[..],
            [Action::Vppi {
                vcpu: 1,
                intid: 27,
                enabled: true,
                priority: 0
            }]
        );
    }

    #[test]
    fn configuration_and_bad_accesses() {
        let mut g = Gic::new(Version::V2, 1, None);
        let mut out = Actions::new();
        // SGIs stay edge; an SPI's configuration reads back.
        g.dist_write(0, reg::ICFGR, 4, 0, &mut out);
        assert_eq!(g.dist_read(0, reg::ICFGR, 4), 0xaaaa_aaaa);
        g.dist_write(0, reg::ICFGR + 8, 4, 0b10, &mut out);
        assert_eq!(g.dist_read(0, reg::ICFGR + 8, 4), 0b10);
        // Past the last SPI, narrow bit registers, active registers: nothing.
        g.dist_write(0, reg::ISENABLER + 0x40, 4, 1, &mut out);
        assert_eq!(g.dist_read(0, reg::ISENABLER + 0x40, 4), 0);
        assert_eq!(g.dist_read(0, reg::ISENABLER, 1), 0);
        assert_eq!(g.dist_read(0, reg::ISACTIVER, 4), 0);
        assert_eq!(g.dist_read(0, 0x7ffc, 4), 0);
        // Group bits read back, cleared by a 0.
        g.dist_write(0, reg::IGROUPR + 4, 4, 0b11, &mut out);
        g.dist_write(0, reg::IGROUPR + 4, 4, 0b01, &mut out);
        assert_eq!(g.dist_read(0, reg::IGROUPR + 4, 4), 0b01);
        assert!(out.is_empty());
    }
}
