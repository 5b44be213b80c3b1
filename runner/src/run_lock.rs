//! One run at a time per state folder.
//!
//! The lock is an advisory `flock` on the state folder itself (its open
//! descriptor), so the kernel releases it when the process holding it dies,
//! however it dies: there is never a stale lock to clean up. Deleting a
//! file cannot release it (a lock on `run.lock` could be bypassed by
//! removing that file), and after taking it the holder checks that the
//! path still names the folder it locked, so a folder replaced meanwhile
//! is locked anew. The holder writes its pid into `run.lock`, only so that
//! a waiting run can say who it is waiting for. A state folder removed
//! under a live run is noticed by its journal (see `journal`).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The holder's pid, left-aligned and padded with spaces: wide enough for
/// any Linux pid (at most 4,194,304).
const PID_RECORD_WIDTH: usize = 10;

/// A held lock; dropping it (or dying) releases it.
#[derive(Debug)]
pub struct RunLock {
    _folder: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gantry run (pid {holder}) is using the state folder `{}`; wait for it with `--wait`, or give this run its own `--state-dir`",
        folder.display()
    )]
    Busy { folder: PathBuf, holder: String },
    #[error("cannot lock `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RunLock {
    /// Takes the lock of `state_dir`, creating the folder if needed. With
    /// `wait`, blocks until the current holder finishes; without, fails at
    /// once when it is held.
    pub fn acquire(state_dir: &Path, wait: bool) -> Result<RunLock, LockError> {
        let path = state_dir.join("run.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let folder = lock_folder(state_dir, wait).map_err(io)?.ok_or_else(|| {
            let mut holder = String::new();
            if let Ok(mut file) = File::open(&path) {
                let _ = file.read_to_string(&mut holder);
            }
            let holder = holder.trim();
            LockError::Busy {
                folder: state_dir.to_owned(),
                holder: if holder.is_empty() {
                    "unknown".into()
                } else {
                    holder.to_owned()
                },
            }
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // Overwritten in place at a fixed width: truncating the file first
        // would free and reallocate its block on every run, which on ext4
        // costs more than the rest of taking the lock.
        let record = format!("{:<PID_RECORD_WIDTH$}", std::process::id());
        file.write_all_at(record.as_bytes(), 0).map_err(io)?;
        if file.metadata().map_err(io)?.len() != record.len() as u64 {
            file.set_len(record.len() as u64).map_err(io)?;
        }
        Ok(RunLock {
            _folder: folder,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `state_dir` if needed and locks it; `None` when another process
/// holds it and `wait` is false. Locks again if the path no longer names
/// the folder locked (it was removed or replaced meanwhile).
fn lock_folder(state_dir: &Path, wait: bool) -> std::io::Result<Option<File>> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    loop {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)?;
        let folder = crate::fsutil::open_dir(state_dir)?;
        // std's file locks are `flock` on Unix: released by the kernel
        // when the holder dies, and fine on a folder's descriptor.
        match folder.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if wait => folder.lock()?,
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
        }
        let locked = folder.metadata()?;
        match std::fs::metadata(state_dir) {
            Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                return Ok(Some(folder));
            }
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), false).unwrap();
        let error = RunLock::acquire(dir.path(), false).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("--wait"));
        drop(first);
        RunLock::acquire(dir.path(), false).unwrap();
    }

    #[test]
    fn removing_the_pid_file_does_not_release_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RunLock::acquire(dir.path(), false).unwrap();
        std::fs::remove_file(dir.path().join("run.lock")).unwrap();
        let error = RunLock::acquire(dir.path(), false).unwrap_err();
        assert!(matches!(error, LockError::Busy { .. }), "{error}");
    }

    #[test]
    fn waiting_takes_the_lock_once_it_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path(), false).unwrap();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || RunLock::acquire(&path, true).map(|_| ()));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!waiter.is_finished());
        drop(first);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn the_file_holds_exactly_the_holders_pid_whatever_it_held_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        for before in ["", "7", "a much longer leftover than any pid record"] {
            std::fs::write(&path, before).unwrap();
            let lock = RunLock::acquire(dir.path(), false).unwrap();
            let held = std::fs::read_to_string(&path).unwrap();
            assert_eq!(held.trim(), std::process::id().to_string(), "{before:?}");
            assert_eq!(held.len(), PID_RECORD_WIDTH, "{before:?}");
            drop(lock);
        }
    }
}
