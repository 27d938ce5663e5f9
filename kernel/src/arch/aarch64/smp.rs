//! Starting the secondary CPUs: PSCI `CPU_ON` over SMC, a spin table, or the holding pen
//! in `start.S` (entered at EL3, where QEMU starts every CPU at the entry and there is
//! no PSCI). Each way, the CPU enters `secondary_entry` in `start.S` at EL2 with the MMU
//! off, and finds its index and stack from MPIDR_EL1.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::{dsb_sy, read_sysreg};
use crate::board;

unsafe extern "C" {
    /// Where a started secondary begins, at EL2 with the MMU off (in `start.S`).
    fn secondary_entry();
}

/// Where CPU 0 releases the secondaries that started at `_start` at EL3: slot n becomes
/// the address CPU n continues at. In `.data`, not `.bss`: the secondaries read it from
/// their first instructions on, before CPU 0 has cleared `.bss`, so it must be zero as
/// loaded.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.holding_pen")]
static HOLDING_PEN: [AtomicUsize; board::CPUS] = [const { AtomicUsize::new(0) }; board::CPUS];

/// The physical (and, in the identity map, virtual) address a secondary starts at.
pub fn entry_point() -> usize {
    secondary_entry as *const () as usize
}

/// PSCI `CPU_ON` (SMC64) failures, by the code the call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// -1: no PSCI, or no `CPU_ON`.
    NotSupported,
    /// -2: no CPU with that MPIDR (QEMU's answer for a CPU `-smp` left out).
    InvalidParameters,
    /// -3.
    Denied,
    /// -4: the CPU already runs (an error here: the kernel starts each CPU once).
    AlreadyOn,
    /// -5.
    OnPending,
    /// -6.
    InternalFailure,
    /// -7.
    NotPresent,
    /// -8.
    Disabled,
    /// -9: the entry point is not acceptable.
    InvalidAddress,
    /// Anything else.
    Other(i64),
}

impl PsciError {
    fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::NotSupported,
            -2 => Self::InvalidParameters,
            -3 => Self::Denied,
            -4 => Self::AlreadyOn,
            -5 => Self::OnPending,
            -6 => Self::InternalFailure,
            -7 => Self::NotPresent,
            -8 => Self::Disabled,
            -9 => Self::InvalidAddress,
            c => Self::Other(c),
        }
    }
}

/// PSCI function ID of `CPU_ON` with the SMC64 calling convention.
const PSCI_CPU_ON64: u64 = 0xc400_0003;

/// The MPIDR_EL1 affinity of CPU `n`: the boot CPU's Aff3..Aff1 (one cluster), Aff0 = n.
pub fn mpidr_of(n: usize) -> u64 {
    (read_sysreg!(mpidr_el1) & 0xff_00ff_ff00) | n as u64
}

/// Start CPU `n` with PSCI `CPU_ON` at [`entry_point`]. Called once per CPU: QEMU never
/// answers `ON_PENDING`, and `ALREADY_ON` is reported, not retried.
pub fn psci_cpu_on(n: usize) -> Result<(), PsciError> {
    let ret: i64;
    // SAFETY: CPU_ON only powers on another CPU at `secondary_entry`, which sets itself
    // up from nothing (stack, vectors, MMU) and touches no state of this CPU's. The SMC
    // calling convention may clobber x0..x17; every one is declared.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") PSCI_CPU_ON64 => ret,
            inout("x1") mpidr_of(n) => _,
            inout("x2") entry_point() => _,
            inout("x3") 0u64 => _,
            lateout("x4") _, lateout("x5") _, lateout("x6") _, lateout("x7") _,
            lateout("x8") _, lateout("x9") _, lateout("x10") _, lateout("x11") _,
            lateout("x12") _, lateout("x13") _, lateout("x14") _, lateout("x15") _,
            lateout("x16") _, lateout("x17") _,
            options(nostack),
        );
    }
    if ret == 0 {
        Ok(())
    } else {
        Err(PsciError::from_code(ret))
    }
}

/// Release CPU `n` from a spin table at `table`: its word gets the entry point, then an
/// event wakes it from its `wfe`.
pub fn spin_table_release(table: usize, n: usize) {
    let slot = table + 8 * n;
    // SAFETY: the board file puts the spin table in RAM below the kernel (checked by
    // gaon-platform), which the kernel maps read-write and never hands out; the loader's
    // stub reads CPU n's word, nothing else does.
    unsafe { (slot as *mut u64).write_volatile(entry_point() as u64) };
    publish(slot);
}

/// Release CPU `n` from the holding pen in `start.S` (the kernel was entered at EL3).
pub fn holding_pen_release(n: usize) {
    HOLDING_PEN[n].store(entry_point(), Ordering::Release);
    publish(HOLDING_PEN[n].as_ptr() as usize);
}

/// Make the word at `addr` visible to a CPU that reads it with its MMU and caches off,
/// then wake CPUs waiting in `wfe`.
fn publish(addr: usize) {
    // SAFETY: clean and invalidate by VA to the point of coherency only writes the line
    // back; `addr` is mapped in the kernel's identity map.
    unsafe { core::arch::asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
    dsb_sy();
    // SAFETY: an event only wakes CPUs waiting in `wfe`.
    unsafe { core::arch::asm!("sev", options(nomem, nostack, preserves_flags)) };
}
