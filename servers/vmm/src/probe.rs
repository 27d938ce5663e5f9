//! Probes in a Linux guest (`docs/trace.md`, "Linux probes"), without the guest's
//! help: the VMM finds the kernel's KASLR offset from VBAR_EL1, translates the probed
//! instruction's virtual address through the guest's own stage-1 tables (from its
//! VCpu registers) to guest-physical memory, and writes `HVC #imm` over it. A hit is an
//! HVC exit: the VMM reads the previous and next task (`x0`, `x1` of `__switch_to`)
//! from guest memory, records the switch and the tasks' names with `VCpuTrace`,
//! emulates the displaced instruction, and lets the guest go on after it. Removing a
//! probe writes the instruction back.
//!
//! Hardware-free: guest memory and registers go through [`GuestAccess`], which the
//! server implements with capabilities and the tests with a model.

use core::fmt;

use gaon_abi::system::{MAX_PROBES, PROBE_HVC_IMM, PROBE_NAME_LEN, ProbeConfig, TaskLayout};
use gaon_abi::trace::Event;
use gaon_abi::vcpu::VCpuReg;

/// What a probe needs of the kernel and of guest memory.
pub trait GuestAccess {
    /// Read guest-physical memory (RAM) at `ipa`; false if it is not RAM.
    fn read_guest(&mut self, ipa: u64, buf: &mut [u8]) -> bool;
    /// Write guest-physical memory (RAM) at `ipa`, as the guest's CPUs will then see
    /// it (also as instructions); false if it is not RAM.
    fn write_guest(&mut self, ipa: u64, bytes: &[u8]) -> bool;
    /// vCPU `vcpu`'s EL1 registers from `first` on, in one `VCpuReadRegs`; false if
    /// they cannot be read.
    fn el1_regs(&mut self, vcpu: usize, first: VCpuReg, out: &mut [u64]) -> bool;
    /// Set one of vCPU `vcpu`'s EL1 registers.
    fn set_el1_reg(&mut self, vcpu: usize, reg: VCpuReg, value: u64);
    /// vCPU `vcpu`'s thread registers in one `TcbReadRegisters`: PC, SP_EL0, PSTATE,
    /// then x0..x30 ([`THREAD_REGS`] words, `REG_PC` order); false if they cannot be
    /// read.
    fn thread_regs(&mut self, vcpu: usize, out: &mut [u64; THREAD_REGS]) -> bool;
    /// Set general register `r` (below 31) of vCPU `vcpu`.
    fn set_gpr(&mut self, vcpu: usize, r: usize, value: u64);
    /// Record guest event `event` for vCPU `vcpu` (`VCpuTrace`); false if it was not
    /// recorded (VM events are not traced).
    fn trace(&mut self, vcpu: usize, event: Event, a: u64, b: u64) -> bool;
    /// Say something on the VMM's console.
    fn log(&mut self, args: fmt::Arguments<'_>);
}

/// Words of [`GuestAccess::thread_regs`]: PC, SP_EL0, PSTATE, x0..x30.
pub const THREAD_REGS: usize = 34;
/// Where x0 is in them.
const X0: usize = 3;

/// Why a guest-virtual address has no guest-physical one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// Outside both halves the translation regime has (or a half's walks are off).
    Range,
    /// A 16 or 64 KiB granule: only 4 KiB is walked (Debian's arm64 kernels use it).
    Granule,
    /// No valid descriptor for it.
    Unmapped,
    /// A table is not in guest RAM.
    Table,
}

/// A guest's EL1 stage-1 translation regime, from its registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage1 {
    /// SCTLR_EL1, TTBR0_EL1, TTBR1_EL1, TCR_EL1 (`VCpuReg` order from `SctlrEl1`).
    pub regs: [u64; 4],
}

/// Output-address bits of a descriptor (48-bit physical addresses).
const OA: u64 = 0x0000_ffff_ffff_f000;

