//! Typed access to kernel objects in physical memory: the module that turns addresses
//! into references.
//!
//! Every kernel object lives in memory carved from an untyped by a retype (or, for the
//! root server's objects, set aside at boot). A [`Ptr`] is the object's physical
//! address, which is also a valid pointer: the kernel maps RAM at its physical address,
//! and the host tests hand the kernel real host memory as "physical" memory. A `Ptr` is
//! never 0, so an object link is an `Option<Ptr<T>>` of one word whose `None` is zero:
//! zeroed memory is an object with no links, and testing a link compiles to the same
//! `cbz` as the raw `== 0` it replaces.
//!
//! # The rules
//!
//! 1. **A `Ptr<T>` names a live `T`.** Building one from an address is [`Ptr::new`],
//!    an `unsafe fn`: the caller vouches for the address. It is called only where a
//!    rule of the kernel does the vouching, each time with a `// SAFETY:` comment
//!    naming the rule (the list is in the crate documentation):
//!    - typed capability accessors (`Cap::tcb()`, `endpoint()`, ...): a capability of
//!      type X names a live X; objects live while a cap to them exists (the derivation
//!      tree keeps them), and retype never places one at 0 (kernel objects come from
//!      RAM untypeds, which start past the kernel image; device untypeds make only
//!      frames);
//!    - slot addresses (`kernel::cspace::slot`): computed from CNode and Tcb caps;
//!    - page-table descriptors (`vspace::next_table`): a valid table descriptor points
//!      to a live table, because unmapping or deleting a table clears the entries that
//!      point to it;
//!    - object creation (`init_object`) and boot allocations (`kernel/boot.rs`): fresh
//!      memory the creator owns, written with `Ptr::init` before it is read.
//!
//!    Links stored in objects (`Option<Ptr<T>>` fields) are copies of such `Ptr`s and
//!    keep the rule because deleting an object first unlinks it from everything that
//!    points to it (`kernel/delete.rs`); the consistency check verifies the links.
//! 2. **One kernel operation at a time.** The kernel runs on a single CPU (or under a
//!    big lock with SMP), so no two operations touch objects at once.
//! 3. **No two live references to one object.** References from `Ptr::get` are short
//!    lived (a statement or a function), and two objects touched together (sender and
//!    receiver, a queue element and its neighbour) are distinct objects.
//!
//! # Why `get` is safe, and crate-private
//!
//! `Ptr::get` hands out `&'a mut T` for a lifetime the caller picks, which the borrow
//! checker cannot police; rules 2 and 3 stand in for it. Making it an `unsafe fn`
//! would put an `unsafe` block on nearly every line of the kernel core, each saying
//! the same thing ("rules 2 and 3"), and tying the reference to a borrow of the `Ptr`
//! would not help either: a `Ptr` is `Copy`, so a second copy borrows independently.
//! Instead `get` (and `init`) are `pub(crate)`: the rules are invariants of this crate
//! as a whole, kept by its code, and nothing outside it can turn a `Ptr` into a
//! reference. The kernel binary reaches thread state only through
//! `Kernel::lazy_switch`, which keeps rule 3 itself. What stays `unsafe` is each place
//! an address is *vouched for*: [`Ptr::new`], `IpcBuffer::new` (a thread's IPC buffer,
//! whose words the kernel reads and writes volatile, by bounds-checked index), `zero`
//! and `copy` (raw memory a retype or boot owns).

use core::marker::PhantomData;
use core::num::NonZeroUsize;

/// The physical address of a live kernel object of type `T`; never 0, so
/// `Option<Ptr<T>>` is one word and `None` is zero.
#[repr(transparent)]
pub struct Ptr<T>(NonZeroUsize, PhantomData<*mut T>);

static_assertions::const_assert_eq!(core::mem::size_of::<Option<Ptr<u64>>>(), core::mem::size_of::<usize>());

// SAFETY: a `Ptr` is an address. Everything done through it goes through `get`, whose
// rule 2 (one kernel operation at a time, under the kernel's lock) serialises every
// access, whichever CPU holds the `Ptr`.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as for `Send`: sharing a `Ptr` shares an address, not access.
unsafe impl<T> Sync for Ptr<T> {}

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
    /// The object at `addr`.
    ///
    /// # Safety
    ///
    /// `addr` is non-zero and aligned for `T`, and for as long as this `Ptr` (or a
    /// copy) is used it either holds a live `T` (rule 1 of the module) or is fresh
    /// memory the caller owns and writes with `Ptr::init` before any `Ptr::get`.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "a cast: on every IPC path")]
    pub const unsafe fn new(addr: usize) -> Self {
        // SAFETY: the caller vouches that `addr` is non-zero.
        Self(unsafe { NonZeroUsize::new_unchecked(addr) }, PhantomData)
    }

    /// A `Ptr` to a leaked host allocation (host tests): the unique `'static`
    /// reference vouches for the object, and giving it up leaves the `Ptr` the only
    /// way to it.
    #[cfg(test)]
    pub(crate) fn from_static(r: &'static mut T) -> Self {
        // SAFETY: a reference is non-zero, aligned and points to a live `T` forever.
        unsafe { Self::new(core::ptr::from_mut(r) as usize) }
    }

    /// The physical address.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "a cast: on every IPC path")]
    pub const fn addr(self) -> usize {
        self.0.get()
    }

    /// The object. See the module rules (and why this is safe but crate-private).
    #[allow(clippy::mut_from_ref, reason = "the module rules stand in for the borrow checker")]
    pub(crate) fn get<'a>(self) -> &'a mut T {
        debug_assert!(self.addr().is_multiple_of(core::mem::align_of::<T>()));
        // SAFETY: by rule 1 the address holds a live, aligned `T`; by rules 2 and 3 no
        // other live reference points to it while this one is used.
        unsafe { &mut *(self.addr() as *mut T) }
    }

    /// Write a fresh object over (zeroed or stale) memory, without reading it.
    pub(crate) fn init(self, value: T) {
        // SAFETY: by `new`'s contract the memory is aligned for `T` and either the
        // caller's fresh memory (a retype's or boot's) or a live `T` that nothing else
        // references now (rule 3); writing over it drops nothing.
        unsafe { (self.addr() as *mut T).write(value) }
    }
}

