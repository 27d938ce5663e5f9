//! Capabilities: a typed reference to a kernel object with rights and a badge, plus
//! the few words of per-capability state some types keep (seL4 does the same).
//!
//! The encoding, in one place. A [`Cap`] is `obj`, two state words (`badge`,
//! `mapping`), `size_bits`, `flags`, a byte (`guard_bits`), `rights` and the type.
//! What the words mean depends on the type; read and write them only through the
//! named accessors below, which check the type in debug builds:
//!
//! | type | `badge` | `mapping` | `guard_bits` |
//! |---|---|---|---|
//! | Endpoint, Notification | badge | - | - |
//! | CNode | guard ([`Cap::guard`]) | - | guard size in bits |
//! | Untyped | watermark: bytes handed out ([`Cap::watermark`]) | zeroed up to ([`Cap::zeroed_to`]) | - |
//! | Frame | - | mapping ([`Cap::mapped`]) | - |
//! | PageTable | - | mapping ([`Cap::mapped`]) | level it is mapped at ([`Cap::pt_level`]) |
//! | VSpace | VMID, 0 = none ([`Cap::vmid`]) | - | - |
//! | VmidPool | first VMID ([`Cap::vmid_pool`]) | VMIDs still available (meaningful only while pools split off it exist; with none, all it was made with are) | VMIDs made with |
//! | IrqHandler | IRQ line ([`Cap::irq`]) | - | - |
//! | SchedControl | CPU | - | - |
//! | a zombie (CNode, Tcb; `FLAG_ZOMBIE`) | slot of the zombie it was found in ([`Cap::zombie_parent`]) | cursor: next slot index ([`Cap::zombie_cursor`]) | as its type |
//!
//! `obj` is the object's physical address (0 for IrqControl, IrqHandler,
//! SchedControl, Debug, VmidPool, which have no memory); the typed accessors
//! ([`Cap::tcb`], [`Cap::endpoint`], ...) turn it into a [`Ptr`].

use crate::kernel::object::endpoint::Endpoint;
use crate::kernel::object::notification::Notification;
use crate::kernel::object::reply::Reply;
use crate::kernel::object::sched_context::SchedContext;
use crate::kernel::object::tcb::Tcb;
use crate::kernel::object::vcpu::VCpu;
use crate::obj::Ptr;
use crate::vspace::Table;

pub use gaon_abi::{ObjType, Rights};

/// Capability flag: device memory (untyped and frames).
pub const FLAG_DEVICE: u8 = 1;
/// Capability flag: a container (CNode or Tcb) being torn down. Only exists inside
/// one delete operation; see `Kernel::delete_slot`.
pub const FLAG_ZOMBIE: u8 = 2;

/// A capability. `Cap::NULL` fills empty slots. 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Physical address of the object (IRQ handlers: 0; IrqControl/SchedControl: 0).
    pub obj: usize,
    /// Endpoint/Notification: badge. CNode: guard. Untyped: watermark (bytes used).
    /// IrqHandler: the IRQ number. SchedControl: the CPU.
    pub badge: u64,
    /// Frame/PageTable: `vmid << 48 | address` of its mapping plus 1; 0 = unmapped.
    pub mapping: u64,
    /// log2 of the object's size in bytes.
    pub size_bits: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// CNode: guard size in bits.
    pub guard_bits: u8,
    /// Raw [`Rights`] bits; use [`Cap::rights`].
    pub rights: u8,
    /// The type number plus one, 0 for the null capability (see [`Cap::ty`]): so an
    /// all-zero slot is an empty one, and zeroed memory is an empty CNode. Last, after
    /// the words, so the rest starts word-aligned (first, it made every copy of a `Cap`
    /// a 31-byte byte-wise `memcpy`).
    kind: u8,
}

static_assertions::const_assert_eq!(core::mem::size_of::<Cap>(), 32);

impl Cap {
    /// The empty capability.
    pub const NULL: Self = Self {
        kind: 0,
        size_bits: 0,
        flags: 0,
        guard_bits: 0,
        rights: 0,
        obj: 0,
        badge: 0,
        mapping: 0,
    };

