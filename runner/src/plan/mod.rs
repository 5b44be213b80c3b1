//! Resolves a parsed manifest into a [`Plan`]: every name checked, every
//! path made absolute, every expression parsed, jobs put in execution order.
//!
//! All the errors of a manifest are collected and reported together, each
//! with its file, line and column. Once a plan exists the engine never looks
//! at YAML again, and nothing in a plan can fail to resolve at run time
//! except what depends on run-time values.
//!
//! This module holds the plan's types and [`resolve`], the entry. The work
//! is split by concern: `resolve` walks the manifest (the `Resolver`),
//! `graph` orders jobs by `needs`, `matrix` expands `strategy.matrix`,
//! `plugins` checks the `plugins:` block, `grants` resolves `permissions:`
//! and keeps paths inside the manifest's folder, `expressions` checks what
//! each `${{ }}` may read, and `groups` inlines step group files.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::Location;

use crate::expr::{Expression, Template, Value};
use crate::manifest::{LoadedManifest, ManifestErrors, did_you_mean};
use crate::network::NetworkGrant;
use crate::plugin::compile_limits::CompileLimits;

mod expressions;
mod grants;
mod graph;
mod groups;
mod matrix;
mod plugins;
mod resolve;

use expressions::Scope;
pub use groups::GroupCall;
pub use matrix::{MAX_MATRIX_COMBINATIONS, expand_matrix};
use resolve::Resolver;

/// Default wall-clock limit of a step, as in GitHub Actions (360 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(360 * 60);
/// Default cap on a step's linear memory.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// Files a step may hold open at once unless `limits.files` says otherwise.
pub const DEFAULT_MAX_FILES: u32 = 256;
/// What a step's `/tmp` and upload folders may hold unless `limits.disk-mb`
/// says otherwise, in MiB.
pub const DEFAULT_DISK_MB: u64 = 1024;

/// A fully resolved pipeline.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub manifest_path: PathBuf,
    /// The sha256 of the manifest's bytes, which name the plan in hand-off
    /// bundles and run attestations. The text itself stays in the load
    /// stage, whose checks are the last to point at its lines.
    pub manifest_sha256: String,
    /// The manifest's canonical folder.
    pub root: PathBuf,
    /// Private CA certificates for component steps' HTTPS (`ca-file:`).
    pub ca_file: Option<PathBuf>,
    pub env: Vec<(String, Template)>,
    pub plugins: IndexMap<String, PluginRef>,
    /// Jobs in execution order: each after the jobs it needs, otherwise in
    /// file order.
    pub jobs: Vec<JobPlan>,
    /// The declared `inputs:`, in the order written.
    pub inputs: Vec<crate::inputs::InputDecl>,
    /// What the command line and the host give the run (input values,
    /// vars, `github`, `runner`): empty until the command fills it.
    pub given: crate::given::Given,
}

impl Plan {
    /// Steps the whole run would start if every job ran: each job's steps
    /// once per matrix instance.
    pub fn step_count(&self) -> usize {
        self.jobs
            .iter()
            .map(|job| job.instance_count() * job.steps.len())
            .sum()
    }
}

/// A plugin the pipeline may run.
#[derive(Debug, Clone)]
pub struct PluginRef {
    pub alias: String,
    /// The `source` as written, for messages and the lock file.
    pub source: String,
    /// The absolute path of the module.
    pub path: PathBuf,
    /// The inline pin from the manifest, if any (64 lowercase hex).
    pub inline_sha256: Option<String>,
    /// What compiling it may take (`limits:` on the plugin).
    pub compile_limits: CompileLimits,
    /// Who must have signed its bytes (`verify:` on the plugin), if anyone.
    pub signature: Option<crate::signature::SignaturePolicy>,
}

#[derive(Debug)]
pub struct JobPlan {
    pub id: String,
    pub name: String,
    pub needs: Vec<String>,
    pub condition: Option<Expression>,
    pub env: Vec<(String, Template)>,
    /// `outputs:`, evaluated when the job ends.
    pub outputs: Vec<(String, Template)>,
    /// One entry per matrix combination; empty when the job has no matrix.
    pub matrix: Vec<MatrixCombination>,
    pub fail_fast: bool,
    /// How many matrix combinations may run at once.
    pub max_parallel: Option<usize>,
    pub timeout: Duration,
    pub continue_on_error: bool,
    pub steps: Vec<StepPlan>,
}

/// One combination of a job's matrix, in the order its keys were written.
pub type MatrixCombination = IndexMap<String, Value>;

impl JobPlan {
    /// How many times the job runs: once per combination, or once.
    pub fn instance_count(&self) -> usize {
        self.matrix.len().max(1)
    }

    /// The name of one instance: `build (linux, 1.80)` for a matrix job.
    pub fn instance_name(&self, combination: Option<&MatrixCombination>) -> String {
        match combination {
            Some(values) if !values.is_empty() => {
                let shown: Vec<String> = values.values().map(Value::to_output_string).collect();
                format!("{} ({})", self.name, shown.join(", "))
            }
            _ => self.name.clone(),
        }
    }
}

