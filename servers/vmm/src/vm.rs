//! What the VMM does with each exit of a VM's vCPUs: MMIO goes to the device models
//! (the GIC, the UART, the test device), HVC and SMC to the PSCI firmware, trapped system
//! registers are emulated, accesses nothing backs get an external abort. Hardware-free:
//! the kernel operations go through [`Hyp`], which the server implements with
//! capabilities and the tests with a model (the rust-sel4 handler shape).

use gaon_abi::hypercall::{self, Hypercall};
use gaon_abi::system::PROBE_HVC_IMM;
use gaon_abi::vcpu::{EXIT_REPLY_ABORT, EXIT_REPLY_DONE, EXIT_REPLY_RETRY, Exit, MmioAccess};

use crate::device::Device;
use crate::gic::{self, Action, Actions, Gic, Version};
use crate::layout;
use crate::pl011::Pl011;
use crate::probe::{GuestAccess, Hit, Probes};
use crate::psci::{self, Psci};
use crate::testdev::{Request, TestDev};

/// What the VMM needs from the kernel (and the console) to run a VM; guest memory and
/// registers as [`GuestAccess`] has them.
pub trait Hyp: GuestAccess {
    /// Make `intid` pending in vCPU `vcpu` (`VCpuInjectIrq`); `level`: level-triggered,
    /// its end comes back as an `Eoi` exit.
    fn inject(&mut self, vcpu: usize, intid: u32, priority: u8, level: bool);
    /// Tell the kernel how the guest has its timer PPI (`VCpuSetVppi`).
    fn set_vppi(&mut self, vcpu: usize, intid: u32, enabled: bool, priority: u8);
    /// Bytes the guest wrote to its UART.
    fn console(&mut self, bytes: &[u8]);
    /// Start vCPU `vcpu` at `entry` with x0 = `context`, out of reset (PSCI CPU_ON, a
    /// reset's vCPU 0); false if it could not be started.
    fn start_vcpu(&mut self, vcpu: usize, entry: u64, context: u64) -> bool;
    /// Stop vCPU `vcpu` where it is (PSCI CPU_OFF, the control interface's `stop`).
    fn stop_vcpu(&mut self, vcpu: usize);
    /// Let vCPU `vcpu` go on where it stopped (the control interface's `start`).
    fn resume_vcpu(&mut self, vcpu: usize);
    /// The guest ended the forwarded interrupt `intid` of a pass-through device:
    /// acknowledge the physical line (it fires again if still up).
    fn irq_done(&mut self, intid: u32);
    /// Keep vCPU `vcpu` off every CPU for `ticks` counter ticks before its exit is
    /// answered (the test device's DELAY).
    fn delay(&mut self, vcpu: usize, ticks: u64);
    /// vCPU `vcpu`'s general registers x0..x30.
    fn gprs(&mut self, vcpu: usize) -> [u64; 31];
    /// Load the guest program, its initrd and its device tree into RAM again, as at
    /// boot (a reset); returns where vCPU 0 starts: `(entry, x0)`, or `None` if that
    /// failed (the VM then ends).
    fn reload(&mut self) -> Option<(u64, u64)>;
    /// Fault, as a VMM with a bug would (the test device's `CRASH`): the server does
    /// not come back from this.
    fn crash(&mut self);
    /// Ask the scheduling policy server about vCPU `vcpu` (a guest's scheduling
    /// hypercall); `None` if the VM has none (its `[[vm]]` has no `sched` table).
    fn sched(&mut self, vcpu: usize, call: SchedCall) -> Option<SchedAnswer>;
}

/// A guest's scheduling hypercall, for the policy server (`idl/sched.idl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedCall {
    /// `LL_BOOST_ENTER`.
    LlEnter,
    /// `LL_BOOST_LEAVE`.
    LlLeave,
    /// `SCHED_STATE`.
    State,
}

