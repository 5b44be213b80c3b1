//! Resolves a parsed manifest into a [`Plan`]: every name checked, every
//! path made absolute, every expression parsed, jobs put in execution order.
//!
//! All the errors of a manifest are collected and reported together, each
//! with its file, line and column. Once a plan exists the engine never looks
//! at YAML again, and nothing in a plan can fail to resolve at run time
//! except what depends on run-time values.

use crate::plugin::compile_limits::CompileLimits;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use crate::expr::{self, Expression, Template, Value};
use crate::manifest::model::{self, Access, Scalar};
use crate::manifest::{LoadedManifest, ManifestError, ManifestErrors, did_you_mean};
use crate::network::NetworkGrant;

mod groups;
pub use groups::GroupCall;

/// Default wall-clock limit of a step, as in GitHub Actions (360 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(360 * 60);
/// Default cap on a step's linear memory.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// Files a step may hold open at once unless `limits.files` says otherwise.
pub const DEFAULT_MAX_FILES: u32 = 256;
/// The most `limits.files` may grant.
const MAX_FILES: u64 = 65_536;
/// What a step's `/tmp` and upload folders may hold unless `limits.disk-mb`
/// says otherwise, in MiB.
pub const DEFAULT_DISK_MB: u64 = 1024;
/// The most `limits.disk-mb` may grant.
const MAX_DISK_MB: u64 = 1 << 20;
/// The most a 32-bit guest can address.
const MAX_MEMORY_MB: u64 = 4096;
/// The most combinations one matrix may expand to, as in GitHub Actions.
pub const MAX_MATRIX_COMBINATIONS: usize = 256;
/// The most attempts a step may ask for.
const MAX_ATTEMPTS: u32 = 10;
/// The contexts an expression may read.
const CONTEXTS: [&str; 12] = [
    "env", "steps", "needs", "matrix", "strategy", "secrets", "job", "gantry", "inputs", "vars",
    "github", "runner",
];
/// Guest paths that gantry itself mounts.
const RESERVED_GUEST_PATHS: [&str; 4] = ["/workspace", "/tmp", "/artifacts", "/gantry"];

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

    /// Narrows the plan to job `id` and every job it needs, directly or not
    /// (`gantry run --job`).
    pub fn keep_job_and_needs(&mut self, id: &str) -> Result<(), String> {
        self.keep_jobs_and_needs(&[id.to_owned()])
    }

    /// Narrows the plan to the jobs `ids` and every job they need
    /// (`gantry export --job`).
    pub fn keep_jobs_and_needs(&mut self, ids: &[String]) -> Result<(), String> {
        for id in ids {
            if !self.jobs.iter().any(|job| job.id == *id) {
                let hint = did_you_mean(id, self.jobs.iter().map(|j| j.id.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!("there is no job `{id}` in this pipeline{hint}"));
            }
        }
        let mut wanted: BTreeSet<String> = ids.iter().cloned().collect();
        // Plan order puts every job after its needs, so one backward pass
        // collects the whole closure.
        for job in self.jobs.iter().rev() {
            if wanted.contains(&job.id) {
                wanted.extend(job.needs.iter().cloned());
            }
        }
        self.jobs.retain(|job| wanted.contains(&job.id));
        Ok(())
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

impl From<model::WorkspaceAccess> for WorkspaceAccess {
    fn from(access: model::WorkspaceAccess) -> Self {
        match access {
            model::WorkspaceAccess::None => WorkspaceAccess::None,
            model::WorkspaceAccess::Read => WorkspaceAccess::Read,
            model::WorkspaceAccess::Write => WorkspaceAccess::Write,
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

struct Resolver<'a> {
    loaded: &'a LoadedManifest,
    errors: Vec<ManifestError>,
    /// The step group files read so far, and the one being resolved.
    groups: groups::GroupFiles,
}

impl Resolver<'_> {
    /// The file whose locations errors point into now: the manifest, or
    /// the step group file being resolved.
    fn current_file(&self) -> (&Path, &str) {
        self.groups
            .current()
            .unwrap_or((&self.loaded.path, &self.loaded.source))
    }

    /// An error at `location` in the file `step` is written in: the
    /// manifest, or its step group's file.
    fn step_error(
        &mut self,
        step: &StepPlan,
        location: Location,
        message: impl Into<String>,
    ) -> &mut ManifestError {
        let Some(call) = &step.group else {
            return self.error(location, message);
        };
        let error = ManifestError::at(&call.file, &call.source, location, message);
        self.errors.push(error);
        self.errors.last_mut().expect("just pushed")
    }

    fn error(&mut self, location: Location, message: impl Into<String>) -> &mut ManifestError {
        let (file, source) = self.current_file();
        let error = ManifestError::at(file, source, location, message);
        self.errors.push(error);
        self.errors.last_mut().expect("just pushed")
    }

    fn plan(&mut self) -> Plan {
        let manifest = &self.loaded.manifest;
        let mut plugins = self.plugins();
        let env = self.env_block(&manifest.env, &Scope::pipeline());
        let order = self.job_order();
        let jobs: Vec<JobPlan> = order
            .into_iter()
            .map(|index| {
                let (id, job) = manifest
                    .jobs
                    .get_index(index)
                    .expect("index from job_order");
                self.job(id, job, &plugins)
            })
            .collect();
        plugins.extend(self.groups.take_plugins());
        self.check_downloads(&jobs);
        self.check_matrix_uploads(&jobs);
        let (inputs, input_errors) = crate::inputs::declarations(self.loaded);
        self.errors.extend(input_errors);
        let ca_file = manifest.ca_file.as_ref().map(|ca| {
            let path = crate::state::normalize(&self.loaded.root.join(&ca.value));
            if !path.is_file() {
                self.error(
                    ca.referenced,
                    format!("the CA file `{}` does not exist", path.display()),
                );
            }
            path
        });
        Plan {
            name: manifest.name.value.clone(),
            manifest_path: self.loaded.path.clone(),
            manifest_sha256: crate::digest::sha256_hex(self.loaded.source.as_bytes()),
            root: self.loaded.root.clone(),
            ca_file,
            env,
            plugins,
            jobs,
            inputs,
            given: crate::given::Given::default(),
        }
    }

    /// The instances of a matrix job run the same steps, so each would
    /// upload the same artifact name and, running at once, replace each
    /// other's (the last to finish would win). GitHub's upload-artifact
    /// refuses that conflict; so does gantry, before anything runs.
    fn check_matrix_uploads(&mut self, jobs: &[JobPlan]) {
        for job in jobs.iter().filter(|job| job.matrix.len() > 1) {
            for step in &job.steps {
                for name in &step.artifacts.upload {
                    self.step_error(
                        step,
                        step.artifacts.location,
                        format!(
                            "the {} instances of matrix job `{}` would each upload artifact `{name}`, replacing each other's",
                            job.matrix.len(),
                            job.id
                        ),
                    )
                    .hint = Some(
                        "an artifact name belongs to one upload at a time: upload from a job without a matrix, or give each variant its own job and artifact name".into(),
                    );
                }
            }
        }
    }

    /// A download of a name no step uploads could never succeed.
    fn check_downloads(&mut self, jobs: &[JobPlan]) {
        let steps = || jobs.iter().flat_map(|job| &job.steps);
        let uploaded: Vec<&String> = steps().flat_map(|s| &s.artifacts.upload).collect();
        for step in steps() {
            for name in &step.artifacts.download {
                if !uploaded.contains(&name) {
                    self.step_error(
                        step,
                        step.artifacts.location,
                        format!("artifact `{name}` is downloaded but no step uploads it"),
                    )
                    .hint = Some(format!(
                        "add `artifacts: {{ upload: [{name}] }}` to the step that produces it"
                    ));
                }
            }
        }
    }

    fn plugins(&mut self) -> IndexMap<String, PluginRef> {
        let mut plugins = IndexMap::new();
        for (alias, spec) in &self.loaded.manifest.plugins {
            plugins.insert(alias.value.clone(), self.plugin_ref(alias, spec));
        }
        plugins
    }

    /// One entry of a `plugins:` block (the manifest's or a step group's),
    /// checked: its alias, its path inside the folder, its pin's shape.
    fn plugin_ref(&mut self, alias: &Spanned<String>, spec: &model::PluginSpec) -> PluginRef {
        if !is_identifier(&alias.value) {
            self.error(
                alias.referenced,
                format!("invalid plugin alias `{}`", alias.value),
            )
            .hint = Some("use letters, digits, `-` and `_`".into());
        }
        // A registry source has no path; its reference is checked here,
        // so a typo is a manifest error with its position.
        let path = if crate::plugin::oci::is_oci(&spec.source.value) {
            if let Err(message) = crate::plugin::oci::OciRef::parse(&spec.source.value) {
                self.error(spec.source.referenced, message);
            }
            None
        } else {
            self.plugin_path(&alias.value, &spec.source)
        };
        let inline_sha256 = spec.sha256.as_ref().and_then(|pin| {
            if is_sha256_hex(&pin.value) {
                Some(pin.value.clone())
            } else {
                self.error(
                    pin.referenced,
                    format!("malformed sha256 `{}` for plugin `{}`", pin.value, alias.value),
                )
                .hint = Some(
                    "a pin is 64 lowercase hex digits; remove it and run `gantry lock` to compute it"
                        .into(),
                );
                None
            }
        });
        let signature = spec.verify.as_ref().and_then(|verify| {
            let root = self.loaded.root.clone();
            let within = |written: &str| within_root(&root, written);
            crate::signature::policy::resolve(&alias.value, verify, &within)
                .map_err(|errors| {
                    for error in errors {
                        self.error(error.location, error.message).hint = error.hint;
                    }
                })
                .ok()
        });
        PluginRef {
            alias: alias.value.clone(),
            source: spec.source.value.clone(),
            path: path.unwrap_or_default(),
            inline_sha256,
            compile_limits: self.compile_limits(spec.limits.as_ref()),
            signature,
        }
    }

    /// A plugin's compile limits: the defaults, each raised (or lowered)
    /// by its key under the plugin's `limits:`.
    fn compile_limits(&mut self, limits: Option<&model::PluginLimits>) -> CompileLimits {
        let mut result = CompileLimits::default();
        let Some(limits) = limits else {
            return result;
        };
        let mib = 1 << 20;
        let mut set =
            |value: &Option<Spanned<u64>>, key: &str, max: u64, target: &mut u64, unit: u64| {
                if let Some(value) = value {
                    if (1..=max).contains(&value.value) {
                        *target = value.value * unit;
                    } else {
                        self.error(
                            value.referenced,
                            format!("`{key}` must be between 1 and {max}, found {}", value.value),
                        );
                    }
                }
            };
        set(
            &limits.functions,
            "functions",
            10_000_000,
            &mut result.functions,
            1,
        );
        set(
            &limits.code_mb,
            "code-mb",
            1024,
            &mut result.code_bytes,
            mib,
        );
        set(&limits.locals, "locals", 1_000_000, &mut result.locals, 1);
        set(
            &limits.data_mb,
            "data-mb",
            1024,
            &mut result.data_bytes,
            mib,
        );
        let mut seconds = result.deadline.as_secs();
        set(
            &limits.compile_seconds,
            "compile-seconds",
            3600,
            &mut seconds,
            1,
        );
        result.deadline = Duration::from_secs(seconds);
        result
    }

    /// A plugin's absolute path, refusing anything outside the manifest's
    /// folder tree, whether by `..`, an absolute path or a symlink.
    fn plugin_path(&mut self, alias: &str, source: &Spanned<String>) -> Option<PathBuf> {
        let root = &self.loaded.root;
        let outside = |resolver: &mut Self| {
            resolver
                .error(
                    source.referenced,
                    format!(
                        "the source `{}` of plugin `{alias}` is outside the manifest's folder",
                        source.value
                    ),
                )
                .hint = Some(format!(
                "copy the module under `{}` and point `source` at it",
                root.display()
            ));
            None
        };
        match within_root(root, &source.value) {
            Some(path) => Some(path),
            None => outside(self),
        }
    }

    /// Job indices in execution order: needs first, otherwise file order.
    fn job_order(&mut self) -> Vec<usize> {
        let jobs = &self.loaded.manifest.jobs;
        let mut needs: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
        for (id, job) in jobs {
            let mut list = Vec::new();
            if let Some(spanned) = &job.needs {
                for need in spanned.value.ids() {
                    match jobs.keys().position(|key| key.value == need) {
                        Some(index) => list.push(index),
                        None => {
                            let known = jobs.keys().map(|k| k.value.as_str());
                            let hint = did_you_mean(need, known)
                                .map(|s| format!("did you mean `{s}`?"))
                                .unwrap_or_else(|| {
                                    format!("the jobs are: {}", job_list(jobs.keys()))
                                });
                            self.error(
                                spanned.referenced,
                                format!("job `{}` needs `{need}`, which is not a job", id.value),
                            )
                            .hint = Some(hint);
                        }
                    }
                }
            }
            needs.push(list);
        }
        let mut done = vec![false; jobs.len()];
        let mut order = Vec::with_capacity(jobs.len());
        while order.len() < jobs.len() {
            let ready = (0..jobs.len()).find(|&i| !done[i] && needs[i].iter().all(|&n| done[n]));
            match ready {
                Some(index) => {
                    done[index] = true;
                    order.push(index);
                }
                None => {
                    let cycle = find_cycle(&needs, &done);
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&i| jobs.get_index(i).expect("job index").0.value.as_str())
                        .collect();
                    let (first, _) = jobs.get_index(cycle[0]).expect("job index");
                    self.error(
                        first.referenced,
                        format!(
                            "the jobs' `needs` form a cycle: {} (each needs the next)",
                            names.join(" -> ")
                        ),
                    );
                    return order;
                }
            }
        }
        order
    }

    fn job(
        &mut self,
        id: &Spanned<String>,
        job: &model::Job,
        plugins: &IndexMap<String, PluginRef>,
    ) -> JobPlan {
        if !is_identifier(&id.value) {
            self.error(id.referenced, format!("invalid job id `{}`", id.value))
                .hint = Some("use letters, digits, `-` and `_`".into());
        }
        let needs: Vec<String> = job
            .needs
            .as_ref()
            .map(|n| n.value.ids().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let matrix_keys = job
            .strategy
            .as_ref()
            .and_then(|strategy| strategy.matrix.as_ref())
            .map(|matrix| {
                let mut keys: Vec<String> = matrix.value.axes.keys().cloned().collect();
                for entry in &matrix.value.include {
                    keys.extend(
                        entry
                            .keys()
                            .filter(|k| !keys.contains(k))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                }
                keys
            })
            .unwrap_or_default();
        let job_outputs = self
            .loaded
            .manifest
            .jobs
            .iter()
            .map(|(id, job)| {
                let names = job.outputs.keys().map(|name| name.value.clone()).collect();
                (id.value.clone(), names)
            })
            .collect();
        let job_scope = Scope {
            steps: None,
            needs: Some(needs.clone()),
            matrix: true,
            matrix_keys,
            job_outputs,
            secrets: false,
            group_inputs: None,
            place: "a job's `env`",
        };
        let env = self.env_block(&job.env, &job_scope);
        let condition = job.condition.as_ref().and_then(|c| {
            let scope = Scope {
                matrix: false,
                place: "a job's `if`",
                ..job_scope.clone()
            };
            self.condition(c, &scope)
        });
        let mut earlier_ids: Vec<String> = Vec::new();
        let mut steps = Vec::with_capacity(job.steps.len());
        for step in &job.steps {
            let scope = Scope {
                steps: Some(earlier_ids.clone()),
                secrets: true,
                place: "a step",
                ..job_scope.clone()
            };
            if crate::manifest::group::is_group_reference(&step.uses.value) {
                // The group's steps join the job's list in place.
                self.group_call(step, plugins, &scope, None, &mut steps);
            } else {
                let mut planned = self.step(step, plugins, &scope);
                planned.number = groups::next_number(&steps);
                steps.push(planned);
            }
            if let Some(step_id) = &step.id {
                if earlier_ids.contains(&step_id.value) {
                    self.error(
                        step_id.referenced,
                        format!(
                            "duplicate step id `{}` in job `{}`",
                            step_id.value, id.value
                        ),
                    )
                    .hint = Some("step ids must be unique within their job".into());
                }
                earlier_ids.push(step_id.value.clone());
            }
        }
        if job.steps.is_empty() {
            self.error(id.referenced, format!("job `{}` has no steps", id.value));
        }
        let outputs_scope = Scope {
            steps: Some(earlier_ids),
            place: "a job's `outputs`",
            ..job_scope.clone()
        };
        let outputs = job
            .outputs
            .iter()
            .map(|(name, value)| {
                if !is_identifier(&name.value) {
                    self.error(
                        name.referenced,
                        format!("invalid output name `{}`", name.value),
                    )
                    .hint = Some("use letters, digits, `-` and `_`".into());
                }
                (name.value.clone(), self.template(value, &outputs_scope))
            })
            .collect();
        let (matrix, fail_fast, max_parallel) = self.strategy(job.strategy.as_ref());
        JobPlan {
            id: id.value.clone(),
            name: job
                .name
                .as_ref()
                .map_or_else(|| id.value.clone(), |n| n.value.clone()),
            needs,
            condition,
            env,
            outputs,
            matrix,
            fail_fast,
            max_parallel,
            timeout: self.timeout(job.timeout_minutes.as_ref()),
            continue_on_error: job.continue_on_error.as_ref().is_some_and(|c| c.value),
            steps,
        }
    }

    fn strategy(
        &mut self,
        strategy: Option<&model::Strategy>,
    ) -> (Vec<MatrixCombination>, bool, Option<usize>) {
        let Some(strategy) = strategy else {
            return (Vec::new(), true, None);
        };
        let matrix = match &strategy.matrix {
            None => Vec::new(),
            Some(matrix) => match expand_matrix(&matrix.value) {
                Ok(combinations) => combinations,
                Err(message) => {
                    self.error(matrix.referenced, message);
                    Vec::new()
                }
            },
        };
        let max_parallel = match &strategy.max_parallel {
            Some(n) if n.value == 0 => {
                self.error(n.referenced, "`max-parallel` must be at least 1");
                None
            }
            Some(n) => Some(n.value as usize),
            None => None,
        };
        let fail_fast = strategy.fail_fast.as_ref().is_none_or(|f| f.value);
        (matrix, fail_fast, max_parallel)
    }

    /// `timeout-minutes` of a job or a step.
    fn timeout(&mut self, minutes: Option<&Spanned<f64>>) -> Duration {
        match minutes {
            None => DEFAULT_TIMEOUT,
            Some(minutes)
                if minutes.value.is_finite()
                    && minutes.value > 0.0
                    && minutes.value <= 525_600.0 =>
            {
                Duration::from_secs_f64(minutes.value * 60.0)
            }
            Some(minutes) => {
                self.error(
                    minutes.referenced,
                    format!(
                        "`timeout-minutes` must be a positive number of minutes, found {}",
                        minutes.value
                    ),
                );
                DEFAULT_TIMEOUT
            }
        }
    }

    fn step(
        &mut self,
        step: &model::Step,
        plugins: &IndexMap<String, PluginRef>,
        scope: &Scope,
    ) -> StepPlan {
        if let Some(id) = &step.id
            && !is_identifier(&id.value)
        {
            self.error(id.referenced, format!("invalid step id `{}`", id.value))
                .hint = Some("a step id uses only letters, digits, `-` and `_`".into());
        }
        if !crate::manifest::group::is_group_reference(&step.uses.value) {
            self.plugin_alias(&step.uses, plugins);
        }
        let artifacts = step.artifacts.as_ref().map_or_else(
            || StepArtifacts {
                upload: Vec::new(),
                download: Vec::new(),
                location: step.uses.referenced,
            },
            |artifacts| self.artifacts(artifacts),
        );
        let inputs = self.inputs(&step.with, scope);
        let env = self.env_block(&step.env, scope);
        let condition = step.condition.as_ref().and_then(|c| {
            let scope = Scope {
                secrets: false,
                place: "a step's `if`",
                ..scope.clone()
            };
            self.condition(c, &scope)
        });

        let name_template = step
            .name
            .as_ref()
            .filter(|name| name.value.contains("${{"))
            .and_then(|name| {
                let scope = Scope {
                    secrets: false,
                    place: "a step's `name`",
                    ..scope.clone()
                };
                let value = Spanned {
                    value: Scalar::String(name.value.clone()),
                    referenced: name.referenced,
                    defined: name.defined,
                };
                let template = self.template(&value, &scope);
                (!template.is_literal()).then_some(template)
            });
        let timeout = self.timeout(step.timeout_minutes.as_ref());
        let rollback = step.rollback.as_ref().map(|hook| RollbackPlan {
            plugin: hook.value.uses.as_ref().map_or_else(
                || step.uses.value.clone(),
                |uses| {
                    self.plugin_alias(uses, plugins);
                    uses.value.clone()
                },
            ),
            inputs: hook
                .value
                .with
                .as_ref()
                .map(|with| self.inputs(with, scope)),
            timeout: match &hook.value.timeout_minutes {
                Some(minutes) => self.timeout(Some(minutes)),
                None => timeout,
            },
        });
        let retry = self.retry(step.retry.as_ref());
        let memory_mb = match &step.limits.memory_mb {
            None => DEFAULT_MEMORY_MB,
            Some(mb) if (1..=MAX_MEMORY_MB).contains(&mb.value) => mb.value,
            Some(mb) => {
                self.error(
                    mb.referenced,
                    format!(
                        "`memory-mb` must be between 1 and {MAX_MEMORY_MB}, found {}",
                        mb.value
                    ),
                );
                DEFAULT_MEMORY_MB
            }
        };

        let max_files = match &step.limits.files {
            None => DEFAULT_MAX_FILES,
            Some(files) if (1..=MAX_FILES).contains(&files.value) => files.value as u32,
            Some(files) => {
                self.error(
                    files.referenced,
                    format!(
                        "`files` must be between 1 and {MAX_FILES}, found {}",
                        files.value
                    ),
                );
                DEFAULT_MAX_FILES
            }
        };

        let disk_mb = match &step.limits.disk_mb {
            None => DEFAULT_DISK_MB,
            Some(mb) if (1..=MAX_DISK_MB).contains(&mb.value) => mb.value,
            Some(mb) => {
                self.error(
                    mb.referenced,
                    format!(
                        "`disk-mb` must be between 1 and {MAX_DISK_MB}, found {}",
                        mb.value
                    ),
                );
                DEFAULT_DISK_MB
            }
        };

        StepPlan {
            id: step.id.as_ref().map(|id| id.value.clone()),
            number: 0,
            display_name: step
                .name
                .as_ref()
                .or(step.id.as_ref())
                .map_or_else(|| step.uses.value.clone(), |n| n.value.clone()),
            name_template,
            plugin: step.uses.value.clone(),
            location: step.uses.referenced,
            inputs,
            env,
            condition,
            continue_on_error: step.continue_on_error.as_ref().is_some_and(|c| c.value),
            timeout,
            memory_bytes: memory_mb * 1024 * 1024,
            max_files,
            disk_bytes: disk_mb << 20,
            grants: self.grants(&step.permissions),
            retry,
            artifacts,
            rollback,
            group: None,
            path: None,
        }
    }

    /// Checks that `uses` names a declared plugin.
    fn plugin_alias(&mut self, uses: &Spanned<String>, plugins: &IndexMap<String, PluginRef>) {
        if plugins.contains_key(&uses.value) {
            return;
        }
        let hint = did_you_mean(&uses.value, plugins.keys().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| "add the plugin under `plugins:` with its source".into());
        self.error(uses.referenced, format!("unknown plugin `{}`", uses.value))
            .hint = Some(hint);
    }

    /// A `with:` block as inputs, each with its `INPUT_*` variable.
    fn inputs(
        &mut self,
        with: &IndexMap<Spanned<String>, Spanned<Scalar>>,
        scope: &Scope,
    ) -> Vec<Input> {
        let mut inputs: Vec<Input> = Vec::with_capacity(with.len());
        for (name, value) in with {
            let variable = input_variable(&name.value);
            if name.value.is_empty() || name.value.contains('=') {
                self.error(
                    name.referenced,
                    format!("invalid input name `{}`", name.value),
                );
            } else if let Some(other) = inputs.iter().find(|i| i.variable == variable) {
                self.error(
                    name.referenced,
                    format!(
                        "inputs `{}` and `{}` both become `{variable}`",
                        other.name, name.value
                    ),
                );
            }
            let value = self.template(value, scope);
            inputs.push(Input {
                name: name.value.clone(),
                variable,
                value,
                location: name.referenced,
            });
        }
        inputs
    }

    /// A step's `artifacts:`, each name checked.
    fn artifacts(&mut self, artifacts: &Spanned<model::Artifacts>) -> StepArtifacts {
        let mut seen: Vec<&str> = Vec::new();
        for name in artifacts
            .value
            .upload
            .iter()
            .chain(&artifacts.value.download)
        {
            if !is_artifact_name(name) {
                self.error(
                    artifacts.referenced,
                    format!("invalid artifact name `{name}`"),
                )
                .hint = Some("an artifact name uses only letters, digits, `.`, `-` and `_`".into());
            } else if seen.contains(&name.as_str()) {
                self.error(
                    artifacts.referenced,
                    format!("artifact `{name}` is named twice in one step"),
                )
                .hint = Some("a step either uploads or downloads a name, once".into());
            }
            seen.push(name);
        }
        StepArtifacts {
            upload: artifacts.value.upload.clone(),
            download: artifacts.value.download.clone(),
            location: artifacts.referenced,
        }
    }

    fn retry(&mut self, retry: Option<&Spanned<model::Retry>>) -> RetryPolicy {
        let Some(retry) = retry else {
            return RetryPolicy::ONCE;
        };
        let attempts = &retry.value.attempts;
        if !(1..=MAX_ATTEMPTS).contains(&attempts.value) {
            self.error(
                attempts.referenced,
                format!(
                    "`attempts` must be between 1 and {MAX_ATTEMPTS}, found {}",
                    attempts.value
                ),
            );
        }
        let backoff = match &retry.value.backoff_seconds {
            None => Duration::ZERO,
            Some(seconds)
                if seconds.value.is_finite() && (0.0..=3600.0).contains(&seconds.value) =>
            {
                Duration::from_secs_f64(seconds.value)
            }
            Some(seconds) => {
                self.error(
                    seconds.referenced,
                    format!(
                        "`backoff-seconds` must be between 0 and 3600, found {}",
                        seconds.value
                    ),
                );
                Duration::ZERO
            }
        };
        RetryPolicy {
            attempts: attempts.value.clamp(1, MAX_ATTEMPTS),
            backoff,
        }
    }

    fn grants(&mut self, permissions: &model::Permissions) -> Grants {
        let mut dirs: Vec<DirMount> = Vec::new();
        for grant in &permissions.dirs {
            let guest = grant.guest.value.trim_end_matches('/').to_owned();
            let guest_path = Path::new(&guest);
            let reserved = RESERVED_GUEST_PATHS
                .iter()
                .find(|r| guest_path.starts_with(r) || Path::new(r).starts_with(guest_path));
            if !guest.starts_with('/')
                || normalize_within(guest_path.strip_prefix("/").unwrap_or(guest_path)).is_none()
            {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{}` must be absolute, without `..`",
                        grant.guest.value
                    ),
                );
            } else if guest == "/" {
                self.error(grant.guest.referenced, "a folder cannot be mounted at `/`");
            } else if let Some(reserved) = reserved {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{guest}` overlaps `{reserved}`, which gantry mounts itself"
                    ),
                );
            } else if dirs.iter().any(|d| d.guest == guest) {
                self.error(
                    grant.guest.referenced,
                    format!("`{guest}` is mounted twice"),
                );
            }
            // `..` resolved here, lexically, so a folder inside the project
            // is recognised as such and opened without following links.
            let host = crate::state::normalize(&self.loaded.root.join(&grant.host.value));
            dirs.push(DirMount {
                host,
                guest,
                writable: grant.access == Access::Write,
            });
        }
        let mut host_env = Vec::new();
        for name in &permissions.env {
            if name.value.is_empty() || name.value.contains(['=', '\0']) {
                self.error(
                    name.referenced,
                    format!("invalid environment variable name `{}`", name.value),
                );
            } else {
                host_env.push(name.value.clone());
            }
        }
        let mut network: Vec<NetworkGrant> = Vec::new();
        for destination in &permissions.network {
            match NetworkGrant::parse(&destination.value) {
                Ok(grant) if network.contains(&grant) => {
                    self.error(
                        destination.referenced,
                        format!("`{}` is granted twice", destination.value),
                    );
                }
                Ok(grant) => network.push(grant),
                Err(why) => {
                    self.error(destination.referenced, why);
                }
            }
        }
        Grants {
            workspace: permissions
                .workspace
                .as_ref()
                .map_or(WorkspaceAccess::Read, |w| w.value.into()),
            dirs,
            host_env,
            network,
        }
    }

    fn env_block(
        &mut self,
        env: &BTreeMap<String, Spanned<Scalar>>,
        scope: &Scope,
    ) -> Vec<(String, Template)> {
        env.iter()
            .map(|(name, value)| {
                if name.is_empty() || name.contains(['=', '\0']) {
                    self.error(
                        value.referenced,
                        format!("invalid environment variable name `{name}`"),
                    );
                }
                (name.clone(), self.template(value, scope))
            })
            .collect()
    }

    /// Parses a `with:`/`env:` value; strings may embed `${{ }}`.
    fn template(&mut self, value: &Spanned<Scalar>, scope: &Scope) -> Template {
        let text = value.value.to_string();
        if !matches!(value.value, Scalar::String(_)) {
            return Template::literal(text);
        }
        match Template::parse_with(&text, crate::engine::FUNCTIONS) {
            Ok(template) => {
                self.check_references(value.referenced, &template.references(), scope);
                template
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                Template::literal(text)
            }
        }
    }

    fn condition(&mut self, value: &Spanned<Scalar>, scope: &Scope) -> Option<Expression> {
        // `if:` is an expression with or without `${{ }}` around it.
        let text = value.value.to_string();
        let parsed = if text.trim_start().starts_with("${{") {
            Template::parse_with(text.trim(), crate::engine::FUNCTIONS).and_then(|template| {
                template
                    .as_single_expression()
                    .cloned()
                    .ok_or_else(|| expr::ExprError {
                        message:
                            "an `if:` holds one expression; put all of it inside a single `${{ }}`"
                                .into(),
                        offset: 0,
                    })
            })
        } else {
            expr::parse_expression_with(&text, crate::engine::FUNCTIONS)
        };
        match parsed {
            Ok(expression) => {
                self.check_references(value.referenced, &expression.references(), scope);
                Some(expression)
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                None
            }
        }
    }

    fn expr_error(&mut self, location: Location, error: &expr::ExprError) {
        let column_shift = error.offset + self.quote_width(location);
        let (file, source) = self.current_file();
        let error = ManifestError::at(
            file,
            source,
            location,
            format!("in an expression: {}", error.message),
        )
        .shifted(column_shift);
        self.errors.push(error);
    }

    /// 1 when the scalar at `location` is quoted, so columns inside it line up.
    fn quote_width(&self, location: Location) -> usize {
        let line = self
            .current_file()
            .1
            .lines()
            .nth((location.line() as usize).saturating_sub(1));
        let first = line.and_then(|l| {
            l.chars()
                .nth((location.column() as usize).saturating_sub(1))
        });
        usize::from(matches!(first, Some('\'' | '"')))
    }

    /// Every context an expression reads must exist where it is written:
    /// `steps.<id>` an earlier step of the job, `needs.<id>` a job in
    /// `needs`, secrets only in a step's `with:` and `env:`.
    fn check_references(&mut self, location: Location, references: &[Vec<String>], scope: &Scope) {
        for path in references {
            let Some(context) = path.first() else {
                continue;
            };
            let place = scope.place;
            let unavailable =
                |context: &str| format!("the `{context}` context is not available in {place}");
            match context.to_ascii_lowercase().as_str() {
                "env" | "job" | "gantry" | "vars" => {}
                "github" => {
                    let fields = crate::given::GITHUB_FIELDS.map(|(field, ..)| field);
                    self.check_field(location, "github", path.get(1), &fields);
                }
                "runner" => {
                    let fields = crate::given::RUNNER_FIELDS;
                    self.check_field(location, "runner", path.get(1), &fields);
                }
                // Inside a step group, `inputs` are the group's (see
                // `plan::groups`); elsewhere the pipeline's (`check_input`).
                "inputs" if scope.group_inputs.is_some() => {
                    self.group_input_reference(location, path, scope);
                }
                "inputs" => self.check_input(location, path.get(1)),
                "steps" => match &scope.steps {
                    None => {
                        self.error(location, unavailable("steps"));
                    }
                    Some(ids) => {
                        if let Some(step) = path.get(1)
                            && !ids.iter().any(|id| id.eq_ignore_ascii_case(step))
                        {
                            let hint = if ids.is_empty() {
                                "a step can only read the outputs of earlier steps with an `id` in its job"
                                    .to_owned()
                            } else {
                                format!("the earlier steps of this job are: {}", ids.join(", "))
                            };
                            self.error(
                                location,
                                format!("`steps.{step}` is not an earlier step of this job"),
                            )
                            .hint = Some(hint);
                        }
                    }
                },
                "needs" => match &scope.needs {
                    None => {
                        self.error(location, unavailable("needs"));
                    }
                    Some(ids) => {
                        if let Some(job) = path.get(1)
                            && !ids.iter().any(|id| id.eq_ignore_ascii_case(job))
                        {
                            self.error(
                                location,
                                format!("`needs.{job}` is not a job this job needs"),
                            )
                            .hint = Some(format!("add `{job}` to the job's `needs:`"));
                        } else if let (Some(job), Some(outputs), Some(name)) =
                            (path.get(1), path.get(2), path.get(3))
                            && outputs == "outputs"
                            && let Some(declared) = scope
                                .job_outputs
                                .iter()
                                .find(|(id, _)| id.eq_ignore_ascii_case(job))
                                .map(|(_, names)| names)
                            && !declared.iter().any(|n| n.eq_ignore_ascii_case(name))
                        {
                            // A job's outputs are exactly its `outputs:`: any
                            // other name would always read as empty.
                            let hint = match did_you_mean(name, declared.iter().map(String::as_str))
                            {
                                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                                None if declared.is_empty() => {
                                    format!("job `{job}` declares no `outputs:`")
                                }
                                None => {
                                    format!("the outputs of `{job}` are: {}", declared.join(", "))
                                }
                            };
                            self.error(location, format!("job `{job}` has no output `{name}`"))
                                .hint = Some(hint);
                        }
                    }
                },
                "matrix" | "strategy" if !scope.matrix => {
                    self.error(location, unavailable(context));
                }
                "matrix"
                    if path.get(1).is_some_and(|key| {
                        !scope
                            .matrix_keys
                            .iter()
                            .any(|k| k.eq_ignore_ascii_case(key))
                    }) =>
                {
                    let key = &path[1];
                    // Without the key, the value is always empty.
                    let hint = match did_you_mean(key, scope.matrix_keys.iter().map(String::as_str))
                    {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None if scope.matrix_keys.is_empty() => {
                            "this job has no `strategy.matrix`".to_owned()
                        }
                        None => format!("the matrix keys are: {}", scope.matrix_keys.join(", ")),
                    };
                    self.error(
                        location,
                        format!("`matrix.{key}` is not a key of this job's matrix"),
                    )
                    .hint = Some(hint);
                }
                "matrix" | "strategy" => {}
                "secrets" if !scope.secrets => {
                    self.error(location, format!("secrets cannot be used in {place}"))
                        .hint = Some(
                        "pass a secret through a step's `with:` or `env:`, so it reaches only that step".into(),
                    );
                }
                "secrets" => {}
                _ => {
                    let hint = did_you_mean(context, CONTEXTS)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("the contexts are: {}", CONTEXTS.join(", ")));
                    self.error(location, format!("unknown context `{context}`"))
                        .hint = Some(hint);
                }
            }
        }
    }
}

impl Resolver<'_> {
    /// `github.X` and `runner.X` must name a field gantry fills: GitHub has
    /// more (`github.event`, `github.token`, …), and one of those would
    /// always read as empty here.
    fn check_field(
        &mut self,
        location: Location,
        context: &str,
        field: Option<&String>,
        fields: &[&str],
    ) {
        let Some(field) = field else {
            return;
        };
        if fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
            return;
        }
        let hint = match did_you_mean(field, fields.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => format!("gantry fills: {}", fields.join(", ")),
        };
        self.error(
            location,
            format!("`{context}.{field}` is not a field gantry fills"),
        )
        .hint = Some(hint);
    }

    /// `inputs.NAME` must name a declared input: any other name would
    /// always read as empty.
    fn check_input(&mut self, location: Location, name: Option<&String>) {
        let Some(name) = name else {
            return;
        };
        let declared = crate::inputs::declared_names(self.loaded);
        if declared.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return;
        }
        let hint = match did_you_mean(name, declared.iter().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if declared.is_empty() => {
                format!(
                    "declare it under the top-level `inputs:`, e.g. `inputs: {{ {name}: {{ type: string }} }}`"
                )
            }
            None => format!("the declared inputs are: {}", declared.join(", ")),
        };
        self.error(location, format!("`inputs.{name}` is not a declared input"))
            .hint = Some(hint);
    }
}

