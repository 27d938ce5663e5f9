//! The big kernel lock (docs/decisions/0004-big-kernel-lock.md). Besides whether it is
//! held, its word remembers which CPU held it last, so the common entry (this CPU held
//! it last, and it is free) is one compare-and-swap, with no separate check of whether
//! the kernel's per-core state must change hands (`Kernel::enter`).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicUsize, Ordering};

/// A spin lock around `T` whose word is `last holder << 1 | held`. `repr(C)`: the word
/// first, at the address the compiler keeps for the data anyway, so the release is a
/// single `stlr` (left to itself the compiler may put the word after the 40 KiB of
/// kernel state, and the release then computes its address first).
#[derive(Debug)]
#[repr(C)]
pub struct KernelLock<T> {
    word: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached through a `KernelGuard`, and a guard exists only while
// its CPU holds the lock (set by a compare-and-swap with acquire ordering, cleared with
// release ordering when the guard drops), so one CPU at a time reaches it.
unsafe impl<T: Send> Sync for KernelLock<T> {}

impl<T> KernelLock<T> {
    /// Free, last held by CPU 0.
    pub const fn new(data: T) -> Self {
        Self {
            word: AtomicUsize::new(0),
            data: UnsafeCell::new(data),
        }
    }

    /// Take the lock for the CPU whose word when it last held it is `last` (its index
    /// shifted left by one, `CpuLocal::lock_word`), if it is free and that CPU held it
    /// last.
    #[inline(always)]
    #[allow(clippy::inline_always, reason = "on every kernel entry, measured in instructions")]
    pub fn try_lock_again(&'static self, last: usize) -> Option<KernelGuard<T>> {
        self.word
            .compare_exchange(last, last | 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| KernelGuard { lock: self, last })
    }

    /// Take the lock for `cpu` if it is free, whoever held it last.
    #[inline]
    pub fn try_lock(&'static self, cpu: usize) -> Option<KernelGuard<T>> {
        let w = self.word.load(Ordering::Relaxed);
        if w & 1 != 0 {
            return None;
        }
        self.word
            .compare_exchange(w, cpu << 1 | 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| KernelGuard {
                lock: self,
                last: cpu << 1,
            })
    }
}

/// The lock, held by one CPU; released when dropped.
#[derive(Debug)]
pub struct KernelGuard<T: 'static> {
    lock: &'static KernelLock<T>,
    /// The word the lock keeps once released: this CPU's index shifted left by one.
    last: usize,
}

impl<T> Deref for KernelGuard<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard's CPU holds the lock (see `Sync`).
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for KernelGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for KernelGuard<T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.word.store(self.last, Ordering::Release);
    }
}
