//! A step's artifact folders on the host: staged before the step starts,
//! collected into the store after it succeeds, removed when dropped.
//!
//! Each download is the run's latest upload of that name, recreated from
//! the store (every file checked against its digest) into a folder the
//! step sees read-only at `/artifacts/<name>`; each upload is an empty
//! folder it sees writable there. Staging lives here, beside the store it
//! reads and writes, so the engine only asks for mounts and hands them to
//! the sandbox.

use std::path::PathBuf;

use super::{PutLimits, RunArtifacts, Store};
use crate::plan::{DirMount, StepArtifacts};
use crate::sandbox::leftovers;

/// A step's artifact folders on the host, removed when dropped.
#[derive(Default)]
pub struct ArtifactMounts {
    root: Option<tempfile::TempDir>,
    mounts: Vec<DirMount>,
    /// Each upload's name and host folder.
    uploads: Vec<(String, PathBuf)>,
}

impl ArtifactMounts {
    /// Mounts a step's artifacts: an empty writable folder per upload, and
    /// the run's latest upload of each download, extracted (every file
    /// checked against its digest) into a folder mounted read-only.
    pub fn prepare(
        artifacts: &StepArtifacts,
        store: &Store,
        run: &RunArtifacts,
    ) -> Result<ArtifactMounts, String> {
        let mut mounts = ArtifactMounts::default();
        if artifacts.upload.is_empty() && artifacts.download.is_empty() {
            return Ok(mounts);
        }
        let root = tempfile::Builder::new()
            .prefix(&leftovers::owned_prefix(leftovers::ARTIFACTS_FOLDER))
            .tempdir()
            .map_err(|e| format!("cannot create a folder for its artifacts: {e}"))?;
        for name in &artifacts.download {
            let Some(upload) = run.latest(name) else {
                return Err(format!(
                    "artifact `{name}` was not uploaded in this run; the step that uploads it must run first (in this job, or in a job this one needs)"
                ));
            };
            let host = root.path().join(name);
            store
                .materialize(&upload.tree, &host)
                .map_err(|e| format!("cannot download artifact `{name}`: {e}"))?;
            mounts.mounts.push(DirMount {
                host,
                guest: format!("/artifacts/{name}"),
                writable: false,
            });
        }
        for name in &artifacts.upload {
            let host = root.path().join(name);
            std::fs::create_dir(&host)
                .map_err(|e| format!("cannot create the upload folder of `{name}`: {e}"))?;
            mounts.uploads.push((name.clone(), host.clone()));
            mounts.mounts.push(DirMount {
                host,
                guest: format!("/artifacts/{name}"),
                writable: true,
            });
        }
        mounts.root = Some(root);
        Ok(mounts)
    }

    /// The folders to mount into the step, under `/artifacts`.
    pub fn mounts(&self) -> &[DirMount] {
        &self.mounts
    }

    /// Empties the upload folders, so another attempt starts as the first.
    pub fn empty_uploads(&self) -> std::io::Result<()> {
        for (_, host) in &self.uploads {
            std::fs::remove_dir_all(host)?;
            std::fs::create_dir(host)?;
        }
        Ok(())
    }

    /// Stores what a successful step left in its upload folders, and
    /// records each upload in the run's index under the step that made it
    /// (`job`, and `step` as the journal keys it).
    pub fn store_uploads(
        &self,
        store: &Store,
        run: &RunArtifacts,
        limits: &PutLimits,
        job: &str,
        step: &str,
    ) -> Result<(), String> {
        for (name, host) in &self.uploads {
            let tree = store
                .put_tree_with(host, limits)
                .map_err(|e| format!("artifact `{name}`: {e}"))?;
            run.record(name, job, step, tree)
                .map_err(|e| format!("artifact `{name}`: {e}"))?;
        }
        Ok(())
    }
}