/// What an expression may read where it is written.
#[derive(Debug, Clone)]
struct Scope {
    /// The steps whose results are visible; `None` where there is no
    /// `steps` context.
    steps: Option<Vec<String>>,
    /// The jobs in `needs`; `None` where there is no `needs` context.
    needs: Option<Vec<String>>,
    /// Whether `matrix` and `strategy` exist here.
    matrix: bool,
    /// The keys of the job's matrix (empty without one): `matrix.KEY` must
    /// name one of them.
    matrix_keys: Vec<String>,
    /// The `outputs:` each job declares, by job id: `needs.J.outputs.NAME`
    /// must name one of J's.
    job_outputs: BTreeMap<String, Vec<String>>,
    secrets: bool,
    /// Inside a step group: the inputs the group declares, which `inputs`
    /// means there. `None` outside groups.
    group_inputs: Option<Vec<String>>,
    /// Where the expression is, for messages.
    place: &'static str,
}

impl Scope {
    fn pipeline() -> Scope {
        Scope {
            steps: None,
            needs: None,
            matrix: false,
            matrix_keys: Vec::new(),
            job_outputs: BTreeMap::new(),
            secrets: false,
            group_inputs: None,
            place: "the pipeline's `env`",
        }
    }
}

/// Expands `strategy.matrix` as GitHub Actions does: the product of the
/// named lists, minus every combination an `exclude` entry matches, then
/// each `include` entry merged into every combination whose original
/// values it agrees with, or added as a combination of its own.
pub fn expand_matrix(matrix: &model::Matrix) -> Result<Vec<MatrixCombination>, String> {
    let convert = |json: &serde_json::Value, key: &str| {
        Value::from_json(json)
            .ok_or_else(|| format!("matrix value of `{key}` is not a usable value"))
    };
    let mut combinations: Vec<MatrixCombination> = vec![IndexMap::new()];
    for (key, values) in &matrix.axes {
        if values.is_empty() {
            return Err(format!("matrix key `{key}` has an empty list"));
        }
        let mut next = Vec::with_capacity(combinations.len() * values.len());
        for combination in &combinations {
            for value in values {
                let mut extended = combination.clone();
                extended.insert(key.clone(), convert(value, key)?);
                next.push(extended);
            }
            if next.len() > MAX_MATRIX_COMBINATIONS {
                return Err(format!(
                    "the matrix expands to more than {MAX_MATRIX_COMBINATIONS} combinations"
                ));
            }
        }
        combinations = next;
    }
    if matrix.axes.is_empty() {
        combinations.clear();
    }
    for exclude in &matrix.exclude {
        let pattern = to_values(exclude, convert)?;
        combinations.retain(|combination| {
            !pattern
                .iter()
                .all(|(key, value)| combination.get(key) == Some(value))
        });
    }
    let original_keys: Vec<&String> = matrix.axes.keys().collect();
    let originals = combinations.len();
    for include in &matrix.include {
        let entry = to_values(include, convert)?;
        let mut matched = false;
        for combination in combinations.iter_mut().take(originals) {
            let agrees = entry.iter().all(|(key, value)| {
                !original_keys.contains(&key) || combination.get(key) == Some(value)
            });
            if agrees {
                matched = true;
                for (key, value) in &entry {
                    combination.insert(key.clone(), value.clone());
                }
            }
        }
        if !matched {
            combinations.push(entry);
        }
    }
    if combinations.len() > MAX_MATRIX_COMBINATIONS {
        return Err(format!(
            "the matrix expands to more than {MAX_MATRIX_COMBINATIONS} combinations"
        ));
    }
    if combinations.is_empty() {
        return Err("the matrix has no combinations left after `exclude`".into());
    }
    Ok(combinations)
}

