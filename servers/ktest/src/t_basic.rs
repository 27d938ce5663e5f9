//! Debug syscalls, unknown syscalls, Yield, and the boot info.

use gaon_abi::bootinfo::slot;
use libl4::syscall::{self, call2};
use libl4::{Error, ObjType, Syscall};

use crate::env::{Env, ROOT_CNODE};
use crate::{R, check, err, ok};

crate::tests![
    "putchar rejects a value that is not a byte" => putchar_wide,
    "halt rejects a status above 255" => halt_wide,
    "the debug console and halt need the Debug capability" => debug_needs_cap,
    "unknown syscall 0 returns UnknownSyscall" => unknown_0,
    "unknown syscall 0xffff returns UnknownSyscall" => unknown_ffff,
    "unknown syscall u64::MAX returns UnknownSyscall" => unknown_max,
    "timer ticks advance while EL0 runs" => ticks_advance,
    "yield returns to the only runnable thread" => yield_returns,
    "boot info: magic, version and CNode radix" => bi_header,
    "boot info: untyped slots hold untyped caps" => bi_untyped,
    "boot info: device untyped are listed" => bi_device,
    "boot info: the empty region is empty" => bi_empty,
    "boot info: fixed slots hold the root's objects" => bi_fixed,
    "boot info: boot modules are listed and mapped" => bi_modules,
    "cap identify: empty slot and out-of-range CPtr give 0" => identify_empty,
    "IPC buffer words survive a kernel round trip" => ipc_buffer_round_trip,
];

fn unknown(number: u64) -> R {
    let result: u64;
    #[allow(unsafe_code)]
    // SAFETY: an unknown syscall only writes x0/x1 (the error) and touches no memory.
    unsafe {
        core::arch::asm!("svc #0", inlateout("x0") 0u64 => result, lateout("x1") _, in("x7") number, options(nostack));
    }
    check(
        result == Error::UnknownSyscall as u64,
        "unknown syscall did not return UnknownSyscall",
    )
}

fn putchar_wide(_: &mut Env) -> R {
    err(
        call2(Syscall::DebugPutChar, 0x1_0000, gaon_abi::bootinfo::slot::DEBUG),
        Error::InvalidArgument,
        "wide putchar",
    )
}
fn halt_wide(_: &mut Env) -> R {
    err(
        call2(Syscall::DebugHalt, 256, gaon_abi::bootinfo::slot::DEBUG),
        Error::InvalidArgument,
        "wide halt status",
    )
}
/// Without the Debug capability neither the console nor halting is reachable.
fn debug_needs_cap(env: &mut Env) -> R {
    let ep = ok(env.alloc(libl4::ObjType::Endpoint, 0), "endpoint")?;
    err(
        call2(Syscall::DebugPutChar, u64::from(b'!'), 0),
        Error::FailedLookup,
        "no cap",
    )?;
    err(
        call2(Syscall::DebugPutChar, u64::from(b'!'), ep),
        Error::InvalidCapability,
        "an endpoint",
    )?;
    err(call2(Syscall::DebugHalt, 0, 0), Error::FailedLookup, "halt with no cap")?;
    err(
        call2(Syscall::DebugHalt, 0, ep),
        Error::InvalidCapability,
        "halt with an endpoint",
    )
}
fn unknown_0(_: &mut Env) -> R {
    unknown(0)
}
fn unknown_ffff(_: &mut Env) -> R {
    unknown(0xffff)
}
fn unknown_max(_: &mut Env) -> R {
    unknown(u64::MAX)
}

fn ticks_advance(_: &mut Env) -> R {
    let start = ok(syscall::debug_ticks(), "DebugTicks")?;
    for _ in 0..50_000_000u64 {
        if ok(syscall::debug_ticks(), "DebugTicks")? >= start + 2 {
            return Ok(());
        }
    }
    check(false, "no two ticks seen")
}

#[allow(clippy::unnecessary_wraps, reason = "every test has the same signature")]
fn yield_returns(_: &mut Env) -> R {
    for _ in 0..10 {
        syscall::yield_now();
    }
    Ok(())
}

fn bi_header(env: &mut Env) -> R {
    check(env.bi.version == 1, "version 1")?;
    check(env.bi.cnode_radix == 12, "radix 12")?;
    check(env.bi.timer_hz > 0, "timer frequency")
}

