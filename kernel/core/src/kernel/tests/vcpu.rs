//! VCpus: binding, the guest's PSTATE, exits as messages and the replies that resume
//! the guest, and deleting either side.

use gaon_abi::bootinfo::slot as rs;
use gaon_abi::invocation::REG_SPSR;
use gaon_abi::vcpu::{
    EXIT_REPLY_ABORT, EXIT_REPLY_RETRY, EXIT_REPLY_UNDEF, Exit, ExitKind, GUEST_RESET_PSTATE, INJECT_LEVEL, MmioAccess,
    VCpuReg,
};
use gaon_abi::{Error, Label, MsgInfo, ObjType, Syscall};

use super::{Alloc, Model, boot, fire_timer, invoke, root_slot, sys};
use crate::kernel::entry::Exception;
use crate::kernel::object::vcpu::VIrq;
use crate::kernel::{Kernel, Lazy};
use crate::obj::Ptr;
use crate::tcb::{Tcb, ThreadState};

/// A guest's WFI, as the CPU reports it (EC 0x01, IL).
const WFI: Exception = Exception::User {
    esr: 0x01 << 26 | 1 << 25,
    far: 0,
};

/// A guest's `hvc #imm` (EC 0x16, IL).
const fn hvc_trap(imm: u64) -> Exception {
    Exception::User {
        esr: 0x16 << 26 | 1 << 25 | imm,
        far: 0,
    }
}

/// A guest thread at priority 200 with the root's endpoint `ep` as its fault endpoint,
/// its VCpu bound; returns (Tcb cptr, thread, VCpu cptr).
fn guest(k: &mut Kernel<Model>, a: &mut Alloc, ep: u64) -> (u64, Ptr<Tcb>, u64) {
    let t = a.obj(k, ObjType::Tcb, 0);
    invoke(k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, ep]).unwrap();
    invoke(k, t, Label::TcbSetPriority, &[200, rs::TCB]).unwrap();
    let v = a.obj(k, ObjType::VCpu, 0);
    invoke(k, v, Label::VCpuBindTcb, &[t]).unwrap();
    (t, root_slot(k, t).cap.tcb(), v)
}

/// Let the guest `g` take `e` as the current thread, then run the root again.
fn take(k: &mut Kernel<Model>, g: Ptr<Tcb>, e: Exception) {
    let root = k.current().unwrap();
    k.core.current = Some(g);
    k.handle_fault(e);
    k.core.current = Some(root);
}

#[test]
fn binding_makes_a_guest_and_unbinding_a_native_thread_again() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, 0);
    assert_eq!(g.get().ctx.spsr, GUEST_RESET_PSTATE);
    assert!(k.is_guest(g));
    // Neither side binds twice; no thread binds itself.
    let v2 = a.obj(&mut k, ObjType::VCpu, 0);
    assert_eq!(
        invoke(&mut k, v2, Label::VCpuBindTcb, &[tcb]),
        Err(Error::IllegalOperation)
    );
    assert_eq!(
        invoke(&mut k, v2, Label::VCpuBindTcb, &[rs::TCB]),
        Err(Error::IllegalOperation)
    );
    // Nor a thread that runs or waits in an IPC: it would be resumed as a native thread
    // is (the fastpath's direct switch) and enter EL1 with the native configuration.
    let other = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, other, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, other, Label::TcbResume, &[]).unwrap();
    assert_eq!(
        invoke(&mut k, v2, Label::VCpuBindTcb, &[other]),
        Err(Error::IllegalOperation)
    );
    invoke(&mut k, other, Label::TcbSuspend, &[]).unwrap();
    invoke(&mut k, v2, Label::VCpuBindTcb, &[other]).unwrap();
    // A guest's PSTATE may name EL1h, EL1t or EL0t, never EL2 or AArch32.
    for (written, kept) in [
        (0x3c5, 0x3c5),
        (0x9, 0x5),
        (0x10, 0x5),
        (0x4, 0x4),
        (0xf000_0000, 0xf000_0000),
    ] {
        invoke(&mut k, tcb, Label::TcbWriteRegisters, &[REG_SPSR, 1, written]).unwrap();
        assert_eq!(g.get().ctx.spsr, kept, "{written:#x}");
    }
    invoke(&mut k, vcpu, Label::VCpuUnbindTcb, &[]).unwrap();
    assert!(!k.is_guest(g));
    assert_eq!(g.get().state, ThreadState::Inactive);
    assert_eq!(g.get().ctx.spsr & 0x3df, 0, "EL0t again");
    assert_eq!(
        invoke(&mut k, vcpu, Label::VCpuUnbindTcb, &[]),
        Err(Error::IllegalOperation)
    );
    // Native again: PSTATE keeps only the flags.
    invoke(&mut k, tcb, Label::TcbWriteRegisters, &[REG_SPSR, 1, 0x3c5]).unwrap();
    assert_eq!(g.get().ctx.spsr, 0);
}

