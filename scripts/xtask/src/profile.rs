//! `cargo xtask profile CASE [--batch N] [--cpu a53|a72] [--top N] [--keep]`: where the
//! kernel instructions of one benchmark case go.
//!
//! It builds the bench image with a configuration that runs only `CASE` with `N`
//! operations per sample, boots it under `-icount shift=0 -singlestep -d exec` with the
//! trace limited to the kernel's code, counts the executed PCs and attributes them to
//! the kernel's functions (its ELF symbol table, read with xmas-elf). It does that with
//! `N` and with `2N` operations per sample and prints the difference per operation, so
//! boot and the case's setup cancel out and what remains is the case's steady state
//! (timer ticks included). User-level instructions are the bench's median minus that.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use xmas_elf::ElfFile;
use xmas_elf::sections::{SectionData, ShType};
use xmas_elf::symbol_table::{Entry, Type};

use crate::bench::{CPUS, gaon_command, parse};
use crate::build::{KERNEL_TARGET, build_system};
use crate::qemu::capture;
use crate::root_dir;

/// Longest a profiled run may take (single-stepping is slow).
const TIMEOUT: Duration = Duration::from_mins(15);

/// A function of the kernel: start address, size, name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Func {
    start: u64,
    size: u64,
    name: String,
}

/// `cargo xtask profile ...`.
#[allow(
    clippy::cast_precision_loss,
    reason = "instruction counts of a profiled run are far below 2^52"
)]
pub fn profile_command(args: &[String]) -> Result<(), String> {
    let usage = "usage: cargo xtask profile CASE [--batch N] [--cpu a53|a72] [--top N] [--keep]";
    let mut case = None;
    let (mut batch, mut top, mut keep) = (200u64, 25usize, false);
    let mut cpu = CPUS[0];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().ok_or(format!("{a} needs {what}\n{usage}"));
        match a.as_str() {
            "--batch" => {
                batch = value("a count")?
                    .parse()
                    .map_err(|_| format!("--batch: not a count\n{usage}"))?;
            }
            "--top" => {
                top = value("a count")?
                    .parse()
                    .map_err(|_| format!("--top: not a count\n{usage}"))?;
            }
            "--cpu" => {
                let c = value("a53 or a72")?;
                cpu = *CPUS
                    .iter()
                    .find(|(_, model)| model.ends_with(c.as_str()))
                    .ok_or(format!("--cpu: `{c}` is not a53 or a72"))?;
            }
            "--keep" => keep = true,
            c if !c.starts_with('-') && case.is_none() => case = Some(c.to_string()),
            _ => return Err(format!("unexpected `{a}`\n{usage}")),
        }
    }
    let case = case.ok_or(usage)?;
    if batch == 0
        || !case
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "a case is a name like ipc_rt_cross_as and --batch at least 1\n{usage}"
        ));
    }

    let dir = root_dir().join("build").join("profile");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bench_toml = root_dir().join("images/virt/bench.toml");
    let system =
        profile_system(&fs::read_to_string(&bench_toml).map_err(|e| format!("{}: {e}", bench_toml.display()))?)?;
    write(&dir.join("bench-profile.toml"), &system)?;

    // Two runs, `batch` and twice as many operations per sample: the difference is the
    // steady state of the case alone (boot and the case's setup cancel out).
    let mut runs = Vec::new();
    let mut kernel = None;
    for b in [batch, 2 * batch] {
        write(&dir.join("bench-profile.cfg"), &format!("only={case} batch={b}\n"))?;
        let image = build_system(&dir.join("bench-profile.toml"), &dir)?;
        // Both images hold the same kernel (only the configuration module differs).
        let (funcs, range) = match kernel.take() {
            Some(k) => k,
            None => kernel_functions(&read_kernel()?)?,
        };
        eprintln!(
            "profile: {case} on {} with {b} operations per sample, tracing the kernel",
            cpu.1
        );
        runs.push(run_once(&case, b, cpu, &image, range, &dir, keep)?);
        kernel = Some((funcs, range));
    }
    let ((row, ops1, c1), (_, ops2, c2)) = (&runs[0], &runs[1]);
    let ops = ops2 - ops1;
    let mut diff: HashMap<u64, i64> = c2.iter().map(|(&pc, &n)| (pc, n.cast_signed())).collect();
    for (&pc, &n) in c1 {
        *diff.entry(pc).or_insert(0) -= n.cast_signed();
    }
    let funcs = kernel.map(|k| k.0).unwrap_or_default();
    let per_fn: Vec<(String, f64)> = attribute(&funcs, &diff)
        .into_iter()
        .map(|(name, n)| (name, n as f64 / ops as f64))
        .collect();
    let total: f64 = per_fn.iter().map(|(_, v)| v).sum();
    println!(
        "profile: {case} on {}: {:.1} {} per operation (bench median), of which the kernel {total:.1} (trace, {ops} operations)",
        cpu.1, row.median, row.unit
    );
    println!("{:>10}  kernel function", "per op");
    for (name, v) in per_fn.iter().take(top).filter(|(_, v)| *v >= 0.05) {
        println!("{v:>10.1}  {name}");
    }
    Ok(())
}