fn bi_untyped(env: &mut Env) -> R {
    let r = env.bi.untyped_slots;
    check(r.end > r.start, "some untyped")?;
    for s in r.start..r.end {
        let (ty, _, _) = ok(ROOT_CNODE.identify(s), "identify")?;
        check(ty == ObjType::Untyped as u64 + 1, "untyped slot holds an untyped cap")?;
    }
    Ok(())
}

fn bi_device(env: &mut Env) -> R {
    let n = (env.bi.untyped_slots.end - env.bi.untyped_slots.start) as usize;
    check(env.bi.untyped[..n].iter().any(|d| d.is_device == 1), "a device untyped")?;
    check(env.bi.untyped[..n].iter().any(|d| d.is_device == 0), "a RAM untyped")
}

fn bi_empty(env: &mut Env) -> R {
    let r = env.bi.empty;
    check(
        r.start >= env.bi.untyped_slots.end && r.end == 4096,
        "empty region bounds",
    )?;
    for s in [r.start + 1000, r.end - 1] {
        let (ty, _, _) = ok(ROOT_CNODE.identify(s), "identify")?;
        check(ty == 0, "slot is empty")?;
    }
    Ok(())
}

fn bi_fixed(_: &mut Env) -> R {
    for (s, ty) in [
        (slot::TCB, ObjType::Tcb),
        (slot::CNODE, ObjType::CNode),
        (slot::VSPACE, ObjType::VSpace),
        (slot::IRQ_CONTROL, ObjType::IrqControl),
        (slot::SCHED_CONTROL, ObjType::SchedControl),
        (slot::BOOTINFO_FRAME, ObjType::Frame),
        (slot::IPC_BUFFER, ObjType::Frame),
        (slot::SCHED_CONTEXT, ObjType::SchedContext),
    ] {
        let got = ok(call2(Syscall::DebugCapIdentify, s, 0), "identify")?;
        check(got == ty as u64 + 1, "fixed slot type")?;
    }
    Ok(())
}

fn identify_empty(_: &mut Env) -> R {
    check(
        ok(call2(Syscall::DebugCapIdentify, 4000, 0), "identify")? == 0,
        "empty slot",
    )?;
    check(
        ok(call2(Syscall::DebugCapIdentify, 1 << 20, 0), "identify")? == 0,
        "CPtr beyond the CNode",
    )?;
    check(
        ok(call2(Syscall::DebugCapIdentify, u64::MAX, 0), "identify")? == 0,
        "all-ones CPtr",
    )
}

fn ipc_buffer_round_trip(env: &mut Env) -> R {
    // Write 6 registers of a thread (2 of them via the IPC buffer) and read them back.
    let t = ok(env.thread(0x1000, 0, 1, 0), "thread")?;
    ok(t.write_registers(3, &[11, 22, 33, 44, 55, 66]), "write 6 registers")?;
    let m = ok(
        libl4::ipc::invoke(t.0, libl4::Label::TcbReadRegisters, &[3, 6]),
        "read 6 registers",
    )?;
    check(m.mr == [11, 22, 33, 44], "first four in registers")?;
    check(
        libl4::ipc::get_mr(4) == 55 && libl4::ipc::get_mr(5) == 66,
        "rest in the IPC buffer",
    )
}

fn bi_modules(env: &mut Env) -> R {
    // The description's one module, then the system table the image tool adds.
    check(env.bi.module_count == 2, "two modules")?;
    check(
        gaon_abi::boot::name_bytes(&env.bi.modules[1].name) == gaon_abi::system::SYSTEM_MODULE.as_bytes(),
        "the system table comes last",
    )?;
    let Some(table) = libl4::start::boot_module(gaon_abi::system::SYSTEM_MODULE) else {
        return check(false, "the system table is mapped");
    };
    check(
        gaon_abi::system::SystemTable::parse(table).is_ok_and(|t| t.servers().is_empty()),
        "an empty, valid system table",
    )?;
    let m = &env.bi.modules[0];
    check(gaon_abi::boot::name_bytes(&m.name) == b"root-elf", "its name")?;
    check(
        m.size > 64 && m.vaddr >= gaon_abi::bootinfo::MODULES_VADDR,
        "size and address",
    )?;
    #[allow(unsafe_code)]
    // SAFETY: the kernel maps each module read-only at the address the boot info gives.
    let magic = unsafe { core::ptr::read_volatile(m.vaddr as *const [u8; 4]) };
    check(magic == *b"\x7fELF", "the module's bytes (an ELF file)")
}
