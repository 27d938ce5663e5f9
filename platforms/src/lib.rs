//! Board descriptions.
//!
//! Each board lives in `platforms/<board>/board.toml`. This crate parses and validates
//! those files for the host tools (the image tool, `xtask`) and generates the kernel's
//! per-board constants from them (called from `kernel/build.rs`). Adding a board means
//! adding one folder; see `docs/porting.md`.
#![deny(unsafe_code)]

mod error;
mod kernel_config;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use error::DescError;
pub use kernel_config::kernel_config_rs;

/// Granule of every address and size in a board file.
pub const PAGE: u64 = 4096;
/// Alignment the RAM region needs: the kernel maps RAM with 2 MiB blocks where it can.
pub const BLOCK: u64 = 2 << 20;
/// The most CPUs the kernel's per-CPU arrays hold.
pub const MAX_CPUS: u32 = 8;
/// Physical addresses the kernel's 39-bit EL2 identity map can reach.
pub const PA_LIMIT: u64 = 1 << 39;

/// A parsed, validated board file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// `[board]`.
    pub board: BoardInfo,
    /// `[memory]`: the RAM the kernel manages.
    pub memory: Region,
    /// `[[mmio]]`: device regions the kernel maps as Device-nGnRE.
    #[serde(default)]
    pub mmio: Vec<NamedRegion>,
    /// `[[device]]`: the devices inside the `[[mmio]]` windows, and which of them the
    /// root server may hand out.
    #[serde(default)]
    pub device: Vec<Device>,
    /// `[[reserved]]`: regions the kernel keeps besides the interrupt controller's
    /// frames (a GIC's hypervisor and virtual CPU interfaces, an ITS, an SMMU, ...).
    #[serde(default)]
    pub reserved: Vec<NamedRegion>,
    /// `[uart]`: the kernel's console.
    pub uart: Uart,
    /// `[interrupt_controller]`.
    pub interrupt_controller: InterruptController,
    /// `[timer]`.
    pub timer: Timer,
    /// `[[qemu]]`: the QEMU configurations this board boots in.
    #[serde(default)]
    pub qemu: Vec<QemuConfig>,
}

/// `[board]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardInfo {
    /// Must equal the folder name.
    pub name: String,
    /// One line for the banner and `--help`.
    pub description: String,
    /// Physical address of the kernel's first byte.
    pub load_address: u64,
    /// The bootable file's format.
    pub image_format: ImageFormat,
    /// CPUs on the board. CPU 0 boots and starts the others (`cpu_start`); each runs the
    /// threads placed on it (a server's `core = N` in a system description).
    pub cpus: u32,
    /// How CPU 0 starts the others when the kernel is entered at EL2 (entered at EL3,
    /// every CPU starts at the entry and waits in the kernel's holding pen).
    #[serde(default)]
    pub cpu_start: CpuStart,
    /// With `cpu_start = "spin-table"`: where CPU n's release word is
    /// (`spin_table + 8 n`), in RAM below the kernel, which is never handed out.
    #[serde(default)]
    pub spin_table: Option<u64>,
}

/// How the boot CPU starts the others.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CpuStart {
    /// PSCI `CPU_ON` over SMC (QEMU's PSCI on `virt` and `xlnx-zcu102`, or EL3 firmware).
    #[default]
    Psci,
    /// A spin table: the others wait at EL2 for an entry address in their word of it (the
    /// Raspberry Pi firmware's and QEMU's `raspi3b` stub).
    SpinTable,
}

/// Bootable file formats.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// An ELF file, as QEMU's `-kernel` loads it.
    Elf,
    /// A flat binary starting at `load_address`, like a Raspberry Pi `kernel8.img`.
    Raw,
}

/// A physical address range.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last byte, or `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// True if `[addr, addr + len)` lies inside this range.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        match (self.end(), addr.checked_add(len)) {
            (Some(end), Some(a_end)) => addr >= self.base && a_end <= end,
            _ => false,
        }
    }

    /// True if the two ranges share a byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        let a_end = self.end().unwrap_or(u64::MAX);
        let b_end = other.end().unwrap_or(u64::MAX);
        self.base < b_end && other.base < a_end
    }
}

/// A named device region.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedRegion {
    /// What lives there.
    pub name: String,
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl NamedRegion {
    /// The range it occupies.
    pub fn region(&self) -> Region {
        Region {
            base: self.base,
            size: self.size,
        }
    }
}

