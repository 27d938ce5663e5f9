//! `cargo xtask trace` (`scripts/trace`): run a system with the trace server and write
//! what it recorded as files the usual tools open (docs/trace.md).
//!
//! The system is a description of `images/<board>/` (the default one, `system`, unless
//! `--system` names another) with the trace server added: a `[[server]]` running
//! `gaon-trace-server` and a `[trace]` table that stops it after `--for` seconds of
//! the machine's time (the server then exits, and `halt_on_exit` ends the run; a
//! system that halts earlier ends it earlier). The generated description is
//! `build/trace/<system>.toml`. QEMU runs on its real clock (every core at once) with
//! semihosting open to user level, in `build/trace/`, where the server
//! writes its stream (`gaon-trace.bin`); this command then writes `trace.dat`
//! (trace-cmd, KernelShark), `trace.json` (Perfetto) and `ctf/` (babeltrace2).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qemu::{Target, capture, serial_command};
use crate::root_dir;

/// The trace server's entry and `[trace]`, appended to a description. Priority 250:
/// above every server and VM it watches, below the root server; a budget of 500 µs
/// each 10 ms (it drains once per period).
const TRACE_SERVER: &str = r#"
[[server]]
name = "trace"
package = "gaon-trace-server"
priority = 250
budget_us = 500
period_us = 10000
debug = true
halt_on_exit = true
stack_pages = 32
"#;

/// The QEMU configuration traces run on.
pub const TARGET: &str = "virt-gicv3-a53";
/// The stream's file name (the server's `OUTPUT`).
const STREAM: &str = "gaon-trace.bin";

/// The options.
struct Options {
    system: String,
    seconds: u64,
    /// Kernel symbols to probe in the system's Linux VMs.
    probes: Vec<String>,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        system: crate::build::DEFAULT_SYSTEM.to_string(),
        seconds: 2,
        probes: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--system" => o.system.clone_from(it.next().ok_or("--system takes a system name")?),
            "--for" => {
                o.seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .filter(|&s| (1..=3600).contains(&s))
                    .ok_or("--for takes 1 to 3600 seconds")?;
            }
            "--probe" => o.probes.push(it.next().ok_or("--probe takes a kernel symbol")?.clone()),
            other => {
                return Err(format!(
                    "unknown option `{other}`; usage: scripts/trace [--system NAME] [--for SECONDS] [--probe SYMBOL]"
                ));
            }
        }
    }
    Ok(o)
}

/// Make the paths of description `doc` (relative to `dir`, its folder) absolute, so
/// they stay right from a generated description's folder: includes, and the files of
/// VMs (guest, initrd), servers and modules.
fn absolute_paths(doc: &mut toml::Table, dir: &Path) {
    let absolute = |v: &mut toml::Value| {
        if let toml::Value::String(s) = v {
            *s = dir.join(&*s).display().to_string();
        }
    };
    if let Some(toml::Value::Array(includes)) = doc.get_mut("include") {
        includes.iter_mut().for_each(absolute);
    }
    for table in ["vm", "server", "module"] {
        let Some(toml::Value::Array(entries)) = doc.get_mut(table) else {
            continue;
        };
        for e in entries.iter_mut() {
            if let Some(f) = e.get_mut("file") {
                absolute(f);
            }
            if let Some(f) = e.get_mut("initrd") {
                absolute(f);
            }
            if let Some(f) = e.get_mut("system_map") {
                absolute(f);
            }
            if let Some(f) = e.get_mut("guest").and_then(|g| g.get_mut("file")) {
                absolute(f);
            }
        }
    }
}

/// Add `probes` to each VM of `doc` whose guest is a file (a Linux Image: the image tool
/// refuses anything else); an error if there is none.
fn add_probes(doc: &mut toml::Table, probes: &[String]) -> Result<(), String> {
    if probes.is_empty() {
        return Ok(());
    }
    let mut probed = 0;
    if let Some(toml::Value::Array(vms)) = doc.get_mut("vm") {
        for vm in vms.iter_mut().filter_map(toml::Value::as_table_mut) {
            if vm.get("guest").and_then(|g| g.get("file")).is_none() {
                continue;
            }
            let list = vm.entry("probes").or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(list) = list {
                for p in probes {
                    if !list.iter().any(|x| x.as_str() == Some(p)) {
                        list.push(p.clone().into());
                    }
                }
            }
            probed += 1;
        }
    }
    if probed == 0 {
        return Err("--probe: the system has no Linux VM (a `[[vm]]` whose guest is a `file`)".into());
    }
    Ok(())
}