#[test]
fn guest_registers_read_and_write_by_index() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (_, _, v) = guest(&mut k, &mut a, 0);
    let sctlr = VCpuReg::SctlrEl1 as u64;
    assert_eq!(
        invoke(&mut k, v, Label::VCpuReadRegs, &[sctlr, 1]).unwrap()[0],
        0x30d0_0800
    );
    invoke(
        &mut k,
        v,
        Label::VCpuWriteRegs,
        &[VCpuReg::VbarEl1 as u64, 2, 0x8_0000, 7],
    )
    .unwrap();
    let got = invoke(&mut k, v, Label::VCpuReadRegs, &[VCpuReg::VbarEl1 as u64, 2]).unwrap();
    assert_eq!(got[..2], [0x8_0000, 7]);
    for (first, count) in [(26, 1), (25, 2), (0, 27), (u64::MAX, 1)] {
        assert_eq!(
            invoke(&mut k, v, Label::VCpuReadRegs, &[first, count]),
            Err(Error::RangeError)
        );
    }
    // Missing values are refused, and change nothing.
    assert_eq!(
        invoke(&mut k, v, Label::VCpuWriteRegs, &[0, 3, 1, 2]),
        Err(Error::TruncatedMessage)
    );
    assert_eq!(
        invoke(&mut k, v, Label::VCpuReadRegs, &[sctlr, 1]).unwrap()[0],
        0x30d0_0800
    );
}

#[test]
fn exits_reach_the_vmm_and_its_replies_resume_the_guest() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (_, g, _) = guest(&mut k, &mut a, ep);
    let root = k.current().unwrap();

    // HVC #0x42 with x0..x7 = 10..17: all eight come, x0..x3 in registers.
    g.get().ctx.x[..8].copy_from_slice(&[10, 11, 12, 13, 14, 15, 16, 17]);
    g.get().ctx.pc = 0x1004; // past the HVC, as the exception leaves it
    take(&mut k, g, hvc_trap(0x42));
    assert_eq!(g.get().state, ThreadState::BlockedOnSend);
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    let info = MsgInfo(got[1]);
    assert_eq!(info.label(), ExitKind::Hvc as u64);
    assert_eq!(got[2..6], [10, 11, 12, 13]);
    assert_eq!(g.get().state, ThreadState::BlockedOnReply);
    // The reply's words become x0..x3; the guest goes on after the HVC.
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(0, 2, 0).0, 0xaa, 0xbb, 0, 0, 0],
    );
    assert_eq!((g.get().ctx.x[0], g.get().ctx.x[1], g.get().ctx.x[2]), (0xaa, 0xbb, 12));
    assert_eq!(g.get().ctx.pc, 0x1004);
    assert_eq!(g.get().state, ThreadState::Running);

    // A sign-extending halfword load into w5 from an unmapped IPA.
    let iss = 1 << 24 | 1 << 22 | 1 << 21 | 5 << 16;
    let dabt = 0x24 << 26 | 1 << 25 | iss | 0x7;
    g.get().ctx.pc = 0x2000;
    g.get().ctx.x[5] = 0xdead_beef_dead_beef;
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0xffff_0000_0900_0010,
            ipa: 0x900_0010,
            instruction: false,
            esr: dabt,
        },
    );
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    let words = [got[2], got[3], got[4], got[5], 0, 0, 0, 0, 0];
    let exit = Exit::decode(MsgInfo(got[1]).label(), words);
    let access = MmioAccess {
        size_log2: 1,
        write: false,
        reg: 5,
        sign_extend: true,
        sixty_four: false,
    };
    assert_eq!(
        exit,
        Some(Exit::Mmio {
            ipa: 0x900_0010,
            access,
            value: 0,
            pc: 0x2000
        })
    );
    // The VMM's value is sized and extended into the register; the PC steps over.
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(0, 1, 0).0, 0x1_8001, 0, 0, 0, 0],
    );
    assert_eq!(g.get().ctx.x[5], 0xffff_8001);
    assert_eq!(g.get().ctx.pc, 0x2004);

    // The same access again, answered with "retry": nothing changes.
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0,
            ipa: 0x900_0010,
            instruction: false,
            esr: dabt,
        },
    );
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(EXIT_REPLY_RETRY, 1, 0).0, 7, 0, 0, 0, 0],
    );
    assert_eq!((g.get().ctx.x[5], g.get().ctx.pc), (0xffff_8001, 0x2004));
    assert_eq!(k.current(), Some(root));
}

