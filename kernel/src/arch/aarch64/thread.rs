//! The AArch64 per-thread state the kernel core does not interpret, and its lazy
//! switching: TPIDR_EL0 (the core's thread pointer, `Tcb::tpidr`) is reloaded when a
//! different thread resumes; the FP/SIMD registers (in the Tcb's opaque `ArchState`,
//! viewed as [`ThreadArch`]) only when a thread touches them after another did, which
//! traps through CPTR_EL2.TFP until then.

use gaon_kcore::kernel::object::vcpu::GuestState;
use gaon_kcore::kernel::{Kernel, Lazy, LazySaves};
use gaon_kcore::obj::Ptr;
use gaon_kcore::tcb::{ARCH_STATE_BYTES, ArchState, Tcb};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{cpu, guest, isb, read_sysreg, write_sysreg};
use crate::platform::Hw;

/// FP/SIMD state, saved lazily (only when another thread uses the FPU). The layout
/// is `fp_save`'s and `fp_restore`'s in `start.S`.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct FpState {
    /// q0..q31.
    pub q: [u128; 32],
    /// FPSR.
    pub fpsr: u64,
    /// FPCR.
    pub fpcr: u64,
}

/// What this arch keeps in a Tcb's `ArchState`. A VCpu's EL1 system registers would
/// go here too (the area grows with `ARCH_STATE_BYTES`).
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct ThreadArch {
    /// FP/SIMD registers.
    pub fp: FpState,
}

// `transmute_mut!` checks these too; stated here so a change to either side fails
// with a clear message.
static_assertions::const_assert_eq!(core::mem::size_of::<ThreadArch>(), ARCH_STATE_BYTES);
static_assertions::const_assert!(core::mem::align_of::<ThreadArch>() <= core::mem::align_of::<ArchState>());

/// The arch view of a thread's opaque area.
fn view(area: &mut ArchState) -> &mut ThreadArch {
    zerocopy::transmute_mut!(area)
}

unsafe extern "C" {
    /// Store q0..q31, FPSR and FPCR (in `start.S`).
    fn fp_save(state: *mut FpState);
    /// Load q0..q31, FPSR and FPCR (in `start.S`).
    fn fp_restore(state: *const FpState);
}

/// CPTR_EL2.TFP: trap FP/SIMD.
const CPTR_TFP: u64 = 1 << 10;
/// CPTR_EL2 RES1 bits.
const CPTR_RES1: u64 = 0x33ff;

/// Make `t`'s lazily switched state the CPU's before it resumes: its TPIDR_EL0 now,
/// its FP/SIMD registers on first use (trap them unless they are already its).
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "on every thread switch, measured in instructions (docs/benchmarks.md)"
)]
pub fn load(k: &mut Kernel<Hw>, t: Ptr<Tcb>) {
    if let Some((old, new)) = k.lazy_switch(Lazy::ThreadPointer, t) {
        if let Some(old) = old {
            *old.thread_pointer = read_sysreg!(tpidr_el0);
        }
        // SAFETY: TPIDR_EL0 is the thread's own register; the kernel does not use it.
        unsafe { write_sysreg!(tpidr_el0, *new.thread_pointer) };
    }
    if k.is_guest(t) {
        guest::load(k, t);
    } else {
        guest::to_native(k);
    }
    trap_fpu_unless_owner(k, t);
}

/// [`load`] out of line, for the IPC fastpath's direct switch to a guest (a VMM's
/// answer to its exit): the native-to-native switch keeps its registers.
#[cold]
#[inline(never)]
pub fn load_guest(k: &mut Kernel<Hw>, t: Ptr<Tcb>) {
    load(k, t);
}

/// [`load`] for the IPC fastpath's direct switch from `from` (which made the syscall:
/// it owns the thread pointer, see `Kernel::lazy_hand_over`) to `to`.
#[inline(always)]
#[allow(
    clippy::inline_always,
    reason = "on the IPC fastpath, measured in instructions (docs/benchmarks.md)"
)]
pub fn load_direct(k: &mut Kernel<Hw>, from: Ptr<Tcb>, to: Ptr<Tcb>) {
    // Both native: a guest never makes a syscall or waits in a receive, only an
    // inactive thread is made one (`VCpuBindTcb`), and the fastpath's switch to a guest
    // (the answer to its exit) loads it the general way (`load_guest`).
    debug_assert!(!k.is_guest(from) && !k.is_guest(to));
    let (old, new) = k.lazy_hand_over(Lazy::ThreadPointer, from, to);
    *old.thread_pointer = read_sysreg!(tpidr_el0);
    // SAFETY: as in `load`.
    unsafe { write_sysreg!(tpidr_el0, *new.thread_pointer) };
    trap_fpu_unless_owner(k, to);
}

