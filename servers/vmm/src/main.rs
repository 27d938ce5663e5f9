//! The virtual machine monitor server (`docs/vmm.md`): one VM per VMM. From the
//! `[[vm]]` entry it was made from (its `vm-config` and `guest` modules) it builds the
//! guest's memory (2 MiB frames from its heap, mapped at the guest's RAM base in the
//! guest's VSpace and at [`app::WINDOW`] in its own), loads the guest program (an ELF
//! or an arm64 Linux `Image`), writes its device tree, makes one thread and VCpu per
//! vCPU, starts vCPU 0 (or waits for a `start`), and serves: exits of its vCPUs,
//! answered with the library's [`gaon_vmm::vm::Vm`], and the control interface
//! (`idl/vmm.idl`) on its `vmm` channel, both on one endpoint.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
include!(concat!(env!("OUT_DIR"), "/vmm.rs"));
#[cfg(target_os = "none")]
include!(concat!(env!("OUT_DIR"), "/sched.rs"));

#[cfg(target_os = "none")]
mod app {
    use gaon_abi::Fault;
    use gaon_abi::invocation::{REG_PC, REG_X0};
    use gaon_abi::system::{
        MAX_PASSTHROUGH, VM_CONFIG_MAGIC, VM_CONFIG_VERSION, VM_CONSOLE_FOCUS, VM_INITRD, VM_LINUX_IMAGE,
        VM_MANUAL_START, VM_TESTDEV, VmConfig, server_slot,
    };
    use gaon_abi::trace::Event;
    use gaon_abi::vcpu::{EXIT_MSG_MAX_LENGTH, Exit, GUEST_RESET_PSTATE, VCpuReg};
    use gaon_vmm::fdt::{self, Board, Device};
    use gaon_vmm::gic::Version;
    use gaon_vmm::layout;
    use gaon_vmm::probe::{GuestAccess, ProbeError, Probes, THREAD_REGS};
    use gaon_vmm::psci::MAX_VCPUS;
    use gaon_vmm::vm::{ControlError, Hyp, Reply, SchedAnswer, SchedCall, Vm};
    use libl4::alloc::Heap;
    use libl4::cap::{CNode, Frame, IrqHandler, Tcb, VCpu, VSpace};
    use libl4::idl::console::{ConsoleClient, ConsoleError};
    use libl4::rpc::{CallError, Dispatch, EndpointTransport, Incoming};
    use libl4::server::{FAULT_BADGE, Handler, Server};
    use libl4::time::counter;
    use libl4::{ObjType, Rights, println, start};
    use zerocopy::FromBytes;

    use crate::sched::{self, SchedClient, SchedError};
    use crate::vmm::{self, VmmError, VmmServer};

    // A VM has a control channel only if the description gives it clients, and a
    // scheduling policy server only if its `[[vm]]` has a `sched` table.
    libl4::serves_optional!(vmm::INTERFACE);
    libl4::uses_optional!(sched::INTERFACE);

    /// Where the VMM maps guest RAM in its own address space (above the heap's
    /// addresses, below the stack).
    pub const WINDOW: u64 = 0x50_0000_0000;
    /// Guest RAM frames: 2 MiB.
    const BLOCK: u64 = 2 << 20;
    /// The Rust heap (the device tree is built in it).
    const RUST_HEAP: usize = 128 << 10;
    /// The badge of the console's signal that input waits (IRQ grants have the low bits
    /// of the VMM's notification).
    const INPUT_BIT: u64 = 1 << 62;

    #[global_allocator]
    static ALLOC: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();
    static mut RUST_HEAP_MEM: [u8; RUST_HEAP] = [0; RUST_HEAP];

    /// Guest RAM as the VMM sees it, at [`WINDOW`].
    #[allow(unsafe_code)]
    mod window {
        /// Copy `bytes` to `va`.
        pub fn write(va: u64, bytes: &[u8]) {
            // SAFETY: callers pass an address from `Kernel::ram`, which checked that
            // `[va, va + len)` lies in guest RAM, mapped read-write at WINDOW for good;
            // the guest may write it meanwhile, which only changes the bytes.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), va as *mut u8, bytes.len()) };
        }

        /// Store `word` at `va` (4-byte aligned) in one access: a vCPU that fetches
        /// the instruction there sees the old one or the new one, never half of each.
        pub fn write_word(va: u64, word: u32) {
            debug_assert!(va.is_multiple_of(4));
            // SAFETY: as for `write`, and the caller checked the alignment.
            unsafe { core::ptr::write_volatile(va as *mut u32, word) };
        }