impl Stage1 {
    /// The guest-physical address of `va` (with the MMU off: `va` itself).
    pub fn translate(&self, va: u64, mem: &mut impl GuestAccess) -> Result<u64, WalkError> {
        let [sctlr, ttbr0, ttbr1, tcr] = self.regs;
        if sctlr & 1 == 0 {
            return Ok(va);
        }
        let upper = (va >> 55) & 1 == 1;
        let (tsz, ttbr, off, four_k, tbi) = if upper {
            (
                (tcr >> 16) & 0x3f,
                ttbr1,
                (tcr >> 23) & 1,
                (tcr >> 30) & 3 == 0b10,
                (tcr >> 38) & 1,
            )
        } else {
            (
                tcr & 0x3f,
                ttbr0,
                (tcr >> 7) & 1,
                (tcr >> 14).trailing_zeros() >= 2,
                (tcr >> 37) & 1,
            )
        };
        // 52-bit addresses (TCR_EL1.DS) change the descriptors' layout: not walked.
        if !four_k || (tcr >> 59) & 1 == 1 {
            return Err(WalkError::Granule);
        }
        if !(16..=39).contains(&tsz) {
            return Err(WalkError::Range);
        }
        // The top byte is ignored (a tag) where TBI says so.
        let va = match (tbi, upper) {
            (0, _) => va,
            (_, true) => va | 0xff << 56,
            (_, false) => va & !(0xff << 56),
        };
        let bits = 64 - tsz;
        let top = va.checked_shr(bits as u32).unwrap_or(0);
        let want = if upper { u64::MAX >> bits } else { 0 };
        if off == 1 || top != want {
            return Err(WalkError::Range);
        }
        // 9 bits a level above the page offset; the first level has what is left.
        let levels = (bits - 12).div_ceil(9);
        let mut level = 4 - levels;
        let mut table = ttbr & 0x0000_ffff_ffff_fffe;
        loop {
            let shift = 12 + 9 * (3 - level);
            let index_bits = (bits - shift).min(9);
            let index = (va >> shift) & ((1 << index_bits) - 1);
            let mut d = [0u8; 8];
            if !mem.read_guest(table + index * 8, &mut d) {
                return Err(WalkError::Table);
            }
            let desc = u64::from_le_bytes(d);
            let low = (1u64 << shift) - 1;
            match (desc & 3, level) {
                (0b11, 0..=2) => {
                    table = desc & OA;
                    level += 1;
                }
                (0b01, 1 | 2) | (0b11, 3) => return Ok((desc & OA & !low) | (va & low)),
                _ => return Err(WalkError::Unmapped),
            }
        }
    }

    /// Read `buf.len()` bytes of guest-virtual memory at `va`, a page at a time.
    pub fn read(&self, va: u64, buf: &mut [u8], mem: &mut impl GuestAccess) -> Result<(), WalkError> {
        let mut done = 0;
        while done < buf.len() {
            let at = va.wrapping_add(done as u64);
            let n = (0x1000 - (at & 0xfff) as usize).min(buf.len() - done);
            let ipa = self.translate(at, mem)?;
            if !mem.read_guest(ipa, &mut buf[done..done + n]) {
                return Err(WalkError::Table);
            }
            done += n;
        }
        Ok(())
    }

    /// Write `bytes` to guest-virtual memory at `va`, a page at a time.
    pub fn write(&self, va: u64, bytes: &[u8], mem: &mut impl GuestAccess) -> Result<(), WalkError> {
        let mut done = 0;
        while done < bytes.len() {
            let at = va.wrapping_add(done as u64);
            let n = (0x1000 - (at & 0xfff) as usize).min(bytes.len() - done);
            let ipa = self.translate(at, mem)?;
            if !mem.write_guest(ipa, &bytes[done..done + n]) {
                return Err(WalkError::Table);
            }
            done += n;
        }
        Ok(())
    }
}

/// An instruction a probe displaces, which the VMM carries out for the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Displaced {
    /// A hint (`NOP`, `PACIASP` on a CPU without pointer authentication, `BTI`): nothing.
    Hint,
    /// `ADD`/`SUB` (immediate), 64-bit, without flags: `rd = rn ± imm` (31: SP).
    AddImm { rd: u8, rn: u8, imm: i64 },
    /// `MOV xd, xm` (`ORR xd, xzr, xm`).
    Mov { rd: u8, rm: u8 },
    /// A load or store pair of general registers (31 as the base: SP).
    Pair(crate::vm::Pair),
}

