//! The scheduling policy core of Gaon's soft-real-time scheduler server.
//!
//! This crate is the policy alone, with no IPC and no hardware: it is told what happens
//! (a vCPU woke, blocked, ran for so long, a tick, an accounting period, a hypercall
//! asking for LL-boost) and answers which vCPU each core should run, in which class,
//! with which budget. Everything is deterministic, in integer nanoseconds.
//!
//! - [`credit`]: Xen's credit scheduler (weights, caps, BOOST, UNDER, OVER, 10 ms ticks
//!   and 30 ms accounting) with paper 000's extensions: the LL-boost class with SBT/USBT
//!   timely scheduling, and optional credit borrowing for soft-real-time vCPUs.
//! - [`admit`]: admission control of LL-boost reservations, shared by the image tool
//!   and the server.
//! - [`migrate`]: LL-boost-first migration when balancing load across cores.
//! - `sim` (feature `sim`, and in tests): a discrete-event simulation of the policy on
//!   one or more cores, with periodic soft-real-time and CPU-bound workloads.
//!
//! # How the policy maps onto kernel mechanisms
//!
//! [`manage`] is the server's side: each vCPU thread gets a scheduling context and a
//! priority in a band of four below the server's (LL-boost at the top, then BOOST,
//! UNDER, OVER; a parked vCPU stays at OVER's, its cap being its budget). A vCPU in
//! LL-boost has budget SBT per period USBT, so the kernel dispatches it first and
//! throttles it when SBT is spent (its timeout fault becomes
//! [`credit::Scheduler::ll_spent`]); consumed time comes from `SchedContextConsumed`
//! ([`credit::Scheduler::charged`]); the 10 ms tick and 30 ms accounting are the
//! server's own timer. [`credit::Scheduler::pick`] and [`credit::Dispatch`] are for
//! the simulation, which dispatches itself.

#![no_std]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "sim"))]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod admit;
pub mod credit;
pub mod manage;
pub mod migrate;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

#[cfg(test)]
mod tests;

pub use admit::{AdmitError, LL_BOUND_PPM, Reservation, admit};
pub use credit::{Class, Config, CoreId, Debit, Dispatch, LlError, LlState, Scheduler, VcpuId, VcpuParams};
pub use migrate::{Candidate, Move, plan};
