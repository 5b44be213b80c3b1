//! [`Store`]: blobs by sha256 under `<state>/store/`, and the two ways in
//! and out of it — [`Store::put_tree`] and [`Store::materialize`].
//!
//! On disk:
//!
//! ```text
//! <state>/store/blobs/<aa>/<sha256 hex>   one read-only file per content
//! <state>/store/tmp/                      blobs being written
//! ```
//!
//! A blob is written durably: its bytes go to a temporary file in
//! `store/tmp/` (the digest is only known once they have all been read),
//! which is fsynced and renamed to its name, and the blob's folder is
//! fsynced before [`Store::put_tree`] returns — so a tree the engine records
//! afterwards never names a blob a crash could lose. A blob that already
//! exists is not rewritten, unless its size shows it is damaged.
//!
//! An upload folder was written by a guest, so nothing in it is followed:
//! entries are examined with `lstat`, files are opened with `O_NOFOLLOW`
//! and checked to be the regular file that was examined, and a symlink is
//! stored as its target text. The folder must not change while it is
//! stored (the step that wrote it has ended).

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::tree::{Entry, EntryKind, Tree, check_links};
use super::{ArtifactError, hex, is_sha256_hex};
use crate::fsutil::sync_dir;

/// The folder of blobs in the store.
const BLOBS: &str = "blobs";

/// How much one upload may hold, so a hostile guest cannot make the host
/// walk or list without end.
#[derive(Debug, Clone)]
pub struct PutLimits {
    /// The most entries (files, folders and links together).
    pub max_entries: usize,
    /// The most folders an entry may be nested in.
    pub max_depth: usize,
    /// The most bytes its files may hold together.
    pub max_bytes: u64,
}

/// The default of [`PutLimits::max_bytes`]: 2 GiB.
pub const DEFAULT_ARTIFACT_BYTES: u64 = 2 << 30;

impl Default for PutLimits {
    fn default() -> Self {
        PutLimits {
            max_entries: 200_000,
            max_depth: 128,
            max_bytes: DEFAULT_ARTIFACT_BYTES,
        }
    }
}

/// The artifact store of one state folder. Cheap to clone; safe to use
/// from several threads at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An upload entry found by the walk, before its content is stored.
struct Found {
    relative: String,
    absolute: PathBuf,
    metadata: Metadata,
    kind: EntryKind,
}

impl Store {
    /// Opens the store of `state_dir`, creating `store/blobs` and
    /// `store/tmp` (private to the user) if needed. For the engine, which
    /// writes; readers that must not create anything use
    /// [`Store::existing`].
    pub fn open(state_dir: &Path) -> io::Result<Store> {
        let store = Store::existing(state_dir);
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(store.blobs_dir())?;
        builder.create(store.tmp_dir())?;
        Ok(store)
    }

    /// The store of `state_dir`, without touching the disk.
    pub fn existing(state_dir: &Path) -> Store {
        Store {
            root: state_dir.join("store"),
        }
    }

