//! IDL-generated stubs over real IPC: a client thread (the root) and a server thread
//! running libl4's server loop with the generated `dispatch`.

use core::sync::atomic::{AtomicU64, Ordering};

use libl4::cap::Tcb;
use libl4::ipc::{self, CPtr, MsgInfo};
use libl4::rpc::{BAD_MESSAGE, CallError, Dispatch, EndpointTransport, Incoming, Lease, Transport, UNKNOWN_METHOD};
use libl4::server::{Handler, RecvSlot, Server};
use libl4::{ObjType, Rights};

use crate::env::{Env, ROOT_CNODE};
use crate::{R, check, ok};

include!(concat!(env!("OUT_DIR"), "/every_kind.rs"));
use every_kind::{EveryKindClient, EveryKindServer, KindError};

crate::tests![
    "IDL: scalars of every width round-trip" => scalars,
    "IDL: arrays and strings round-trip" => arrays_strings,
    "IDL: the caller's badge identifies it" => badge,
    "IDL: a capability argument arrives in the server's CSpace" => cap_arg,
    "IDL: a lease arrives with its window" => lease,
    "IDL: application errors come back typed" => app_error,
    "IDL: a one-way call does not wait" => oneway,
    "IDL: an argument over its bound is refused before sending" => too_long,
    "IDL: a malformed request gets BAD_MESSAGE" => malformed,
    "IDL: an unknown label gets UNKNOWN_METHOD" => unknown,
    "IDL: a one-way method reached by Call is answered; the server keeps serving" => oneway_called,
    "IDL: a capability no method takes is dropped; the next one arrives" => stray_cap,
    "IDL: a Send to a two-way method is served; its reply goes nowhere" => twoway_sent,
];

static NOTIFIED: AtomicU64 = AtomicU64::new(0);
/// Where the server puts received caps (set before it starts).
static CAP_SLOT: AtomicU64 = AtomicU64::new(0);

struct Impl;

impl EveryKindServer for Impl {
    #[allow(
        clippy::too_many_arguments,
        clippy::many_single_char_names,
        clippy::cast_possible_wrap,
        reason = "the interface has nine scalars"
    )]
    fn scalars(&mut self, _: u64, a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64, flag: bool) -> i64 {
        let sum =
            i64::from(a) + i64::from(b) + i64::from(c) + (d as i64) + i64::from(e) + i64::from(f) + i64::from(g) + h;
        if flag { sum } else { -sum }
    }
    fn arrays(
        &mut self,
        client: u64,
        bytes: &[u8],
        halves: &[u16],
        words: &[u32],
        longs: &[u64],
    ) -> heapless::Vec<u64, 4> {
        let mut v = heapless::Vec::new();
        let _ = v.push(bytes.iter().map(|&b| u64::from(b)).sum());
        let _ = v.push(halves.iter().map(|&h| u64::from(h)).sum());
        let _ = v.push(words.iter().map(|&w| u64::from(w)).sum::<u64>() + longs.iter().sum::<u64>());
        let _ = v.push(client);
        v
    }
    fn fixed(&mut self, client: u64, bytes: &[u8; 3], halves: &[i16; 5], longs: &[u64; 2]) -> [u32; 3] {
        let h: i32 = halves.iter().map(|&h| i32::from(h)).sum();
        [
            u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]),
            h.cast_unsigned(),
            (longs[0] ^ longs[1] ^ client) as u32,
        ]
    }
    fn greet(&mut self, _: u64, name: &str) -> Result<heapless::String<40>, KindError> {
        if name.is_empty() {
            return Err(KindError::Empty);
        }
        let mut s = heapless::String::new();
        s.push_str("hello, ").map_err(|_| KindError::Big)?;
        s.push_str(name).map_err(|_| KindError::Big)?;
        Ok(s)
    }
    fn take_cap(&mut self, _: u64, c: CPtr) -> u64 {
        let ty = ROOT_CNODE.identify(c).map_or(0, |t| t.0);
        let _ = ROOT_CNODE.delete(c);
        ty
    }
    fn checksum(&mut self, _: u64, data: Lease, seed: u32) -> u32 {
        let ty = ROOT_CNODE.identify(data.frame).map_or(0, |t| t.0);
        let _ = ROOT_CNODE.delete(data.frame);
        seed ^ (data.offset as u32) ^ ((data.len as u32) << 16) ^ ((ty as u32) << 28)
    }
    fn poke(&mut self, _: u64) -> Result<(), KindError> {
        Err(KindError::Negative)
    }
    fn notify(&mut self, _: u64, bits: u64) {
        NOTIFIED.fetch_or(bits, Ordering::SeqCst);
    }
    fn nothing(&mut self, _: u64) {}
}