        /// Copy `buf.len()` bytes from `va` to `buf`.
        pub fn read(va: u64, buf: &mut [u8]) {
            // SAFETY: as for `write`.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, buf.as_mut_ptr(), buf.len()) };
        }

        /// Load from the page below the window, which nothing maps: the VMM faults (the
        /// test device's `CRASH`, a VMM with a bug).
        pub fn fault() {
            // SAFETY: a volatile load of an unmapped address has no effect in this
            // program: it faults, and the root server reclaims the VMM.
            let _ = unsafe { core::ptr::read_volatile((super::WINDOW - 0x1000) as *const u64) };
        }
    }

    /// What stops a VM from being built.
    type Fail = &'static str;

    fn ok<T>(r: Result<T, libl4::Error>, what: Fail) -> Result<T, Fail> {
        r.map_err(|e| {
            println!("vmm: {what}: {e:?}");
            what
        })
    }

    /// The kernel side of a running VM: its vCPUs and its memory.
    struct Kernel {
        vcpus: [(Tcb, VCpu); MAX_VCPUS],
        count: usize,
        ram_base: u64,
        ram_size: u64,
        cntvoff: u64,
        /// Forwarded lines of pass-through devices: (INTID, its handler, its
        /// notification bit).
        forwarded: Forwarded,
        /// What the VM was made from, and its GIC: to load the guest again at a reset.
        cfg: VmConfig,
        version: Version,
        /// The scheduling policy server, if it manages this VM.
        sched: Option<SchedClient<EndpointTransport>>,
    }

    type Forwarded = heapless::Vec<(u32, IrqHandler, u64), MAX_PASSTHROUGH>;

    impl Kernel {
        fn ram(&self, ipa: u64, len: usize) -> Option<u64> {
            let off = ipa.checked_sub(self.ram_base)?;
            (off.checked_add(len as u64)? <= self.ram_size).then_some(WINDOW + off)
        }

        /// Put vCPU `v` (stopped) in the state PSCI gives a CPU coming on: out of reset
        /// (EL1h, interrupts masked, MMU off, nothing pending: `VCpuReset`), at `entry`
        /// with x0 = `x0`.
        fn reset(&self, v: usize, entry: u64, x0: u64) -> Result<(), libl4::Error> {
            let (t, vc) = self.vcpus[v];
            vc.reset()?;
            vc.write_regs(VCpuReg::Cntvoff as u64, &[self.cntvoff, v as u64])?;
            t.write_registers(REG_PC, &[entry, 0, GUEST_RESET_PSTATE, x0])
        }
    }

    impl Kernel {
        /// The policy server's answer to a guest's scheduling hypercall (`None`: the
        /// VM has no policy server). A `RETRY` time goes from the counter to the
        /// guest's virtual counter.
        fn ask_sched(&self, vcpu: usize, call: SchedCall) -> Option<SchedAnswer> {
            let s = self.sched.as_ref()?;
            let v = vcpu as u8;
            let answer = match call {
                SchedCall::LlEnter => s.ll_enter(v).map(|()| SchedAnswer::Done),
                SchedCall::LlLeave => s.ll_leave(v).map(|()| SchedAnswer::Done),
                SchedCall::State => s.state(v).map(|w| SchedAnswer::State([w[0], w[1], w[2]])),
            };
            Some(match answer {
                Ok(a) => a,
                Err(CallError::Remote(SchedError::Denied)) => SchedAnswer::Denied,
                Err(CallError::Remote(SchedError::TooEarly)) => match s.state(v) {
                    Ok(w) => SchedAnswer::Retry(w[3].saturating_sub(self.cntvoff)),
                    Err(_) => SchedAnswer::Failed,
                },
                Err(e) => {
                    println!("vmm: the scheduling policy server refused vCPU {vcpu}'s {call:?}: {e:?}");
                    SchedAnswer::Failed
                }
            })
        }
    }

    impl GuestAccess for Kernel {
        fn read_guest(&mut self, ipa: u64, buf: &mut [u8]) -> bool {
            let Some(va) = self.ram(ipa, buf.len()) else {
                return false;
            };
            window::read(va, buf);
            true
        }

        fn write_guest(&mut self, ipa: u64, bytes: &[u8]) -> bool {
            let Some(va) = self.ram(ipa, bytes.len()) else {
                return false;
            };
            // Under QEMU a write to guest code drops what was translated from it. On
            // hardware the new instruction would also need cleaning to the point of
            // unification and an instruction-cache invalidate, which user code may
            // not do under Gaon yet (docs/trace.md says so).
            match <[u8; 4]>::try_from(bytes) {
                // An instruction (a probe's HVC, or the original back): one store.
                Ok(word) if va.is_multiple_of(4) => window::write_word(va, u32::from_le_bytes(word)),
                _ => window::write(va, bytes),
            }
            true
        }

