//! Rust code generation. The output is deterministic (snapshot-tested) and only uses
//! `::libl4::rpc`, `::zerocopy` and `::heapless`.

use std::fmt::Write;

use crate::ast::{Interface, Method, Param, Ret, Scalar, Type};
use crate::check::wire_size;

fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel(s: &str) -> String {
    s.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map_or_else(String::new, |f| f.to_ascii_uppercase().to_string() + c.as_str())
        })
        .collect()
}

fn padded_elems(s: Scalar, n: usize) -> usize {
    (n * s.size()).next_multiple_of(8) / s.size()
}

/// Wire fields of a value called `name` of type `t`.
fn fields(out: &mut String, name: &str, t: &Type) {
    match t {
        Type::Scalar(_) => {
            let _ = writeln!(out, "        pub {name}: u64,");
        }
        Type::Array(s, n) => {
            let _ = writeln!(out, "        pub {name}: [{}; {n}],", s.rust());
            let pad = (n * s.size()).next_multiple_of(8) - n * s.size();
            if pad > 0 {
                let _ = writeln!(out, "        pub {name}_pad: [u8; {pad}],");
            }
        }
        Type::Vec(s, n) => {
            let _ = writeln!(out, "        pub {name}_len: u64,");
            let _ = writeln!(out, "        pub {name}: [{}; {}],", s.rust(), padded_elems(*s, *n));
        }
        Type::Str(n) => {
            let _ = writeln!(out, "        pub {name}_len: u64,");
            let _ = writeln!(out, "        pub {name}: [u8; {}],", n.next_multiple_of(8));
        }
        Type::Cap => {}
        Type::Lease(_) => {
            let _ = writeln!(out, "        pub {name}_offset: u64,");
            let _ = writeln!(out, "        pub {name}_len: u64,");
        }
    }
}

/// `, name: Type` for each parameter.
fn typed_params(m: &Method) -> String {
    m.params.iter().fold(String::new(), |mut a, p| {
        let _ = write!(a, ", {}: {}", p.name, param_type(&p.ty));
        a
    })
}

fn has_payload(t: &Type) -> bool {
    !matches!(t, Type::Cap)
}

fn param_type(t: &Type) -> String {
    match t {
        Type::Scalar(s) => s.rust().to_string(),
        Type::Array(s, n) => format!("&[{}; {n}]", s.rust()),
        Type::Vec(s, _) => format!("&[{}]", s.rust()),
        Type::Str(_) => "&str".to_string(),
        Type::Cap => "::libl4::ipc::CPtr".to_string(),
        Type::Lease(_) => "::libl4::rpc::Lease".to_string(),
    }
}

fn owned_type(t: &Type) -> String {
    match t {
        Type::Scalar(s) => s.rust().to_string(),
        Type::Array(s, n) => format!("[{}; {n}]", s.rust()),
        Type::Vec(s, n) => format!("::heapless::Vec<{}, {n}>", s.rust()),
        Type::Str(n) => format!("::heapless::String<{n}>"),
        Type::Cap | Type::Lease(_) => unreachable!("checked: results are data only"),
    }
}

fn ret_value(m: &Method) -> Option<&Type> {
    match &m.ret {
        Ret::Unit | Ret::Result(None, _) => None,
        Ret::Value(t) | Ret::Result(Some(t), _) => Some(t),
    }
}

fn ret_type(m: &Method) -> String {
    ret_value(m).map_or_else(|| "()".to_string(), owned_type)
}

fn error_type(m: &Method) -> String {
    match &m.ret {
        Ret::Result(_, e) => e.clone(),
        _ => "::libl4::rpc::NoError".to_string(),
    }
}

fn encode_scalar(s: Scalar, v: &str) -> String {
    match s {
        Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64 => format!("i64::from({v}) as u64"),
        _ => format!("u64::from({v})"),
    }
}

/// Statements turning the word `src` into a local `dst` of scalar `s`, or `fail`.
fn decode_scalar(out: &mut String, s: Scalar, dst: &str, src: &str, fail: &str, indent: &str) {
    let _ = match s {
        Scalar::U64 => writeln!(out, "{indent}let {dst} = {src};"),
        Scalar::I64 => writeln!(out, "{indent}let {dst} = {src} as i64;"),
        Scalar::Bool => writeln!(
            out,
            "{indent}let {dst} = match {src} {{ 0 => false, 1 => true, _ => return {fail} }};"
        ),
        Scalar::U8 | Scalar::U16 | Scalar::U32 => writeln!(
            out,
            "{indent}let Ok({dst}) = {}::try_from({src}) else {{ return {fail} }};",
            s.rust()
        ),
        Scalar::I8 | Scalar::I16 | Scalar::I32 => writeln!(
            out,
            "{indent}let Ok({dst}) = {}::try_from({src} as i64) else {{ return {fail} }};",
            s.rust()
        ),
    };
}

