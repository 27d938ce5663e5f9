//! Creating the root server from the boot image: its segments, its stack, its
//! address space.

use gaon_abi::boot::{BootImageHeader, ROOT_STACK_SIZE, ROOT_STACK_TOP, SegmentFlags};

use crate::arch::exception::TrapFrame;
use crate::arch::mmu::{MapError, Table, TableSource};
use crate::arch::stage2::{self, AddressSpace, MemType, Rights};

const PAGE: usize = 4096;

/// Boot-time physical frame allocator: a bump pointer over the RAM after the boot image.
/// Kernel core replaces it with untyped memory handed to the root server.
#[derive(Debug)]
pub struct BootFrames {
    next: usize,
    end: usize,
}

impl BootFrames {
    /// Frames in `[start, end)`.
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            next: start.next_multiple_of(PAGE),
            end,
        }
    }

    /// `pages` zeroed, contiguous frames.
    pub fn alloc(&mut self, pages: usize) -> Option<usize> {
        let size = pages.checked_mul(PAGE)?;
        let pa = self.next;
        let end = pa.checked_add(size).filter(|&e| e <= self.end)?;
        self.next = end;
        // SAFETY: `[pa, end)` is RAM past the kernel and boot image, mapped RW in the
        // kernel's identity map, and handed out exactly once.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, size) };
        Some(pa)
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.end - self.next
    }
}

impl TableSource for BootFrames {
    fn table(&mut self) -> Option<&'static mut Table> {
        let pa = self.alloc(1)?;
        // SAFETY: a fresh, zeroed, page-aligned frame owned by the new table from now on.
        Some(unsafe { &mut *(pa as *mut Table) })
    }
}

/// Why the root server could not be created.
#[derive(Clone, Copy, Debug)]
pub enum RootError {
    /// Not enough RAM.
    OutOfMemory,
    /// A mapping failed.
    Map(#[allow(dead_code, reason = "read through Debug in the boot panic")] MapError),
}

impl From<MapError> for RootError {
    fn from(e: MapError) -> Self {
        Self::Map(e)
    }
}

/// Load the root server's segments and stack into a new address space and return the
/// address space and the register state it starts with.
pub fn create(
    image: &BootImageHeader,
    image_base: usize,
    frames: &mut BootFrames,
) -> Result<(AddressSpace, TrapFrame), RootError> {
    let mut space = AddressSpace::new(frames, 1).ok_or(RootError::OutOfMemory)?;
    for seg in image.segments() {
        let flags = SegmentFlags::from_bits_truncate(seg.flags);
        let size = (seg.memsz as usize).next_multiple_of(PAGE);
        let pa = frames.alloc(size / PAGE).ok_or(RootError::OutOfMemory)?;
        let src = image_base + seg.offset as usize;
        // SAFETY: the header was validated against the image bounds, so the source is
        // inside the boot image; the destination is a fresh frame run of `size >= filesz`.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, pa as *mut u8, seg.filesz as usize) };
        if flags.contains(SegmentFlags::X) {
            stage2::sync_icache(pa, size);
        }
        let rights = Rights {
            write: flags.contains(SegmentFlags::W),
            execute: flags.contains(SegmentFlags::X),
        };
        space.map(frames, seg.vaddr as usize, pa, size, rights, MemType::Normal)?;
    }
    let stack_pages = ROOT_STACK_SIZE as usize / PAGE;
    let stack = frames.alloc(stack_pages).ok_or(RootError::OutOfMemory)?;
    let stack_base = ROOT_STACK_TOP as usize - ROOT_STACK_SIZE as usize;
    space.map(
        frames,
        stack_base,
        stack,
        ROOT_STACK_SIZE as usize,
        Rights {
            write: true,
            execute: false,
        },
        MemType::Normal,
    )?;

    let mut regs = TrapFrame {
        elr: image.root_entry,
        sp_el0: ROOT_STACK_TOP,
        spsr: 0,
        ..TrapFrame::default()
    };
    regs.x[0] = u64::from(image.module_count);
    Ok((space, regs))
}
