//! The load stage: from a manifest on disk to the final [`Plan`] a command
//! works with, and (for the commands that run steps) the verified bytes of
//! every plugin it names.
//!
//! Every check that points at a line of the manifest happens here, while
//! its text is at hand: resolving, the values the command gives it, the
//! pins, the plugins' `gantry:step` metadata (whose input defaults become
//! part of the steps), the folders no step may write and the memory
//! budget. What comes out is final: the engine, the reports and the
//! hand-off read the [`Plan`] and nothing changes it after [`Draft::finish`]
//! or [`Draft::lock`]. spin's `loader` → `LockedApp` is the model.
//!
//! [`Draft`] is the only place a plan is edited, in the order a run needs:
//!
//! ```text
//! Draft::read ─ given_mut / narrow_to / keep_only / set_ca_file ─ check_* ─┬─ finish → Plan
//!                                                                   └─ lock   → Locked { plan, plugins }
//! ```
//!
//! [`admit`] then starts the sandbox and compiles what [`Locked`] holds.

pub mod admit;

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_saphyr::Location;

use crate::given::Given;
use crate::manifest::{self, LoadedManifest, ManifestError};
use crate::plan::{self, Plan, StepPlan};
use crate::plugin::check::CheckError;
use crate::plugin::kept::KeptPlugins;
use crate::plugin::metadata::Metadata;
use crate::plugin::{self, LockFile, VerifiedPlugin, VerifyError};
use crate::state::Protected;

/// Why a manifest did not become a plan. Each variant is one class of
/// mistake, reported whole (every problem found, not the first).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest cannot be read or does not resolve, or a step breaks a
    /// rule the command checks (a protected folder, the memory budget, a
    /// secret nobody provides): each error names its file, line and column.
    #[error("{}", lines(.0))]
    Manifest(Vec<ManifestError>),
    /// What the command was given does not fit the manifest (an unknown
    /// job, a bad input value, a CA file that does not exist).
    #[error("{}", lines(.0))]
    Usage(Vec<String>),
    /// A plugin does not match its pin, or its signature.
    #[error("{}", lines(.0))]
    Pins(Vec<VerifyError>),
    /// A plugin's metadata is malformed, or a step does not fit it.
    #[error("{}", lines(.0))]
    Metadata(Vec<CheckError>),
    /// A copy of a rollback hook's plugin could not be kept in the state
    /// folder, so a later rollback could not run it.
    #[error("cannot keep a copy of plugin `{alias}` for its rollback hooks in `{}`", state_dir.display())]
    KeepHooks {
        alias: String,
        state_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Each problem on a line of its own.
fn lines<T: fmt::Display>(items: &[T]) -> String {
    let all: Vec<String> = items.iter().map(ToString::to_string).collect();
    all.join("\n")
}

impl LoadError {
    /// The line that closes the report, saying that nothing ran and why,
    /// for the classes found once everything else was fine.
    pub fn nothing_ran(&self) -> Option<&'static str> {
        match self {
            LoadError::Manifest(_) | LoadError::Usage(_) => None,
            LoadError::Pins(_) => Some(
                "nothing ran: every plugin must match its pin, and its signature where `verify:` asks for one",
            ),
            LoadError::Metadata(_) => {
                Some("nothing ran: every step must fit its plugin's metadata")
            }
            LoadError::KeepHooks { .. } => Some(
                "nothing ran: a run's compensation must not depend on the project staying as it is",
            ),
        }
    }
}

impl From<ManifestError> for LoadError {
    fn from(error: ManifestError) -> Self {
        LoadError::Manifest(vec![error])
    }
}

/// A plan being loaded: resolved from its manifest, not yet final.
pub struct Draft {
    manifest: LoadedManifest,
    plan: Plan,
}

/// A final plan whose plugins were verified against their pins and whose
/// steps were checked against (and completed from) the plugins' metadata.
pub struct Locked {
    pub plan: Plan,
    /// Each plugin's verified bytes, by alias: what was hashed is exactly
    /// what the sandbox compiles.
    pub plugins: IndexMap<String, VerifiedPlugin>,
}

