//! Probes against a model guest: RAM with stage-1 tables the tests build, its EL1
//! registers, and what it records.

use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use gaon_abi::system::{MAX_PROBES, PROBE_HVC_IMM, ProbeConfig, TaskLayout};
use gaon_abi::trace::Event;
use gaon_abi::vcpu::VCpuReg;

use super::*;

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: usize = 8 << 20;
/// TCR_EL1 as Linux sets it: 48-bit halves (T0SZ = T1SZ = 16), 4 KiB granules, TBI0.
const TCR: u64 = 16 | 16 << 16 | 0b10 << 30 | 1 << 37;
/// Where the model's kernel is linked, and the KASLR offset it runs at.
const LINKED: u64 = 0xffff_8000_0800_0000;
const KASLR: u64 = 0x20_0000;
const VECTORS: u64 = LINKED + 0x1_0800;
const SWITCH_TO: u64 = LINKED + 0x2000;
/// The code's guest-physical address.
const TEXT_IPA: u64 = RAM + 0x20_0000;
/// The linear map: a 2 MiB block at LINEAR for RAM + 0x40_0000.
const LINEAR: u64 = 0xffff_0000_0040_0000;
const PACIASP: u32 = 0xd503_233f;
/// `stp x29, x30, [sp, #-32]!`
const STP: u32 = 0xa9be_7bfd;
const TASK: TaskLayout = TaskLayout {
    pid: 0x500,
    comm: 0x730,
    vectors: VECTORS,
    bp_harden_vectors: 0,
};

struct Guest {
    ram: Vec<u8>,
    regs: BTreeMap<u8, u64>,
    x: [u64; 31],
    pc: u64,
    pstate: u64,
    traced: bool,
    records: Vec<(Event, u64, u64)>,
    log: Vec<String>,
    next_table: u64,
    /// Calls a hit made for registers.
    thread_reads: usize,
    el1_reads: usize,
}

impl GuestAccess for Guest {
    fn read_guest(&mut self, ipa: u64, buf: &mut [u8]) -> bool {
        crate::testing::read(&self.ram, RAM, ipa, buf)
    }
    fn write_guest(&mut self, ipa: u64, bytes: &[u8]) -> bool {
        crate::testing::write(&mut self.ram, RAM, ipa, bytes)
    }
    fn el1_regs(&mut self, _: usize, first: VCpuReg, out: &mut [u64]) -> bool {
        self.el1_reads += 1;
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.regs.get(&(first as u8 + i as u8)).copied().unwrap_or(0);
        }
        true
    }
    fn set_el1_reg(&mut self, _: usize, reg: VCpuReg, value: u64) {
        self.regs.insert(reg as u8, value);
    }
    fn thread_regs(&mut self, _: usize, out: &mut [u64; THREAD_REGS]) -> bool {
        out[..3].copy_from_slice(&[self.pc, 0, self.pstate]);
        out[3..].copy_from_slice(&self.x);
        self.thread_reads += 1;
        true
    }
    fn set_gpr(&mut self, _: usize, r: usize, value: u64) {
        self.x[r] = value;
    }
    fn trace(&mut self, _: usize, event: Event, a: u64, b: u64) -> bool {
        if self.traced {
            self.records.push((event, a, b));
        }
        self.traced
    }
    fn log(&mut self, args: fmt::Arguments<'_>) {
        self.log.push(std::format!("{args}"));
    }
}

impl Guest {
    /// RAM with an empty top-level table for each half; MMU off.
    fn new() -> Self {
        let mut g = Self {
            ram: std::vec![0; RAM_SIZE],
            regs: BTreeMap::new(),
            x: [0; 31],
            pc: 0,
            pstate: 0x3c5,
            traced: true,
            records: Vec::new(),
            log: Vec::new(),
            next_table: RAM + 0x2000,
            thread_reads: 0,
            el1_reads: 0,
        };
        g.regs.insert(VCpuReg::Ttbr0El1 as u8, RAM);
        g.regs.insert(VCpuReg::Ttbr1El1 as u8, (RAM + 0x1000) | (5 << 48));
        g.regs.insert(VCpuReg::TcrEl1 as u8, TCR);
        g
    }

    fn word(&mut self, ipa: u64) -> u64 {
        let mut b = [0; 8];
        assert!(self.read_guest(ipa, &mut b));
        u64::from_le_bytes(b)
    }

    fn put(&mut self, ipa: u64, v: u64) {
        assert!(self.write_guest(ipa, &v.to_le_bytes()));
    }

