//! System descriptions: parsing and validation.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use gaon_abi::boot::{MAX_MODULES, NAME_LEN};
use gaon_abi::system::SYSTEM_MODULE;
use gaon_platform::{Board, DescError};
use serde::Deserialize;

use crate::sched::{RawSched, SchedDesc};
use crate::servers::{RawChannel, RawServer, RawShared, Servers};
use crate::vms::{RawVm, VmDesc};

/// A checked system description.
#[derive(Clone, Debug)]
pub struct System {
    /// The file it came from.
    pub file: PathBuf,
    /// `[system].name`.
    pub name: String,
    /// The board, loaded from `platforms/<board>/board.toml`.
    pub board: Board,
    /// Cargo package that builds the kernel.
    pub kernel_package: String,
    /// Cargo features the kernel is built with (`[kernel].features`, e.g.
    /// `consistency-check` for the test and fuzz images).
    pub kernel_features: Vec<String>,
    /// Cargo package that builds the root server.
    pub root_package: String,
    /// Boot modules, in order: the `[[module]]`s, then one per server (named after it),
    /// then each VM's (guest, configuration, initrd), then the scheduling policy
    /// server's configuration (`[sched]`), then the system table (`system`).
    pub modules: Vec<ModuleDesc>,
    /// Servers, channels and shared memory. A VM's VMM is a server too, after the
    /// `[[server]]`s.
    pub servers: Servers,
    /// Virtual machines (`[[vm]]`).
    pub vms: Vec<VmDesc>,
    /// The scheduling policy server (`[sched]`), if any.
    pub sched: Option<SchedDesc>,
    /// Where each entry came from (the description or a fragment it includes).
    origins: Origins,
}

/// A boot module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleDesc {
    /// Name the root server looks it up by.
    pub name: String,
    /// Where its bytes come from.
    pub source: ModuleSource,
}

/// Where a module's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleSource {
    /// A user program built from this Cargo package (its ELF).
    Package(String),
    /// A file, relative to the description's folder.
    File(PathBuf),
    /// The packed system table, generated from the description.
    Table,
    /// Bytes generated from the description (a VM's configuration, the scheduling
    /// policy server's).
    Bytes(Vec<u8>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    system: RawSystem,
    kernel: RawKernel,
    root: RawPackage,
    #[serde(default)]
    include: Vec<PathBuf>,
    #[serde(default)]
    module: Vec<RawModule>,
    #[serde(default)]
    server: Vec<RawServer>,
    #[serde(default)]
    channel: Vec<RawChannel>,
    #[serde(default)]
    shared: Vec<RawShared>,
    #[serde(default)]
    vm: Vec<RawVm>,
    sched: Option<RawSched>,
    trace: Option<crate::trace::RawTrace>,
}

/// A fragment a description includes: servers, channels, shared regions and modules
/// listed once for every board (and more fragments).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFragment {
    #[serde(default)]
    include: Vec<PathBuf>,
    #[serde(default)]
    module: Vec<RawModule>,
    #[serde(default)]
    server: Vec<RawServer>,
    #[serde(default)]
    channel: Vec<RawChannel>,
    #[serde(default)]
    shared: Vec<RawShared>,
}

/// Most fragments one description may pull in, all levels together.
const MAX_INCLUDES: usize = 16;

/// Where each merged entry came from: `(file, index in that file)` per `[[module]]`,
/// `[[server]]`, `[[channel]]` and `[[shared]]`.
#[derive(Clone, Debug, Default)]
struct Origins {
    module: Vec<(PathBuf, usize)>,
    server: Vec<(PathBuf, usize)>,
    channel: Vec<(PathBuf, usize)>,
    shared: Vec<(PathBuf, usize)>,
}