        fn el1_regs(&mut self, vcpu: usize, first: VCpuReg, out: &mut [u64]) -> bool {
            self.vcpus[..self.count]
                .get(vcpu)
                .is_some_and(|&(_, v)| v.read_regs_into(first as u64, out).is_ok())
        }

        fn set_el1_reg(&mut self, vcpu: usize, reg: VCpuReg, value: u64) {
            if let Some(&(_, v)) = self.vcpus[..self.count].get(vcpu) {
                let _ = v.write_regs(reg as u64, &[value]);
            }
        }

        fn thread_regs(&mut self, vcpu: usize, out: &mut [u64; THREAD_REGS]) -> bool {
            self.vcpus[..self.count]
                .get(vcpu)
                .is_some_and(|&(t, _)| t.read_registers_into(REG_PC, out).is_ok())
        }

        fn set_gpr(&mut self, vcpu: usize, r: usize, value: u64) {
            let _ = self.vcpus[vcpu.min(MAX_VCPUS - 1)]
                .0
                .write_registers(REG_X0 + r as u64, &[value]);
        }

        fn trace(&mut self, vcpu: usize, event: Event, a: u64, b: u64) -> bool {
            self.vcpus[..self.count]
                .get(vcpu)
                .is_some_and(|&(_, v)| v.trace(event as u64, a, b) == Ok(true))
        }

        fn log(&mut self, args: core::fmt::Arguments<'_>) {
            println!("{args}");
        }
    }

    impl Hyp for Kernel {
        fn inject(&mut self, vcpu: usize, intid: u32, priority: u8, level: bool) {
            // A device's interrupt (an SPI: the UART, the test device, a pass-through
            // line) wakes the vCPU by I/O, which the policy server may BOOST. Told
            // before the injection, so the class is right when the vCPU wakes.
            if intid >= 32
                && let Some(s) = &self.sched
            {
                let _ = s.io_wake(vcpu as u8);
            }
            if let Some(&(_, v)) = self.vcpus[..self.count].get(vcpu)
                && let Err(e) = if level {
                    v.inject_level(u64::from(intid), u64::from(priority))
                } else {
                    v.inject(u64::from(intid), u64::from(priority))
                }
            {
                println!("vmm: inject {intid} into vCPU {vcpu}: {e:?}");
            }
        }

        fn set_vppi(&mut self, vcpu: usize, intid: u32, enabled: bool, priority: u8) {
            if let Some(&(_, v)) = self.vcpus[..self.count].get(vcpu) {
                let _ = v.set_vppi(u64::from(intid), enabled, u64::from(priority));
            }
        }

        fn console(&mut self, bytes: &[u8]) {
            for chunk in bytes.utf8_chunks() {
                libl4::print!("{}", chunk.valid());
                if !chunk.invalid().is_empty() {
                    libl4::print!("\u{fffd}");
                }
            }
        }

        fn start_vcpu(&mut self, vcpu: usize, entry: u64, context: u64) -> bool {
            let started = vcpu < self.count
                && self
                    .reset(vcpu, entry, context)
                    .and_then(|()| self.vcpus[vcpu].0.resume())
                    .is_ok();
            if !started {
                println!("vmm: cannot start vCPU {vcpu}");
            }
            started
        }

        fn stop_vcpu(&mut self, vcpu: usize) {
            if let Some(&(t, _)) = self.vcpus[..self.count].get(vcpu) {
                let _ = t.suspend();
            }
        }

        fn irq_done(&mut self, intid: u32) {
            if let Some((_, h, _)) = self.forwarded.iter().find(|(i, _, _)| *i == intid)
                && let Err(e) = h.ack()
            {
                println!("vmm: acknowledge line {intid}: {e:?}");
            }
        }

        fn resume_vcpu(&mut self, vcpu: usize) {
            if let Some(&(t, _)) = self.vcpus[..self.count].get(vcpu)
                && t.resume().is_err()
            {
                println!("vmm: cannot resume vCPU {vcpu}");
            }
        }

        fn delay(&mut self, vcpu: usize, ticks: u64) {
            // A register read takes the vCPU's state out of its CPU.
            if let Some(&(_, v)) = self.vcpus[..self.count].get(vcpu) {
                let _ = v.read_regs(VCpuReg::CntvCtlEl0 as u64, 1);
            }
            let until = counter().saturating_add(ticks);
            while counter() < until {
                core::hint::spin_loop();
            }
        }