impl Displaced {
    /// Decode `insn`; `None` if the VMM cannot carry it out (the image tool refuses
    /// such a probe).
    pub fn decode(insn: u32) -> Option<Self> {
        if insn & 0xffff_f01f == 0xd503_201f {
            return Some(Self::Hint);
        }
        // sf=1 op S=0 100010 sh imm12 Rn Rd
        if insn & 0xbf80_0000 == 0x9100_0000 {
            let imm = i64::from((insn >> 10) & 0xfff) << if insn & (1 << 22) != 0 { 12 } else { 0 };
            return Some(Self::AddImm {
                rd: (insn & 31) as u8,
                rn: ((insn >> 5) & 31) as u8,
                imm: if insn & (1 << 30) != 0 { -imm } else { imm },
            });
        }
        // ORR (shifted register), 64-bit, no shift, Rn = XZR.
        if insn & 0xffe0_ffe0 == 0xaa00_03e0 {
            return Some(Self::Mov {
                rd: (insn & 31) as u8,
                rm: ((insn >> 16) & 31) as u8,
            });
        }
        crate::vm::Pair::decode(insn).map(Self::Pair)
    }
}

/// Where a probe is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not written yet: the guest's kernel is not mapped yet.
    Pending,
    /// `HVC` written at guest-virtual `va`, guest-physical `ipa`.
    Armed { va: u64, ipa: u64 },
    /// Given up on (said why on the console).
    Off,
}

/// One probe.
#[derive(Clone, Copy, Debug)]
struct Probe {
    config: ProbeConfig,
    op: Displaced,
    state: State,
    /// Hits so far.
    hits: u64,
    /// Where it was last armed (guest-virtual), kept once it is out: an exit of its
    /// `HVC` that another vCPU took before the instruction went back comes after.
    last_va: Option<u64>,
}

impl Probe {
    fn name(&self) -> &str {
        let n = &self.config.name;
        let len = n.iter().position(|&b| b == 0).unwrap_or(PROBE_NAME_LEN);
        core::str::from_utf8(&n[..len]).unwrap_or("?")
    }
}

/// Exits after which a probe that found no kernel where its `System.map` says is given
/// up (a Linux boot has a few thousand before its scheduler runs).
const MAX_ATTEMPTS: u32 = 200_000;
/// Task names remembered (a name is recorded again when it changes or was forgotten).
const NAMES: usize = 64;

/// Why a probe could not be added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The VM has no probe of that name.
    NoProbe,
    /// It is in (added) or out (removed) already.
    NoChange,
}

/// What a hit asks of the exit's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// Done: the guest goes on after the probe (the displaced instruction carried out).
    Done,
    /// The probe could not carry out its instruction and was taken out: the guest runs
    /// the probed instruction again, the original one now.
    Retry,
}

/// A VM's probes.
#[derive(Debug)]
pub struct Probes {
    list: heapless::Vec<Probe, MAX_PROBES>,
    task: TaskLayout,
    attempts: u32,
    /// KASLR offset found (virtual address run at less the link-time one).
    offset: Option<u64>,
    names: heapless::Deque<(u32, [u8; 16]), NAMES>,
}

