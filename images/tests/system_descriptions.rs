//! System description checks, Microkit style: every file under `fixtures/bad/` must be
//! rejected, and its `# expect:` lines must all appear in the error message.

use std::fs;
use std::path::{Path, PathBuf};

use gaon_image::{ModuleSource, System};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn platforms() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../platforms")
}

#[test]
fn every_bad_description_is_rejected_with_its_message() {
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(dir().join("bad"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = fs::read_to_string(&path).unwrap();
        let expects: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expects.is_empty(), "{} has no `# expect:` line", path.display());
        let rel = Path::new("bad").join(path.file_name().unwrap());
        let err = match System::parse(&rel, &text, &platforms()) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        for e in expects {
            assert!(err.contains(e), "{}: error `{err}` lacks `{e}`", path.display());
        }
        assert!(
            err.starts_with(&rel.display().to_string()),
            "error names the file: {err}"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} bad fixtures");
}

#[test]
fn shipped_descriptions_are_valid() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    for board in ["virt", "raspi3b", "zcu102"] {
        let s = System::load(&images.join(board).join("system.toml"), &platforms()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.board.board.name, board);
        assert_eq!(s.kernel_package, "gaon-kernel");
        assert!(s.kernel_features.is_empty(), "the default image has no debug features");
        for name in ["ktest", "fuzz"] {
            let s = System::load(&images.join(board).join(format!("{name}.toml")), &platforms())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.kernel_features, ["consistency-check"], "{board}/{name}");
        }
    }
}

#[test]
fn good_description_with_modules() {
    let s = System::load(&dir().join("good/with-modules.toml"), &platforms()).unwrap();
    assert_eq!(s.modules.len(), 3);
    assert_eq!(s.modules[0].source, ModuleSource::File(dir().join("good/blob.bin")));
    assert_eq!(s.modules[1].source, ModuleSource::Package("gaon-root".into()));
    assert_eq!(s.modules[2].source, ModuleSource::Table);
}

#[test]
fn board_must_match_images_folder() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(images.join("virt/system.toml")).unwrap();
    let err = System::parse(&images.join("raspi3b/system.toml"), &text, &platforms()).unwrap_err();
    assert_eq!(err.field, "system.board");
    assert!(err.problem.contains("lives in images/raspi3b/"), "{err}");
}

fn shipped_virt() -> System {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    System::load(&images.join("virt/system.toml"), &platforms()).unwrap()
}

#[test]
fn packed_table_matches_the_description() {
    use gaon_abi::system::{GrantKind, SystemTable};
    let s = shipped_virt();
    let bytes = s.servers.table();
    // Align like the kernel maps modules (page aligned).
    let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
    zerocopy::IntoBytes::as_mut_bytes(aligned.as_mut_slice())[..bytes.len()].copy_from_slice(&bytes);
    let t = SystemTable::parse(&zerocopy::IntoBytes::as_bytes(aligned.as_slice())[..bytes.len()]).unwrap();
    assert_eq!(t.servers().len(), s.servers.servers.len());
    assert_eq!(t.endpoint_count as usize, s.servers.channels.len());
    let console = &t.servers()[0];
    assert_eq!(gaon_abi::boot::name_bytes(&console.name), b"console");
    let kinds: Vec<_> = console.grants().iter().map(|g| GrantKind::from_raw(g.kind)).collect();
    assert_eq!(
        kinds,
        [
            Some(GrantKind::Serve),
            Some(GrantKind::Irq),
            Some(GrantKind::Mmio),
            Some(GrantKind::KernelLog)
        ]
    );
    assert_ne!(
        console.flags & gaon_abi::system::SERVER_DEBUG,
        0,
        "the kernel log needs the Debug cap"
    );
    assert_eq!(console.grants()[1].a, 33);
    assert_eq!(console.grants()[2].a, 0x0900_0000);
    // Client k of a channel has badge k + 1.
    let systest = t
        .servers()
        .iter()
        .find(|e| gaon_abi::boot::name_bytes(&e.name) == b"systest")
        .unwrap();
    let console_end = systest
        .grants()
        .iter()
        .find(|g| gaon_abi::boot::name_bytes(&g.name) == b"console")
        .unwrap();
    assert_eq!((console_end.kind, console_end.b), (GrantKind::Client as u32, 4));
    assert_ne!(systest.flags, 0, "systest halts the system when it exits");
    // Every module but the table is a server or a [[module]].
    assert_eq!(s.modules.last().unwrap().source, ModuleSource::Table);
}

