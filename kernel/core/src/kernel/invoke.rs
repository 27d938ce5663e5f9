//! Invocations: a Call on a capability to a kernel object. Every argument is checked
//! before anything changes; a failed invocation changes nothing.

use gaon_abi::invocation::{FRAME_ATTR_DEVICE, MAX_PRIORITY, REG_COUNT, REG_PC, REG_SP, REG_SPSR, REG_TPIDR, REG_X0};
use gaon_abi::object::{LARGE_PAGE_BITS, SLOT_BITS};
use gaon_abi::{Error, Label, MsgInfo, ObjType, Rights};

use super::delete::Preempted;
use super::ipc::{cnode_slot, derived_copy};
use super::objects::{Endpoint, Notification, Reply, SchedContext};
use super::{Args, Kernel, Kslots, MAX_RETYPE_COUNT, Platform, RETYPE_ZERO_CHUNK, VMIDS, slot};
use crate::cap::{Cap, FLAG_DEVICE};
use crate::cdt::{self, CdtError, Slot};
use crate::obj::{self, Ptr};
use crate::tcb::{self, SLOT_CSPACE, SLOT_FAULT_EP, SLOT_IPC_BUFFER, SLOT_TIMEOUT_EP, SLOT_VSPACE, Tcb, ThreadState};
use crate::vspace::{self, MapAttrs};

/// Why an invocation did not complete: an error for the invoker, or a preemption point
/// (the syscall restarts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Error(Error),
    Preempted,
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

impl From<Preempted> for Stop {
    fn from(_: Preempted) -> Self {
        Self::Preempted
    }
}

impl From<CdtError> for Stop {
    fn from(e: CdtError) -> Self {
        Self::Error(e.into())
    }
}

