//! The VM's exit handling against a model of the kernel.

use gaon_abi::vcpu::{EXIT_REPLY_ABORT, Exit, MmioAccess};

use super::*;

/// What the VMM asked of the model.
#[derive(Debug, Default)]
struct Model {
    /// (vCPU, INTID, priority, level-triggered)
    injected: Vec<(usize, u32, u8, bool)>,
    vppis: Vec<(usize, u32, bool, u8)>,
    console: Vec<u8>,
    started: Vec<(usize, u64, u64)>,
    stopped: Vec<usize>,
    resumed: Vec<usize>,
    acked: Vec<u32>,
    delays: Vec<(usize, u64)>,
    gprs: [u64; 31],
    /// Guest RAM from 0x4000_0000.
    ram: Vec<u8>,
    /// Reloads of the guest so far; whether the next fails.
    reloads: usize,
    reload_fails: bool,
    crashed: bool,
    start_fails: bool,
    /// The policy server's next answer (`None`: the VM has none), and what it was asked.
    sched: Option<SchedAnswer>,
    sched_calls: Vec<(usize, SchedCall)>,
}

impl GuestAccess for Model {
    fn read_guest(&mut self, ipa: u64, buf: &mut [u8]) -> bool {
        crate::testing::read(&self.ram, 0x4000_0000, ipa, buf)
    }
    fn write_guest(&mut self, ipa: u64, bytes: &[u8]) -> bool {
        crate::testing::write(&mut self.ram, 0x4000_0000, ipa, bytes)
    }
    fn el1_regs(&mut self, _: usize, _: gaon_abi::vcpu::VCpuReg, out: &mut [u64]) -> bool {
        out.fill(0);
        true
    }
    fn set_el1_reg(&mut self, _: usize, _: gaon_abi::vcpu::VCpuReg, _: u64) {}
    fn thread_regs(&mut self, _: usize, out: &mut [u64; crate::probe::THREAD_REGS]) -> bool {
        out[..3].copy_from_slice(&[0, 0, 0x3c5]);
        out[3..].copy_from_slice(&self.gprs);
        true
    }
    fn set_gpr(&mut self, _: usize, r: usize, value: u64) {
        self.gprs[r] = value;
    }
    fn trace(&mut self, _: usize, _: gaon_abi::trace::Event, _: u64, _: u64) -> bool {
        false
    }
    fn log(&mut self, _: core::fmt::Arguments<'_>) {}
}

impl Hyp for Model {
    fn inject(&mut self, vcpu: usize, intid: u32, priority: u8, level: bool) {
        self.injected.push((vcpu, intid, priority, level));
    }
    fn set_vppi(&mut self, vcpu: usize, intid: u32, enabled: bool, priority: u8) {
        self.vppis.push((vcpu, intid, enabled, priority));
    }
    fn console(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
    fn start_vcpu(&mut self, vcpu: usize, entry: u64, context: u64) -> bool {
        self.started.push((vcpu, entry, context));
        !self.start_fails
    }
    fn stop_vcpu(&mut self, vcpu: usize) {
        self.stopped.push(vcpu);
    }
    fn resume_vcpu(&mut self, vcpu: usize) {
        self.resumed.push(vcpu);
    }
    fn irq_done(&mut self, intid: u32) {
        self.acked.push(intid);
    }
    fn delay(&mut self, vcpu: usize, ticks: u64) {
        self.delays.push((vcpu, ticks));
    }
    fn gprs(&mut self, _: usize) -> [u64; 31] {
        self.gprs
    }
    fn crash(&mut self) {
        self.crashed = true;
    }
    fn reload(&mut self) -> Option<(u64, u64)> {
        self.reloads += 1;
        (!self.reload_fails).then_some((0x4000_0000, 0x47e0_0000))
    }
    fn sched(&mut self, vcpu: usize, call: SchedCall) -> Option<SchedAnswer> {
        self.sched_calls.push((vcpu, call));
        self.sched
    }
}

fn hvc(x0: u64, x1: u64, x2: u64, x3: u64) -> Exit {
    Exit::Hvc {
        x0,
        x1,
        x2,
        x3,
        x4: 0,
        x5: 0,
        x6: 0,
        x7: 0,
        imm: 0,
    }
}

fn mmio(ipa: u64, size_log2: u8, write: bool, value: u64) -> Exit {
    let access = MmioAccess {
        size_log2,
        write,
        reg: 1,
        sign_extend: false,
        sixty_four: true,
    };
    Exit::Mmio {
        ipa,
        access,
        value,
        pc: 0x4008_0000,
    }
}

fn store(ipa: u64, size_log2: u8, value: u64) -> Exit {
    mmio(ipa, size_log2, true, value)
}

fn load(ipa: u64, size_log2: u8) -> Exit {
    mmio(ipa, size_log2, false, 0)
}

fn value(r: Reply) -> u64 {
    match r {
        Reply::Answer { label: 0, words, .. } => words[0],
        r => panic!("not a done answer: {r:?}"),
    }
}

fn aborted(r: Reply) -> bool {
    matches!(
        r,
        Reply::Answer {
            label: EXIT_REPLY_ABORT,
            ..
        }
    )
}

#[test]
fn psci_over_hvc_and_smc_and_other_hypercalls() {
    let (mut vm, mut m) = (Vm::new(2, Version::V3, false), Model::default());
    assert_eq!(
        value(vm.handle(0, hvc(psci::id::PSCI_VERSION, 0, 0, 0), &mut m)),
        0x1_0001
    );
    let smc = Exit::Smc {
        x0: psci::id::PSCI_VERSION,
        x1: 0,
        x2: 0,
        x3: 0,
        x4: 0,
        x5: 0,
        x6: 0,
        x7: 0,
        imm: 0,
    };
    assert_eq!(value(vm.handle(0, smc, &mut m)), 0x1_0001);
    assert_eq!(value(vm.handle(0, hvc(0x4200_0000, 0, 0, 0), &mut m)).cast_signed(), -1);
    assert_eq!(value(vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 9), &mut m)), 0);
    assert_eq!(m.started, [(1, 0x4010_0000, 9)]);
    assert_eq!(vm.handle(1, hvc(psci::id::CPU_OFF, 0, 0, 0), &mut m), Reply::None);
    assert_eq!(m.stopped, [1]);
    assert_eq!(vm.handle(0, hvc(psci::id::SYSTEM_OFF, 0, 0, 0), &mut m), Reply::Exit(0));
}

