//! Virtual CPUs: the guest register state a VCpu object holds (read and written with
//! `VCpuReadRegs`/`VCpuWriteRegs` by these indices), and the exit messages the kernel
//! sends to a VCpu thread's fault endpoint when its guest does something the VMM
//! handles (`docs/vmm.md`).
//!
//! A VCpu thread's general registers, PC, SP_EL0 and PSTATE are its Tcb's (`TcbRead` /
//! `TcbWriteRegisters`; PSTATE may then name EL1h, EL1t or EL0t); its EL1 system
//! registers are the VCpu's. [`Exit`] is the one source of the exit messages' layout,
//! declared once in `exits!` like the fault messages in [`crate::fault`].

use crate::layout::{Field, Word};
use crate::syscall::Error;

/// A VCpu's guest registers, as `VCpuReadRegs`/`VCpuWriteRegs` index them. The EL1
/// system registers a guest owns, its virtual timer, and the EL2 values the kernel
/// loads for it. All start at 0 but `SCTLR_EL1` (its reset value: MMU and caches off).
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VCpuReg {
    /// SCTLR_EL1.
    SctlrEl1 = 0,
    /// TTBR0_EL1.
    Ttbr0El1 = 1,
    /// TTBR1_EL1.
    Ttbr1El1 = 2,
    /// TCR_EL1.
    TcrEl1 = 3,
    /// MAIR_EL1.
    MairEl1 = 4,
    /// AMAIR_EL1.
    AmairEl1 = 5,
    /// VBAR_EL1.
    VbarEl1 = 6,
    /// CONTEXTIDR_EL1.
    ContextidrEl1 = 7,
    /// TPIDR_EL1.
    TpidrEl1 = 8,
    /// TPIDRRO_EL0.
    TpidrroEl0 = 9,
    /// SP_EL1.
    SpEl1 = 10,
    /// ELR_EL1.
    ElrEl1 = 11,
    /// SPSR_EL1.
    SpsrEl1 = 12,
    /// ESR_EL1.
    EsrEl1 = 13,
    /// FAR_EL1.
    FarEl1 = 14,
    /// AFSR0_EL1.
    Afsr0El1 = 15,
    /// AFSR1_EL1.
    Afsr1El1 = 16,
    /// PAR_EL1.
    ParEl1 = 17,
    /// CPACR_EL1.
    CpacrEl1 = 18,
    /// CNTKCTL_EL1.
    CntkctlEl1 = 19,
    /// CSSELR_EL1.
    CsselrEl1 = 20,
    /// MDSCR_EL1.
    MdscrEl1 = 21,
    /// CNTV_CTL_EL0: the guest's virtual timer control.
    CntvCtlEl0 = 22,
    /// CNTV_CVAL_EL0: the guest's virtual timer compare value.
    CntvCvalEl0 = 23,
    /// CNTVOFF_EL2: what the guest's virtual counter is behind the physical one.
    Cntvoff = 24,
    /// VMPIDR_EL2: what the guest reads as MPIDR_EL1 (the kernel keeps bit 31, RES1).
    Vmpidr = 25,
}

/// Number of [`VCpuReg`] indices.
pub const VCPU_REG_COUNT: usize = 26;

/// SCTLR_EL1's reset value for a guest: RES1 bits only (MMU, caches and alignment
/// checks off, little-endian).
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// PSTATE a thread has once a VCpu is bound to it: EL1h with D, A, I and F masked, as a
/// CPU comes out of reset.
pub const GUEST_RESET_PSTATE: u64 = 0x3c5;

/// How a data abort the kernel decoded from its syndrome accessed memory (the
/// `access` word of [`Exit::Mmio`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// log2 of the access size in bytes (0..=3).
    pub size_log2: u8,
    /// A store (not a load).
    pub write: bool,
    /// The general register loaded or stored (31: `xzr`/`wzr`).
    pub reg: u8,
    /// A load that sign-extends.
    pub sign_extend: bool,
    /// The register is 64-bit (a 32-bit one is zero-extended after the load).
    pub sixty_four: bool,
}

impl MmioAccess {
    /// The access decoded from a data abort's ISS (ESR_EL2 bits 0..25), if the
    /// syndrome is valid (ISV).
    pub const fn from_iss(iss: u64) -> Option<Self> {
        if iss & (1 << 24) == 0 {
            return None;
        }
        Some(Self {
            size_log2: ((iss >> 22) & 3) as u8,
            write: iss & (1 << 6) != 0,
            reg: ((iss >> 16) & 31) as u8,
            sign_extend: iss & (1 << 21) != 0,
            sixty_four: iss & (1 << 15) != 0,
        })
    }

