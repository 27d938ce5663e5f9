//! Virtual machine cases (`docs/vmm.md`): a guest at EL1 in a VSpace of its own, this
//! thread as its VMM (the guest's exits are calls to an endpoint it serves), as a
//! user-level VMM does it. The guest is a page of code (`bench_guest`, below) with one
//! entry per case.
//!
//! - `vm_hvc_rt`: a null HVC to the VMM and back (the guest loops on `hvc #0`);
//! - `vm_mmio_rt`: an MMIO load the VMM emulates (the guest loops on a load from an
//!   unmapped page);
//! - `vm_irq_inject`: from the VMM's `VCpuInjectIrq` to the guest's handler (which
//!   reports by HVC), the guest runnable below the VMM's priority;
//! - `vm_wfi_wake`: the same with the guest waiting in WFI (in the kernel), above it;
//! - `vm_vtimer`: from the guest's virtual timer's deadline to its handler, the timer
//!   firing while the guest waits in WFI with its state out of the CPU (the kernel's
//!   guest timer list wakes it); measured by the guest's own counter.
//!
//! The interrupt cases need a GICv3 CPU interface (the guest's is by system register);
//! on GICv2 they fail with a reason.

use gaon_abi::MsgInfo;
use gaon_abi::invocation::{REG_PC, REG_X0};
use gaon_abi::vcpu::{EXIT_REPLY_DONE, VCpuReg};
use libl4::cap::{Frame, Tcb, VCpu, VSpace};
use libl4::ipc::{self, CPtr, Msg};
use libl4::{ObjType, Rights};

use crate::common::now;
use crate::env::{Env, Fail, ROOT_CNODE, ok};
use crate::{Runner, Unit};

/// Where the guest's code is, guest-physical (its MMU is off).
const GUEST_CODE: u64 = 0x1000;
/// An unmapped guest-physical page its MMIO case loads from.
const GUEST_DEVICE: u64 = 0x900_0000;
/// The SPI the interrupt cases inject.
const SPI: u64 = 40;

#[allow(unsafe_code, reason = "the snippet is code for a guest")]
mod snippet {
    // Entries: +0x0 loops on HVC #0; +0x8 loops on a load from [x9]; +0x10 sets up the
    // GICv3 CPU interface and its vectors, says it is ready (HVC #1) and then, by x20:
    // 0 spins with IRQs unmasked, 1 waits in WFI with IRQs unmasked, 2 arms its virtual
    // timer x0 ticks ahead (the HVC's answer) and waits in WFI. Its IRQ entry
    // acknowledges, ends the interrupt, switches the timer off, and reports by HVC #2
    // with x2 = its virtual count and x3 = the timer's compare value; in mode 2 it then
    // arms the timer again with the answer's delay.
    core::arch::global_asm!(
        ".section .text.bench_guest, \"ax\"",
        ".global bench_guest_start",
        ".global bench_guest_end",
        ".p2align 12",
        "bench_guest_start:",
        "0:  hvc #0",
        "    b 0b",
        "1:  ldr w0, [x9]",
        "    b 1b",
        "    mov x0, #7",
        "    msr icc_sre_el1, x0",
        "    isb",
        "    adr x0, 3f",
        "    msr vbar_el1, x0",
        "    mov x0, #0xff",
        "    msr icc_pmr_el1, x0",
        "    mov x0, #1",
        "    msr icc_igrpen1_el1, x0",
        "    isb",
        "    hvc #1",
        "    bl 5f",
        "    msr daifclr, #2",
        "    cbz x20, 4f",
        "2:  wfi",
        "    b 2b",
        "4:  b 4b",
        // Mode 2: arm the timer x0 ticks ahead.
        "5:  cmp x20, #2",
        "    b.ne 6f",
        "    mrs x1, cntvct_el0",
        "    add x1, x1, x0",
        "    msr cntv_cval_el0, x1",
        "    mov x1, #1",
        "    msr cntv_ctl_el0, x1",
        "    isb",
        "6:  ret",
        ".p2align 11",
        "3:  .skip 0x280",
        "    mrs x1, icc_iar1_el1",
        "    mrs x2, cntvct_el0",
        "    mrs x3, cntv_cval_el0",
        "    msr cntv_ctl_el0, xzr",
        "    isb",
        "    msr icc_eoir1_el1, x1",
        "    mov x0, x1",
        "    hvc #2",
        "    bl 5b",
        "    eret",
        ".p2align 7",
        "bench_guest_end:",
        ".text",
    );