#[test]
fn uart_output_goes_to_the_console_and_its_interrupt_to_the_gic() {
    let (mut vm, mut m) = (Vm::new(1, Version::V2, false), Model::default());
    // The guest enables the distributor and SPI 33 at priority 0x80, unmasks TX.
    vm.handle(0, store(layout::GICD, 2, 1), &mut m);
    vm.handle(0, store(layout::GICD + 0x400 + 33, 0, 0x80), &mut m);
    vm.handle(0, store(layout::GICD + 0x104, 2, 1 << 1), &mut m);
    vm.handle(0, store(layout::UART + 0x38, 2, 1 << 5), &mut m);
    for b in b"ok\n" {
        vm.handle(0, store(layout::UART, 2, u64::from(*b)), &mut m);
    }
    assert_eq!(m.console, b"ok\n");
    assert_eq!(m.injected, [(0, 33, 0x80, true)], "in service: injected once");
    // The guest ends it with TX still wanting service: it comes again. Masked, no more.
    assert_eq!(vm.handle(0, Exit::Eoi { intid: 33 }, &mut m), Reply::done([0; 4], 0));
    assert_eq!(m.injected.len(), 2);
    vm.handle(0, store(layout::UART + 0x38, 2, 0), &mut m);
    vm.handle(0, Exit::Eoi { intid: 33 }, &mut m);
    assert_eq!(m.injected.len(), 2);
    // Nonsense ends change nothing.
    vm.handle(0, Exit::Eoi { intid: 5000 }, &mut m);
    vm.handle(0, Exit::Eoi { intid: u64::MAX }, &mut m);
    assert_eq!(m.injected.len(), 2);
    // A GICv2 guest's timer PPI goes to the kernel.
    vm.handle(0, store(layout::GICD + 0x100, 2, 1 << 27), &mut m);
    assert_eq!(m.vppis, [(0, 27, true, 0)]);
}

