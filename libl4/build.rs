//! Generates the stubs of the interfaces libl4 itself speaks (the console, for logging).
fn main() {
    let idl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl/console.idl");
    gaon_idl::build(&[&idl]);
}