/// The policy server's answer to a [`SchedCall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedAnswer {
    /// Done (`LlEnter`, `LlLeave`).
    Done,
    /// The vCPU's class, credit (ns, two's complement) and LL-boost time left (ns).
    State([u64; 3]),
    /// The VM may not (no reservation, or LL-boost is off).
    Denied,
    /// Not before this *guest virtual* counter value.
    Retry(u64),
    /// The server refused for another reason (the vCPU is not registered) or could
    /// not be reached.
    Failed,
}

/// How to answer an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Reply with this label and these words (for x0..x3, or a load's value).
    Answer { label: u64, words: [u64; 4], len: usize },
    /// No reply: the vCPU stopped (PSCI CPU_OFF), or the VM was reset (PSCI
    /// SYSTEM_RESET) and boots again from vCPU 0.
    None,
    /// The VM is over, with this status (PSCI SYSTEM_OFF: 0; the test device; a
    /// reset whose guest cannot be loaded again: 1).
    Exit(u64),
}

impl Reply {
    const fn done(words: [u64; 4], len: usize) -> Self {
        Self::Answer {
            label: EXIT_REPLY_DONE,
            words,
            len,
        }
    }

    const ABORT: Self = Self::Answer {
        label: EXIT_REPLY_ABORT,
        words: [0; 4],
        len: 0,
    };
}

/// Gaon's paravirtual hypercalls (`gaon_abi::hypercall`, `docs/hypercalls.md`) of
/// vCPU `vcpu`: the version and console output are the VMM's; LL-boost and the
/// scheduling state go to the scheduling policy server, if the VM has one
/// (`NOT_SUPPORTED` otherwise, as the interface says when nobody serves a function);
/// the trace events are answered 0: the kernel records them at the exit when VM events
/// are traced (docs/trace.md), and they cost nothing otherwise.
fn paravirtual(vcpu: usize, x: [u64; 8], hyp: &mut impl Hyp) -> Reply {
    let call = match Hypercall::decode(x) {
        Ok(Hypercall::Version) => return Reply::done([hypercall::VERSION_1_0, 0, 0, 0], 1),
        Ok(Hypercall::ConsoleWrite { len, bytes }) => {
            hyp.console(&bytes[..len]);
            return Reply::done([0; 4], 1);
        }
        Ok(Hypercall::LlBoostEnter) => SchedCall::LlEnter,
        Ok(Hypercall::LlBoostLeave) => SchedCall::LlLeave,
        Ok(Hypercall::SchedState) => SchedCall::State,
        Ok(Hypercall::TraceTaskSwitch { .. } | Hypercall::TraceEvent { .. } | Hypercall::TraceTaskName { .. }) => {
            return Reply::done([0; 4], 1);
        }
        Err(e) => return Reply::done([e.x0(), 0, 0, 0], 1),
    };
    // Only the registers a function names as results change.
    let (words, len) = match hyp.sched(vcpu, call) {
        Some(SchedAnswer::Done) => ([0; 4], 1),
        Some(SchedAnswer::State([class, credit, left])) => ([0, class, credit, left], 4),
        Some(SchedAnswer::Denied) => ([hypercall::Error::Denied.x0(), 0, 0, 0], 1),
        Some(SchedAnswer::Retry(at)) => ([hypercall::Error::Retry.x0(), at, 0, 0], 2),
        Some(SchedAnswer::Failed) | None => ([hypercall::Error::NotSupported.x0(), 0, 0, 0], 1),
    };
    Reply::done(words, len)
}

/// ICC_SGI1R_EL1 as a trapped system register's ISS (op0 3, op1 0, CRn 12, CRm 11,
/// op2 5), without the register and direction.
const ISS_SGI1R: u64 = 3 << 20 | 5 << 17 | 12 << 10 | 11 << 1;
/// The ISS bits naming a system register (all but Rt and the direction).
const ISS_SYSREG_MASK: u64 = 0x3f_fc1e;