/// `[[device]]`: one device in an `[[mmio]]` window.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// What it is.
    pub name: String,
    /// First byte (4 KiB aligned).
    pub base: u64,
    /// Length in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// It can master the bus (DMA). With no IOMMU in use, whoever drives it can read
    /// and write any RAM, the kernel's included.
    pub dma: bool,
    /// The root server may hand it out (it is part of root's device untyped).
    /// Default: `true` unless `dma`.
    #[serde(default)]
    pub user: Option<bool>,
    /// The explicit opt-in a DMA device needs to be given to user level (`user = true`).
    #[serde(default)]
    pub user_dma: bool,
}

impl Device {
    /// The range it occupies.
    pub fn region(&self) -> Region {
        Region {
            base: self.base,
            size: self.size,
        }
    }

    /// True if the root server may hand it out.
    pub fn is_user(&self) -> bool {
        self.user.unwrap_or(!self.dma)
    }
}

/// UART drivers the kernel has.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UartKind {
    /// Arm PrimeCell PL011 (QEMU virt, Raspberry Pi).
    Pl011,
    /// Cadence UART (Xilinx Zynq UltraScale+).
    Cadence,
}

/// `[uart]`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uart {
    /// Driver.
    pub kind: UartKind,
    /// MMIO base.
    pub base: u64,
}

/// Interrupt controller drivers the kernel has.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IrqKind {
    /// An Arm GIC; the version is read from `ID_AA64PFR0_EL1` at boot.
    Gic,
    /// The BCM2836 per-core local interrupt controller (Raspberry Pi 2/3).
    Bcm2836,
}

/// `[interrupt_controller]`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterruptController {
    /// Driver.
    pub kind: IrqKind,
    /// GICv2 frames, if the board can have a GICv2.
    pub gicv2: Option<GicV2>,
    /// GICv3 frames, if the board can have a GICv3.
    pub gicv3: Option<GicV3>,
    /// BCM2836 local peripherals base.
    pub bcm2836_local: Option<u64>,
    /// The GIC's virtual interface maintenance interrupt (a PPI), which the kernel
    /// keeps: it learns of a guest's end of interrupt from it.
    #[serde(default)]
    pub maintenance_irq: Option<u32>,
}

/// GICv2 frame addresses.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GicV2 {
    /// GICD.
    pub distributor: u64,
    /// GICC.
    pub cpu_interface: u64,
    /// GICH, the virtual interface control (its first 64 KiB), if the GIC has the
    /// virtualisation extensions: the kernel drives it for guests.
    #[serde(default)]
    pub hyp_interface: Option<u64>,
    /// GICV, the virtual CPU interface (its first 64 KiB; a guest gets the first two
    /// pages as its GICC), with `hyp_interface`.
    #[serde(default)]
    pub vcpu_interface: Option<u64>,
}

/// GICv3 frame addresses.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GicV3 {
    /// GICD.
    pub distributor: u64,
    /// First GICR frame.
    pub redistributor: u64,
}

/// `[timer]`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timer {
    /// The EL2 physical timer's interrupt in the controller's numbering
    /// (a GIC INTID, or a BCM2836 local source bit).
    pub hyp_irq: u32,
    /// The EL1 physical timer's interrupt (CNTP, a GIC PPI), if user level may have it:
    /// its handler arms the timer (`IrqHandlerSetTimer`), and the kernel hands its line
    /// out like an SPI.
    #[serde(default)]
    pub user_irq: Option<u32>,
    /// The EL1 virtual timer's interrupt (CNTV, a GIC PPI): the guests' timer, which
    /// the kernel keeps and injects into the guest whose timer fired. Without it (and
    /// the controller's `maintenance_irq`) guests have no virtual timer.
    #[serde(default)]
    pub guest_irq: Option<u32>,
}

/// `[[qemu]]`: one QEMU configuration that boots this board.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// Configuration name used by `scripts/run` and the tests, e.g. `virt-gicv3-a53`.
    pub name: String,
    /// `-M` argument.
    pub machine: String,
    /// `-cpu` argument, if the machine has a choice.
    pub cpu: Option<String>,
    /// `-m` argument; defaults to the board's memory size.
    pub memory: Option<String>,
    /// `-smp` argument; every CPU of the board (`cpus`) if not given. Read it with
    /// [`Board::smp`].
    #[serde(default)]
    pub smp: Option<u32>,
    /// What the banner must say about the CPU in this configuration, e.g. `Cortex-A53`.
    pub expect_cpu: String,
    /// What the banner must say about the interrupt controller in this configuration.
    pub expect_irq: String,
    /// Which exception level QEMU enters the kernel at (the banner reports the kernel's own).
    #[serde(default = "two")]
    pub entry_el: u32,
}

