//! The engine: executes a [`Plan`] job by job and step by step.
//!
//! It owns the plumbing between steps: evaluating `if:` and `${{ }}`
//! values, layering environment variables (pipeline ← job ← exported ←
//! step), turning inputs into `INPUT_*`, collecting outputs, exported env,
//! saved state and summaries, and reading each log line for workflow
//! commands and masks before anything is printed.
//!
//! Jobs run one after another in plan order; a job whose needs did not all
//! succeed is skipped. Within a job, after a failed step the remaining
//! steps are skipped unless their `if:` asks for `failure()` or `always()`.

mod log;
pub mod run_id;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indexmap::IndexMap;

use self::log::StepLog;
use crate::abi::Masker;
use crate::expr::{Contexts, Expression, FunctionHost, Value};
use crate::manifest::model::WorkspaceAccess;
use crate::plan::{JobPlan, Plan, StepPlan};
use crate::report::{Conclusion, Event, Reporter};
use crate::sandbox::{Failure, Mount, Sandbox, StepInvocation, StepModule};

/// Settings of one run that do not come from the manifest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run records go (`.gantry` beside the manifest by default).
    pub state_dir: PathBuf,
    pub output_limit: usize,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub success: bool,
    pub jobs: Vec<(String, Conclusion)>,
}

/// Each plugin admitted into the sandbox, or the reason it was refused.
pub type AdmittedPlugins = IndexMap<String, Result<StepModule, String>>;

/// Runs a whole plan.
pub async fn run(
    plan: &Plan,
    sandbox: &Sandbox,
    plugins: &AdmittedPlugins,
    reporter: Arc<dyn Reporter>,
    options: &RunOptions,
) -> RunOutcome {
    let started = Instant::now();
    let run_id = run_id::new_run_id();
    reporter.report(Event::RunStarted {
        pipeline: &plan.name,
        run_id: &run_id,
    });
    let masker = Arc::new(Mutex::new(Masker::default()));
    let mut runner = Runner {
        plan,
        sandbox,
        plugins,
        reporter: reporter.clone(),
        options,
        masker,
        summaries: String::new(),
        failed_steps: Vec::new(),
    };
    let pipeline_env = runner.render_env(&plan.env, &BTreeMap::new(), &BTreeMap::new());
    let mut jobs: Vec<(String, Conclusion)> = Vec::new();
    for job in &plan.jobs {
        let unmet: Vec<&str> = job
            .needs
            .iter()
            .filter(|need| {
                !jobs
                    .iter()
                    .any(|(id, conclusion)| id == *need && *conclusion == Conclusion::Success)
            })
            .map(String::as_str)
            .collect();
        let conclusion = if unmet.is_empty() {
            runner.run_job(job, &pipeline_env).await
        } else {
            let reason = format!("it needs {}, which did not succeed", unmet.join(", "));
            reporter.report(Event::JobSkipped {
                job: &job.id,
                reason: &reason,
            });
            Conclusion::Skipped
        };
        jobs.push((job.id.clone(), conclusion));
    }

    let success = jobs.iter().all(|(_, c)| *c != Conclusion::Failure);
    let summary_path = runner.write_summary(&run_id);
    reporter.report(Event::RunFinished {
        success,
        failed_steps: &runner.failed_steps,
        summary_path: summary_path.as_deref(),
        duration: started.elapsed(),
    });
    RunOutcome {
        run_id,
        success,
        jobs,
    }
}

struct Runner<'a> {
    plan: &'a Plan,
    sandbox: &'a Sandbox,
    plugins: &'a AdmittedPlugins,
    reporter: Arc<dyn Reporter>,
    options: &'a RunOptions,
    /// Values registered with `::add-mask::`, masked for the rest of the run.
    masker: Arc<Mutex<Masker>>,
    summaries: String,
    failed_steps: Vec<String>,
}

/// What later steps of a job can see of an earlier one.
#[derive(Debug, Clone)]
struct StepRecord {
    outputs: BTreeMap<String, String>,
    outcome: Conclusion,
    conclusion: Conclusion,
}

/// The status functions of `if:` expressions.
struct JobStatus {
    failed: bool,
}

impl FunctionHost for JobStatus {
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let value = match name.to_ascii_lowercase().as_str() {
            "success" => !self.failed,
            "failure" => self.failed,
            "always" => true,
            "cancelled" => false,
            _ => return None,
        };
        if !args.is_empty() {
            return Some(Err(format!("`{name}()` takes no arguments")));
        }
        Some(Ok(Value::Bool(value)))
    }
}

/// A condition that calls none of the status functions gets GitHub's
/// implicit `success() &&` in front of it.
fn asks_for_status(condition: &Expression) -> bool {
    ["success", "failure", "always", "cancelled"]
        .iter()
        .any(|name| condition.calls(name))
}

