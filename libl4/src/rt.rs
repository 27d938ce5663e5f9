//! Program entry and panic handling for user programs.
//!
//! The kernel (for the root server) or the root server (for every other server) starts
//! a program at `_start` with its stack pointer set and the address of its boot-info or
//! start-info page in `x0`. `_start` records that, calls the program's entry `gaon_main`
//! (defined with `libl4::main!`), and exits with what it returns.

unsafe extern "Rust" {
    /// The program's entry, defined with `libl4::main!`.
    fn gaon_main() -> u8;
}

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text.start")]
extern "C" fn _start(x0: u64) -> ! {
    crate::start::set_start_arg(x0);
    // SAFETY: `gaon_main` is defined exactly once by the program through `libl4::main!`.
    let status = unsafe { gaon_main() };
    crate::start::exit(status)
}

/// Exit status of a program that panicked.
pub const PANIC_STATUS: u8 = 101;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let name = crate::start::name();
    if let Some(l) = info.location() {
        crate::log::print_fmt(format_args!(
            "{name}: panic at {}:{}: {}\n",
            l.file(),
            l.line(),
            info.message()
        ));
    } else {
        crate::log::print_fmt(format_args!("{name}: panic: {}\n", info.message()));
    }
    crate::start::exit(PANIC_STATUS)
}
