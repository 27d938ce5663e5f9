//! Creating the root server: its objects, its address space, its capabilities to all
//! remaining memory, and the boot-info page that lists them.

use gaon_abi::boot::{NAME_LEN, ROOT_STACK_SIZE, ROOT_STACK_TOP};
use gaon_abi::bootinfo::{
    BOOTINFO_MAGIC, BOOTINFO_VADDR, BootInfo, MAX_BOOT_MODULES, MAX_BOOT_UNTYPED, MODULES_VADDR, ModuleDesc,
    ROOT_CNODE_RADIX, ROOT_IPC_BUFFER_VADDR, SlotRegion, UntypedDesc, slot as rs,
};
use gaon_abi::object::{CNODE_MAX_RADIX, PAGE_BITS, SCHED_CONTEXT_BITS, SLOT_BITS, TCB_BITS, UNTYPED_MAX_BITS};
use gaon_abi::{ObjType, Rights};

use super::cspace::{Kslots, slot};
use super::object::create_object;
use super::object::sched_context::SchedContext;
use super::object::tcb::{self, SLOT_CSPACE, SLOT_IPC_BUFFER, SLOT_VSPACE, Tcb};
use super::{Kernel, Platform};
use crate::cap::{Cap, FLAG_DEVICE};
use crate::cdt::{self, Slot};
use crate::obj::{self, Ptr};
use crate::vspace::{self, MapAttrs, Table};

const PAGE: usize = 1 << PAGE_BITS;
static_assertions::const_assert!(ROOT_CNODE_RADIX <= CNODE_MAX_RADIX);

/// Boot-time memory: a bump allocator over the RAM after the kernel and boot image.
/// What it has not handed out when the root server is built becomes untyped memory.
#[derive(Debug)]
pub struct BootAlloc {
    /// First free byte.
    pub next: usize,
    /// One past the last.
    pub end: usize,
    /// Bytes handed out so far (including alignment padding).
    pub used: usize,
}

impl BootAlloc {
    /// `2^bits` zeroed bytes aligned to their size.
    #[allow(unsafe_code, reason = "zeroes the memory it hands out, which it owns")]
    pub fn alloc(&mut self, bits: u8) -> Option<usize> {
        let size = 1usize << bits;
        let pa = self.next.checked_next_multiple_of(size)?;
        let end = pa.checked_add(size).filter(|&e| e <= self.end)?;
        self.used += end - self.next;
        self.next = end;
        // SAFETY: `pa..end` lies in the free RAM the allocator was given (mapped,
        // writable, referenced by nothing) and is handed out only now.
        unsafe { obj::zero(pa, size) };
        Some(pa)
    }

    /// Like [`BootAlloc::alloc`], for a large alignment: also says which bytes it
    /// skipped to align (`(start, end)`, maybe empty), which are still free (the caller
    /// hands them over). From the low end, so the large aligned blocks of the high end
    /// stay whole for the root server's untyped (a VM's RAM needs them).
    pub fn alloc_keeping_gap(&mut self, bits: u8) -> Option<(usize, (usize, usize))> {
        let start = self.next;
        let pa = self.alloc(bits)?;
        self.used -= pa - start;
        Some((pa, (start, pa)))
    }
}

/// One loadable segment of the root server.
#[derive(Clone, Copy, Debug)]
pub struct BootSegment {
    /// Where it goes.
    pub vaddr: u64,
    /// Where its file bytes are now (inside the boot image).
    pub src: usize,
    /// Bytes to copy.
    pub filesz: usize,
    /// Bytes in memory (the rest is zero).
    pub memsz: usize,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub execute: bool,
}

/// One boot module: a file in the boot image, mapped read-only for the root server.
#[derive(Clone, Copy, Debug)]
pub struct BootModule {
    /// NUL-padded name.
    pub name: [u8; NAME_LEN],
    /// Where it is.
    pub pa: usize,
    /// Its size.
    pub size: usize,
}