/// Words a struct of these members takes on the wire.
fn words(members: &[(&str, &Type)]) -> usize {
    members.iter().map(|(_, t)| wire_size(t)).sum::<usize>() / 8
}

fn struct_def(out: &mut String, name: &str, members: &[(&str, &Type)]) {
    let _ = writeln!(out, "    #[repr(C, align(8))]");
    let _ = writeln!(
        out,
        "    #[derive(Clone, Copy, Debug, ::zerocopy::FromBytes, ::zerocopy::IntoBytes, ::zerocopy::Immutable, ::zerocopy::KnownLayout)]"
    );
    let _ = writeln!(out, "    pub struct {name} {{");
    for (n, t) in members {
        fields(out, n, t);
    }
    let _ = writeln!(out, "    }}\n");
    let _ = writeln!(out, "    impl {name} {{");
    let _ = writeln!(out, "        /// Message words it takes.");
    let _ = writeln!(out, "        pub const WORDS: usize = {};\n", words(members));
    let _ = writeln!(out, "        /// Its message words.");
    let _ = writeln!(out, "        #[inline]");
    let _ = writeln!(out, "        pub fn as_words(&self) -> &[u64; {}] {{", words(members));
    let _ = writeln!(out, "            ::zerocopy::transmute_ref!(self)");
    let _ = writeln!(out, "        }}\n");
    let _ = writeln!(
        out,
        "        /// View the first words of a message as this struct; `None` if it is shorter."
    );
    let _ = writeln!(out, "        #[inline]");
    let _ = writeln!(out, "        pub fn from_words(words: &[u64]) -> Option<&Self> {{");
    let _ = writeln!(
        out,
        "            words.first_chunk::<{}>().map(|w| ::zerocopy::transmute_ref!(w))",
        words(members)
    );
    let _ = writeln!(out, "        }}");
    let _ = writeln!(out, "    }}\n");
}

fn payload_params(m: &Method) -> Vec<&Param> {
    m.params.iter().filter(|p| has_payload(&p.ty)).collect()
}

fn doc(out: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "{indent}/// {l}");
    }
}

