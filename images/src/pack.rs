//! Packing: the boot image layout of `gaon_abi::boot`, then the board's file format.

use std::fmt;

use gaon_abi::boot::{BOOT_ALIGN, BOOT_MAGIC, BOOT_VERSION, BootImageHeader, MAX_SEGMENTS, Module, Segment, make_name};
use gaon_platform::ImageFormat;
use zerocopy::{FromZeros, IntoBytes};

use crate::System;
use crate::elf::{Executable, Load, idl_records, write_elf};

/// The inputs of one image.
#[derive(Debug)]
pub struct PackInput<'a> {
    /// The checked description.
    pub system: &'a System,
    /// Kernel ELF bytes, built for `system.board`.
    pub kernel: &'a [u8],
    /// Root server ELF bytes.
    pub root: &'a [u8],
    /// Module bytes, in the description's order.
    pub modules: &'a [Vec<u8>],
}

/// Why an image could not be packed.
#[derive(Debug, PartialEq, Eq)]
pub enum PackError {
    /// The kernel ELF is unusable.
    Kernel(String),
    /// The root server ELF is unusable.
    Root(String),
    /// The inputs do not fit the boot image format.
    Layout(String),
    /// The two ends of a channel disagree (the message names the field).
    Channel(gaon_platform::DescError),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel(m) => write!(f, "kernel: {m}"),
            Self::Root(m) => write!(f, "root server: {m}"),
            Self::Layout(m) => write!(f, "boot image: {m}"),
            Self::Channel(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PackError {}

fn pad_to(buf: &mut Vec<u8>, align: u64) {
    let len = (buf.len() as u64).next_multiple_of(align);
    buf.resize(len as usize, 0);
}

/// Build the boot image (header, root segments, modules) the kernel reads at `__kernel_end`.
pub fn boot_image(input: &PackInput<'_>) -> Result<Vec<u8>, PackError> {
    let root = Executable::parse(input.root).map_err(PackError::Root)?;
    if root.loads.len() > MAX_SEGMENTS {
        return Err(PackError::Root(format!(
            "has {} loadable segments; at most {MAX_SEGMENTS}",
            root.loads.len()
        )));
    }
    let mut header = BootImageHeader::new_zeroed();
    header.magic = BOOT_MAGIC;
    header.version = BOOT_VERSION;
    header.root_entry = root.entry;
    header.board =
        make_name(&input.system.board.board.name).ok_or_else(|| PackError::Layout("board name too long".into()))?;
    header.system = make_name(&input.system.name).ok_or_else(|| PackError::Layout("system name too long".into()))?;
    let mut payload = vec![0u8; size_of::<BootImageHeader>()];
    pad_to(&mut payload, BOOT_ALIGN);
    for (i, l) in root.loads.iter().enumerate() {
        if l.vaddr % BOOT_ALIGN != 0 {
            return Err(PackError::Root(format!(
                "segment {i} at {:#x} is not page aligned (link with libl4/user.ld)",
                l.vaddr
            )));
        }
        header.segments[i] = Segment {
            vaddr: l.vaddr,
            offset: payload.len() as u64,
            filesz: l.data.len() as u64,
            memsz: l.memsz,
            flags: l.flags & 7,
            reserved: 0,
        };
        payload.extend_from_slice(&l.data);
        pad_to(&mut payload, BOOT_ALIGN);
    }
    header.segment_count = root.loads.len() as u32;
    for (i, (desc, bytes)) in input.system.modules.iter().zip(input.modules).enumerate() {
        header.modules[i] = Module {
            name: make_name(&desc.name)
                .ok_or_else(|| PackError::Layout(format!("module name `{}` too long", desc.name)))?,
            offset: payload.len() as u64,
            size: bytes.len() as u64,
        };
        payload.extend_from_slice(bytes);
        pad_to(&mut payload, BOOT_ALIGN);
    }
    header.module_count = input.modules.len() as u32;
    header.total_size = payload.len() as u64;
    payload[..size_of::<BootImageHeader>()].copy_from_slice(header.as_bytes());
    // The kernel runs exactly this check at boot; fail here instead.
    BootImageHeader::parse(&payload).map_err(|e| PackError::Layout(format!("{e:?}")))?;
    Ok(payload)
}

/// Check that both ends of every channel agree on its IDL interface, from the records
/// in the servers' ELFs.
fn check_interfaces(input: &PackInput<'_>) -> Result<(), PackError> {
    let s = input.system;
    let mut records = Vec::new();
    for server in &s.servers.servers {
        let i = s
            .modules
            .iter()
            .position(|m| m.name == server.name)
            .ok_or_else(|| PackError::Layout(format!("server `{}` has no module", server.name)))?;
        let elf = &input.modules[i];
        records.push(idl_records(elf).map_err(|e| PackError::Layout(format!("server `{}`: {e}", server.name)))?);
    }
    s.check_interfaces(&records).map_err(PackError::Channel)
}

/// Pack a bootable file in the board's format.
pub fn pack(input: &PackInput<'_>) -> Result<Vec<u8>, PackError> {
    if input.modules.len() != input.system.modules.len() {
        return Err(PackError::Layout("module bytes do not match the description".into()));
    }
    let kernel = Executable::parse(input.kernel).map_err(PackError::Kernel)?;
    let board = &input.system.board.board;
    let base = kernel.loads.iter().map(|l| l.paddr).min().unwrap_or(0);
    if base != board.load_address {
        return Err(PackError::Kernel(format!(
            "loads at {base:#x} but board `{}` needs {:#x}: was it built with GAON_BOARD={}?",
            board.name, board.load_address, board.name
        )));
    }
    let end = kernel
        .symbol("__kernel_end")
        .ok_or_else(|| PackError::Kernel("has no `__kernel_end` symbol".into()))?;
    if end % BOOT_ALIGN != 0 {
        return Err(PackError::Kernel(format!("__kernel_end {end:#x} is not page aligned")));
    }
    check_interfaces(input)?;
    let blob = boot_image(input)?;
    let mem = input.system.board.memory;
    if end + blob.len() as u64 > mem.base + mem.size {
        return Err(PackError::Layout(format!(
            "kernel and boot image end beyond the board's {} MiB of memory",
            mem.size >> 20
        )));
    }
    Ok(match board.image_format {
        ImageFormat::Elf => {
            let mut loads = kernel.loads.clone();
            loads.push(Load {
                vaddr: end,
                paddr: end,
                memsz: blob.len() as u64,
                data: blob,
                flags: 4,
            });
            write_elf(kernel.entry, &loads)
        }
        ImageFormat::Raw => {
            if kernel.entry != base {
                return Err(PackError::Kernel(format!(
                    "entry {:#x} is not the load address {base:#x}",
                    kernel.entry
                )));
            }
            let mut flat = vec![0u8; (end - base) as usize];
            for l in &kernel.loads {
                let at = (l.paddr - base) as usize;
                flat[at..at + l.data.len()].copy_from_slice(&l.data);
            }
            flat.extend_from_slice(&blob);
            flat
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn system() -> System {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        System::load(&dir.join("tests/fixtures/good/minimal.toml"), &dir.join("../platforms")).unwrap()
    }

    /// An executable with one read-execute segment of `data` at `addr`.
    fn one_segment(addr: u64, data: Vec<u8>) -> Vec<u8> {
        write_elf(
            addr,
            &[Load {
                vaddr: addr,
                paddr: addr,
                memsz: data.len() as u64,
                data,
                flags: 5,
            }],
        )
    }

    /// The module bytes of a system without servers: just the system table.
    fn table_only(s: &System) -> Vec<Vec<u8>> {
        s.read_modules(|_, _| unreachable!("no package modules")).unwrap()
    }

    /// A user program with a text and a data segment at page-aligned addresses.
    fn user_elf() -> Vec<u8> {
        write_elf(
            0x40_0000,
            &[
                Load {
                    vaddr: 0x40_0000,
                    paddr: 0x40_0000,
                    data: vec![0xaa; 100],
                    memsz: 100,
                    flags: 5,
                },
                Load {
                    vaddr: 0x40_1000,
                    paddr: 0x40_1000,
                    data: vec![0xbb; 8],
                    memsz: 0x2000,
                    flags: 6,
                },
            ],
        )
    }

    #[test]
    fn boot_image_describes_root_and_modules() {
        let s = system();
        let root = user_elf();
        let modules = table_only(&s);
        let blob = boot_image(&PackInput {
            system: &s,
            kernel: &[],
            root: &root,
            modules: &modules,
        })
        .unwrap();
        let h = BootImageHeader::parse(&blob).unwrap();
        assert_eq!(h.root_entry, 0x40_0000);
        assert_eq!(h.segments().len(), 2);
        let data = &h.segments()[1];
        assert_eq!((data.vaddr, data.filesz, data.memsz), (0x40_1000, 8, 0x2000));
        assert_eq!(&blob[data.offset as usize..][..8], &[0xbb; 8]);
        assert_eq!(gaon_abi::boot::name_bytes(&h.board), b"virt");
    }

    #[test]
    fn rejects_garbage_and_foreign_elves() {
        let s = system();
        let root = user_elf();
        let modules = table_only(&s);
        let input = |kernel: &'static [u8]| PackInput {
            system: &s,
            kernel,
            root: &root,
            modules: &modules,
        };
        let err = pack(&input(
            b"definitely not an ELF file at all, but long enough to parse......",
        ))
        .unwrap_err();
        assert!(
            matches!(&err, PackError::Kernel(m) if m.contains("not an ELF")),
            "{err}"
        );
    }

    #[test]
    fn rejects_kernel_for_another_board() {
        let s = system();
        let root = user_elf();
        let kernel = one_segment(0x8_0000, vec![0; 16]);
        let err = pack(&PackInput {
            system: &s,
            kernel: &kernel,
            root: &root,
            modules: &table_only(&s),
        })
        .unwrap_err();
        assert!(
            matches!(&err, PackError::Kernel(m) if m.contains("GAON_BOARD=virt")),
            "{err}"
        );
    }

    #[test]
    fn rejects_kernel_without_end_symbol() {
        let s = system();
        let root = user_elf();
        let kernel = one_segment(0x4008_0000, vec![0; 16]);
        let err = pack(&PackInput {
            system: &s,
            kernel: &kernel,
            root: &root,
            modules: &table_only(&s),
        })
        .unwrap_err();
        assert_eq!(err, PackError::Kernel("has no `__kernel_end` symbol".into()));
    }

    #[test]
    fn rejects_unaligned_root_segment() {
        let s = system();
        let root = one_segment(0x40_0010, vec![1; 4]);
        let err = boot_image(&PackInput {
            system: &s,
            kernel: &[],
            root: &root,
            modules: &table_only(&s),
        })
        .unwrap_err();
        assert!(
            matches!(&err, PackError::Root(m) if m.contains("not page aligned")),
            "{err}"
        );
    }
}
