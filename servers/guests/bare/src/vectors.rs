//! An EL1 exception vector table that saves the whole context of the interrupted code
//! as a [`Frame`] on the current stack, calls a Rust handler with it, and restores the
//! frame the handler returns: the same one (an exception handled in place, its ELR_EL1
//! perhaps moved on) or another (a task switch: another stack's frame).

use core::mem::{offset_of, size_of};

/// What the vectors save: x0..x30, ELR_EL1, SPSR_EL1, FPCR, FPSR, a word of padding,
/// then q0..q31 (Rust code may use FP/SIMD, so it is saved too). 800 bytes, a multiple
/// of 16 as SP must be.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub fpcr: u64,
    pub fpsr: u64,
    pad: u64,
    pub q: [u128; 32],
}

/// The frame's size in bytes, and its words.
pub const FRAME_SIZE: usize = size_of::<Frame>();
pub const FRAME_WORDS: usize = FRAME_SIZE / 8;
/// Word indices of ELR_EL1 and SPSR_EL1 in a frame.
pub const ELR_WORD: usize = offset_of!(Frame, elr) / 8;
pub const SPSR_WORD: usize = offset_of!(Frame, spsr) / 8;

// The offsets the assembly of `vectors!` uses.
const _: () = assert!(FRAME_SIZE == 800);
const _: () = assert!(offset_of!(Frame, elr) == 248 && offset_of!(Frame, spsr) == 256);
const _: () = assert!(offset_of!(Frame, fpcr) == 264 && offset_of!(Frame, fpsr) == 272);
const _: () = assert!(offset_of!(Frame, q) == 288);

/// Vector numbers (a handler's `kind`): the entry's offset in the table is `kind * 0x80`.
pub mod kind {
    /// From the current EL on SP_EL0 (0..=3), on SP_ELx (4..=7), from a lower EL in
    /// AArch64 (8..=11) and AArch32 (12..=15); each synchronous, IRQ, FIQ, SError.
    pub const CURRENT_SPX_SYNC: u64 = 4;
    pub const CURRENT_SPX_IRQ: u64 = 5;
}

/// Define a vector table called `$name` (in section `.text.vectors`, 2 KiB aligned)
/// whose every entry pushes a [`Frame`] on the current stack and calls
///
/// ```ignore
/// extern "C" fn handler(kind: u64, frame: &mut Frame) -> u64
/// ```
///
/// with the vector's number (`kind`) and the frame; the handler returns the address of
/// the frame to restore (its own, or one another stack holds), and the vector loads
/// that frame, pops it and returns (ERET) to its ELR_EL1 in its SPSR_EL1's state.
#[macro_export]
macro_rules! vectors {
    ($name:literal, $handler:path) => {
        core::arch::global_asm!(
            ".section .text.vectors, \"ax\"",
            ".balign 2048",
            concat!(".global ", $name),
            concat!($name, ":"),
            ".irp kind, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
            ".balign 128",
            "    sub sp, sp, #{frame}",
            "    stp x0, x1, [sp]",
            "    mov x0, #\\kind",
            concat!("    b ", $name, "_save"),
            ".endr",
            concat!($name, "_save:"),
            "    stp x2, x3, [sp, #16]",
            "    stp x4, x5, [sp, #32]",
            "    stp x6, x7, [sp, #48]",
            "    stp x8, x9, [sp, #64]",
            "    stp x10, x11, [sp, #80]",
            "    stp x12, x13, [sp, #96]",
            "    stp x14, x15, [sp, #112]",
            "    stp x16, x17, [sp, #128]",
            "    stp x18, x19, [sp, #144]",
            "    stp x20, x21, [sp, #160]",
            "    stp x22, x23, [sp, #176]",
            "    stp x24, x25, [sp, #192]",
            "    stp x26, x27, [sp, #208]",
            "    stp x28, x29, [sp, #224]",
            "    mrs x1, elr_el1",
            "    stp x30, x1, [sp, #240]",
            "    mrs x1, spsr_el1",
            "    mrs x2, fpcr",
            "    stp x1, x2, [sp, #256]",
            "    mrs x1, fpsr",
            "    str x1, [sp, #272]",
            "    add x1, sp, #288",
            "    st1 {{v0.2d, v1.2d, v2.2d, v3.2d}}, [x1], #64",
            "    st1 {{v4.2d, v5.2d, v6.2d, v7.2d}}, [x1], #64",
            "    st1 {{v8.2d, v9.2d, v10.2d, v11.2d}}, [x1], #64",
            "    st1 {{v12.2d, v13.2d, v14.2d, v15.2d}}, [x1], #64",
            "    st1 {{v16.2d, v17.2d, v18.2d, v19.2d}}, [x1], #64",
            "    st1 {{v20.2d, v21.2d, v22.2d, v23.2d}}, [x1], #64",
            "    st1 {{v24.2d, v25.2d, v26.2d, v27.2d}}, [x1], #64",
            "    st1 {{v28.2d, v29.2d, v30.2d, v31.2d}}, [x1], #64",
            "    mov x1, sp",
            "    mov x29, xzr",
            "    bl {handler}",
            "    mov sp, x0",
            "    add x1, sp, #288",
            "    ld1 {{v0.2d, v1.2d, v2.2d, v3.2d}}, [x1], #64",
            "    ld1 {{v4.2d, v5.2d, v6.2d, v7.2d}}, [x1], #64",
            "    ld1 {{v8.2d, v9.2d, v10.2d, v11.2d}}, [x1], #64",
            "    ld1 {{v12.2d, v13.2d, v14.2d, v15.2d}}, [x1], #64",
            "    ld1 {{v16.2d, v17.2d, v18.2d, v19.2d}}, [x1], #64",
            "    ld1 {{v20.2d, v21.2d, v22.2d, v23.2d}}, [x1], #64",
            "    ld1 {{v24.2d, v25.2d, v26.2d, v27.2d}}, [x1], #64",
            "    ld1 {{v28.2d, v29.2d, v30.2d, v31.2d}}, [x1], #64",
            "    ldp x1, x2, [sp, #256]",
            "    msr spsr_el1, x1",
            "    msr fpcr, x2",
            "    ldr x1, [sp, #272]",
            "    msr fpsr, x1",
            "    ldp x30, x1, [sp, #240]",
            "    msr elr_el1, x1",
            "    ldp x28, x29, [sp, #224]",
            "    ldp x26, x27, [sp, #208]",
            "    ldp x24, x25, [sp, #192]",
            "    ldp x22, x23, [sp, #176]",
            "    ldp x20, x21, [sp, #160]",
            "    ldp x18, x19, [sp, #144]",
            "    ldp x16, x17, [sp, #128]",
            "    ldp x14, x15, [sp, #112]",
            "    ldp x12, x13, [sp, #96]",
            "    ldp x10, x11, [sp, #80]",
            "    ldp x8, x9, [sp, #64]",
            "    ldp x6, x7, [sp, #48]",
            "    ldp x4, x5, [sp, #32]",
            "    ldp x2, x3, [sp, #16]",
            "    ldp x0, x1, [sp]",
            "    add sp, sp, #{frame}",
            "    eret",
            ".text",
            handler = sym $handler,
            frame = const $crate::vectors::FRAME_SIZE,
        );
    };
}