fn two() -> u32 {
    2
}

impl Board {
    /// The CPUs QEMU gives configuration `q` (`-smp`).
    pub fn smp(&self, q: &QemuConfig) -> u32 {
        q.smp.unwrap_or(self.board.cpus)
    }

    /// The interrupt controller's register frames, named: the kernel drives them.
    pub fn interrupt_controller_frames(&self) -> Vec<NamedRegion> {
        let ic = &self.interrupt_controller;
        let named = |name: &str, base: u64, size: u64| NamedRegion {
            name: name.into(),
            base,
            size,
        };
        let mut v = Vec::new();
        if let Some(f) = ic.gicv2 {
            v.push(named("gicv2-distributor", f.distributor, 0x1_0000));
            v.push(named("gicv2-cpu-interface", f.cpu_interface, 0x2_0000));
            if let Some(h) = f.hyp_interface {
                v.push(named("gicv2-hyp-interface", h, 0x1_0000));
            }
            if let Some(c) = f.vcpu_interface {
                v.push(named("gicv2-vcpu-interface", c, 0x1_0000));
            }
        }
        if let Some(f) = ic.gicv3 {
            v.push(named("gicv3-distributor", f.distributor, 0x1_0000));
            v.push(named(
                "gicv3-redistributors",
                f.redistributor,
                0x2_0000 * u64::from(self.board.cpus),
            ));
        }
        if let Some(local) = ic.bcm2836_local {
            v.push(named("bcm2836-local", local, 0x1000));
        }
        v
    }

    /// Every region the kernel keeps: the interrupt controller's frames and the
    /// `[[reserved]]` regions. None of it is ever device untyped.
    pub fn kernel_regions(&self) -> Vec<NamedRegion> {
        let mut v = self.interrupt_controller_frames();
        v.extend(self.reserved.iter().cloned());
        v
    }

    /// The devices the root server may hand out: its device untyped is exactly these.
    pub fn user_devices(&self) -> impl Iterator<Item = &Device> {
        self.device.iter().filter(|d| d.is_user())
    }

    /// The devices kept from user level (DMA masters without the opt-in, and devices
    /// marked `user = false`).
    pub fn withheld_devices(&self) -> impl Iterator<Item = &Device> {
        self.device.iter().filter(|d| !d.is_user())
    }

    /// The interrupt lines user level can be given: GIC shared peripheral interrupts
    /// (32..1020); none on the BCM2836 local controller.
    pub fn user_irqs(&self) -> std::ops::Range<u64> {
        match self.interrupt_controller.kind {
            IrqKind::Gic => 32..1020,
            IrqKind::Bcm2836 => 0..0,
        }
    }

    /// Load `platforms/<name>/board.toml` under `platforms_dir`.
    pub fn load(platforms_dir: &Path, name: &str) -> Result<Self, DescError> {
        let file = Self::path(platforms_dir, name);
        if !file.is_file() {
            let known = list_boards(platforms_dir).join(", ");
            return Err(DescError::new(
                &file,
                "",
                format!("no such board `{name}` (known boards: {known})"),
            ));
        }
        let text = fs::read_to_string(&file).map_err(|e| DescError::new(&file, "", format!("cannot read: {e}")))?;
        Self::parse(&file, &text, Some(name))
    }

    /// Where a board's file lives.
    pub fn path(platforms_dir: &Path, name: &str) -> PathBuf {
        platforms_dir.join(name).join("board.toml")
    }

    /// Parse and validate board file text. `folder` is the folder name it must match.
    pub fn parse(file: &Path, text: &str, folder: Option<&str>) -> Result<Self, DescError> {
        let board: Board = toml::from_str(text).map_err(|e| DescError::from_toml(file, text, &e))?;
        board.validate(file, folder)?;
        Ok(board)
    }