impl Draft {
    /// Reads and resolves the manifest at `path` (a file, a folder, or the
    /// current folder's `gantry.yml`).
    pub fn read(path: Option<&Path>) -> Result<Draft, LoadError> {
        let file = manifest::locate(path);
        let manifest = manifest::load(&file)?;
        let plan = plan::resolve(&manifest).map_err(|errors| LoadError::Manifest(errors.0))?;
        Ok(Draft { manifest, plan })
    }

    /// The plan as resolved so far, to read.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What the command line and the host give the run, to fill in.
    pub fn given_mut(&mut self) -> &mut Given {
        &mut self.plan.given
    }

    /// Narrows the plan to the jobs `ids` and every job they need
    /// (`gantry run --job`, `plan --job`, `export --job`).
    pub fn narrow_to(&mut self, ids: &[String]) -> Result<(), LoadError> {
        self.plan
            .keep_jobs_and_needs(ids)
            .map_err(|message| LoadError::Usage(vec![message]))
    }

    /// Keeps job `id` alone: its needs ran on other machines, and their
    /// results come from hand-off bundles.
    pub fn keep_only(&mut self, id: &str) {
        self.plan.jobs.retain(|job| job.id == id);
    }

    /// Private CA certificates for the components' HTTPS, from the command
    /// line: they win over the manifest's `ca-file:`.
    pub fn set_ca_file(&mut self, path: &Path) -> Result<(), LoadError> {
        if !path.is_file() {
            return Err(LoadError::Usage(vec![format!(
                "the CA file `{}` does not exist",
                path.display()
            )]));
        }
        self.plan.ca_file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()));
        Ok(())
    }

    /// An error at `location` of the manifest.
    pub fn error_at(&self, location: Location, message: impl Into<String>) -> ManifestError {
        ManifestError::at(
            &self.manifest.path,
            &self.manifest.source,
            location,
            message,
        )
    }

    /// An error at `step`'s line, in the file the step is written in: the
    /// manifest, or the step group file it comes from.
    pub fn error_at_step(&self, step: &StepPlan, message: impl Into<String>) -> ManifestError {
        match &step.group {
            Some(call) => ManifestError::at(&call.file, &call.source, step.location, message),
            None => self.error_at(step.location, message),
        }
    }

    /// Refuses a step that could write a folder in `protected` (gantry's
    /// state folder or its module cache).
    pub fn check_protected(&self, protected: &Protected) -> Result<(), LoadError> {
        refuse_any(protected.check_plan(&self.plan, |step, message| {
            self.error_at_step(step, message)
        }))
    }

    /// Refuses a step whose own memory cap is larger than the run's
    /// budget: it could never start.
    pub fn check_memory(&self, budget: u64) -> Result<(), LoadError> {
        let mut errors = Vec::new();
        for job in &self.plan.jobs {
            for step in job.steps.iter().filter(|step| step.memory_bytes > budget) {
                errors.push(
                    self.error_at(
                        step.location,
                        format!(
                            "step `{}` of job `{}` may use {} MiB of memory (`limits.memory-mb`), more than the run's memory budget of {} MiB, so it could never start",
                            step.display_name,
                            job.id,
                            step.memory_bytes.div_ceil(1 << 20),
                            budget >> 20
                        ),
                    )
                    .with_hint("lower `limits.memory-mb`, or raise the budget with `--memory-budget MB`"),
                );
            }
        }
        refuse_any(errors)
    }

    /// Refuses a `${{ secrets.NAME }}` no secret provides: it would reach
    /// its step as an empty string.
    pub fn check_secrets(&self, provided: &[&str]) -> Result<(), LoadError> {
        let errors = crate::lint::unprovided_secrets(&self.plan, provided)
            .into_iter()
            .map(|secret| {
                self.error_at(secret.location, secret.message())
                    .with_hint(secret.hint())
            })
            .collect();
        refuse_any(errors)
    }

    /// The final plan, for commands that only read it (`plan`, `export`).
    pub fn finish(self) -> Plan {
        self.plan
    }

    /// Verifies every plugin against its pin in `lock` (and its signature
    /// where asked), checks each step against its plugin's metadata and
    /// applies the metadata's input defaults. With `keep_hooks_in`, a copy
    /// of every rollback hook's plugin is kept in that state folder, so a
    /// later rollback does not depend on the project as it will be.
    pub fn lock(
        mut self,
        lock: &LockFile,
        keep_hooks_in: Option<&Path>,
    ) -> Result<Locked, LoadError> {
        let plugins = plugin::verify_all(&self.plan, lock).map_err(LoadError::Pins)?;
        self.apply_metadata(&plugins)?;
        if let Some(state_dir) = keep_hooks_in {
            keep_hook_plugins(&self.plan, &plugins, state_dir)?;
        }
        Ok(Locked {
            plan: self.plan,
            plugins,
        })
    }

    /// Checks each step against the metadata of the verified `plugins` and
    /// applies its defaults; returns the metadata read, by alias.
    pub fn apply_metadata(
        &mut self,
        plugins: &IndexMap<String, VerifiedPlugin>,
    ) -> Result<IndexMap<String, Metadata>, LoadError> {
        plugin::check::apply_metadata(&mut self.plan, &self.manifest.source, plugins)
            .map_err(LoadError::Metadata)
    }
}

