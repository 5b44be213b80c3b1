//! The engine: executes a [`Plan`] as a graph of jobs.
//!
//! A job starts as soon as every job it needs has finished, so independent
//! jobs run in parallel on tokio, bounded by `--max-parallel` (each matrix
//! combination counts as one). A job whose needs did not all succeed is
//! skipped unless its `if:` asks for `failure()` or `always()`. Guest code
//! never runs on the executor's own worker threads: each step runs inside
//! `block_in_place`, which hands the worker's other tasks to a fresh thread
//! first.
//!
//! Every step is journaled (see [`crate::journal`]) before its guest
//! starts; when the run fails or is interrupted, [`rollback`] runs the
//! hooks of the steps that started, newest first, from that journal.
//!
//! This module holds the run's entry ([`run`]), its options and outcome,
//! and what every job of a run shares. `schedule` starts jobs as their
//! needs finish and runs their matrix combinations; `job` runs one job
//! instance step by step; `contexts` builds what expressions see;
//! `status` holds the status functions of `if:`; `rollback` compensates.

mod contexts;
mod hash_files;
mod job;
pub mod launch;
mod log;
pub mod rollback;
pub mod run_id;
mod schedule;
pub(crate) use schedule::Strategy;
mod status;
pub use status::FUNCTIONS;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indexmap::IndexMap;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use self::contexts::ContextsBuilder;
use self::rollback::{Compensation, HookRunner};
use self::status::{Functions, JobStatus};
use self::summary::RunSummary;
use crate::abi::{Masks, step_text};
use crate::artifacts::{RunArtifacts, Store};
use crate::expr::{Template, Value};
use crate::journal::{self, Entry, Journal};
use crate::plan::{MatrixCombination, Plan};
use crate::report::masked::Masked;
use crate::report::{Conclusion, Event, Reporter, Verdict};
use crate::sandbox::{Sandbox, StepModule};
use crate::secrets::Secrets;

/// Settings of one run that do not come from the manifest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run records go (the project's state folder by default).
    pub state_dir: PathBuf,
    pub output_limit: usize,
    /// How many job instances may run at once.
    pub max_parallel: usize,
    pub secrets: Secrets,
    /// Cancelling it stops the run: running steps end at once, nothing new
    /// starts, and `cancelled()` becomes true.
    pub cancel: CancellationToken,
    /// Cancelling it stops the rollback that follows a failure, leaving the
    /// rest for `gantry resume`.
    pub stop_rollback: CancellationToken,
    /// The verified sha256 of each plugin alias, journaled with each hook.
    pub plugin_hashes: BTreeMap<String, String>,
    /// The most bytes one uploaded artifact may hold.
    pub artifact_limit: u64,
    /// What the machines that ran this job's needs handed on, when this
    /// run is one job of a pipeline an outside engine runs (`gantry run
    /// --job ID --import DIR…`); `None` for a run of its own.
    pub imported: Option<Imported>,
}

/// The results and uploads of jobs that ran on other machines, as a run of
/// one job sees them: its needs are finished before it starts, and their
/// uploads are in the run's artifact index (their blobs already in the
/// store).
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The result of each job the plan's job needs.
    pub needs: BTreeMap<String, JobResult>,
    /// Uploads to record in this run's index before anything runs.
    pub uploads: Vec<crate::artifacts::Upload>,
    /// Run only this combination of the job's matrix (its index).
    pub instance: Option<usize>,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    /// Success, a failure whose rollback succeeded, or a failed (or
    /// stopped) rollback; the command line maps it to an exit status.
    pub verdict: Verdict,
    /// Every job in plan order, with its result.
    pub jobs: Vec<(String, JobResult)>,
}

/// What a finished job leaves for the jobs that need it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub conclusion: Conclusion,
    /// Its `outputs:`, with secrets masked.
    pub outputs: BTreeMap<String, String>,
}

impl JobResult {
    fn without_outputs(conclusion: Conclusion) -> JobResult {
        JobResult {
            conclusion,
            outputs: BTreeMap::new(),
        }
    }
}

/// Each plugin admitted into the sandbox, or the reason it was refused.
pub type AdmittedPlugins = IndexMap<String, Result<StepModule, String>>;

