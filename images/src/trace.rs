//! `[trace]`: the trace server (issue 18, docs/trace.md).
//!
//! The server is a `[[server]]` of the description. Besides what its entry gives it, it
//! is given the TraceControl capability (grant `trace_control`, whose start-info word
//! is the classes to record) and the kernel's trace rings mapped read-only (grant
//! `trace_rings`). It drains the rings once per period of its budget, so its entry
//! must have `budget_us` and `period_us`. With `stop_after_ms` it stops after that long
//! and exits (with `halt_on_exit` on its entry, that ends the run).

use std::path::Path;

use gaon_abi::trace::Class;
use gaon_platform::DescError;
use serde::Deserialize;

use crate::servers::RawServer;
use crate::vms::RawVm;

/// The grant of the TraceControl capability.
pub const CONTROL_GRANT: &str = "trace_control";
/// The grant of the rings' frame.
pub const RINGS_GRANT: &str = "trace_rings";

/// `output = "file"`.
pub const OUTPUT_FILE: u64 = 0;
/// `output = "discard"`.
pub const OUTPUT_DISCARD: u64 = 1;

/// The longest `stop_after_ms`: an hour.
const MAX_STOP_AFTER_MS: u64 = 3_600_000;

/// The names of the classes, in bit order (`gaon_abi::trace::Class`).
pub const CLASS_NAMES: [&str; 8] = ["sched", "ipc", "notify", "irq", "fault", "vm", "budget", "thread"];

/// `[trace]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrace {
    server: String,
    #[serde(default = "all_classes")]
    classes: Vec<String>,
    #[serde(default)]
    stop_after_ms: u64,
    #[serde(default = "file")]
    output: String,
}

fn file() -> String {
    "file".into()
}

fn all_classes() -> Vec<String> {
    CLASS_NAMES.iter().map(|c| (*c).to_string()).collect()
}

/// A checked `[trace]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceDesc {
    /// Index of the trace server (one of the `[[server]]`s).
    pub server: usize,
    /// The classes to record (`gaon_abi::trace::Class` bits).
    pub classes: u64,
    /// After how many milliseconds the server stops tracing and exits (0: never).
    pub stop_after_ms: u64,
    /// Where the stream goes: 0 a host file (semihosting), 1 nowhere (the server
    /// drains and counts: for measuring what tracing costs).
    pub output: u64,
}

/// Check `[trace]` against the `[[server]]`s (`servers`, not the VMMs) and the VMs.
pub(crate) fn check(
    file: &Path,
    trace: &RawTrace,
    servers: &[RawServer],
    vms: &[RawVm],
) -> Result<TraceDesc, DescError> {
    let err = |field: String, problem: String| DescError::new(file, field, problem);
    let Some(server) = servers.iter().position(|s| s.name() == trace.server) else {
        let problem = if vms.iter().any(|v| v.name() == trace.server) {
            format!("`{}` is a `[[vm]]`; the trace server is a `[[server]]`", trace.server)
        } else {
            format!("no `[[server]]` is named `{}`", trace.server)
        };
        return Err(err("trace.server".into(), problem));
    };
    if !servers[server].budgeted() {
        return Err(err(
            format!("server[{server}]"),
            format!(
                "`{}` is the trace server, which drains the kernel's rings once per period of its budget: give it `budget_us` and `period_us` (for example 500 every 10000)",
                trace.server
            ),
        ));
    }
    // Threads' creation and names always: a reader needs them to name anything.
    let mut classes = Class::THREAD;
    for (i, c) in trace.classes.iter().enumerate() {
        let Some(bit) = CLASS_NAMES.iter().position(|n| n == c) else {
            return Err(err(
                format!("trace.classes[{i}]"),
                format!(
                    "`{c}` is no class of events; the classes are {}",
                    CLASS_NAMES.join(", ")
                ),
            ));
        };
        classes |= Class::from_bits_truncate(1 << bit);
    }
    if trace.stop_after_ms > MAX_STOP_AFTER_MS {
        return Err(err(
            "trace.stop_after_ms".into(),
            format!(
                "is {} but must be 0 (trace until the system stops) to {MAX_STOP_AFTER_MS} (an hour)",
                trace.stop_after_ms
            ),
        ));
    }
    let output = match trace.output.as_str() {
        "file" => OUTPUT_FILE,
        "discard" => OUTPUT_DISCARD,
        other => {
            return Err(err(
                "trace.output".into(),
                format!(
                    "is `{other}` but must be `file` (a file on the host, through QEMU's semihosting) or `discard` (drained and counted only)"
                ),
            ));
        }
    };
    Ok(TraceDesc {
        server,
        classes: classes.bits(),
        stop_after_ms: trace.stop_after_ms,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_names_are_the_abis_bits() {
        assert_eq!(1u64 << CLASS_NAMES.len(), Class::all().bits() + 1);
        assert_eq!(CLASS_NAMES[1], "ipc");
        assert_eq!(Class::IPC.bits(), 1 << 1);
        assert_eq!(Class::THREAD.bits(), 1 << 7);
    }
}
