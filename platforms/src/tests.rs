//! Board file checks: every shipped board is valid, and each kind of mistake is caught
//! with a message naming the field.

use std::path::{Path, PathBuf};

use super::*;

fn platforms() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn virt_text() -> String {
    fs::read_to_string(Board::path(&platforms(), "virt")).unwrap()
}

/// Parse `text` as `platforms/virt/board.toml` and return the error.
fn error_of(text: &str) -> DescError {
    Board::parse(Path::new("platforms/virt/board.toml"), text, Some("virt")).expect_err("must be rejected")
}

/// Replace exactly one occurrence of `from` in the virt board.
fn virt_with(from: &str, to: &str) -> String {
    let text = virt_text();
    assert_eq!(text.matches(from).count(), 1, "fixture edit `{from}` must match once");
    text.replacen(from, to, 1)
}

#[test]
fn shipped_boards_are_valid() {
    let boards = list_boards(&platforms());
    assert!(boards.len() >= 3, "{boards:?}");
    for b in boards {
        let board = Board::load(&platforms(), &b).unwrap_or_else(|e| panic!("{e}"));
        assert!(!board.qemu.is_empty(), "{b} has QEMU configurations");
        let rs = kernel_config_rs(&board);
        assert!(rs.contains(&format!("pub const NAME: &str = {b:?};")));
    }
}

#[test]
fn virt_has_the_four_gic_configurations() {
    let b = Board::load(&platforms(), "virt").unwrap();
    for q in ["virt-gicv3-a53", "virt-gicv3-a72", "virt-gicv2-a53", "virt-gicv2-a72"] {
        assert!(b.qemu_config(q).is_some(), "{q}");
    }
}

#[test]
fn unknown_board_lists_the_known_ones() {
    let e = Board::load(&platforms(), "pdp11").unwrap_err();
    assert!(e.problem.contains("no such board `pdp11`"), "{e}");
    assert!(e.problem.contains("virt"), "{e}");
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = error_of("[board\nname = 1");
    assert!(e.position.is_some(), "{e}");
    assert!(e.to_string().starts_with("platforms/virt/board.toml:1:"), "{e}");
}

#[test]
fn unknown_field_is_named() {
    let e = error_of(&virt_with("cpus = 4", "cpus = 4\ncpu_count = 4"));
    assert!(e.problem.contains("unknown field `cpu_count`"), "{e}");
}

#[test]
fn missing_field_is_named() {
    let e = error_of(&virt_with("hyp_irq = 26", ""));
    assert!(e.problem.contains("missing field `hyp_irq`"), "{e}");
    assert_eq!(e.field, "hyp_irq");
}

#[test]
fn wrong_type_is_reported() {
    let e = error_of(&virt_with("cpus = 4", "cpus = \"four\""));
    assert!(e.position.is_some(), "{e}");
    assert!(e.problem.contains("invalid type"), "{e}");
}

#[test]
fn name_must_match_folder() {
    let e = error_of(&virt_with("name = \"virt\"", "name = \"virt2\""));
    assert_eq!(e.field, "board.name");
    assert!(e.problem.contains("folder is `virt`"), "{e}");
}

#[test]
fn memory_must_be_block_aligned() {
    let e = error_of(&virt_with("size = 0x4000_0000", "size = 0x4000_1000"));
    assert_eq!(e.field, "memory");
    assert!(e.problem.contains("multiples of 2 MiB"), "{e}");
}

#[test]
fn memory_must_not_be_empty() {
    let e = error_of(&virt_with("size = 0x4000_0000", "size = 0"));
    assert_eq!(e.field, "memory.size");
}

#[test]
fn load_address_must_be_in_memory() {
    let e = error_of(&virt_with("load_address = 0x4008_0000", "load_address = 0x1000_0000"));
    assert_eq!(e.field, "board.load_address");
    assert!(e.problem.contains("inside memory"), "{e}");
}

#[test]
fn load_address_must_be_aligned() {
    let e = error_of(&virt_with("load_address = 0x4008_0000", "load_address = 0x4008_0010"));
    assert_eq!(e.field, "board.load_address");
}

#[test]
fn uart_must_be_in_mmio() {
    let e = error_of(&virt_with(
        "kind = \"pl011\"\nbase = 0x0900_0000",
        "kind = \"pl011\"\nbase = 0x0c00_0000",
    ));
    assert_eq!(e.field, "uart.base");
}

#[test]
fn mmio_must_not_overlap_memory() {
    let e = error_of(&virt_with("size = 0x0200_0000", "size = 0x3900_0000"));
    assert_eq!(e.field, "mmio[0]");
    assert!(e.problem.contains("overlaps memory"), "{e}");
}