/// Where a VM is, as its control interface (`idl/vmm.idl`) tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Built, not started yet (`autostart = false`).
    NotStarted = 0,
    Running = 1,
    /// Every vCPU stopped by the control interface.
    Stopped = 2,
    /// The guest ended (power-off, reset, the test device's EXIT).
    Ended = 3,
}

/// Why a control request was refused (`idl/vmm.idl`'s `VmmError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    Ended,
    NoChange,
    NotEnded,
}

/// One VM's emulated platform.
#[derive(Debug)]
pub struct Vm {
    gic: Gic,
    uart: Pl011,
    testdev: Option<TestDev>,
    psci: Psci,
    vcpus: usize,
    run: RunState,
    status: u64,
    exits: u64,
    resets: u64,
    /// Lines of pass-through devices, forwarded as the same INTID.
    forwarded: heapless::Vec<u32, { gaon_abi::system::MAX_PASSTHROUGH }>,
    /// Probes in its Linux kernel (`probe.rs`).
    probes: Option<Probes>,
}

impl Vm {
    /// A VM of `vcpus` vCPUs with a `version` GIC, with the test device if `testdev`.
    pub fn new(vcpus: usize, version: Version, testdev: bool) -> Self {
        Self {
            gic: Gic::new(version, vcpus, Some(layout::VTIMER_IRQ)),
            uart: Pl011::new(layout::UART, layout::UART_IRQ),
            testdev: testdev.then(|| TestDev::new(layout::TESTDEV, layout::TESTDEV_IRQ)),
            psci: Psci::new(vcpus),
            vcpus,
            run: RunState::NotStarted,
            status: 0,
            exits: 0,
            resets: 0,
            forwarded: heapless::Vec::new(),
            probes: None,
        }
    }

    /// Probe the guest's kernel with `probes` (armed once it runs with its MMU on).
    pub fn set_probes(&mut self, probes: Probes) {
        self.probes = Some(probes);
    }

    /// Put probe `name` back in (`idl/vmm.idl`'s `add_probe`).
    pub fn add_probe(&mut self, name: &str) -> Result<(), crate::probe::ProbeError> {
        self.probes.as_mut().ok_or(crate::probe::ProbeError::NoProbe)?.add(name)
    }

    /// Probe `name`'s hits (`probe_hits`).
    pub fn probe_hits(&self, name: &str) -> Result<u64, crate::probe::ProbeError> {
        self.probes
            .as_ref()
            .ok_or(crate::probe::ProbeError::NoProbe)?
            .hits_of(name)
    }

    /// Take probe `name` out (`remove_probe`).
    pub fn remove_probe(&mut self, name: &str, hyp: &mut impl Hyp) -> Result<(), crate::probe::ProbeError> {
        self.probes
            .as_mut()
            .ok_or(crate::probe::ProbeError::NoProbe)?
            .remove(name, hyp)
    }

    /// Forward the SPI `intid` of a pass-through device (see [`Vm::line_raised`]);
    /// false if there are too many, or it is no SPI the distributor has.
    pub fn forward(&mut self, intid: u32) -> bool {
        let ok = (32..32 + gic::SPIS as u32).contains(&intid) && self.forwarded.push(intid).is_ok();
        if ok {
            self.gic.keep_level(intid);
        }
        ok
    }

    /// The physical line of forwarded interrupt `intid` fired (the kernel masked it): it
    /// is up in the guest's distributor, injected level-triggered, until the guest
    /// ends it; then the VMM acknowledges the physical line ([`Hyp::irq_done`]), and if
    /// the device still asserts it, it fires again.
    pub fn line_raised(&mut self, intid: u32, hyp: &mut impl Hyp) {
        if self.forwarded.contains(&intid) {
            let mut out = Actions::new();
            self.gic.set_level(intid, true, &mut out);
            apply(&out, hyp);
        }
    }

    /// Its state.
    pub const fn state(&self) -> RunState {
        self.run
    }

    /// Exits handled so far.
    pub const fn exits(&self) -> u64 {
        self.exits
    }

