//! The arch-independent core of the Gaon kernel.
//!
//! Capabilities (`cap`), the derivation tree ([`cdt`]), untyped memory ([`untyped`]),
//! and the kernel proper ([`kernel`]): objects, scheduling, IPC and invocations. It is
//! compiled into the kernel and also built and tested on the host (`cargo test -p
//! gaon-kcore`), in the way Hubris tests `sys/kerncore`: the host tests give the kernel
//! real host memory as its "physical" memory and drive it through the same entry points
//! the exception vectors call.
//!
//! # Where `unsafe` is
//!
//! The crate denies `unsafe_code`. [`obj`] holds the operations that turn addresses
//! into references ([`obj::Ptr`], the IPC buffer's words, zeroing and copying memory);
//! constructing a `Ptr` from an address is an `unsafe fn`, and only these places, each
//! allowed by name with the rule that vouches for the address in a `// SAFETY:`
//! comment, call it:
//! - `cap.rs`: the typed accessors (`Cap::tcb()`, `endpoint()`, `notification()`,
//!   `reply()`, `sched_context()`, `vcpu()`, `vspace()`, `page_table()`): a cap of type X names a
//!   live X, never at 0;
//! - `kernel/cspace.rs`: `slot`, slot addresses computed from CNode and Tcb caps;
//! - `vspace.rs`: `next_table`, a valid table descriptor points to a live table;
//! - `kernel/message.rs`: `Kernel::ipc_buffer`, a thread's IPC buffer frame cap;
//! - `kernel/object/mod.rs`: `create_object` and `write_fresh`, new objects in fresh
//!   memory; `kernel/object/untyped.rs`: `perform_untyped`, retype zeroing its range;
//! - `kernel/boot.rs`: `BootAlloc::alloc` and `Kernel::boot_root`, boot allocations;
//! - `kernel/sched/queues.rs`: `RunQueues::tail_of_non_empty`, a run-queue level's
//!   head and tail are set together (not a `Ptr::new`: an `unwrap_unchecked`);
//! - `kernel/check.rs` (consistency-check builds): `at`, following links to verify
//!   them; and the host tests' `at` (`kernel/tests.rs`).
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub(crate) mod cap;
pub mod cdt;
pub mod kernel;
#[allow(unsafe_code, reason = "the module that turns object addresses into references")]
pub mod obj;
pub mod untyped;
pub(crate) mod vspace;

pub use kernel::object::tcb;
