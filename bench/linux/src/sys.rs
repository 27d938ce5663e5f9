//! Everything the benchmarks need from the machine and the kernel that takes `unsafe`:
//! the counter, the calibration loop, the raw null syscall, fork, scheduling, eventfd,
//! shared and anonymous mappings, absolute sleeps and the vDSO's clock data. The rest of
//! the program is safe code on top of these wrappers.
#![allow(unsafe_code, reason = "the one module that calls libc and reads the counter")]

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// The counter every case is timed with. On aarch64 this is CNTVCT_EL0 (Linux lets EL0
/// read it for the vDSO); under `-icount shift=0` a tick is `1e9 / CNTFRQ_EL0`
/// instructions.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter has no side effects; Linux sets CNTKCTL_EL1.EL0VCTEN.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack));
    }
    v
}

/// On the host (a smoke run only) the "counter" is CLOCK_MONOTONIC in nanoseconds.
#[cfg(not(target_arch = "aarch64"))]
#[inline]
pub fn now() -> u64 {
    mono_now()
}

/// The counter's frequency in Hz.
#[cfg(target_arch = "aarch64")]
pub fn counter_hz() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects and EL0 may always read it.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack));
    }
    v
}

/// The host's "counter" counts nanoseconds.
#[cfg(not(target_arch = "aarch64"))]
pub fn counter_hz() -> u64 {
    1_000_000_000
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn mono_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC always exists.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    debug_assert_eq!(r, 0);
    ts.tv_sec.unsigned_abs() * 1_000_000_000 + ts.tv_nsec.unsigned_abs()
}

/// A loop of exactly `2 * n` instructions (`subs` and `b.ne` per iteration).
#[cfg(target_arch = "aarch64")]
pub fn count_down(n: u64) {
    // SAFETY: a register-only countdown loop.
    unsafe {
        core::arch::asm!("1: subs {0}, {0}, #1", "b.ne 1b", inout(reg) n => _, options(nomem, nostack));
    }
}

/// The host's equivalent (`sub` and `jnz`); only reported, never checked.
#[cfg(not(target_arch = "aarch64"))]
pub fn count_down(n: u64) {
    // SAFETY: a register-only countdown loop.
    unsafe {
        core::arch::asm!("2: sub {0}, 1", "jnz 2b", inout(reg) n => _, options(nomem, nostack));
    }
}

/// getppid as a raw `svc` (not libc's wrapper, and nothing cached): the cheapest syscall
/// that enters the kernel, does a little work and returns.
#[cfg(target_arch = "aarch64")]
#[inline]
pub fn null_syscall() -> i64 {
    let r: i64;
    // SAFETY: getppid takes no arguments, has no side effects and only writes x0.
    unsafe {
        core::arch::asm!("svc #0", in("x8") libc::SYS_getppid, lateout("x0") r, options(nostack, nomem));
    }
    r
}

/// getppid through `syscall(2)` on the host.
#[cfg(not(target_arch = "aarch64"))]
#[inline]
pub fn null_syscall() -> i64 {
    // SAFETY: getppid takes no arguments and has no side effects.
    unsafe { libc::syscall(libc::SYS_getppid) }
}

/// Sum `words` (volatile reads, a u64 at a time, so the loop is not optimised away):
/// lat_ctx's per-process working set.
pub fn touch(words: &[u64]) -> u64 {
    let mut sum = 0u64;
    for w in words {
        // SAFETY: `w` is a valid, aligned reference.
        sum = sum.wrapping_add(unsafe { core::ptr::read_volatile(w) });
    }
    sum
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Pin the calling process (and the processes and threads it creates) to CPU 0.
pub fn pin_to_cpu0() -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: CPU 0 is within the set.
    unsafe { libc::CPU_SET(0, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    check(unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) }).map(|_| ())
}

