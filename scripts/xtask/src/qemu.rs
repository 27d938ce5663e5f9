//! Booting images in QEMU, interactively or captured for tests. Every run has a timeout.
//!
//! Interactive runs (`cargo xtask run`, `scripts/run`) do not hand the terminal to QEMU:
//! this process sits between them and passes the keyboard (or whatever stdin is) on
//! only once the guest has printed its first byte. QEMU starts reading its stdin before
//! the guest has run a single instruction, and its UART models drop what arrives
//! before the kernel has set the UART up: the Cadence UART (zcu102) discards every byte
//! while its receiver is disabled, as it is at reset, and the PL011 (virt, raspi3b)
//! keeps one byte, which it flushes when the kernel turns its FIFO on. The kernel sets
//! the UART up before it prints anything, so from its first byte of output on, QEMU
//! holds input back whenever the UART's FIFO is full and nothing typed is lost.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gaon_platform::{Board, QemuConfig};

use crate::build::{build_board, load_board};

/// A QEMU configuration and the board it belongs to.
#[derive(Debug)]
pub struct Target {
    /// Board.
    pub board: Board,
    /// Configuration.
    pub config: QemuConfig,
    /// Run on QEMU's deterministic clock ([`ICOUNT`]).
    pub icount: bool,
}

/// Resolve a configuration name (`virt-gicv2-a72`) or a board name (`virt`, first config).
pub fn resolve(name: &str) -> Result<Target, String> {
    let platforms = crate::root_dir().join("platforms");
    for b in gaon_platform::list_boards(&platforms) {
        let board = load_board(&b)?;
        if let Some(q) = board.qemu_config(name).cloned() {
            return Ok(Target {
                board,
                config: q,
                icount: false,
            });
        }
        if b == name {
            let q = board
                .qemu
                .first()
                .cloned()
                .ok_or_else(|| format!("board `{b}` has no [[qemu]] configuration"))?;
            return Ok(Target {
                board,
                config: q,
                icount: false,
            });
        }
    }
    Err(format!(
        "`{name}` is neither a board nor a QEMU configuration (see `cargo xtask list`)"
    ))
}

/// The QEMU command line for `target` booting `image`.
pub fn command(target: &Target, image: &Path) -> Command {
    let mut cmd = Command::new("qemu-system-aarch64");
    let q = &target.config;
    cmd.args(["-M", &q.machine]);
    if let Some(cpu) = &q.cpu {
        cmd.args(["-cpu", cpu]);
    }
    let mem_mib = target.board.memory.size >> 20;
    let mem = q.memory.clone().unwrap_or_else(|| format!("{mem_mib}M"));
    cmd.args(["-smp", &target.board.smp(q).to_string(), "-m", &mem]);
    cmd.args(["-semihosting-config", "enable=on,target=native"]);
    if target.icount {
        cmd.args(ICOUNT);
    }
    cmd.args(["-no-reboot", "-kernel"]).arg(image);
    // No sound: QEMU 7.2 gives the zcu102's DisplayPort an audio card with no
    // `audiodev` property, so `-audiodev none` leaves a deprecation warning behind and
    // without either QEMU prints 25 lines of ALSA errors on a machine with no sound card.
    cmd.env("QEMU_AUDIO_DRV", "none");
    cmd
}

fn qemu_present() -> Result<(), String> {
    match Command::new("qemu-system-aarch64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        _ => Err("qemu-system-aarch64 not found: run scripts/run or `apt-get install qemu-system-arm`".into()),
    }
}

/// `cargo xtask run [CONFIG|BOARD] [--system NAME] [--timeout SECS] [--icount]`: console on
/// this terminal (`--icount`: on the deterministic clock the kernel tests run with).
pub fn run_command(args: &[String]) -> Result<(), String> {
    let mut name = "virt".to_string();
    let mut timeout = 120u64;
    let mut icount = false;
    let mut system = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--system" {
            system = Some(
                it.next()
                    .ok_or("--system needs a name (system, linux, ktest, vm, ...)")?
                    .clone(),
            );
        } else if a == "--icount" {
            icount = true;
        } else if a == "--timeout" {
            timeout = it
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--timeout needs a number of seconds")?;
        } else {
            name.clone_from(a);
        }
    }
    qemu_present()?;
    let mut target = resolve(&name)?;
    target.icount = icount;
    let board = target.board.board.name.clone();
    // The board's Linux system if it has one, else its default system.
    let system = system.unwrap_or_else(|| {
        let linux = crate::build::system_file(&board, crate::build::LINUX_SYSTEM).is_file();
        (if linux {
            crate::build::LINUX_SYSTEM
        } else {
            crate::build::DEFAULT_SYSTEM
        })
        .to_string()
    });
    let image = build_board(&board, &system)?;
    let terminal = std::io::stdin().is_terminal();
    let input = if system == crate::build::LINUX_SYSTEM && !terminal {
        eprintln!(
            "booting {} in QEMU ({}): stdin is no terminal, so a short session is typed into the \
             Linux guest, which then powers off; timeout {timeout} s.",
            image.display(),
            target.config.name
        );
        Input::Script(crate::guest::DEMO_SESSION)
    } else {
        eprintln!(
            "booting {} in QEMU ({}); quit with Ctrl-A X{}; timeout {timeout} s.",
            image.display(),
            target.config.name,
            if system == crate::build::LINUX_SYSTEM {
                ". You type into the Linux guest's shell; `poweroff` in it halts the system"
            } else {
                ". The demo halts by itself"
            }
        );
        Input::Stream(Box::new(std::io::stdin()))
    };
    let outcome = {
        let _raw = RawTerminal::enter();
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        run_console(
            &target,
            &image,
            Duration::from_secs(timeout),
            input,
            &mut |stream, bytes| {
                let w: &mut dyn Write = match stream {
                    Stream::Out => &mut out,
                    Stream::Err => &mut err,
                };
                let _ = w.write_all(bytes).and_then(|()| w.flush());
            },
        )?
    };
    match outcome {
        Some(0) => Ok(()),
        Some(c) => Err(format!("QEMU exited with status {c}")),
        None => Err(format!("timed out after {timeout} s")),
    }
}

