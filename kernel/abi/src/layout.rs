//! Message layouts: how typed values become message-register words and back.
//!
//! Every invocation's arguments and results ([`crate::invocation`]) and every fault
//! message ([`crate::fault`]) is declared once, as a struct (or enum variant) whose
//! fields are in message-register order. Each field's type says how it is packed into
//! one word ([`Word`]) and which values the kernel refuses. The declarations generate
//! the encoders libl4 uses, the decoders the kernel uses, and the reference tables of
//! `docs/abi.md` (`cargo xtask abi-doc`).

use crate::object::ObjectSpec;
use crate::{Error, Rights};

/// A value carried in one message register.
pub trait Word: Sized + Copy {
    /// The word sent.
    fn to_word(self) -> u64;
    /// The value a received word stands for, or the error the kernel answers for a word
    /// no value packs into.
    fn from_word(w: u64) -> Result<Self, Error>;
}

impl Word for u64 {
    #[inline]
    fn to_word(self) -> u64 {
        self
    }
    #[inline]
    fn from_word(w: u64) -> Result<Self, Error> {
        Ok(w)
    }
}

/// Rights masks: bits the kernel does not know are ignored (it only ever takes rights
/// away with a mask).
impl Word for Rights {
    #[inline]
    fn to_word(self) -> u64 {
        self.bits()
    }
    #[inline]
    fn from_word(w: u64) -> Result<Self, Error> {
        Ok(Self::from_bits_truncate(w))
    }
}

/// Flags: 1 = true, 0 = false, anything else [`Error::InvalidArgument`].
impl Word for bool {
    #[inline]
    fn to_word(self) -> u64 {
        u64::from(self)
    }
    #[inline]
    fn from_word(w: u64) -> Result<Self, Error> {
        match w {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::InvalidArgument),
        }
    }
}

/// `UntypedRetype`'s first word: type in bits 0..8, `size_bits` in 8..16, bits 16..64
/// zero. A word with high bits set, an unknown type, or a size the type does not allow
/// ([`ObjType::object_bits`](crate::ObjType::object_bits)) is
/// [`Error::InvalidArgument`].
impl Word for ObjectSpec {
    #[inline]
    fn to_word(self) -> u64 {
        self.ty as u64 | (u64::from(self.size_bits) << 8)
    }
    #[inline]
    fn from_word(w: u64) -> Result<Self, Error> {
        if w >> 16 != 0 {
            return Err(Error::InvalidArgument);
        }
        let ty = crate::ObjType::from_raw(w & 0xff).ok_or(Error::InvalidArgument)?;
        let size_bits = ((w >> 8) & 0xff) as u8;
        if ty.object_bits(u64::from(size_bits)).is_none() {
            return Err(Error::InvalidArgument);
        }
        Ok(Self { ty, size_bits })
    }
}

/// A word whose check the kernel makes later than the others: after checks of the
/// object's state that come first. [`Unchecked::check`] gives the value or the error
/// its type's [`Word::from_word`] gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unchecked<T> {
    word: u64,
    value: core::marker::PhantomData<T>,
}

impl<T: Word> Unchecked<T> {
    /// A value to send.
    #[inline]
    pub fn new(v: T) -> Self {
        Self::from_raw(v.to_word())
    }
    /// Any word, well formed or not (tests of the kernel's checks send bad ones).
    #[inline]
    pub const fn from_raw(word: u64) -> Self {
        Self {
            word,
            value: core::marker::PhantomData,
        }
    }
    /// The word as sent.
    #[inline]
    pub const fn raw(self) -> u64 {
        self.word
    }
    /// The value, or the error the kernel answers for this word.
    #[inline]
    pub fn check(self) -> Result<T, Error> {
        T::from_word(self.word)
    }
}

impl<T: Word> Word for Unchecked<T> {
    #[inline]
    fn to_word(self) -> u64 {
        self.word
    }
    #[inline]
    fn from_word(w: u64) -> Result<Self, Error> {
        Ok(Self::from_raw(w))
    }
}

/// One field of a layout, for documentation and tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: &'static str,
    /// Its type as declared (`u64`, `CPtr`, `Rights`, `ObjectSpec`, ...).
    pub ty: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
}

