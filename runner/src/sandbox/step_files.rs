//! The per-step private folder on the host: the guest's `/tmp`, and the
//! files behind `GANTRY_OUTPUT`, `GANTRY_ENV`, `GANTRY_STATE` and
//! `GANTRY_STEP_SUMMARY`, mounted at `/gantry`.
//!
//! The files are read back with a size cap and without following symlinks:
//! the guest could have replaced any of them with a link to a host file.
//!
//! Making and deleting a folder with four files costs about a millisecond
//! on a journaling file system, far more than running a small guest, so
//! [`StepFolders`] keeps folders for reuse: after a step its folder is
//! emptied (every entry in `/tmp` removed, the step files truncated or put
//! back) and handed to the next step. A folder that cannot be emptied is
//! deleted instead, so no step ever sees what another one left.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::abi::parse_file_commands;
use crate::fsutil::read_regular_file_capped;
use crate::sandbox::leftovers;

/// Where the step files are mounted inside the guest.
pub const GUEST_FILES_DIR: &str = "/gantry";
/// How much a step may write to each of its files (GitHub Actions allows
/// 1 MiB of outputs and of summary per step, too).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

const STATE_VARIABLE: &str = "GANTRY_STATE";

/// The ABI files, with the environment variable that names each.
const FILES: [(&str, &str); 4] = [
    ("GANTRY_OUTPUT", "output"),
    ("GANTRY_ENV", "env"),
    (STATE_VARIABLE, "state"),
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

/// How many emptied folders are kept for the next steps; more than the
/// steps that can run at once would only hold disk space.
const MAX_IDLE_FOLDERS: usize = 64;

/// A step's private host folder.
pub struct StepFolder {
    root: TempDir,
}

/// Step folders ready for the next step, each empty.
#[derive(Default)]
pub struct StepFolders {
    idle: Mutex<Vec<StepFolder>>,
}

impl StepFolders {
    /// An empty folder: one a previous step used, or a new one.
    pub fn take(&self) -> io::Result<StepFolder> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match reused {
            Some(folder) => Ok(folder),
            None => StepFolder::create(),
        }
    }

    /// Reads what the step wrote, then keeps the folder, emptied, for the
    /// next step, or deletes it if it cannot be emptied.
    pub fn finish(&self, folder: StepFolder) -> Result<StepFiles, String> {
        let (files, emptied) = folder.drain();
        if emptied.is_ok() {
            self.keep(folder);
        }
        files
    }

    /// Keeps a folder its step could not have changed (its module imports
    /// nothing that creates, writes or removes a file) for the next step,
    /// as it is.
    pub fn put_back_unchanged(&self, folder: StepFolder) {
        self.keep(folder);
    }

    fn keep(&self, folder: StepFolder) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_FOLDERS {
            idle.push(folder);
        }
    }
}

