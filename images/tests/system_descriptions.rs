//! System description checks, Microkit style: every file under `fixtures/bad/` must be
//! rejected, and its `# expect:` lines must all appear in the error message.

use std::fs;
use std::path::{Path, PathBuf};

use gaon_image::{ModuleSource, System};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn platforms() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../platforms")
}

#[test]
fn every_bad_description_is_rejected_with_its_message() {
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(dir().join("bad"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let text = fs::read_to_string(&path).unwrap();
        let expects: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expects.is_empty(), "{} has no `# expect:` line", path.display());
        let rel = Path::new("bad").join(path.file_name().unwrap());
        let err = match System::parse(&rel, &text, &platforms()) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        for e in expects {
            assert!(err.contains(e), "{}: error `{err}` lacks `{e}`", path.display());
        }
        assert!(
            err.starts_with(&rel.display().to_string()),
            "error names the file: {err}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} bad fixtures");
}

#[test]
fn shipped_descriptions_are_valid() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR"));
    for board in ["virt", "raspi3b", "zcu102"] {
        let s = System::load(&images.join(board).join("system.toml"), &platforms()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.board.board.name, board);
        assert_eq!(s.kernel_package, "gaon-kernel");
    }
}

#[test]
fn good_description_with_modules() {
    let s = System::load(&dir().join("good/with-modules.toml"), &platforms()).unwrap();
    assert_eq!(s.modules.len(), 2);
    assert_eq!(s.modules[0].source, ModuleSource::File(dir().join("good/blob.bin")));
    assert_eq!(s.modules[1].source, ModuleSource::Package("gaon-root".into()));
}

#[test]
fn board_must_match_images_folder() {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("virt/system.toml")).unwrap();
    let err = System::parse(Path::new("images/raspi3b/system.toml"), &text, &platforms()).unwrap_err();
    assert_eq!(err.field, "system.board");
    assert!(err.problem.contains("lives in images/raspi3b/"), "{err}");
}
