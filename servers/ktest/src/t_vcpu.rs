//! Virtual CPUs: a guest at EL1 in its own stage-2 address space, whose exits (HVC,
//! MMIO loads and stores the kernel decodes, an access it cannot decode, a trapped
//! system register) reach this test as the VMM, whose replies resume it; and deleting a
//! VCpu whose guest is running.

use gaon_abi::invocation::{REG_PC, REG_X0, ThreadState};
use gaon_abi::vcpu::{EXIT_REPLY_ABORT, EXIT_REPLY_DONE, EXIT_REPLY_UNDEF, Exit, ExitKind, MmioAccess, VCpuReg};
use libl4::cap::{Frame, Tcb, VCpu, VSpace};
use libl4::ipc::{self, Msg, MsgInfo};
use libl4::syscall::yield_now;
use libl4::time::{counter, us_to_ticks};
use libl4::{ObjType, Rights};

use crate::env::{Env, ROOT_CNODE, ROOT_TCB};
use crate::{R, check, err, ok};

crate::tests![
    "a guest's exits reach its VMM and the replies resume it" => exits,
    "guest registers are read and written through the VCpu" => registers,
    "deleting the VCpu of a running guest stops it and nothing else" => delete_running,
    "an injected virtual interrupt reaches the guest's handler, also out of WFI" => inject,
    "the guest's virtual timer fires into it, live, saved in WFI, and enabled late" => vtimer,
    "a VMM answers with an external abort or an undefined instruction for the guest" => raise,
];

/// Where the guest's code is, guest-physical (its MMU is off: also its virtual address).
const GUEST_CODE: u64 = 0x1000;
/// An unmapped guest-physical page the guest treats as a device.
const GUEST_DEVICE: u64 = 0x900_0000;

#[allow(unsafe_code, reason = "the snippet is code for a guest")]
mod snippet {
    core::arch::global_asm!(
        ".section .text.ktest_snippet, \"ax\"",
        ".global ktest_guest_start",
        ".global ktest_guest_spin",
        ".global ktest_guest_end",
        ".balign 4",
        "ktest_guest_start:",
        "    mov x0, #3",
        "    mov x1, #4",
        "    mov x7, #77",
        "    hvc #0x42",
        "    mov x19, x0",
        "    movz x9, #0x900, lsl #16",
        "    ldrsh x5, [x9, #0x10]",
        "    str w5, [x9, #4]",
        "    str wzr, [x9, #8]",
        "    ldp x1, x2, [x9]",
        "    mrs x3, actlr_el1",
        "    mov x0, x19",
        "    mov x1, x5",
        "    mov x2, x3",
        "    hvc #0x99",
        "ktest_guest_spin:",
        "    b .",
        "ktest_guest_end:",
        ".text",
    );

