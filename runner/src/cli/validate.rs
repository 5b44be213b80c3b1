//! `gantry validate`: checks a manifest, and — when every plugin it names
//! is readable and matches its pin — every step against its plugin's
//! metadata, without running anything.

use super::console::{errln, outln};
use std::path::PathBuf;

use clap::Args;

use super::common::{SecretArgs, read_draft};
use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::plugin::{self, LockFile};

/// Check a manifest for mistakes without running anything.
///
/// Also warns about what is valid but probably unintended: plugins no step
/// uses, steps that may write but have no rollback hook, and secrets passed
/// in a step's `env:` under a name its plugin's metadata says it never reads,
/// and `${{ secrets.NAME }}` that no `--secret`/`--secrets-file` given here
/// provides (an error for `gantry run`).
///
/// When the plugins are readable and match their pins, each step's `with:`
/// and `permissions` are also checked against its plugin's metadata.
#[derive(Debug, Args)]
pub struct ValidateCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// The secrets `gantry run` will be given, so `${{ secrets.NAME }}`
    /// that none of them provides is warned about
    #[command(flatten)]
    secrets: SecretArgs,
    /// The inputs and variables `gantry run` will be given, checked and
    /// shown
    #[command(flatten)]
    given: super::given::GivenArgs,
}

impl ValidateCommand {
    pub fn execute(self) -> Outcome {
        let mut draft = read_draft(self.manifest.as_deref())?;
        self.given.apply(&mut draft, false)?;
        // Metadata is only trusted from verified bytes; anything short of
        // that leaves the check to `gantry run`, which verifies first.
        let verified = LockFile::read(&LockFile::path_in(&draft.plan().root))
            .ok()
            .and_then(|lock| plugin::verify_all(draft.plan(), &lock).ok());
        // `None` when the plugins could not be verified: then nothing was
        // checked against their metadata.
        let described = match &verified {
            Some(verified) => match draft.apply_metadata(verified) {
                Ok(described) => Some(described),
                Err(error) => {
                    // Nothing runs under `validate`: the problems alone.
                    return Err(Failure::from(error).without_closing());
                }
            },
            None => None,
        };
        let checked = described.is_some();
        let described = described.unwrap_or_default();
        for warning in crate::lint::lints(draft.plan(), &described) {
            errln!("warning: {warning}");
        }
        let secrets = self.secrets.load()?;
        let provided: Vec<&str> = secrets.iter().map(|(name, _)| name).collect();
        for secret in crate::lint::unprovided_secrets(draft.plan(), &provided) {
            // A warning here: validate does not know what `run` will get.
            let located = draft.error_at(secret.location, secret.message());
            let place = match located.position {
                Some((line, column)) => {
                    format!("{}:{line}:{column}: ", located.file.display())
                }
                None => String::new(),
            };
            errln!(
                "warning: {place}{}\nhint: {}",
                secret.message(),
                secret.hint()
            );
        }
        let plan = draft.finish();
        let steps: usize = plan.jobs.iter().map(|j| j.steps.len()).sum();
        outln!(
            "{}: valid ({} jobs, {steps} steps, {} plugins{})",
            plan.manifest_path.display(),
            plan.jobs.len(),
            plan.plugins.len(),
            if checked {
                ", steps checked against plugin metadata"
            } else {
                ""
            }
        );
        for line in super::given::describe(&plan).lines() {
            outln!("  {line}");
        }
        // What the pipeline may reach is worth seeing at review time.
        for job in &plan.jobs {
            for step in job.steps.iter().filter(|s| !s.grants.network.is_empty()) {
                outln!(
                    "  network: step `{}` of job `{}` may reach {}",
                    step.display_name,
                    job.id,
                    step.grants.destinations()
                );
            }
        }
        Ok(Exit::Success)
    }
}