impl StepFolder {
    pub fn create() -> io::Result<StepFolder> {
        let root = tempfile::Builder::new()
            .prefix(&leftovers::owned_prefix(leftovers::STEP_FOLDER))
            .tempdir()?;
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

    /// The host file behind `GANTRY_STATE`.
    pub fn state_file(&self) -> PathBuf {
        self.files().join("state")
    }

    /// The environment variables naming the files, as the guest sees them.
    pub fn guest_env() -> impl Iterator<Item = (&'static str, String)> {
        FILES
            .iter()
            .map(|(variable, file)| (*variable, format!("{GUEST_FILES_DIR}/{file}")))
    }

    /// Reads and parses what the step wrote, and brings the folder back to
    /// how [`StepFolder::create`] left it: `/tmp` empty and the four step
    /// files present and empty, whatever the guest did to them (removed,
    /// grew, replaced by a folder or a link). Nothing is followed: entries
    /// are removed as the links or folders they are.
    ///
    /// One pass over each folder: a step that wrote nothing costs a listing
    /// and a `stat` per file, with nothing to open or recreate.
    fn drain(&self) -> (Result<StepFiles, String>, io::Result<()>) {
        let mut texts: [Result<String, String>; 4] = std::array::from_fn(|_| Ok(String::new()));
        let mut kept = [false; 4];
        let emptied = (|| {
            let files = self.files();
            for entry in fs::read_dir(&files)? {
                let entry = entry?;
                if let Some(i) = FILES.iter().position(|(_, f)| entry.file_name() == *f) {
                    let metadata = entry.metadata()?;
                    if metadata.is_file() && metadata.len() == 0 && metadata.nlink() == 1 {
                        kept[i] = true;
                        continue;
                    }
                    texts[i] = read_text(&entry.path(), FILES[i].0);
                }
                // A written file is replaced rather than truncated: the
                // guest may have made it a hard link to a file elsewhere.
                remove_entry(&entry)?;
            }
            for (i, (_, file)) in FILES.iter().enumerate() {
                if !kept[i] {
                    fs::write(files.join(file), b"")?;
                }
            }
            for entry in fs::read_dir(self.scratch())? {
                remove_entry(&entry?)?;
            }
            Ok(())
        })();
        let [output, env, state, summary] = texts;
        let files = (|| {
            Ok(StepFiles {
                outputs: commands(output, "GANTRY_OUTPUT")?,
                env: commands(env, "GANTRY_ENV")?,
                state: commands(state, STATE_VARIABLE)?,
                summary: summary?,
            })
        })();
        (files, emptied)
    }
}

/// Reads a `GANTRY_STATE` file as a step's folder is read back: capped, no
/// link followed. For a step whose runner died before it finished.
///
/// Only a path shaped like [`StepFolder::state_file`] in the temporary
/// folder is read: a journal naming any other file (which gantry never
/// writes) cannot make the host read it into a hook's `STATE_*`.
pub fn read_state_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    if !is_state_file_path(path) {
        return Err(format!(
            "`{}` is not a step's state file; it is not read",
            path.display()
        ));
    }
    commands(read_text(path, STATE_VARIABLE), STATE_VARIABLE)
}

/// Whether `path` is `<temp>/gantry-step-*/files/state`.
fn is_state_file_path(path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(std::env::temp_dir()) else {
        return false;
    };
    let parts: Vec<_> = rest.components().collect();
    matches!(
        parts.as_slice(),
        [
            std::path::Component::Normal(folder),
            std::path::Component::Normal(files),
            std::path::Component::Normal(state),
        ] if folder.to_string_lossy().starts_with(leftovers::STEP_FOLDER)
            && *files == "files"
            && *state == "state"
    )
}

/// The `name=value` lines of a step file read as `text`.
fn commands(text: Result<String, String>, variable: &str) -> Result<Vec<(String, String)>, String> {
    parse_file_commands(&text?).map_err(|e| {
        format!(
            "`{variable}` file: {}",
            crate::abi::file_commands::describe(&e)
        )
    })
}