    /// `<state>/store`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join(BLOBS)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob of `sha256` (64 lowercase hex) lives.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(&sha256[..2]).join(sha256)
    }

    /// Stores the folder `dir` with the default [`PutLimits`].
    pub fn put_tree(&self, dir: &Path) -> Result<Tree, ArtifactError> {
        self.put_tree_with(dir, &PutLimits::default())
    }

    /// Stores every regular file under `dir` as a blob and returns the tree
    /// describing it. Nothing is followed: a symlink is recorded as its
    /// target, and refused if that target is absolute or leads outside
    /// `dir`; FIFOs, sockets and devices are refused; so are uploads past
    /// `limits`. Each error names the entry at fault. The whole folder is
    /// listed and checked before any content is copied.
    pub fn put_tree_with(&self, dir: &Path, limits: &PutLimits) -> Result<Tree, ArtifactError> {
        match fs::symlink_metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(ArtifactError::NotAFolder { path: dir.into() }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(ArtifactError::NotAFolder { path: dir.into() });
            }
            Err(error) => return Err(ArtifactError::io("read", dir)(error)),
        }
        let found = walk(dir, limits)?;
        // Measured from the walk, before a byte is copied.
        let bytes: u64 = found
            .iter()
            .filter(|found| matches!(found.kind, EntryKind::File { .. }))
            .map(|found| found.metadata.len())
            .sum();
        if bytes > limits.max_bytes {
            return Err(ArtifactError::InvalidTree(format!(
                "the upload holds {} MiB, more than the limit of {} MiB for one artifact; raise it with `gantry run --artifact-limit MB`",
                bytes.div_ceil(1 << 20),
                limits.max_bytes >> 20
            )));
        }
        let mut entries: Vec<Entry> = found
            .iter()
            .map(|found| Entry {
                path: found.relative.clone(),
                kind: found.kind.clone(),
            })
            .collect();
        check_links(&entries)?;

        fs::create_dir_all(self.tmp_dir()).map_err(ArtifactError::io("create", self.tmp_dir()))?;
        let mut touched = BTreeSet::new();
        for (found, entry) in found.iter().zip(entries.iter_mut()) {
            if let EntryKind::File { sha256, size, .. } = &mut entry.kind {
                let (digest, length) = self.put_file(found, &mut touched)?;
                *sha256 = digest;
                *size = length;
            }
        }
        for folder in touched {
            sync_dir(&folder).map_err(ArtifactError::io("sync", &folder))?;
        }
        Ok(Tree::new(entries))
    }

    /// Copies one upload file into the store, hashing as it reads, and
    /// returns its sha256 and size. Folders whose entries changed are added
    /// to `touched`, to be fsynced once at the end.
    fn put_file(
        &self,
        found: &Found,
        touched: &mut BTreeSet<PathBuf>,
    ) -> Result<(String, u64), ArtifactError> {
        let path = &found.absolute;
        let mut source = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(ArtifactError::io("read", path))?;
        let opened = source.metadata().map_err(ArtifactError::io("read", path))?;
        if !opened.is_file()
            || opened.dev() != found.metadata.dev()
            || opened.ino() != found.metadata.ino()
        {
            return Err(ArtifactError::InvalidTree(format!(
                "the upload entry `{}` changed while it was being stored",
                found.relative
            )));
        }
        let tmp_dir = self.tmp_dir();
        let mut temporary = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&tmp_dir)
            .map_err(ArtifactError::io("create a file in", &tmp_dir))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ArtifactError::io("read", path)(error)),
            };
            hasher.update(&buffer[..read]);
            temporary
                .write_all(&buffer[..read])
                .map_err(ArtifactError::io("write", temporary.path()))?;
            size += read as u64;
        }
        let sha256 = hex(&hasher.finalize());
        let blob = self.blob_path(&sha256);
        // A blob already there is reused only if it still holds these
        // bytes: one damaged in place (same size, other content) is
        // replaced, not trusted for ever.
        if fs::symlink_metadata(&blob)
            .is_ok_and(|existing| existing.is_file() && existing.len() == size)
            && digest_of(&blob).is_ok_and(|digest| digest == sha256)
        {
            return Ok((sha256, size));
        }
        let file = temporary.as_file();
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .and_then(|()| file.sync_all())
            .map_err(ArtifactError::io("write", temporary.path()))?;
        let folder = blob.parent().expect("a blob sits in a folder").to_owned();
        if !folder.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&folder)
                .map_err(ArtifactError::io("create", &folder))?;
            touched.insert(self.blobs_dir());
        }
        temporary
            .persist(&blob)
            .map_err(|error| ArtifactError::io("write", &blob)(error.error))?;
        touched.insert(folder);
        Ok((sha256, size))
    }

    /// Recreates `tree` in `to`, which must be an empty folder or not
    /// exist. Every file is copied from its blob and checked against its
    /// sha256 as it is copied; a missing or damaged blob is an error naming
    /// the file. Files get their recorded mode; folders get theirs plus
    /// full access for the owner (so the copy can always be removed);
    /// links are recreated as links. The tree is validated first.
    ///
    /// On error, `to` is left as it was found: removed if this call
    /// created it, emptied otherwise.
    pub fn materialize(&self, tree: &Tree, to: &Path) -> Result<(), ArtifactError> {
        tree.validate()?;
        let created = match fs::symlink_metadata(to) {
            Ok(metadata) if metadata.is_dir() => {
                let mut read = fs::read_dir(to).map_err(ArtifactError::io("read", to))?;
                if read.next().is_some() {
                    return Err(ArtifactError::DestinationNotEmpty { path: to.into() });
                }
                false
            }
            Ok(_) => return Err(ArtifactError::DestinationNotEmpty { path: to.into() }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(to).map_err(ArtifactError::io("create", to))?;
                true
            }
            Err(error) => return Err(ArtifactError::io("read", to)(error)),
        };
        let result = self.fill(tree, to);
        if result.is_err() {
            if created {
                let _ = fs::remove_dir_all(to);
            } else if let Ok(read) = fs::read_dir(to) {
                for entry in read.flatten() {
                    let path = entry.path();
                    let _ = match entry.file_type() {
                        Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                        _ => fs::remove_file(&path),
                    };
                }
            }
        }
        result
    }

    fn fill(&self, tree: &Tree, to: &Path) -> Result<(), ArtifactError> {
        let mut folders = Vec::new();
        for entry in &tree.entries {
            let destination = to.join(&entry.path);
            match &entry.kind {
                EntryKind::Dir { mode } => {
                    DirBuilder::new()
                        .mode(0o700)
                        .create(&destination)
                        .map_err(ArtifactError::io("create", &destination))?;
                    folders.push((destination, *mode));
                }
                EntryKind::File { sha256, mode, .. } => {
                    self.copy_blob(&entry.path, sha256, *mode, &destination)?;
                }
                EntryKind::Symlink { target } => {
                    std::os::unix::fs::symlink(target, &destination)
                        .map_err(ArtifactError::io("create the symlink", &destination))?;
                }
            }
        }
        // Deepest first, so a read-only folder is closed after its content
        // is in place.
        for (folder, mode) in folders.into_iter().rev() {
            fs::set_permissions(&folder, fs::Permissions::from_mode(mode & 0o777 | 0o700))
                .map_err(ArtifactError::io("set the mode of", &folder))?;
        }
        Ok(())
    }

    /// Copies the blob `sha256` to `destination` (a new file), checking it.
    fn copy_blob(
        &self,
        relative: &str,
        sha256: &str,
        mode: u32,
        destination: &Path,
    ) -> Result<(), ArtifactError> {
        let blob = self.blob_path(sha256);
        let mut source = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&blob)
        {
            Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => file,
            Ok(_) => {
                return Err(ArtifactError::Corrupt {
                    path: relative.into(),
                    blob,
                    expected: sha256.into(),
                    found: "something that is not a regular file".into(),
                });
            }
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
                ) =>
            {
                return Err(ArtifactError::MissingBlob {
                    path: relative.into(),
                    blob,
                });
            }
            Err(error) => return Err(ArtifactError::io("read", &blob)(error)),
        };
        let mut target = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(destination)
            .map_err(ArtifactError::io("create", destination))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match source.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ArtifactError::io("read", &blob)(error)),
            };
            hasher.update(&buffer[..read]);
            target
                .write_all(&buffer[..read])
                .map_err(ArtifactError::io("write", destination))?;
        }
        let found = hex(&hasher.finalize());
        if found != sha256 {
            return Err(ArtifactError::Corrupt {
                path: relative.into(),
                blob,
                expected: sha256.into(),
                found,
            });
        }
        target
            .set_permissions(fs::Permissions::from_mode(mode & 0o777))
            .map_err(ArtifactError::io("set the mode of", destination))
    }

    /// Every blob in the store: its sha256, path and size. Files that are
    /// not named like blobs are left out (and left alone).
    pub(crate) fn list_blobs(&self) -> io::Result<Vec<(String, PathBuf, u64)>> {
        let mut blobs = Vec::new();
        // Reached without following a link, and listed through the folder
        // opened so (a shard that is a link is skipped below).
        let folder = match crate::fsutil::open_dir_beneath(&self.root, Path::new(BLOBS)) {
            Ok(folder) => folder,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(blobs),
            Err(error) => return Err(error),
        };
        let read = fs::read_dir(crate::fsutil::fd_path(&folder))?;
        for shard in read {
            let shard = shard?;
            let Some(prefix) = shard.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if prefix.len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            for blob in fs::read_dir(shard.path())? {
                let blob = blob?;
                let Some(name) = blob.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !is_sha256_hex(&name) || !name.starts_with(&prefix) {
                    continue;
                }
                let metadata = blob.metadata()?;
                let path = self.blobs_dir().join(&prefix).join(&name);
                blobs.push((name, path, metadata.len()));
            }
        }
        blobs.sort();
        Ok(blobs)
    }
}

