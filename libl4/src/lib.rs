//! libl4: what a Gaon user program links against.
//!
//! - `syscall`, `ipc`: the raw syscalls and message registers; `time`: the counter;
//! - `cap`: typed capability handles with `Result`-returning invocations;
//! - `alloc`: slot, untyped-memory and address-range allocators, mapping and threads,
//!   and a server's own allocator from its start info (`Allocator::from_start`);
//! - `lease`: shared-memory leases without `unsafe` (a page to lend, a received lease
//!   mapped with bounds-checked reads and writes);
//! - `elf`: loading an executable into an address space;
//! - `rpc`, `server`: the runtime IDL-generated stubs build on, and the server loop;
//! - `start`: what the root server gave this program (named capabilities) and `exit`;
//! - `semihosting`: host files through QEMU's semihosting (the trace server's output);
//! - `print!`/`println!` (to the console server) and `debug_print!` (kernel console);
//! - the program entry (`main!`) and a panic handler that reports and exits.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

// The generated stubs name the crate `::libl4`, also from inside it.
extern crate self as libl4;

pub mod alloc;
pub mod cap;
pub mod debug;
pub mod elf;
pub mod ipc;
pub mod lease;
pub mod log;
pub mod mmio;
pub mod rpc;
pub mod semihosting;
pub mod server;
pub mod start;
pub mod syscall;
pub mod time;

#[cfg(target_os = "none")]
mod rt;

/// Stubs for the interfaces libl4 speaks itself, generated from `idl/*.idl`. The console
/// server and its clients both use these, so their ends agree by construction.
pub mod idl {
    include!(concat!(env!("OUT_DIR"), "/console.rs"));
    include!(concat!(env!("OUT_DIR"), "/supervisor.rs"));
}

pub use gaon_abi;
pub use gaon_abi::{Error, Fault, FaultKind, Label, MsgInfo, ObjType, Rights, Syscall};
pub use start::exit;

/// Declare the program's entry function: `libl4::main!(my_main);` with `fn my_main() -> u8`.
/// Returning ends the program with that status (see [`exit`]). Built for the host (as
/// `cargo test --workspace` and clippy do), the program's `main` only says what it is.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        fn gaon_main() -> u8 {
            $f()
        }

        #[cfg(not(target_os = "none"))]
        fn main() {
            ::std::eprintln!(
                "{} is a Gaon user program; build it for aarch64-unknown-none",
                env!("CARGO_PKG_NAME")
            );
            ::std::process::exit(2);
        }
    };
}

/// Bytes an IPC message can carry (120 message registers).
pub const fn rpc_max() -> usize {
    gaon_abi::message::MSG_MAX_LENGTH * 8
}