#[test]
fn exits_and_their_answers_take_the_fastpath_with_the_slow_paths_effect() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (tcb, g, _) = guest(&mut k, &mut a, ep);
    let root = k.current().unwrap();
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    let hvc = hvc_trap(7);
    // The first exit finds nobody waiting: the general way.
    g.get().ctx.pc = 0x1004;
    take(&mut k, g, hvc);
    assert_eq!(recv_exit(&mut k, ep, rp).map(|e| e.kind()), Some(ExitKind::Hvc));
    // The answer, with the VMM waiting again: the fastpath applies it (x0, x1) and
    // switches straight to the guest.
    let slow = k.slowpath_count;
    let info = MsgInfo::new(0, 2, 0).0;
    k.core.current = Some(root);
    sys(&mut k, Syscall::ReplyRecv, [ep, info, 0xaa, 0xbb, 0, 0, rp]);
    assert_eq!(k.slowpath_count, slow, "the answer took the fastpath");
    assert_eq!(k.current(), Some(g), "straight to the guest");
    assert_eq!(
        (g.get().ctx.x[0], g.get().ctx.x[1], g.get().ctx.pc),
        (0xaa, 0xbb, 0x1004)
    );
    assert_eq!((g.get().state.abi(), g.get().exit), (ThreadState::Running, None));
    assert_eq!(root.get().state.abi(), ThreadState::BlockedOnRecv);
    // A sign-extending byte load from an unmapped IPA, the VMM waiting: straight to it
    // with the exit in its registers.
    let iss = 1 << 24 | 1 << 21 | 3 << 16;
    g.get().ctx.pc = 0x2000;
    k.handle_fault(Exception::Vm {
        addr: 0x900_0008,
        ipa: 0x900_0008,
        instruction: false,
        esr: 0x24 << 26 | 1 << 25 | iss | 0x7,
    });
    assert_eq!(k.current(), Some(root), "straight to the VMM");
    assert_eq!(g.get().state, ThreadState::BlockedOnReply);
    let words = [
        root.get().ctx.x[2],
        root.get().ctx.x[3],
        root.get().ctx.x[4],
        root.get().ctx.x[5],
    ];
    let exit = Exit::decode(
        MsgInfo(root.get().ctx.x[1]).label(),
        [words[0], words[1], words[2], words[3], 0, 0, 0, 0, 0],
    );
    assert!(matches!(exit, Some(Exit::Mmio { ipa: 0x900_0008, .. })), "{exit:?}");
    sys(
        &mut k,
        Syscall::ReplyRecv,
        [ep, MsgInfo::new(0, 1, 0).0, 0x80, 0, 0, 0, rp],
    );
    assert_eq!(k.slowpath_count, slow);
    assert_eq!(
        (g.get().ctx.x[3], g.get().ctx.pc),
        (0xffff_ff80, 0x2004),
        "sized, extended, stepped over"
    );
    // An answer that raises an exception in the guest goes the general way.
    g.get().ctx.pc = 0x3004;
    take(&mut k, g, hvc);
    k.core.current = Some(root);
    sys(
        &mut k,
        Syscall::ReplyRecv,
        [ep, MsgInfo::new(EXIT_REPLY_UNDEF, 0, 0).0, 0, 0, 0, 0, rp],
    );
    assert_eq!(k.slowpath_count, slow + 1);
    assert_eq!(g.get().ctx.pc, 0x200, "at its vector (VBAR_EL1 0, from EL1h)");
    let report = k.check_consistency(root, true);
    assert!(report.ok(), "{report:?}");
}

#[test]
fn stores_and_system_register_reads_exit_with_their_registers() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (_, g, _) = guest(&mut k, &mut a, ep);
    let root = k.current().unwrap();
    // A store of xzr; then a system-register read (MRS x3, ...).
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0,
            ipa: 0x900_0000,
            instruction: false,
            esr: 0x24 << 26 | 1 << 25 | 1 << 24 | 2 << 22 | 31 << 16 | 1 << 6 | 0x7,
        },
    );
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    assert_eq!((MsgInfo(got[1]).label(), got[4]), (ExitKind::Mmio as u64, 0));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    // A synchronous external abort (a pass-through device's error), syndrome valid: no
    // stage-2 fault, so HPFAR_EL2 holds nothing and it comes raw.
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0,
            ipa: 0,
            instruction: false,
            esr: 0x24 << 26 | 1 << 25 | 1 << 24 | 2 << 22 | 0x10,
        },
    );
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    assert_eq!(MsgInfo(got[1]).label(), ExitKind::Abort as u64);
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    let sysreg_iss = 3 << 20 | 3 << 5 | 1;
    take(
        &mut k,
        g,
        Exception::User {
            esr: 0x18 << 26 | 1 << 25 | sysreg_iss,
            far: 0,
        },
    );
    let got = sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    assert_eq!((MsgInfo(got[1]).label(), got[2]), (ExitKind::Sysreg as u64, sysreg_iss));
    let pc = g.get().ctx.pc;
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 1, 0).0, 0x77, 0, 0, 0, 0]);
    assert_eq!((g.get().ctx.x[3], g.get().ctx.pc), (0x77, pc + 4));
    assert_eq!(k.current(), Some(root));
}

