//! Temporary folders a killed runner left behind, and sweeping them.
//!
//! Each step's private folder (`gantry-step-…`), artifact mounts
//! (`gantry-artifacts-…`) and each run's `runner.temp` folder
//! (`gantry-runner-temp-…`) live in the temporary folder and are removed when
//! the runner is done with them; a runner killed with SIGKILL never is.
//! Their names carry the pid of the runner that made them, so a later
//! `gantry gc` can remove those whose runner is gone. A step folder whose
//! `GANTRY_STATE` file holds something is kept: it is what `gantry resume`
//! gives that step's rollback hook, and resume removes it once read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The name prefix of a step's private folder.
pub const STEP_FOLDER: &str = "gantry-step-";
/// The name prefix of a step's artifact mounts.
pub const ARTIFACTS_FOLDER: &str = "gantry-artifacts-";
/// The name prefix of a run's `runner.temp` folder.
pub const RUNNER_TEMP_FOLDER: &str = "gantry-runner-temp-";

/// The prefix for a new temporary folder of `kind` made by this process:
/// `gantry-step-<pid>-`.
pub fn owned_prefix(kind: &str) -> String {
    format!("{kind}{}-", std::process::id())
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub folders: usize,
    pub bytes: u64,
    /// Step folders of dead runners kept for `gantry resume`.
    pub kept_for_resume: usize,
}

/// Removes (or, with `dry_run`, counts) the folders in `temp` whose runner
/// is no longer alive.
pub fn sweep(temp: &Path, dry_run: bool) -> io::Result<Swept> {
    let mut swept = Swept::default();
    for entry in fs::read_dir(temp)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((kind, pid)) = owner(name) else {
            continue;
        };
        // Only folders, only this user's, never one a live runner uses.
        let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !metadata.is_dir() || !owned_by_us(&metadata) || alive(pid) {
            continue;
        }
        let path = entry.path();
        if kind == STEP_FOLDER && holds_state(&path) {
            swept.kept_for_resume += 1;
            continue;
        }
        swept.bytes += crate::fsutil::disk_usage(&path);
        if !dry_run {
            fs::remove_dir_all(&path)?;
        }
        swept.folders += 1;
    }
    Ok(swept)
}

/// Removes the step folder holding `state_file` once `gantry resume` has
/// read it, if the runner that made it is gone.
pub fn remove_read_step_folder(state_file: &Path) {
    let Some(folder) = state_file.parent().and_then(Path::parent) else {
        return;
    };
    let dead = folder
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(owner)
        .is_some_and(|(kind, pid)| kind == STEP_FOLDER && !alive(pid));
    if dead && folder.parent() == Some(std::env::temp_dir().as_path()) {
        let _ = fs::remove_dir_all(folder);
    }
}

/// The kind and the owner's pid of a folder named by [`owned_prefix`].
fn owner(name: &str) -> Option<(&'static str, i32)> {
    let (kind, rest) = [STEP_FOLDER, ARTIFACTS_FOLDER, RUNNER_TEMP_FOLDER]
        .into_iter()
        .find_map(|kind| name.strip_prefix(kind).map(|rest| (kind, rest)))?;
    let (pid, _) = rest.split_once('-')?;
    Some((kind, pid.parse().ok().filter(|pid| *pid > 0)?))
}

fn owned_by_us(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid cannot fail.
    metadata.uid() == unsafe { libc::getuid() }
}

/// Whether process `pid` exists (one we may not signal exists too).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn holds_state(folder: &Path) -> bool {
    let state: PathBuf = folder.join("files").join("state");
    fs::symlink_metadata(state).is_ok_and(|m| m.is_file() && m.len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_folder_names() {
        assert_eq!(owner("gantry-step-123-abc"), Some((STEP_FOLDER, 123)));
        assert_eq!(owner("gantry-artifacts-9-x1"), Some((ARTIFACTS_FOLDER, 9)));
        assert_eq!(
            owner("gantry-runner-temp-77-q"),
            Some((RUNNER_TEMP_FOLDER, 77))
        );
        assert_eq!(owner("gantry-step-abc"), None, "older names have no owner");
        assert_eq!(owner("gantry-step-0-a"), None);
        assert_eq!(owner("other-123-a"), None);
        assert!(owned_prefix(STEP_FOLDER).starts_with("gantry-step-"));
        assert!(alive(std::process::id() as i32));
    }
}
