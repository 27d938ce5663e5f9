//! Program entry and panic handling for user programs.
//!
//! The kernel starts a program at `_start` with its stack pointer set. `_start` calls
//! the program's `extern "Rust" fn main() -> u8`-style entry `gaon_main`, then halts
//! the system with what it returns (the root server) .

unsafe extern "Rust" {
    /// The program's entry, defined with `libl4::main!`.
    fn gaon_main() -> u8;
}

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start() -> ! {
    // SAFETY: `gaon_main` is defined exactly once by the program through `libl4::main!`.
    let status = unsafe { gaon_main() };
    crate::syscall::debug_halt(status);
    loop {
        crate::syscall::yield_now();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => crate::debug_println!("user panic at {}:{}: {}", l.file(), l.line(), info.message()),
        None => crate::debug_println!("user panic: {}", info.message()),
    }
    crate::syscall::debug_halt(101);
    loop {
        crate::syscall::yield_now();
    }
}
