//! The root server. For now it proves the path from the kernel to EL0: it greets, checks
//! that the kernel rejects bad syscalls, waits for the kernel tick to advance, and halts
//! the system. The "Kernel core" and "libl4" issues grow it into the system builder.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod app {
    use libl4::syscall::{self, call2};
    use libl4::{Error, Syscall, debug_println};

    /// Ticks to observe before halting, so the demo shows preemption by the timer.
    const TICKS_TO_WAIT: u64 = 3;

    pub fn run() -> u8 {
        debug_println!("root: hello from EL0");
        let mut failures = 0u8;
        // A byte outside 0..=255 is an argument error, not a crash.
        if call2(Syscall::DebugPutChar, 0x1_0000, 0) != Err(Error::InvalidArgument) {
            debug_println!("root: FAIL: oversized putchar was not rejected");
            failures += 1;
        }
        let Ok(start) = syscall::debug_ticks() else {
            debug_println!("root: FAIL: DebugTicks failed");
            return 1;
        };
        let mut spins = 0u64;
        loop {
            match syscall::debug_ticks() {
                Ok(now) if now >= start + TICKS_TO_WAIT => break,
                Ok(_) => spins += 1,
                Err(e) => {
                    debug_println!("root: FAIL: DebugTicks: {e:?}");
                    return 1;
                }
            }
        }
        debug_println!("root: saw {TICKS_TO_WAIT} timer ticks while running at EL0 ({spins} polls)");
        debug_println!("root: {} passed, {} failed", 2 - u32::from(failures), failures);
        failures
    }
}

#[cfg(target_os = "none")]
libl4::main!(app::run);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-root is a Gaon user program; build it for aarch64-unknown-none");
    std::process::exit(2);
}