    /// The value a load of `raw` puts in the register: truncated to the access size,
    /// sign-extended if the load does, then cut to 32 bits for a 32-bit register.
    pub const fn load_value(self, raw: u64) -> u64 {
        let bits = 8u32 << self.size_log2;
        let mut v = if bits == 64 { raw } else { raw & ((1u64 << bits) - 1) };
        if self.sign_extend && bits < 64 && v & (1u64 << (bits - 1)) != 0 {
            v |= u64::MAX << bits;
        }
        if !self.sixty_four {
            v &= 0xffff_ffff;
        }
        v
    }

    /// The stored value, from the register's: truncated to the access size.
    pub const fn store_value(self, reg_value: u64) -> u64 {
        let bits = 8u32 << self.size_log2;
        if bits == 64 {
            reg_value
        } else {
            reg_value & ((1u64 << bits) - 1)
        }
    }
}

/// bits 0..2 size (log2 bytes), 2 write, 3 sign-extend, 4 64-bit register, 8..13
/// register.
impl Word for MmioAccess {
    fn to_word(self) -> u64 {
        u64::from(self.size_log2 & 3)
            | u64::from(self.write) << 2
            | u64::from(self.sign_extend) << 3
            | u64::from(self.sixty_four) << 4
            | u64::from(self.reg & 31) << 8
    }
    fn from_word(w: u64) -> Result<Self, Error> {
        if w & !0x1f1f != 0 {
            return Err(Error::InvalidArgument);
        }
        Ok(Self {
            size_log2: (w & 3) as u8,
            write: w & (1 << 2) != 0,
            sign_extend: w & (1 << 3) != 0,
            sixty_four: w & (1 << 4) != 0,
            reg: ((w >> 8) & 31) as u8,
        })
    }
}

/// What [`Exit`]'s tags are below the exit kinds' numbers (the labels follow the fault
/// kinds; the tags start at 1).
const EXIT_TAG_BASE: u64 = 15;

/// The most words an exit message has.
pub const EXIT_MSG_MAX_LENGTH: usize = 9;

/// Reply label to an exit: the VMM handled it; the guest goes on after the instruction
/// that exited (the kernel steps over it where the exception did not: SMC, MMIO, system
/// register and abort exits).
pub const EXIT_REPLY_DONE: u64 = 0;
/// Reply label to an exit: resume the guest at the instruction that exited, to run it
/// again (the VMM mapped the memory, or changed the registers itself).
pub const EXIT_REPLY_RETRY: u64 = 1;
/// Reply label to an `Mmio` or `Abort` exit: the access hit nothing; the guest takes a
/// synchronous external abort for it (a data or instruction abort, DFSC/IFSC 0x10, at
/// its virtual address, taken to its EL1 vector as a CPU would). For the other exits
/// the same as [`EXIT_REPLY_UNDEF`].
pub const EXIT_REPLY_ABORT: u64 = 2;
/// Reply label to an exit: the instruction is undefined for this guest; it takes an
/// Undefined Instruction exception (EC 0) at the instruction, to its EL1 vector.
pub const EXIT_REPLY_UNDEF: u64 = 3;

/// `VCpuInjectIrq` flag: the interrupt is level-triggered; when the guest deactivates
/// it, the vCPU exits with [`Exit::Eoi`] so that the VMM can look at the line again.
pub const INJECT_LEVEL: u64 = 1;

/// What `docs/vmm.md` and tools know of an exit kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The kind (the message's label).
    pub kind: ExitKind,
    /// Its name.
    pub name: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its words, from MR0.
    pub words: &'static [Field],
}

