//! The Gaon kernel ABI, shared by the kernel, `libl4` and the host tools.
//!
//! Everything a user program and the kernel must agree on lives here and only here:
//! syscall numbers and their register convention, error codes, and the layout of the
//! boot image the image tool writes and the kernel reads. `docs/abi.md` describes it.
#![no_std]
#![deny(unsafe_code)]

pub mod boot;
pub mod syscall;

pub use syscall::{Error, Syscall};
