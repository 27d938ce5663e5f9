//! Typed access to kernel objects in physical memory: the one module of the kernel core
//! that uses `unsafe`.
//!
//! Every kernel object lives in memory carved from an untyped by a retype (or, for the
//! root server's objects, set aside at boot). A [`Ptr`] is the object's physical
//! address, which is also a valid pointer: the kernel maps RAM at its physical address,
//! and the host tests hand the kernel real host memory as "physical" memory.
//!
//! The rules that make [`Ptr::get`] sound, kept by the rest of the core:
//! - a `Ptr<T>` is only built for memory that holds a `T` (retype writes one; the
//!   memory stays the object's until its untyped is reset, which needs every cap to
//!   it deleted first);
//! - the kernel runs one operation at a time (single CPU, or a big lock with SMP);
//! - no code keeps two live references to the same object: references are short
//!   lived, and two objects touched together (sender and receiver) are distinct.

use core::marker::PhantomData;

/// The physical address of a kernel object of type `T`.
#[repr(transparent)]
pub struct Ptr<T>(usize, PhantomData<*mut T>);

impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}
impl<T> PartialEq for Ptr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<T> Eq for Ptr<T> {}
impl<T> core::fmt::Debug for Ptr<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Ptr({:#x})", self.0)
    }
}

impl<T> Ptr<T> {
    /// The object at `addr`. The caller vouches (by the rules above) that it holds a `T`.
    pub const fn new(addr: usize) -> Self {
        Self(addr, PhantomData)
    }

    /// `None` for address 0, the encoding of "no object" in object fields.
    pub const fn from_raw(addr: usize) -> Option<Self> {
        if addr == 0 { None } else { Some(Self::new(addr)) }
    }

    /// The physical address.
    pub const fn addr(self) -> usize {
        self.0
    }

    /// The object. See the module rules.
    #[allow(clippy::mut_from_ref, reason = "the module rules stand in for the borrow checker")]
    pub fn get<'a>(self) -> &'a mut T {
        debug_assert!(self.0 != 0 && self.0.is_multiple_of(core::mem::align_of::<T>()));
        // SAFETY: by the module rules the address holds a live, aligned `T` that no other
        // live reference points to, and the kernel is single-threaded while it runs.
        unsafe { &mut *(self.0 as *mut T) }
    }

    /// Write a fresh object over (zeroed or stale) memory, without reading it.
    pub fn init(self, value: T) {
        // SAFETY: the memory belongs to a new object just carved by a retype (or boot),
        // is aligned to the object's size and not referenced by anything yet.
        unsafe { (self.0 as *mut T).write(value) }
    }
}

/// Fill `len` bytes of object memory at `addr` with zero.
pub fn zero(addr: usize, len: usize) {
    // SAFETY: callers pass memory of an object being created (a retype's fresh range),
    // which nothing references yet and which is mapped writable.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len) }
}

/// Read one word of a frame's memory (an IPC buffer) at physical address `addr`.
pub fn read_word(addr: usize) -> u64 {
    debug_assert!(addr.is_multiple_of(8));
    // SAFETY: callers only pass addresses inside a normal-memory frame the thread holds
    // a capability to (its IPC buffer), which stays allocated while the cap exists.
    unsafe { (addr as *const u64).read_volatile() }
}

/// Write one word of a frame's memory at physical address `addr`.
pub fn write_word(addr: usize, value: u64) {
    debug_assert!(addr.is_multiple_of(8));
    // SAFETY: as for `read_word`: a word inside a normal-memory frame held by the thread.
    unsafe { (addr as *mut u64).write_volatile(value) }
}

/// Copy `n` bytes between physical addresses (boot-time loading of the root server).
pub fn copy(from: usize, to: usize, n: usize) {
    // SAFETY: callers copy from the boot image into a freshly allocated frame; the two
    // never overlap and both are mapped in the kernel's identity map.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, n) }
}
