//! The server runtime: a loop that receives on an endpoint, hands each request to a
//! handler (usually the IDL-generated `dispatch`), and replies, with badge-based client
//! identity, notifications, and fault messages routed to their own handler methods.

use gaon_abi::{FaultKind, MsgInfo};

use crate::ipc::{self, CPtr, Msg};
use crate::rpc::{self, Dispatch, Incoming};

/// What a server does with what arrives.
pub trait Handler {
    /// A request from the client whose capability carries `msg.badge`. Write the reply
    /// payload into `reply` and say how long it is (or that there is none).
    fn request(&mut self, msg: &Incoming<'_>, reply: &mut [u8]) -> Dispatch;

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
        self.arm_cap_slot();
        let mut m = ipc::recv(self.ep, self.reply);
        loop {
            m = self.handle(handler, m);
        }
    }

    /// Handle one arrival and wait for the next.
    fn handle<H: Handler>(&self, handler: &mut H, m: Msg) -> Msg {
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
        let mut data = [0u8; crate::rpc_max()];
        let words = m.info.length();
        let len = rpc::mrs_to_bytes(&m.mr, words, &mut data);
        let got_cap = m.info.extra_caps() > 0 && m.info.caps_unwrapped() & 1 == 0;
        let caps_buf = [self.cap_slot.map_or(0, |s| s.cptr)];
        let caps: &[CPtr] = if got_cap && self.cap_slot.is_some() {
            &caps_buf
        } else {
            &[]
        };
        let incoming = Incoming {
            badge: m.badge,
            label: m.info.label(),
            data: &data[..len],
            caps,
        };
        let mut out = [0u8; crate::rpc_max()];
        let d = handler.request(&incoming, &mut out);
        self.arm_cap_slot();
        match d {
            Dispatch::Reply { label, len } => {
                let mut mr = [0u64; 4];
                let words = rpc::bytes_to_mrs(&out[..len.min(out.len())], &mut mr).unwrap_or(0);
                self.answer(MsgInfo::new(label, words, 0), mr)
            }
            Dispatch::NoReply => ipc::recv(self.ep, self.reply),
        }
    }

    fn answer(&self, info: MsgInfo, mr: [u64; 4]) -> Msg {
        ipc::reply_recv(self.ep, self.reply, info, mr)
    }

    fn arm_cap_slot(&self) {
        if let Some(b) = ipc::ipc_buffer() {
            b.receive_cnode = self.cap_slot.map_or(0, |s| s.cnode);
            b.receive_index = self.cap_slot.map_or(0, |s| s.index);
        }
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