    // A guest that takes interrupts, on either GIC: x20 is 0 for GICv3 (the CPU
    // interface by system registers, the virtual one with HCR_EL2.IMO) or the address of
    // its GICC (GICv2: the GICV frames its VMM mapped there). It touches the PMU first
    // (trapped by MDCR_EL2: an exit), sets up its CPU interface and a vector table at
    // offset 0x800, and says it is ready with HVC #1, whose answer (x0) is a delay in
    // counter ticks: it arms its virtual timer that far ahead (none for 0) and waits in
    // WFI. Its IRQ entry (current EL, SP_ELx: +0x280) acknowledges, switches the timer
    // off (the timer's line is level-triggered), ends the interrupt, reports the INTID,
    // the virtual count and the timer's compare value with HVC #2, arms the timer again
    // with the delay the answer gives, and returns.
    core::arch::global_asm!(
        ".section .text.ktest_snippet, \"ax\"",
        ".global ktest_irq_guest_start",
        ".global ktest_irq_guest_end",
        ".p2align 12",
        "ktest_irq_guest_start:",
        "    mrs x0, pmcr_el0",
        "    bl 2f",
        "    adr x0, 3f",
        "    msr vbar_el1, x0",
        "    isb",
        "    hvc #1",
        "    bl 5f",
        "    msr daifclr, #2",
        "1:  wfi",
        "    b 1b",
        // Arm the timer x0 ticks from now (x0 = 0: leave it off).
        "5:  cbz x0, 51f",
        "    mrs x1, cntvct_el0",
        "    add x1, x1, x0",
        "    msr cntv_cval_el0, x1",
        "    mov x2, #1",
        "    msr cntv_ctl_el0, x2",
        "    isb",
        "51: ret",
        // Set up the CPU interface.
        "2:  cbz x20, 21f",
        "    mov w0, #0xff",
        "    str w0, [x20, #4]", // GICC_PMR
        "    mov w0, #1",
        "    str w0, [x20]", // GICC_CTLR.EnableGrp0
        "    ret",
        "21: mov x0, #7",
        "    msr icc_sre_el1, x0",
        "    isb",
        "    mov x0, #0xff",
        "    msr icc_pmr_el1, x0",
        "    mov x0, #1",
        "    msr icc_igrpen1_el1, x0",
        "    isb",
        "    ret",
        // Acknowledge: the INTID in x0, what to end with in x1.
        "4:  cbz x20, 41f",
        "    ldr w1, [x20, #0xc]", // GICC_IAR
        "    and x0, x1, #0x3ff",
        "    ret",
        "41: mrs x0, icc_iar1_el1",
        "    mov x1, x0",
        "    ret",
        // End the interrupt in x1.
        "6:  cbz x20, 61f",
        "    str w1, [x20, #0x10]", // GICC_EOIR
        "    ret",
        "61: msr icc_eoir1_el1, x1",
        "    ret",
        ".p2align 11",
        "3:  .skip 0x280",
        "    bl 4b",
        // The virtual count when it was taken and the timer's compare value, reported
        // (x1 holds what ends the interrupt).
        "    mrs x2, cntvct_el0",
        "    mrs x3, cntv_cval_el0",
        "    msr cntv_ctl_el0, xzr",
        "    isb",
        "    bl 6b",
        "    hvc #2",
        "    bl 5b",
        "    eret",
        ".p2align 7",
        "ktest_irq_guest_end:",
        ".text",
    );

    // A guest whose synchronous exception vector (current EL, SP_ELx: +0x200) reports
    // ESR_EL1, FAR_EL1 and ELR_EL1 by HVC #3; it loads from the unmapped device page.
    core::arch::global_asm!(
        ".section .text.ktest_snippet, \"ax\"",
        ".global ktest_raise_guest_start",
        ".global ktest_raise_guest_end",
        ".global ktest_raise_guest_hvc",
        ".p2align 12",
        "ktest_raise_guest_start:",
        "    adr x0, 3f",
        "    msr vbar_el1, x0",
        "    isb",
        "    movz x9, #0x900, lsl #16",
        "    ldr x0, [x9, #0x18]",
        "    b .",
        ".p2align 11",
        "3:  .skip 0x200",
        "    mrs x0, esr_el1",
        "    mrs x1, far_el1",
        "    mrs x2, elr_el1",
        "ktest_raise_guest_hvc:",
        "    hvc #3",
        "    b .",
        ".p2align 7",
        "ktest_raise_guest_end:",
        ".text",
    );

    unsafe extern "C" {
        pub static ktest_raise_guest_start: u8;
        pub static ktest_raise_guest_end: u8;
        pub static ktest_raise_guest_hvc: u8;
        pub static ktest_irq_guest_start: u8;
        pub static ktest_irq_guest_end: u8;
        pub static ktest_guest_start: u8;
        pub static ktest_guest_spin: u8;
        pub static ktest_guest_end: u8;
    }
}
use snippet::{
    ktest_guest_end, ktest_guest_spin, ktest_guest_start, ktest_irq_guest_end, ktest_irq_guest_start,
    ktest_raise_guest_end, ktest_raise_guest_hvc, ktest_raise_guest_start,
};

