//! The guest's device tree, written with `vm-fdt`: memory, the vCPUs (started by PSCI
//! over HVC), PSCI, the GIC (v2 or v3), the architected timer's PPIs, the PL011 with its
//! clock, the test device when the VM has one, and `chosen` (bootargs, the console, the
//! initrd). What it says is [`crate::layout`].

use alloc::vec::Vec;

use vm_fdt::{Error, FdtWriter};

use crate::gic::{self, Version};
use crate::layout;

/// What the device tree describes.
#[derive(Clone, Copy, Debug)]
pub struct Board<'a> {
    pub ram_base: u64,
    pub ram_size: u64,
    pub vcpus: u32,
    pub gic: Version,
    pub bootargs: &'a str,
    /// `[start, end)` of the initrd in guest-physical memory.
    pub initrd: Option<(u64, u64)>,
    pub testdev: bool,
    /// Pass-through devices.
    pub passthrough: &'a [Device<'a>],
    /// A seed for the guest's address-space randomization and random number generator
    /// (`chosen/kaslr-seed` and `rng-seed`, as QEMU and firmware give them).
    pub seed: u64,
}

/// A pass-through device's node: `<name>@<base>`, with its `compatible` (the raw
/// property: NUL-terminated strings), one `reg` range, its SPI if any (level high), and
/// the APB clock (what an AMBA primecell driver asks for).
#[derive(Clone, Copy, Debug)]
pub struct Device<'a> {
    pub name: &'a str,
    pub base: u64,
    pub size: u64,
    pub irq: Option<u32>,
    pub compatible: &'a [u8],
}

/// Phandles.
const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;

/// GIC interrupt specifier cells: SPI or PPI, number, flags.
const SPI: u32 = 0;
const PPI: u32 = 1;
const LEVEL_HIGH: u32 = 4;

/// `reg` of a `#address-cells = 2`, `#size-cells = 2` node.
fn reg(regions: &[(u64, u64)]) -> Vec<u64> {
    regions.iter().flat_map(|&(a, s)| [a, s]).collect()
}

