//! Deleting capabilities and destroying objects.
//!
//! Deleting a capability that is not the last to its object only takes it out of the
//! derivation tree (a mapped frame or page table cap is unmapped first). Deleting the
//! last one destroys the object: every pointer to it is cleared (queues, bindings,
//! the IRQ table, VMIDs), so nothing dangles.
//!
//! CNodes and Tcbs contain slots, so destroying one deletes more caps, which may be the
//! last caps of further CNodes and Tcbs. The kernel has no heap to keep a work list in,
//! so it works in place: a dying container's cap stays in its slot (and in the
//! derivation tree, so its memory stays allocated) marked as a zombie, with a cursor
//! (the next slot to look at) in its `mapping` word and the slot of the zombie it was
//! found in in its `badge` word. The kernel deletes the caps of the deepest zombie one
//! by one from its cursor, zombifies a dying container it meets and goes down into it,
//! and clears a container once it is empty and goes back up to its parent. Every slot
//! is looked at once and every step deletes a cap, zombifies a container (once each) or
//! clears an empty one, so the work is linear and ends; the kernel stack does not grow
//! with the nesting depth. Cycles (a CNode holding the last cap to itself, directly or
//! through others) end the same way: the slot the delete started from is skipped.
//!
//! Deleting a container and revoking are **preemptible**: after each step the kernel
//! looks for a pending interrupt and, if there is one, stops ([`Preempted`]). The
//! progress is in the objects (zombies, their cursors, the children left), the syscall
//! is restarted, and the same invocation carries on where it stopped. A zombie cannot be
//! looked up, so nothing else touches a half-deleted container meanwhile.

use super::message;
use gaon_abi::ObjType;

use super::cspace::{Kslots, slot};
use super::object::endpoint::EpState;
use super::object::tcb::{self, IpcFlags, State, TCB_SLOTS, Tcb};
use super::{Kernel, MAX_CORES, Platform, RESUME_RECORDS};
use crate::cap::{Cap, FLAG_ZOMBIE};
use crate::cdt::{self, Slot};
use crate::obj::Ptr;
use crate::vspace;

/// A long operation stopped at a preemption point because an interrupt is pending; its
/// progress is recorded in the objects, and restarting it carries on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Preempted;

impl<P: Platform> Kernel<P> {
    /// Delete the capability in slot `s`, destroying its object if it was the last, to
    /// the end (used where the work is bounded: a Tcb slot's old cap, tests).
    pub(super) fn delete_slot(&mut self, s: usize) {
        let _ = self.delete_slot_in(s, false);
    }

    /// Delete the capability in slot `s`; with `preempt`, stop at a pending interrupt.
    pub(super) fn delete_slot_in(&mut self, s: usize, preempt: bool) -> Result<(), Preempted> {
        let cap = slot(s).cap;
        if cap.is_null() {
            return Ok(());
        }
        if cap.has(FLAG_ZOMBIE) || (is_container(&cap) && cdt::is_final(&mut Kslots, s)) {
            self.delete_container(s, preempt)
        } else {
            self.delete_simple(s);
            Ok(())
        }
    }

    /// Delete every capability derived from the one in slot `s`; with `preempt`, stop
    /// at a pending interrupt (after at least one step).
    pub(super) fn revoke_slot_in(&mut self, s: usize, preempt: bool) -> Result<(), Preempted> {
        while let Some(c) = cdt::first_child(&mut Kslots, s) {
            self.delete_slot_in(c, preempt)?;
            if preempt && cdt::first_child(&mut Kslots, s).is_some() && self.platform.irq_pending() {
                return Err(Preempted);
            }
        }
        Ok(())
    }

    fn delete_simple(&mut self, s: usize) {
        let cap = slot(s).cap;
        match cap.ty() {
            Some(ObjType::Frame) => self.unmap_frame(&cap),
            Some(ObjType::PageTable) => self.unmap_page_table(&cap),
            _ => {}
        }
        if let Ok(Some(last)) = cdt::delete(&mut Kslots, s) {
            self.finalise(last);
        }
    }