/// What every job of a run shares.
struct Shared {
    plan: Arc<Plan>,
    sandbox: Arc<Sandbox>,
    plugins: Arc<AdmittedPlugins>,
    reporter: Arc<dyn Reporter>,
    options: RunOptions,
    run_id: String,
    /// Secrets and `::add-mask::` values, masked for the rest of the run;
    /// `reporter` masks every event with them.
    masks: Arc<Mutex<Masks>>,
    /// The run's `summary.md`, written as step summaries come.
    /// `None` once put in place.
    summary: Mutex<Option<RunSummary>>,
    failed_steps: Mutex<Vec<String>>,
    journal: Journal,
    /// The content-addressed store and this run's index of uploads.
    store: Store,
    uploads: RunArtifacts,
    /// Numbers steps in the order they start, across jobs.
    next_seq: AtomicU64,
    journal_failed: AtomicBool,
    /// Free places for job instances (`--max-parallel`).
    slots: Semaphore,
    pipeline_env: BTreeMap<String, String>,
}

impl Shared {
    /// Appends a (masked) summary to the run's `summary.md`.
    fn add_summary(&self, text: &str) {
        if let Some(summary) = self
            .summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            summary.append(text);
        }
    }

    /// Appends to the journal and waits for the disk (when the run has
    /// something to compensate: the journal knows). If that fails, the
    /// run cannot promise to undo what it does next, so it stops.
    fn record(&self, entry: Entry) {
        self.append(entry, true);
    }

    /// Appends to the journal; `sync` waits for the disk, for entries a
    /// compensation depends on.
    fn append(&self, entry: Entry, sync: bool) {
        if let Err(error) = self.journal.append(entry, sync) {
            if !self.journal_failed.swap(true, Ordering::SeqCst) {
                self.journal.mark_unwritable();
                self.reporter.report(Event::StepNote {
                    job: &self.plan.name,
                    text: &format!(
                        "cannot write the run journal `{}`: {error}; stopping the run",
                        self.journal.path().display()
                    ),
                });
            }
            self.options.cancel.cancel();
        }
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// A message of gantry's, its step-controlled parts marked, as it may
    /// be stored.
    fn mask(&self, text: &str) -> String {
        mask_with(&self.masks, text)
    }

    /// A value a step controls (an output, saved state, a summary), as it
    /// may be stored or passed on.
    fn mask_step(&self, text: &str) -> String {
        mask_step_with(&self.masks, text)
    }

    /// The contexts every expression of this run can see.
    fn contexts(&self) -> ContextsBuilder<'_> {
        ContextsBuilder::new(&self.plan, &self.run_id)
    }

    /// The engine's functions at a given status.
    fn functions(&self, status: JobStatus) -> Functions<'_> {
        Functions {
            status,
            workspace: &self.plan.root,
        }
    }

    /// Renders an `env:` block; a value that cannot be evaluated becomes
    /// empty, with a note, as GitHub Actions does for unknown properties.
    fn render_env(
        &self,
        job: &str,
        block: &[(String, Template)],
        contexts: &crate::expr::Contexts,
        status: JobStatus,
    ) -> BTreeMap<String, String> {
        let functions = self.functions(status);
        block
            .iter()
            .map(|(name, template)| {
                let value = template
                    .render_with(contexts, &functions)
                    .unwrap_or_else(|e| {
                        self.reporter.report(Event::StepNote {
                            job,
                            text: &format!(
                                "env `{name}` could not be evaluated: {}",
                                step_text(&e.message)
                            ),
                        });
                        String::new()
                    });
                (name.clone(), value)
            })
            .collect()
    }
}

