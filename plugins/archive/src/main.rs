//! `archive`: creates and extracts reproducible tar.gz archives in the
//! workspace. See README.md.

mod tarball;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;

use gantry_sdk::{Context, Result, ResultExt, Step, bail};
use sha2::{Digest, Sha256};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Archive);

/// The step.
struct Archive;

impl Step for Archive {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let archive_input: String = ctx.input("archive")?;
        let archive = ctx.workspace_path(&archive_input);
        let mode: String = ctx.input_or("mode", "create".to_owned())?;
        let count = match mode.as_str() {
            "create" => {
                let paths: Vec<String> = ctx.input_or("paths", vec![".".to_owned()])?;
                let base = match ctx.input_opt::<String>("base")? {
                    Some(base) => ctx.workspace_path(&base),
                    None => ctx.workspace_path("."),
                };
                if let Some(parent) = archive.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create `{}`", parent.display()))?;
                }
                let out = File::create(&archive)
                    .with_context(|| format!("cannot create `{}`", archive.display()))?;
                let count = tarball::create(&base, &paths, BufWriter::new(out))
                    .with_context(|| format!("cannot pack `{}`", archive.display()))?;
                println!("packed {count} entries into {}", archive.display());
                count
            }
            "extract" => {
                let dest = match ctx.input_opt::<String>("dest")? {
                    Some(dest) => ctx.workspace_path(&dest),
                    None => ctx.workspace_path("."),
                };
                let input = File::open(&archive)
                    .with_context(|| format!("cannot open `{}`", archive.display()))?;
                let count = tarball::extract(BufReader::new(input), &dest)
                    .with_context(|| format!("cannot extract `{}`", archive.display()))?;
                println!("unpacked {count} entries into {}", dest.display());
                count
            }
            other => bail!("input `mode`: expected `create` or `extract`, found `{other}`"),
        };
        ctx.set_output("archive", archive.display().to_string())?;
        ctx.set_output("count", count.to_string())?;
        ctx.set_output("sha256", sha256_file(&archive)?)?;
        Ok(())
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;
    use std::fs;

    fn context(dir: &Path, inputs: &[(&str, &str)]) -> Context {
        let path = |p: &str| dir.join(p).to_str().unwrap().to_owned();
        let mut vars = vec![
            ("GANTRY_WORKSPACE".to_owned(), path("ws")),
            ("GANTRY_OUTPUT".to_owned(), path("output")),
        ];
        for (name, value) in inputs {
            vars.push((gantry_sdk::input::input_variable(name), value.to_string()));
        }
        Context::from_vars(vars)
    }

    #[test]
    fn create_then_extract_through_the_step() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("ws/public")).unwrap();
        fs::write(dir.path().join("ws/public/index.html"), "hi").unwrap();
        let create = context(
            dir.path(),
            &[
                ("archive", "out/site.tar.gz"),
                ("paths", "index.html"),
                ("base", "public"),
            ],
        );
        Archive.run(&create).unwrap();
        let bytes = fs::read(dir.path().join("ws/out/site.tar.gz")).unwrap();
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let outputs = fs::read_to_string(dir.path().join("output")).unwrap();
        assert!(outputs.contains("count=1\n") && outputs.contains(&format!("sha256={digest}\n")));

        let extract = context(
            dir.path(),
            &[
                ("mode", "extract"),
                ("archive", "out/site.tar.gz"),
                ("dest", "unpacked"),
            ],
        );
        Archive.run(&extract).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("ws/unpacked/index.html")).unwrap(),
            "hi"
        );
    }

    #[test]
    fn unknown_mode() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), &[("archive", "a.tar.gz"), ("mode", "zip")]);
        assert!(
            Archive
                .run(&ctx)
                .unwrap_err()
                .message()
                .contains("`create` or `extract`")
        );
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "archive");
        assert!(meta.inputs.as_ref().unwrap()["archive"].required);
    }
}