#[test]
fn the_test_device_and_nothing_at_all() {
    let (mut vm, mut m) = (Vm::new(1, Version::V3, true), Model::default());
    vm.handle(0, store(layout::TESTDEV + 8, 3, 0x1122_3344_5566_7788), &mut m);
    assert_eq!(value(vm.handle(0, load(layout::TESTDEV + 10, 1), &mut m)), 0x5566);
    vm.handle(0, store(layout::TESTDEV + 0x108, 3, 500), &mut m);
    assert_eq!(m.delays, [(0, 500)]);
    assert_eq!(
        vm.handle(0, store(layout::TESTDEV + 0x110, 2, 3), &mut m),
        Reply::Exit(3)
    );
    assert!(!m.crashed);
    vm.handle(0, store(layout::TESTDEV + 0x120, 2, 1), &mut m);
    assert!(m.crashed, "CRASH faults the VMM");
    assert!(aborted(vm.handle(0, load(0x2000_0000, 2), &mut m)));
    // Without the test device its range is nothing too.
    let mut plain = Vm::new(1, Version::V3, false);
    assert!(aborted(plain.handle(0, load(layout::TESTDEV, 2), &mut m)));
    // GICv3 redistributors exist only for the vCPUs there are.
    assert_eq!(value(vm.handle(0, load(layout::GICR + 0xffe8, 2), &mut m)), 0x30);
    assert!(aborted(vm.handle(0, load(layout::GICR + gic::REDIST_SIZE, 2), &mut m)));
}

#[test]
fn sgis_by_system_register_and_other_trapped_registers() {
    let (mut vm, mut m) = (Vm::new(2, Version::V3, false), Model::default());
    vm.handle(0, store(layout::GICD, 2, 2), &mut m);
    vm.handle(1, store(layout::GICR + gic::REDIST_SIZE + 0x1_0100, 2, 0xffff), &mut m);
    // MSR ICC_SGI1R_EL1, x5: SGI 3 to vCPU 1.
    let sgi = Exit::Sysreg {
        iss: ISS_SGI1R | 5 << 5,
        value: 3 << 24 | 0b10,
        pc: 0,
    };
    assert_eq!(value(vm.handle(0, sgi, &mut m)), 0);
    assert_eq!(m.injected, [(1, 3, 0, false)]);
    // MRS x2, ACTLR_EL1 reads as zero.
    let actlr = Exit::Sysreg {
        iss: 3 << 20 | 1 << 10 | 2 << 5 | 1,
        value: 0,
        pc: 0,
    };
    assert_eq!(value(vm.handle(0, actlr, &mut m)), 0);
}

