// Gaon kernel entry (CPU 0 and the secondaries), EL3->EL2 drop, and the EL2 exception
// vectors. Names in braces are constants global_asm! fills in (arch/aarch64/mod.rs):
// the board's CPU count and the per-CPU stack slot size.

.equ TRAP_FRAME_SIZE, 36 * 8      // x0..x30, sp_el0, elr_el2, spsr_el2, esr_el2, far_el2

// x0 = top of the kernel stack of CPU \cpu (a register holding its index); x1, x2 clobbered.
// Each CPU's slot is a guard page, then its stack (arch/aarch64/cpu.rs).
.macro STACK_TOP cpu
    adrp    x0, KERNEL_STACKS
    add     x0, x0, :lo12:KERNEL_STACKS
    add     x1, \cpu, #1
    ldr     x2, ={STACK_STRIDE}
    madd    x0, x1, x2, x0
    sub     x0, x0, #{CPU_LOCAL_SIZE}    // the CPU's CpuLocal above its stack (TPIDR_EL2)
.endm

// From EL3 to EL2h at the address in register \target, with DAIF masked: what firmware
// would do before entering a hypervisor (the interrupt controller's part is Rust's).
.macro DROP_TO_EL2 target
    msr     cptr_el3, xzr                 // do not trap FP/SIMD or trace to EL3
    mov     x0, #0x5b1                    // SCR_EL3: NS | RES1(4,5) | SMD | HCE | RW
    msr     scr_el3, x0
    mov     x0, #0x3c9                    // SPSR: DAIF masked, EL2h
    msr     spsr_el3, x0
    msr     elr_el3, \target
    isb
    eret
.endm

.section .text.boot, "ax"
.global _start
_start:
    // CPU 0 boots. Secondaries that start here (QEMU entered at EL3 starts every CPU at
    // the entry; at EL2 its PSCI keeps them off until CPU_ON) go to the holding pen.
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff
    cbnz    x19, secondary_reset
    mov     x20, x0                       // DTB pointer where the loader passes one (unused yet)

    mrs     x21, CurrentEL
    lsr     x21, x21, #2                  // x21 = EL we were entered at, reported in the banner
    cmp     x21, #3
    b.ne    1f

    // ---- Entered at EL3: hand the non-secure world what firmware would, then drop to EL2.
    STACK_TOP x19                         // borrow CPU 0's stack; el3_prepare touches no statics
    mov     sp, x0
    bl      el3_prepare                   // Rust: put interrupts into non-secure group 1
    adr     x1, 1f
    DROP_TO_EL2 x1

1:  mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    wrong_el

    // ---- EL2: known state, stack, .bss, then Rust.
    bl      el2_cpu_setup
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b

3:  STACK_TOP x19                         // CPU 0's stack top
    mov     sp, x0
    msr     tpidr_el2, x0                 // the vectors switch to this stack on entry from EL0
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    isb
    mov     x0, x21                       // entry EL
    mov     x1, x20                       // DTB pointer
    bl      kernel_main
    b       .

// The EL2 state every CPU sets up before it runs Rust (uses x0 only): MMU and caches
// off, FP/SIMD trapped until a thread owns it, the counters for EL0/EL1, the EL2 timer
// off. What needs Rust (the MMU, HCR_EL2, the interrupt controller) follows there.
el2_cpu_setup:
    ldr     x0, =0x30c50830               // SCTLR_EL2: RES1 bits only (MMU, caches off, little-endian)
    msr     sctlr_el2, x0
    isb
    mov     x0, #0x37ff                   // CPTR_EL2: RES1 bits, TFP=1: FP/SIMD traps until a thread owns it
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mov     x0, #(3 << 20)                // CPACR_EL1.FPEN: no FP/SIMD trap for EL0
    msr     cpacr_el1, x0
    ldr     x0, =0x30d00800               // SCTLR_EL1: RES1 bits only; UMA=0, so EL0 cannot
    msr     sctlr_el1, x0                 // mask interrupts (and so never ignore a stall's IPI)
    mov     x0, #1                        // CNTHCTL_EL2: EL1PCTEN only: a guest reads the physical
    msr     cnthctl_el2, x0               // counter but cannot touch the physical timer (the user timer)
    msr     cntvoff_el2, xzr
    mov     x0, #0x2                      // CNTKCTL_EL1: EL0VCTEN only: EL0 reads CNTVCT_EL0, cannot touch the timers
    msr     cntkctl_el1, x0               // (the benchmark clock); IrqHandlerSetTimer arms the physical timer
    mrs     x0, pmcr_el0                  // MDCR_EL2: HPMN = PMCR_EL0.N (every counter is EL1's), and
    ubfx    x0, x0, #11, #5               // TPMCR, TPM, TDA, TDOSA, TDRA: EL0 and guests touch no PMU
    mov     x1, #0xe60                    // or debug register; a guest's access is a sysreg exit, so
    orr     x0, x0, x1                    // nothing a guest sets there reaches another thread
    msr     mdcr_el2, x0
    msr     pmuserenr_el0, xzr
    msr     cnthp_ctl_el2, xzr            // the kernel tick's timer off until this CPU arms it
    isb
    ret

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

