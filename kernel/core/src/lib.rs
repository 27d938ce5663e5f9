//! The arch-independent core of the Gaon kernel.
//!
//! Capabilities ([`cap`]), the derivation tree ([`cdt`]), untyped memory ([`untyped`]),
//! and the kernel proper ([`kernel`]): objects, scheduling, IPC and invocations. It is
//! compiled into the kernel and also built and tested on the host (`cargo test -p
//! gaon-kcore`), in the way Hubris tests `sys/kerncore`: the host tests give the kernel
//! real host memory as its "physical" memory and drive it through the same entry points
//! the exception vectors call.
//!
//! The only `unsafe` is in [`obj`], which turns object addresses into references.
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod cap;
pub mod cdt;
pub mod kernel;
#[allow(unsafe_code, reason = "the one module that turns object addresses into references")]
pub mod obj;
pub mod untyped;
pub mod vspace;

pub use kernel::object::tcb;