#[test]
fn load_and_store_pairs_are_decoded_from_guest_memory() {
    let (mut vm, mut m) = (Vm::new(1, Version::V3, true), Model::default());
    m.ram = vec![0; 0x1000];
    let base = layout::TESTDEV + 0x20;
    let abort = |ipa| Exit::Abort {
        ipa,
        esr: 0x24 << 26 | 0x7,
        far: ipa,
        pc: 0x4000_0000,
    };
    // stp x4, x5, [x9, #16]!  (pre-index, writeback)
    let stp: u32 = 0b10 << 30 | 0b101 << 27 | 0b011 << 23 | 2 << 15 | 5 << 10 | 9 << 5 | 4;
    m.ram[..4].copy_from_slice(&stp.to_le_bytes());
    m.gprs[9] = base - 16;
    (m.gprs[4], m.gprs[5]) = (0xaaaa, 0xbbbb);
    assert_eq!(vm.handle(0, abort(base), &mut m), Reply::done([0; 4], 0));
    assert_eq!(m.gprs[9], base, "written back");
    assert_eq!(value(vm.handle(0, load(base + 8, 3), &mut m)), 0xbbbb);
    // ldp w2, w3, [x9], #8  (post-index)
    let ldp: u32 = 0b101 << 27 | 0b001 << 23 | 1 << 22 | 2 << 15 | 3 << 10 | 9 << 5 | 2;
    m.ram[..4].copy_from_slice(&ldp.to_le_bytes());
    vm.handle(0, abort(base), &mut m);
    assert_eq!((m.gprs[2], m.gprs[3], m.gprs[9]), (0xaaaa, 0, base + 8));
    // ldpsw x2, x3, [x9, #-8]: words sign-extended.
    vm.handle(0, store(base, 2, 0x8000_0000), &mut m);
    let ldpsw: u32 = 0b01 << 30 | 0b101 << 27 | 0b010 << 23 | 1 << 22 | 0x7e << 15 | 3 << 10 | 9 << 5 | 2;
    m.ram[..4].copy_from_slice(&ldpsw.to_le_bytes());
    vm.handle(0, abort(base), &mut m);
    assert_eq!(m.gprs[2], 0xffff_ffff_8000_0000);
    // Not a pair (LDR with post-index): an external abort.
    m.ram[..4].copy_from_slice(&0xf840_0520_u32.to_le_bytes());
    assert!(aborted(vm.handle(0, abort(base), &mut m)));
    // A base at the top of the address space (the pair's end wraps): an abort, not a
    // VMM that overflows.
    m.ram[..4].copy_from_slice(&stp.to_le_bytes());
    m.gprs[9] = u64::MAX - 20;
    assert!(aborted(vm.handle(0, abort(base), &mut m)));
    // SP as the base: the exit does not carry the guest's SP.
    let stp_sp: u32 = 0b10 << 30 | 0b101 << 27 | 0b011 << 23 | 2 << 15 | 5 << 10 | 31 << 5 | 4;
    m.ram[..4].copy_from_slice(&stp_sp.to_le_bytes());
    assert!(aborted(vm.handle(0, abort(base), &mut m)));
}

#[test]
fn the_control_interface_starts_stops_and_reports_the_end() {
    let (mut vm, mut m) = (Vm::new(2, Version::V3, true), Model::default());
    assert_eq!(vm.state(), RunState::NotStarted);
    assert_eq!(vm.stop(&mut m), Err(ControlError::NoChange));
    assert_eq!(vm.exit_status(), Err(ControlError::NotEnded));
    // The first start is vCPU 0's alone.
    assert_eq!(vm.start(&mut m), Ok(()));
    assert_eq!((vm.state(), &m.resumed[..]), (RunState::Running, &[0][..]));
    assert_eq!(vm.start(&mut m), Err(ControlError::NoChange));
    // vCPU 1 comes on; a stop stops both, a start resumes both.
    vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 0), &mut m);
    m.stopped.clear();
    assert_eq!(vm.stop(&mut m), Ok(()));
    assert_eq!((vm.state(), &m.stopped[..]), (RunState::Stopped, &[0, 1][..]));
    assert_eq!(vm.stop(&mut m), Err(ControlError::NoChange));
    m.resumed.clear();
    assert_eq!(vm.start(&mut m), Ok(()));
    assert_eq!(m.resumed, [0, 1]);
    assert_eq!(vm.exits(), 1);
    // vCPU 1 turns itself off: it stays off across a stop and a start.
    vm.handle(1, hvc(psci::id::CPU_OFF, 0, 0, 0), &mut m);
    vm.stop(&mut m).unwrap();
    m.resumed.clear();
    vm.start(&mut m).unwrap();
    assert_eq!(m.resumed, [0]);
    // The end stops everything and keeps the status; nothing starts it again.
    let end = vm.handle(0, store(layout::TESTDEV + 0x110, 2, 9), &mut m);
    assert_eq!(end, Reply::Exit(9));
    vm.end(9, &mut m);
    assert_eq!((vm.state(), vm.exit_status()), (RunState::Ended, Ok(9)));
    assert_eq!(vm.start(&mut m), Err(ControlError::Ended));
    assert_eq!(vm.stop(&mut m), Err(ControlError::Ended));
    assert_eq!(vm.exits(), 3);
}

