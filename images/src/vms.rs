//! `[[vm]]`: a virtual machine, run by its own VMM server (`gaon-vmm`, one VM each: a
//! fault in one VMM takes down only its VM). A VM entry becomes a server named after
//! the VM (so it is a console client, has a priority, a core and a budget like any
//! server) and two boot modules: the guest program and the VM's configuration
//! (`gaon_abi::system::VmConfig`), which the VMM is given by name (`guest`,
//! `vm-config`), with the GICv2 virtual CPU interface's pages (`gicv0`, `gicv1`).

use std::fs;
use std::path::{Path, PathBuf};

use gaon_abi::boot::NAME_LEN;
use gaon_abi::system::{
    BOOTARGS_LEN, COMPATIBLE_LEN, MAX_PASSTHROUGH, MAX_PROBES, Passthrough, ProbeConfig, TaskLayout, VM_CONFIG_MAGIC,
    VM_CONFIG_VERSION, VM_CONSOLE_FOCUS, VM_INITRD, VM_LINUX_IMAGE, VM_MANUAL_START, VM_TESTDEV, VmConfig,
};
use gaon_platform::{Board, DescError, Region};
use gaon_vmm::gic::SPIS;
use gaon_vmm::layout;
use serde::Deserialize;
use zerocopy::{FromZeros, IntoBytes};

use crate::system::{ModuleSource, valid_package};

/// The VMM's package.
pub const VMM_PACKAGE: &str = "gaon-vmm";
/// Where guest RAM starts unless the entry says otherwise (QEMU virt's).
const DEFAULT_RAM_BASE: u64 = 0x4000_0000;
/// The largest guest RAM (the VMM's heap holds it, at most 1 GiB).
const MAX_MEMORY_MIB: u64 = 512;
/// The guest-physical addresses a VM has (40 bits: what stage 2 translates).
const IPA_LIMIT: u64 = 1 << 40;
/// vCPUs a VMM runs at most.
const MAX_VCPUS: u32 = 4;
/// The devices a VM may have emulated.
const DEVICES: &[&str] = &["testdev"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVm {
    name: String,
    guest: RawGuest,
    memory_mib: u64,
    #[serde(default = "default_ram_base")]
    ram_base: u64,
    #[serde(default = "one")]
    pub(crate) vcpus: u32,
    #[serde(default)]
    bootargs: String,
    pub(crate) priority: u32,
    #[serde(default)]
    pub(crate) core: u32,
    pub(crate) budget_us: Option<u64>,
    pub(crate) period_us: Option<u64>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    pub(crate) halt_on_exit: bool,
    #[serde(default = "yes")]
    autostart: bool,
    #[serde(default)]
    focus: bool,
    initrd: Option<PathBuf>,
    #[serde(default)]
    pub(crate) passthrough: Vec<RawPassthrough>,
    /// Managed by the scheduling policy server (`[sched]`).
    pub(crate) sched: Option<crate::sched::RawVmSched>,
    /// Kernel symbols to probe (`probes.rs`).
    #[serde(default)]
    probes: Vec<String>,
    /// The kernel's `System.map` (default: `System.map` beside the guest file).
    system_map: Option<PathBuf>,
}

/// A pass-through device of a `[[vm]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPassthrough {
    pub(crate) name: String,
    pub(crate) paddr: u64,
    pub(crate) size: u64,
    pub(crate) irq: Option<u64>,
    compatible: Vec<String>,
}

const fn yes() -> bool {
    true
}

const fn default_ram_base() -> u64 {
    DEFAULT_RAM_BASE
}

const fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuest {
    package: Option<String>,
    file: Option<PathBuf>,
}

/// A checked `[[vm]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmDesc {
    /// Its name (its VMM server's).
    pub name: String,
    /// The guest program.
    pub guest: ModuleSource,
    /// What the VMM is told.
    pub config: Vec<u8>,
    /// log2 of the VMM's heap: guest RAM and the VMM's objects.
    pub heap_bits: u32,
    /// The initrd (a file), if any.
    pub initrd: Option<PathBuf>,
}

impl VmDesc {
    /// The boot module of the guest program.
    pub fn guest_module(&self) -> String {
        format!("{}-guest", self.name)
    }