#[test]
fn gic_needs_frames() {
    let text = virt_text();
    let text = text.replace(
        "gicv2 = { distributor = 0x0800_0000, cpu_interface = 0x0801_0000, hyp_interface = 0x0803_0000, \
         vcpu_interface = 0x0804_0000 }\n",
        "",
    );
    let text = text.replace(
        "gicv3 = { distributor = 0x0800_0000, redistributor = 0x080a_0000 }\n",
        "",
    );
    let e = error_of(&text);
    assert_eq!(e.field, "interrupt_controller");
}

#[test]
fn gicv2_virtual_interfaces_come_together_aligned() {
    let e = error_of(&virt_with(", vcpu_interface = 0x0804_0000", ""));
    assert_eq!(e.field, "interrupt_controller.gicv2");
    assert!(e.problem.contains("together"), "{e}");
    let e = error_of(&virt_with(
        "vcpu_interface = 0x0804_0000",
        "vcpu_interface = 0x0804_1000",
    ));
    assert_eq!(e.field, "interrupt_controller.gicv2.vcpu_interface");
    assert!(e.problem.contains("aligned"), "{e}");
    let e = error_of(&virt_with("hyp_interface = 0x0803_0000", "hyp_interface = 0x3000_0000"));
    assert_eq!(e.field, "interrupt_controller.gicv2.hyp_interface");
}

#[test]
fn timer_irq_must_be_a_ppi() {
    let e = error_of(&virt_with("hyp_irq = 26", "hyp_irq = 40"));
    assert_eq!(e.field, "timer.hyp_irq");
    assert!(e.problem.contains("PPI"), "{e}");
}

#[test]
fn user_timer_irq_must_be_another_ppi() {
    let e = error_of(&virt_with("user_irq = 30", "user_irq = 26"));
    assert_eq!(e.field, "timer.user_irq");
    assert!(e.problem.contains("other than timer.hyp_irq"), "{e}");
    let e = error_of(&virt_with("user_irq = 30", "user_irq = 33"));
    assert_eq!(e.field, "timer.user_irq");
}

#[test]
fn guest_lines_are_distinct_ppis_given_together() {
    let e = error_of(&virt_with("guest_irq = 27", "guest_irq = 30"));
    assert_eq!(e.field, "timer.guest_irq");
    assert!(e.problem.contains("no other timer line uses"), "{e}");
    let e = error_of(&virt_with("maintenance_irq = 25", "maintenance_irq = 27"));
    assert_eq!(e.field, "interrupt_controller.maintenance_irq");
    let e = error_of(&virt_with("maintenance_irq = 25", "maintenance_irq = 40"));
    assert_eq!(e.field, "interrupt_controller.maintenance_irq");
    let e = error_of(&virt_with("maintenance_irq = 25", ""));
    assert_eq!(e.field, "timer.guest_irq");
    assert!(e.problem.contains("or neither"), "{e}");
}

#[test]
fn qemu_names_are_unique_and_smp_bounded() {
    let e = error_of(&virt_with("name = \"virt-gicv3-a72\"", "name = \"virt-gicv3-a53\""));
    assert_eq!(e.field, "qemu[1]");
    let e = error_of(&virt_text().replacen("smp = 1", "smp = 9", 1));
    assert_eq!(e.field, "qemu[6].smp");
    let e = error_of(&virt_text().replacen("smp = 1", "smp = 0", 1));
    assert_eq!(e.field, "qemu[6].smp");
}

#[test]
fn smp_defaults_to_every_cpu() {
    let b = Board::load(&platforms(), "virt").unwrap();
    for q in &b.qemu {
        let want = if q.name.ends_with("-smp1") { 1 } else { 4 };
        assert_eq!(b.smp(q), want, "{}", q.name);
    }
}

#[test]
fn spin_table_lies_below_the_kernel() {
    let pi = fs::read_to_string(Board::path(&platforms(), "raspi3b")).unwrap();
    let b = Board::parse(Path::new("raspi3b.toml"), &pi, None).unwrap();
    assert_eq!(
        (b.board.cpu_start, b.board.spin_table),
        (CpuStart::SpinTable, Some(0xd8))
    );
    assert!(kernel_config_rs(&b).contains("pub const CPU_START: CpuStart = CpuStart::SpinTable(0xd8);"));
    for (from, to, problem) in [
        ("spin_table = 0xd8", "spin_table = 0xd9", "8-byte aligned"),
        ("spin_table = 0xd8", "spin_table = 0x7fff8", "below the kernel"),
        ("spin_table = 0xd8", "", "needs its address"),
    ] {
        let e = Board::parse(Path::new("raspi3b.toml"), &pi.replacen(from, to, 1), None).unwrap_err();
        assert_eq!(e.field, "board.spin_table");
        assert!(e.problem.contains(problem), "{e}");
    }
    let e = error_of(&virt_with("cpus = 4", "cpus = 4\nspin_table = 0xd8"));
    assert!(e.problem.contains("only applies"), "{e}");
    let b = Board::load(&platforms(), "virt").unwrap();
    assert!(kernel_config_rs(&b).contains("pub const CPU_START: CpuStart = CpuStart::Psci;"));
}