impl Handler for Impl {
    fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
        every_kind::dispatch(self, msg)
    }
}

extern "C" fn serve(arg: u64) -> ! {
    let server = Server {
        ep: arg & 0xffff,
        reply: arg >> 16,
        cap_slot: Some(RecvSlot {
            cnode: ROOT_CNODE.0,
            index: CAP_SLOT.load(Ordering::SeqCst),
            cptr: CAP_SLOT.load(Ordering::SeqCst),
        }),
    };
    server.run(&mut Impl)
}

/// Start a server thread; returns a badged endpoint cap for the client and the thread.
fn start(env: &mut Env, badge: u64) -> Result<(CPtr, Tcb), crate::Fail> {
    let ep = ok(env.alloc(ObjType::Endpoint, 0), "endpoint")?;
    let rp = ok(env.alloc(ObjType::Reply, 0), "reply")?;
    CAP_SLOT.store(ok(env.slot(), "slot")?, Ordering::SeqCst);
    let client = ok(env.slot(), "slot")?;
    ok(ROOT_CNODE.mint(client, ep, Rights::all(), badge), "badged client cap")?;
    let t = ok(env.spawn(serve, ep | (rp << 16), 200, 0), "server thread")?;
    Ok((client, t))
}

fn with_client(env: &mut Env, badge: u64, f: impl FnOnce(&EveryKindClient<EndpointTransport>) -> R) -> R {
    let (ep, t) = start(env, badge)?;
    let c = EveryKindClient::new(EndpointTransport { ep });
    let r = f(&c);
    ok(t.suspend(), "stop the server")?;
    r
}

