//! Guests at EL1: the EL2 configuration and EL1 registers of a VCpu thread.
//!
//! A VCpu thread runs with [`HCR_GUEST`] (no TGE: its EL1 is its own) and its VCpu's
//! EL1 registers, loaded lazily: they stay in the CPU while native threads run, and are
//! saved only when another VCpu thread needs the CPU (`Lazy::Guest`) or a core asks for
//! them (a stall, a register read). Native threads run at EL0 with TGE set, which
//! ignores most EL1 state, but a few EL1 registers still govern EL0: those
//! ([`EL0_GOVERNING`]) get their native values back whenever a native thread follows a
//! guest, so no guest setting (EL0 access to the counters or caches, a debug control,
//! its TPIDRRO_EL0, its counter offset) reaches a native thread.

use core::sync::atomic::Ordering;

use gaon_abi::vcpu::VCpuReg;
use gaon_kcore::kernel::object::vcpu::GuestState;
use gaon_kcore::kernel::{Kernel, Lazy};
use gaon_kcore::obj::Ptr;
use gaon_kcore::tcb::Tcb;

use super::stage2::HCR_NATIVE;
use super::vgic;
use super::{cpu, read_sysreg, write_sysreg};
use crate::platform::Hw;

/// HCR_EL2 while a guest runs: stage 2 on (VM), AArch64 EL1 (RW), physical interrupts
/// and SErrors to EL2 (FMO/IMO/AMO), set/way maintenance by set/way trapped (TSW),
/// TLB and barrier maintenance broadcast in the inner-shareable domain (FB, BSU=IS,
/// since a vCPU may move between cores), SMC trapped (TSC), and the implementation
/// defined and auxiliary control registers trapped (TIDCP, TACR): the VMM sees those;
/// WFI trapped (TWI): a guest with nothing pending waits in the kernel, not in the CPU.
pub const HCR_GUEST: u64 = (1 << 0)     // VM
    | (1 << 1)                          // SWIO
    | (1 << 3) | (1 << 4) | (1 << 5)    // FMO, IMO, AMO
    | (1 << 9)                          // FB
    | (1 << 10)                         // BSU = inner shareable
    | (1 << 13)                         // TWI
    | (1 << 19)                         // TSC
    | (1 << 20)                         // TIDCP
    | (1 << 21)                         // TACR
    | (1 << 22)                         // TSW
    | (1 << 31); // RW

/// The guest registers that govern EL0 too, with the values native threads run with
/// (`start.S` sets the same at boot).
const EL0_GOVERNING: [(VCpuReg, u64); 6] = [
    // RES1 bits only; UMA=0: EL0 cannot mask interrupts.
    (VCpuReg::SctlrEl1, 0x30d0_0800),
    // FPEN: no FP/SIMD trap for EL0 (CPTR_EL2.TFP does the lazy switching).
    (VCpuReg::CpacrEl1, 3 << 20),
    // EL0VCTEN only: EL0 reads CNTVCT_EL0 and touches no timer.
    (VCpuReg::CntkctlEl1, 0x2),
    (VCpuReg::MdscrEl1, 0),
    (VCpuReg::TpidrroEl0, 0),
    (VCpuReg::Cntvoff, 0),
];

/// True for a register whose CPU copy holds something other than the guest's value while
/// a native thread runs: the [`EL0_GOVERNING`] ones, and the guest's timer compare value
/// (kept in the physical count's terms then, see [`native_again`]).
const fn native_view(i: usize) -> bool {
    governs_el0(i) || i == VCpuReg::CntvCvalEl0 as usize
}

/// True for a register in [`EL0_GOVERNING`].
const fn governs_el0(i: usize) -> bool {
    let mut k = 0;
    while k < EL0_GOVERNING.len() {
        if EL0_GOVERNING[k].0 as usize == i {
            return true;
        }
        k += 1;
    }
    false
}

