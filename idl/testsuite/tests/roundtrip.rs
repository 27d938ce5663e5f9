//! Every argument kind goes through a generated client stub, the generated dispatch and a
//! server, and back; malformed and truncated requests are refused without calling it.
#![allow(
    clippy::many_single_char_names,
    clippy::cast_possible_wrap,
    clippy::decimal_bitwise_operands,
    reason = "test values"
)]

use core::cell::RefCell;

use gaon_idl_testsuite::Loopback;
use gaon_idl_testsuite::every_kind::{self, EveryKindClient, EveryKindServer, KindError};
use libl4::ipc::CPtr;
use libl4::rpc::{CallError, Dispatch, Incoming, Lease};
use zerocopy::FromZeros;

#[derive(Default)]
struct Impl {
    calls: u32,
    notified: u64,
    last_cap: CPtr,
}

impl EveryKindServer for Impl {
    fn scalars(
        &mut self,
        client: u64,
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        flag: bool,
    ) -> i64 {
        self.calls += 1;
        let sum =
            i64::from(a) + i64::from(b) + i64::from(c) + d as i64 + i64::from(e) + i64::from(f) + i64::from(g) + h;
        if flag { sum + client as i64 } else { -sum }
    }
    fn arrays(&mut self, _: u64, bytes: &[u8], halves: &[u16], words: &[u32], longs: &[u64]) -> heapless::Vec<u64, 4> {
        self.calls += 1;
        let mut v = heapless::Vec::new();
        for x in [
            bytes.len() as u64,
            halves.iter().map(|&h| u64::from(h)).sum(),
            words.iter().map(|&w| u64::from(w)).sum(),
            longs.iter().sum(),
        ] {
            let _ = v.push(x);
        }
        v
    }
    fn greet(&mut self, _: u64, name: &str) -> Result<heapless::String<40>, KindError> {
        self.calls += 1;
        if name.is_empty() {
            return Err(KindError::Empty);
        }
        let mut s = heapless::String::new();
        s.push_str("hello, ").map_err(|_| KindError::Big)?;
        s.push_str(name).map_err(|_| KindError::Big)?;
        Ok(s)
    }
    fn fixed(&mut self, client: u64, bytes: &[u8; 3], halves: &[i16; 5], longs: &[u64; 2]) -> [u32; 3] {
        self.calls += 1;
        let h: i32 = halves.iter().map(|&h| i32::from(h)).sum();
        [
            u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]),
            h.cast_unsigned(),
            (longs[0] ^ longs[1] ^ client) as u32,
        ]
    }
    fn take_cap(&mut self, _: u64, c: CPtr) -> u64 {
        self.calls += 1;
        self.last_cap = c;
        c * 2
    }
    fn checksum(&mut self, _: u64, data: Lease, seed: u32) -> u32 {
        self.calls += 1;
        seed ^ (data.offset as u32) ^ (data.len as u32) ^ (data.frame as u32)
    }
    fn poke(&mut self, _: u64) -> Result<(), KindError> {
        self.calls += 1;
        Err(KindError::Negative)
    }
    fn notify(&mut self, _: u64, bits: u64) {
        self.calls += 1;
        self.notified |= bits;
    }
    fn nothing(&mut self, _: u64) {
        self.calls += 1;
    }
}

fn dispatch(s: &mut Impl, m: &mut Incoming<'_>) -> Dispatch {
    every_kind::dispatch(s, m)
}

