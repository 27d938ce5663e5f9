//! The Gaon IDL compiler.
//!
//! An interface file (`idl/*.idl`, described in `docs/idl.md`) declares methods with
//! scalar, bounded-array, string, capability and shared-memory-lease arguments, error
//! enums and one-way methods. [`generate`] turns it into Rust: message structs laid out
//! with zerocopy, a client stub generic over `libl4::rpc::Transport`, a server trait and
//! a `dispatch` function that checks every bound before calling the server. Build
//! scripts call [`build`]. Errors name the file, line and column.

pub mod ast;
mod check;
mod codegen;

pub use codegen::interface_hash;
mod parse;

use std::fmt;
use std::path::Path;

/// Largest message payload in bytes: 120 message registers of 8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 960;
/// Largest application error code; codes above are the runtime's own.
pub const MAX_ERROR_CODE: u32 = 0xfffe_ffff;

/// A problem in an interface file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdlError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for IdlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

impl std::error::Error for IdlError {}

/// Parse and check `src` (named `file` in errors) and generate its Rust code.
pub fn generate(file: &str, src: &str) -> Result<String, IdlError> {
    let iface = parse::parse(file, src)?;
    check::check(file, &iface)?;
    Ok(codegen::generate(file, &iface))
}

/// Parse and check only.
pub fn parse(file: &str, src: &str) -> Result<ast::Interface, IdlError> {
    let iface = parse::parse(file, src)?;
    check::check(file, &iface)?;
    Ok(iface)
}

/// For build scripts: generate code for each interface file into `$OUT_DIR/<stem>.rs`,
/// and tell Cargo to rerun when one changes. On an error, print it as Cargo expects and
/// exit, so the build fails with `file:line:col: message`.
pub fn build(files: &[&Path]) {
    let out = std::env::var_os("OUT_DIR").expect("OUT_DIR is set by Cargo for build scripts");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.display().to_string();
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {name}: {e}");
                std::process::exit(1);
            }
        };
        match generate(&name, &src) {
            Ok(code) => {
                let stem = path
                    .file_stem()
                    .map_or_else(|| "idl".into(), |s| s.to_string_lossy().into_owned());
                let dest = Path::new(&out).join(format!("{stem}.rs"));
                if let Err(e) = std::fs::write(&dest, code) {
                    eprintln!("error: {}: {e}", dest.display());
                    std::process::exit(1);
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}
