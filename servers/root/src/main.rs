//! The root server. For now it proves the path from the kernel to EL0: it greets,
//! checks that the kernel rejects bad syscalls without harm, waits for the kernel tick
//! to advance while it runs, and halts the system with the number of failed checks.
//! The "Kernel core" and "libl4" issues grow it into the system builder.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::syscall::{self, call2};
    use libl4::{Error, Syscall, debug_println};

    /// Ticks to observe before halting, so the run shows preemption by the timer.
    const TICKS_TO_WAIT: u64 = 3;

    /// A check returns `Err(reason)` on failure.
    type Check = fn() -> Result<(), &'static str>;

    const CHECKS: &[(&str, Check)] = &[
        ("putchar rejects a value that is not a byte", putchar_rejects_wide_value),
        ("unknown syscall numbers are rejected", unknown_syscall_rejected),
        ("halt rejects a status above 255", halt_rejects_wide_status),
        ("timer ticks advance while EL0 runs", ticks_advance),
    ];

    fn putchar_rejects_wide_value() -> Result<(), &'static str> {
        match call2(Syscall::DebugPutChar, 0x1_0000, 0) {
            Err(Error::InvalidArgument) => Ok(()),
            _ => Err("not rejected with InvalidArgument"),
        }
    }

    fn unknown_syscall_rejected() -> Result<(), &'static str> {
        for number in [0u64, 0xffff, u64::MAX] {
            let result: u64;
            // The typed wrapper cannot express a bad number, so issue the trap by hand.
            #[allow(unsafe_code)]
            // SAFETY: an unknown syscall only writes x0 (the error) and touches no memory.
            unsafe {
                core::arch::asm!("svc #0", inlateout("x0") 0u64 => result, in("x7") number, options(nostack));
            }
            if result != Error::UnknownSyscall as u64 {
                return Err("unknown syscall did not return UnknownSyscall");
            }
        }
        Ok(())
    }

    fn halt_rejects_wide_status() -> Result<(), &'static str> {
        match call2(Syscall::DebugHalt, 256, 0) {
            Err(Error::InvalidArgument) => Ok(()),
            _ => Err("not rejected with InvalidArgument"),
        }
    }

    fn ticks_advance() -> Result<(), &'static str> {
        let start = syscall::debug_ticks().map_err(|_| "DebugTicks failed")?;
        let mut polls = 0u64;
        loop {
            let now = syscall::debug_ticks().map_err(|_| "DebugTicks failed")?;
            if now >= start + TICKS_TO_WAIT {
                break;
            }
            polls += 1;
            if polls > 1 << 32 {
                return Err("the tick count never advanced");
            }
        }
        debug_println!("root: saw {TICKS_TO_WAIT} timer ticks while running at EL0 ({polls} polls)");
        Ok(())
    }

    pub fn run() -> u8 {
        debug_println!("root: hello from EL0");
        let (mut passed, mut failed) = (0u8, 0u8);
        for (name, check) in CHECKS {
            match check() {
                Ok(()) => passed += 1,
                Err(why) => {
                    debug_println!("root: FAIL {name}: {why}");
                    failed += 1;
                }
            }
        }
        debug_println!("root: {passed} passed, {failed} failed");
        failed
    }
}

#[cfg(target_os = "none")]
libl4::main!(app::run);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-root is a Gaon user program; build it for aarch64-unknown-none");
    std::process::exit(2);
}