/// Runs a whole plan.
pub async fn run(
    plan: Arc<Plan>,
    sandbox: Arc<Sandbox>,
    plugins: Arc<AdmittedPlugins>,
    reporter: Arc<dyn Reporter>,
    options: RunOptions,
) -> RunOutcome {
    let started = Instant::now();
    let run_id = run_id::new_run_id();
    // Every event goes through the run's masks, whoever composed it.
    let masks = Arc::new(Mutex::new(Masks::new(options.secrets.masker())));
    let reporter: Arc<dyn Reporter> = Arc::new(Masked::new(reporter, masks.clone()));
    reporter.report(Event::RunStarted {
        pipeline: &plan.name,
        run_id: &run_id,
        state_dir: &options.state_dir,
    });
    let run_folder = options.state_dir.join("runs").join(&run_id);
    // Without a rollback hook in the plan, no compensation can depend on
    // the journal, so nothing waits for the disk (it is still written
    // before each action, and survives the runner being killed).
    let durable = plan
        .jobs
        .iter()
        .flat_map(|job| &job.steps)
        .any(|step| step.rollback.is_some());
    let journal = match Journal::create(&run_folder, durable) {
        Ok(journal) => journal,
        Err(error) => {
            // Without a journal nothing could be undone: run nothing.
            let why = format!(
                "cannot create the run journal in `{}`: {error}",
                run_folder.display()
            );
            return nothing_ran(&*reporter, &plan.name, run_id, &why, started);
        }
    };
    let store = Store::open(&options.state_dir).map_err(|e| e.to_string());
    let uploads = RunArtifacts::open(&options.state_dir, &run_id).map_err(|e| e.to_string());
    let uploads = uploads.and_then(|uploads| {
        // Another machine's uploads, recorded as this run's before any
        // step can ask for them.
        let imported = options.imported.iter().flat_map(|i| &i.uploads);
        for upload in imported {
            uploads
                .record(&upload.name, &upload.job, &upload.step, upload.tree.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok(uploads)
    });
    let (store, uploads) = match (store, uploads) {
        (Ok(store), Ok(uploads)) => (store, uploads),
        (Err(error), _) | (_, Err(error)) => {
            let why = format!("cannot open the artifact store: {error}");
            return nothing_ran(&*reporter, &plan.name, run_id, &why, started);
        }
    };
    let mut shared = Shared {
        plan: plan.clone(),
        sandbox,
        plugins,
        reporter: reporter.clone(),
        slots: Semaphore::new(options.max_parallel.max(1)),
        options,
        run_id: run_id.clone(),
        masks,
        summary: Mutex::new(Some(RunSummary::new(&run_folder))),
        failed_steps: Mutex::new(Vec::new()),
        journal,
        store,
        uploads,
        next_seq: AtomicU64::new(0),
        journal_failed: AtomicBool::new(false),
        pipeline_env: BTreeMap::new(),
    };
    let (inputs, vars) = plan.given.recorded(|text| shared.mask(text));
    shared.record(Entry::RunStarted {
        run_id: run_id.clone(),
        pipeline: plan.name.clone(),
        manifest: plan.manifest_path.clone(),
        root: Some(plan.root.clone()),
        ca_file: plan.ca_file.clone(),
        inputs,
        vars,
    });
    let contexts = shared.contexts().build();
    let status = JobStatus {
        failed: false,
        cancelled: false,
    };
    shared.pipeline_env = shared.render_env(&plan.name, &plan.env, &contexts, status);
    let shared = Arc::new(shared);

    let results = schedule::schedule(&shared).await;
    let jobs: Vec<(String, JobResult)> = plan
        .jobs
        .iter()
        .map(|job| {
            let result = results
                .get(&job.id)
                .cloned()
                .unwrap_or_else(|| JobResult::without_outputs(Conclusion::Cancelled));
            (job.id.clone(), result)
        })
        .collect();
    let success = !shared.options.cancel.is_cancelled()
        && jobs
            .iter()
            .all(|(_, r)| matches!(r.conclusion, Conclusion::Success | Conclusion::Skipped));
    let status = if success {
        Conclusion::Success
    } else if shared.options.cancel.is_cancelled() {
        Conclusion::Cancelled
    } else {
        Conclusion::Failure
    };
    shared.record(Entry::RunFinished {
        status: status.as_str().into(),
    });
    let verdict = if success {
        Verdict::Succeeded
    } else {
        roll_back(&shared).await
    };
    let summary_path = write_summary(&shared);
    let failed_steps = shared
        .failed_steps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    reporter.report(Event::RunFinished {
        verdict,
        failed_steps: &failed_steps,
        summary_path: summary_path.as_deref(),
        duration: started.elapsed(),
    });
    RunOutcome {
        run_id,
        verdict,
        jobs,
    }
}

/// A message of gantry's with every secret masked, and the values steps
/// registered where it quotes a step (see [`Masks::message`]).
fn mask_with(masks: &Mutex<Masks>, text: &str) -> String {
    masks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .message(text)
        .into_owned()
}

/// Text a step controls, with every value of the run's masks masked.
fn mask_step_with(masks: &Mutex<Masks>, text: &str) -> String {
    masks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .step(text)
        .into_owned()
}

/// Runs a step's guest on this thread, with the executor's other tasks
/// moved elsewhere first, so a busy or blocking guest stalls no job.
fn run_off_executor(
    sandbox: &Sandbox,
    module: &StepModule,
    invocation: crate::sandbox::StepInvocation<'_>,
) -> crate::sandbox::StepRun {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(sandbox.run(module, invocation))
    })
}