/// The terminal in the mode QEMU's `-nographic` puts it in (no line editing or echo,
/// Ctrl-C and Ctrl-Z as bytes for the guest, output post-processing kept), restored when
/// dropped. Nothing happens when stdin is not a terminal.
struct RawTerminal {
    saved: String,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let out = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let saved = String::from_utf8(out.stdout).ok()?.trim().to_string();
        let raw = [
            "-ignbrk", "-brkint", "-parmrk", "-istrip", "-inlcr", "-igncr", "-icrnl", "-ixon", "-echo", "-echonl",
            "-icanon", "-iexten", "-isig", "cs8", "-parenb", "min", "1", "time", "0",
        ];
        let ok = out.status.success() && Command::new("stty").args(raw).status().is_ok_and(|s| s.success());
        ok.then_some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = Command::new("stty").arg(&self.saved).status();
    }
}

/// Which of QEMU's output streams bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: the guest's console.
    Out,
    /// Standard error: QEMU's own messages.
    Err,
}

/// What a console run is fed.
pub enum Input {
    /// A stream (the terminal, a pipe, bytes), passed on as it comes.
    Stream(Box<dyn Read + Send>),
    /// A session typed by the harness: each step's keys once the output (since the
    /// previous step's marker) has its marker.
    Script(&'static [(&'static str, &'static [u8])]),
}

/// Boot `image` with QEMU's console (`-nographic`: the serial port and QEMU's monitor on
/// stdio, Ctrl-A X quits) fed from `input` and written to `sink`, killing QEMU after
/// `timeout`. `input` is passed on only after the guest's first byte of output (see the
/// module's documentation); its end is QEMU's end of input. Returns QEMU's exit code,
/// `None` at the timeout. `cargo xtask run` passes its stdin and stdout; the test
/// harness passes bytes and keeps the output.
pub fn run_console(
    target: &Target,
    image: &Path,
    timeout: Duration,
    input: Input,
    sink: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Option<i32>, String> {
    qemu_present()?;
    let mut cmd = command(target, image);
    cmd.arg("-nographic")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let (gate, gate_open) = mpsc::channel::<()>();
    let (script, input) = match input {
        Input::Script(s) => (s, None),
        Input::Stream(r) => (&[][..], Some(r)),
    };
    let mut typer = if script.is_empty() { None } else { child.stdin.take() };
    let mut typist = Typist::new(script);
    if let (Some(mut stdin), Some(mut input)) = (child.stdin.take(), input) {
        thread::spawn(move || {
            if gate_open.recv().is_err() {
                return;
            }
            let mut buf = [0u8; 1024];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || stdin.write_all(&buf[..n]).and_then(|()| stdin.flush()).is_err() {
                    break;
                }
            }
            // Dropping `stdin` closes it: QEMU sees the end of the input.
        });
    }
    let (tx, rx) = mpsc::channel();
    for (stream, pipe) in [
        (
            Stream::Out,
            child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            Stream::Err,
            child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 || tx.send((stream, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let mut gate = Some(gate);
    let code = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((stream, bytes)) => {
                if stream == Stream::Out
                    && let Some(g) = gate.take()
                {
                    let _ = g.send(());
                }
                sink(stream, &bytes);
                if let Some(pipe) = typer.as_mut() {
                    typist.saw(&bytes, pipe);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(20)),
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
    };
    for (stream, bytes) in rx {
        sink(stream, &bytes);
    }
    Ok(code)
}

/// What a captured run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Serial output.
    pub output: String,
    /// QEMU's exit code; `None` if it was killed at the timeout.
    pub exit_code: Option<i32>,
}

/// Boot `image` with the console captured, killing QEMU after `timeout`.
pub fn run_captured(target: &Target, image: &Path, timeout: Duration) -> Result<Outcome, String> {
    run_with_input(target, image, timeout, None)
}

/// Types a session into QEMU's console: each step's keys once the output has shown
/// its marker after the previous step's.
struct Typist<'a> {
    script: &'a [(&'a str, &'a [u8])],
    step: usize,
    /// Output since the last marker found.
    seen: Vec<u8>,
}

impl<'a> Typist<'a> {
    const fn new(script: &'a [(&'a str, &'a [u8])]) -> Self {
        Self {
            script,
            step: 0,
            seen: Vec::new(),
        }
    }

    /// Output `bytes` arrived: type into `keys` every step whose marker it completes.
    fn saw(&mut self, bytes: &[u8], keys: &mut impl Write) {
        if self.done() {
            return;
        }
        self.seen.extend_from_slice(bytes);
        while let Some((marker, typed)) = self.script.get(self.step)
            && let Some(at) = find(&self.seen, marker.as_bytes())
        {
            self.seen.drain(..at + marker.len());
            let _ = keys.write_all(typed).and_then(|()| keys.flush());
            self.step += 1;
        }
    }

    /// Every step typed.
    const fn done(&self) -> bool {
        self.step == self.script.len()
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len().max(1)).position(|w| w == needle)
}

/// QEMU's deterministic clock: a counter tick is a fixed number of instructions (`shift=0`:
/// 1 ns of virtual time per instruction), and an idle CPU skips to its next timer
/// deadline (`sleep=off`). Timer interrupts come exactly at their deadlines, whatever
/// else the host is doing: the kernel test suite's time checks (budget accuracy within
/// 2 %) need that, and the benchmarks count instructions with it.
pub const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// Like [`run_with_input`], on QEMU's deterministic clock ([`ICOUNT`]).
pub fn run_captured_icount(
    target: &Target,
    image: &Path,
    timeout: Duration,
    input: Option<(&str, &[u8])>,
) -> Result<Outcome, String> {
    qemu_present()?;
    capture(serial_command(target, image, true), timeout, input)
}

/// The QEMU command for `target` booting `image` with its serial port on stdio and no
/// display or monitor (what [`capture`] reads), on QEMU's deterministic clock if
/// `icount` or `target.icount`.
pub fn serial_command(target: &Target, image: &Path, icount: bool) -> Command {
    let mut cmd = command(target, image);
    if icount && !target.icount {
        cmd.args(ICOUNT);
    }
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
    cmd
}

/// Like [`run_captured`]; once the output contains `input.0`, type `input.1` on the
/// console (QEMU's serial port reads its stdin).
pub fn run_with_input(
    target: &Target,
    image: &Path,
    timeout: Duration,
    input: Option<(&str, &[u8])>,
) -> Result<Outcome, String> {
    qemu_present()?;
    capture(serial_command(target, image, false), timeout, input)
}

/// Run `cmd` (QEMU with its serial port on stdio) with its output captured, killing
/// it after `timeout`; once the output contains `input.0`, type `input.1`.
pub fn capture(cmd: Command, timeout: Duration, input: Option<(&str, &[u8])>) -> Result<Outcome, String> {
    capture_script(cmd, timeout, input.as_slice())
}

/// Like [`capture`], typing a session: each step's bytes once the output has its
/// marker after where the previous step's marker was found. The steps not reached by
/// the end are listed in [`Outcome::output`]'s problems by the caller (the output says
/// how far it got).
pub fn capture_script(mut cmd: Command, timeout: Duration, script: &[(&str, &[u8])]) -> Result<Outcome, String> {
    cmd.stdin(if script.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut stdin = child.stdin.take();
    let mut typist = Typist::new(script);
    let (tx, rx) = mpsc::channel();
    for mut pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let exit_code = loop {
        while let Ok(chunk) = rx.try_recv() {
            if let Some(pipe) = stdin.as_mut() {
                typist.saw(&chunk, pipe);
                if typist.done() {
                    stdin = None;
                }
            }
            raw.extend_from_slice(&chunk);
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    for chunk in rx {
        raw.extend_from_slice(&chunk);
    }
    let output = String::from_utf8_lossy(&raw).replace('\r', "");
    Ok(Outcome { output, exit_code })
}

#[cfg(test)]
mod tests {
    use super::Typist;

    #[test]
    fn a_session_is_typed_a_step_at_a_time_as_its_markers_show() {
        let script: &[(&str, &[u8])] = &[("$ ", b"one\r"), ("$ ", b"two\r"), ("bye", b"")];
        let mut t = Typist::new(script);
        let mut keys = Vec::new();
        t.saw(b"boot...", &mut keys);
        assert!(keys.is_empty(), "no marker yet");
        // A marker split across two chunks counts once complete.
        t.saw(b"login $", &mut keys);
        assert!(keys.is_empty());
        t.saw(b" ", &mut keys);
        assert_eq!(keys, b"one\r");
        // The same marker again is the next step's, only after the first.
        t.saw(b"one\r\nout\n$ two", &mut keys);
        assert_eq!(keys, b"one\rtwo\r");
        assert!(!t.done());
        t.saw(b"\nbye\n$ ", &mut keys);
        assert!(t.done());
        assert_eq!(keys, b"one\rtwo\r", "nothing typed after the last step");
    }
}
