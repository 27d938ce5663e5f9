//! The Gaon kernel ABI, shared by the kernel, `libl4` and the host tools.
//!
//! Everything a user program and the kernel must agree on lives here and only here:
//! syscall numbers and their register convention, error codes, the message-info word
//! and IPC buffer, invocation labels, object types and sizes, fault messages, the
//! boot-info page, and the layout of the boot image the image tool writes and the
//! kernel reads. `docs/abi.md` describes it.
//!
//! Invocation arguments and results and fault messages are declared once, as typed
//! layouts ([`layout`], [`invocation`], [`fault`]): libl4 encodes with them, the
//! kernel decodes with them, and the reference tables of `docs/abi.md` are rendered
//! from them (`cargo xtask abi-doc`).
#![no_std]
#![deny(unsafe_code)]

pub mod boot;
pub mod bootinfo;
pub mod fault;
pub mod hypercall;
pub mod invocation;
pub mod klog;
pub mod layout;
pub mod message;
pub mod object;
pub mod syscall;
pub mod system;
pub mod trace;
pub mod vcpu;

pub use fault::{Fault, FaultKind};
pub use invocation::{CPtr, Invocation, Label};
pub use layout::Layout;
pub use message::{IpcBuffer, MsgInfo};
pub use object::{ObjType, ObjectSpec, Rights};
pub use syscall::{Error, Syscall};