#[test]
fn a_corrupt_table_is_refused() {
    use gaon_abi::system::{SystemTable, TableError};
    let s = shipped_virt();
    let mut aligned = vec![0u64; s.servers.table().len().div_ceil(8)];
    let len = s.servers.table().len();
    let bytes = zerocopy::IntoBytes::as_mut_bytes(aligned.as_mut_slice());
    bytes[..len].copy_from_slice(&s.servers.table());
    assert_eq!(SystemTable::parse(&bytes[..100]).err(), Some(TableError::Truncated));
    bytes[8] = 9; // version
    assert_eq!(SystemTable::parse(&bytes[..len]).err(), Some(TableError::BadVersion(9)));
}

fn record(role: u32, name: &str, hash: u64) -> gaon_abi::system::IdlRecord {
    gaon_abi::system::IdlRecord::new(role, name, hash)
}

/// Records for the virt servers in order: console, greeter, greeter-client, kv,
/// kv-client, fragile, systest.
fn records(kv_client_hash: u64, console_serves: bool) -> Vec<Vec<gaon_abi::system::IdlRecord>> {
    use gaon_abi::system::{ROLE_SERVES as S, ROLE_USES as U};
    vec![
        if console_serves {
            vec![record(S, "Console", 1)]
        } else {
            vec![]
        },
        vec![record(S, "Greeter", 4), record(U, "Console", 1)],
        vec![record(U, "Greeter", 4), record(U, "Console", 1)],
        vec![record(S, "Kv", 2), record(U, "Console", 1)],
        vec![record(U, "Kv", kv_client_hash), record(U, "Console", 1)],
        vec![record(S, "Fragile", 3), record(U, "Console", 1)],
        vec![
            record(U, "Console", 1),
            record(U, "Kv", 2),
            record(U, "Fragile", 3),
            record(U, "Greeter", 4),
        ],
    ]
}

#[test]
fn channel_ends_must_agree_on_the_interface() {
    let s = shipped_virt();
    let file = Path::new("images/virt/system.toml");
    s.check_interfaces(&records(2, true)).unwrap();

    let err = s.servers.check_interfaces(file, &records(99, true)).unwrap_err();
    assert_eq!(err.field, "channel[1].clients[0]");
    assert!(
        err.problem.contains(
            "`kv-client` and server `kv` were built from different versions of interface `Kv` (hash 0x63 vs 0x2)"
        ),
        "{err}"
    );

    let err = s.servers.check_interfaces(file, &records(2, false)).unwrap_err();
    assert_eq!(err.field, "channel[0].server");
    assert!(
        err.problem
            .contains("server `console` does not serve interface `Console`")
            && err.problem.contains("it declares none"),
        "{err}"
    );

    let mut r = records(2, true);
    r[6].retain(|x| x.role != gaon_abi::system::ROLE_USES || x.name[0] != b'F');
    let err = s.servers.check_interfaces(file, &r).unwrap_err();
    assert_eq!(err.field, "channel[3].clients[0]");
    assert!(
        err.problem.contains("`systest` does not use interface `Fragile`")
            && err.problem.contains("it declares Console, Kv, Greeter"),
        "{err}"
    );
}

/// A description lists servers, channels and shared memory once in a fragment that
/// every board's description includes (`include = [...]`, paths relative to the
/// including file, fragments may include fragments).
#[test]
fn fragments_are_included_and_errors_name_the_fragment() {
    let inc = dir().join("include");
    let s = System::load(&inc.join("main.toml"), &platforms()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = s.servers.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["console", "greeter", "kv"],
        "the description's own first, then in include order"
    );
    assert_eq!(s.servers.channels.len(), 1);

    let err = System::load(&inc.join("bad-entry.toml"), &platforms()).unwrap_err();
    assert_eq!(err.file, inc.join("bad-fragment.toml"), "{err}");
    assert_eq!(err.field, "server[1].priority", "the index in the fragment: {err}");

    let err = System::load(&inc.join("cycle.toml"), &platforms()).unwrap_err();
    assert!(err.problem.contains("included twice (or includes itself)"), "{err}");
    assert_eq!(err.file, inc.join("cycle-fragment.toml"));

    let err = System::load(&inc.join("missing.toml"), &platforms()).unwrap_err();
    assert_eq!(err.field, "include[0]");
    assert!(err.problem.contains("cannot read `no-such-file.toml`"), "{err}");

    // A fragment holds servers, channels, shared memory and modules, nothing else.
    let err = System::load(&inc.join("fragment-unknown-field.toml"), &platforms()).unwrap_err();
    assert_eq!(err.file, inc.join("fragment-with-system.toml"), "{err}");
    assert!(err.to_string().contains("system"), "{err}");
}

