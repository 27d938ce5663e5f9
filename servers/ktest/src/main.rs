//! The kernel test suite, in the spirit of sel4test: the root server of the `ktest`
//! system. It is given every resource at boot, and each test builds the objects it
//! needs from untyped memory and drives the kernel from user level: every syscall and
//! every invocation, in its success and its error cases, plus threads that pass garbage
//! or fault in every way while the rest of the system keeps running. It prints one
//! line per failure and then `ktest: N passed, M failed`, and halts the system with the
//! number of failures as the exit status.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
mod env;
#[cfg(target_os = "none")]
mod t_basic;
#[cfg(target_os = "none")]
mod t_check;
#[cfg(target_os = "none")]
mod t_cnode;
#[cfg(target_os = "none")]
mod t_fault;
#[cfg(target_os = "none")]
mod t_idl;
#[cfg(target_os = "none")]
mod t_ipc;
#[cfg(target_os = "none")]
mod t_irq_sched;
#[cfg(target_os = "none")]
mod t_smp;
#[cfg(target_os = "none")]
mod t_tcb;
#[cfg(target_os = "none")]
mod t_time;
#[cfg(target_os = "none")]
mod t_trace;
#[cfg(target_os = "none")]
mod t_untyped;
#[cfg(target_os = "none")]
mod t_vcpu;
#[cfg(target_os = "none")]
mod t_vspace;

#[cfg(target_os = "none")]
mod app {
    use gaon_abi::bootinfo::{BOOTINFO_MAGIC, BootInfo};
    use libl4::debug_println;

    use crate::env::Env;

    libl4::main!(main);

    /// Print each test's name before it runs (for finding a test that hangs).
    const VERBOSE: bool = false;

    fn main() -> u8 {
        debug_println!("ktest: hello from EL0");
        let bi = boot_info();
        if bi.magic != BOOTINFO_MAGIC {
            debug_println!("ktest: no boot info");
            return 1;
        }
        let Some(mut env) = Env::new(bi) else {
            debug_println!("ktest: no RAM untyped in the boot info");
            return 1;
        };
        if crate::t_tcb::init_park(&mut env).is_err() {
            debug_println!("ktest: cannot allocate");
            return 1;
        }
        let groups: [&[crate::Test]; 14] = [
            crate::t_basic::TESTS,
            crate::t_untyped::TESTS,
            crate::t_cnode::TESTS,
            crate::t_tcb::TESTS,
            crate::t_ipc::TESTS,
            crate::t_vspace::TESTS,
            crate::t_irq_sched::TESTS,
            crate::t_time::TESTS,
            crate::t_smp::TESTS,
            crate::t_fault::TESTS,
            crate::t_idl::TESTS,
            crate::t_vcpu::TESTS,
            crate::t_trace::TESTS,
            // Last: it checks what every other test left behind.
            crate::t_check::TESTS,
        ];
        let (mut passed, mut failed, mut skipped) = (0u32, 0u32, 0u32);
        for (name, test) in groups.iter().flat_map(|g| g.iter()) {
            if VERBOSE {
                debug_println!("ktest: {name}");
            }
            match test(&mut env) {
                Ok(()) => passed += 1,
                Err(f) if f.skip => {
                    skipped += 1;
                    debug_println!("SKIP {name}: {}", f.what);
                }
                Err(f) => {
                    failed += 1;
                    match f.got {
                        Some(e) => debug_println!("FAIL {name}: {} (got {e:?})", f.what),
                        None => debug_println!("FAIL {name}: {}", f.what),
                    }
                }
            }
        }
        if skipped > 0 {
            debug_println!("ktest: {skipped} skipped (not on this board)");
        }
        debug_println!("ktest: {passed} passed, {failed} failed");
        u8::try_from(failed).unwrap_or(u8::MAX)
    }

    fn boot_info() -> &'static BootInfo {
        let addr = gaon_abi::bootinfo::BOOTINFO_VADDR as usize;
        #[allow(unsafe_code)]
        // SAFETY: the kernel maps the boot-info page read-only at BOOTINFO_VADDR for the
        // root server's whole life, and BootInfo is plain data.
        unsafe {
            &*(addr as *const BootInfo)
        }
    }
}

/// Why a test failed.
#[derive(Clone, Copy, Debug)]
pub struct Fail {
    /// What was expected.
    pub what: &'static str,
    /// The error the kernel returned instead, if any.
    pub got: Option<libl4::Error>,
    /// Not a failure: the test does not apply to this board (`what` says why).
    pub skip: bool,
}

/// A test's result.
pub type R = Result<(), Fail>;

/// A named test.
#[cfg(target_os = "none")]
pub type Test = (&'static str, fn(&mut env::Env) -> R);

/// The value of an `Ok`, or a failure naming `what`.
pub fn ok<T>(r: Result<T, libl4::Error>, what: &'static str) -> Result<T, Fail> {
    r.map_err(|e| Fail {
        what,
        got: Some(e),
        skip: false,
    })
}

/// Pass if `r` is exactly `Err(want)`.
#[allow(clippy::needless_pass_by_value, reason = "callers pass results straight from calls")]
pub fn err<T>(r: Result<T, libl4::Error>, want: libl4::Error, what: &'static str) -> R {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(Fail {
            what,
            got: Some(e),
            skip: false,
        }),
        Ok(_) => Err(Fail {
            what,
            got: None,
            skip: false,
        }),
    }
}

/// The test does not apply to this board.
pub fn skip(why: &'static str) -> R {
    Err(Fail {
        what: why,
        got: None,
        skip: true,
    })
}

/// Pass if `cond`.
pub fn check(cond: bool, what: &'static str) -> R {
    if cond {
        Ok(())
    } else {
        Err(Fail {
            what,
            got: None,
            skip: false,
        })
    }
}

/// Declare tests: `tests![name => fn, ...]`.
#[macro_export]
macro_rules! tests {
    ($($name:literal => $f:path),* $(,)?) => {
        pub const TESTS: &[$crate::Test] = &[$(($name, $f)),*];
    };
}

#[cfg(not(target_os = "none"))]
fn main() {}