    /// The status it ended with.
    pub const fn exit_status(&self) -> Result<u64, ControlError> {
        match self.run {
            RunState::Ended => Ok(self.status),
            _ => Err(ControlError::NotEnded),
        }
    }

    /// The vCPUs that are on (or being started) as PSCI has them.
    fn powered(&self) -> impl Iterator<Item = usize> + use<> {
        let on: heapless::Vec<usize, { crate::psci::MAX_VCPUS }> = (0..self.vcpus)
            .filter(|&v| self.psci.power(v).is_some_and(|p| p != psci::Power::Off))
            .collect();
        on.into_iter()
    }

    /// Run it: vCPU 0 the first time (the VMM set it up at its entry), afterwards
    /// every vCPU that was on when it stopped.
    pub fn start(&mut self, hyp: &mut impl Hyp) -> Result<(), ControlError> {
        match self.run {
            RunState::Ended => return Err(ControlError::Ended),
            RunState::Running => return Err(ControlError::NoChange),
            RunState::NotStarted => hyp.resume_vcpu(0),
            RunState::Stopped => {
                for v in self.powered() {
                    hyp.resume_vcpu(v);
                }
            }
        }
        self.run = RunState::Running;
        Ok(())
    }

    /// Stop every vCPU that is on where it is.
    pub fn stop(&mut self, hyp: &mut impl Hyp) -> Result<(), ControlError> {
        match self.run {
            RunState::Ended => Err(ControlError::Ended),
            RunState::NotStarted | RunState::Stopped => Err(ControlError::NoChange),
            RunState::Running => {
                for v in self.powered() {
                    hyp.stop_vcpu(v);
                }
                self.run = RunState::Stopped;
                Ok(())
            }
        }
    }

    /// The guest ended with `status` (a [`Reply::Exit`]): every vCPU stops for good.
    pub fn end(&mut self, status: u64, hyp: &mut impl Hyp) {
        for v in 0..self.vcpus {
            hyp.stop_vcpu(v);
        }
        self.run = RunState::Ended;
        self.status = status;
    }

    /// Reset the VM as a board's reset button does: every vCPU stopped, the devices as
    /// at power-on (the lines of pass-through devices acknowledged, so one the guest
    /// left in service comes again), the guest loaded again and vCPU 0 started at its
    /// entry ([`Hyp::reload`]; if that fails the VM ends, with status 1). The exit that
    /// asked for it gets no reply: its vCPU was stopped and starts again from scratch.
    fn reset(&mut self, hyp: &mut impl Hyp) -> Reply {
        for v in 0..self.vcpus {
            hyp.stop_vcpu(v);
        }
        let forwarded = core::mem::take(&mut self.forwarded);
        let mut probes = self.probes.take();
        let run = self.run;
        *self = Self {
            exits: self.exits,
            resets: self.resets + 1,
            ..Self::new(self.vcpus, self.gic.version(), self.testdev.is_some())
        };
        self.run = run;
        // The guest's code is loaded again: the probes go in again once it runs.
        if let Some(p) = &mut probes {
            p.reloaded();
        }
        self.probes = probes;
        for &line in &forwarded {
            self.forward(line);
            hyp.irq_done(line);
        }
        match hyp.reload() {
            Some((entry, x0)) if hyp.start_vcpu(0, entry, x0) => Reply::None,
            _ => Reply::Exit(1),
        }
    }

    /// How many times the guest reset the VM.
    pub const fn resets(&self) -> u64 {
        self.resets
    }

    /// The PSCI firmware (the server tells it a vCPU it started is on).
    pub fn psci(&mut self) -> &mut Psci {
        &mut self.psci
    }

    /// Input for the guest's UART (typed on the console): as much as its receive FIFO
    /// takes, which is returned; its interrupt follows.
    pub fn uart_input(&mut self, bytes: &[u8], hyp: &mut impl Hyp) -> usize {
        let n = self.uart.push_input(bytes);
        let mut out = Actions::new();
        self.device_effects(&mut out, hyp);
        n
    }

