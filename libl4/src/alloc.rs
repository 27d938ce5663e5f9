//! Allocators for what a program builds objects from: capability slots, untyped memory
//! (RAM and device), and virtual address ranges, plus helpers that map frames (making
//! page tables as needed) and start threads.
//!
//! The allocator assumes a single-level CSpace (a CNode whose guard makes a CPtr equal
//! to the slot index), which is what the kernel gives the root server and what the root
//! server gives every server it starts.
//!
//! A server the root server started gets its allocator with [`Allocator::from_start`]:
//! its heap (the untyped memory its description's `heap_kib` gives it, in
//! `server_slot::HEAP`), the free slots of its CNode (`server_slot::FIRST_FREE..END`)
//! and the addresses the root server leaves to it (`SERVER_FREE_VADDR..SERVER_FREE_END`).

use core::sync::atomic::{AtomicBool, Ordering};

use gaon_abi::bootinfo::UntypedDesc;
use gaon_abi::invocation::REG_TPIDR;
use gaon_abi::system::{SERVER_FREE_END, SERVER_FREE_VADDR, server_slot};
use gaon_abi::{Error, ObjType, Rights};
use heapless::Vec;

use crate::cap::{CNode, Frame, PageTable, Tcb, Untyped, VSpace, VmidPool};
use crate::ipc::CPtr;
use crate::server::RecvSlot;

/// Page size.
pub const PAGE: u64 = 4096;
/// Untyped regions the allocator tracks (RAM and device pieces together).
pub const MAX_REGIONS: usize = 256;
/// Pages of stack `Allocator::thread` gives a thread.
pub const STACK_PAGES: u64 = 4;

/// A bump allocator over a range of CNode slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    next: u64,
    end: u64,
}

impl Slots {
    /// The slots `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { next: start, end }
    }
    /// One free slot.
    pub fn take(&mut self) -> Result<CPtr, Error> {
        self.take_n(1)
    }
    /// `n` consecutive free slots; returns the first.
    pub fn take_n(&mut self, n: u64) -> Result<CPtr, Error> {
        let first = self.next;
        match first.checked_add(n) {
            Some(end) if end <= self.end => {
                self.next = end;
                Ok(first)
            }
            _ => Err(Error::NotEnoughMemory),
        }
    }
    /// Slots left.
    pub const fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

/// A bump allocator of virtual address ranges; every range is followed by an unmapped
/// guard page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaRange {
    next: u64,
    end: u64,
}

impl VaRange {
    /// Addresses `[start, end)`, page aligned.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { next: start, end }
    }
    /// `pages` pages plus a guard page; returns the start.
    pub fn take(&mut self, pages: u64) -> Result<u64, Error> {
        self.take_aligned(pages, PAGE)
    }

    /// `pages` pages plus a guard page, starting at a multiple of `align` (a power of
    /// two); returns the start.
    pub fn take_aligned(&mut self, pages: u64, align: u64) -> Result<u64, Error> {
        if !align.is_power_of_two() {
            return Err(Error::InvalidArgument);
        }
        let start = self
            .next
            .checked_next_multiple_of(align)
            .ok_or(Error::NotEnoughMemory)?;
        let size = pages
            .checked_add(1)
            .and_then(|p| p.checked_mul(PAGE))
            .ok_or(Error::InvalidArgument)?;
        match start.checked_add(size) {
            Some(end) if end <= self.end => {
                self.next = end;
                Ok(start)
            }
            _ => Err(Error::NotEnoughMemory),
        }
    }
}

/// What has become of an untyped region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Untouched.
    Free,
    /// Objects are being carved from it.
    Carving,
    /// Full, split in halves, or handed out whole.
    Done,
}

/// One untyped capability the allocator may carve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The capability.
    pub ut: Untyped,
    /// Physical address.
    pub paddr: u64,
    /// log2 of its size.
    pub bits: u8,
    /// Device memory (only frames can be made from it).
    pub device: bool,
    /// What has become of it.
    pub state: State,
}

