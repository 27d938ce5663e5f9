//! The console's logic, free of hardware: output from several clients is gathered per
//! client and shown a line at a time with the client's name as a prefix; input is kept
//! for the client that has the focus. A client takes the focus with the `focus` method,
//! or the keyboard gives it: clients are numbered from 1 in the order the console first
//! heard from them, and `Ctrl-A` then a digit `n` moves the focus to the `n`-th one,
//! drops what was typed for the previous one, and says so in a line of the console's
//! own, `console: keyboard to NAME`. `Ctrl-A` then `?` or `0`, or a digit naming no
//! client, moves nothing and prints the numbers instead, marking the focused client:
//! `console: Ctrl-A and a number gives the keyboard to 1 kv, 2 greeter, 3 linux (has it)`
//! (clients past the ninth are counted, `; 7 more have no number`; with no client yet it
//! says `console: no clients yet to give the keyboard to`). The console's lines are cut
//! at `LINE` bytes, ending in `...`. The byte after `Ctrl-A` is input only if it is none
//! of these (`Ctrl-A` twice types one).
//!
//! The focused client's text is shown as it arrives, so a prompt shows before its
//! newline: its line stays open on the terminal, and typed input is echoed after it.
//! Any other line (another client's, complete as always, or the kernel's) first ends the
//! open line with a newline; the focused client's next text, or the next echo, shows
//! its unfinished line again in full, prefix and all. The console's own lines are such
//! lines too. Typed Enter ends the focused client's line. When the focus moves, the
//! previous client's unfinished line is kept like any other's (shown whole at its
//! newline, in place if its line is still the open one and the move was a `focus`
//! call), and the new client's unfinished line, if any, is shown at once, after the
//! console's line when the keyboard moved it. Lines are cut at `LINE` bytes either way.
//!
//! A client that asked to be told (`notify_input`) is signalled once each time input
//! starts waiting for it: bytes arrive while it has the focus and none were waiting, or
//! it gets the focus (or asks) while some wait. It reads until the input is empty, and
//! the next byte signals it again. `take_signal` says whom to signal, after any change.

use core::fmt::Write;

use heapless::{Deque, String, Vec};

/// Clients the console keeps line buffers and names for.
pub const MAX_CLIENTS: usize = 16;
/// Longest line kept before it is shown anyway.
pub const LINE: usize = 160;
/// Input bytes kept for the focused client.
pub const INPUT: usize = 512;
/// The escape key (`Ctrl-A`).
pub const ESCAPE: u8 = 0x01;

/// Clients a digit after `Ctrl-A` can name (`1` to `9`).
const DIGITS: usize = 9;

/// A line of the console's own, cut at `LINE` bytes: when what is written does not
/// fit, the line ends with `...` instead.
#[derive(Debug, Default)]
struct Said {
    line: String<LINE>,
    cut: bool,
}

impl Said {
    fn as_str(&self) -> &str {
        &self.line
    }
}

impl Write for Said {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for ch in s.chars() {
            if self.cut {
                break;
            }
            if self.line.push(ch).is_err() {
                self.cut = true;
                while self.line.len() + 3 > LINE {
                    self.line.pop();
                }
                let _ = self.line.push_str("...");
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Client {
    badge: u64,
    name: String<16>,
    /// Its unfinished line.
    line: String<LINE>,
    /// It asked to be told when input waits for it.
    notify: bool,
    /// Typed input is echoed while it has the focus.
    echo: bool,
}

/// What the terminal's current line holds; the cursor is at its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Open {
    /// Nothing: the cursor is at the start of a line.
    #[default]
    None,
    /// Client `i`'s prefix and the first `shown` bytes of its unfinished line (and any
    /// input echoed after them).
    Client { i: usize, shown: usize },
    /// Input echoed at the start of a line.
    Typed,
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
    open: Open,
    input: Deque<u8, INPUT>,
    escape: bool,
    /// The focused client was told about the input waiting now (`take_signal`). Cleared
    /// when that input is read to the end or dropped, the focus moves, or the focused
    /// client gives a new notification; so it is false whenever no input waits.
    told: bool,
    /// Input bytes dropped because nobody read them in time.
    pub dropped: u64,
}

impl Mux {
    /// An empty console.
    pub fn new() -> Self {
        Self::default()
    }