/// What the kernel knows about the root server when it builds it.
#[derive(Clone, Copy, Debug)]
pub struct RootImage<'a> {
    /// Segments.
    pub segments: &'a [BootSegment],
    /// Entry point.
    pub entry: u64,
    /// Boot modules.
    pub modules: &'a [BootModule],
    /// Device memory regions `(base, size)` user level may map (page aligned).
    pub device: &'a [(usize, usize)],
    /// Counter frequency, for the boot info.
    pub timer_hz: u64,
    /// The cores that came up (bit n: core n; core 0 always): each gets a SchedControl,
    /// and threads may be placed on them.
    pub cpus: u8,
    /// The GICv2 virtual CPU interface (GICV), where the kernel drives GICv2's virtual
    /// interface: its first two pages become frames for VMMs to map as a guest's GICC.
    pub vgic_cpu: Option<usize>,
}

/// Why the root server could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// Too little RAM.
    OutOfMemory,
    /// A segment or module does not fit the root server's address space.
    BadLayout,
}

impl<P: Platform> Kernel<P> {
    /// Build the root server from `image` with memory from `alloc`, hand it every
    /// remaining byte as untyped memory, and make it the running thread.
    #[allow(clippy::too_many_lines, reason = "one straight sequence of boot steps")]
    #[allow(unsafe_code, reason = "boot allocations vouch for the objects made in them")]
    pub fn boot_root(&mut self, image: &RootImage<'_>, alloc: &mut BootAlloc) -> Result<Ptr<Tcb>, BootError> {
        let oom = BootError::OutOfMemory;
        let cnode_bits = ROOT_CNODE_RADIX + SLOT_BITS;
        let cnode = alloc.alloc(cnode_bits).ok_or(oom)?;
        create_object(ObjType::CNode, cnode, cnode_bits);
        let root_slot = |i: u64| cnode + (i as usize) * core::mem::size_of::<Slot>();
        let mut cn_cap = Cap::new(ObjType::CNode, cnode, cnode_bits);
        cn_cap.set_guard(0, 64 - ROOT_CNODE_RADIX);
        let tcb_pa = alloc.alloc(TCB_BITS).ok_or(oom)?;
        create_object(ObjType::Tcb, tcb_pa, TCB_BITS);
        let vs = alloc.alloc(PAGE_BITS).ok_or(oom)?;
        let sc = alloc.alloc(SCHED_CONTEXT_BITS).ok_or(oom)?;
        create_object(ObjType::SchedContext, sc, SCHED_CONTEXT_BITS);
        let bi = alloc.alloc(PAGE_BITS).ok_or(oom)?;
        let ipcbuf = alloc.alloc(PAGE_BITS).ok_or(oom)?;
        let klog = alloc.alloc(PAGE_BITS).ok_or(oom)?;
        self.log_page = klog;

        let vmid = 1u16;
        let mut vs_cap = Cap::new(ObjType::VSpace, vs, PAGE_BITS);
        vs_cap.set_vmid(vmid);
        let root = vs_cap.vspace();
        self.vmids[usize::from(vmid)] = Some(root);

        let rw = MapAttrs {
            write: true,
            execute: false,
            device: false,
        };
        let ro = MapAttrs { write: false, ..rw };
        for seg in image.segments {
            let start = seg.vaddr & !(PAGE as u64 - 1);
            let end = seg
                .vaddr
                .checked_add(seg.memsz as u64)
                .filter(|&e| e <= vspace::IPA_LIMIT)
                .ok_or(BootError::BadLayout)?;
            let attrs = MapAttrs {
                write: seg.write,
                execute: seg.execute,
                device: false,
            };
            let mut va = start;
            while va < end {
                let pa = alloc.alloc(PAGE_BITS).ok_or(oom)?;
                // Copy the part of the file that lands in this page.
                let lo = va.max(seg.vaddr);
                let hi = (va + PAGE as u64).min(seg.vaddr + seg.filesz as u64);
                if hi > lo {
                    let n = (hi - lo) as usize;
                    let from = seg.src + (lo - seg.vaddr) as usize;
                    let to = pa + (lo - va) as usize;
                    // SAFETY: `from..from + n` is inside the boot image (a segment's
                    // file bytes), `to..to + n` inside the page just allocated, which
                    // nothing references yet; the image lies before the allocator's
                    // memory, so they do not overlap.
                    unsafe { obj::copy(from, to, n) };
                }
                if seg.execute {
                    self.platform.sync_icache(pa, PAGE);
                }
                boot_map(root, va, pa, 3, attrs, alloc)?;
                va += PAGE as u64;
            }
        }
        let stack_base = ROOT_STACK_TOP - ROOT_STACK_SIZE;
        for i in 0..(ROOT_STACK_SIZE as usize / PAGE) {
            let pa = alloc.alloc(PAGE_BITS).ok_or(oom)?;
            boot_map(root, stack_base + (i * PAGE) as u64, pa, 3, rw, alloc)?;
        }
        boot_map(root, BOOTINFO_VADDR, bi, 3, ro, alloc)?;
        boot_map(root, ROOT_IPC_BUFFER_VADDR, ipcbuf, 3, rw, alloc)?;
        let mut modules = [ModuleDesc::default(); MAX_BOOT_MODULES];
        let mut mva = MODULES_VADDR;
        for (m, desc) in image.modules.iter().zip(modules.iter_mut()) {
            let first = m.pa & !(PAGE - 1);
            let last = (m.pa + m.size).next_multiple_of(PAGE);
            desc.name = m.name;
            desc.vaddr = mva + (m.pa - first) as u64;
            desc.size = m.size as u64;
            for pa in (first..last).step_by(PAGE) {
                boot_map(root, mva, pa, 3, ro, alloc)?;
                mva += PAGE as u64;
            }
        }

        // Capabilities in the root CNode.
        let mut bi_cap = Cap::new(ObjType::Frame, bi, PAGE_BITS);
        bi_cap.set_mapped(Some((vmid, BOOTINFO_VADDR)));
        let mut ib_cap = Cap::new(ObjType::Frame, ipcbuf, PAGE_BITS);
        ib_cap.set_mapped(Some((vmid, ROOT_IPC_BUFFER_VADDR)));
        let mut sched_control = Cap::new(ObjType::SchedControl, 0, 0);
        sched_control.badge = 0;
        let fixed = [
            (rs::TCB, Cap::new(ObjType::Tcb, tcb_pa, TCB_BITS)),
            (rs::CNODE, cn_cap),
            (rs::VSPACE, vs_cap),
            (rs::IRQ_CONTROL, Cap::new(ObjType::IrqControl, 0, 0)),
            (rs::SCHED_CONTROL, sched_control),
            (rs::BOOTINFO_FRAME, bi_cap),
            (rs::IPC_BUFFER, ib_cap),
            (
                rs::SCHED_CONTEXT,
                Cap::new(ObjType::SchedContext, sc, SCHED_CONTEXT_BITS),
            ),
            (rs::DEBUG, Cap::new(ObjType::Debug, 0, 0)),
            (rs::KERNEL_LOG, Cap::new(ObjType::Frame, klog, PAGE_BITS)),
            (rs::TRACE_CONTROL, Cap::new(ObjType::TraceControl, 0, 0)),
            // Every VMID but 0 (unused) and the root's own.
            (
                rs::VMID_POOL,
                Cap::new_vmid_pool(u64::from(vmid) + 1, (super::VMIDS - 2) as u8),
            ),
        ];
        for (i, cap) in fixed {
            cdt::insert_root(&mut Kslots, root_slot(i), cap).map_err(|_| BootError::BadLayout)?;
        }
        // A SchedControl for each other core that came up (its badge word is the core).
        self.online = (image.cpus | 1) & ((1 << super::MAX_CORES) - 1) as u8;
        for cpu in 1..super::MAX_CORES {
            if let Some(i) = rs::sched_control(cpu)
                && self.online & (1 << cpu) != 0
            {
                let mut control = Cap::new(ObjType::SchedControl, 0, 0);
                control.badge = cpu as u64;
                cdt::insert_root(&mut Kslots, root_slot(i), control).map_err(|_| BootError::BadLayout)?;
            }
        }

        // The thread.
        // SAFETY: a boot allocation (non-zero, aligned to its size, owned by the root
        // server's Tcb cap made above) holding the Tcb `create_object` wrote.
        let t = unsafe { Ptr::<Tcb>::new(tcb_pa) };
        for (i, src) in [
            (SLOT_CSPACE, rs::CNODE),
            (SLOT_VSPACE, rs::VSPACE),
            (SLOT_IPC_BUFFER, rs::IPC_BUFFER),
        ] {
            let mut c = slot(root_slot(src)).cap;
            c.set_mapped(None);
            cdt::derive(&mut Kslots, root_slot(src), tcb::slot_addr(t, i), c).map_err(|_| BootError::BadLayout)?;
        }
        let tcb = t.get();
        tcb.ipc_buffer_vaddr = ROOT_IPC_BUFFER_VADDR;
        tcb.tpidr = ROOT_IPC_BUFFER_VADDR; // libl4 finds its IPC buffer through TPIDR_EL0
        tcb.prio = 255;
        tcb.mcp = 255;
        tcb.ctx.pc = image.entry;
        tcb.ctx.sp = ROOT_STACK_TOP;
        tcb.ctx.x[0] = BOOTINFO_VADDR;
        // SAFETY: as for the Tcb: the scheduling context `create_object` wrote.
        let sc = unsafe { Ptr::<SchedContext>::new(sc) };
        tcb.sched_context = Some(sc);
        sc.get().tcb = Some(t);

        // The trace rings last (a large alignment: the bytes it skips are handed over
        // below), then the root thread's creation, their first record.
        let (rings, gap) = alloc.alloc_keeping_gap(gaon_abi::trace::RINGS_BITS).ok_or(oom)?;
        // SAFETY: a boot allocation of the rings' size, aligned to it, kept for them.
        self.trace_init(unsafe { crate::obj::TraceRings::new(rings) });
        let rings_cap = Cap::new(ObjType::Frame, rings, gaon_abi::trace::RINGS_BITS).with_rights(Rights::READ);
        cdt::insert_root(&mut Kslots, root_slot(rs::TRACE_RINGS), rings_cap).map_err(|_| BootError::BadLayout)?;
        self.trace_created(t);

        // Everything left becomes untyped: RAM, then device memory.
        let mut untyped = [UntypedDesc::default(); MAX_BOOT_UNTYPED];
        let mut n = 0usize;
        let first = rs::FIRST_FREE;
        let mut add = |base: usize, size: usize, device: bool, n: &mut usize| {
            for (b, bits) in aligned_blocks(base, size) {
                if *n == MAX_BOOT_UNTYPED {
                    return;
                }
                let mut c = Cap::new(ObjType::Untyped, b, bits);
                if device {
                    c.flags |= FLAG_DEVICE;
                }
                if cdt::insert_root(&mut Kslots, root_slot(first + *n as u64), c).is_ok() {
                    untyped[*n] = UntypedDesc {
                        paddr: b as u64,
                        size_bits: bits,
                        is_device: u8::from(device),
                        reserved: [0; 6],
                    };
                    *n += 1;
                }
            }
        };
        let ram = (alloc.next.next_multiple_of(PAGE), alloc.end);
        alloc.next = alloc.end;
        // The bytes skipped to align the trace rings first (below the rest).
        let gap = (gap.0.next_multiple_of(PAGE), gap.1);
        if gap.1 > gap.0 {
            add(gap.0, gap.1 - gap.0, false, &mut n);
        }
        if ram.1 > ram.0 {
            add(ram.0, ram.1 - ram.0, false, &mut n);
        }
        for &(base, size) in image.device {
            add(base, size, true, &mut n);
        }
        // The virtual CPU interface's pages, device frames of their own (never part of
        // an untyped: only these caps reach them).
        let vgic_first = first + n as u64;
        let mut vgic = 0;
        for pa in image.vgic_cpu.iter().flat_map(|&b| [b, b + PAGE]) {
            let mut c = Cap::new(ObjType::Frame, pa, PAGE_BITS);
            c.flags |= FLAG_DEVICE;
            if cdt::insert_root(&mut Kslots, root_slot(vgic_first + vgic), c).is_ok() {
                vgic += 1;
            }
        }

        // SAFETY: a zeroed page-aligned boot allocation (the boot-info frame), which
        // nothing references and zero is a valid `BootInfo` for (plain integers).
        let info = unsafe { Ptr::<BootInfo>::new(bi) }.get();
        info.magic = BOOTINFO_MAGIC;
        info.version = 1;
        info.cnode_radix = u64::from(ROOT_CNODE_RADIX);
        info.untyped_slots = SlotRegion {
            start: first,
            end: first + n as u64,
        };
        info.vgic_cpu = SlotRegion {
            start: vgic_first,
            end: vgic_first + vgic,
        };
        info.vgic_cpu_paddr = image.vgic_cpu.map_or(0, |b| b as u64);
        info.empty = SlotRegion {
            start: vgic_first + vgic,
            end: 1 << ROOT_CNODE_RADIX,
        };
        info.untyped = untyped;
        info.module_count = image.modules.len().min(MAX_BOOT_MODULES) as u64;
        info.modules = modules;
        info.timer_hz = image.timer_hz;
        info.cpus = u64::from(self.online);
        info.user_timer_irq = self
            .platform
            .user_timer_irq()
            .map_or(gaon_abi::bootinfo::NO_USER_TIMER, u64::from);
        let lines = self.platform.irq_count().min(super::MAX_IRQS as u32);
        if let Some(first) = (0..lines).find(|&i| !self.platform.irq_reserved(i)) {
            info.irq_first = u64::from(first);
            info.irq_end = u64::from(lines);
        }

        let timeslice = self.us_to_ticks(super::object::tcb::TIMESLICE_US).max(1);
        let now = self.platform.now();
        for cpu in 0..super::MAX_CORES {
            let c = self.state_mut(cpu);
            c.timeslice = timeslice;
            c.last_charge = now;
        }
        self.make_runnable(t, false);
        self.schedule();
        self.arm_timer();
        Ok(t)
    }
}