fn read_kernel() -> Result<Vec<u8>, String> {
    let path = root_dir()
        .join("target")
        .join(KERNEL_TARGET)
        .join("release")
        .join("gaon-kernel");
    fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Boot the profile image once with the kernel's code traced: the case's result, the
/// operations it ran (the timed ones and the one warm-up sample) and the PC counts.
fn run_once(
    case: &str,
    batch: u64,
    cpu: (&str, &str),
    image: &Path,
    (lo, hi): (u64, u64),
    dir: &Path,
    keep: bool,
) -> Result<(crate::bench::Row, u64, HashMap<u64, u64>), String> {
    let trace = dir.join(format!("trace-{batch}.log"));
    let mut cmd = gaon_command(image, cpu.0)?;
    cmd.args(["-singlestep", "-d", "exec,nochain", "-dfilter"])
        .arg(format!("{lo:#x}..{hi:#x}"))
        .arg("-D")
        .arg(&trace);
    let out = capture(cmd, TIMEOUT, None)?;
    let parsed = parse(&out.output, "gaon", cpu.1);
    let Some(row) = parsed.rows.into_iter().find(|r| r.case == case) else {
        return Err(format!("the bench did not report `{case}`:\n{}", out.output));
    };
    let counts = count_pcs(&trace)?;
    if keep {
        eprintln!("profile: trace kept in {}", trace.display());
    } else {
        let _ = fs::remove_file(&trace);
    }
    let ops = row.iterations + batch;
    Ok((row, ops, counts))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The profile image's system description: the full bench image (`bench_toml`) renamed,
/// with the configuration module added.
fn profile_system(bench_toml: &str) -> Result<String, String> {
    const NAME: &str = "name = \"virt-bench\"";
    if !bench_toml.contains(NAME) {
        return Err(format!("images/virt/bench.toml has no `{NAME}` line"));
    }
    Ok(format!(
        "# Written by `cargo xtask profile` from images/virt/bench.toml.\n{}\n[[module]]\nname = \"bench-config\"\nfile = \"bench-profile.cfg\"\n",
        bench_toml.replacen(NAME, "name = \"virt-bench-profile\"", 1).trim_end()
    ))
}

/// The kernel's functions (sorted by address) and the range of its executable sections.
fn kernel_functions(elf: &[u8]) -> Result<(Vec<Func>, (u64, u64)), String> {
    let file = ElfFile::new(elf).map_err(|e| format!("kernel ELF: {e}"))?;
    let (mut lo, mut hi) = (u64::MAX, 0);
    let mut funcs = Vec::new();
    for s in file.section_iter() {
        if s.flags() & xmas_elf::sections::SHF_EXECINSTR != 0 && s.size() > 0 {
            lo = lo.min(s.address());
            hi = hi.max(s.address() + s.size());
        }
        if s.get_type() != Ok(ShType::SymTab) {
            continue;
        }
        if let Ok(SectionData::SymbolTable64(syms)) = s.get_data(&file) {
            for sym in syms {
                let code = matches!(sym.get_type(), Ok(Type::Func | Type::NoType));
                if code && sym.value() != 0 && sym.shndx() != 0 {
                    let name = sym.get_name(&file).unwrap_or("?");
                    if !name.is_empty() && !name.starts_with('$') {
                        funcs.push(Func {
                            start: sym.value(),
                            size: sym.size(),
                            name: demangle(name),
                        });
                    }
                }
            }
        }
    }
    if lo >= hi || funcs.is_empty() {
        return Err("kernel ELF: no code or no symbol table".into());
    }
    funcs.sort_by_key(|f| f.start);
    funcs.dedup_by_key(|f| f.start);
    Ok((funcs, (lo, hi)))
}

/// The PC of a `-d exec` trace line: `Trace 0: 0x... [cs_base/pc/flags/cflags] ...`.
fn trace_pc(line: &str) -> Option<u64> {
    let fields = line.split_once('[')?.1;
    let pc = fields.split('/').nth(1)?;
    u64::from_str_radix(pc, 16).ok()
}

fn count_pcs(trace: &Path) -> Result<HashMap<u64, u64>, String> {
    let f = fs::File::open(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let mut counts = HashMap::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| format!("{}: {e}", trace.display()))?;
        if let Some(pc) = trace_pc(&line) {
            *counts.entry(pc).or_insert(0u64) += 1;
        }
    }
    Ok(counts)
}

/// Sum the counts per function (the last symbol at or below each PC), largest first.
fn attribute(funcs: &[Func], counts: &HashMap<u64, i64>) -> Vec<(String, i64)> {
    let mut per: HashMap<&str, i64> = HashMap::new();
    for (&pc, &n) in counts {
        let i = funcs.partition_point(|f| f.start <= pc);
        let name = match i.checked_sub(1).map(|i| &funcs[i]) {
            Some(f) if f.size == 0 || pc < f.start + f.size => f.name.as_str(),
            _ => "(no symbol)",
        };
        *per.entry(name).or_insert(0) += n;
    }
    let mut v: Vec<(String, i64)> = per.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Readable form of a legacy-mangled Rust symbol (`_ZN...E`, hash dropped); other names
/// unchanged.
fn demangle(sym: &str) -> String {
    let Some(mut rest) = sym.strip_prefix("_ZN").and_then(|s| s.strip_suffix('E')) else {
        return sym.to_string();
    };
    let mut parts = Vec::new();
    while let Some(d) = rest.find(|c: char| !c.is_ascii_digit()) {
        let Ok(len) = rest[..d].parse::<usize>() else { break };
        let Some(part) = rest.get(d..d + len) else { break };
        parts.push(part);
        rest = &rest[d + len..];
    }
    if parts.last().is_some_and(|p| p.len() == 17 && p.starts_with('h')) {
        parts.pop();
    }
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| p.strip_prefix("_$").map_or(*p, |_| &p[1..]))
        .collect();
    let mut s = parts.join("::");
    for (from, to) in [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("$C$", ","),
        ("$u20$", " "),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("..", "::"),
    ] {
        s = s.replace(from, to);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pc_of_an_exec_trace_line() {
        let line = "Trace 0: 0x7f7024000240 [0000000000000000/0000000040080004/00000061/ff020201] ";
        assert_eq!(trace_pc(line), Some(0x4008_0004));
        assert_eq!(trace_pc("Linking TBs 0x1 [a] index 0 -> 0x2"), None);
        assert_eq!(trace_pc("no brackets"), None);
    }

    #[test]
    fn demangles_legacy_symbols_and_leaves_others() {
        assert_eq!(
            demangle("_ZN10gaon_kcore3tcb9RunQueues7dequeue17h883583c3ed83333aE"),
            "gaon_kcore::tcb::RunQueues::dequeue"
        );
        assert_eq!(
            demangle("_ZN10gaon_kcore6kernel15Kernel$LT$P$GT$8schedule17he5549ce676bde872E"),
            "gaon_kcore::kernel::Kernel<P>::schedule"
        );
        assert_eq!(
            demangle(
                "_ZN10gaon_kcore6kernel3ipc53_$LT$impl$u20$gaon_kcore..kernel..Kernel$LT$P$GT$$GT$8sys_send17h945da08a747ce0adE"
            ),
            "gaon_kcore::kernel::ipc::<impl gaon_kcore::kernel::Kernel<P>>::sys_send"
        );
        assert_eq!(demangle("handle_user_trap"), "handle_user_trap");
    }

    #[test]
    fn attributes_pcs_to_the_enclosing_function() {
        let funcs = vec![
            Func {
                start: 0x100,
                size: 0x10,
                name: "a".into(),
            },
            Func {
                start: 0x200,
                size: 0,
                name: "b".into(),
            },
        ];
        let counts = HashMap::from([(0x100, 2), (0x10c, 3), (0x180, 1), (0x250, 4), (0x50, 7)]);
        assert_eq!(
            attribute(&funcs, &counts),
            vec![("(no symbol)".into(), 8), ("a".into(), 5), ("b".into(), 4)]
        );
    }

    #[test]
    fn the_profile_system_is_the_bench_image_with_a_config_module() {
        let bench = fs::read_to_string(root_dir().join("images/virt/bench.toml")).unwrap();
        let s = profile_system(&bench).unwrap();
        assert!(s.contains("name = \"virt-bench-profile\""));
        assert!(s.ends_with("[[module]]\nname = \"bench-config\"\nfile = \"bench-profile.cfg\"\n"));
        assert!(profile_system("[system]\nname = \"other\"\n").is_err());
    }
}
