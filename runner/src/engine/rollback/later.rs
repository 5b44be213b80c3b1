//! Compensating a run after the process that ran it has gone: `gantry
//! rollback` on a finished run, `gantry resume` after the runner died,
//! and the shared running of hooks both (and the rollback of imported
//! jobs, in [`super::imported`]) use.
//!
//! The pending hooks run newest first, from what the journal recorded
//! alone: each hook's plugin by sha256 (its bytes kept in the state folder
//! when the run started), its inputs and its grants. The manifest is not
//! read: it may have been edited, broken or deleted since, and a run's
//! compensation must not depend on it. The caller holds the state
//! folder's lock, so this never races a live run, and a run whose lock is
//! free is known to be over.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

use super::{Compensation, HookRunner, RollbackOutcome};
use crate::abi::Masks;
use crate::console::{errln, outln};
use crate::engine::run_id;
use crate::engine::summary::RunSummary;
use crate::hint::{Hinted, one_line};
use crate::journal::{self, Entry, Journal, Record, RunState};
use crate::load::admit::{self, AdmitError, Admitted, SandboxSetup};
use crate::plugin::VerifiedPlugin;
use crate::plugin::kept::KeptPlugins;
use crate::report::masked::Masked;
use crate::report::{self, ColorChoice, Format, ReportOptions};
use crate::runs;
use crate::sandbox::DEFAULT_OUTPUT_LIMIT;
use crate::sandbox::leftovers;
use crate::secrets::Secrets;
use crate::state::Protected;

/// Which command is compensating, for what it accepts and says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `gantry rollback`: undo a finished run.
    Rollback,
    /// `gantry resume`: finish a run whose runner died.
    Resume,
}

/// What a later compensation is asked to do, and with what.
pub struct Request<'a> {
    pub mode: Mode,
    /// The run asked for (its id or the start of it), or `None` for the
    /// newest that fits the mode.
    pub run: Option<&'a str>,
    /// A step whose hook is to run again although it already ran.
    pub rerun: Option<&'a str>,
    /// The state folder, whose lock the caller holds.
    pub state_dir: &'a Path,
    /// The project's folder, where hooks run if the journal does not say.
    pub project: &'a Path,
    /// How the hooks are run and reported.
    pub hooks: HookEnvironment<'a>,
}

/// What running hooks needs from the command: secrets, the module cache
/// choice, colour, the async runtime and the token that stops them.
pub struct HookEnvironment<'a> {
    pub secrets: &'a Secrets,
    pub no_cache: bool,
    pub color: ColorChoice,
    pub runtime: &'a tokio::runtime::Runtime,
    /// Cancelled to stop the hooks where they are, for `gantry resume`.
    pub stop: CancellationToken,
}

/// How a later compensation ended; the command tells the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// No run needed resuming, or the run asked for was already settled.
    NothingToResume,
    /// The run had no hook left to run (its state is now recorded).
    NoHookLeft,
    /// Every pending hook ran and succeeded.
    RolledBack,
    /// Some hooks failed, were found interrupted, or were stopped: the
    /// target may be inconsistent.
    HooksFailed,
}

/// Why a later compensation did not run.
#[derive(Debug, thiserror::Error)]
pub enum CompensateError {
    /// The request cannot be carried out (no such run, a damaged journal,
    /// a run that needs `resume` rather than `rollback`…); nothing ran.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    /// The journal could not be written: the rollback stopped where it
    /// was, and `hint` says how to finish it.
    #[error("cannot write the journal `{}`", path.display())]
    Journal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: Option<String>,
    },
    /// The hooks' sandbox could not be started.
    #[error(transparent)]
    Admit(#[from] AdmitError),
}

impl CompensateError {
    fn refused(message: impl Into<String>) -> Self {
        CompensateError::Refused {
            message: message.into(),
            hint: None,
        }
    }

