//! Placeholder until the Linux baseline lands (being written in parallel).
use std::path::PathBuf;
use std::process::Command;

/// The Linux kernel and initramfs to boot.
#[derive(Debug)]
pub struct LinuxImage {
    /// Kernel Image.
    pub kernel: PathBuf,
    /// Initramfs.
    pub initrd: PathBuf,
    /// Kernel version.
    pub version: String,
}

/// Not there yet.
pub fn prepare(_quick: bool) -> Result<LinuxImage, String> {
    Err("the Linux baseline is not built yet; use --gaon-only".into())
}

/// Not there yet.
pub fn command(img: &LinuxImage, _cpu: &str) -> Command {
    Command::new(&img.kernel)
}