#[test]
fn deleting_either_side_of_a_binding_leaves_the_other_usable() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, ep);
    // The guest waits in an exit when its VCpu goes: it stops, a native thread again.
    take(&mut k, g, hvc_trap(0));
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[vcpu]).unwrap();
    assert!(!k.is_guest(g));
    assert_eq!(g.get().state, ThreadState::Inactive);
    assert_eq!(g.get().ctx.spsr & 0x3df, 0);
    // The reply object no longer holds it: replying reaches nobody.
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 1, 0).0, 1, 0, 0, 0, 0]);
    assert_eq!(g.get().state, ThreadState::Inactive);
    // A VCpu outlives its thread, unbound, with its registers.
    let v2 = a.obj(&mut k, ObjType::VCpu, 0);
    invoke(&mut k, v2, Label::VCpuWriteRegs, &[VCpuReg::TpidrEl1 as u64, 1, 99]).unwrap();
    invoke(&mut k, v2, Label::VCpuBindTcb, &[tcb]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[tcb]).unwrap();
    assert_eq!(
        invoke(&mut k, v2, Label::VCpuUnbindTcb, &[]),
        Err(Error::IllegalOperation)
    );
    let got = invoke(&mut k, v2, Label::VCpuReadRegs, &[VCpuReg::TpidrEl1 as u64, 1]).unwrap();
    assert_eq!(got[0], 99);
}

#[test]
fn injected_interrupts_queue_once_each_until_the_list_registers_take_them() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (_, g, vcpu) = guest(&mut k, &mut a, 0);
    assert_eq!(
        invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[1020, 0, 0]),
        Err(Error::RangeError)
    );
    assert_eq!(
        invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[40, 256, 0]),
        Err(Error::RangeError)
    );
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[40, 0x80, 0]).unwrap();
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[40, 0x80, 0]).unwrap();
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[28, 0x10, 0]).unwrap();
    let queue = &mut g.get().vcpu.unwrap().get().state.queue;
    assert_eq!(queue.len(), 2, "one pending interrupt is one");
    let irq = |intid, priority| VIrq {
        intid,
        priority,
        notify_eoi: false,
    };
    assert_eq!(queue.pop(), Some(irq(40, 0x80)));
    queue.unpop(irq(40, 0x80));
    assert_eq!(queue.pop(), Some(irq(40, 0x80)));
    assert_eq!(queue.pop(), Some(irq(28, 0x10)));
    assert!(queue.is_empty());
    // The queue is bounded, and says so.
    for intid in 0..32 {
        invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[100 + intid, 0, 0]).unwrap();
    }
    assert_eq!(
        invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[200, 0, 0]),
        Err(Error::NotEnoughMemory)
    );
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[100, 0, 0]).unwrap();
}

/// The exit the root receives on `ep` (with `rp`), decoded.
fn recv_exit(k: &mut Kernel<Model>, ep: u64, rp: u64) -> Option<Exit> {
    let got = sys(k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    Exit::decode(MsgInfo(got[1]).label(), [got[2], got[3], got[4], got[5], 0, 0, 0, 0, 0])
}

/// The guest `g`, its state live on this core, deactivated `intid` (a maintenance
/// interrupt).
fn eoi(k: &mut Kernel<Model>, g: Ptr<Tcb>, intid: u32) {
    k.core.lazy_owners[Lazy::Guest as usize] = Some(g);
    k.guest_eoi(intid);
}

#[test]
fn the_end_of_a_level_triggered_interrupt_exits_to_the_vmm() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, ep);
    let v = g.get().vcpu.unwrap();
    let root = k.current().unwrap();
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    for (args, e) in [
        (&[40, 0, 2][..], Error::InvalidArgument),
        (&[40, 0, u64::MAX], Error::InvalidArgument),
        (&[27, 0, INJECT_LEVEL], Error::InvalidArgument),
    ] {
        assert_eq!(invoke(&mut k, vcpu, Label::VCpuInjectIrq, args), Err(e), "{args:?}");
    }
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[40, 0x80, INJECT_LEVEL]).unwrap();
    let level = VIrq {
        intid: 40,
        priority: 0x80,
        notify_eoi: true,
    };
    assert_eq!(v.get().state.queue.pop(), Some(level));

    // The guest runs and deactivates it: it exits at once, and goes on when answered.
    g.get().ctx.pc = 0x4000;
    k.core.current = Some(g);
    eoi(&mut k, g, 40);
    assert_ne!(k.current(), Some(g), "the guest waits for its VMM");
    k.core.current = Some(root);
    assert_eq!(g.get().state, ThreadState::BlockedOnSend);
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 40 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    assert_eq!((g.get().state.abi(), g.get().ctx.pc), (ThreadState::Running, 0x4000));

    // Ends that come while it waits for the answer to another exit follow that answer,
    // one at a time, before the guest goes on.
    take(&mut k, g, hvc_trap(0));
    assert!(matches!(recv_exit(&mut k, ep, rp), Some(Exit::Hvc { .. })));
    eoi(&mut k, g, 41);
    eoi(&mut k, g, 42);
    assert_eq!(g.get().state, ThreadState::BlockedOnReply);
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 1, 0).0, 7, 0, 0, 0, 0]);
    assert_eq!(g.get().ctx.x[0], 7, "the HVC's answer is applied first");
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 41 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 42 }));
    // Any label resumes it where it was (no exception is raised for an end).
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(EXIT_REPLY_UNDEF, 0, 0).0, 0, 0, 0, 0, 0],
    );
    assert_eq!(g.get().state, ThreadState::Running);
    assert!(v.get().eois.is_empty());

    // Waiting in WFI, an end wakes it into the exit.
    let wfi = WFI;
    take(&mut k, g, wfi);
    assert_eq!(g.get().state, ThreadState::WaitingForInterrupt);
    eoi(&mut k, g, 43);
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 43 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    assert_eq!(g.get().state, ThreadState::Running);

    // Suspended, the end waits; resumed, the guest sends it first.
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    eoi(&mut k, g, 44);
    assert_eq!(g.get().state, ThreadState::Inactive);
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    assert_eq!(g.get().state, ThreadState::BlockedOnSend);
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 44 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);

    // An end found as the guest's interface is saved (another guest's is loaded before
    // the maintenance interrupt came) while it waits in WFI: it wakes, and its next
    // WFI sends the end instead of waiting.
    take(&mut k, g, wfi);
    assert_eq!(g.get().state, ThreadState::WaitingForInterrupt);
    k.core.lazy_owners[Lazy::Guest as usize] = None;
    k.guest_eoi_saved(g, 48);
    assert_eq!(g.get().state, ThreadState::Running);
    take(&mut k, g, wfi);
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 48 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    // The timer's: unmasked for the next CPU that loads the guest.
    v.get().state.vtimer.masked = true;
    k.guest_eoi_saved(g, 27);
    assert!(!v.get().state.vtimer.masked);
    let report = k.check_consistency(root, true);
    assert!(report.ok(), "{report:?}");
}

