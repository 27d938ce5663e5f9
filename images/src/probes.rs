//! `probes` of a `[[vm]]` running Linux (`docs/trace.md`, "Linux probes"): each symbol
//! is resolved from the kernel's `System.map` (Debian ships the real one in its
//! `-dbg` package; `cargo xtask` puts it beside the guest's Image), the entry's hint
//! instructions are stepped over, and the instruction the VMM will displace is checked
//! to be one it can carry out. Where a `task_struct` keeps `pid` and `comm` is read
//! from the kernel's own BTF (between `__start_BTF` and `__stop_BTF` in the Image),
//! so nothing is asked of the guest.

use std::collections::HashMap;

use gaon_abi::system::{MAX_PROBES, PROBE_NAME_LEN, ProbeConfig, TaskLayout};
use gaon_vmm::probe::Displaced;
use zerocopy::FromZeros;

/// The symbols a probe may name: a probe records a task switch from `x0` and `x1`
/// (the previous and next `task_struct`), which only these have.
pub const KNOWN: &[&str] = &["__switch_to"];
/// Bytes of hint instructions stepped over at most at a function's entry (four).
const MAX_SKIP: u32 = 16;

/// A `System.map`: symbol to address.
pub struct SystemMap(HashMap<String, u64>);

impl SystemMap {
    /// Parse `ADDRESS TYPE NAME` lines. Debian's linux-image package ships a stub
    /// (`The real System.map is in the linux-image-<version>-dbg package`), which this
    /// refuses by name.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("The real System.map is in") {
            return Err("is Debian's stub; the real one is in the kernel's -dbg package".into());
        }
        let mut m = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let mut w = line.split_whitespace();
            let (Some(addr), Some(_), Some(name)) = (w.next(), w.next(), w.next()) else {
                return Err(format!("line {}: not `ADDRESS TYPE NAME`", n + 1));
            };
            let addr = u64::from_str_radix(addr, 16).map_err(|_| format!("line {}: bad address", n + 1))?;
            m.entry(name.to_string()).or_insert(addr);
        }
        Ok(Self(m))
    }

    fn get(&self, name: &str) -> Result<u64, String> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| format!("has no symbol `{name}`"))
    }
}

/// The probes' configurations and the task layout, for `symbols` in the kernel `image`
/// described by `map`.
pub fn resolve(
    symbols: &[String],
    map: &SystemMap,
    image: &[u8],
) -> Result<([ProbeConfig; MAX_PROBES], TaskLayout), String> {
    if symbols.len() > MAX_PROBES {
        return Err(format!("{} probes; a VM has at most {MAX_PROBES}", symbols.len()));
    }
    let text = map.get("_text")?;
    let at = |va: u64, len: usize| -> Result<&[u8], String> {
        let off = va.checked_sub(text).map(|o| o as usize);
        off.and_then(|o| image.get(o..o.checked_add(len)?))
            .ok_or_else(|| format!("{va:#x} is not in the Image (System.map of another kernel?)"))
    };
    let mut out = [ProbeConfig::new_zeroed(); MAX_PROBES];
    for (i, s) in symbols.iter().enumerate() {
        if !KNOWN.contains(&s.as_str()) {
            return Err(format!(
                "`{s}`: a probe records a task switch, which only {} make",
                KNOWN.join(", ")
            ));
        }
        if s.len() > PROBE_NAME_LEN || symbols[..i].contains(s) {
            return Err(format!("`{s}`: too long, or named twice"));
        }
        let va = map.get(s)?;
        let mut skip = 0;
        let insn = loop {
            let w = at(va + u64::from(skip), 4)?;
            let insn = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            match Displaced::decode(insn) {
                Some(Displaced::Hint) if skip < MAX_SKIP => skip += 4,
                Some(_) => break insn,
                None => {
                    return Err(format!(
                        "`{s}`+{skip}: the VMM cannot carry out its instruction {insn:#010x}"
                    ));
                }
            }
        };
        let c = &mut out[i];
        c.name[..s.len()].copy_from_slice(s.as_bytes());
        c.va = va + u64::from(skip);
        c.insn = insn;
        c.skip = skip;
    }
    let (start, stop) = (map.get("__start_BTF")?, map.get("__stop_BTF")?);
    let btf = at(start, stop.saturating_sub(start) as usize)?;
    let (pid, comm) = task_offsets(btf).map_err(|e| format!("its BTF: {e}"))?;
    let task = TaskLayout {
        pid,
        comm,
        vectors: map.get("vectors")?,
        bp_harden_vectors: map.get("__bp_harden_el1_vectors").unwrap_or(0),
    };
    Ok((out, task))
}

/// BTF kinds this reads.
mod kind {
    pub const INT: u32 = 1;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const TYPE_TAG: u32 = 18;
}