    fn insn(&mut self, ipa: u64) -> u32 {
        let mut b = [0; 4];
        assert!(self.read_guest(ipa, &mut b));
        u32::from_le_bytes(b)
    }

    /// Map `va` to `ipa` with a descriptor at `level` (3: a 4 KiB page; 2, 1: blocks).
    fn map(&mut self, va: u64, ipa: u64, level: u64) {
        let upper = va >> 63 == 1;
        let mut table = if upper { RAM + 0x1000 } else { RAM };
        for l in 0..level {
            let at = table + ((va >> (39 - 9 * l)) & 0x1ff) * 8;
            let d = self.word(at);
            table = if d & 3 == 3 {
                d & OA
            } else {
                let t = self.next_table;
                self.next_table += 0x1000;
                self.put(at, t | 3);
                t
            };
        }
        let at = table + ((va >> (39 - 9 * level)) & 0x1ff) * 8;
        self.put(at, ipa | if level == 3 { 3 } else { 1 } | 0x400);
    }

    /// The model kernel, linked at LINKED, loaded at TEXT_IPA and run at LINKED +
    /// KASLR with its MMU on: `__switch_to` is PACIASP, STP; VBAR_EL1 at its vectors;
    /// a stack page, and the linear map for task structs.
    fn linux() -> Self {
        let mut g = Self::new();
        for page in 0..0x20 {
            g.map(LINKED + KASLR + page * 0x1000, TEXT_IPA + page * 0x1000, 3);
        }
        g.map(LINEAR, RAM + 0x40_0000, 2);
        assert!(g.write_guest(TEXT_IPA + (SWITCH_TO - LINKED), &PACIASP.to_le_bytes()));
        assert!(g.write_guest(TEXT_IPA + (SWITCH_TO - LINKED) + 4, &STP.to_le_bytes()));
        g.regs.insert(VCpuReg::SctlrEl1 as u8, 0x30d0_0801);
        g.regs.insert(VCpuReg::VbarEl1 as u8, VECTORS + KASLR);
        g.regs.insert(VCpuReg::SpEl1 as u8, LINEAR + 0x10_0000);
        g
    }

    /// A task_struct at linear address `at` with `pid` and `comm`.
    fn task(&mut self, at: u64, pid: u32, comm: &str) {
        let ipa = at - LINEAR + RAM + 0x40_0000;
        assert!(self.write_guest(ipa + u64::from(TASK.pid), &pid.to_le_bytes()));
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm.as_bytes());
        assert!(self.write_guest(ipa + u64::from(TASK.comm), &c));
    }
}

fn config(name: &str, va: u64, insn: u32, skip: u32) -> ProbeConfig {
    let mut c = ProbeConfig {
        name: [0; PROBE_NAME_LEN],
        va,
        insn,
        skip,
    };
    c.name[..name.len()].copy_from_slice(name.as_bytes());
    c
}

fn switch_probe(g: &mut Guest) -> Probes {
    let mut list = [config("", 0, 0, 0); MAX_PROBES];
    list[0] = config("__switch_to", SWITCH_TO + 4, STP, 4);
    Probes::new(&list, TASK, &mut |a| g.log.push(std::format!("{a}")))
}

fn hvc_word(k: u16) -> u32 {
    0xd400_0002 | u32::from(PROBE_HVC_IMM + k) << 5
}

#[test]
fn the_displaced_instructions_decode() {
    assert_eq!(Displaced::decode(PACIASP), Some(Displaced::Hint));
    assert_eq!(Displaced::decode(0xd503_245f), Some(Displaced::Hint), "bti c");
    let Some(Displaced::Pair(p)) = Displaced::decode(STP) else {
        panic!()
    };
    assert_eq!(
        (p.rt, p.rt2, p.rn, p.offset, p.load, p.writeback, p.post),
        (29, 30, 31, -32, false, true, false)
    );
    assert_eq!(
        Displaced::decode(0x9100_03fd),
        Some(Displaced::AddImm { rd: 29, rn: 31, imm: 0 }),
        "mov x29, sp"
    );
    assert_eq!(
        Displaced::decode(0xd100_43ff),
        Some(Displaced::AddImm {
            rd: 31,
            rn: 31,
            imm: -16
        }),
        "sub sp, sp, #16"
    );
    assert_eq!(
        Displaced::decode(0xaa01_03e0),
        Some(Displaced::Mov { rd: 0, rm: 1 }),
        "mov x0, x1"
    );
    for other in [0x97cc_dee5, 0xf940_0260, 0xd65f_03c0, 0xd400_0002, 0] {
        assert_eq!(Displaced::decode(other), None, "{other:#x}");
    }
}