#[test]
fn an_exit_nobody_answers_is_taken_back() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, ep);
    let v = g.get().vcpu.unwrap();
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    // Suspended while its exit waits for the VMM, the exit is taken back: an HVC runs
    // again, an end is sent again.
    let hvc = hvc_trap(0);
    g.get().ctx.pc = 0x5004;
    take(&mut k, g, hvc);
    assert_eq!(g.get().state, ThreadState::BlockedOnSend);
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    assert_eq!((g.get().ctx.pc, g.get().exit), (0x5000, None));
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    g.get().ctx.pc = 0x5004;
    take(&mut k, g, hvc);
    assert!(matches!(recv_exit(&mut k, ep, rp), Some(Exit::Hvc { .. })));
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    assert_eq!(g.get().ctx.pc, 0x5000, "taken back from the reply object too");
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    eoi(&mut k, g, 47);
    assert_eq!(g.get().exit, Some(Exit::Eoi { intid: 47 }));
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    assert_eq!(g.get().exit, None);
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    assert_eq!(recv_exit(&mut k, ep, rp), Some(Exit::Eoi { intid: 47 }));
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);

    // Unbound, the ends it had are gone with the guest.
    eoi(&mut k, g, 45);
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    eoi(&mut k, g, 46);
    assert_eq!(v.get().eois.len(), 2, "45 taken back, 46 waiting");
    invoke(&mut k, vcpu, Label::VCpuUnbindTcb, &[]).unwrap();
    assert!(v.get().eois.is_empty());
}

#[test]
fn wfi_waits_in_the_kernel_until_an_interrupt_is_injected() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, 0);
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    let wfi = 0x01 << 26 | 1 << 25;
    g.get().ctx.pc = 0x3000;
    // WFE only yields: the guest goes on after it.
    take(&mut k, g, Exception::User { esr: wfi | 1, far: 0 });
    assert_eq!((g.get().state.abi(), g.get().ctx.pc), (ThreadState::Running, 0x3004));
    // WFI with nothing pending: it waits, in no queue, and a TcbGetState says so.
    take(&mut k, g, Exception::User { esr: wfi, far: 0 });
    assert_eq!(
        (g.get().state.abi(), g.get().ctx.pc),
        (ThreadState::WaitingForInterrupt, 0x3008)
    );
    assert!(!g.get().queued());
    // An injected interrupt wakes it.
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[33, 0, 0]).unwrap();
    assert_eq!(g.get().state, ThreadState::Running);
    // With one still queued, WFI does not wait.
    take(&mut k, g, Exception::User { esr: wfi, far: 0 });
    assert_eq!((g.get().state.abi(), g.get().ctx.pc), (ThreadState::Running, 0x300c));
    // Suspended while waiting, it stops; resumed, it runs.
    g.get().vcpu.unwrap().get().state.queue = super::super::object::vcpu::IrqQueue::default();
    take(&mut k, g, Exception::User { esr: wfi, far: 0 });
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    assert_eq!(g.get().state, ThreadState::Inactive);
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    assert_eq!(g.get().state, ThreadState::Running);
}