/// FNV-1a (64-bit) of the interface's canonical signature: the name, every error enum
/// with its codes, and every method with its labels, kinds, parameter and result types.
/// Doc comments and source positions do not count.
pub fn interface_hash(iface: &Interface) -> u64 {
    // The wire format's version: bump it when the generated layout changes.
    let mut sig = format!("wire 2; interface {};", iface.name);
    for e in &iface.errors {
        let _ = write!(sig, "error {}{:?};", e.name, e.variants);
    }
    for (i, m) in iface.methods.iter().enumerate() {
        let params: Vec<String> = m.params.iter().map(|p| format!("{}:{:?}", p.name, p.ty)).collect();
        let _ = write!(
            sig,
            "{} {} {}({})->{:?};",
            i + 1,
            if m.oneway { "oneway" } else { "fn" },
            m.name,
            params.join(","),
            m.ret
        );
    }
    sig.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn generate(file: &str, iface: &Interface) -> String {
    let mut o = String::new();
    let module = snake(&iface.name);
    let _ = writeln!(o, "// @generated by gaon-idl from {file}. Do not edit.\n");
    for l in &iface.doc {
        let _ = writeln!(o, "#[doc = {l:?}]");
    }
    let _ = writeln!(
        o,
        "#[allow(clippy::all, clippy::pedantic, unused_imports, unused_variables, dead_code, missing_docs, unreachable_pub)]"
    );
    let _ = writeln!(o, "pub mod {module} {{");
    let _ = writeln!(o, "    use ::zerocopy::{{FromBytes, FromZeros, IntoBytes}};");
    let _ = writeln!(
        o,
        "    use ::libl4::rpc::{{CallError, Dispatch, Incoming, Transport}};\n"
    );

    let _ = writeln!(
        o,
        "    /// This interface's identity: its name and a hash of its methods and errors. The\n    /// image tool checks both ends of a channel were built with the same one."
    );
    let _ = writeln!(
        o,
        "    pub const INTERFACE: ::libl4::rpc::InterfaceId = ::libl4::rpc::InterfaceId {{ name: {:?}, hash: {:#018x} }};\n",
        iface.name,
        interface_hash(iface)
    );

    let _ = writeln!(o, "    /// Method labels.");
    let _ = writeln!(o, "    pub mod label {{");
    for (i, m) in iface.methods.iter().enumerate() {
        let _ = writeln!(o, "        pub const {}: u64 = {};", m.name.to_ascii_uppercase(), i + 1);
    }
    let _ = writeln!(o, "    }}\n");

    for e in &iface.errors {
        doc(&mut o, "    ", &e.doc);
        let _ = writeln!(o, "    #[repr(u32)]\n    #[derive(Clone, Copy, Debug, PartialEq, Eq)]");
        let _ = writeln!(o, "    pub enum {} {{", e.name);
        for (v, c) in &e.variants {
            let _ = writeln!(o, "        {v} = {c},");
        }
        let _ = writeln!(o, "    }}\n");
        let _ = writeln!(o, "    impl {} {{", e.name);
        let _ = writeln!(o, "        pub fn from_code(code: u64) -> Option<Self> {{");
        let _ = writeln!(o, "            match code {{");
        for (v, c) in &e.variants {
            let _ = writeln!(o, "                {c} => Some(Self::{v}),");
        }
        let _ = writeln!(o, "                _ => None,\n            }}\n        }}\n    }}\n");
    }

    for m in &iface.methods {
        let c = camel(&m.name);
        let members: Vec<(&str, &Type)> = payload_params(m).iter().map(|p| (p.name.as_str(), &p.ty)).collect();
        if !members.is_empty() {
            struct_def(&mut o, &format!("{c}Request"), &members);
        }
        if let Some(t) = ret_value(m) {
            struct_def(&mut o, &format!("{c}Reply"), &[("value", t)]);
        }
    }

    client(&mut o, iface);
    server(&mut o, iface);
    let _ = writeln!(o, "}}");
    o
}

#[allow(clippy::too_many_lines, reason = "a code generator emits straight-line text")]
fn client(o: &mut String, iface: &Interface) {
    let name = &iface.name;
    let _ = writeln!(
        o,
        "    /// Client stub: each method sends one message and, unless one-way, waits for the reply."
    );
    let _ = writeln!(o, "    #[derive(Clone, Copy, Debug)]");
    let _ = writeln!(
        o,
        "    pub struct {name}Client<T: Transport> {{\n        pub transport: T,\n    }}\n"
    );
    let _ = writeln!(o, "    impl<T: Transport> {name}Client<T> {{");
    let _ = writeln!(
        o,
        "        pub const fn new(transport: T) -> Self {{\n            Self {{ transport }}\n        }}"
    );
    for m in &iface.methods {
        let c = camel(&m.name);
        let _ = writeln!(o);
        doc(o, "        ", &m.doc);
        let params = typed_params(m);
        let _ = writeln!(o, "        #[inline]");
        let _ = writeln!(
            o,
            "        pub fn {}(&self{params}) -> Result<{}, CallError<{}>> {{",
            m.name,
            if m.oneway { "()".into() } else { ret_type(m) },
            error_type(m)
        );
        let has_req = !payload_params(m).is_empty();
        if has_req {
            let _ = writeln!(o, "            let mut req = {c}Request::new_zeroed();");
        }
        let mut caps = "[]".to_string();
        for p in &m.params {
            let n = &p.name;
            match &p.ty {
                Type::Scalar(s) => {
                    let _ = writeln!(o, "            req.{n} = {};", encode_scalar(*s, n));
                }
                Type::Array(..) => {
                    let _ = writeln!(o, "            req.{n} = *{n};");
                }
                Type::Vec(_, max) | Type::Str(max) => {
                    let bytes = if matches!(p.ty, Type::Str(_)) {
                        format!("{n}.as_bytes()")
                    } else {
                        n.clone()
                    };
                    let _ = writeln!(
                        o,
                        "            if {n}.len() > {max} {{\n                return Err(CallError::TooLong);\n            }}"
                    );
                    let _ = writeln!(o, "            req.{n}[..{n}.len()].copy_from_slice({bytes});");
                    let _ = writeln!(o, "            req.{n}_len = {n}.len() as u64;");
                }
                Type::Cap => caps = format!("[{n}]"),
                Type::Lease(_) => {
                    caps = format!("[{n}.frame]");
                    let _ = writeln!(o, "            req.{n}_offset = {n}.offset;");
                    let _ = writeln!(o, "            req.{n}_len = {n}.len;");
                }
            }
        }
        let req_words = if has_req { "req.as_words()" } else { "&[]" };
        if m.oneway {
            let _ = writeln!(
                o,
                "            self.transport.send(label::{}, {req_words}, &{caps}).map_err(CallError::Kernel)\n        }}",
                m.name.to_ascii_uppercase()
            );
            continue;
        }
        let _ = writeln!(o, "            self.transport");
        let _ = writeln!(
            o,
            "                .call(label::{}, {req_words}, &{caps}, |code, words| {{",
            m.name.to_ascii_uppercase()
        );
        let remote = match &m.ret {
            Ret::Result(_, e) => format!("{e}::from_code(code).map_or(CallError::BadReply, CallError::Remote)"),
            _ => "CallError::BadReply".to_string(),
        };
        let _ = writeln!(o, "                    if code != 0 {{");
        let _ = writeln!(
            o,
            "                        return Err(CallError::from_runtime_code(code).unwrap_or_else(|| {remote}));"
        );
        let _ = writeln!(o, "                    }}");
        match ret_value(m) {
            None => {
                let _ = writeln!(o, "                    Ok(())");
            }
            Some(t) => {
                let _ = writeln!(
                    o,
                    "                    let Some(rep) = {c}Reply::from_words(words) else {{\n                        return Err(CallError::BadReply);\n                    }};"
                );
                decode_value(o, t, "CallError::BadReply");
            }
        }
        let _ = writeln!(o, "                }})");
        let _ = writeln!(o, "                .unwrap_or_else(|e| Err(CallError::Kernel(e)))");
        let _ = writeln!(o, "        }}");
    }
    let _ = writeln!(o, "    }}\n");
}

/// Decode `rep.value` (client side) into `Ok(..)` of the owned type.
fn decode_value(o: &mut String, t: &Type, fail: &str) {
    let fail_ret = format!("Err({fail})");
    let i = "                    ";
    match t {
        Type::Scalar(s) => {
            decode_scalar(o, *s, "value", "rep.value", &fail_ret, i);
            let _ = writeln!(o, "{i}Ok(value)");
        }
        Type::Array(..) => {
            let _ = writeln!(o, "{i}Ok(rep.value)");
        }
        Type::Vec(_, max) | Type::Str(max) => {
            let _ = writeln!(
                o,
                "{i}let Ok(n) = usize::try_from(rep.value_len) else {{ return {fail_ret} }};\n{i}if n > {max} {{\n{i}    return {fail_ret};\n{i}}}"
            );
            if matches!(t, Type::Str(_)) {
                let _ = writeln!(
                    o,
                    "{i}let Ok(s) = ::core::str::from_utf8(&rep.value[..n]) else {{ return {fail_ret} }};"
                );
                let _ = writeln!(o, "{i}let mut value = ::heapless::String::new();");
                let _ = writeln!(o, "{i}value.push_str(s).map_err(|_| {fail})?;");
            } else {
                let _ = writeln!(o, "{i}let mut value = ::heapless::Vec::new();");
                let _ = writeln!(o, "{i}value.extend_from_slice(&rep.value[..n]).map_err(|_| {fail})?;");
            }
            let _ = writeln!(o, "{i}Ok(value)");
        }
        Type::Cap | Type::Lease(_) => {}
    }
}

#[allow(clippy::too_many_lines, reason = "a code generator emits straight-line text")]
fn server(o: &mut String, iface: &Interface) {
    let name = &iface.name;
    let _ = writeln!(
        o,
        "    /// What a server implements. `client` is the badge of the caller's endpoint capability."
    );
    let _ = writeln!(o, "    pub trait {name}Server {{");
    for m in &iface.methods {
        doc(o, "        ", &m.doc);
        let params = typed_params(m);
        let ret = match &m.ret {
            Ret::Unit => String::new(),
            Ret::Value(t) => format!(" -> {}", owned_type(t)),
            Ret::Result(t, e) => format!(
                " -> Result<{}, {e}>",
                t.as_ref().map_or_else(|| "()".to_string(), owned_type)
            ),
        };
        let _ = writeln!(o, "        fn {}(&mut self, client: u64{params}){ret};", m.name);
    }
    let _ = writeln!(o, "    }}\n");

    let _ = writeln!(
        o,
        "    /// Decode one request, check every bound, call the server and write its reply into\n    /// `msg`. A malformed or truncated request gets `BAD_MESSAGE` and an unknown label\n    /// `UNKNOWN_METHOD`; the server is not called. A one-way method returns\n    /// `Dispatch::NoReply`, which libl4's server loop answers with an empty reply if the\n    /// client used Call anyway, so a caller never wedges the server."
    );
    let _ = writeln!(o, "    #[inline]");
    let _ = writeln!(
        o,
        "    pub fn dispatch<S: {name}Server + ?Sized>(server: &mut S, msg: &mut Incoming<'_>) -> Dispatch {{"
    );
    let _ = writeln!(o, "        match msg.label {{");
    for m in &iface.methods {
        let c = camel(&m.name);
        let _ = writeln!(o, "            label::{} => {{", m.name.to_ascii_uppercase());
        let bad = "Dispatch::bad_message()";
        if !payload_params(m).is_empty() {
            let _ = writeln!(
                o,
                "                let Some(&req) = {c}Request::from_words(msg.words()) else {{ return {bad} }};"
            );
        }
        for p in &m.params {
            let n = &p.name;
            match &p.ty {
                Type::Scalar(s) => decode_scalar(o, *s, n, &format!("req.{n}"), bad, "                "),
                Type::Array(..) => {
                    let _ = writeln!(o, "                let {n} = &req.{n};");
                }
                Type::Vec(_, max) | Type::Str(max) => {
                    let _ = writeln!(
                        o,
                        "                let Ok({n}_n) = usize::try_from(req.{n}_len) else {{ return {bad} }};\n                if {n}_n > {max} {{\n                    return {bad};\n                }}"
                    );
                    if matches!(p.ty, Type::Str(_)) {
                        let _ = writeln!(
                            o,
                            "                let Ok({n}) = ::core::str::from_utf8(&req.{n}[..{n}_n]) else {{ return {bad} }};"
                        );
                    } else {
                        let _ = writeln!(o, "                let {n} = &req.{n}[..{n}_n];");
                    }
                }
                Type::Cap => {
                    let _ = writeln!(
                        o,
                        "                let Some(&{n}) = msg.caps.first() else {{ return msg.refuse_missing_cap(\"{}\", \"{n}\") }};",
                        m.name
                    );
                }
                Type::Lease(_) => {
                    let _ = writeln!(
                        o,
                        "                let Some(&frame) = msg.caps.first() else {{ return msg.refuse_missing_cap(\"{}\", \"{n}\") }};",
                        m.name
                    );
                    let _ = writeln!(
                        o,
                        "                let {n} = ::libl4::rpc::Lease {{ frame, offset: req.{n}_offset, len: req.{n}_len }};"
                    );
                    let _ = writeln!(
                        o,
                        "                if !{n}.is_valid() {{\n                    return {bad};\n                }}"
                    );
                }
            }
        }
        let args = m.params.iter().fold(String::new(), |mut a, p| {
            let _ = write!(a, ", {}", p.name);
            a
        });
        let call = format!("server.{}(msg.badge{args})", m.name);
        if m.oneway {
            let _ = writeln!(
                o,
                "                {call};\n                Dispatch::NoReply\n            }}"
            );
            continue;
        }
        let encode_ok = |o: &mut String, v: &str| {
            let Some(t) = ret_value(m) else {
                let _ = writeln!(o, "{v}msg.reply(&[])");
                return;
            };
            let _ = writeln!(o, "{v}let mut rep = {c}Reply::new_zeroed();");
            match t {
                Type::Scalar(s) => {
                    let _ = writeln!(o, "{v}rep.value = {};", encode_scalar(*s, "value"));
                }
                Type::Array(..) => {
                    let _ = writeln!(o, "{v}rep.value = value;");
                }
                Type::Vec(..) | Type::Str(_) => {
                    let bytes = if matches!(t, Type::Str(_)) {
                        "value.as_bytes()"
                    } else {
                        "&value"
                    };
                    let _ = writeln!(o, "{v}rep.value[..value.len()].copy_from_slice({bytes});");
                    let _ = writeln!(o, "{v}rep.value_len = value.len() as u64;");
                }
                Type::Cap | Type::Lease(_) => {}
            }
            let _ = writeln!(o, "{v}msg.reply(rep.as_words())");
        };
        match &m.ret {
            Ret::Result(..) => {
                let _ = writeln!(o, "                match {call} {{");
                let _ = writeln!(o, "                    Ok(value) => {{");
                encode_ok(o, "                        ");
                let _ = writeln!(o, "                    }}");
                let _ = writeln!(o, "                    Err(e) => Dispatch::error(e as u64),");
                let _ = writeln!(o, "                }}");
            }
            Ret::Unit => {
                let _ = writeln!(o, "                {call};");
                encode_ok(o, "                ");
            }
            Ret::Value(_) => {
                let _ = writeln!(o, "                let value = {call};");
                encode_ok(o, "                ");
            }
        }
        let _ = writeln!(o, "            }}");
    }
    let _ = writeln!(o, "            _ => Dispatch::unknown_method(),");
    let _ = writeln!(o, "        }}\n    }}");
}