fn to_values(
    entry: &IndexMap<String, serde_json::Value>,
    convert: impl Fn(&serde_json::Value, &str) -> Result<Value, String>,
) -> Result<MatrixCombination, String> {
    entry
        .iter()
        .map(|(key, value)| Ok((key.clone(), convert(value, key)?)))
        .collect()
}

fn job_list<'a>(keys: impl Iterator<Item = &'a Spanned<String>>) -> String {
    keys.map(|k| k.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One cycle among the jobs not yet ordered, as indices in `needs` order.
fn find_cycle(needs: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let start = (0..needs.len())
        .find(|&i| !done[i])
        .expect("an unordered job exists");
    let mut path = vec![start];
    let mut seen = BTreeSet::from([start]);
    let mut current = start;
    loop {
        let next = needs[current]
            .iter()
            .copied()
            .find(|&n| !done[n])
            .expect("an unordered job waits on another unordered job");
        if seen.contains(&next) {
            let from = path.iter().position(|&i| i == next).expect("seen on path");
            let mut cycle = path.split_off(from);
            cycle.push(next);
            return cycle;
        }
        seen.insert(next);
        path.push(next);
        current = next;
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

/// Normalises a relative path lexically, or `None` if it climbs out of its
/// starting folder.
/// `written`, a path relative to the manifest's folder `root`, as an
/// absolute path under it; `None` when it is empty, absolute, climbs out, or
/// (through a symlink) lands outside the tree.
fn within_root(root: &Path, written: &str) -> Option<PathBuf> {
    let relative = Path::new(written);
    if written.is_empty() || relative.is_absolute() {
        return None;
    }
    let path = root.join(normalize_within(relative)?);
    // A symlink inside the tree may still point out of it.
    if let Ok(real) = path.canonicalize()
        && !real.starts_with(root)
    {
        return None;
    }
    Some(path)
}

fn normalize_within(path: &Path) -> Option<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(normal)
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
    fn relative_paths_may_not_climb_out() {
        assert_eq!(
            normalize_within(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize_within(Path::new("a/../../b")), None);
        assert_eq!(normalize_within(Path::new("/etc")), None);
    }

    #[test]
    fn cycles_are_reported_in_order() {
        // 0 needs 1, 1 needs 2, 2 needs 0.
        let needs = vec![vec![1], vec![2], vec![0]];
        let cycle = find_cycle(&needs, &[false, false, false]);
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        for pair in cycle.windows(2) {
            assert!(needs[pair[0]].contains(&pair[1]), "{cycle:?}");
        }
    }

    fn matrix(yaml: &str) -> Result<Vec<String>, String> {
        let matrix: model::Matrix = serde_saphyr::from_str(yaml).unwrap();
        expand_matrix(&matrix).map(|combinations| {
            combinations
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|(k, v)| format!("{k}={}", v.to_output_string()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect()
        })
    }

    #[test]
    fn matrix_product_in_key_order() {
        assert_eq!(
            matrix("os: [linux, mac]\nv: [1, 2]\n").unwrap(),
            ["os=linux,v=1", "os=linux,v=2", "os=mac,v=1", "os=mac,v=2"]
        );
    }

    #[test]
    fn matrix_include_and_exclude_as_github_documents() {
        // GitHub's documented example: `include` entries extend matching
        // combinations, may not overwrite original values, and otherwise
        // become combinations of their own.
        let yaml = "fruit: [apple, pear]\nanimal: [cat, dog]\ninclude:\n  - color: green\n  - color: pink\n    animal: cat\n  - fruit: apple\n    shape: circle\n  - fruit: banana\n  - fruit: banana\n    animal: cat\n";
        assert_eq!(
            matrix(yaml).unwrap(),
            [
                "fruit=apple,animal=cat,color=pink,shape=circle",
                "fruit=apple,animal=dog,color=green,shape=circle",
                "fruit=pear,animal=cat,color=pink",
                "fruit=pear,animal=dog,color=green",
                "fruit=banana",
                "fruit=banana,animal=cat",
            ]
        );
        let yaml = "os: [linux, mac]\nv: [1, 2]\nexclude:\n  - os: mac\n    v: 1\n";
        assert_eq!(
            matrix(yaml).unwrap(),
            ["os=linux,v=1", "os=linux,v=2", "os=mac,v=2"]
        );
        assert_eq!(
            matrix("include:\n  - { a: 1 }\n  - { a: 2 }\n").unwrap(),
            ["a=1", "a=2"]
        );
    }

    #[test]
    fn matrix_limits() {
        let big = "a: [1,2,3,4,5,6,7,8,9,10]\nb: [1,2,3,4,5,6,7,8,9,10]\nc: [1,2,3]\n";
        assert!(matrix(big).unwrap_err().contains("more than 256"));
        assert!(matrix("a: []\n").unwrap_err().contains("empty list"));
        assert!(
            matrix("a: [1]\nexclude:\n  - a: 1\n")
                .unwrap_err()
                .contains("no combinations")
        );
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