#[test]
fn console_input_reaches_the_uart_and_raises_its_interrupt_until_read() {
    let (mut vm, mut m) = (Vm::new(1, Version::V3, false), Model::default());
    vm.handle(0, store(layout::GICD, 2, 2), &mut m);
    vm.handle(0, store(layout::GICD + 0x400 + 33, 0, 0x80), &mut m);
    vm.handle(0, store(layout::GICD + 0x104, 2, 1 << 1), &mut m);
    // Receive and receive-timeout interrupts unmasked.
    vm.handle(0, store(layout::UART + 0x38, 2, 1 << 4 | 1 << 6), &mut m);
    let room = vm.uart_room();
    assert_eq!(vm.uart_input(b"ok", &mut m), 2);
    assert_eq!(vm.uart_room(), room - 2);
    assert_eq!(m.injected, [(0, 33, 0x80, true)]);
    // Read one byte and end the interrupt: the other is still there, so it comes again.
    assert_eq!(value(vm.handle(0, load(layout::UART, 2), &mut m)), u64::from(b'o'));
    vm.handle(0, Exit::Eoi { intid: 33 }, &mut m);
    assert_eq!(m.injected.len(), 2);
    assert_eq!(value(vm.handle(0, load(layout::UART, 2), &mut m)), u64::from(b'k'));
    vm.handle(0, Exit::Eoi { intid: 33 }, &mut m);
    assert_eq!(m.injected.len(), 2, "read to the end: the line is down");
    // A full FIFO takes what fits.
    let big = [b'x'; 100];
    assert_eq!(vm.uart_input(&big, &mut m), room);
    assert_eq!(vm.uart_room(), 0);
}

#[test]
fn a_pass_through_line_is_injected_until_its_end_then_acknowledged() {
    let (mut vm, mut m) = (Vm::new(1, Version::V3, false), Model::default());
    assert!(vm.forward(34));
    assert!(!vm.forward(27), "no SPI");
    // Fired before the guest enabled it: pending, injected once it does.
    vm.line_raised(34, &mut m);
    assert!(m.injected.is_empty());
    vm.handle(0, store(layout::GICD, 2, 2), &mut m);
    vm.handle(0, store(layout::GICD + 0x104, 2, 1 << 2), &mut m);
    assert_eq!(m.injected, [(0, 34, 0, true)]);
    // The guest cannot make it edge-triggered (its end would never come).
    vm.handle(0, store(layout::GICD + 0xc08, 2, 0b10 << 4), &mut m);
    assert_eq!(value(vm.handle(0, load(layout::GICD + 0xc08, 2), &mut m)), 0);
    // Its end lowers it and acknowledges the physical line; nothing more until it
    // fires again.
    vm.handle(0, Exit::Eoi { intid: 34 }, &mut m);
    assert_eq!((m.injected.len(), &m.acked[..]), (1, &[34][..]));
    vm.line_raised(34, &mut m);
    assert_eq!(m.injected.len(), 2);
    // A line nobody forwards changes nothing, and its end acknowledges nothing.
    vm.line_raised(35, &mut m);
    vm.handle(0, Exit::Eoi { intid: 35 }, &mut m);
    assert_eq!((m.injected.len(), m.acked.len()), (2, 1));
}

