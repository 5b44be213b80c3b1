//! Job hand-off bundles: what one machine's job leaves for the machines
//! that run the jobs after it, and for the pipeline's rollback job, when
//! an outside engine (GitLab CI, GitHub Actions) runs each job of a
//! pipeline on a machine of its own (`gantry export`).
//!
//! `gantry run --job ID --export DIR` writes a bundle; `gantry run --job ID
//! --import DIR…` and `gantry rollback --import DIR…` read them. A bundle is
//! a folder:
//!
//! ```text
//! DIR/
//!   bundle.json      what the job was, how it ended, its outputs, the plan
//!                    it ran, and the sha256 of every other file here
//!   journal.jsonl    the job's run journal, byte for byte (hash-chained
//!                    from its run id, as on the machine that ran it)
//!   artifacts.json   every artifact upload the job could see when it
//!                    ended: those it imported and its own
//!   blobs/<sha256>   the content of every file those uploads hold
//! ```
//!
//! Reading a bundle checks everything that can be checked without trusting
//! the engine that carried it: `bundle.json` names the sha256 of the
//! journal and of the artifact index, every blob is hashed against its
//! name, every file an upload lists must have its blob, the journal's chain
//! must hold from the bundle's run id, and the bundle must come from the
//! same plan (the manifest's bytes and every plugin's verified sha256,
//! [`plan_digest`]). Any failure is an error naming the bundle, and nothing
//! runs. The digests rule out a bundle damaged in transit, mixed up with
//! another pipeline's or edited by hand; they are not signatures: whoever
//! can rewrite the engine's artifact store can rewrite a bundle whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifacts::{ArtifactIndex, Store, Upload};
use crate::digest::hex;
use crate::engine::JobResult;
use crate::journal::{self, Entry, Record};
use crate::plan::{JobPlan, Plan};
use crate::report::Conclusion;

/// The description file at the top of a bundle.
pub const BUNDLE_FILE: &str = "bundle.json";
const JOURNAL_FILE: &str = "journal.jsonl";
const ARTIFACTS_FILE: &str = "artifacts.json";
const BLOBS_DIR: &str = "blobs";
/// The bundle format this gantry writes and reads.
const FORMAT: u32 = 1;

/// `bundle.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleInfo {
    pub format: u32,
    /// [`plan_digest`] of the plan the job ran.
    pub plan: String,
    pub pipeline: String,
    /// The job's id.
    pub job: String,
    /// The matrix combination's index in the job's matrix, for a matrix job.
    pub instance: Option<usize>,
    /// The job instance's name in reports (`deploy (eu)`).
    pub name: String,
    /// The run that ran the job on its machine: its journal's chain starts
    /// from it.
    pub run_id: String,
    /// `success`, `failure`, `cancelled` or `skipped`.
    pub conclusion: String,
    /// The job's `outputs:`, secrets masked.
    pub outputs: BTreeMap<String, String>,
    pub journal_sha256: String,
    pub artifacts_sha256: String,
    /// Every blob in `blobs/`, sorted.
    pub blobs: Vec<String>,
}

/// A bundle read back and verified.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The folder it was read from, for messages.
    pub dir: PathBuf,
    pub info: BundleInfo,
    /// The journal's records, their chain checked.
    pub records: Vec<Record>,
    pub uploads: Vec<Upload>,
}

/// Why a bundle cannot be used. Every message names the bundle's folder.
#[derive(Debug, thiserror::Error)]
#[error("bundle `{}`: {why}", dir.display())]
pub struct BundleError {
    pub dir: PathBuf,
    pub why: String,
}

fn error(dir: &Path, why: impl Into<String>) -> BundleError {
    BundleError {
        dir: dir.to_owned(),
        why: why.into(),
    }
}

/// The sha256 that names a plan across machines: of the manifest's sha256
/// and of every plugin alias with the sha256 its bytes were verified to
/// have. Two machines checking out the same commit compute the same one;
/// an edited manifest, lock file or plugin gives another.
pub fn plan_digest(plan: &Plan, plugin_hashes: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"gantry plan v2\n");
    hasher.update(plan.manifest_sha256.as_bytes());
    for (alias, sha256) in plugin_hashes {
        hasher.update(format!("\n{alias}={sha256}").as_bytes());
    }
    hex(&hasher.finalize())
}

/// The folder name a job instance's bundle gets in an exported pipeline:
/// the job id, and `.N` for matrix combination N (job ids never hold a
/// `.`, so two never collide).
pub fn bundle_key(job: &str, instance: Option<usize>) -> String {
    match instance {
        Some(index) => format!("{job}.{index}"),
        None => job.to_owned(),
    }
}