    /// The boot module of the configuration.
    pub fn config_module(&self) -> String {
        format!("{}-config", self.name)
    }

    /// The boot module of the initrd.
    pub fn initrd_module(&self) -> String {
        format!("{}-initrd", self.name)
    }
}

/// True if `bytes` start like an arm64 Linux `Image` (its header's magic).
pub fn is_linux_image(bytes: &[u8]) -> bool {
    bytes.get(0x38..0x3c) == Some(b"ARM\x64")
}

/// True if `bytes` start like a 64-bit little-endian AArch64 ELF.
pub fn is_aarch64_elf(bytes: &[u8]) -> bool {
    bytes.len() >= 20 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1 && bytes[18..20] == [0xb7, 0]
}

/// Check `[[vm]]` number `index` of `file` for `board`.
pub(crate) fn check(file: &Path, board: &Board, index: usize, v: &RawVm) -> Result<VmDesc, DescError> {
    let f = format!("vm[{index}]");
    let err = |field: &str, problem: String| DescError::new(file, format!("{f}{field}"), problem);
    if v.memory_mib < 2 || v.memory_mib > MAX_MEMORY_MIB || !v.memory_mib.is_multiple_of(2) {
        return Err(err(
            ".memory_mib",
            format!(
                "is {} but must be an even number of MiB from 2 to {MAX_MEMORY_MIB}",
                v.memory_mib
            ),
        ));
    }
    let ram = v.memory_mib << 20;
    if !v.ram_base.is_multiple_of(2 << 20) || v.ram_base < DEFAULT_RAM_BASE || v.ram_base + ram > IPA_LIMIT {
        return Err(err(
            ".ram_base",
            format!(
                "{:#x} + {ram:#x}: guest RAM must be 2 MiB aligned, above the virtual board's devices \
                 (from {DEFAULT_RAM_BASE:#x}) and below {IPA_LIMIT:#x}",
                v.ram_base
            ),
        ));
    }
    let cpus = board.board.cpus.min(MAX_VCPUS);
    if v.vcpus == 0 || v.vcpus > cpus {
        return Err(err(
            ".vcpus",
            format!(
                "is {} but must be 1..={cpus} (board `{}` has {} cores; a VMM runs at most {MAX_VCPUS})",
                v.vcpus, board.board.name, board.board.cpus
            ),
        ));
    }
    if v.bootargs.len() >= BOOTARGS_LEN || v.bootargs.contains('\0') {
        return Err(err(
            ".bootargs",
            format!("must be at most {} bytes, without NUL", BOOTARGS_LEN - 1),
        ));
    }
    if let Some(d) = v.devices.iter().find(|d| !DEVICES.contains(&d.as_str())) {
        return Err(err(
            ".devices",
            format!("`{d}` is not a device the VMM emulates ({})", DEVICES.join(", ")),
        ));
    }
    let (guest, linux) = match (&v.guest.package, &v.guest.file) {
        (Some(p), None) if valid_package(p) => (ModuleSource::Package(p.clone()), false),
        (Some(p), None) => return Err(err(".guest.package", format!("`{p}` is not a Cargo package name"))),
        (None, Some(path)) => {
            let full = file.parent().unwrap_or(Path::new(".")).join(path);
            let bytes = fs::read(&full).map_err(|e| err(".guest.file", format!("`{}`: {e}", full.display())))?;
            let linux = is_linux_image(&bytes);
            if !linux && !is_aarch64_elf(&bytes) {
                return Err(err(
                    ".guest.file",
                    format!(
                        "`{}` is neither an arm64 Linux Image (magic `ARM\\x64` at 0x38) nor an AArch64 ELF",
                        full.display()
                    ),
                ));
            }
            (ModuleSource::File(full), linux)
        }
        _ => return Err(err(".guest", "give exactly one of `package` or `file`".into())),
    };
    let initrd = check_initrd(file, v, &guest).map_err(|p| err(".initrd", p))?;
    let (probes, task) = check_probes(file, v, &guest, linux).map_err(|(field, p)| err(field, p))?;
    let passthrough = check_passthrough(v).map_err(|(field, p)| err(&field, p))?;
    let mut c = VmConfig::new_zeroed();
    c.magic = VM_CONFIG_MAGIC;
    c.version = VM_CONFIG_VERSION;
    c.flags = if linux { VM_LINUX_IMAGE } else { 0 }
        | if v.devices.iter().any(|d| d == "testdev") {
            VM_TESTDEV
        } else {
            0
        }
        | if v.autostart { 0 } else { VM_MANUAL_START }
        | if v.focus { VM_CONSOLE_FOCUS } else { 0 }
        | if initrd.is_some() { VM_INITRD } else { 0 };
    c.ram_base = v.ram_base;
    c.ram_size = ram;
    c.vcpus = v.vcpus;
    c.bootargs[..v.bootargs.len()].copy_from_slice(v.bootargs.as_bytes());
    c.passthrough = passthrough;
    c.probes = probes;
    c.task = task;
    // Guest RAM in 2 MiB frames, and room for the VMM's own objects beside it.
    let heap_bits = (ram + (4 << 20)).next_power_of_two().trailing_zeros();
    Ok(VmDesc {
        name: v.name.clone(),
        guest,
        config: c.as_bytes().to_vec(),
        heap_bits,
        initrd,
    })
}

