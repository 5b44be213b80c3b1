//! `checksum`: sha256 of files and globs, into outputs, an optional
//! `sha256sum`-format file and the step summary. See README.md.

mod glob;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use gantry_sdk::{Context, Error, Result, ResultExt, Step, bail};
use sha2::{Digest, Sha256};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Checksum);

/// The step.
struct Checksum;

impl Step for Checksum {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let patterns: Vec<String> = ctx.input("files")?;
        let allow_empty: bool = ctx.input_or("allow-empty", false)?;
        let expected: Option<String> = ctx.input_opt("expected")?;
        let root = ctx.workspace_path(".");

        let files = collect(&root, &patterns)?;
        if files.is_empty() && !allow_empty {
            bail!("no file matches {}", patterns.join(", "));
        }
        let mut sums = Vec::new();
        for file in &files {
            let path = resolve(&root, file);
            let digest =
                sha256_file(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
            sums.push((digest, file.clone()));
        }
        let listing = sums_text(&sums);
        let overall = match sums.as_slice() {
            [(digest, _)] => digest.clone(),
            _ => hex(&Sha256::digest(listing.as_bytes())),
        };
        if let Some(expected) = expected {
            check_expected(&expected, &sums)?;
        }

        // The file first: a step that cannot write it reports nothing as done.
        if let Some(target) = ctx.input_opt::<String>("sums-file")? {
            let path = ctx.workspace_path(&target);
            if let Some(folder) = path.parent() {
                std::fs::create_dir_all(folder)
                    .with_context(|| format!("cannot create `{}`", folder.display()))?;
            }
            std::fs::write(&path, &listing)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        print!("{listing}");
        ctx.set_output("sha256", &overall)?;
        ctx.set_output("sums", listing.trim_end())?;
        ctx.set_output("count", sums.len().to_string())?;
        ctx.append_summary(&summary(&sums))?;
        Ok(())
    }
}

/// Every file the patterns name, in pattern order, each once. A plain path
/// (absolute or relative) must exist; a glob may match nothing.
fn collect(root: &Path, patterns: &[String]) -> Result<Vec<String>> {
    let mut files: Vec<String> = Vec::new();
    for pattern in patterns {
        let found = if glob::is_glob(pattern) {
            if Path::new(pattern).is_absolute() {
                bail!("glob `{pattern}` must be relative to the workspace");
            }
            glob::expand(root, pattern).with_context(|| format!("cannot expand `{pattern}`"))?
        } else {
            let path = resolve(root, pattern);
            if !path.is_file() {
                return Err(Error::new(format!("`{pattern}` is not a file")));
            }
            vec![pattern.trim_start_matches("./").to_owned()]
        };
        for file in found {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn resolve(root: &Path, file: &str) -> std::path::PathBuf {
    if Path::new(file).is_absolute() {
        file.into()
    } else {
        root.join(file)
    }
}

/// The sha256 of a file, read in chunks.
fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// `sha256sum` format: digest, two spaces, path; one line each.
fn sums_text(sums: &[(String, String)]) -> String {
    sums.iter()
        .map(|(digest, path)| format!("{digest}  {path}\n"))
        .collect()
}

fn summary(sums: &[(String, String)]) -> String {
    let mut text = String::from("### Checksums\n\n| file | sha256 |\n| --- | --- |\n");
    for (digest, path) in sums {
        let path = path.replace('|', "\\|");
        text.push_str(&format!("| `{path}` | `{digest}` |\n"));
    }
    text
}

fn check_expected(expected: &str, sums: &[(String, String)]) -> Result<()> {
    let expected = expected.trim().to_ascii_lowercase();
    match sums {
        [(digest, path)] if *digest == expected => {
            println!("`{path}` matches the expected sha256");
            Ok(())
        }
        [(digest, path)] => Err(Error::new(format!(
            "sha256 mismatch: expected {expected}, found {digest}"
        ))
        .file(path.clone())),
        _ => bail!(
            "`expected` needs exactly one file, but {} matched",
            sums.len()
        ),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;
    use std::fs;

    /// sha256("abc"), from FIPS 180-2.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn setup(inputs: &[(&str, &str)]) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        fs::create_dir_all(ws.join("dist")).unwrap();
        fs::write(ws.join("dist/a.bin"), "abc").unwrap();
        fs::write(ws.join("dist/b.bin"), "").unwrap();
        fs::write(ws.join("notes.txt"), "abc").unwrap();
        let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
        let mut vars = vec![
            ("GANTRY_WORKSPACE".to_owned(), path("ws")),
            ("GANTRY_OUTPUT".to_owned(), path("output")),
            ("GANTRY_STEP_SUMMARY".to_owned(), path("summary")),
        ];
        for (name, value) in inputs {
            vars.push((gantry_sdk::input::input_variable(name), value.to_string()));
        }
        (dir, Context::from_vars(vars))
    }

    fn outputs(dir: &tempfile::TempDir) -> String {
        fs::read_to_string(dir.path().join("output")).unwrap()
    }

    #[test]
    fn one_file_gives_its_digest() {
        let (dir, ctx) = setup(&[("files", "notes.txt"), ("expected", &ABC.to_uppercase())]);
        Checksum.run(&ctx).unwrap();
        let out = outputs(&dir);
        assert!(
            out.starts_with(&format!("sha256={ABC}\nsums={ABC}  notes.txt\ncount=1\n")),
            "{out}"
        );
        let summary = fs::read_to_string(dir.path().join("summary")).unwrap();
        assert!(summary.contains(&format!("| `notes.txt` | `{ABC}` |")));
    }

    #[test]
    fn globs_and_sums_file() {
        let (dir, ctx) = setup(&[
            ("files", "dist/*.bin\nnotes.txt\ndist/a.bin"),
            ("sums-file", "out/sums/SHA256SUMS"),
        ]);
        Checksum.run(&ctx).unwrap();
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let listing = format!("{ABC}  dist/a.bin\n{empty}  dist/b.bin\n{ABC}  notes.txt\n");
        let written = fs::read_to_string(dir.path().join("ws/out/sums/SHA256SUMS")).unwrap();
        assert_eq!(written, listing);
        let out = outputs(&dir);
        assert!(out.contains("count=3\n"));
        let overall = hex(&Sha256::digest(listing.as_bytes()));
        assert!(out.starts_with(&format!("sha256={overall}\nsums<<")));
    }

    #[test]
    fn mismatch_and_nothing_matched_fail() {
        let (_dir, ctx) = setup(&[("files", "notes.txt"), ("expected", "00")]);
        let e = Checksum.run(&ctx).unwrap_err();
        assert!(
            e.message()
                .starts_with("sha256 mismatch: expected 00, found ba78")
        );
        let (_dir, ctx) = setup(&[("files", "*.none")]);
        assert!(
            Checksum
                .run(&ctx)
                .unwrap_err()
                .message()
                .contains("no file matches")
        );
        let (_dir, ctx) = setup(&[("files", "*.none"), ("allow-empty", "true")]);
        Checksum.run(&ctx).unwrap();
        let (_dir, ctx) = setup(&[("files", "missing.txt")]);
        assert!(Checksum.run(&ctx).is_err());
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "checksum");
        assert!(meta.inputs.as_ref().unwrap()["files"].required);
    }
}