fn scalars(env: &mut Env) -> R {
    with_client(env, 1, |c| {
        let got = ok(
            c.scalars(
                200,
                60_000,
                4_000_000_000,
                1 << 40,
                -100,
                -30_000,
                -2_000_000_000,
                -7,
                true,
            )
            .map_err(|_| libl4::Error::Cancelled),
            "call",
        )?;
        let want = 200 + 60_000 + 4_000_000_000 + (1i64 << 40) - 100 - 30_000 - 2_000_000_000 - 7;
        check(got == want, "sum")?;
        check(c.scalars(1, 1, 1, 1, 1, 1, 1, 1, false) == Ok(-8), "negated")
    })
}
fn arrays_strings(env: &mut Env) -> R {
    with_client(env, 2, |c| {
        let v = c.arrays(&[1; 13], &[100, 200], &[7, 8, 9], &[1 << 33, 5]);
        check(
            v.as_ref().map(heapless::Vec::as_slice) == Ok(&[13, 300, 24 + (1 << 33) + 5, 2][..]),
            "array sums",
        )?;
        check(
            c.fixed(&[1, 2, 3], &[-1, -2, 3, 4, -100], &[0xf0f0, 0x0f0f])
                == Ok([0x01_0203, (-96i32).cast_unsigned(), 0xffff ^ 2]),
            "fixed-size arrays",
        )?;
        let g = c.greet("seL4's cousin");
        check(
            g.as_ref().map(heapless::String::as_str) == Ok("hello, seL4's cousin"),
            "string round trip",
        )
    })
}
fn badge(env: &mut Env) -> R {
    with_client(env, 0x77, |c| {
        check(
            c.arrays(&[], &[], &[], &[]).map(|v| v[3]) == Ok(0x77),
            "badge seen by the server",
        )
    })
}
fn cap_arg(env: &mut Env) -> R {
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    with_client(env, 3, |c| {
        check(
            c.take_cap(n) == Ok(ObjType::Notification as u64 + 1),
            "server saw a notification",
        )
    })
}
fn lease(env: &mut Env) -> R {
    let (f, _) = ok(env.page(), "page")?;
    let l = Lease {
        frame: f.0,
        offset: 64,
        len: 128,
    };
    with_client(env, 4, |c| {
        let want = 5 ^ 64 ^ (128 << 16) ^ ((ObjType::Frame as u32 + 1) << 28);
        check(c.checksum(l, 5) == Ok(want), "window and frame arrived")?;
        let bad = Lease {
            frame: f.0,
            offset: 4090,
            len: 100,
        };
        check(
            c.checksum(bad, 5) == Err(CallError::BadMessage),
            "window past the frame refused",
        )
    })
}
fn app_error(env: &mut Env) -> R {
    with_client(env, 5, |c| {
        check(c.poke() == Err(CallError::Remote(KindError::Negative)), "typed error")?;
        check(
            c.greet("") == Err(CallError::Remote(KindError::Empty)),
            "typed error with a value type",
        )
    })
}
fn oneway(env: &mut Env) -> R {
    NOTIFIED.store(0, Ordering::SeqCst);
    with_client(env, 6, |c| {
        ok(c.notify(0b1010).map_err(|_| libl4::Error::Cancelled), "send")?;
        // A call after it is served after it, so the one-way message has been handled.
        ok(c.nothing().map_err(|_| libl4::Error::Cancelled), "call")?;
        check(NOTIFIED.load(Ordering::SeqCst) == 0b1010, "one-way handled")
    })
}
fn too_long(env: &mut Env) -> R {
    with_client(env, 7, |c| {
        check(
            c.greet("this name is much longer than twenty") == Err(CallError::TooLong),
            "refused",
        )
    })
}
fn malformed(env: &mut Env) -> R {
    with_client(env, 8, |c| {
        // A greet request claiming a 1000-byte name, sent by hand.
        let m = ipc::call(
            c.transport.ep,
            MsgInfo::new(every_kind::label::GREET, 1, 0),
            [1000, 0, 0, 0],
        );
        check(!m.info.is_kernel() && m.info.label() == BAD_MESSAGE, "BAD_MESSAGE")?;
        // Truncated: the scalars request is nine words; send two.
        let m = ipc::call(
            c.transport.ep,
            MsgInfo::new(every_kind::label::SCALARS, 2, 0),
            [1, 2, 0, 0],
        );
        check(m.info.label() == BAD_MESSAGE, "truncated")?;
        // The server still works.
        check(c.scalars(1, 0, 0, 0, 0, 0, 0, 0, true) == Ok(1), "still serving")
    })
}
fn unknown(env: &mut Env) -> R {
    with_client(env, 9, |c| {
        let m = ipc::call(c.transport.ep, MsgInfo::new(99, 0, 0), [0; 4]);
        check(m.info.label() == UNKNOWN_METHOD, "UNKNOWN_METHOD")
    })
}
fn oneway_called(env: &mut Env) -> R {
    NOTIFIED.store(0, Ordering::SeqCst);
    with_client(env, 10, |c| {
        // The stub sends `notify` one-way; a Call by hand waits in the server's reply
        // object, which the server must answer before it can receive again.
        let m = ipc::call(
            c.transport.ep,
            MsgInfo::new(every_kind::label::NOTIFY, 1, 0),
            [0b11, 0, 0, 0],
        );
        check(!m.info.is_kernel() && m.info.label() == 0, "an empty answer")?;
        check(NOTIFIED.load(Ordering::SeqCst) == 0b11, "the one-way method ran")?;
        // Malformed one-way requests reached by Call are answered too.
        let m = ipc::call(c.transport.ep, MsgInfo::new(every_kind::label::NOTIFY, 0, 0), [0; 4]);
        check(m.info.label() == BAD_MESSAGE, "truncated one-way request")?;
        check(c.nothing() == Ok(()), "still serving")?;
        check(
            c.scalars(1, 0, 0, 0, 0, 0, 0, 0, true) == Ok(1),
            "still serving, with a payload",
        )
    })
}
fn stray_cap(env: &mut Env) -> R {
    let n = ok(env.alloc(ObjType::Notification, 0), "notification")?;
    with_client(env, 11, |c| {
        // `nothing` takes no capability; one sent with it lands in the server's receive
        // slot, and must not stay there (the kernel puts a capability only in an empty
        // slot, so every later capability argument would be lost).
        let code = ok(
            c.transport.call(every_kind::label::NOTHING, &[], &[n], |code, _| code),
            "call",
        )?;
        check(code == 0, "answered")?;
        let code = ok(c.transport.call(99, &[], &[n], |code, _| code), "call")?;
        check(code == UNKNOWN_METHOD, "unknown label with a capability")?;
        check(
            c.take_cap(n) == Ok(ObjType::Notification as u64 + 1),
            "a later capability argument arrives",
        )
    })
}
fn twoway_sent(env: &mut Env) -> R {
    with_client(env, 12, |c| {
        let t = c.transport;
        check(t.send(every_kind::label::POKE, &[], &[]).is_ok(), "send")?;
        check(t.send(every_kind::label::GREET, &[1000], &[]).is_ok(), "malformed send")?;
        check(t.send(99, &[], &[]).is_ok(), "unknown send")?;
        check(c.nothing() == Ok(()), "still serving")
    })
}
