//! `gaon-image`: check a system description, or pack a bootable image from built ELFs.
//! `cargo xtask build` does both for you; this binary is for use outside the workspace.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gaon_image::{PackInput, System};

const USAGE: &str = "\
usage: gaon-image check SYSTEM.toml [--platforms DIR]
       gaon-image pack SYSTEM.toml --kernel ELF --root ELF --out FILE [--module NAME=PATH]... [--platforms DIR]

Module packages named in the description must be given as --module NAME=PATH.";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut it = args.into_iter();
    let command = it.next().ok_or(USAGE)?;
    let file = PathBuf::from(it.next().ok_or(USAGE)?);
    let (mut platforms, mut kernel, mut root, mut out) = (PathBuf::from("platforms"), None, None, None);
    let mut given = Vec::new();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--platforms" => platforms = value.into(),
            "--kernel" => kernel = Some(PathBuf::from(value)),
            "--root" => root = Some(PathBuf::from(value)),
            "--out" => out = Some(PathBuf::from(value)),
            "--module" => {
                let (name, path) = value.split_once('=').ok_or("--module takes NAME=PATH")?;
                given.push((name.to_string(), PathBuf::from(path)));
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let system = System::load(&file, &platforms).map_err(|e| e.to_string())?;
    match command.as_str() {
        "check" => {
            println!(
                "{}: ok: system `{}` for board `{}`",
                file.display(),
                system.name,
                system.board.board.name
            );
            Ok(())
        }
        "pack" => {
            let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
            let kernel = read(&kernel.ok_or("pack needs --kernel")?)?;
            let root = read(&root.ok_or("pack needs --root")?)?;
            let modules = system.read_modules(|m, p| {
                given
                    .iter()
                    .find(|(n, _)| n == &m.name)
                    .map(|(_, path)| path.clone())
                    .ok_or_else(|| {
                        format!(
                            "module `{}` comes from package `{p}`: pass --module {}=PATH",
                            m.name, m.name
                        )
                    })
            })?;
            let input = PackInput {
                system: &system,
                kernel: &kernel,
                root: &root,
                modules: &modules,
            };
            let image = gaon_image::pack(&input).map_err(|e| format!("{}: {e}", file.display()))?;
            let out = out.ok_or("pack needs --out")?;
            std::fs::write(&out, image).map_err(|e| format!("{}: {e}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}
