//! The server runtime: a loop that receives on an endpoint, hands each request to a
//! handler (usually the IDL-generated `dispatch`), and replies, with badge-based client
//! identity, notifications, and fault messages routed to their own handler methods.

use gaon_abi::{FaultKind, IpcBuffer, MsgInfo};
use zerocopy::FromZeros;

use crate::ipc::{self, CPtr, Msg};
use crate::rpc::{Dispatch, Incoming};

/// What a server does with what arrives.
pub trait Handler {
    /// A request from the client whose capability carries `msg.badge`. Read its words
    /// with `msg.words()`, write the reply's with `msg.reply(..)` (or answer an error, or
    /// nothing); usually the IDL-generated `dispatch(self, msg)` does both.
    fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch;

    /// A bound notification fired with these bits.
    fn notified(&mut self, bits: u64) {
        let _ = bits;
    }

    /// A thread this server supervises faulted (the endpoint is its fault endpoint).
    /// Return `Some(pc)` to resume it at `pc`, `None` to leave it stopped.
    fn fault(&mut self, badge: u64, kind: FaultKind, words: [u64; 4]) -> Option<u64> {
        let _ = (badge, kind, words);
        None
    }
}

/// Where a server listens.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// The endpoint it receives on.
    pub ep: CPtr,
    /// Its reply object.
    pub reply: CPtr,
    /// Where a capability that comes with a request is put (`None`: accept none). The
    /// handler must move or delete it before the next request.
    pub cap_slot: Option<RecvSlot>,
}

/// A slot for received capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvSlot {
    /// The CNode holding it.
    pub cnode: CPtr,
    /// Its index in that CNode.
    pub index: u64,
    /// The CPtr the server uses to name it (how `cnode`/`index` map into the server's
    /// CSpace; in a single-level CSpace it is `index`).
    pub cptr: CPtr,
}

impl Server {
    /// Serve forever.
    pub fn run<H: Handler>(&self, handler: &mut H) -> ! {
        // The loop keeps this thread's IPC buffer (where long messages and received
        // capabilities go) rather than looking it up for every message.
        let mut no_buffer = IpcBuffer::new_zeroed();
        let buf = match ipc::ipc_buffer() {
            Some(b) => b,
            None => &mut no_buffer,
        };
        self.arm_cap_slot(buf);
        let mut m = ipc::recv(self.ep, self.reply);
        loop {
            m = self.handle(handler, m, buf);
        }
    }

    /// Handle one arrival and wait for the next.
    #[inline]
    fn handle<H: Handler>(&self, handler: &mut H, m: Msg, buf: &mut IpcBuffer) -> Msg {
        if m.info.is_notification() {
            handler.notified(m.badge);
            return ipc::recv(self.ep, self.reply);
        }
        if m.info.is_kernel() {
            // The receive itself failed (e.g. the reply object was taken); try again.
            return ipc::recv(self.ep, self.reply);
        }
        if let Some(kind) = fault_kind(&m) {
            return match handler.fault(m.badge, kind, m.mr) {
                Some(pc) => self.answer(MsgInfo::new(0, 1, 0), [pc, 0, 0, 0]),
                None => ipc::recv(self.ep, self.reply),
            };
        }
        let got_cap = m.info.extra_caps() > 0 && m.info.caps_unwrapped() & 1 == 0;
        let caps_buf = [self.cap_slot.map_or(0, |s| s.cptr)];
        let caps: &[CPtr] = if got_cap && self.cap_slot.is_some() {
            &caps_buf
        } else {
            &[]
        };
        let mut incoming = Incoming::new(m.badge, m.info.label(), caps, m.mr, m.info.length(), &mut buf.msg);
        let d = handler.request(&mut incoming);
        let mr = incoming.reply_registers();
        self.arm_cap_slot(buf);
        match d {
            Dispatch::Reply { label, len } => self.answer(MsgInfo::new(label, len, 0), mr),
            Dispatch::NoReply => ipc::recv(self.ep, self.reply),
        }
    }

    #[inline]
    fn answer(&self, info: MsgInfo, mr: [u64; 4]) -> Msg {
        ipc::reply_recv(self.ep, self.reply, info, mr)
    }

    fn arm_cap_slot(&self, buf: &mut IpcBuffer) {
        buf.receive_cnode = self.cap_slot.map_or(0, |s| s.cnode);
        buf.receive_index = self.cap_slot.map_or(0, |s| s.index);
    }
}

/// A fault message: sent by the kernel on a fault endpoint whose badge has
/// [`FAULT_BADGE`], with the fault kind as its label and four words.
fn fault_kind(m: &Msg) -> Option<FaultKind> {
    if m.badge & FAULT_BADGE == 0 || m.info.length() != gaon_abi::fault::FAULT_MSG_LENGTH {
        return None;
    }
    FaultKind::from_raw(m.info.label())
}

/// Badge bit a supervisor sets on the fault-endpoint caps it gives its children, so the
/// runtime can tell fault messages from requests on a shared endpoint.
pub const FAULT_BADGE: u64 = 1 << 63;