/// `description`'s text with its includes made absolute (they are relative to `dir`,
/// its folder) and the trace server added, stopping after `seconds` (0: never), its
/// stream going to `output` (`file` or `discard`); `probes` are added to each VM whose
/// guest is a file (a Linux Image: the image tool refuses anything else).
pub fn with_trace_server(
    description: &str,
    dir: &Path,
    seconds: u64,
    output: &str,
    probes: &[String],
) -> Result<String, String> {
    let mut doc: toml::Table = toml::from_str(description).map_err(|e| e.to_string())?;
    absolute_paths(&mut doc, dir);
    let own = doc.get_mut("trace").and_then(toml::Value::as_table_mut);
    if let Some(trace) = own {
        // A system with its own trace server: it writes to the host and stops, and its
        // server's end ends the run.
        trace.insert("output".into(), output.into());
        trace.insert(
            "stop_after_ms".into(),
            toml::Value::Integer((seconds * 1000).cast_signed()),
        );
        let server = trace
            .get("server")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let servers = doc.get_mut("server").and_then(toml::Value::as_array_mut);
        let entry = servers.and_then(|s| {
            s.iter_mut()
                .filter_map(toml::Value::as_table_mut)
                .find(|e| e.get("name").and_then(toml::Value::as_str) == Some(server.as_str()))
        });
        let Some(entry) = entry else {
            return Err(format!("`[trace]` names server `{server}`, which is no `[[server]]`"));
        };
        entry.insert("halt_on_exit".into(), true.into());
    }
    add_probes(&mut doc, probes)?;
    let has_own = doc.contains_key("trace");
    let mut text = toml::to_string(&doc).map_err(|e| e.to_string())?;
    if !has_own {
        text.push_str(TRACE_SERVER);
        let _ = write!(
            text,
            "\n[trace]\nserver = \"trace\"\nstop_after_ms = {}\noutput = \"{output}\"\n",
            seconds * 1000
        );
    }
    Ok(text)
}

/// `cargo xtask trace [--system NAME] [--for SECONDS]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let o = options(args)?;
    let target = crate::qemu::resolve(TARGET)?;
    let (trace, out) = take(&target, &o.system, o.seconds, &o.probes)?;
    eprintln!(
        "trace: {} records, {} threads named; wrote trace.dat, trace.json and ctf/ in {}",
        trace.records.len(),
        trace.names.len(),
        out.display()
    );
    Ok(())
}

/// `cargo xtask trace-window FROM TO`: the last trace's part from FROM to TO seconds
/// (from its start) as `build/trace/window.dat`, for KernelShark (`scripts/trace-picture
/// --window`): it draws a core only where it finds that core's events among the
/// others', which a dense trace hides.
pub fn window_command(args: &[String]) -> Result<(), String> {
    let secs = |i: usize| {
        args.get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or("usage: cargo xtask trace-window FROM TO (seconds from the trace's start)")
    };
    let (from, to) = (secs(0)?, secs(1)?);
    if to <= from {
        return Err("trace-window: TO must be after FROM".into());
    }
    let out = root_dir().join("build").join("trace");
    let stream = out.join(STREAM);
    let bytes =
        std::fs::read(&stream).map_err(|e| format!("{}: {e} (take a trace with scripts/trace)", stream.display()))?;
    let trace = gaon_trace_export::Trace::read(&bytes).map_err(|e| format!("{}: {e}", stream.display()))?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "seconds checked finite and not negative"
    )]
    let ns = |s: f64| (s * 1e9) as u64;
    let dat = out.join("window.dat");
    std::fs::write(
        &dat,
        gaon_trace_export::tracedat::write_window(&trace, Some((ns(from), ns(to)))),
    )
    .map_err(|e| format!("{}: {e}", dat.display()))?;
    eprintln!("trace-window: wrote {} ({from} s to {to} s)", dat.display());
    Ok(())
}

