//! The server runtime: a loop that receives on an endpoint, hands each request to a
//! handler (usually the IDL-generated `dispatch`), and replies, with badge-based client
//! identity, notifications, and fault messages routed to their own handler methods.
//!
//! The loop never spins, whatever a client sends. The kernel will not receive with a
//! reply object that still holds a caller (`Recv` answers `IllegalOperation`), so after
//! every arrival the loop answers through the reply object before it receives again
//! (one `ReplyRecv`): with the handler's reply, or, when there is nothing to say (a
//! one-way method, a notification, a fault the handler dealt with), with an empty
//! message (label 0, no words), which reaches someone only if a caller waits: a
//! one-way method reached by `Call` gets an empty answer instead of wedging the server.
//! A capability that came with a request and that the handler left in the receive slot
//! is deleted, so the slot is empty for the next one. If receiving fails (the endpoint
//! or the reply object is gone or unusable), the loop frees the reply object and tries
//! once more; if that fails too, the failure is for good: [`Server::serve`] returns the
//! error and [`Server::run`] reports it and exits.

use gaon_abi::syscall::MSG_REGISTERS;
use gaon_abi::{Error, Fault, IpcBuffer, MsgInfo};
use zerocopy::FromZeros;

use crate::cap::CNode;
use crate::ipc::{self, CPtr, Msg};
use crate::rpc::{Dispatch, Incoming, SERVER_FAILED};

/// What a server does with what arrives.
pub trait Handler {
    /// A request from the client whose capability carries `msg.badge`. Read its words
    /// with `msg.words()`, write the reply's with `msg.reply(..)` (or answer an error, or
    /// nothing); usually the IDL-generated `dispatch(self, msg)` does both. A caller
    /// that waits for an answer to [`Dispatch::NoReply`] gets an empty one.
    fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch;

    /// A bound notification fired with these bits.
    fn notified(&mut self, bits: u64) {
        let _ = bits;
    }