/// A large page's size (2 MiB).
pub const LARGE_PAGE: u64 = 1 << gaon_abi::object::LARGE_PAGE_BITS;

/// log2 of the size from which an object gets a region of its own (2 MiB).
const LARGE_OBJECT_BITS: u8 = 21;

/// Slots, untyped memory and addresses of one program, with its own CNode and VSpace,
/// tracking up to `N` untyped regions.
#[derive(Debug)]
pub struct Allocator<const N: usize = MAX_REGIONS> {
    /// The program's (single-level) CNode.
    pub cnode: CNode,
    /// The program's VSpace.
    pub vspace: VSpace,
    /// Free slots.
    pub slots: Slots,
    /// Free addresses.
    pub va: VaRange,
    regions: Vec<Region, N>,
    /// The RAM region objects are carved from at the moment.
    current: Option<usize>,
    /// A page of addresses `write_frame` maps frames at, once it has one.
    scratch: Option<u64>,
    /// The same for 2 MiB frames.
    scratch_large: Option<u64>,
    /// Where VSpaces get their VMID (without one, a VSpace cannot be used).
    pub vmid_pool: Option<VmidPool>,
}

/// A server's own allocator (see [`Allocator::from_start`]): one untyped region, its
/// heap.
pub type Heap = Allocator<1>;

/// Set once a program took its heap.
static HEAP_TAKEN: AtomicBool = AtomicBool::new(false);

/// Why a server has no heap allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoHeap {
    /// The root server did not start this program (it has no start info).
    NotAServer,
    /// Its system description gives it no heap (`heap_kib`).
    NoMemory,
    /// The program took its heap already (two allocators would hand out the same
    /// slots, memory and addresses).
    Taken,
}

impl Heap {
    /// This server's allocator: the untyped memory its description gives it
    /// (`heap_kib`, in `server_slot::HEAP`), the free slots of its CNode
    /// (`server_slot::FIRST_FREE..server_slot::END`) and its free addresses
    /// (`SERVER_FREE_VADDR..SERVER_FREE_END`). A program can take it once.
    pub fn from_start() -> Result<Self, NoHeap> {
        let info = crate::start::info().ok_or(NoHeap::NotAServer)?;
        if info.heap_bits == 0 {
            return Err(NoHeap::NoMemory);
        }
        if HEAP_TAKEN.swap(true, Ordering::Relaxed) {
            return Err(NoHeap::Taken);
        }
        Ok(Self::heap(info.heap_bits as u8, info.heap_paddr))
    }

    /// The allocator of a server's fixed slots, heap untyped of `2^bits` bytes and free
    /// addresses.
    fn heap(bits: u8, paddr: u64) -> Self {
        let mut a = Self::new(
            CNode(server_slot::CNODE),
            VSpace(server_slot::VSPACE),
            Slots::new(server_slot::FIRST_FREE, server_slot::END),
            VaRange::new(SERVER_FREE_VADDR, SERVER_FREE_END),
        );
        let r = Region {
            ut: Untyped(server_slot::HEAP),
            paddr,
            bits,
            device: false,
            state: State::Free,
        };
        // One region into room for one: cannot fail.
        let _ = a.regions.push(r);
        // VSpaces get their VMIDs from the server's pool (`vmids = N`); without one the
        // slot is empty and making a VSpace fails.
        a.vmid_pool = Some(VmidPool(server_slot::VMID_POOL));
        a
    }
}

impl<const N: usize> Allocator<N> {
    /// An allocator with no memory yet; add some with [`Allocator::add_untyped`].
    pub const fn new(cnode: CNode, vspace: VSpace, slots: Slots, va: VaRange) -> Self {
        Self {
            cnode,
            vspace,
            slots,
            va,
            regions: Vec::new(),
            current: None,
            scratch: None,
            scratch_large: None,
            vmid_pool: None,
        }
    }