/// A guest thread at priority 200 whose code is the snippet at [`GUEST_CODE`] in a
/// VSpace of its own, started at `entry` (an offset into the snippet) with its VCpu
/// bound, faulting to `ep`. Returns the thread and its VCpu.
fn guest(env: &mut Env, ep: u64, entry: u64) -> Result<(Tcb, VCpu), crate::Fail> {
    let code = (
        (&raw const ktest_guest_start) as usize,
        (&raw const ktest_guest_end) as usize,
    );
    guest_with(env, ep, code, entry)
}

/// Where a guest's GICv2 CPU interface is (QEMU virt's GICC address).
const GUEST_GICC: u64 = 0x0801_0000;

/// On a GICv2 board whose virtual interface the kernel drives, map the GICV frames (a
/// copy of each boot capability) at [`GUEST_GICC`] in `vs` and return that address;
/// 0 elsewhere (GICv3 guests use system registers).
fn map_gicv(env: &mut Env, vs: VSpace) -> Result<u64, crate::Fail> {
    let frames = env.bi.vgic_cpu;
    if frames.start == frames.end {
        return Ok(0);
    }
    for (i, src) in (frames.start..frames.end).enumerate() {
        let copy = ok(env.slot(), "slot")?;
        ok(ROOT_CNODE.copy(copy, src, Rights::all()), "copy a GICV frame")?;
        let rw = Rights::READ | Rights::WRITE;
        let at = GUEST_GICC + 0x1000 * i as u64;
        ok(env.map_with(vs, Frame(copy), at, rw, true), "map the GICV frame")?;
    }
    Ok(GUEST_GICC)
}

/// [`guest`] with the code in `start..end` (at most a page); x20 is its GICv2 CPU
/// interface's address, or 0 with GICv3.
fn guest_with(env: &mut Env, ep: u64, (start, end): (usize, usize), entry: u64) -> Result<(Tcb, VCpu), crate::Fail> {
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    let gicc = map_gicv(env, vs)?;
    let code = ok(env.code_page(start, end), "code page")?;
    ok(
        env.map_in(vs, code, GUEST_CODE, Rights::READ | Rights::EXECUTE),
        "map the guest's code",
    )?;
    let t = Tcb(ok(env.alloc(ObjType::Tcb, 0), "tcb")?);
    ok(t.set_space(ROOT_CNODE, vs, ep), "space")?;
    let v = VCpu(ok(env.alloc(ObjType::VCpu, 0), "vcpu")?);
    ok(v.bind(t), "bind")?;
    ok(t.write_registers(REG_PC, &[GUEST_CODE + entry]), "pc")?;
    ok(t.write_registers(REG_X0 + 20, &[gicc]), "x20")?;
    ok(t.set_priority(200, ROOT_TCB), "priority")?;
    Ok((t, v))
}

/// The exit a message carries (words past four from the IPC buffer).
fn exit_of(m: &Msg) -> Option<Exit> {
    let mut w = [0u64; gaon_abi::vcpu::EXIT_MSG_MAX_LENGTH];
    for (i, x) in w.iter_mut().enumerate().take(m.info.length()) {
        *x = if i < 4 { m.mr[i] } else { ipc::get_mr(i) };
    }
    Exit::decode(m.info.label(), w)
}

