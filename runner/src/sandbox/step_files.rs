//! The per-step private folder on the host: the guest's `/tmp`, and the
//! files behind `GANTRY_OUTPUT`, `GANTRY_ENV`, `GANTRY_STATE` and
//! `GANTRY_STEP_SUMMARY`, mounted at `/gantry`.
//!
//! The folder is deleted when the step is done. The files are read back
//! with a size cap and without following symlinks: the guest could have
//! replaced any of them with a link to a host file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::abi::parse_file_commands;
use crate::fsutil::read_regular_file_capped;

/// Where the step files are mounted inside the guest.
pub const GUEST_FILES_DIR: &str = "/gantry";
/// How much a step may write to each of its files (GitHub Actions allows
/// 1 MiB of outputs and of summary per step, too).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The ABI files, with the environment variable that names each.
const FILES: [(&str, &str); 4] = [
    ("GANTRY_OUTPUT", "output"),
    ("GANTRY_ENV", "env"),
    ("GANTRY_STATE", "state"),
    ("GANTRY_STEP_SUMMARY", "summary"),
];

/// What a step wrote to its files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepFiles {
    pub outputs: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub state: Vec<(String, String)>,
    pub summary: String,
}

/// A step's private host folder.
pub struct StepFolder {
    root: TempDir,
}

impl StepFolder {
    pub fn create() -> io::Result<StepFolder> {
        let root = tempfile::Builder::new().prefix("gantry-step-").tempdir()?;
        fs::create_dir(root.path().join("tmp"))?;
        fs::create_dir(root.path().join("files"))?;
        for (_, file) in FILES {
            fs::write(root.path().join("files").join(file), b"")?;
        }
        Ok(StepFolder { root })
    }

    /// The host folder mounted at `/tmp`.
    pub fn scratch(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    /// The host folder mounted at [`GUEST_FILES_DIR`].
    pub fn files(&self) -> PathBuf {
        self.root.path().join("files")
    }

    /// The environment variables naming the files, as the guest sees them.
    pub fn guest_env() -> impl Iterator<Item = (&'static str, String)> {
        FILES
            .iter()
            .map(|(variable, file)| (*variable, format!("{GUEST_FILES_DIR}/{file}")))
    }

    /// Reads and parses what the step wrote.
    pub fn read(&self) -> Result<StepFiles, String> {
        let folder = self.files();
        let read = |variable: &str, file: &str| read_text(&folder.join(file), variable);
        let commands = |variable: &str, file: &str| -> Result<Vec<(String, String)>, String> {
            let text = read(variable, file)?;
            parse_file_commands(&text).map_err(|e| format!("`{variable}` file: {e}"))
        };
        Ok(StepFiles {
            outputs: commands("GANTRY_OUTPUT", "output")?,
            env: commands("GANTRY_ENV", "env")?,
            state: commands("GANTRY_STATE", "state")?,
            summary: read("GANTRY_STEP_SUMMARY", "summary")?,
        })
    }
}

fn read_text(path: &Path, variable: &str) -> Result<String, String> {
    match read_regular_file_capped(path, MAX_FILE_BYTES) {
        Ok(Some(bytes)) => {
            String::from_utf8(bytes).map_err(|_| format!("`{variable}` file is not UTF-8"))
        }
        Ok(None) => Err(format!(
            "`{variable}` file is larger than {MAX_FILE_BYTES} bytes"
        )),
        // A step may delete its own file; that means it wrote nothing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("`{variable}` file cannot be read safely: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_step_wrote() {
        let folder = StepFolder::create().unwrap();
        fs::write(folder.files().join("output"), "a=1\nb<<EOF\nx\ny\nEOF\n").unwrap();
        fs::write(folder.files().join("summary"), "# Done\n").unwrap();
        let files = folder.read().unwrap();
        assert_eq!(
            files.outputs,
            vec![("a".into(), "1".into()), ("b".into(), "x\ny".into())]
        );
        assert_eq!(files.summary, "# Done\n");
        assert!(files.env.is_empty() && files.state.is_empty());
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let folder = StepFolder::create().unwrap();
        let secret = folder.scratch().join("host-secret");
        fs::write(&secret, "a=leaked\n").unwrap();
        fs::remove_file(folder.files().join("output")).unwrap();
        std::os::unix::fs::symlink(&secret, folder.files().join("output")).unwrap();
        let error = folder.read().unwrap_err();
        assert!(error.contains("GANTRY_OUTPUT"), "{error}");
    }

    #[test]
    fn oversized_and_malformed_files_fail() {
        let folder = StepFolder::create().unwrap();
        fs::write(folder.files().join("env"), "no equals sign here\n").unwrap();
        assert!(folder.read().unwrap_err().contains("GANTRY_ENV"));
        fs::write(folder.files().join("env"), "").unwrap();
        fs::write(
            folder.files().join("summary"),
            vec![b'x'; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        assert!(folder.read().unwrap_err().contains("larger"));
    }
}
