//! PSCI 1.1 over HVC and SMC (the SMC Calling Convention's function IDs in x0), as a
//! guest's firmware: its vCPUs' power states, and what each call asks of the VMM.
//! Hardware-free: [`Psci::call`] decides, the VMM does (starts a vCPU's thread, stops
//! one, ends the VM).

/// Function IDs (SMC32 for calls without 64-bit arguments, SMC64 for the others; the
/// SMC32 forms of those are answered too).
pub mod id {
    pub const SMCCC_VERSION: u64 = 0x8000_0000;
    pub const SMCCC_ARCH_FEATURES: u64 = 0x8000_0001;
    pub const PSCI_VERSION: u64 = 0x8400_0000;
    pub const CPU_SUSPEND: u64 = 0xc400_0001;
    pub const CPU_OFF: u64 = 0x8400_0002;
    pub const CPU_ON: u64 = 0xc400_0003;
    pub const AFFINITY_INFO: u64 = 0xc400_0004;
    pub const MIGRATE_INFO_TYPE: u64 = 0x8400_0006;
    pub const SYSTEM_OFF: u64 = 0x8400_0008;
    pub const SYSTEM_RESET: u64 = 0x8400_0009;
    pub const PSCI_FEATURES: u64 = 0x8400_000a;
    /// The SMC64 function ID's bit: the same call with 64-bit arguments.
    pub const SMC64: u64 = 0x4000_0000;
}

/// PSCI return codes.
pub mod ret {
    pub const SUCCESS: i64 = 0;
    pub const NOT_SUPPORTED: i64 = -1;
    pub const INVALID_PARAMETERS: i64 = -2;
    pub const ALREADY_ON: i64 = -4;
    pub const ON_PENDING: i64 = -5;
    pub const INTERNAL_FAILURE: i64 = -6;
}

/// PSCI 1.1.
pub const VERSION: i64 = 0x1_0001;
/// SMCCC 1.1.
pub const SMCCC: i64 = 0x1_0001;

/// The vCPUs a VM has at most.
pub const MAX_VCPUS: usize = 4;

/// A vCPU's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Off,
    /// `CPU_ON` was answered; the VMM has not started it yet.
    OnPending,
    On,
}

/// What a call asks of the VMM (besides the value for x0 it always answers with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Answer x0 with this value and resume the caller.
    Return(i64),
    /// Start vCPU `vcpu` at `entry` with x0 = `context`, in the state PSCI gives a
    /// CPU coming on (EL1h, MMU off, interrupts masked); answer the caller SUCCESS.
    Start {
        vcpu: usize,
        entry: u64,
        context: u64,
    },
    /// The caller turns itself off (no answer).
    Stop,
    /// The VM is over: off, or to be reset.
    SystemOff,
    SystemReset,
}

/// The guest's PSCI firmware.
#[derive(Debug)]
pub struct Psci {
    power: [Power; MAX_VCPUS],
    vcpus: usize,
}

impl Psci {
    /// `vcpus` vCPUs (at most [`MAX_VCPUS`]), vCPU 0 on (it boots the guest).
    pub fn new(vcpus: usize) -> Self {
        let mut power = [Power::Off; MAX_VCPUS];
        power[0] = Power::On;
        Self {
            power,
            vcpus: vcpus.clamp(1, MAX_VCPUS),
        }
    }

    /// vCPU `vcpu`'s power state.
    pub fn power(&self, vcpu: usize) -> Option<Power> {
        self.power.get(vcpu).copied().filter(|_| vcpu < self.vcpus)
    }

    /// The VMM started vCPU `vcpu` (after [`Action::Start`]).
    pub fn started(&mut self, vcpu: usize) {
        if vcpu < self.vcpus {
            self.power[vcpu] = Power::On;
        }
    }

    /// The VMM could not start vCPU `vcpu` (after [`Action::Start`]): it stays off.
    pub fn start_failed(&mut self, vcpu: usize) {
        if vcpu < self.vcpus {
            self.power[vcpu] = Power::Off;
        }
    }

    /// True if `x0` is a function ID this firmware answers (the SMCCC and PSCI ranges):
    /// the VMM sends other HVCs elsewhere.
    pub const fn owns(x0: u64) -> bool {
        let f = x0 & !id::SMC64;
        (f & 0xffff_ff00) == 0x8400_0000 || (f & 0xffff_ff00) == 0x8000_0000
    }

    /// The vCPU an MPIDR names: Aff0 is the index (the VMM gives vCPU n the MPIDR n),
    /// the higher affinity levels are 0.
    fn vcpu_of(&self, mpidr: u64) -> Option<usize> {
        let aff = mpidr & 0xff_00ff_ffff;
        (aff < self.vcpus as u64).then_some(aff as usize)
    }