    /// Bytes the guest's UART can receive now.
    pub fn uart_room(&self) -> usize {
        self.uart.input_room()
    }

    /// After a device changed: its interrupt lines to the GIC model, what the UART
    /// sent to the console, and the GIC model's `out` and resulting actions applied.
    fn device_effects(&mut self, out: &mut Actions, hyp: &mut impl Hyp) {
        for (intid, level) in [self.uart.irq(), self.testdev.as_ref().and_then(TestDev::irq)]
            .into_iter()
            .flatten()
        {
            self.gic.set_level(intid, level, out);
        }
        if self.uart.has_output() {
            hyp.console(&self.uart.take_output());
        }
        apply(out, hyp);
    }

    /// Answer `exit` of vCPU `vcpu`.
    pub fn handle(&mut self, vcpu: usize, exit: Exit, hyp: &mut impl Hyp) -> Reply {
        self.exits += 1;
        if let Some(p) = &mut self.probes {
            p.try_arm(vcpu, hyp);
            if let Exit::Hvc { imm, .. } = exit
                && imm >= u64::from(PROBE_HVC_IMM)
                && let Some(hit) = p.hit(vcpu, imm, exit.call_regs().unwrap_or_default(), hyp)
            {
                let label = match hit {
                    Hit::Done => EXIT_REPLY_DONE,
                    Hit::Retry => EXIT_REPLY_RETRY,
                };
                return Reply::Answer {
                    label,
                    words: [0; 4],
                    len: 0,
                };
            }
        }
        match exit {
            Exit::Hvc { .. } | Exit::Smc { .. } => {
                let x = exit.call_regs().unwrap_or_default();
                if Hypercall::owns(x[0]) {
                    return paravirtual(vcpu, x, hyp);
                }
                self.hypercall(vcpu, [x[0], x[1], x[2], x[3]], hyp)
            }
            Exit::Mmio { ipa, access, value, .. } => self.mmio(vcpu, ipa, access, value, hyp),
            Exit::Sysreg { iss, value, .. } => {
                if iss & ISS_SYSREG_MASK == ISS_SGI1R && iss & 1 == 0 {
                    let mut out = Actions::new();
                    self.gic.sgi1r(vcpu, value, &mut out);
                    apply(&out, hyp);
                }
                // Every other trapped register (the PMU, debug, ACTLR, implementation
                // defined ones) reads as zero and ignores writes.
                Reply::done([0; 4], 1)
            }
            Exit::Abort { ipa, esr, pc, .. } => self.undecodable(vcpu, ipa, esr, pc, hyp),
            Exit::Eoi { intid } => {
                let intid = u32::try_from(intid).unwrap_or(u32::MAX);
                let mut out = Actions::new();
                let forwarded = self.forwarded.contains(&intid);
                if forwarded {
                    // Down until the physical line says otherwise.
                    self.gic.set_level(intid, false, &mut out);
                }
                self.gic.eoi(vcpu, intid, &mut out);
                apply(&out, hyp);
                if forwarded {
                    hyp.irq_done(intid);
                }
                Reply::done([0; 4], 0)
            }
        }
    }

    /// PSCI and SMCCC (`psci.rs`); anything else is `NOT_SUPPORTED`.
    fn hypercall(&mut self, vcpu: usize, x: [u64; 4], hyp: &mut impl Hyp) -> Reply {
        if !Psci::owns(x[0]) {
            return Reply::done([psci::ret::NOT_SUPPORTED.cast_unsigned(), 0, 0, 0], 1);
        }
        match self.psci.call(vcpu, x) {
            psci::Action::Return(v) => Reply::done([v.cast_unsigned(), 0, 0, 0], 1),
            psci::Action::Start {
                vcpu: t,
                entry,
                context,
            } => {
                if !hyp.start_vcpu(t, entry, context) {
                    self.psci.start_failed(t);
                    return Reply::done([psci::ret::INTERNAL_FAILURE.cast_unsigned(), 0, 0, 0], 1);
                }
                self.psci.started(t);
                // Its list registers went with the reset: what was in service there
                // goes again.
                let mut out = Actions::new();
                self.gic.cpu_reset(t, &mut out);
                apply(&out, hyp);
                Reply::done([psci::ret::SUCCESS.cast_unsigned(), 0, 0, 0], 1)
            }
            psci::Action::Stop => {
                hyp.stop_vcpu(vcpu);
                Reply::None
            }
            psci::Action::SystemOff => Reply::Exit(0),
            psci::Action::SystemReset => self.reset(hyp),
        }
    }

