//! The TraceControl capability: which classes of events the kernel records, and ring
//! space a reader gives back (`gaon_abi::trace`; the rings are in `kernel/trace.rs`).

use gaon_abi::invocation::{TraceControlConsumeArgs, TraceControlSetMaskArgs, TraceControlSetMaskReply};
use gaon_abi::{Error, Label};

use super::Args;
use super::tcb::Tcb;
use crate::kernel::{Kernel, Platform};
use crate::obj::Ptr;

/// A checked TraceControl invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    /// Record these classes from now on.
    SetMask(u64),
    /// Core `cpu`'s ring's new tail.
    Consume { cpu: u64, upto: u64 },
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_trace_control(&self, label: Label, a: &Args) -> Result<Op, Error> {
        match label {
            Label::TraceControlSetMask => {
                let mask = a.decode::<TraceControlSetMaskArgs>()?.mask;
                self.check_trace_mask(mask)?;
                Ok(Op::SetMask(mask))
            }
            Label::TraceControlConsume => {
                let c = a.decode::<TraceControlConsumeArgs>()?;
                self.check_trace_consume(c.cpu, c.upto)?;
                Ok(Op::Consume {
                    cpu: c.cpu,
                    upto: c.upto,
                })
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_trace_control(&mut self, t: Ptr<Tcb>, op: Op) -> usize {
        match op {
            Op::SetMask(mask) => {
                let previous = self.set_trace_mask(mask);
                super::reply_with(t, &TraceControlSetMaskReply { previous })
            }
            Op::Consume { cpu, upto } => {
                self.trace_consume(cpu, upto);
                0
            }
        }
    }
}
