//! Fault messages: what the kernel sends to a thread's fault endpoint on its behalf.
//! The message's label is the [`FaultKind`]; the faulting thread waits for a reply.
//! Replying resumes it: if the reply has MR0 it becomes the new PC, MR1 the new SP.
//!
//! [`Fault`] is the one source of the messages' layout: each kind's words in
//! message-register order, declared once in `faults!`, which generates [`FaultKind`],
//! [`Fault::encode`] (the kernel's side), [`Fault::decode`] (a supervisor's) and the
//! metadata ([`FAULTS`]) the table in `docs/abi.md` is rendered from.

use crate::layout::{Field, Word};

/// Message registers in every fault message.
pub const FAULT_MSG_LENGTH: usize = 4;

/// What `docs/abi.md` and tools know of a fault kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// The kind (the message's label).
    pub kind: FaultKind,
    /// Its name.
    pub name: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
    /// Its words, from MR0; the message's other registers are 0.
    pub words: &'static [Field],
}

macro_rules! faults {
    ($(
        $(#[doc = $doc:literal])*
        $kind:ident = $num:literal {
            $( $(#[doc = $fdoc:literal])* $f:ident : $t:ty ),* $(,)?
        }
    ),* $(,)?) => {
        /// Fault kinds (the fault message's label).
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum FaultKind {
            $(
                $(#[doc = $doc])*
                #[doc = concat!("\n\nThe message: [`Fault::", stringify!($kind), "`].")]
                $kind = $num,
            )*
        }

        impl FaultKind {
            /// Decode a label.
            pub const fn from_raw(raw: u64) -> Option<Self> {
                match raw {
                    $($num => Some(Self::$kind),)*
                    _ => None,
                }
            }
        }

        /// A fault message, decoded: the kind and its words. The tag is the kind's
        /// number (never 0), so `Option<Fault>`'s `None` is the all-zero value: zeroed
        /// memory holds no fault (the kernel makes a new thread by zeroing it).
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Fault {
            $(
                $(#[doc = $doc])*
                $kind {
                    $( $(#[doc = $fdoc])* $f: $t, )*
                } = $num,
            )*
        }

        $(
            const _: () = assert!(<[&str]>::len(&[$(stringify!($f)),*]) <= FAULT_MSG_LENGTH);
        )*

        impl Fault {
            /// Its kind.
            pub const fn kind(&self) -> FaultKind {
                match self {
                    $(Self::$kind { .. } => FaultKind::$kind,)*
                }
            }

            /// The message's label and words (unused words are 0).
            #[inline]
            pub fn encode(&self) -> (FaultKind, [u64; FAULT_MSG_LENGTH]) {
                match *self {
                    $(Self::$kind { $($f),* } => {
                        let words = [$(Word::to_word($f)),*];
                        let mut out = [0; FAULT_MSG_LENGTH];
                        out[..words.len()].copy_from_slice(&words);
                        (FaultKind::$kind, out)
                    })*
                }
            }

            /// A fault message with `label` and `words`. `None` if the label is no fault
            /// kind or a word is malformed (a flag other than 0 or 1); unused words are
            /// ignored.
            #[inline]
            pub fn decode(label: u64, words: [u64; FAULT_MSG_LENGTH]) -> Option<Self> {
                match FaultKind::from_raw(label)? {
                    $(FaultKind::$kind => {
                        let [$($f,)* ..] = words;
                        Some(Self::$kind { $($f: Word::from_word($f).ok()?),* })
                    })*
                }
            }
        }

        /// Every fault kind's layout, in label order.
        pub const FAULTS: &[FaultInfo] = &[$(
            FaultInfo {
                kind: FaultKind::$kind,
                name: stringify!($kind),
                doc: concat!($($doc),*),
                words: &[$(Field { name: stringify!($f), ty: stringify!($t), doc: concat!($($fdoc),*) }),*],
            }
        ),*];
    };
}

faults! {
    /// A stage-2 translation or permission fault.
    VmFault = 1 {
        /// PC
        pc: u64,
        /// address (0 where FAR_EL2 is UNKNOWN)
        addr: u64,
        /// 1 = instruction fetch
        instruction: bool,
        /// ESR_EL2
        esr: u64,
    },
    /// A syscall number the kernel does not know (instead of the `UnknownSyscall` error,
    /// when the thread has a fault endpoint).
    UnknownSyscall = 2 {
        /// PC
        pc: u64,
        /// SP
        sp: u64,
        /// syscall number (`x7`)
        number: u64,
        /// `x0`
        x0: u64,
    },
    /// Any other exception from EL0 (undefined instruction, alignment, breakpoint, ...).
    UserException = 3 {
        /// PC
        pc: u64,
        /// SP
        sp: u64,
        /// ESR_EL2 (0 for an FIQ)
        esr: u64,
        /// FAR_EL2, or 0
        far: u64,
    },
    /// The thread's scheduling context ran out of budget (sent to the timeout endpoint).
    Timeout = 4 {
        /// SchedContext badge
        badge: u64,
        /// µs consumed
        consumed_us: u64,
    },
}

#[cfg(test)]
mod tests {
    extern crate std;

    use proptest::prelude::*;

    use super::*;

    fn any_fault() -> impl Strategy<Value = Fault> {
        let w = any::<u64>;
        prop_oneof![
            (w(), w(), any::<bool>(), w()).prop_map(|(pc, addr, instruction, esr)| Fault::VmFault {
                pc,
                addr,
                instruction,
                esr
            }),
            (w(), w(), w(), w()).prop_map(|(pc, sp, number, x0)| Fault::UnknownSyscall { pc, sp, number, x0 }),
            (w(), w(), w(), w()).prop_map(|(pc, sp, esr, far)| Fault::UserException { pc, sp, esr, far }),
            (w(), w()).prop_map(|(badge, consumed_us)| Fault::Timeout { badge, consumed_us }),
        ]
    }

    proptest! {
        #[test]
        fn faults_round_trip(f in any_fault()) {
            let (kind, words) = f.encode();
            prop_assert_eq!(kind, f.kind());
            prop_assert_eq!(Fault::decode(kind as u64, words), Some(f));
        }

        #[test]
        fn decode_never_panics(label in 0u64..8, words in any::<[u64; 4]>()) {
            if let Some(f) = Fault::decode(label, words) {
                prop_assert_eq!(f.kind() as u64, label);
            }
        }
    }

    /// The words the kernel has always sent.
    #[test]
    fn message_positions() {
        let f = Fault::VmFault {
            pc: 1,
            addr: 2,
            instruction: true,
            esr: 4,
        };
        assert_eq!(f.encode(), (FaultKind::VmFault, [1, 2, 1, 4]));
        let f = Fault::Timeout {
            badge: 7,
            consumed_us: 9,
        };
        assert_eq!(f.encode(), (FaultKind::Timeout, [7, 9, 0, 0]));
        assert_eq!(Fault::decode(1, [0, 0, 2, 0]), None);
        assert_eq!(Fault::decode(5, [0; 4]), None);
        for (i, info) in FAULTS.iter().enumerate() {
            assert_eq!(info.kind as usize, i + 1);
            assert_eq!(FaultKind::from_raw(info.kind as u64), Some(info.kind));
        }
    }
}

#[cfg(test)]
mod zero_tests {
    use super::Fault;

    /// `Option<Fault>`'s `None` is a zero tag word: the tag (first word, `repr(u64)`)
    /// is the kind's number, never 0, and `None` takes the niche at 0. So zeroed memory
    /// holds no fault (the kernel makes a new thread by zeroing it).
    #[test]
    fn no_fault_is_a_zero_tag() {
        assert_eq!(core::mem::size_of::<Option<Fault>>(), core::mem::size_of::<Fault>());
        let none: Option<Fault> = None;
        // SAFETY: reads the first word of a live value at least a word long; `None`'s
        // tag word is initialised (its payload bytes are not, and are not read).
        #[allow(unsafe_code, reason = "the test looks at the representation")]
        let tag = unsafe { core::ptr::from_ref(&none).cast::<u64>().read() };
        assert_eq!(tag, 0);
        let some = Some(Fault::Timeout {
            badge: 0,
            consumed_us: 0,
        });
        // SAFETY: as above, for a `Some`.
        #[allow(unsafe_code, reason = "the test looks at the representation")]
        let tag = unsafe { core::ptr::from_ref(&some).cast::<u64>().read() };
        assert_eq!(tag, 4, "the tag is the kind's number");
    }
}
