//! Careful file access: durable writes, and opening paths that a step may
//! have tampered with.
//!
//! Writes go through a temporary file, fsync, rename and an fsync of the
//! folder. Anything gantry stores (the lock file, the artifact index,
//! compiled modules, run summaries) goes through here, so a crash leaves
//! either the old file or the new one, never a torn one. A run's summary is
//! only as durable as its journal: fsynced when the run has rollback hooks.
//!
//! Reads and folder opens never follow a link the host did not create:
//! [`open_dir_beneath`] resolves a path below a trusted folder refusing
//! every symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`
//! where the kernel has it, a component-by-component `O_NOFOLLOW` walk
//! otherwise), and [`open_regular`] opens a file only if it is a regular
//! file, without blocking on a FIFO or a device.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

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

/// Reads the regular file `path` (links followed) whole unless it holds
/// more than `limit` bytes: then `None`. A FIFO or a device is refused
/// without blocking on it; the cap holds while reading, since a file may
/// grow.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    read_at_most(file, limit)
}

/// Reads at most `limit` bytes of a regular file without following a
/// symlink in its last component. Returns `None` if the file is larger.
///
/// Used for files a guest could have tampered with: a guest may plant a
/// symlink where the host expects a file, and the host must not follow it.
pub fn read_regular_file_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    read_at_most(open_regular(path, false)?, limit)
}

/// Reads a whole regular file without following a symlink in its last
/// component.
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;

    let mut file = open_regular(path, false)?;
    let mut contents = Vec::new();
    file.read_to_end(&mut contents)?;
    Ok(contents)
}

/// Opens `path` for reading (and appending, with `append`) only if it is a
/// regular file: a symlink in its last component is not followed, and a
/// FIFO or a device is refused without blocking on it.
pub fn open_regular(path: &Path, append: bool) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .append(append)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "not a regular file (a FIFO, a device, a socket or a folder)",
    )
}

/// Reads a file of the project: `path` must resolve (links followed) to a
/// regular file inside `root`, the manifest's folder, and hold at most
/// `limit` bytes (`None` if it holds more). A link leaving the folder, a
/// FIFO or a device is refused without being opened for reading, so its
/// content is never read, let alone printed in an error.
pub fn read_project_file(root: &Path, path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let real = path.canonicalize()?;
    let real_root = root.canonicalize()?;
    if !real.starts_with(&real_root) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "it is a link to `{}`, outside the manifest's folder `{}`",
                real.display(),
                real_root.display()
            ),
        ));
    }
    read_capped(&real, limit)
}

/// Opens the folder `relative` below `base` without following any symlink
/// on the way (`base` itself is trusted and may be reached through links).
/// `..` components are refused.
///
/// The open folder is what a caller then works in: a link planted after
/// this check cannot redirect it.
pub fn open_dir_beneath(base: &Path, relative: &Path) -> io::Result<File> {
    let base = open_dir(base)?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("`{}` must stay below its folder", relative.display()),
                ));
            }
        }
    }
    if parts.is_empty() {
        return Ok(base);
    }
    let joined: PathBuf = parts.iter().collect();
    match openat2_no_symlinks(&base, &joined) {
        Some(result) => result,
        None => {
            let mut folder = base;
            for part in parts {
                folder = openat_dir_nofollow(&folder, Path::new(part))?;
            }
            Ok(folder)
        }
    }
}

/// Opens a folder, following links: for paths gantry trusts.
pub fn open_dir(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// A path naming the open `file` itself: opening it reaches the same file
/// even if its old path has been replaced since.
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The path an open file has now, as the kernel knows it.
pub fn real_path(file: &File) -> io::Result<PathBuf> {
    fs::read_link(fd_path(file))
}

fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
}

fn refused_link(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "`{}` is or goes through a symbolic link, which gantry does not follow here (a step may have planted it); grant the folder it points to by its own path",
            path.display()
        ),
    )
}

/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or `None` where the
/// kernel does not have it (before Linux 5.6, or filtered by seccomp).
#[cfg(target_os = "linux")]
fn openat2_no_symlinks(base: &File, relative: &Path) -> Option<io::Result<File>> {
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    const RESOLVE_BENEATH: u64 = 0x08;
    let name = match c_path(relative) {
        Ok(name) => name,
        Err(error) => return Some(Err(error)),
    };
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: the arguments are a valid folder descriptor, a NUL-terminated
    // path and an `open_how` of the size passed, all alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor to us.
        return Some(Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) })));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) | Some(libc::EPERM) => None,
        Some(libc::ELOOP) | Some(libc::EXDEV) => Some(Err(refused_link(relative))),
        _ => Some(Err(error)),
    }
}

#[cfg(not(target_os = "linux"))]
fn openat2_no_symlinks(_: &File, _: &Path) -> Option<io::Result<File>> {
    None
}

/// Opens the folder `name` (one component) in `parent`, refusing a link.
fn openat_dir_nofollow(parent: &File, name: &Path) -> io::Result<File> {
    let c_name = c_path(name)?;
    // SAFETY: a valid folder descriptor and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            c_name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let error = io::Error::last_os_error();
        // O_NOFOLLOW on a link gives ELOOP (or ENOTDIR with O_DIRECTORY).
        return Err(match error.raw_os_error() {
            Some(libc::ELOOP) => refused_link(name),
            Some(libc::ENOTDIR)
                if fs::symlink_metadata(real_path(parent)?.join(name))
                    .is_ok_and(|m| m.file_type().is_symlink()) =>
            {
                refused_link(name)
            }
            _ => error,
        });
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
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

/// The bytes of the files under `path`, following no link; what cannot be
/// read counts as nothing.
pub fn disk_usage(path: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![path.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if let Ok(read) = fs::read_dir(&path) {
                pending.extend(read.flatten().map(|entry| entry.path()));
            }
        } else {
            total += metadata.len();
        }
    }
    total
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
    fn a_folder_is_opened_beneath_its_base_only_without_links() {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir_all(base.path().join("a/b")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), base.path().join("a/link")).unwrap();
        std::os::unix::fs::symlink("b", base.path().join("a/inner")).unwrap();
        let opened = open_dir_beneath(base.path(), Path::new("a/b")).unwrap();
        assert_eq!(
            real_path(&opened).unwrap(),
            base.path().canonicalize().unwrap().join("a/b")
        );
        for refused in ["a/link", "a/inner", "a/link/x"] {
            let error = open_dir_beneath(base.path(), Path::new(refused)).unwrap_err();
            assert!(
                error.to_string().contains("symbolic link"),
                "{refused}: {error}"
            );
        }
        assert!(open_dir_beneath(base.path(), Path::new("a/../..")).is_err());
        // The walk used where the kernel lacks `openat2` refuses the same.
        let a = open_dir(&base.path().join("a")).unwrap();
        assert!(openat_dir_nofollow(&a, Path::new("b")).is_ok());
        for refused in ["link", "inner"] {
            let error = openat_dir_nofollow(&a, Path::new(refused)).unwrap_err();
            assert!(
                error.to_string().contains("symbolic link"),
                "{refused}: {error}"
            );
        }
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