fn exits(env: &mut Env) -> R {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let (t, _) = guest(env, ep, 0)?;
    ok(t.resume(), "resume")?;
    let done = |words: [u64; 4], n: usize| (MsgInfo::new(EXIT_REPLY_DONE, n, 0), words);

    // HVC #0x42 with x0 = 3, x1 = 4, x7 = 77: all eight registers and the immediate.
    let m = ipc::recv(ep, rp);
    let hvc = matches!(
        exit_of(&m),
        Some(Exit::Hvc {
            x0: 3,
            x1: 4,
            x7: 77,
            imm: 0x42,
            ..
        })
    );
    check(hvc, "HVC exit with x0..x7 and the immediate")?;
    let (info, w) = done([7, 0, 0, 0], 1);
    // A sign-extending halfword load into x5.
    let m = ipc::reply_recv(ep, rp, info, w);
    let load = MmioAccess {
        size_log2: 1,
        write: false,
        reg: 5,
        sign_extend: true,
        sixty_four: true,
    };
    let want = Exit::Mmio {
        ipa: GUEST_DEVICE + 0x10,
        access: load,
        value: 0,
        pc: GUEST_CODE + 6 * 4,
    };
    check(exit_of(&m) == Some(want), "MMIO load exit, decoded")?;
    let (info, w) = done([0x1_8001, 0, 0, 0], 1);
    // The store of w5 (the loaded value, sign-extended, cut to 32 bits).
    let m = ipc::reply_recv(ep, rp, info, w);
    let store = matches!(
        exit_of(&m),
        Some(Exit::Mmio { ipa, access, value: 0xffff_8001, .. })
            if ipa == GUEST_DEVICE + 4 && access.write && access.size_log2 == 2 && access.reg == 5
    );
    check(store, "MMIO store exit with the stored value")?;
    let (info, w) = done([0; 4], 0);
    // A store of wzr.
    let m = ipc::reply_recv(ep, rp, info, w);
    let zero = matches!(exit_of(&m), Some(Exit::Mmio { access, value: 0, .. }) if access.reg == 31 && access.write);
    check(zero, "MMIO store of the zero register")?;
    // A load pair: no valid syndrome, so the raw abort.
    let m = ipc::reply_recv(ep, rp, info, w);
    let raw = matches!(exit_of(&m), Some(Exit::Abort { ipa, .. }) if ipa == GUEST_DEVICE);
    check(raw, "an access the kernel cannot decode comes raw")?;
    // MRS x3, ACTLR_EL1 (trapped by HCR_EL2.TACR).
    let m = ipc::reply_recv(ep, rp, info, w);
    check(m.info.label() == ExitKind::Sysreg as u64, "system register exit")?;
    let read = matches!(exit_of(&m), Some(Exit::Sysreg { iss, .. }) if iss & 1 == 1 && (iss >> 5) & 31 == 3);
    check(read, "a read of x3")?;
    let (info, w) = done([0x55, 0, 0, 0], 1);
    // The guest reports what it got.
    let m = ipc::reply_recv(ep, rp, info, w);
    let report = exit_of(&m);
    ok(t.suspend(), "stop the guest")?;
    check(
        matches!(
            report,
            Some(Exit::Hvc {
                x0: 7,
                x1: 0xffff_ffff_ffff_8001,
                x2: 0x55,
                imm: 0x99,
                ..
            })
        ),
        "the guest saw the HVC's answer, the load (sized and extended) and the register",
    )
}

fn registers(env: &mut Env) -> R {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let (t, v) = guest(env, ep, 0)?;
    ok(v.write_regs(VCpuReg::TpidrEl1 as u64, &[0x7e57]), "write TPIDR_EL1")?;
    ok(t.resume(), "resume")?;
    // The guest ran (it exits at its first HVC) with the register loaded, and it reads
    // back the same once the guest's registers were saved from the CPU.
    let m = ipc::recv(ep, rp);
    check(m.info.label() == ExitKind::Hvc as u64, "first exit")?;
    let got = ok(v.read_regs(VCpuReg::TpidrEl1 as u64, 1), "read")?;
    ok(t.suspend(), "stop the guest")?;
    check(got[0] == 0x7e57, "TPIDR_EL1 kept")?;
    let sctlr = ok(v.read_regs(VCpuReg::SctlrEl1 as u64, 1), "read SCTLR")?;
    check(sctlr[0] & 1 == 0, "the guest's MMU is still off")
}