    /// A capability with all rights to a fresh object.
    pub const fn new(ty: ObjType, obj: usize, size_bits: u8) -> Self {
        Self {
            kind: ty as u8 + 1,
            size_bits,
            flags: 0,
            guard_bits: 0,
            rights: Rights::all().bits() as u8,
            obj,
            badge: 0,
            mapping: 0,
        }
    }

    /// Its type; `None` for the null capability.
    #[inline]
    pub const fn ty(&self) -> Option<ObjType> {
        // Spelled out (not a table lookup): the compiler turns it into `kind - 1` and a
        // range check, which the IPC paths pay on every capability they look at.
        match self.kind {
            1 => Some(ObjType::Untyped),
            2 => Some(ObjType::CNode),
            3 => Some(ObjType::Tcb),
            4 => Some(ObjType::Endpoint),
            5 => Some(ObjType::Notification),
            6 => Some(ObjType::Reply),
            7 => Some(ObjType::SchedContext),
            8 => Some(ObjType::Frame),
            9 => Some(ObjType::PageTable),
            10 => Some(ObjType::VSpace),
            11 => Some(ObjType::IrqControl),
            12 => Some(ObjType::IrqHandler),
            13 => Some(ObjType::SchedControl),
            14 => Some(ObjType::Debug),
            15 => Some(ObjType::VmidPool),
            16 => Some(ObjType::VCpu),
            17 => Some(ObjType::TraceControl),
            _ => None,
        }
    }

    /// True for the null capability.
    pub const fn is_null(&self) -> bool {
        self.kind == 0
    }

    /// True if this cap has type `ty`.
    #[inline]
    pub const fn is(&self, ty: ObjType) -> bool {
        self.kind == ty as u8 + 1
    }

    /// True if this cap's type takes a badge (endpoints, notifications).
    pub fn badgeable(&self) -> bool {
        self.ty().is_some_and(ObjType::badgeable)
    }

    /// Rights.
    pub const fn rights(&self) -> Rights {
        Rights::from_bits_truncate(self.rights as u64)
    }

    /// This cap with `rights`.
    #[must_use]
    pub const fn with_rights(mut self, rights: Rights) -> Self {
        self.rights = rights.bits() as u8;
        self
    }

    /// One past the object's last byte.
    pub fn end(&self) -> usize {
        self.obj
            .saturating_add(1usize.checked_shl(u32::from(self.size_bits)).unwrap_or(usize::MAX))
    }

    /// True if both name the same object. Objects without memory (IrqControl,
    /// SchedControl, IrqHandler) are told apart by their badge word.
    pub fn same_object(&self, other: &Self) -> bool {
        if self.is_null() || self.kind != other.kind || self.obj != other.obj {
            return false;
        }
        match self.ty() {
            Some(ObjType::IrqHandler | ObjType::SchedControl | ObjType::VmidPool) => self.badge == other.badge,
            _ => true,
        }
    }

    /// A copy with rights reduced to `mask` and, for badgeable types, the given badge.
    /// `None` if a badge is given for a type that takes none or a cap already badged.
    pub fn mint(&self, mask: Rights, badge: u64) -> Option<Self> {
        let ty = self.ty()?;
        if badge != 0 && (!ty.badgeable() || self.badge != 0) {
            return None;
        }
        let mut c = self.with_rights(self.rights() & mask);
        if badge != 0 {
            c.badge = badge;
        }
        Some(c)
    }

