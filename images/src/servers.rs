//! The servers of a system description: `[[server]]`, `[[channel]]` and `[[shared]]`,
//! their checks, the packed table the root server reads, and the build-time check that
//! both ends of every channel agree on its IDL interface.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gaon_abi::boot::NAME_LEN;
use gaon_abi::system::{
    Grant, GrantKind, IdlRecord, MAX_ENDPOINTS, MAX_GRANTS, MAX_SERVER_PRIORITY, MAX_SERVERS, MAX_SHARED, ROLE_MASK,
    ROLE_OPTIONAL, ROLE_PRINTS, ROLE_SERVES, ROLE_USES, SERVER_DEBUG, SERVER_HALT_ON_EXIT, SYSTEM_MAGIC,
    SYSTEM_VERSION, ServerEntry, SharedEntry, SystemTable,
};
use gaon_platform::{Board, DescError};
use serde::Deserialize;
use zerocopy::{FromZeros, IntoBytes};

use crate::system::{ModuleSource, valid_name, valid_package};

/// A checked `[[server]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools, reason = "independent switches of the description")]
pub struct ServerDesc {
    /// Its name (also its boot module's name).
    pub name: String,
    /// Where its ELF comes from.
    pub source: ModuleSource,
    /// Priority 1..=254.
    pub priority: u32,
    /// The core it runs on (0 unless `core = N`; below the board's `cpus`).
    pub core: u32,
    /// `(budget_us, period_us)`, if budgeted.
    pub budget: Option<(u64, u64)>,
    /// Stack pages.
    pub stack_pages: u32,
    /// log2 bytes of untyped memory for its own objects; 0 = none.
    pub heap_bits: u32,
    /// Halt the system with its status when it exits.
    pub halt_on_exit: bool,
    /// Give it the Debug capability (the kernel console, halting).
    pub debug: bool,
    /// VMIDs it may give its own VSpaces (a VmidPool of this size).
    pub vmids: u32,
    /// Map the kernel log page (it prints the kernel's output).
    pub kernel_log: bool,
    /// Device memory: `(name, paddr, size)`.
    pub mmio: Vec<(String, u64, u64)>,
    /// IRQ lines: `(name, line)`.
    pub irqs: Vec<(String, u64)>,
    /// Boot modules it is given by name: `(grant name, index of the boot module)` (a
    /// VMM's guest program and configuration).
    pub modules: Vec<(String, u64)>,
    /// Give it the GICv2 virtual CPU interface's pages (`gicv0`, `gicv1`): a VMM.
    pub vgic: bool,
    /// Its device memory comes as frame capabilities, mapped nowhere
    /// (`GrantKind::DeviceFrame`, one grant per page): a VMM's pass-through devices.
    pub device_frames: bool,
    /// The cores whose SchedControl capability it is given (`sched_control.<core>`):
    /// the scheduling policy server (`[sched]`).
    pub sched_control: Vec<u32>,
    /// The classes of events to record, when to stop (ms, 0: never) and where the
    /// stream goes (`trace::OUTPUT_*`), if it is the trace server (`[trace]`): it is
    /// given TraceControl and the trace rings.
    pub trace: Option<(u64, u64, u64)>,
}

/// A checked `[[channel]]`: one endpoint, one server end, badged client ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelDesc {
    /// The name both ends look it up by.
    pub name: String,
    /// The IDL interface name.
    pub interface: String,
    /// Index of the serving server.
    pub server: usize,
    /// Indices of the clients; client `k` gets badge `k + 1`.
    pub clients: Vec<usize>,
}

/// A checked `[[shared]]` region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedDesc {
    /// Its name (the mapping's name in every server that has it).
    pub name: String,
    /// Size in pages.
    pub pages: u64,
    /// `(server index, writable)`.
    pub users: Vec<(usize, bool)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools, reason = "independent switches of the description")]