/// The sched_setscheduler syscall: SCHED_FIFO at `prio` for thread `tid` (0: the caller).
/// musl's wrapper only returns ENOSYS (POSIX means a process, Linux a thread), so this
/// is the raw syscall.
fn set_scheduler(tid: libc::pid_t, prio: i32) -> io::Result<()> {
    // SAFETY: sched_param is plain integers; all-zero is a valid value.
    let mut p: libc::sched_param = unsafe { core::mem::zeroed() };
    p.sched_priority = prio;
    // SAFETY: `p` is a valid sched_param that outlives the call; the kernel only reads it.
    let r = unsafe { libc::syscall(libc::SYS_sched_setscheduler, tid, libc::SCHED_FIFO, &raw const p) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Make the calling thread SCHED_FIFO at `prio` (1..=99).
pub fn set_fifo(prio: i32) -> io::Result<()> {
    set_scheduler(0, prio)
}

/// sched_yield.
pub fn yield_now() {
    // SAFETY: sched_yield has no arguments and cannot fail on Linux.
    unsafe { libc::sched_yield() };
}

/// A child process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Child {
    pid: libc::pid_t,
}

/// Fork a child that runs `body` and exits with its status. Refused unless this is the
/// only thread of its process (every case joins the threads it starts before it forks).
pub fn fork(body: impl FnOnce() -> i32) -> io::Result<Child> {
    // A joined thread may still be finishing its exit for a moment (it wakes the joiner
    // when it clears its tid, before it is gone).
    let mut threads = 0;
    for _ in 0..100 {
        threads = std::fs::read_dir("/proc/self/task")?.count();
        if threads == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if threads != 1 {
        return Err(io::Error::other(format!("fork with {threads} threads running")));
    }
    // SAFETY: the process has one thread (checked), so the child's copy of the address
    // space is consistent (no lock is held by a thread that does not exist there) and it
    // may run ordinary code, which ends in `_exit` and so never returns into the
    // parent's frames.
    let pid = check(unsafe { libc::fork() })?;
    if pid == 0 {
        let status = body();
        // SAFETY: `_exit` ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(status) }
    }
    Ok(Child { pid })
}

impl Child {
    /// Make the child SCHED_FIFO at `prio`. A child raised above its parent runs at
    /// once, up to the point where it first blocks.
    pub fn set_fifo(&self, prio: i32) -> io::Result<()> {
        // `pid` is our child, not reaped yet, so it names no other process.
        set_scheduler(self.pid, prio)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: `pid` is our child and not reaped yet, so the pid is not reused.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, core::ptr::null_mut(), 0);
        }
    }
}

