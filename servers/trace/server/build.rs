//! Links the trace server.
fn main() {
    libl4_build::program(&["../../../idl/trace.idl"]);
}