impl Probes {
    /// The probes of a VM's configuration; a probe whose instruction the VMM cannot
    /// carry out is left out, with a message (the image tool refuses those).
    pub fn new(probes: &[ProbeConfig; MAX_PROBES], task: TaskLayout, log: &mut impl FnMut(fmt::Arguments<'_>)) -> Self {
        let mut list = heapless::Vec::new();
        for c in probes.iter().filter(|c| c.name[0] != 0) {
            let p = Probe {
                config: *c,
                op: Displaced::Hint,
                state: State::Pending,
                hits: 0,
                last_va: None,
            };
            match Displaced::decode(c.insn) {
                Some(op) => {
                    let _ = list.push(Probe { op, ..p });
                }
                None => log(format_args!(
                    "vmm: probe {}: cannot carry out its instruction {:#010x}; left out",
                    p.name(),
                    c.insn
                )),
            }
        }
        Self {
            list,
            task,
            attempts: 0,
            offset: None,
            names: heapless::Deque::new(),
        }
    }

    /// True while a probe waits for the guest's kernel to be mapped.
    pub fn pending(&self) -> bool {
        self.list.iter().any(|p| p.state == State::Pending)
    }

    /// The guest was loaded again (a reset): its code is the original again, and its
    /// kernel may be elsewhere.
    pub fn reloaded(&mut self) {
        for p in &mut self.list {
            if p.state != State::Off {
                p.state = State::Pending;
            }
        }
        self.offset = None;
        self.attempts = 0;
        self.names.clear();
    }

    /// At an exit of vCPU `vcpu`: arm the pending probes if the guest's kernel is now
    /// mapped where VBAR_EL1 says (its vectors at the link-time address plus the KASLR
    /// offset), and holds each probe's instruction there.
    pub fn try_arm(&mut self, vcpu: usize, g: &mut impl GuestAccess) {
        if !self.pending() {
            return;
        }
        self.attempts += 1;
        if self.attempts > MAX_ATTEMPTS {
            for p in self.list.iter_mut().filter(|p| p.state == State::Pending) {
                g.log(format_args!(
                    "vmm: probe {}: its instruction never appeared where System.map puts it \
                     (is this the kernel the System.map describes?); given up",
                    p.name()
                ));
                p.state = State::Off;
            }
            return;
        }
        let mut regs = [0u64; 4];
        let mut vbar = [0u64; 1];
        if !g.el1_regs(vcpu, VCpuReg::SctlrEl1, &mut regs)
            || regs[0] & 1 == 0
            || !g.el1_regs(vcpu, VCpuReg::VbarEl1, &mut vbar)
            || vbar[0] == 0
        {
            return;
        }
        let s1 = Stage1 { regs };
        let vbar = vbar[0];
        let t = self.task;
        // Linux moves its image by a multiple of 2 MiB (0 without KASLR); once an
        // offset armed a probe, it is the kernel's until the guest is loaded again.
        let found = self.offset;
        let candidates = [t.vectors]
            .into_iter()
            .chain((0..4).map(|k| t.bp_harden_vectors + k * 0x800))
            .filter(|&a| a != 0 && found.is_none())
            .map(|a| vbar.wrapping_sub(a))
            .filter(|o| o.trailing_zeros() >= 21)
            .chain(found);
        for offset in candidates {
            let mut armed = false;
            for k in 0..self.list.len() {
                armed |= self.arm(k, offset, &s1, g);
            }
            if armed {
                self.offset = Some(offset);
                return;
            }
        }
    }

    /// Arm probe `k` if its instruction is at its address plus `offset`.
    fn arm(&mut self, k: usize, offset: u64, s1: &Stage1, g: &mut impl GuestAccess) -> bool {
        let p = &mut self.list[k];
        if p.state != State::Pending {
            return false;
        }
        let va = p.config.va.wrapping_add(offset);
        let Ok(ipa) = s1.translate(va, g) else {
            return false;
        };
        let mut word = [0u8; 4];
        if !g.read_guest(ipa, &mut word) || u32::from_le_bytes(word) != p.config.insn {
            return false;
        }
        let hvc = 0xd400_0002 | u32::from(PROBE_HVC_IMM + k as u16) << 5;
        if !g.write_guest(ipa, &hvc.to_le_bytes()) {
            return false;
        }
        p.state = State::Armed { va, ipa };
        p.last_va = Some(va);
        let name = p.name();
        g.log(format_args!(
            "vmm: probe {name} (+{}) armed at {va:#x} (KASLR offset {offset:#x}), guest-physical {ipa:#x}",
            p.config.skip
        ));
        true
    }

    /// Take probe `k` out: its instruction back, if the `HVC` is still there.
    fn disarm(&mut self, k: usize, g: &mut impl GuestAccess) {
        let p = &mut self.list[k];
        if let State::Armed { ipa, .. } = p.state {
            let hvc = 0xd400_0002 | u32::from(PROBE_HVC_IMM + k as u16) << 5;
            let mut word = [0u8; 4];
            if g.read_guest(ipa, &mut word) && u32::from_le_bytes(word) == hvc {
                let _ = g.write_guest(ipa, &p.config.insn.to_le_bytes());
            }
        }
        p.state = State::Off;
    }

    /// Put probe `name` back in (armed at the next exit, as at boot).
    pub fn add(&mut self, name: &str) -> Result<(), ProbeError> {
        let p = self
            .list
            .iter_mut()
            .find(|p| p.name() == name)
            .ok_or(ProbeError::NoProbe)?;
        if p.state != State::Off {
            return Err(ProbeError::NoChange);
        }
        p.state = State::Pending;
        self.attempts = 0;
        Ok(())
    }

    /// Take probe `name` out: its instruction written back if it was armed.
    pub fn remove(&mut self, name: &str, g: &mut impl GuestAccess) -> Result<(), ProbeError> {
        let k = self
            .list
            .iter()
            .position(|p| p.name() == name)
            .ok_or(ProbeError::NoProbe)?;
        if self.list[k].state == State::Off {
            return Err(ProbeError::NoChange);
        }
        self.disarm(k, g);
        g.log(format_args!("vmm: probe {name} removed"));
        Ok(())
    }

    /// How many times probe `name` was hit.
    pub fn hits_of(&self, name: &str) -> Result<u64, ProbeError> {
        self.list
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.hits)
            .ok_or(ProbeError::NoProbe)
    }

