//! Where the runner keeps its own files, and the rule that keeps every step
//! away from them.
//!
//! A project's state folder (run journals, logs, summaries, the artifact
//! store, the run lock) lives outside the project, the way the GitHub
//! runner keeps `_temp` beside the checkout rather than in it:
//! `$XDG_STATE_HOME/gantry/projects/<folder-name>-<12 hex>/`, the hex being
//! the start of the sha256 of the manifest's canonical folder, so two
//! projects with the same folder name never share one. `--state-dir`
//! overrides it.
//!
//! gantry acts on what it reads back from that folder (a journal tells it
//! which hooks to run with which grants), and it loads native code from the
//! compiled-module cache. So no step may ever write either: [`Protected`]
//! names both folders, and a writable grant that contains, equals or lies
//! under one of them refuses the pipeline before anything runs, and refuses
//! the mount again in the sandbox (where hooks run from a journal pass too).

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::ManifestError;
use crate::plan::{Plan, StepPlan};

/// Why there is no default state folder.
#[derive(Debug, thiserror::Error)]
#[error("no state folder: neither XDG_STATE_HOME nor HOME is set to an absolute path")]
pub struct NoStateHome;

impl crate::hint::Hinted for NoStateHome {
    fn hint(&self) -> Option<String> {
        Some("give one with `--state-dir DIR`".into())
    }
}

/// The default state folder of the project whose manifest lies in `root`
/// (`root` is made canonical first, when it exists).
pub fn default_folder(root: &Path) -> Result<PathBuf, NoStateHome> {
    let base = xdg_base("XDG_STATE_HOME", ".local/state").ok_or(NoStateHome)?;
    Ok(base.join("gantry").join("projects").join(project_key(root)))
}

/// An XDG base folder: `$variable`, else `$HOME/<under_home>`. Relative
/// values of either variable are ignored, as the XDG spec asks.
pub fn xdg_base(variable: &str, under_home: &str) -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute(variable).or_else(|| absolute("HOME").map(|home| home.join(under_home)))
}

/// `<folder-name>-<first 12 hex of sha256 of the canonical folder>`; the
/// name keeps only characters safe in a file name.
pub fn project_key(root: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;

    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let digest = Sha256::digest(canonical.as_os_str().as_bytes());
    let hex = crate::digest::hex(&digest[..6]);
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}-{hex}")
}

/// The folders no step may write, made canonical.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    folders: Vec<(PathBuf, &'static str)>,
}

/// A writable grant that would let a step write gantry's own files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The grant's folder, canonical.
    pub grant: PathBuf,
    /// The protected folder, canonical.
    pub protected: PathBuf,
    /// What the protected folder is: `state folder` or `compiled-module cache`.
    pub what: &'static str,
}

impl Protected {
    /// The state folder and, when there is one, the compiled-module cache.
    pub fn new(state_dir: &Path, cache_dir: Option<&Path>) -> Protected {
        let mut folders = vec![(canonical_prefix(state_dir), "state folder")];
        if let Some(cache) = cache_dir {
            folders.push((canonical_prefix(cache), "compiled-module cache"));
        }
        Protected { folders }
    }

    /// What no step of a project whose state folder is `state_dir` may
    /// write: that folder, and this user's module cache.
    pub fn of(state_dir: &Path) -> Protected {
        let cache = crate::plugin::cache::ModuleCache::default_dir().ok();
        Protected::new(state_dir, cache.as_deref())
    }

    /// The protected folder that the writable folder `grant` (canonical)
    /// contains, equals or lies under, if any.
    pub fn overlap(&self, grant: &Path) -> Option<Overlap> {
        self.folders
            .iter()
            .find(|(folder, _)| folder.starts_with(grant) || grant.starts_with(folder))
            .map(|(folder, what)| Overlap {
                grant: grant.to_owned(),
                protected: folder.clone(),
                what,
            })
    }

