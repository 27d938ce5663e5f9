//! The generated `dispatch` against what a hostile or careless client can send: unknown
//! labels, truncated, over-long and out-of-range requests, one-way methods reached by
//! Call, two-way methods sent without waiting, and capabilities where none belong. The
//! code under test is the snapshot of `tests/every_kind.idl` (which `snapshots.rs` keeps
//! equal to what the compiler generates), compiled against libl4.
#![allow(clippy::unwrap_used, reason = "tests")]

include!("snapshots/every_kind.rs");

use every_kind::{EveryKindServer, KindError, label};
use libl4::ipc::CPtr;
use libl4::rpc::{BAD_MESSAGE, Dispatch, Incoming, Lease, UNKNOWN_METHOD};
use zerocopy::FromZeros;

/// Counts the calls that reach it.
#[derive(Default)]
struct Counting {
    calls: u32,
    notified: u64,
}

impl EveryKindServer for Counting {
    #[allow(clippy::too_many_arguments, reason = "the interface has nine scalars")]
    fn scalars(&mut self, _: u64, _: u8, _: u16, _: u32, _: u64, _: i8, _: i16, _: i32, _: i64, _: bool) -> i64 {
        self.calls += 1;
        0
    }
    fn arrays(&mut self, _: u64, _: &[u8], _: &[u16], _: &[u32], _: &[u64]) -> heapless::Vec<u64, 4> {
        self.calls += 1;
        heapless::Vec::new()
    }
    fn fixed(&mut self, _: u64, _: &[u8; 3], _: &[i16; 5], _: &[u64; 2]) -> [u32; 3] {
        self.calls += 1;
        [0; 3]
    }
    fn greet(&mut self, _: u64, _: &str) -> Result<heapless::String<40>, KindError> {
        self.calls += 1;
        Ok(heapless::String::new())
    }
    fn take_cap(&mut self, _: u64, c: CPtr) -> u64 {
        self.calls += 1;
        c
    }
    fn checksum(&mut self, _: u64, _: Lease, _: u32) -> u32 {
        self.calls += 1;
        0
    }
    fn poke(&mut self, _: u64) -> Result<(), KindError> {
        self.calls += 1;
        Ok(())
    }
    fn notify(&mut self, _: u64, bits: u64) {
        self.calls += 1;
        self.notified |= bits;
    }
    fn nothing(&mut self, _: u64) {
        self.calls += 1;
    }
}

/// Dispatch one request as the server loop hands it over: words 0..3 in registers, the
/// rest in the IPC buffer. Returns the decision and the label and length of the reply
/// the loop sends for it.
fn dispatch(s: &mut Counting, label: u64, words: &[u64], caps: &[CPtr]) -> (Dispatch, (u64, usize)) {
    let mut buf = [0u64; 120];
    let mut mr = [0u64; 4];
    for (i, &w) in words.iter().enumerate() {
        match mr.get_mut(i) {
            Some(r) => *r = w,
            None => buf[i] = w,
        }
    }
    let mut msg = Incoming::new(7, label, caps, mr, words.len(), &mut buf);
    let d = every_kind::dispatch(s, &mut msg);
    (d, d.answer())
}

#[test]
fn unknown_labels_are_answered_and_reach_no_method() {
    let mut s = Counting::default();
    for l in [0, 10, 99, 0xffff, (1 << 48) - 1] {
        for words in [&[][..], &[1, 2, 3][..], &[u64::MAX; 120][..]] {
            assert_eq!(dispatch(&mut s, l, words, &[]).1, (UNKNOWN_METHOD, 0), "label {l}");
            assert_eq!(
                dispatch(&mut s, l, words, &[5]).1,
                (UNKNOWN_METHOD, 0),
                "label {l}, a cap"
            );
        }
    }
    assert_eq!(s.calls, 0);
}

#[test]
fn truncated_requests_of_every_method_are_refused() {
    let mut s = Counting::default();
    // Each method with arguments, given every length short of its request.
    let methods = [
        (label::SCALARS, every_kind::ScalarsRequest::WORDS),
        (label::ARRAYS, every_kind::ArraysRequest::WORDS),
        (label::FIXED, every_kind::FixedRequest::WORDS),
        (label::GREET, every_kind::GreetRequest::WORDS),
        (label::CHECKSUM, every_kind::ChecksumRequest::WORDS),
        (label::NOTIFY, every_kind::NotifyRequest::WORDS),
    ];
    for (l, words) in methods {
        for n in 0..words {
            let caps: &[CPtr] = if l == label::CHECKSUM { &[5] } else { &[] };
            assert_eq!(
                dispatch(&mut s, l, &vec![0; n], caps).1,
                (BAD_MESSAGE, 0),
                "label {l}, {n} words"
            );
        }
    }
    // A capability or a lease argument without the capability.
    assert_eq!(dispatch(&mut s, label::TAKE_CAP, &[], &[]).1, (BAD_MESSAGE, 0));
    let lease = every_kind::ChecksumRequest::new_zeroed();
    assert_eq!(
        dispatch(&mut s, label::CHECKSUM, lease.as_words(), &[]).1,
        (BAD_MESSAGE, 0)
    );
    assert_eq!(s.calls, 0);
}

