//! The Linux guest's tests: a session typed into its shell through the console (the VM
//! has the console's focus), and the checks of what it printed. `images/virt/linux.toml`
//! boots Debian's kernel in a VM beside native servers; [`linux_run`] boots it on one
//! QEMU configuration and checks, through the guest's console:
//!
//! - `uname -r` names the Debian kernel the guest files were made from;
//! - `/proc/cpuinfo` has as many processors as the VM has vCPUs;
//! - the virtual timer's interrupts (`arch_timer` in `/proc/interrupts`, on the GIC the
//!   configuration has) increase between two reads a second apart;
//! - the kernel's log has PSCI and the GIC probed, and no error or warning
//!   (`dmesg -r`, levels 0 to 4) but the host's timing ([`HOST_TIMING`]);
//! - `reboot -f` boots the guest again (the VMM resets the VM), and `poweroff` ends it
//!   with status 0, which halts the system (`halt_on_exit`), QEMU exiting with 0.

use std::path::Path;
use std::time::Duration;

use crate::qemu::{Input, Target, capture_script, run_console, serial_command};

/// The shell's prompt (busybox ash as root in /).
pub const PROMPT: &str = "/ # ";
/// What the guest's rcS prints once it is up (scripts/xtask/src/linux.rs).
pub const UP: &str = "gaon-guest: up (";

/// What `scripts/run` types into the Linux system's guest when its stdin is no terminal:
/// a few commands that show what runs, then `poweroff`, which halts the system.
pub const DEMO_SESSION: &[(&str, &[u8])] = &[
    (FOCUSED_PROMPT, b"uname -a\r"),
    (FOCUSED_PROMPT, b"cat /proc/cpuinfo\r"),
    (FOCUSED_PROMPT, b"cat /proc/interrupts\r"),
    (FOCUSED_PROMPT, b"poweroff\r"),
];

/// What a boot of the Linux system may take, at most (a boot takes about 10 s).
const LINUX_TIMEOUT: Duration = Duration::from_mins(4);

/// The commands of the first shell session: each prints `NAME=value` lines (the
/// `$(...)` keep the typed line, which the guest echoes, from passing for the answer),
/// the kernel's errors and warnings (log levels 0 to 4 in busybox's raw `dmesg`)
/// between `<<log` and `log>>`, and `E=42` last.
const CHECKS: &str = "echo \"R=$(uname -r)\"; echo \"C=$(grep -c ^processor /proc/cpuinfo)\"; \
echo \"T1=$(grep arch_timer /proc/interrupts)\"; sleep 1; echo \"T2=$(grep arch_timer /proc/interrupts)\"; \
echo \"P=$(dmesg | grep -c psci:)\"; echo \"G=$(dmesg | grep -c -i gic)\"; \
echo \"<<$(echo log)\"; dmesg -r | grep \"^<[0-4]>\"; echo \"$(echo log)>>\"; echo \"E=$((6*7))\"\r";

/// The session typed into the guest: the checks at the first prompt, `reboot -f`, then
/// at the second boot's prompt proof that it is a shell, and `poweroff`.
fn session() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (PROMPT, CHECKS.as_bytes()),
        ("E=42", b"reboot -f\r"),
        (UP, b""),
        (PROMPT, b"echo \"B=$((40+2))\"; poweroff\r"),
    ]
}

/// Boot `image` (a system with one Linux VM of `vcpus` vCPUs that has the console's
/// focus and halts the system) on `target`, type the session and check its output.
/// `release` is the kernel the guest files have. Not on QEMU's deterministic clock: it
/// runs the CPUs in turn, and Linux's boot takes minutes there instead of seconds.
pub fn linux_run(target: &Target, image: &Path, vcpus: usize, release: &str) -> Vec<String> {
    let cmd = serial_command(target, image, false);
    let script = session();
    match capture_script(cmd, LINUX_TIMEOUT, &script) {
        Ok(o) => {
            let gic = if target.config.machine.contains("gic-version=2") {
                "GIC-0"
            } else {
                "GICv3"
            };
            let p = check_linux(&o.output, o.exit_code, vcpus, release, gic);
            if !p.is_empty() {
                eprintln!(
                    "----- output of the Linux VM on {} -----\n{}-----",
                    target.config.name, o.output
                );
            }
            p
        }
        Err(e) => vec![e],
    }
}

/// The two-VM system's session (`images/virt/linux-pair.toml`): once `linux2` has read
/// `linux`'s RAM address at boot, an Enter gives a fresh prompt of `linux` (which has
/// the focus), where it reads `linux2`'s, then powers off.
fn pair_session() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (PEEKED, b"\r"),
        (FOCUSED_PROMPT, b"devmem 0x80000000; echo \"D=$?\"; poweroff\r"),
    ]
}