    /// A thread this server supervises faulted (the endpoint is its fault endpoint).
    /// Return `Some(pc)` to resume it at `pc`. Return `None` after stopping it for good
    /// (suspend or delete its Tcb, which also takes it out of the reply object); a
    /// thread still waiting in the reply object is answered with an empty message
    /// like any other caller, which resumes it where it faulted.
    fn fault(&mut self, badge: u64, fault: Fault) -> Option<u64> {
        let _ = (badge, fault);
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
    /// Where a capability that comes with a request is put (`None`: accept none). It
    /// must be empty when the server starts. The handler moves the capability elsewhere
    /// to keep it; whatever is still there when the handler returns is deleted.
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

/// Exit status of a server whose loop stopped because it could no longer receive
/// (see [`Server::run`]).
pub const RECEIVE_FAILED_STATUS: u8 = 102;

/// Registers of a reply.
type Answer = (MsgInfo, [u64; MSG_REGISTERS]);

/// The answer when there is nothing to say: label 0, no words. It reaches nobody unless
/// a caller waits in the reply object.
const NOTHING: Answer = (MsgInfo::new(0, 0, 0), [0; MSG_REGISTERS]);

/// The answer for a caller found waiting in the reply object after a failed receive.
const STALE: Answer = (MsgInfo::new(SERVER_FAILED, 0, 0), [0; MSG_REGISTERS]);

/// The syscalls the loop makes: the kernel's, or a model of it in the tests.
trait Port {
    /// Receive with the reply object.
    fn recv(&mut self) -> Msg;
    /// Answer whoever waits in the reply object (if anyone), then receive.
    fn reply_recv(&mut self, answer: Answer) -> Msg;
    /// Delete the capability in `slot`, if there is one.
    fn delete(&mut self, slot: RecvSlot);
    /// Receive with the reply object if something waits (else `WouldBlock`).
    fn nb_recv(&mut self) -> Msg;
    /// Answer whoever waits in the reply object (if anyone), without receiving.
    fn answer(&mut self, answer: Answer);
}

/// The kernel, for a server's endpoint and reply object.
struct Kernel {
    ep: CPtr,
    reply: CPtr,
}

impl Port for Kernel {
    #[inline]
    fn recv(&mut self) -> Msg {
        ipc::recv(self.ep, self.reply)
    }

    #[inline]
    fn reply_recv(&mut self, (info, mr): Answer) -> Msg {
        ipc::reply_recv(self.ep, self.reply, info, mr)
    }

    #[inline]
    fn nb_recv(&mut self) -> Msg {
        ipc::nb_recv(self.ep, self.reply)
    }

    #[inline]
    fn answer(&mut self, (info, mr): Answer) {
        // Nobody may wait (a one-way request): then there is no one to answer.
        let _ = ipc::send(self.reply, info, mr);
    }

    fn delete(&mut self, slot: RecvSlot) {
        // An empty slot (the handler moved the capability away) is no error worth
        // reporting: either way the slot is empty afterwards.
        let _ = CNode(slot.cnode).delete(slot.index);
    }
}

/// True if the receive failed (the kernel's error, not a message or a notification).
#[inline]
fn failed(m: &Msg) -> bool {
    m.info.is_kernel() && !m.info.is_notification()
}

/// After a failed receive: a reply object still holding a caller makes Recv fail, and
/// ReplyRecv answers that caller and frees it. Nothing else that makes a receive fail
/// goes away by trying again, so a second failure is the kernel's error for good.
#[cold]
#[inline(never)]
fn recover<P: Port>(port: &mut P) -> Result<Msg, Error> {
    let m = port.reply_recv(STALE);
    if failed(&m) {
        return Err(m.error().unwrap_or(Error::IllegalOperation));
    }
    Ok(m)
}

impl Server {
    /// Serve until receiving fails for good (see [`Server::serve`]); then report it on
    /// the console and exit with [`RECEIVE_FAILED_STATUS`].
    pub fn run<H: Handler>(&self, handler: &mut H) -> ! {
        let e = self.serve(handler);
        crate::log::print_fmt(format_args!(
            "{}: server loop stopped: cannot receive on endpoint {:#x} with reply object {:#x}: {e:?}\n",
            crate::start::name(),
            self.ep,
            self.reply
        ));
        crate::start::exit(RECEIVE_FAILED_STATUS)
    }

    /// Serve: receive, hand each arrival to `handler`, answer, and receive again.
    /// Returns only if receiving fails twice in a row (the endpoint or the reply object
    /// was deleted, or is not one, or another thread receives with the reply object):
    /// the kernel's error.
    pub fn serve<H: Handler>(&self, handler: &mut H) -> Error {
        let mut kernel = Kernel {
            ep: self.ep,
            reply: self.reply,
        };
        self.serve_on(&mut kernel, handler)
    }

    /// Handle what is waiting, without blocking: up to `max` requests (and
    /// notifications), each answered through the reply object at once (`Send` on it).
    /// For a server that has other work between requests (the trace server drains
    /// rings once a period). Returns how many it handled, or the kernel's error if
    /// receiving failed for another reason than nothing waiting.
    pub fn poll<H: Handler>(&self, handler: &mut H, max: usize) -> Result<usize, Error> {
        let mut kernel = Kernel {
            ep: self.ep,
            reply: self.reply,
        };
        self.poll_on(&mut kernel, handler, max)
    }

    fn poll_on<P: Port, H: Handler>(&self, port: &mut P, handler: &mut H, max: usize) -> Result<usize, Error> {
        let mut no_buffer = IpcBuffer::new_zeroed();
        let buf = self.armed_buffer(&mut no_buffer);
        let mut recovered = false;
        let mut n = 0;
        while n < max {
            let m = port.nb_recv();
            if failed(&m) {
                match m.error() {
                    Some(Error::WouldBlock) => return Ok(n),
                    // A caller left in the reply object makes the receive fail: it is
                    // answered (as `serve` does) and the receive tried once more.
                    _ if !recovered => {
                        recovered = true;
                        port.answer(STALE);
                        continue;
                    }
                    e => return Err(e.unwrap_or(Error::IllegalOperation)),
                }
            }
            n += 1;
            let answer = if m.info.is_notification() {
                handler.notified(m.badge);
                NOTHING
            } else {
                self.handle(handler, port, &m, buf)
            };
            port.answer(answer);
        }
        Ok(max)
    }

    fn serve_on<P: Port, H: Handler>(&self, port: &mut P, handler: &mut H) -> Error {
        // The loop keeps this thread's IPC buffer (where long messages and received
        // capabilities go) rather than looking it up for every message.
        let mut no_buffer = IpcBuffer::new_zeroed();
        let buf = self.armed_buffer(&mut no_buffer);
        let mut m = port.recv();
        loop {
            let answer = if m.info.is_notification() {
                handler.notified(m.badge);
                NOTHING
            } else if m.info.is_kernel() {
                match recover(port) {
                    Ok(next) => {
                        m = next;
                        continue;
                    }
                    Err(e) => return e,
                }
            } else {
                self.handle(handler, port, &m, buf)
            };
            m = port.reply_recv(answer);
        }
    }

    /// Handle a message (a request or a fault); returns the answer for the reply object.
    #[inline]
    fn handle<P: Port, H: Handler>(&self, handler: &mut H, port: &mut P, m: &Msg, buf: &mut IpcBuffer) -> Answer {
        if let Some(fault) = fault_of(m) {
            return match handler.fault(m.badge, fault) {
                Some(pc) => (MsgInfo::new(0, 1, 0), [pc, 0, 0, 0]),
                None => NOTHING,
            };
        }
        // A capability was put in the receive slot (not one unwrapped into a badge).
        let got_cap = m.info.extra_caps() > 0 && m.info.caps_unwrapped() & 1 == 0;
        let slot = if got_cap { self.cap_slot } else { None };
        let caps_buf = [slot.map_or(0, |s| s.cptr)];
        let caps: &[CPtr] = if slot.is_some() { &caps_buf } else { &[] };
        let mut incoming = Incoming::new(m.badge, m.info.label(), caps, m.mr, m.info.length(), &mut buf.msg)
            .arrived(m.info, self.cap_slot.is_some());
        let d = handler.request(&mut incoming);
        let mr = incoming.reply_registers();
        if let Some(s) = slot {
            port.delete(s);
        }
        self.arm_cap_slot(buf);
        let (label, len) = d.answer();
        (MsgInfo::new(label, len, 0), mr)
    }

    /// This thread's IPC buffer (where long messages and received capabilities go), or
    /// `spare` without one, set up to receive a capability in the server's slot.
    fn armed_buffer<'a>(&self, spare: &'a mut IpcBuffer) -> &'a mut IpcBuffer {
        let buf = match ipc::ipc_buffer() {
            Some(b) => b,
            None => spare,
        };
        self.arm_cap_slot(buf);
        buf
    }

