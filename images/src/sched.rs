//! `[sched]`: the scheduling policy server (soft real time, issue 17), and the `sched`
//! tables of the `[[vm]]`s it manages.
//!
//! The server is a `[[server]]` of the description, on core 0 (the user timer is CPU
//! 0's: its handler works only from there). Besides what its entry gives it, it
//! is given the SchedControl capability of every core of the board
//! (`sched_control.<core>`: it places and migrates vCPUs on any core), the board's user
//! timer line (IRQ grant `timer`, for its tick), its configuration
//! (`gaon_abi::system::SchedConfig`, module grant `sched-config`) and the serving end of
//! a `Sched` channel named `sched` whose clients are the managed VMs' VMMs, in
//! description order (client k has badge k + 1, the badge its configuration names the
//! VM by). The channel is made here: a description that lists a `Sched` channel itself
//! is refused.
//!
//! The LL-boost reservations (SBT/USBT per vCPU) are admitted with the policy crate's
//! own check ([`gaon_sched::admit`]), the one the server runs at run time: at most
//! [`gaon_sched::LL_BOUND_PPM`] of each core.

use std::path::Path;

use gaon_abi::system::{
    MAX_SCHED_VMS, SCHED_BALANCE, SCHED_CONFIG_MAGIC, SCHED_CONFIG_VERSION, SCHED_EXACT_DEBIT, SCHED_FIXED,
    SCHED_LL_BOOST, SchedConfig, SchedVm,
};
use gaon_platform::{Board, DescError};
use gaon_sched::{AdmitError, Reservation};
use serde::Deserialize;
use zerocopy::{FromZeros, IntoBytes};

use crate::servers::{RawChannel, RawServer, name_array};
use crate::vms::RawVm;

/// The IDL interface of the policy server's channel (`idl/sched.idl`).
pub const SCHED_INTERFACE: &str = "Sched";
/// The name both ends look the channel up by.
pub const SCHED_CHANNEL: &str = "sched";
/// The module grant of the server's configuration.
pub const CONFIG_GRANT: &str = "sched-config";
/// The IRQ grant of the board's user timer.
pub const TIMER_GRANT: &str = "timer";
/// The longest credit borrowing, in µs.
const MAX_BORROW_US: u64 = 10_000;
/// Xen's default weight.
const DEFAULT_WEIGHT: u64 = 256;
/// The priorities the server gives vCPUs: LL-boost, BOOST, UNDER and OVER, from
/// `top_priority` down.
const CLASSES: u32 = 4;

/// `[sched]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSched {
    server: String,
    #[serde(default = "tick")]
    debit: String,
    #[serde(default)]
    borrow_us: u64,
    #[serde(default = "yes")]
    ll_boost: bool,
    #[serde(default = "credit")]
    policy: String,
    #[serde(default)]
    balance: bool,
    #[serde(default)]
    cores: u32,
}

fn credit() -> String {
    "credit".into()
}

/// The `sched` table of a `[[vm]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVmSched {
    #[serde(default = "default_weight")]
    weight: u64,
    #[serde(default)]
    cap: u64,
    sbt_us: Option<u64>,
    usbt_us: Option<u64>,
}

fn tick() -> String {
    "tick".into()
}

const fn yes() -> bool {
    true
}

const fn default_weight() -> u64 {
    DEFAULT_WEIGHT
}

/// A checked `[sched]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedDesc {
    /// Index of the server that runs the policy (one of the `[[server]]`s).
    pub server: usize,
    /// The VMs it manages (indices into `System::vms`), in description order: VM
    /// `vms[k]` is client k of its channel, badge k + 1.
    pub vms: Vec<usize>,
    /// Index of its `Sched` channel in `Servers::channels`.
    pub channel: usize,
    /// The packed `SchedConfig` (module grant `sched-config`).
    pub config: Vec<u8>,
    /// The board's user timer line (IRQ grant `timer`).
    pub timer: u64,
}

impl SchedDesc {
    /// The boot module of the configuration: `<server>-config`.
    pub fn config_module(&self, server_name: &str) -> String {
        format!("{server_name}-config")
    }
}