#[test]
fn a_system_reset_boots_the_guest_again_on_fresh_devices() {
    let (mut vm, mut m) = (Vm::new(2, Version::V3, false), Model::default());
    vm.start(&mut m).unwrap();
    assert!(vm.forward(34));
    // The guest turned things on: its distributor, vCPU 1, the UART's interrupts.
    let gicd_ctlr = layout::GICD; // GICD_CTLR
    vm.handle(0, store(gicd_ctlr, 2, 2), &mut m);
    assert_ne!(value(vm.handle(0, load(gicd_ctlr, 2), &mut m)) & 2, 0);
    vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 0), &mut m);
    vm.handle(0, store(layout::UART + 0x38, 2, 0x50), &mut m);
    let exits = vm.exits();
    m.stopped.clear();
    m.started.clear();
    // vCPU 1 resets the system: no reply, everything stopped, reloaded, vCPU 0 started.
    let r = vm.handle(1, hvc(psci::id::SYSTEM_RESET, 0, 0, 0), &mut m);
    assert_eq!(r, Reply::None);
    assert_eq!(m.stopped, [0, 1]);
    assert_eq!(m.reloads, 1);
    assert_eq!(m.started, [(0, 0x4000_0000, 0x47e0_0000)]);
    assert_eq!(m.acked, [34], "the pass-through line may come again");
    assert_eq!((vm.state(), vm.resets(), vm.exits()), (RunState::Running, 1, exits + 1));
    // Devices as at power-on, vCPU 1 off, the forwarded line still forwarded.
    assert_eq!(value(vm.handle(0, load(gicd_ctlr, 2), &mut m)) & 3, 0);
    assert_eq!(value(vm.handle(0, load(layout::UART + 0x38, 2), &mut m)), 0);
    assert_eq!(
        value(vm.handle(0, hvc(psci::id::AFFINITY_INFO, 1, 0, 0), &mut m)),
        1,
        "vCPU 1 is off"
    );
    assert!(vm.forwarded.contains(&34));
    // A guest that cannot be loaded again ends the VM.
    m.reload_fails = true;
    assert_eq!(
        vm.handle(0, hvc(psci::id::SYSTEM_RESET, 0, 0, 0), &mut m),
        Reply::Exit(1)
    );
}

#[test]
fn cpu_on_fails_cleanly_and_a_started_vcpu_gets_again_what_was_in_service_there() {
    let (mut vm, mut m) = (Vm::new(2, Version::V3, false), Model::default());
    vm.start(&mut m).unwrap();
    // A level-triggered SPI routed to vCPU 1, in service there when vCPU 1 goes off.
    let gicd = layout::GICD;
    vm.handle(0, store(gicd, 2, 2), &mut m); // GICD_CTLR: group 1 on
    vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 0), &mut m);
    assert!(vm.forward(34));
    vm.handle(0, store(gicd + 0x6000 + 8 * 34, 3, 1), &mut m); // GICD_IROUTER34: vCPU 1
    vm.handle(0, store(gicd + 0x100 + 4, 2, 1 << 2), &mut m); // GICD_ISENABLER1: 34
    vm.line_raised(34, &mut m);
    assert_eq!(m.injected.last(), Some(&(1, 34, 0, true)));
    vm.handle(1, hvc(psci::id::CPU_OFF, 0, 0, 0), &mut m);
    // A start that fails leaves vCPU 1 off and says so.
    m.start_fails = true;
    let r = vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 0), &mut m);
    assert_eq!(value(r), psci::ret::INTERNAL_FAILURE.cast_unsigned());
    assert_eq!(value(vm.handle(0, hvc(psci::id::AFFINITY_INFO, 1, 0, 0), &mut m)), 1);
    // Started out of reset, vCPU 1 gets the line again (its end went with the reset).
    m.start_fails = false;
    m.injected.clear();
    let r = vm.handle(0, hvc(psci::id::CPU_ON, 1, 0x4010_0000, 0), &mut m);
    assert_eq!(value(r), 0);
    assert_eq!(m.injected, [(1, 34, 0, true)]);
}