    fn arm_cap_slot(&self, buf: &mut IpcBuffer) {
        buf.receive_cnode = self.cap_slot.map_or(0, |s| s.cnode);
        buf.receive_index = self.cap_slot.map_or(0, |s| s.index);
    }
}

/// A fault message: sent by the kernel on a fault endpoint whose badge has
/// [`FAULT_BADGE`], with the fault kind as its label and four words
/// ([`Fault::decode`]).
fn fault_of(m: &Msg) -> Option<Fault> {
    if m.badge & FAULT_BADGE == 0 || m.info.length() != gaon_abi::fault::FAULT_MSG_LENGTH {
        return None;
    }
    Fault::decode(m.info.label(), m.mr)
}

/// Badge bit a supervisor sets on the fault-endpoint caps it gives its children, so the
/// runtime can tell fault messages from requests on a shared endpoint.
pub const FAULT_BADGE: u64 = 1 << 63;

#[cfg(test)]
mod tests {
    //! The loop against a model of the kernel's endpoint and reply-object rules
    //! (`kernel/core/src/kernel/ipc.rs`), driven by the generated `Console` dispatch
    //! (its `focus` is one-way) with every shape of message a client can send.

    extern crate std;

    use std::collections::VecDeque;
    use std::vec::Vec;

    use super::*;
    use crate::idl::console::{self, ConsoleError, ConsoleServer};
    use crate::rpc::{BAD_MESSAGE, UNKNOWN_METHOD};

