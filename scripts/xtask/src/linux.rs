//! The Linux baseline of the benchmarks: Debian's arm64 kernel booting an initramfs whose
//! init runs bench/linux (a static musl binary) and powers off.
//!
//! [`prepare`] builds the benchmark, fetches the kernel and busybox from Debian (once:
//! they are cached, extracted, under `build/cache/linux/`, which git ignores) and packs
//! the initramfs; [`command`] is the QEMU command line that boots them under icount.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::root_dir;

/// The Rust target the Linux benchmark is built for (linked by rust-lld, fully static;
/// see .cargo/config.toml).
pub const BENCH_TARGET: &str = "aarch64-unknown-linux-musl";
/// The benchmark's package (bench/linux).
const BENCH_PACKAGE: &str = "gaon-bench-linux";
/// Debian's kernel series the baseline uses (bookworm's).
const KERNEL_SERIES: &str = "6.1.0-";
/// Kernel command line, kept minimal (no tuning Gaon does not get):
/// - `console=ttyAMA0`: the PL011, which QEMU puts on stdio;
/// - `rdinit=/init`: run the initramfs's /init (the default, said explicitly);
/// - `quiet`: only warnings and errors from the kernel, so its log does not mix with the
///   results;
/// - `panic=-1`: reboot at once on a panic (an init that dies), which `-no-reboot`
///   turns into QEMU exiting instead of hanging until the harness's timeout.
///
/// images/virt/bench-vm.toml gives the Gaon VM the same.
pub const CMDLINE: &str = "console=ttyAMA0 rdinit=/init quiet panic=-1";
/// The benchmark's initramfs (full or quick, as the last [`prepare`] made it), in
/// [`GUEST_DIR`].
pub const BENCH_INITRD: &str = "bench-initramfs.cpio";
/// The memory of the Linux baseline, and of the Gaon VM it is compared with.
pub const MEMORY_MIB: u32 = 256;

/// What [`command`] boots.
#[derive(Clone, Debug)]
pub struct LinuxImage {
    /// The kernel (a raw arm64 Image).
    pub kernel: PathBuf,
    /// The initramfs (an uncompressed newc cpio archive).
    pub initrd: PathBuf,
    /// The kernel's release, e.g. `6.1.0-28-arm64`.
    pub version: String,
}

/// Build the Linux benchmark binary, fetch (and cache) the kernel and busybox, pack the
/// initramfs (`/bench --quick` in it if `quick`).
pub fn prepare(quick: bool) -> Result<LinuxImage, String> {
    let bench = build_bench()?;
    let cache = root_dir().join("build").join("cache").join("linux");
    let fetched = fetch(&cache)?;
    let out = root_dir().join("build").join("linux");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    // One name for both: the Gaon VM's bench system (images/virt/bench-vm.toml) boots
    // the same file.
    let initrd = out.join(BENCH_INITRD);
    let archive = initramfs(&read(&bench)?, &read(&fetched.busybox)?, quick);
    fs::write(&initrd, archive).map_err(|e| format!("{}: {e}", initrd.display()))?;
    Ok(LinuxImage {
        kernel: fetched.kernel,
        initrd,
        version: fetched.version,
    })
}

/// The QEMU command that boots `img` on one `cpu` ("cortex-a53", "cortex-a72") of the
/// `virt` machine Gaon's benchmarks use, under the same clock (`-icount shift=0,sleep=off`:
/// one nanosecond per instruction, idle time skipped), console on stdio.
///
/// One vCPU (`-smp 1`): under icount every vCPU advances the same virtual clock, so work
/// on another CPU would be counted (Gaon has two, but parks the second in WFE).
pub fn command(img: &LinuxImage, cpu: &str) -> Command {
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(["-M", "virt,virtualization=on,gic-version=3", "-cpu", cpu]);
    cmd.args([
        "-smp",
        "1",
        "-m",
        &format!("{MEMORY_MIB}M"),
        "-icount",
        "shift=0,sleep=off",
    ]);
    cmd.args([
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-nic", "none",
    ]);
    cmd.arg("-kernel").arg(&img.kernel);
    cmd.arg("-initrd").arg(&img.initrd);
    cmd.args(["-append", CMDLINE, "-no-reboot"]);
    cmd
}