    /// An HVC exit of vCPU `vcpu` with immediate `imm` and `x0..x7` = `x`: a hit if it
    /// is an armed probe's, at that probe (`None`: not a probe's; the VMM answers it as
    /// any HVC).
    pub fn hit(&mut self, vcpu: usize, imm: u64, x: [u64; 8], g: &mut impl GuestAccess) -> Option<Hit> {
        let k = usize::try_from(imm.checked_sub(u64::from(PROBE_HVC_IMM))?).ok()?;
        let p = *self.list.get(k)?;
        // Everything a hit needs, in two calls.
        let mut thread = [0u64; THREAD_REGS];
        if !g.thread_regs(vcpu, &mut thread) {
            return None;
        }
        let [pc, sp_el0, pstate] = [thread[0], thread[1], thread[2]];
        let State::Armed { va, .. } = p.state else {
            // Taken out while this vCPU's exit of it waited: the instruction is back,
            // and the guest runs it.
            return p.last_va.filter(|va| pc == va.wrapping_add(4)).map(|_| Hit::Retry);
        };
        if pc != va.wrapping_add(4) {
            return None;
        }
        self.list[k].hits += 1;
        // SCTLR_EL1 .. SP_EL1 (VCpuReg 0..=10).
        let mut el1 = [0u64; VCpuReg::SpEl1 as usize + 1];
        if !g.el1_regs(vcpu, VCpuReg::SctlrEl1, &mut el1) {
            return Some(self.give_up(k, "cannot read the vCPU's registers", g));
        }
        let s1 = Stage1 {
            regs: [el1[0], el1[1], el1[2], el1[3]],
        };
        // EL1h uses SP_EL1, EL1t and EL0 SP_EL0.
        let on_el1 = pstate & 0xf == 0b0101;
        let sp = if on_el1 { el1[VCpuReg::SpEl1 as usize] } else { sp_el0 };
        self.record_switch(vcpu, &s1, x, g);
        let mut gprs = [0u64; 31];
        gprs.copy_from_slice(&thread[X0..]);
        let mut cpu = Cpu {
            vcpu,
            x: gprs,
            sp,
            on_el1,
        };
        if let Err(e) = cpu.run(p.op, &s1, g) {
            return Some(self.give_up(k, e, g));
        }
        Some(Hit::Done)
    }

    fn give_up(&mut self, k: usize, why: &str, g: &mut impl GuestAccess) -> Hit {
        let name = self.list[k].name();
        g.log(format_args!(
            "vmm: probe {name}: {why}; taken out, the guest goes on unprobed"
        ));
        self.disarm(k, g);
        Hit::Retry
    }