    /// Syscalls after which a test calls the loop spinning.
    const SPINNING: usize = 1000;

    /// One arrival: the message, and whether its sender waits in the reply object for
    /// an answer (it used Call).
    struct Arrival {
        msg: Msg,
        call: bool,
    }

    fn request(label: u64, words: &[u64], call: bool) -> Arrival {
        let mut mr = [0; 4];
        for (r, w) in mr.iter_mut().zip(words) {
            *r = *w;
        }
        Arrival {
            msg: Msg {
                badge: 1,
                info: MsgInfo::new(label, words.len(), 0),
                mr,
            },
            call,
        }
    }

    fn kernel_error(e: Error) -> Msg {
        Msg {
            badge: 0,
            info: MsgInfo::kernel(e as u64, 0),
            mr: [0; 4],
        }
    }

    /// The kernel as the loop sees it: a Call's sender waits in the reply object until
    /// it is answered; Recv with a reply object that holds a caller fails with
    /// `IllegalOperation` and changes nothing; ReplyRecv answers first. When the
    /// arrivals run out the endpoint is deleted: the blocked receive is cancelled and
    /// every later one fails its lookup.
    #[derive(Default)]
    struct Model {
        arrivals: VecDeque<Arrival>,
        /// The arrival whose caller waits in the reply object (`usize::MAX`: a caller
        /// from before the loop started).
        held: Option<usize>,
        taken: usize,
        /// Who got which answer: (arrival, label, words).
        answers: Vec<(usize, u64, usize, [u64; 4])>,
        /// Receives the kernel refused because the reply object was busy.
        refused: usize,
        deleted: Vec<RecvSlot>,
        syscalls: usize,
        gone: bool,
    }

    impl Model {
        fn new(arrivals: impl IntoIterator<Item = Arrival>) -> Self {
            Self {
                arrivals: arrivals.into_iter().collect(),
                ..Self::default()
            }
        }

        fn tick(&mut self) {
            self.syscalls += 1;
            assert!(self.syscalls < SPINNING, "the server loop spins");
        }

        fn next(&mut self) -> Msg {
            match self.arrivals.pop_front() {
                Some(a) => {
                    if a.call {
                        self.held = Some(self.taken);
                    }
                    self.taken += 1;
                    a.msg
                }
                None if !self.gone => {
                    self.gone = true;
                    kernel_error(Error::Cancelled)
                }
                None => kernel_error(Error::FailedLookup),
            }
        }

        /// The answer arrival `i` got, if any: (label, length, words).
        fn answer(&self, i: usize) -> Option<(u64, usize, [u64; 4])> {
            let mut it = self.answers.iter().filter(|a| a.0 == i);
            let a = it.next().map(|a| (a.1, a.2, a.3));
            assert!(it.next().is_none(), "arrival {i} was answered twice");
            a
        }
    }

    impl Port for Model {
        fn recv(&mut self) -> Msg {
            self.tick();
            if self.held.is_some() {
                self.refused += 1;
                return kernel_error(Error::IllegalOperation);
            }
            self.next()
        }

        fn reply_recv(&mut self, answer: Answer) -> Msg {
            // One syscall: the answer's tick is the receive's.
            Port::answer(self, answer);
            self.next()
        }

        fn delete(&mut self, slot: RecvSlot) {
            self.deleted.push(slot);
        }