/// Trace `system` of `target`'s board for `seconds` and write the files; the trace and
/// the folder they are in.
fn take(
    target: &Target,
    system: &str,
    seconds: u64,
    probes: &[String],
) -> Result<(gaon_trace_export::Trace, PathBuf), String> {
    let board = &target.board.board.name;
    let source = root_dir().join("images").join(board).join(format!("{system}.toml"));
    let text = std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let out = root_dir().join("build").join("trace");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let description = out.join(format!("{system}.toml"));
    let dir = source.parent().unwrap_or(Path::new("."));
    std::fs::write(&description, with_trace_server(&text, dir, seconds, "file", probes)?)
        .map_err(|e| format!("{}: {e}", description.display()))?;
    let image = crate::build::build_system(&description, &out.join(system))?;
    let stream = run(target, &image, &out, seconds)?;
    let trace = gaon_trace_export::Trace::read(&stream).map_err(|e| format!("{}: {e}", out.join(STREAM).display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let f = out.join(name);
        std::fs::write(&f, bytes).map_err(|e| format!("{}: {e}", f.display()))
    };
    let json = gaon_trace_export::json::write(&trace);
    if let Some(p) = gaon_trace_export::json::check(&json).first() {
        return Err(format!("the JSON trace fails its check: {p}"));
    }
    write("trace.json", json.as_bytes())?;
    write("trace.dat", &gaon_trace_export::tracedat::write(&trace))?;
    let ctf = out.join("ctf");
    let _ = std::fs::remove_dir_all(&ctf);
    gaon_trace_export::ctf::write(&trace, &ctf).map_err(|e| format!("{}: {e}", ctf.display()))?;
    Ok((trace, out))
}

/// The image of `images/<board>/<system>.toml`, a bench system, whose benchmark turns
/// on every trace class and empties the rings before each sample (its `bench-config`
/// says `trace=ff`): what tracing costs (`cargo xtask bench --trace`); built in
/// `build/trace-bench/`.
pub fn traced_bench_image(board: &str, system: &str) -> Result<PathBuf, String> {
    let source = root_dir().join("images").join(board).join(format!("{system}.toml"));
    let text = std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", source.display()))?;
    absolute_paths(&mut doc, source.parent().unwrap_or(Path::new(".")));
    let out = root_dir().join("build").join("trace-bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let config = out.join("bench-trace.cfg");
    let classes = gaon_abi::trace::Class::all().bits();
    std::fs::write(&config, format!("trace={classes:x}\n")).map_err(|e| format!("{}: {e}", config.display()))?;
    let modules = doc.entry("module").or_insert_with(|| toml::Value::Array(Vec::new()));
    let Some(modules) = modules.as_array_mut() else {
        return Err(format!("{}: `module` is not a list", source.display()));
    };
    if modules
        .iter()
        .any(|m| m.get("name").and_then(toml::Value::as_str) == Some("bench-config"))
    {
        return Err(format!("{}: it has a `bench-config` already", source.display()));
    }
    let mut m = toml::Table::new();
    m.insert("name".into(), "bench-config".into());
    m.insert("file".into(), config.display().to_string().into());
    modules.push(toml::Value::Table(m));
    let description = out.join(format!("{system}.toml"));
    std::fs::write(&description, toml::to_string(&doc).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", description.display()))?;
    crate::build::build_system(&description, &out.join(system))
}

/// The image of `images/virt/<system>.toml` (a Linux VM bench system) with `probes` in
/// its Linux VMs and, if `traced`, the trace server added, recording every class and
/// discarding what it drains (it never stops: the VM's end halts the system): what
/// tracing and probes cost Linux in a VM (`cargo xtask bench --trace`); built in
/// `build/trace-bench/<system>-<name>`.
pub fn traced_vm_image(system: &str, name: &str, traced: bool, probes: &[String]) -> Result<PathBuf, String> {
    let source = root_dir().join("images").join("virt").join(format!("{system}.toml"));
    let text = std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    let dir = source.parent().unwrap_or(Path::new("."));
    let out = root_dir().join("build").join("trace-bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let name = format!("{system}-{name}");
    let description = out.join(format!("{name}.toml"));
    let mut doc = if traced {
        with_trace_server(&text, dir, 0, "discard", probes)?
    } else {
        let mut doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        absolute_paths(&mut doc, dir);
        add_probes(&mut doc, probes)?;
        toml::to_string(&doc).map_err(|e| e.to_string())?
    };
    doc = doc.replace(&format!("name = \"virt-{system}\""), &format!("name = \"virt-{name}\""));
    std::fs::write(&description, doc).map_err(|e| format!("{}: {e}", description.display()))?;
    crate::build::build_system(&description, &out.join(&name))
}

/// Boot `image` in `dir` with user-level semihosting for about `seconds` of its time;
/// the stream the trace server wrote.
fn run(target: &Target, image: &Path, dir: &Path, seconds: u64) -> Result<Vec<u8>, String> {
    let stream = dir.join(STREAM);
    let _ = std::fs::remove_file(&stream);
    // On QEMU's real clock, where every core runs at once. Under -icount QEMU 7.2 runs
    // one core at a time, and a core that never waits starves the cores after it
    // (docs/realtime.md, "Two cores"): a trace would show only core 0.
    let mut cmd = serial_command(target, &absolute(image), false);
    cmd.args(["-semihosting-config", "enable=on,target=native,userspace=on"]);
    cmd.current_dir(dir);
    // The machine's time is the host's, but booting and writing take their time.
    let timeout = Duration::from_secs(60 + 5 * seconds);
    let o = capture(cmd, timeout, None)?;
    let log = dir.join("console.log");
    std::fs::write(&log, &o.output).map_err(|e| format!("{}: {e}", log.display()))?;
    // The root server reports the server's exit (its own messages may still be in the
    // kernel log when the system halts).
    if !o.output.contains("`trace` exited with status 0") {
        return Err(format!(
            "the trace server did not finish (QEMU ended with {:?}); the console is in {}",
            o.exit_code,
            log.display()
        ));
    }
    std::fs::read(&stream).map_err(|e| format!("{}: {e}", stream.display()))
}

/// The test (`cargo xtask test`, and `--trace` alone): trace the default system for 2 s
/// and check the three files with the tools people open them with. What the image did
/// is known: `kv-client` calls `kv` exactly [`KV_CALLS`] times, with its `kv` badge 1;
/// each tool must show those calls, and as many events as the stream has.
pub fn test(target: &Target) -> Vec<String> {
    match take(target, crate::build::DEFAULT_SYSTEM, 2, &[]) {
        Ok((trace, out)) => check(&trace, &out),
        Err(e) => vec![e],
    }
}

/// The integrated system ([`INTEGRATED`]: native servers, Linux with a `__switch_to`
/// probe, the RTOS with its trace hypercalls) traced for [`INTEGRATED_SECONDS`], and
/// checked: the probe was armed; Linux's task switches are there and each vCPU's
/// chain of them holds (the task one switch says runs is the one the next switch on
/// that vCPU says stopped: what the probe read from guest memory is right); Linux's
/// first tasks have their names (`swapper/N` is pid 0, `kthreadd` pid 2); the RTOS's
/// tasks are named; and trace-cmd and the JSON show the guests' tasks.
pub fn probe_test(target: &Target) -> Vec<String> {
    match take(target, INTEGRATED, INTEGRATED_SECONDS, &[]) {
        Ok((trace, out)) => check_guests(&trace, &out),
        Err(e) => vec![e],
    }
}

/// The integrated system of `images/virt/`.
pub const INTEGRATED: &str = "integrated";
/// Seconds it is traced in the test (Linux boots its first tasks in them).
const INTEGRATED_SECONDS: u64 = 8;

/// The checks of [`probe_test`].
fn check_guests(trace: &gaon_trace_export::Trace, out: &Path) -> Vec<String> {
    use gaon_abi::trace::Event;
    let mut p = Vec::new();
    let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
    // The VMM's lines and its guest's UART output share the `linux` prefix and may
    // break each other's lines: joined again.
    let console = console.replace("\n[linux] ", "");
    // Armed at boot, taken out by tracectl for a second, armed again.
    let armed = console.matches("vmm: probe __switch_to (+4) armed at").count();
    if armed != 2 || !console.contains("vmm: probe __switch_to removed") {
        p.push(format!(
            "the VMM armed the probe {armed} times (want 2: at boot, and after tracectl put it back) \
             or did not say it removed it; see {}",
            out.join("console.log").display()
        ));
    }
    if !console.contains("tracectl: 4 passed, 0 failed") {
        p.push("tracectl did not pass its 4 cases (the control interfaces)".into());
    }
    let g = gaon_trace_export::Guests::of(trace);
    let Some(linux) = g.names.iter().position(|n| n == "linux") else {
        return vec![format!("no Linux task switches in the trace (guests: {:?})", g.names)];
    };
    let lost = trace
        .records
        .iter()
        .any(|r| matches!(gaon_trace_export::kind(r), gaon_trace_export::Kind::Extra(_)));
    let mut linux_switches = 0;
    for &(vcpu, _) in g.vcpus.iter().filter(|v| v.1 == linux) {
        let chain: Vec<_> = trace
            .records
            .iter()
            .filter(|r| r.thread == vcpu && r.event == Event::GuestTaskSwitch as u16)
            .collect();
        linux_switches += chain.len();
        // While the probe was out, the switches were not seen: one break at most.
        let broken = chain.windows(2).filter(|w| w[1].a != w[0].b).count();
        if broken > armed.saturating_sub(1) && !lost {
            p.push(format!(
                "{}: {broken} of {} task switches do not start from the task the one before ran",
                trace.name(vcpu),
                chain.len()
            ));
        }
    }
    if linux_switches < 100 {
        p.push(format!("only {linux_switches} Linux task switches; want at least 100"));
    }
    let name = |guest: usize, task: u64| g.tasks.get(&(guest, task)).cloned().unwrap_or_default();
    if !name(linux, 0).starts_with("swapper/") || name(linux, 2) != "kthreadd" {
        p.push(format!(
            "Linux's pid 0 is `{}` and pid 2 `{}`; want swapper/N and kthreadd",
            name(linux, 0),
            name(linux, 2)
        ));
    }
    let rtos_named = g
        .names
        .iter()
        .position(|n| n == "rtos")
        .is_some_and(|r| g.tasks.iter().any(|(&(i, _), n)| i == r && n == "measure"));
    if !rtos_named {
        p.push("the RTOS's task `measure` is not in the trace".into());
    }
    // Linux writes its console to the emulated UART: device accesses, by address.
    let uart = trace
        .records
        .iter()
        .filter(|r| r.event == Event::VmMmio as u16)
        .filter(|r| gaon_vmm::layout::emulated_at(gaon_abi::trace::split_mmio_access(r.a).0) == Some("the UART"))
        .count();
    if uart == 0 {
        p.push("no vm_mmio record of the UART (Linux writes its console there)".into());
    }
    p.extend(check_guest_files(trace, out));
    p
}

/// [`check_guests`]'s checks of the files: trace-cmd's switches (kernel and guest) and
/// kthreadd's, and the JSON's guest process and UART accesses.
fn check_guest_files(trace: &gaon_trace_export::Trace, out: &Path) -> Vec<String> {
    use gaon_abi::trace::Event;
    let mut p = Vec::new();
    let switches = trace
        .records
        .iter()
        .filter(|r| r.event == Event::Switch as u16 || r.event == Event::GuestTaskSwitch as u16)
        .count();
    match tool("trace-cmd", &["report", "-i"], &out.join("trace.dat")) {
        Ok(text) => {
            let n = text.lines().filter(|l| l.contains(" sched_switch: ")).count();
            if n != switches {
                p.push(format!(
                    "trace-cmd report shows {n} sched_switch events; the stream has {switches} (kernel and guest)"
                ));
            }
            if !text
                .lines()
                .any(|l| l.contains(" sched_switch: ") && l.contains("kthreadd:"))
            {
                p.push("trace-cmd report has no switch of Linux's kthreadd".into());
            }
        }
        Err(e) => p.push(e),
    }
    match std::fs::read_to_string(out.join("trace.json")) {
        Ok(text) => {
            p.extend(gaon_trace_export::json::check(&text));
            if !text.contains("\"guest linux\"") || !text.contains("\"kthreadd\"") {
                p.push("trace.json has no `guest linux` process with a kthreadd track".into());
            }
            if !text.contains("\"device\":\"the UART\"") {
                p.push("trace.json names no access to the UART".into());
            }
        }
        Err(e) => p.push(format!("trace.json: {e}")),
    }
    p
}

/// `kv-client`'s calls to `kv`: three puts, two gets and a length.
pub const KV_CALLS: usize = 6;
/// `kv-client`'s badge on its `kv` channel (its first client).
const KV_BADGE: u64 = 1;

/// The checks of [`test`] on a taken trace whose files are in `out`.
fn check(trace: &gaon_trace_export::Trace, out: &Path) -> Vec<String> {
    use gaon_abi::trace::Event;
    let mut p = Vec::new();
    let tid = |name: &str| trace.names.iter().find(|(_, n)| n.as_str() == name).map(|(t, _)| *t);
    let (Some(client), Some(kv)) = (tid("kv-client"), tid("kv")) else {
        return vec![format!(
            "the trace does not name `kv-client` and `kv`: {:?}",
            trace.names
        )];
    };
    let calls = trace
        .records
        .iter()
        .filter(|r| r.event == Event::IpcCall as u16 && r.thread == client && r.a == KV_BADGE)
        .count();
    let received = trace
        .records
        .iter()
        .filter(|r| r.event == Event::IpcRecv as u16 && r.thread == kv && r.b == u64::from(client))
        .count();
    if (calls, received) != (KV_CALLS, KV_CALLS) {
        p.push(format!(
            "the stream has {calls} calls from kv-client with badge {KV_BADGE} and {received} receives of them by kv; want {KV_CALLS} each"
        ));
    }
    let switches = trace.records.iter().filter(|r| r.event == Event::Switch as u16).count();
    // trace-cmd: the switches between named threads, and kv-client's calls.
    match tool("trace-cmd", &["report", "-i"], &out.join("trace.dat")) {
        Ok(text) => {
            let n = text.lines().filter(|l| l.contains(" sched_switch: ")).count();
            if n != switches {
                p.push(format!(
                    "trace-cmd report shows {n} sched_switch events; the stream has {switches}"
                ));
            }
            let named = text
                .lines()
                .any(|l| l.contains(&format!("kv-client:{client} ")) && l.contains(" ==> "));
            if !named {
                p.push("trace-cmd report has no switch of `kv-client` by name".into());
            }
            let n = text
                .lines()
                .filter(|l| {
                    l.contains(" ipc_call: ")
                        && l.trim_start().starts_with(&format!("kv-client-{client} "))
                        && l.contains(&format!("badge={KV_BADGE:#x} "))
                })
                .count();
            if n != KV_CALLS {
                p.push(format!(
                    "trace-cmd report shows {n} calls from kv-client to kv; want {KV_CALLS}"
                ));
            }
        }
        Err(e) => p.push(e),
    }
    // babeltrace2: every record, and the same calls.
    match tool("babeltrace2", &[], &out.join("ctf")) {
        Ok(text) => {
            let n = text.lines().filter(|l| l.contains(" gaon:")).count();
            if n != trace.records.len() {
                p.push(format!(
                    "babeltrace2 prints {n} events; the stream has {}",
                    trace.records.len()
                ));
            }
            let n = text
                .lines()
                .filter(|l| {
                    l.contains(" gaon:ipc_call: ")
                        && l.contains("thread_name = \"kv-client\"")
                        && l.contains(&format!("a = {KV_BADGE:#x},"))
                })
                .count();
            if n != KV_CALLS {
                p.push(format!(
                    "babeltrace2 shows {n} calls from kv-client to kv; want {KV_CALLS}"
                ));
            }
        }
        Err(e) => p.push(e),
    }
    // The JSON: its check, and the calls on kv-client's track.
    match std::fs::read_to_string(out.join("trace.json")) {
        Ok(text) => {
            p.extend(gaon_trace_export::json::check(&text));
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let n = v["traceEvents"].as_array().map_or(0, |a| {
                a.iter()
                    .filter(|e| e["name"] == "ipc_call" && e["tid"] == client && e["args"]["a"] == KV_BADGE)
                    .count()
            });
            if n != KV_CALLS {
                p.push(format!(
                    "trace.json has {n} calls on kv-client's track; want {KV_CALLS}"
                ));
            }
        }
        Err(e) => p.push(format!("trace.json: {e}")),
    }
    p
}

/// Run `program args file`; its output, or why not.
fn tool(program: &str, args: &[&str], file: &Path) -> Result<String, String> {
    let o = std::process::Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .map_err(|e| format!("{program}: {e} (scripts/setup --trace installs it)"))?;
    if !o.status.success() {
        return Err(format!(
            "{program} failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root_dir().join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_server_is_added_and_includes_made_absolute() {
        let text = "include = [\"../common/demo.toml\"]\n[system]\nname = \"x\"\nboard = \"virt\"\n";
        let out = with_trace_server(text, Path::new("/src/images/virt"), 3, "file", &[]).unwrap();
        assert!(out.contains("/src/images/virt/../common/demo.toml"), "{out}");
        assert!(out.contains("package = \"gaon-trace-server\""));
        assert!(out.contains("stop_after_ms = 3000"));
        let vm = "[[vm]]\nname = \"l\"\nguest = { file = \"../../build/linux/Image\" }\ninitrd = \"i.cpio\"\n";
        let out = with_trace_server(vm, Path::new("/src/images/virt"), 3, "discard", &[]).unwrap();
        assert!(out.contains("/src/images/virt/../../build/linux/Image"), "{out}");
        assert!(out.contains("/src/images/virt/i.cpio"), "{out}");
        assert!(out.contains("output = \"discard\""));
        assert!(with_trace_server("[trace]\nserver = \"t\"\n", Path::new("."), 1, "file", &[]).is_err());
        // A system with its own: it writes, stops and halts.
        let own = "[[server]]\nname = \"t\"\n[trace]\nserver = \"t\"\noutput = \"discard\"\n";
        let out = with_trace_server(own, Path::new("."), 2, "file", &[]).unwrap();
        assert!(
            out.contains("output = \"file\"") && out.contains("stop_after_ms = 2000"),
            "{out}"
        );
        assert!(
            out.contains("halt_on_exit = true") && !out.contains("gaon-trace-server"),
            "{out}"
        );
        // Probes go to the VMs whose guest is a file.
        let two = format!("{vm}[[vm]]\nname = \"r\"\nguest = {{ package = \"gaon-rtos\" }}\n");
        let probe = ["__switch_to".to_string()];
        let out = with_trace_server(&two, Path::new("/x"), 3, "file", &probe).unwrap();
        assert_eq!(out.matches("probes = [\"__switch_to\"]").count(), 1, "{out}");
        let err = with_trace_server(
            "[[vm]]\nname = \"r\"\nguest = { package = \"p\" }\n",
            Path::new("."),
            1,
            "file",
            &probe,
        );
        assert!(err.unwrap_err().contains("no Linux VM"));
    }

    #[test]
    fn options_are_checked() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        let o = options(&s(&["--system", "ktest", "--for", "5"])).unwrap();
        assert_eq!((o.system.as_str(), o.seconds), ("ktest", 5));
        assert!(options(&s(&["--for", "0"])).is_err());
        assert!(options(&s(&["--bogus"])).is_err());
        assert_eq!(
            options(&s(&["--probe", "__switch_to"])).unwrap().probes,
            ["__switch_to"]
        );
        assert!(options(&s(&["--probe"])).is_err());
    }
}
