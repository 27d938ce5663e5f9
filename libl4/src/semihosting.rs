//! Arm semihosting's file calls (`HLT #0xF000`): how the trace server writes its stream
//! to a file on the machine that runs QEMU (docs/trace.md).
//!
//! QEMU answers them only when started with `-semihosting-config
//! enable=on,userspace=on` (`scripts/trace` does); without it the instruction is an
//! undefined one and the thread faults. Paths are relative to QEMU's working
//! directory. Any program of an image run that way may use them: use it for trusted
//! images only.

use gaon_abi::Error;

/// `SYS_OPEN`.
const SYS_OPEN: u64 = 0x01;
/// `SYS_CLOSE`.
const SYS_CLOSE: u64 = 0x02;
/// `SYS_WRITE`.
const SYS_WRITE: u64 = 0x05;
/// `SYS_OPEN`'s mode for "wb": create or truncate, write, binary.
const MODE_WB: u64 = 5;

/// A host file open for writing.
#[derive(Debug)]
pub struct File(u64);

/// Make a semihosting call `op` with the parameter block `params`; its result.
fn call(op: u64, params: &[u64]) -> i64 {
    #[cfg(target_arch = "aarch64")]
    {
        let ret: u64;
        // SAFETY: the semihosting call reads `params` (valid for its length; the
        // pointers in it point into live buffers the caller lends for the call) and
        // writes only x0; QEMU performs it and resumes at the next instruction.
        unsafe {
            core::arch::asm!(
                "hlt #0xf000",
                inout("x0") op => ret,
                in("x1") params.as_ptr(),
                options(nostack),
            );
        }
        ret.cast_signed()
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = (op, params);
        -1
    }
}

impl File {
    /// Create (or truncate) the host file `path` for writing.
    pub fn create(path: &str) -> Result<Self, Error> {
        // SYS_OPEN wants a NUL-terminated name and its length without the NUL.
        let mut name = [0u8; 128];
        if path.len() >= name.len() {
            return Err(Error::InvalidArgument);
        }
        name[..path.len()].copy_from_slice(path.as_bytes());
        let h = call(SYS_OPEN, &[name.as_ptr() as u64, MODE_WB, path.len() as u64]);
        u64::try_from(h).map(Self).map_err(|_| Error::IllegalOperation)
    }

    /// Write all of `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        // The result is the number of bytes not written.
        match call(SYS_WRITE, &[self.0, bytes.as_ptr() as u64, bytes.len() as u64]) {
            0 => Ok(()),
            _ => Err(Error::IllegalOperation),
        }
    }

    /// Close it.
    pub fn close(self) -> Result<(), Error> {
        match call(SYS_CLOSE, &[self.0]) {
            0 => Ok(()),
            _ => Err(Error::IllegalOperation),
        }
    }
}