        fn gprs(&mut self, vcpu: usize) -> [u64; 31] {
            let mut x = [0u64; 31];
            let t = self.vcpus[vcpu.min(MAX_VCPUS - 1)].0;
            for first in (0..31).step_by(4) {
                let n = (31 - first).min(4);
                if let Ok(r) = t.read_registers(REG_X0 + first as u64, n as u64) {
                    x[first..first + n].copy_from_slice(&r[..n]);
                }
            }
            x
        }

        fn crash(&mut self) {
            println!("vmm: the guest asked the test device to crash this VMM");
            window::fault();
        }

        fn sched(&mut self, vcpu: usize, call: SchedCall) -> Option<SchedAnswer> {
            self.ask_sched(vcpu, call)
        }

        fn reload(&mut self) -> Option<(u64, u64)> {
            match boot_image(self) {
                Ok(start) => {
                    println!("vmm: reset: the guest is loaded again");
                    Some(start)
                }
                Err(e) => {
                    println!("vmm: reset: cannot load the guest again: {e}");
                    None
                }
            }
        }
    }

    /// Load the guest program (and initrd) and write the device tree into RAM; returns
    /// where vCPU 0 starts, `(entry, the device tree's address)`.
    fn boot_image(k: &Kernel) -> Result<(u64, u64), Fail> {
        let cfg = &k.cfg;
        let guest = start::module("guest").map_err(|_| "no guest module")?;
        let (entry, dtb, initrd) = load(k, cfg, guest)?;
        let len = cfg.bootargs.iter().position(|&b| b == 0).unwrap_or(cfg.bootargs.len());
        let bootargs = &cfg.bootargs[..len];
        let board = Board {
            ram_base: cfg.ram_base,
            ram_size: cfg.ram_size,
            vcpus: k.count as u32,
            gic: k.version,
            bootargs: core::str::from_utf8(bootargs).unwrap_or(""),
            initrd,
            testdev: cfg.flags & VM_TESTDEV != 0,
            passthrough: &devices(cfg),
            // No entropy source here: the counter's low bits at boot (differs from
            // boot to boot on hardware; not a secret from the guest's neighbours).
            seed: counter().wrapping_mul(0x2545_f491_4f6c_dd1d),
        };
        let blob = fdt::device_tree(&board).map_err(|_| "device tree")?;
        let at = k.ram(dtb, blob.len()).ok_or("the device tree does not fit")?;
        window::write(at, &blob);
        Ok((entry, dtb))
    }