    /// The device an access at `ipa` hits, as a `Device`, and the offset.
    fn device(&mut self, ipa: u64, size: u8) -> Option<(&mut dyn Device, u64)> {
        if crate::device::covers(&self.uart, ipa, size) {
            return Some((&mut self.uart, ipa - layout::UART));
        }
        let d = self.testdev.as_mut()?;
        if crate::device::covers(d, ipa, size) {
            Some((d, ipa - layout::TESTDEV))
        } else {
            None
        }
    }

    /// One load or store of `size` bytes at `ipa` (`value` for a store); `None` if
    /// nothing is there.
    fn access(&mut self, vcpu: usize, ipa: u64, size: u8, write: bool, value: u64, hyp: &mut impl Hyp) -> Option<u64> {
        let mut out = Actions::new();
        let redist = gic::REDIST_SIZE * self.vcpus as u64;
        let result = if (layout::GICD..layout::GICD + gic::DIST_SIZE).contains(&ipa) {
            let off = ipa - layout::GICD;
            if write {
                self.gic.dist_write(vcpu, off, size, value, &mut out);
                0
            } else {
                self.gic.dist_read(vcpu, off, size)
            }
        } else if self.gic.version() == Version::V3 && (layout::GICR..layout::GICR + redist).contains(&ipa) {
            let (rd, off) = (
                (ipa - layout::GICR) / gic::REDIST_SIZE,
                (ipa - layout::GICR) % gic::REDIST_SIZE,
            );
            if write {
                self.gic.redist_write(rd as usize, off, size, value, &mut out);
                0
            } else {
                self.gic.redist_read(rd as usize, off, size)
            }
        } else {
            let (d, off) = self.device(ipa, size)?;
            if write {
                d.write(off, size, value);
                0
            } else {
                d.read(off, size)
            }
        };
        self.device_effects(&mut out, hyp);
        Some(result)
    }

    fn mmio(&mut self, vcpu: usize, ipa: u64, access: MmioAccess, value: u64, hyp: &mut impl Hyp) -> Reply {
        let size = 1 << access.size_log2;
        let Some(v) = self.access(vcpu, ipa, size, access.write, value, hyp) else {
            return Reply::ABORT;
        };
        if let Some(r) = self.testdev_request(vcpu, hyp) {
            return r;
        }
        Reply::done([v, 0, 0, 0], 1)
    }

    fn testdev_request(&mut self, vcpu: usize, hyp: &mut impl Hyp) -> Option<Reply> {
        match self.testdev.as_mut()?.take_request()? {
            Request::Delay(ticks) => {
                hyp.delay(vcpu, ticks);
                None
            }
            Request::Exit(status) => Some(Reply::Exit(status)),
            Request::Crash => {
                hyp.crash();
                None
            }
        }
    }