/// The probes of `v` and the task layout they read (zero if it has none). The field and
/// the problem if they cannot be.
fn check_probes(
    file: &Path,
    v: &RawVm,
    guest: &ModuleSource,
    linux: bool,
) -> Result<([ProbeConfig; MAX_PROBES], TaskLayout), (&'static str, String)> {
    if v.probes.is_empty() {
        if v.system_map.is_some() {
            return Err((".system_map", "is only used with `probes`".into()));
        }
        return Ok(([ProbeConfig::new_zeroed(); MAX_PROBES], TaskLayout::new_zeroed()));
    }
    if v.probes.len() > MAX_PROBES {
        return Err((
            ".probes",
            format!("has {}; a VM has at most {MAX_PROBES}", v.probes.len()),
        ));
    }
    let ModuleSource::File(image) = guest else {
        return Err((
            ".probes",
            "probes need an arm64 Linux Image guest (`guest.file`)".into(),
        ));
    };
    if !linux {
        return Err((".probes", "probes need an arm64 Linux Image guest, not an ELF".into()));
    }
    let map_path = match &v.system_map {
        Some(p) => file.parent().unwrap_or(Path::new(".")).join(p),
        None => image.with_file_name("System.map"),
    };
    let text = fs::read_to_string(&map_path).map_err(|e| (".system_map", format!("`{}`: {e}", map_path.display())))?;
    let map =
        crate::probes::SystemMap::parse(&text).map_err(|e| (".system_map", format!("`{}` {e}", map_path.display())))?;
    let bytes = fs::read(image).map_err(|e| (".guest.file", format!("`{}`: {e}", image.display())))?;
    crate::probes::resolve(&v.probes, &map, &bytes)
        .map_err(|e| (".probes", format!("{e} (System.map `{}`)", map_path.display())))
}

/// The initrd of `v` (its path from the description `file`), if any: it must exist, not
/// be empty, and fit in RAM below the device tree (the last 2 MiB) with the guest
/// program (whose size is known here for a file). The problem if not.
fn check_initrd(file: &Path, v: &RawVm, guest: &ModuleSource) -> Result<Option<PathBuf>, String> {
    let Some(path) = &v.initrd else { return Ok(None) };
    let guest_bytes = match guest {
        ModuleSource::File(path) => fs::metadata(path).map_or(0, |m| m.len()),
        _ => 0,
    };
    let full = file.parent().unwrap_or(Path::new(".")).join(path);
    let len = fs::metadata(&full)
        .map_err(|e| format!("`{}`: {e}", full.display()))?
        .len();
    if len == 0 || len + guest_bytes + (2 << 20) > v.memory_mib << 20 {
        return Err(format!(
            "`{}` ({len} bytes) does not fit: it must not be empty, and with the guest program \
             ({guest_bytes} bytes) and the device tree's 2 MiB it must fit in the {} MiB of RAM",
            full.display(),
            v.memory_mib
        ));
    }
    Ok(Some(full))
}