    /// Every rule a board file must satisfy.
    #[allow(clippy::too_many_lines)] // one flat list of rules reads better than many helpers
    pub fn validate(&self, file: &Path, folder: Option<&str>) -> Result<(), DescError> {
        let err = |field: &str, problem: String| Err(DescError::new(file, field, problem));
        let b = &self.board;
        if let Some(folder) = folder
            && b.name != folder
        {
            return err("board.name", format!("is `{}` but the folder is `{folder}`", b.name));
        }
        if b.name.is_empty() || !b.name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return err("board.name", "must be non-empty letters, digits and `-`".into());
        }
        if b.cpus == 0 || b.cpus > MAX_CPUS {
            return err("board.cpus", format!("is {} but must be 1..={MAX_CPUS}", b.cpus));
        }
        let mem = self.memory;
        if mem.size == 0 {
            return err("memory.size", "must not be zero".into());
        }
        if !mem.base.is_multiple_of(BLOCK) || !mem.size.is_multiple_of(BLOCK) {
            return err(
                "memory",
                format!(
                    "base {:#x} and size {:#x} must be multiples of 2 MiB",
                    mem.base, mem.size
                ),
            );
        }
        if mem.end().is_none_or(|e| e > PA_LIMIT) {
            return err(
                "memory",
                format!("must end below {PA_LIMIT:#x} (the kernel's 39-bit map)"),
            );
        }
        if !b.load_address.is_multiple_of(PAGE) {
            return err(
                "board.load_address",
                format!("{:#x} is not 4 KiB aligned", b.load_address),
            );
        }
        if !mem.contains(b.load_address, BLOCK) {
            return err(
                "board.load_address",
                format!(
                    "{:#x} leaves no room for the kernel inside memory {:#x}..{:#x}",
                    b.load_address,
                    mem.base,
                    mem.base + mem.size
                ),
            );
        }
        match (b.cpu_start, b.spin_table) {
            (CpuStart::Psci, None) => {}
            (CpuStart::Psci, Some(_)) => {
                return err("board.spin_table", "only applies to cpu_start = \"spin-table\"".into());
            }
            (CpuStart::SpinTable, None) => {
                return err(
                    "board.spin_table",
                    "cpu_start = \"spin-table\" needs its address".into(),
                );
            }
            (CpuStart::SpinTable, Some(t)) => {
                // The kernel writes it with the MMU on and never hands out RAM below itself.
                let len = 8 * u64::from(b.cpus);
                if !t.is_multiple_of(8) || !mem.contains(t, len) || t.saturating_add(len) > b.load_address {
                    return err(
                        "board.spin_table",
                        format!(
                            "{t:#x}: {len} bytes, 8-byte aligned, must lie in memory below the kernel ({:#x})",
                            b.load_address
                        ),
                    );
                }
            }
        }
        let mut names = BTreeSet::new();
        for (i, m) in self.mmio.iter().enumerate() {
            let field = format!("mmio[{i}]");
            if !names.insert(m.name.as_str()) {
                return err(&field, format!("name `{}` is used twice", m.name));
            }
            if m.size == 0 || !m.base.is_multiple_of(PAGE) || !m.size.is_multiple_of(PAGE) {
                return err(&field, format!("`{}` must be non-empty and 4 KiB aligned", m.name));
            }
            if m.region().end().is_none_or(|e| e > PA_LIMIT) {
                return err(&field, format!("`{}` must end below {PA_LIMIT:#x}", m.name));
            }
            if m.region().overlaps(&mem) {
                return err(&field, format!("`{}` overlaps memory", m.name));
            }
            if let Some(other) = self.mmio[..i].iter().find(|o| o.region().overlaps(&m.region())) {
                return err(&field, format!("`{}` overlaps `{}`", m.name, other.name));
            }
        }
        let in_mmio = |addr: u64| self.mmio.iter().any(|m| m.region().contains(addr, PAGE));
        if !in_mmio(self.uart.base) {
            return err(
                "uart.base",
                format!("{:#x} is not inside any [[mmio]] region", self.uart.base),
            );
        }
        let ic = &self.interrupt_controller;
        match ic.kind {
            IrqKind::Gic => {
                if ic.gicv2.is_none() && ic.gicv3.is_none() {
                    return err(
                        "interrupt_controller",
                        "kind \"gic\" needs a gicv2 or gicv3 table".into(),
                    );
                }
                if ic.bcm2836_local.is_some() {
                    return err(
                        "interrupt_controller.bcm2836_local",
                        "only applies to kind \"bcm2836\"".into(),
                    );
                }
                if let Some(v2) = ic.gicv2 {
                    if v2.hyp_interface.is_some() != v2.vcpu_interface.is_some() {
                        return err(
                            "interrupt_controller.gicv2",
                            "hyp_interface and vcpu_interface come together or not at all".into(),
                        );
                    }
                    let frames = [
                        ("distributor", Some(v2.distributor)),
                        ("cpu_interface", Some(v2.cpu_interface)),
                        ("hyp_interface", v2.hyp_interface),
                        ("vcpu_interface", v2.vcpu_interface),
                    ];
                    for (f, a) in frames.iter().filter_map(|&(f, a)| Some((f, a?))) {
                        if !a.is_multiple_of(0x1_0000) {
                            return err(
                                &format!("interrupt_controller.gicv2.{f}"),
                                format!("{a:#x} is not 64 KiB aligned"),
                            );
                        }
                        if !in_mmio(a) {
                            return err(
                                &format!("interrupt_controller.gicv2.{f}"),
                                format!("{a:#x} is not inside any [[mmio]] region"),
                            );
                        }
                    }
                }
                if let Some(v3) = ic.gicv3 {
                    for (f, a) in [("distributor", v3.distributor), ("redistributor", v3.redistributor)] {
                        if !in_mmio(a) {
                            return err(
                                &format!("interrupt_controller.gicv3.{f}"),
                                format!("{a:#x} is not inside any [[mmio]] region"),
                            );
                        }
                    }
                }
                if !(16..32).contains(&self.timer.hyp_irq) {
                    return err(
                        "timer.hyp_irq",
                        format!("{} is not a GIC PPI (16..32)", self.timer.hyp_irq),
                    );
                }
                if let Some(u) = self.timer.user_irq
                    && (!(16..32).contains(&u) || u == self.timer.hyp_irq)
                {
                    return err(
                        "timer.user_irq",
                        format!("{u} is not a GIC PPI (16..32) other than timer.hyp_irq"),
                    );
                }
                let mut taken = vec![self.timer.hyp_irq];
                taken.extend(self.timer.user_irq);
                for (field, line) in [
                    ("timer.guest_irq", self.timer.guest_irq),
                    ("interrupt_controller.maintenance_irq", ic.maintenance_irq),
                ] {
                    let Some(l) = line else { continue };
                    if !(16..32).contains(&l) || taken.contains(&l) {
                        return err(
                            field,
                            format!("{l} is not a GIC PPI (16..32) that no other timer line uses"),
                        );
                    }
                    taken.push(l);
                }
                if self.timer.guest_irq.is_some() != ic.maintenance_irq.is_some() {
                    return err(
                        "timer.guest_irq",
                        "guests need both timer.guest_irq and interrupt_controller.maintenance_irq, or neither".into(),
                    );
                }
            }
            IrqKind::Bcm2836 => {
                let Some(local) = ic.bcm2836_local else {
                    return err(
                        "interrupt_controller.bcm2836_local",
                        "kind \"bcm2836\" needs the local peripherals base".into(),
                    );
                };
                if ic.gicv2.is_some() || ic.gicv3.is_some() {
                    return err("interrupt_controller", "kind \"bcm2836\" has no GIC".into());
                }
                if !in_mmio(local) {
                    return err(
                        "interrupt_controller.bcm2836_local",
                        format!("{local:#x} is not inside any [[mmio]] region"),
                    );
                }
                if self.timer.user_irq.is_some() {
                    return err(
                        "timer.user_irq",
                        "the BCM2836 local controller has no line to give to user level".into(),
                    );
                }
                if self.timer.guest_irq.is_some() || ic.maintenance_irq.is_some() {
                    return err(
                        "timer.guest_irq",
                        "the BCM2836 local controller has no virtual interface for guests".into(),
                    );
                }
                if self.timer.hyp_irq > 11 {
                    return err(
                        "timer.hyp_irq",
                        format!("{} is not a BCM2836 local source (0..12)", self.timer.hyp_irq),
                    );
                }
            }
        }
        self.validate_devices(file)?;
        let mut qnames = BTreeSet::new();
        for (i, q) in self.qemu.iter().enumerate() {
            let field = format!("qemu[{i}]");
            if !qnames.insert(q.name.as_str()) {
                return err(&field, format!("configuration name `{}` is used twice", q.name));
            }
            let smp = self.smp(q);
            if smp == 0 || smp > b.cpus {
                return err(&format!("{field}.smp"), format!("{smp} must be 1..={}", b.cpus));
            }
            if !(1..=3).contains(&q.entry_el) {
                return err(
                    &format!("{field}.entry_el"),
                    format!("{} is not an exception level the kernel can enter at", q.entry_el),
                );
            }
        }
        Ok(())
    }

    /// The `[[reserved]]` and `[[device]]` rules: unique names, page aligned, inside one
    /// `[[mmio]]` window; then [`Self::validate_device_overlaps`].
    fn validate_devices(&self, file: &Path) -> Result<(), DescError> {
        let err = |field: &str, problem: String| Err(DescError::new(file, field, problem));
        let range = |r: Region| format!("{:#x}..{:#x}", r.base, r.base.saturating_add(r.size));
        let mut names = BTreeSet::new();
        let entries = self
            .reserved
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("reserved[{i}]"), r.name.as_str(), r.region()))
            .chain(
                self.device
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("device[{i}]"), d.name.as_str(), d.region())),
            );
        for (field, name, r) in entries {
            if name.is_empty() || !names.insert(name) {
                return err(
                    &field,
                    format!("name `{name}` is empty or already names a device or reserved region"),
                );
            }
            if r.size == 0 || !r.base.is_multiple_of(PAGE) || !r.size.is_multiple_of(PAGE) {
                return err(
                    &field,
                    format!(
                        "`{name}` at {:#x} size {:#x}: base and size must be multiples of 4 KiB, size non-zero",
                        r.base, r.size
                    ),
                );
            }
            if !self.mmio.iter().any(|m| m.region().contains(r.base, r.size)) {
                return err(
                    &field,
                    format!("`{name}` {} is not inside one [[mmio]] region", range(r)),
                );
            }
        }
        self.validate_device_overlaps(file)
    }

    /// No `[[reserved]]` region on another or on the interrupt controller; no device on
    /// another or on a region the kernel keeps; no DMA master given to user level
    /// without the opt-in.
    fn validate_device_overlaps(&self, file: &Path) -> Result<(), DescError> {
        let err = |field: &str, problem: String| Err(DescError::new(file, field, problem));
        let range = |r: Region| format!("{:#x}..{:#x}", r.base, r.base.saturating_add(r.size));
        let frames = self.interrupt_controller_frames();
        for (i, r) in self.reserved.iter().enumerate() {
            if let Some(o) = frames
                .iter()
                .chain(&self.reserved[..i])
                .find(|o| o.region().overlaps(&r.region()))
            {
                return err(
                    &format!("reserved[{i}]"),
                    format!(
                        "`{}` {} overlaps `{}` {}, which the kernel already keeps",
                        r.name,
                        range(r.region()),
                        o.name,
                        range(o.region())
                    ),
                );
            }
        }
        let kernel = self.kernel_regions();
        for (i, d) in self.device.iter().enumerate() {
            let field = format!("device[{i}]");
            if let Some(k) = kernel.iter().find(|k| k.region().overlaps(&d.region())) {
                return err(
                    &field,
                    format!(
                        "`{}` {} overlaps `{}` {}, which the kernel keeps",
                        d.name,
                        range(d.region()),
                        k.name,
                        range(k.region())
                    ),
                );
            }
            if let Some(o) = self.device[..i].iter().find(|o| o.region().overlaps(&d.region())) {
                return err(
                    &field,
                    format!(
                        "`{}` {} overlaps device `{}` {}",
                        d.name,
                        range(d.region()),
                        o.name,
                        range(o.region())
                    ),
                );
            }
            if d.dma && d.is_user() && !d.user_dma {
                return err(
                    &format!("{field}.user"),
                    format!(
                        "`{}` can master the bus (dma = true) and no IOMMU is in use, so whoever drives it can \
                         write any RAM, the kernel's included: drop `user = true` to keep it from user level, \
                         or opt in with `user_dma = true`",
                        d.name
                    ),
                );
            }
            if d.user_dma && !(d.dma && d.is_user()) {
                return err(
                    &format!("{field}.user_dma"),
                    format!(
                        "`{}`: `user_dma = true` only applies to a DMA device (dma = true) given to user level (user = true)",
                        d.name
                    ),
                );
            }
        }
        Ok(())
    }

    /// The QEMU configuration called `name`.
    pub fn qemu_config(&self, name: &str) -> Option<&QemuConfig> {
        self.qemu.iter().find(|q| q.name == name)
    }
}

/// The boards under `platforms_dir`, sorted.
pub fn list_boards(platforms_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(platforms_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("board.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests;