    /// Where the guest starts: `(entry, the device tree's address)`, after loading
    /// `guest` into RAM (an ELF at its physical addresses, or a Linux `Image` at
    /// its text offset from the RAM base). The device tree goes in the last 2 MiB.
    /// Also the initrd (module grant `initrd`, for `VM_INITRD`): page-aligned right
    /// below the device tree; returns its `[start, end)` too.
    fn load(k: &Kernel, cfg: &VmConfig, guest: &[u8]) -> Result<Loaded, Fail> {
        let le64 = |at: usize| {
            guest
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let (entry, end) = if cfg.flags & VM_LINUX_IMAGE != 0 {
            let (text_offset, image_size) = (le64(8).ok_or("short Image")?, le64(16).ok_or("short Image")?);
            let at = cfg.ram_base + text_offset;
            let size = image_size.max(guest.len() as u64);
            let va = k.ram(at, size as usize).ok_or("the Image does not fit in RAM")?;
            window::write(va, guest);
            // The rest of its image (.bss) zeroed too, as after a reset RAM is not.
            zero(va + guest.len() as u64, size - guest.len() as u64);
            (at, at + size)
        } else {
            let elf = xmas_elf::ElfFile::new(guest).map_err(|_| "the guest is no ELF")?;
            let mut end = 0;
            for ph in elf.program_iter() {
                if ph.get_type() != Ok(xmas_elf::program::Type::Load) || ph.mem_size() == 0 {
                    continue;
                }
                let (off, file) = (ph.offset() as usize, ph.file_size() as usize);
                if ph.file_size() > ph.mem_size() {
                    return Err("an ELF segment has more file bytes than memory");
                }
                let va = k
                    .ram(ph.physical_addr(), ph.mem_size() as usize)
                    .ok_or("an ELF segment is outside RAM")?;
                let bytes = guest.get(off..off + file).ok_or("an ELF segment is outside the file")?;
                window::write(va, bytes);
                // Its zero-filled rest (.bss): fresh RAM is zero, RAM after a reset not.
                zero(va + file as u64, ph.mem_size() - file as u64);
                end = end.max(ph.physical_addr() + ph.mem_size());
            }
            (elf.header.pt2.entry_point(), end)
        };
        let dtb = cfg.ram_base + cfg.ram_size - BLOCK;
        if end > dtb {
            return Err("the guest program reaches into the device tree's 2 MiB at the end of RAM");
        }
        let initrd = if cfg.flags & VM_INITRD != 0 {
            let bytes = start::module("initrd").map_err(|_| "no initrd module")?;
            let at = dtb.checked_sub(bytes.len() as u64).ok_or("the initrd does not fit")? & !0xfff;
            if at < end {
                return Err("the initrd does not fit between the guest program and the device tree");
            }
            let va = k.ram(at, bytes.len()).ok_or("the initrd does not fit")?;
            window::write(va, bytes);
            Some((at, at + bytes.len() as u64))
        } else {
            None
        };
        Ok((entry, dtb, initrd))
    }

    /// Zero `len` bytes of guest RAM at `va` (in the window; checked by the caller).
    fn zero(va: u64, len: u64) {
        static ZEROS: [u8; 4096] = [0; 4096];
        let mut at = va;
        while at < va + len {
            let n = (va + len - at).min(ZEROS.len() as u64);
            window::write(at, &ZEROS[..n as usize]);
            at += n;
        }
    }

    /// What [`load`] says: the entry, the device tree's address, the initrd's range.
    type Loaded = (u64, u64, Option<(u64, u64)>);

    /// Guest RAM: 2 MiB frames carved one after the other from the start of the heap
    /// (so the small objects after them waste no alignment), mapped at the guest's RAM
    /// base in a new VSpace (returned) and at [`WINDOW`] here.
    fn guest_ram(heap: &mut Heap, cfg: &VmConfig) -> Result<VSpace, Fail> {
        let own = VSpace(server_slot::VSPACE);
        let cnode = CNode(server_slot::CNODE);
        let blocks = cfg.ram_size / BLOCK;
        let first = ok(heap.slot(), "slot")?;
        for i in 0..blocks {
            let s = if i == 0 { first } else { ok(heap.slot(), "slot")? };
            if s != first + i {
                return Err("the heap's slots are not consecutive");
            }
            ok(heap.alloc_at(ObjType::Frame, 21, s), "guest RAM")?;
        }
        let vs = VSpace(ok(heap.alloc(ObjType::VSpace, 0), "the guest's VSpace")?);
        for i in 0..blocks {
            let f = first + i;
            let rwx = Rights::READ | Rights::WRITE | Rights::EXECUTE;
            ok(
                heap.map(vs, Frame(f), cfg.ram_base + i * BLOCK, rwx, false),
                "map guest RAM",
            )?;
            let copy = ok(heap.slot(), "slot")?;
            ok(cnode.copy(copy, f, Rights::all()), "copy a RAM frame")?;
            let rw = Rights::READ | Rights::WRITE;
            ok(
                heap.map(own, Frame(copy), WINDOW + i * BLOCK, rw, false),
                "map guest RAM here",
            )?;
        }
        Ok(vs)
    }

    /// The pass-through devices of `cfg` as the device tree has them.
    fn devices(cfg: &VmConfig) -> heapless::Vec<Device<'_>, MAX_PASSTHROUGH> {
        cfg.passthrough
            .iter()
            .filter(|p| p.name[0] != 0)
            .map(|p| {
                let name = gaon_abi::boot::name_bytes(&p.name);
                let len = p.compatible.iter().rposition(|&b| b != 0).map_or(0, |i| i + 2);
                Device {
                    name: core::str::from_utf8(name).unwrap_or("device"),
                    base: p.paddr,
                    size: p.size,
                    irq: (p.irq != 0).then_some(p.irq),
                    compatible: &p.compatible[..len.min(p.compatible.len())],
                }
            })
            .collect()
    }

    /// Map the pass-through devices' pages into the guest at their physical addresses
    /// (device memory) and take their lines (forwarded as the same INTIDs).
    fn passthrough(heap: &mut Heap, vs: VSpace, cfg: &VmConfig) -> Result<Forwarded, Fail> {
        let mut forwarded = Forwarded::new();
        for d in devices(cfg) {
            for k in 0..d.size / 0x1000 {
                let mut grant = heapless::String::<48>::new();
                let _ = core::fmt::write(&mut grant, format_args!("{}.{k}", d.name));
                let (frame, pa) = start::device_frame(&grant).map_err(|_| "a pass-through page was not given")?;
                let rw = Rights::READ | Rights::WRITE;
                ok(heap.map(vs, Frame(frame), pa, rw, true), "map a pass-through page")?;
            }
            if let Some(line) = d.irq {
                let (h, bit) = start::irq(d.name).map_err(|_| "a pass-through line was not given")?;
                let _ = forwarded.push((line, h, bit));
            }
        }
        Ok(forwarded)
    }

