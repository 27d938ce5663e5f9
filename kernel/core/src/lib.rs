//! The arch-independent core of the Gaon kernel.
//!
//! Everything here is plain data and logic: no registers, no MMIO, no `unsafe`. It is
//! compiled into the kernel and also built and tested on the host (`cargo test -p
//! gaon-kcore`), in the way Hubris tests `sys/kerncore`.
//!
//! So far: capabilities and rights ([`cap`]), the capability derivation tree that
//! revoke walks ([`cdt`]), and untyped memory with retype accounting ([`untyped`]).
#![no_std]
#![deny(unsafe_code)]

pub mod cap;
pub mod cdt;
pub mod untyped;
