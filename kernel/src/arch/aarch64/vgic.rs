//! The virtual CPU interface of the GIC, which the kernel drives for guests: the list
//! registers (the virtual interrupts pending or active for the guest whose state is
//! live in this CPU), the guest's virtual CPU interface state, and the control
//! register. GICv3 has them as ICH system registers; GICv2 as the GICH frame (the
//! board's `interrupt_controller.gicv2.hyp_interface`), banked per CPU. A VCpu keeps
//! the raw registers of its version in its `vgic` words while its guest is not live.
//!
//! Both versions are driven the same way: [`fill`] moves queued interrupts into free
//! list registers on every guest resume, asking for a maintenance interrupt when some
//! stay queued (underflow); [`take_eois`] frees the list registers whose interrupts
//! the guest deactivated with the EOI bit set (the virtual timer's).

use gaon_kcore::kernel::object::vcpu::{IrqQueue, VGIC_WORDS, VIrq};

use super::cpu;
use crate::board;

/// Where each register is in the `vgic` words: the list registers first (at most 16
/// are used), then the interface state.
const VMCR: usize = 16;
const AP0R0: usize = 17;
const AP1R0: usize = 18;
const _: () = assert!(AP1R0 < VGIC_WORDS);

/// The control register: the virtual CPU interface is enabled (En), and a maintenance
/// interrupt comes when at most one list register is in use (UIE). The same bits on
/// both versions.
const HCR_EN: u64 = 1 << 0;
const HCR_UIE: u64 = 1 << 1;

/// The list registers a version has and how its registers are reached.
trait Interface {
    /// List registers used (at most 16).
    fn lrs(&self) -> usize;
    fn read_lr(&self, n: usize) -> u64;
    fn write_lr(&self, n: usize, v: u64);
    /// The interface state words other than the list registers, in `VMCR..`.
    fn save_state(&self, w: &mut [u64; VGIC_WORDS]);
    fn load_state(&self, w: &[u64; VGIC_WORDS]);
    fn set_hcr(&self, v: u64);
    /// Free list registers (ELRSR), one bit each.
    fn free(&self) -> u64;
    /// List registers whose interrupt the guest deactivated with EOI set (EISR).
    fn eois(&self) -> u64;
    /// A list register's INTID, and whether it is pending.
    fn intid(lr: u64) -> u32;
    fn pending(lr: u64) -> bool;
    /// Valid (pending or active).
    fn valid(lr: u64) -> bool;
    /// The list register that makes `irq` pending.
    fn lr_of(irq: VIrq) -> u64;
    /// `lr` made pending again, asking for the maintenance interrupt at its end too if
    /// `eoi` (a level-triggered inject of an interrupt already there).
    fn repend(lr: u64, eoi: bool) -> u64;
}

/// Which virtual interface this CPU has: GICv3's system registers (the CPU reports
/// them), else GICv2's GICH frame if the board has one.
enum Which {
    V3(v3::Regs),
    V2(v2::Frame),
    None,
}

fn which() -> Which {
    if cpu::gic_sysreg_version() != 0 {
        Which::V3(v3::Regs)
    } else if let Some(base) = board::GICV2_HYP {
        Which::V2(v2::Frame(base))
    } else {
        Which::None
    }
}

/// Run `f` on this CPU's interface, or return `none` without one.
macro_rules! on {
    ($none:expr, |$i:ident| $body:expr) => {
        match which() {
            Which::V3($i) => $body,
            Which::V2($i) => $body,
            Which::None => $none,
        }
    };
}

/// True if the kernel drives a virtual CPU interface on this CPU.
pub fn present() -> bool {
    !matches!(which(), Which::None)
}

/// The GICv2 virtual CPU interface frame guests map as their GICC, where the kernel
/// drives GICv2's virtual interface (with GICv3 guests use system registers).
pub fn guest_cpu_interface() -> Option<usize> {
    match which() {
        Which::V2(_) => board::GICV2_VCPU,
        _ => None,
    }
}