    /// The console, for the guest UART's input: with a badged copy of this server's
    /// notification it signals when input waits for the VM (with the focus, taken at
    /// once for a VM with `focus = true`). `None` without a console channel.
    fn console_input(heap: &mut Heap, cfg: &VmConfig) -> Option<ConsoleClient<EndpointTransport>> {
        let console = ConsoleClient::new(EndpointTransport {
            ep: start::client("console").ok()?.0,
        });
        let slot = heap.slot().ok()?;
        CNode(server_slot::CNODE)
            .mint(slot, server_slot::NOTIFICATION, Rights::all(), INPUT_BIT)
            .ok()?;
        if cfg.flags & VM_CONSOLE_FOCUS != 0 {
            let _ = console.focus();
        }
        // The guest echoes what it reads, as a terminal's far end does.
        let _ = console.set_echo(false);
        if let Err(e) = console.notify_input(slot) {
            println!("vmm: the console will not say when input comes: {e:?}");
            return None;
        }
        Some(console)
    }

    /// Build the VM; its vCPUs' exits come to `channel` (badged [`FAULT_BADGE`] |
    /// vCPU + 1), or without one to an endpoint of its own. Returns the endpoint and
    /// the console (for input) too.
    fn build(cfg: &VmConfig, channel: Option<u64>) -> Result<Built, Fail> {
        let mut heap = Heap::from_start().map_err(|_| "no heap")?;
        let me = Tcb(server_slot::TCB);
        let (_, prio, _) = ok(me.state(), "own priority")?;
        let core = ok(me.cpu(), "own core")?;
        let cnode = CNode(server_slot::CNODE);
        let vs = guest_ram(&mut heap, cfg)?;
        // GICv2: the virtual CPU interface's pages at the guest's GICC.
        let mut version = Version::V3;
        for (i, name) in ["gicv0", "gicv1"].into_iter().enumerate() {
            if let Ok(Some((frame, _))) = start::vgic_cpu(name) {
                version = Version::V2;
                let rw = Rights::READ | Rights::WRITE;
                ok(
                    heap.map(vs, Frame(frame), layout::GICC + 0x1000 * i as u64, rw, true),
                    "map GICV",
                )?;
            }
        }
        let ep = match channel {
            Some(ep) => ep,
            None => ok(heap.alloc(ObjType::Endpoint, 0), "endpoint")?,
        };
        let vcpus = (cfg.vcpus as usize).clamp(1, MAX_VCPUS);
        let mut k = Kernel {
            vcpus: [(Tcb(0), VCpu(0)); MAX_VCPUS],
            count: vcpus,
            ram_base: cfg.ram_base,
            ram_size: cfg.ram_size,
            // The guest's virtual counter starts at zero.
            cntvoff: counter(),
            forwarded: passthrough(&mut heap, vs, cfg)?,
            cfg: *cfg,
            version,
            sched: start::client("sched")
                .ok()
                .map(|e| SchedClient::new(EndpointTransport { ep: e.0 })),
        };
        for v in 0..vcpus {
            let badged = ok(heap.slot(), "slot")?;
            ok(
                cnode.mint(badged, ep, Rights::all(), FAULT_BADGE | (v as u64 + 1)),
                "badge the exit endpoint",
            )?;
            let t = Tcb(ok(heap.alloc(ObjType::Tcb, 0), "vCPU thread")?);
            ok(t.set_space(cnode, vs, badged), "vCPU space")?;
            let vc = VCpu(ok(heap.alloc(ObjType::VCpu, 0), "VCpu")?);
            ok(vc.bind(t), "bind the VCpu")?;
            // Just below the VMM's: an interrupt the VMM forwards (a pass-through line,
            // console input) or a control request preempts the guest on their core.
            ok(t.set_priority(prio.saturating_sub(1).max(1), me), "vCPU priority")?;
            // vCPU n on the n-th core from the VMM's (its own where that core is not up).
            let spread = (core + v as u64) % MAX_VCPUS as u64;
            if t.set_affinity(spread).is_err() {
                ok(t.set_affinity(core), "vCPU core")?;
            }
            ok(
                t.set_name(&gaon_vmm::vcpu_thread_name(libl4::start::name(), v)),
                "vCPU name",
            )?;
            k.vcpus[v] = (t, vc);
            // Managed: the policy server gives the thread its scheduling context and
            // priority, before it ever runs.
            if let Some(s) = &k.sched {
                match s.add_vcpu(v as u8, t.0) {
                    Ok(()) => {}
                    Err(e) => {
                        println!("vmm: the scheduling policy server did not take vCPU {v}: {e:?}");
                        return Err("register a vCPU with the scheduling policy server");
                    }
                }
            }
        }
        if k.vcpus[0].1.inject(1020, 0) == Err(libl4::Error::IllegalOperation) {
            return Err("this board has no virtual CPU interface the kernel drives");
        }
        let (entry, dtb) = boot_image(&k)?;
        ok(k.reset(0, entry, dtb), "vCPU 0's registers")?;
        println!(
            "vmm: {} MiB at {:#x}, {vcpus} vCPU(s), GIC{}, entry {entry:#x}{}, counter offset {}",
            cfg.ram_size >> 20,
            cfg.ram_base,
            if version == Version::V2 { "v2" } else { "v3" },
            if cfg.flags & VM_INITRD != 0 { ", initrd" } else { "" },
            k.cntvoff
        );
        let mut vm = Vm::new(vcpus, version, cfg.flags & VM_TESTDEV != 0);
        if cfg.probes.iter().any(|p| p.name[0] != 0) {
            vm.set_probes(Probes::new(&cfg.probes, cfg.task, &mut |a| println!("{a}")));
        }
        for &(line, _, _) in &k.forwarded {
            if !vm.forward(line) {
                return Err("a pass-through line is no SPI");
            }
        }
        if cfg.flags & VM_MANUAL_START == 0 && vm.start(&mut k).is_err() {
            return Err("start vCPU 0");
        }
        let console = console_input(&mut heap, cfg);
        Ok((k, vm, ep, console))
    }

