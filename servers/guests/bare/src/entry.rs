//! The entry point of a guest's vCPU 0, the same for every guest here.

/// Define `_start`, where the VMM starts vCPU 0 (in section `.text.start`, which a
/// guest's linker script puts at the image's first address): EL1h, MMU and caches off,
/// DAIF masked, x0 = the device tree. It turns FP/SIMD on at EL1 (CPACR_EL1.FPEN) before
/// any Rust code, which may use it, takes the stack that ends at the linker script's
/// `__stack_top`, installs the vector table `$vectors` (a symbol's name), zeroes `.bss`
/// (`__bss_start` to `__bss_end`, 8-byte aligned) and calls `$main` with the device
/// tree's address; `$main` does not return (if it did, the vCPU would wait in WFI).
///
/// ```ignore
/// gaon_guest_bare::entry!(crate::guest_main, "rtos_vectors");
/// extern "C" fn guest_main(dtb: u64) -> ! { ... }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path, $vectors:literal) => {
        core::arch::global_asm!(
            ".section .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "    msr daifset, #0xf",
            "    mov x1, #(3 << 20)",
            "    msr cpacr_el1, x1",
            "    isb",
            "    msr spsel, #1",
            "    adrp x1, __stack_top",
            "    add x1, x1, :lo12:__stack_top",
            "    mov sp, x1",
            concat!("    adrp x1, ", $vectors),
            concat!("    add x1, x1, :lo12:", $vectors),
            "    msr vbar_el1, x1",
            "    isb",
            "    adrp x1, __bss_start",
            "    add x1, x1, :lo12:__bss_start",
            "    adrp x2, __bss_end",
            "    add x2, x2, :lo12:__bss_end",
            "1:  cmp x1, x2",
            "    b.hs 2f",
            "    str xzr, [x1], #8",
            "    b 1b",
            "2:  mov x29, xzr",
            "    mov x30, xzr",
            "    bl {main}",
            "3:  wfi",
            "    b 3b",
            ".text",
            main = sym $main,
        );
    };
}