/// What `linux2`'s rcS prints after its read of `linux`'s RAM address (a bus error
/// kills `devmem`: 128 + SIGBUS).
const PEEKED: &str = "[linux2] gaon-guest: peek 0x40000000: status ";
/// The prompt of `linux`, which has the focus (so its partial lines show at once).
const FOCUSED_PROMPT: &str = "[linux] / # ";
/// A shell's status for a command killed by SIGBUS.
const BUS_ERROR_STATUS: &str = "135";

/// Boot the two-VM system `image` on `target`, type [`pair_session`] and check that
/// each VM's read of the other's RAM address faulted inside the reader.
pub fn pair_run(target: &Target, image: &Path) -> Vec<String> {
    let cmd = serial_command(target, image, false);
    match capture_script(cmd, LINUX_TIMEOUT, &pair_session()) {
        Ok(o) => {
            let p = check_pair(&o.output, o.exit_code);
            if !p.is_empty() {
                eprintln!(
                    "----- output of two Linux VMs on {} -----\n{}-----",
                    target.config.name, o.output
                );
            }
            p
        }
        Err(e) => vec![e],
    }
}

/// The problems of a two-VM run's `output`.
pub fn check_pair(output: &str, exit_code: Option<i32>) -> Vec<String> {
    let mut p = Vec::new();
    for vm in ["linux", "linux2"] {
        if !output.contains(&format!("[{vm}] {UP}")) {
            p.push(format!("`{vm}` did not come up"));
        }
    }
    if !output.contains(&format!("{PEEKED}{BUS_ERROR_STATUS}")) {
        p.push("`linux2`'s read of `linux`'s RAM address did not fault in `linux2`".into());
    }
    if !output.contains("[linux] D=135") {
        p.push("`linux`'s read of `linux2`'s RAM address did not fault in `linux`".into());
    }
    if !output.contains("[linux] vmm: the guest is done (status 0)") {
        p.push("`poweroff` did not end `linux` with status 0".into());
    }
    if exit_code != Some(0) {
        p.push(format!(
            "QEMU exit status {exit_code:?}, expected 0 (`linux` halts the system)"
        ));
    }
    p
}

/// Boot the Linux system `image` the way `scripts/run` does when its stdin is no
/// terminal (QEMU's console through `cargo xtask run`, [`DEMO_SESSION`] typed), and
/// check that each command answered and the system halted with status 0.
pub fn demo_run(target: &Target, image: &Path) -> Vec<String> {
    let mut raw = Vec::new();
    let run = run_console(
        target,
        image,
        LINUX_TIMEOUT,
        Input::Script(DEMO_SESSION),
        &mut |_, b| {
            raw.extend_from_slice(b);
        },
    );
    let code = match run {
        Ok(c) => c,
        Err(e) => return vec![e],
    };
    let output = String::from_utf8_lossy(&raw).replace('\r', "");
    let p = check_demo(&output, code);
    if !p.is_empty() {
        eprintln!(
            "----- output of scripts/run on {} -----\n{output}-----",
            target.config.name
        );
    }
    p
}

/// The problems of `scripts/run`'s unattended session's `output`.
pub fn check_demo(output: &str, exit_code: Option<i32>) -> Vec<String> {
    let lines: Vec<&str> = output.lines().map(strip_prefix).collect();
    let mut p = Vec::new();
    if !lines
        .iter()
        .any(|l| l.starts_with("Linux gaon-guest 6.1.0-") && l.ends_with("GNU/Linux"))
    {
        p.push("no `uname -a` answer".into());
    }
    if !lines.iter().any(|l| l.starts_with("processor\t: 0")) {
        p.push("no /proc/cpuinfo".into());
    }
    if !lines.iter().any(|l| l.ends_with("arch_timer")) {
        p.push("no /proc/interrupts".into());
    }
    if !output.contains("[linux] vmm: the guest is done (status 0)") || exit_code != Some(0) {
        p.push(format!(
            "the guest did not power the system off (QEMU's status {exit_code:?})"
        ));
    }
    p
}

/// The value of the last `NAME=value` line of the guest's output (its console lines
/// have the VM's prefix `[name] `).
fn answer<'a>(output: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=");
    output.lines().rev().find_map(|l| {
        let l = strip_prefix(l);
        l.strip_prefix(key.as_str())
    })
}

/// A console line without the console's `[name] ` prefix.
fn strip_prefix(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    }
}

/// The sum of the per-CPU counts of an `/proc/interrupts` line (` 11:  12  34  GICv3 27
/// Level  arch_timer`), and the line's chip.
fn interrupt_count(line: &str) -> (u64, String) {
    let mut words = line.split_whitespace().skip(1);
    let mut sum = 0;
    for w in words.by_ref() {
        match w.parse::<u64>() {
            Ok(n) => sum += n,
            Err(_) => return (sum, w.to_string()),
        }
    }
    (sum, String::new())
}