impl From<CdtError> for Error {
    fn from(e: CdtError) -> Self {
        match e {
            CdtError::BadSlot => Error::RangeError,
            CdtError::Occupied => Error::DeleteFirst,
            CdtError::Empty => Error::FailedLookup,
            CdtError::NotDerived => Error::InvalidArgument,
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// Perform the invocation the current thread `t` asked for on `cap` (in slot `s`).
    pub(super) fn invoke(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap) {
        let info = MsgInfo(t.get().ctx.x[gaon_abi::syscall::INFO_REG]);
        let a = Args {
            t,
            len: info.length().min(Self::mr_capacity(t)),
        };
        let result = match Label::from_raw(info.label()) {
            None => Err(Error::UnknownInvocation),
            Some(label) => match self.dispatch(t, s, cap, label, &a) {
                Ok(n) => Ok(n),
                Err(Stop::Error(e)) => Err(e),
                Err(Stop::Preempted) => {
                    // An interrupt is pending: the invoker runs the same syscall again
                    // (its registers are untouched), which carries on from the progress
                    // recorded in the objects.
                    t.get().ctx.pc -= 4;
                    return;
                }
            },
        };
        // A delete or revoke may have destroyed the invoker itself (its last Tcb cap was
        // in the slot, or in a CNode that died): destroying the running thread clears
        // `current`, and a dead thread gets no reply.
        if self.current == t.addr() {
            Self::reply_kernel(t, result);
        }
    }

    fn dispatch(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap, label: Label, a: &Args) -> Result<usize, Stop> {
        use Label as L;
        let r = match (cap.ty(), label) {
            (Some(ObjType::Untyped), L::UntypedRetype) => return self.untyped_retype(t, s, cap, a),
            (Some(ObjType::CNode), _) => return self.cnode_invoke(t, cap, label, a),
            (Some(ObjType::Tcb), _) => self.tcb_invoke(t, Ptr::new(cap.obj), label, a),
            (Some(ObjType::Frame), L::FrameMap) => self.frame_map(t, s, cap, a),
            (Some(ObjType::Frame), L::FrameUnmap) => {
                self.unmap_frame(&cap);
                slot(s).cap.set_mapped(None);
                Ok(0)
            }
            (Some(ObjType::Frame), L::FrameGetAddress) => {
                Self::set_mr(t, 0, cap.obj as u64);
                Self::set_mr(t, 1, u64::from(cap.size_bits));
                Self::set_mr(t, 2, cap.mapped().map_or(u64::MAX, |(_, va)| va));
                Ok(3)
            }
            (Some(ObjType::PageTable), L::PageTableMap) => self.page_table_map(t, s, cap, a),
            (Some(ObjType::PageTable), L::PageTableUnmap) => {
                self.unmap_page_table(&cap);
                slot(s).cap.set_mapped(None);
                Ok(0)
            }
            (Some(ObjType::VSpace), L::VSpaceGetVmid) => {
                Self::set_mr(t, 0, cap.badge);
                Ok(1)
            }
            (Some(ObjType::Debug), L::DebugLogBind) => self.log_bind(t, a),
            (Some(ObjType::VmidPool), L::VmidPoolAssign) => self.vmid_pool_assign(t, s, a),
            (Some(ObjType::VmidPool), L::VmidPoolSplit) => self.vmid_pool_split(t, s, a),
            (Some(ObjType::IrqControl), L::IrqControlGet) => self.irq_control_get(t, s, a),
            (Some(ObjType::IrqHandler), _) => self.irq_handler_invoke(t, cap, label, a),
            (Some(ObjType::SchedControl), L::SchedControlConfigure) => self.sched_configure(t, a),
            (Some(ObjType::SchedContext), _) => self.sched_context_invoke(t, Ptr::new(cap.obj), label, a),
            _ => Err(Error::UnknownInvocation),
        };
        r.map_err(Stop::Error)
    }

    // ---- Untyped ----------------------------------------------------------------

    fn untyped_retype(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap, a: &Args) -> Result<usize, Stop> {
        let w0 = a.get::<P>(0)?;
        let (cn_cptr, offset, count) = (a.get::<P>(1)?, a.get::<P>(2)?, a.get::<P>(3)?);
        if w0 >> 16 != 0 {
            return Err(Error::InvalidArgument.into());
        }
        let ty = ObjType::from_raw(w0 & 0xff).ok_or(Error::InvalidArgument)?;
        let obj_bits = ty.object_bits((w0 >> 8) & 0xff).ok_or(Error::InvalidArgument)?;
        let device = cap.has(FLAG_DEVICE);
        if device && !matches!(ty, ObjType::Frame | ObjType::Untyped) {
            return Err(Error::IllegalOperation.into());
        }
        if count == 0 || count > MAX_RETYPE_COUNT {
            return Err(Error::RangeError.into());
        }
        if obj_bits > cap.size_bits {
            return Err(Error::RangeError.into());
        }
        let (_, cn) = self.lookup_typed(t, cn_cptr, ObjType::CNode)?;
        let radix = u32::from(cn.size_bits - SLOT_BITS);
        if offset >= 1 << radix || offset + count > 1 << radix {
            return Err(Error::RangeError.into());
        }
        let dst = |i: u64| cn.obj + ((offset + i) as usize) * core::mem::size_of::<Slot>();
        if (0..count).any(|i| !slot(dst(i)).cap.is_null()) {
            return Err(Error::DeleteFirst.into());
        }
        let has_children = cdt::has_children(&mut Kslots, s);
        let watermark = if has_children { cap.badge as usize } else { 0 };
        let start = watermark.next_multiple_of(1 << obj_bits);
        let end = (count as usize)
            .checked_mul(1 << obj_bits)
            .and_then(|b| b.checked_add(start))
            .filter(|&e| e <= 1 << cap.size_bits)
            .ok_or(Error::NotEnoughMemory)?;
        // Every argument is valid. Zero the objects' memory first, in chunks, with a
        // preemption point after each: the progress ("zero up to") is kept in the
        // untyped cap's `mapping` word, so a restarted retype carries on. All its
        // children gone (a non-zero watermark, no children) means its memory was freed
        // and may hold anything: the progress starts again from 0, once.
        if !has_children && cap.badge != 0 {
            let u = &mut slot(s).cap;
            u.badge = 0;
            u.mapping = 0;
        }
        // Objects that are memory to their user, or tables, are zero when made; the small
        // kernel objects are written whole by `init_object` and need no zeroing.
        let zeroed = matches!(
            ty,
            ObjType::CNode | ObjType::Frame | ObjType::PageTable | ObjType::VSpace
        );
        if !device && zeroed {
            let mut z = watermark.max(slot(s).cap.mapping as usize);
            while z < end {
                let chunk_end = end.min((z + RETYPE_ZERO_CHUNK) & !(RETYPE_ZERO_CHUNK - 1));
                obj::zero(cap.obj + z, chunk_end - z);
                z = chunk_end;
                slot(s).cap.mapping = z as u64;
                if z < end && self.platform.irq_pending() {
                    return Err(Stop::Preempted);
                }
            }
        }
        slot(s).cap.badge = end as u64;
        for i in 0..count {
            let addr = cap.obj + start + ((i as usize) << obj_bits);
            let mut c = Cap::new(ty, addr, obj_bits);
            if device {
                c.flags |= FLAG_DEVICE;
            } else {
                init_object(ty, addr);
            }
            cdt::insert_retyped(&mut Kslots, s, dst(i), c)?;
        }
        Ok(0)
    }

    // ---- CNode ------------------------------------------------------------------

    fn cnode_invoke(&mut self, t: Ptr<Tcb>, cn: Cap, label: Label, a: &Args) -> Result<usize, Stop> {
        use Label as L;
        let dst = cnode_slot(&cn, a.get::<P>(0)?).ok_or(Error::RangeError)?;
        match label {
            L::CNodeDelete => {
                self.delete_slot_in(dst, true)?;
                Ok(0)
            }
            L::CNodeRevoke => {
                self.revoke_slot_in(dst, true)?;
                Ok(0)
            }
            L::CNodeIdentify => {
                // A half-deleted container (a zombie) reads as empty: its words are the
                // kernel's bookkeeping (slot addresses), not the user's.
                let c = if slot(dst).cap.has(crate::cap::FLAG_ZOMBIE) {
                    Cap::NULL
                } else {
                    slot(dst).cap
                };
                Self::set_mr(t, 0, c.ty().map_or(0, |ty| ty as u64 + 1));
                Self::set_mr(t, 1, c.badge);
                Self::set_mr(t, 2, c.rights().bits());
                Ok(3)
            }
            L::CNodeCopy | L::CNodeMint => {
                let (src, sc) = self.lookup_cap(t, a.get::<P>(1)?)?;
                let rights = Rights::from_bits_truncate(a.get::<P>(2)?);
                let badge = if label == L::CNodeMint { a.get::<P>(3)? } else { 0 };
                if !slot(dst).cap.is_null() {
                    return Err(Error::DeleteFirst.into());
                }
                let mut new = derived_copy(sc)?;
                new = new.with_rights(sc.rights() & rights);
                if badge != 0 {
                    new = rebadge(new, badge)?;
                }
                cdt::derive(&mut Kslots, src, dst, new)?;
                Ok(0)
            }
            L::CNodeMove | L::CNodeMutate => {
                let (src, sc) = self.lookup_cap(t, a.get::<P>(1)?)?;
                let badge = if label == L::CNodeMutate { a.get::<P>(2)? } else { 0 };
                if src == dst {
                    return if badge == 0 {
                        Ok(0)
                    } else {
                        Err(Error::DeleteFirst.into())
                    };
                }
                if !slot(dst).cap.is_null() {
                    return Err(Error::DeleteFirst.into());
                }
                let new = if badge == 0 { sc } else { rebadge(sc, badge)? };
                if badge != 0 && sc.badgeable() && cdt::has_children(&mut Kslots, src) {
                    return Err(Error::RevokeFirst.into());
                }
                cdt::move_cap(&mut Kslots, src, dst)?;
                slot(dst).cap = new;
                if badge != 0 && sc.badgeable() {
                    slot(dst).mdb.revocable = true;
                    slot(dst).mdb.first_badged = true;
                }
                Ok(0)
            }
            _ => Err(Error::UnknownInvocation.into()),
        }
    }

    // ---- Tcb --------------------------------------------------------------------

    #[allow(clippy::too_many_lines, reason = "one arm per Tcb invocation")]
    fn tcb_invoke(&mut self, t: Ptr<Tcb>, target: Ptr<Tcb>, label: Label, a: &Args) -> Result<usize, Error> {
        use Label as L;
        match label {
            L::TcbSetSpace => {
                let (cs, vs, fe) = (a.get::<P>(0)?, a.get::<P>(1)?, a.get::<P>(2)?);
                let cspace = self.lookup_typed(t, cs, ObjType::CNode)?;
                let vspace = self.lookup_typed(t, vs, ObjType::VSpace)?;
                if vspace.1.badge == 0 {
                    // No VMID yet (VmidPoolAssign): it cannot be run in.
                    return Err(Error::IllegalOperation);
                }
                let fault = if fe == 0 {
                    None
                } else {
                    Some(self.lookup_typed(t, fe, ObjType::Endpoint)?)
                };
                // Decode all three, then perform all three: nothing changes on an error.
                let plan = [
                    (SLOT_CSPACE, Some(cspace)),
                    (SLOT_VSPACE, Some(vspace)),
                    (SLOT_FAULT_EP, fault),
                ];
                for &(i, src) in &plan {
                    check_install(target, i, src)?;
                }
                for (i, src) in plan {
                    self.install(target, i, src);
                }
                Ok(0)
            }
            L::TcbSetIpcBuffer => {
                let (va, fc) = (a.get::<P>(0)?, a.get::<P>(1)?);
                if !va.is_multiple_of(1 << gaon_abi::message::IPC_BUFFER_SIZE_BITS) {
                    return Err(Error::AlignmentError);
                }
                let frame = if fc == 0 {
                    None
                } else {
                    let f = self.lookup_typed(t, fc, ObjType::Frame)?;
                    if f.1.has(FLAG_DEVICE) {
                        return Err(Error::InvalidCapability);
                    }
                    // The kernel reads messages from it and writes replies into it.
                    if !f.1.rights().contains(Rights::READ | Rights::WRITE) {
                        return Err(Error::NoRights);
                    }
                    Some(f)
                };
                check_install(target, SLOT_IPC_BUFFER, frame)?;
                self.install(target, SLOT_IPC_BUFFER, frame);
                target.get().ipc_buffer_vaddr = if fc == 0 { 0 } else { va };
                Ok(0)
            }
            L::TcbSetTimeoutEndpoint => {
                let c = a.get::<P>(0)?;
                let ep = if c == 0 {
                    None
                } else {
                    Some(self.lookup_typed(t, c, ObjType::Endpoint)?)
                };
                check_install(target, SLOT_TIMEOUT_EP, ep)?;
                self.install(target, SLOT_TIMEOUT_EP, ep);
                Ok(0)
            }
            L::TcbSetPriority | L::TcbSetMcp => {
                let value = a.get::<P>(0)?;
                let (_, auth) = self.lookup_typed(t, a.get::<P>(1)?, ObjType::Tcb)?;
                if value > MAX_PRIORITY {
                    return Err(Error::RangeError);
                }
                if value > u64::from(Ptr::<Tcb>::new(auth.obj).get().mcp) {
                    return Err(Error::IllegalOperation);
                }
                if label == L::TcbSetMcp {
                    target.get().mcp = value as u8;
                } else {
                    // The running thread is queued again first, so it moves like any other.
                    self.settle_current();
                    let queued = target.get().queued;
                    self.rq.dequeue(target);
                    target.get().prio = value as u8;
                    if queued {
                        self.rq.enqueue(target, false);
                    }
                }
                Ok(0)
            }
            L::TcbReadRegisters => {
                let (first, count) = (a.get::<P>(0)?, a.get::<P>(1)?);
                if target == t {
                    return Err(Error::IllegalOperation);
                }
                if first >= REG_COUNT || count > REG_COUNT - first || count as usize > Self::mr_capacity(t) {
                    return Err(Error::RangeError);
                }
                for i in 0..count {
                    Self::set_mr(t, i as usize, read_reg(target.get(), first + i));
                }
                Ok(count as usize)
            }
            L::TcbWriteRegisters => {
                let (first, count) = (a.get::<P>(0)?, a.get::<P>(1)?);
                if target == t {
                    return Err(Error::IllegalOperation);
                }
                if first >= REG_COUNT || count > REG_COUNT - first {
                    return Err(Error::RangeError);
                }
                a.get::<P>(1 + count as usize)?;
                for i in 0..count {
                    let v = a.get::<P>(2 + i as usize)?;
                    write_reg(target.get(), first + i, v);
                }
                Ok(0)
            }
            L::TcbResume => {
                if target.get().state == ThreadState::Inactive {
                    if self.vspace_of(target).is_none() {
                        return Err(Error::IllegalOperation);
                    }
                    target.get().fault[0] = 0;
                    self.make_runnable(target, false);
                }
                Ok(0)
            }
            L::TcbSuspend => {
                self.cancel_ipc(target);
                target.get().fault[0] = 0;
                self.block(target, ThreadState::Inactive);
                Ok(0)
            }
            L::TcbBindNotification => {
                let (_, nc) = self.lookup_typed(t, a.get::<P>(0)?, ObjType::Notification)?;
                if !nc.rights().contains(Rights::READ) {
                    return Err(Error::NoRights);
                }
                let n = Ptr::<Notification>::new(nc.obj);
                if target.get().bound_ntfn != 0 || n.get().bound != 0 {
                    return Err(Error::IllegalOperation);
                }
                if !n.get().queue.is_empty() {
                    return Err(Error::IllegalOperation);
                }
                target.get().bound_ntfn = n.addr();
                n.get().bound = target.addr();
                Ok(0)
            }
            L::TcbUnbindNotification => {
                let n = Ptr::<Notification>::from_raw(target.get().bound_ntfn).ok_or(Error::IllegalOperation)?;
                n.get().bound = 0;
                target.get().bound_ntfn = 0;
                Ok(0)
            }
            L::TcbGetState => {
                let tcb = target.get();
                Self::set_mr(t, 0, u64::from(tcb.state as u8));
                Self::set_mr(t, 1, u64::from(tcb.prio));
                Self::set_mr(t, 2, u64::from(tcb.mcp));
                Ok(3)
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    /// Replace `target`'s slot `i` with a copy of the cap at `src` (or empty it). The
    /// caller has checked the change with [`check_install`], so it cannot fail: the
    /// delete destroys no container, hence neither `target` nor the source.
    fn install(&mut self, target: Ptr<Tcb>, i: usize, src: Option<(usize, Cap)>) {
        let dst = tcb::slot_addr(target, i);
        self.delete_slot(dst);
        let Some((s, cap)) = src else { return };
        debug_assert!(slot(s).cap.same_object(&cap) && slot(dst).cap.is_null());
        if let Ok(copy) = derived_copy(cap) {
            let _ = cdt::derive(&mut Kslots, s, dst, copy);
        }
    }

    // ---- Frames and page tables -------------------------------------------------

    fn frame_map(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap, a: &Args) -> Result<usize, Error> {
        let (vs, va, rights, attr) = (a.get::<P>(0)?, a.get::<P>(1)?, a.get::<P>(2)?, a.get::<P>(3)?);
        let (_, vcap) = self.lookup_typed(t, vs, ObjType::VSpace)?;
        if vcap.badge == 0 {
            // Mappings are recorded by VMID: a VSpace needs one first.
            return Err(Error::IllegalOperation);
        }
        let vmid = vcap.badge as u16;
        let root = Ptr::<vspace::Table>::new(vcap.obj);
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
        let rights = Rights::from_bits_truncate(rights) & cap.rights();
        if !rights.contains(Rights::READ) {
            return Err(Error::NoRights);
        }
        let attrs = MapAttrs {
            write: rights.contains(Rights::WRITE),
            execute: rights.contains(Rights::EXECUTE),
            device: attr & FRAME_ATTR_DEVICE != 0,
        };
        let level = if cap.size_bits == LARGE_PAGE_BITS { 2 } else { 3 };
        let same_place = match cap.mapped() {
            Some(m) if m == (vmid, va) => true,
            Some(_) => return Err(Error::IllegalOperation),
            None => false,
        };
        let (table, i) = vspace::entry_at(root, va, level).ok_or(Error::FailedLookup)?;
        let old = table.get()[i];
        // A remap only if the entry still maps this frame (its table may have been
        // unmapped and replaced since).
        let remap = same_place && old & 1 != 0 && vspace::output(old) == cap.obj;
        if !remap && old & 1 != 0 {
            return Err(Error::DeleteFirst);
        }
        table.get()[i] = vspace::leaf_desc(cap.obj, level, attrs);
        if attrs.execute {
            self.platform.sync_icache(cap.obj, size as usize);
        }
        if remap {
            self.platform.flush_vmid(vmid);
        }
        slot(s).cap.set_mapped(Some((vmid, va)));
        Ok(0)
    }

    fn page_table_map(&mut self, t: Ptr<Tcb>, s: usize, cap: Cap, a: &Args) -> Result<usize, Error> {
        let (vs, va) = (a.get::<P>(0)?, a.get::<P>(1)?);
        let (_, vcap) = self.lookup_typed(t, vs, ObjType::VSpace)?;
        if vcap.badge == 0 {
            return Err(Error::IllegalOperation);
        }
        if cap.mapped().is_some() {
            return Err(Error::IllegalOperation);
        }
        if va >= vspace::IPA_LIMIT {
            return Err(Error::RangeError);
        }
        let root = Ptr::<vspace::Table>::new(vcap.obj);
        let l1 = &mut root.get()[vspace::index(va, 1)];
        let level = if *l1 & 1 == 0 {
            *l1 = vspace::table_desc(cap.obj);
            2
        } else {
            let l2 = vspace::next_table(*l1, 1).ok_or(Error::DeleteFirst)?;
            let e = &mut l2.get()[vspace::index(va, 2)];
            if *e & 1 != 0 {
                return Err(Error::DeleteFirst);
            }
            *e = vspace::table_desc(cap.obj);
            3
        };
        let span = vspace::entry_span(level - 1);
        let c = &mut slot(s).cap;
        c.guard_bits = level as u8;
        c.set_mapped(Some((vcap.badge as u16, va & !(span - 1))));
        Ok(0)
    }

    // ---- VMIDs ------------------------------------------------------------------

    /// The VMIDs pool `s` may give or split now: all it was made with once every pool
    /// split off it is gone (revoked), as an untyped's watermark resets.
    fn vmid_pool_available(s: usize) -> (u64, u64) {
        let (first, (available, made)) = slot(s).cap.vmid_pool();
        if cdt::has_children(&mut Kslots, s) {
            (first, available)
        } else {
            slot(s).cap.mapping = made;
            (first, made)
        }
    }

    fn vmid_pool_assign(&mut self, t: Ptr<Tcb>, s: usize, a: &Args) -> Result<usize, Error> {
        let (vs_slot, vs) = self.lookup_typed(t, a.get::<P>(0)?, ObjType::VSpace)?;
        if vs.badge != 0 {
            return Err(Error::IllegalOperation);
        }
        let (first, count) = Self::vmid_pool_available(s);
        let (first, count) = (first as usize, count as usize);
        let vmid = (first..first + count)
            .find(|&v| v < VMIDS && self.vmids[v] == 0)
            .ok_or(Error::NoVmid)?;
        self.vmids[vmid] = vs.obj;
        // Every cap to the VSpace carries the VMID.
        self.set_vspace_vmid(vs_slot, vs, vmid as u64);
        // Nothing of a previous VSpace with this VMID may stay in the TLBs.
        self.platform.flush_vmid(vmid as u16);
        Ok(0)
    }

    /// Record `vmid` in every cap to the VSpace `vs` (in slot `s`): its copies are its
    /// neighbours in derivation order.
    #[allow(clippy::unused_self, reason = "kernel state accessors take the kernel")]
    fn set_vspace_vmid(&self, s: usize, vs: Cap, vmid: u64) {
        let mut cur = Some(s);
        while let Some(c) = cur {
            slot(c).cap.badge = vmid;
            cur = slot(c).mdb.next().filter(|&n| slot(n).cap.same_object(&vs));
        }
        let mut cur = slot(s).mdb.prev().filter(|&p| slot(p).cap.same_object(&vs));
        while let Some(c) = cur {
            slot(c).cap.badge = vmid;
            cur = slot(c).mdb.prev().filter(|&p| slot(p).cap.same_object(&vs));
        }
    }

    fn vmid_pool_split(&mut self, t: Ptr<Tcb>, s: usize, a: &Args) -> Result<usize, Error> {
        let (n, cn, index) = (a.get::<P>(0)?, a.get::<P>(1)?, a.get::<P>(2)?);
        let (_, cncap) = self.lookup_typed(t, cn, ObjType::CNode)?;
        let dst = cnode_slot(&cncap, index).ok_or(Error::RangeError)?;
        if !slot(dst).cap.is_null() {
            return Err(Error::DeleteFirst);
        }
        let (first, available) = Self::vmid_pool_available(s);
        if n == 0 || n > available {
            return Err(Error::RangeError);
        }
        let keep = available - n;
        let child = Cap::new_vmid_pool(first + keep, n as u8);
        slot(s).cap.mapping = keep;
        cdt::insert_child(&mut Kslots, s, dst, child)?;
        Ok(0)
    }

    // ---- IRQs -------------------------------------------------------------------

    fn irq_control_get(&mut self, t: Ptr<Tcb>, s: usize, a: &Args) -> Result<usize, Error> {
        let (irq, cn, index) = (a.get::<P>(0)?, a.get::<P>(1)?, a.get::<P>(2)?);
        let count = u64::from(self.platform.irq_count()).min(self.irqs.len() as u64);
        if irq >= count || self.platform.irq_reserved(irq as u32) {
            return Err(Error::RangeError);
        }
        if self.irqs[irq as usize].claimed {
            return Err(Error::RevokeFirst);
        }
        let (_, cncap) = self.lookup_typed(t, cn, ObjType::CNode)?;
        let dst = cnode_slot(&cncap, index).ok_or(Error::RangeError)?;
        if !slot(dst).cap.is_null() {
            return Err(Error::DeleteFirst);
        }
        let mut c = Cap::new(ObjType::IrqHandler, 0, 0);
        c.badge = irq;
        cdt::insert_child(&mut Kslots, s, dst, c)?;
        self.irqs[irq as usize].claimed = true;
        Ok(0)
    }

    fn irq_handler_invoke(&mut self, t: Ptr<Tcb>, cap: Cap, label: Label, a: &Args) -> Result<usize, Error> {
        let irq = cap.badge as usize;
        match label {
            Label::IrqHandlerSetNotification => {
                let c = a.get::<P>(0)?;
                if c == 0 {
                    self.irqs[irq].ntfn = 0;
                    self.platform.irq_set_enabled(irq as u32, false);
                    return Ok(0);
                }
                let (_, nc) = self.lookup_typed(t, c, ObjType::Notification)?;
                if !nc.rights().contains(Rights::WRITE) {
                    return Err(Error::NoRights);
                }
                self.irqs[irq].ntfn = nc.obj;
                self.irqs[irq].badge = if nc.badge == 0 { 1 } else { nc.badge };
                self.platform.irq_set_enabled(irq as u32, true);
                Ok(0)
            }
            Label::IrqHandlerAck => {
                if self.irqs[irq].ntfn != 0 {
                    self.platform.irq_set_enabled(irq as u32, true);
                }
                Ok(0)
            }
            Label::IrqHandlerClear => {
                self.irqs[irq].ntfn = 0;
                self.platform.irq_set_enabled(irq as u32, false);
                Ok(0)
            }
            Label::IrqHandlerSetTimer => {
                let (cval, arm) = (a.get::<P>(0)?, a.get::<P>(1)?);
                if self.platform.user_timer_irq() != Some(irq as u32) {
                    return Err(Error::IllegalOperation);
                }
                match arm {
                    0 => self.platform.set_user_timer(None),
                    1 => self.platform.set_user_timer(Some(cval)),
                    _ => return Err(Error::InvalidArgument),
                }
                Ok(0)
            }
            _ => Err(Error::UnknownInvocation),
        }
    }

    /// A device interrupt arrived (already acknowledged at the controller): mask the
    /// line until the handler acks it, and signal its notification.
    pub fn handle_irq(&mut self, irq: u32) {
        // Whoever was running is only interrupted; it resumes where it was.
        let prev = self.current;
        self.platform.irq_set_enabled(irq, false);
        if let Some(line) = self.irqs.get(irq as usize).copied()
            && let Some(n) = Ptr::<Notification>::from_raw(line.ntfn)
        {
            self.signal(n, line.badge);
        }
        self.reschedule(prev);
    }
}

/// Check that `target`'s slot `i` can be replaced by a copy of `src` (or emptied)
/// without side effects beyond it. Refused: a source that cannot be copied, and an old
/// capability that is the last one to a CNode or Tcb. Deleting that would destroy the
/// container and every capability in it, which may include the last capability to
/// `target` itself (a thread whose CSpace holds its own Tcb cap) or to the objects the
/// other slots are about to receive; the caller deletes such a thread instead, or
/// keeps another capability to the container.
fn check_install(target: Ptr<Tcb>, i: usize, src: Option<(usize, Cap)>) -> Result<(), Error> {
    let dst = tcb::slot_addr(target, i);
    let old = slot(dst).cap;
    if (old.is(ObjType::CNode) || old.is(ObjType::Tcb)) && cdt::is_final(&mut Kslots, dst) {
        return Err(Error::IllegalOperation);
    }
    if let Some((_, cap)) = src {
        derived_copy(cap)?;
    }
    Ok(())
}

/// Give a copy a badge (endpoints, notifications) or a guard (CNodes:
/// `guard_bits << 56 | guard`).
fn rebadge(mut c: Cap, badge: u64) -> Result<Cap, Error> {
    match c.ty() {
        Some(ObjType::CNode) => {
            let bits = (badge >> 56) as u8;
            let guard = badge & ((1 << 56) - 1);
            let radix = c.size_bits - SLOT_BITS;
            if u32::from(bits) + u32::from(radix) > 64 || (bits < 56 && guard >> bits != 0) {
                return Err(Error::RangeError);
            }
            c.guard_bits = bits;
            c.badge = guard;
            Ok(c)
        }
        Some(ty) if ty.badgeable() => {
            if c.badge != 0 {
                return Err(Error::IllegalOperation);
            }
            c.badge = badge;
            Ok(c)
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// Write a fresh object of type `ty` at `addr` over any memory (boot).
pub(super) fn create_object(ty: ObjType, addr: usize, bits: u8) {
    obj::zero(addr, 1 << bits);
    init_object(ty, addr);
}

/// Write a fresh object of type `ty` at `addr`. CNodes, tables and frames are zeroed
/// memory (zero is an empty CNode, an empty table, a clean frame) and need nothing more;
/// the small objects are written whole.
fn init_object(ty: ObjType, addr: usize) {
    match ty {
        ObjType::Tcb => Ptr::<Tcb>::new(addr).init(Tcb::new()),
        ObjType::Endpoint => Ptr::<Endpoint>::new(addr).init(Endpoint::default()),
        ObjType::Notification => Ptr::<Notification>::new(addr).init(Notification::default()),
        ObjType::Reply => Ptr::<Reply>::new(addr).init(Reply::default()),
        ObjType::SchedContext => Ptr::<SchedContext>::new(addr).init(SchedContext::default()),
        ObjType::CNode
        | ObjType::Frame
        | ObjType::PageTable
        | ObjType::VSpace
        | ObjType::Untyped
        | ObjType::IrqControl
        | ObjType::IrqHandler
        | ObjType::SchedControl
        | ObjType::Debug
        | ObjType::VmidPool => {}
    }
}

fn read_reg(t: &Tcb, i: u64) -> u64 {
    match i {
        REG_PC => t.ctx.pc,
        REG_SP => t.ctx.sp,
        REG_SPSR => t.ctx.spsr,
        REG_TPIDR => t.tpidr,
        _ => t.ctx.x[(i - REG_X0) as usize],
    }
}

/// Write register `i`. PSTATE keeps EL0t with interrupts unmasked; only the
/// condition flags (NZCV) can be changed.
fn write_reg(t: &mut Tcb, i: u64, v: u64) {
    match i {
        REG_PC => t.ctx.pc = v,
        REG_SP => t.ctx.sp = v,
        REG_SPSR => t.ctx.spsr = v & 0xf000_0000,
        REG_TPIDR => t.tpidr = v,
        _ => t.ctx.x[(i - REG_X0) as usize] = v,
    }
}