/// Where the Linux guest of Gaon's VMs is put: descriptions name these files
/// (`images/virt/linux.toml`), and [`guest_assets`] makes them.
pub const GUEST_DIR: &str = "build/linux";
/// The guest kernel, a copy of the cached Debian Image under a name that does not change
/// with Debian's ABI number.
pub const GUEST_KERNEL: &str = "Image";
/// The guest's initramfs: busybox's init, a shell on the console, the benchmark.
pub const GUEST_INITRD: &str = "guest-initramfs.cpio";

/// Make the Linux guest's files ([`GUEST_KERNEL`], [`GUEST_INITRD`] in [`GUEST_DIR`]):
/// fetch the kernel and busybox (once) and build the benchmark. Returns the kernel's
/// release.
pub fn guest_assets() -> Result<String, String> {
    let bench = build_bench()?;
    let cache = root_dir().join("build").join("cache").join("linux");
    let fetched = fetch(&cache)?;
    let out = root_dir().join(GUEST_DIR);
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let kernel = out.join(GUEST_KERNEL);
    let image = read(&fetched.kernel)?;
    if fs::read(&kernel).ok().as_deref() != Some(image.as_slice()) {
        fs::write(&kernel, &image).map_err(|e| format!("{}: {e}", kernel.display()))?;
    }
    let initrd = out.join(GUEST_INITRD);
    let archive = guest_initramfs(&read(&bench)?, &read(&fetched.busybox)?);
    fs::write(&initrd, archive).map_err(|e| format!("{}: {e}", initrd.display()))?;
    Ok(fetched.version)
}

