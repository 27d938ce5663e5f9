//! The run's parameters. `cargo xtask fuzz` passes them in boot module `fuzz-params`:
//! text, one `key=value` per line (`calls`, `seed`, `check_every`, `world`, `report_every`;
//! numbers in decimal or `0x` hex). Without the module (`cargo xtask run virt --system
//! fuzz`) the defaults apply.

/// The boot module's name.
pub const MODULE: &str = "fuzz-params";

/// What one run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Random syscalls the untrusted thread makes.
    pub calls: u64,
    /// Seed of its generator.
    pub seed: u64,
    /// Calls between two consistency checks.
    pub check_every: u64,
    /// Calls one world (the untrusted thread's objects) lives before it is torn down
    /// and built again.
    pub world: u64,
    /// Calls between two progress lines.
    pub report_every: u64,
}

impl Params {
    /// Without a parameter module.
    pub const DEFAULT: Self = Self {
        calls: 100_000,
        seed: 0x6761_6f6e_6675_7a7a,
        check_every: 1_000,
        world: 10_000,
        report_every: 10_000,
    };

    /// Parse the module's text; unknown keys and bad numbers are errors.
    pub fn parse(text: &[u8]) -> Result<Self, &'static str> {
        let text = core::str::from_utf8(text).map_err(|_| "not UTF-8")?;
        let mut p = Self::DEFAULT;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once('=').ok_or("a line without `=`")?;
            let v = number(value.trim()).ok_or("a bad number")?;
            match key.trim() {
                "calls" => p.calls = v,
                "seed" => p.seed = v,
                "check_every" => p.check_every = v,
                "world" => p.world = v,
                "report_every" => p.report_every = v,
                _ => return Err("an unknown key"),
            }
        }
        if p.check_every == 0 || p.world == 0 || p.report_every == 0 {
            return Err("check_every, world and report_every must not be 0");
        }
        Ok(p)
    }
}

/// A decimal or `0x` hex number, `_` allowed between digits.
fn number(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    let mut v: u64 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        v = v
            .checked_mul(radix)?
            .checked_add(u64::from(c.to_digit(radix as u32)?))?;
        any = true;
    }
    any.then_some(v)
}