// ---- Secondary CPUs ---------------------------------------------------------------------
// x19 = MPIDR_EL1.Aff0, the CPU's index.

// Started at the entry. At EL3 (QEMU with secure=on starts every CPU there and has no
// PSCI) the CPU waits in the holding pen (arch/aarch64/smp.rs, in .data: CPU 0 clears
// .bss meanwhile) until CPU 0 writes the address to go on at into its slot; then it does
// its own part of what firmware would (its banked interrupt-controller state, on its own
// stack, which CPU 0 has cleared by then) and drops to EL2 there. At EL2 nothing would
// release it: it parks.
secondary_reset:
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #3
    b.ne    park_secondary
    cmp     x19, #{CPUS}
    b.hs    park_secondary
    adrp    x1, HOLDING_PEN
    add     x1, x1, :lo12:HOLDING_PEN
4:  ldr     x20, [x1, x19, lsl #3]        // read with the MMU off: CPU 0 cleans the line
    cbnz    x20, 5f
    wfe
    b       4b
5:  STACK_TOP x19
    mov     sp, x0
    mov     x0, x19
    bl      el3_prepare_secondary         // Rust: this CPU's interrupts into non-secure group 1
    DROP_TO_EL2 x20

// Where every started secondary arrives at EL2 with the MMU off: from PSCI CPU_ON, a
// spin table, or the holding pen above. Same EL2 state as CPU 0, its own stack and the
// same vectors, then secondary_main (smp.rs) brings up the rest.
.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff
    cmp     x19, #{CPUS}
    b.hs    park_secondary
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    park_secondary
    bl      el2_cpu_setup
    STACK_TOP x19
    mov     sp, x0
    msr     tpidr_el2, x0
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    isb
    mov     x0, x19
    bl      secondary_main
    // fall through (secondary_main does not return)

// A CPU the kernel cannot use: stopped for good, interrupts masked.
park_secondary:
    msr     daifset, #0xf
6:  wfi
    b       6b

// ---- EL2 exception vectors -------------------------------------------------------------
// From EL2 (the kernel itself, or the idle loop): save a TrapFrame on the kernel stack,
// call handle_trap(frame, kind), restore, eret.
// From EL0/EL1: SP_EL2 points at the running thread's register context in its Tcb (set
// by restore_user), so registers are saved straight there; then the vector switches to
// the kernel stack (TPIDR_EL2) and calls handle_user_trap(ctx, kind), which returns the
// context of the thread to resume.

.macro VECTOR_KERNEL kind
.balign 0x80
    sub     sp, sp, #TRAP_FRAME_SIZE
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       trap_common
.endm

.macro VECTOR_USER kind
.balign 0x80
    stp     x0, x1, [sp, #0]
    mov     x1, #\kind
    b       user_trap
.endm

.macro SAVE_REST
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
.endm

.macro RESTORE_ALL
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
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VECTOR_KERNEL 0     // current EL, SP_EL0: sync
    VECTOR_KERNEL 1     //                     irq
    VECTOR_KERNEL 2     //                     fiq
    VECTOR_KERNEL 3     //                     serror
    VECTOR_KERNEL 4     // current EL, SP_ELx: sync
    VECTOR_KERNEL 5     //                     irq
    VECTOR_KERNEL 6     //                     fiq
    VECTOR_KERNEL 7     //                     serror
    VECTOR_USER 8       // lower EL, AArch64:  sync
    VECTOR_USER 9       //                     irq
    VECTOR_USER 10      //                     fiq
    VECTOR_USER 11      //                     serror
    VECTOR_USER 12      // lower EL, AArch32:  sync
    VECTOR_USER 13      //                     irq
    VECTOR_USER 14      //                     fiq
    VECTOR_USER 15      //                     serror

trap_common:
    SAVE_REST
    stp     x2, x3, [sp, #272]            // the kernel's report prints ESR and FAR
    mov     x1, x0                        // kind
    mov     x0, sp                        // &mut TrapFrame
    bl      handle_trap
    mov     sp, x0
    RESTORE_ALL
    add     sp, sp, #TRAP_FRAME_SIZE
    eret

user_trap:
    SAVE_REST                             // x2 = ESR_EL2, x3 = FAR_EL2 (arguments, not saved)
    mov     x0, sp                        // the thread's UserContext (x1 = kind)
    mrs     x4, tpidr_el2
    mov     sp, x4                        // empty kernel stack
    bl      handle_user_trap
    // fall through with x0 = the context to resume

// Resume a user thread: x0 = its UserContext. SP_EL2 stays pointing at it, so the
// next exception from EL0 saves there.
.global restore_user
restore_user:
    mov     sp, x0
    RESTORE_ALL
    eret

// ---- Lazy FP/SIMD switching (the kernel itself never touches these registers) ---------
.arch_extension fp
.arch_extension simd

// fp_save(x0 = &mut FpState): q0..q31, then FPSR and FPCR.
.global fp_save
fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x0, x0, #512
    stp     x1, x2, [x0]
    ret

// fp_restore(x0 = &FpState).
.global fp_restore
fp_restore:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    add     x0, x0, #512
    ldp     x1, x2, [x0]
    msr     fpsr, x1
    msr     fpcr, x2
    ret
