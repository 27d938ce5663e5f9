//! The test environment: allocators for slots, objects and addresses in the root
//! server's CSpace and VSpace, and helpers that start threads.

use gaon_abi::bootinfo::{BootInfo, slot};
use gaon_abi::invocation::{REG_TPIDR, REG_X0};
use libl4::cap::{CNode, Frame, PageTable, Tcb, Untyped, VSpace};
use libl4::ipc::CPtr;
use libl4::{Error, ObjType, Rights};

/// The root CNode.
pub const ROOT_CNODE: CNode = CNode(slot::CNODE);
/// The root VSpace.
pub const ROOT_VSPACE: VSpace = VSpace(slot::VSPACE);
/// The root Tcb.
pub const ROOT_TCB: Tcb = Tcb(slot::TCB);

/// Where the environment maps frames in the root VSpace.
const MAP_BASE: u64 = 0x10_0000_0000;
/// Pages of stack per thread.
const STACK_PAGES: u64 = 4;

/// Allocation state shared by all tests.
#[derive(Debug)]
pub struct Env {
    /// The boot info.
    pub bi: &'static BootInfo,
    next_slot: u64,
    slot_end: u64,
    /// The untyped objects come from.
    pub ut: Untyped,
    /// Its size.
    pub ut_bits: u8,
    next_va: u64,
}