/// What a finished job instance leaves in its bundle.
pub struct Export<'a> {
    pub plan_digest: &'a str,
    pub pipeline: &'a str,
    pub job: &'a str,
    pub instance: Option<usize>,
    pub name: &'a str,
    pub run_id: &'a str,
    pub result: &'a JobResult,
    pub state_dir: &'a Path,
}

impl Export<'_> {
    /// Writes the bundle into `dir`, which must not exist or be empty. The
    /// bundle is assembled in a hidden folder beside `dir`, fsynced and
    /// renamed into place, so `dir` never holds half a bundle.
    pub fn write(&self, dir: &Path) -> Result<(), BundleError> {
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(error(
                        dir,
                        "the folder is not empty; export into a new or empty folder",
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(error(dir, format!("cannot read the folder: {e}"))),
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .map_err(|e| error(dir, format!("cannot create `{}`: {e}", parent.display())))?;
        let staging = tempfile::Builder::new()
            .prefix(".gantry-bundle-")
            .tempdir_in(&parent)
            .map_err(|e| error(dir, format!("cannot create a folder beside it: {e}")))?;
        self.fill(staging.path())
            .map_err(|why| error(dir, format!("cannot write the bundle: {why}")))?;
        // An empty folder left for us (an engine's artifact path) gives
        // way to the finished bundle; a non-empty one was refused above.
        let _ = fs::remove_dir(dir);
        let staged = staging.keep();
        fs::rename(&staged, dir).map_err(|e| {
            let _ = fs::remove_dir_all(&staged);
            error(dir, format!("cannot move the bundle into place: {e}"))
        })?;
        crate::fsutil::sync_dir(&parent)
            .map_err(|e| error(dir, format!("cannot sync `{}`: {e}", parent.display())))
    }

    fn fill(&self, to: &Path) -> Result<(), String> {
        let run_dir = crate::runs::run_dir(self.state_dir, self.run_id);
        let journal_path = run_dir.join(journal::FILE_NAME);
        // The bundle carries the journal only if it is the chain gantry
        // wrote: a damaged one is never handed on.
        journal::read(&journal_path).map_err(|e| crate::hint::one_line(&e))?;
        let journal_bytes =
            crate::fsutil::read_regular_file(&journal_path).map_err(|e| e.to_string())?;
        write_synced(&to.join(JOURNAL_FILE), &journal_bytes)?;
        let index = ArtifactIndex::load(self.state_dir, self.run_id).map_err(|e| e.to_string())?;
        let index_bytes = serde_json::to_vec_pretty(&index).map_err(|e| e.to_string())?;
        write_synced(&to.join(ARTIFACTS_FILE), &index_bytes)?;
        let blobs: BTreeSet<String> = index.blobs().map(str::to_owned).collect();
        let store = Store::existing(self.state_dir);
        let blob_dir = to.join(BLOBS_DIR);
        fs::create_dir(&blob_dir).map_err(|e| e.to_string())?;
        for sha256 in &blobs {
            copy_verified(&store.blob_path(sha256), &blob_dir.join(sha256), sha256)?;
        }
        crate::fsutil::sync_dir(&blob_dir).map_err(|e| e.to_string())?;
        let info = BundleInfo {
            format: FORMAT,
            plan: self.plan_digest.to_owned(),
            pipeline: self.pipeline.to_owned(),
            job: self.job.to_owned(),
            instance: self.instance,
            name: self.name.to_owned(),
            run_id: self.run_id.to_owned(),
            conclusion: self.result.conclusion.as_str().to_owned(),
            outputs: self.result.outputs.clone(),
            journal_sha256: crate::digest::sha256_hex(&journal_bytes),
            artifacts_sha256: crate::digest::sha256_hex(&index_bytes),
            blobs: blobs.into_iter().collect(),
        };
        let mut text = serde_json::to_vec_pretty(&info).map_err(|e| e.to_string())?;
        text.push(b'\n');
        write_synced(&to.join(BUNDLE_FILE), &text)?;
        crate::fsutil::sync_dir(to).map_err(|e| e.to_string())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = File::create(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Copies `from` to the new file `to`, hashing as it copies; fails (and
/// removes `to`) when the bytes are not `sha256`.
fn copy_verified(from: &Path, to: &Path, sha256: &str) -> Result<(), String> {
    let mut source = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)
        .map_err(|e| format!("cannot read `{}`: {e}", from.display()))?;
    if !source.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!("`{}` is not a regular file", from.display()));
    }
    let mut target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)
        .map_err(|e| format!("cannot create `{}`: {e}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let copied = loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("cannot read `{}`: {e}", from.display())),
        };
        hasher.update(&buffer[..read]);
        if let Err(e) = target.write_all(&buffer[..read]) {
            break Err(format!("cannot write `{}`: {e}", to.display()));
        }
    };
    let found = hex(&hasher.finalize());
    let checked = copied.and_then(|()| {
        if found == sha256 {
            target
                .set_permissions(fs::Permissions::from_mode(0o444))
                .and_then(|()| target.sync_all())
                .map_err(|e| format!("cannot write `{}`: {e}", to.display()))
        } else {
            Err(format!(
                "`{}` should have sha256 {sha256}, but holds {found}",
                from.display()
            ))
        }
    });
    if checked.is_err() {
        let _ = fs::remove_file(to);
    }
    checked
}

/// Hashes the file at `path` without keeping it.
fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hex(&hasher.finalize())),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Bundle {
    /// Reads the bundle in `dir` and verifies everything in it against
    /// `bundle.json` (see the module's documentation).
    pub fn read(dir: &Path) -> Result<Bundle, BundleError> {
        let fail = |why: String| error(dir, why);
        let info_path = dir.join(BUNDLE_FILE);
        let text = match crate::fsutil::read_regular_file(&info_path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(format!(
                    "there is no `{BUNDLE_FILE}` here: not a bundle written by `gantry run --export` (did the job that writes it run?)"
                )));
            }
            Err(e) => return Err(fail(format!("cannot read `{BUNDLE_FILE}`: {e}"))),
        };
        let info: BundleInfo = serde_json::from_slice(&text)
            .map_err(|e| fail(format!("`{BUNDLE_FILE}` is not a bundle description: {e}")))?;
        if info.format != FORMAT {
            return Err(fail(format!(
                "it has format {}, and this gantry reads format {FORMAT}",
                info.format
            )));
        }
        if !crate::runs::is_run_id(&info.run_id) {
            return Err(fail(format!("`{}` is not a run id", info.run_id)));
        }
        let journal_bytes = read_checked(dir, JOURNAL_FILE, &info.journal_sha256)?;
        let index_bytes = read_checked(dir, ARTIFACTS_FILE, &info.artifacts_sha256)?;
        let records = journal::parse_chain(&info.run_id, &journal_bytes).map_err(|why| {
            fail(format!(
                "its journal is damaged: {why}; nothing is run from it"
            ))
        })?;
        match records.first().map(|r| &r.entry) {
            Some(Entry::RunStarted {
                run_id, pipeline, ..
            }) if *run_id == info.run_id && *pipeline == info.pipeline => {}
            _ => {
                return Err(fail(format!(
                    "its journal does not start run `{}` of pipeline `{}`",
                    info.run_id, info.pipeline
                )));
            }
        }
        let index: ArtifactIndex = serde_json::from_slice(&index_bytes)
            .map_err(|e| fail(format!("`{ARTIFACTS_FILE}` is not an artifact index: {e}")))?;
        let listed: BTreeSet<&str> = info.blobs.iter().map(String::as_str).collect();
        for upload in index.uploads() {
            upload.tree.validate().map_err(|e| {
                fail(format!(
                    "artifact `{}` is not a valid tree: {e}",
                    upload.name
                ))
            })?;
            if let Some(missing) = upload.tree.blobs().find(|b| !listed.contains(b)) {
                return Err(fail(format!(
                    "artifact `{}` holds a file whose blob {missing} is not in the bundle",
                    upload.name
                )));
            }
        }
        for sha256 in &info.blobs {
            if !crate::plan::is_sha256_hex(sha256) {
                return Err(fail(format!("`{sha256}` is not a sha256")));
            }
            let path = dir.join(BLOBS_DIR).join(sha256);
            let found = file_sha256(&path)
                .map_err(|e| fail(format!("cannot read blob `{BLOBS_DIR}/{sha256}`: {e}")))?;
            if found != *sha256 {
                return Err(fail(format!(
                    "blob `{BLOBS_DIR}/{sha256}` was altered: expected sha256 {sha256}, found {found}"
                )));
            }
        }
        Ok(Bundle {
            dir: dir.to_owned(),
            uploads: index.uploads().to_vec(),
            info,
            records,
        })
    }

    /// Refuses a bundle written by a run of another plan.
    pub fn check_plan(&self, plan_digest: &str, pipeline: &str) -> Result<(), BundleError> {
        if self.info.plan != plan_digest {
            return Err(error(
                &self.dir,
                format!(
                    "it comes from another pipeline or another version of this one (plan sha256 {}, this plan is {plan_digest}); export and run every job from the same commit",
                    self.info.plan
                ),
            ));
        }
        if self.info.pipeline != pipeline {
            return Err(error(
                &self.dir,
                format!("it comes from pipeline `{}`", self.info.pipeline),
            ));
        }
        Ok(())
    }

    fn conclusion(&self) -> Result<Conclusion, BundleError> {
        Ok(match self.info.conclusion.as_str() {
            "success" => Conclusion::Success,
            "failure" => Conclusion::Failure,
            "cancelled" => Conclusion::Cancelled,
            "skipped" => Conclusion::Skipped,
            other => {
                return Err(error(
                    &self.dir,
                    format!("`{other}` is not a job conclusion"),
                ));
            }
        })
    }
}