/// One BTF type: its kind, name, `size_or_ref` word, and the bytes after it.
#[derive(Clone, Copy)]
struct Type<'a> {
    kind: u32,
    kflag: bool,
    name: u32,
    vlen: usize,
    size_or_ref: u32,
    extra: &'a [u8],
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The types of a BTF blob (id 1 first) and its strings.
fn parse_btf(b: &[u8]) -> Result<(Vec<Type<'_>>, &[u8]), String> {
    if b.get(..2) != Some(&[0x9f, 0xeb]) {
        return Err("no BTF magic (0xeb9f, little-endian)".into());
    }
    let word = |at| u32_at(b, at).map(|w| w as usize).ok_or("a short header");
    let (hdr, type_off, type_len, str_off, str_len) = (word(4)?, word(8)?, word(12)?, word(16)?, word(20)?);
    let types = b
        .get(hdr + type_off..hdr + type_off + type_len)
        .ok_or("the type section is outside the blob")?;
    let strings = b
        .get(hdr + str_off..hdr + str_off + str_len)
        .ok_or("the string section is outside the blob")?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < types.len() {
        let head = |i: usize| u32_at(types, at + 4 * i).ok_or("a truncated type");
        let (name, info, size_or_ref) = (head(0)?, head(1)?, head(2)?);
        let (k, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let extra = match k {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => 12 * vlen,
            6 | 13 => 8 * vlen,
            2 | 7..=12 | 16 | 18 => 0,
            k => return Err(format!("type {} has kind {k}, which this does not know", out.len() + 1)),
        };
        let bytes = types.get(at + 12..at + 12 + extra).ok_or("a truncated type")?;
        out.push(Type {
            kind: k,
            kflag: info >> 31 == 1,
            name,
            vlen,
            size_or_ref,
            extra: bytes,
        });
        at += 12 + extra;
    }
    Ok((out, strings))
}

fn name_of(strings: &[u8], off: u32) -> &[u8] {
    let s = strings.get(off as usize..).unwrap_or_default();
    &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
}

/// Offsets of `task_struct.pid` (a 4-byte int) and `task_struct.comm` (16 chars).
fn task_offsets(btf: &[u8]) -> Result<(u32, u32), String> {
    let (types, strings) = parse_btf(btf)?;
    let ty = |id: u32| types.get((id as usize).wrapping_sub(1)).copied();
    // Through typedefs and qualifiers.
    let resolve = |mut id: u32| {
        for _ in 0..32 {
            let t = ty(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => id = t.size_or_ref,
                _ => return Some(t),
            }
        }
        None
    };
    let task = types
        .iter()
        .find(|t| t.kind == kind::STRUCT && name_of(strings, t.name) == b"task_struct" && t.vlen > 0)
        .ok_or("no `struct task_struct`")?;
    // Members by name, looking into anonymous structs and unions; (type, bit offset).
    let find = |want: &[u8]| -> Option<(u32, u64)> {
        let mut stack = std::vec![(*task, 0u64)];
        let mut seen = 0;
        while let Some((t, base)) = stack.pop() {
            seen += 1;
            if seen > 1000 {
                return None;
            }
            for m in t.extra.chunks_exact(12).take(t.vlen) {
                let (name, ty_id, off) = (u32_at(m, 0)?, u32_at(m, 4)?, u32_at(m, 8)?);
                let bits = base + u64::from(if t.kflag { off & 0xff_ffff } else { off });
                if name_of(strings, name) == want {
                    return Some((ty_id, bits));
                }
                if name == 0
                    && let Some(inner) = resolve(ty_id)
                    && matches!(inner.kind, kind::STRUCT | kind::UNION)
                {
                    stack.push((inner, bits));
                }
            }
        }
        None
    };
    let (pid_ty, pid_bits) = find(b"pid").ok_or("`task_struct` has no `pid`")?;
    let (comm_ty, comm_bits) = find(b"comm").ok_or("`task_struct` has no `comm`")?;
    let pid_ok = resolve(pid_ty).is_some_and(|t| t.kind == kind::INT && t.size_or_ref == 4);
    let comm_ok = resolve(comm_ty).is_some_and(|t| t.kind == kind::ARRAY && u32_at(t.extra, 8) == Some(16));
    if !pid_ok || !comm_ok || pid_bits % 8 != 0 || comm_bits % 8 != 0 {
        return Err("`task_struct.pid` is not a 4-byte int or `comm` not 16 chars".into());
    }
    Ok(((pid_bits / 8) as u32, (comm_bits / 8) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: `int` (1), `char` (2), `char[16]` (3), `pid_t` typedef (4), an
    /// anonymous struct holding `comm` (5), and `task_struct` (6) with `state`, `pid`
    /// and the anonymous struct.
    fn btf() -> Vec<u8> {
        let strings = b"\0int\0char\0pid_t\0comm\0task_struct\0state\0pid\0".to_vec();
        let s = |name: &str| {
            let needle = [b"\0", name.as_bytes(), b"\0"].concat();
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
                .unwrap() as u32
                + 1
        };
        let mut t = Vec::new();
        let mut ty = |name: u32, kind: u32, vlen: u32, sot: u32, extra: &[u32]| {
            for w in [name, kind << 24 | vlen, sot].iter().chain(extra) {
                t.extend_from_slice(&w.to_le_bytes());
            }
        };
        ty(s("int"), kind::INT, 0, 4, &[32]);
        ty(s("char"), kind::INT, 0, 1, &[8]);
        ty(0, kind::ARRAY, 0, 0, &[2, 1, 16]);
        ty(s("pid_t"), kind::TYPEDEF, 0, 1, &[]);
        ty(0, kind::STRUCT, 1, 24, &[s("comm"), 3, 64]);
        ty(
            s("task_struct"),
            kind::STRUCT,
            3,
            4096,
            &[s("state"), 1, 0, s("pid"), 4, 0x500 * 8, 0, 5, 0x700 * 8],
        );
        let mut b = std::vec![0x9f, 0xeb, 1, 0];
        for w in [24u32, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(&strings);
        b
    }

    /// A kernel Image at 0xffff800008000000 with `__switch_to` (PACIASP; STP) at
    /// 0x2000, `vectors` at 0x10800, and the BTF at 0x20000; and its System.map.
    fn kernel() -> (Vec<u8>, String) {
        let mut image = std::vec![0u8; 0x20000];
        image[0x2000..0x2004].copy_from_slice(&0xd503_233fu32.to_le_bytes());
        image[0x2004..0x2008].copy_from_slice(&0xa9be_7bfdu32.to_le_bytes());
        image[0x3000..0x3004].copy_from_slice(&0x97cc_dee5u32.to_le_bytes());
        let b = btf();
        image.extend_from_slice(&b);
        let map = std::format!(
            "ffff800008000000 T _text\nffff800008002000 T __switch_to\nffff800008003000 T schedule\n\
             ffff800008010800 T vectors\nffff800008020000 R __start_BTF\n{:x} R __stop_BTF\n",
            0xffff_8000_0802_0000u64 + b.len() as u64
        );
        (image, map)
    }

    #[test]
    fn a_switch_probe_steps_over_the_hint_and_finds_the_task_layout() {
        let (image, map) = kernel();
        let (p, task) = resolve(&["__switch_to".into()], &SystemMap::parse(&map).unwrap(), &image).unwrap();
        assert_eq!(&p[0].name[..11], b"__switch_to");
        assert_eq!((p[0].va, p[0].insn, p[0].skip), (0xffff_8000_0800_2004, 0xa9be_7bfd, 4));
        assert_eq!(p[1], ProbeConfig::new_zeroed());
        assert_eq!(
            task,
            TaskLayout {
                pid: 0x500,
                comm: 0x708,
                vectors: 0xffff_8000_0801_0800,
                bp_harden_vectors: 0
            },
            "comm inside the anonymous struct"
        );
    }

    #[test]
    fn what_cannot_be_probed_is_refused_with_why() {
        let (image, map) = kernel();
        let m = SystemMap::parse(&map).unwrap();
        let err = |syms: &[&str], image: &[u8], m: &SystemMap| {
            let syms: Vec<String> = syms.iter().map(|s| (*s).to_string()).collect();
            resolve(&syms, m, image).unwrap_err()
        };
        assert!(err(&["schedule"], &image, &m).contains("only __switch_to"));
        assert!(err(&["__switch_to", "__switch_to"], &image, &m).contains("twice"));
        assert!(err(&["__switch_to"; 5], &image, &m).contains("at most 4"));
        assert!(err(&["__switch_to"], &image[..0x1000], &m).contains("not in the Image"));
        let mut other = image.clone();
        other[0x2004..0x2008].copy_from_slice(&0x97cc_dee5u32.to_le_bytes());
        assert!(err(&["__switch_to"], &other, &m).contains("cannot carry out its instruction 0x97ccdee5"));
        let mut no_btf = image.clone();
        no_btf[0x20000] = 0;
        assert!(err(&["__switch_to"], &no_btf, &m).contains("no BTF magic"));
        let no_vectors = SystemMap::parse(&map.replace(" vectors", " other")).unwrap();
        assert!(err(&["__switch_to"], &image, &no_vectors).contains("no symbol `vectors`"));
        assert!(
            SystemMap::parse("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package")
                .err()
                .unwrap()
                .contains("-dbg package")
        );
        assert!(SystemMap::parse("zz T x").err().unwrap().contains("line 1"));
    }
}