    unsafe extern "C" {
        pub static bench_guest_start: u8;
        pub static bench_guest_end: u8;
    }
}

/// The guest snippet's bytes.
fn code() -> &'static [u8] {
    let (start, end) = (
        (&raw const snippet::bench_guest_start) as usize,
        (&raw const snippet::bench_guest_end) as usize,
    );
    #[allow(unsafe_code)]
    // SAFETY: the snippet's bytes are in this program's text, mapped read-only for good.
    unsafe {
        core::slice::from_raw_parts(start as *const u8, end - start)
    }
}

/// A guest running the snippet from `entry` with x20 = `mode`, at `prio`, faulting to
/// `ep` (this thread serves it), on this thread's core.
fn guest(env: &mut Env, ep: CPtr, entry: u64, mode: u64, prio: u64) -> Result<(Tcb, VCpu), Fail> {
    let vs = VSpace(ok(env.a.alloc(ObjType::VSpace, 0), "guest VSpace")?);
    let frame = Frame(ok(env.a.alloc(ObjType::Frame, 12), "guest code")?);
    ok(env.a.write_frame(frame, 0, code()), "copy the guest's code")?;
    ok(
        env.a.map(vs, frame, GUEST_CODE, Rights::READ | Rights::EXECUTE, false),
        "map the guest's code",
    )?;
    let t = Tcb(ok(env.a.alloc(ObjType::Tcb, 0), "guest thread")?);
    ok(t.set_space(ROOT_CNODE, vs, ep), "guest space")?;
    let v = VCpu(ok(env.a.alloc(ObjType::VCpu, 0), "VCpu")?);
    ok(v.bind(t), "bind")?;
    ok(t.write_registers(REG_PC, &[GUEST_CODE + entry]), "pc")?;
    ok(t.write_registers(REG_X0 + 9, &[GUEST_DEVICE]), "x9")?;
    ok(t.write_registers(REG_X0 + 20, &[mode]), "x20")?;
    ok(t.set_priority(prio, crate::env::ROOT_TCB), "priority")?;
    ok(t.resume(), "resume")?;
    Ok((t, v))
}

/// Answer an exit with x0 = `x0`.
fn answer(ep: CPtr, rp: CPtr, x0: u64) -> Msg {
    ipc::reply_recv(ep, rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [x0, 0, 0, 0])
}

/// Stop and delete a case's guest.
fn done(t: Tcb, v: VCpu) {
    let _ = t.suspend();
    let _ = ROOT_CNODE.delete(v.0);
    let _ = ROOT_CNODE.delete(t.0);
}

/// Every VM case.
pub fn cases(r: &mut Runner, env: &mut Env, prio: u64) -> Result<(), Fail> {
    let (ep, rp) = (env.endpoint()?, env.reply()?);
    let above = prio + 50;

    let (t, v) = guest(env, ep, 0x0, 0, above)?;
    let mut m = ipc::recv(ep, rp);
    r.run(env, "vm_hvc_rt", Unit::Instructions, 500, |_, n| {
        let t0 = now();
        for _ in 0..n {
            m = answer(ep, rp, 0);
        }
        if m.info.label() != gaon_abi::vcpu::ExitKind::Hvc as u64 {
            return Err("the guest's exit is no HVC");
        }
        Ok(now() - t0)
    });
    done(t, v);

    let (t, v) = guest(env, ep, 0x8, 0, above)?;
    let mut m = ipc::recv(ep, rp);
    r.run(env, "vm_mmio_rt", Unit::Instructions, 500, |_, n| {
        let t0 = now();
        for _ in 0..n {
            m = answer(ep, rp, 0x55);
        }
        if m.info.label() != gaon_abi::vcpu::ExitKind::Mmio as u64 {
            return Err("the guest's exit is no MMIO");
        }
        Ok(now() - t0)
    });
    done(t, v);

    if v.inject(1020, 0) == Err(libl4::Error::IllegalOperation) {
        return Err("no virtual CPU interface the kernel drives");
    }
    irq_cases(r, env, ep, rp, prio)
}

