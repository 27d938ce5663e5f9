//! The trace server's hardware-free part (docs/trace.md): the stream it writes, and the
//! merge of the kernel's per-core rings (and the VMM's and guests' events) into one
//! time-ordered stream. Tested on the host; the server (`server/`) drives it from the
//! rings it maps, and `export/` turns a stream into files the usual tools open.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod merge;
pub mod stream;