fn delete_running(env: &mut Env) -> R {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let spin = (&raw const ktest_guest_spin) as u64 - (&raw const ktest_guest_start) as u64;
    let (t, v) = guest(env, ep, spin)?;
    // At this thread's priority: on another core where there is one (deleted from here
    // while it runs there: a few yields here give it time to start), else it runs a time
    // slice when this thread yields (one: a slice is 50 ms, 50 million instructions
    // under QEMU's instruction-counting clock).
    ok(t.set_priority(255, ROOT_TCB), "priority")?;
    let elsewhere = env.bi.cpus & 0b10 != 0;
    if elsewhere {
        ok(t.set_affinity(1), "core 1")?;
    }
    let yields = if elsewhere { 100 } else { 1 };
    ok(t.resume(), "resume")?;
    for _ in 0..yields {
        yield_now();
    }
    ok(ROOT_CNODE.delete(v.0), "delete the VCpu")?;
    let (state, _, _) = ok(t.state(), "state")?;
    check(state == ThreadState::Inactive as u64, "the guest thread stopped")?;
    // A native thread now: resumed at the spin loop, it runs at EL0 unharmed.
    ok(t.resume(), "resume as a native thread")?;
    for _ in 0..yields {
        yield_now();
    }
    ok(ROOT_CNODE.delete(t.0), "delete it")
}

/// An endpoint and a reply object for the test as the VMM, and a guest of the code in
/// `code` faulting to the endpoint.
fn vmm_and_guest(env: &mut Env, code: (usize, usize)) -> Result<(u64, u64, Tcb, VCpu), crate::Fail> {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let (t, v) = guest_with(env, ep, code, 0)?;
    Ok((ep, rp, t, v))
}

/// [`vmm_and_guest`] with the interrupt-taking guest.
fn irq_guest(env: &mut Env) -> Result<(u64, u64, Tcb, VCpu), crate::Fail> {
    let code = (
        (&raw const ktest_irq_guest_start) as usize,
        (&raw const ktest_irq_guest_end) as usize,
    );
    vmm_and_guest(env, code)
}

fn inject(env: &mut Env) -> R {
    let (ep, rp, t, v) = irq_guest(env)?;
    match v.inject(1020, 0) {
        Err(libl4::Error::RangeError) => {}
        Err(libl4::Error::IllegalOperation) => {
            ok(ROOT_CNODE.delete(v.0), "delete the VCpu")?;
            return crate::skip("no virtual CPU interface the kernel drives");
        }
        _ => return check(false, "INTID 1020 is refused"),
    }
    ok(t.resume(), "resume")?;
    // Its set-up: any system register it may not touch is answered with 0, then it
    // says it is ready. Every answer has x0 = 0: the guest arms no timer.
    let mut m = ipc::recv(ep, rp);
    for _ in 0..8 {
        if m.info.label() != ExitKind::Sysreg as u64 {
            break;
        }
        m = ipc::reply_recv(ep, rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]);
    }
    check(
        matches!(exit_of(&m), Some(Exit::Hvc { imm: 1, .. })),
        "the guest is ready",
    )?;
    // SPI 40, while the guest waits in its exit: it takes it once it unmasks IRQs.
    ok(v.inject(40, 0x80), "inject")?;
    let first = answer(ep, rp, 0);
    // Back from its handler it waits in WFI, in the kernel: nothing is pending.
    ok(ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]), "answer")?;
    ok(crate::env::let_others_run(), "let it run")?;
    let (state, _, _) = ok(t.state(), "state")?;
    let waiting = state == ThreadState::WaitingForInterrupt as u64;
    let second = if waiting {
        // SPI 41 wakes it, and its handler takes it.
        ok(v.inject(41, 0x80), "inject again")?;
        exit_of(&ipc::recv(ep, rp))
    } else {
        None
    };
    // A level-triggered SPI 42: its handler ends it before it reports it, and the end
    // comes first, as an exit of its own.
    let (mut eoi, mut third) = (None, None);
    if second.is_some() {
        ok(ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]), "answer")?;
        ok(v.inject_level(42, 0x80), "inject a level-triggered SPI")?;
        eoi = exit_of(&ipc::recv(ep, rp));
        third = answer(ep, rp, 0);
    }
    ok(t.suspend(), "stop the guest")?;
    check(
        matches!(first, Some(Exit::Hvc { x0: 40, imm: 2, .. })),
        "the guest's IRQ handler acknowledged INTID 40",
    )?;
    check(waiting, "the guest waits in WFI in the kernel")?;
    check(
        matches!(second, Some(Exit::Hvc { x0: 41, imm: 2, .. })),
        "an interrupt injected while it waits wakes it",
    )?;
    check(
        eoi == Some(Exit::Eoi { intid: 42 }),
        "the end of a level-triggered interrupt is an exit",
    )?;
    check(
        matches!(third, Some(Exit::Hvc { x0: 42, imm: 2, .. })),
        "the guest goes on after its end is answered",
    )
}