    /// Hand the allocator an untyped capability described by `d`.
    pub fn add_untyped(&mut self, ut: Untyped, d: &UntypedDesc) -> Result<(), Error> {
        let r = Region {
            ut,
            paddr: d.paddr,
            bits: d.size_bits,
            device: d.is_device != 0,
            state: State::Free,
        };
        self.regions.push(r).map_err(|_| Error::NotEnoughMemory)
    }

    /// The untyped regions, in the order they were added (halves of split device
    /// regions after them).
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The largest untouched RAM region of at most `max_bits`, marked done: for a caller
    /// that carves it itself or hands it on.
    pub fn take_ram(&mut self, max_bits: u8) -> Option<Region> {
        let i = self.largest_free_ram(max_bits)?;
        self.regions[i].state = State::Done;
        Some(self.regions[i])
    }

    fn largest_free_ram(&self, max_bits: u8) -> Option<usize> {
        (0..self.regions.len())
            .filter(|&i| {
                let r = &self.regions[i];
                !r.device && r.state == State::Free && r.bits <= max_bits
            })
            .max_by_key(|&i| self.regions[i].bits)
    }

    /// A free slot (its CPtr is its index).
    pub fn slot(&mut self) -> Result<CPtr, Error> {
        self.slots.take()
    }

    /// A fresh object of `ty` in a fresh slot ([`Allocator::alloc_at`] says from where).
    pub fn alloc(&mut self, ty: ObjType, size_bits: u8) -> Result<CPtr, Error> {
        let s = self.slot()?;
        self.alloc_at(ty, size_bits, s)?;
        Ok(s)
    }

    /// A fresh object of `ty` in slot `s` (which the caller took from `slots`).
    ///
    /// Small objects are carved from one region until it is full, then from another
    /// one already begun or else the smallest untouched one, so the large regions stay
    /// whole. An object of 2 MiB or more (a server's heap, a large page) is a region of
    /// its own: the smallest untouched one it fits in, split in halves down to its size
    /// (the other halves stay untouched), or else it is carved like a small one. A
    /// failed retype other than a full region (a bad slot) changes nothing.
    pub fn alloc_at(&mut self, ty: ObjType, size_bits: u8, s: CPtr) -> Result<(), Error> {
        let obj_bits = ty.object_bits(u64::from(size_bits)).ok_or(Error::InvalidArgument)?;
        if obj_bits >= LARGE_OBJECT_BITS
            && let Some(i) = self.smallest_free_ram(obj_bits)
            && let Ok(i) = self.split_down(i, obj_bits)
        {
            self.retype_from(i, ty, size_bits, s)?;
            self.regions[i].state = State::Done;
            return Ok(());
        }
        loop {
            let i = match self.current {
                Some(i) if self.regions[i].bits >= obj_bits => i,
                _ => {
                    // A region begun before (too small for some object then), else an
                    // untouched one; the one being carved stays begun.
                    let i = self
                        .smallest_ram(State::Carving, obj_bits)
                        .or_else(|| self.smallest_free_ram(obj_bits))
                        .ok_or(Error::NotEnoughMemory)?;
                    self.regions[i].state = State::Carving;
                    self.current = Some(i);
                    i
                }
            };
            match self.retype_from(i, ty, size_bits, s) {
                Err(Error::NotEnoughMemory) => {
                    self.regions[i].state = State::Done;
                    self.current = None;
                }
                r => return r,
            }
        }
    }

    /// Retype one object of `ty` from region `i` into slot `s`.
    fn retype_from(&mut self, i: usize, ty: ObjType, size_bits: u8, s: CPtr) -> Result<(), Error> {
        self.regions[i].ut.retype(ty, size_bits, self.cnode, s, 1)?;
        if ty == ObjType::VSpace {
            // A VSpace is usable once it has a VMID from the program's pool.
            let pool = self.vmid_pool.ok_or(Error::NoVmid)?;
            return pool.assign(VSpace(s));
        }
        Ok(())
    }

    /// Split free region `i` in halves, and its first half again, until one of
    /// `2^bits` bytes is left; returns it.
    fn split_down(&mut self, mut i: usize, bits: u8) -> Result<usize, Error> {
        while self.regions[i].bits > bits {
            i = self.split(i)?;
        }
        Ok(i)
    }

