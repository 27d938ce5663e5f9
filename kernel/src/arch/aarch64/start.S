// Gaon kernel entry, EL3->EL2 drop, and the EL2 exception vectors.

.equ TRAP_FRAME_SIZE, 36 * 8      // x0..x30, sp_el0, elr_el2, spsr_el2, esr_el2, far_el2
.equ KERNEL_STACK_SIZE, 16384

.section .text.boot, "ax"
.global _start
_start:
    // Only CPU 0 boots; the others wait in park_secondary until SMP support releases them.
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff
    cbnz    x19, park_secondary
    mov     x20, x0                       // DTB pointer where the loader passes one (unused yet)

    mrs     x21, CurrentEL
    lsr     x21, x21, #2                  // x21 = EL we were entered at, reported in the banner
    cmp     x21, #3
    b.ne    1f

    // ---- Entered at EL3: hand the non-secure world what firmware would, then drop to EL2.
    adrp    x0, KERNEL_STACKS             // borrow CPU 0's stack; el3_prepare touches no statics
    add     x0, x0, :lo12:KERNEL_STACKS
    add     x0, x0, #KERNEL_STACK_SIZE
    mov     sp, x0
    bl      el3_prepare                   // Rust: put interrupts into non-secure group 1
    msr     cptr_el3, xzr                 // do not trap FP/SIMD or trace to EL3
    mov     x0, #0x5b1                    // SCR_EL3: NS | RES1(4,5) | SMD | HCE | RW
    msr     scr_el3, x0
    mov     x0, #0x3c9                    // SPSR: DAIF masked, EL2h
    msr     spsr_el3, x0
    adr     x0, 1f
    msr     elr_el3, x0
    isb
    eret

1:  mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    wrong_el

    // ---- EL2: known state, stack, .bss, then Rust.
    ldr     x0, =0x30c50830               // SCTLR_EL2: RES1 bits only (MMU, caches off, little-endian)
    msr     sctlr_el2, x0
    isb
    mov     x0, #0x33ff                   // CPTR_EL2: RES1 bits, TFP=0 so EL0 may use FP/SIMD
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mov     x0, #(3 << 20)                // CPACR_EL1.FPEN: no FP/SIMD trap for EL0
    msr     cpacr_el1, x0
    mov     x0, #3                        // CNTHCTL_EL2: EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    isb

    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b

3:  adrp    x0, KERNEL_STACKS
    add     x0, x0, :lo12:KERNEL_STACKS
    add     x0, x0, #KERNEL_STACK_SIZE    // CPU 0's stack top
    sub     sp, x0, #TRAP_FRAME_SIZE      // the top slot holds the user frame (cpu::user_frame_slot)
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    isb
    mov     x0, x21                       // entry EL
    mov     x1, x20                       // DTB pointer
    bl      kernel_main
    b       .

wrong_el:
    // Entered at EL1 or EL0: this kernel needs EL2. Nothing works yet, so report through
    // semihosting (if QEMU enables it) and stop.
    mov     x0, #0x18                     // SYS_EXIT
    adr     x1, wrong_el_block
    hlt     #0xf000
    b       .
.balign 8
wrong_el_block:
    .quad 0x20026, 3                      // ADP_Stopped_ApplicationExit, status 3

park_secondary:
    wfe
    b       park_secondary

// ---- EL2 exception vectors -------------------------------------------------------------
// Every entry saves a TrapFrame on the kernel stack, calls the Rust handler with
// (frame, kind), restores the frame and returns with eret.

.macro VECTOR kind
.balign 0x80
    sub     sp, sp, #TRAP_FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VECTOR 0    // current EL, SP_EL0: sync
    VECTOR 1    //                     irq
    VECTOR 2    //                     fiq
    VECTOR 3    //                     serror
    VECTOR 4    // current EL, SP_ELx: sync
    VECTOR 5    //                     irq
    VECTOR 6    //                     fiq
    VECTOR 7    //                     serror
    VECTOR 8    // lower EL, AArch64:  sync
    VECTOR 9    //                     irq
    VECTOR 10   //                     fiq
    VECTOR 11   //                     serror
    VECTOR 12   // lower EL, AArch32:  sync
    VECTOR 13   //                     irq
    VECTOR 14   //                     fiq
    VECTOR 15   //                     serror

trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [sp, #272]
    mov     x1, x0                        // kind
    mov     x0, sp                        // &mut TrapFrame
    bl      handle_trap
.global trap_return
trap_return:                              // x0 = frame to restore (also entered directly for first user entry)
    mov     sp, x0
    ldp     x2, x3, [sp, #256]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x28, x29, [sp, #224]
    ldp     x26, x27, [sp, #208]
    ldp     x24, x25, [sp, #192]
    ldp     x22, x23, [sp, #176]
    ldp     x20, x21, [sp, #160]
    ldp     x18, x19, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #TRAP_FRAME_SIZE
    eret