    /// Client `badge`'s index, remembering it if it is new (`None`: no room). Clients are
    /// never forgotten, so an index never changes.
    fn index(&mut self, badge: u64) -> Option<usize> {
        if let Some(i) = self.clients.iter().position(|c| c.badge == badge) {
            return Some(i);
        }
        let mut name = String::new();
        let _ = core::fmt::write(&mut name, format_args!("client{badge}"));
        self.clients
            .push(Client {
                badge,
                name,
                line: String::new(),
                notify: false,
                echo: true,
            })
            .ok()?;
        Some(self.clients.len() - 1)
    }

    fn client(&mut self, badge: u64) -> Option<&mut Client> {
        let i = self.index(badge)?;
        self.clients.get_mut(i)
    }

    /// The focused client's index, if it is one the console keeps.
    fn focused_index(&self) -> Option<usize> {
        let focus = self.focus?;
        self.clients.iter().position(|c| c.badge == focus)
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

    /// Client `badge` writes `text`; complete lines go to `out` with the prefix, and so
    /// does the rest at once if the client has the focus. Returns the bytes accepted (all
    /// of them).
    pub fn write(&mut self, badge: u64, text: &str, out: &mut impl FnMut(&str)) -> u32 {
        let Some(i) = self.index(badge) else {
            // No room to remember this client: show its text at once, as a line.
            let mut prefix: String<32> = String::new();
            let _ = core::fmt::write(&mut prefix, format_args!("[client{badge}] "));
            self.end_open(out);
            out(&prefix);
            out(text);
            if !text.ends_with('\n') {
                out("\n");
            }
            return text.len() as u32;
        };
        for ch in text.chars() {
            if ch == '\n' || self.clients[i].line.push(ch).is_err() {
                self.show_line(i, out);
                if ch != '\n' {
                    let _ = self.clients[i].line.push(ch);
                }
            }
        }
        if self.focus == Some(badge) {
            self.show_unfinished(i, out);
        }
        text.len() as u32
    }

    /// End the terminal's open line, if any.
    fn end_open(&mut self, out: &mut impl FnMut(&str)) {
        if self.open != Open::None {
            out("\n");
            self.open = Open::None;
        }
    }

    /// Bring client `i`'s line up to date on the terminal: the rest of it if it is the
    /// open line, else (after ending the open line) all of it with the prefix.
    fn show_rest(&mut self, i: usize, out: &mut impl FnMut(&str)) {
        let c = &self.clients[i];
        if let Open::Client { i: open, shown } = self.open
            && open == i
        {
            out(&c.line[shown..]);
        } else {
            if self.open != Open::None {
                out("\n");
            }
            out("[");
            out(&c.name);
            out("] ");
            out(&c.line);
        }
        self.open = Open::Client { i, shown: c.line.len() };
    }

    /// Client `i`'s line is complete: show it and start a new one.
    fn show_line(&mut self, i: usize, out: &mut impl FnMut(&str)) {
        self.show_rest(i, out);
        out("\n");
        self.open = Open::None;
        self.clients[i].line.clear();
    }

    /// Show client `i`'s unfinished line, if it has one, and leave it open.
    fn show_unfinished(&mut self, i: usize, out: &mut impl FnMut(&str)) {
        if !self.clients[i].line.is_empty() {
            self.show_rest(i, out);
        }
    }

    /// Client `badge` takes the focus; its unfinished line, if any, is shown at once.
    pub fn focus(&mut self, badge: u64, out: &mut impl FnMut(&str)) {
        if self.focus != Some(badge) && (self.client(badge).is_some() || self.focus.is_none()) {
            self.focus = Some(badge);
            self.told = false;
            if let Some(i) = self.focused_index() {
                self.show_unfinished(i, out);
            }
        }
    }

    /// Client `badge` has typed input echoed while it has the focus, or not.
    pub fn set_echo(&mut self, badge: u64, on: bool) {
        if let Some(c) = self.client(badge) {
            c.echo = on;
        }
    }

    /// Client `badge` asks to be told when input waits for it (see `take_signal`), with a
    /// new notification: it has not been told anything yet. Returns its index
    /// (`0..MAX_CLIENTS`, the same for as long as the console runs), by which the caller
    /// keeps the notification; `None` if there is no room for another client.
    pub fn notify_input(&mut self, badge: u64) -> Option<usize> {
        let i = self.index(badge)?;
        self.clients[i].notify = true;
        if self.focus == Some(badge) {
            self.told = false;
        }
        Some(i)
    }

    /// The client to signal now, by index (see `notify_input`): the focused one, if it
    /// asked to be told, input waits for it, and it was not told since. Ask after
    /// anything that may change that (input, a focus, a `notify_input`); it answers
    /// once per time input starts waiting.
    pub fn take_signal(&mut self) -> Option<usize> {
        if self.told || self.input.is_empty() {
            return None;
        }
        let focus = self.focus?;
        let i = self.clients.iter().position(|c| c.badge == focus && c.notify)?;
        self.told = true;
        Some(i)
    }

    /// The client with the focus.
    #[cfg(test)]
    pub const fn focused(&self) -> Option<u64> {
        self.focus
    }

    /// A byte arrived from the UART. Returns what to echo, if anything, to be sent
    /// after what went to `out` (a focus's unfinished line, the end of another).
    pub fn input(&mut self, b: u8, out: &mut impl FnMut(&str)) -> Option<u8> {
        if self.escape {
            self.escape = false;
            if self.escaped(b, out) {
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
        if self.focused_index().is_some_and(|i| !self.clients[i].echo) {
            return None;
        }
        let echo = if b == b'\r' { b'\n' } else { b };
        self.place_echo(echo, out);
        Some(echo)
    }

    /// The byte after an `ESCAPE`: a digit naming a client gives it the focus (saying
    /// so), `?`, `0` or a digit naming nobody shows the numbers (`numbers`). Returns
    /// whether the byte was the console's; any other byte is input.
    fn escaped(&mut self, b: u8, out: &mut impl FnMut(&str)) -> bool {
        let n = match b {
            b'?' => 0,
            b'0'..=b'9' => usize::from(b - b'0'),
            _ => return false,
        };
        if let Some(i) = n.checked_sub(1).filter(|&i| i < self.clients.len()) {
            self.focus = Some(self.clients[i].badge);
            self.input.clear();
            self.told = false;
            let mut line = Said::default();
            let _ = write!(line, "console: keyboard to {}", self.clients[i].name);
            self.say(&line, out);
            self.show_unfinished(i, out);
        } else {
            let line = self.numbers();
            self.say(&line, out);
        }
        true
    }

    /// The console's line that says which number (after `Ctrl-A`) gives the keyboard
    /// to whom, and who has it.
    fn numbers(&self) -> Said {
        let mut line = Said::default();
        if self.clients.is_empty() {
            let _ = line.write_str("console: no clients yet to give the keyboard to");
            return line;
        }
        let focused = self.focused_index();
        let _ = line.write_str("console: Ctrl-A and a number gives the keyboard to");
        for (i, c) in self.clients.iter().take(DIGITS).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let has = if focused == Some(i) { " (has it)" } else { "" };
            let _ = write!(line, "{sep}{} {}{has}", i + 1, c.name);
        }
        if self.clients.len() > DIGITS {
            let more = self.clients.len() - DIGITS;
            let has = if focused.is_some_and(|i| i >= DIGITS) {
                ", one of them has it"
            } else {
                ""
            };
            let _ = write!(line, "; {more} more have no number{has}");
        }
        line
    }

    /// Show `line`, one of the console's own, as a whole line (ending the open one).
    fn say(&mut self, line: &Said, out: &mut impl FnMut(&str)) {
        self.end_open(out);
        out(line.as_str());
        out("\n");
    }

    /// Make way for echoing `echo`: after the focused client's unfinished line (shown
    /// again if another line came since), else at a line's start or after input echoed
    /// there. An echoed newline ends the line, the focused client's too.
    fn place_echo(&mut self, echo: u8, out: &mut impl FnMut(&str)) {
        match self.focused_index() {
            Some(i) if !self.clients[i].line.is_empty() => self.show_rest(i, out),
            _ => {
                // Another client's line ends here, by the echoed newline if it is one.
                if echo != b'\n' && matches!(self.open, Open::Client { .. }) {
                    self.end_open(out);
                }
                self.open = Open::Typed;
            }
        }
        if echo == b'\n' {
            if let Open::Client { i, .. } = self.open {
                self.clients[i].line.clear();
            }
            self.open = Open::None;
        }
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
        if self.input.is_empty() {
            // Read to the end: the next byte is news.
            self.told = false;
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

    fn focus_shows(m: &mut Mux, badge: u64) -> S {
        let mut out = S::new();
        m.focus(badge, &mut |s: &str| out.push_str(s));
        out
    }

    #[test]
    fn the_focused_clients_text_shows_at_once() {
        let mut m = Mux::new();
        m.set_name(1, "sh");
        m.set_name(2, "b");
        assert_eq!(focus_shows(&mut m, 1), "");
        assert_eq!(written(&mut m, 1, "# "), "[sh] # ", "a prompt, without its newline");
        assert_eq!(written(&mut m, 1, "l"), "l");
        assert_eq!(written(&mut m, 1, "s\nok\n> "), "s\n[sh] ok\n[sh] > ");
        assert_eq!(written(&mut m, 2, "held"), "", "others still show whole lines");
        // A guest's console writes a byte at a time.
        assert_eq!(written(&mut m, 1, "x"), "x");
        assert_eq!(written(&mut m, 1, "\n"), "\n");
        assert_eq!(written(&mut m, 1, "y"), "[sh] y");
    }

    #[test]
    fn the_focused_clients_long_lines_are_split_too() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.focus(1, &mut |_| {});
        let long: S = "x".repeat(LINE + 5);
        assert_eq!(
            written(&mut m, 1, &long),
            std::format!("[a] {}\n[a] xxxxx", "x".repeat(LINE))
        );
    }

    #[test]
    fn another_line_ends_the_open_line_which_is_shown_again() {
        let mut m = Mux::new();
        m.set_name(0, "kernel");
        m.set_name(1, "sh");
        m.set_name(2, "b");
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "login: "), "[sh] login: ");
        assert_eq!(written(&mut m, 2, "one\n"), "\n[b] one\n");
        assert_eq!(written(&mut m, 0, "tick\n"), "[kernel] tick\n", "nothing open");
        assert_eq!(written(&mut m, 1, "x"), "[sh] login: x", "the whole line again");
        assert_eq!(written(&mut m, 0, "t"), "");
        assert_eq!(written(&mut m, 0, "ock\n"), "\n[kernel] tock\n");
        assert_eq!(written(&mut m, 1, "\n"), "[sh] login: x\n");
    }

    #[test]
    fn typed_input_is_echoed_after_the_prompt() {
        let mut m = Mux::new();
        m.set_name(1, "sh");
        m.set_name(2, "b");
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "login: "), "[sh] login: ");
        assert_eq!(typed(&mut m, b"ro"), "ro");
        assert_eq!(written(&mut m, 2, "one\n"), "\n[b] one\n");
        assert_eq!(
            typed(&mut m, b"ot"),
            "[sh] login: ot",
            "the prompt again, then the echo"
        );
        assert_eq!(typed(&mut m, b"\r"), "\n");
        assert_eq!(
            written(&mut m, 1, "Password: "),
            "[sh] Password: ",
            "Enter ended the line"
        );
        assert_eq!(m.read(1, 10).unwrap().as_slice(), b"root\n");
    }