/// True if a list register holds a pending interrupt.
pub fn pending() -> bool {
    on!(false, |i| (0..i.lrs()).any(|n| pending_in(&i, n)))
}

fn pending_in<I: Interface>(i: &I, n: usize) -> bool {
    I::pending(i.read_lr(n))
}

/// Save the interface's state.
pub fn save(w: &mut [u64; VGIC_WORDS]) {
    on!((), |i| {
        for (n, lr) in w.iter_mut().enumerate().take(i.lrs()) {
            *lr = i.read_lr(n);
        }
        i.save_state(w);
    });
}

/// Load a guest's interface state, and enable the interface.
pub fn load(w: &[u64; VGIC_WORDS]) {
    on!((), |i| {
        for (n, lr) in w.iter().enumerate().take(i.lrs()) {
            i.write_lr(n, *lr);
        }
        i.load_state(w);
        i.set_hcr(HCR_EN);
    });
}

/// Switch the interface off: it signals nothing until the next [`load`].
pub fn disable() {
    on!((), |i| i.set_hcr(0));
}

/// The INTIDs of the list registers whose interrupts the guest deactivated and the
/// kernel asked to hear of, those registers freed; and no underflow maintenance
/// interrupt until the next [`fill`] asks for one.
pub fn take_eois() -> ([u32; 16], usize) {
    on!(([0; 16], 0), |i| take_eois_of(&i))
}

fn take_eois_of<I: Interface>(i: &I) -> ([u32; 16], usize) {
    let mut ids = [0u32; 16];
    let mut n = 0;
    let eisr = i.eois();
    for lr in (0..i.lrs()).filter(|lr| eisr & (1 << lr) != 0) {
        ids[n] = I::intid(i.read_lr(lr));
        n += 1;
        i.write_lr(lr, 0);
    }
    i.set_hcr(HCR_EN);
    (ids, n)
}

/// Move queued interrupts into the list registers: one already there becomes pending
/// (again), the rest take free list registers while there are some. If some stay
/// queued, a maintenance interrupt comes when the guest has used up all but one list
/// register (underflow), and the resume after it fills them again.
pub fn fill(queue: &mut IrqQueue) {
    if queue.is_empty() {
        return;
    }
    on!((), |i| fill_with(&i, queue));
}

fn fill_with<I: Interface>(i: &I, queue: &mut IrqQueue) {
    let mut free = i.free();
    let n = i.lrs();
    while let Some(irq) = queue.pop() {
        let same = (0..n).find(|&l| {
            let lr = i.read_lr(l);
            I::valid(lr) && I::intid(lr) == irq.intid
        });
        if let Some(l) = same {
            i.write_lr(l, I::repend(i.read_lr(l), irq.notify_eoi));
            continue;
        }
        let Some(l) = (0..n).find(|&l| free & (1 << l) != 0) else {
            queue.unpop(irq);
            i.set_hcr(HCR_EN | HCR_UIE);
            return;
        };
        free &= !(1 << l);
        i.write_lr(l, I::lr_of(irq));
    }
}

/// GICv3: the ICH registers.
mod v3 {
    use gaon_kcore::kernel::object::vcpu::{VGIC_WORDS, VIrq};

    use super::super::{isb, read_sysreg, write_sysreg};
    use super::{AP0R0, AP1R0, Interface, VMCR};

    /// List register bits: pending, group 1, a maintenance interrupt at deactivation
    /// (EOI, with HW = 0).
    const LR_PENDING: u64 = 1 << 62;
    const LR_GROUP1: u64 = 1 << 60;
    const LR_EOI: u64 = 1 << 41;

    /// The CPU's ICH system registers.
    pub struct Regs;

    impl Interface for Regs {
        fn lrs(&self) -> usize {
            ((read_sysreg!(ich_vtr_el2) & 0x1f) as usize + 1).min(16)
        }

