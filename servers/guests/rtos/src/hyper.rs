//! The answers of Gaon's paravirtual hypercalls (`gaon_abi::hypercall`,
//! docs/hypercalls.md) as the RTOS reports them: a status by name, and `SCHED_STATE`'s
//! registers. Issuing them is the guest's (`hv.rs`).

use core::fmt;

use gaon_abi::hypercall::{Error, SchedClass};

/// What `x0` of a hypercall's answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Error(Error),
    /// A value the interface does not define.
    Unknown(u64),
}

impl Status {
    pub fn of(x0: u64) -> Self {
        if x0 == 0 {
            return Self::Ok;
        }
        [
            Error::NotSupported,
            Error::InvalidParameters,
            Error::Denied,
            Error::Retry,
        ]
        .into_iter()
        .find(|e| e.x0() == x0)
        .map_or(Self::Unknown(x0), Self::Error)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Error(Error::NotSupported) => f.write_str("not supported"),
            Self::Error(Error::InvalidParameters) => f.write_str("invalid parameters"),
            Self::Error(Error::Denied) => f.write_str("denied"),
            Self::Error(Error::Retry) => f.write_str("retry"),
            Self::Unknown(x0) => write!(f, "unknown answer {}", x0.cast_signed()),
        }
    }
}

/// `SCHED_STATE`'s answer: the vCPU's class, its credit and what is left of its
/// LL-boost stint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedState {
    pub class: u64,
    pub credit_ns: i64,
    pub boost_left_ns: u64,
}

impl SchedState {
    /// From the answer's `x0..x3` (`Err` with the status unless `x0` is 0).
    pub fn of(x: [u64; 4]) -> Result<Self, Status> {
        match Status::of(x[0]) {
            Status::Ok => Ok(Self {
                class: x[1],
                credit_ns: x[2].cast_signed(),
                boost_left_ns: x[3],
            }),
            s => Err(s),
        }
    }

    /// The class's name.
    pub fn class_name(&self) -> &'static str {
        [
            (SchedClass::Parked, "parked"),
            (SchedClass::Over, "over"),
            (SchedClass::Under, "under"),
            (SchedClass::Boost, "boost"),
            (SchedClass::LlBoost, "ll-boost"),
        ]
        .into_iter()
        .find(|&(c, _)| c as u64 == self.class)
        .map_or("unknown", |(_, name)| name)
    }
}

impl fmt::Display for SchedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "class={} credit_ns={} ll_boost_left_ns={}",
            self.class_name(),
            self.credit_ns,
            self.boost_left_ns
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_names() {
        assert_eq!(Status::of(0).to_string(), "ok");
        assert_eq!(Status::of(Error::NotSupported.x0()).to_string(), "not supported");
        assert_eq!(
            Status::of(Error::InvalidParameters.x0()),
            Status::Error(Error::InvalidParameters)
        );
        assert_eq!(Status::of(Error::Denied.x0()).to_string(), "denied");
        assert_eq!(Status::of(Error::Retry.x0()).to_string(), "retry");
        assert_eq!(Status::of(7).to_string(), "unknown answer 7");
        assert_eq!(Status::of((-9i64).cast_unsigned()).to_string(), "unknown answer -9");
    }

    #[test]
    fn sched_state_reads_its_registers() {
        let s = SchedState::of([0, 4, (-1500i64).cast_unsigned(), 250_000]).unwrap();
        assert_eq!(s.to_string(), "class=ll-boost credit_ns=-1500 ll_boost_left_ns=250000");
        assert_eq!(SchedState::of([0, 9, 0, 0]).unwrap().class_name(), "unknown");
        assert_eq!(
            SchedState::of([Error::NotSupported.x0(), 0, 0, 0]),
            Err(Status::Error(Error::NotSupported))
        );
    }
}
