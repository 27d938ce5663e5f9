//! libl4: what a Gaon user program links against.
//!
//! Today it holds the raw syscall layer, debug console output and the program entry
//! and panic handler. The typed capability API and the server runtime grow here (see
//! the "libl4, the IDL compiler" issue).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod cap;
pub mod debug;
pub mod ipc;
pub mod rpc;
pub mod server;
pub mod syscall;

#[cfg(target_os = "none")]
mod rt;

pub use gaon_abi::{Error, FaultKind, Label, MsgInfo, ObjType, Rights, Syscall};

/// Declare the program's entry function: `libl4::main!(my_main);` with `fn my_main() -> u8`.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[unsafe(no_mangle)]
        fn gaon_main() -> u8 {
            $f()
        }
    };
}

/// Bytes an IPC message can carry (120 message registers).
pub const fn rpc_max() -> usize {
    gaon_abi::message::MSG_MAX_LENGTH * 8
}