        fn nb_recv(&mut self) -> Msg {
            self.tick();
            if self.held.is_some() {
                self.refused += 1;
                return kernel_error(Error::IllegalOperation);
            }
            if self.arrivals.is_empty() {
                return kernel_error(Error::WouldBlock);
            }
            self.next()
        }

        fn answer(&mut self, (info, mr): Answer) {
            self.tick();
            if let Some(i) = self.held.take() {
                // The kernel copies only the reply's length in words.
                let mut words = [0; 4];
                let n = info.length().min(4);
                words[..n].copy_from_slice(&mr[..n]);
                self.answers.push((i, info.label(), info.length(), words));
            }
        }
    }

    /// A console with no UART: counts what it is asked.
    #[derive(Default)]
    struct Console {
        written: usize,
        focused: u32,
        /// Capabilities taken by `notify_input`.
        given: u32,
        notified: u64,
        faults: u32,
        resume_at: Option<u64>,
    }

    impl ConsoleServer for Console {
        fn write(&mut self, _: u64, text: &str) -> u32 {
            self.written += text.len();
            text.len() as u32
        }
        fn read(&mut self, _: u64, _: u32) -> Result<heapless::Vec<u8, 256>, ConsoleError> {
            Err(ConsoleError::Empty)
        }
        fn set_name(&mut self, _: u64, _: &str) {}
        fn focus(&mut self, _: u64) {
            self.focused += 1;
        }
        fn notify_input(&mut self, _: u64, _: CPtr) -> Result<(), ConsoleError> {
            self.given += 1;
            Ok(())
        }
        fn set_echo(&mut self, _: u64, _: bool) {}
    }

