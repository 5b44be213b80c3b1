//! The resolver: one walk over a loaded manifest, job by job and step by
//! step, turning each into its plan type and collecting every error with
//! its file, line and column instead of stopping at the first.
//!
//! Checks with their own vocabulary live in the sibling modules, each
//! adding methods to the one [`Resolver`]: the job graph (`graph`),
//! matrices (`matrix`), plugins (`plugins`), grants and paths (`grants`),
//! what an expression may read (`expressions`) and step groups (`groups`).

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use super::{
    DEFAULT_DISK_MB, DEFAULT_MAX_FILES, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, Input, JobPlan, Plan,
    PluginRef, RetryPolicy, RollbackPlan, Scope, StepArtifacts, StepPlan, groups, input_variable,
    is_artifact_name, is_identifier,
};
use crate::expr::Template;
use crate::manifest::model::{self, Scalar};
use crate::manifest::{LoadedManifest, ManifestError, did_you_mean};
use std::collections::BTreeMap;

/// The most `limits.files` may grant.
const MAX_FILES: u64 = 65_536;
/// The most `limits.disk-mb` may grant.
const MAX_DISK_MB: u64 = 1 << 20;
/// The most a 32-bit guest can address.
const MAX_MEMORY_MB: u64 = 4096;
/// The most attempts a step may ask for.
const MAX_ATTEMPTS: u32 = 10;

/// One resolution under way: the manifest, the errors found so far and
/// the step group files read.
pub(super) struct Resolver<'a> {
    pub(super) loaded: &'a LoadedManifest,
    pub(super) errors: Vec<ManifestError>,
    /// The step group files read so far, and the one being resolved.
    pub(super) groups: groups::GroupFiles,
}

impl Resolver<'_> {
    /// The file whose locations errors point into now: the manifest, or
    /// the step group file being resolved.
    pub(super) fn current_file(&self) -> (&Path, &str) {
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

    pub(super) fn error(
        &mut self,
        location: Location,
        message: impl Into<String>,
    ) -> &mut ManifestError {
        let (file, source) = self.current_file();
        let error = ManifestError::at(file, source, location, message);
        self.errors.push(error);
        self.errors.last_mut().expect("just pushed")
    }

    pub(super) fn plan(&mut self) -> Plan {
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

    pub(super) fn step(
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
}