/// Reads `name` in the bundle `dir`, checking its sha256.
fn read_checked(dir: &Path, name: &str, sha256: &str) -> Result<Vec<u8>, BundleError> {
    let bytes = crate::fsutil::read_regular_file(&dir.join(name))
        .map_err(|e| error(dir, format!("cannot read `{name}`: {e}")))?;
    let found = crate::digest::sha256_hex(&bytes);
    if found != sha256 {
        return Err(error(
            dir,
            format!("`{name}` was altered: `{BUNDLE_FILE}` expects sha256 {sha256}, found {found}"),
        ));
    }
    Ok(bytes)
}

/// Reads every bundle the arguments name: a folder holding `bundle.json`
/// is one bundle; another folder is searched one level down (an engine
/// that downloads several artifacts puts each in a folder of its own). The
/// same run twice is refused: its hooks would be counted twice.
pub fn read_all(arguments: &[PathBuf]) -> Result<Vec<Bundle>, BundleError> {
    let mut dirs = Vec::new();
    for argument in arguments {
        if argument.join(BUNDLE_FILE).exists() {
            dirs.push(argument.clone());
            continue;
        }
        let entries = fs::read_dir(argument).map_err(|e| {
            error(
                argument,
                if e.kind() == io::ErrorKind::NotFound {
                    "the folder does not exist (did the job that writes it run?)".to_owned()
                } else {
                    format!("cannot read the folder: {e}")
                },
            )
        })?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.join(BUNDLE_FILE).exists())
            .collect();
        if found.is_empty() {
            return Err(error(
                argument,
                format!("neither it nor a folder in it holds a `{BUNDLE_FILE}`"),
            ));
        }
        found.sort();
        dirs.extend(found);
    }
    let mut bundles: Vec<Bundle> = Vec::new();
    for dir in dirs {
        let bundle = Bundle::read(&dir)?;
        if let Some(twin) = bundles.iter().find(|b| b.info.run_id == bundle.info.run_id) {
            return Err(error(
                &dir,
                format!(
                    "it holds run `{}`, as bundle `{}` does; import each bundle once",
                    bundle.info.run_id,
                    twin.dir.display()
                ),
            ));
        }
        bundles.push(bundle);
    }
    Ok(bundles)
}

