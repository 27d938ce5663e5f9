//! CPU identification and per-CPU state.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::read_sysreg;
use crate::board;
use gaon_kcore::kernel::object::vcpu::GuestState;

/// Bytes of kernel stack per CPU.
pub const KERNEL_STACK_SIZE: usize = 16384;
/// Bytes of the guard below each CPU's stack: left out of the kernel's map, so running
/// off the bottom of a stack faults instead of overwriting the next CPU's.
pub const STACK_GUARD_SIZE: usize = 4096;
/// Bytes from one CPU's stack slot (guard, then stack) to the next; `start.S` puts CPU
/// n's stack top at `KERNEL_STACKS + (n + 1) * STACK_STRIDE - CPU_LOCAL_SIZE`.
pub const STACK_STRIDE: usize = STACK_GUARD_SIZE + KERNEL_STACK_SIZE;
/// Bytes at the top of each CPU's stack slot that hold its [`CpuLocal`] instead of
/// stack: TPIDR_EL2 (the stack top the vectors switch to) points at it.
pub const CPU_LOCAL_SIZE: usize = 64;

/// The per-CPU state the switch path reads, at TPIDR_EL2 (one `mrs` away, where
/// [`PerCpu`] needs the CPU's index first). Only its own CPU touches it.
#[repr(C)]
#[derive(Debug)]
pub struct CpuLocal {
    /// The CPU's linear index (set by [`init_local`]; 0 in `.bss` for CPU 0).
    pub index: AtomicUsize,
    /// The index shifted left by one: the kernel lock's word once this CPU released it
    /// (`klock`).
    pub lock_word: AtomicUsize,
    /// VTTBR_EL2 as last written (0: not known yet).
    pub vttbr: AtomicU64,
    /// CPTR_EL2 as last written (0: not known yet).
    pub cptr: AtomicU64,
    /// The EL1 registers that govern EL0 (and HCR_EL2) hold a guest's values, not a
    /// native thread's (`guest::to_native` puts those back). False at boot.
    pub guest_el1: AtomicBool,
}

static_assertions::const_assert!(core::mem::size_of::<CpuLocal>() <= CPU_LOCAL_SIZE);

/// The running CPU's [`CpuLocal`].
#[inline(always)]
#[allow(clippy::inline_always, reason = "on every kernel entry and thread switch")]
pub fn local() -> &'static CpuLocal {
    let p: u64;
    // SAFETY: reads TPIDR_EL2 only. Declared `pure`: it is written once per CPU in
    // `start.S` before any Rust runs, and kernel code never moves to another CPU (each
    // CPU has its own stack, and the kernel is not preempted), so every read in one
    // function gives the same value and the compiler may read it once.
    unsafe { core::arch::asm!("mrs {}, tpidr_el2", out(reg) p, options(pure, nomem, nostack, preserves_flags)) };
    let p = p as *const CpuLocal;
    // SAFETY: `start.S` sets TPIDR_EL2 to the top `CPU_LOCAL_SIZE` bytes of this CPU's
    // stack slot before any Rust runs, which no stack uses (the stack grows down from
    // there) and which are zeroed `.bss`; a `CpuLocal` is all atomics, valid when zero.
    unsafe { &*p }
}

/// Record this CPU's index in its [`CpuLocal`] (each CPU at its start).
pub fn init_local(index: usize) {
    local().index.store(index, Ordering::Relaxed);
    local().lock_word.store(index << 1, Ordering::Relaxed);
}

/// One CPU's kernel stack with its guard page below it.
#[repr(C, align(4096))]
pub struct KernelStack {
    guard: [u8; STACK_GUARD_SIZE],
    stack: [u8; KERNEL_STACK_SIZE],
}

/// Kernel stacks, one per CPU (in `.bss`).
#[repr(C)]
pub struct KernelStacks([KernelStack; board::CPUS]);

static_assertions::const_assert_eq!(core::mem::size_of::<KernelStack>(), STACK_STRIDE);

/// The stacks themselves. Only assembly touches them, through the symbol.
#[unsafe(no_mangle)]
pub static mut KERNEL_STACKS: KernelStacks = KernelStacks(
    [const {
        KernelStack {
            guard: [0; STACK_GUARD_SIZE],
            stack: [0; KERNEL_STACK_SIZE],
        }
    }; board::CPUS],
);

/// The guard page below each CPU's stack, by CPU (ascending addresses).
pub fn stack_guards() -> impl Iterator<Item = usize> {
    let base = (&raw const KERNEL_STACKS) as usize;
    (0..board::CPUS).map(move |n| base + n * STACK_STRIDE)
}

/// The CPU whose stack guard page holds `addr`, if any.
pub fn stack_guard_of(addr: u64) -> Option<usize> {
    stack_guards().position(|g| (g as u64..(g + STACK_GUARD_SIZE) as u64).contains(&addr))
}