    /// What [`build`] makes.
    type Built = (Kernel, Vm, u64, Option<ConsoleClient<EndpointTransport>>);

    /// The VMM: the VM, whether anyone controls it (it has a `vmm` channel), and the
    /// console its UART's input comes from.
    struct Vmm {
        k: Kernel,
        vm: Vm,
        controlled: bool,
        console: Option<ConsoleClient<EndpointTransport>>,
        /// The console may have more input than the UART took.
        input_waits: bool,
    }

    impl Vmm {
        /// Move console input into the guest's UART while it has room: until the
        /// console has no more (it signals again when more comes), or the UART is full
        /// (the guest's next exit tries again).
        fn pull_input(&mut self) {
            let Some(console) = &self.console else { return };
            loop {
                let room = self.vm.uart_room().min(256);
                if room == 0 {
                    self.input_waits = true;
                    return;
                }
                match console.read(room as u32) {
                    Ok(bytes) if !bytes.is_empty() => {
                        self.vm.uart_input(&bytes, &mut self.k);
                    }
                    Err(CallError::Remote(ConsoleError::Empty | ConsoleError::NotFocused)) | Ok(_) => {
                        self.input_waits = false;
                        return;
                    }
                    Err(e) => {
                        println!("vmm: console input: {e:?}");
                        self.input_waits = false;
                        return;
                    }
                }
            }
        }

        /// An exit of vCPU `vcpu` (a message on a vCPU's fault endpoint): answer it as
        /// the VM says.
        fn exit(&mut self, vcpu: usize, msg: &mut Incoming<'_>) -> Dispatch {
            let mut w = [0u64; EXIT_MSG_MAX_LENGTH];
            let words = msg.words();
            let n = words.len().min(w.len());
            w[..n].copy_from_slice(&words[..n]);
            let Some(exit) = Exit::decode(msg.label, w).filter(|_| vcpu < self.k.count) else {
                println!("vmm: vCPU {vcpu}: message label {} is no exit", msg.label);
                return Dispatch::NoReply;
            };
            let reply = self.vm.handle(vcpu, exit, &mut self.k);
            if self.input_waits {
                self.pull_input();
            }
            match reply {
                Reply::Answer { label, words, len } => {
                    let _ = msg.reply(&words[..len]);
                    Dispatch::Reply { label, len }
                }
                Reply::None => Dispatch::NoReply,
                Reply::Exit(status) => {
                    println!("vmm: the guest is done (status {status})");
                    self.vm.end(status, &mut self.k);
                    if !self.controlled {
                        start::exit(u8::try_from(status).unwrap_or(u8::MAX));
                    }
                    Dispatch::NoReply
                }
            }
        }
    }