        fn read_lr(&self, n: usize) -> u64 {
            match n {
                0 => read_sysreg!(ich_lr0_el2),
                1 => read_sysreg!(ich_lr1_el2),
                2 => read_sysreg!(ich_lr2_el2),
                3 => read_sysreg!(ich_lr3_el2),
                4 => read_sysreg!(ich_lr4_el2),
                5 => read_sysreg!(ich_lr5_el2),
                6 => read_sysreg!(ich_lr6_el2),
                7 => read_sysreg!(ich_lr7_el2),
                8 => read_sysreg!(ich_lr8_el2),
                9 => read_sysreg!(ich_lr9_el2),
                10 => read_sysreg!(ich_lr10_el2),
                11 => read_sysreg!(ich_lr11_el2),
                12 => read_sysreg!(ich_lr12_el2),
                13 => read_sysreg!(ich_lr13_el2),
                14 => read_sysreg!(ich_lr14_el2),
                _ => read_sysreg!(ich_lr15_el2),
            }
        }

        fn write_lr(&self, n: usize, v: u64) {
            // SAFETY: a list register only makes a virtual interrupt pending or active
            // for the guest whose state is loaded (the caller's).
            unsafe {
                match n {
                    0 => write_sysreg!(ich_lr0_el2, v),
                    1 => write_sysreg!(ich_lr1_el2, v),
                    2 => write_sysreg!(ich_lr2_el2, v),
                    3 => write_sysreg!(ich_lr3_el2, v),
                    4 => write_sysreg!(ich_lr4_el2, v),
                    5 => write_sysreg!(ich_lr5_el2, v),
                    6 => write_sysreg!(ich_lr6_el2, v),
                    7 => write_sysreg!(ich_lr7_el2, v),
                    8 => write_sysreg!(ich_lr8_el2, v),
                    9 => write_sysreg!(ich_lr9_el2, v),
                    10 => write_sysreg!(ich_lr10_el2, v),
                    11 => write_sysreg!(ich_lr11_el2, v),
                    12 => write_sysreg!(ich_lr12_el2, v),
                    13 => write_sysreg!(ich_lr13_el2, v),
                    14 => write_sysreg!(ich_lr14_el2, v),
                    _ => write_sysreg!(ich_lr15_el2, v),
                }
            }
        }

        fn save_state(&self, w: &mut [u64; VGIC_WORDS]) {
            w[VMCR] = read_sysreg!(ich_vmcr_el2);
            w[AP0R0] = read_sysreg!(ich_ap0r0_el2);
            w[AP1R0] = read_sysreg!(ich_ap1r0_el2);
        }

        fn load_state(&self, w: &[u64; VGIC_WORDS]) {
            // SAFETY: the guest's own virtual CPU interface state.
            unsafe {
                write_sysreg!(ich_vmcr_el2, w[VMCR]);
                write_sysreg!(ich_ap0r0_el2, w[AP0R0]);
                write_sysreg!(ich_ap1r0_el2, w[AP1R0]);
            }
        }

        fn set_hcr(&self, v: u64) {
            // SAFETY: En and UIE only let the virtual interface signal virtual
            // interrupts to EL1 and maintenance interrupts to the kernel.
            unsafe { write_sysreg!(ich_hcr_el2, v) };
            isb();
        }

        fn free(&self) -> u64 {
            // Derived from the list registers: read after the writes that loaded them
            // took effect.
            isb();
            read_sysreg!(ich_elrsr_el2)
        }

        fn eois(&self) -> u64 {
            read_sysreg!(ich_eisr_el2)
        }

        fn intid(lr: u64) -> u32 {
            lr as u32
        }

        fn pending(lr: u64) -> bool {
            lr & LR_PENDING != 0
        }

        fn valid(lr: u64) -> bool {
            lr >> 62 != 0
        }