#[test]
fn stage1_walks_pages_and_blocks_and_says_why_not() {
    let mut g = Guest::linux();
    let s1 = Stage1 {
        regs: [0x30d0_0801, RAM, (RAM + 0x1000) | (5 << 48), TCR],
    };
    assert_eq!(s1.translate(LINKED + KASLR + 0x2004, &mut g), Ok(TEXT_IPA + 0x2004));
    assert_eq!(
        s1.translate(LINEAR + 0x1234, &mut g),
        Ok(RAM + 0x40_1234),
        "a 2 MiB block"
    );
    g.map(0xffff_0000_4000_0000, 0x8000_0000, 1);
    assert_eq!(
        s1.translate(0xffff_0000_4123_4567, &mut g),
        Ok(0x8123_4567),
        "a 1 GiB block"
    );
    assert_eq!(s1.translate(LINKED, &mut g), Err(WalkError::Unmapped));
    assert_eq!(
        s1.translate(0x0001_0000_0000_0000, &mut g),
        Err(WalkError::Range),
        "between the halves"
    );
    assert_eq!(
        s1.translate(0x1000, &mut g),
        Err(WalkError::Unmapped),
        "an empty lower half"
    );
    // The top byte is ignored in the lower half (TBI0), not in the upper one.
    g.map(0x2000, RAM + 0x7000, 3);
    assert_eq!(s1.translate(0x5a00_0000_0000_2008, &mut g), Ok(RAM + 0x7008));
    let off = Stage1 {
        regs: [0x30d0_0800, 0, 0, 0],
    };
    assert_eq!(off.translate(0x4000_1234, &mut g), Ok(0x4000_1234), "MMU off");
    let ds = Stage1 {
        regs: [1, RAM, RAM, TCR | 1 << 59],
    };
    assert_eq!(ds.translate(LINKED, &mut g), Err(WalkError::Granule), "52-bit (DS)");
    for tsz in [0u64, 15, 40, 63] {
        let odd = Stage1 {
            regs: [1, RAM, RAM, (TCR & !(0x3f << 16)) | tsz << 16],
        };
        assert_eq!(odd.translate(LINKED, &mut g), Err(WalkError::Range), "T1SZ {tsz}");
    }
    let granule = Stage1 {
        regs: [1, RAM, RAM, TCR & !(3 << 30) | 0b11 << 30],
    };
    assert_eq!(granule.translate(LINKED, &mut g), Err(WalkError::Granule));
    let out = Stage1 {
        regs: [1, RAM, 0x7000_0000, TCR],
    };
    assert_eq!(
        out.translate(LINKED, &mut g),
        Err(WalkError::Table),
        "tables outside RAM"
    );
}

#[test]
fn a_probe_arms_once_the_kernel_runs_where_vbar_says() {
    let mut g = Guest::linux();
    let vbar = g.regs[&(VCpuReg::VbarEl1 as u8)];
    // Early boot: MMU off, then no vectors yet.
    g.regs.insert(VCpuReg::SctlrEl1 as u8, 0x30d0_0800);
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    g.regs.insert(VCpuReg::SctlrEl1 as u8, 0x30d0_0801);
    g.regs.insert(VCpuReg::VbarEl1 as u8, 0);
    p.try_arm(0, &mut g);
    assert!(p.pending());
    let site = TEXT_IPA + (SWITCH_TO - LINKED) + 4;
    assert_eq!(g.insn(site), STP, "nothing written yet");
    g.regs.insert(VCpuReg::VbarEl1 as u8, vbar);
    p.try_arm(0, &mut g);
    assert!(!p.pending());
    assert_eq!(g.insn(site), hvc_word(0));
    assert_eq!(g.insn(site - 4), PACIASP, "the hint before it stays");
    assert!(
        g.log[0].contains("armed") && g.log[0].contains("0x200000"),
        "{:?}",
        g.log
    );
    // Taken out: the instruction is back.
    p.remove("__switch_to", &mut g).unwrap();
    assert_eq!(g.insn(site), STP);
}

