//! Loading an ELF executable (a boot module) into an address space (xmas-elf): how the
//! root server starts servers and the benchmark starts its workers.

use crate::alloc::{Allocator, PAGE};
use crate::cap::{Frame, VSpace};
use crate::{ObjType, Rights};
use gaon_abi::system::SERVER_MAP_BASE;
use xmas_elf::ElfFile;
use xmas_elf::header::{Class, Machine, Type};
use xmas_elf::program::{ProgramHeader, Type as PType};

/// Why a program could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a 64-bit AArch64 executable.
    NotAnExecutable(&'static str),
    /// A segment is malformed or lies where it may not.
    BadSegment(&'static str),
    /// The kernel refused an operation (usually: out of memory).
    Kernel(crate::Error),
}

impl From<crate::Error> for LoadError {
    fn from(e: crate::Error) -> Self {
        Self::Kernel(e)
    }
}

/// Rights of a segment from its ELF flags (X = 1, W = 2, R = 4).
fn rights(flags: u32) -> Rights {
    let mut r = Rights::empty();
    if flags & 4 != 0 {
        r |= Rights::READ;
    }
    if flags & 2 != 0 {
        r |= Rights::WRITE;
    }
    if flags & 1 != 0 {
        r |= Rights::EXECUTE;
    }
    r
}

/// Load the executable `bytes` into `vs`: every `PT_LOAD` segment gets fresh frames,
/// filled with its file bytes (the rest zero), mapped with the segment's rights.
/// Returns the entry point.
pub fn load(a: &mut Allocator, vs: VSpace, bytes: &[u8]) -> Result<u64, LoadError> {
    let elf = ElfFile::new(bytes).map_err(LoadError::NotAnExecutable)?;
    let h = &elf.header;
    if h.pt1.class() != Class::SixtyFour
        || h.pt2.machine().as_machine() != Machine::AArch64
        || h.pt2.type_().as_type() != Type::Executable
    {
        return Err(LoadError::NotAnExecutable("not a 64-bit AArch64 executable"));
    }
    for ph in elf.program_iter() {
        let ProgramHeader::Ph64(ph) = ph else {
            return Err(LoadError::NotAnExecutable("32-bit program header"));
        };
        if ph.get_type() != Ok(PType::Load) || ph.mem_size == 0 {
            continue;
        }
        let (va, filesz, memsz) = (ph.virtual_addr, ph.file_size, ph.mem_size);
        let end = va.checked_add(memsz).ok_or(LoadError::BadSegment("segment wraps"))?;
        if va % PAGE != 0 || va < PAGE || end > SERVER_MAP_BASE || filesz > memsz {
            return Err(LoadError::BadSegment(
                "segment not page aligned, below 4 KiB, above the map base, or with more file than memory bytes",
            ));
        }
        let file = usize::try_from(ph.offset)
            .ok()
            .and_then(|o| Some(o..o.checked_add(usize::try_from(filesz).ok()?)?))
            .and_then(|r| bytes.get(r))
            .ok_or(LoadError::BadSegment("segment data lies outside the file"))?;
        let r = rights(ph.flags.0);
        let mut page_va = va;
        while page_va < end {
            let f = Frame(a.alloc(ObjType::Frame, 12)?);
            let at = (page_va - va) as usize;
            if at < file.len() {
                let chunk = &file[at..file.len().min(at + PAGE as usize)];
                a.write_frame(f, 0, chunk)?;
            }
            a.map(vs, f, page_va, r, false)?;
            page_va += PAGE;
        }
    }
    Ok(h.pt2.entry_point())
}
