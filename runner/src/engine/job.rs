//! One job instance (a job, or one combination of its matrix): its steps
//! in order, each evaluated, run in the sandbox (retried if asked), and its
//! results handed to the steps after it.
//!
//! After a failure the remaining steps are skipped unless their `if:` asks
//! for `failure()` or `always()`; after a cancellation, unless it asks for
//! `always()` or `cancelled()`. The job's own `timeout-minutes` bounds the
//! whole instance: a step never gets more time than the job has left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod group;

use tokio_util::sync::CancellationToken;

use super::contexts::{ContextsBuilder, StepRecord};
use super::log::StepLog;
use super::rollback::hook_spec::{HookOwner, hook_spec};
use super::status::{JobStatus, asks_for_status, runs_when_cancelled};
use super::{JobResult, Shared, Strategy, run_off_executor};
use crate::abi::step_text;
use crate::artifacts::{ArtifactMounts, PutLimits};
use crate::display::human_duration;
use crate::expr::{Contexts, FunctionHost, Template};
use crate::journal::{Entry, HookSpec};
use crate::plan::WorkspaceAccess;
use crate::plan::{Input, JobPlan, MatrixCombination, StepPlan};
use crate::report::{Conclusion, Event, StepRef};
use crate::sandbox::step_files::StepFiles;
use crate::sandbox::{Failure, Mount, StepInvocation, StepModule};

/// One running job instance.
pub struct JobInstance<'a> {
    shared: &'a Shared,
    job: &'a JobPlan,
    /// The instance's name in reports: `build (linux)`.
    name: String,
    matrix: Option<&'a MatrixCombination>,
    strategy: Strategy,
    needs: &'a BTreeMap<String, JobResult>,
    cancel: CancellationToken,
    deadline: Instant,
    env: BTreeMap<String, String>,
    steps: BTreeMap<String, StepRecord>,
    failed: bool,
    timed_out: bool,
    /// The journal number of the step running now, and whether its entries
    /// must reach the disk (it has a rollback hook).
    current_seq: Option<(u64, bool)>,
    /// The name of each step whose `name:` holds `${{ }}`, by position,
    /// expanded when the step came up.
    names: BTreeMap<usize, String>,
    /// Inside a step group: the group's inputs, the `inputs` context of
    /// its steps.
    group_inputs: Option<BTreeMap<String, String>>,
    /// Whose timeout `deadline` is: `None` for the job's, else the step
    /// group's name and its `timeout-minutes`.
    deadline_of: Option<(String, Duration)>,
}

impl<'a> JobInstance<'a> {
    pub fn new(
        shared: &'a Shared,
        job: &'a JobPlan,
        name: String,
        matrix: Option<&'a MatrixCombination>,
        strategy: Strategy,
        needs: &'a BTreeMap<String, JobResult>,
        cancel: CancellationToken,
    ) -> Self {
        JobInstance {
            shared,
            job,
            name,
            matrix,
            strategy,
            needs,
            cancel,
            deadline: Instant::now() + job.timeout,
            env: BTreeMap::new(),
            steps: BTreeMap::new(),
            failed: false,
            timed_out: false,
            current_seq: None,
            names: BTreeMap::new(),
            group_inputs: None,
            deadline_of: None,
        }
    }

    pub async fn run(mut self) -> JobResult {
        self.shared
            .reporter
            .report(Event::JobStarted { job: &self.name });
        let started = Entry::JobStarted {
            job: self.name.clone(),
        };
        self.shared.append(started, false);
        self.env = self.shared.pipeline_env.clone();
        let contexts = self.contexts(false).build();
        let job_env =
            self.shared
                .render_env(&self.name, &self.job.env, &contexts, self.job_status());
        self.env.extend(job_env);
        // Step groups' steps are in the list in place; `run_steps` opens
        // and closes each group around them.
        self.run_steps().await;
        let conclusion = self.status();
        let outputs = self.outputs();
        self.shared.reporter.report(Event::JobFinished {
            job: &self.name,
            conclusion,
            outputs: &outputs,
        });
        let finished = Entry::JobFinished {
            job: self.name.clone(),
            status: conclusion.as_str().into(),
        };
        self.shared.append(finished, false);
        JobResult {
            conclusion,
            outputs,
        }
    }