/// The device tree blob for `b`.
pub fn device_tree(b: &Board<'_>) -> Result<Vec<u8>, Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", b.bootargs)?;
    fdt.property_string("stdout-path", "/pl011@9000000")?;
    if let Some((start, end)) = b.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.property_u64("kaslr-seed", b.seed)?;
    let mut rng = [0u8; 32];
    let mut x = b.seed;
    for chunk in rng.chunks_mut(8) {
        x = splitmix64(x);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    fdt.property("rng-seed", &rng)?;
    fdt.end_node(chosen)?;

    let memory = fdt.begin_node(&alloc::format!("memory@{:x}", b.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &reg(&[(b.ram_base, b.ram_size)]))?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for n in 0..b.vcpus {
        let cpu = fdt.begin_node(&alloc::format!("cpu@{n}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", n)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list("compatible", alloc::vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()])?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    // The timer's PPIs: secure and non-secure physical, virtual, hypervisor. On GICv2 the
    // flags name the CPUs that have them.
    let ppi_flags = match b.gic {
        Version::V2 => LEVEL_HIGH | ((1 << b.vcpus) - 1) << 8,
        Version::V3 => LEVEL_HIGH,
    };
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let ppis = [
        layout::SECURE_PTIMER_IRQ,
        layout::PTIMER_IRQ,
        layout::VTIMER_IRQ,
        layout::HYP_TIMER_IRQ,
    ];
    let spec: Vec<u32> = ppis.iter().flat_map(|&i| [PPI, i - 16, ppi_flags]).collect();
    fdt.property_array_u32("interrupts", &spec)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    let intc = fdt.begin_node(&alloc::format!("intc@{:x}", layout::GICD))?;
    match b.gic {
        Version::V2 => {
            fdt.property_string("compatible", "arm,cortex-a15-gic")?;
            fdt.property_array_u64("reg", &reg(&[(layout::GICD, 0x1000), (layout::GICC, 0x2000)]))?;
        }
        Version::V3 => {
            fdt.property_string("compatible", "arm,gic-v3")?;
            let redist = gic::REDIST_SIZE * u64::from(b.vcpus);
            fdt.property_array_u64("reg", &reg(&[(layout::GICD, gic::DIST_SIZE), (layout::GICR, redist)]))?;
        }
    }
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(intc)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", 24_000_000)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLOCK_PHANDLE)?;
    fdt.end_node(clock)?;

    peripherals(&mut fdt, b)?;
    fdt.end_node(root)?;
    fdt.finish()
}

/// The UART, the test device and the pass-through devices.
fn peripherals(fdt: &mut FdtWriter, b: &Board<'_>) -> Result<(), Error> {
    let uart = fdt.begin_node(&alloc::format!("pl011@{:x}", layout::UART))?;
    fdt.property_string_list("compatible", alloc::vec!["arm,pl011".into(), "arm,primecell".into()])?;
    fdt.property_array_u64("reg", &reg(&[(layout::UART, 0x1000)]))?;
    fdt.property_array_u32("interrupts", &[SPI, layout::UART_IRQ - 32, LEVEL_HIGH])?;
    fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    fdt.property_string_list("clock-names", alloc::vec!["uartclk".into(), "apb_pclk".into()])?;
    fdt.end_node(uart)?;

    if b.testdev {
        let dev = fdt.begin_node(&alloc::format!("testdev@{:x}", layout::TESTDEV))?;
        fdt.property_string("compatible", "gaon,testdev")?;
        fdt.property_array_u64("reg", &reg(&[(layout::TESTDEV, 0x1000)]))?;
        fdt.property_array_u32("interrupts", &[SPI, layout::TESTDEV_IRQ - 32, LEVEL_HIGH])?;
        fdt.end_node(dev)?;
    }

    for d in b.passthrough {
        let node = fdt.begin_node(&alloc::format!("{}@{:x}", d.name, d.base))?;
        fdt.property("compatible", d.compatible)?;
        fdt.property_array_u64("reg", &reg(&[(d.base, d.size)]))?;
        if let Some(irq) = d.irq.filter(|&i| i >= 32) {
            fdt.property_array_u32("interrupts", &[SPI, irq - 32, LEVEL_HIGH])?;
        }
        fdt.property_u32("clocks", CLOCK_PHANDLE)?;
        fdt.property_string("clock-names", "apb_pclk")?;
        fdt.end_node(node)?;
    }
    Ok(())
}

/// The next output of SplitMix64 (Steele, Lea and Flood), from the state `x`: spreads
/// one seed over the bytes of `rng-seed`.
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blob's strings (node names, property names and string values) in order:
    /// enough to see what it holds without a parser.
    fn text(blob: &[u8]) -> String {
        blob.split(|&b| !(b.is_ascii_graphic() || b == b' '))
            .filter(|s| s.len() > 2)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect::<Vec<_>>()
            .join("|")
    }

    fn board(gic: Version) -> Board<'static> {
        Board {
            ram_base: 0x4000_0000,
            ram_size: 16 << 20,
            vcpus: 2,
            gic,
            bootargs: "console=ttyAMA0 earlycon",
            initrd: Some((0x4100_0000, 0x4110_0000)),
            testdev: true,
            passthrough: &[Device {
                name: "rtc",
                base: 0x0901_0000,
                size: 0x1000,
                irq: Some(34),
                compatible: b"arm,pl031\0arm,primecell\0",
            }],
            seed: 42,
        }
    }

    #[test]
    fn a_blob_with_every_node() {
        let blob = device_tree(&board(Version::V3)).unwrap();
        assert_eq!(&blob[..4], &0xd00d_feed_u32.to_be_bytes(), "FDT magic");
        let t = text(&blob);
        for want in [
            "memory@40000000",
            "cpu@0",
            "cpu@1",
            "psci",
            "arm,psci-1.0",
            "arm,gic-v3",
            "intc@8000000",
            "pl011@9000000",
            "arm,primecell",
            "testdev@b000000",
            "console=ttyAMA0 earlycon",
            "kaslr-seed",
            "rng-seed",
            "linux,initrd-start",
            "rtc@9010000",
            "arm,pl031",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        let v2 = text(&device_tree(&board(Version::V2)).unwrap());
        assert!(v2.contains("arm,cortex-a15-gic") && !v2.contains("arm,gic-v3"));
        let mut plain = board(Version::V3);
        (plain.testdev, plain.initrd, plain.passthrough) = (false, None, &[]);
        let t = text(&device_tree(&plain).unwrap());
        assert!(!t.contains("testdev") && !t.contains("initrd") && !t.contains("rtc@"));
    }
}