type Lb = Loopback<Impl, fn(&mut Impl, &mut Incoming<'_>) -> Dispatch>;

fn server() -> Lb {
    Loopback {
        server: RefCell::new(Impl::default()),
        dispatch,
        badge: 7,
    }
}

#[test]
fn scalars_round_trip_with_signs_and_badge() {
    let lb = server();
    let c = EveryKindClient::new(&lb);
    assert_eq!(
        c.scalars(255, 65535, u32::MAX, 1 << 40, -128, -32768, i32::MIN, -5, true),
        Ok(255 + 65535 + i64::from(u32::MAX) + (1 << 40) - 128 - 32768 + i64::from(i32::MIN) - 5 + 7)
    );
    assert_eq!(c.scalars(1, 1, 1, 1, 1, 1, 1, 1, false), Ok(-8));
}

#[test]
fn arrays_and_strings_round_trip() {
    let lb = server();
    let c = EveryKindClient::new(&lb);
    let r = c
        .arrays(&[9; 13], &[1, 2, 3, 4, 5], &[10, 20, 30], &[u64::MAX / 2, 1])
        .unwrap();
    assert_eq!(r.as_slice(), &[13, 15, 60, u64::MAX / 2 + 1]);
    assert_eq!(c.greet("Gaon").unwrap().as_str(), "hello, Gaon");
    assert_eq!(c.greet(""), Err(CallError::Remote(KindError::Empty)));
    assert_eq!(
        c.greet("012345678901234567890"),
        Err(CallError::TooLong),
        "21 bytes > 20"
    );
    assert_eq!(c.arrays(&[0; 14], &[], &[], &[]), Err(CallError::TooLong));
}

#[test]
fn fixed_arrays_round_trip_exactly_sized_and_padded() {
    let lb = server();
    let c = EveryKindClient::new(&lb);
    assert_eq!(
        c.fixed(&[1, 2, 3], &[-1, -2, 3, 4, -100], &[0xf0f0, 0x0f0f]),
        Ok([0x01_0203, (-96i32).cast_unsigned(), 0xffff ^ 7])
    );
    // Exactly the elements, padded to whole words: 3 bytes + 5 halves + 2 longs = 5 words.
    assert_eq!(every_kind::FixedRequest::WORDS, 5);
    assert_eq!(every_kind::FixedReply::WORDS, 2);
}

#[test]
fn long_messages_go_through_the_buffer() {
    // 13 bytes, 5 halves, 3 words, 2 longs, each with a length word: 3 words each.
    assert_eq!(every_kind::ArraysRequest::WORDS, 12);
    let lb = server();
    let c = EveryKindClient::new(&lb);
    let r = c.arrays(&[1; 13], &[2; 5], &[3; 3], &[4; 2]).unwrap();
    assert_eq!(r.as_slice(), &[13, 10, 9, 8]);
}

#[test]
fn caps_leases_errors_and_oneway() {
    let lb = server();
    let c = EveryKindClient::new(&lb);
    assert_eq!(c.take_cap(21), Ok(42));
    let lease = Lease {
        frame: 5,
        offset: 100,
        len: 200,
    };
    assert_eq!(c.checksum(lease, 0xff00), Ok(0xff00 ^ 100 ^ 200 ^ 5));
    let bad = Lease {
        frame: 5,
        offset: 4000,
        len: 200,
    };
    assert_eq!(c.checksum(bad, 0), Err(CallError::BadMessage), "window past the frame");
    assert_eq!(c.poke(), Err(CallError::Remote(KindError::Negative)));
    assert_eq!(c.notify(0b101), Ok(()));
    assert_eq!(c.nothing(), Ok(()));
    assert_eq!(lb.server.borrow().notified, 0b101);
}

fn raw(lb: &Lb, label: u64, data: &[u64], caps: &[CPtr]) -> Dispatch {
    let mut buf = [0u64; gaon_idl_testsuite::MAX];
    let server = &mut *lb.server.borrow_mut();
    gaon_idl_testsuite::deliver(server, every_kind::dispatch, 0, label, data, caps, &mut buf).0
}

#[test]
fn malformed_requests_are_refused_without_calling_the_server() {
    let lb = server();
    let bad = Dispatch::bad_message();
    // Truncated: fewer bytes than the request struct.
    assert_eq!(raw(&lb, every_kind::label::SCALARS, &[0; 1], &[]), bad);
    // A u8 argument out of range, a bool that is neither 0 nor 1, an i8 out of range.
    let mut req = every_kind::ScalarsRequest::new_zeroed();
    req.a = 256;
    assert_eq!(raw(&lb, every_kind::label::SCALARS, req.as_words(), &[]), bad);
    req.a = 0;
    req.flag = 2;
    assert_eq!(raw(&lb, every_kind::label::SCALARS, req.as_words(), &[]), bad);
    req.flag = 0;
    req.e = 200;
    assert_eq!(raw(&lb, every_kind::label::SCALARS, req.as_words(), &[]), bad);
    // An array length past its bound, and a huge one.
    let mut arr = every_kind::ArraysRequest::new_zeroed();
    arr.bytes_len = 14;
    assert_eq!(raw(&lb, every_kind::label::ARRAYS, arr.as_words(), &[]), bad);
    arr.bytes_len = u64::MAX;
    assert_eq!(raw(&lb, every_kind::label::ARRAYS, arr.as_words(), &[]), bad);
    // A string that is not UTF-8.
    let mut g = every_kind::GreetRequest::new_zeroed();
    g.name_len = 2;
    g.name[0] = 0xff;
    g.name[1] = 0xfe;
    assert_eq!(raw(&lb, every_kind::label::GREET, g.as_words(), &[]), bad);
    // Truncated long requests: one word short, and cut where the registers end.
    let arr = every_kind::ArraysRequest::new_zeroed();
    assert_eq!(raw(&lb, every_kind::label::ARRAYS, &arr.as_words()[..11], &[]), bad);
    assert_eq!(raw(&lb, every_kind::label::ARRAYS, &arr.as_words()[..4], &[]), bad);
    // A capability argument without a capability.
    assert_eq!(raw(&lb, every_kind::label::TAKE_CAP, &[], &[]), bad);
    // Unknown labels.
    assert_eq!(raw(&lb, 0, &[], &[]), Dispatch::unknown_method());
    assert_eq!(raw(&lb, 99, &[], &[]), Dispatch::unknown_method());
    assert_eq!(lb.server.borrow().calls, 0, "the server never saw a bad request");
}

#[test]
fn one_way_methods_reached_by_call_are_answered() {
    use libl4::rpc::Transport;
    let lb = server();
    // `notify` is one-way: its stub sends it. Called instead, it runs, and the caller
    // gets the empty answer libl4's server loop sends for `Dispatch::NoReply` rather
    // than waiting for ever (and the server does not wedge on its reply object).
    let got = (&lb).call(every_kind::label::NOTIFY, &[0b110], &[], |code, words| {
        (code, words.len())
    });
    assert_eq!(got, Ok((0, 0)));
    assert_eq!(Dispatch::NoReply.answer(), (0, 0));
    // Stray words after the request are ignored.
    let got = (&lb).call(every_kind::label::NOTIFY, &[0b1, 2, 3, 4, 5], &[], |code, _| code);
    assert_eq!(got, Ok(0));
    assert_eq!(lb.server.borrow().notified, 0b111);
    assert_eq!(lb.server.borrow().calls, 2);
    // A truncated one-way request is answered BAD_MESSAGE, sent or called, and never
    // reaches the server.
    assert_eq!(raw(&lb, every_kind::label::NOTIFY, &[], &[]), Dispatch::bad_message());
    let got = (&lb).call(every_kind::label::NOTIFY, &[], &[], |code, _| code);
    assert_eq!(got, Ok(libl4::rpc::BAD_MESSAGE));
    assert_eq!(lb.server.borrow().calls, 2);
}

#[test]
fn sends_to_two_way_methods_and_stray_capabilities_are_served() {
    use libl4::rpc::Transport;
    let lb = server();
    // A two-way method sent without waiting runs; its reply goes nowhere.
    assert_eq!((&lb).send(every_kind::label::POKE, &[], &[]), Ok(()));
    assert_eq!((&lb).send(every_kind::label::GREET, &[1000], &[]), Ok(()));
    assert_eq!((&lb).send(99, &[], &[]), Ok(()));
    assert_eq!(lb.server.borrow().calls, 1, "only the well-formed one ran");
    // A capability with a method that takes none is not passed on (the server loop
    // deletes whatever the handler leaves in its receive slot).
    assert_eq!(raw(&lb, every_kind::label::NOTHING, &[], &[9]), Dispatch::ok(0));
    assert_eq!(
        raw(&lb, every_kind::label::NOTIFY, &[1], &[9]),
        Dispatch::NoReply,
        "one-way, with a capability"
    );
    assert_eq!(raw(&lb, 99, &[], &[9]), Dispatch::unknown_method());
    assert_eq!(lb.server.borrow().last_cap, 0, "no method saw the capability");
    // A capability argument is the first capability that came.
    assert_eq!(raw(&lb, every_kind::label::TAKE_CAP, &[], &[9]), Dispatch::ok(1));
    assert_eq!(lb.server.borrow().last_cap, 9);
}
