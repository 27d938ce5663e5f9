//! From `start.S` to the root server: bring up the CPU, the console, the MMU, the
//! interrupt controller and the timer, print the banner, and start the root server.

use gaon_abi::boot::{BootImageHeader, SegmentFlags, name_bytes};
use gaon_kcore::kernel::{BootAlloc, BootModule, BootSegment, RootImage};

use crate::arch::{self, cpu, exit, mmu, stage2, timer};
use crate::platform;
use crate::{board, console, irq, kprintln, smp, trap};

/// Called once on CPU 0 at EL2, with a stack and a zeroed `.bss`.
#[unsafe(no_mangle)]
extern "C" fn kernel_main(entry_el: u64, _dtb: u64) -> ! {
    console::init();
    if let Err(e) = mmu::enable_kernel_map() {
        panic!("cannot build the kernel's EL2 map: {e:?}");
    }
    stage2::init();
    // The kernel timer is off until the core sets a deadline.
    timer::set_deadline(None);
    let irq_name = match irq::init() {
        Ok(name) => name,
        Err(e) => panic!("interrupt controller: {e:?}"),
    };
    let smp = smp::start_secondaries(entry_el);
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
    print_cpus(&smp);
    kprintln!("  el:         EL2 (entered at EL{entry_el})");
    kprintln!("  memory:     {} MiB at {:#x}", ram.size >> 20, ram.base);
    kprintln!("  irq:        {irq_name}");
    kprintln!(
        "  timer:      {} kHz counter, one-shot kernel timer (irq {})",
        timer::frequency() / 1000,
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

    start_root(image, layout.end, &smp);

    kprintln!("kernel: starting root server at {:#x}", image.root_entry);
    trap::enter_user()
}

/// The banner's line on the CPUs: how many are online and how they were started, then
/// one line for each that is not, and for each whose IPI answer did not arrive.
fn print_cpus(r: &smp::Report) {
    let answered = match (r.online.len(), r.unanswered.is_empty()) {
        (1, _) => "",
        (_, true) => ", IPIs answered",
        (_, false) => ", IPIs NOT answered",
    };
    kprintln!(
        "  cpus:       {} of {} up ({}){answered}",
        r.online.len(),
        board::CPUS,
        r.method.name()
    );
    for (n, failure) in r.failed.iter().enumerate() {
        match failure {
            Some(smp::Failure::Psci(e)) => kprintln!("    CPU {n}: not started: PSCI CPU_ON returned {e:?}"),
            Some(smp::Failure::Timeout) => {
                kprintln!(
                    "    CPU {n}: not online {} ms after its start ({}): does the machine have it?",
                    smp::TIMEOUT_MS,
                    r.method.name()
                );
            }
            None => {}
        }
    }
    for n in r.unanswered.iter() {
        kprintln!(
            "    CPU {n}: online, but its answer to an IPI never came (IPIs taken: {})",
            cpu::cpu(n).ipis.load(core::sync::atomic::Ordering::Relaxed)
        );
    }
}

/// Build the root server from the boot image at `image_base` and hand it all memory.
fn start_root(image: &BootImageHeader, image_base: usize, smp: &smp::Report) {
    let ram = board::RAM;
    let mut segments = heapless::Vec::<BootSegment, { gaon_abi::boot::MAX_SEGMENTS }>::new();
    for seg in image.segments() {
        let flags = SegmentFlags::from_bits_truncate(seg.flags);
        let _ = segments.push(BootSegment {
            vaddr: seg.vaddr,
            src: image_base + seg.offset as usize,
            filesz: seg.filesz as usize,
            memsz: seg.memsz as usize,
            write: flags.contains(SegmentFlags::W),
            execute: flags.contains(SegmentFlags::X),
        });
    }
    let mut modules = heapless::Vec::<BootModule, { gaon_abi::boot::MAX_MODULES }>::new();
    for m in image.modules() {
        let _ = modules.push(BootModule {
            name: m.name,
            pa: image_base + m.offset as usize,
            size: m.size as usize,
        });
    }
    let device = platform::device_regions();
    let root_image = RootImage {
        segments: &segments,
        entry: image.root_entry,
        modules: &modules,
        device,
        timer_hz: timer::frequency(),
        // Threads go only to CPUs that came up and answer IPIs (stalls need them).
        cpus: smp
            .online
            .iter()
            .filter(|&n| n < 8 && !smp.unanswered.contains(n))
            .fold(0, |m, n| m | 1 << n),
        vgic_cpu: crate::arch::vgic::guest_cpu_interface(),
    };
    let mut alloc = BootAlloc {
        next: image_base + image.total_size as usize,
        end: ram.base + ram.size,
        used: 0,
    };
    let before = alloc.end - alloc.next;
    let mut k = platform::lock();
    if let Err(e) = k.boot_root(&root_image, &mut alloc) {
        panic!("cannot create the root server: {e:?}");
    }
    drop(k);
    kprintln!(
        "  root:       {} KiB for its objects; {} KiB of RAM and {} device regions handed over as untyped",
        alloc.used / 1024,
        (before - alloc.used) / 1024,
        device.len()
    );
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