#[test]
fn paravirtual_hypercalls_answer_as_the_interface_says() {
    use gaon_abi::hypercall::{self, Error, Hypercall};
    let (mut vm, mut m) = (Vm::new(1, Version::V3, false), Model::default());
    let call = |vm: &mut Vm, m: &mut Model, h: [u64; 8]| {
        let exit = Exit::Hvc {
            x0: h[0],
            x1: h[1],
            x2: h[2],
            x3: h[3],
            x4: h[4],
            x5: h[5],
            x6: h[6],
            x7: h[7],
            imm: 0,
        };
        value(vm.handle(0, exit, m))
    };
    assert_eq!(
        call(&mut vm, &mut m, Hypercall::Version.encode()),
        hypercall::VERSION_1_0
    );
    let text = b"rtos: 48 bytes fit in the six registers x2..x7!!";
    assert_eq!(text.len(), hypercall::CONSOLE_MAX);
    assert_eq!(call(&mut vm, &mut m, Hypercall::console_write(text).encode()), 0);
    assert_eq!(m.console, text);
    // A length over 48 is refused, and nothing is written.
    let mut bad = Hypercall::console_write(b"x").encode();
    bad[1] = 49;
    assert_eq!(call(&mut vm, &mut m, bad), Error::InvalidParameters.x0());
    assert_eq!(m.console.len(), text.len());
    // Served by no one in this system (no policy server), and unknown functions.
    for h in [Hypercall::LlBoostEnter, Hypercall::SchedState] {
        assert_eq!(call(&mut vm, &mut m, h.encode()), Error::NotSupported.x0());
    }
    // The trace events are the kernel's to record: the VMM says 0.
    for h in [
        Hypercall::TraceEvent { event: 1, arg: 2 },
        Hypercall::TraceTaskSwitch { from: 1, to: 2 },
        Hypercall::TraceTaskName { task: 1, name: 7 },
    ] {
        assert_eq!(call(&mut vm, &mut m, h.encode()), 0);
    }
    assert_eq!(
        call(&mut vm, &mut m, [hypercall::BASE | 0x7f, 0, 0, 0, 0, 0, 0, 0]),
        Error::NotSupported.x0()
    );
    // PSCI still answers.
    assert_eq!(call(&mut vm, &mut m, hvc_regs(psci::id::PSCI_VERSION)), 0x1_0001);
}

/// The scheduling hypercalls go to the policy server for the vCPU that made them, and
/// its answers come back as the interface says: only the result registers change.
#[test]
fn scheduling_hypercalls_go_to_the_policy_server() {
    use gaon_abi::hypercall::{Error, Hypercall};
    let (mut vm, mut m) = (Vm::new(2, Version::V3, false), Model::default());
    let mut call = |m: &mut Model, vcpu: usize, h: Hypercall, answer: Option<SchedAnswer>| {
        m.sched = answer;
        let x = h.encode();
        let exit = Exit::Hvc {
            x0: x[0],
            x1: x[1],
            x2: x[2],
            x3: x[3],
            x4: x[4],
            x5: x[5],
            x6: x[6],
            x7: x[7],
            imm: 0,
        };
        match vm.handle(vcpu, exit, m) {
            Reply::Answer { label: 0, words, len } => words[..len].to_vec(),
            r => panic!("{r:?}"),
        }
    };
    assert_eq!(call(&mut m, 1, Hypercall::LlBoostEnter, Some(SchedAnswer::Done)), [0]);
    assert_eq!(call(&mut m, 0, Hypercall::LlBoostLeave, Some(SchedAnswer::Done)), [0]);
    assert_eq!(
        call(
            &mut m,
            1,
            Hypercall::SchedState,
            Some(SchedAnswer::State([4, 7, 60_000]))
        ),
        [0, 4, 7, 60_000]
    );
    assert_eq!(
        m.sched_calls,
        [(1, SchedCall::LlEnter), (0, SchedCall::LlLeave), (1, SchedCall::State)]
    );
    assert_eq!(
        call(&mut m, 0, Hypercall::LlBoostEnter, Some(SchedAnswer::Denied)),
        [Error::Denied.x0()]
    );
    assert_eq!(
        call(&mut m, 0, Hypercall::LlBoostEnter, Some(SchedAnswer::Retry(12_345))),
        [Error::Retry.x0(), 12_345]
    );
    for answer in [Some(SchedAnswer::Failed), None] {
        assert_eq!(
            call(&mut m, 0, Hypercall::SchedState, answer),
            [Error::NotSupported.x0()]
        );
    }
}

fn hvc_regs(x0: u64) -> [u64; 8] {
    [x0, 0, 0, 0, 0, 0, 0, 0]
}