/// The servers of the default system are listed once and run on every board.
#[test]
fn every_board_runs_the_common_servers() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    let common = System::load(&images.join("virt/system.toml"), &platforms()).unwrap();
    let want: Vec<String> = common.servers.servers.iter().map(|s| s.name.clone()).collect();
    assert!(want.contains(&"greeter".to_string()) && want.contains(&"systest".to_string()));
    for board in ["raspi3b", "zcu102"] {
        let s = System::load(&images.join(board).join("system.toml"), &platforms()).unwrap();
        let got: Vec<String> = s.servers.servers.iter().map(|s| s.name.clone()).collect();
        assert_eq!(got, want, "{board}");
    }
}

/// The other way round: an interface a program declares must have a channel in the
/// description (a program that prints must be a console client), unless it declares it
/// optional.
#[test]
fn declared_interfaces_need_a_channel_unless_optional() {
    use gaon_abi::system::{ROLE_OPTIONAL, ROLE_PRINTS, ROLE_SERVES, ROLE_USES};
    let s = shipped_virt();

    let mut r = records(2, true);
    r[3].push(record(ROLE_SERVES, "Extra", 9));
    let err = s.check_interfaces(&r).unwrap_err();
    assert_eq!(err.field, "server[2]", "kv is the common file's third server: {err}");
    assert!(err.file.ends_with("common/examples.toml"), "{err}");
    assert!(
        err.problem
            .contains("`kv` serves interface `Extra` (`libl4::serves!`) but no [[channel]] has it serve `Extra`"),
        "{err}"
    );
    r[3].push(record(ROLE_SERVES | ROLE_OPTIONAL, "Extra", 9));
    s.check_interfaces(&r).unwrap();

    let mut r = records(2, true);
    r[4].push(record(ROLE_USES, "Greeter", 4));
    let err = s.check_interfaces(&r).unwrap_err();
    assert!(
        err.problem
            .contains("`kv-client` uses interface `Greeter` (declared with `libl4::uses!`) but is a client of no `Greeter` channel"),
        "{err}"
    );

    // The console server printing (not a client of its own channel): its output would
    // go nowhere.
    let mut r = records(2, true);
    r[0].push(record(ROLE_USES | ROLE_PRINTS, "Console", 1));
    let err = s.check_interfaces(&r).unwrap_err();
    assert_eq!(err.field, "server[0]");
    assert!(err.file.ends_with("virt/system.toml"), "{err}");
    assert!(
        err.problem
            .contains("it prints (`print!`/`println!`), and its output would go nowhere"),
        "{err}"
    );
    r[0].push(record(ROLE_USES | ROLE_OPTIONAL, "Console", 1));
    s.check_interfaces(&r).unwrap();
}

