//! The image builder.
//!
//! A system description (`images/<board>/system.toml`) names the board, the kernel, the
//! root server and the boot modules. [`System::load`] checks it and rejects mistakes
//! with the file, the field and the problem; [`pack`] turns the kernel ELF, the root
//! server ELF and the modules into one bootable file in the board's format.
#![deny(unsafe_code)]

mod elf;
mod pack;
mod system;

pub use pack::{PackError, PackInput, pack};
pub use system::{ModuleDesc, ModuleSource, System};