    /// A data abort without a valid syndrome: the VMM decodes the instruction (from
    /// guest RAM at the PC, which is the IPA while the guest's MMU is off) and emulates
    /// a load or store pair; anything else gets an external abort.
    fn undecodable(&mut self, vcpu: usize, ipa: u64, esr: u64, pc: u64, hyp: &mut impl Hyp) -> Reply {
        let data_abort = (esr >> 26) & 0x3f == 0x24;
        let mut insn = [0u8; 4];
        if !data_abort || !hyp.read_guest(pc, &mut insn) {
            return Reply::ABORT;
        }
        // SP as the base is the guest's stack pointer, which the exit does not carry.
        let Some(pair) = Pair::decode(u32::from_le_bytes(insn)).filter(|p| p.rn != 31) else {
            return Reply::ABORT;
        };
        let x = hyp.gprs(vcpu);
        let base = x[pair.rn];
        let addr = if pair.post {
            base
        } else {
            base.wrapping_add_signed(pair.offset)
        };
        // The abort says which page; the instruction says where in it (MMU off: the
        // base register holds the guest-physical address).
        if addr >> 12 != ipa >> 12 && addr.wrapping_add(2 * u64::from(pair.size) - 1) >> 12 != ipa >> 12 {
            return Reply::ABORT;
        }
        let size = pair.size;
        for (i, rt) in [pair.rt, pair.rt2].into_iter().enumerate() {
            let a = addr + (i as u64) * u64::from(size);
            let stored = if rt == 31 { 0 } else { x[rt] };
            let Some(v) = self.access(vcpu, a, size, !pair.load, stored, hyp) else {
                return Reply::ABORT;
            };
            if pair.load && rt != 31 {
                let v = if pair.signed {
                    i64::from(v as i32).cast_unsigned()
                } else {
                    v
                };
                hyp.set_gpr(vcpu, rt, v);
            }
        }
        if pair.writeback {
            hyp.set_gpr(vcpu, pair.rn, base.wrapping_add_signed(pair.offset));
        }
        Reply::done([0; 4], 0)
    }
}

/// Carry out what the GIC model decided.
fn apply(out: &Actions, hyp: &mut impl Hyp) {
    for a in out {
        match *a {
            Action::Inject {
                vcpu,
                intid,
                priority,
                level,
            } => hyp.inject(vcpu, intid, priority, level),
            Action::Vppi {
                vcpu,
                intid,
                enabled,
                priority,
            } => hyp.set_vppi(vcpu, intid, enabled, priority),
        }
    }
}

/// A load or store pair of general registers (LDP, STP, LDPSW), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools, reason = "the fields of one instruction")]
pub struct Pair {
    pub(crate) load: bool,
    /// Bytes per register: 4 or 8.
    pub(crate) size: u8,
    /// LDPSW: each word sign-extended.
    pub(crate) signed: bool,
    pub(crate) rt: usize,
    pub(crate) rt2: usize,
    /// The base register (31: SP).
    pub(crate) rn: usize,
    pub(crate) offset: i64,
    /// Post-index: the access is at the base, the base moves after.
    pub(crate) post: bool,
    /// Pre- or post-index: the base register is written back.
    pub(crate) writeback: bool,
}

impl Pair {
    pub(crate) fn decode(insn: u32) -> Option<Self> {
        // opc:2 101 V:1 mode:3 L:1 imm7 Rt2 Rn Rt; V = 0 (general registers).
        if (insn >> 27) & 0b111 != 0b101 || (insn >> 26) & 1 != 0 {
            return None;
        }
        let mode = (insn >> 23) & 0b111;
        let (post, writeback) = match mode {
            0b001 => (true, true),
            0b010 => (false, false),
            0b011 => (false, true),
            _ => return None,
        };
        let load = (insn >> 22) & 1 != 0;
        let (size, signed) = match insn >> 30 {
            0b00 => (4, false),
            0b01 if load => (4, true),
            0b10 => (8, false),
            _ => return None,
        };
        let rn = ((insn >> 5) & 31) as usize;
        // imm7, sign-extended, in units of the register size.
        let imm7 = (i64::from((insn >> 15) & 0x7f) << 57) >> 57;
        Some(Self {
            load,
            size,
            signed,
            rt: (insn & 31) as usize,
            rt2: ((insn >> 10) & 31) as usize,
            rn,
            offset: imm7 * i64::from(size),
            post,
            writeback,
        })
    }
}

#[cfg(test)]
mod tests;