/// Load guest register `i` into the CPU.
fn write_reg(i: usize, v: u64) {
    // SAFETY: EL1 state and the guest's own EL2 views (CNTVOFF, VMPIDR) only take
    // effect at EL1/EL0 while this guest runs; native threads get the EL0-governing ones
    // back (`to_native`) before they run.
    unsafe {
        match i {
            0 => write_sysreg!(sctlr_el1, v | 0x30d0_0800),
            1 => write_sysreg!(ttbr0_el1, v),
            2 => write_sysreg!(ttbr1_el1, v),
            3 => write_sysreg!(tcr_el1, v),
            4 => write_sysreg!(mair_el1, v),
            5 => write_sysreg!(amair_el1, v),
            6 => write_sysreg!(vbar_el1, v),
            7 => write_sysreg!(contextidr_el1, v),
            8 => write_sysreg!(tpidr_el1, v),
            9 => write_sysreg!(tpidrro_el0, v),
            10 => write_sysreg!(sp_el1, v),
            11 => write_sysreg!(elr_el1, v),
            12 => write_sysreg!(spsr_el1, v),
            13 => write_sysreg!(esr_el1, v),
            14 => write_sysreg!(far_el1, v),
            15 => write_sysreg!(afsr0_el1, v),
            16 => write_sysreg!(afsr1_el1, v),
            17 => write_sysreg!(par_el1, v),
            18 => write_sysreg!(cpacr_el1, v),
            19 => write_sysreg!(cntkctl_el1, v),
            20 => write_sysreg!(csselr_el1, v),
            21 => write_sysreg!(mdscr_el1, v),
            22 => write_sysreg!(cntv_ctl_el0, v),
            23 => write_sysreg!(cntv_cval_el0, v),
            24 => write_sysreg!(cntvoff_el2, v),
            // Bit 31 is RES1.
            25 => write_sysreg!(vmpidr_el2, v | (1 << 31)),
            _ => {}
        }
    }
}

/// Read guest register `i` from the CPU.
fn read_reg(i: usize) -> u64 {
    match i {
        0 => read_sysreg!(sctlr_el1),
        1 => read_sysreg!(ttbr0_el1),
        2 => read_sysreg!(ttbr1_el1),
        3 => read_sysreg!(tcr_el1),
        4 => read_sysreg!(mair_el1),
        5 => read_sysreg!(amair_el1),
        6 => read_sysreg!(vbar_el1),
        7 => read_sysreg!(contextidr_el1),
        8 => read_sysreg!(tpidr_el1),
        9 => read_sysreg!(tpidrro_el0),
        10 => read_sysreg!(sp_el1),
        11 => read_sysreg!(elr_el1),
        12 => read_sysreg!(spsr_el1),
        13 => read_sysreg!(esr_el1),
        14 => read_sysreg!(far_el1),
        15 => read_sysreg!(afsr0_el1),
        16 => read_sysreg!(afsr1_el1),
        17 => read_sysreg!(par_el1),
        18 => read_sysreg!(cpacr_el1),
        19 => read_sysreg!(cntkctl_el1),
        20 => read_sysreg!(csselr_el1),
        21 => read_sysreg!(mdscr_el1),
        22 => read_sysreg!(cntv_ctl_el0),
        23 => read_sysreg!(cntv_cval_el0),
        24 => read_sysreg!(cntvoff_el2),
        25 => read_sysreg!(vmpidr_el2),
        _ => 0,
    }
}

/// Save the CPU's live guest state into `state`: every register, but the
/// EL0-governing ones only while they hold the guest's values (otherwise `to_native`
/// saved them), and the virtual CPU interface.
fn save_all(state: &mut GuestState) {
    let guest_el1 = cpu::local().guest_el1.load(Ordering::Relaxed);
    for (i, r) in state.regs.iter_mut().enumerate() {
        if guest_el1 || !native_view(i) {
            *r = read_reg(i);
        }
    }
    if has_vgic() {
        vgic::save(&mut state.vgic);
    }
}

/// Make `t`'s guest state and HCR the CPU's before it resumes: all of it when another
/// VCpu's was live, only the EL0-governing registers when a native thread ran since;
/// then the queued virtual interrupts into free list registers.
#[inline(never)]
pub fn load(k: &mut Kernel<Hw>, t: Ptr<Tcb>) {
    let local = cpu::local();
    let prev = k.lazy_owner(Lazy::Guest);
    // Ends the previous guest made whose maintenance interrupt has not been taken yet:
    // read before its interface is saved (the list registers would keep them unseen).
    if let Some(p) = prev.filter(|&p| p != t)
        && has_vgic()
    {
        harvest_eois(k, p);
    }
    let mut switched = false;
    if let Some((old, new)) = k.lazy_switch(Lazy::Guest, t) {
        switched = true;
        if let Some(old) = old.and_then(|o| o.guest()) {
            save_all(old);
        }
        if let Some(new) = new.guest() {
            for (i, v) in new.regs.iter().enumerate() {
                write_reg(i, *v);
            }
            if has_vgic() {
                vgic::load(&new.vgic);
            }
        }
    } else if !local.guest_el1.load(Ordering::Relaxed)
        && let Some(state) = k.live_guest()
    {
        for (r, _) in EL0_GOVERNING {
            write_reg(r as usize, state.regs[r as usize]);
        }
        let cval = VCpuReg::CntvCvalEl0 as usize;
        write_reg(cval, state.regs[cval]);
    }
    if switched {
        // The virtual timers: the old guest's (if it waits in WFI) is the kernel's now,
        // the new one's is in the CPU, its line masked while its interrupt is with it.
        if let Some(p) = prev {
            k.guest_saved(p);
        }
        k.guest_loaded(t);
    }
    if has_vgic()
        && let Some(state) = k.live_guest()
    {
        vgic::fill(&mut state.queue);
    }
    if !local.guest_el1.load(Ordering::Relaxed) {
        local.guest_el1.store(true, Ordering::Relaxed);
        // SAFETY: the guest's own configuration; the eret to it synchronises.
        unsafe { write_sysreg!(hcr_el2, HCR_GUEST) };
    }
}

