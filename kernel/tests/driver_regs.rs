//! Host tests of the interrupt controllers' register encodings (`src/drivers/regs.rs`).
//! The drivers build only for the target; what they compute from register values is
//! checked here.

#[path = "../src/drivers/regs.rs"]
#[allow(dead_code, reason = "the kernel uses these; the tests only some")]
mod regs;

use regs::{bcm2836, gicv2};

/// GICC_IAR of an SGI carries its sender in bits [12:10]: an SGI from CPU 1 or above
/// reads 1024 or more. The line is bits [9:0]; filtering the raw value (the old code)
/// dropped every SGI not sent by CPU 0, leaving it active and never completed.
#[test]
fn gicv2_iar_names_the_line_whatever_cpu_sent_an_sgi() {
    for sender in 0..8u32 {
        for sgi in 0..16u32 {
            let iar = (sender << 10) | sgi;
            assert_eq!(gicv2::iar_line(iar), Some(sgi), "SGI {sgi} from CPU {sender}");
        }
    }
    // What the old code did: the raw value of CPU 1's SGI 0 is not below 1020.
    let raw = 1u32 << 10;
    assert!(raw >= gicv2::SPECIAL_IDS && gicv2::iar_line(raw) == Some(0));
    assert_eq!(gicv2::iar_line(26), Some(26), "a PPI");
    assert_eq!(gicv2::iar_line(1019), Some(1019), "the last SPI");
    for special in 1020..1024 {
        assert_eq!(gicv2::iar_line(special), None, "special ID {special}");
    }
}

#[test]
fn gicv2_sgir_targets_the_listed_interfaces() {
    assert_eq!(gicv2::sgir(0, 0b0000_0010), 0x0002_0000);
    assert_eq!(gicv2::sgir(3, 0b1000_0001), 0x0081_0003);
    // Filter 0 (use the list) and NSATT 0, whatever the arguments.
    assert_eq!(gicv2::sgir(0xff, 0xff) & !0x00ff_000f, 0);
}

#[test]
fn bcm2836_mailbox_registers_are_per_core() {
    let regs: Vec<_> = (0..4)
        .map(|c| {
            (
                bcm2836::mailbox_irq_control(c),
                bcm2836::mailbox0_set(c),
                bcm2836::mailbox0_clear(c),
            )
        })
        .collect();
    assert_eq!(
        regs,
        [
            (0x50, 0x80, 0xc0),
            (0x54, 0x90, 0xd0),
            (0x58, 0xa0, 0xe0),
            (0x5c, 0xb0, 0xf0)
        ]
    );
}

/// A round hands out each source pending at its start once, lowest first, then ends;
/// sources that come up meanwhile wait for the next round. Each core has its own round
/// state, so two cores' rounds do not mix.
#[test]
fn bcm2836_claim_rounds_hand_out_each_source_once() {
    let read = |v: u32| move || v;
    // Core 0: timer (2) and mailbox 0 (4) pending; core 1: mailbox 0 only.
    let (s0, l) = bcm2836::claim(0, read(0b1_0100));
    assert_eq!(l, Some(2));
    let (s1, l1) = bcm2836::claim(0, read(1 << bcm2836::MAILBOX0_LINE));
    assert_eq!(l1, Some(bcm2836::MAILBOX0_LINE));
    let (s0, l) = bcm2836::claim(s0, || panic!("read again within a round"));
    assert_eq!(l, Some(4));
    let (s0, l) = bcm2836::claim(s0, || panic!("read again within a round"));
    assert_eq!((s0, l), (0, None), "the round ends");
    let (s1, l1) = bcm2836::claim(s1, || panic!("read again within a round"));
    assert_eq!((s1, l1), (0, None));
    // A new round reads again; nothing pending: no round at all.
    assert_eq!(bcm2836::claim(0, read(0)), (0, None));
    // Bits above the 12 sources are ignored.
    assert_eq!(bcm2836::claim(0, read(0xffff_f000)), (0, None));
}