    /// Split free region `i` into two free halves (marking it done); returns the first
    /// half's index (the second follows it).
    fn split(&mut self, i: usize) -> Result<usize, Error> {
        if self.regions.len() + 2 > N {
            return Err(Error::NotEnoughMemory);
        }
        let r = self.regions[i];
        let halves = self.slots.take_n(2)?;
        r.ut.retype(ObjType::Untyped, r.bits - 1, self.cnode, halves, 2)?;
        self.regions[i].state = State::Done;
        for h in 0..2 {
            let half = Region {
                ut: Untyped(halves + h),
                paddr: r.paddr + h * (1 << (r.bits - 1)),
                bits: r.bits - 1,
                device: r.device,
                state: State::Free,
            };
            self.regions.push(half).map_err(|_| Error::NotEnoughMemory)?;
        }
        Ok(self.regions.len() - 2)
    }

    fn smallest_free_ram(&self, min_bits: u8) -> Option<usize> {
        self.smallest_ram(State::Free, min_bits)
    }

    /// The smallest RAM region in `state` of at least `2^min_bits` bytes.
    fn smallest_ram(&self, state: State, min_bits: u8) -> Option<usize> {
        (0..self.regions.len())
            .filter(|&i| {
                let r = &self.regions[i];
                !r.device && r.state == state && r.bits >= min_bits
            })
            .min_by_key(|&i| self.regions[i].bits)
    }

    /// A frame capability for the device page at physical address `pa`. The device
    /// region covering it is split in halves down to one page; the other halves stay
    /// available for later requests.
    pub fn device_frame_at(&mut self, pa: u64) -> Result<Frame, Error> {
        if !pa.is_multiple_of(PAGE) {
            return Err(Error::AlignmentError);
        }
        loop {
            let i = self
                .regions
                .iter()
                .position(|r| r.device && r.state == State::Free && r.paddr <= pa && pa - r.paddr < 1 << r.bits)
                .ok_or(Error::FailedLookup)?;
            let r = self.regions[i];
            if r.bits == 12 {
                let f = self.slot()?;
                r.ut.retype(ObjType::Frame, 12, self.cnode, f, 1)?;
                self.regions[i].state = State::Done;
                return Ok(Frame(f));
            }
            self.split(i)?;
        }
    }

    /// Map `frame` at `va` in `vs` with `rights`, making page tables as needed.
    pub fn map(&mut self, vs: VSpace, frame: Frame, va: u64, rights: Rights, device: bool) -> Result<(), Error> {
        // At most one missing table per level below the VSpace root (levels 2 and 3).
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

    /// A fresh 4 KiB frame mapped read-write in the program's own VSpace:
    /// `(frame, address)`.
    pub fn page(&mut self) -> Result<(Frame, u64), Error> {
        let f = Frame(self.alloc(ObjType::Frame, 12)?);
        let va = self.va.take(1)?;
        self.map(self.vspace, f, va, Rights::READ | Rights::WRITE, false)?;
        Ok((f, va))
    }

    /// `pages` fresh frames mapped read-write at consecutive addresses (with a guard
    /// page after them) in the program's own VSpace; returns the start address.
    pub fn pages(&mut self, pages: u64) -> Result<u64, Error> {
        let va = self.va.take(pages)?;
        for i in 0..pages {
            let f = Frame(self.alloc(ObjType::Frame, 12)?);
            self.map(self.vspace, f, va + i * PAGE, Rights::READ | Rights::WRITE, false)?;
        }
        Ok(va)
    }

    /// A thread in this program's CSpace and VSpace, not yet started: it will run `pc`
    /// with `arg` in `x0`, a fresh stack of [`STACK_PAGES`], a fresh IPC buffer, priority
    /// `prio` (granted by `authority`) and fault endpoint `fault_ep` (0 = none).
    pub fn thread(&mut self, pc: u64, arg: u64, prio: u64, fault_ep: CPtr, authority: Tcb) -> Result<Tcb, Error> {
        let t = Tcb(self.alloc(ObjType::Tcb, 0)?);
        let stack = self.pages(STACK_PAGES)?;
        let (buf, buf_va) = self.page()?;
        t.set_space(self.cnode, self.vspace, fault_ep)?;
        t.set_ipc_buffer(buf_va, buf.0)?;
        // pc, sp, spsr, x0.
        t.write_registers(0, &[pc, stack + STACK_PAGES * PAGE, 0, arg])?;
        t.write_registers(REG_TPIDR, &[buf_va])?;
        t.set_priority(prio, authority)?;
        Ok(t)
    }

    /// Start a thread running `entry(arg)`; see [`Allocator::thread`].
    pub fn spawn(
        &mut self,
        entry: extern "C" fn(u64) -> !,
        arg: u64,
        prio: u64,
        fault_ep: CPtr,
        authority: Tcb,
    ) -> Result<Tcb, Error> {
        let t = self.thread(entry as *const () as u64, arg, prio, fault_ep, authority)?;
        t.resume()?;
        Ok(t)
    }
}

impl<const N: usize> Allocator<N> {
    /// A free slot of this program's CNode to receive capabilities in, for
    /// [`crate::server::Server::cap_slot`].
    pub fn recv_slot(&mut self) -> Result<RecvSlot, Error> {
        let index = self.slot()?;
        Ok(RecvSlot {
            cnode: self.cnode.0,
            index,
            cptr: index,
        })
    }