#[test]
fn the_virtual_timer_is_raised_masked_and_kept_by_the_kernel_while_saved() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, 0);
    let v = g.get().vcpu.unwrap();
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    for (label, args, e) in [
        (Label::VCpuSetVppi, &[28, 1, 0][..], Error::RangeError),
        (Label::VCpuSetVppi, &[27, 1, 256], Error::RangeError),
        (Label::VCpuSetVppi, &[27, 2, 0], Error::InvalidArgument),
        (Label::VCpuAckVppi, &[26], Error::RangeError),
    ] {
        assert_eq!(invoke(&mut k, vcpu, label, args), Err(e), "{label:?} {args:?}");
    }
    let timer_irq = |priority| VIrq {
        intid: 27,
        priority,
        notify_eoi: true,
    };
    // Its state live on this core, its timer fires: the line is masked here, and INTID
    // 27 queued for it, the kernel to hear of its end.
    k.core.lazy_owners[Lazy::Guest as usize] = Some(g);
    k.handle_guest_timer();
    assert!(k.platform.guest_timer_masked);
    assert_eq!(v.get().state.queue.pop(), Some(timer_irq(0xa0)));
    // The line firing again before that raises nothing.
    k.handle_guest_timer();
    assert!(v.get().state.queue.is_empty());
    // The end of another interrupt changes nothing; the timer's unmasks the line.
    k.guest_eoi(40);
    assert!(k.platform.guest_timer_masked);
    k.guest_eoi(27);
    assert!(!k.platform.guest_timer_masked && !v.get().state.vtimer.masked);

    // Armed for virtual time 500 with an offset of 1000, waiting in WFI, its state
    // saved out of the CPU: the kernel keeps its timer and wakes it at 1500.
    // (Four message words each: the root has no IPC buffer in the model.)
    invoke(
        &mut k,
        vcpu,
        Label::VCpuWriteRegs,
        &[VCpuReg::CntvCtlEl0 as u64, 2, 1, 500],
    )
    .unwrap();
    invoke(&mut k, vcpu, Label::VCpuWriteRegs, &[VCpuReg::Cntvoff as u64, 1, 1000]).unwrap();
    take(&mut k, g, WFI);
    assert_eq!(g.get().state, ThreadState::WaitingForInterrupt);
    assert!(k.core.guest_timers.is_none(), "live: the hardware timer's job");
    k.core.lazy_owners[Lazy::Guest as usize] = None;
    k.guest_saved(g);
    assert_eq!((k.core.guest_timers, v.get().timer_at), (Some(v), 1500));
    let root = k.current().unwrap();
    let report = k.check_consistency(root, true);
    assert!(report.ok(), "{report:?}");
    // A VCpu that claims a list it is not in is a damaged kernel.
    v.get().timer_core = Some(1);
    assert!(!k.check_consistency(root, true).ok());
    v.get().timer_core = Some(0);
    assert!(k.platform.timer.is_some_and(|d| d <= 1500));
    for _ in 0..100 {
        if g.get().state != ThreadState::WaitingForInterrupt {
            break;
        }
        assert!(fire_timer(&mut k));
    }
    assert!(k.platform.now >= 1500, "not before its deadline");
    assert_eq!(g.get().state, ThreadState::Running);
    assert!(k.core.guest_timers.is_none());
    assert_eq!(v.get().state.queue.pop(), Some(timer_irq(0xa0)));
    // Loaded into a CPU again with the interrupt still the guest's: masked there.
    k.platform.guest_timer_masked = false;
    k.core.lazy_owners[Lazy::Guest as usize] = Some(g);
    k.guest_loaded(g);
    assert!(k.platform.guest_timer_masked);

    // Disabled by its VMM, the interrupt is latched, and raised once enabled (at the
    // priority the VMM gave); an acknowledgement unmasks it.
    invoke(&mut k, vcpu, Label::VCpuAckVppi, &[27]).unwrap();
    assert!(!v.get().state.vtimer.masked);
    invoke(&mut k, vcpu, Label::VCpuSetVppi, &[27, 0, 0x40]).unwrap();
    k.core.lazy_owners[Lazy::Guest as usize] = Some(g);
    k.handle_guest_timer();
    assert!(v.get().state.queue.is_empty() && v.get().state.vtimer.latched);
    invoke(&mut k, vcpu, Label::VCpuSetVppi, &[27, 1, 0x40]).unwrap();
    assert_eq!(v.get().state.queue.pop(), Some(timer_irq(0x40)));

    // Unbound while the kernel keeps its timer: out of the list.
    invoke(&mut k, vcpu, Label::VCpuAckVppi, &[27]).unwrap();
    take(&mut k, g, WFI);
    k.guest_saved(g);
    assert_eq!(k.core.guest_timers, Some(v));
    invoke(&mut k, vcpu, Label::VCpuUnbindTcb, &[]).unwrap();
    assert!(k.core.guest_timers.is_none() && v.get().timer_core.is_none());
}

