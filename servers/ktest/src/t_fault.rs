//! Faults and robustness: every kind of fault reaches the handler with the right
//! message, a reply resumes the thread, a thread without a handler is stopped, and a
//! thread that throws garbage at the kernel leaves the system running.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::invocation::ThreadState;
use libl4::cap::{CNode, Tcb, VSpace};
use libl4::ipc::{self, CPtr, Msg, MsgInfo};
use libl4::syscall::{Regs, ipc_syscall, yield_now};
use libl4::{Error, Fault, Label, ObjType, Rights, Syscall};

use crate::env::{Env, ROOT_CNODE, ROOT_VSPACE};
use crate::t_tcb::park;
use crate::{R, check, err, ok};

crate::tests![
    "reading unmapped memory is a VM fault" => vm_read,
    "writing a read-only page is a VM fault" => vm_write_ro,
    "jumping to unmapped memory is an instruction fault" => vm_exec,
    "an undefined instruction is a user exception" => undefined,
    "a BRK is a user exception" => brk,
    "an unknown syscall goes to the fault handler" => unknown_syscall,
    "the fault handler's reply resumes the thread at a new PC" => resume_after_fault,
    "the fault endpoint's badge identifies the thread" => fault_badge,
    "a fault with no handler stops only that thread" => no_handler,
    "deleting the fault endpoint leaves the faulting thread stopped" => handler_deleted,
    "a thread in another address space can fault" => foreign_fault,
    "a user exception carries no fault address left by another thread" => no_stale_far,
    "EL0 cannot program the virtual timer" => vtimer_closed,
    "random syscalls and invocations from a thread harm nothing" => fuzz,
];

static DONE: AtomicU64 = AtomicU64::new(0);

extern "C" fn read_unmapped(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately faults; the address is not mapped in this address space.
    let _ = unsafe { core::ptr::read_volatile(0x30_0000_0000 as *const u64) };
    park()
}
extern "C" fn write_ro(va: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately faults; the page is mapped read-only.
    unsafe {
        core::ptr::write_volatile(va as *mut u64, 1);
    };
    park()
}
extern "C" fn jump_unmapped(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately faults on instruction fetch.
    unsafe {
        core::arch::asm!("br {}", in(reg) 0x31_0000_0000u64, options(noreturn));
    }
}
extern "C" fn undefined_insn(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately raises an undefined-instruction exception.
    unsafe {
        core::arch::asm!("udf #0", options(noreturn));
    }
}
extern "C" fn brk_insn(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately raises a breakpoint exception.
    unsafe {
        core::arch::asm!("brk #7", options(noreturn));
    }
}
extern "C" fn bad_syscall(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: an unknown syscall number; the kernel turns it into a fault message.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") 0x77u64 => _, in("x7") 0x9999u64, options(nostack));
    }
    park()
}
extern "C" fn write_vtimer(_: u64) -> ! {
    #[allow(unsafe_code)]
    // SAFETY: deliberately traps: EL0 has no access to the EL1 virtual timer.
    unsafe {
        // If the write does not trap, the `udf` reports that (EC 0) instead of a hang.
        core::arch::asm!("msr cntv_ctl_el0, xzr", "udf #0", options(nostack, noreturn));
    }
}
extern "C" fn resumed() -> ! {
    DONE.store(1, Ordering::SeqCst);
    park()
}

struct Faulter {
    tcb: Tcb,
    ep: CPtr,
    reply: CPtr,
}

fn faulter(env: &mut Env, entry: extern "C" fn(u64) -> !, arg: u64, badge: u64) -> Result<Faulter, crate::Fail> {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let reply = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let fault_cap = if badge == 0 {
        ep
    } else {
        let s = ok(env.slot(), "slot")?;
        ok(ROOT_CNODE.mint(s, ep, Rights::all(), badge), "badged fault endpoint")?;
        s
    };
    let tcb = ok(env.spawn(entry, arg, 100, fault_cap), "spawn")?;
    Ok(Faulter { tcb, ep, reply })
}

fn receive_fault(f: &Faulter) -> Msg {
    ipc::recv(f.ep, f.reply)
}

/// The fault a message carries (`None`: not a fault message).
fn fault_of(m: &Msg) -> Option<Fault> {
    if m.info.length() != gaon_abi::fault::FAULT_MSG_LENGTH {
        return None;
    }
    Fault::decode(m.info.label(), m.mr)
}