#[test]
fn out_of_range_words_are_refused() {
    let mut s = Counting::default();
    // Every word of every fixed-size request set to all ones: lengths over their
    // bounds, integers out of range, a bool that is not 0 or 1, a lease window past
    // its frame.
    for (l, words) in [
        (label::SCALARS, every_kind::ScalarsRequest::WORDS),
        (label::ARRAYS, every_kind::ArraysRequest::WORDS),
        (label::GREET, every_kind::GreetRequest::WORDS),
        (label::CHECKSUM, every_kind::ChecksumRequest::WORDS),
    ] {
        assert_eq!(
            dispatch(&mut s, l, &vec![u64::MAX; words], &[5]).1,
            (BAD_MESSAGE, 0),
            "label {l}"
        );
    }
    assert_eq!(s.calls, 0);
}

#[test]
fn one_way_methods_are_answered_when_called() {
    let mut s = Counting::default();
    // Well formed: the method runs and the loop's answer is empty (label 0), which a
    // caller that used Call receives; a sender receives nothing.
    assert_eq!(
        dispatch(&mut s, label::NOTIFY, &[0b10], &[]),
        (Dispatch::NoReply, (0, 0))
    );
    // With stray words after the request, and with a capability it does not take.
    assert_eq!(dispatch(&mut s, label::NOTIFY, &[0b1, 9, 9, 9, 9, 9], &[]).1, (0, 0));
    assert_eq!(dispatch(&mut s, label::NOTIFY, &[0b100], &[5]).1, (0, 0));
    assert_eq!((s.calls, s.notified), (3, 0b111));
    // Malformed: BAD_MESSAGE, and the method does not run.
    assert_eq!(dispatch(&mut s, label::NOTIFY, &[], &[]).1, (BAD_MESSAGE, 0));
    assert_eq!(s.calls, 3);
}

#[test]
fn two_way_methods_answer_whoever_sent_them() {
    let mut s = Counting::default();
    // The generated code cannot tell Call from Send: it always answers (the kernel
    // drops the answer to a Send). A capability a method does not take is ignored (the
    // server loop deletes it from its receive slot).
    assert_eq!(dispatch(&mut s, label::POKE, &[], &[]).1, (0, 0));
    assert_eq!(dispatch(&mut s, label::NOTHING, &[], &[5]).1, (0, 0));
    assert_eq!(dispatch(&mut s, label::TAKE_CAP, &[], &[5]).1, (0, 1));
    assert_eq!(s.calls, 3);
}

#[test]
fn a_missing_capability_is_refused_and_the_reason_known() {
    use libl4::MsgInfo;
    use libl4::rpc::NoCap;
    let mut s = Counting::default();
    let mut buf = [0u64; 120];
    let lease = every_kind::ChecksumRequest::new_zeroed();
    // As the server loop hands it over: the message info as it arrived and whether the
    // server offered a receive slot.
    let cases = [
        (MsgInfo::new(label::TAKE_CAP, 0, 0), false, NoCap::NotAccepted),
        (
            MsgInfo::new(label::TAKE_CAP, 0, 1).with_unwrapped(1),
            true,
            NoCap::Unwrapped,
        ),
        (MsgInfo::new(label::TAKE_CAP, 0, 0), true, NoCap::NoneArrived),
    ];
    for (info, accepts, why) in cases {
        let mut msg = Incoming::new(7, label::TAKE_CAP, &[], [0; 4], 0, &mut buf).arrived(info, accepts);
        assert_eq!(msg.no_cap(), Some(why));
        assert_eq!(every_kind::dispatch(&mut s, &mut msg), Dispatch::bad_message());
        let mut msg =
            Incoming::new(7, label::CHECKSUM, &[], [0; 4], lease.as_words().len(), &mut buf).arrived(info, accepts);
        assert_eq!(every_kind::dispatch(&mut s, &mut msg), Dispatch::bad_message());
    }
    let msg = Incoming::new(7, label::TAKE_CAP, &[5], [0; 4], 0, &mut buf);
    assert_eq!(msg.no_cap(), None);
    assert_eq!(s.calls, 0);
    assert!(NoCap::NotAccepted.why().contains("cap_slot"));
}