#[test]
fn a_vm_becomes_its_vmm_server_and_two_modules() {
    use gaon_abi::system::{VM_CONFIG_MAGIC, VM_TESTDEV, VmConfig};
    use zerocopy::FromBytes;
    let text = r#"
[system]
name = "vms"
board = "virt"
[kernel]
package = "gaon-kernel"
[root]
package = "gaon-root"
[[server]]
name = "console"
package = "gaon-console"
priority = 200
[[vm]]
name = "guest1"
guest = { package = "gaon-testguest" }
memory_mib = 16
vcpus = 2
bootargs = "console=ttyAMA0"
priority = 100
core = 1
devices = ["testdev"]
[[channel]]
interface = "Console"
server = "console"
clients = ["guest1"]
"#;
    let s = System::parse(Path::new("vms.toml"), text, &platforms()).unwrap_or_else(|e| panic!("{e}"));
    let vmm = &s.servers.servers[1];
    assert_eq!(vmm.name, "guest1");
    assert_eq!(vmm.source, ModuleSource::Package("gaon-vmm".into()));
    assert_eq!((vmm.priority, vmm.core, vmm.vmids), (100, 1, 1));
    assert_eq!(vmm.heap_bits, 25, "16 MiB of RAM and the VMM's objects: a 32 MiB heap");
    let names: Vec<&str> = s.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["console", "guest1", "guest1-guest", "guest1-config", "system"]);
    assert_eq!(vmm.modules, [("guest".to_string(), 2), ("vm-config".to_string(), 3)]);
    assert!(vmm.vgic);
    let ModuleSource::Bytes(bytes) = &s.modules[3].source else {
        panic!("the configuration is generated")
    };
    let c = VmConfig::read_from_bytes(bytes).unwrap();
    assert_eq!(c.magic, VM_CONFIG_MAGIC);
    assert_eq!(
        (c.ram_base, c.ram_size, c.vcpus, c.flags),
        (0x4000_0000, 16 << 20, 2, VM_TESTDEV)
    );
    assert!(c.bootargs.starts_with(b"console=ttyAMA0\0"));
    // The table gives the VMM its modules by index and the GICv2 pages.
    let table = s.servers.table();
    let t = gaon_abi::system::SystemTable::parse(&table).unwrap();
    let grants: Vec<(String, u32, u64)> = t.servers()[1]
        .grants()
        .iter()
        .map(|g| {
            (
                String::from_utf8_lossy(gaon_abi::boot::name_bytes(&g.name)).to_string(),
                g.kind,
                g.a,
            )
        })
        .collect();
    assert_eq!(
        grants,
        [
            ("console".to_string(), 2, 0),
            ("guest".to_string(), 7, 2),
            ("vm-config".to_string(), 7, 3),
            ("gicv0".to_string(), 8, 0),
            ("gicv1".to_string(), 8, 1)
        ]
    );
}

/// A description with a scheduling policy server: `console`, `sched`, and three VMs of
/// which `rtvm` and `bulk` have a `sched` table. `[sched]` and the VMs' tables are
/// `SCHED` and `RT`/`BULK` (replaced to make variants).
const SCHED_SYSTEM: &str = r#"
[system]
name = "rt"
board = "virt"
[kernel]
package = "gaon-kernel"
[root]
package = "gaon-root"
[[server]]
name = "console"
package = "gaon-console"
priority = 200
[[server]]
name = "sched"
package = "gaon-sched-server"
priority = 150
SCHED
[[vm]]
name = "rtvm"
guest = { package = "gaon-testguest" }
memory_mib = 16
vcpus = 2
priority = 100
core = 1
RT
[[vm]]
name = "plain"
guest = { package = "gaon-testguest" }
memory_mib = 16
priority = 120
[[vm]]
name = "bulk"
guest = { package = "gaon-testguest" }
memory_mib = 16
priority = 90
core = 2
BULK
[[channel]]
interface = "Console"
server = "console"
clients = ["sched", "rtvm", "plain", "bulk"]
"#;

fn sched_system(sched: &str, rt: &str, bulk: &str) -> Result<System, gaon_platform::DescError> {
    let text = SCHED_SYSTEM
        .replace("SCHED", sched)
        .replace("RT", rt)
        .replace("BULK", bulk);
    System::parse(Path::new("rt.toml"), &text, &platforms())
}

fn grant_list(t: &gaon_abi::system::SystemTable, server: usize) -> Vec<(String, u32, u64, u64)> {
    t.servers()[server]
        .grants()
        .iter()
        .map(|g| {
            (
                String::from_utf8_lossy(gaon_abi::boot::name_bytes(&g.name)).to_string(),
                g.kind,
                g.a,
                g.b,
            )
        })
        .collect()
}