    fn refused_with(message: impl Into<String>, hint: impl Into<String>) -> Self {
        CompensateError::Refused {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

impl Hinted for CompensateError {
    fn hint(&self) -> Option<String> {
        match self {
            CompensateError::Refused { hint, .. } | CompensateError::Journal { hint, .. } => {
                hint.clone()
            }
            CompensateError::Admit(_) => None,
        }
    }
}

/// Rolls back or resumes a run from its journal, as `request` asks.
pub fn compensate(request: &Request<'_>) -> Result<Settled, CompensateError> {
    let Request {
        mode,
        run: wanted,
        rerun,
        state_dir,
        ..
    } = *request;
    let run_id = match wanted {
        Some(_) => runs::resolve(state_dir, wanted)
            .map_err(|error| CompensateError::refused(one_line(&error)))?,
        // Running a hook again is asked of a run that may be settled: the
        // newest, as for `rollback`.
        None if rerun.is_some() => {
            choose_run(state_dir, Mode::Rollback)?.expect("`rollback` chooses a run or fails")
        }
        None => match choose_run(state_dir, mode)? {
            Some(run_id) => run_id,
            None => {
                outln!(
                    "gantry: nothing to resume: no run in `{}` needs it",
                    state_dir.display()
                );
                return Ok(Settled::NothingToResume);
            }
        },
    };
    let path = runs::run_dir(state_dir, &run_id).join(journal::FILE_NAME);
    let read = || journal::read(&path).map_err(|error| refuse_journal(&run_id, &error));
    let mut records = read()?;
    if let Some(step) = rerun {
        ask_to_rerun(&records, &path, &run_id, step)?;
        records = read()?;
    }
    if wanted.is_none() {
        // Chosen, not named: say which run before touching anything.
        let started = records
            .first()
            .map(|record| run_id::utc_display(record.at_ms))
            .unwrap_or_else(|| "at an unknown time".into());
        let which = match mode {
            Mode::Rollback => "the newest run",
            Mode::Resume => "the newest run to resume",
        };
        outln!("gantry: {which} is `{run_id}`, started {started}");
    }
    let state = RunState::of(&records);
    let reason = match (mode, state) {
        (Mode::Rollback, RunState::Unfinished) => {
            return Err(CompensateError::refused_with(
                format!("run `{run_id}` never finished: its runner died while it ran"),
                format!("`gantry resume {run_id}` rolls it back"),
            ));
        }
        (Mode::Rollback, _) => "asked for by `gantry rollback`",
        (Mode::Resume, RunState::Unfinished) => "the runner died while the run was executing",
        (Mode::Resume, RunState::RollbackUnfinished)
            if !records
                .iter()
                .any(|r| matches!(r.entry, Entry::RollbackBegun { .. })) =>
        {
            "the runner died before the rollback began"
        }
        (Mode::Resume, RunState::RollbackUnfinished) => "finishing a rollback that was cut short",
        (Mode::Resume, RunState::Settled) => {
            outln!("gantry: run `{run_id}` has nothing to resume");
            return Ok(Settled::NothingToResume);
        }
    };
    let compensation = Compensation::from_journal(&records);
    let journal = Journal::open(&path).map_err(|error| refuse_journal(&run_id, &error))?;
    if state == RunState::Unfinished {
        record(
            &journal,
            Entry::RunFinished {
                status: "interrupted".into(),
            },
        )?;
    }
    if compensation.is_empty() {
        // Nothing left to run is not the same as rolled back: a hook that
        // failed stays failed until it is run again on request.
        let failed = failed_hooks(&records);
        if mode == Mode::Resume && state == RunState::RollbackUnfinished {
            let status = if failed.is_empty() {
                "success"
            } else {
                "failure"
            };
            record(
                &journal,
                Entry::RollbackEnded {
                    status: status.into(),
                },
            )?;
        }
        outln!("gantry: run `{run_id}`: no rollback hook is left to run");
        if failed.is_empty() {
            return Ok(Settled::NoHookLeft);
        }
        let steps: Vec<String> = failed.iter().map(|step| format!("`{step}`")).collect();
        errln!(
            "gantry: run `{run_id}` is not rolled back: the {} of {} failed, and the target may be inconsistent",
            if failed.len() == 1 { "hook" } else { "hooks" },
            steps.join(", ")
        );
        errln!(
            "hint: `gantry rollback {run_id} --rerun {}` runs it again, once its cause is fixed",
            failed[0]
        );
        return Ok(Settled::HooksFailed);
    }
    // Hooks run one at a time, in the project the run ran in.
    let started = records.iter().find_map(|record| match &record.entry {
        Entry::RunStarted { root, ca_file, .. } => Some((root.clone(), ca_file.clone())),
        _ => None,
    });
    let (root, ca_file) = started.unwrap_or_default();
    let root = root.unwrap_or_else(|| request.project.to_owned());
    let setup = SandboxSetup {
        steps: compensation.pending.len(),
        concurrent_steps: 1,
        protected: Protected::of(state_dir),
        // Hooks run one at a time, each within its own cap.
        memory_budget: None,
        ca_file,
        no_cache: request.hooks.no_cache,
    };
    let (verified, missing) = kept_hook_plugins(&compensation, state_dir);
    let mut admitted = admit::admit(&verified, &root, setup)?;
    for unloadable in missing {
        admitted
            .hashes
            .insert(unloadable.alias.clone(), unloadable.sha256);
        admitted
            .plugins
            .insert(unloadable.alias, Err(unloadable.reason));
    }
    if let Some(given) = recorded_given(&records) {
        // The hooks run with what their steps were given, recorded then.
        outln!("gantry: run `{run_id}` was given {given}");
    }
    let announce = format!(
        "gantry: rolling back run `{run_id}` ({reason}): {} to run",
        crate::display::plural(compensation.pending.len(), "hook")
    );
    let outcome = run_hooks(
        &HookRun {
            admitted: &admitted,
            journal: &journal,
            run_id: &run_id,
            workspace: &root,
            environment: &request.hooks,
        },
        &compensation,
        &announce,
        reason,
        "once the journal can be written again (free some space), `gantry resume {run_id}` finishes it",
    )?;
    if !outcome.stopped {
        remove_killed_step_folders(&records);
    }
    if !outcome.succeeded() {
        return Ok(Settled::HooksFailed);
    }
    outln!("gantry: run `{run_id}` rolled back");
    Ok(Settled::RolledBack)
}

/// What running a compensation needs: the admitted hook plugins, the
/// journal to record in, and where the hooks run.
pub(super) struct HookRun<'a> {
    pub admitted: &'a Admitted,
    pub journal: &'a Journal,
    pub run_id: &'a str,
    pub workspace: &'a Path,
    pub environment: &'a HookEnvironment<'a>,
}

/// Runs the pending hooks of `compensation` one at a time, until the
/// environment's stop, and adds their summaries to the run's summary.
/// `announce` is printed once the reporters are set up (under GitHub
/// Actions the masks go out first). A journal that cannot be written
/// stops the rollback (with `journal_hint` saying how to finish it,
/// `{run_id}` filled in); a stop and failed hooks are said here. The
/// caller tells the verdict.
pub(super) fn run_hooks(
    run: &HookRun<'_>,
    compensation: &Compensation,
    announce: &str,
    reason: &str,
    journal_hint: &str,
) -> Result<RollbackOutcome, CompensateError> {
    let run_id = run.run_id;
    let environment = run.environment;
    let masks = Arc::new(Mutex::new(Masks::new(environment.secrets.masker())));
    let reporters = report::build(&ReportOptions {
        format: Format::Auto,
        color: environment.color,
        verbose: false,
        label_jobs: true,
        junit: None,
        secrets: environment.secrets,
        live_steps: None,
        manifest_dir: Some(run.workspace),
    });
    outln!("{announce}");
    let runner = HookRunner {
        sandbox: &run.admitted.sandbox,
        plugins: &run.admitted.plugins,
        hashes: &run.admitted.hashes,
        journal: run.journal,
        reporter: Arc::new(Masked::new(reporters.reporter.clone(), masks.clone())),
        secrets: environment.secrets,
        masks,
        run_id,
        workspace: run.workspace,
        output_limit: DEFAULT_OUTPUT_LIMIT,
        stop: environment.stop.clone(),
    };
    let outcome = environment
        .runtime
        .block_on(runner.compensate(compensation, reason))
        .map_err(|source| {
            run.journal.mark_unwritable();
            CompensateError::Journal {
                path: run.journal.path().to_owned(),
                source,
                hint: Some(format!(
                    "the rollback stopped; {}",
                    journal_hint.replace("{run_id}", run_id)
                )),
            }
        })?;
    if !outcome.summaries.is_empty() {
        add_to_summary(run.journal, &outcome.summaries);
    }
    if outcome.stopped {
        errln!("gantry: the rollback was stopped; `gantry resume {run_id}` finishes it");
    }
    if outcome.failed > 0 {
        errln!(
            "gantry: {} of the rollback hooks failed: the target may be inconsistent",
            outcome.failed
        );
    }
    Ok(outcome)
}

/// Appends the hooks' summaries to the run's `summary.md`, beside its
/// journal, as a run's own hooks would have.
fn add_to_summary(journal: &Journal, summaries: &str) {
    let folder = journal.path().parent().unwrap_or(Path::new("."));
    let mut summary = RunSummary::continuing(folder);
    summary.append(summaries);
    match summary.finish(true) {
        Ok(Some(path)) => outln!("gantry: hook summaries added to {}", path.display()),
        Ok(None) => {}
        Err(error) => errln!(
            "gantry: cannot add the hooks' summaries to the run's summary in `{}`: {error}",
            folder.display()
        ),
    }
}

/// The run a command without a RUN argument works on: for `rollback`, the
/// newest run with a journal; for `resume`, the newest whose journal says
/// it needs resuming (`None` when no run does). A run folder without a
/// journal (the runner died before writing it) had nothing to compensate
/// and is passed over; a damaged run is chosen, to be refused with why.
fn choose_run(state_dir: &Path, mode: Mode) -> Result<Option<String>, CompensateError> {
    let all = runs::list(state_dir).map_err(|source| {
        CompensateError::refused(one_line(&runs::RunError::Io {
            path: runs::runs_dir(state_dir),
            source,
        }))
    })?;
    if all.is_empty() {
        return Err(CompensateError::refused(
            runs::RunError::NoRuns {
                state_dir: state_dir.to_owned(),
            }
            .to_string(),
        ));
    }
    for run_id in all {
        let path = runs::run_dir(state_dir, &run_id).join(journal::FILE_NAME);
        match journal::read(&path) {
            Err(error) if error.is_missing() => continue,
            // Damaged or unreadable: whether it needs resuming cannot be
            // told, so it is chosen, and refused with the reason.
            Err(_) => return Ok(Some(run_id)),
            Ok(_) if mode == Mode::Rollback => return Ok(Some(run_id)),
            Ok(records) if RunState::of(&records) != RunState::Settled => {
                return Ok(Some(run_id));
            }
            Ok(_) => {}
        }
    }
    match mode {
        Mode::Resume => Ok(None),
        Mode::Rollback => Err(CompensateError::refused(format!(
            "no run in `{}` has a journal to roll back from",
            state_dir.display()
        ))),
    }
}

/// The steps (by id, else name) whose rollback hook failed the last time
/// it ran, in the order the steps started: a hook run again on request
/// counts by its new result.
fn failed_hooks(records: &[Record]) -> Vec<String> {
    let mut failed: BTreeSet<u64> = BTreeSet::new();
    for record in records {
        match &record.entry {
            Entry::RollbackFinished { seq, status, .. } if status == "failure" => {
                failed.insert(*seq);
            }
            Entry::RollbackFinished { seq, .. } | Entry::RollbackRerun { seq } => {
                failed.remove(seq);
            }
            _ => {}
        }
    }
    records
        .iter()
        .filter_map(|record| match &record.entry {
            Entry::StepStarted {
                seq,
                hook: Some(hook),
                ..
            }
            | Entry::ImportedStep { seq, hook, .. } => failed.contains(seq).then_some(&**hook),
            _ => None,
        })
        .map(|hook| {
            hook.step_id
                .clone()
                .unwrap_or_else(|| hook.step_name.clone())
        })
        .collect()
}

/// Removes the folders of steps the dead runner was running, whose saved
/// state the hooks were given: nothing needs them any more.
fn remove_killed_step_folders(records: &[Record]) {
    let finished: BTreeSet<u64> = records
        .iter()
        .filter_map(|record| match record.entry {
            Entry::StepFinished { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    for record in records {
        if let Entry::StepStateFile { seq, path } = &record.entry
            && !finished.contains(seq)
        {
            leftovers::remove_read_step_folder(path);
        }
    }
}

/// Journals that the hooks of `step` are to run again, so the compensation
/// that follows finds them pending; refuses a step whose hook never ran.
fn ask_to_rerun(
    records: &[Record],
    path: &Path,
    run_id: &str,
    step: &str,
) -> Result<(), CompensateError> {
    let started: BTreeSet<u64> = records
        .iter()
        .filter_map(|record| match record.entry {
            Entry::RollbackStarted { seq } => Some(seq),
            _ => None,
        })
        .collect();
    let mut hooked = Vec::new();
    for record in records {
        if let Entry::StepStarted {
            seq,
            hook: Some(hook),
            ..
        } = &record.entry
            && (hook.step_id.as_deref() == Some(step) || hook.step_name == step)
        {
            hooked.push((*seq, started.contains(seq)));
        }
    }
    if hooked.is_empty() {
        return Err(CompensateError::refused(format!(
            "run `{run_id}` has no step `{step}` with a rollback hook"
        )));
    }
    let again: Vec<u64> = hooked
        .iter()
        .filter(|(_, ran)| *ran)
        .map(|(seq, _)| *seq)
        .collect();
    if again.is_empty() {
        return Err(CompensateError::refused_with(
            format!(
                "the rollback hook of `{step}` has not run in run `{run_id}`, so there is nothing to run again"
            ),
            format!("`gantry resume {run_id}` runs the hooks still pending"),
        ));
    }
    let journal = Journal::open(path).map_err(|error| refuse_journal(run_id, &error))?;
    for seq in again {
        record(&journal, Entry::RollbackRerun { seq })?;
    }
    outln!("gantry: the rollback hook of `{step}` will run again, as you asked (journaled)");
    Ok(())
}

/// A hook plugin whose kept copy cannot be loaded, and why.
struct Unloadable {
    alias: String,
    sha256: String,
    reason: String,
}

/// The plugin of every pending hook, from the copy kept by sha256 when its
/// run started; for a copy that is missing or damaged, why its hooks
/// cannot run.
fn kept_hook_plugins(
    compensation: &Compensation,
    state_dir: &Path,
) -> (IndexMap<String, VerifiedPlugin>, Vec<Unloadable>) {
    let kept = KeptPlugins::of(state_dir);
    let mut verified = IndexMap::new();
    let mut missing = Vec::new();
    for hook in &compensation.pending {
        let spec = &hook.spec;
        if verified.contains_key(&spec.plugin)
            || missing.iter().any(|m: &Unloadable| m.alias == spec.plugin)
        {
            continue;
        }
        match kept.load(&spec.sha256) {
            Ok(bytes) => {
                verified.insert(
                    spec.plugin.clone(),
                    VerifiedPlugin {
                        alias: spec.plugin.clone(),
                        sha256: spec.sha256.clone(),
                        bytes,
                        // Admitted under its limits when its run began.
                        limits: None,
                    },
                );
            }
            Err(reason) => missing.push(Unloadable {
                alias: spec.plugin.clone(),
                sha256: spec.sha256.clone(),
                reason: format!(
                    "plugin `{}` (sha256 {}) cannot be loaded: {reason}; its hook was not run",
                    spec.plugin, spec.sha256
                ),
            }),
        }
    }
    (verified, missing)
}

/// Why nothing is run from the journal of `run_id`.
fn refuse_journal(run_id: &str, error: &journal::ReadError) -> CompensateError {
    if error.is_damaged() {
        CompensateError::refused_with(
            format!(
                "run `{run_id}` is damaged: {}; nothing was run from it",
                one_line(error)
            ),
            "the journal is not the one gantry wrote, so its hooks and grants cannot be trusted; compensate this run by hand",
        )
    } else {
        CompensateError::refused(format!(
            "cannot read the journal of run `{run_id}`: {}",
            one_line(error)
        ))
    }
}

/// Records `entry`; a journal that cannot be written is marked so, and
/// stops the compensation.
pub(super) fn record(journal: &Journal, entry: Entry) -> Result<(), CompensateError> {
    journal.record(entry).map_err(|source| {
        journal.mark_unwritable();
        CompensateError::Journal {
            path: journal.path().to_owned(),
            source,
            hint: None,
        }
    })
}

/// What a journal's run-started entry records of the run's inputs and
/// vars, as one line (`inputs version=1.4.2; vars REGION=eu`), or `None`
/// when it was given neither.
fn recorded_given(records: &[Record]) -> Option<String> {
    let (inputs, vars) = records.iter().find_map(|record| match &record.entry {
        Entry::RunStarted { inputs, vars, .. } => Some((inputs, vars)),
        _ => None,
    })?;
    let mut parts = Vec::new();
    if !inputs.is_empty() {
        let values: Vec<String> = inputs
            .iter()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => format!("{name}={text}"),
                other => format!("{name}={other}"),
            })
            .collect();
        parts.push(format!("inputs {}", values.join(", ")));
    }
    if !vars.is_empty() {
        let values: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("vars {}", values.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
