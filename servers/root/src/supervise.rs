//! Supervision: the root server is every server's fault endpoint and exit channel. A
//! server that faults or exits is reported and reclaimed: its thread stops, the
//! endpoints it serves are destroyed (clients blocked on them, and later calls, get an
//! error), its reply object is destroyed (the client it was answering gets
//! `Cancelled`), and its heap is revoked (every object it made from it goes: a VMM's
//! guest stops).

use gaon_abi::boot::name_bytes;
use gaon_abi::system::{GrantKind, SERVER_HALT_ON_EXIT, SystemTable};
use heapless::Vec;
use libl4::idl::supervisor::{self, SupervisorServer};
use libl4::ipc::CPtr;
use libl4::rpc::{Dispatch, Incoming};
use libl4::server::{FAULT_BADGE, Handler};
use libl4::{Fault, debug_println};

use crate::spawn::{ROOT_CNODE, Running, Shared};

/// Exit status the system halts with when a `halt_on_exit` server faults.
const FAULT_STATUS: u8 = 3;

/// The supervisor's state.
#[derive(Debug)]
pub struct Supervisor<'a> {
    table: &'a SystemTable,
    endpoints: Vec<CPtr, { gaon_abi::system::MAX_ENDPOINTS }>,
    running: Vec<Running, { gaon_abi::system::MAX_SERVERS }>,
}

impl<'a> Supervisor<'a> {
    /// Supervise the `running` servers of `table`.
    pub fn new(
        table: &'a SystemTable,
        shared: &Shared,
        running: Vec<Running, { gaon_abi::system::MAX_SERVERS }>,
    ) -> Self {
        Self {
            table,
            endpoints: shared.endpoints.clone(),
            running,
        }
    }

    fn name(&self, i: usize) -> &str {
        core::str::from_utf8(name_bytes(&self.table.servers()[i].name)).unwrap_or("?")
    }

    fn halts(&self, i: usize) -> bool {
        self.table.servers()[i].flags & SERVER_HALT_ON_EXIT != 0
    }

    /// Destroy `cptr` and everything derived from it.
    fn destroy(cptr: CPtr) {
        let _ = ROOT_CNODE.revoke(cptr);
        let _ = ROOT_CNODE.delete(cptr);
    }

    /// Stop server `i` and take back what it had.
    fn reclaim(&mut self, i: usize) {
        let Some(r) = self.running.get_mut(i).filter(|r| r.alive).copied() else {
            return;
        };
        self.running[i].alive = false;
        let _ = r.tcb.suspend();
        let mut closed = 0;
        for g in self.table.servers()[i].grants() {
            if g.kind == GrantKind::Serve as u32
                && let Some(&ep) = self.endpoints.get(g.a as usize)
            {
                Self::destroy(ep);
                closed += 1;
            }
        }
        Self::destroy(r.reply);
        Self::destroy(r.tcb.0);
        Self::destroy(r.cnode);
        Self::destroy(r.vspace);
        // Everything it made from its heap: its threads, address spaces, a VMM's
        // guest (its vCPUs stop wherever they run).
        if r.heap != 0 {
            let _ = ROOT_CNODE.revoke(r.heap);
        }
        debug_println!(
            "root: reclaimed `{}` ({closed} served channel(s) closed, reply object destroyed{})",
            self.name(i),
            if r.heap != 0 { ", heap revoked" } else { "" }
        );
    }
}

impl SupervisorServer for Supervisor<'_> {
    fn exit(&mut self, client: u64, status: u8) {
        // Supervisor capabilities carry badge index + 1.
        let Some(i) = (client as usize).checked_sub(1).filter(|&i| i < self.running.len()) else {
            debug_println!("root: exit with unknown badge {client:#x}");
            return;
        };
        debug_println!("root: `{}` exited with status {status}", self.name(i));
        if self.halts(i) {
            debug_println!("root: halting the system with `{}`'s status", self.name(i));
            libl4::syscall::debug_halt(status);
        }
        self.reclaim(i);
    }
}

impl Handler for Supervisor<'_> {
    fn request(&mut self, msg: &mut Incoming<'_>) -> Dispatch {
        supervisor::dispatch(self, msg)
    }

    fn fault(&mut self, badge: u64, fault: Fault) -> Option<u64> {
        let i = (badge & !FAULT_BADGE) as usize;
        if i >= self.running.len() {
            debug_println!("root: fault message with unknown badge {badge:#x}");
            return None;
        }
        match fault {
            Fault::VmFault {
                pc, addr, instruction, ..
            } => debug_println!(
                "root: server `{}` faulted: VM fault at pc {:#x}, address {:#x} ({})",
                self.name(i),
                pc,
                addr,
                if instruction {
                    "instruction fetch"
                } else {
                    "data access"
                }
            ),
            Fault::UserException { pc, esr, .. } => debug_println!(
                "root: server `{}` faulted: exception at pc {:#x}, ESR {:#x}",
                self.name(i),
                pc,
                esr
            ),
            Fault::UnknownSyscall { pc, number, .. } => debug_println!(
                "root: server `{}` faulted: unknown syscall {:#x} at pc {:#x}",
                self.name(i),
                number,
                pc
            ),
            Fault::Timeout { .. } => debug_println!("root: server `{}` ran out of budget", self.name(i)),
        }
        if self.halts(i) {
            debug_println!("root: halting the system: `{}` cannot finish", self.name(i));
            libl4::syscall::debug_halt(FAULT_STATUS);
        }
        self.reclaim(i);
        None
    }
}