#[test]
fn the_sched_server_gets_its_channel_timer_cores_and_configuration() {
    use gaon_abi::system::{GrantKind as G, SCHED_CONFIG_MAGIC, SCHED_CONFIG_VERSION, SCHED_EXACT_DEBIT, SchedConfig};
    use zerocopy::FromBytes;
    let s = sched_system(
        "[sched]\nserver = \"sched\"\ndebit = \"exact\"\nborrow_us = 2000\nll_boost = false",
        "sched = { sbt_us = 100, usbt_us = 2300 }",
        "sched = { weight = 512, cap = 50 }",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let desc = s.sched.as_ref().unwrap();
    assert_eq!((desc.server, desc.vms.as_slice(), desc.timer), (1, &[0, 2][..], 30));

    // The channel: served by `sched`, the managed VMMs (servers 2 and 4) its clients.
    let ch = &s.servers.channels[desc.channel];
    assert_eq!(desc.channel, s.servers.channels.len() - 1, "after the listed channels");
    assert_eq!((ch.name.as_str(), ch.interface.as_str()), ("sched", "Sched"));
    assert_eq!((ch.server, ch.clients.as_slice()), (1, &[2, 4][..]));

    // The configuration: a boot module after the VMs', before the table.
    let names: Vec<&str> = s.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names[names.len() - 2..],
        ["sched-config", "system"],
        "the configuration is the last module before the table"
    );
    let ModuleSource::Bytes(bytes) = &s.modules[names.len() - 2].source else {
        panic!("the configuration is generated")
    };
    let c = SchedConfig::read_from_bytes(bytes).unwrap();
    assert_eq!((c.magic, c.version), (SCHED_CONFIG_MAGIC, SCHED_CONFIG_VERSION));
    assert_eq!(c.flags, SCHED_EXACT_DEBIT, "exact debit, LL-boost off");
    assert_eq!((c.borrow_us, c.vm_count), (2000, 2));
    assert_eq!(c.top_priority, 89, "one below the lowest managed VM (bulk, 90)");
    let rt = &c.vms[0];
    assert_eq!(gaon_abi::boot::name_bytes(&rt.name), b"rtvm");
    assert_eq!((rt.badge, rt.weight, rt.cap_pct), (1, 256, 0), "the defaults");
    assert_eq!((rt.sbt_us, rt.usbt_us, rt.vcpus, rt.core), (100, 2300, 2, 1));
    let bulk = &c.vms[1];
    assert_eq!(gaon_abi::boot::name_bytes(&bulk.name), b"bulk");
    assert_eq!((bulk.badge, bulk.weight, bulk.cap_pct), (2, 512, 50));
    assert_eq!((bulk.sbt_us, bulk.usbt_us, bulk.vcpus, bulk.core), (0, 0, 1, 2));
    assert!(c.vms[2..].iter().all(|v| v.badge == 0), "unused entries are zero");

    // The table: the server's grants, then a `sched` client end for each managed VMM.
    let table = s.servers.table();
    let t = gaon_abi::system::SystemTable::parse(&table).unwrap();
    let config = names.len() as u64 - 2;
    let grant = |n: &str, k: G, a: u64, b: u64| (n.to_string(), k as u32, a, b);
    assert_eq!(
        grant_list(t, 1),
        [
            grant("console", G::Client, 0, 1),
            grant("sched", G::Serve, 1, 0),
            grant("timer", G::Irq, 30, 0),
            grant("sched-config", G::Module, config, 0),
            grant("sched_control.0", G::SchedControl, 0, 0),
            grant("sched_control.1", G::SchedControl, 1, 0),
            grant("sched_control.2", G::SchedControl, 2, 0),
            grant("sched_control.3", G::SchedControl, 3, 0),
        ]
    );
    for (server, badge) in [(2, Some(1)), (3, None), (4, Some(2))] {
        let got = grant_list(t, server).into_iter().find(|g| g.0 == "sched");
        assert_eq!(got, badge.map(|b| grant("sched", G::Client, 1, b)), "server {server}");
    }
}