/// Make the Linux guest's files if the system description `file` names them: a
/// `[[vm]]` whose `guest.file` or `initrd` lies in [`GUEST_DIR`]. They are made on every
/// build of such a system (the kernel and busybox come from the cache after the first).
pub fn assets_for(file: &Path) -> Result<(), String> {
    let text = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let Ok(desc) = text.parse::<toml::Table>() else {
        return Ok(()); // the image tool says what is wrong with it
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let guest_dir = root_dir().join(GUEST_DIR);
    let names_guest = |v: &toml::Value| {
        let paths = [v.get("guest").and_then(|g| g.get("file")), v.get("initrd")];
        paths
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
            .any(|p| lexical(&dir.join(p)).parent() == Some(guest_dir.as_path()))
    };
    let vms = desc.get("vm").and_then(toml::Value::as_array);
    if vms.is_some_and(|v| v.iter().any(names_guest)) {
        let release = guest_assets()?;
        eprintln!("linux: guest {GUEST_DIR}/{GUEST_KERNEL} ({release}) and {GUEST_DIR}/{GUEST_INITRD}");
        // Probes are resolved from the kernel's System.map (`probes` in a `[[vm]]`).
        let probes = |v: &toml::Value| {
            v.get("probes")
                .and_then(toml::Value::as_array)
                .is_some_and(|p| !p.is_empty())
        };
        if vms.is_some_and(|v| v.iter().any(probes)) {
            let map = guest_system_map()?;
            eprintln!("linux: probes resolved from {}", map.display());
        }
        // The benchmark's initramfs, if a bench system wants it and no bench run made it.
        if !guest_dir.join(BENCH_INITRD).is_file() && text.contains(BENCH_INITRD) {
            prepare(false)?;
        }
    }
    Ok(())
}

/// The guest kernel's `System.map` in [`GUEST_DIR`], which Linux probes are resolved
/// from (`probes` in a `[[vm]]`, docs/trace.md).
pub const GUEST_SYSTEM_MAP: &str = "System.map";

/// The real `System.map` of the cached kernel, fetched once into the cache. Debian's
/// linux-image package ships a stub (`The real System.map is in the
/// linux-image-<version>-dbg package`); the `-dbg` package (about 800 MB) of exactly
/// the cached kernel's Debian version is downloaded, only the map is taken out of it,
/// and it is deleted.
fn system_map(cache: &Path) -> Result<PathBuf, String> {
    let stamp = fs::read_to_string(cache.join("release")).map_err(|e| format!("no cached kernel: {e}"))?;
    let mut words = stamp.split_whitespace();
    let (release, debian) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let map = cache.join(format!("System.map-{release}"));
    if map.is_file() {
        return Ok(map);
    }
    enable_arm64()?;
    let package = format!("linux-image-{release}-dbg:arm64={debian}");
    let dir = cache.join("dbg");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!(
        "linux: downloading {package} (about 800 MB) for the kernel's System.map (Debian's \
         linux-image package has a stub); once"
    );
    run(Command::new("apt-get")
        .current_dir(&dir)
        .args(["download", "-qq", &package]))
    .map_err(|e| offline(&package, &e))?;
    let deb = fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -xO --wildcards '*/boot/System.map-{release}' > '{}.part'",
        deb.display(),
        map.display()
    );
    run(Command::new("sh").args(["-c", &script]))?;
    let _ = fs::remove_dir_all(&dir);
    let part = PathBuf::from(format!("{}.part", map.display()));
    let text = fs::read_to_string(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    if text.lines().count() < 1000 {
        return Err(format!(
            "{}: the -dbg package's System.map is too short",
            part.display()
        ));
    }
    fs::rename(&part, &map).map_err(|e| format!("{}: {e}", map.display()))?;
    eprintln!("linux: cached {}", map.display());
    Ok(map)
}

/// Put the guest kernel's real `System.map` in [`GUEST_DIR`] (fetched once).
pub fn guest_system_map() -> Result<PathBuf, String> {
    let cache = root_dir().join("build").join("cache").join("linux");
    let map = system_map(&cache)?;
    let out = root_dir().join(GUEST_DIR).join(GUEST_SYSTEM_MAP);
    fs::copy(&map, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// The release of the cached kernel (`6.1.0-N-arm64`), the guest's once
/// [`guest_assets`] ran.
pub fn cached_release() -> Option<String> {
    let stamp = root_dir().join("build").join("cache").join("linux").join("release");
    fs::read_to_string(stamp)
        .ok()?
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// `path` with its `.` and `a/..` components taken out, without looking at the file
/// system (the folder need not exist yet).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// busybox init's table for the guest: `rcS` first, then a shell on the console (again
/// when it exits); `poweroff` and `reboot` go through init, which unmounts first.
const GUEST_INITTAB: &str = "\
::sysinit:/etc/init.d/rcS
::respawn:-/bin/cttyhack /bin/sh
::ctrlaltdel:/bin/reboot
::shutdown:/bin/umount -a -r
";

/// The guest's `rcS`: busybox's applets as commands, the pseudo filesystems, and a line
/// the tests wait for.
const GUEST_RCS: &str = "\
#!/bin/sh
# The Linux guest's start script (scripts/xtask/src/linux.rs).
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname gaon-guest
echo \"gaon-guest: up ($(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs)\"
# A test's read of a guest-physical address through /dev/mem (images/virt/linux-pair.toml),
# and a shell loop that never waits (gaon.hog).
for arg in $(cat /proc/cmdline); do
    case \"$arg\" in
    gaon.peek=*)
        addr=\"${arg#gaon.peek=}\"
        devmem \"$addr\"
        echo \"gaon-guest: peek $addr: status $?\"
        ;;
    gaon.hog)
        # The CPU-bound guest of the soft-real-time experiment (docs/realtime.md).
        echo \"gaon-guest: hog\"
        while :; do :; done &
        ;;
    esac
done
";

/// The initramfs of the Linux guest: busybox as init (its applets linked by rcS),
/// [`GUEST_INITTAB`], [`GUEST_RCS`], the benchmark as /bench.
fn guest_initramfs(bench: &[u8], busybox: &[u8]) -> Vec<u8> {
    let mut a = Cpio::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "etc",
        "etc/init.d",
        "proc",
        "sys",
        "tmp",
        "root",
    ] {
        a.dir(d);
    }
    a.char_device("dev/console", 0o600, 5, 1);
    a.file("bin/busybox", 0o755, busybox);
    // What runs before rcS installs the rest of the applets.
    for link in ["init", "bin/sh", "sbin/init"] {
        a.symlink(link, "/bin/busybox");
    }
    a.file("etc/inittab", 0o644, GUEST_INITTAB.as_bytes());
    a.file("etc/init.d/rcS", 0o755, GUEST_RCS.as_bytes());
    a.file("bench", 0o755, bench);
    a.finish()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{cmd:?} failed with {}", out.status))
    }
}

