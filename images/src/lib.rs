//! The image builder.
//!
//! A system description (`images/<board>/system.toml`) names the board, the kernel, the
//! root server, the boot modules, and the servers the root server starts with their
//! channels, shared memory, device memory, IRQs, priorities and budgets, the virtual
//! machines (`[[vm]]`) and the scheduling policy server that manages them (`[sched]`).
//! [`System::load`] checks it and rejects mistakes with the file, the field and the
//! problem; [`pack`] turns the kernel ELF, the root server ELF and the modules into one
//! bootable file in the board's format.
#![deny(unsafe_code)]

mod elf;
mod pack;
mod probes;
mod sched;
mod servers;
mod system;
mod trace;
mod vms;

pub use elf::idl_records;
pub use pack::{PackError, PackInput, pack};
pub use sched::{CONFIG_GRANT, SCHED_CHANNEL, SCHED_INTERFACE, SchedDesc, TIMER_GRANT};
pub use servers::{ChannelDesc, ServerDesc, Servers, SharedDesc};
pub use system::{ModuleDesc, ModuleSource, System};
pub use trace::{CLASS_NAMES, CONTROL_GRANT, RINGS_GRANT, TraceDesc};
pub use vms::{VMM_PACKAGE, VmDesc, is_aarch64_elf, is_linux_image};