/// Per-CPU kernel state. Designed in from the start so SMP only has to fill in more CPUs.
#[derive(Debug)]
pub struct PerCpu {
    /// Timer interrupts taken on this CPU since boot.
    pub ticks: AtomicU64,
    /// The CPU has finished its bring-up (set by itself; CPU 0 is online from the start).
    pub online: AtomicBool,
    /// Inter-processor interrupts this CPU has taken.
    pub ipis: AtomicU64,
    /// What the next inter-processor interrupt asks of this CPU (`smp::request` bits),
    /// set by the sender before it sends and taken by this CPU when the interrupt comes.
    pub ipi_requests: AtomicU32,
    /// A stall is asked of this CPU (`smp::stall`).
    pub stall_pending: AtomicBool,
    /// Stalls this CPU has answered (`smp::stall`): the kernel lock's holder waits for
    /// this to change.
    pub stalls: AtomicU64,
    /// Where the stall being asked for wants this CPU's TPIDR_EL0 saved (null: keep it).
    pub save_thread_pointer: AtomicPtr<u64>,
    /// Where it wants this CPU's FP/SIMD registers saved (an `FpState`; null: keep them).
    pub save_fp: AtomicPtr<u8>,
    /// Where it wants this CPU's guest state saved (a `GuestState`; null: keep it).
    pub save_guest: AtomicPtr<GuestState>,
}

static PER_CPU: [PerCpu; board::CPUS] = [const {
    PerCpu {
        ticks: AtomicU64::new(0),
        online: AtomicBool::new(false),
        ipis: AtomicU64::new(0),
        ipi_requests: AtomicU32::new(0),
        stall_pending: AtomicBool::new(false),
        stalls: AtomicU64::new(0),
        save_thread_pointer: AtomicPtr::new(core::ptr::null_mut()),
        save_fp: AtomicPtr::new(core::ptr::null_mut()),
        save_guest: AtomicPtr::new(core::ptr::null_mut()),
    }
}; board::CPUS];

/// Linear index of the running CPU (MPIDR_EL1.Aff0).
pub fn current_index() -> usize {
    let aff0 = (read_sysreg!(mpidr_el1) & 0xff) as usize;
    aff0.min(board::CPUS - 1)
}

/// The running CPU's state.
pub fn this_cpu() -> &'static PerCpu {
    &PER_CPU[current_index()]
}

/// CPU `n`'s state (`n` below `board::CPUS`).
pub fn cpu(n: usize) -> &'static PerCpu {
    &PER_CPU[n]
}

/// Ticks taken on all CPUs.
pub fn total_ticks() -> u64 {
    PER_CPU.iter().map(|c| c.ticks.load(Ordering::Relaxed)).sum()
}

/// The CPUs that are online.
pub fn online() -> CpuSet {
    (0..board::CPUS)
        .filter(|&n| PER_CPU[n].online.load(Ordering::Acquire))
        .fold(CpuSet::EMPTY, CpuSet::with)
}

/// A set of CPUs by linear index (bit n: CPU n).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(u32);

impl CpuSet {
    /// No CPU.
    pub const EMPTY: Self = Self(0);

    /// Just CPU `n`.
    pub const fn of(n: usize) -> Self {
        Self(1 << n)
    }

    /// This set and CPU `n`.
    pub const fn with(self, n: usize) -> Self {
        Self(self.0 | 1 << n)
    }

    /// True if CPU `n` is in the set.
    pub const fn contains(self, n: usize) -> bool {
        n < 32 && self.0 & (1 << n) != 0
    }

    /// How many CPUs.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// True if no CPU is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The CPUs, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..32).filter(move |&n| self.contains(n))
    }
}

/// What `MIDR_EL1` says about the core.
#[derive(Clone, Copy, Debug)]
pub struct CpuId {
    /// Raw MIDR_EL1.
    pub midr: u64,
}

impl CpuId {
    /// Read the running core's identity.
    pub fn read() -> Self {
        Self {
            midr: read_sysreg!(midr_el1),
        }
    }

    /// Marketing name for the cores Gaon knows; "unknown" otherwise.
    pub fn name(self) -> &'static str {
        let implementer = (self.midr >> 24) & 0xff;
        let part = (self.midr >> 4) & 0xfff;
        match (implementer, part) {
            (0x41, 0xd03) => "Cortex-A53",
            (0x41, 0xd04) => "Cortex-A35",
            (0x41, 0xd07) => "Cortex-A57",
            (0x41, 0xd08) => "Cortex-A72",
            (0x41, 0xd09) => "Cortex-A73",
            (0x41, 0xd0b) => "Cortex-A76",
            (0x41, 0xd0c) => "Neoverse-N1",
            (0x41, 0xd40) => "Neoverse-V1",
            (0x41, 0xd4f) => "Neoverse-V2",
            (0x41, 0xd49) => "Neoverse-N2",
            (0x41, 0xd05) => "Cortex-A55",
            (0x41, 0xd0d) => "Cortex-A77",
            (0x41, 0xd41) => "Cortex-A78",
            _ => "unknown core",
        }
    }

    /// Variant (rN).
    pub fn variant(self) -> u64 {
        (self.midr >> 20) & 0xf
    }

    /// Revision (pN).
    pub fn revision(self) -> u64 {
        self.midr & 0xf
    }
}

/// The GIC system-register interface version `ID_AA64PFR0_EL1.GIC` reports (0: none, 1: v3/v4).
pub fn gic_sysreg_version() -> u64 {
    (read_sysreg!(id_aa64pfr0_el1) >> 24) & 0xf
}

/// Physical address size `ID_AA64MMFR0_EL1.PARange` encodes (0 = 32 bits ... 5 = 48 bits).
pub fn pa_range() -> u64 {
    read_sysreg!(id_aa64mmfr0_el1) & 0xf
}
