//! The content-addressed artifact store: what a step leaves in
//! `/artifacts/<name>` is kept by content, listed per run, and recreated
//! (verified) for the steps and people that ask for it.
//!
//! It owns three things under the state folder:
//!
//! - [`store`]: `store/blobs/<aa>/<sha256 hex>`, one read-only file per
//!   distinct content, named by its sha256 (`<aa>` is the first two hex
//!   digits). [`Store::put_tree`] walks an upload folder without ever
//!   following a symlink on the host and stores its files;
//!   [`Store::materialize`] recreates a tree, checking every byte against its
//!   digest while it copies.
//! - [`tree`]: a [`Tree`], the description of one upload — every entry's
//!   relative path and kind (file with sha256, size and mode; folder with
//!   mode; symlink with its target), sorted by path, with the total size and
//!   a digest of the whole listing.
//! - [`index`]: `runs/<run-id>/artifacts.json`, the run's uploads. The engine
//!   keeps one [`RunArtifacts`] per run and records each upload through it,
//!   from any thread; readers load an [`ArtifactIndex`].
//!
//! [`mounts`] stages a step's artifacts as host folders ([`ArtifactMounts`]):
//! its downloads recreated from the store, its uploads empty folders
//! collected into the store once it succeeds.
//!
//! [`gc`] removes old runs and the blobs no remaining run references. It
//! takes the [`RunLock`](crate::run_lock::RunLock) as a parameter, so it
//! cannot race a running pipeline that is writing blobs before recording
//! them.
//!
//! What this module trusts: nothing in an upload folder (a guest wrote it),
//! and the state folder no more than the person who owns it — a tree read
//! back from `artifacts.json` is validated again before it is materialized.

pub mod gc;
pub mod index;
pub mod mounts;
pub mod store;
pub mod tree;

use std::io;
use std::path::PathBuf;

pub use gc::{GcReport, collect_garbage};
pub use index::{ArtifactIndex, RunArtifacts, Upload};
pub use mounts::ArtifactMounts;
pub use store::{PutLimits, Store};
pub use tree::{Entry, EntryKind, Tree};

/// Why an artifact could not be stored, listed or recreated.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file-system operation failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The folder to upload is missing or not a folder.
    #[error("the upload folder `{}` is not a folder (a symlink or special file is refused)", path.display())]
    NotAFolder { path: PathBuf },
    /// A symlink in an upload would point outside the artifact.
    #[error(
        "the artifact entry `{path}` is a symlink to `{target}`, which {reason}; an artifact may only hold links to its own entries (use a relative target)"
    )]
    LinkEscapes {
        path: String,
        target: String,
        reason: &'static str,
    },
    /// A FIFO, socket or device in an upload.
    #[error(
        "the artifact entry `{path}` is a {kind}; an artifact holds only files, folders and symlinks"
    )]
    SpecialFile { path: String, kind: &'static str },
    /// A name that is not UTF-8 (paths are stored as text).
    #[error("the artifact entry `{path}` has a name that is not UTF-8; rename it")]
    NotUtf8 { path: String },
    /// The upload has more entries than the limit.
    #[error("the upload folder `{}` holds more than {limit} entries; gantry stores at most {limit} per artifact", path.display())]
    TooManyEntries { path: PathBuf, limit: usize },
    /// The upload nests folders deeper than the limit.
    #[error(
        "the artifact entry `{path}` is nested more than {limit} folders deep; gantry stores at most {limit} levels"
    )]
    TooDeep { path: String, limit: usize },
    /// A blob's content does not match the digest it is stored under.
    #[error(
        "the artifact store is corrupt: the artifact file `{path}` should have sha256 {expected}, but blob `{}` holds {found}; re-run the pipeline that produced it",
        blob.display()
    )]
    Corrupt {
        path: String,
        blob: PathBuf,
        expected: String,
        found: String,
    },
    /// A blob the tree needs is not in the store.
    #[error(
        "the artifact store is corrupt: blob `{}` of the artifact file `{path}` is missing; re-run the pipeline that produced it",
        blob.display()
    )]
    MissingBlob { path: String, blob: PathBuf },
    /// A tree (read back from an index) that does not describe a sane
    /// folder.
    #[error("invalid artifact tree: {0}")]
    InvalidTree(String),
    /// Extraction into a folder that already holds something.
    #[error("`{}` is not empty; extract into an empty or new folder", path.display())]
    DestinationNotEmpty { path: PathBuf },
    /// An artifact name gantry cannot use as a folder name.
    #[error("invalid artifact name `{name}`: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A run's `artifacts.json` that cannot be read.
    #[error("cannot read the artifact index `{}`: {reason}", path.display())]
    Index { path: PathBuf, reason: String },
}

impl ArtifactError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ArtifactError::Io {
            action,
            path,
            source,
        }
    }
}

/// Checks that `name` can name an artifact: it becomes the folder
/// `/artifacts/<name>`, so it is 1 to 128 characters of `[A-Za-z0-9._-]`,
/// and neither `.` nor `..`.
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 128 {
        Some("it is longer than 128 characters")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not folder names")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("use only letters, digits, `.`, `_` and `-`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ArtifactError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) use crate::digest::hex;

/// Whether `text` is 64 lowercase hex digits, the form of a sha256.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