macro_rules! exits {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident = $num:literal {
            $( $(#[doc = $fdoc:literal])* $f:ident : $t:ty ),* $(,)?
        }
    ),* $(,)?) => {
        /// Exit kinds (the exit message's label; they follow the fault kinds).
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ExitKind {
            $(
                $(#[doc = $doc])*
                $kind = $num,
            )*
        }

        impl ExitKind {
            /// Decode a label.
            pub const fn from_raw(raw: u64) -> Option<Self> {
                match raw {
                    $($num => Some(Self::$kind),)*
                    _ => None,
                }
            }
        }

        /// An exit message, decoded. The tag is the kind's number less
        /// [`EXIT_TAG_BASE`] (1 and up, never 0), so `Option<Exit>`'s `None` is the
        /// all-zero value: zeroed memory holds no exit (the kernel makes a new thread by
        /// zeroing it).
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Exit {
            $(
                $(#[doc = $doc])*
                $kind {
                    $( $(#[doc = $fdoc])* $f: $t, )*
                } = $num - EXIT_TAG_BASE,
            )*
        }

        $(
            const _: () = assert!(<[&str]>::len(&[$(stringify!($f)),*]) <= EXIT_MSG_MAX_LENGTH);
        )*

        impl Exit {
            /// Its kind.
            pub const fn kind(&self) -> ExitKind {
                match self {
                    $(Self::$kind { .. } => ExitKind::$kind,)*
                }
            }

            /// The message's label, words and length (words past the length are 0).
            #[inline]
            pub fn encode(&self) -> (ExitKind, [u64; EXIT_MSG_MAX_LENGTH], usize) {
                match *self {
                    $(Self::$kind { $($f),* } => {
                        let words = [$(Word::to_word($f)),*];
                        let mut out = [0; EXIT_MSG_MAX_LENGTH];
                        out[..words.len()].copy_from_slice(&words);
                        (ExitKind::$kind, out, words.len())
                    })*
                }
            }

            /// An exit message with `label` and `words`. `None` if the label is no exit
            /// kind or a word is malformed.
            #[inline]
            pub fn decode(label: u64, words: [u64; EXIT_MSG_MAX_LENGTH]) -> Option<Self> {
                match ExitKind::from_raw(label)? {
                    $(ExitKind::$kind => {
                        let [$($f,)* ..] = words;
                        Some(Self::$kind { $($f: Word::from_word($f).ok()?),* })
                    })*
                }
            }
        }

        /// Every exit kind's layout, in label order.
        pub const EXITS: &[ExitInfo] = &[$(
            ExitInfo {
                kind: ExitKind::$kind,
                name: stringify!($kind),
                doc: concat!($($doc),*),
                words: &[$(Field { name: stringify!($f), ty: stringify!($t), doc: concat!($($fdoc),*) }),*],
            }
        ),*];
    };
}

exits! {
    /// HVC from the guest. The first four words are in registers, the rest in the
    /// receiver's IPC buffer (without one it gets four). Reply: up to four words become
    /// the guest's `x0..x3`; the guest goes on after the HVC.
    Hvc = 16 {
        /// `x0`
        x0: u64,
        /// `x1`
        x1: u64,
        /// `x2`
        x2: u64,
        /// `x3`
        x3: u64,
        /// `x4`
        x4: u64,
        /// `x5`
        x5: u64,
        /// `x6`
        x6: u64,
        /// `x7`
        x7: u64,
        /// the HVC's immediate
        imm: u64,
    },
    /// SMC from the guest (trapped: `HCR_EL2.TSC`). As [`Exit::Hvc`]; with
    /// [`EXIT_REPLY_DONE`] the guest goes on after the SMC.
    Smc = 17 {
        /// `x0`
        x0: u64,
        /// `x1`
        x1: u64,
        /// `x2`
        x2: u64,
        /// `x3`
        x3: u64,
        /// `x4`
        x4: u64,
        /// `x5`
        x5: u64,
        /// `x6`
        x6: u64,
        /// `x7`
        x7: u64,
        /// the SMC's immediate
        imm: u64,
    },
    /// A load or store to a guest-physical address with no mapping (or without the
    /// right), decoded from the syndrome. Reply [`EXIT_REPLY_DONE`] with MR0 the value
    /// for a load (the kernel sizes and extends it, and writes the register), nothing
    /// for a store; or [`EXIT_REPLY_RETRY`].
    Mmio = 18 {
        /// guest-physical address
        ipa: u64,
        /// the access ([`MmioAccess`])
        access: MmioAccess,
        /// the value stored (0 for a load), cut to the access size
        value: u64,
        /// PC
        pc: u64,
    },
    /// A stage-2 abort the kernel does not decode: a data abort whose syndrome is not
    /// valid (a load or store pair, with writeback, ...), or an instruction fetch. The
    /// VMM reads the guest's memory and registers to handle it. Reply
    /// [`EXIT_REPLY_DONE`] (the guest goes on after the instruction) or
    /// [`EXIT_REPLY_RETRY`].
    Abort = 19 {
        /// guest-physical address (from HPFAR_EL2 and FAR_EL2)
        ipa: u64,
        /// ESR_EL2
        esr: u64,
        /// FAR_EL2 (the guest-virtual address)
        far: u64,
        /// PC
        pc: u64,
    },
    /// A trapped system-register access (MRS/MSR). Reply [`EXIT_REPLY_DONE`] with MR0
    /// the value for a read (the kernel writes the register); or [`EXIT_REPLY_RETRY`].
    Sysreg = 20 {
        /// the syndrome's ISS: Op0 20..22, Op2 17..20, Op1 14..17, CRn 10..14, Rt 5..10,
        /// CRm 1..5, bit 0 set for a read
        iss: u64,
        /// the value written (0 for a read)
        value: u64,
        /// PC
        pc: u64,
    },
    /// The guest deactivated an interrupt injected with [`INJECT_LEVEL`] (end of
    /// interrupt). Sent when the guest runs (or waits in WFI), else at the reply to the
    /// exit it waits in or when it is resumed; one at a time, oldest first. Reply
    /// [`EXIT_REPLY_DONE`]:
    /// the guest goes on where it was (any other label does the same).
    Eoi = 21 {
        /// the virtual INTID
        intid: u64,
    },
}

impl Exit {
    /// The guest's `x0..x7` of an `Hvc` or `Smc` exit (an SMCCC call's function ID and
    /// arguments); `None` for other exits.
    pub const fn call_regs(&self) -> Option<[u64; 8]> {
        match *self {
            Self::Hvc {
                x0,
                x1,
                x2,
                x3,
                x4,
                x5,
                x6,
                x7,
                ..
            }
            | Self::Smc {
                x0,
                x1,
                x2,
                x3,
                x4,
                x5,
                x6,
                x7,
                ..
            } => Some([x0, x1, x2, x3, x4, x5, x6, x7]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_smccc_calls_registers_come_from_hvc_and_smc_exits_only() {
        let hvc = Exit::Hvc {
            x0: 1,
            x1: 2,
            x2: 3,
            x3: 4,
            x4: 5,
            x5: 6,
            x6: 7,
            x7: 8,
            imm: 9,
        };
        assert_eq!(hvc.call_regs(), Some([1, 2, 3, 4, 5, 6, 7, 8]));
        let (_, words, _) = hvc.encode();
        let smc = Exit::decode(ExitKind::Smc as u64, words).unwrap();
        assert_eq!(smc.call_regs(), Some([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(Exit::Eoi { intid: 27 }.call_regs(), None);
    }

    #[test]
    fn exits_round_trip_and_number_after_the_faults() {
        let e = Exit::Mmio {
            ipa: 0x900_0000,
            access: MmioAccess {
                size_log2: 2,
                write: true,
                reg: 31,
                sign_extend: false,
                sixty_four: false,
            },
            value: 0,
            pc: 0x4000,
        };
        let (kind, words, len) = e.encode();
        assert_eq!((kind, len), (ExitKind::Mmio, 4));
        assert_eq!(Exit::decode(kind as u64, words), Some(e));
        assert_eq!(Exit::decode(4, words), None);
        let last_fault = crate::fault::FAULTS.last().map_or(0, |f| f.kind as u64);
        for info in EXITS {
            assert!(info.kind as u64 > last_fault, "exit labels follow the fault kinds");
            assert!(!info.doc.is_empty() && info.words.iter().all(|f| !f.doc.is_empty()));
        }
    }

    /// `Option<Exit>`'s `None` is a zero tag word, as `Option<Fault>`'s is.
    #[test]
    fn no_exit_is_a_zero_tag() {
        assert_eq!(core::mem::size_of::<Option<Exit>>(), core::mem::size_of::<Exit>());
        let none: Option<Exit> = None;
        // SAFETY: reads the first word of a live value at least a word long; `None`'s
        // tag word is initialised.
        #[allow(unsafe_code, reason = "the test looks at the representation")]
        let tag = unsafe { core::ptr::from_ref(&none).cast::<u64>().read() };
        assert_eq!(tag, 0);
        for info in EXITS {
            assert!(info.kind as u64 > EXIT_TAG_BASE);
        }
    }

    #[test]
    fn mmio_values_are_sized_and_extended() {
        let a = |size_log2, sign_extend, sixty_four| MmioAccess {
            size_log2,
            write: false,
            reg: 0,
            sign_extend,
            sixty_four,
        };
        assert_eq!(a(0, false, true).load_value(0x1ff), 0xff);
        assert_eq!(a(0, true, true).load_value(0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(a(0, true, false).load_value(0x80), 0xffff_ff80);
        assert_eq!(a(1, true, true).load_value(0x7fff), 0x7fff);
        assert_eq!(a(2, false, false).load_value(u64::MAX), 0xffff_ffff);
        assert_eq!(a(3, false, true).load_value(u64::MAX), u64::MAX);
        assert_eq!(a(1, false, true).store_value(0x1_2345), 0x2345);
        // ISS: ISV, SAS=halfword, SSE, SRT=5, SF, WnR clear.
        let iss = (1 << 24) | (1 << 22) | (1 << 21) | (5 << 16) | (1 << 15);
        assert_eq!(
            MmioAccess::from_iss(iss),
            Some(a(1, true, true)).map(|x| MmioAccess { reg: 5, ..x })
        );
        assert_eq!(MmioAccess::from_iss(iss & !(1 << 24)), None);
        let w = MmioAccess::from_iss(iss).map_or(0, Word::to_word);
        assert_eq!(MmioAccess::from_word(w).map(Word::to_word), Ok(w));
        assert_eq!(MmioAccess::from_word(1 << 40), Err(Error::InvalidArgument));
    }
}
