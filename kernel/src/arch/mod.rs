//! Architecture layer. Gaon runs on AArch64 only; everything that touches system
//! registers, exception entry or page-table formats lives below this module.

pub mod aarch64;
pub use aarch64::*;
