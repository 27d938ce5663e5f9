//! Lexer and parser for interface files.

use crate::IdlError;
use crate::ast::{Access, ErrorEnum, Interface, Method, Param, Pos, Ret, Scalar, Type};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Int(u64),
    Doc(String),
    Arrow,
    Punct(char),
    Eof,
}

struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn bump(&mut self) -> u8 {
        let c = self.src[self.i];
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        c
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.src.get(self.i + k).copied()
    }

    fn next(&mut self) -> Result<(Tok, Pos), (Pos, String)> {
        loop {
            while self.peek(0).is_some_and(|c| c.is_ascii_whitespace()) {
                self.bump();
            }
            if self.peek(0) == Some(b'/') && self.peek(1) == Some(b'/') {
                let pos = self.pos();
                let doc = self.peek(2) == Some(b'/');
                let start = self.i + if doc { 3 } else { 2 };
                while self.peek(0).is_some_and(|c| c != b'\n') {
                    self.bump();
                }
                if doc {
                    let text = String::from_utf8_lossy(&self.src[start..self.i]).trim().to_string();
                    return Ok((Tok::Doc(text), pos));
                }
                continue;
            }
            break;
        }
        let pos = self.pos();
        let Some(c) = self.peek(0) else {
            return Ok((Tok::Eof, pos));
        };
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = self.i;
            while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                self.bump();
            }
            let s = String::from_utf8_lossy(&self.src[start..self.i]).to_string();
            return Ok((Tok::Ident(s), pos));
        }
        if c.is_ascii_digit() {
            let start = self.i;
            while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                self.bump();
            }
            let text = String::from_utf8_lossy(&self.src[start..self.i]).replace('_', "");
            let v = if let Some(hex) = text.strip_prefix("0x") {
                u64::from_str_radix(hex, 16)
            } else {
                text.parse()
            };
            return v
                .map(|v| (Tok::Int(v), pos))
                .map_err(|_| (pos, format!("bad number `{text}`")));
        }
        if c == b'-' && self.peek(1) == Some(b'>') {
            self.bump();
            self.bump();
            return Ok((Tok::Arrow, pos));
        }
        if b"{}()<>[];:,=".contains(&c) {
            self.bump();
            return Ok((Tok::Punct(c as char), pos));
        }
        Err((pos, format!("unexpected character `{}`", c as char)))
    }
}

/// The parser: a token stream with one token of lookahead.
struct Parser<'a> {
    file: &'a str,
    toks: Vec<(Tok, Pos)>,
    i: usize,
}

type PResult<T> = Result<T, IdlError>;