#[test]
fn a_probe_is_not_written_over_other_code() {
    let mut g = Guest::linux();
    let site = TEXT_IPA + (SWITCH_TO - LINKED) + 4;
    assert!(g.write_guest(site, &0xd503_201fu32.to_le_bytes()));
    let mut p = switch_probe(&mut g);
    for _ in 0..MAX_ATTEMPTS {
        p.try_arm(0, &mut g);
    }
    assert!(p.pending());
    assert_eq!(g.insn(site), 0xd503_201f);
    p.try_arm(0, &mut g);
    assert!(!p.pending(), "given up");
    assert!(g.log.last().unwrap().contains("given up"), "{:?}", g.log);
    assert_eq!(g.insn(site), 0xd503_201f, "never written");
}

#[test]
fn a_hit_records_the_switch_and_names_and_carries_out_the_store_pair() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    let (prev, next) = (LINEAR + 0x1000, LINEAR + 0x8000);
    g.task(prev, 0, "swapper/0");
    g.task(next, 1234, "kworker/0:1H-kb");
    g.x[29] = 0x1111;
    g.x[30] = 0x2222;
    let sp = g.regs[&(VCpuReg::SpEl1 as u8)];
    let va = SWITCH_TO + KASLR + 4;
    g.pc = va + 4;
    let x = [prev, next, 0, 0, 0, 0, 0, 0];
    (g.thread_reads, g.el1_reads) = (0, 0);
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Done));
    assert_eq!(
        (g.thread_reads, g.el1_reads),
        (1, 1),
        "one call for each kind of register"
    );
    // The STP: x29, x30 below the old SP, which moved down 32.
    assert_eq!(g.regs[&(VCpuReg::SpEl1 as u8)], sp - 32);
    let stack = sp - 32 - LINEAR + RAM + 0x40_0000;
    assert_eq!((g.word(stack), g.word(stack + 8)), (0x1111, 0x2222));
    let w = |s: &[u8]| {
        let mut b = [0u8; 8];
        b[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(b)
    };
    assert_eq!(
        g.records,
        [
            (Event::GuestTaskName, 0, w(b"swapper/")),
            (Event::GuestTaskNameEnd, 0, w(b"0")),
            (Event::GuestTaskName, 1234, w(b"kworker/")),
            (Event::GuestTaskNameEnd, 1234, w(b"0:1H-kb")),
            (Event::GuestTaskSwitch, 0, 1234),
        ],
        "a comm is 16 bytes: Linux's own cut"
    );
    // Names go once; a changed one again.
    g.records.clear();
    let x = [next, prev, 0, 0, 0, 0, 0, 0];
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Done));
    assert_eq!(g.records, [(Event::GuestTaskSwitch, 1234, 0)]);
    g.records.clear();
    g.task(next, 1234, "sh");
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Done));
    assert_eq!(
        g.records,
        [
            (Event::GuestTaskName, 1234, w(b"sh")),
            (Event::GuestTaskNameEnd, 1234, 0),
            (Event::GuestTaskSwitch, 1234, 0)
        ]
    );
    assert_eq!(p.hits_of("__switch_to"), Ok(3));
    assert_eq!(p.hits_of("schedule"), Err(ProbeError::NoProbe));
    // Not traced: nothing recorded, the instruction still carried out.
    g.traced = false;
    g.records.clear();
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Done));
    assert_eq!(g.regs[&(VCpuReg::SpEl1 as u8)], sp - 4 * 32);
}

#[test]
fn hvcs_that_are_no_hit_are_left_to_the_vmm() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    let x = [0; 8];
    let va = SWITCH_TO + KASLR + 4;
    g.pc = va + 4;
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), None, "not armed yet");
    p.try_arm(0, &mut g);
    assert_eq!(p.hit(0, 0, x, &mut g), None, "Linux's own HVC #0");
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM) + 1, x, &mut g), None, "no such probe");
    assert_eq!(p.hit(0, u64::MAX, x, &mut g), None);
    g.pc = 0x1234;
    assert_eq!(
        p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g),
        None,
        "the guest's own HVC elsewhere"
    );
    assert_eq!(p.hits_of("__switch_to"), Ok(0));
}

