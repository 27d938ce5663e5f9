//! The virtual machine monitor's hardware-free part (`docs/vmm.md`): its device models
//! behind one trait, the guest's interrupt distributor, and its PSCI firmware. Tested on
//! the host; the server (`main.rs`) drives them from a guest's exits.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod device;
pub mod fdt;
pub mod gic;
pub mod layout;
pub mod pl011;
pub mod probe;
pub mod psci;
pub mod testdev;
pub mod vm;

/// The trace name of vCPU `v` of the VM whose VMM is `vm` (`vm.vcpuN`), cut to the 16
/// bytes a thread name has (`gaon_abi::trace`), keeping the vCPU number: a long VM name
/// is shortened, not the suffix.
pub fn vcpu_thread_name(vm: &str, v: usize) -> heapless::Vec<u8, 16> {
    let mut suffix: heapless::String<16> = heapless::String::new();
    let _ = core::fmt::write(&mut suffix, format_args!(".vcpu{v}"));
    let keep = 16usize.saturating_sub(suffix.len()).min(vm.len());
    let mut out = heapless::Vec::new();
    let _ = out.extend_from_slice(&vm.as_bytes()[..keep]);
    let _ = out.extend_from_slice(suffix.as_bytes());
    out
}

/// Guest RAM of the tests' models: a byte vector from guest-physical `base`.
#[cfg(test)]
pub(crate) mod testing {
    /// Read `buf.len()` bytes at `ipa`; false outside `ram`.
    pub fn read(ram: &[u8], base: u64, ipa: u64, buf: &mut [u8]) -> bool {
        let Some(off) = ipa.checked_sub(base).and_then(|o| usize::try_from(o).ok()) else {
            return false;
        };
        let Some(src) = off.checked_add(buf.len()).and_then(|end| ram.get(off..end)) else {
            return false;
        };
        buf.copy_from_slice(src);
        true
    }

    /// Write `bytes` at `ipa`; false outside `ram`.
    pub fn write(ram: &mut [u8], base: u64, ipa: u64, bytes: &[u8]) -> bool {
        let Some(off) = ipa.checked_sub(base).and_then(|o| usize::try_from(o).ok()) else {
            return false;
        };
        let Some(dst) = off.checked_add(bytes.len()).and_then(|end| ram.get_mut(off..end)) else {
            return false;
        };
        dst.copy_from_slice(bytes);
        true
    }
}

#[cfg(test)]
mod name_tests {
    use super::vcpu_thread_name;

    #[test]
    fn vcpu_threads_are_named_after_their_vm() {
        assert_eq!(&vcpu_thread_name("linux", 0)[..], b"linux.vcpu0");
        assert_eq!(&vcpu_thread_name("a-very-long-vm-name", 12)[..], b"a-very-lo.vcpu12");
        assert_eq!(vcpu_thread_name("", 3).len(), 6);
    }
}
