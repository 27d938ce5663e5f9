//! Loads and stores to device addresses, one named instruction each (inline assembly):
//! the compiler can neither merge, split, reorder nor drop them, so each access reaches
//! the hypervisor with exactly the width, sign extension and registers a test asks for.
//!
//! With the MMU off every data access is Device-nGnRnE: an access must be aligned to its
//! size, as all of these are.

use core::arch::asm;

/// What a load's destination register holds before the load: a load the hypervisor
/// emulates must overwrite all of it (a load into a W register clears the upper half).
const GARBAGE: u64 = 0xdead_beef_dead_beef;

/// A device region: guest-physical addresses the VMM emulates or passes through, or
/// that nothing backs.
#[derive(Clone, Copy, Debug)]
pub struct Mmio(u64);

impl Mmio {
    /// The region from `base`.
    ///
    /// # Safety
    ///
    /// No memory the program uses (its image, stacks, statics) lies at `base` plus any
    /// offset the region's users pass: the accesses are to a device, or to nothing (an
    /// abort, which the exception vector reports).
    pub const unsafe fn new(base: u64) -> Self {
        Self(base)
    }

    /// The address at `off`.
    pub const fn addr(self, off: u64) -> u64 {
        self.0 + off
    }
}

/// Loads: `name => "instruction {v:<w or x>}"`, the destination preloaded with [`GARBAGE`].
macro_rules! loads {
    ($($(#[$doc:meta])* $name:ident => $insn:literal;)*) => {
        impl Mmio {
            $(
                $(#[$doc])*
                pub fn $name(self, off: u64) -> u64 {
                    let v: u64;
                    // SAFETY: by `Mmio::new`'s contract the address is a device's (or
                    // nothing's: the abort goes to the vector), never memory the program
                    // uses; the instruction writes only its destination register.
                    unsafe {
                        asm!(
                            concat!($insn, ", [{a}]"),
                            a = in(reg) self.addr(off),
                            v = inout(reg) GARBAGE => v,
                            options(nostack, preserves_flags),
                        );
                    }
                    v
                }
            )*
        }
    };
}

/// Stores of a register: `name => "instruction {v:<w or x>}"`.
macro_rules! stores {
    ($($(#[$doc:meta])* $name:ident => $insn:literal;)*) => {
        impl Mmio {
            $(
                $(#[$doc])*
                pub fn $name(self, off: u64, value: u64) {
                    // SAFETY: by `Mmio::new`'s contract the address is a device's (or
                    // nothing's), never memory the program uses.
                    unsafe {
                        asm!(
                            concat!($insn, ", [{a}]"),
                            a = in(reg) self.addr(off),
                            v = in(reg) value,
                            options(nostack, preserves_flags),
                        );
                    }
                }
            )*
        }
    };
}

/// Stores of the zero register: `name => "instruction"`.
macro_rules! zero_stores {
    ($($(#[$doc:meta])* $name:ident => $insn:literal;)*) => {
        impl Mmio {
            $(
                $(#[$doc])*
                pub fn $name(self, off: u64) {
                    // SAFETY: by `Mmio::new`'s contract the address is a device's (or
                    // nothing's), never memory the program uses.
                    unsafe {
                        asm!(
                            concat!($insn, ", [{a}]"),
                            a = in(reg) self.addr(off),
                            options(nostack, preserves_flags),
                        );
                    }
                }
            )*
        }
    };
}

loads! {
    /// `ldrb w`: a byte, zero-extended.
    r8 => "ldrb {v:w}";
    /// `ldrh w`: a halfword, zero-extended.
    r16 => "ldrh {v:w}";
    /// `ldr w`: a word, zero-extended.
    r32 => "ldr {v:w}";
    /// `ldr x`: a doubleword.
    r64 => "ldr {v:x}";
    /// `ldrsb x`: a byte sign-extended to 64 bits.
    rs8_x => "ldrsb {v:x}";
    /// `ldrsh x`: a halfword sign-extended to 64 bits.
    rs16_x => "ldrsh {v:x}";
    /// `ldrsw x`: a word sign-extended to 64 bits.
    rs32_x => "ldrsw {v:x}";
    /// `ldrsb w`: a byte sign-extended to 32 bits (the upper 32 bits of the X register 0).
    rs8_w => "ldrsb {v:w}";
    /// `ldrsh w`: a halfword sign-extended to 32 bits (the upper 32 bits 0).
    rs16_w => "ldrsh {v:w}";
}

stores! {
    /// `strb w`: the low byte of `value`.
    w8 => "strb {v:w}";
    /// `strh w`: the low halfword of `value`.
    w16 => "strh {v:w}";
    /// `str w`: the low word of `value`.
    w32 => "str {v:w}";
    /// `str x`: all of `value`.
    w64 => "str {v:x}";
}

zero_stores! {
    /// `str xzr`: eight zero bytes.
    zero64 => "str xzr";
    /// `str wzr`: four zero bytes.
    zero32 => "str wzr";
    /// `strb wzr`: a zero byte.
    zero8 => "strb wzr";
}

impl Mmio {
    /// `ldp x2, x3, [base]`: a load pair (no valid syndrome: the VMM decodes it).
    pub fn ldp(self, off: u64) -> (u64, u64) {
        let (a, b): (u64, u64);
        // SAFETY: by `Mmio::new`'s contract the address is a device's, never memory the
        // program uses; the instruction writes only x2 and x3.
        unsafe {
            asm!(
                "ldp x2, x3, [{base}]",
                base = in(reg) self.addr(off),
                inout("x2") GARBAGE => a,
                inout("x3") !GARBAGE => b,
                options(nostack, preserves_flags),
            );
        }
        (a, b)
    }

    /// `stp x4, x5, [base]`: a store pair (no valid syndrome: the VMM decodes it).
    pub fn stp(self, off: u64, a: u64, b: u64) {
        // SAFETY: by `Mmio::new`'s contract the address is a device's, never memory the
        // program uses.
        unsafe {
            asm!(
                "stp x4, x5, [{base}]",
                base = in(reg) self.addr(off),
                in("x4") a,
                in("x5") b,
                options(nostack, preserves_flags),
            );
        }
    }
}