    /// A page of addresses with the page tables to map a frame there made, and no
    /// frame mapped: where a server maps the frames of the leases it receives
    /// (`crate::lease::Leases`). Making the tables maps a fresh frame once (it stays
    /// allocated, unmapped).
    pub fn map_window(&mut self) -> Result<u64, Error> {
        let va = self.va.take(1)?;
        let f = Frame(self.alloc(ObjType::Frame, 12)?);
        self.map(self.vspace, f, va, Rights::READ, false)?;
        f.unmap()?;
        Ok(va)
    }

    /// Copy `data` into `frame` at `offset`: the frame is mapped at a scratch address
    /// in this program's VSpace for the copy and unmapped again, so it can then be
    /// mapped elsewhere (how a loader fills another program's memory).
    pub fn write_frame(&mut self, frame: Frame, offset: usize, data: &[u8]) -> Result<(), Error> {
        self.write_sized(frame, false, offset, data)
    }

    /// [`Allocator::write_frame`] for a 2 MiB frame.
    pub fn write_large_frame(&mut self, frame: Frame, offset: usize, data: &[u8]) -> Result<(), Error> {
        self.write_sized(frame, true, offset, data)
    }

    fn write_sized(&mut self, frame: Frame, large: bool, offset: usize, data: &[u8]) -> Result<(), Error> {
        let size = if large { LARGE_PAGE } else { PAGE };
        let end = offset.checked_add(data.len()).ok_or(Error::InvalidArgument)?;
        if end > size as usize {
            return Err(Error::InvalidArgument);
        }
        let scratch = if large {
            &mut self.scratch_large
        } else {
            &mut self.scratch
        };
        let va = match *scratch {
            Some(va) => va,
            None => *scratch.insert(self.va.take_aligned(size / PAGE, size)?),
        };
        self.map(self.vspace, frame, va, Rights::READ | Rights::WRITE, false)?;
        copy_to(va + offset as u64, data);
        frame.unmap()
    }
}

#[cfg(target_os = "none")]
fn copy_to(va: u64, data: &[u8]) {
    // SAFETY: `write_frame` just mapped a writable frame at the page holding
    // `va..va + data.len()` (checked to stay inside it) and nothing else refers to it.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
}

#[cfg(not(target_os = "none"))]
fn copy_to(_va: u64, _data: &[u8]) {
    unreachable!("host programs map no frames");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_cleanly() {
        let mut s = Slots::new(16, 20);
        assert_eq!(s.take(), Ok(16));
        assert_eq!(s.take_n(3), Ok(17));
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.take(), Err(Error::NotEnoughMemory));
        assert_eq!(Slots::new(0, 10).take_n(u64::MAX), Err(Error::NotEnoughMemory));
    }