/// Build bench/linux for [`BENCH_TARGET`]; returns the binary.
fn build_bench() -> Result<PathBuf, String> {
    // Without rustup (another toolchain manager), cargo says what is missing.
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if installed.is_ok_and(|t| !t.lines().any(|l| l.trim() == BENCH_TARGET)) {
        return Err(format!(
            "the Rust target {BENCH_TARGET} is missing: run scripts/setup or `rustup target add {BENCH_TARGET}`"
        ));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(root_dir()).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        BENCH_PACKAGE,
        "--target",
        BENCH_TARGET,
    ]))?;
    Ok(root_dir()
        .join("target")
        .join(BENCH_TARGET)
        .join("release")
        .join(BENCH_PACKAGE))
}

/// The kernel and busybox, as cached.
struct Fetched {
    kernel: PathBuf,
    busybox: PathBuf,
    version: String,
}

/// `sudo` unless we are root.
fn privileged(program: &str) -> Command {
    let root = output(Command::new("id").arg("-u")).is_ok_and(|u| u.trim() == "0");
    if root {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.arg(program);
        c
    }
}

/// Make Debian's arm64 packages visible to apt: add the architecture, and update the
/// package lists if there are none for it yet.
fn enable_arm64() -> Result<(), String> {
    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.split_whitespace().any(|a| a == "arm64") {
        eprintln!("linux: adding the arm64 architecture to dpkg (dpkg --add-architecture arm64)");
        run(privileged("dpkg").args(["--add-architecture", "arm64"]))?;
    }
    let lists = Path::new("/var/lib/apt/lists");
    let has_arm64 = fs::read_dir(lists).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().contains("binary-arm64_Packages"))
    });
    if !has_arm64 {
        eprintln!("linux: fetching the arm64 package lists (apt-get update)");
        run(privileged("apt-get").args(["update", "-qq"])).map_err(|e| offline("the arm64 package lists", &e))?;
    }
    Ok(())
}

/// What to say when `what` cannot be fetched from Debian's archive (`error`).
fn offline(what: &str, error: &str) -> String {
    format!(
        "cannot fetch {what} from Debian's archive ({error}). The Linux guest (and the \
         benchmarks' Linux baseline) need Debian's arm64 kernel and busybox-static, fetched \
         once with network access and then kept in build/cache/linux/ (the Image, busybox \
         and a `release` stamp); run again with network access, or copy that folder from \
         a machine that has it"
    )
}

/// The newest plain `linux-image-6.1.0-N-arm64` apt knows (not -rt, -16k, -unsigned or
/// -dbg): its name and release (`6.1.0-N-arm64`).
fn newest_kernel() -> Result<(String, String), String> {
    let names = output(Command::new("apt-cache").args([
        "search",
        "--names-only",
        &format!("^linux-image-{}[0-9]+-arm64$", KERNEL_SERIES.replace('.', "\\.")),
    ]))?;
    let abi = |name: &str| -> Option<u32> {
        name.strip_prefix("linux-image-")?
            .strip_prefix(KERNEL_SERIES)?
            .strip_suffix("-arm64")?
            .parse()
            .ok()
    };
    let newest = names
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| abi(n).map(|a| (a, n.to_string())))
        .max()
        .ok_or_else(|| format!("apt knows no linux-image-{KERNEL_SERIES}N-arm64 package"))?;
    let release = newest.1.trim_start_matches("linux-image-").to_string();
    Ok((newest.1, release))
}

