//! Address spaces: VSpaces (a stage-2 root table and a VMID), page tables, frames and
//! the VMID pools VSpaces get their VMIDs from. The table format is `crate::vspace`.
//!
//! A mapping is recorded in the frame or page-table capability that made it (`vmid`
//! and address, `Cap::mapped`), so unmapping and deleting find the entry again; the
//! kernel's `vmids` table maps a VMID back to its live VSpace.

use gaon_abi::invocation::{
    FRAME_ATTR_DEVICE, FrameGetAddressReply, FrameMapArgs, PageTableMapArgs, VSpaceGetVmidReply, VmidPoolAssignArgs,
    VmidPoolSplitArgs,
};
use gaon_abi::object::LARGE_PAGE_BITS;
use gaon_abi::{Error, Label, ObjType, Rights};

use super::Args;
use super::tcb::Tcb;
use crate::cap::{Cap, FLAG_DEVICE};
use crate::cdt;
use crate::kernel::cspace::{Kslots, cnode_slot, slot};
use crate::kernel::{Kernel, Platform, VMIDS};
use crate::obj::Ptr;
use crate::vspace::{self, MapAttrs, Table};

/// A checked Frame invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum FrameOp {
    /// Write `desc` into entry `index` of `table`; the frame is then mapped at
    /// `(vmid, va)`. `remap`: it replaces this frame's own entry (new rights).
    Map {
        table: Ptr<Table>,
        index: usize,
        desc: u64,
        vmid: u16,
        va: u64,
        remap: bool,
        execute: bool,
    },
    Unmap,
    GetAddress,
}

/// A checked PageTable invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum PageTableOp {
    /// Write the table's descriptor into entry `index` of `table` (a level-`level - 1`
    /// table); it then translates the `span` at `va` in `vmid`.
    Map {
        table: Ptr<Table>,
        index: usize,
        level: u32,
        vmid: u16,
        va: u64,
    },
    Unmap,
}

/// A checked VSpace invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum VSpaceOp {
    GetVmid(u64),
}

/// A checked VmidPool invocation.
#[derive(Clone, Copy, Debug)]
pub(in crate::kernel) enum VmidPoolOp {
    /// Give the VSpace whose cap is in `slot` the VMID `vmid`.
    Assign { slot: usize, vspace: Cap, vmid: usize },
    /// Move the last `count` VMIDs of the pool's `available` into a new pool in `dst`.
    Split {
        dst: usize,
        first: u64,
        available: u64,
        count: u64,
    },
}

impl<P: Platform> Kernel<P> {
    pub(super) fn decode_frame(&self, t: Ptr<Tcb>, cap: Cap, label: Label, a: &Args) -> Result<FrameOp, Error> {
        match label {
            Label::FrameMap => self.decode_frame_map(t, cap, a),
            Label::FrameUnmap => Ok(FrameOp::Unmap),
            Label::FrameGetAddress => Ok(FrameOp::GetAddress),
            _ => Err(Error::UnknownInvocation),
        }
    }

    fn decode_frame_map(&self, t: Ptr<Tcb>, cap: Cap, a: &Args) -> Result<FrameOp, Error> {
        let FrameMapArgs {
            vspace: vs,
            vaddr: va,
            rights,
            attributes: attr,
        } = a.decode()?;
        let (_, vcap) = self.lookup_typed(t, vs, ObjType::VSpace)?;
        let vmid = vcap.vmid();
        if vmid == 0 {
            // Mappings are recorded by VMID: a VSpace needs one first.
            return Err(Error::IllegalOperation);
        }
        let size = 1u64 << cap.size_bits;
        if !va.is_multiple_of(size) {
            return Err(Error::AlignmentError);
        }
        if va >= vspace::IPA_LIMIT || attr & !FRAME_ATTR_DEVICE != 0 {
            return Err(Error::RangeError);
        }
        // RAM is only ever mapped normal (write-back) memory: the kernel zeroes and
        // writes it through the cache, so a non-cacheable view could read stale data
        // from RAM underneath; device memory may be mapped either way.
        if attr & FRAME_ATTR_DEVICE != 0 && !cap.has(FLAG_DEVICE) {
            return Err(Error::IllegalOperation);
        }
        let rights = rights & cap.rights();
        if !rights.contains(Rights::READ) {
            return Err(Error::NoRights);
        }
        let attrs = MapAttrs {
            write: rights.contains(Rights::WRITE),
            execute: rights.contains(Rights::EXECUTE),
            device: attr & FRAME_ATTR_DEVICE != 0,
        };
        let level = frame_level(&cap);
        let same_place = match cap.mapped() {
            Some(m) if m == (vmid, va) => true,
            Some(_) => return Err(Error::IllegalOperation),
            None => false,
        };
        let (table, index) = vspace::entry_at(vcap.vspace(), va, level).ok_or(Error::FailedLookup)?;
        let old = table.get()[index];
        // A remap only if the entry still maps this frame (its table may have been
        // unmapped and replaced since).
        let remap = same_place && old & 1 != 0 && vspace::output(old) == cap.obj;
        if !remap && old & 1 != 0 {
            return Err(Error::DeleteFirst);
        }
        Ok(FrameOp::Map {
            table,
            index,
            desc: vspace::leaf_desc(cap.obj, level, attrs),
            vmid,
            va,
            remap,
            execute: attrs.execute,
        })
    }