    /// vCPU `caller` called function `x[0]` with arguments `x[1..4]`.
    pub fn call(&mut self, caller: usize, x: [u64; 4]) -> Action {
        use Action::Return;
        let f = x[0];
        // An SMC32 caller's arguments are 32 bits.
        let arg = |i: usize| if f & id::SMC64 == 0 { x[i] & 0xffff_ffff } else { x[i] };
        match f {
            id::SMCCC_VERSION => Return(SMCCC),
            id::SMCCC_ARCH_FEATURES => Return(ret::NOT_SUPPORTED),
            id::PSCI_VERSION => Return(VERSION),
            id::MIGRATE_INFO_TYPE => Return(2), // no Trusted OS: nothing to migrate
            id::PSCI_FEATURES => Return(if Self::implemented(x[1]) { 0 } else { ret::NOT_SUPPORTED }),
            id::CPU_SUSPEND | 0x8400_0001 => Return(ret::SUCCESS), // a standby: returns at once
            id::CPU_OFF => {
                if let Some(p) = self.power.get_mut(caller) {
                    *p = Power::Off;
                }
                Action::Stop
            }
            id::CPU_ON | 0x8400_0003 => {
                let Some(target) = self.vcpu_of(arg(1)) else {
                    return Return(ret::INVALID_PARAMETERS);
                };
                match self.power[target] {
                    Power::On => Return(ret::ALREADY_ON),
                    Power::OnPending => Return(ret::ON_PENDING),
                    Power::Off => {
                        self.power[target] = Power::OnPending;
                        Action::Start {
                            vcpu: target,
                            entry: arg(2),
                            context: arg(3),
                        }
                    }
                }
            }
            id::AFFINITY_INFO | 0x8400_0004 => {
                // Only level 0 (a single vCPU) is answered.
                match (self.vcpu_of(arg(1)), arg(2)) {
                    (Some(t), 0) => Return(match self.power[t] {
                        Power::On => 0,
                        Power::Off => 1,
                        Power::OnPending => 2,
                    }),
                    _ => Return(ret::INVALID_PARAMETERS),
                }
            }
            id::SYSTEM_OFF => Action::SystemOff,
            id::SYSTEM_RESET => Action::SystemReset,
            _ => Return(ret::NOT_SUPPORTED),
        }
    }

    /// True for the functions `PSCI_FEATURES` reports.
    fn implemented(f: u64) -> bool {
        matches!(
            f,
            id::PSCI_VERSION
                | id::CPU_SUSPEND
                | 0x8400_0001
                | id::CPU_OFF
                | id::CPU_ON
                | 0x8400_0003
                | id::AFFINITY_INFO
                | 0x8400_0004
                | id::MIGRATE_INFO_TYPE
                | id::SYSTEM_OFF
                | id::SYSTEM_RESET
                | id::PSCI_FEATURES
                | id::SMCCC_VERSION
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_features_and_unknown_calls() {
        let mut p = Psci::new(2);
        assert_eq!(p.call(0, [id::PSCI_VERSION, 0, 0, 0]), Action::Return(0x1_0001));
        assert_eq!(p.call(0, [id::PSCI_FEATURES, id::CPU_ON, 0, 0]), Action::Return(0));
        assert_eq!(p.call(0, [id::PSCI_FEATURES, 0x8400_0005, 0, 0]), Action::Return(-1));
        assert_eq!(p.call(0, [0x8400_00ff, 0, 0, 0]), Action::Return(-1));
        assert!(Psci::owns(id::CPU_ON) && Psci::owns(id::SMCCC_VERSION) && !Psci::owns(0x4200_0000));
    }

    #[test]
    fn cpu_on_off_and_affinity_info() {
        let mut p = Psci::new(2);
        let on = |p: &mut Psci, mpidr| p.call(0, [id::CPU_ON, mpidr, 0x4008_0000, 7]);
        // No such vCPU, in either affinity field.
        assert_eq!(on(&mut p, 2), Action::Return(ret::INVALID_PARAMETERS));
        assert_eq!(on(&mut p, 1 << 8), Action::Return(ret::INVALID_PARAMETERS));
        assert_eq!(on(&mut p, 0), Action::Return(ret::ALREADY_ON));
        assert_eq!(
            on(&mut p, 1),
            Action::Start {
                vcpu: 1,
                entry: 0x4008_0000,
                context: 7
            }
        );
        assert_eq!(on(&mut p, 1), Action::Return(ret::ON_PENDING));
        assert_eq!(p.call(0, [id::AFFINITY_INFO, 1, 0, 0]), Action::Return(2));
        p.started(1);
        assert_eq!(p.call(0, [id::AFFINITY_INFO, 1, 0, 0]), Action::Return(0));
        assert_eq!(
            p.call(0, [id::AFFINITY_INFO, 1, 1, 0]),
            Action::Return(ret::INVALID_PARAMETERS)
        );
        assert_eq!(p.call(1, [id::CPU_OFF, 0, 0, 0]), Action::Stop);
        assert_eq!(p.power(1), Some(Power::Off));
        assert_eq!(p.call(0, [id::AFFINITY_INFO, 1, 0, 0]), Action::Return(1));
        assert_eq!(p.power(2), None);
    }

    #[test]
    fn smc32_calls_take_32_bit_arguments() {
        let mut p = Psci::new(2);
        let got = p.call(0, [0x8400_0003, 0xffff_ffff_0000_0001, 0x1_4000_0000, 0]);
        assert_eq!(
            got,
            Action::Start {
                vcpu: 1,
                entry: 0x4000_0000,
                context: 0
            }
        );
        assert_eq!(p.call(0, [id::SYSTEM_OFF, 0, 0, 0]), Action::SystemOff);
        assert_eq!(p.call(0, [id::SYSTEM_RESET, 0, 0, 0]), Action::SystemReset);
    }
}