pub(crate) struct RawServer {
    name: String,
    package: Option<String>,
    file: Option<PathBuf>,
    priority: u32,
    #[serde(default)]
    core: u32,
    budget_us: Option<u64>,
    period_us: Option<u64>,
    #[serde(default = "default_stack")]
    stack_pages: u32,
    #[serde(default)]
    heap_kib: u64,
    #[serde(default)]
    halt_on_exit: bool,
    #[serde(default)]
    debug: bool,
    #[serde(default)]
    vmids: u32,
    #[serde(default)]
    kernel_log: bool,
    #[serde(default)]
    mmio: Vec<RawMmio>,
    #[serde(default)]
    irq: Vec<RawIrq>,
    /// A VMM's: its `mmio` are pass-through devices, given as frame capabilities.
    #[serde(skip)]
    device_frames: bool,
}

const fn default_stack() -> u32 {
    4
}

impl RawServer {
    /// The VMM server a `[[vm]]` entry becomes: `gaon-vmm` with one VMID for its guest
    /// and a heap of `2^heap_bits` bytes for guest RAM and its own objects.
    pub(crate) fn vmm(vm: &crate::vms::RawVm, name: &str, heap_bits: u32) -> Self {
        let (mmio, irq) = vm
            .passthrough
            .iter()
            .map(|p| {
                let m = RawMmio {
                    name: p.name.clone(),
                    paddr: p.paddr,
                    size: p.size,
                };
                let i = p.irq.map(|line| RawIrq {
                    name: p.name.clone(),
                    line,
                });
                (m, i)
            })
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Self {
            name: name.to_string(),
            package: Some(crate::vms::VMM_PACKAGE.to_string()),
            file: None,
            priority: vm.priority,
            core: vm.core,
            budget_us: vm.budget_us,
            period_us: vm.period_us,
            stack_pages: 16,
            heap_kib: 1 << (heap_bits - 10),
            halt_on_exit: vm.halt_on_exit,
            debug: false,
            vmids: 1,
            kernel_log: false,
            mmio,
            irq: irq.into_iter().flatten().collect(),
            device_frames: true,
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Its priority.
    pub(crate) const fn priority(&self) -> u32 {
        self.priority
    }

    /// The core it runs on.
    pub(crate) const fn core(&self) -> u32 {
        self.core
    }

    /// True if it has a budget (`budget_us` and `period_us`).
    pub(crate) const fn budgeted(&self) -> bool {
        self.budget_us.is_some() && self.period_us.is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMmio {
    name: String,
    paddr: u64,
    size: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIrq {
    name: String,
    line: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannel {
    interface: String,
    server: String,
    clients: Vec<String>,
    name: Option<String>,
}

impl RawChannel {
    /// A channel the description implies (the scheduling policy server's).
    pub(crate) fn new(interface: &str, server: &str, clients: Vec<String>, name: &str) -> Self {
        Self {
            interface: interface.to_string(),
            server: server.to_string(),
            clients,
            name: Some(name.to_string()),
        }
    }

    /// Its IDL interface.
    pub(crate) fn interface(&self) -> &str {
        &self.interface
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShared {
    name: String,
    pages: u64,
    #[serde(default)]
    writers: Vec<String>,
    #[serde(default)]
    readers: Vec<String>,
}

/// The servers part of a description, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Servers {
    /// Servers, in start order.
    pub servers: Vec<ServerDesc>,
    /// Channels.
    pub channels: Vec<ChannelDesc>,
    /// Shared regions.
    pub shared: Vec<SharedDesc>,
}

fn name_problem(what: &str, name: &str) -> String {
    format!("{what} `{name}` must be 1..={NAME_LEN} letters, digits, `-`, `_` or `.`")
}

/// Names no server may take: the root server's own, and the system table module's.
const RESERVED: &[&str] = &["root", gaon_abi::system::SYSTEM_MODULE];

struct Checker<'a> {
    file: &'a Path,
    board: &'a Board,
}

impl Checker<'_> {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> DescError {
        DescError::new(self.file, field, problem)
    }

    fn server(&self, index: usize, s: &RawServer, taken: &mut BTreeSet<String>) -> Result<ServerDesc, DescError> {
        let f = format!("server[{index}]");
        if !valid_name(&s.name) {
            return Err(self.err(format!("{f}.name"), name_problem("server name", &s.name)));
        }
        if RESERVED.contains(&s.name.as_str()) {
            return Err(self.err(format!("{f}.name"), format!("`{}` is reserved", s.name)));
        }
        if !taken.insert(s.name.clone()) {
            return Err(self.err(
                format!("{f}.name"),
                format!("`{}` is already the name of a server or module", s.name),
            ));
        }
        let source = self.source(&f, s)?;
        if s.priority == 0 || s.priority > MAX_SERVER_PRIORITY {
            return Err(self.err(
                format!("{f}.priority"),
                format!(
                    "is {} but must be 1..={MAX_SERVER_PRIORITY} (255 is the root server's)",
                    s.priority
                ),
            ));
        }
        let cpus = self.board.board.cpus;
        if s.core >= cpus {
            return Err(self.err(
                format!("{f}.core"),
                format!(
                    "is {} but board `{}` has {cpus} cores (0..={})",
                    s.core,
                    self.board.board.name,
                    cpus.saturating_sub(1)
                ),
            ));
        }
        let budget = self.budget(&f, s)?;
        if s.stack_pages == 0 || s.stack_pages > 256 {
            return Err(self.err(
                format!("{f}.stack_pages"),
                format!("is {} but must be 1..=256", s.stack_pages),
            ));
        }
        let heap_bits = if s.heap_kib == 0 {
            0
        } else if s.heap_kib.is_power_of_two() && (4..=1 << 20).contains(&s.heap_kib) {
            s.heap_kib.trailing_zeros() + 10
        } else {
            return Err(self.err(
                format!("{f}.heap_kib"),
                format!("is {} but must be a power of two from 4 to 1048576", s.heap_kib),
            ));
        };
        let mut mmio = Vec::new();
        for (j, m) in s.mmio.iter().enumerate() {
            mmio.push(self.mmio(&format!("{f}.mmio[{j}]"), m)?);
        }
        let irqs = self.irqs(&f, s)?;
        Ok(ServerDesc {
            name: s.name.clone(),
            source,
            priority: s.priority,
            core: s.core,
            budget,
            stack_pages: s.stack_pages,
            heap_bits,
            halt_on_exit: s.halt_on_exit,
            debug: s.debug,
            vmids: s.vmids,
            kernel_log: s.kernel_log,
            mmio,
            irqs,
            modules: Vec::new(),
            vgic: false,
            device_frames: s.device_frames,
            sched_control: Vec::new(),
            trace: None,
        })
    }

    fn source(&self, f: &str, s: &RawServer) -> Result<ModuleSource, DescError> {
        Ok(match (&s.package, &s.file) {
            (Some(p), None) if valid_package(p) => ModuleSource::Package(p.clone()),
            (Some(p), None) => {
                return Err(self.err(format!("{f}.package"), format!("`{p}` is not a Cargo package name")));
            }
            (None, Some(path)) => {
                let full = self.file.parent().unwrap_or(Path::new(".")).join(path);
                if !full.is_file() {
                    return Err(self.err(format!("{f}.file"), format!("`{}` does not exist", full.display())));
                }
                ModuleSource::File(full)
            }
            _ => return Err(self.err(f, "give exactly one of `package` or `file`")),
        })
    }

    fn budget(&self, f: &str, s: &RawServer) -> Result<Option<(u64, u64)>, DescError> {
        match (s.budget_us, s.period_us) {
            (None, None) => Ok(None),
            (Some(budget), Some(period)) if budget > 0 && budget <= period && period <= 10_000_000 => {
                Ok(Some((budget, period)))
            }
            (Some(budget), Some(period)) => Err(self.err(
                format!("{f}.budget_us"),
                format!("budget {budget} µs per period {period} µs: need 0 < budget <= period <= 10 s"),
            )),
            _ => Err(self.err(
                format!("{f}.budget_us"),
                "give both `budget_us` and `period_us`, or neither",
            )),
        }
    }

    fn irqs(&self, f: &str, s: &RawServer) -> Result<Vec<(String, u64)>, DescError> {
        let mut irqs = Vec::new();
        let user = self.board.user_irqs();
        for (j, q) in s.irq.iter().enumerate() {
            if !valid_name(&q.name) {
                return Err(self.err(format!("{f}.irq[{j}].name"), name_problem("name", &q.name)));
            }
            if user.is_empty() {
                return Err(self.err(
                    format!("{f}.irq[{j}].line"),
                    format!("board `{}` gives user level no interrupt lines", self.board.board.name),
                ));
            }
            if !user.contains(&q.line) {
                return Err(self.err(
                    format!("{f}.irq[{j}].line"),
                    format!(
                        "is {} but must be a shared interrupt, {}..{}",
                        q.line, user.start, user.end
                    ),
                ));
            }
            irqs.push((q.name.clone(), q.line));
        }
        Ok(irqs)
    }

    fn mmio(&self, f: &str, m: &RawMmio) -> Result<(String, u64, u64), DescError> {
        if !valid_name(&m.name) {
            return Err(self.err(format!("{f}.name"), name_problem("name", &m.name)));
        }
        if !m.paddr.is_multiple_of(4096) || m.size == 0 || !m.size.is_multiple_of(4096) || m.size > 1 << 24 {
            return Err(self.err(
                f,
                format!(
                    "{:#x} + {:#x}: address and size must be page multiples, size at most 16 MiB",
                    m.paddr, m.size
                ),
            ));
        }
        let end = m
            .paddr
            .checked_add(m.size)
            .ok_or_else(|| self.err(format!("{f}.size"), "overflows"))?;
        if !self
            .board
            .mmio
            .iter()
            .any(|r| r.base <= m.paddr && end <= r.base + r.size)
        {
            return Err(self.err(
                format!("{f}.paddr"),
                format!(
                    "{:#x}..{end:#x} is not inside one of board `{}`'s MMIO regions",
                    m.paddr, self.board.board.name
                ),
            ));
        }
        let grant = gaon_platform::Region {
            base: m.paddr,
            size: m.size,
        };
        if let Some(k) = self
            .board
            .kernel_regions()
            .into_iter()
            .find(|k| k.region().overlaps(&grant))
        {
            return Err(self.err(
                format!("{f}.paddr"),
                format!(
                    "{:#x}..{end:#x} overlaps `{}` at {:#x}..{:#x}, which the kernel keeps",
                    m.paddr,
                    k.name,
                    k.base,
                    k.base + k.size
                ),
            ));
        }
        if let Some(d) = self.board.withheld_devices().find(|d| d.region().overlaps(&grant)) {
            let why = if d.dma {
                "a DMA master board.toml keeps from user level"
            } else {
                "a device board.toml keeps from user level (user = false)"
            };
            return Err(self.err(
                format!("{f}.paddr"),
                format!(
                    "{:#x}..{end:#x} overlaps `{}` at {:#x}..{:#x}, {why}",
                    m.paddr,
                    d.name,
                    d.base,
                    d.base + d.size
                ),
            ));
        }
        // The root server hands out device memory page by page from its device untyped,
        // which is exactly the board's user devices.
        let user = |pa: u64| self.board.user_devices().any(|d| d.region().contains(pa, 4096));
        if let Some(pa) = (m.paddr..end).step_by(4096).find(|&pa| !user(pa)) {
            let names: Vec<String> = self
                .board
                .user_devices()
                .map(|d| format!("{} {:#x}..{:#x}", d.name, d.base, d.base + d.size))
                .collect();
            return Err(self.err(
                format!("{f}.paddr"),
                format!(
                    "page {pa:#x} of {:#x}..{end:#x} is in no device board `{}` lets the root server hand out ({})",
                    m.paddr,
                    self.board.board.name,
                    names.join(", ")
                ),
            ));
        }
        Ok((m.name.clone(), m.paddr, m.size))
    }
}

impl Servers {
    /// Check the servers part of description `file` for `board`. `taken` holds the
    /// module names already used.
    pub(crate) fn check(
        file: &Path,
        board: &Board,
        raw_servers: &[RawServer],
        raw_channels: &[RawChannel],
        raw_shared: &[RawShared],
        taken: &mut BTreeSet<String>,
    ) -> Result<Self, DescError> {
        let c = Checker { file, board };
        if raw_servers.len() > MAX_SERVERS {
            return Err(c.err(
                "server",
                format!("{} servers, at most {MAX_SERVERS}", raw_servers.len()),
            ));
        }
        let mut servers = Vec::new();
        for (i, s) in raw_servers.iter().enumerate() {
            servers.push(c.server(i, s, taken)?);
        }
        exclusive(&c, &servers)?;
        vmid_quotas(&c, &servers)?;
        kernel_log(&c, &servers)?;
        let channels = channels(&c, &servers, raw_channels)?;
        let shared = shared(&c, &servers, raw_shared)?;
        let out = Self {
            servers,
            channels,
            shared,
        };
        out.grant_limits(&c)?;
        Ok(out)
    }

    /// The grant limits again, after a VMM was given its modules and the GICv2 pages
    /// and the scheduling policy server its own grants.
    pub(crate) fn check_grant_limits(&self, file: &Path, board: &Board) -> Result<(), DescError> {
        self.grant_limits(&Checker { file, board })
    }

    fn grant_limits(&self, c: &Checker<'_>) -> Result<(), DescError> {
        // Every server's grants must fit and have distinct names.
        for (i, s) in self.servers.iter().enumerate() {
            let names = self.grant_names(i);
            if names.len() > MAX_GRANTS {
                return Err(c.err(
                    format!("server[{i}]"),
                    format!(
                        "`{}` is given {} channels, IRQs, MMIO and shared regions; at most {MAX_GRANTS}",
                        s.name,
                        names.len()
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for n in names {
                if !seen.insert(n.clone()) {
                    return Err(c.err(
                        format!("server[{i}]"),
                        format!("`{}` is given two things named `{n}`", s.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What server `i` is given, in table order.
    fn grants(&self, i: usize) -> Vec<(String, GrantKind, u64, u64)> {
        let mut g = Vec::new();
        for (e, ch) in self.channels.iter().enumerate() {
            if ch.server == i {
                g.push((ch.name.clone(), GrantKind::Serve, e as u64, 0));
            }
            if let Some(k) = ch.clients.iter().position(|&c| c == i) {
                g.push((ch.name.clone(), GrantKind::Client, e as u64, k as u64 + 1));
            }
        }
        let s = &self.servers[i];
        for (bit, (name, line)) in s.irqs.iter().enumerate() {
            g.push((name.clone(), GrantKind::Irq, *line, bit as u64));
        }
        for (name, pa, size) in &s.mmio {
            if s.device_frames {
                for k in 0..size / 4096 {
                    g.push((format!("{name}.{k}"), GrantKind::DeviceFrame, pa + k * 4096, 0));
                }
            } else {
                g.push((name.clone(), GrantKind::Mmio, *pa, *size));
            }
        }
        for (r, sh) in self.shared.iter().enumerate() {
            if let Some(&(_, w)) = sh.users.iter().find(|(u, _)| *u == i) {
                g.push((sh.name.clone(), GrantKind::Shared, r as u64, u64::from(w)));
            }
        }
        if s.kernel_log {
            g.push((KERNEL_LOG_NAME.to_string(), GrantKind::KernelLog, 0, 0));
        }
        for (name, module) in &s.modules {
            g.push((name.clone(), GrantKind::Module, *module, 0));
        }
        if s.vgic {
            g.push(("gicv0".to_string(), GrantKind::VgicCpu, 0, 0));
            g.push(("gicv1".to_string(), GrantKind::VgicCpu, 1, 0));
        }
        if let Some((classes, stop_after_ms, output)) = s.trace {
            g.push((
                crate::trace::CONTROL_GRANT.to_string(),
                GrantKind::TraceControl,
                classes,
                stop_after_ms,
            ));
            g.push((crate::trace::RINGS_GRANT.to_string(), GrantKind::TraceRings, output, 0));
        }
        for &core in &s.sched_control {
            g.push((
                format!("sched_control.{core}"),
                GrantKind::SchedControl,
                u64::from(core),
                0,
            ));
        }
        g
    }

    fn grant_names(&self, i: usize) -> Vec<String> {
        self.grants(i).into_iter().map(|g| g.0).collect()
    }

    /// The packed table the root server reads (the `system` boot module).
    pub fn table(&self) -> Vec<u8> {
        let mut t = SystemTable::new_zeroed();
        t.magic = SYSTEM_MAGIC;
        t.version = SYSTEM_VERSION;
        t.server_count = self.servers.len() as u32;
        t.shared_count = self.shared.len() as u32;
        t.endpoint_count = self.channels.len() as u32;
        for (i, s) in self.servers.iter().enumerate() {
            let e: &mut ServerEntry = &mut t.servers[i];
            e.name = name_array(&s.name);
            e.module = name_array(&s.name);
            e.priority = s.priority;
            e.core = s.core;
            e.flags = if s.halt_on_exit { SERVER_HALT_ON_EXIT } else { 0 } | if s.debug { SERVER_DEBUG } else { 0 };
            (e.budget_us, e.period_us) = s.budget.unwrap_or((0, 0));
            e.stack_pages = s.stack_pages;
            e.heap_bits = s.heap_bits;
            e.vmids = s.vmids;
            let grants = self.grants(i);
            e.grant_count = grants.len() as u32;
            for (j, (name, kind, a, b)) in grants.into_iter().enumerate() {
                e.grants[j] = Grant {
                    name: name_array(&name),
                    kind: kind as u32,
                    reserved: 0,
                    a,
                    b,
                };
            }
        }
        for (i, r) in self.shared.iter().enumerate() {
            t.shared[i] = SharedEntry {
                name: name_array(&r.name),
                pages: r.pages,
            };
        }
        t.as_bytes().to_vec()
    }

    /// Check that both ends of every channel agree on its interface. `records` gives,
    /// per server, the IDL records its ELF declares (see [`idl_records`]).
    pub fn check_interfaces(&self, file: &Path, records: &[Vec<IdlRecord>]) -> Result<(), DescError> {
        let find = |i: usize, role: u32, iface: &str| {
            records
                .get(i)
                .and_then(|r| r.iter().find(|r| r.role & ROLE_MASK == role && record_name(r) == iface))
        };
        for (c, ch) in self.channels.iter().enumerate() {
            let f = format!("channel[{c}]");
            let server = &self.servers[ch.server].name;
            let Some(s) = find(ch.server, ROLE_SERVES, &ch.interface) else {
                return Err(DescError::new(
                    file,
                    format!("{f}.server"),
                    format!(
                        "server `{server}` does not serve interface `{}`: its program declares no `libl4::serves!` for it ({})",
                        ch.interface,
                        declared(records.get(ch.server), ROLE_SERVES)
                    ),
                ));
            };
            for (k, &ci) in ch.clients.iter().enumerate() {
                let client = &self.servers[ci].name;
                let Some(u) = find(ci, ROLE_USES, &ch.interface) else {
                    return Err(DescError::new(
                        file,
                        format!("{f}.clients[{k}]"),
                        format!(
                            "`{client}` does not use interface `{}`: its program declares no `libl4::uses!` for it ({})",
                            ch.interface,
                            declared(records.get(ci), ROLE_USES)
                        ),
                    ));
                };
                if u.hash != s.hash {
                    return Err(DescError::new(
                        file,
                        format!("{f}.clients[{k}]"),
                        format!(
                            "`{client}` and server `{server}` were built from different versions of interface `{}` (hash {:#x} vs {:#x}); rebuild both from the same IDL file",
                            ch.interface, u.hash, s.hash
                        ),
                    ));
                }
            }
        }
        self.check_declared_channels(file, records)
    }

    /// The other way round: every interface a program declares it serves or uses (not
    /// optionally) has a channel that gives it that end. Otherwise it would fail only at
    /// run time, and a program that prints with no console channel would lose its
    /// output without a word.
    fn check_declared_channels(&self, file: &Path, records: &[Vec<IdlRecord>]) -> Result<(), DescError> {
        for (i, s) in self.servers.iter().enumerate() {
            let Some(recs) = records.get(i) else { continue };
            let optional = |role: u32, name: &str| {
                recs.iter()
                    .any(|r| r.role & ROLE_OPTIONAL != 0 && r.role & ROLE_MASK == role && record_name(r) == name)
            };
            for r in recs.iter().filter(|r| r.role & ROLE_OPTIONAL == 0) {
                let (role, name) = (r.role & ROLE_MASK, record_name(r));
                if optional(role, name) {
                    continue;
                }
                let has = self.channels.iter().any(|ch| {
                    ch.interface == name
                        && if role == ROLE_SERVES {
                            ch.server == i
                        } else {
                            ch.clients.contains(&i)
                        }
                });
                if has {
                    continue;
                }
                let problem = if role == ROLE_SERVES {
                    format!(
                        "`{}` serves interface `{name}` (`libl4::serves!`) but no [[channel]] has it serve `{name}`: add one, or declare it with `libl4::serves_optional!` if it runs without",
                        s.name
                    )
                } else {
                    let how = if r.role & ROLE_PRINTS != 0 {
                        "it prints (`print!`/`println!`), and its output would go nowhere"
                    } else {
                        "declared with `libl4::uses!`"
                    };
                    format!(
                        "`{}` uses interface `{name}` ({how}) but is a client of no `{name}` channel: add it to one's `clients`, or declare it with `libl4::uses_optional!` if it runs without",
                        s.name
                    )
                };
                return Err(DescError::new(file, format!("server[{i}]"), problem));
            }
        }
        Ok(())
    }
}

/// The index of the server called `name`, or an error about `field`.
fn server_index(c: &Checker<'_>, servers: &[ServerDesc], field: String, name: &str) -> Result<usize, DescError> {
    servers
        .iter()
        .position(|s| s.name == name)
        .ok_or_else(|| c.err(field, format!("no server is named `{name}`")))
}

/// The kernel log page's name in a server's start info.
pub const KERNEL_LOG_NAME: &str = "kernel-log";

/// At most one server prints the kernel log, and it needs the Debug capability to bind
/// to it.
fn kernel_log(c: &Checker<'_>, servers: &[ServerDesc]) -> Result<(), DescError> {
    let mut readers = servers.iter().enumerate().filter(|(_, s)| s.kernel_log);
    if let Some((i, s)) = readers.next() {
        if !s.debug {
            return Err(c.err(
                format!("server[{i}].kernel_log"),
                "needs `debug = true` too: binding to the kernel log takes the Debug capability",
            ));
        }
        if let Some((j, _)) = readers.next() {
            return Err(c.err(
                format!("server[{j}].kernel_log"),
                format!("only one server may print the kernel log; `{}` does", s.name),
            ));
        }
    }
    Ok(())
}

/// VMIDs the root server hands out: one per server's own VSpace and the `vmids`
/// quotas, from the 254 it has (VMID 0 is unused and the root has its own).
pub const ROOT_VMIDS: u64 = 254;

/// The servers' VMIDs (their own and their quotas) fit in what the root has.
fn vmid_quotas(c: &Checker<'_>, servers: &[ServerDesc]) -> Result<(), DescError> {
    let wanted: u64 = servers.iter().map(|s| 1 + u64::from(s.vmids)).sum();
    if wanted > ROOT_VMIDS {
        let (i, _) = servers
            .iter()
            .enumerate()
            .rev()
            .find(|(_, s)| s.vmids > 0)
            .unwrap_or((0, &servers[0]));
        return Err(c.err(
            format!("server[{i}].vmids"),
            format!("the servers need {wanted} VMIDs (one each, plus their `vmids`); the root has {ROOT_VMIDS}"),
        ));
    }
    Ok(())
}

/// No device page or interrupt line goes to two servers.
fn exclusive(c: &Checker<'_>, servers: &[ServerDesc]) -> Result<(), DescError> {
    // No device page or interrupt line goes to two servers.
    let mut lines = BTreeMap::new();
    let mut pages: Vec<(u64, u64, &str)> = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        for (j, (_, line)) in s.irqs.iter().enumerate() {
            if let Some(other) = lines.insert(*line, &s.name) {
                return Err(c.err(
                    format!("server[{i}].irq[{j}].line"),
                    format!("line {line} is already given to server `{other}`"),
                ));
            }
        }
        for (j, (_, pa, size)) in s.mmio.iter().enumerate() {
            if let Some((_, _, other)) = pages.iter().find(|(b, e, _)| *pa < *e && *b < pa + size) {
                return Err(c.err(
                    format!("server[{i}].mmio[{j}].paddr"),
                    format!("{pa:#x} overlaps device memory already given to server `{other}`"),
                ));
            }
            pages.push((*pa, pa + size, &s.name));
        }
    }
    Ok(())
}

fn channels(
    c: &Checker<'_>,
    servers: &[ServerDesc],
    raw_channels: &[RawChannel],
) -> Result<Vec<ChannelDesc>, DescError> {
    let index = |field: String, name: &str| server_index(c, servers, field, name);
    if raw_channels.len() > MAX_ENDPOINTS {
        return Err(c.err(
            "channel",
            format!("{} channels, at most {MAX_ENDPOINTS}", raw_channels.len()),
        ));
    }
    let mut channels: Vec<ChannelDesc> = Vec::new();
    for (i, ch) in raw_channels.iter().enumerate() {
        let f = format!("channel[{i}]");
        if !valid_ident(&ch.interface) {
            return Err(c.err(
                format!("{f}.interface"),
                format!("`{}` is not an IDL interface name", ch.interface),
            ));
        }
        let server = index(format!("{f}.server"), &ch.server)?;
        if ch.clients.is_empty() {
            return Err(c.err(format!("{f}.clients"), "a channel needs at least one client"));
        }
        let mut clients = Vec::new();
        for (k, name) in ch.clients.iter().enumerate() {
            let ci = index(format!("{f}.clients[{k}]"), name)?;
            if ci == server {
                return Err(c.err(
                    format!("{f}.clients[{k}]"),
                    format!("server `{name}` cannot be a client of its own channel"),
                ));
            }
            if clients.contains(&ci) {
                return Err(c.err(format!("{f}.clients[{k}]"), format!("`{name}` is listed twice")));
            }
            clients.push(ci);
        }
        let name = ch.name.clone().unwrap_or_else(|| ch.interface.to_ascii_lowercase());
        if !valid_name(&name) {
            return Err(c.err(format!("{f}.name"), name_problem("channel name", &name)));
        }
        if channels
            .iter()
            .any(|o| o.server == server && o.interface == ch.interface)
        {
            return Err(c.err(
                f,
                format!("server `{}` already has a `{}` channel", ch.server, ch.interface),
            ));
        }
        channels.push(ChannelDesc {
            name,
            interface: ch.interface.clone(),
            server,
            clients,
        });
    }
    Ok(channels)
}

fn shared(c: &Checker<'_>, servers: &[ServerDesc], raw_shared: &[RawShared]) -> Result<Vec<SharedDesc>, DescError> {
    let index = |field: String, name: &str| server_index(c, servers, field, name);
    if raw_shared.len() > MAX_SHARED {
        return Err(c.err(
            "shared",
            format!("{} shared regions, at most {MAX_SHARED}", raw_shared.len()),
        ));
    }
    let mut shared = Vec::new();
    for (i, r) in raw_shared.iter().enumerate() {
        let f = format!("shared[{i}]");
        if !valid_name(&r.name) {
            return Err(c.err(format!("{f}.name"), name_problem("name", &r.name)));
        }
        if r.pages == 0 || r.pages > 1024 {
            return Err(c.err(format!("{f}.pages"), format!("is {} but must be 1..=1024", r.pages)));
        }
        let mut users = Vec::new();
        for (list, writable, key) in [(&r.writers, true, "writers"), (&r.readers, false, "readers")] {
            for (k, name) in list.iter().enumerate() {
                let si = index(format!("{f}.{key}[{k}]"), name)?;
                if users.iter().any(|&(u, _)| u == si) {
                    return Err(c.err(format!("{f}.{key}[{k}]"), format!("`{name}` is listed twice")));
                }
                users.push((si, writable));
            }
        }
        if users.is_empty() {
            return Err(c.err(f, "a shared region needs at least one writer or reader"));
        }
        shared.push(SharedDesc {
            name: r.name.clone(),
            pages: r.pages,
            users,
        });
    }
    Ok(shared)
}

fn declared(records: Option<&Vec<IdlRecord>>, role: u32) -> String {
    let mut names: Vec<&str> = records
        .into_iter()
        .flatten()
        .filter(|r| r.role & ROLE_MASK == role)
        .map(record_name)
        .collect();
    names.dedup();
    if names.is_empty() {
        "it declares none".into()
    } else {
        format!("it declares {}", names.join(", "))
    }
}

fn record_name(r: &IdlRecord) -> &str {
    let n = (r.name_len as usize).min(NAME_LEN);
    std::str::from_utf8(&r.name[..n]).unwrap_or("?")
}

pub(crate) fn name_array(s: &str) -> [u8; NAME_LEN] {
    let mut a = [0u8; NAME_LEN];
    a[..s.len()].copy_from_slice(s.as_bytes());
    a
}

fn valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= NAME_LEN
}