    /// Perform a Frame invocation on `cap`, in slot `s`.
    pub(super) fn perform_frame(&mut self, t: Ptr<Tcb>, s: usize, cap: &Cap, op: FrameOp) -> usize {
        match op {
            FrameOp::Map {
                table,
                index,
                desc,
                vmid,
                va,
                remap,
                execute,
            } => {
                table.get()[index] = desc;
                if execute {
                    self.platform.sync_icache(cap.obj, 1 << cap.size_bits);
                }
                if remap {
                    self.platform.flush_vmid(vmid);
                }
                slot(s).cap.set_mapped(Some((vmid, va)));
                0
            }
            FrameOp::Unmap => {
                self.unmap_frame(cap);
                slot(s).cap.set_mapped(None);
                0
            }
            FrameOp::GetAddress => super::reply_with(
                t,
                &FrameGetAddressReply {
                    paddr: cap.obj as u64,
                    size_bits: u64::from(cap.size_bits),
                    vaddr: cap.mapped().map_or(u64::MAX, |(_, va)| va),
                },
            ),
        }
    }

    pub(super) fn decode_page_table(
        &self,
        t: Ptr<Tcb>,
        cap: Cap,
        label: Label,
        a: &Args,
    ) -> Result<PageTableOp, Error> {
        match label {
            Label::PageTableMap => {}
            Label::PageTableUnmap => return Ok(PageTableOp::Unmap),
            _ => return Err(Error::UnknownInvocation),
        }
        let PageTableMapArgs { vspace: vs, vaddr: va } = a.decode()?;
        let (_, vcap) = self.lookup_typed(t, vs, ObjType::VSpace)?;
        let vmid = vcap.vmid();
        if vmid == 0 {
            return Err(Error::IllegalOperation);
        }
        if cap.mapped().is_some() {
            return Err(Error::IllegalOperation);
        }
        if va >= vspace::IPA_LIMIT {
            return Err(Error::RangeError);
        }
        // Into the level-1 entry if it is empty (a level-2 table), else into the
        // level-2 table it points to (a level-3 table).
        let root = vcap.vspace();
        let l1 = root.get()[vspace::index(va, 1)];
        let (table, index, level) = if l1 & 1 == 0 {
            (root, vspace::index(va, 1), 2)
        } else {
            let l2 = vspace::next_table(l1, 1).ok_or(Error::DeleteFirst)?;
            if l2.get()[vspace::index(va, 2)] & 1 != 0 {
                return Err(Error::DeleteFirst);
            }
            (l2, vspace::index(va, 2), 3)
        };
        let span = vspace::entry_span(level - 1);
        Ok(PageTableOp::Map {
            table,
            index,
            level,
            vmid,
            va: va & !(span - 1),
        })
    }

    /// Perform a PageTable invocation on `cap`, in slot `s`.
    pub(super) fn perform_page_table(&mut self, s: usize, cap: &Cap, op: PageTableOp) -> usize {
        match op {
            PageTableOp::Map {
                table,
                index,
                level,
                vmid,
                va,
            } => {
                table.get()[index] = vspace::table_desc(cap.obj);
                let c = &mut slot(s).cap;
                c.set_pt_level(level);
                c.set_mapped(Some((vmid, va)));
            }
            PageTableOp::Unmap => {
                self.unmap_page_table(cap);
                slot(s).cap.set_mapped(None);
            }
        }
        0
    }