/// Warnings that say only that the host was slow: these runs are on QEMU's real clock,
/// and a vCPU thread the host does not run for a while looks to the guest like a long
/// interrupt handler (`hrtimer: interrupt took 11752368 ns`, seen in a CI run while the
/// machine's two cores were busy with a build).
const HOST_TIMING: &[&str] = &["hrtimer: interrupt took "];

/// The problems of a Linux run's `output` (see the module's documentation).
pub fn check_linux(output: &str, exit_code: Option<i32>, vcpus: usize, release: &str, gic: &str) -> Vec<String> {
    let mut p = Vec::new();
    match answer(output, "R") {
        Some(r) if r.trim() == release => {}
        r => p.push(format!("`uname -r` said {r:?}, not the Debian kernel {release}")),
    }
    match answer(output, "C").map(str::trim) {
        Some(c) if c == vcpus.to_string() => {}
        c => p.push(format!("/proc/cpuinfo has {c:?} processors, not {vcpus}")),
    }
    match (answer(output, "T1"), answer(output, "T2")) {
        (Some(t1), Some(t2)) => {
            let ((n1, chip), (n2, _)) = (interrupt_count(t1), interrupt_count(t2));
            if n2 <= n1 {
                p.push(format!(
                    "arch_timer interrupts did not increase in a second ({n1}, then {n2})"
                ));
            }
            if chip != gic {
                p.push(format!("the timer's interrupt is on chip {chip:?}, not {gic:?}"));
            }
        }
        _ => p.push("no arch_timer line in /proc/interrupts".into()),
    }
    if answer(output, "P")
        .and_then(|n| n.trim().parse::<u32>().ok())
        .is_none_or(|n| n == 0)
    {
        p.push("the kernel log has no PSCI probe (`psci:`)".into());
    }
    if answer(output, "G")
        .and_then(|n| n.trim().parse::<u32>().ok())
        .is_none_or(|n| n == 0)
    {
        p.push("the kernel log has no GIC probe".into());
    }
    match log_between(output, "<<log", "log>>") {
        Some(lines) => {
            for l in lines.into_iter().filter(|l| !HOST_TIMING.iter().any(|h| l.contains(h))) {
                p.push(format!("kernel error or warning: {l}"));
            }
        }
        None => p.push("no kernel log of errors and warnings (`dmesg -r`)".into()),
    }
    if output.matches(UP).count() != 2 || answer(output, "B") != Some("42") {
        p.push("`reboot -f` did not bring the guest back to its shell".into());
    }
    // Both boots, the second on vCPUs reset by the VMM, bring every vCPU up.
    let up = format!("{UP}{release}, {vcpus} CPUs)");
    if output.matches(&up).count() != 2 {
        p.push(format!("not both boots say `{up}`"));
    }
    if !output.contains("vmm: reset: the guest is loaded again") {
        p.push("the VMM did not reset the VM".into());
    }
    if !output.contains("vmm: the guest is done (status 0)") {
        p.push("`poweroff` did not end the VM with status 0".into());
    }
    if exit_code != Some(0) {
        p.push(format!(
            "QEMU exit status {exit_code:?}, expected 0 (the VM halts the system)"
        ));
    }
    p
}