/// A new eventfd (counter 0, blocking reads).
pub fn eventfd() -> io::Result<File> {
    // SAFETY: eventfd takes no pointers.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` is a new descriptor nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Memory shared between this process and the children it forks after creating it
/// (MAP_SHARED | MAP_ANONYMOUS), unmapped when dropped.
#[derive(Debug)]
pub struct Shared {
    ptr: NonNull<u64>,
    len: usize,
}

impl Shared {
    /// `len` bytes of zeroed shared memory.
    pub fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u64>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// The `i`th u64 of the mapping, for values the processes exchange.
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= self.len, "word {i} is outside the shared mapping");
        // SAFETY: in bounds (checked), 8-byte aligned (the mapping is page aligned), and
        // only ever accessed atomically by every process that shares it.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(i)) }
    }

    /// Copy `src` to the start of the mapping.
    pub fn copy_in(&self, src: &[u8]) {
        assert!(src.len() <= self.len);
        // SAFETY: in bounds (checked); `src` is private memory, so the ranges do not
        // overlap. The other process reads these bytes only after the request that
        // follows this copy (the protocol orders the accesses).
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().cast::<u8>(), src.len()) };
    }

    /// Copy the start of the mapping to `dst`.
    pub fn copy_out(&self, dst: &mut [u8]) {
        assert!(dst.len() <= self.len);
        // SAFETY: in bounds (checked), no overlap with private `dst`; the writer wrote
        // these bytes before the request that told us to read them.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr.as_ptr().cast::<u8>(), dst.as_mut_ptr(), dst.len()) };
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing borrows it any more (`word` borrows self).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// mmap one anonymous 4 KiB page with MAP_POPULATE (so its frame is allocated, zeroed
/// and mapped by the call), then munmap it.
pub fn map_unmap_page() -> io::Result<()> {
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `p` is the page just mapped, and nothing refers to it.
    check(unsafe { libc::munmap(p, 4096) }).map(|_| ())
}

/// Sleep until CLOCK_MONOTONIC reaches `ns` (clock_nanosleep with TIMER_ABSTIME).
pub fn sleep_until(ns: u64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000).cast_signed(),
        tv_nsec: (ns % 1_000_000_000).cast_signed(),
    };
    loop {
        // SAFETY: `ts` is a valid timespec; no remainder is asked for.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &raw const ts,
                core::ptr::null_mut(),
            )
        };
        match r {
            0 => return Ok(()),
            libc::EINTR => {}
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Where the kernel publishes how the vDSO turns counter values into CLOCK_MONOTONIC:
/// `vdso_data` in the `[vvar]` page (the layout of Linux 5.x to 6.12, `struct
/// vdso_data` in include/vdso/datapage.h). On the host the counter is CLOCK_MONOTONIC.
#[derive(Clone, Copy, Debug)]
pub struct CounterClock {
    #[cfg(target_arch = "aarch64")]
    base: usize,
}

/// One consistent copy of the conversion (valid while the kernel keeps its `mult`, which
/// it does here: there is no NTP).
#[derive(Clone, Copy, Debug)]
pub struct Conversion {
    #[cfg(target_arch = "aarch64")]
    cycle_last: u64,
    #[cfg(target_arch = "aarch64")]
    mask: u64,
    #[cfg(target_arch = "aarch64")]
    mult: u32,
    #[cfg(target_arch = "aarch64")]
    shift: u32,
    #[cfg(target_arch = "aarch64")]
    sec: u64,
    #[cfg(target_arch = "aarch64")]
    nsec: u64,
}

impl CounterClock {
    /// Find the `[vvar]` mapping.
    #[cfg(target_arch = "aarch64")]
    pub fn find() -> Result<Self, String> {
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| format!("/proc/self/maps: {e}"))?;
        let line = maps
            .lines()
            .find(|l| l.ends_with("[vvar]"))
            .ok_or("no [vvar] mapping")?;
        let start = line.split('-').next().unwrap_or_default();
        let base = usize::from_str_radix(start, 16).map_err(|_| format!("bad maps line `{line}`"))?;
        Ok(Self { base })
    }

    /// The host needs no conversion.
    #[cfg(not(target_arch = "aarch64"))]
    #[expect(clippy::unnecessary_wraps, reason = "the same API as on aarch64")]
    pub fn find() -> Result<Self, String> {
        Ok(Self {})
    }

    /// Read a consistent snapshot (under the data page's sequence count), as the vDSO's
    /// clock_gettime does.
    #[cfg(target_arch = "aarch64")]
    pub fn snapshot(self) -> Result<Conversion, String> {
        let at = |off: usize| self.base + off;
        // Offsets in vdso_data[0] (CS_HRES_COARSE): seq u32 @0, clock_mode s32 @4,
        // cycle_last @8, mask @16, mult u32 @24, shift u32 @28, basetime[] from @32 with
        // basetime[CLOCK_MONOTONIC] = {sec @48, nsec @56} (nsec shifted left by `shift`).
        for _ in 0..1000 {
            // SAFETY: the kernel maps the vvar data page readable in every process for
            // its lifetime; these are naturally aligned words in its first 64 bytes,
            // which the vDSO's clock_gettime reads the same way.
            let (seq, mode, v, seq2) = unsafe {
                let rd32 = |o: usize| core::ptr::read_volatile(at(o) as *const u32);
                let rd64 = |o: usize| core::ptr::read_volatile(at(o) as *const u64);
                let seq = rd32(0);
                core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
                let v = Conversion {
                    cycle_last: rd64(8),
                    mask: rd64(16),
                    mult: rd32(24),
                    shift: rd32(28),
                    sec: rd64(48),
                    nsec: rd64(56),
                };
                let mode = rd32(4);
                core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
                (seq, mode, v, rd32(0))
            };
            if seq & 1 == 0 && seq == seq2 {
                if mode == 0 {
                    return Err("the vDSO does not read the counter (clock_mode NONE)".into());
                }
                return Ok(v);
            }
        }
        Err("the vvar sequence count never settled".into())
    }

    /// The host's identity conversion.
    #[cfg(not(target_arch = "aarch64"))]
    #[expect(
        clippy::unused_self,
        clippy::unnecessary_wraps,
        reason = "the same API as on aarch64"
    )]
    pub fn snapshot(self) -> Result<Conversion, String> {
        Ok(Conversion {})
    }
}

impl Conversion {
    /// CLOCK_MONOTONIC (ns) when the counter reads `c`: the vDSO's arithmetic,
    /// `sec * 1e9 + ((((c - cycle_last) & mask) * mult + nsec) >> shift)`.
    #[cfg(target_arch = "aarch64")]
    pub fn mono_at(self, c: u64) -> u64 {
        let delta = u128::from(c.wrapping_sub(self.cycle_last) & self.mask);
        let ns = (delta * u128::from(self.mult) + u128::from(self.nsec)) >> self.shift;
        self.sec * 1_000_000_000 + ns as u64
    }

    /// On the host the counter is CLOCK_MONOTONIC.
    #[cfg(not(target_arch = "aarch64"))]
    #[expect(clippy::unused_self, reason = "the same API as on aarch64")]
    pub fn mono_at(self, c: u64) -> u64 {
        c
    }
}