/// A message layout: a fixed number of words, each field one word in order from
/// message register 0.
pub trait Layout: Sized {
    /// Message registers the fixed part takes.
    const LEN: usize;
    /// The fields, in message-register order.
    const FIELDS: &'static [Field];
    /// The words, `[u64; LEN]`.
    type Words: AsRef<[u64]> + AsMut<[u64]> + Copy;
    /// The message registers `0..LEN`.
    fn encode(&self) -> Self::Words;
    /// Read a message of `len` registers, register `i` being `mr(i)` (called only for
    /// `i < LEN`). [`Error::TruncatedMessage`] if `len < LEN` (checked before any
    /// field), else the first field's error, in order.
    fn decode(len: usize, mr: impl Fn(usize) -> u64) -> Result<Self, Error>;
}

/// `Ok` if a message of `len` registers holds `need` of them.
#[inline]
pub fn need(len: usize, need: usize) -> Result<(), Error> {
    if len < need {
        Err(Error::TruncatedMessage)
    } else {
        Ok(())
    }
}

/// One field of a layout on its own: register `i` of a message of `len`, as a `T`.
/// For decoders that check the object's state between arguments and must report those
/// errors before a later argument's (a missing register included).
#[inline]
pub fn field<T: Word>(len: usize, mr: impl Fn(usize) -> u64, i: usize) -> Result<T, Error> {
    need(len, i + 1)?;
    T::from_word(mr(i))
}

/// Declare a layout struct: fields in message-register order.
macro_rules! layout {
    (
        $(#[$m:meta])*
        $name:ident {
            $( $(#[doc = $fdoc:literal])* $f:ident : $t:ty ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[doc = $fdoc])* pub $f: $t, )*
        }

        impl $crate::layout::Layout for $name {
            const LEN: usize = <[&str]>::len(&[$(stringify!($f)),*]);
            const FIELDS: &'static [$crate::layout::Field] = &[$(
                $crate::layout::Field {
                    name: stringify!($f),
                    ty: stringify!($t),
                    doc: concat!($($fdoc),*),
                }
            ),*];
            type Words = [u64; <[&str]>::len(&[$(stringify!($f)),*])];

            #[inline]
            fn encode(&self) -> Self::Words {
                [$($crate::layout::Word::to_word(self.$f)),*]
            }

            #[inline]
            #[allow(unused_variables, reason = "layouts without fields read nothing")]
            fn decode(len: usize, mr: impl Fn(usize) -> u64) -> Result<Self, $crate::Error> {
                $crate::layout::need(len, <Self as $crate::layout::Layout>::LEN)?;
                let [$($f),*]: Self::Words = core::array::from_fn(mr);
                Ok(Self { $($f: $crate::layout::Word::from_word($f)?),* })
            }
        }
    };
}
pub(crate) use layout;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjType;

    #[test]
    fn object_spec_packing() {
        let s = ObjectSpec::new(ObjType::Frame, 21);
        assert_eq!(s.to_word(), 7 | 21 << 8);
        assert_eq!(ObjectSpec::from_word(7 | 21 << 8), Ok(s));
        assert_eq!(ObjectSpec::from_word(1 << 16 | 3), Err(Error::InvalidArgument));
        assert_eq!(ObjectSpec::from_word(16), Err(Error::InvalidArgument));
        assert_eq!(ObjectSpec::from_word(7 | 13 << 8), Err(Error::InvalidArgument));
        assert_eq!(
            ObjectSpec::from_word(ObjType::IrqControl as u64),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn flags_and_deferred_checks() {
        assert_eq!(bool::from_word(1), Ok(true));
        assert_eq!(bool::from_word(2), Err(Error::InvalidArgument));
        let u = Unchecked::<bool>::from_word(2).unwrap();
        assert_eq!(u.raw(), 2);
        assert_eq!(u.check(), Err(Error::InvalidArgument));
        assert_eq!(Unchecked::new(true).check(), Ok(true));
        assert_eq!(Rights::from_word(0xff), Ok(Rights::all()));
    }

    #[test]
    fn single_fields() {
        let mr = |i: usize| [5u64, 6][i];
        assert_eq!(field::<u64>(2, mr, 1), Ok(6));
        assert_eq!(field::<u64>(1, mr, 1), Err(Error::TruncatedMessage));
    }
}