/// Fetch the kernel and busybox into `cache` unless they are there already.
fn fetch(cache: &Path) -> Result<Fetched, String> {
    let busybox = cache.join("busybox");
    let stamp = cache.join("release");
    if let Ok(text) = fs::read_to_string(&stamp) {
        // `RELEASE DEBIAN-VERSION`
        let mut words = text.split_whitespace();
        let release = words.next().unwrap_or_default().to_string();
        let kernel = cache.join(format!("Image-{release}"));
        if kernel.is_file() && busybox.is_file() {
            eprintln!(
                "linux: kernel {release} (Debian {}) from {}",
                words.next().unwrap_or("?"),
                cache.display()
            );
            return Ok(Fetched {
                kernel,
                busybox,
                version: release,
            });
        }
    }
    enable_arm64()?;
    let (package, release) = newest_kernel()?;
    let debs = cache.join("debs");
    let _ = fs::remove_dir_all(&debs);
    fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
    eprintln!(
        "linux: downloading {package}:arm64 and busybox-static:arm64 into {}",
        debs.display()
    );
    run(Command::new("apt-get").current_dir(&debs).args([
        "download",
        "-qq",
        &format!("{package}:arm64"),
        "busybox-static:arm64",
    ]))
    .map_err(|e| offline(&format!("{package}:arm64 and busybox-static:arm64"), &e))?;
    let tree = cache.join("extracted");
    let _ = fs::remove_dir_all(&tree);
    let mut debian_version = String::from("?");
    for entry in fs::read_dir(&debs).map_err(|e| format!("{}: {e}", debs.display()))? {
        let deb = entry.map_err(|e| e.to_string())?.path();
        let name = deb.file_name().unwrap_or_default().to_string_lossy().into_owned();
        // NAME_VERSION_ARCH.deb
        if let Some(v) = name
            .strip_prefix(&format!("{package}_"))
            .and_then(|v| v.strip_suffix("_arm64.deb"))
        {
            debian_version = v.replace("%3a", ":");
        }
        eprintln!("linux: extracting {}", deb.display());
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
    }
    let vmlinuz = read(&tree.join("boot").join(format!("vmlinuz-{release}")))?;
    let kernel = cache.join(format!("Image-{release}"));
    fs::write(&kernel, kernel_image(&vmlinuz)?).map_err(|e| format!("{}: {e}", kernel.display()))?;
    fs::copy(tree.join("bin").join("busybox"), &busybox).map_err(|e| format!("busybox: {e}"))?;
    // The modules alone are hundreds of MiB; the kernel and busybox are all we keep.
    let _ = fs::remove_dir_all(&tree);
    let _ = fs::remove_dir_all(&debs);
    fs::write(&stamp, format!("{release} {debian_version}\n")).map_err(|e| format!("{}: {e}", stamp.display()))?;
    eprintln!(
        "linux: cached kernel {release} (Debian {debian_version}) as {} and busybox",
        kernel.display()
    );
    Ok(Fetched {
        kernel,
        busybox,
        version: release,
    })
}

/// The arm64 Image header's magic, at offset 0x38 (Documentation/arch/arm64/booting.rst).
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";

/// Check that `vmlinuz` is an arm64 Image. Debian's arm64 vmlinuz is the raw Image (an
/// EFI-stub PE file signed for Secure Boot, so it cannot be compressed), which this
/// checks rather than assumes.
fn kernel_image(vmlinuz: &[u8]) -> Result<&[u8], String> {
    if vmlinuz.get(0x38..0x3c) == Some(ARM64_MAGIC.as_slice()) {
        Ok(vmlinuz)
    } else if vmlinuz.starts_with(&[0x1f, 0x8b]) {
        Err("the kernel is gzip-compressed; expected a raw arm64 Image (gunzip it first)".into())
    } else {
        Err("the kernel is not an arm64 Image (no ARM\\x64 magic at 0x38)".into())
    }
}

/// The init script: mount the pseudo filesystems, run the benchmark, power off whatever
/// it did (crashed or not), so that QEMU (`-no-reboot`) exits.
fn init_script(quick: bool) -> String {
    format!(
        "#!/bin/busybox sh\n\
         # PID 1 of the Linux benchmark image (packed by cargo xtask, scripts/xtask/src/linux.rs).\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t sysfs sysfs /sys\n\
         /bin/busybox mount -t devtmpfs devtmpfs /dev\n\
         /bench{}\n\
         echo \"init: the benchmark exited with status $?\"\n\
         /bin/busybox poweroff -f\n",
        if quick { " --quick" } else { "" }
    )
}

/// The initramfs: /init, /bench, /bin/busybox, the mount points, and /dev/console (the
/// kernel opens it for init's stdin and stdout before /dev is mounted).
fn initramfs(bench: &[u8], busybox: &[u8], quick: bool) -> Vec<u8> {
    let mut a = Cpio::default();
    for d in ["bin", "dev", "proc", "sys"] {
        a.dir(d);
    }
    a.char_device("dev/console", 0o600, 5, 1);
    a.file("bin/busybox", 0o755, busybox);
    a.file("bench", 0o755, bench);
    a.file("init", 0o755, init_script(quick).as_bytes());
    a.finish()
}