    /// What the status functions answer now.
    fn job_status(&self) -> JobStatus {
        JobStatus {
            failed: self.failed,
            cancelled: self.cancel.is_cancelled(),
        }
    }

    fn status(&self) -> Conclusion {
        if self.failed {
            Conclusion::Failure
        } else if self.cancel.is_cancelled() {
            Conclusion::Cancelled
        } else {
            Conclusion::Success
        }
    }

    fn contexts(&self, with_secrets: bool) -> ContextsBuilder<'_> {
        self.contexts_with(&self.env, with_secrets)
    }

    /// The contexts with `env` as the `env` context.
    fn contexts_with<'e>(
        &'e self,
        env: &'e BTreeMap<String, String>,
        with_secrets: bool,
    ) -> ContextsBuilder<'e> {
        let builder = self
            .shared
            .contexts()
            .job(&self.job.id, self.status())
            .env(env)
            .steps(&self.steps)
            .needs(self.needs)
            .group_inputs(self.group_inputs.as_ref())
            .matrix(
                self.matrix,
                self.strategy,
                self.job.fail_fast,
                self.job.max_parallel,
            );
        if with_secrets {
            builder.secrets(&self.shared.options.secrets)
        } else {
            builder
        }
    }

    /// The job's `outputs:`, evaluated now; secrets never leave the job.
    fn outputs(&self) -> BTreeMap<String, String> {
        self.render_outputs(&self.job.outputs)
    }

    /// `outputs:` (a job's or a step group's) evaluated in the contexts of
    /// the moment, each masked.
    fn render_outputs(&self, templates: &[(String, Template)]) -> BTreeMap<String, String> {
        let contexts = self.contexts(false).build();
        let functions = self.shared.functions(self.job_status());
        templates
            .iter()
            .map(|(name, template)| {
                let value = template
                    .render_with(&contexts, &functions)
                    .unwrap_or_else(|e| {
                        self.note(&format!(
                            "output `{name}` could not be evaluated: {}",
                            step_text(&e.message)
                        ));
                        String::new()
                    });
                (name.clone(), self.shared.mask_step(&value))
            })
            .collect()
    }

    fn note(&self, text: &str) {
        self.shared.reporter.report(Event::StepNote {
            job: &self.name,
            text,
        });
    }

    async fn step(&mut self, step: &StepPlan) -> StepRecord {
        let skipped = StepRecord {
            outputs: BTreeMap::new(),
            outcome: Conclusion::Skipped,
            conclusion: Conclusion::Skipped,
        };
        let status = self.job_status();
        self.expand_name(step);
        let reason = match self.skip_reason(step.condition.as_ref()) {
            Ok(reason) => reason,
            Err(reason) => return self.fail_before_start(step, &reason),
        };
        if !reason.is_empty() {
            self.shared.reporter.report(Event::StepSkipped {
                job: &self.name,
                step: self.step_ref(step),
                reason,
            });
            return skipped;
        }
        self.run_step(step, status).await
    }

    /// Expands a step's `name:` when it holds `${{ }}`. As GitHub
    /// Actions: the name sees the contexts of the moment (matrix, env,
    /// earlier steps, needs), never secrets; one that cannot be evaluated
    /// is shown as written. Inside a group it keeps the group's name in
    /// front.
    fn expand_name(&mut self, step: &StepPlan) {
        let Some(template) = &step.name_template else {
            return;
        };
        let contexts = self.contexts(false).build();
        let functions = self.shared.functions(self.job_status());
        if let Ok(name) = template.render_with(&contexts, &functions as &dyn FunctionHost) {
            let name = match &step.group {
                Some(call) => format!("{} / {name}", call.display),
                None => name,
            };
            self.names.insert(step.number, name);
        }
    }

    /// Why a step (or a step group) with this `if:` does not run now, or
    /// `""` when it runs; an error when its `if:` cannot be evaluated.
    fn skip_reason(
        &self,
        condition: Option<&crate::expr::Expression>,
    ) -> Result<&'static str, String> {
        let cancelled = self.cancel.is_cancelled();
        let functions = self.shared.functions(self.job_status());
        let should_run = match condition {
            None => Ok(!self.failed && !cancelled),
            Some(condition) => {
                let contexts = self.contexts(false).build();
                condition
                    .evaluate_with(&contexts, &functions)
                    .map(|value| {
                        value.is_truthy()
                            && (asks_for_status(condition) || (!self.failed && !cancelled))
                            && (!cancelled || runs_when_cancelled(condition))
                    })
                    // An expression's error may quote a value a step set.
                    .map_err(|e| {
                        let message = step_text(&e.message);
                        format!("its `if:` could not be evaluated: {message}")
                    })
            }
        };
        match should_run {
            Ok(true) if self.timed_out && self.deadline_of.is_some() => {
                Ok("its step group reached its timeout")
            }
            Ok(true) if self.timed_out => Ok("the job reached its timeout"),
            Ok(true) => Ok(""),
            Ok(false) if cancelled => Ok("the job was cancelled"),
            Ok(false) if condition.is_some() => Ok("its `if:` condition is false"),
            Ok(false) => Ok("an earlier step failed"),
            Err(reason) => Err(reason),
        }
    }

    /// Runs a step that is to run: its environment and inputs evaluated,
    /// its plugin in the sandbox, its results recorded.
    async fn run_step(&mut self, step: &StepPlan, status: JobStatus) -> StepRecord {
        let functions = self.shared.functions(status);
        let cancelled = self.cancel.is_cancelled();

        // Step env sees the job's env so far; inputs see the step env too.
        // Building the contexts is most of a small step's own cost in the
        // engine, and a step written without `${{ }}` reads none.
        let literal = has_no_expression(step);
        let build = |contexts: ContextsBuilder<'_>| {
            if literal {
                Contexts::default()
            } else {
                contexts.build()
            }
        };
        let contexts = build(self.contexts(true));
        let step_env = self
            .shared
            .render_env(&self.name, &step.env, &contexts, status);
        let mut guest_env = self.env.clone();
        guest_env.extend(step_env);
        let input_contexts = build(self.contexts_with(&guest_env, true));
        let mut inputs = Vec::with_capacity(step.inputs.len());
        for input in &step.inputs {
            match input
                .value
                .render_with(&input_contexts, &functions as &dyn FunctionHost)
            {
                Ok(value) => inputs.push((input.variable.clone(), value)),
                Err(e) => {
                    let reason = format!(
                        "input `{}` could not be evaluated: {}",
                        input.name,
                        step_text(&e.message)
                    );
                    return self.fail_before_start(step, &reason);
                }
            }
        }

        // WASI hands variables to the guest as C strings: a NUL byte would
        // cut a value short without anyone knowing.
        let with_nul = guest_env
            .iter()
            .chain(inputs.iter().map(|(k, v)| (k, v)))
            .find(|(name, value)| name.contains('\0') || value.contains('\0'));
        if let Some((name, _)) = with_nul {
            let reason = format!(
                "its variable `{}` contains a NUL byte, which no step can be given",
                step_text(name)
            );
            return self.fail_before_start(step, &reason);
        }

        let plugins = self.shared.plugins.clone();
        let module = match plugins.get(&step.plugin) {
            Some(Ok(module)) => module,
            Some(Err(reason)) => {
                self.started(step, None);
                let failure = Failure::Refused(reason.clone());
                return self.finish(step, Err(failure), StepFiles::default(), Duration::ZERO);
            }
            None => unreachable!("the plan only names declared plugins"),
        };
        let shared = self.shared;
        let artifacts =
            match ArtifactMounts::prepare(&step.artifacts, &shared.store, &shared.uploads) {
                Ok(artifacts) => artifacts,
                Err(reason) => return self.fail_before_start(step, &reason),
            };
        let owner = HookOwner {
            job: &self.name,
            step_name: self.step_name(step),
            step_id: self.step_ref(step).id,
        };
        let hook = match hook_spec(
            shared,
            self.job_status(),
            owner,
            step,
            &guest_env,
            &inputs,
            &input_contexts,
        ) {
            Ok(hook) => hook,
            Err(reason) => return self.fail_before_start(step, &reason),
        };
        // Journaled before the guest starts: if the runner dies from here
        // on, `gantry resume` compensates this step.
        self.started(step, hook);
        // A step that asked to run after a cancellation must not be stopped
        // by that same cancellation.
        let cancel = if cancelled {
            CancellationToken::new()
        } else {
            self.cancel.clone()
        };
        let (mut outcome, mut files, duration) = self
            .attempts(step, module, &guest_env, &inputs, &artifacts, &cancel)
            .await;
        if let Some(reason) = refuse_exports(&mut files.env) {
            if outcome.is_ok() {
                outcome = Err(Failure::StepFiles(reason));
            } else {
                self.note(&reason);
            }
        }
        let limits = PutLimits {
            max_bytes: shared.options.artifact_limit,
            ..PutLimits::default()
        };
        if outcome.is_ok()
            && let Err(reason) = artifacts.store_uploads(
                &shared.store,
                &shared.uploads,
                &limits,
                &self.name,
                &self.step_ref(step).key(),
            )
        {
            outcome = Err(Failure::Artifact(reason));
        }
        self.finish(step, outcome, files, duration)
    }

    /// Runs the step up to `retry.attempts` times, waiting longer before
    /// each new attempt; never again once cancelled or out of job time.
    async fn attempts(
        &mut self,
        step: &StepPlan,
        module: &StepModule,
        guest_env: &BTreeMap<String, String>,
        inputs: &[(String, String)],
        artifacts: &ArtifactMounts,
        cancel: &CancellationToken,
    ) -> (Result<(), Failure>, StepFiles, Duration) {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            if attempt > 1
                && let Err(e) = artifacts.empty_uploads()
            {
                let reason = format!("cannot empty its upload folders for another attempt: {e}");
                return (
                    Err(Failure::Setup(reason)),
                    StepFiles::default(),
                    started.elapsed(),
                );
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let job_limited = left < step.timeout;
            let mut invocation =
                self.invocation(step, guest_env, inputs, left.min(step.timeout), cancel);
            invocation.extra_dirs = artifacts.mounts().to_vec();
            if let Some((seq, true)) = self.current_seq {
                // A step with a hook: where its state is, in case the
                // runner dies before the step finishes.
                let journal = &self.shared.journal;
                invocation.on_state_file = Some(Box::new(move |path| {
                    let entry = Entry::StepStateFile {
                        seq,
                        path: path.to_owned(),
                    };
                    journal
                        .append(entry, true)
                        .map_err(|e| format!("cannot write the run journal: {e}"))
                }));
            }
            let run = run_off_executor(&self.shared.sandbox, module, invocation);
            let outcome = match run.outcome {
                Err(Failure::Timeout(_)) if job_limited => {
                    self.timed_out = true;
                    Err(Failure::Setup(self.deadline_reason()))
                }
                other => other,
            };
            let retryable = matches!(&outcome, Err(f) if *f != Failure::Cancelled)
                && !self.timed_out
                && !cancel.is_cancelled()
                && attempt < step.retry.attempts;
            if !retryable {
                return (outcome, run.files, started.elapsed());
            }
            attempt += 1;
            let delay = step.retry.delay_before(attempt);
            let reason = outcome.err().map(|f| f.to_string()).unwrap_or_default();
            self.note(&format!(
                "attempt {} of {} failed: {reason}; trying again in {}",
                attempt - 1,
                step.retry.attempts,
                human_duration(delay)
            ));
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return (Err(Failure::Cancelled), run.files, started.elapsed()),
            }
        }
    }

    /// The sandbox request for a step: environment in ABI order, mounts
    /// from its grants.
    fn invocation<'s>(
        &self,
        step: &'s StepPlan,
        step_env: &BTreeMap<String, String>,
        inputs: &[(String, String)],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> StepInvocation<'s> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        // Host variables come first so the manifest's own values win.
        for name in &step.grants.host_env {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.clone(), value);
            }
        }
        env.extend(step_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(inputs.iter().cloned());
        env.insert("GANTRY_PHASE".into(), "run".into());
        env.insert("GANTRY_RUN_ID".into(), self.shared.run_id.clone());
        env.insert("GANTRY_ARTIFACTS".into(), "/artifacts".into());
        let workspace = match step.grants.workspace {
            WorkspaceAccess::None => None,
            access => {
                env.insert("GANTRY_WORKSPACE".into(), "/workspace".into());
                Some(Mount {
                    host: self.shared.plan.root.clone(),
                    writable: access == WorkspaceAccess::Write,
                })
            }
        };
        let log = StepLog::new(
            self.shared.reporter.clone(),
            self.shared.masks.clone(),
            &self.name,
            self.step_name(step),
        );
        StepInvocation {
            program: &step.plugin,
            env: env.into_iter().collect(),
            workspace,
            dirs: &step.grants.dirs,
            extra_dirs: Vec::new(),
            timeout,
            memory_bytes: step.memory_bytes,
            max_files: step.max_files,
            disk_bytes: step.disk_bytes,
            output_limit: self.shared.options.output_limit,
            sink: log.sink(),
            cancel: cancel.clone(),
            on_state_file: None,
            network: &step.grants.network,
            on_network_denied: Some(log.denial_sink()),
        }
    }

    /// Reports and journals that a step starts.
    fn started(&mut self, step: &StepPlan, hook: Option<Box<HookSpec>>) {
        self.shared.reporter.report(Event::StepStarted {
            job: &self.name,
            step: self.step_ref(step),
            plugin: &step.plugin,
        });
        let seq = self.shared.next_seq();
        let durable = hook.is_some();
        self.current_seq = Some((seq, durable));
        let entry = Entry::StepStarted {
            seq,
            job: self.name.clone(),
            step: self.step_ref(step).key(),
            hook,
        };
        self.shared.append(entry, durable);
    }

    fn fail_before_start(&mut self, step: &StepPlan, reason: &str) -> StepRecord {
        self.started(step, None);
        self.finish(
            step,
            Err(Failure::Setup(reason.to_owned())),
            StepFiles::default(),
            Duration::ZERO,
        )
    }

    fn finish(
        &mut self,
        step: &StepPlan,
        outcome: Result<(), Failure>,
        files: StepFiles,
        duration: Duration,
    ) -> StepRecord {
        let reason = outcome
            .as_ref()
            .err()
            .map(|f| self.shared.mask(&f.to_string()));
        let status = match &outcome {
            Ok(()) => Conclusion::Success,
            Err(Failure::Cancelled) => Conclusion::Cancelled,
            Err(_) => Conclusion::Failure,
        };
        let output_names: Vec<String> = files.outputs.iter().map(|(k, _)| k.clone()).collect();
        if let Some((seq, durable)) = self.current_seq.take() {
            let masked = |pairs: &[(String, String)]| -> Vec<(String, String)> {
                pairs
                    .iter()
                    .map(|(k, v)| (self.shared.mask_step(k), self.shared.mask_step(v)))
                    .collect()
            };
            let entry = Entry::StepFinished {
                seq,
                status: status.as_str().into(),
                outputs: masked(&files.outputs).into_iter().collect(),
                state: masked(&files.state),
            };
            self.shared.append(entry, durable);
        }
        self.shared.reporter.report(Event::StepFinished {
            job: &self.name,
            step: self.step_ref(step),
            outcome: reason.as_deref().map_or(Ok(()), Err),
            status,
            continued_on_error: step.continue_on_error,
            outputs: &output_names,
            duration,
        });
        // Exported variables reach the following steps, as in GitHub Actions,
        // whether or not the step succeeded.
        self.env.extend(files.env);
        if !files.summary.trim().is_empty() {
            let masked = self.shared.mask_step(&files.summary);
            self.shared.add_summary(&masked);
        }
        let outcome = status;
        let conclusion = if outcome == Conclusion::Failure && step.continue_on_error {
            Conclusion::Success
        } else {
            outcome
        };
        if conclusion == Conclusion::Failure {
            self.shared
                .failed_steps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!(
                    "{}/{}",
                    self.name,
                    step.id.as_deref().unwrap_or(self.step_name(step))
                ));
        }
        StepRecord {
            outputs: files.outputs.into_iter().collect(),
            outcome,
            conclusion,
        }
    }
}