impl Parser<'_> {
    fn err(&self, pos: Pos, msg: impl Into<String>) -> IdlError {
        IdlError {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: msg.into(),
        }
    }

    fn peek(&self) -> &(Tok, Pos) {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (Tok, Pos) {
        let t = self.peek().clone();
        self.i += 1;
        t
    }

    fn docs(&mut self) -> Vec<String> {
        let mut d = Vec::new();
        while let (Tok::Doc(s), _) = self.peek() {
            d.push(s.clone());
            self.i += 1;
        }
        d
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(v) => format!("`{v}`"),
            Tok::Doc(_) => "a doc comment".into(),
            Tok::Arrow => "`->`".into(),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Eof => "the end of the file".into(),
        }
    }

    fn expect(&mut self, c: char) -> PResult<Pos> {
        let (t, pos) = self.next();
        if t == Tok::Punct(c) {
            Ok(pos)
        } else {
            Err(self.err(pos, format!("expected `{c}`, found {}", Self::describe(&t))))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<(String, Pos)> {
        match self.next() {
            (Tok::Ident(s), pos) => Ok((s, pos)),
            (t, pos) => Err(self.err(pos, format!("expected {what}, found {}", Self::describe(&t)))),
        }
    }

    fn keyword(&mut self, kw: &str) -> PResult<Pos> {
        match self.next() {
            (Tok::Ident(s), pos) if s == kw => Ok(pos),
            (t, pos) => Err(self.err(pos, format!("expected `{kw}`, found {}", Self::describe(&t)))),
        }
    }

    fn int(&mut self, what: &str) -> PResult<(u64, Pos)> {
        match self.next() {
            (Tok::Int(v), pos) => Ok((v, pos)),
            (t, pos) => Err(self.err(pos, format!("expected {what}, found {}", Self::describe(&t)))),
        }
    }

    fn interface(&mut self) -> PResult<Interface> {
        let doc = self.docs();
        self.keyword("interface")?;
        let (name, _) = self.ident("an interface name")?;
        self.expect('{')?;
        let mut iface = Interface {
            doc,
            name,
            errors: Vec::new(),
            methods: Vec::new(),
        };
        loop {
            let doc = self.docs();
            match self.peek().clone() {
                (Tok::Punct('}'), _) => {
                    self.i += 1;
                    break;
                }
                (Tok::Ident(k), _) if k == "error" => iface.errors.push(self.error_enum(doc)?),
                (Tok::Ident(k), _) if k == "fn" || k == "oneway" => iface.methods.push(self.method(doc)?),
                (t, pos) => {
                    return Err(self.err(
                        pos,
                        format!(
                            "expected `fn`, `oneway fn`, `error` or `}}`, found {}",
                            Self::describe(&t)
                        ),
                    ));
                }
            }
        }
        Ok(iface)
    }

    fn error_enum(&mut self, doc: Vec<String>) -> PResult<ErrorEnum> {
        let pos = self.keyword("error")?;
        let (name, _) = self.ident("an error enum name")?;
        self.expect('{')?;
        let mut variants = Vec::new();
        loop {
            self.docs();
            if self.peek().0 == Tok::Punct('}') {
                self.i += 1;
                break;
            }
            let (v, _) = self.ident("a variant name")?;
            self.expect('=')?;
            let (code, cpos) = self.int("an error code")?;
            if code == 0 || code > u64::from(crate::MAX_ERROR_CODE) {
                return Err(self.err(
                    cpos,
                    format!("error code {code} is out of range 1..={}", crate::MAX_ERROR_CODE),
                ));
            }
            variants.push((v, code as u32));
            if self.peek().0 == Tok::Punct(',') {
                self.i += 1;
            }
        }
        Ok(ErrorEnum {
            doc,
            name,
            variants,
            pos,
        })
    }

    fn method(&mut self, doc: Vec<String>) -> PResult<Method> {
        let mut oneway = false;
        if let (Tok::Ident(k), _) = self.peek()
            && k == "oneway"
        {
            oneway = true;
            self.i += 1;
        }
        let pos = self.keyword("fn")?;
        let (name, _) = self.ident("a method name")?;
        self.expect('(')?;
        let mut params = Vec::new();
        while self.peek().0 != Tok::Punct(')') {
            let (pname, ppos) = self.ident("a parameter name")?;
            self.expect(':')?;
            let ty = self.ty()?;
            params.push(Param {
                name: pname,
                ty,
                pos: ppos,
            });
            if self.peek().0 == Tok::Punct(',') {
                self.i += 1;
            } else {
                break;
            }
        }
        self.expect(')')?;
        let ret = if self.peek().0 == Tok::Arrow {
            self.i += 1;
            self.ret()?
        } else {
            Ret::Unit
        };
        self.expect(';')?;
        Ok(Method {
            doc,
            name,
            oneway,
            params,
            ret,
            pos,
        })
    }

    fn ret(&mut self) -> PResult<Ret> {
        if self.peek().0 == Tok::Punct('(') {
            self.i += 1;
            self.expect(')')?;
            return Ok(Ret::Unit);
        }
        if let (Tok::Ident(k), _) = self.peek()
            && k == "Result"
        {
            self.i += 1;
            self.expect('<')?;
            let ok = if self.peek().0 == Tok::Punct('(') {
                self.i += 1;
                self.expect(')')?;
                None
            } else {
                Some(self.ty()?)
            };
            self.expect(',')?;
            let (e, _) = self.ident("an error enum name")?;
            self.expect('>')?;
            return Ok(Ret::Result(ok, e));
        }
        Ok(Ret::Value(self.ty()?))
    }

    fn ty(&mut self) -> PResult<Type> {
        let (t, pos) = self.next();
        match t {
            Tok::Ident(s) => {
                if let Some(sc) = Scalar::from_name(&s) {
                    return Ok(Type::Scalar(sc));
                }
                match s.as_str() {
                    "string" => {
                        self.expect('<')?;
                        let (n, npos) = self.int("a maximum length")?;
                        self.expect('>')?;
                        Ok(Type::Str(self.bound(n, npos)?))
                    }
                    "vec" => {
                        self.expect('<')?;
                        let sc = self.element()?;
                        self.expect(',')?;
                        let (n, npos) = self.int("a maximum length")?;
                        self.expect('>')?;
                        Ok(Type::Vec(sc, self.bound(n, npos)?))
                    }
                    "cap" => Ok(Type::Cap),
                    "lease" => {
                        self.expect('<')?;
                        let (a, apos) = self.ident("`read`, `write` or `readwrite`")?;
                        let access = match a.as_str() {
                            "read" => Access::Read,
                            "write" => Access::Write,
                            "readwrite" => Access::ReadWrite,
                            _ => {
                                return Err(
                                    self.err(apos, format!("unknown lease access `{a}` (read, write, readwrite)"))
                                );
                            }
                        };
                        self.expect('>')?;
                        Ok(Type::Lease(access))
                    }
                    _ => Err(self.err(pos, format!("unknown type `{s}`"))),
                }
            }
            Tok::Punct('[') => {
                let sc = self.element()?;
                self.expect(';')?;
                let (n, npos) = self.int("a length")?;
                self.expect(']')?;
                Ok(Type::Array(sc, self.bound(n, npos)?))
            }
            t => Err(self.err(pos, format!("expected a type, found {}", Self::describe(&t)))),
        }
    }

    /// The element type of an array or vector: an integer type.
    fn element(&mut self) -> PResult<Scalar> {
        let (e, epos) = self.ident("an element type")?;
        let Some(sc) = Scalar::from_name(&e) else {
            return Err(self.err(epos, format!("array elements must be integers, not `{e}`")));
        };
        if sc == Scalar::Bool {
            return Err(self.err(epos, "arrays of bool are not supported; use u8"));
        }
        Ok(sc)
    }

    fn bound(&self, n: u64, pos: Pos) -> PResult<usize> {
        if n == 0 || n > crate::MAX_MESSAGE_BYTES as u64 {
            return Err(self.err(
                pos,
                format!("maximum length {n} is out of range 1..={}", crate::MAX_MESSAGE_BYTES),
            ));
        }
        Ok(n as usize)
    }
}

/// Parse one interface from `src` (named `file` in errors).
pub fn parse(file: &str, src: &str) -> Result<Interface, IdlError> {
    let mut lx = Lexer {
        src: src.as_bytes(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut toks = Vec::new();
    loop {
        match lx.next() {
            Ok((Tok::Eof, pos)) => {
                toks.push((Tok::Eof, pos));
                break;
            }
            Ok(t) => toks.push(t),
            Err((pos, message)) => {
                return Err(IdlError {
                    file: file.to_string(),
                    line: pos.line,
                    col: pos.col,
                    message,
                });
            }
        }
    }
    let mut p = Parser { file, toks, i: 0 };
    let iface = p.interface()?;
    p.docs();
    let (t, pos) = p.next();
    if t != Tok::Eof {
        return Err(p.err(
            pos,
            format!("expected the end of the file, found {}", Parser::describe(&t)),
        ));
    }
    Ok(iface)
}
