//! The paravirtual RTOS guest's hardware-free part (docs/rtos.md): the kernel's
//! scheduling decisions, periodic releases, semaphores and message queues, the
//! measurement's statistics and summary, the bootargs, the work loop's calibration, and
//! the console's pieces. Tested on the host (`cargo test -p gaon-rtos`); the guest
//! (`main.rs` and the modules it alone has) drives them from its exception vectors.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod config;
pub mod console;
pub mod hyper;
pub mod periodic;
pub mod sched;
pub mod stats;
pub mod sync;
pub mod time;
pub mod work;