/// A writer of "newc" cpio archives, the format the kernel unpacks into its initramfs
/// (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte
/// ASCII header (`070701` and 13 fields of 8 hex digits), the NUL-terminated name
/// padded to 4 bytes, the data padded to 4 bytes; a `TRAILER!!!` entry ends it.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFLNK: u32 = 0o120_000;

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        self.next_ino += 1;
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        let size = u32::try_from(data.len()).expect("initramfs files are under 4 GiB");
        let namesize = u32::try_from(name.len() + 1).expect("short names");
        let fields = [
            ino, mode, 0, // uid
            0, // gid
            nlink, 0, // mtime (fixed, so the archive is reproducible)
            size, 0, // devmajor
            0, // devminor
            rdev.0, rdev.1, namesize, 0, // check (unused by newc)
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[]);
    }

    /// A regular file with permissions `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, S_IFREG | perm, 1, (0, 0), data);
    }

    /// A character device node.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | perm, 1, (major, minor), &[]);
    }

    /// End the archive with the trailer; returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 1, (0, 0), &[]);
        self.out
    }
}

/// The name of the entry that ends a cpio archive.
const TRAILER: &str = "TRAILER!!!";

#[cfg(test)]
mod tests {
    use super::*;

    /// The header fields of the entry at `at`: (fields, name, offset of its data).
    fn header(a: &[u8], at: usize) -> (Vec<u32>, String, usize) {
        assert_eq!(&a[at..at + 6], b"070701", "magic at {at}");
        let fields: Vec<u32> = (0..13)
            .map(|i| {
                let s = std::str::from_utf8(&a[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            })
            .collect();
        let namesize = fields[11] as usize;
        let name = &a[at + 110..at + 110 + namesize];
        assert_eq!(name.last(), Some(&0), "name is NUL-terminated");
        let data = (at + 110 + namesize).next_multiple_of(4);
        (fields, String::from_utf8(name[..namesize - 1].to_vec()).unwrap(), data)
    }

    #[test]
    fn cpio_newc_headers_data_and_trailer() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("bin/hello", 0o755, b"hello");
        c.char_device("dev/console", 0o600, 5, 1);
        let a = c.finish();
        assert_eq!(a.len() % 4, 0);

        let (f, name, data) = header(&a, 0);
        assert_eq!(name, "bin");
        assert_eq!(f[1], 0o040_755, "directory mode");
        assert_eq!(f[6], 0, "no data");

        let (f, name, data2) = header(&a, data);
        assert_eq!(name, "bin/hello");
        assert_eq!(f[1], 0o100_755);
        assert_eq!(f[6], 5, "file size");
        assert_eq!(&a[data2..data2 + 5], b"hello");
        assert_ne!(f[0], 0, "an inode number");

        let (f, name, data3) = header(&a, (data2 + 5).next_multiple_of(4));
        assert_eq!(name, "dev/console");
        assert_eq!(f[1], 0o020_600);
        assert_eq!((f[9], f[10]), (5, 1), "rdev major, minor");

        let (f, name, end) = header(&a, data3);
        assert_eq!(name, TRAILER);
        assert_eq!(f[6], 0);
        assert_eq!(end, a.len(), "the trailer ends the archive");
    }

    #[test]
    fn init_runs_the_bench_then_powers_off() {
        let s = init_script(true);
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        let bench = s.find("/bench --quick").unwrap();
        assert!(s.find("mount -t devtmpfs").unwrap() < bench);
        assert!(s.find("poweroff -f").unwrap() > bench);
        assert!(!init_script(false).contains("--quick"));
    }

    #[test]
    fn guest_files_are_recognised_before_they_exist() {
        assert_eq!(
            lexical(Path::new("/r/images/virt/../../build/linux/Image")),
            Path::new("/r/build/linux/Image")
        );
        assert_eq!(lexical(Path::new("a/./b/../c")), Path::new("a/c"));
        assert_eq!(lexical(Path::new("../x")), Path::new("../x"));
    }

    #[test]
    fn kernel_magic_is_checked() {
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(ARM64_MAGIC);
        assert!(kernel_image(&image).is_ok());
        assert!(kernel_image(&[0x1f, 0x8b, 8, 0]).is_err());
        assert!(kernel_image(&[0u8; 64]).is_err());
    }
}
