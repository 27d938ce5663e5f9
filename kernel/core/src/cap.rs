//! Capabilities: a typed reference to a kernel object with rights and a badge, plus
//! the few words of per-capability state some types keep (seL4 does the same): an
//! untyped's watermark, a CNode's guard, a frame's mapping, an IRQ handler's line.

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

    /// A VmidPool cap's range: `(first VMID, (VMIDs it may still give or split, VMIDs it
    /// was made with))`. The words: `badge` = first, `mapping` = available,
    /// `guard_bits` = made with (at most 255).
    pub fn vmid_pool(&self) -> (u64, (u64, u64)) {
        debug_assert!(self.is(ObjType::VmidPool));
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