#[test]
fn a_vmm_answers_an_exit_with_an_abort_or_an_undefined_instruction_for_the_guest() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (_, g, vcpu) = guest(&mut k, &mut a, ep);
    invoke(
        &mut k,
        vcpu,
        Label::VCpuWriteRegs,
        &[VCpuReg::VbarEl1 as u64, 1, 0x8_0000],
    )
    .unwrap();
    let el1 = |k: &mut Kernel<Model>, r: VCpuReg| invoke(k, vcpu, Label::VCpuReadRegs, &[r as u64, 1]).unwrap()[0];

    // A 32-bit store at EL1h to an IPA with nothing behind it: the VMM answers "abort",
    // and the guest takes a synchronous external abort (data abort, same EL, WnR kept)
    // at its virtual address, to VBAR_EL1 + 0x200.
    let iss = 1 << 24 | 2 << 22 | 3 << 16 | 1 << 6;
    g.get().ctx.pc = 0x2000;
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0xffff_0000_0900_0004,
            ipa: 0x900_0004,
            instruction: false,
            esr: 0x24 << 26 | 1 << 25 | iss | 0x7,
        },
    );
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(EXIT_REPLY_ABORT, 0, 0).0, 0, 0, 0, 0, 0],
    );
    assert_eq!(g.get().state, ThreadState::Running);
    assert_eq!((g.get().ctx.pc, g.get().ctx.spsr), (0x8_0200, GUEST_RESET_PSTATE));
    assert_eq!(el1(&mut k, VCpuReg::EsrEl1), 0x25 << 26 | 1 << 25 | 1 << 6 | 0x10);
    assert_eq!(el1(&mut k, VCpuReg::FarEl1), 0xffff_0000_0900_0004);
    assert_eq!(el1(&mut k, VCpuReg::ElrEl1), 0x2000);
    assert_eq!(el1(&mut k, VCpuReg::SpsrEl1), GUEST_RESET_PSTATE);

    // An instruction fetch from guest EL0 (EL0t): an instruction abort from a lower EL,
    // to VBAR_EL1 + 0x400.
    g.get().ctx.spsr = 0;
    g.get().ctx.pc = 0x4000;
    take(
        &mut k,
        g,
        Exception::Vm {
            addr: 0x4000,
            ipa: 0x4000,
            instruction: true,
            esr: 0x20 << 26 | 1 << 25 | 0x7,
        },
    );
    sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(EXIT_REPLY_ABORT, 0, 0).0, 0, 0, 0, 0, 0],
    );
    assert_eq!((g.get().ctx.pc, g.get().ctx.spsr), (0x8_0400, GUEST_RESET_PSTATE));
    assert_eq!(el1(&mut k, VCpuReg::EsrEl1), 0x20 << 26 | 1 << 25 | 0x10);
    assert_eq!(el1(&mut k, VCpuReg::SpsrEl1), 0);

    // A trapped MRS at EL1t answered "undefined" (and an HVC answered "abort", which
    // is no memory access): an Undefined Instruction exception at the instruction.
    // (The HVC's exception leaves the PC past it; its undefined instruction is the HVC.)
    for (esr, pc, elr, label) in [
        (0x18 << 26 | 1 << 25 | 1, 0x5000, 0x5000, EXIT_REPLY_UNDEF),
        (0x16 << 26 | 1 << 25, 0x6004, 0x6000, EXIT_REPLY_ABORT),
    ] {
        g.get().ctx.spsr = 0x3c4;
        g.get().ctx.pc = pc;
        take(&mut k, g, Exception::User { esr, far: 0 });
        sys(&mut k, Syscall::Recv, [ep, 0, 0, 0, 0, 0, rp]);
        sys(&mut k, Syscall::Send, [rp, MsgInfo::new(label, 0, 0).0, 0, 0, 0, 0, 0]);
        assert_eq!(g.get().ctx.pc, 0x8_0000, "to the current-EL, SP_EL0 vector");
        assert_eq!(el1(&mut k, VCpuReg::EsrEl1), 1 << 25);
        assert_eq!(el1(&mut k, VCpuReg::ElrEl1), elr);
    }
}

