//! Reading ELF files (xmas-elf) and writing the minimal ELF64 the bootable image needs.

use xmas_elf::ElfFile;
use xmas_elf::header::{Class, Machine, Type};
use xmas_elf::program::{ProgramHeader, Type as PType};
use xmas_elf::sections::SectionData;
use xmas_elf::symbol_table::Entry;
use zerocopy::{Immutable, IntoBytes};

/// One loadable segment.
#[derive(Clone, Debug)]
pub struct Load {
    /// Virtual address.
    pub vaddr: u64,
    /// Physical (load) address.
    pub paddr: u64,
    /// File bytes.
    pub data: Vec<u8>,
    /// Size in memory.
    pub memsz: u64,
    /// `p_flags`.
    pub flags: u32,
}

/// What the packer needs from an AArch64 executable.
#[derive(Debug)]
pub struct Executable {
    /// Entry point.
    pub entry: u64,
    /// PT_LOAD segments with `memsz > 0`, in file order.
    pub loads: Vec<Load>,
    elf_symbols: Vec<(String, u64)>,
}

impl Executable {
    /// Parse `bytes` as a 64-bit little-endian AArch64 executable.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let elf = ElfFile::new(bytes).map_err(|e| format!("not an ELF file: {e}"))?;
        let h = &elf.header;
        if h.pt1.class() != Class::SixtyFour {
            return Err("not a 64-bit ELF".into());
        }
        if h.pt2.machine().as_machine() != Machine::AArch64 {
            return Err(format!("built for {:?}, not AArch64", h.pt2.machine().as_machine()));
        }
        if h.pt2.type_().as_type() != Type::Executable {
            return Err(format!("is {:?}, not an executable", h.pt2.type_().as_type()));
        }
        let mut loads = Vec::new();
        for ph in elf.program_iter() {
            let ProgramHeader::Ph64(ph) = ph else {
                return Err("32-bit program header".into());
            };
            if ph.get_type() != Ok(PType::Load) || ph.mem_size == 0 {
                continue;
            }
            let start = usize::try_from(ph.offset).map_err(|_| "segment offset overflows")?;
            let len = usize::try_from(ph.file_size).map_err(|_| "segment size overflows")?;
            let data = bytes
                .get(start..start.checked_add(len).ok_or("segment overflows")?)
                .ok_or("segment data lies outside the file")?
                .to_vec();
            if ph.file_size > ph.mem_size {
                return Err("segment has more file bytes than memory bytes".into());
            }
            loads.push(Load {
                vaddr: ph.virtual_addr,
                paddr: ph.physical_addr,
                data,
                memsz: ph.mem_size,
                flags: ph.flags.0,
            });
        }
        if loads.is_empty() {
            return Err("has no loadable segments".into());
        }
        let mut elf_symbols = Vec::new();
        for section in elf.section_iter() {
            if let Ok(SectionData::SymbolTable64(syms)) = section.get_data(&elf) {
                for s in syms {
                    if let Ok(name) = s.get_name(&elf) {
                        elf_symbols.push((name.to_string(), s.value()));
                    }
                }
            }
        }
        Ok(Self {
            entry: h.pt2.entry_point(),
            loads,
            elf_symbols,
        })
    }

    /// The value of symbol `name`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.elf_symbols.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
struct Ehdr {
    ident: [u8; 16],
    type_: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    shoff: u64,
    flags: u32,
    ehsize: u16,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
struct Phdr {
    type_: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

const EHDR_SIZE: usize = size_of::<Ehdr>();
const PHDR_SIZE: usize = size_of::<Phdr>();

/// Write an AArch64 ELF executable with the given segments (identity vaddr = paddr).
pub fn write_elf(entry: u64, loads: &[Load]) -> Vec<u8> {
    let mut ident = [0u8; 16];
    ident[..4].copy_from_slice(b"\x7fELF");
    ident[4] = 2; // ELFCLASS64
    ident[5] = 1; // little-endian
    ident[6] = 1; // EV_CURRENT
    let header = Ehdr {
        ident,
        type_: 2,     // ET_EXEC
        machine: 183, // EM_AARCH64
        version: 1,
        entry,
        phoff: EHDR_SIZE as u64,
        shoff: 0,
        flags: 0,
        ehsize: EHDR_SIZE as u16,
        phentsize: PHDR_SIZE as u16,
        phnum: loads.len() as u16,
        shentsize: 0,
        shnum: 0,
        shstrndx: 0,
    };
    let mut out = header.as_bytes().to_vec();
    let mut offset = (EHDR_SIZE + PHDR_SIZE * loads.len()).next_multiple_of(4096) as u64;
    let mut data_offsets = Vec::new();
    for l in loads {
        // Keep file offset and address congruent modulo the page size, as loaders expect.
        let misalign = l.paddr % 4096;
        offset = offset.next_multiple_of(4096) + misalign;
        data_offsets.push(offset);
        let ph = Phdr {
            type_: 1, // PT_LOAD
            flags: l.flags,
            offset,
            vaddr: l.paddr,
            paddr: l.paddr,
            filesz: l.data.len() as u64,
            memsz: l.memsz,
            align: 4096,
        };
        out.extend_from_slice(ph.as_bytes());
        offset += l.data.len() as u64;
    }
    for (l, off) in loads.iter().zip(data_offsets) {
        out.resize(off as usize, 0);
        out.extend_from_slice(&l.data);
    }
    out
}

/// The IDL interfaces a user program declares (`libl4::serves!` / `libl4::uses!`): the
/// records of its `.gaon.idl` section, or none if it has no such section.
pub fn idl_records(bytes: &[u8]) -> Result<Vec<gaon_abi::system::IdlRecord>, String> {
    use gaon_abi::system::{IDL_SECTION, IdlRecord};
    use zerocopy::FromBytes;
    let elf = ElfFile::new(bytes).map_err(|e| format!("not an ELF file: {e}"))?;
    let Some(section) = elf.find_section_by_name(IDL_SECTION) else {
        return Ok(Vec::new());
    };
    let data = section.raw_data(&elf);
    let records = <[IdlRecord]>::ref_from_bytes(data).map_err(|_| {
        format!(
            "section {IDL_SECTION} is {} bytes, not a whole number of records",
            data.len()
        )
    })?;
    Ok(records.to_vec())
}