/// Removes a folder entry without following it.
fn remove_entry(entry: &fs::DirEntry) -> io::Result<()> {
    if entry.file_type()?.is_dir() {
        fs::remove_dir_all(entry.path())
    } else {
        fs::remove_file(entry.path())
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
    fn only_a_step_folder_state_file_is_read_from_a_journal() {
        let folder = StepFolder::create().unwrap();
        fs::write(folder.state_file(), "saved=yes\n").unwrap();
        assert_eq!(
            read_state_file(&folder.state_file()).unwrap(),
            [("saved".to_owned(), "yes".to_owned())]
        );
        let elsewhere = tempfile::tempdir().unwrap();
        let other = elsewhere.path().join("state");
        fs::write(&other, "secret=host file\n").unwrap();
        for path in [
            other.as_path(),
            Path::new("/etc/passwd"),
            &folder.files().join("../files/state"),
        ] {
            let error = read_state_file(path).unwrap_err();
            assert!(error.contains("not a step's state file"), "{error}");
        }
    }

    #[test]
    fn reads_what_the_step_wrote() {
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        fs::write(folder.files().join("output"), "a=1\nb<<EOF\nx\ny\nEOF\n").unwrap();
        fs::write(folder.files().join("summary"), "# Done\n").unwrap();
        let files = folders.finish(folder).unwrap();
        assert_eq!(
            files.outputs,
            vec![("a".into(), "1".into()), ("b".into(), "x\ny".into())]
        );
        assert_eq!(files.summary, "# Done\n");
        assert!(files.env.is_empty() && files.state.is_empty());
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        let secret = folder.scratch().join("host-secret");
        fs::write(&secret, "a=leaked\n").unwrap();
        fs::remove_file(folder.files().join("output")).unwrap();
        std::os::unix::fs::symlink(&secret, folder.files().join("output")).unwrap();
        let error = folders.finish(folder).unwrap_err();
        assert!(error.contains("GANTRY_OUTPUT"), "{error}");
    }

    #[test]
    fn oversized_and_malformed_files_fail() {
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        fs::write(folder.files().join("env"), "no equals sign here\n").unwrap();
        assert!(folders.finish(folder).unwrap_err().contains("GANTRY_ENV"));
        let folder = folders.take().unwrap();
        fs::write(
            folder.files().join("summary"),
            vec![b'x'; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        assert!(folders.finish(folder).unwrap_err().contains("larger"));
    }

    #[test]
    fn a_deleted_file_means_nothing_written() {
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        fs::remove_file(folder.files().join("output")).unwrap();
        fs::write(folder.files().join("state"), "step=1\n").unwrap();
        let files = folders.finish(folder).unwrap();
        assert_eq!(files.state, vec![("step".into(), "1".into())]);
        assert!(files.outputs.is_empty());
    }

    /// Everything a guest can do to its folder, undone before the folder
    /// is reused, without touching what its links point to.
    #[test]
    fn a_reused_folder_is_as_new_whatever_the_step_did() {
        let outside = tempfile::tempdir().unwrap();
        let kept = outside.path().join("kept");
        fs::write(&kept, "host data").unwrap();
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        let root = folder.root.path().to_owned();
        let (tmp, files) = (folder.scratch(), folder.files());
        fs::create_dir_all(tmp.join("a/b")).unwrap();
        fs::write(tmp.join("a/b/deep"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.join("link-to-dir")).unwrap();
        fs::write(files.join("output"), "a=1\n").unwrap();
        fs::remove_file(files.join("env")).unwrap();
        fs::create_dir(files.join("env")).unwrap();
        fs::remove_file(files.join("state")).unwrap();
        fs::hard_link(&kept, files.join("state")).unwrap();
        fs::remove_file(files.join("summary")).unwrap();
        std::os::unix::fs::symlink(&kept, files.join("summary")).unwrap();
        fs::write(files.join("extra"), "left behind").unwrap();
        let error = folders.finish(folder).unwrap_err();
        assert!(error.contains("GANTRY_ENV"), "{error}");

        let again = folders.take().unwrap();
        assert_eq!(again.root.path(), root, "the folder is reused");
        assert_eq!(fs::read_dir(again.scratch()).unwrap().count(), 0);
        let mut names: Vec<_> = fs::read_dir(again.files())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["env", "output", "state", "summary"]);
        for name in names {
            let metadata = fs::symlink_metadata(again.files().join(&name)).unwrap();
            assert!(metadata.is_file() && metadata.len() == 0, "{name}");
        }
        assert_eq!(fs::read_to_string(&kept).unwrap(), "host data");
        assert!(outside.path().is_dir());
        assert_eq!(folders.finish(again).unwrap(), StepFiles::default());
    }

    #[test]
    fn a_folder_that_cannot_be_emptied_is_not_reused() {
        let folders = StepFolders::default();
        let folder = folders.take().unwrap();
        let root = folder.root.path().to_owned();
        fs::remove_dir(folder.scratch()).unwrap();
        assert_eq!(folders.finish(folder).unwrap(), StepFiles::default());
        assert!(!root.exists(), "deleted instead");
        let fresh = folders.take().unwrap();
        assert_ne!(fresh.root.path(), root);
        assert!(fresh.scratch().is_dir());
    }
}