    impl Handler for Console {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            console::dispatch(self, msg)
        }
        fn notified(&mut self, bits: u64) {
            self.notified |= bits;
        }
        fn fault(&mut self, _: u64, _: Fault) -> Option<u64> {
            self.faults += 1;
            self.resume_at
        }
    }

    const SERVER: Server = Server {
        ep: 10,
        reply: 11,
        cap_slot: None,
    };

    /// A write request for `text`. The model delivers the first four words in
    /// registers and leaves the rest of the buffer zero, so the text must fit in words
    /// 1..3.
    fn write(text: &str, call: bool) -> Arrival {
        assert!(text.len() <= 24);
        let mut req = console::WriteRequest::new_zeroed();
        req.text[..text.len()].copy_from_slice(text.as_bytes());
        req.text_len = text.len() as u64;
        request(console::label::WRITE, req.as_words(), call)
    }

    /// Run the loop over `arrivals` until the endpoint is gone; the model and the
    /// console afterwards.
    fn serve(server: Server, arrivals: impl IntoIterator<Item = Arrival>) -> (Model, Console) {
        let mut model = Model::new(arrivals);
        let mut console = Console::default();
        let e = server.serve_on(&mut model, &mut console);
        assert_eq!(e, Error::FailedLookup, "the loop ends when the endpoint is gone");
        (model, console)
    }

    #[test]
    fn poll_answers_what_waits_and_returns_when_nothing_does() {
        let mut model = Model::new([
            write("hi", true),
            request(console::label::FOCUS, &[], true),
            request(99, &[1], true),
            write("sent", false),
            write("later", true),
        ]);
        let mut console = Console::default();
        assert_eq!(SERVER.poll_on(&mut model, &mut console, 4), Ok(4), "at most 4");
        assert_eq!(m_answers(&model), [(0, 0, 1), (1, 0, 0), (2, UNKNOWN_METHOD, 0)]);
        assert_eq!(SERVER.poll_on(&mut model, &mut console, 4), Ok(1), "then what is left");
        assert_eq!(model.answer(4), Some((0, 1, [5, 0, 0, 0])));
        assert_eq!(SERVER.poll_on(&mut model, &mut console, 4), Ok(0), "nothing waits");
        assert_eq!((model.refused, console.written, console.focused), (0, 11, 1));
        // A caller left in the reply object is answered, and polling goes on.
        model.held = Some(usize::MAX);
        assert_eq!(SERVER.poll_on(&mut model, &mut console, 4), Ok(0));
        assert!(model.answers.iter().any(|a| a.0 == usize::MAX && a.1 == SERVER_FAILED));
        // A receive that fails for good is the caller's to see.
        model.arrivals.clear();
        model.gone = true;
        model.held = None;
        let mut broken = Broken(model);
        assert_eq!(SERVER.poll_on(&mut broken, &mut console, 4), Err(Error::FailedLookup));
    }

    /// A port whose endpoint is gone: every receive fails its lookup.
    struct Broken(Model);

    impl Port for Broken {
        fn recv(&mut self) -> Msg {
            kernel_error(Error::FailedLookup)
        }
        fn reply_recv(&mut self, _: Answer) -> Msg {
            kernel_error(Error::FailedLookup)
        }
        fn delete(&mut self, _: RecvSlot) {}
        fn nb_recv(&mut self) -> Msg {
            self.0.tick();
            kernel_error(Error::FailedLookup)
        }
        fn answer(&mut self, a: Answer) {
            Port::answer(&mut self.0, a);
        }
    }

    fn m_answers(m: &Model) -> Vec<(usize, u64, usize)> {
        m.answers.iter().map(|a| (a.0, a.1, a.2)).collect()
    }

    #[test]
    fn a_one_way_method_reached_by_call_is_answered() {
        let (m, c) = serve(
            SERVER,
            [
                request(console::label::FOCUS, &[], true),
                request(console::label::FOCUS, &[1, 2, 3], true),
                write("hi", true),
                request(console::label::FOCUS, &[], false),
                write("again", true),
            ],
        );
        assert_eq!(m.refused, 0, "the loop never received with a busy reply object");
        assert_eq!(c.focused, 3);
        assert_eq!(m.answer(0), Some((0, 0, [0; 4])), "an empty answer");
        assert_eq!(m.answer(1), Some((0, 0, [0; 4])));
        assert_eq!(m.answer(2), Some((0, 1, [2, 0, 0, 0])), "the next caller is served");
        assert_eq!(m.answer(3), None, "a Send gets nothing");
        assert_eq!(m.answer(4), Some((0, 1, [5, 0, 0, 0])));
    }

    #[test]
    fn every_malformed_request_is_answered_and_the_loop_goes_on() {
        let arrivals = [
            request(0, &[], true),
            request(99, &[1, 2, 3, 4], true),
            request((1 << 48) - 1, &[0; 120], true),
            request(console::label::WRITE, &[], true),
            request(console::label::WRITE, &[4096], true),
            request(console::label::WRITE, &[2, 0xffff], true),
            request(console::label::READ, &[1 << 40], true),
            request(console::label::SET_NAME, &[17], true),
            // Sent, not called: the answers go nowhere.
            request(99, &[], false),
            request(console::label::WRITE, &[], false),
            write("sent", false),
            write("ok", true),
        ];
        let n = arrivals.len();
        let (m, c) = serve(SERVER, arrivals);
        assert_eq!(m.refused, 0);
        let label = |i| m.answer(i).map(|a| a.0);
        assert_eq!(label(0), Some(UNKNOWN_METHOD));
        assert_eq!(label(1), Some(UNKNOWN_METHOD));
        assert_eq!(label(2), Some(UNKNOWN_METHOD), "a 120-word message");
        for i in 3..8 {
            assert_eq!(label(i), Some(BAD_MESSAGE), "arrival {i}");
        }
        for i in 8..11 {
            assert_eq!(label(i), None, "arrival {i} was sent");
        }
        assert_eq!(m.answer(n - 1), Some((0, 1, [2, 0, 0, 0])));
        assert_eq!(
            c.written,
            "sent".len() + "ok".len(),
            "a two-way method sent is still done"
        );
        // One syscall per arrival, plus the receive that finds the endpoint gone, the
        // retry, and the first receive.
        assert_eq!(m.syscalls, n + 2);
    }

    #[test]
    fn notifications_and_faults_leave_the_reply_object_free() {
        let (kind, mr) = Fault::VmFault {
            pc: 0x40_0000,
            addr: 0x1000,
            instruction: false,
            esr: 0,
        }
        .encode();
        let fault = |call| Arrival {
            msg: Msg {
                badge: FAULT_BADGE | 3,
                info: MsgInfo::new(kind as u64, gaon_abi::fault::FAULT_MSG_LENGTH, 0),
                mr,
            },
            call,
        };
        let notification = Arrival {
            msg: Msg {
                badge: 0b100,
                info: MsgInfo::notification(),
                mr: [0; 4],
            },
            call: false,
        };
        // A fault the handler leaves with `None` while the faulting thread (or a client
        // whose badge looks like a fault badge) still waits: it is answered.
        let (m, c) = serve(SERVER, [notification, fault(true), write("x", true)]);
        assert_eq!((c.notified, c.faults), (0b100, 1));
        assert_eq!(m.refused, 0);
        assert_eq!(m.answer(1), Some((0, 0, [0; 4])));
        assert_eq!(m.answer(2), Some((0, 1, [1, 0, 0, 0])));
        // A thread resumed at a new PC.
        let mut model = Model::new([fault(true)]);
        let mut console = Console {
            resume_at: Some(0x40_1000),
            ..Console::default()
        };
        let _ = SERVER.serve_on(&mut model, &mut console);
        assert_eq!(model.answer(0), Some((0, 1, [0x40_1000, 0, 0, 0])));
    }

    #[test]
    fn a_capability_the_handler_leaves_in_the_slot_is_deleted() {
        let slot = RecvSlot {
            cnode: 2,
            index: 70,
            cptr: 70,
        };
        let with_cap = |label, unwrapped| {
            let mut a = request(label, &[], true);
            a.msg.info = MsgInfo::new(label, 0, 1).with_unwrapped(unwrapped);
            a
        };
        let server = Server {
            cap_slot: Some(slot),
            ..SERVER
        };
        let (m, c) = serve(
            server,
            [
                with_cap(console::label::FOCUS, 0),
                with_cap(99, 0),
                // A capability to the endpoint itself arrives as its badge: nothing in
                // the slot.
                with_cap(99, 1),
                // A method that takes one: the handler has it, and the slot is emptied
                // after it whether or not the handler moved it away.
                with_cap(console::label::NOTIFY_INPUT, 0),
            ],
        );
        assert_eq!(m.deleted, [slot, slot, slot]);
        assert_eq!(m.answer(1).map(|a| a.0), Some(UNKNOWN_METHOD));
        assert_eq!((c.given, m.answer(3)), (1, Some((0, 0, [0; 4]))));
        // Without a receive slot nothing is delivered, and nothing is deleted.
        let (m, _) = serve(SERVER, [with_cap(99, 0)]);
        assert!(m.deleted.is_empty());
    }

    #[test]
    fn a_caller_left_in_the_reply_object_is_answered_first() {
        let mut model = Model::new([write("hi", true)]);
        model.held = Some(usize::MAX);
        let mut console = Console::default();
        assert_eq!(SERVER.serve_on(&mut model, &mut console), Error::FailedLookup);
        assert_eq!(model.refused, 1);
        assert_eq!(model.answer(usize::MAX).map(|a| a.0), Some(SERVER_FAILED));
        assert_eq!(model.answer(0), Some((0, 1, [2, 0, 0, 0])));
    }

    #[test]
    fn receive_failures_end_the_loop_instead_of_spinning() {
        let (m, _) = serve(SERVER, []);
        assert_eq!(m.syscalls, 2, "one receive, one retry");
        // The real syscalls: on the host every IPC fails (`UnknownSyscall`), as it
        // would with an endpoint that is not one.
        assert_eq!(SERVER.serve(&mut Console::default()), Error::UnknownSyscall);
    }
}