/// The checks that need only the entries: every `sched` table has a `[sched]` to serve
/// it, and one server manages at most [`MAX_SCHED_VMS`] VMs. Run before the boot
/// module count, which nine VMs would exceed with a less useful message.
pub(crate) fn count(file: &Path, sched: Option<&RawSched>, vms: &[RawVm]) -> Result<(), DescError> {
    let mut managed = vms.iter().enumerate().filter(|(_, v)| v.sched.is_some());
    if sched.is_none()
        && let Some((i, v)) = managed.next()
    {
        return Err(DescError::new(
            file,
            format!("vm[{i}].sched"),
            format!(
                "`{}` has a `sched` table but the description has no `[sched]`: no scheduling policy server would manage it",
                v.name()
            ),
        ));
    }
    if let Some((i, _)) = managed.nth(MAX_SCHED_VMS) {
        return Err(DescError::new(
            file,
            format!("vm[{i}].sched"),
            format!(
                "{} VMs have a `sched` table; one scheduling policy server manages at most {MAX_SCHED_VMS}",
                vms.iter().filter(|v| v.sched.is_some()).count()
            ),
        ));
    }
    Ok(())
}

/// The `[sched]` settings as `SchedConfig::flags`, checked (debit, policy, borrowing,
/// cores).
fn flags(file: &Path, board: &Board, sched: &RawSched) -> Result<u32, DescError> {
    let err = |field: String, problem: String| DescError::new(file, field, problem);
    let debit = match sched.debit.as_str() {
        "tick" => 0,
        "exact" => SCHED_EXACT_DEBIT,
        other => {
            return Err(err(
                "sched.debit".into(),
                format!(
                    "is `{other}` but must be `tick` (a whole tick from the vCPU found running, Xen 4.0's debit) or `exact` (the time consumed)"
                ),
            ));
        }
    };
    let fixed = match sched.policy.as_str() {
        "credit" => false,
        "fixed" => true,
        other => {
            return Err(err(
                "sched.policy".into(),
                format!(
                    "is `{other}` but must be `credit` (the credit scheduler with LL-boost) or `fixed` (no policy: the server only measures, every vCPU keeps its VMM's priority less one)"
                ),
            ));
        }
    };
    if sched.borrow_us > MAX_BORROW_US {
        return Err(err(
            "sched.borrow_us".into(),
            format!("is {} but must be 0 (off) to {MAX_BORROW_US} µs", sched.borrow_us),
        ));
    }
    if sched.cores > board.board.cpus {
        return Err(err(
            "sched.cores".into(),
            format!(
                "is {} but board `{}` has {} cores (0: all of them)",
                sched.cores, board.board.name, board.board.cpus
            ),
        ));
    }
    Ok(debit
        | if fixed {
            SCHED_FIXED
        } else if sched.ll_boost {
            SCHED_LL_BOOST
        } else {
            0
        }
        | if sched.balance { SCHED_BALANCE } else { 0 })
}

/// Check `[sched]` against the board, the VMs (each already checked on its own), the
/// `[[server]]`s (`servers`, not the VMMs) and the listed channels. Returns the checked
/// table with `channel` set to `channels.len()`: the caller appends [`channel`]'s.
pub(crate) fn check(
    file: &Path,
    board: &Board,
    sched: &RawSched,
    vms: &[RawVm],
    servers: &[RawServer],
    channels: &[RawChannel],
) -> Result<SchedDesc, DescError> {
    let err = |field: String, problem: String| DescError::new(file, field, problem);
    let Some(timer) = board.timer.user_irq else {
        return Err(err(
            "sched".into(),
            format!(
                "board `{}` has no user timer (`[timer] user_irq` in its board.toml): the scheduling policy server needs it for its tick",
                board.board.name
            ),
        ));
    };
    let flags = flags(file, board, sched)?;
    let server = server_index(file, sched, vms, servers)?;
    if servers[server].core() != 0 {
        return Err(err(
            format!("server[{server}].core"),
            format!(
                "is {} but the scheduling policy server runs on core 0: the user timer it is given is CPU 0's, and its handler works only from a thread there",
                servers[server].core()
            ),
        ));
    }
    if let Some(i) = channels.iter().position(|c| c.interface() == SCHED_INTERFACE) {
        return Err(err(
            format!("channel[{i}].interface"),
            format!(
                "the `{SCHED_INTERFACE}` channel is made from `[sched]`: served by its server, with the VMs that have a `sched` table as clients; do not list one"
            ),
        ));
    }
    let managed: Vec<usize> = (0..vms.len()).filter(|&i| vms[i].sched.is_some()).collect();
    if managed.is_empty() {
        return Err(err(
            "sched".into(),
            "no `[[vm]]` has a `sched` table, so the scheduling policy server would manage nothing: give each VM it schedules one (`sched = {}` for the defaults)".into(),
        ));
    }
    let mut c = SchedConfig::new_zeroed();
    c.magic = SCHED_CONFIG_MAGIC;
    c.version = SCHED_CONFIG_VERSION;
    c.flags = flags;
    c.borrow_us = sched.borrow_us;
    c.cores = sched.cores;
    c.vm_count = managed.len() as u32;
    for (k, &i) in managed.iter().enumerate() {
        c.vms[k] = vm_entry(file, i, &vms[i], k)?;
    }
    c.top_priority = top_priority(file, vms, &managed)?;
    if servers[server].priority() <= c.top_priority {
        return Err(err(
            format!("server[{server}].priority"),
            format!(
                "is {} but the scheduling policy server must preempt every vCPU it manages: it needs a priority above {} (the lowest priority of a managed VM, less one)",
                servers[server].priority(),
                c.top_priority
            ),
        ));
    }
    admission(file, board, vms, &managed, &c)?;
    Ok(SchedDesc {
        server,
        vms: managed,
        channel: channels.len(),
        config: c.as_bytes().to_vec(),
        timer: u64::from(timer),
    })
}

