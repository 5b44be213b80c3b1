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

use tokio_util::sync::CancellationToken;

use super::contexts::{ContextsBuilder, StepRecord};
use super::log::StepLog;
use super::status::{JobStatus, asks_for_status, runs_when_cancelled};
use super::{JobResult, Shared, Strategy};
use crate::expr::FunctionHost;
use crate::manifest::model::WorkspaceAccess;
use crate::plan::{JobPlan, MatrixCombination, StepPlan};
use crate::report::{Conclusion, Event, StepRef};
use crate::sandbox::step_files::StepFiles;
use crate::sandbox::{Failure, Mount, StepInvocation, StepModule, human_duration};

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
        }
    }

    pub async fn run(mut self) -> JobResult {
        self.shared
            .reporter
            .report(Event::JobStarted { job: &self.name });
        self.env = self.shared.pipeline_env.clone();
        let contexts = self.contexts(false).build();
        let job_env =
            self.shared
                .render_env(&self.name, &self.job.env, &contexts, self.job_status());
        self.env.extend(job_env);
        for step in &self.job.steps {
            let record = self.step(step).await;
            if record.conclusion == Conclusion::Failure {
                self.failed = true;
            }
            if let Some(id) = &step.id {
                self.steps.insert(id.clone(), record);
            }
        }
        let conclusion = self.status();
        let outputs = self.outputs();
        self.shared.reporter.report(Event::JobFinished {
            job: &self.name,
            conclusion,
            outputs: &outputs,
        });
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
        let contexts = self.contexts(false).build();
        let functions = self.shared.functions(self.job_status());
        self.job
            .outputs
            .iter()
            .map(|(name, template)| {
                let value = template
                    .render_with(&contexts, &functions)
                    .unwrap_or_else(|e| {
                        self.note(&format!(
                            "output `{name}` could not be evaluated: {}",
                            e.message
                        ));
                        String::new()
                    });
                (name.clone(), self.shared.mask(&value))
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
        let cancelled = self.cancel.is_cancelled();
        let status = self.job_status();
        let functions = self.shared.functions(status);
        let should_run = match &step.condition {
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
                    .map_err(|e| format!("its `if:` could not be evaluated: {}", e.message))
            }
        };
        let reason = match should_run {
            Ok(true) if self.timed_out => "the job reached its timeout",
            Ok(true) => "",
            Ok(false) if cancelled => "the job was cancelled",
            Ok(false) if step.condition.is_some() => "its `if:` condition is false",
            Ok(false) => "an earlier step failed",
            Err(reason) => return self.fail_before_start(step, &reason),
        };
        if !reason.is_empty() {
            self.shared.reporter.report(Event::StepSkipped {
                job: &self.name,
                step: step_ref(step),
                reason,
            });
            return skipped;
        }

        // Step env sees the job's env so far; inputs see the step env too.
        let contexts = self.contexts(true).build();
        let step_env = self
            .shared
            .render_env(&self.name, &step.env, &contexts, status);
        let mut guest_env = self.env.clone();
        guest_env.extend(step_env);
        let input_contexts = self.contexts_with(&guest_env, true).build();
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
                        input.name, e.message
                    );
                    return self.fail_before_start(step, &reason);
                }
            }
        }

        self.shared.reporter.report(Event::StepStarted {
            job: &self.name,
            step: step_ref(step),
            plugin: &step.plugin,
        });
        let plugins = self.shared.plugins.clone();
        let module = match plugins.get(&step.plugin) {
            Some(Ok(module)) => module,
            Some(Err(reason)) => {
                let failure = Failure::Refused(reason.clone());
                return self.finish(step, Err(failure), StepFiles::default(), Duration::ZERO);
            }
            None => unreachable!("the plan only names declared plugins"),
        };
        // A step that asked to run after a cancellation must not be stopped
        // by that same cancellation.
        let cancel = if cancelled {
            CancellationToken::new()
        } else {
            self.cancel.clone()
        };
        let (outcome, files, duration) = self
            .attempts(step, module, &guest_env, &inputs, &cancel)
            .await;
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
        cancel: &CancellationToken,
    ) -> (Result<(), Failure>, StepFiles, Duration) {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let job_limited = left < step.timeout;
            let invocation =
                self.invocation(step, guest_env, inputs, left.min(step.timeout), cancel);
            let shared_sandbox = self.shared.sandbox.clone();
            // The guest runs on this thread with the executor's other tasks
            // moved elsewhere, so a busy or blocking guest stalls no job.
            let run = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(shared_sandbox.run(module, invocation))
            });
            let outcome = match run.outcome {
                Err(Failure::Timeout(_)) if job_limited => {
                    self.timed_out = true;
                    Err(Failure::Setup(format!(
                        "the job reached its timeout of {}",
                        human_duration(self.job.timeout)
                    )))
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
                "attempt {} of {} failed: {}; trying again in {}",
                attempt - 1,
                step.retry.attempts,
                self.shared.mask(&reason),
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
            self.shared.masker.clone(),
            &self.name,
        );
        StepInvocation {
            program: &step.plugin,
            env: env.into_iter().collect(),
            workspace,
            dirs: &step.grants.dirs,
            timeout,
            memory_bytes: step.memory_bytes,
            output_limit: self.shared.options.output_limit,
            sink: log.sink(),
            cancel: cancel.clone(),
        }
    }

    fn fail_before_start(&mut self, step: &StepPlan, reason: &str) -> StepRecord {
        self.shared.reporter.report(Event::StepStarted {
            job: &self.name,
            step: step_ref(step),
            plugin: &step.plugin,
        });
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
        self.shared.reporter.report(Event::StepFinished {
            job: &self.name,
            step: step_ref(step),
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
            let masked = self.shared.mask(&files.summary);
            let mut summaries = self
                .shared
                .summaries
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            summaries.push_str(&masked);
            if !masked.ends_with('\n') {
                summaries.push('\n');
            }
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
                    step.id.as_deref().unwrap_or(&step.display_name)
                ));
        }
        StepRecord {
            outputs: files.outputs.into_iter().collect(),
            outcome,
            conclusion,
        }
    }
}

fn step_ref(step: &StepPlan) -> StepRef<'_> {
    StepRef {
        name: &step.display_name,
        id: step.id.as_deref(),
        number: step.number,
    }
}