    fn delete_container(&mut self, mut root: usize, preempt: bool) -> Result<(), Preempted> {
        let mut cur = root;
        if !slot(root).cap.has(FLAG_ZOMBIE) {
            self.zombify(root, 0);
        } else if let Some(at) = self.take_resume(root) {
            // Straight back to where a preempted delete of this slot stopped, not down
            // the chain of zombies again (as long as the nesting is deep).
            cur = at;
        }
        loop {
            #[cfg(test)]
            {
                self.delete_visits += 1;
            }
            if let Some(t) = next_live_slot(cur, root) {
                let c = slot(t).cap;
                if c.has(FLAG_ZOMBIE) {
                    // Half deleted when an earlier run was preempted: carry on inside,
                    // and come back up here (its recorded parent may be 0 or stale).
                    // Going down is a step too: a preemption here resumes below.
                    slot(t).cap.set_zombie_parent(cur);
                    cur = t;
                } else if is_container(&c) && cdt::is_final(&mut Kslots, t) {
                    self.zombify(t, cur);
                    cur = t;
                } else {
                    self.delete_simple(t);
                }
            } else {
                // Empty: clear it and go back up to where it was found.
                let mut parent = slot(cur).cap.zombie_parent();
                let z = slot(cur).cap;
                let _ = cdt::delete(&mut Kslots, cur);
                self.forget_resume(cur);
                if cur == root {
                    return Ok(());
                }
                if (z.obj..z.end()).contains(&root) {
                    // A cycle: the root's slot lies in the memory this zombie kept
                    // allocated. Move the root here, so that memory holds nothing.
                    let old = root;
                    let _ = cdt::move_cap(&mut Kslots, old, cur);
                    self.move_resume(old, cur);
                    root = cur;
                    slot(root).cap.set_zombie_parent(0);
                    if parent == old {
                        parent = root;
                    }
                    if let Some(child) = cursor_slot(root)
                        && slot(child).cap.has(FLAG_ZOMBIE)
                        && slot(child).cap.zombie_parent() == old
                    {
                        slot(child).cap.set_zombie_parent(root);
                    }
                }
                cur = parent;
            }
            if preempt && self.platform.irq_pending() {
                self.record_resume(root, cur);
                return Err(Preempted);
            }
        }
    }

    /// Where the preempted delete that started from `root` stopped, if it is recorded
    /// (the record is taken).
    fn take_resume(&mut self, root: usize) -> Option<usize> {
        let r = self.delete_resume.iter_mut().find(|r| r.0 == root)?;
        Some(core::mem::take(r).1)
    }

    /// Record that the delete from `root` stopped in the zombie at `at`. The records
    /// are few (`RESUME_RECORDS`); the oldest goes when they are full, and a delete
    /// whose record went walks down from its root again.
    fn record_resume(&mut self, root: usize, at: usize) {
        let i = if let Some(i) = self.delete_resume.iter().position(|r| r.0 == 0) {
            i
        } else {
            let i = self.delete_resume_next;
            self.delete_resume_next = (i + 1) % RESUME_RECORDS;
            i
        };
        self.delete_resume[i] = (root, at);
    }

    /// The zombie in `s` is gone: no record may lead there (or start there).
    fn forget_resume(&mut self, s: usize) {
        for r in &mut self.delete_resume {
            if r.0 == s || r.1 == s {
                *r = (0, 0);
            }
        }
    }

    /// The zombie in `old` moved to `new` (a cycle's root leaving the memory it is in).
    fn move_resume(&mut self, old: usize, new: usize) {
        for r in &mut self.delete_resume {
            if r.0 == old {
                r.0 = new;
            }
            if r.1 == old {
                r.1 = new;
            }
        }
    }

    /// Mark a container's last cap as a zombie in place (it stays in the tree, so its
    /// memory stays allocated), found in the zombie at slot `parent` (0: where the
    /// delete started), and detach the object from everything that points at it.
    fn zombify(&mut self, s: usize, parent: usize) {
        let cap = &mut slot(s).cap;
        cap.flags |= FLAG_ZOMBIE;
        cap.set_zombie_cursor(0);
        cap.set_zombie_parent(parent);
        if cap.is(ObjType::Tcb) {
            let t = cap.tcb();
            self.detach_tcb(t);
        }
    }