#[test]
fn cpus_bounded() {
    let e = error_of(&virt_with("cpus = 4", "cpus = 0"));
    assert_eq!(e.field, "board.cpus");
}

/// Every file under `tests/fixtures/bad/` is a board file with one mistake in its
/// devices or reserved regions; its `# expect:` lines must all appear in the error.
#[test]
fn every_bad_board_is_rejected_with_its_message() {
    let dir = platforms().join("tests/fixtures/bad");
    let mut files: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut checked = 0;
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let expects: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expects.is_empty(), "{} has no `# expect:` line", path.display());
        let err = match Board::parse(&path, &text, None) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        for e in expects {
            assert!(err.contains(e), "{}: error `{err}` lacks `{e}`", path.display());
        }
        // Without its last table (the mistake) the fixture is a valid board, so the
        // error comes from the mistake and nothing else.
        let last = text.rfind("\n[[").unwrap();
        Board::parse(&path, &text[..=last], None).unwrap_or_else(|e| panic!("{}: base: {e}", path.display()));
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} bad board fixtures");
}

#[test]
fn virt_hands_out_exactly_its_plain_devices() {
    let b = Board::load(&platforms(), "virt").unwrap();
    let user: Vec<&str> = b.user_devices().map(|d| d.name.as_str()).collect();
    assert_eq!(user, ["pl011", "pl031", "pl061"]);
    let withheld: Vec<&str> = b.withheld_devices().map(|d| d.name.as_str()).collect();
    assert_eq!(withheld, ["fw-cfg", "virtio-mmio"]);
    let kernel: Vec<String> = b.kernel_regions().into_iter().map(|r| r.name).collect();
    for k in [
        "gicv2-distributor",
        "gicv2-cpu-interface",
        "gicv3-redistributors",
        "gicv2-hyp-interface",
        "gicv2-vcpu-interface",
        "gicv3-its",
    ] {
        assert!(kernel.iter().any(|n| n == k), "{k} in {kernel:?}");
    }
    let rs = kernel_config_rs(&b);
    assert!(rs.contains("    (0x9000000, 0x1000), // pl011\n"), "{rs}");
    assert!(!rs.contains("fw-cfg") && !rs.contains("0x9020000"), "{rs}");
}

#[test]
fn shipped_boards_keep_dma_and_kernel_regions_from_root() {
    for name in list_boards(&platforms()) {
        let b = Board::load(&platforms(), &name).unwrap();
        assert!(b.user_devices().next().is_some(), "{name} gives root some device");
        for d in b.user_devices() {
            assert!(!d.dma, "{name}: DMA master `{}` is handed out", d.name);
            for k in b.kernel_regions() {
                assert!(
                    !k.region().overlaps(&d.region()),
                    "{name}: `{}` on `{}`",
                    d.name,
                    k.name
                );
            }
        }
        // The kernel console's UART is one of the devices (user level drives it too).
        assert!(
            b.device.iter().any(|d| d.region().contains(b.uart.base, PAGE)),
            "{name}: the UART is listed"
        );
    }
}

#[test]
fn a_dma_device_reaches_user_level_only_with_the_opt_in() {
    let dma = "name = \"virtio-mmio\"        # SPIs 16..48; virtqueues live in guest RAM\nbase = 0x0a00_0000\nsize = 0x4000\ndma = true\n";
    let b = Board::parse(
        Path::new("platforms/virt/board.toml"),
        &virt_with(dma, &format!("{dma}user = true\nuser_dma = true\n")),
        Some("virt"),
    )
    .unwrap();
    assert!(b.user_devices().any(|d| d.name == "virtio-mmio"));
    let e = error_of(&virt_with(dma, &format!("{dma}user = true\n")));
    assert_eq!(e.field, "device[4].user");
    // A plain device can be kept from user level too.
    let plain = "name = \"pl061\"              # GPIO, SPI 7 (the power button)\nbase = 0x0903_0000\nsize = 0x1000\ndma = false\n";
    let b = Board::parse(
        Path::new("platforms/virt/board.toml"),
        &virt_with(plain, &format!("{plain}user = false\n")),
        Some("virt"),
    )
    .unwrap();
    assert!(b.withheld_devices().any(|d| d.name == "pl061"));
}