impl Runner<'_> {
    async fn run_job(
        &mut self,
        job: &JobPlan,
        pipeline_env: &BTreeMap<String, String>,
    ) -> Conclusion {
        self.reporter.report(Event::JobStarted { job: &job.id });
        let mut env = pipeline_env.clone();
        let job_env = self.render_env(&job.env, &env, &BTreeMap::new());
        env.extend(job_env);
        let mut steps: BTreeMap<String, StepRecord> = BTreeMap::new();
        let mut failed = false;
        for step in &job.steps {
            let record = self.run_step(job, step, &mut env, &steps, failed).await;
            if record.conclusion == Conclusion::Failure {
                failed = true;
            }
            if let Some(id) = &step.id {
                steps.insert(id.clone(), record);
            }
        }
        let conclusion = if failed {
            Conclusion::Failure
        } else {
            Conclusion::Success
        };
        self.reporter.report(Event::JobFinished {
            job: &job.id,
            conclusion,
        });
        conclusion
    }

    async fn run_step(
        &mut self,
        job: &JobPlan,
        step: &StepPlan,
        env: &mut BTreeMap<String, String>,
        steps: &BTreeMap<String, StepRecord>,
        job_failed: bool,
    ) -> StepRecord {
        let skipped = StepRecord {
            outputs: BTreeMap::new(),
            outcome: Conclusion::Skipped,
            conclusion: Conclusion::Skipped,
        };
        let status = JobStatus { failed: job_failed };
        let condition_contexts = contexts(env, steps);
        let should_run = match &step.condition {
            None => Ok(!job_failed),
            Some(condition) => condition
                .evaluate_with(&condition_contexts, &status)
                .map(|value| value.is_truthy() && (asks_for_status(condition) || !job_failed))
                .map_err(|e| format!("its `if:` could not be evaluated: {}", e.message)),
        };
        match should_run {
            Ok(true) => {}
            Ok(false) => {
                let reason = if step.condition.is_some() {
                    "its `if:` condition is false"
                } else {
                    "an earlier step failed"
                };
                self.reporter.report(Event::StepSkipped {
                    step: &step.display_name,
                    reason,
                });
                return skipped;
            }
            Err(reason) => return self.fail_before_start(job, step, &reason),
        }

        // Step env sees the job's env so far; inputs see the step env too.
        let step_env = self.render_env(&step.env, env, steps);
        let mut guest_env = env.clone();
        guest_env.extend(step_env);
        let mut inputs = Vec::with_capacity(step.inputs.len());
        let input_contexts = contexts(&guest_env, steps);
        for input in &step.inputs {
            match input.value.render(&input_contexts) {
                Ok(value) => inputs.push((input.variable.clone(), value)),
                Err(e) => {
                    let reason = format!(
                        "input `{}` could not be evaluated: {}",
                        input.name, e.message
                    );
                    return self.fail_before_start(job, step, &reason);
                }
            }
        }

        self.reporter.report(Event::StepStarted {
            job: &job.id,
            step: &step.display_name,
            plugin: &step.plugin,
        });
        let module = match self.plugins.get(&step.plugin) {
            Some(Ok(module)) => module,
            Some(Err(reason)) => {
                let failure = Failure::Refused(reason.clone());
                return self.finish_step(
                    job,
                    step,
                    Err(failure),
                    Default::default(),
                    std::time::Duration::ZERO,
                    env,
                );
            }
            None => unreachable!("the plan only names declared plugins"),
        };

        let invocation = self.invocation(step, guest_env, inputs);
        let log = StepLog::new(self.reporter.clone(), self.masker.clone());
        let invocation = StepInvocation {
            sink: log.sink(),
            ..invocation
        };
        let run = self.sandbox.run(module, invocation).await;
        self.finish_step(job, step, run.outcome, run.files, run.duration, env)
    }

    /// The sandbox request for a step: environment in ABI order, mounts
    /// from its grants.
    fn invocation<'s>(
        &self,
        step: &'s StepPlan,
        step_env: BTreeMap<String, String>,
        inputs: Vec<(String, String)>,
    ) -> StepInvocation<'s> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        // Host variables come first so the manifest's own values win.
        for name in &step.grants.host_env {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.clone(), value);
            }
        }
        env.extend(step_env);
        env.extend(inputs);
        env.insert("GANTRY_PHASE".into(), "run".into());
        env.insert("GANTRY_ARTIFACTS".into(), "/artifacts".into());
        let workspace = match step.grants.workspace {
            WorkspaceAccess::None => None,
            access => {
                env.insert("GANTRY_WORKSPACE".into(), "/workspace".into());
                Some(Mount {
                    host: self.plan.root.clone(),
                    writable: access == WorkspaceAccess::Write,
                })
            }
        };
        StepInvocation {
            program: &step.plugin,
            env: env.into_iter().collect(),
            workspace,
            dirs: &step.grants.dirs,
            timeout: step.timeout,
            memory_bytes: step.memory_bytes,
            output_limit: self.options.output_limit,
            sink: Arc::new(|_, _| {}),
        }
    }

    fn fail_before_start(&mut self, job: &JobPlan, step: &StepPlan, reason: &str) -> StepRecord {
        self.reporter.report(Event::StepStarted {
            job: &job.id,
            step: &step.display_name,
            plugin: &step.plugin,
        });
        let mut unchanged = BTreeMap::new();
        self.finish_step(
            job,
            step,
            Err(Failure::Setup(reason.to_owned())),
            Default::default(),
            std::time::Duration::ZERO,
            &mut unchanged,
        )
    }

    fn finish_step(
        &mut self,
        job: &JobPlan,
        step: &StepPlan,
        outcome: Result<(), Failure>,
        files: crate::sandbox::step_files::StepFiles,
        duration: std::time::Duration,
        env: &mut BTreeMap<String, String>,
    ) -> StepRecord {
        let masker = self.masker.lock().unwrap_or_else(|e| e.into_inner());
        let reason = outcome
            .as_ref()
            .err()
            .map(|f| masker.mask(&f.to_string()).into_owned());
        drop(masker);
        self.reporter.report(Event::StepFinished {
            step: &step.display_name,
            outcome: reason.as_deref().map_or(Ok(()), Err),
            continued_on_error: step.continue_on_error,
            duration,
        });
        // Exported variables reach the following steps, as in GitHub Actions,
        // whether or not the step succeeded.
        env.extend(files.env);
        if !files.summary.trim().is_empty() {
            let masked = self
                .masker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .mask(&files.summary)
                .into_owned();
            self.summaries.push_str(&masked);
            if !masked.ends_with('\n') {
                self.summaries.push('\n');
            }
        }
        let outcome = if outcome.is_ok() {
            Conclusion::Success
        } else {
            Conclusion::Failure
        };
        let conclusion = if outcome == Conclusion::Failure && step.continue_on_error {
            Conclusion::Success
        } else {
            outcome
        };
        if conclusion == Conclusion::Failure {
            self.failed_steps.push(format!(
                "{}/{}",
                job.id,
                step.id.as_deref().unwrap_or(&step.display_name)
            ));
        }
        StepRecord {
            outputs: files.outputs.into_iter().collect(),
            outcome,
            conclusion,
        }
    }

    /// Renders an `env:` block; a value that cannot be evaluated becomes
    /// empty, with a note, as GitHub Actions does for unknown properties.
    fn render_env(
        &self,
        block: &[(String, crate::expr::Template)],
        env: &BTreeMap<String, String>,
        steps: &BTreeMap<String, StepRecord>,
    ) -> BTreeMap<String, String> {
        let contexts = contexts(env, steps);
        block
            .iter()
            .map(|(name, template)| {
                let value = template.render(&contexts).unwrap_or_else(|e| {
                    self.reporter.report(Event::StepNote {
                        text: &format!("env `{name}` could not be evaluated: {}", e.message),
                    });
                    String::new()
                });
                (name.clone(), value)
            })
            .collect()
    }

    /// Writes the collected step summaries to the run's folder.
    fn write_summary(&self, run_id: &str) -> Option<PathBuf> {
        if self.summaries.is_empty() {
            return None;
        }
        let folder = self.options.state_dir.join("runs").join(run_id);
        let path = folder.join("summary.md");
        let written = std::fs::create_dir_all(&folder)
            .and_then(|()| crate::fsutil::write_atomic(&path, self.summaries.as_bytes()));
        match written {
            Ok(()) => Some(path),
            Err(e) => {
                self.reporter.report(Event::StepNote {
                    text: &format!(
                        "could not write the run summary to `{}`: {e}",
                        path.display()
                    ),
                });
                None
            }
        }
    }
}

/// The expression contexts a step sees.
fn contexts(env: &BTreeMap<String, String>, steps: &BTreeMap<String, StepRecord>) -> Contexts {
    let env = Value::Object(
        env.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    );
    let steps = Value::Object(
        steps
            .iter()
            .map(|(id, record)| {
                let outputs = record
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                let fields = BTreeMap::from([
                    ("outputs".to_owned(), Value::Object(outputs)),
                    (
                        "outcome".to_owned(),
                        Value::String(record.outcome.as_str().into()),
                    ),
                    (
                        "conclusion".to_owned(),
                        Value::String(record.conclusion.as_str().into()),
                    ),
                ]);
                (id.clone(), Value::Object(fields))
            })
            .collect(),
    );
    let mut contexts = Contexts::new();
    contexts.insert("env", env);
    contexts.insert("steps", steps);
    contexts
}