/// A thread's IPC buffer: the kernel reads and writes its words through this, at the
/// buffer's physical address, with volatile accesses (it is user memory).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpcBuffer(usize);

/// The IPC buffer's layout, declared in the ABI.
type IpcLayout = gaon_abi::message::IpcBuffer;

impl IpcBuffer {
    /// The IPC buffer at physical address `addr`.
    ///
    /// # Safety
    ///
    /// `addr` is aligned to the buffer's size and the whole buffer lies in a
    /// normal-memory frame that stays allocated while this `IpcBuffer` is used.
    pub(crate) const unsafe fn new(addr: usize) -> Self {
        Self(addr)
    }

    /// Its physical address (host tests).
    #[cfg(test)]
    pub(crate) const fn addr(self) -> usize {
        self.0
    }

    /// The buffer's layout, through a raw pointer (never a reference: user memory).
    const fn raw(self) -> *mut IpcLayout {
        self.0 as *mut IpcLayout
    }

    /// Message register `i` (`msg[i]`; panics out of range).
    #[inline]
    pub(crate) fn msg(self, i: usize) -> u64 {
        // SAFETY: by `new`'s contract the buffer is mapped, aligned and allocated; the
        // index is bounds-checked.
        unsafe { (&raw const (*self.raw()).msg[i]).read_volatile() }
    }

    /// Set message register `i`.
    #[inline]
    pub(crate) fn set_msg(self, i: usize, v: u64) {
        // SAFETY: as in `msg`.
        unsafe { (&raw mut (*self.raw()).msg[i]).write_volatile(v) }
    }

    /// `caps_or_badges[i]`: a cap to send (sender) or an unwrapped badge (receiver).
    #[inline]
    pub(crate) fn cap_or_badge(self, i: usize) -> u64 {
        // SAFETY: as in `msg`.
        unsafe { (&raw const (*self.raw()).caps_or_badges[i]).read_volatile() }
    }

    /// Set `caps_or_badges[i]`.
    #[inline]
    pub(crate) fn set_cap_or_badge(self, i: usize, v: u64) {
        // SAFETY: as in `msg`.
        unsafe { (&raw mut (*self.raw()).caps_or_badges[i]).write_volatile(v) }
    }

    /// The CNode a received cap goes into (a CPtr; 0: accept none).
    #[inline]
    pub(crate) fn receive_cnode(self) -> u64 {
        // SAFETY: as in `msg`.
        unsafe { (&raw const (*self.raw()).receive_cnode).read_volatile() }
    }

    /// The slot index in that CNode.
    #[inline]
    pub(crate) fn receive_index(self) -> u64 {
        // SAFETY: as in `msg`.
        unsafe { (&raw const (*self.raw()).receive_index).read_volatile() }
    }
}

/// Fill `len` bytes of memory at `addr` with zero.
///
/// # Safety
///
/// The range is mapped, writable memory the caller owns (a retype's fresh range, a
/// boot allocation), and no live reference points into it.
pub(crate) unsafe fn zero(addr: usize, len: usize) {
    // SAFETY: the caller's contract is `write_bytes`'s.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len) }
}

/// Copy `n` bytes between physical addresses.
///
/// # Safety
///
/// `from..from + n` is mapped readable memory, `to..to + n` mapped writable memory the
/// caller owns (boot: a frame just allocated), the two do not overlap and no live
/// reference points into the destination.
pub(crate) unsafe fn copy(from: usize, to: usize, n: usize) {
    // SAFETY: the caller's contract is `copy_nonoverlapping`'s.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, n) }
}

/// The frame of the kernel's trace rings (`gaon_abi::trace`), written volatile: user
/// level maps it read-only and reads it while the kernel writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TraceRings(usize);

impl TraceRings {
    /// The rings' frame at physical address `addr`.
    ///
    /// # Safety
    ///
    /// `addr..addr + gaon_abi::trace::RINGS_BYTES` is mapped, writable normal memory,
    /// aligned to 8, that stays allocated to the rings (a boot allocation) and that no
    /// live reference points into.
    pub(crate) const unsafe fn new(addr: usize) -> Self {
        Self(addr)
    }

    /// Write the word at byte offset `off` (a multiple of 8; checked against the
    /// frame's size, so a bad offset stops the kernel rather than writing elsewhere).
    #[inline]
    pub(crate) fn write(self, off: usize, v: u64) {
        assert!(off.is_multiple_of(8) && off + 8 <= gaon_abi::trace::RINGS_BYTES);
        // SAFETY: by `new`'s contract the frame is mapped, writable, allocated and
        // aligned to 8; the offset is checked to lie in it and is aligned.
        unsafe { ((self.0 + off) as *mut u64).write_volatile(v) }
    }

    /// Its physical address (host tests).
    #[cfg(test)]
    pub(crate) const fn addr(self) -> usize {
        self.0
    }

    /// Read back the word at `off` (host tests).
    #[cfg(test)]
    pub(crate) fn read(self, off: usize) -> u64 {
        assert!(off.is_multiple_of(8) && off + 8 <= gaon_abi::trace::RINGS_BYTES);
        // SAFETY: as in `write`.
        unsafe { ((self.0 + off) as *const u64).read_volatile() }
    }
}