/// Start the interrupt guest in `mode` and answer its set-up (system register traps
/// read as zero) until it says it is ready.
fn irq_guest(env: &mut Env, ep: CPtr, rp: CPtr, mode: u64, prio: u64) -> Result<(Tcb, VCpu, Msg), Fail> {
    if env.gicv2 {
        return Err("the guest's GIC CPU interface is GICv3's system registers: not on this board");
    }
    let (t, v) = guest(env, ep, 0x10, mode, prio)?;
    let m = ipc::recv(ep, rp);
    if m.info.label() != gaon_abi::vcpu::ExitKind::Hvc as u64 {
        done(t, v);
        return Err("the interrupt guest did not get ready");
    }
    Ok((t, v, m))
}

/// Time `n` injects of the SPI into `v`'s guest, each to the guest's report of it.
fn inject_loop(v: VCpu, ep: CPtr, rp: CPtr, n: u64) -> Result<u64, Fail> {
    let mut total = 0;
    for _ in 0..n {
        let t0 = now();
        ok(v.inject(SPI, 0x80), "inject")?;
        let m = ipc::recv(ep, rp);
        total += now() - t0;
        if m.mr[0] != SPI {
            return Err("the guest took another interrupt");
        }
        ok(ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]), "answer")?;
    }
    Ok(total)
}

fn irq_cases(r: &mut Runner, env: &mut Env, ep: CPtr, rp: CPtr, prio: u64) -> Result<(), Fail> {
    // The guest spins below this thread: an inject, then this thread waits, the guest
    // runs and takes it.
    let (t, v, _) = irq_guest(env, ep, rp, 0, prio - 50)?;
    ok(ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]), "start")?;
    r.run(env, "vm_irq_inject", Unit::Instructions, 200, |_, n| {
        inject_loop(v, ep, rp, n)
    });
    done(t, v);

    // The guest waits in WFI above this thread: the inject wakes it at once.
    let (t, v, _) = irq_guest(env, ep, rp, 1, prio + 50)?;
    ok(ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [0; 4]), "start")?;
    r.run(env, "vm_wfi_wake", Unit::Instructions, 200, |_, n| {
        inject_loop(v, ep, rp, n)
    });
    done(t, v);

    // The guest arms its timer and waits in WFI; this thread takes its state out of the
    // CPU (a register read), so the kernel's guest timer list fires it. The guest's
    // count at its handler less the compare value is the latency.
    let delay = libl4::time::us_to_ticks(200);
    let (t, v, _) = irq_guest(env, ep, rp, 2, prio + 50)?;
    ok(
        ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [delay, 0, 0, 0]),
        "start",
    )?;
    r.run(env, "vm_vtimer", Unit::Instructions, 20, |_, n| {
        let mut total = 0;
        for _ in 0..n {
            ok(v.read_regs(VCpuReg::CntvCtlEl0 as u64, 1), "take the guest's state out")?;
            let m = ipc::recv(ep, rp);
            let (x0, count, cval) = (m.mr[0], m.mr[2], m.mr[3]);
            if x0 != 27 || count < cval {
                return Err("the guest's timer came wrong (another INTID, or early)");
            }
            total += count - cval;
            ok(
                ipc::send(rp, MsgInfo::new(EXIT_REPLY_DONE, 1, 0), [delay, 0, 0, 0]),
                "answer",
            )?;
        }
        Ok(total)
    });
    done(t, v);
    Ok(())
}
