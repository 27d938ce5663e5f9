//! The parsed form of an interface file.

/// A position in the source: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
}

/// A scalar type. On the wire every scalar takes one 64-bit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `bool`.
    Bool,
}

impl Scalar {
    /// The Rust type.
    pub const fn rust(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::U16 => "u16",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::Bool => "bool",
        }
    }

    /// Bytes of one element in an array.
    pub const fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 => 4,
            Self::U64 | Self::I64 => 8,
        }
    }

    /// Parse a scalar name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "u8" => Self::U8,
            "u16" => Self::U16,
            "u32" => Self::U32,
            "u64" => Self::U64,
            "i8" => Self::I8,
            "i16" => Self::I16,
            "i32" => Self::I32,
            "i64" => Self::I64,
            "bool" => Self::Bool,
            _ => return None,
        })
    }
}

/// Access a lease grants the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The server may read.
    Read,
    /// The server may write.
    Write,
    /// Both.
    ReadWrite,
}

/// An argument or result type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// One scalar.
    Scalar(Scalar),
    /// Exactly `n` scalars, `[T; N]` (bool arrays are not allowed).
    Array(Scalar, usize),
    /// Up to `max` scalars, `vec<T, N>` (bool vectors are not allowed).
    Vec(Scalar, usize),
    /// A UTF-8 string of up to `max` bytes.
    Str(usize),
    /// A capability.
    Cap,
    /// A shared-memory lease: a frame capability and a window in it.
    Lease(Access),
}

impl Type {
    /// True for types that travel as a capability.
    pub const fn is_cap(&self) -> bool {
        matches!(self, Self::Cap | Self::Lease(_))
    }
}

/// A method's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Nothing (`-> ()` or no arrow).
    Unit,
    /// A value.
    Value(Type),
    /// `Result<T, E>`; `None` for `Result<(), E>`.
    Result(Option<Type>, String),
}

/// A named, typed parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
    /// Where it was declared.
    pub pos: Pos,
}

/// A method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// Doc comment lines.
    pub doc: Vec<String>,
    /// Name.
    pub name: String,
    /// One-way: no reply, the client does not wait.
    pub oneway: bool,
    /// Parameters.
    pub params: Vec<Param>,
    /// Result.
    pub ret: Ret,
    /// Where it was declared.
    pub pos: Pos,
}

/// An error enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorEnum {
    /// Doc comment lines.
    pub doc: Vec<String>,
    /// Name.
    pub name: String,
    /// Variants and their codes.
    pub variants: Vec<(String, u32)>,
    /// Where it was declared.
    pub pos: Pos,
}

/// An interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Doc comment lines.
    pub doc: Vec<String>,
    /// Name.
    pub name: String,
    /// Error enums declared inside it.
    pub errors: Vec<ErrorEnum>,
    /// Methods, in order; method `i` has label `i + 1`.
    pub methods: Vec<Method>,
}