#[test]
fn a_hit_that_cannot_be_carried_out_takes_the_probe_out() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    // The stack is nowhere: the store cannot be done for the guest.
    g.regs.insert(VCpuReg::SpEl1 as u8, 0xffff_7000_0000_0000);
    g.pc = SWITCH_TO + KASLR + 8;
    let x = [LINEAR, LINEAR, 0, 0, 0, 0, 0, 0];
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Retry));
    let site = TEXT_IPA + (SWITCH_TO - LINKED) + 4;
    assert_eq!(g.insn(site), STP, "the guest runs its own instruction again");
    assert!(g.log.last().unwrap().contains("taken out"), "{:?}", g.log);
    // Gone: an exit of its HVC that was on its way is answered with a retry (the
    // guest runs its own instruction, back there), not as a hypercall.
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Retry));
    g.pc = 0x1234;
    assert_eq!(
        p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g),
        None,
        "elsewhere: not the probe's"
    );
    // A probe whose instruction cannot be carried out is never armed.
    let mut list = [config("", 0, 0, 0); MAX_PROBES];
    list[0] = config("schedule", SWITCH_TO, 0x97cc_dee5, 0);
    let mut log = Vec::new();
    let p = Probes::new(&list, TASK, &mut |a| log.push(std::format!("{a}")));
    assert!(!p.pending());
    assert!(log[0].contains("left out"), "{log:?}");
}

#[test]
fn a_reload_arms_the_probes_again() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    assert!(!p.pending());
    p.reloaded();
    assert!(p.pending());
    let site = TEXT_IPA + (SWITCH_TO - LINKED) + 4;
    assert!(g.write_guest(site, &STP.to_le_bytes()), "the image loaded again");
    p.try_arm(0, &mut g);
    assert_eq!(g.insn(site), hvc_word(0));
}

#[test]
fn a_probe_is_removed_and_added_by_name() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    let site = TEXT_IPA + (SWITCH_TO - LINKED) + 4;
    assert_eq!(p.add("__switch_to"), Err(ProbeError::NoChange), "in already");
    assert_eq!(p.remove("schedule", &mut g), Err(ProbeError::NoProbe));
    assert_eq!(p.remove("__switch_to", &mut g), Ok(()));
    assert_eq!(g.insn(site), STP, "the guest's instruction is back");
    assert_eq!(p.remove("__switch_to", &mut g), Err(ProbeError::NoChange));
    g.pc = SWITCH_TO + KASLR + 8;
    assert_eq!(
        p.hit(0, u64::from(PROBE_HVC_IMM), [0; 8], &mut g),
        Some(Hit::Retry),
        "out: a late exit runs the instruction that is back"
    );
    assert_eq!(p.hits_of("__switch_to"), Ok(0), "not a hit");
    assert_eq!(p.add("__switch_to"), Ok(()));
    assert!(p.pending());
    p.try_arm(0, &mut g);
    assert_eq!(g.insn(site), hvc_word(0), "armed again at the next exit");
}

#[test]
fn sp_outside_el1h_is_not_carried_out() {
    let mut g = Guest::linux();
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    g.pstate = 0x3c4; // EL1t: SP is SP_EL0
    g.pc = SWITCH_TO + KASLR + 8;
    let sp = g.regs[&(VCpuReg::SpEl1 as u8)];
    let x = [LINEAR, LINEAR, 0, 0, 0, 0, 0, 0];
    assert_eq!(p.hit(0, u64::from(PROBE_HVC_IMM), x, &mut g), Some(Hit::Retry));
    assert_eq!(g.regs[&(VCpuReg::SpEl1 as u8)], sp, "SP_EL1 untouched");
    assert_eq!(g.insn(TEXT_IPA + (SWITCH_TO - LINKED) + 4), STP, "taken out");
}

#[test]
fn only_a_2_mib_offset_is_taken_and_then_kept() {
    let mut g = Guest::linux();
    // VBAR 4 KiB off what `vectors` + a 2 MiB offset would be: no offset fits.
    g.regs.insert(VCpuReg::VbarEl1 as u8, VECTORS + KASLR + 0x1000);
    let mut p = switch_probe(&mut g);
    p.try_arm(0, &mut g);
    assert!(p.pending(), "not armed at a 4 KiB offset");
    g.regs.insert(VCpuReg::VbarEl1 as u8, VECTORS + KASLR);
    p.try_arm(0, &mut g);
    assert!(!p.pending());
    // Out and in again: armed at the offset found, whatever VBAR says now.
    p.remove("__switch_to", &mut g).unwrap();
    p.add("__switch_to").unwrap();
    g.regs.insert(VCpuReg::VbarEl1 as u8, 0x1234_5000);
    p.try_arm(0, &mut g);
    assert_eq!(g.insn(TEXT_IPA + (SWITCH_TO - LINKED) + 4), hvc_word(0));
}