#[derive(Debug)]
pub struct StepPlan {
    pub id: Option<String>,
    /// Its position in the job, from 1.
    pub number: usize,
    /// What a person reads in logs: the step's name, else its id, else its plugin.
    /// A name with `${{ }}` is shown as written here; the engine shows it
    /// expanded ([`StepPlan::name_template`]).
    pub display_name: String,
    /// The step's `name:` when it holds `${{ }}`: expanded when the step
    /// comes up, as GitHub Actions does (no secrets).
    pub name_template: Option<Template>,
    pub plugin: String,
    /// Where the step's `uses:` is written, for errors about the step.
    pub location: Location,
    /// Inputs in manifest order, each with its `INPUT_*` variable name.
    pub inputs: Vec<Input>,
    pub env: Vec<(String, Template)>,
    pub condition: Option<Expression>,
    pub continue_on_error: bool,
    pub timeout: Duration,
    pub memory_bytes: u64,
    /// Files it may hold open at once (`limits.files`).
    pub max_files: u32,
    /// What its `/tmp` and upload folders may hold (`limits.disk-mb`).
    pub disk_bytes: u64,
    pub grants: Grants,
    pub retry: RetryPolicy,
    pub artifacts: StepArtifacts,
    /// Its compensation hook, if it declares one.
    pub rollback: Option<RollbackPlan>,
    /// The innermost step group this step runs in, when it comes from a
    /// group file (`uses: ./steps/publish.yml`); the job's steps list every
    /// group's steps in place, each pointing at its call.
    pub group: Option<std::sync::Arc<GroupCall>>,
    /// Inside a group: the step's path from the job, `publish/upload`
    /// (each level the call's id, else `step-N`), naming it in reports and
    /// the journal.
    pub path: Option<String>,
}

impl StepPlan {
    /// The templates the step evaluates with its inputs, its rollback
    /// hook's inputs and its `env`, each with where it was written (the
    /// step's own location for `env`, whose entries carry none).
    pub fn input_templates(&self) -> impl Iterator<Item = (&Template, Location)> {
        let hook_inputs = self
            .rollback
            .as_ref()
            .and_then(|hook| hook.inputs.as_deref())
            .unwrap_or_default();
        self.inputs
            .iter()
            .chain(hook_inputs)
            .map(|input| (&input.value, input.location))
            .chain(
                self.env
                    .iter()
                    .map(|(_, template)| (template, self.location)),
            )
    }
}

/// The artifacts a step uploads and downloads.
#[derive(Debug)]
pub struct StepArtifacts {
    pub upload: Vec<String>,
    pub download: Vec<String>,
    /// Where `artifacts:` is written.
    pub location: Location,
}

/// A step's `rollback:` hook.
#[derive(Debug)]
pub struct RollbackPlan {
    /// The plugin alias that compensates.
    pub plugin: String,
    /// Its own `with:`; `None` reuses the step's inputs.
    pub inputs: Option<Vec<Input>>,
    pub timeout: Duration,
}

/// Whether `name` may name an artifact (it becomes a folder name).
pub fn is_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// How often a failed step is tried again, and how long to wait between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each.
    pub backoff: Duration,
}

impl RetryPolicy {
    pub const ONCE: RetryPolicy = RetryPolicy {
        attempts: 1,
        backoff: Duration::ZERO,
    };

    /// The wait before attempt number `attempt` (2 or more).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        self.backoff.saturating_mul(1 << doublings)
    }
}

#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub variable: String,
    pub value: Template,
    /// Where the `with:` key is written (the step's `uses:` for a default
    /// taken from plugin metadata).
    pub location: Location,
}

/// What a step may do in the manifest's folder, mounted at `/workspace`:
/// the plan's own type, so nothing below the plan depends on the YAML
/// model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceAccess {
    None,
    Read,
    Write,
}

impl WorkspaceAccess {
    /// The word the manifest and the journal use.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceAccess::None => "none",
            WorkspaceAccess::Read => "read",
            WorkspaceAccess::Write => "write",
        }
    }
}

/// Everything a step may touch besides its own private `/tmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    pub workspace: WorkspaceAccess,
    pub dirs: Vec<DirMount>,
    pub host_env: Vec<String>,
    /// Destinations a component step may reach, in the order written.
    pub network: Vec<NetworkGrant>,
}

impl Grants {
    /// The network destinations, canonical (`https://api.example.com:443`),
    /// comma-separated, as `plan` and `validate` show them.
    pub fn destinations(&self) -> String {
        let all: Vec<String> = self.network.iter().map(ToString::to_string).collect();
        all.join(", ")
    }
}

/// A host folder mounted into a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMount {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// The environment variable a `with:` key reaches a step as (defined in
/// `gantry-abi`, where the SDK reads it too).
pub use gantry_abi::inputs::input_variable;

/// Checks and resolves a loaded manifest.
pub fn resolve(loaded: &LoadedManifest) -> Result<Plan, ManifestErrors> {
    let mut resolver = Resolver {
        loaded,
        errors: Vec::new(),
        groups: groups::GroupFiles::default(),
    };
    let plan = resolver.plan();
    if resolver.errors.is_empty() {
        Ok(plan)
    } else {
        Err(ManifestErrors(resolver.errors))
    }
}

/// `[A-Za-z0-9_-]+`, the shape of ids and aliases.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_variables_follow_the_abi() {
        assert_eq!(input_variable("name"), "INPUT_NAME");
        assert_eq!(input_variable("image-tag"), "INPUT_IMAGE_TAG");
        assert_eq!(input_variable("two words"), "INPUT_TWO_WORDS");
    }

    #[test]
    fn sha256_shape() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }

    #[test]
    fn identifiers_are_ascii_letters_digits_dash_and_underscore() {
        assert!(is_identifier("build_2-final"));
        for invalid in [
            "",
            "has space",
            "dotted.id",
            "ünï",
            "a/b",
            "semi;colon",
            "$x",
            "tab\t",
        ] {
            assert!(!is_identifier(invalid), "{invalid:?} was accepted");
        }
    }

    #[test]
    fn retry_backoff_doubles() {
        let policy = RetryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(policy.delay_before(2), Duration::from_millis(100));
        assert_eq!(policy.delay_before(3), Duration::from_millis(200));
        assert_eq!(policy.delay_before(4), Duration::from_millis(400));
    }
}