/// Whether gantry sets variables named like this itself (whatever the
/// case): a step's inputs, the ABI's own variables, a hook's saved state.
fn is_reserved(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["INPUT_", "GANTRY_", "STATE_"]
        .iter()
        .any(|prefix| upper.starts_with(prefix))
}

/// Drops from a step's `GANTRY_ENV` exports every reserved name (see
/// [`is_reserved`]) and every name or value holding a NUL byte; says why,
/// naming each, if there was any. A later step would otherwise see forged
/// inputs, lose its outputs and state to a redirected file, or get a
/// value silently cut short (as GitHub refuses `NODE_OPTIONS`).
fn refuse_exports(env: &mut Vec<(String, String)>) -> Option<String> {
    let mut reserved = Vec::new();
    let mut with_nul = Vec::new();
    env.retain(|(name, value)| {
        let shown = || format!("`{}`", step_text(name));
        if name.contains('\0') || value.contains('\0') {
            with_nul.push(shown());
        } else if is_reserved(name) {
            reserved.push(shown());
        } else {
            return true;
        }
        false
    });
    let mut why = Vec::new();
    if !reserved.is_empty() {
        why.push(format!(
            "{} reserved (gantry sets `INPUT_*`, `GANTRY_*` and `STATE_*` itself)",
            reserved.join(", ")
        ));
    }
    if !with_nul.is_empty() {
        why.push(format!("{} with a NUL byte", with_nul.join(", ")));
    }
    (!why.is_empty()).then(|| format!("`GANTRY_ENV` file: not exported: {}", why.join("; ")))
}

/// Whether the step's `env:`, `with:` and its hook's `with:` are all plain
/// text, so rendering them needs no contexts.
fn has_no_expression(step: &StepPlan) -> bool {
    let literal = |inputs: &[Input]| inputs.iter().all(|i| i.value.is_literal());
    step.env.iter().all(|(_, value)| value.is_literal())
        && literal(&step.inputs)
        && step
            .rollback
            .as_ref()
            .and_then(|hook| hook.inputs.as_deref())
            .is_none_or(literal)
}

impl JobInstance<'_> {
    /// The step as reports name it, its `name:` expanded.
    fn step_ref<'s>(&'s self, step: &'s StepPlan) -> StepRef<'s> {
        StepRef {
            name: self.step_name(step),
            // Inside a step group, the path (`publish/upload`) names it.
            id: step.path.as_deref().or(step.id.as_deref()),
            number: step.number,
        }
    }

    /// What a person reads: the expanded `name:`, else the plan's name.
    fn step_name<'s>(&'s self, step: &'s StepPlan) -> &'s str {
        self.names
            .get(&step.number)
            .map_or(&step.display_name, String::as_str)
    }
}