        fn lr_of(irq: VIrq) -> u64 {
            let eoi = if irq.notify_eoi { LR_EOI } else { 0 };
            LR_PENDING | LR_GROUP1 | eoi | u64::from(irq.priority) << 48 | u64::from(irq.intid)
        }

        fn repend(lr: u64, eoi: bool) -> u64 {
            lr | LR_PENDING | if eoi { LR_EOI } else { 0 }
        }
    }
}

/// GICv2: the GICH frame (banked per CPU at the same address), mapped as device memory
/// in the kernel's map (the board's MMIO windows, at their physical addresses).
mod v2 {
    use gaon_kcore::kernel::object::vcpu::{VGIC_WORDS, VIrq};

    use super::{AP0R0, Interface, VMCR};

    /// GICH registers.
    const HCR: usize = 0x000;
    const VTR: usize = 0x004;
    const GICH_VMCR: usize = 0x008;
    const EISR0: usize = 0x020;
    const ELRSR0: usize = 0x030;
    const APR: usize = 0x0f0;
    const LR0: usize = 0x100;

    /// List register bits: pending (state 01), a maintenance interrupt at deactivation
    /// (EOI, with HW = 0). Group 0: what a guest that only enables group 0 (Linux's
    /// GICv2 driver at EL1) takes as IRQs.
    const LR_PENDING: u32 = 1 << 28;
    const LR_EOI: u32 = 1 << 19;

    /// The GICH frame at this address.
    pub struct Frame(pub usize);

    impl Frame {
        fn read(&self, off: usize) -> u32 {
            // SAFETY: GICH is mapped as device memory (it lies in the board's MMIO
            // windows, which the kernel maps), and reading its registers has no effect.
            unsafe { core::ptr::read_volatile((self.0 + off) as *const u32) }
        }

        fn write(&self, off: usize, v: u32) {
            // SAFETY: as for `read`; GICH registers only control the virtual interface
            // of this CPU, for the guest whose state is live here.
            unsafe { core::ptr::write_volatile((self.0 + off) as *mut u32, v) }
        }
    }

    impl Interface for Frame {
        fn lrs(&self) -> usize {
            ((self.read(VTR) & 0x3f) as usize + 1).min(16)
        }

        fn read_lr(&self, n: usize) -> u64 {
            u64::from(self.read(LR0 + 4 * n))
        }

        fn write_lr(&self, n: usize, v: u64) {
            self.write(LR0 + 4 * n, v as u32);
        }

        fn save_state(&self, w: &mut [u64; VGIC_WORDS]) {
            w[VMCR] = u64::from(self.read(GICH_VMCR));
            w[AP0R0] = u64::from(self.read(APR));
        }

        fn load_state(&self, w: &[u64; VGIC_WORDS]) {
            self.write(GICH_VMCR, w[VMCR] as u32);
            self.write(APR, w[AP0R0] as u32);
        }

        fn set_hcr(&self, v: u64) {
            self.write(HCR, v as u32);
        }

        fn free(&self) -> u64 {
            u64::from(self.read(ELRSR0))
        }

        fn eois(&self) -> u64 {
            u64::from(self.read(EISR0))
        }

        fn intid(lr: u64) -> u32 {
            lr as u32 & 0x3ff
        }

        fn pending(lr: u64) -> bool {
            lr as u32 & LR_PENDING != 0
        }

        fn valid(lr: u64) -> bool {
            (lr >> 28) & 3 != 0
        }

        fn lr_of(irq: VIrq) -> u64 {
            let eoi = if irq.notify_eoi { LR_EOI } else { 0 };
            // Five priority bits, the top ones.
            u64::from(LR_PENDING | eoi | u32::from(irq.priority >> 3) << 23 | (irq.intid & 0x3ff))
        }

        fn repend(lr: u64, eoi: bool) -> u64 {
            lr | u64::from(LR_PENDING | if eoi { LR_EOI } else { 0 })
        }
    }
}
