//! The root server: the first user program, given every resource at boot. It reads the
//! system table the image tool packed from the system description (boot module
//! `system`), builds every server it lists (see `build`), starts them, and then
//! supervises them: a server that faults or exits is reported and reclaimed, and the
//! clients waiting on it get an error instead of hanging.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[cfg(target_os = "none")]
mod spawn;
#[cfg(target_os = "none")]
mod supervise;

#[cfg(target_os = "none")]
mod app {
    use gaon_abi::boot::name_bytes;
    use gaon_abi::bootinfo::slot;
    use gaon_abi::system::{SYSTEM_MODULE, SystemTable};
    use heapless::Vec;
    use libl4::alloc::{Allocator, Slots, VaRange};
    use libl4::cap::{CNode, Untyped, VSpace};
    use libl4::server::Server;
    use libl4::{ObjType, debug_println};

    use crate::spawn::{Shared, build};
    use crate::supervise::Supervisor;

    /// Where the root maps what it needs in its own VSpace.
    const MAP_BASE: u64 = 0x10_0000_0000;
    const MAP_END: u64 = 0x20_0000_0000;

    fn name(n: &[u8; gaon_abi::boot::NAME_LEN]) -> &str {
        core::str::from_utf8(name_bytes(n)).unwrap_or("?")
    }

    pub fn run() -> u8 {
        let Some(bi) = libl4::start::boot_info() else {
            debug_println!("root: no boot info");
            return 1;
        };
        let mut a = Allocator::new(
            CNode(slot::CNODE),
            VSpace(slot::VSPACE),
            Slots::new(bi.empty.start, bi.empty.end),
            VaRange::new(MAP_BASE, MAP_END),
        );
        a.vmid_pool = Some(libl4::cap::VmidPool(slot::VMID_POOL));
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        for (i, d) in bi.untyped[..n.min(bi.untyped.len())].iter().enumerate() {
            if a.add_untyped(Untyped(bi.untyped_slots.start + i as u64), d).is_err() {
                debug_println!("root: more untyped regions than the allocator tracks; ignoring the rest");
                break;
            }
        }
        // Its name in traces (the kernel recorded its creation at boot).
        let _ = libl4::cap::Tcb(slot::TCB).set_name(b"root");
        let Some(bytes) = libl4::start::boot_module(SYSTEM_MODULE) else {
            debug_println!("root: the boot image has no `{SYSTEM_MODULE}` module: nothing to start");
            return 1;
        };
        let table = match SystemTable::parse(bytes) {
            Ok(t) => t,
            Err(e) => {
                debug_println!("root: the system table is malformed: {e:?}");
                return 1;
            }
        };
        let Ok(supervisor) = a.alloc(ObjType::Endpoint, 0) else {
            debug_println!("root: out of memory");
            return 1;
        };
        let Ok(reply) = a.alloc(ObjType::Reply, 0) else {
            debug_println!("root: out of memory");
            return 1;
        };
        let shared = match Shared::new(&mut a, table) {
            Ok(s) => s,
            Err(e) => {
                debug_println!("root: cannot make the channels and shared memory: {e:?}");
                return 1;
            }
        };
        let mut running = Vec::new();
        for (i, e) in table.servers().iter().enumerate() {
            // The image tool checked `core` against the board; a core that did not come
            // up (a QEMU run with fewer CPUs, a core that failed) leaves it on core 0.
            let core = u64::from(e.core);
            let core = if core < 64 && bi.cpus & (1 << core) != 0 {
                core
            } else {
                debug_println!(
                    "root: server `{}`: core {core} is not up; placed on core 0",
                    name(&e.name)
                );
                0
            };
            match build(&mut a, &shared, e, i as u64, core, supervisor) {
                Ok(r) => {
                    let _ = running.push(r);
                }
                Err(err) => {
                    debug_println!("root: cannot build server `{}`: {err:?}", name(&e.name));
                    return 1;
                }
            }
        }
        for (r, e) in running.iter().zip(table.servers()) {
            if let Err(err) = r.tcb.resume() {
                debug_println!("root: cannot start server `{}`: {err:?}", name(&e.name));
                return 1;
            }
        }
        debug_println!("root: started {} servers", running.len());
        let mut sup = Supervisor::new(table, &shared, running);
        Server {
            ep: supervisor,
            reply,
            cap_slot: None,
        }
        .run(&mut sup)
    }
}

libl4::main!(app::run);
