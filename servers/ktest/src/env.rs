//! The test environment: libl4's allocator over the root server's CSpace and VSpace,
//! plus what only the tests need (the boot info, the RAM untyped the untyped tests
//! retype by hand, and the root's own capabilities).

use core::ops::{Deref, DerefMut};

use gaon_abi::bootinfo::{BootInfo, slot};
use libl4::alloc::{Allocator, Slots, VaRange};
use libl4::cap::{CNode, Frame, Tcb, Untyped, VSpace};
use libl4::ipc::CPtr;
use libl4::{Error, Rights};

/// The root CNode.
pub const ROOT_CNODE: CNode = CNode(slot::CNODE);
/// The root VSpace.
pub const ROOT_VSPACE: VSpace = VSpace(slot::VSPACE);
/// The root Tcb.
pub const ROOT_TCB: Tcb = Tcb(slot::TCB);

/// Where the environment maps frames in the root VSpace.
const MAP_BASE: u64 = 0x10_0000_0000;
const MAP_END: u64 = 0x20_0000_0000;

/// Allocation state shared by all tests. It derefs to libl4's [`Allocator`].
#[derive(Debug)]
pub struct Env {
    /// The boot info.
    pub bi: &'static BootInfo,
    /// The allocator.
    alloc: Allocator,
    /// The largest RAM untyped, kept out of the allocator for the untyped tests.
    pub ut: Untyped,
}

impl Deref for Env {
    type Target = Allocator;
    fn deref(&self) -> &Allocator {
        &self.alloc
    }
}

impl DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Allocator {
        &mut self.alloc
    }
}

impl Env {
    /// Set up from the boot info.
    pub fn new(bi: &'static BootInfo) -> Option<Self> {
        let mut alloc = Allocator::new(
            ROOT_CNODE,
            ROOT_VSPACE,
            Slots::new(bi.empty.start, bi.empty.end),
            VaRange::new(MAP_BASE, MAP_END),
        );
        alloc.vmid_pool = Some(libl4::cap::VmidPool(gaon_abi::bootinfo::slot::VMID_POOL));
        let n = (bi.untyped_slots.end - bi.untyped_slots.start) as usize;
        for (i, d) in bi.untyped[..n].iter().enumerate() {
            alloc.add_untyped(Untyped(bi.untyped_slots.start + i as u64), d).ok()?;
        }
        // The untyped tests retype and revoke this region by hand; the allocator carves
        // the others.
        let ut = alloc.take_ram(u8::MAX)?.ut;
        Some(Self { bi, alloc, ut })
    }

    /// A device untyped of at least a page for the tests that retype it by hand, if the
    /// board has one: not one holding a UART the interrupt test maps (the allocator
    /// carves that one), and revoked first, so every caller finds it empty.
    pub fn device_untyped(&self) -> Option<Untyped> {
        let n = (self.bi.untyped_slots.end - self.bi.untyped_slots.start) as usize;
        let i = (0..n).find(|&i| {
            let d = &self.bi.untyped[i];
            d.is_device == 1
                && d.size_bits >= 12
                && !crate::t_irq_sched::TX_UARTS
                    .iter()
                    .any(|u| d.paddr <= u.pa && u.pa - d.paddr < 1 << d.size_bits)
        })?;
        let u = Untyped(self.bi.untyped_slots.start + i as u64);
        ROOT_CNODE.revoke(u.0).ok()?;
        Some(u)
    }

    /// True if a device untyped covers physical address `pa`.
    pub fn device_untyped_covers(&self, pa: u64) -> bool {
        let n = (self.bi.untyped_slots.end - self.bi.untyped_slots.start) as usize;
        self.bi.untyped[..n]
            .iter()
            .any(|d| d.is_device == 1 && d.paddr <= pa && pa - d.paddr < 1 << d.size_bits)
    }

    /// A fresh address range of `pages` pages (plus a guard page) in the root VSpace.
    pub fn va(&mut self, pages: u64) -> u64 {
        self.alloc.va.take(pages).expect("test address space exhausted")
    }

    /// A fresh page holding a copy of the code at `start..end` (at most a page, in this
    /// program's text), as a second frame capability to map into another address space
    /// (the first keeps it mapped here).
    pub fn code_page(&mut self, start: usize, end: usize) -> Result<Frame, Error> {
        let (code, va) = self.page()?;
        for i in (0..end - start).step_by(4) {
            #[allow(unsafe_code)]
            // SAFETY: both ranges are mapped: the code in this program's text, the page
            // just mapped read-write.
            unsafe {
                let w = core::ptr::read_volatile((start + i) as *const u32);
                core::ptr::write_volatile((va as usize + i) as *mut u32, w);
            }
        }
        let copy = self.slot()?;
        crate::env::ROOT_CNODE.copy(copy, code.0, Rights::all())?;
        Ok(Frame(copy))
    }

    /// Map `frame` at `va` in `vs`, creating page tables as needed.
    pub fn map_in(&mut self, vs: VSpace, frame: Frame, va: u64, rights: Rights) -> Result<(), Error> {
        self.alloc.map(vs, frame, va, rights, false)
    }

    /// Like `map_in`, choosing device or normal memory.
    pub fn map_with(&mut self, vs: VSpace, frame: Frame, va: u64, rights: Rights, device: bool) -> Result<(), Error> {
        self.alloc.map(vs, frame, va, rights, device)
    }

    /// Start a thread in the root's address space and CSpace running `entry(arg)` at
    /// `prio`, with a stack, an IPC buffer and `fault_ep` (0 = none).
    pub fn spawn(&mut self, entry: extern "C" fn(u64) -> !, arg: u64, prio: u64, fault_ep: CPtr) -> Result<Tcb, Error> {
        self.alloc.spawn(entry, arg, prio, fault_ep, ROOT_TCB)
    }

    /// Like `spawn`, but not started.
    pub fn thread(&mut self, pc: u64, arg: u64, prio: u64, fault_ep: CPtr) -> Result<Tcb, Error> {
        self.alloc.thread(pc, arg, prio, fault_ep, ROOT_TCB)
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
