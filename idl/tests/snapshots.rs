//! Snapshot tests: the generated code for each interface file must equal the file in
//! `tests/snapshots/`. After an intended change to the generator, refresh them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p gaon-idl --test snapshots` and review the diff.

use std::path::Path;

fn check(idl: &str, snapshot: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(root.join(idl)).unwrap();
    let name = Path::new(idl).file_name().unwrap().to_string_lossy().to_string();
    let got = gaon_idl::generate(&name, &src).unwrap_or_else(|e| panic!("{e}"));
    let path = root.join("tests/snapshots").join(snapshot);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_SNAPSHOTS=1", path.display()));
    assert!(
        got == want,
        "generated code for {idl} differs from {}; if intended, rerun with UPDATE_SNAPSHOTS=1",
        path.display()
    );
}

#[test]
fn console_snapshot() {
    check("console.idl", "console.rs");
}

#[test]
fn every_kind_snapshot() {
    check("tests/every_kind.idl", "every_kind.rs");
}