/// Ends a run that could not start, saying why.
fn nothing_ran(
    reporter: &dyn Reporter,
    pipeline: &str,
    run_id: String,
    why: &str,
    started: Instant,
) -> RunOutcome {
    reporter.report(Event::StepNote {
        job: pipeline,
        text: &format!("{why}; nothing ran"),
    });
    reporter.report(Event::RunFinished {
        verdict: Verdict::Failed,
        failed_steps: &[],
        summary_path: None,
        duration: started.elapsed(),
    });
    RunOutcome {
        run_id,
        verdict: Verdict::Failed,
        jobs: Vec::new(),
    }
}

/// Compensates a failed run from its own journal, as `gantry rollback`
/// would, and returns the exit status the contract gives the outcome.
async fn roll_back(shared: &Shared) -> Verdict {
    let note = |text: &str| {
        shared.reporter.report(Event::StepNote {
            job: &shared.plan.name,
            text,
        });
    };
    let records = match journal::read(shared.journal.path()) {
        Ok(records) => records,
        Err(error) => {
            note(&format!(
                "cannot read the run journal back ({}); nothing was rolled back",
                crate::hint::one_line(&error)
            ));
            return Verdict::RollbackFailed;
        }
    };
    let compensation = Compensation::from_journal(&records);
    if compensation.is_empty() {
        return Verdict::Failed;
    }
    let runner = HookRunner {
        sandbox: &shared.sandbox,
        plugins: &shared.plugins,
        hashes: &shared.options.plugin_hashes,
        journal: &shared.journal,
        reporter: shared.reporter.clone(),
        secrets: &shared.options.secrets,
        masks: shared.masks.clone(),
        run_id: &shared.run_id,
        workspace: &shared.plan.root,
        output_limit: shared.options.output_limit,
        stop: shared.options.stop_rollback.clone(),
    };
    let compensated = runner.compensate(&compensation, "the run failed").await;
    if let Ok(outcome) = &compensated {
        shared.add_summary(&outcome.summaries);
    }
    match compensated {
        Ok(outcome) if outcome.succeeded() => Verdict::Failed,
        Ok(outcome) => {
            if outcome.stopped {
                note(&format!(
                    "the rollback was stopped; `gantry resume {}` finishes it",
                    shared.run_id
                ));
            }
            Verdict::RollbackFailed
        }
        Err(error) => {
            shared.journal.mark_unwritable();
            note(&format!(
                "cannot write the run journal ({error}); the rollback stopped; `gantry resume {}` finishes it",
                shared.run_id
            ));
            Verdict::RollbackFailed
        }
    }
}

/// Puts the run's `summary.md` in place, as durably as its journal.
fn write_summary(shared: &Shared) -> Option<PathBuf> {
    let summary = shared
        .summary
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    match summary.finish(shared.journal.durable()) {
        Ok(path) => path,
        Err(e) => {
            shared.reporter.report(Event::StepNote {
                job: &shared.plan.name,
                text: &format!("could not write the run summary: {e}"),
            });
            None
        }
    }
}

/// A matrix combination as an expression value.
fn matrix_value(combination: Option<&MatrixCombination>) -> Value {
    Value::Object(
        combination
            .map(|values| values.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    )
}
