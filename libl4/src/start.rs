//! What a server was given: the start-info page the root server maps in every server it
//! starts (see `gaon_abi::system`), looked up by the names the system description uses,
//! and `exit`.

use core::sync::atomic::{AtomicU64, Ordering};

use gaon_abi::boot::name_bytes;
use gaon_abi::bootinfo;
use gaon_abi::system::{GrantKind, NamedCap, START_INFO_VADDR, START_MAGIC, StartInfo, server_slot};

use crate::cap::{Endpoint, IrqHandler, Tcb};
use crate::idl::supervisor::SupervisorClient;
use crate::ipc::CPtr;
use crate::rpc::EndpointTransport;

/// The program's `x0` at entry: the boot-info address (root server) or the start-info
/// address (a server the root server started). Set by the runtime before `main`.
static START_ARG: AtomicU64 = AtomicU64::new(0);

/// Record the entry argument (the runtime calls this once, before `main`).
pub fn set_start_arg(x0: u64) {
    START_ARG.store(x0, Ordering::Relaxed);
}

/// The program's `x0` at entry, for programs a parent starts with an argument of its own.
pub fn arg() -> u64 {
    START_ARG.load(Ordering::Relaxed)
}

/// True in the root server (started by the kernel with the boot-info page).
pub fn is_root() -> bool {
    START_ARG.load(Ordering::Relaxed) == bootinfo::BOOTINFO_VADDR
}

/// Where this program's Debug capability is (if it has one): the root server's boot
/// slot, or a server's fixed slot.
pub fn debug_cap() -> CPtr {
    if is_root() {
        bootinfo::slot::DEBUG
    } else {
        server_slot::DEBUG
    }
}

/// The start-info page, if the root server started this program.
pub fn info() -> Option<&'static StartInfo> {
    if START_ARG.load(Ordering::Relaxed) != START_INFO_VADDR {
        return None;
    }
    let info = page();
    (info.magic == START_MAGIC).then_some(info)
}

#[cfg(target_os = "none")]
fn page() -> &'static StartInfo {
    // SAFETY: the root server passes START_INFO_VADDR in x0 only after mapping a
    // read-only start-info page there, which stays mapped for the program's life;
    // `StartInfo` is plain data valid for any bytes.
    unsafe { &*(START_INFO_VADDR as *const StartInfo) }
}

#[cfg(not(target_os = "none"))]
fn page() -> &'static StartInfo {
    unreachable!("host programs have no start-info page")
}

/// This server's name, as the system description gives it.
pub fn name() -> &'static str {
    info().map_or("root", |i| core::str::from_utf8(name_bytes(&i.name)).unwrap_or("?"))
}

/// The named capability `name`, if the description gave this server one.
pub fn named(name: &str) -> Option<&'static NamedCap> {
    info()?.caps().iter().find(|c| name_bytes(&c.name) == name.as_bytes())
}

/// Why a named capability could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The description gives this server nothing by that name.
    NotGiven,
    /// It has that name but is of another kind.
    WrongKind,
}

fn named_kind(name: &str, kind: GrantKind) -> Result<&'static NamedCap, Missing> {
    let c = named(name).ok_or(Missing::NotGiven)?;
    if c.kind == kind as u32 {
        Ok(c)
    } else {
        Err(Missing::WrongKind)
    }
}

/// The endpoint this server serves interface channel `name` on.
pub fn serve(name: &str) -> Result<Endpoint, Missing> {
    named_kind(name, GrantKind::Serve).map(|c| Endpoint(c.cptr))
}

/// The endpoint of a server this program is a client of, by channel name.
pub fn client(name: &str) -> Result<Endpoint, Missing> {
    named_kind(name, GrantKind::Client).map(|c| Endpoint(c.cptr))
}

/// An IRQ handler and the notification bit its interrupts set.
pub fn irq(name: &str) -> Result<(IrqHandler, u64), Missing> {
    named_kind(name, GrantKind::Irq).map(|c| (IrqHandler(c.cptr), c.vaddr))
}

/// The kernel log page (`gaon_abi::klog`), if the description gives it
/// (`kernel_log = true`): its address.
pub fn kernel_log() -> Result<u64, Missing> {
    named_kind("kernel-log", GrantKind::KernelLog).map(|c| c.vaddr)
}

/// A mapping (device memory or shared memory): `(address, bytes)`.
pub fn mapping(name: &str) -> Result<(u64, u64), Missing> {
    let c = named(name).ok_or(Missing::NotGiven)?;
    if c.kind == GrantKind::Mmio as u32 || c.kind == GrantKind::Shared as u32 {
        Ok((c.vaddr, c.size))
    } else {
        Err(Missing::WrongKind)
    }
}

/// A boot module the description gives this server (`GrantKind::Module`: a VM's guest
/// program or configuration), mapped read-only.
pub fn module(name: &str) -> Result<&'static [u8], Missing> {
    let c = named_kind(name, GrantKind::Module)?;
    // SAFETY: the root server mapped `size` bytes read-only at `vaddr` for this server
    // before starting it, and never unmaps them.
    Ok(unsafe { core::slice::from_raw_parts(c.vaddr as *const u8, c.size as usize) })
}

/// A page of the GICv2 virtual CPU interface (`GrantKind::VgicCpu`): its frame
/// capability and physical address, or `None` where the board has none (GICv3).
pub fn vgic_cpu(name: &str) -> Result<Option<(CPtr, u64)>, Missing> {
    let c = named_kind(name, GrantKind::VgicCpu)?;
    Ok((c.cptr != 0).then_some((c.cptr, c.vaddr)))
}

