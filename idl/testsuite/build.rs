//! Generate Rust from the interface files under test.
fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    gaon_idl::build(&[&root.join("tests/every_kind.idl"), &root.join("console.idl")]);
}