#[test]
fn a_reset_vcpu_is_as_new_and_only_with_its_thread_stopped() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let (tcb, g, vcpu) = guest(&mut k, &mut a, 0);
    let v = g.get().vcpu.unwrap();
    // A guest that ran: registers, a queue, an end waiting, its timer's line masked, its
    // interface's state, EL0 with interrupts unmasked.
    invoke(
        &mut k,
        vcpu,
        Label::VCpuWriteRegs,
        &[VCpuReg::SctlrEl1 as u64, 2, 0x3005_1985, 0x1234],
    )
    .unwrap();
    invoke(&mut k, vcpu, Label::VCpuInjectIrq, &[40, 0x80, INJECT_LEVEL]).unwrap();
    invoke(&mut k, vcpu, Label::VCpuSetVppi, &[27, 0, 0x10]).unwrap();
    v.get().state.vgic[0] = 0xdead;
    v.get().state.vtimer.masked = true;
    assert!(v.get().eois.push(VIrq {
        intid: 41,
        priority: 0,
        notify_eoi: true,
    }));
    g.get().ctx.spsr = 0;
    // Not while the thread may run.
    invoke(&mut k, tcb, Label::TcbResume, &[]).unwrap();
    assert_eq!(
        invoke(&mut k, vcpu, Label::VCpuReset, &[]),
        Err(Error::IllegalOperation)
    );
    assert_eq!(v.get().state.queue.len(), 1, "a refused reset changes nothing");
    invoke(&mut k, tcb, Label::TcbSuspend, &[]).unwrap();
    invoke(&mut k, vcpu, Label::VCpuReset, &[]).unwrap();
    let new = crate::kernel::object::vcpu::VCpu::default();
    let st = &v.get().state;
    assert_eq!(st.regs, new.state.regs, "registers as out of reset");
    assert_eq!(st.vgic, new.state.vgic, "interface cleared");
    assert!(st.queue.is_empty() && v.get().eois.is_empty(), "nothing pending");
    assert!(!st.vtimer.masked && st.vtimer.enabled && st.vtimer.priority == 0xa0);
    assert_eq!(g.get().ctx.spsr, GUEST_RESET_PSTATE);
    assert_eq!(v.get().tcb, Some(g), "still bound");
    assert!(k.is_guest(g));
    // An unbound VCpu resets too.
    invoke(&mut k, vcpu, Label::VCpuUnbindTcb, &[]).unwrap();
    invoke(&mut k, vcpu, Label::VCpuReset, &[]).unwrap();
    assert_eq!(v.get().tcb, None);
}

#[test]
fn an_answered_device_access_is_recorded_with_its_value() {
    use gaon_abi::trace::{Class, Event, mmio_access};
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let ep = a.obj(&mut k, ObjType::Endpoint, 0);
    let rp = a.obj(&mut k, ObjType::Reply, 0);
    let (_, g, _) = guest(&mut k, &mut a, ep);
    let root = k.current().unwrap();
    let mmio = |k: &mut Kernel<Model>, iss: u64| {
        g.get().ctx.pc = 0x2000;
        take(
            k,
            g,
            Exception::Vm {
                addr: 0,
                ipa: 0x900_0010,
                instruction: false,
                esr: 0x24 << 26 | 1 << 25 | 1 << 24 | iss | 0x7,
            },
        );
        k.core.current = Some(root);
        recv_exit(k, ep, rp)
    };
    // Not traced: nothing.
    invoke(&mut k, rs::TRACE_CONTROL, Label::TraceControlSetMask, &[0]).unwrap();
    let head = super::trace::header(&k, 0, gaon_abi::trace::HEAD_OFFSET);
    mmio(&mut k, 1 << 22 | 1 << 21 | 5 << 16);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(0, 1, 0).0, 0x1_8001, 0, 0, 0, 0],
    );
    assert_eq!(super::trace::header(&k, 0, gaon_abi::trace::HEAD_OFFSET), head);
    invoke(
        &mut k,
        rs::TRACE_CONTROL,
        Label::TraceControlSetMask,
        &[Class::VM.bits()],
    )
    .unwrap();
    // A sign-extending halfword load: the value the register got.
    mmio(&mut k, 1 << 22 | 1 << 21 | 5 << 16);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(0, 1, 0).0, 0x1_8001, 0, 0, 0, 0],
    );
    // A word store of x3; then one answered with "retry": no access happened.
    g.get().ctx.x[3] = 0x1234_5678_9abc;
    mmio(&mut k, 2 << 22 | 1 << 6 | 3 << 16);
    sys(&mut k, Syscall::Send, [rp, MsgInfo::new(0, 0, 0).0, 0, 0, 0, 0, 0]);
    mmio(&mut k, 2 << 22 | 1 << 6 | 3 << 16);
    sys(
        &mut k,
        Syscall::Send,
        [rp, MsgInfo::new(EXIT_REPLY_RETRY, 0, 0).0, 0, 0, 0, 0, 0],
    );
    let got: super::Vec<_> = super::trace::records(&k, 0, head)
        .into_iter()
        .filter(|r| r.event == Event::VmMmio as u16)
        .map(|r| (r.thread, r.a, r.b))
        .collect();
    let tid = g.get().tid;
    assert_eq!(
        got,
        [
            (tid, mmio_access(0x900_0010, 1, false), 0xffff_8001),
            (tid, mmio_access(0x900_0010, 2, true), 0x5678_9abc),
        ]
    );
}