/// The virtual timer's INTID (the board's `timer.guest_irq` on virt and zcu102).
const VTIMER: u64 = 27;

/// Answer the guest's exit with x0 = `x0`, and receive its next exit.
fn answer(ep: u64, rp: u64, x0: u64) -> Option<Exit> {
    exit_of(&ipc::reply_recv(
        ep,
        rp,
        MsgInfo::new(EXIT_REPLY_DONE, 1, 0),
        [x0, 0, 0, 0],
    ))
}

/// Wait (yielding) until the counter passes `ticks` from now.
fn wait_ticks(ticks: u64) -> R {
    let until = counter() + ticks;
    while counter() < until {
        ok(crate::env::let_others_run(), "let others run")?;
    }
    Ok(())
}

fn vtimer(env: &mut Env) -> R {
    let (ep, rp, t, v) = irq_guest(env)?;
    match v.set_vppi(VTIMER + 1, true, 0xa0) {
        Err(libl4::Error::RangeError) => {}
        Err(libl4::Error::IllegalOperation) => {
            ok(ROOT_CNODE.delete(v.0), "delete the VCpu")?;
            return crate::skip("guests have no virtual timer on this board");
        }
        _ => return check(false, "only the virtual timer's PPI is the kernel's"),
    }
    if v.inject(1020, 0) == Err(libl4::Error::IllegalOperation) {
        ok(ROOT_CNODE.delete(v.0), "delete the VCpu")?;
        return crate::skip("no virtual CPU interface the kernel drives");
    }
    err(v.set_vppi(VTIMER, true, 256), libl4::Error::RangeError, "priority 256")?;
    err(v.ack_vppi(VTIMER - 1), libl4::Error::RangeError, "ack of another PPI")?;
    // Its virtual counter far from the physical one (as a VMM sets it: from 0 at boot),
    // so a timer compared against the wrong count fires at the wrong time.
    let offset = counter() - us_to_ticks(1);
    ok(v.write_regs(VCpuReg::Cntvoff as u64, &[offset]), "counter offset")?;
    ok(t.resume(), "resume")?;
    // MRS PMCR_EL0 (op0 3, op1 3, CRn 9, CRm 12, op2 0), trapped: the PMU is not the
    // guest's (nor, through it, anybody else's).
    let m = ipc::recv(ep, rp);
    let pmu = matches!(exit_of(&m), Some(Exit::Sysreg { iss, .. }) if (iss >> 10) & 0xf == 9 && (iss >> 1) & 0xf == 12);
    check(pmu, "a PMU register read is a system register exit")?;
    let ready = answer(ep, rp, 0);
    check(matches!(ready, Some(Exit::Hvc { imm: 1, .. })), "the guest is ready")?;
    // 1. Armed 100 us ahead, it waits in WFI with its state in the CPU while this native
    // thread runs there (with the native counter offset, 0): the hardware timer's line,
    // the kernel's, raises INTID 27 in it when its own count reaches the compare value.
    ok(
        ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [us_to_ticks(100), 0, 0, 0]),
        "answer",
    )?;
    wait_ticks(us_to_ticks(20))?;
    let fired = exit_of(&ipc::recv(ep, rp));
    check(
        matches!(fired, Some(Exit::Hvc { x0: VTIMER, imm: 2, .. })),
        "the timer fired into the waiting guest",
    )?;
    check(
        matches!(fired, Some(Exit::Hvc { x2, x3, .. }) if x2 >= x3),
        "not before its compare value in the guest's count",
    )?;
    check(
        matches!(fired, Some(Exit::Hvc { x2, x3, .. }) if x2 < x3 + us_to_ticks(5000)),
        "taken within 5 ms of its compare value (the woken guest outranks the native thread)",
    )?;
    // 2. Armed 2 ms ahead, its state taken out of the CPU while it waits (a register
    // read saves it): the kernel keeps the timer and wakes it. The line was unmasked at
    // the guest's end of interrupt, or round 3 could not fire.
    ok(
        ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [us_to_ticks(2000), 0, 0, 0]),
        "answer",
    )?;
    ok(crate::env::let_others_run(), "let it run")?;
    let (state, _, _) = ok(t.state(), "state")?;
    let ctl = ok(v.read_regs(VCpuReg::CntvCtlEl0 as u64, 1), "read CNTV_CTL")?[0];
    check(
        state == ThreadState::WaitingForInterrupt as u64,
        "the guest waits in WFI",
    )?;
    check(ctl & 1 == 1, "its timer is armed (CNTV_CTL_EL0.ENABLE read back)")?;
    let saved = exit_of(&ipc::recv(ep, rp));
    check(
        matches!(saved, Some(Exit::Hvc { x0: VTIMER, imm: 2, .. })),
        "the kernel woke the saved guest when its timer came",
    )?;
    // 3. With the virtual PPI disabled (its VMM says so), the timer's interrupt waits
    // until it is enabled again.
    ok(v.set_vppi(VTIMER, false, 0x90), "disable the PPI")?;
    ok(
        ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [us_to_ticks(100), 0, 0, 0]),
        "answer",
    )?;
    wait_ticks(us_to_ticks(1000))?;
    let (state, _, _) = ok(t.state(), "state")?;
    ok(v.set_vppi(VTIMER, true, 0x90), "enable the PPI")?;
    let late = exit_of(&ipc::recv(ep, rp));
    ok(t.suspend(), "stop the guest")?;
    check(
        state == ThreadState::WaitingForInterrupt as u64,
        "a disabled timer PPI leaves the guest waiting",
    )?;
    check(
        matches!(late, Some(Exit::Hvc { x0: VTIMER, imm: 2, .. })),
        "enabling it raises the interrupt that came",
    )
}

