//! Durable file writes: temporary file, fsync, rename, fsync of the folder.
//!
//! Anything gantry stores (the lock file, the artifact index, compiled
//! modules, run summaries) goes through here, so a crash leaves either the
//! old file or the new one, never a torn one. A run's summary is only as
//! durable as its journal: fsynced when the run has rollback hooks.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `contents` atomically and durably.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, true)
}

/// Like [`write_atomic`] (a reader sees the old contents or the new, never
/// a mix), without waiting for the disk: a crash of the machine may lose
/// the new contents. For records that are only as durable as the run's
/// journal.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".gantry-tmp-")
        .tempfile_in(folder)?;
    temporary.write_all(contents)?;
    if durable {
        temporary.as_file().sync_all()?;
    }
    temporary.persist(path).map_err(|e| e.error)?;
    if durable { sync_dir(folder) } else { Ok(()) }
}

/// Makes the entries of `folder` (a file created, renamed or removed in it)
/// survive a crash.
pub fn sync_dir(folder: &Path) -> io::Result<()> {
    File::open(folder)?.sync_all()
}

/// Reads `path` whole unless it holds more than `limit` bytes: then `None`.
/// The cap holds while reading, since a device or a pipe reports no length.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    read_at_most(File::open(path)?, limit)
}

/// Reads at most `limit` bytes of a regular file without following a
/// symlink in its last component. Returns `None` if the file is larger.
///
/// Used for files a guest could have tampered with: a guest may plant a
/// symlink where the host expects a file, and the host must not follow it.
pub fn read_regular_file_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;

    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    read_at_most(file, limit)
}

fn read_at_most(file: File, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;

    // Sized from the file's length, so a compiled module of a few hundred
    // KB is read in one call rather than grown from 32 bytes by doubling,
    // copying at each step. The length is only a hint: the read is capped
    // whatever it says (a device or a growing file may say anything).
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut contents = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    file.take(limit + 1).read_to_end(&mut contents)?;
    Ok((contents.len() as u64 <= limit).then_some(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsynced_write_replaces_contents_too() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("file");
        write_atomic_unsynced(&path, b"one").unwrap();
        write_atomic_unsynced(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(folder.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_replaces_contents() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("file");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let leftovers = fs::read_dir(folder.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn capped_read_refuses_symlinks_and_big_files() {
        let folder = tempfile::tempdir().unwrap();
        let target = folder.path().join("target");
        fs::write(&target, b"secret").unwrap();
        let link = folder.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_regular_file_capped(&link, 100).is_err());
        assert_eq!(
            read_regular_file_capped(&target, 100).unwrap(),
            Some(b"secret".to_vec())
        );
        assert_eq!(read_regular_file_capped(&target, 3).unwrap(), None);
        assert!(read_regular_file_capped(folder.path(), 100).is_err());
    }
}
