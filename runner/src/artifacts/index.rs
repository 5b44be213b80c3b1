//! A run's artifact index, `<state>/runs/<run-id>/artifacts.json`: every
//! upload of the run, in the order they were recorded.
//!
//! ```json
//! {
//!   "version": 1,
//!   "uploads": [
//!     {
//!       "name": "site",
//!       "job": "build",
//!       "step": "page",
//!       "tree": { "digest": "…", "size": 12, "entries": [
//!         { "path": "index.html", "kind": "file", "sha256": "…", "size": 12, "mode": 420 }
//!       ] }
//!     }
//!   ]
//! }
//! ```
//!
//! Uploading a name again does not replace the earlier upload in the file:
//! the latest one is what [`ArtifactIndex::latest`] (and so a download)
//! gives, and the earlier ones stay listed, so every blob the run ever
//! recorded stays referenced until `gantry gc` removes the run.
//!
//! The engine holds one [`RunArtifacts`] per run and records through it
//! from any thread; each record rewrites the whole file atomically, under
//! a lock, so concurrent jobs never lose each other's uploads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::tree::Tree;
use super::{ArtifactError, check_name};
use crate::fsutil::write_atomic;
use crate::runs;

/// The index file's name in a run's folder.
pub const INDEX_FILE: &str = "artifacts.json";

/// The format version this gantry writes and reads.
const VERSION: u32 = 1;

/// One recorded upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The artifact's name, as in `artifacts.upload`.
    pub name: String,
    /// The job (instance) whose step uploaded it.
    pub job: String,
    /// The step that uploaded it: its id, or however the engine labels a
    /// step without one.
    pub step: String,
    /// What it holds.
    pub tree: Tree,
}

/// A run's uploads, as read from its `artifacts.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactIndex {
    version: u32,
    uploads: Vec<Upload>,
}

impl Default for ArtifactIndex {
    fn default() -> Self {
        ArtifactIndex {
            version: VERSION,
            uploads: Vec::new(),
        }
    }
}

impl ArtifactIndex {
    /// `<state>/runs/<run-id>/artifacts.json`.
    pub fn path(state_dir: &Path, run_id: &str) -> PathBuf {
        runs::run_dir(state_dir, run_id).join(INDEX_FILE)
    }

    /// Reads the index of `run_id`; a run that recorded nothing (no file)
    /// has an empty index.
    pub fn load(state_dir: &Path, run_id: &str) -> Result<ArtifactIndex, ArtifactError> {
        Self::read(&Self::path(state_dir, run_id))
    }

    fn read(path: &Path) -> Result<ArtifactIndex, ArtifactError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ArtifactIndex::default());
            }
            Err(error) => return Err(ArtifactError::io("read", path)(error)),
        };
        let invalid = |reason: String| ArtifactError::Index {
            path: path.to_owned(),
            reason,
        };
        #[derive(Deserialize)]
        struct Header {
            version: u32,
        }
        let header: Header = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if header.version != VERSION {
            return Err(invalid(format!(
                "it has format version {}, and this gantry reads version {VERSION}",
                header.version
            )));
        }
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))
    }

    /// Every upload, in the order they were recorded.
    pub fn uploads(&self) -> &[Upload] {
        &self.uploads
    }

    /// The latest upload of `name`.
    pub fn latest(&self, name: &str) -> Option<&Upload> {
        self.uploads.iter().rev().find(|upload| upload.name == name)
    }

    /// The latest upload of each name, sorted by name.
    pub fn latest_each(&self) -> Vec<&Upload> {
        let mut names: Vec<&str> = self.uploads.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| self.latest(name))
            .collect()
    }

    /// How many times `name` was uploaded.
    pub fn upload_count(&self, name: &str) -> usize {
        self.uploads.iter().filter(|u| u.name == name).count()
    }

    /// The sha256 of every blob any upload refers to (with repeats).
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.uploads.iter().flat_map(|upload| upload.tree.blobs())
    }
}

/// The index of the run in progress, shared by every job of the run.
#[derive(Debug)]
pub struct RunArtifacts {
    path: PathBuf,
    index: Mutex<ArtifactIndex>,
}

impl RunArtifacts {
    /// The index of `run_id`, starting from what is already recorded (a
    /// new run has nothing). Creates nothing until the first record.
    pub fn open(state_dir: &Path, run_id: &str) -> Result<RunArtifacts, ArtifactError> {
        let path = ArtifactIndex::path(state_dir, run_id);
        let index = ArtifactIndex::read(&path)?;
        Ok(RunArtifacts {
            path,
            index: Mutex::new(index),
        })
    }

    /// Records that `job`/`step` uploaded `tree` as `name`, and rewrites
    /// `artifacts.json` atomically and durably before returning. Safe to
    /// call from several threads at once; when it fails, nothing changed.
    pub fn record(
        &self,
        name: &str,
        job: &str,
        step: &str,
        tree: Tree,
    ) -> Result<(), ArtifactError> {
        check_name(name)?;
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.uploads.push(Upload {
            name: name.to_owned(),
            job: job.to_owned(),
            step: step.to_owned(),
            tree,
        });
        let json = serde_json::to_vec_pretty(&*index).expect("an index is always serializable");
        let folder = self.path.parent().expect("the index sits in a run folder");
        let written = std::fs::create_dir_all(folder)
            .map_err(ArtifactError::io("create", folder))
            .and_then(|()| {
                write_atomic(&self.path, &json).map_err(ArtifactError::io("write", &self.path))
            });
        if written.is_err() {
            index.uploads.pop();
        }
        written
    }

    /// The latest upload of `name` in this run.
    pub fn latest(&self, name: &str) -> Option<Upload> {
        let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.latest(name).cloned()
    }

    /// A copy of the index as recorded so far.
    pub fn snapshot(&self) -> ArtifactIndex {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Where the index is written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
