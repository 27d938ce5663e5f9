//! Checks on a parsed interface: names, error enums, capability counts, message sizes.

use std::collections::HashSet;

use crate::ast::{Interface, Pos, Ret, Type};
use crate::{IdlError, MAX_MESSAGE_BYTES};

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    // Names the generated code uses itself.
    "client", "server", "msg", "reply", "req", "rep", "caps",
];

/// Bytes a type takes in a message payload (capabilities travel beside it).
pub fn wire_size(t: &Type) -> usize {
    match t {
        Type::Scalar(_) => 8,
        Type::Array(s, n) => (n * s.size()).next_multiple_of(8),
        Type::Vec(s, n) => 8 + (n * s.size()).next_multiple_of(8),
        Type::Str(n) => 8 + n.next_multiple_of(8),
        Type::Cap => 0,
        Type::Lease(_) => 16,
    }
}

#[allow(clippy::too_many_lines, reason = "one rule after another")]
pub fn check(file: &str, iface: &Interface) -> Result<(), IdlError> {
    let err = |pos: Pos, message: String| IdlError {
        file: file.to_string(),
        line: pos.line,
        col: pos.col,
        message,
    };
    let mut errors = HashSet::new();
    for e in &iface.errors {
        if !errors.insert(e.name.as_str()) {
            return Err(err(e.pos, format!("error enum `{}` is declared twice", e.name)));
        }
        if e.variants.is_empty() {
            return Err(err(e.pos, format!("error enum `{}` has no variants", e.name)));
        }
        let (mut names, mut codes) = (HashSet::new(), HashSet::new());
        for (v, c) in &e.variants {
            if !names.insert(v.as_str()) {
                return Err(err(e.pos, format!("variant `{v}` of `{}` is declared twice", e.name)));
            }
            if !codes.insert(*c) {
                return Err(err(e.pos, format!("error code {c} is used twice in `{}`", e.name)));
            }
        }
    }
    let mut methods = HashSet::new();
    for m in &iface.methods {
        if !methods.insert(m.name.as_str()) {
            return Err(err(m.pos, format!("method `{}` is declared twice", m.name)));
        }
        if RUST_KEYWORDS.contains(&m.name.as_str()) {
            return Err(err(m.pos, format!("`{}` cannot be a method name (reserved)", m.name)));
        }
        let mut params = HashSet::new();
        let mut caps = 0;
        let mut size = 0;
        for p in &m.params {
            if !params.insert(p.name.as_str()) {
                return Err(err(p.pos, format!("parameter `{}` is declared twice", p.name)));
            }
            if RUST_KEYWORDS.contains(&p.name.as_str()) {
                return Err(err(
                    p.pos,
                    format!("`{}` cannot be a parameter name (reserved)", p.name),
                ));
            }
            if p.ty.is_cap() {
                caps += 1;
                if caps > 1 {
                    return Err(err(
                        p.pos,
                        format!(
                            "method `{}` passes more than one capability or lease; the kernel transfers one per message",
                            m.name
                        ),
                    ));
                }
            }
            size += wire_size(&p.ty);
        }
        if size > MAX_MESSAGE_BYTES {
            return Err(err(
                m.pos,
                format!(
                    "the request of `{}` takes {size} bytes; a message holds at most {MAX_MESSAGE_BYTES}",
                    m.name
                ),
            ));
        }
        let ret_ty = match &m.ret {
            Ret::Unit => None,
            Ret::Value(t) => Some(t),
            Ret::Result(t, e) => {
                if !errors.contains(e.as_str()) {
                    return Err(err(m.pos, format!("`{}` returns unknown error enum `{e}`", m.name)));
                }
                t.as_ref()
            }
        };
        if let Some(t) = ret_ty {
            if t.is_cap() {
                return Err(err(
                    m.pos,
                    format!("`{}` returns a capability or lease; results are data only", m.name),
                ));
            }
            if wire_size(t) > MAX_MESSAGE_BYTES {
                return Err(err(
                    m.pos,
                    format!(
                        "the reply of `{}` takes {} bytes; a message holds at most {MAX_MESSAGE_BYTES}",
                        m.name,
                        wire_size(t)
                    ),
                ));
            }
        }
        if m.oneway && m.ret != Ret::Unit {
            return Err(err(m.pos, format!("one-way method `{}` cannot return a value", m.name)));
        }
    }
    if iface.methods.is_empty() {
        return Err(IdlError {
            file: file.to_string(),
            line: 1,
            col: 1,
            message: format!("interface `{}` has no methods", iface.name),
        });
    }
    Ok(())
}