    /// Debug builds: the cap has type `ty` (an accessor of that type's words is used).
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "an assertion that is nothing in release builds")]
    fn expect(&self, ty: ObjType) {
        debug_assert!(self.is(ty), "a {ty:?} accessor on a {:?} cap", self.ty());
    }

    /// A Tcb cap's thread.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn tcb(&self) -> Ptr<Tcb> {
        self.expect(ObjType::Tcb);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// An Endpoint cap's endpoint.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn endpoint(&self) -> Ptr<Endpoint> {
        self.expect(ObjType::Endpoint);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A Notification cap's notification.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn notification(&self) -> Ptr<Notification> {
        self.expect(ObjType::Notification);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A Reply cap's reply object.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn reply(&self) -> Ptr<Reply> {
        self.expect(ObjType::Reply);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A SchedContext cap's scheduling context.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn sched_context(&self) -> Ptr<SchedContext> {
        self.expect(ObjType::SchedContext);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A VCpu cap's virtual CPU.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn vcpu(&self) -> Ptr<VCpu> {
        self.expect(ObjType::VCpu);
        // SAFETY: as in `sched_context`: a VCpu cap names a live VCpu (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A VSpace cap's root table.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn vspace(&self) -> Ptr<Table> {
        self.expect(ObjType::VSpace);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A PageTable cap's table.
    #[inline]
    #[allow(unsafe_code, reason = "a typed cap vouches for its object (crate::obj rule 1)")]
    pub(crate) fn page_table(&self) -> Ptr<Table> {
        self.expect(ObjType::PageTable);
        // SAFETY: the caller checked the cap's type (`expect` asserts it in debug
        // builds), and a cap of this type names a live object of it: objects live
        // while a cap to them exists (the derivation tree keeps them), and retype never
        // places one at 0 or unaligned (crate::obj rule 1).
        unsafe { Ptr::new(self.obj) }
    }

    /// A VSpace cap's VMID (0: none assigned yet).
    #[inline]
    pub fn vmid(&self) -> u16 {
        self.expect(ObjType::VSpace);
        self.badge as u16
    }

    /// Record a VSpace's VMID.
    pub fn set_vmid(&mut self, vmid: u16) {
        self.expect(ObjType::VSpace);
        self.badge = u64::from(vmid);
    }

    /// An Untyped cap's watermark: bytes of it handed out to objects.
    pub fn watermark(&self) -> usize {
        self.expect(ObjType::Untyped);
        self.badge as usize
    }

    /// Set an Untyped cap's watermark.
    pub fn set_watermark(&mut self, bytes: usize) {
        self.expect(ObjType::Untyped);
        self.badge = bytes as u64;
    }

    /// How far (bytes from its start) a retype of this Untyped has zeroed its memory:
    /// the progress a preempted retype carries on from.
    pub fn zeroed_to(&self) -> usize {
        self.expect(ObjType::Untyped);
        self.mapping as usize
    }

    /// Record a retype's zeroing progress.
    pub fn set_zeroed_to(&mut self, bytes: usize) {
        self.expect(ObjType::Untyped);
        self.mapping = bytes as u64;
    }

    /// A CNode cap's guard: `(value, size in bits)`.
    pub fn guard(&self) -> (u64, u8) {
        self.expect(ObjType::CNode);
        (self.badge, self.guard_bits)
    }

    /// Set a CNode cap's guard.
    pub fn set_guard(&mut self, value: u64, bits: u8) {
        self.expect(ObjType::CNode);
        self.badge = value;
        self.guard_bits = bits;
    }

    /// The level (2 or 3) a mapped PageTable cap's table translates at.
    pub fn pt_level(&self) -> u32 {
        self.expect(ObjType::PageTable);
        u32::from(self.guard_bits)
    }

    /// Record the level a PageTable is mapped at.
    pub fn set_pt_level(&mut self, level: u32) {
        self.expect(ObjType::PageTable);
        self.guard_bits = level as u8;
    }

    /// An IrqHandler cap's line.
    pub fn irq(&self) -> u32 {
        self.expect(ObjType::IrqHandler);
        self.badge as u32
    }

    /// A handler cap for line `irq`.
    pub fn new_irq_handler(irq: u32) -> Self {
        let mut c = Self::new(ObjType::IrqHandler, 0, 0);
        c.badge = u64::from(irq);
        c
    }

    /// Set how many VMIDs a VmidPool cap may still give or split.
    pub fn set_vmids_available(&mut self, n: u64) {
        self.expect(ObjType::VmidPool);
        self.mapping = n;
    }

    /// A zombie's cursor: the index of the next of its slots to delete.
    pub fn zombie_cursor(&self) -> usize {
        debug_assert!(self.has(FLAG_ZOMBIE));
        self.mapping as usize
    }

    /// Move a zombie's cursor.
    pub fn set_zombie_cursor(&mut self, i: usize) {
        debug_assert!(self.has(FLAG_ZOMBIE));
        self.mapping = i as u64;
    }

    /// The slot of the zombie this zombie was found in (0: where the delete started).
    pub fn zombie_parent(&self) -> usize {
        debug_assert!(self.has(FLAG_ZOMBIE));
        self.badge as usize
    }

    /// Set a zombie's parent slot.
    pub fn set_zombie_parent(&mut self, s: usize) {
        debug_assert!(self.has(FLAG_ZOMBIE));
        self.badge = s as u64;
    }

    /// A VmidPool cap's range: `(first VMID, (VMIDs it may still give or split, VMIDs it
    /// was made with))`. The words: `badge` = first, `mapping` = available,
    /// `guard_bits` = made with (at most 255).
    pub fn vmid_pool(&self) -> (u64, (u64, u64)) {
        self.expect(ObjType::VmidPool);
        (self.badge, (self.mapping, u64::from(self.guard_bits)))
    }

    /// A VmidPool cap for `count` VMIDs from `first`.
    pub fn new_vmid_pool(first: u64, count: u8) -> Self {
        let mut c = Self::new(ObjType::VmidPool, 0, 0);
        c.badge = first;
        c.mapping = u64::from(count);
        c.guard_bits = count;
        c
    }

    /// True if the flag is set.
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The mapping `(vmid, address)` of a Frame or PageTable cap.
    pub const fn mapped(&self) -> Option<(u16, u64)> {
        if self.mapping == 0 {
            None
        } else {
            let m = self.mapping - 1;
            Some(((m >> 48) as u16, m & ((1 << 48) - 1)))
        }
    }

    /// Record a mapping.
    pub fn set_mapped(&mut self, m: Option<(u16, u64)>) {
        self.mapping = match m {
            Some((vmid, va)) => ((u64::from(vmid) << 48) | va) + 1,
            None => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_only_shrinks_rights_and_badges_once() {
        let ep = Cap::new(ObjType::Endpoint, 0x1000, 5);
        let b = ep.mint(Rights::WRITE, 9).unwrap();
        assert_eq!((b.rights(), b.badge), (Rights::WRITE, 9));
        assert!(b.mint(Rights::all(), 10).is_none(), "rebadging is refused");
        assert_eq!(b.mint(Rights::all(), 0).unwrap().rights(), Rights::WRITE);
        assert!(Cap::new(ObjType::Frame, 0x1000, 12).mint(Rights::READ, 1).is_none());
        assert!(Cap::NULL.mint(Rights::all(), 0).is_none());
    }

    /// The null capability is all zero bytes, so zeroed memory holds empty slots (a
    /// retyped CNode is zeroed memory and nothing else).
    #[test]
    fn the_null_capability_is_zero() {
        let n = Cap::NULL;
        assert_eq!((n.obj, n.badge, n.mapping), (0, 0, 0));
        assert_eq!((n.size_bits, n.flags, n.guard_bits, n.rights, n.kind), (0, 0, 0, 0, 0));
        for t in ObjType::ALL {
            assert_eq!(Cap::new(t, 0, 0).ty(), Some(t));
            assert!(Cap::new(t, 0, 0).is(t));
        }
    }

    #[test]
    fn mapping_round_trips() {
        let mut f = Cap::new(ObjType::Frame, 0x1000, 12);
        assert_eq!(f.mapped(), None);
        f.set_mapped(Some((7, 0x40_0000)));
        assert_eq!(f.mapped(), Some((7, 0x40_0000)));
        f.set_mapped(Some((0, 0)));
        assert_eq!(f.mapped(), Some((0, 0)));
        f.set_mapped(None);
        assert_eq!(f.mapped(), None);
    }
}