impl Env {
    /// Set up from the boot info.
    pub fn new(bi: &'static BootInfo) -> Option<Self> {
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        let (i, d) = bi.untyped[..n]
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_device == 0)
            .max_by_key(|(_, d)| d.size_bits)?;
        Some(Self {
            bi,
            next_slot: bi.empty.start,
            slot_end: bi.empty.end,
            ut: Untyped(bi.untyped_slots.start + i as u64),
            ut_bits: d.size_bits,
            next_va: MAP_BASE,
        })
    }

    /// A device untyped of at least a page, if the board has one.
    pub fn device_untyped(&self) -> Option<Untyped> {
        let n = (self.bi.untyped_slots.end - self.bi.untyped_slots.start) as usize;
        (0..n)
            .find(|&i| self.bi.untyped[i].is_device == 1 && self.bi.untyped[i].size_bits >= 12)
            .map(|i| Untyped(self.bi.untyped_slots.start + i as u64))
    }

    /// A frame cap for the device page at physical address `pa`: the device untyped
    /// holding it is split in halves down to that page. `None` if no device untyped
    /// covers `pa` or the one that does was already used.
    pub fn device_frame_at(&mut self, pa: u64) -> Option<Frame> {
        let i = self.device_untyped_index(pa)?;
        let (mut ut, mut base, mut bits) = (
            Untyped(self.bi.untyped_slots.start + i as u64),
            self.bi.untyped[i].paddr,
            self.bi.untyped[i].size_bits,
        );
        while bits > 12 {
            let halves = self.slot().ok()?;
            self.slot().ok()?;
            ut.retype(ObjType::Untyped, bits - 1, ROOT_CNODE, halves, 2).ok()?;
            bits -= 1;
            let upper = pa >= base + (1 << bits);
            if upper {
                base += 1 << bits;
            }
            ut = Untyped(halves + u64::from(upper));
        }
        let f = self.slot().ok()?;
        ut.retype(ObjType::Frame, 12, ROOT_CNODE, f, 1).ok()?;
        Some(Frame(f))
    }

    /// Index in the boot info of the device untyped covering physical address `pa`.
    fn device_untyped_index(&self, pa: u64) -> Option<usize> {
        let n = (self.bi.untyped_slots.end - self.bi.untyped_slots.start) as usize;
        self.bi.untyped[..n]
            .iter()
            .position(|d| d.is_device == 1 && d.paddr <= pa && pa - d.paddr < 1 << d.size_bits)
    }

    /// True if a device untyped covers physical address `pa`.
    pub fn device_untyped_covers(&self, pa: u64) -> bool {
        self.device_untyped_index(pa).is_some()
    }

    /// A free slot in the root CNode (its CPtr is its index).
    pub fn slot(&mut self) -> Result<CPtr, Error> {
        if self.next_slot >= self.slot_end {
            return Err(Error::NotEnoughMemory);
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// A fresh object of `ty` in a fresh slot.
    pub fn alloc(&mut self, ty: ObjType, size_bits: u8) -> Result<CPtr, Error> {
        let s = self.slot()?;
        self.ut.retype(ty, size_bits, ROOT_CNODE, s, 1)?;
        Ok(s)
    }

    /// A fresh address range of `pages` pages (plus a guard page) in the root VSpace.
    pub fn va(&mut self, pages: u64) -> u64 {
        let va = self.next_va;
        self.next_va += (pages + 1) * 4096;
        va
    }

    /// Map `frame` at `va` in `vs`, creating page tables as needed.
    pub fn map_in(&mut self, vs: VSpace, frame: Frame, va: u64, rights: Rights) -> Result<(), Error> {
        self.map_with(vs, frame, va, rights, false)
    }

    /// Like `map_in`, choosing device or normal memory.
    pub fn map_with(&mut self, vs: VSpace, frame: Frame, va: u64, rights: Rights, device: bool) -> Result<(), Error> {
        for _ in 0..3 {
            match frame.map(vs, va, rights, device) {
                Err(Error::FailedLookup) => {
                    let pt = PageTable(self.alloc(ObjType::PageTable, 0)?);
                    pt.map(vs, va)?;
                }
                r => return r,
            }
        }
        Err(Error::FailedLookup)
    }

    /// A fresh 4 KiB frame mapped read-write in the root VSpace: `(frame, address)`.
    pub fn page(&mut self) -> Result<(Frame, u64), Error> {
        let f = Frame(self.alloc(ObjType::Frame, 12)?);
        let va = self.va(1);
        self.map_in(ROOT_VSPACE, f, va, Rights::READ | Rights::WRITE)?;
        Ok((f, va))
    }

    /// Start a thread in the root's address space and CSpace running `entry(arg)` at
    /// `prio`, with a stack, an IPC buffer and `fault_ep` (0 = none).
    pub fn spawn(&mut self, entry: extern "C" fn(u64) -> !, arg: u64, prio: u64, fault_ep: CPtr) -> Result<Tcb, Error> {
        let t = self.thread(entry as *const () as u64, arg, prio, fault_ep)?;
        t.resume()?;
        Ok(t)
    }

    /// Like `spawn`, but not started.
    pub fn thread(&mut self, pc: u64, arg: u64, prio: u64, fault_ep: CPtr) -> Result<Tcb, Error> {
        let t = Tcb(self.alloc(ObjType::Tcb, 0)?);
        let stack = self.va(STACK_PAGES);
        for i in 0..STACK_PAGES {
            let f = Frame(self.alloc(ObjType::Frame, 12)?);
            self.map_in(ROOT_VSPACE, f, stack + i * 4096, Rights::READ | Rights::WRITE)?;
        }
        let (buf, buf_va) = self.page()?;
        t.set_space(ROOT_CNODE, ROOT_VSPACE, fault_ep)?;
        t.set_ipc_buffer(buf_va, buf.0)?;
        t.write_registers(0, &[pc, stack + STACK_PAGES * 4096, 0, arg])?;
        t.write_registers(REG_TPIDR, &[buf_va])?;
        debug_assert_eq!(REG_X0, 3);
        t.set_priority(prio, ROOT_TCB)?;
        Ok(t)
    }
}

/// Let every runnable thread of lower priority run until it blocks: the root drops to
/// priority 0 for a moment.
pub fn let_others_run() -> Result<(), Error> {
    ROOT_TCB.set_priority(0, ROOT_TCB)?;
    ROOT_TCB.set_priority(255, ROOT_TCB)
}

/// The address of a thread entry function.
pub fn entry(f: extern "C" fn(u64) -> !) -> u64 {
    f as *const () as u64
}