fn refuse_any(errors: Vec<ManifestError>) -> Result<(), LoadError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Manifest(errors))
    }
}

/// Keeps a copy of every rollback hook's plugin in the state folder.
fn keep_hook_plugins(
    plan: &Plan,
    verified: &IndexMap<String, VerifiedPlugin>,
    state_dir: &Path,
) -> Result<(), LoadError> {
    let kept = KeptPlugins::of(state_dir);
    // Each hook plugin once, however many steps use it.
    let aliases: std::collections::BTreeSet<&str> = plan
        .jobs
        .iter()
        .flat_map(|job| &job.steps)
        .filter_map(|step| step.rollback.as_ref())
        .map(|hook| hook.plugin.as_str())
        .collect();
    for plugin in aliases.into_iter().filter_map(|alias| verified.get(alias)) {
        kept.keep(&plugin.sha256, &plugin.bytes)
            .map_err(|source| LoadError::KeepHooks {
                alias: plugin.alias.clone(),
                state_dir: state_dir.to_owned(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
name: stages
plugins:
  echo:
    source: echo.wasm
jobs:
  build:
    steps:
      - uses: echo
  test:
    needs: build
    steps:
      - uses: echo
  docs:
    steps:
      - uses: echo
        limits:
          memory-mb: 512
";

    fn draft() -> (tempfile::TempDir, Draft) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gantry.yml"), MANIFEST).unwrap();
        let draft = Draft::read(Some(dir.path())).unwrap();
        (dir, draft)
    }

    #[test]
    fn the_final_plan_names_its_manifest_by_digest_not_by_text() {
        let (_dir, draft) = draft();
        let plan = draft.finish();
        assert_eq!(
            plan.manifest_sha256,
            crate::digest::sha256_hex(MANIFEST.as_bytes())
        );
    }

    #[test]
    fn narrowing_keeps_a_job_and_what_it_needs() {
        let (_dir, mut draft) = draft();
        draft.narrow_to(&["test".to_owned()]).unwrap();
        let ids: Vec<&str> = draft.plan().jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["build", "test"]);
        let error = draft.narrow_to(&["deploy".to_owned()]).unwrap_err();
        assert!(matches!(error, LoadError::Usage(_)), "{error}");
    }

    #[test]
    fn a_step_over_the_memory_budget_is_a_located_manifest_error() {
        let (_dir, draft) = draft();
        draft.check_memory(512 << 20).unwrap();
        let LoadError::Manifest(errors) = draft.check_memory(256 << 20).unwrap_err() else {
            panic!("a manifest error");
        };
        assert_eq!(errors.len(), 1);
        // The docs job's step, at its `uses:` value.
        assert_eq!(errors[0].position, Some((15, 15)));
        assert!(errors[0].message.contains("512 MiB"), "{}", errors[0]);
        assert!(
            errors[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("--memory-budget")
        );
    }

    #[test]
    fn a_plugin_that_does_not_verify_refuses_the_lock_with_exit_class_pins() {
        let (dir, draft) = draft();
        std::fs::write(dir.path().join("echo.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let error = draft.lock(&LockFile::default(), None).err().unwrap();
        assert!(matches!(error, LoadError::Pins(_)), "{error}");
        assert!(error.nothing_ran().unwrap().contains("pin"));
    }
}
