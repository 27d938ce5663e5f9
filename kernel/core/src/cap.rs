//! Capabilities: a typed reference to a kernel object with rights and a badge.

use bitflags::bitflags;

bitflags! {
    /// What a capability allows.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rights: u8 {
        /// Receive on an endpoint; read a frame.
        const READ = 1;
        /// Send on an endpoint; write a frame.
        const WRITE = 2;
        /// Transfer capabilities through an endpoint.
        const GRANT = 4;
        /// Transfer a reply capability through an endpoint.
        const GRANT_REPLY = 8;
    }
}

/// Kernel object types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjType {
    /// Untyped memory, the source of every other object.
    Untyped,
    /// A table of capability slots.
    CNode,
    /// A thread.
    Tcb,
    /// A synchronous IPC endpoint.
    Endpoint,
    /// A word of signal bits.
    Notification,
    /// A reply object.
    Reply,
    /// Budget and period.
    SchedContext,
    /// A page of memory.
    Frame,
    /// A stage-2 translation table.
    PageTable,
}

impl ObjType {
    /// True for types whose capabilities may carry a badge.
    pub const fn badgeable(self) -> bool {
        matches!(self, Self::Endpoint | Self::Notification)
    }
}

/// A capability. `Cap::NULL` fills empty slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// `None` for the null capability.
    pub ty: Option<ObjType>,
    /// Physical address of the object.
    pub obj: usize,
    /// log2 of the object's size in bytes.
    pub size_bits: u8,
    /// Rights.
    pub rights: Rights,
    /// Badge (endpoints and notifications); 0 means unbadged.
    pub badge: u64,
}

impl Cap {
    /// The empty capability.
    pub const NULL: Self = Self {
        ty: None,
        obj: 0,
        size_bits: 0,
        rights: Rights::empty(),
        badge: 0,
    };

    /// A capability with all rights to a fresh object.
    pub const fn new(ty: ObjType, obj: usize, size_bits: u8) -> Self {
        Self {
            ty: Some(ty),
            obj,
            size_bits,
            rights: Rights::all(),
            badge: 0,
        }
    }

    /// True for the null capability.
    pub const fn is_null(&self) -> bool {
        self.ty.is_none()
    }

    /// One past the object's last byte.
    pub fn end(&self) -> usize {
        self.obj
            .saturating_add(1usize.checked_shl(u32::from(self.size_bits)).unwrap_or(usize::MAX))
    }

    /// True if both name the same object (same type and address).
    pub fn same_object(&self, other: &Self) -> bool {
        !self.is_null() && self.ty == other.ty && self.obj == other.obj
    }

    /// A copy with rights reduced to `mask` and, for badgeable types, the given badge.
    pub fn mint(&self, mask: Rights, badge: u64) -> Option<Self> {
        let ty = self.ty?;
        if badge != 0 && (!ty.badgeable() || self.badge != 0) {
            return None; // only unbadged endpoint/notification caps can be badged
        }
        Some(Self {
            rights: self.rights & mask,
            badge: if badge == 0 { self.badge } else { badge },
            ..*self
        })
    }
}