impl Origins {
    fn add(&mut self, file: &Path, f: &RawFragment) {
        let at = |n: usize| (0..n).map(|i| (file.to_path_buf(), i));
        self.module.extend(at(f.module.len()));
        self.server.extend(at(f.server.len()));
        self.channel.extend(at(f.channel.len()));
        self.shared.extend(at(f.shared.len()));
    }

    /// Point an error about merged entry `kind[n]` at the file and index it came from.
    fn locate(&self, mut e: DescError) -> DescError {
        for (kind, origins) in [
            ("module", &self.module),
            ("server", &self.server),
            ("channel", &self.channel),
            ("shared", &self.shared),
        ] {
            let Some(rest) = e.field.strip_prefix(kind).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            let Some((n, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some((file, i)) = n.parse::<usize>().ok().and_then(|n| origins.get(n)) {
                e.field = format!("{kind}[{i}]{tail}");
                e.file.clone_from(file);
            }
            break;
        }
        e
    }
}

/// `path` with `a/../` taken out, so messages name `images/common/demo.toml`, not
/// `images/virt/../common/demo.toml`.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Append the fragments `includes` (paths relative to `from`'s folder) to `into`, depth
/// first, each once.
fn include(
    from: &Path,
    includes: &[PathBuf],
    into: &mut RawFragment,
    origins: &mut Origins,
    seen: &mut BTreeSet<PathBuf>,
) -> Result<(), DescError> {
    let dir = from.parent().unwrap_or(Path::new("."));
    for (i, inc) in includes.iter().enumerate() {
        let path = lexical(&dir.join(inc));
        let field = format!("include[{i}]");
        let canon = fs::canonicalize(&path)
            .map_err(|e| DescError::new(from, &field, format!("cannot read `{}`: {e}", inc.display())))?;
        if !seen.insert(canon) {
            return Err(DescError::new(
                from,
                field,
                format!("`{}` is included twice (or includes itself)", inc.display()),
            ));
        }
        if seen.len() > MAX_INCLUDES {
            return Err(DescError::new(
                from,
                field,
                format!("more than {MAX_INCLUDES} fragments included"),
            ));
        }
        let text = fs::read_to_string(&path)
            .map_err(|e| DescError::new(from, &field, format!("cannot read `{}`: {e}", inc.display())))?;
        let frag: RawFragment = toml::from_str(&text).map_err(|e| DescError::from_toml(&path, &text, &e))?;
        origins.add(&path, &frag);
        let nested = frag.include.clone();
        into.module.extend(frag.module);
        into.server.extend(frag.server);
        into.channel.extend(frag.channel);
        into.shared.extend(frag.shared);
        include(&path, &nested, into, origins, seen)?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    name: String,
    board: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    package: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    package: String,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: String,
    package: Option<String>,
    file: Option<PathBuf>,
}

impl System {
    /// Read every module's bytes, in order. File modules are read from their path;
    /// `package_elf` says where a package module's built ELF is (building it if need be).
    pub fn read_modules(
        &self,
        mut package_elf: impl FnMut(&ModuleDesc, &str) -> Result<PathBuf, String>,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        for m in &self.modules {
            let path = match &m.source {
                ModuleSource::Package(p) => package_elf(m, p)?,
                ModuleSource::File(f) => f.clone(),
                ModuleSource::Table => {
                    out.push(self.servers.table());
                    continue;
                }
                ModuleSource::Bytes(b) => {
                    out.push(b.clone());
                    continue;
                }
            };
            out.push(fs::read(&path).map_err(|e| format!("module `{}`: {}: {e}", m.name, path.display()))?);
        }
        Ok(out)
    }
}

/// Check `[[module]]` number `i`.
fn parse_module(file: &Path, i: usize, m: &RawModule, names: &mut BTreeSet<String>) -> Result<ModuleDesc, DescError> {
    let err = |field: String, problem: String| DescError::new(file, field, problem);
    let field = format!("module[{i}]");
    if !valid_name(&m.name) {
        return Err(err(
            format!("{field}.name"),
            format!("`{}` must be 1..={NAME_LEN} letters, digits, `-`, `_` or `.`", m.name),
        ));
    }
    if !names.insert(m.name.clone()) {
        return Err(err(
            format!("{field}.name"),
            format!("module `{}` is listed twice", m.name),
        ));
    }
    let source = match (&m.package, &m.file) {
        (Some(p), None) if valid_package(p) => ModuleSource::Package(p.clone()),
        (Some(p), None) => {
            return Err(err(
                format!("{field}.package"),
                format!("`{p}` is not a Cargo package name"),
            ));
        }
        (None, Some(f)) => {
            let path = file.parent().unwrap_or(Path::new(".")).join(f);
            if !path.is_file() {
                return Err(err(
                    format!("{field}.file"),
                    format!("`{}` does not exist", path.display()),
                ));
            }
            ModuleSource::File(path)
        }
        _ => return Err(err(field, "give exactly one of `package` or `file`".into())),
    };
    Ok(ModuleDesc {
        name: m.name.clone(),
        source,
    })
}

/// The boot modules `raw` needs fit in a boot image.
fn module_budget(file: &Path, raw: &Raw) -> Result<(), DescError> {
    let initrds = raw.vm.iter().filter(|v| v.has_initrd()).count();
    let sched = usize::from(raw.sched.is_some());
    let total = raw.module.len() + raw.server.len() + 3 * raw.vm.len() + initrds + sched + 1;
    if total > MAX_MODULES {
        return Err(DescError::new(
            file,
            "module",
            format!(
                "{} modules, {} servers and {} VMs (3 modules each, 4 with an initrd) given; with the system table{} that is {total} boot modules, at most {MAX_MODULES} fit in a boot image",
                raw.module.len(),
                raw.server.len(),
                raw.vm.len(),
                if sched == 1 {
                    " and the scheduling policy's configuration"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

/// Give each VM's VMM (`vmms[i]` is VM `i`'s) its guest program, configuration and
/// initrd as boot modules (appended to `modules`) and the GICv2 virtual CPU interface.
fn give_vms(
    file: &Path,
    vms: &[VmDesc],
    vmms: &mut [crate::ServerDesc],
    modules: &mut Vec<ModuleDesc>,
    names: &mut BTreeSet<String>,
) -> Result<(), DescError> {
    for (i, (vm, vmm)) in vms.iter().zip(vmms).enumerate() {
        let initrd = vm
            .initrd
            .as_ref()
            .map(|f| ("initrd", vm.initrd_module(), ModuleSource::File(f.clone())));
        for (grant, name, source) in [
            ("guest", vm.guest_module(), vm.guest.clone()),
            ("vm-config", vm.config_module(), ModuleSource::Bytes(vm.config.clone())),
        ]
        .into_iter()
        .chain(initrd)
        {
            if !names.insert(name.clone()) {
                return Err(DescError::new(
                    file,
                    format!("vm[{i}].name"),
                    format!("its module `{name}` is already the name of a server or module"),
                ));
            }
            vmm.modules.push((grant.to_string(), modules.len() as u64));
            modules.push(ModuleDesc { name, source });
        }
        vmm.vgic = true;
    }
    Ok(())
}

/// Check `[sched]`, if any, against the board, the VMs (checked on their own) and the
/// `[[server]]`s, and add its channel to `raw.channel`.
fn plan_sched(file: &Path, board: &Board, raw: &mut Raw) -> Result<Option<SchedDesc>, DescError> {
    let Some(sched) = &raw.sched else { return Ok(None) };
    let desc = crate::sched::check(file, board, sched, &raw.vm, &raw.server, &raw.channel)?;
    raw.channel.push(crate::sched::channel(sched, &desc, &raw.vm));
    Ok(Some(desc))
}

/// Give the scheduling policy server its configuration (a boot module appended to
/// `modules`), the board's user timer, and every core's SchedControl.
fn give_sched(
    file: &Path,
    board: &Board,
    sched: &SchedDesc,
    server: &mut crate::ServerDesc,
    modules: &mut Vec<ModuleDesc>,
    names: &mut BTreeSet<String>,
) -> Result<(), DescError> {
    let name = sched.config_module(&server.name);
    if !names.insert(name.clone()) {
        return Err(DescError::new(
            file,
            "sched.server",
            format!("its configuration's module `{name}` is already the name of a server or module"),
        ));
    }
    server
        .modules
        .push((crate::sched::CONFIG_GRANT.to_string(), modules.len() as u64));
    modules.push(ModuleDesc {
        name,
        source: ModuleSource::Bytes(sched.config.clone()),
    });
    // The timer is a private line no `irq = [...]` may name: it comes only this way.
    server.irqs.push((crate::sched::TIMER_GRANT.to_string(), sched.timer));
    server.sched_control = (0..board.board.cpus).collect();
    Ok(())
}

/// The `Vmm` channels (`idl/vmm.idl`): served by a VM (VM `i` is server
/// `servers_given + i`), named `vmm` (where the VMM looks), and one for every VM that
/// does not start by itself (`autostart = false`: nobody else could start it); at most
/// one VM takes the console's focus at boot.
fn control_channels(file: &Path, servers: &Servers, servers_given: usize, vms: &[RawVm]) -> Result<(), DescError> {
    for (i, ch) in servers.channels.iter().enumerate() {
        if ch.interface != "Vmm" {
            continue;
        }
        if ch.server < servers_given {
            return Err(DescError::new(
                file,
                format!("channel[{i}].server"),
                format!(
                    "`{}` is no VM: only a `[[vm]]`'s VMM serves `Vmm`",
                    servers.servers[ch.server].name
                ),
            ));
        }
        if ch.name != "vmm" {
            return Err(DescError::new(
                file,
                format!("channel[{i}].name"),
                format!(
                    "a VM's `Vmm` channel is named `vmm` (its VMM looks it up so), not `{}`",
                    ch.name
                ),
            ));
        }
    }
    if let Some(second) = vms.iter().enumerate().filter(|(_, v)| v.takes_focus()).nth(1) {
        return Err(DescError::new(
            file,
            format!("vm[{}].focus", second.0),
            "only one VM can take the console's focus at boot".to_string(),
        ));
    }
    for (i, v) in vms.iter().enumerate() {
        let controlled = servers
            .channels
            .iter()
            .any(|ch| ch.interface == "Vmm" && ch.server == servers_given + i);
        if controlled && v.halt_on_exit {
            return Err(DescError::new(
                file,
                format!("vm[{i}].halt_on_exit"),
                format!(
                    "`{}` has a `Vmm` channel: its VMM stays when the guest ends (for its controller), so it never exits to halt the system",
                    v.name()
                ),
            ));
        }
        if !v.autostarts() && !controlled {
            return Err(DescError::new(
                file,
                format!("vm[{i}].autostart"),
                format!(
                    "`{}` does not start by itself and has no `Vmm` channel whose clients could start it",
                    v.name()
                ),
            ));
        }
    }
    Ok(())
}

/// An error about server `n` or later, which is VM `n - servers` (its VMM), named so;
/// its `mmio[k]` and `irq[k]` are the VM's pass-through devices.
fn vm_field(mut e: DescError, servers: usize, vms: &[RawVm]) -> DescError {
    if let Some(rest) = e.field.strip_prefix("server[")
        && let Some((n, tail)) = rest.split_once(']')
        && let Ok(n) = n.parse::<usize>()
        && n >= servers
    {
        let vm = n - servers;
        let index = |t: &str, prefix: &str| {
            let (k, rest) = t.strip_prefix(prefix)?.split_once(']')?;
            Some((k.parse::<usize>().ok()?, rest.to_string()))
        };
        let tail = if let Some((k, rest)) = index(tail, ".mmio[") {
            format!(".passthrough[{k}]{rest}")
        } else if let Some((k, rest)) = index(tail, ".irq[") {
            // The k-th device that has a line.
            let device = vms.get(vm).and_then(|v| {
                v.passthrough
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.irq.is_some())
                    .nth(k)
                    .map(|(i, _)| i)
            });
            format!(
                ".passthrough[{}].irq{}",
                device.unwrap_or(k),
                rest.trim_start_matches(".line")
            )
        } else {
            tail.to_string()
        };
        e.field = format!("vm[{vm}]{tail}");
    }
    e
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_LEN
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

pub(crate) fn valid_package(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

impl System {
    /// Read and check a description. `platforms_dir` is where boards live.
    pub fn load(file: &Path, platforms_dir: &Path) -> Result<Self, DescError> {
        let text = fs::read_to_string(file).map_err(|e| DescError::new(file, "", format!("cannot read: {e}")))?;
        Self::parse(file, &text, platforms_dir)
    }

    /// Check description text that claims to come from `file`.
    pub fn parse(file: &Path, text: &str, platforms_dir: &Path) -> Result<Self, DescError> {
        let mut raw: Raw = toml::from_str(text).map_err(|e| DescError::from_toml(file, text, &e))?;
        // Fragments: their entries follow the description's own; errors name the file
        // and index an entry came from.
        let mut origins = Origins::default();
        let mut merged = RawFragment {
            include: Vec::new(),
            module: core::mem::take(&mut raw.module),
            server: core::mem::take(&mut raw.server),
            channel: core::mem::take(&mut raw.channel),
            shared: core::mem::take(&mut raw.shared),
        };
        origins.add(file, &merged);
        include(file, &raw.include, &mut merged, &mut origins, &mut BTreeSet::new())?;
        (raw.module, raw.server, raw.channel, raw.shared) =
            (merged.module, merged.server, merged.channel, merged.shared);
        let mut s = Self::check_raw(file, raw, platforms_dir)
            .map_err(|e| if e.file == file { origins.locate(e) } else { e })?;
        s.origins = origins;
        Ok(s)
    }

    /// Check the channels against the IDL records the servers' programs declare
    /// (`records[i]` for server `i`; see [`crate::idl_records`]); errors name the file
    /// (the description or a fragment) the entry is in.
    pub fn check_interfaces(&self, records: &[Vec<gaon_abi::system::IdlRecord>]) -> Result<(), DescError> {
        self.servers
            .check_interfaces(&self.file, records)
            .map_err(|e| self.origins.locate(self.sched_field(e)))
    }

    /// An error about the `[sched]` channel, which the description does not list, named
    /// after what made it: `sched.server` for its server end, `vm[i].sched` for a
    /// client's.
    fn sched_field(&self, mut e: DescError) -> DescError {
        let Some(sched) = &self.sched else { return e };
        let Some(tail) = e.field.strip_prefix(&format!("channel[{}]", sched.channel)) else {
            return e;
        };
        let client = tail
            .strip_prefix(".clients[")
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|k| k.parse::<usize>().ok())
            .and_then(|k| sched.vms.get(k));
        e.field = match client {
            Some(i) => format!("vm[{i}].sched"),
            None => "sched.server".into(),
        };
        e
    }

    /// Check `[system]`, `[kernel]` and `[root]`, and load the board.
    fn check_head(file: &Path, raw: &Raw, platforms_dir: &Path) -> Result<Board, DescError> {
        let err = |field: &str, problem: String| DescError::new(file, field, problem);
        if !valid_name(&raw.system.name) {
            return Err(err(
                "system.name",
                format!(
                    "`{}` must be 1..={NAME_LEN} letters, digits, `-`, `_` or `.`",
                    raw.system.name
                ),
            ));
        }
        let board = Board::load(platforms_dir, &raw.system.board).map_err(|e| {
            if e.file == Board::path(platforms_dir, &raw.system.board) && e.field.is_empty() {
                err("system.board", e.problem.clone())
            } else {
                e
            }
        })?;
        if let Some(folder) = file.parent().and_then(Path::file_name).and_then(|f| f.to_str())
            && folder != raw.system.board
            && file
                .parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .is_some_and(|p| p == "images")
        {
            return Err(err(
                "system.board",
                format!(
                    "is `{}` but the description lives in images/{folder}/",
                    raw.system.board
                ),
            ));
        }
        for (field, p) in [
            ("kernel.package", &raw.kernel.package),
            ("root.package", &raw.root.package),
        ] {
            if !valid_package(p) {
                return Err(err(field, format!("`{p}` is not a Cargo package name")));
            }
        }
        if let Some(f) = raw.kernel.features.iter().find(|f| !valid_package(f)) {
            return Err(err("kernel.features", format!("`{f}` is not a Cargo feature name")));
        }
        Ok(board)
    }

    fn check_raw(file: &Path, mut raw: Raw, platforms_dir: &Path) -> Result<Self, DescError> {
        let err = |field: &str, problem: String| DescError::new(file, field, problem);
        let board = Self::check_head(file, &raw, platforms_dir)?;
        crate::sched::count(file, raw.sched.as_ref(), &raw.vm)?;
        module_budget(file, &raw)?;
        // A VM is checked on its own, then becomes a server (its VMM).
        let mut vms = Vec::new();
        for (i, v) in raw.vm.iter().enumerate() {
            vms.push(crate::vms::check(file, &board, i, v)?);
        }
        let sched = plan_sched(file, &board, &mut raw)?;
        let trace = match &raw.trace {
            Some(t) => Some(crate::trace::check(file, t, &raw.server, &raw.vm)?),
            None => None,
        };
        let servers_given = raw.server.len();
        for (v, d) in raw.vm.iter().zip(&vms) {
            raw.server.push(RawServer::vmm(v, v.name(), d.heap_bits));
        }
        let mut names = BTreeSet::new();
        let mut modules = Vec::new();
        for (i, m) in raw.module.iter().enumerate() {
            modules.push(parse_module(file, i, m, &mut names)?);
        }
        if let Some(i) = modules.iter().position(|m| m.name == SYSTEM_MODULE) {
            return Err(err(
                &format!("module[{i}].name"),
                format!("`{SYSTEM_MODULE}` is reserved for the system table"),
            ));
        }
        let mut servers = Servers::check(file, &board, &raw.server, &raw.channel, &raw.shared, &mut names)
            .map_err(|e| vm_field(e, servers_given, &raw.vm))?;
        control_channels(file, &servers, servers_given, &raw.vm)?;
        for s in &servers.servers {
            modules.push(ModuleDesc {
                name: s.name.clone(),
                source: s.source.clone(),
            });
        }
        give_vms(
            file,
            &vms,
            &mut servers.servers[servers_given..],
            &mut modules,
            &mut names,
        )?;
        if let Some(sched) = &sched {
            give_sched(
                file,
                &board,
                sched,
                &mut servers.servers[sched.server],
                &mut modules,
                &mut names,
            )?;
        }
        if let Some(t) = &trace {
            servers.servers[t.server].trace = Some((t.classes, t.stop_after_ms, t.output));
        }
        servers
            .check_grant_limits(file, &board)
            .map_err(|e| vm_field(e, servers_given, &raw.vm))?;
        modules.push(ModuleDesc {
            name: SYSTEM_MODULE.into(),
            source: ModuleSource::Table,
        });
        Ok(Self {
            file: file.to_path_buf(),
            name: raw.system.name,
            board,
            kernel_package: raw.kernel.package,
            kernel_features: raw.kernel.features,
            root_package: raw.root.package,
            modules,
            servers,
            vms,
            sched,
            origins: Origins::default(),
        })
    }
}