/// What a job run on this machine receives from the machines that ran the
/// jobs it needs.
#[derive(Debug, Default)]
pub struct Handoff {
    /// Each needed job's combined result, as if it had run here.
    pub needs: BTreeMap<String, JobResult>,
    /// Every upload the needed jobs could see, in plan order.
    pub uploads: Vec<Upload>,
    /// The bundles the uploads' blobs come from.
    blob_sources: BTreeMap<String, PathBuf>,
}

impl Handoff {
    /// Matches `bundles` to the needs of `job`: each needed job instance
    /// must be there exactly once, and nothing else may be.
    pub fn assemble(plan: &Plan, job: &JobPlan, bundles: &[Bundle]) -> Result<Handoff, String> {
        let mut by_key: BTreeMap<String, &Bundle> = BTreeMap::new();
        for bundle in bundles {
            if !job.needs.contains(&bundle.info.job) {
                return Err(error(
                    &bundle.dir,
                    format!(
                        "it is of job `{}`, which job `{}` does not need",
                        bundle.info.job, job.id
                    ),
                )
                .to_string());
            }
            let key = bundle_key(&bundle.info.job, bundle.info.instance);
            if let Some(twin) = by_key.insert(key.clone(), bundle) {
                return Err(error(
                    &bundle.dir,
                    format!(
                        "job instance `{}` is also in bundle `{}`",
                        bundle.info.name,
                        twin.dir.display()
                    ),
                )
                .to_string());
            }
        }
        let mut handoff = Handoff::default();
        // Plan order puts a job after those it needs, so later uploads of
        // a name win as they would have in one run.
        for needed in plan.jobs.iter().filter(|j| job.needs.contains(&j.id)) {
            let instances: Vec<Option<usize>> = if needed.matrix.is_empty() {
                vec![None]
            } else {
                (0..needed.matrix.len()).map(Some).collect()
            };
            let mut conclusions = Vec::new();
            let mut outputs = BTreeMap::new();
            for instance in instances {
                let key = bundle_key(&needed.id, instance);
                let Some(bundle) = by_key.get(&key) else {
                    return Err(format!(
                        "job `{}` needs `{}`, and no bundle of `{key}` was imported (missing need); pass its folder with --import",
                        job.id, needed.id
                    ));
                };
                conclusions.push(bundle.conclusion().map_err(|e| e.to_string())?);
                outputs.extend(
                    bundle
                        .info
                        .outputs
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                for upload in &bundle.uploads {
                    if !handoff.uploads.contains(upload) {
                        handoff.uploads.push(upload.clone());
                    }
                    for blob in upload.tree.blobs() {
                        handoff
                            .blob_sources
                            .entry(blob.to_owned())
                            .or_insert_with(|| bundle.dir.join(BLOBS_DIR).join(blob));
                    }
                }
            }
            let conclusion = combine(&conclusions, needed.continue_on_error);
            handoff.needs.insert(
                needed.id.clone(),
                JobResult {
                    conclusion,
                    outputs,
                },
            );
        }
        Ok(handoff)
    }

    /// Puts every blob the uploads need into `store`, checking each byte
    /// against its sha256 again as it is copied.
    pub fn fill_store(&self, store: &Store) -> Result<(), String> {
        for (sha256, from) in &self.blob_sources {
            let to = store.blob_path(sha256);
            if to.exists() {
                continue;
            }
            let folder = to.parent().expect("a blob sits in a folder");
            fs::create_dir_all(folder)
                .map_err(|e| format!("cannot create `{}`: {e}", folder.display()))?;
            let temporary = store.tmp_dir().join(format!(".import-{sha256}"));
            let _ = fs::remove_file(&temporary);
            copy_verified(from, &temporary, sha256)?;
            fs::rename(&temporary, &to)
                .map_err(|e| format!("cannot move a blob into `{}`: {e}", to.display()))?;
        }
        Ok(())
    }
}

/// A job's conclusion from its matrix instances', as the engine combines
/// them on one machine.
pub fn combine(conclusions: &[Conclusion], continue_on_error: bool) -> Conclusion {
    if conclusions.contains(&Conclusion::Failure) {
        if continue_on_error {
            Conclusion::Success
        } else {
            Conclusion::Failure
        }
    } else if conclusions.contains(&Conclusion::Cancelled) {
        Conclusion::Cancelled
    } else if !conclusions.is_empty() && conclusions.iter().all(|c| *c == Conclusion::Skipped) {
        Conclusion::Skipped
    } else {
        Conclusion::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_instances_combine_as_on_one_machine() {
        use Conclusion::*;
        assert_eq!(combine(&[Success, Success], false), Success);
        assert_eq!(combine(&[Success, Failure, Cancelled], false), Failure);
        assert_eq!(combine(&[Success, Failure], true), Success);
        assert_eq!(combine(&[Success, Cancelled], false), Cancelled);
        assert_eq!(combine(&[Skipped, Skipped], false), Skipped);
    }

    #[test]
    fn bundle_keys_never_collide() {
        assert_eq!(bundle_key("deploy", None), "deploy");
        assert_eq!(bundle_key("deploy", Some(3)), "deploy.3");
    }

    #[test]
    fn a_journal_copied_out_of_its_run_folder_is_checked_from_its_run_id() {
        let folder = tempfile::tempdir().unwrap();
        let run = folder.path().join("20261128T000000Z-abc123");
        let journal = crate::journal::Journal::create(&run, false).unwrap();
        journal
            .record(Entry::RunFinished {
                status: "success".into(),
            })
            .unwrap();
        let bytes = std::fs::read(journal.path()).unwrap();
        assert_eq!(
            journal::parse_chain("20261128T000000Z-abc123", &bytes)
                .unwrap()
                .len(),
            1
        );
        let foreign = journal::parse_chain("20261128T000000Z-other1", &bytes).unwrap_err();
        assert!(foreign.contains("line 1"), "{foreign}");
    }
}