/// A device page given as a frame capability (`GrantKind::DeviceFrame`, a VMM's
/// pass-through device): the capability and the page's physical address.
pub fn device_frame(name: &str) -> Result<(CPtr, u64), Missing> {
    let c = named_kind(name, GrantKind::DeviceFrame)?;
    Ok((c.cptr, c.vaddr))
}

/// The SchedControl capability of a core (`GrantKind::SchedControl`, given to the
/// scheduling policy server): the capability and the core's number, or `None` for a
/// core that did not come up.
pub fn sched_control(name: &str) -> Result<Option<(CPtr, u64)>, Missing> {
    let c = named_kind(name, GrantKind::SchedControl)?;
    Ok((c.cptr != 0).then_some((c.cptr, c.vaddr)))
}

/// The TraceControl capability (`GrantKind::TraceControl`, given to the trace server),
/// the classes of events to record (`gaon_abi::trace::Class` bits) and after how many
/// milliseconds to stop (0: never).
pub fn trace_control(name: &str) -> Result<(crate::cap::TraceControl, u64, u64), Missing> {
    named_kind(name, GrantKind::TraceControl).map(|c| (crate::cap::TraceControl(c.cptr), c.vaddr, c.size))
}

/// The address of the kernel's trace rings (`GrantKind::TraceRings`, mapped read-only:
/// `gaon_abi::trace::RINGS_BYTES`) and where the trace server's stream goes (0: a host
/// file, 1: nowhere).
pub fn trace_rings(name: &str) -> Result<(u64, u64), Missing> {
    named_kind(name, GrantKind::TraceRings).map(|c| (c.vaddr, c.size))
}

/// The server's reply object (for `Server`).
pub const REPLY: CPtr = server_slot::REPLY;
/// The server's own notification, bound to its thread.
pub const NOTIFICATION: CPtr = server_slot::NOTIFICATION;
/// The server's CNode.
pub const CNODE: CPtr = server_slot::CNODE;

/// End this program with `status`. A server tells its supervisor, which reports it and
/// reclaims the server; the root server halts the system. If neither stops this
/// thread (no supervisor, no Tcb capability, the halt refused), it stops itself with a
/// fault rather than spin: see [`stop`].
pub fn exit(status: u8) -> ! {
    if info().is_some() {
        let supervisor = SupervisorClient::new(EndpointTransport {
            ep: server_slot::SUPERVISOR,
        });
        let _ = supervisor.exit(status);
        let _ = Tcb(server_slot::TCB).suspend();
    } else {
        crate::syscall::debug_halt(status);
    }
    stop()
}

/// Stop this thread for good: an undefined instruction faults, and the kernel stops the
/// thread (no fault endpoint) or sends the fault to its supervisor, which reclaims it.
/// A fault handler that resumes it at the same place gets the same fault again, one
/// blocking fault message at a time: nothing here spins.
#[cfg(target_arch = "aarch64")]
pub fn stop() -> ! {
    // SAFETY: `udf` only raises an undefined-instruction exception, which the kernel
    // turns into a fault for this thread; it touches no memory.
    unsafe { core::arch::asm!("udf #0", options(nomem, nostack, noreturn)) }
}

/// Host builds have no kernel to stop the thread.
#[cfg(not(target_arch = "aarch64"))]
pub fn stop() -> ! {
    unreachable!("host programs do not stop through libl4")
}

/// The boot-info page, in the root server.
pub fn boot_info() -> Option<&'static bootinfo::BootInfo> {
    if !is_root() {
        return None;
    }
    let bi = boot_info_page();
    (bi.magic == bootinfo::BOOTINFO_MAGIC).then_some(bi)
}

#[cfg(target_os = "none")]
fn boot_info_page() -> &'static bootinfo::BootInfo {
    // SAFETY: the kernel starts the root server with BOOTINFO_VADDR in x0 after
    // mapping the read-only boot-info page there for good; `BootInfo` is plain data.
    unsafe { &*(bootinfo::BOOTINFO_VADDR as *const bootinfo::BootInfo) }
}

#[cfg(not(target_os = "none"))]
fn boot_info_page() -> &'static bootinfo::BootInfo {
    unreachable!("host programs have no boot-info page")
}

/// The bytes of boot module `name`, in the root server.
pub fn boot_module(name: &str) -> Option<&'static [u8]> {
    let bi = boot_info()?;
    let n = (bi.module_count as usize).min(bi.modules.len());
    let m = bi.modules[..n]
        .iter()
        .find(|m| name_bytes(&m.name) == name.as_bytes())?;
    module_bytes(m.vaddr, m.size)
}

/// Boot module number `index` (its place in `BootInfo::modules`), for the root server.
pub fn boot_module_at(index: usize) -> Option<&'static [u8]> {
    let bi = boot_info()?;
    let n = (bi.module_count as usize).min(bi.modules.len());
    let m = bi.modules[..n].get(index)?;
    module_bytes(m.vaddr, m.size)
}

#[cfg(target_os = "none")]
fn module_bytes(vaddr: u64, size: u64) -> Option<&'static [u8]> {
    let modules = bootinfo::MODULES_VADDR;
    if vaddr < modules || vaddr.checked_add(size)? > modules + (1 << 36) {
        return None;
    }
    // SAFETY: the kernel maps every boot module read-only at the address and size the
    // boot info lists (checked to lie in the module window above), for good.
    Some(unsafe { core::slice::from_raw_parts(vaddr as *const u8, size as usize) })
}

#[cfg(not(target_os = "none"))]
fn module_bytes(_vaddr: u64, _size: u64) -> Option<&'static [u8]> {
    None
}