/// The pass-through devices of `v` as its VMM is told them. Where they are and which
/// lines they raise is checked as for a server's `mmio` and `irq` (the VMM is given
/// them so); here: how many, their `compatible`, and that they are clear of guest RAM
/// and of what the VMM emulates. The problem (field, text) if not.
fn check_passthrough(v: &RawVm) -> Result<[Passthrough; MAX_PASSTHROUGH], (String, String)> {
    let mut out = [Passthrough::new_zeroed(); MAX_PASSTHROUGH];
    if v.passthrough.len() > MAX_PASSTHROUGH {
        return Err((
            ".passthrough".into(),
            format!("{} devices, at most {MAX_PASSTHROUGH}", v.passthrough.len()),
        ));
    }
    let ram = (v.ram_base, v.ram_base + (v.memory_mib << 20));
    for (i, (p, e)) in v.passthrough.iter().zip(&mut out).enumerate() {
        let f = |field: &str| format!(".passthrough[{i}]{field}");
        // Its page grants are `<name>.<k>`: the name leaves room for the suffix.
        let pages = p.size / 4096;
        let suffix = format!(".{}", pages.saturating_sub(1)).len();
        if !crate::system::valid_name(&p.name) || p.name.len() + suffix > NAME_LEN {
            return Err((
                f(".name"),
                format!(
                    "`{}` must be 1..={} letters, digits, `-`, `_` or `.` (its pages are granted as `<name>.<page>`)",
                    p.name,
                    NAME_LEN.saturating_sub(suffix)
                ),
            ));
        }
        if let Some(line) = p.irq.filter(|&l| !(32..32 + SPIS as u64).contains(&l)) {
            return Err((
                f(".irq"),
                format!("line {line} is no SPI the VM's distributor has (32..{})", 32 + SPIS),
            ));
        }
        let end = p.paddr.saturating_add(p.size);
        let device = Region {
            base: p.paddr,
            size: p.size,
        };
        let overlaps = |base: u64, size: u64| device.overlaps(&Region { base, size });
        if overlaps(ram.0, ram.1 - ram.0) {
            return Err((f(".paddr"), format!("{:#x}..{end:#x} overlaps the VM's RAM", p.paddr)));
        }
        if let Some((what, base, size)) = layout::EMULATED.iter().find(|&&(_, b, s)| overlaps(b, s)) {
            return Err((
                f(".paddr"),
                format!(
                    "{:#x}..{end:#x} overlaps {what} the VMM emulates at {base:#x}..{:#x}",
                    p.paddr,
                    base + size
                ),
            ));
        }
        if let Some(line) = p
            .irq
            .filter(|&l| layout::EMULATED_IRQS.iter().any(|&e| u64::from(e) == l))
        {
            return Err((
                f(".irq"),
                format!("line {line} is an interrupt of a device the VMM emulates"),
            ));
        }
        let compatible: Vec<u8> = p.compatible.iter().flat_map(|c| c.bytes().chain([0])).collect();
        if p.compatible.is_empty()
            || p.compatible.iter().any(|c| c.is_empty() || c.contains('\0'))
            || compatible.len() > COMPATIBLE_LEN
        {
            return Err((
                f(".compatible"),
                format!(
                    "give one or more non-empty device tree `compatible` strings, {COMPATIBLE_LEN} bytes at most with their NULs"
                ),
            ));
        }
        e.name = crate::servers::name_array(&p.name);
        e.paddr = p.paddr;
        e.size = p.size;
        e.irq = p.irq.and_then(|l| u32::try_from(l).ok()).unwrap_or(0);
        e.compatible[..compatible.len()].copy_from_slice(&compatible);
    }
    Ok(out)
}

impl RawVm {
    /// The VM's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// True if its VMM starts it once built (else a `Vmm` client does).
    pub(crate) const fn autostarts(&self) -> bool {
        self.autostart
    }

    /// True if it has an initrd (one more boot module).
    pub(crate) const fn has_initrd(&self) -> bool {
        self.initrd.is_some()
    }

    /// True if its VMM takes the console's focus at boot.
    pub(crate) const fn takes_focus(&self) -> bool {
        self.focus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_formats() {
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert!(is_linux_image(&image) && !is_aarch64_elf(&image));
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        (elf[4], elf[5], elf[18]) = (2, 1, 0xb7);
        assert!(is_aarch64_elf(&elf) && !is_linux_image(&elf));
        elf[18] = 0x3e; // x86-64
        assert!(!is_aarch64_elf(&elf));
    }
}
