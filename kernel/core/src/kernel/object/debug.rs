//! The Debug capability: the kernel console. `DebugLogBind` sends the console output
//! to the kernel log page (`gaon_abi::klog`) and names the notification its reader
//! waits on; the `Debug*` syscalls that reach outside the thread check for the cap.

use gaon_abi::invocation::DebugLogBindArgs;
use gaon_abi::{Error, Label};

use super::Args;
use super::notification::Notification;
use super::tcb::Tcb;
use crate::kernel::{Kernel, Platform};
use crate::obj::Ptr;

/// A checked Debug invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum Op {
    /// Write the console to the log page and signal this notification with this badge
    /// (None: nobody is signalled; the output still goes to the page).
    LogBind(Option<(Ptr<Notification>, u64)>),
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_debug(&self, t: Ptr<Tcb>, label: Label, a: &Args) -> Result<Op, Error> {
        if label != Label::DebugLogBind {
            return Err(Error::UnknownInvocation);
        }
        let c = a.decode::<DebugLogBindArgs>()?.notification;
        Ok(Op::LogBind(self.decode_signal_target(t, c)?))
    }

    pub(super) fn perform_debug(&mut self, op: Op) -> usize {
        let Op::LogBind(reader) = op;
        match reader {
            None => self.log_ntfn = None,
            Some((n, badge)) => {
                self.log_ntfn = Some(n);
                self.log_badge = badge;
                self.platform.log_to(self.log_page);
            }
        }
        0
    }

    /// If console output went to the kernel log page, signal its reader. Called on the
    /// way out of the kernel, before the next thread is chosen.
    #[inline]
    pub(in crate::kernel) fn signal_log(&mut self) {
        if let Some(n) = self.log_ntfn
            && self.platform.log_pending()
        {
            self.signal(n, self.log_badge);
        }
    }

    /// Write to the kernel console.
    pub(in crate::kernel) fn log(&mut self, args: core::fmt::Arguments<'_>) {
        struct W<'a, P: Platform>(&'a mut P);
        impl<P: Platform> core::fmt::Write for W<'_, P> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                for b in s.bytes() {
                    self.0.put_char(b);
                }
                Ok(())
            }
        }
        let _ = core::fmt::write(&mut W(&mut self.platform), args);
    }
}