/// The index of the `[[server]]` `[sched].server` names.
fn server_index(file: &Path, sched: &RawSched, vms: &[RawVm], servers: &[RawServer]) -> Result<usize, DescError> {
    servers.iter().position(|s| s.name() == sched.server).ok_or_else(|| {
        let problem = if vms.iter().any(|v| v.name() == sched.server) {
            format!(
                "`{}` is a `[[vm]]`; the scheduling policy server is a `[[server]]`",
                sched.server
            )
        } else {
            format!("no `[[server]]` is named `{}`", sched.server)
        };
        DescError::new(file, "sched.server", problem)
    })
}

/// The `[sched]` channel: served by the policy server, the managed VMs' VMMs its
/// clients in description order.
pub(crate) fn channel(sched: &RawSched, desc: &SchedDesc, vms: &[RawVm]) -> RawChannel {
    RawChannel::new(
        SCHED_INTERFACE,
        &sched.server,
        desc.vms.iter().map(|&i| vms[i].name().to_string()).collect(),
        SCHED_CHANNEL,
    )
}

/// The reservation of a `sched` table: SBT and USBT in ns (saturating: an absurd USBT is
/// refused as too long).
fn reservation(s: &RawVmSched) -> Option<Reservation> {
    Some(Reservation::new(
        s.sbt_us?.saturating_mul(1000),
        s.usbt_us?.saturating_mul(1000),
    ))
}

/// Check the `sched` table of VM `i` (client `k`), and say what its entry is.
fn vm_entry(file: &Path, i: usize, v: &RawVm, k: usize) -> Result<SchedVm, DescError> {
    let s = v.sched.as_ref().expect("a managed VM");
    let err = |field: &str, problem: String| DescError::new(file, format!("vm[{i}].sched{field}"), problem);
    if !(1..=65_535).contains(&s.weight) {
        return Err(err(
            ".weight",
            format!(
                "is {} but must be 1..=65535 (Xen's credit weight; 256 is the default)",
                s.weight
            ),
        ));
    }
    if s.cap > 100 {
        return Err(err(
            ".cap",
            format!(
                "is {} but must be 0 (no cap) to 100 (percent of a core per vCPU)",
                s.cap
            ),
        ));
    }
    if s.sbt_us.is_some() != s.usbt_us.is_some() {
        return Err(err(
            "",
            "give both `sbt_us` and `usbt_us` (an LL-boost reservation per vCPU), or neither".into(),
        ));
    }
    if let Some(r) = reservation(s)
        && let Err(e) = r.validate()
    {
        let field = match e {
            AdmitError::UsbtTooLong { .. } => ".usbt_us",
            _ => ".sbt_us",
        };
        return Err(err(field, e.to_string()));
    }
    Ok(SchedVm {
        name: name_array(v.name()),
        badge: k as u64 + 1,
        weight: s.weight as u32,
        cap_pct: s.cap as u32,
        sbt_us: s.sbt_us.unwrap_or(0),
        usbt_us: s.usbt_us.unwrap_or(0),
        vcpus: v.vcpus,
        core: v.core,
    })
}