    impl Handler for Vmm {
        fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
            if msg.badge & FAULT_BADGE != 0 {
                return self.exit(vcpu_of(msg.badge), msg);
            }
            vmm::dispatch(self, msg)
        }

        fn notified(&mut self, bits: u64) {
            if bits & INPUT_BIT != 0 {
                self.pull_input();
            }
            for i in 0..self.k.forwarded.len() {
                let (line, _, bit) = self.k.forwarded[i];
                if bits & bit != 0 {
                    self.vm.line_raised(line, &mut self.k);
                }
            }
        }

        fn fault(&mut self, badge: u64, fault: Fault) -> Option<u64> {
            // The guest's thread itself failed (no exit): it stays stopped.
            let vcpu = vcpu_of(badge);
            println!("vmm: vCPU {vcpu} stopped: {fault:?}");
            self.k.stop_vcpu(vcpu);
            None
        }
    }

    /// The vCPU a fault-endpoint badge names (`FAULT_BADGE | vCPU + 1`; out of range
    /// for anything else).
    const fn vcpu_of(badge: u64) -> usize {
        ((badge & !FAULT_BADGE) as usize).wrapping_sub(1)
    }

    fn control(r: Result<(), ControlError>) -> Result<(), VmmError> {
        r.map_err(error)
    }

    const fn probe_error(e: ProbeError) -> VmmError {
        match e {
            ProbeError::NoProbe => VmmError::NoProbe,
            ProbeError::NoChange => VmmError::NoChange,
        }
    }

    const fn error(e: ControlError) -> VmmError {
        match e {
            ControlError::Ended => VmmError::Ended,
            ControlError::NoChange => VmmError::NoChange,
            ControlError::NotEnded => VmmError::NotEnded,
        }
    }

    impl VmmServer for Vmm {
        fn start(&mut self, _client: u64) -> Result<(), VmmError> {
            control(self.vm.start(&mut self.k))
        }

        fn stop(&mut self, _client: u64) -> Result<(), VmmError> {
            control(self.vm.stop(&mut self.k))
        }

        fn state(&mut self, _client: u64) -> u8 {
            self.vm.state() as u8
        }

        fn exits(&mut self, _client: u64) -> u64 {
            self.vm.exits()
        }

        fn add_probe(&mut self, _client: u64, symbol: &str) -> Result<(), VmmError> {
            self.vm.add_probe(symbol).map_err(probe_error)
        }

        fn remove_probe(&mut self, _client: u64, symbol: &str) -> Result<(), VmmError> {
            self.vm.remove_probe(symbol, &mut self.k).map_err(probe_error)
        }

        fn probe_hits(&mut self, _client: u64, symbol: &str) -> Result<u64, VmmError> {
            self.vm.probe_hits(symbol).map_err(probe_error)
        }

        fn exit_status(&mut self, _client: u64) -> Result<u64, VmmError> {
            self.vm.exit_status().map_err(error)
        }
    }

    pub fn run() -> u8 {
        #[allow(unsafe_code)]
        // SAFETY: the Rust heap's memory is this static, handed to the allocator once,
        // before anything allocates, and never touched otherwise.
        unsafe {
            ALLOC.lock().init((&raw mut RUST_HEAP_MEM).cast(), RUST_HEAP);
        }
        let Ok(cfg) = start::module("vm-config").map(VmConfig::read_from_bytes) else {
            println!("vmm: no vm-config module");
            return 1;
        };
        let Ok(cfg) = cfg.map_err(|_| ()).and_then(|c| {
            if c.magic == VM_CONFIG_MAGIC && c.version == VM_CONFIG_VERSION {
                Ok(c)
            } else {
                Err(())
            }
        }) else {
            println!("vmm: the vm-config module is no VmConfig");
            return 1;
        };
        // One endpoint for exits and control: the `vmm` channel's if the VM has one,
        // else one of its own.
        let channel = start::serve("vmm").ok().map(|e| e.0);
        let (k, vm, ep, console) = match build(&cfg, channel) {
            Ok(b) => b,
            Err(e) => {
                println!("vmm: cannot build the VM: {e}");
                return 1;
            }
        };
        let mut vmm = Vmm {
            k,
            vm,
            controlled: channel.is_some(),
            console,
            input_waits: false,
        };
        Server {
            ep,
            reply: start::REPLY,
            cap_slot: None,
        }
        .run(&mut vmm)
    }
}

libl4::main!(app::run);