/// The guest's lines between a line `start` and a line `end` (the last such block).
fn log_between<'a>(output: &'a str, start: &str, end: &str) -> Option<Vec<&'a str>> {
    let lines: Vec<&str> = output.lines().map(strip_prefix).collect();
    let s = lines.iter().rposition(|l| l.trim_end() == start)?;
    let e = lines[s..].iter().position(|l| l.trim_end() == end)?;
    Some(lines[s + 1..s + e].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASE: &str = "6.1.0-57-arm64";

    fn good() -> String {
        let mut o = String::new();
        o += "[linux] gaon-guest: up (6.1.0-57-arm64, 2 CPUs)\n[linux] / # ";
        o += CHECKS.trim_end_matches('\r');
        o += "\n";
        o += "[linux] R=6.1.0-57-arm64\n[linux] C=2\n";
        o += "[linux] T1= 11:        120         80     GICv3  27 Level     arch_timer\n";
        o += "[linux] T2= 11:        220         81     GICv3  27 Level     arch_timer\n";
        o += "[linux] P=5\n[linux] G=4\n[linux] <<log\n";
        o += "[linux] log>>\n[linux] E=42\n[linux] / # reboot -f\n";
        o += "[linux] vmm: reset: the guest is loaded again\n";
        o += "[linux] gaon-guest: up (6.1.0-57-arm64, 2 CPUs)\n[linux] / # echo \"B=$((40+2))\"; poweroff\n";
        o += "[linux] B=42\n[linux] vmm: the guest is done (status 0)\n";
        o
    }

    #[test]
    fn a_good_session_passes() {
        assert_eq!(check_linux(&good(), Some(0), 2, RELEASE, "GICv3"), Vec::<String>::new());
    }

    #[test]
    fn each_check_fails_on_its_own() {
        let bad = |from: &str, to: &str| {
            let o = good().replacen(from, to, 1);
            assert_ne!(o, good(), "{from} is in the good output");
            check_linux(&o, Some(0), 2, RELEASE, "GICv3")
        };
        assert_eq!(bad("R=6.1.0-57-arm64", "R=6.1.0-56-arm64").len(), 1);
        assert_eq!(bad("C=2", "C=1").len(), 1);
        assert_eq!(
            bad("220         81", "120         80").len(),
            1,
            "the timer stood still"
        );
        assert_eq!(bad("P=5", "P=0").len(), 1);
        assert_eq!(bad("G=4", "G=0").len(), 1);
        assert_eq!(bad("<<log\n", "<<log\n[linux] <4>[ 1.0] pl011: bad clock\n").len(), 1);
        assert_eq!(
            bad(
                "<<log\n",
                "<<log\n[linux] <4>[    2.253180] hrtimer: interrupt took 11752368 ns\n"
            )
            .len(),
            0,
            "the host's timing is not the guest's problem"
        );
        assert_eq!(bad("log>>", "").len(), 1, "no end of the log");
        assert_eq!(bad("B=42", "B=").len(), 1, "no second shell");
        assert_eq!(bad("vmm: reset", "vmm: ").len(), 1);
        assert_eq!(bad("(status 0)", "(status 1)").len(), 1);
        let second = good().rfind("2 CPUs)").unwrap();
        let mut o = good();
        o.replace_range(second..=second, "1");
        assert_eq!(
            check_linux(&o, Some(0), 2, RELEASE, "GICv3").len(),
            1,
            "a vCPU lost at the reboot"
        );
        assert_eq!(
            check_linux(&good(), Some(0), 2, RELEASE, "GIC-0").len(),
            1,
            "another GIC"
        );
        assert_eq!(check_linux(&good(), None, 2, RELEASE, "GICv3").len(), 1, "a timeout");
    }

    #[test]
    fn two_vms_pass_only_if_each_read_faulted_in_the_reader() {
        let good = "[linux] gaon-guest: up (6.1.0-57-arm64, 1 CPUs)\n[linux2] gaon-guest: up (6.1.0-57-arm64, 1 CPUs)\n\
            [linux2] Bus error\n[linux2] gaon-guest: peek 0x40000000: status 135\n\
            [linux] / # devmem 0x80000000; echo \"D=$?\"; poweroff\n[linux] Bus error\n[linux] D=135\n\
            [linux] vmm: the guest is done (status 0)\n";
        assert_eq!(check_pair(good, Some(0)), Vec::<String>::new());
        for (from, to) in [
            ("status 135", "status 0"),
            ("D=135", "D=0"),
            ("[linux2] gaon-guest: up", "[linux2] "),
            ("(status 0)", "(status 1)"),
        ] {
            assert_eq!(check_pair(&good.replacen(from, to, 1), Some(0)).len(), 1, "{from}");
        }
        assert_eq!(check_pair(good, None).len(), 1);
    }

    #[test]
    fn the_unattended_session_shows_each_command() {
        let good = "[linux] / # uname -a\n[linux] Linux gaon-guest 6.1.0-57-arm64 #1 SMP Debian 6.1.192-3 aarch64 GNU/Linux\n\
            [linux] / # cat /proc/cpuinfo\n[linux] processor\t: 0\n[linux] / # cat /proc/interrupts\n\
            [linux]  11:  810  590  GICv3  27 Level     arch_timer\n[linux] / # poweroff\n\
            [linux] vmm: the guest is done (status 0)\n";
        assert_eq!(check_demo(good, Some(0)), Vec::<String>::new());
        for (from, to) in [
            ("GNU/Linux", ""),
            ("processor", ""),
            ("arch_timer", ""),
            ("(status 0)", ""),
        ] {
            assert_eq!(check_demo(&good.replacen(from, to, 1), Some(0)).len(), 1, "{from}");
        }
        assert_eq!(check_demo(good, Some(1)).len(), 1);
    }

    #[test]
    fn the_typed_line_does_not_pass_for_an_answer() {
        // The guest echoes the commands: without the answers nothing passes.
        let echo = format!("[linux] / # {}\n", CHECKS.trim_end_matches('\r'));
        assert!(check_linux(&echo, Some(0), 2, RELEASE, "GICv3").len() >= 6);
        assert_eq!(answer(&echo, "R"), None);
    }
}
