//! Negative tests: every file in `tests/bad/` must fail, and its error must contain the
//! text after `// expect:` (which starts with `line:column:`), prefixed by the file name.

use std::path::Path;

#[test]
fn bad_interfaces_fail_with_their_expected_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 15, "the negative tests are there");
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let expect = src
            .lines()
            .find_map(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{}: no `// expect:` line", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match gaon_idl::generate(&name, &src) {
            Ok(_) => panic!("{name}: compiled, but should fail with `{expect}`"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("{name}:")) && text.contains(expect),
                    "{name}: got `{text}`, expected it to contain `{expect}`"
                );
            }
        }
    }
}

#[test]
fn good_interfaces_compile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["console.idl", "tests/every_kind.idl"] {
        let src = std::fs::read_to_string(root.join(f)).unwrap();
        gaon_idl::generate(f, &src).unwrap_or_else(|e| panic!("{e}"));
    }
}