    /// Every writable grant of the plan's steps (a writable workspace, a
    /// writable `dirs` entry) that overlaps a protected folder, as the
    /// error a person reads: where the step is (`at_step` places a
    /// message at a step's line), and both paths.
    pub fn check_plan(
        &self,
        plan: &Plan,
        at_step: impl Fn(&StepPlan, String) -> ManifestError,
    ) -> Vec<ManifestError> {
        let mut problems = Vec::new();
        for job in &plan.jobs {
            for step in &job.steps {
                let workspace = (step.grants.workspace == crate::plan::WorkspaceAccess::Write)
                    .then(|| ("`workspace: write`".to_owned(), plan.root.clone()));
                let dirs = step.grants.dirs.iter().filter(|d| d.writable).map(|d| {
                    (
                        format!(
                            "the writable folder `{}` (at `{}`)",
                            d.host.display(),
                            d.guest
                        ),
                        d.host.clone(),
                    )
                });
                for (grant, host) in workspace.into_iter().chain(dirs) {
                    if let Some(overlap) = self.overlap(&canonical_prefix(&host)) {
                        let message = format!(
                            "step `{}` of job `{}` is granted {grant}, and `{}` {} gantry's {} `{}`; a step must never write gantry's own files",
                            step.display_name,
                            job.id,
                            overlap.grant.display(),
                            relation(&overlap),
                            overlap.what,
                            overlap.protected.display(),
                        );
                        let hint = format!(
                            "grant a narrower folder, or keep the {} elsewhere with {}",
                            overlap.what,
                            if overlap.what == "state folder" {
                                "`--state-dir DIR`"
                            } else {
                                "`XDG_CACHE_HOME`"
                            },
                        );
                        problems.push(at_step(step, message).with_hint(hint));
                    }
                }
            }
        }
        problems
    }
}

/// How a grant and a protected folder overlap, in words.
pub fn relation(overlap: &Overlap) -> &'static str {
    if overlap.grant == overlap.protected {
        "is"
    } else if overlap.protected.starts_with(&overlap.grant) {
        "holds"
    } else {
        "lies in"
    }
}

/// `path` with `..` resolved lexically, then made canonical as far as it
/// exists, the rest appended: a folder not created yet still compares with
/// the real paths of grants.
pub fn canonical_prefix(path: &Path) -> PathBuf {
    let path = normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
    let mut existing = path.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut result = real;
            for part in rest.iter().rev() {
                result.push(part);
            }
            return normalize(&result);
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_owned();
            }
            _ => return path,
        }
    }
}

/// Removes `.` and resolves `..` lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut result = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                result.pop();
            }
            Component::CurDir => {}
            other => result.push(other),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_key_is_the_folder_name_and_a_hash_of_its_path() {
        let folder = tempfile::Builder::new()
            .prefix("my project")
            .tempdir()
            .unwrap();
        let key = project_key(folder.path());
        let (name, hex) = key.rsplit_once('-').unwrap();
        assert!(name.starts_with("my_project"), "{key}");
        assert_eq!(hex.len(), 12);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        let other = tempfile::Builder::new()
            .prefix("my project")
            .tempdir()
            .unwrap();
        assert_ne!(project_key(other.path()), key);
    }

    #[test]
    fn a_grant_overlaps_a_protected_folder_it_contains_equals_or_lies_in() {
        let home = tempfile::tempdir().unwrap();
        let state = home.path().join("state").join("gantry");
        let protected = Protected::new(&state, None);
        let root = home.path().canonicalize().unwrap();
        for (grant, overlaps) in [
            (root.clone(), true),
            (root.join("state"), true),
            (root.join("state/gantry"), true),
            (root.join("state/gantry/store"), true),
            (root.join("project"), false),
            (root.join("state-other"), false),
        ] {
            assert_eq!(
                protected.overlap(&grant).is_some(),
                overlaps,
                "{}",
                grant.display()
            );
        }
    }

    #[test]
    fn a_path_not_created_yet_is_made_canonical_as_far_as_it_exists() {
        let home = tempfile::tempdir().unwrap();
        let real = home.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, home.path().join("link")).unwrap();
        assert_eq!(
            canonical_prefix(&home.path().join("link/a/../b")),
            real.canonicalize().unwrap().join("b")
        );
    }
}