fn vm_read(env: &mut Env) -> R {
    let f = faulter(env, read_unmapped, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    let Some(Fault::VmFault {
        addr, instruction, esr, ..
    }) = fault_of(&m)
    else {
        return check(false, "VM fault");
    };
    check(addr == 0x30_0000_0000 && !instruction, "address, data access")?;
    check(esr >> 26 == 0x24, "ESR says data abort from EL0")
}
fn vm_write_ro(env: &mut Env) -> R {
    let fr = libl4::cap::Frame(ok(env.alloc(ObjType::Frame, 12), "frame")?);
    let va = env.va(1);
    ok(env.map_in(ROOT_VSPACE, fr, va, Rights::READ), "read-only page")?;
    let f = faulter(env, write_ro, va, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    check(
        matches!(fault_of(&m), Some(Fault::VmFault { addr, .. }) if addr == va),
        "write fault at the page",
    )
}
fn vm_exec(env: &mut Env) -> R {
    let f = faulter(env, jump_unmapped, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    let Some(Fault::VmFault { pc, instruction, .. }) = fault_of(&m) else {
        return check(false, "VM fault");
    };
    check(pc == 0x31_0000_0000 && instruction, "instruction fetch at the target")
}
fn undefined(env: &mut Env) -> R {
    let f = faulter(env, undefined_insn, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    check(
        matches!(fault_of(&m), Some(Fault::UserException { esr, .. }) if esr >> 26 == 0),
        "EC 0 (unknown)",
    )
}
fn brk(env: &mut Env) -> R {
    let f = faulter(env, brk_insn, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    check(
        matches!(fault_of(&m), Some(Fault::UserException { esr, .. }) if esr >> 26 == 0x3c),
        "EC 0x3c (BRK)",
    )
}
fn unknown_syscall(env: &mut Env) -> R {
    let f = faulter(env, bad_syscall, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    let Some(Fault::UnknownSyscall { number, x0, .. }) = fault_of(&m) else {
        return check(false, "unknown-syscall fault");
    };
    check(number == 0x9999 && x0 == 0x77, "number and x0")
}
fn resume_after_fault(env: &mut Env) -> R {
    DONE.store(0, Ordering::SeqCst);
    let f = faulter(env, read_unmapped, 0, 0)?;
    let _ = receive_fault(&f);
    ok(
        ipc::send(f.reply, MsgInfo::new(0, 1, 0), [resumed as *const () as u64, 0, 0, 0]),
        "reply",
    )?;
    ok(crate::env::let_others_run(), "let the resumed thread run")?;
    ok(f.tcb.suspend(), "stop")?;
    check(DONE.load(Ordering::SeqCst) == 1, "thread resumed at the new PC")
}
fn fault_badge(env: &mut Env) -> R {
    let f = faulter(env, read_unmapped, 0, 0xfa)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    check(m.badge == 0xfa, "badge")
}
fn no_handler(env: &mut Env) -> R {
    let t = ok(env.spawn(read_unmapped, 0, 255, 0), "spawn")?;
    yield_now();
    let (state, _, _) = ok(t.state(), "state")?;
    check(state == ThreadState::Inactive as u64, "stopped")
}
fn handler_deleted(env: &mut Env) -> R {
    let f = faulter(env, read_unmapped, 0, 0)?;
    // Let it fault and block on the endpoint (no receiver yet).
    ok(crate::env::let_others_run(), "let it fault")?;
    // The thread's own copy of the cap keeps the endpoint alive: revoke it, then
    // delete the original, the last cap.
    ok(ROOT_CNODE.revoke(f.ep), "revoke the thread's copy")?;
    ok(ROOT_CNODE.delete(f.ep), "delete the fault endpoint")?;
    let (state, _, _) = ok(f.tcb.state(), "state")?;
    check(state == ThreadState::Inactive as u64, "faulting thread stopped")
}
fn foreign_fault(env: &mut Env) -> R {
    let vs = VSpace(ok(env.alloc(ObjType::VSpace, 0), "vspace")?);
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    let t = Tcb(ok(env.alloc(ObjType::Tcb, 0), "tcb")?);
    ok(t.set_space(ROOT_CNODE, vs, ep), "space with nothing mapped")?;
    ok(t.write_registers(0, &[0x4000, 0]), "pc")?;
    ok(t.set_priority(100, crate::env::ROOT_TCB), "prio")?;
    ok(t.resume(), "resume")?;
    let m = ipc::recv(ep, rp);
    ok(t.suspend(), "stop")?;
    check(
        matches!(
            fault_of(&m),
            Some(Fault::VmFault {
                pc: 0x4000,
                instruction: true,
                ..
            })
        ),
        "fetch fault at 0x4000",
    )
}

/// A VM fault sets FAR_EL2; an undefined instruction right after, in another thread,
/// must not report that address (FAR is UNKNOWN for it, in practice the old value).
fn no_stale_far(env: &mut Env) -> R {
    let a = faulter(env, read_unmapped, 0, 0)?;
    let m = receive_fault(&a);
    ok(a.tcb.suspend(), "stop the first")?;
    check(
        matches!(
            fault_of(&m),
            Some(Fault::VmFault {
                addr: 0x30_0000_0000,
                ..
            })
        ),
        "the first fault's address",
    )?;
    let b = faulter(env, undefined_insn, 0, 0)?;
    let m = receive_fault(&b);
    ok(b.tcb.suspend(), "stop the second")?;
    let Some(Fault::UserException { far, .. }) = fault_of(&m) else {
        return check(false, "user exception");
    };
    check(far == 0, "no fault address for an undefined instruction")
}
/// CNTKCTL_EL1.EL0VTEN is clear: a write to the virtual timer traps (EC 0x18).
fn vtimer_closed(env: &mut Env) -> R {
    let f = faulter(env, write_vtimer, 0, 0)?;
    let m = receive_fault(&f);
    ok(f.tcb.suspend(), "stop")?;
    check(
        matches!(fault_of(&m), Some(Fault::UserException { esr, .. }) if esr >> 26 == 0x18),
        "EC 0x18 (trapped system register access)",
    )
}

/// A xorshift generator: deterministic garbage.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

const FUZZ_CALLS: u64 = 3000;

/// Throws random syscalls at the kernel from a CSpace of its own.
extern "C" fn fuzzer(seed: u64) -> ! {
    let mut s = seed | 1;
    let numbers = [1u64, 2, 3, 4, 6, 0x102, 0x103, 0x104, 0x200, 7, 0x1ff, 0xdead];
    let labels = Label::ALL;
    for _ in 0..FUZZ_CALLS {
        let mut r = Regs([0; 7]);
        let small = |s: &mut u64| next(s) % 24;
        let word = |s: &mut u64| match next(s) % 4 {
            0 => next(s),
            1 => next(s) % 16,
            2 => next(s) % 0x1_0000,
            _ => ((next(s) % 24) << 8) | (next(s) % 13),
        };
        r.0[0] = if next(&mut s).is_multiple_of(8) {
            next(&mut s)
        } else {
            small(&mut s)
        };
        let label = labels[(next(&mut s) % labels.len() as u64) as usize] as u64;
        let len = next(&mut s) % 8;
        r.0[1] = if next(&mut s).is_multiple_of(16) {
            next(&mut s)
        } else {
            (label << 16) | len
        };
        for i in 2..6 {
            r.0[i] = word(&mut s);
        }
        r.0[6] = small(&mut s);
        let n = numbers[(next(&mut s) % numbers.len() as u64) as usize];
        match Syscall::from_raw(n) {
            Some(sys) => ipc_syscall(sys, &mut r),
            None => {
                #[allow(unsafe_code)]
                // SAFETY: an unknown syscall: the kernel returns an error in x0/x1.
                unsafe {
                    core::arch::asm!("svc #0", inlateout("x0") r.0[0] => _, lateout("x1") _, in("x7") n, options(nostack));
                }
            }
        }
    }
    DONE.store(2, Ordering::SeqCst);
    park()
}

fn fuzz(env: &mut Env) -> R {
    // The fuzzer's CSpace: a CNode of 16 slots holding a sample of every object type
    // except endpoints (a call on one would wait forever) and itself.
    let cn = ok(env.alloc(ObjType::CNode, 4), "cnode")?;
    let guarded = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(guarded, cn, Rights::all(), 60 << 56), "guarded")?;
    let objects: [(ObjType, u8); 9] = [
        (ObjType::Untyped, 16),
        (ObjType::Notification, 0),
        (ObjType::Frame, 12),
        (ObjType::Frame, 12),
        (ObjType::PageTable, 0),
        (ObjType::VSpace, 0),
        (ObjType::Reply, 0),
        (ObjType::Tcb, 0),
        (ObjType::SchedContext, 0),
    ];
    for (i, (ty, bits)) in objects.iter().enumerate() {
        let s = ok(env.alloc(*ty, *bits), "object")?;
        ok(CNode(cn).move_(i as u64 + 1, s), "into the fuzz CSpace")?;
    }
    ok(CNode(cn).copy(10, guarded, Rights::all()), "its own CNode")?;
    DONE.store(0, Ordering::SeqCst);
    let t = ok(
        env.thread(crate::env::entry(fuzzer), 0x9e37_79b9_7f4a_7c15, 255, 0),
        "thread",
    )?;
    ok(t.set_space(CNode(guarded), ROOT_VSPACE, 0), "its CSpace")?;
    ok(t.resume(), "resume")?;
    for _ in 0..100_000 {
        if DONE.load(Ordering::SeqCst) == 2 {
            break;
        }
        yield_now();
        let (state, _, _) = ok(t.state(), "state")?;
        if state != ThreadState::Running as u64 {
            // It blocked or stopped itself (a suspend of its own Tcb is not in its
            // CSpace, so this means a wait): wake it and go on.
            ok(t.suspend(), "suspend")?;
            ok(t.resume(), "resume")?;
        }
    }
    ok(t.suspend(), "stop")?;
    check(DONE.load(Ordering::SeqCst) == 2, "all calls made")?;
    // The kernel still works.
    let n = ok(env.alloc(ObjType::Notification, 0), "allocation after the fuzz")?;
    let b = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(b, n, Rights::all(), 1), "badge")?;
    ok(ipc::signal(b), "signal")?;
    check(ok(ipc::poll(n), "poll")? == 1, "poll")?;
    err(ipc::poll(n), Error::WouldBlock, "poll again")?;
    // And its structures are consistent.
    let r = ok(libl4::syscall::debug_check_consistency(true), "consistency check")?;
    check(
        r.problems == 0,
        "the consistency check finds nothing wrong after the fuzz",
    )
}
