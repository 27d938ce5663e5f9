//! Admission control of LL-boost reservations.
//!
//! A reservation is a pair (SBT, USBT): while in LL-boost a vCPU may consume at most SBT,
//! and it may enter LL-boost at most once every USBT (see [`crate::credit`]). Its
//! utilisation is therefore at most SBT/USBT of a core. LL-boost sits above every other
//! class, so the sum of these utilisations on a core is time the credit classes may
//! lose; [`admit`] keeps it at or below [`LL_BOUND_PPM`] (50 % of a core), which leaves
//! at least half of every core to weights and caps whatever the soft-real-time guests
//! ask for.
//!
//! Utilisations are in parts per million of a core, each rounded **up**, so the check
//! is conservative: a set of reservations admitted here has an exact sum at or below
//! the bound. The image tool calls [`admit`] for each reservation a description places
//! on a core; the server calls it when a vCPU is given a reservation at run time
//! ([`crate::credit::Scheduler::add_vcpu`], [`crate::credit::Scheduler::migrate`]).

use core::fmt;

/// The bound on a core's LL-boost reservations: Σ SBT/USBT ≤ 50 % of a core, in ppm.
pub const LL_BOUND_PPM: u32 = 500_000;

/// The smallest SBT: the kernel's minimum scheduling-context budget (10 µs).
pub const MIN_SBT_NS: u64 = 10_000;

/// The longest USBT: the kernel's longest scheduling-context period (one hour).
pub const MAX_USBT_NS: u64 = 3_600_000_000_000;

/// One LL-boost reservation: SBT (service time) and USBT (un-service time), in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// The most a vCPU may consume in one LL-boost stint.
    pub sbt_ns: u64,
    /// The least time between two entries into LL-boost.
    pub usbt_ns: u64,
}

impl Reservation {
    /// A reservation of `sbt_ns` every `usbt_ns`.
    pub const fn new(sbt_ns: u64, usbt_ns: u64) -> Self {
        Self { sbt_ns, usbt_ns }
    }

    /// SBT/USBT in parts per million of a core, rounded up (0 for a zero USBT, which
    /// [`Reservation::validate`] refuses).
    pub fn ppm(self) -> u32 {
        if self.usbt_ns == 0 {
            return 0;
        }
        let ppm = (u128::from(self.sbt_ns) * 1_000_000).div_ceil(u128::from(self.usbt_ns));
        u32::try_from(ppm).unwrap_or(u32::MAX)
    }

    /// Checks the reservation on its own: SBT at least [`MIN_SBT_NS`], at most USBT,
    /// and USBT at most [`MAX_USBT_NS`].
    pub fn validate(self) -> Result<(), AdmitError> {
        if self.sbt_ns < MIN_SBT_NS {
            Err(AdmitError::SbtTooSmall { sbt_ns: self.sbt_ns })
        } else if self.sbt_ns > self.usbt_ns {
            Err(AdmitError::SbtAboveUsbt {
                sbt_ns: self.sbt_ns,
                usbt_ns: self.usbt_ns,
            })
        } else if self.usbt_ns > MAX_USBT_NS {
            Err(AdmitError::UsbtTooLong { usbt_ns: self.usbt_ns })
        } else {
            Ok(())
        }
    }
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdmitError {
    /// SBT is below the kernel's minimum budget, [`MIN_SBT_NS`].
    SbtTooSmall {
        /// The SBT asked for.
        sbt_ns: u64,
    },
    /// SBT is longer than USBT (more than a whole core).
    SbtAboveUsbt {
        /// The SBT asked for.
        sbt_ns: u64,
        /// The USBT asked for.
        usbt_ns: u64,
    },
    /// USBT is above the kernel's longest period, [`MAX_USBT_NS`].
    UsbtTooLong {
        /// The USBT asked for.
        usbt_ns: u64,
    },
    /// The core's reservations would exceed [`LL_BOUND_PPM`].
    Overloaded {
        /// Σ SBT/USBT on the core with this reservation, in ppm (each rounded up).
        total_ppm: u32,
        /// The bound, [`LL_BOUND_PPM`].
        bound_ppm: u32,
    },
}

impl fmt::Display for AdmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::SbtTooSmall { sbt_ns } => {
                write!(
                    f,
                    "LL-boost SBT of {sbt_ns} ns is below the kernel's minimum budget of {MIN_SBT_NS} ns"
                )
            }
            Self::SbtAboveUsbt { sbt_ns, usbt_ns } => {
                write!(f, "LL-boost SBT of {sbt_ns} ns is longer than its USBT of {usbt_ns} ns")
            }
            Self::UsbtTooLong { usbt_ns } => {
                write!(
                    f,
                    "LL-boost USBT of {usbt_ns} ns is longer than the kernel's longest period of one hour"
                )
            }
            Self::Overloaded { total_ppm, bound_ppm } => write!(
                f,
                "LL-boost reservations on this core would add up to {}.{:04} % of it (SBT/USBT summed), above the bound of {}.{:04} %",
                total_ppm / 10_000,
                total_ppm % 10_000,
                bound_ppm / 10_000,
                bound_ppm % 10_000
            ),
        }
    }
}

/// Admits `new` on a core whose admitted reservations are `existing`: checks `new` on
/// its own ([`Reservation::validate`]) and that Σ SBT/USBT of all of them, each rounded
/// up to a ppm, stays at or below [`LL_BOUND_PPM`]. Returns the new sum in ppm.
pub fn admit<I: IntoIterator<Item = Reservation>>(existing: I, new: Reservation) -> Result<u32, AdmitError> {
    new.validate()?;
    let total = existing
        .into_iter()
        .fold(u64::from(new.ppm()), |sum, r| sum + u64::from(r.ppm()));
    let total_ppm = u32::try_from(total).unwrap_or(u32::MAX);
    if total_ppm > LL_BOUND_PPM {
        Err(AdmitError::Overloaded {
            total_ppm,
            bound_ppm: LL_BOUND_PPM,
        })
    } else {
        Ok(total_ppm)
    }
}