/// A native thread resumes: if a guest's EL0-governing registers are in the CPU, save
/// them into its VCpu (if it still has one) and put the native values back. A load
/// and a branch when no guest ran since the last native thread (on every switch).
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every thread switch, measured in instructions")]
pub fn to_native(k: &mut Kernel<Hw>) {
    if cpu::local().guest_el1.load(Ordering::Relaxed) {
        native_again(k);
    }
}

/// [`to_native`]'s work, out of line.
#[inline(never)]
fn native_again(k: &mut Kernel<Hw>) {
    cpu::local().guest_el1.store(false, Ordering::Relaxed);
    let cval = VCpuReg::CntvCvalEl0 as usize;
    // The guest's timer stays armed while native threads run (it is the guest's, and
    // fires into it), but the virtual count then has the native offset, 0: its compare
    // value moves to the physical count's terms (the guest's plus its offset), so it
    // fires when it would have in the guest's, and comes back on the guest's return.
    let mut native_cval = None;
    if let Some(state) = k.live_guest() {
        for (r, _) in EL0_GOVERNING {
            state.regs[r as usize] = read_reg(r as usize);
        }
        state.regs[cval] = read_reg(cval);
        native_cval = Some(state.regs[cval].saturating_add(state.regs[VCpuReg::Cntvoff as usize]));
    }
    for (r, v) in EL0_GOVERNING {
        write_reg(r as usize, v);
    }
    if let Some(v) = native_cval {
        write_reg(cval, v);
    }
    // SAFETY: the native configuration (stage2.rs); the eret to the thread synchronises.
    unsafe { write_sysreg!(hcr_el2, HCR_NATIVE) };
}

/// Save the CPU's live guest state into `state` (a stall or a register read: the
/// kernel core forgot the owner, so the next guest to resume here loads its own).
///
/// # Safety
///
/// `state` is valid for a write of a `GuestState` and nothing else accesses it
/// meanwhile.
pub unsafe fn save_live(state: *mut GuestState) {
    // SAFETY: the caller vouches for the pointer.
    save_all(unsafe { &mut *state });
    // Nobody's state is live here now: no timer of its fires here, and no virtual
    // interface signals (the next guest loaded here enables its own).
    // SAFETY: switching off the EL1 virtual timer and the virtual CPU interface only
    // silences interrupts of a guest that does not run here any more.
    unsafe { write_sysreg!(cntv_ctl_el0, 0) };
    if has_vgic() {
        vgic::disable();
    }
}

/// The virtual interface's maintenance interrupt on this CPU: the live guest
/// deactivated interrupts the kernel asked to hear of (their list registers are freed
/// and the kernel core told, `Kernel::guest_eoi`), or its list registers ran low while
/// more interrupts are queued (the guest's resume refills them).
pub fn maintenance(k: &mut Kernel<Hw>) {
    if !has_vgic() {
        return;
    }
    let (ids, n) = vgic::take_eois();
    for &intid in &ids[..n] {
        k.guest_eoi(intid);
    }
}

/// The ends guest `t` (whose interface is live here, about to be saved) made that no
/// maintenance interrupt reported yet, to the kernel core. Out of line: a guest switch
/// finds none almost always.
#[inline(never)]
fn harvest_eois(k: &mut Kernel<Hw>, t: Ptr<Tcb>) {
    let (ids, n) = vgic::take_eois();
    for &intid in &ids[..n] {
        k.guest_eoi_saved(t, intid);
    }
}

/// True if a virtual interrupt is pending in this CPU's list registers.
pub fn irq_pending() -> bool {
    has_vgic() && vgic::pending()
}

/// True if this CPU has a virtual CPU interface the kernel drives: GICv3's ICH
/// registers, or GICv2's GICH frame where the board names it.
pub fn has_vgic() -> bool {
    vgic::present()
}