#[test]
fn sched_defaults_and_the_admission_bound() {
    use gaon_abi::system::{SCHED_LL_BOOST, SchedConfig};
    use zerocopy::FromBytes;
    // Exactly 50 % of core 2 (rtvm's vCPU 1 and bulk's vCPU 0): admitted.
    let s = sched_system(
        "[sched]\nserver = \"sched\"",
        "sched = { sbt_us = 1000, usbt_us = 4000 }",
        "sched = { sbt_us = 500, usbt_us = 2000 }",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ModuleSource::Bytes(bytes) = &s.modules[s.modules.len() - 2].source else {
        panic!("the configuration is generated")
    };
    let c = SchedConfig::read_from_bytes(bytes).unwrap();
    assert_eq!((c.flags, c.borrow_us), (SCHED_LL_BOOST, 0), "tick debit, LL-boost on");
    // One more µs is over.
    let err = sched_system(
        "[sched]\nserver = \"sched\"",
        "sched = { sbt_us = 1000, usbt_us = 4000 }",
        "sched = { sbt_us = 501, usbt_us = 2000 }",
    )
    .unwrap_err();
    assert_eq!(err.field, "vm[2].sched");
    assert!(
        err.problem.contains(
            "on core 2 add up to 50.05 % of the core (vCPU 0 of `bulk` included); at most 50 % may be reserved"
        ),
        "{err}"
    );
}

#[test]
fn sched_channel_errors_name_what_made_it() {
    use gaon_abi::system::{ROLE_OPTIONAL as O, ROLE_SERVES as S, ROLE_USES as U};
    let s = sched_system(
        "[sched]\nserver = \"sched\"",
        "sched = { sbt_us = 100, usbt_us = 2300 }",
        "sched = {}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let vmm = vec![record(U, "Console", 1), record(U | O, "Sched", 7)];
    let good = vec![
        vec![record(S, "Console", 1)],
        vec![record(S, "Sched", 7), record(U, "Console", 1)],
        vmm.clone(),
        vmm.clone(),
        vmm,
    ];
    s.check_interfaces(&good).unwrap_or_else(|e| panic!("{e}"));

    let mut r = good.clone();
    r[1].remove(0);
    let err = s.check_interfaces(&r).unwrap_err();
    assert_eq!(err.field, "sched.server");
    assert!(
        err.problem.contains("server `sched` does not serve interface `Sched`"),
        "{err}"
    );

    let mut r = good;
    r[4][1] = record(U, "Sched", 8);
    let err = s.check_interfaces(&r).unwrap_err();
    assert_eq!(err.field, "vm[2].sched", "bulk, client 1 of the channel");
    assert!(
        err.problem
            .contains("`bulk` and server `sched` were built from different versions of interface `Sched`"),
        "{err}"
    );
}

/// `[sched]` belongs to the description itself, never to a fragment.
#[test]
fn a_fragment_has_no_sched_table() {
    let inc = dir().join("include");
    let err = System::load(&inc.join("sched-in-fragment.toml"), &platforms()).unwrap_err();
    assert_eq!(err.file, inc.join("fragment-with-sched.toml"), "{err}");
    assert!(err.problem.contains("unknown field `sched`"), "{err}");
}

/// Every description under `images/<board>/` loads. Those that use files under
/// `build/` (a Linux kernel and its initramfs, built by `cargo xtask`) are checked only
/// where those files exist.
#[test]
fn every_shipped_description_loads() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for board in ["virt", "raspi3b", "zcu102"] {
        let mut files: Vec<_> = fs::read_dir(images.join(board))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let needs_build = text.contains("../../build/");
            match System::load(&file, &platforms()) {
                Ok(_) => checked += 1,
                // A file `cargo xtask` makes in build/ on demand (the Linux guest, its
                // System.map, a benchmark's initramfs) is not there yet.
                Err(e)
                    if needs_build
                        && e.to_string().contains("/build/linux/")
                        && e.to_string().contains("(os error 2)") =>
                {
                    eprintln!("skipped (not built): {e}");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(checked >= 9, "only {checked} descriptions checked");
}

#[test]
fn the_trace_server_gets_trace_control_with_its_classes_and_the_rings() {
    use gaon_abi::system::GrantKind as G;
    use gaon_abi::trace::Class;
    let text = "[system]\nname = \"t\"\nboard = \"virt\"\n[kernel]\npackage = \"gaon-kernel\"\n[root]\npackage = \"gaon-root\"\n\
        [[server]]\nname = \"trace\"\npackage = \"gaon-trace-server\"\npriority = 240\nbudget_us = 500\nperiod_us = 10000\n\
        [trace]\nserver = \"trace\"\nclasses = [\"sched\", \"ipc\"]\n";
    let s = System::parse(Path::new("t.toml"), text, &platforms()).unwrap_or_else(|e| panic!("{e}"));
    let mask = (Class::SCHED | Class::IPC | Class::THREAD).bits();
    assert_eq!(s.servers.servers[0].trace, Some((mask, 0, 0)));
    let bytes = s.servers.table();
    let t = gaon_abi::system::SystemTable::parse(&bytes).expect("a valid table");
    let g = grant_list(t, 0);
    assert!(
        g.contains(&("trace_control".into(), G::TraceControl as u32, mask, 0)),
        "{g:?}"
    );
    assert!(g.contains(&("trace_rings".into(), G::TraceRings as u32, 0, 0)), "{g:?}");
    // Every class by default.
    let all = System::parse(
        Path::new("t.toml"),
        &text.replace("classes = [\"sched\", \"ipc\"]\n", ""),
        &platforms(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.servers.servers[0].trace, Some((Class::all().bits(), 0, 0)));
}
