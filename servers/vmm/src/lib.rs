//! The virtual machine monitor's hardware-free part (`docs/vmm.md`): its device models
//! behind one trait, the guest's interrupt distributor, and its PSCI firmware. Tested on
//! the host; the server (`main.rs`) drives them from a guest's exits.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod device;
pub mod fdt;
pub mod gic;
pub mod layout;
pub mod pl011;
pub mod psci;
pub mod testdev;
pub mod vm;
