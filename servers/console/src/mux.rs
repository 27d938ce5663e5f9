//! The console's logic, free of hardware: output from several clients is gathered per
//! client and shown a line at a time with the client's name as a prefix; input is kept
//! for the client that has the focus. `Ctrl-A` then a digit `n` moves the focus to the
//! `n`-th client that wrote (1-based) from the keyboard; a client can also take it with
//! the `focus` method.

use heapless::{Deque, String, Vec};

/// Clients the console keeps line buffers and names for.
pub const MAX_CLIENTS: usize = 16;
/// Longest line kept before it is shown anyway.
pub const LINE: usize = 160;
/// Input bytes kept for the focused client.
pub const INPUT: usize = 512;
/// The escape key (`Ctrl-A`).
pub const ESCAPE: u8 = 0x01;

#[derive(Debug)]
struct Client {
    badge: u64,
    name: String<16>,
    line: String<LINE>,
}

/// Why a read got nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Another client has the focus.
    NotFocused,
    /// Nothing typed yet.
    Empty,
}

/// The multiplexer.
#[derive(Debug, Default)]
pub struct Mux {
    clients: Vec<Client, MAX_CLIENTS>,
    focus: Option<u64>,
    input: Deque<u8, INPUT>,
    escape: bool,
    /// Input bytes dropped because nobody read them in time.
    pub dropped: u64,
}

impl Mux {
    /// An empty console.
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&mut self, badge: u64) -> Option<&mut Client> {
        if let Some(i) = self.clients.iter().position(|c| c.badge == badge) {
            return Some(&mut self.clients[i]);
        }
        let mut name = String::new();
        let _ = core::fmt::write(&mut name, format_args!("client{badge}"));
        self.clients
            .push(Client {
                badge,
                name,
                line: String::new(),
            })
            .ok()?;
        self.clients.last_mut()
    }

    /// Client `badge` names itself.
    pub fn set_name(&mut self, badge: u64, name: &str) {
        if let Some(c) = self.client(badge) {
            c.name.clear();
            for ch in name.chars().filter(|ch| !ch.is_control()) {
                if c.name.push(ch).is_err() {
                    break;
                }
            }
        }
    }

    /// Client `badge` writes `text`; complete lines go to `out` with the prefix.
    /// Returns the bytes accepted (all of them).
    pub fn write(&mut self, badge: u64, text: &str, out: &mut impl FnMut(&str)) -> u32 {
        let Some(c) = self.client(badge) else {
            // No room to remember this client: show its text at once.
            let mut prefix: String<32> = String::new();
            let _ = core::fmt::write(&mut prefix, format_args!("[client{badge}] "));
            out(&prefix);
            out(text);
            return text.len() as u32;
        };
        for ch in text.chars() {
            if ch == '\n' || c.line.push(ch).is_err() {
                Self::show(c, out);
                if ch != '\n' {
                    let _ = c.line.push(ch);
                }
            }
        }
        text.len() as u32
    }

    fn show(c: &mut Client, out: &mut impl FnMut(&str)) {
        out("[");
        out(&c.name);
        out("] ");
        out(&c.line);
        out("\n");
        c.line.clear();
    }

    /// Client `badge` takes the focus.
    pub fn focus(&mut self, badge: u64) {
        if self.client(badge).is_some() || self.focus.is_none() {
            self.focus = Some(badge);
        }
    }

    /// The client with the focus.
    #[cfg(test)]
    pub const fn focused(&self) -> Option<u64> {
        self.focus
    }

    /// A byte arrived from the UART. Returns what to echo, if anything.
    pub fn input(&mut self, b: u8) -> Option<u8> {
        if self.escape {
            self.escape = false;
            if let Some(n) = (b as char).to_digit(10).filter(|&n| n >= 1)
                && let Some(c) = self.clients.get(n as usize - 1)
            {
                self.focus = Some(c.badge);
                self.input.clear();
                return None;
            }
        } else if b == ESCAPE {
            self.escape = true;
            return None;
        }
        if self.input.push_back(b).is_err() {
            self.dropped += 1;
            return None;
        }
        Some(if b == b'\r' { b'\n' } else { b })
    }

    /// Client `badge` reads up to `max` bytes.
    pub fn read(&mut self, badge: u64, max: usize) -> Result<Vec<u8, 256>, ReadError> {
        if self.focus != Some(badge) {
            return Err(ReadError::NotFocused);
        }
        if self.input.is_empty() {
            return Err(ReadError::Empty);
        }
        let mut v = Vec::new();
        while v.len() < max.min(256) {
            let Some(b) = self.input.pop_front() else { break };
            let _ = v.push(if b == b'\r' { b'\n' } else { b });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::String as S;

    use super::*;

    fn written(m: &mut Mux, badge: u64, text: &str) -> S {
        let mut out = S::new();
        m.write(badge, text, &mut |s: &str| out.push_str(s));
        out
    }

    #[test]
    fn lines_are_prefixed_per_client_and_not_mixed() {
        let mut m = Mux::new();
        m.set_name(1, "alpha");
        m.set_name(2, "beta");
        assert_eq!(written(&mut m, 1, "hel"), "");
        assert_eq!(written(&mut m, 2, "one\ntw"), "[beta] one\n");
        assert_eq!(written(&mut m, 1, "lo\n"), "[alpha] hello\n");
        assert_eq!(written(&mut m, 2, "o\n"), "[beta] two\n");
        assert_eq!(written(&mut m, 3, "x\n"), "[client3] x\n");
    }

    #[test]
    fn long_lines_are_split() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        let long: S = "x".repeat(LINE + 5);
        let out = written(&mut m, 1, &long);
        assert_eq!(out, std::format!("[a] {}\n", "x".repeat(LINE)));
        assert_eq!(written(&mut m, 1, "\n"), "[a] xxxxx\n");
    }

    #[test]
    fn names_lose_control_characters() {
        let mut m = Mux::new();
        m.set_name(1, "ev\u{1b}[2Jil");
        assert_eq!(written(&mut m, 1, "x\n"), "[ev[2Jil] x\n");
    }

    #[test]
    fn input_goes_to_the_focused_client_only() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.set_name(2, "b");
        assert_eq!(m.read(1, 10), Err(ReadError::NotFocused));
        m.focus(2);
        assert_eq!(m.read(2, 10), Err(ReadError::Empty));
        for b in b"hi\r" {
            m.input(*b);
        }
        assert_eq!(m.read(1, 10), Err(ReadError::NotFocused));
        assert_eq!(m.read(2, 2).unwrap().as_slice(), b"hi");
        assert_eq!(m.read(2, 10).unwrap().as_slice(), b"\n");
    }

    #[test]
    fn escape_digit_moves_the_focus() {
        let mut m = Mux::new();
        m.set_name(7, "a");
        m.set_name(9, "b");
        m.focus(7);
        assert_eq!(m.input(ESCAPE), None);
        assert_eq!(m.input(b'2'), None);
        assert_eq!(m.focused(), Some(9));
        // An escape followed by something else passes that byte through.
        assert_eq!(m.input(ESCAPE), None);
        assert_eq!(m.input(b'x'), Some(b'x'));
        assert_eq!(m.read(9, 10).unwrap().as_slice(), b"x");
    }

    #[test]
    fn full_input_drops_and_counts() {
        let mut m = Mux::new();
        m.focus(1);
        for _ in 0..INPUT + 3 {
            m.input(b'z');
        }
        assert_eq!(m.dropped, 3);
    }
}