/// The priority of the LL-boost class: one below the lowest managed VMM's (its vCPU
/// threads' priority without a policy server), so every managed VMM preempts them all,
/// and high enough that the three classes below it stay at 1 or more.
fn top_priority(file: &Path, vms: &[RawVm], managed: &[usize]) -> Result<u32, DescError> {
    let lowest = managed
        .iter()
        .copied()
        .min_by_key(|&i| vms[i].priority)
        .expect("a managed VM");
    let p = vms[lowest].priority;
    if p <= CLASSES {
        return Err(DescError::new(
            file,
            format!("vm[{lowest}].priority"),
            format!(
                "is {p} but a VM the scheduling policy server manages needs {} or more: its vCPUs run at the {CLASSES} priorities below the lowest managed VMM's (LL-boost, BOOST, UNDER, OVER), each at least 1",
                CLASSES + 1
            ),
        ));
    }
    Ok(p - 1)
}

/// The core vCPU `n` of a VM whose VMM runs on `core` starts on, as the VMM places it
/// (`servers/vmm/src/main.rs`, building the VM): the n-th core from the VMM's, counted
/// modulo the VMM's `MAX_VCPUS`, or the VMM's own core where that one is not on the
/// board (its `set_affinity` fails).
fn vcpu_core(core: u32, n: u32, cpus: u32) -> u32 {
    let spread = (core + n) % gaon_vmm::psci::MAX_VCPUS as u32;
    if spread < cpus { spread } else { core }
}

/// Admission control: one reservation per vCPU on the core it starts on; the sum on
/// every core stays within [`gaon_sched::LL_BOUND_PPM`] (the server's own check,
/// [`gaon_sched::admit`]). Checked whether LL-boost is on or not, so switching it
/// (`ll_boost`) never changes which descriptions are valid.
fn admission(file: &Path, board: &Board, vms: &[RawVm], managed: &[usize], c: &SchedConfig) -> Result<(), DescError> {
    let mut cores: Vec<Vec<Reservation>> = vec![Vec::new(); board.board.cpus as usize];
    for (&i, e) in managed.iter().zip(&c.vms) {
        let Some(r) = vms[i].sched.as_ref().and_then(reservation) else {
            continue;
        };
        for n in 0..e.vcpus {
            let core = vcpu_core(e.core, n, board.board.cpus);
            let on = &mut cores[core as usize];
            match gaon_sched::admit(on.iter().copied(), r) {
                Ok(_) => on.push(r),
                Err(AdmitError::Overloaded { total_ppm, bound_ppm }) => {
                    return Err(DescError::new(
                        file,
                        format!("vm[{i}].sched"),
                        format!(
                            "LL-boost reservations on core {core} add up to {} % of the core (vCPU {n} of `{}` included); at most {} % may be reserved",
                            percent(total_ppm, 1),
                            vms[i].name(),
                            percent(bound_ppm, 0)
                        ),
                    ));
                }
                Err(e) => return Err(DescError::new(file, format!("vm[{i}].sched"), e.to_string())),
            }
        }
    }
    Ok(())
}

/// `ppm` of a core as a percentage, with at least `min_decimals` decimals and as many
/// more (up to 4) as it takes to be exact: 520000 → "52.0", 500001 → "50.0001".
fn percent(ppm: u32, min_decimals: usize) -> String {
    let mut frac = format!("{:04}", ppm % 10_000);
    while frac.len() > min_decimals && frac.ends_with('0') {
        frac.pop();
    }
    if frac.is_empty() {
        format!("{}", ppm / 10_000)
    } else {
        format!("{}.{frac}", ppm / 10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_exact() {
        assert_eq!(percent(520_000, 1), "52.0");
        assert_eq!(percent(500_000, 0), "50");
        assert_eq!(percent(500_001, 1), "50.0001");
        assert_eq!(percent(26_087, 1), "2.6087");
        assert_eq!(percent(123_400, 1), "12.34");
    }

    #[test]
    fn vcpus_spread_from_the_vmm_core() {
        // Four cores: vCPU n on the n-th core from the VMM's, wrapping.
        assert_eq!((0..4).map(|n| vcpu_core(2, n, 4)).collect::<Vec<_>>(), [2, 3, 0, 1]);
        // Two cores: a core past the board's is the VMM's own.
        assert_eq!((0..4).map(|n| vcpu_core(1, n, 2)).collect::<Vec<_>>(), [1, 1, 1, 0]);
    }
}