    /// Stop a dying thread and clear every pointer to it.
    fn detach_tcb(&mut self, t: Ptr<Tcb>) {
        // Running on another core: stopped there first (the deleting core waits until
        // that core has left user level, so nothing writes into the Tcb after this).
        self.settle(t);
        // After the stop's switch record, if it ran elsewhere.
        if self.tracing(gaon_abi::trace::Class::THREAD) {
            self.record(gaon_abi::trace::Event::ThreadDestroy, t.get().tid, 0, 0);
        }
        if let Some(v) = t.get().vcpu {
            // The VCpu outlives its thread, with the guest's registers saved into it.
            self.unbind_vcpu(v, t);
        }
        self.cancel_ipc(t);
        self.block(t, State::Inactive);
        let tcb = t.get();
        if let Some(n) = core::mem::take(&mut tcb.bound_ntfn) {
            n.get().bound = None;
        }
        if let Some(sc) = core::mem::take(&mut tcb.sched_context) {
            sc.get().tcb = None;
        }
        let here = self.core.cpu % MAX_CORES;
        for owner in core::iter::once(&mut self.core)
            .chain(
                self.others
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| *i != here)
                    .map(|(_, c)| c),
            )
            .flat_map(|c| c.lazy_owners.iter_mut())
        {
            if *owner == Some(t) {
                *owner = None;
            }
        }
        if self.core.current == Some(t) {
            self.invoker_destroyed = true;
            self.switch_to(None);
        }
        if self.core.candidate == Some(t) {
            self.core.candidate = None;
        }
    }

    /// Wake `t` from a cancelled IPC with `Cancelled`, or stop it if it was sending a
    /// fault (the fault can no longer be answered).
    fn abort_ipc(&mut self, t: Ptr<Tcb>) {
        let tcb = t.get();
        let fault_send = matches!(tcb.state, State::BlockedOnSend { flags, .. } if flags.contains(IpcFlags::FAULT));
        if fault_send || tcb.fault.is_some() || tcb.exit.is_some() {
            tcb.fault = None;
            super::guest::take_back_exit(tcb);
            self.block(t, State::Inactive);
        } else {
            message::reply_kernel(t, Err(gaon_abi::Error::Cancelled));
            self.make_runnable(t, false);
        }
    }

    /// Destroy the object whose last capability `cap` was.
    fn finalise(&mut self, cap: Cap) {
        match cap.ty() {
            Some(ObjType::Endpoint) => {
                let ep = cap.endpoint().get();
                while let Some(t) = ep.queue.pop() {
                    if let Some(r) = core::mem::take(&mut t.get().reply) {
                        r.get().receiver = None;
                    }
                    self.abort_ipc(t);
                }
                ep.state = EpState::Idle;
            }
            Some(ObjType::Notification) => {
                let n = cap.notification().get();
                while let Some(t) = n.queue.pop() {
                    self.abort_ipc(t);
                }
                if let Some(b) = core::mem::take(&mut n.bound) {
                    b.get().bound_ntfn = None;
                }
                for line in &mut self.irqs {
                    if line.ntfn.is_some_and(|n| n.addr() == cap.obj) {
                        line.ntfn = None;
                    }
                }
                if self.log_ntfn.is_some_and(|n| n.addr() == cap.obj) {
                    // Its reader is gone: the output waits in the page for the next one
                    // (the kernel never goes back to a UART a server may have stopped).
                    self.log_ntfn = None;
                }
            }
            Some(ObjType::Reply) => {
                let r = cap.reply().get();
                if let Some(c) = core::mem::take(&mut r.caller) {
                    c.get().reply = None;
                    self.abort_ipc(c);
                }
                if let Some(rc) = core::mem::take(&mut r.receiver) {
                    rc.get().reply = None;
                }
            }
            Some(ObjType::VCpu) => {
                // Its thread, stopped, goes on as a native thread.
                if let Some(t) = cap.vcpu().get().tcb {
                    self.unbind_vcpu(cap.vcpu(), t);
                }
            }
            Some(ObjType::SchedContext) => {
                let sc = cap.sched_context().get();
                if let Some(t) = core::mem::take(&mut sc.tcb) {
                    t.get().sched_context = None;
                    self.sc_unbound(t);
                }
                self.sc_forget(cap.sched_context());
            }
            Some(ObjType::VSpace) => {
                // No other core may go on translating through these tables.
                self.stall_users_of(cap.vspace());
                // Its page tables outlive it: clear them, so none keeps a translation to
                // a frame that may be deleted next (and its memory reused).
                vspace::clear_tree(cap.vspace(), 1);
                let vmid = cap.vmid();
                if self.vmids[usize::from(vmid)].is_some_and(|v| v.addr() == cap.obj) {
                    self.vmids[usize::from(vmid)] = None;
                    self.platform.flush_vmid(vmid);
                }
            }
            Some(ObjType::IrqHandler) => {
                let irq = cap.irq() as usize;
                if irq < self.irqs.len() {
                    self.irqs[irq] = super::object::irq::IrqLine::FREE;
                    self.platform.irq_set_enabled(irq as u32, false);
                    if self.platform.user_timer_irq() == Some(irq as u32) {
                        self.platform.set_user_timer(None);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_container(cap: &Cap) -> bool {
    cap.is(ObjType::CNode) || cap.is(ObjType::Tcb)
}

/// The first non-empty slot of the zombie container in slot `z`, from its cursor on,
/// other than `skip`; the cursor moves there.
fn next_live_slot(z: usize, skip: usize) -> Option<usize> {
    let size = core::mem::size_of::<Slot>();
    let cap = slot(z).cap;
    let (base, count) = match cap.ty() {
        Some(ObjType::CNode) => (cap.obj, 1usize << (cap.size_bits - gaon_abi::object::SLOT_BITS)),
        Some(ObjType::Tcb) => (tcb::slot_addr(cap.tcb(), 0), TCB_SLOTS),
        _ => return None,
    };
    let from = cap.zombie_cursor().min(count);
    let found = (from..count).find(|&i| {
        let a = base + i * size;
        a != skip && !slot(a).cap.is_null()
    });
    slot(z).cap.set_zombie_cursor(found.unwrap_or(count));
    found.map(|i| base + i * size)
}

/// The slot the cursor of the zombie in `z` points at, if any.
fn cursor_slot(z: usize) -> Option<usize> {
    let cap = slot(z).cap;
    let (base, count) = match cap.ty() {
        Some(ObjType::CNode) => (cap.obj, 1usize << (cap.size_bits - gaon_abi::object::SLOT_BITS)),
        Some(ObjType::Tcb) => (tcb::slot_addr(cap.tcb(), 0), TCB_SLOTS),
        _ => return None,
    };
    let i = cap.zombie_cursor();
    (i < count).then(|| base + i * core::mem::size_of::<Slot>())
}
