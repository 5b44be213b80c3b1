//! Garbage collection of a state folder: all run folders but the newest
//! few go — except a run that still needs `gantry resume` — then every
//! blob no remaining run's index refers to.
//!
//! A running pipeline stores blobs before it records them in its index, so
//! a collection must never overlap a run: [`collect_garbage`] takes the
//! state folder's [`RunLock`] as proof that the caller holds it.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use super::ArtifactError;
use super::index::ArtifactIndex;
use super::store::Store;
use crate::fsutil;
use crate::journal::{self, RunState};
use crate::run_lock::RunLock;
use crate::runs;

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The runs removed, oldest last, each with the bytes its folder held.
    pub removed_runs: Vec<(String, u64)>,
    /// The runs kept, newest first.
    pub kept_runs: Vec<String>,
    /// Older runs kept anyway, because their journal says they still need
    /// `gantry resume` (or cannot be read to tell).
    pub kept_unsettled: Vec<String>,
    /// How many blobs were removed.
    pub removed_blobs: usize,
    /// The bytes of the blobs removed, and of temporary files a killed run
    /// left in the store.
    pub store_bytes: u64,
    /// Whether nothing was actually removed.
    pub dry_run: bool,
}

impl GcReport {
    /// Every byte freed.
    pub fn freed_bytes(&self) -> u64 {
        self.removed_runs
            .iter()
            .map(|(_, bytes)| bytes)
            .sum::<u64>()
            + self.store_bytes
    }
}

/// Removes every run folder of `state_dir` but the newest `keep`, then every
/// blob that no remaining run's `artifacts.json` refers to, and whatever a
/// killed run left in `store/tmp`. With `dry_run`, only reports what it
/// would remove.
///
/// The indexes of the kept runs are all read before anything is removed:
/// if one cannot be read, nothing is removed, since its blobs cannot be
/// told apart from garbage. `_lock` must be the run lock of `state_dir`.
///
/// A run whose journal is damaged is kept too (nothing can tell whether
/// it needs compensating), unless `remove_damaged`: a person who has
/// looked at it lets it go.
pub fn collect_garbage(
    state_dir: &Path,
    keep: usize,
    dry_run: bool,
    remove_damaged: bool,
    _lock: &RunLock,
) -> Result<GcReport, ArtifactError> {
    let all = runs::list(state_dir).map_err(ArtifactError::io(
        "list the runs in",
        runs::runs_dir(state_dir),
    ))?;
    let (kept, older) = all.split_at(keep.min(all.len()));
    let (unsettled, removed): (Vec<String>, Vec<String>) = older
        .iter()
        .cloned()
        .partition(|run| must_stay(state_dir, run, remove_damaged));
    let mut referenced = HashSet::new();
    for run in kept.iter().chain(&unsettled) {
        let index = ArtifactIndex::load(state_dir, run)?;
        referenced.extend(index.blobs().map(str::to_owned));
    }

    let mut report = GcReport {
        kept_runs: kept.to_vec(),
        kept_unsettled: unsettled,
        dry_run,
        ..GcReport::default()
    };
    // Everything below the state folder is reached without following a
    // link: `runs`, `store/blobs` or `store/tmp` replaced by a link to a
    // host folder stops the collection instead of emptying that folder.
    // `remove_dir_all` itself removes links, never what they point to.
    let runs_dir = runs::runs_dir(state_dir);
    let opened_runs = (!removed.is_empty())
        .then(|| {
            fsutil::open_dir_beneath(state_dir, Path::new(runs::RUNS))
                .map_err(ArtifactError::io("open", &runs_dir))
        })
        .transpose()?;
    for run in &removed {
        let folder = runs::run_dir(state_dir, run);
        let bytes = fsutil::disk_usage(&folder);
        if let Some(runs) = opened_runs.as_ref().filter(|_| !dry_run) {
            fs::remove_dir_all(fsutil::fd_path(runs).join(run))
                .map_err(ArtifactError::io("remove", &folder))?;
        }
        report.removed_runs.push((run.clone(), bytes));
    }

    let store = Store::existing(state_dir);
    let blobs = store
        .list_blobs()
        .map_err(ArtifactError::io("list the blobs in", store.root()))?;
    for (sha256, path, size) in blobs {
        if referenced.contains(&sha256) {
            continue;
        }
        if !dry_run {
            fs::remove_file(&path).map_err(ArtifactError::io("remove", &path))?;
            if let Some(shard) = path.parent() {
                // Only succeeds once the shard is empty.
                let _ = fs::remove_dir(shard);
            }
        }
        report.removed_blobs += 1;
        report.store_bytes += size;
    }
    let tmp = store.tmp_dir();
    let opened_tmp = match fsutil::open_dir_beneath(state_dir, Path::new("store/tmp")) {
        Ok(folder) => Some(folder),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(ArtifactError::io("open", &tmp)(error)),
    };
    if let Some(folder) = opened_tmp
        && let Ok(read) = fs::read_dir(fsutil::fd_path(&folder))
    {
        for entry in read.flatten() {
            let path = entry.path();
            let shown = tmp.join(entry.file_name());
            report.store_bytes += fsutil::disk_usage(&path);
            if !dry_run {
                let removed = match entry.file_type() {
                    Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                    _ => fs::remove_file(&path),
                };
                removed.map_err(ArtifactError::io("remove", &shown))?;
            }
        }
    }
    Ok(report)
}

/// Whether `run` must stay for `gantry resume`: its runner died before the
/// run finished, or its rollback was cut short. A journal that cannot be
/// read keeps the run too, for a person to look at (unless
/// `remove_damaged`); a run without one has nothing to resume.
fn must_stay(state_dir: &Path, run: &str, remove_damaged: bool) -> bool {
    match journal::read(&runs::run_dir(state_dir, run).join(journal::FILE_NAME)) {
        Ok(records) => RunState::of(&records) != RunState::Settled,
        Err(error) if error.is_damaged() => !remove_damaged,
        Err(error) => !error.is_missing(),
    }
}
