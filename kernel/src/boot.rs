//! From `start.S` to the root server: bring up the CPU, the console, the MMU, the
//! interrupt controller and the timer, print the banner, and start the root server.

use gaon_abi::boot::{BootImageHeader, name_bytes};

use crate::arch::{self, cpu, exception::TrapFrame, exit, mmu, timer};
use crate::{board, console, irq, kprintln, root};

unsafe extern "C" {
    /// Restore a trap frame and `eret` (in `start.S`).
    fn trap_return(frame: *mut TrapFrame) -> !;
}

/// Called once on CPU 0 at EL2, with a stack and a zeroed `.bss`.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(entry_el: u64, _dtb: u64) -> ! {
    console::init();
    if let Err(e) = mmu::enable_kernel_map() {
        panic!("cannot build the kernel's EL2 map: {e:?}");
    }
    let irq_name = match irq::init() {
        Ok(name) => name,
        Err(e) => panic!("interrupt controller: {e:?}"),
    };
    let id = cpu::CpuId::read();
    let ram = board::RAM;
    kprintln!();
    kprintln!(
        "Gaon {} on {} [board {}]",
        env!("CARGO_PKG_VERSION"),
        board::DESCRIPTION,
        board::NAME
    );
    kprintln!(
        "  cpu:        {} r{}p{} (MIDR {:#010x}), CPU {} of {}",
        id.name(),
        id.variant(),
        id.revision(),
        id.midr,
        cpu::current_index(),
        board::CPUS
    );
    kprintln!("  el:         EL2 (entered at EL{entry_el})");
    kprintln!("  memory:     {} MiB at {:#x}", ram.size >> 20, ram.base);
    kprintln!("  irq:        {irq_name}");
    kprintln!(
        "  timer:      {} kHz counter, {} Hz tick (irq {})",
        timer::frequency() / 1000,
        board::TICK_HZ,
        board::TIMER_IRQ
    );
    kprintln!("  kernel:     {} page tables", mmu::kernel_tables_used());

    let layout = mmu::kernel_layout();
    let available = ram.base + ram.size - layout.end;
    // SAFETY: `[layout.end, RAM end)` is RAM mapped read-write in the kernel map; the
    // image tool put the boot image at its start, and nothing has written there yet.
    let bytes = unsafe { core::slice::from_raw_parts(layout.end as *const u8, available) };
    let image = match BootImageHeader::parse(bytes) {
        Ok(h) => h,
        Err(e) => panic!(
            "no valid boot image at {:#x}: {e:?} (build images with scripts/run or `cargo xtask image`)",
            layout.end
        ),
    };
    let image_board = core::str::from_utf8(name_bytes(&image.board)).unwrap_or("?");
    assert!(
        image_board == board::NAME,
        "boot image was built for board `{image_board}`, this kernel for `{}`",
        board::NAME
    );
    let system = core::str::from_utf8(name_bytes(&image.system)).unwrap_or("?");
    kprintln!(
        "  boot image: system `{system}`, {} segments, {} modules, {} KiB",
        image.segments().len(),
        image.modules().len(),
        image.total_size / 1024
    );
    for m in image.modules() {
        kprintln!(
            "    module {} ({} bytes)",
            core::str::from_utf8(name_bytes(&m.name)).unwrap_or("?"),
            m.size
        );
    }

    let mut frames = root::BootFrames::new(layout.end + image.total_size as usize, ram.base + ram.size);
    let (space, regs) = match root::create(image, layout.end, &mut frames) {
        Ok(r) => r,
        Err(e) => panic!("cannot create the root server: {e:?}"),
    };
    kprintln!(
        "  free:       {} KiB after loading the root server",
        frames.remaining() / 1024
    );
    space.activate(); // `space` stays alive: kernel_main never returns

    irq::start_tick();
    kprintln!("kernel: starting root server at {:#x}", regs.elr);
    let slot = cpu::user_frame_slot();
    // SAFETY: the slot is reserved at the top of this CPU's stack and no Rust frame lives
    // there; `regs` describes an EL0 context whose code and stack are mapped in the active
    // stage-2 space. trap_return restores it and erets, never coming back here.
    unsafe {
        slot.write(regs);
        trap_return(slot)
    }
}

/// Nothing left to run: take interrupts forever.
pub fn idle() -> ! {
    loop {
        arch::enable_irqs();
        arch::wait_for_interrupt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    arch::disable_irqs();
    match info.location() {
        Some(l) => console::print_emergency(format_args!(
            "\n*** kernel panic at {}:{}: {}\n",
            l.file(),
            l.line(),
            info.message()
        )),
        None => console::print_emergency(format_args!("\n*** kernel panic: {}\n", info.message())),
    }
    exit::exit(2)
}
