//! Device registers and shared memory: a window onto memory the root server mapped for
//! this program (an `mmio` or `shared` entry of its system description), with
//! bounds-checked volatile 32-bit accesses, so servers need no `unsafe` of their own.

/// A mapped device-memory window.
#[derive(Debug)]
pub struct Mmio {
    base: u64,
    size: u64,
}

impl Mmio {
    /// The window the description calls `name`: device memory (`mmio`) or a shared
    /// region (`shared`; a read-only one faults on `write`).
    pub fn named(name: &str) -> Result<Self, crate::start::Missing> {
        let (base, size) = crate::start::mapping(name)?;
        Ok(Self { base, size })
    }

    /// The kernel log page (`gaon_abi::klog`), where the description gives it
    /// (`kernel_log = true`).
    pub fn kernel_log() -> Result<Self, crate::start::Missing> {
        let base = crate::start::kernel_log()?;
        Ok(Self {
            base,
            size: gaon_abi::klog::PAGE_SIZE as u64,
        })
    }

    /// The kernel's trace rings (`gaon_abi::trace`), where the description gives them
    /// (the trace server, `[trace]`): read-only.
    pub fn trace_rings() -> Result<Self, crate::start::Missing> {
        let (base, _) = crate::start::trace_rings("trace_rings")?;
        Ok(Self {
            base,
            size: gaon_abi::trace::RINGS_BYTES as u64,
        })
    }

    /// Bytes in the window.
    pub const fn size(&self) -> u64 {
        self.size
    }

    fn at(&self, offset: u64) -> u64 {
        assert!(
            offset.is_multiple_of(4) && offset.checked_add(4).is_some_and(|e| e <= self.size),
            "register offset {offset:#x} outside a {:#x}-byte device window",
            self.size
        );
        self.base + offset
    }

    /// Read the 32-bit register at `offset`.
    #[cfg(target_os = "none")]
    pub fn read(&self, offset: u64) -> u32 {
        let p = self.at(offset) as *const u32;
        // SAFETY: the root server mapped `size` bytes of device memory at `base` for
        // this program for good (start info, kind Mmio), and `at` keeps the aligned
        // 4-byte access inside it.
        unsafe { core::ptr::read_volatile(p) }
    }

    /// Read the 64-bit word at `offset` (a multiple of 8), in one access.
    #[cfg(target_os = "none")]
    pub fn read64(&self, offset: u64) -> u64 {
        assert!(
            offset.is_multiple_of(8),
            "word offset {offset:#x} is not a multiple of 8"
        );
        let _ = self.at(offset + 4);
        let p = self.at(offset) as *const u64;
        // SAFETY: as for `read`: the aligned 8-byte access lies inside the window (both
        // its halves were checked).
        unsafe { core::ptr::read_volatile(p) }
    }

    /// Host builds have no devices.
    #[cfg(not(target_os = "none"))]
    pub fn read64(&self, offset: u64) -> u64 {
        let _ = self.at(offset + 4);
        0
    }

    /// Write the 32-bit register at `offset`.
    #[cfg(target_os = "none")]
    pub fn write(&self, offset: u64, value: u32) {
        let p = self.at(offset) as *mut u32;
        // SAFETY: as for `read`.
        unsafe { core::ptr::write_volatile(p, value) }
    }

    /// Host builds have no devices.
    #[cfg(not(target_os = "none"))]
    pub fn read(&self, offset: u64) -> u32 {
        let _ = self.at(offset);
        0
    }

    /// Host builds have no devices.
    #[cfg(not(target_os = "none"))]
    pub fn write(&self, offset: u64, _value: u32) {
        let _ = self.at(offset);
    }
}