    /// Record the task switch of a `__switch_to(prev, next)` hit, and the tasks' names
    /// the first time they are seen or when they change.
    fn record_switch(&mut self, vcpu: usize, s1: &Stage1, x: [u64; 8], g: &mut impl GuestAccess) {
        // Tasks it cannot read (not mapped) give no record.
        let (Some(prev), Some(next)) = (self.task_of(x[0], s1, g), self.task_of(x[1], s1, g)) else {
            return;
        };
        for (pid, comm) in [prev, next] {
            if self.names.iter().any(|n| *n == (pid, comm)) {
                continue;
            }
            let (lo, hi) = comm.split_at(8);
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
            if !g.trace(vcpu, Event::GuestTaskName, u64::from(pid), word(lo)) {
                // Not traced now: nothing is recorded, so no name is known to be.
                return;
            }
            g.trace(vcpu, Event::GuestTaskNameEnd, u64::from(pid), word(hi));
            if let Some(n) = self.names.iter_mut().find(|n| n.0 == pid) {
                n.1 = comm;
            } else {
                if self.names.is_full() {
                    self.names.pop_front();
                }
                let _ = self.names.push_back((pid, comm));
            }
        }
        g.trace(vcpu, Event::GuestTaskSwitch, u64::from(prev.0), u64::from(next.0));
    }

    /// The pid and comm of the `task_struct` at `task`.
    fn task_of(&self, task: u64, s1: &Stage1, g: &mut impl GuestAccess) -> Option<(u32, [u8; 16])> {
        let mut pid = [0u8; 4];
        let mut comm = [0u8; 16];
        s1.read(task.wrapping_add(u64::from(self.task.pid)), &mut pid, g).ok()?;
        s1.read(task.wrapping_add(u64::from(self.task.comm)), &mut comm, g)
            .ok()?;
        Some((u32::from_le_bytes(pid), comm))
    }
}

/// The displaced instruction's view of the vCPU: its general registers as read at the
/// hit, the SP it uses.
struct Cpu {
    vcpu: usize,
    x: [u64; 31],
    sp: u64,
    on_el1: bool,
}

impl Cpu {
    /// Register `r` (31: SP when `sp31`, else XZR).
    fn get(&self, r: u8, sp31: bool) -> u64 {
        match r {
            31 if sp31 => self.sp,
            31 => 0,
            r => self.x[usize::from(r)],
        }
    }

    fn set(&mut self, r: u8, sp31: bool, value: u64, g: &mut impl GuestAccess) {
        match r {
            31 if sp31 => {
                self.sp = value;
                // `run` refused SP outside EL1h.
                g.set_el1_reg(self.vcpu, VCpuReg::SpEl1, value);
            }
            31 => {}
            r => {
                self.x[usize::from(r)] = value;
                g.set_gpr(self.vcpu, usize::from(r), value);
            }
        }
    }

    /// Carry out `op`.
    fn run(&mut self, op: Displaced, s1: &Stage1, g: &mut impl GuestAccess) -> Result<(), &'static str> {
        let uses_sp = match op {
            Displaced::AddImm { rd, rn, .. } => rd == 31 || rn == 31,
            Displaced::Pair(p) => p.rn == 31,
            Displaced::Hint | Displaced::Mov { .. } => false,
        };
        if uses_sp && !self.on_el1 {
            return Err("its instruction uses SP outside EL1h, which is not carried out");
        }
        match op {
            Displaced::Hint => {}
            Displaced::AddImm { rd, rn, imm } => {
                let v = self.get(rn, true).wrapping_add_signed(imm);
                self.set(rd, true, v, g);
            }
            Displaced::Mov { rd, rm } => {
                let v = self.get(rm, false);
                self.set(rd, false, v, g);
            }
            Displaced::Pair(p) => {
                let base = self.get(p.rn as u8, true);
                let addr = if p.post {
                    base
                } else {
                    base.wrapping_add_signed(p.offset)
                };
                let size = usize::from(p.size);
                for (i, rt) in [p.rt, p.rt2].into_iter().enumerate() {
                    let at = addr.wrapping_add((i * size) as u64);
                    let mut b = [0u8; 8];
                    if p.load {
                        s1.read(at, &mut b[..size], g)
                            .map_err(|_| "its load's address is not mapped")?;
                        let raw = u64::from_le_bytes(b);
                        let v = if p.signed {
                            i64::from((raw as u32).cast_signed()).cast_unsigned()
                        } else {
                            raw
                        };
                        self.set(rt as u8, false, v, g);
                    } else {
                        b = self.get(rt as u8, false).to_le_bytes();
                        s1.write(at, &b[..size], g)
                            .map_err(|_| "its store's address is not mapped")?;
                    }
                }
                if p.writeback {
                    self.set(p.rn as u8, true, base.wrapping_add_signed(p.offset), g);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
