//! The virtual machine monitor server (`docs/vmm.md`); its models are in the library.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("gaon-vmm is a Gaon user program; on the host only its models are tested (cargo test)");
    std::process::exit(2);
}