fn raise(env: &mut Env) -> R {
    let code = (
        (&raw const ktest_raise_guest_start) as usize,
        (&raw const ktest_raise_guest_end) as usize,
    );
    let (ep, rp, t, _) = vmm_and_guest(env, code)?;
    ok(t.resume(), "resume")?;
    // The load from the unmapped page (its MMU is off: virtual = guest-physical).
    let m = ipc::recv(ep, rp);
    let load_pc = match exit_of(&m) {
        Some(Exit::Mmio { ipa, pc, .. }) if ipa == GUEST_DEVICE + 0x18 => pc,
        _ => return check(false, "the load is an MMIO exit"),
    };
    // "Nothing there": the guest takes a synchronous external abort at the load.
    let abort = MsgInfo::new(EXIT_REPLY_ABORT, 0, 0);
    let m = ipc::reply_recv(ep, rp, abort, [0; 4]);
    let first = exit_of(&m);
    // Its report, an HVC, answered "undefined": it takes that at the HVC.
    let undef = MsgInfo::new(EXIT_REPLY_UNDEF, 0, 0);
    let m = ipc::reply_recv(ep, rp, undef, [0; 4]);
    let second = exit_of(&m);
    ok(t.suspend(), "stop the guest")?;
    let hvc = GUEST_CODE + (&raw const ktest_raise_guest_hvc) as u64 - code.0 as u64;
    let Some(Exit::Hvc { x0, x1, x2, .. }) = first else {
        return check(false, "the guest's vector reports the abort");
    };
    check(
        x0 == 0x25 << 26 | 1 << 25 | 0x10 && x1 == GUEST_DEVICE + 0x18 && x2 == load_pc,
        "a data abort from EL1 (external, DFSC 0x10) at the load's address and PC",
    )?;
    check(
        matches!(second, Some(Exit::Hvc { x0: 0x200_0000, x2, .. }) if x2 == hvc),
        "an Undefined Instruction exception at the HVC",
    )
}