    #[test]
    fn va_ranges_have_guard_pages_and_bounds() {
        let mut v = VaRange::new(0x1000_0000, 0x1000_0000 + 5 * PAGE);
        assert_eq!(v.take(2), Ok(0x1000_0000));
        // The next range starts after the two pages and one guard page.
        assert_eq!(v.take(1), Ok(0x1000_0000 + 3 * PAGE));
        assert_eq!(v.take(1), Err(Error::NotEnoughMemory));
        assert_eq!(v.take(u64::MAX), Err(Error::InvalidArgument));
    }

    #[test]
    fn aligned_va_ranges_start_at_a_multiple() {
        let mut v = VaRange::new(0x1000_1000, 0x1100_0000);
        assert_eq!(v.take_aligned(512, LARGE_PAGE), Ok(0x1020_0000));
        // The guard page after it, then the next multiple.
        assert_eq!(v.take_aligned(1, LARGE_PAGE), Ok(0x1060_0000));
        assert_eq!(v.take(1), Ok(0x1060_2000));
        assert_eq!(v.take_aligned(1, 3), Err(Error::InvalidArgument));
        assert_eq!(v.take_aligned(512, 1 << 24), Err(Error::NotEnoughMemory));
    }

    #[test]
    fn a_servers_heap_is_its_free_slots_addresses_and_heap_untyped() {
        let mut h = Heap::heap(15, 0);
        assert_eq!(h.slots, Slots::new(server_slot::FIRST_FREE, server_slot::END));
        assert_eq!(h.slots.remaining(), 1024 - 64);
        assert_eq!(
            (h.cnode, h.vspace),
            (CNode(server_slot::CNODE), VSpace(server_slot::VSPACE))
        );
        let r = h.regions()[0];
        assert_eq!(
            (h.regions().len(), r.ut, r.bits, r.device),
            (1, Untyped(server_slot::HEAP), 15, false)
        );
        assert_eq!(
            h.recv_slot(),
            Ok(RecvSlot {
                cnode: server_slot::CNODE,
                index: 64,
                cptr: 64
            })
        );
        assert_eq!(h.va.take(1), Ok(SERVER_FREE_VADDR));
        // No device memory to split into a heap of one region.
        assert_eq!(h.device_frame_at(0x0900_0000), Err(Error::FailedLookup));
        // A host test is no server.
        assert_eq!(Heap::from_start().err(), Some(NoHeap::NotAServer));
    }

    #[test]
    fn ram_is_taken_largest_first_and_device_memory_never() {
        let mut a: Allocator = Allocator::new(CNode(2), VSpace(3), Slots::new(16, 64), VaRange::new(0, 1 << 30));
        let desc = |paddr, size_bits, is_device| UntypedDesc {
            paddr,
            size_bits,
            is_device,
            reserved: [0; 6],
        };
        a.add_untyped(Untyped(10), &desc(0x4000_0000, 20, 0)).unwrap();
        a.add_untyped(Untyped(11), &desc(0x0900_0000, 24, 1)).unwrap();
        a.add_untyped(Untyped(12), &desc(0x5000_0000, 22, 0)).unwrap();
        assert_eq!(a.take_ram(u8::MAX).map(|r| r.ut), Some(Untyped(12)));
        assert_eq!(a.take_ram(19), None, "nothing small enough");
        assert_eq!(a.take_ram(u8::MAX).map(|r| r.ut), Some(Untyped(10)));
        assert_eq!(a.take_ram(u8::MAX), None, "device memory is not RAM");
        assert_eq!(a.device_frame_at(0x0900_0010), Err(Error::AlignmentError));
        assert_eq!(a.device_frame_at(0x1000_0000), Err(Error::FailedLookup));
    }
}