/// The sha256 of the regular file `path`, read without following a link.
fn digest_of(path: &Path) -> io::Result<String> {
    let mut file = crate::fsutil::open_regular(path, false)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// Lists `root` without following anything, depth first, refusing what an
/// artifact may not hold. Files get a placeholder digest, filled in when
/// their content is stored.
fn walk(root: &Path, limits: &PutLimits) -> Result<Vec<Found>, ArtifactError> {
    let mut found = Vec::new();
    // (folder, its relative path, how many folders its entries sit in)
    let mut pending: Vec<(PathBuf, String, usize)> = vec![(root.to_owned(), String::new(), 0)];
    while let Some((folder, prefix, depth)) = pending.pop() {
        let read = fs::read_dir(&folder).map_err(ArtifactError::io("read", &folder))?;
        for entry in read {
            let entry = entry.map_err(ArtifactError::io("read", &folder))?;
            let name = entry.file_name();
            let relative = match name.to_str() {
                Some(name) if prefix.is_empty() => name.to_owned(),
                Some(name) => format!("{prefix}/{name}"),
                None if prefix.is_empty() => {
                    return Err(ArtifactError::NotUtf8 {
                        path: name.to_string_lossy().into_owned(),
                    });
                }
                None => {
                    return Err(ArtifactError::NotUtf8 {
                        path: format!("{prefix}/{}", name.to_string_lossy()),
                    });
                }
            };
            if depth > limits.max_depth {
                return Err(ArtifactError::TooDeep {
                    path: relative,
                    limit: limits.max_depth,
                });
            }
            if found.len() >= limits.max_entries {
                return Err(ArtifactError::TooManyEntries {
                    path: root.into(),
                    limit: limits.max_entries,
                });
            }
            let absolute = entry.path();
            // `DirEntry::metadata` does not follow a symlink.
            let metadata = entry
                .metadata()
                .map_err(ArtifactError::io("read", &absolute))?;
            let file_type = metadata.file_type();
            let kind = if file_type.is_symlink() {
                let target = fs::read_link(&absolute)
                    .map_err(ArtifactError::io("read the symlink", &absolute))?;
                let Some(target) = target.to_str() else {
                    return Err(ArtifactError::NotUtf8 { path: relative });
                };
                EntryKind::Symlink {
                    target: target.to_owned(),
                }
            } else if file_type.is_dir() {
                pending.push((absolute.clone(), relative.clone(), depth + 1));
                EntryKind::Dir {
                    mode: metadata.mode() & 0o777,
                }
            } else if file_type.is_file() {
                EntryKind::File {
                    sha256: String::new(),
                    size: metadata.len(),
                    mode: metadata.mode() & 0o777,
                }
            } else {
                let kind = if file_type.is_fifo() {
                    "FIFO"
                } else if file_type.is_socket() {
                    "socket"
                } else if file_type.is_block_device() || file_type.is_char_device() {
                    "device"
                } else {
                    "special file"
                };
                return Err(ArtifactError::SpecialFile {
                    path: relative,
                    kind,
                });
            };
            found.push(Found {
                relative,
                absolute,
                metadata,
                kind,
            });
        }
    }
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(found)
}
