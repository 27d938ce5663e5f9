//! Generates the stubs of the interfaces libl4 itself speaks (the console, for logging, and the supervisor, for `exit`).
fn main() {
    let idl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl");
    gaon_idl::build(&[&idl.join("console.idl"), &idl.join("supervisor.idl")]);
}