/// Map one page (level 3) or block (level 2) at boot, making tables from `alloc`.
fn boot_map(
    root: Ptr<Table>,
    va: u64,
    pa: usize,
    level: u32,
    attrs: MapAttrs,
    alloc: &mut BootAlloc,
) -> Result<(), BootError> {
    let mut table = root;
    for l in 1..level {
        let e = &mut table.get()[vspace::index(va, l)];
        if *e & 1 == 0 {
            *e = vspace::table_desc(alloc.alloc(PAGE_BITS).ok_or(BootError::OutOfMemory)?);
        }
        table = vspace::next_table(*e, l).ok_or(BootError::BadLayout)?;
    }
    let e = &mut table.get()[vspace::index(va, level)];
    if *e & 1 != 0 {
        return Err(BootError::BadLayout);
    }
    *e = vspace::leaf_desc(pa, level, attrs);
    Ok(())
}

/// Split `[base, base + size)` into the fewest naturally aligned power-of-two blocks
/// of at least a page.
pub fn aligned_blocks(base: usize, size: usize) -> impl Iterator<Item = (usize, u8)> {
    let end = base.saturating_add(size) & !(PAGE - 1);
    let mut cur = base.next_multiple_of(PAGE);
    core::iter::from_fn(move || {
        if cur >= end {
            return None;
        }
        let align_bits = if cur == 0 {
            UNTYPED_MAX_BITS
        } else {
            cur.trailing_zeros() as u8
        };
        let size_bits = (usize::BITS - 1 - (end - cur).leading_zeros()) as u8;
        let bits = align_bits.min(size_bits).min(UNTYPED_MAX_BITS);
        let b = cur;
        cur += 1 << bits;
        Some((b, bits))
    })
}