    pub(super) fn decode_vspace(cap: Cap, label: Label) -> Result<VSpaceOp, Error> {
        match label {
            Label::VSpaceGetVmid => Ok(VSpaceOp::GetVmid(u64::from(cap.vmid()))),
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_vspace(t: Ptr<Tcb>, op: VSpaceOp) -> usize {
        match op {
            VSpaceOp::GetVmid(v) => super::reply_with(t, &VSpaceGetVmidReply { vmid: v }),
        }
    }

    pub(super) fn decode_vmid_pool(&self, t: Ptr<Tcb>, s: usize, label: Label, a: &Args) -> Result<VmidPoolOp, Error> {
        match label {
            Label::VmidPoolAssign => {
                let (vs_slot, vs) = self.lookup_typed(t, a.decode::<VmidPoolAssignArgs>()?.vspace, ObjType::VSpace)?;
                if vs.vmid() != 0 {
                    return Err(Error::IllegalOperation);
                }
                let (first, count) = vmid_pool_available(s);
                let (first, count) = (first as usize, count as usize);
                let vmid = (first..first + count)
                    .find(|&v| v < VMIDS && self.vmids[v].is_none())
                    .ok_or(Error::NoVmid)?;
                Ok(VmidPoolOp::Assign {
                    slot: vs_slot,
                    vspace: vs,
                    vmid,
                })
            }
            Label::VmidPoolSplit => {
                let VmidPoolSplitArgs {
                    count: n,
                    dest: cn,
                    index,
                } = a.decode()?;
                let (_, cncap) = self.lookup_typed(t, cn, ObjType::CNode)?;
                let dst = cnode_slot(&cncap, index).ok_or(Error::RangeError)?;
                if !slot(dst).cap.is_null() {
                    return Err(Error::DeleteFirst);
                }
                let (first, available) = vmid_pool_available(s);
                if n == 0 || n > available {
                    return Err(Error::RangeError);
                }
                Ok(VmidPoolOp::Split {
                    dst,
                    first,
                    available,
                    count: n,
                })
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    pub(super) fn perform_vmid_pool(&mut self, s: usize, op: VmidPoolOp) -> usize {
        match op {
            VmidPoolOp::Assign {
                slot: vs_slot,
                vspace,
                vmid,
            } => {
                self.vmids[vmid] = Some(vspace.vspace());
                // Every cap to the VSpace carries the VMID.
                set_vspace_vmid(vs_slot, vspace, vmid as u16);
                // Nothing of a previous VSpace with this VMID may stay in the TLBs.
                self.platform.flush_vmid(vmid as u16);
            }
            VmidPoolOp::Split {
                dst,
                first,
                available,
                count,
            } => {
                let keep = available - count;
                slot(s).cap.set_vmids_available(keep);
                let r = cdt::insert_child(&mut Kslots, s, dst, Cap::new_vmid_pool(first + keep, count as u8));
                debug_assert!(r.is_ok(), "decode checked the slot is empty");
            }
        }
        0
    }

    /// The root table of the live VSpace with `vmid`.
    pub(in crate::kernel) fn vspace_root(&self, vmid: u16) -> Option<Ptr<Table>> {
        *self.vmids.get(usize::from(vmid))?
    }

    /// Remove a frame cap's mapping, if the table still holds it.
    pub(in crate::kernel) fn unmap_frame(&mut self, cap: &Cap) {
        let Some((vmid, va)) = cap.mapped() else { return };
        let Some(root) = self.vspace_root(vmid) else { return };
        let level = frame_level(cap);
        if let Some((table, i)) = vspace::entry_at(root, va, level) {
            let d = table.get()[i];
            if d & 1 != 0 && !vspace::is_table(d, level) && vspace::output(d) == cap.obj {
                table.get()[i] = 0;
                self.platform.flush_vmid(vmid);
            }
        }
    }

    /// Remove a page table from its VSpace and clear it and every table below it, so
    /// no translation through it survives: not to the frames it mapped (which may be
    /// deleted and their memory reused while the table lives on), and not through it
    /// if it is mapped again elsewhere. Clearing happens whether or not its VSpace is
    /// still alive.
    pub(in crate::kernel) fn unmap_page_table(&mut self, cap: &Cap) {
        let Some((vmid, va)) = cap.mapped() else { return };
        let level = cap.pt_level();
        if let Some(root) = self.vspace_root(vmid)
            && let Some((table, i)) = vspace::entry_at(root, va, level - 1)
        {
            let d = table.get()[i];
            if vspace::is_table(d, level - 1) && vspace::output(d) == cap.obj {
                table.get()[i] = 0;
            }
        }
        vspace::clear_tree(cap.page_table(), level);
        // Flushed after clearing: walks cached through the tables go too.
        self.platform.flush_vmid(vmid);
    }
}

/// The level of the table entry that maps a frame: 2 for a large page, else 3.
fn frame_level(cap: &Cap) -> u32 {
    if cap.size_bits == LARGE_PAGE_BITS { 2 } else { 3 }
}

/// The VMIDs pool `s` may give or split now: `(first, count)`. All it was made with
/// once every pool split off it is gone (revoked), as an untyped's watermark resets.
fn vmid_pool_available(s: usize) -> (u64, u64) {
    let (first, (available, made)) = slot(s).cap.vmid_pool();
    if cdt::has_children(&mut Kslots, s) {
        (first, available)
    } else {
        (first, made)
    }
}

/// Record `vmid` in every cap to the VSpace `vs` (in slot `s`): its copies are its
/// neighbours in derivation order.
fn set_vspace_vmid(s: usize, vs: Cap, vmid: u16) {
    let mut cur = Some(s);
    while let Some(c) = cur {
        slot(c).cap.set_vmid(vmid);
        cur = slot(c).mdb.next().filter(|&n| slot(n).cap.same_object(&vs));
    }
    let mut cur = slot(s).mdb.prev().filter(|&p| slot(p).cap.same_object(&vs));
    while let Some(c) = cur {
        slot(c).cap.set_vmid(vmid);
        cur = slot(c).mdb.prev().filter(|&p| slot(p).cap.same_object(&vs));
    }
}