/// Trap FP/SIMD unless `t` owns the CPU's FP/SIMD registers.
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every thread switch, measured in instructions")]
fn trap_fpu_unless_owner(k: &Kernel<Hw>, t: Ptr<Tcb>) {
    let cptr = if k.lazy_owned_by(Lazy::Fpu, t) {
        CPTR_RES1
    } else {
        CPTR_RES1 | CPTR_TFP
    };
    // No isb: the kernel uses no FP/SIMD from here on, and the eret synchronises.
    set_cptr(cptr, false);
}

/// Set CPTR_EL2 (cached). `sync`: the kernel itself uses FP/SIMD next, so the change
/// must take effect at once (`isb`); otherwise the `eret` to the thread synchronises.
fn set_cptr(v: u64, sync: bool) {
    // This CPU's CPTR_EL2 as last written (0 at first: never equal to a value here).
    let current = &cpu::local().cptr;
    if current.load(core::sync::atomic::Ordering::Relaxed) != v {
        current.store(v, core::sync::atomic::Ordering::Relaxed);
        // SAFETY: only the FP/SIMD trap bit changes; the RES1 bits stay set.
        unsafe { write_sysreg!(cptr_el2, v) };
        if sync {
            isb();
        }
    }
}

/// The current thread touched FP/SIMD: save the previous owner's registers and load its.
pub fn fpu_take(k: &mut Kernel<Hw>) {
    let Some(cur) = k.current() else { return };
    set_cptr(CPTR_RES1, true);
    if let Some((old, new)) = k.lazy_switch(Lazy::Fpu, cur) {
        if let Some(old) = old {
            // SAFETY: `fp_save` writes exactly one `FpState` (start.S), through a
            // pointer from a live exclusive reference; FP/SIMD is untrapped (isb above).
            unsafe { fp_save(&raw mut view(old.arch).fp) };
        }
        // SAFETY: `fp_restore` reads exactly one `FpState` through a pointer from a
        // live reference; FP/SIMD is untrapped.
        unsafe { fp_restore(&raw const view(new.arch).fp) };
    }
}

/// Where `saves` (by kind, as the kernel core gives them) want the thread pointer, the
/// FP/SIMD registers and the guest registers saved: pointers into the owners' Tcbs and
/// VCpus, null for a kind to keep.
pub fn save_targets(saves: LazySaves<'_>) -> SaveTargets {
    let [thread_pointer, fpu, guest] = saves;
    SaveTargets {
        thread_pointer: thread_pointer.map_or(core::ptr::null_mut(), |s| core::ptr::from_mut(s.thread_pointer)),
        fp: fpu.map_or(core::ptr::null_mut(), |s| &raw mut view(s.arch).fp),
        guest: guest
            .and_then(|s| s.guest())
            .map_or(core::ptr::null_mut(), core::ptr::from_mut),
    }
}

/// Where to save a CPU's live copies of lazily switched state ([`save_targets`]).
#[derive(Clone, Copy, Debug)]
pub struct SaveTargets {
    /// TPIDR_EL0 (null: keep it).
    pub thread_pointer: *mut u64,
    /// The FP/SIMD registers (null: keep them).
    pub fp: *mut FpState,
    /// The guest state (null: keep it).
    pub guest: *mut GuestState,
}

/// Save this CPU's TPIDR_EL0, FP/SIMD registers and guest registers to `to` (each
/// whose pointer is not null): what another core's thread needs before it runs
/// elsewhere. The CPU keeps nobody's state live after this (the kernel core forgot the
/// owners), so the next thread to resume loads its own.
///
/// # Safety
///
/// Each non-null pointer is valid for a write of its type and nothing else accesses
/// it meanwhile (the kernel lock's holder waits for this CPU: `smp::stall`).
pub unsafe fn save_live(to: SaveTargets) {
    if !to.thread_pointer.is_null() {
        let v = read_sysreg!(tpidr_el0);
        // SAFETY: the caller vouches for the pointer.
        unsafe { *to.thread_pointer = v };
    }
    if !to.fp.is_null() {
        set_cptr(CPTR_RES1, true);
        // SAFETY: `fp_save` writes exactly one `FpState` through the caller's pointer;
        // FP/SIMD is untrapped (isb above).
        unsafe { fp_save(to.fp) };
    }
    if !to.guest.is_null() {
        // SAFETY: the caller vouches for the pointer.
        unsafe { guest::save_live(to.guest) };
    }
}
