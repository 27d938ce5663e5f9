//! Regression tests for the isolation holes the security review found: each one
//! failed before its fix.

use super::*;
use crate::tcb::SLOT_CSPACE;

/// A thread whose CSpace C holds the last cap to the thread, while the thread's slot
/// holds the last cap to C, replaces its own CSpace with caps found through a second
/// CNode D. Deleting C would destroy the thread; before the fix the new caps were then
/// linked into the dead Tcb's slots (a CDT link into freed memory). Now the kernel
/// refuses up front and nothing changes.
#[test]
fn tcb_set_space_never_installs_into_a_thread_the_delete_destroyed() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let c = a.obj(&mut k, ObjType::CNode, 2);
    let d = a.obj(&mut k, ObjType::CNode, 2);
    let n = a.obj(&mut k, ObjType::CNode, 2);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    let all = Rights::all().bits();
    // D[0] = the new CSpace, D[1] = a VSpace.
    invoke(&mut k, d, Label::CNodeCopy, &[0, n, all]).unwrap();
    invoke(&mut k, d, Label::CNodeCopy, &[1, rs::VSPACE, all]).unwrap();
    // C[1] = D with a 60-bit guard: cptr (1 << 62) | i names D[i] through C.
    invoke(&mut k, c, Label::CNodeMint, &[1, d, all, 60 << 56]).unwrap();
    invoke(&mut k, t, Label::TcbSetSpace, &[c, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let thread = Ptr::<Tcb>::new(root_slot(&k, t).cap.obj);
    // C[0] = the only cap to the thread; the thread's slot has the only cap to C.
    invoke(&mut k, c, Label::CNodeMove, &[0, t]).unwrap();
    invoke(&mut k, rs::CNODE, Label::CNodeDelete, &[c]).unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    assert_eq!(k.current(), Some(thread));

    let c_obj = thread.get().slots[SLOT_CSPACE].cap.obj;
    let r = invoke(&mut k, 0, Label::TcbSetSpace, &[1 << 62, (1 << 62) | 1, 0]);
    assert_eq!(r.err(), Some(Error::IllegalOperation), "refused up front");
    // Nothing changed: the thread is alive and runs in C with its old VSpace.
    assert_eq!(k.current(), Some(thread));
    assert_eq!(thread.get().state, ThreadState::Running);
    assert_eq!(thread.get().slots[SLOT_CSPACE].cap.obj, c_obj);
    assert!(thread.get().slots[crate::tcb::SLOT_VSPACE].cap.is(ObjType::VSpace));
}

/// A thread deletes the last cap to itself. The delete destroys it, and before the fix
/// the kernel then wrote the invocation's reply into the dead Tcb.
#[test]
fn a_thread_that_deletes_itself_gets_no_reply_written_into_its_dead_tcb() {
    let mut k = boot();
    let mut a = Alloc::new(&k);
    let t = a.obj(&mut k, ObjType::Tcb, 0);
    invoke(&mut k, t, Label::TcbSetSpace, &[rs::CNODE, rs::VSPACE, 0]).unwrap();
    invoke(&mut k, t, Label::TcbSetPriority, &[255, rs::TCB]).unwrap();
    invoke(&mut k, t, Label::TcbResume, &[]).unwrap();
    let root = k.current().unwrap();
    sys(&mut k, Syscall::Yield, [0; 7]);
    let thread = k.current().unwrap();
    assert_ne!(thread, root);
    let info = MsgInfo::new(Label::CNodeDelete as u64, 1, 0).0;
    thread.get().ctx.x[..3].copy_from_slice(&[rs::CNODE, info, t]);
    thread.get().ctx.x[7] = Syscall::Call as u64;
    let _ = k.handle_syscall();
    assert_eq!(thread.get().ctx.x[1], info, "no reply written into the dead thread");
    assert_eq!(k.current(), Some(root), "the root runs again");
    assert!(root_slot(&k, t).cap.is_null());
}
