//! LL-boost-first migration (paper 000, part 4).
//!
//! Load balancing looks at the load of every core (in ppm of a core: the time its vCPUs
//! were runnable, so more than 1 000 000 means demand exceeds the core) and moves at
//! most one vCPU per call, by this rule ([`plan`]):
//!
//! 1. The source is the most loaded core, the target the least loaded (lowest index on
//!    ties). Nothing moves unless the source is overloaded (load above
//!    [`OVERLOAD_PPM`]) and is not the target.
//! 2. The source's vCPUs are tried in this order: **first those eligible for LL-boost**
//!    (with a reservation), then the others; within each group the lightest first
//!    (moving a light vCPU disturbs the target least), then by vCPU id.
//! 3. A vCPU may move if the target stays less loaded than the source was
//!    (`target + load < source`: the move does not just shift the overload), and, for
//!    an LL-boost vCPU, if its reservation passes [`crate::admit::admit`] on the target.
//!    The first that may move is the answer.
//!
//! A soft-real-time vCPU suffers most on an overloaded core, and LL-boost vCPUs are
//! light, so they go first; the hogs stay where their caches are.

use crate::admit::{self, Reservation};
use crate::credit::{CoreId, VcpuId};

/// A core is overloaded above this load: its vCPUs want more than the whole core.
pub const OVERLOAD_PPM: u32 = 1_000_000;

/// A vCPU as balancing sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The vCPU.
    pub vcpu: VcpuId,
    /// The core it is on.
    pub core: CoreId,
    /// Its load, in ppm of a core.
    pub load_ppm: u32,
    /// Its LL-boost reservation, if it has one (it is then LL-boost-eligible).
    pub ll: Option<Reservation>,
}

/// One migration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The vCPU that moves.
    pub vcpu: VcpuId,
    /// The core it leaves.
    pub from: CoreId,
    /// The core it goes to.
    pub to: CoreId,
}

/// The next migration by the rule of the module documentation, given the load of every
/// core (`loads[i]` for core `i`) and every vCPU; `None` if nothing should move.
pub fn plan(loads: &[u32], vcpus: &[Candidate]) -> Option<Move> {
    let (src, &src_load) = loads.iter().enumerate().rev().max_by_key(|&(_, l)| *l)?;
    let (dst, &dst_load) = loads.iter().enumerate().min_by_key(|&(_, l)| *l)?;
    if src_load <= OVERLOAD_PPM || src == dst {
        return None;
    }
    let (src, dst) = (CoreId(src as u8), CoreId(dst as u8));
    let fits = |c: &Candidate| {
        u64::from(dst_load) + u64::from(c.load_ppm) < u64::from(src_load)
            && c.ll
                .is_none_or(|r| admit::admit(vcpus.iter().filter(|o| o.core == dst).filter_map(|o| o.ll), r).is_ok())
    };
    vcpus
        .iter()
        .filter(|c| c.core == src && fits(c))
        .min_by_key(|c| (c.ll.is_none(), c.load_ppm, c.vcpu))
        .map(|c| Move {
            vcpu: c.vcpu,
            from: src,
            to: dst,
        })
}