    #[test]
    fn a_client_that_echoes_itself_gets_no_echo() {
        let mut m = Mux::new();
        m.set_name(1, "vm");
        m.set_name(2, "b");
        m.set_echo(1, false);
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "login: "), "[vm] login: ");
        assert_eq!(typed(&mut m, b"ro\r"), "", "nothing echoed");
        assert_eq!(m.read(1, 10).unwrap().as_slice(), b"ro\n", "but kept");
        // Another client with the focus has its echo.
        m.focus(2, &mut |_| {});
        assert_eq!(typed(&mut m, b"x"), "\nx", "on a line of its own");
    }

    #[test]
    fn input_typed_at_a_lines_start_is_ended_by_other_lines() {
        let mut m = Mux::new();
        m.set_name(1, "t");
        m.set_name(2, "b");
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "type a line\n"), "[t] type a line\n");
        assert_eq!(typed(&mut m, b"hel"), "hel");
        assert_eq!(written(&mut m, 2, "one\n"), "\n[b] one\n");
        assert_eq!(typed(&mut m, b"lo\r"), "lo\n");
        assert_eq!(written(&mut m, 1, "read\n"), "[t] read\n");
        assert_eq!(typed(&mut m, b"ab"), "ab");
        assert_eq!(
            written(&mut m, 1, "> "),
            "\n[t] > ",
            "after typed input, on a line of its own"
        );
    }

    #[test]
    fn a_focus_change_keeps_the_old_line_and_shows_the_new() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.set_name(2, "b");
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 2, "login: "), "");
        assert_eq!(written(&mut m, 1, "# "), "[a] # ");
        assert_eq!(focus_shows(&mut m, 2), "\n[b] login: ", "the new focus's line at once");
        assert_eq!(written(&mut m, 1, "ls"), "", "the old focus's line is held again");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'1']),
            "\nconsole: keyboard to a\n[a] # ls",
            "the same from the keyboard, which says so"
        );
        assert_eq!(written(&mut m, 2, "ok\n"), "\n[b] login: ok\n");
        assert_eq!(written(&mut m, 1, "?"), "[a] # ls?");
        assert_eq!(focus_shows(&mut m, 2), "", "nothing unfinished");
        assert_eq!(
            written(&mut m, 1, "\n"),
            "\n",
            "its line is still the open one: ended in place"
        );
    }

    #[test]
    fn a_client_without_room_writes_lines() {
        let mut m = Mux::new();
        for badge in 1..=MAX_CLIENTS as u64 {
            m.set_name(badge, "c");
        }
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "# "), "[c] # ");
        assert_eq!(written(&mut m, 99, "hi"), "\n[client99] hi\n");
    }

    #[test]
    fn input_goes_to_the_focused_client_only() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.set_name(2, "b");
        assert_eq!(m.read(1, 10), Err(ReadError::NotFocused));
        m.focus(2, &mut |_| {});
        assert_eq!(m.read(2, 10), Err(ReadError::Empty));
        for b in b"hi\r" {
            m.input(*b, &mut |_| {});
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
        m.focus(7, &mut |_| {});
        assert_eq!(m.input(ESCAPE, &mut |_| {}), None);
        assert_eq!(m.input(b'2', &mut |_| {}), None);
        assert_eq!(m.focused(), Some(9));
        // An escape followed by something else passes that byte through.
        assert_eq!(m.input(ESCAPE, &mut |_| {}), None);
        assert_eq!(m.input(b'x', &mut |_| {}), Some(b'x'));
        assert_eq!(m.read(9, 10).unwrap().as_slice(), b"x");
    }

    #[test]
    fn escape_digit_says_where_the_keyboard_goes() {
        let mut m = Mux::new();
        m.set_name(1, "kv");
        m.set_name(2, "linux");
        m.focus(1, &mut |_| {});
        assert_eq!(written(&mut m, 1, "> "), "[kv] > ");
        assert_eq!(written(&mut m, 2, "login: "), "");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'2']),
            "\nconsole: keyboard to linux\n[linux] login: ",
            "the open line ended, the news, then the new focus's unfinished line"
        );
        assert_eq!(typed(&mut m, &[ESCAPE, b'1']), "\nconsole: keyboard to kv\n[kv] > ");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'1']),
            "\nconsole: keyboard to kv\n[kv] > ",
            "again"
        );
        assert_eq!(typed(&mut m, b"x"), "x", "after its prompt, as before");
        assert_eq!(written(&mut m, 1, "\n"), "\n");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'2']),
            "console: keyboard to linux\n[linux] login: ",
            "nothing open to end"
        );
        m.set_name(3, "quiet");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'3']),
            "\nconsole: keyboard to quiet\n",
            "nothing unfinished to show"
        );
        assert_eq!(m.focused(), Some(3));
    }

    #[test]
    fn escape_question_mark_or_zero_lists_the_numbers() {
        let mut m = Mux::new();
        m.set_name(4, "kv");
        m.set_name(5, "greeter");
        m.set_name(6, "linux");
        let list = "console: Ctrl-A and a number gives the keyboard to 1 kv, 2 greeter, 3 linux";
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'?']),
            std::format!("{list}\n"),
            "nobody has it"
        );
        m.focus(6, &mut |_| {});
        assert_eq!(written(&mut m, 6, "login: "), "[linux] login: ");
        assert_eq!(typed(&mut m, b"ro"), "ro");
        let shown = std::format!("\n{list} (has it)\n");
        assert_eq!(typed(&mut m, &[ESCAPE, b'?']), shown, "on a line of its own");
        assert_eq!(typed(&mut m, &[ESCAPE, b'0']), shown.trim_start());
        assert_eq!(
            typed(&mut m, b"ot"),
            "[linux] login: ot",
            "the prompt again, then the echo"
        );
        assert_eq!(m.focused(), Some(6));
        assert_eq!(
            m.read(6, 10).unwrap().as_slice(),
            b"root",
            "neither `?` nor `0` is input"
        );
        // Any other byte after the escape is input, as before: `Ctrl-A` twice types one.
        assert_eq!(typed(&mut m, &[ESCAPE, ESCAPE]), "\u{1}");
        assert_eq!(m.read(6, 10).unwrap().as_slice(), &[ESCAPE]);
    }

    #[test]
    fn escape_digit_naming_nobody_lists_the_numbers() {
        let mut m = Mux::new();
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'1']),
            "console: no clients yet to give the keyboard to\n"
        );
        m.set_name(7, "a");
        m.set_name(9, "b");
        m.focus(9, &mut |_| {});
        assert_eq!(typed(&mut m, b"x"), "x");
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'3']),
            "\nconsole: Ctrl-A and a number gives the keyboard to 1 a, 2 b (has it)\n"
        );
        assert_eq!(m.focused(), Some(9), "the focus stays");
        assert_eq!(m.read(9, 10).unwrap().as_slice(), b"x", "and so does its input");
    }

    #[test]
    fn the_list_of_numbers_is_cut_at_a_line() {
        let mut m = Mux::new();
        for badge in 1..=MAX_CLIENTS as u64 {
            m.set_name(badge, "c");
        }
        m.focus(12, &mut |_| {});
        assert_eq!(
            typed(&mut m, &[ESCAPE, b'?']),
            "console: Ctrl-A and a number gives the keyboard to 1 c, 2 c, 3 c, 4 c, 5 c, \
             6 c, 7 c, 8 c, 9 c; 7 more have no number, one of them has it\n"
        );
        for badge in 1..=MAX_CLIENTS as u64 {
            m.set_name(badge, "sixteen-bytes-é");
        }
        let n = "sixteen-bytes-é";
        let cut = std::format!(
            "console: Ctrl-A and a number gives the keyboard to 1 {n}, 2 {n}, 3 {n}, 4 {n}, \
             5 {n}, 6 sixt..."
        );
        assert_eq!(cut.len(), LINE);
        assert_eq!(typed(&mut m, &[ESCAPE, b'?']), cut + "\n");
    }

    #[test]
    fn a_cut_line_ends_on_a_character() {
        let mut line = Said::default();
        let _ = write!(line, "{}ééz", "x".repeat(LINE - 4));
        assert_eq!(line.as_str(), std::format!("{}...", "x".repeat(LINE - 4)));
        let _ = line.write_str("more");
        assert_eq!(line.as_str().len(), LINE - 1, "nothing after the cut");
    }

    /// Type `text`; returns what the terminal shows (the echo after what it follows).
    fn typed(m: &mut Mux, text: &[u8]) -> S {
        let mut out = S::new();
        for b in text {
            if let Some(echo) = m.input(*b, &mut |s: &str| out.push_str(s)) {
                out.push(char::from(echo));
            }
        }
        out
    }

    #[test]
    fn waiting_input_is_signalled_once_until_read_to_the_end() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.focus(1, &mut |_| {});
        assert_eq!(m.notify_input(1), Some(0));
        assert_eq!(m.take_signal(), None, "nothing waits");
        typed(&mut m, b"h");
        assert_eq!(m.take_signal(), Some(0));
        assert_eq!(m.take_signal(), None, "once");
        typed(&mut m, b"i");
        assert_eq!(m.take_signal(), None, "not per byte");
        assert_eq!(m.read(1, 1).unwrap().as_slice(), b"h");
        typed(&mut m, b"x");
        assert_eq!(
            m.take_signal(),
            None,
            "input still waits: the client has not read it all"
        );
        assert_eq!(m.read(1, 10).unwrap().as_slice(), b"ix");
        assert_eq!(m.read(1, 10), Err(ReadError::Empty));
        assert_eq!(m.take_signal(), None);
        typed(&mut m, b"y");
        assert_eq!(m.take_signal(), Some(0), "after the end, the next byte is news");
    }

    #[test]
    fn only_a_focused_client_that_asked_is_signalled() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.set_name(2, "b");
        assert_eq!(m.notify_input(1), Some(0));
        typed(&mut m, b"z");
        assert_eq!(m.take_signal(), None, "nobody has the focus");
        m.focus(2, &mut |_| {});
        assert_eq!(m.take_signal(), None, "the focused client did not ask");
        // Asking while input waits signals at once: it may have looked before.
        assert_eq!(m.notify_input(2), Some(1));
        assert_eq!(m.take_signal(), Some(1));
        // A new notification replaces the old one, and is told too.
        assert_eq!(m.notify_input(2), Some(1));
        assert_eq!(m.take_signal(), Some(1));
        assert_eq!(m.take_signal(), None);
    }

    #[test]
    fn taking_the_focus_while_input_waits_signals() {
        let mut m = Mux::new();
        m.set_name(1, "a");
        m.set_name(2, "b");
        m.notify_input(1);
        m.notify_input(2);
        m.focus(1, &mut |_| {});
        typed(&mut m, b"q");
        assert_eq!(m.take_signal(), Some(0));
        m.focus(2, &mut |_| {});
        assert_eq!(m.take_signal(), Some(1));
        m.focus(2, &mut |_| {});
        assert_eq!(m.take_signal(), None, "it had the focus already");
        m.focus(1, &mut |_| {});
        assert_eq!(
            m.take_signal(),
            Some(0),
            "the input still waits for whoever has the focus"
        );
        assert_eq!(m.read(1, 10).unwrap().as_slice(), b"q");
        m.focus(2, &mut |_| {});
        assert_eq!(m.take_signal(), None, "nothing waits");
    }

    #[test]
    fn the_keyboard_focus_drops_input_and_the_next_byte_signals() {
        let mut m = Mux::new();
        m.set_name(7, "a");
        m.set_name(9, "b");
        m.notify_input(7);
        m.notify_input(9);
        m.focus(7, &mut |_| {});
        typed(&mut m, b"a");
        assert_eq!(m.take_signal(), Some(0));
        typed(&mut m, &[ESCAPE, b'2']);
        assert_eq!(m.focused(), Some(9));
        assert_eq!(m.take_signal(), None, "what was typed for the other client is gone");
        assert_eq!(m.read(9, 10), Err(ReadError::Empty));
        typed(&mut m, b"b");
        assert_eq!(m.take_signal(), Some(1));
    }

    #[test]
    fn notify_input_needs_room_for_the_client() {
        let mut m = Mux::new();
        for badge in 1..=MAX_CLIENTS as u64 {
            m.set_name(badge, "c");
        }
        assert_eq!(m.notify_input(MAX_CLIENTS as u64 + 1), None);
        assert_eq!(m.notify_input(3), Some(2), "clients keep their index");
    }

    #[test]
    fn full_input_drops_and_counts() {
        let mut m = Mux::new();
        m.focus(1, &mut |_| {});
        for _ in 0..INPUT + 3 {
            m.input(b'z', &mut |_| {});
        }
        assert_eq!(m.dropped, 3);
    }
}
