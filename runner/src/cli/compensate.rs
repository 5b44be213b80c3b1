//! `gantry rollback` and `gantry resume`: compensating a run from its
//! journal, after the process that ran it has gone.
//!
//! Both take the state folder's lock (so they never race a live run, and a
//! run whose lock is free is known to be over) and run the pending hooks
//! newest first, from what the journal recorded alone: each hook's plugin
//! by sha256 (its bytes kept in the state folder when the run started),
//! its inputs and its grants. The manifest is not read: it may have been
//! edited, broken or deleted since, and a run's compensation must not
//! depend on it. `--manifest` only says where the project, and so its state
//! folder, is.

use super::console::{errln, outln};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{
    Admitted, RunStateArgs, SandboxSetup, SecretArgs, admit_verified, protected_folders, runtime,
    watch_signals,
};
use super::print_error;
use indexmap::IndexMap;

use crate::abi::Masks;
use crate::engine::rollback::{Compensation, HookRunner, RollbackOutcome};
use crate::engine::run_id;
use crate::engine::summary::RunSummary;
use crate::exit::Exit;
use crate::journal::{self, Entry, Journal, RunState};
use crate::manifest;
use crate::plugin::VerifiedPlugin;
use crate::plugin::kept::KeptPlugins;
use crate::report::masked::Masked;
use crate::report::{self, ColorChoice, Format, ReportOptions};
use crate::runs;
use crate::sandbox::DEFAULT_OUTPUT_LIMIT;
use crate::sandbox::leftovers;
use crate::secrets::Secrets;

/// Undo a finished run: run the rollback hooks of its steps, newest first.
///
/// Hooks that already ran (after the run failed, or an earlier `gantry
/// rollback`) never run again. Exits 0 when every hook succeeded, 4 when
/// one failed.
#[derive(Debug, Args)]
pub struct RollbackCommand {
    /// The run: its id, the start of its id [default: the newest run]
    run: Option<String>,
    /// Compensate a pipeline whose jobs ran on several machines: read the
    /// hand-off bundle of every job that ran (a bundle folder, or a folder
    /// of them; may be repeated), and run every hook their journals left
    /// pending, jobs in reverse plan order, each job's newest step first.
    /// The manifest (`--manifest`) must be the one the jobs ran
    #[arg(long = "import", value_name = "DIR", conflicts_with_all = ["run", "rerun"])]
    imports: Vec<PathBuf>,
    #[command(flatten)]
    options: CompensateArgs,
}

/// Finish a run whose runner died: roll back a run killed while it ran,
/// or finish a rollback that was cut short.
///
/// A hook that was running when the runner died is not run again; it is
/// reported, and the exit status is 4. Otherwise the exit status is 1 (the
/// run failed, and its rollback succeeded), or 0 when nothing was left.
#[derive(Debug, Args)]
pub struct ResumeCommand {
    /// The run: its id, the start of its id [default: the newest run]
    run: Option<String>,
    #[command(flatten)]
    options: CompensateArgs,
}

#[derive(Debug, Args)]
pub(super) struct CompensateArgs {
    /// The manifest the run came from, or its folder [default: ./gantry.yml]
    #[arg(long, short = 'm', value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
    #[command(flatten)]
    pub(super) state: RunStateArgs,
    #[command(flatten)]
    pub(super) secrets: SecretArgs,
    /// Compile every plugin, neither reading nor writing the module cache
    #[arg(long)]
    pub(super) no_cache: bool,
    /// Colour in the human format
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(super) color: ColorChoice,
    /// Run the rollback hook of STEP (its id or name) again, although it
    /// already ran or was cut short: a hook never runs twice unless you
    /// ask, and the request is journaled first
    #[arg(long, value_name = "STEP")]
    rerun: Option<String>,
}

/// Which command is compensating, for what it accepts and says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rollback,
    Resume,
}

impl RollbackCommand {
    pub fn execute(self) -> Exit {
        if !self.imports.is_empty() {
            return super::rollback_import::compensate_imported(&self.imports, &self.options)
                .unwrap_or_else(|e| e);
        }
        compensate(Mode::Rollback, self.run.as_deref(), &self.options).unwrap_or_else(|e| e)
    }
}

impl ResumeCommand {
    pub fn execute(self) -> Exit {
        compensate(Mode::Resume, self.run.as_deref(), &self.options).unwrap_or_else(|e| e)
    }
}

fn compensate(mode: Mode, wanted: Option<&str>, args: &CompensateArgs) -> Result<Exit, Exit> {
    let project = project_folder(args.manifest.as_deref())?;
    let secrets = args.secrets.load()?;
    let state_dir = args.state.folder_of(&project)?;
    let _lock = args.state.lock(&state_dir)?;
    let run_id = match wanted {
        Some(_) => runs::resolve(&state_dir, wanted).map_err(|error| {
            print_error(error);
            Exit::Invalid
        })?,
        // Running a hook again is asked of a run that may be settled: the
        // newest, as for `rollback`.
        None if args.rerun.is_some() => {
            choose_run(&state_dir, Mode::Rollback)?.expect("`rollback` chooses a run or fails")
        }
        None => match choose_run(&state_dir, mode)? {
            Some(run_id) => run_id,
            None => {
                outln!(
                    "gantry: nothing to resume: no run in `{}` needs it",
                    state_dir.display()
                );
                return Ok(Exit::Success);
            }
        },
    };
    let path = runs::run_dir(&state_dir, &run_id).join(journal::FILE_NAME);
    let read = || {
        journal::read(&path).map_err(|error| {
            refuse_journal(&run_id, &error);
            Exit::Invalid
        })
    };
    let mut records = read()?;
    if let Some(step) = &args.rerun {
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
            print_error(format!(
                "run `{run_id}` never finished: its runner died while it ran\nhint: `gantry resume {run_id}` rolls it back"
            ));
            return Err(Exit::Invalid);
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
            return Ok(Exit::Success);
        }
    };
    let compensation = Compensation::from_journal(&records);
    let journal = Journal::open(&path).map_err(|error| {
        refuse_journal(&run_id, &error);
        Exit::Invalid
    })?;
    if state == RunState::Unfinished {
        record(
            &journal,
            Entry::RunFinished {
                status: "interrupted".into(),
            },
        )?;
    }
    if compensation.is_empty() {
        outln!("gantry: run `{run_id}`: no rollback hook is left to run");
        if mode == Mode::Resume && state == RunState::RollbackUnfinished {
            record(
                &journal,
                Entry::RollbackEnded {
                    status: "success".into(),
                },
            )?;
        }
        return Ok(if mode == Mode::Resume {
            Exit::StepFailed
        } else {
            Exit::Success
        });
    }
    // Hooks run one at a time, in the project the run ran in.
    let hooks = compensation.pending.len();
    let root = records
        .iter()
        .find_map(|record| match &record.entry {
            Entry::RunStarted { root, .. } => root.clone(),
            _ => None,
        })
        .unwrap_or(project);
    let ca_file = records.iter().find_map(|record| match &record.entry {
        Entry::RunStarted { ca_file, .. } => ca_file.clone(),
        _ => None,
    });
    let setup = SandboxSetup {
        steps: hooks,
        concurrent_steps: 1,
        protected: protected_folders(&state_dir),
        // Hooks run one at a time, each within its own cap.
        memory_budget: None,
        keep_hooks_in: None,
        ca_file,
    };
    let (verified, missing) = kept_hook_plugins(&compensation, &state_dir);
    let mut admitted = admit_verified(&verified, &root, args.no_cache, setup)?;
    for unloadable in missing {
        admitted
            .hashes
            .insert(unloadable.alias.clone(), unloadable.sha256);
        admitted
            .plugins
            .insert(unloadable.alias, Err(unloadable.reason));
    }
    if let Some(given) = super::given::recorded_in(&records) {
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
            secrets: &secrets,
            run_id: &run_id,
            workspace: &root,
            color: args.color,
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
        errln!(
            "gantry: {} of the rollback hooks failed: the target may be inconsistent",
            outcome.failed
        );
        return Ok(Exit::RollbackFailed);
    }
    outln!("gantry: run `{run_id}` rolled back");
    Ok(match mode {
        Mode::Rollback => Exit::Success,
        Mode::Resume => Exit::StepFailed,
    })
}

/// What running a compensation needs: the admitted hook plugins, the
/// journal to record in, the secrets to render and mask with, and where
/// the hooks run.
pub(super) struct HookRun<'a> {
    pub admitted: &'a Admitted,
    pub journal: &'a Journal,
    pub secrets: &'a Secrets,
    pub run_id: &'a str,
    pub workspace: &'a std::path::Path,
    pub color: ColorChoice,
}

/// Runs the pending hooks of `compensation` one at a time, the first
/// signal stopping them, and adds their summaries to the run's summary.
/// `announce` is printed once the reporters are set up (under GitHub
/// Actions the masks go out first).
/// A journal that cannot be written stops the rollback (exit 4, with
/// `journal_hint` saying how to finish it, `{run_id}` filled in); a stop
/// by a signal is said here. The caller tells the verdict.
pub(super) fn run_hooks(
    run: &HookRun<'_>,
    compensation: &Compensation,
    announce: &str,
    reason: &str,
    journal_hint: &str,
) -> Result<RollbackOutcome, Exit> {
    let run_id = run.run_id;
    let runtime = runtime()?;
    let stop = CancellationToken::new();
    // Here the first signal already stops the rollback.
    watch_signals(&runtime, stop.clone(), stop.clone());
    let masks = Arc::new(Mutex::new(Masks::new(run.secrets.masker())));
    let reporters = report::build(&ReportOptions {
        format: Format::Auto,
        color: run.color,
        verbose: false,
        label_jobs: true,
        junit: None,
        secrets: run.secrets,
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
        secrets: run.secrets,
        masks,
        run_id,
        workspace: run.workspace,
        output_limit: DEFAULT_OUTPUT_LIMIT,
        stop,
    };
    let outcome = runtime
        .block_on(runner.compensate(compensation, reason))
        .map_err(|error| {
            run.journal.mark_unwritable();
            print_error(format!(
                "cannot write the journal of run `{run_id}`: {error}; the rollback stopped\nhint: {}",
                journal_hint.replace("{run_id}", run_id)
            ));
            Exit::RollbackFailed
        })?;
    if !outcome.summaries.is_empty() {
        add_to_summary(run.journal, &outcome.summaries);
    }
    if outcome.stopped {
        errln!("gantry: the rollback was stopped; `gantry resume {run_id}` finishes it");
    }
    Ok(outcome)
}

/// Appends the hooks' summaries to the run's `summary.md`, beside its
/// journal, as a run's own hooks would have.
pub(super) fn add_to_summary(journal: &Journal, summaries: &str) {
    let folder = journal.path().parent().unwrap_or(std::path::Path::new("."));
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
fn choose_run(state_dir: &std::path::Path, mode: Mode) -> Result<Option<String>, Exit> {
    let all = runs::list(state_dir).map_err(|source| {
        print_error(runs::RunError::Io {
            path: runs::runs_dir(state_dir),
            source,
        });
        Exit::Invalid
    })?;
    if all.is_empty() {
        print_error(runs::RunError::NoRuns {
            state_dir: state_dir.to_owned(),
        });
        return Err(Exit::Invalid);
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
        Mode::Rollback => {
            print_error(format!(
                "no run in `{}` has a journal to roll back from",
                state_dir.display()
            ));
            Err(Exit::Invalid)
        }
    }
}

/// Removes the folders of steps the dead runner was running, whose saved
/// state the hooks were given: nothing needs them any more.
fn remove_killed_step_folders(records: &[journal::Record]) {
    let finished: std::collections::BTreeSet<u64> = records
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
    records: &[journal::Record],
    path: &std::path::Path,
    run_id: &str,
    step: &str,
) -> Result<(), Exit> {
    let started: std::collections::BTreeSet<u64> = records
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
        print_error(format!(
            "run `{run_id}` has no step `{step}` with a rollback hook"
        ));
        return Err(Exit::Invalid);
    }
    let again: Vec<u64> = hooked
        .iter()
        .filter(|(_, ran)| *ran)
        .map(|(seq, _)| *seq)
        .collect();
    if again.is_empty() {
        print_error(format!(
            "the rollback hook of `{step}` has not run in run `{run_id}`, so there is nothing to run again\nhint: `gantry resume {run_id}` runs the hooks still pending"
        ));
        return Err(Exit::Invalid);
    }
    let journal = Journal::open(path).map_err(|error| {
        refuse_journal(run_id, &error);
        Exit::Invalid
    })?;
    for seq in again {
        record(&journal, Entry::RollbackRerun { seq })?;
    }
    outln!("gantry: the rollback hook of `{step}` will run again, as you asked (journaled)");
    Ok(())
}

/// The canonical folder of the manifest `--manifest` names (or of
/// `./gantry.yml`); the manifest itself is not read.
fn project_folder(manifest: Option<&std::path::Path>) -> Result<PathBuf, Exit> {
    let file = manifest::locate(manifest);
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    folder.canonicalize().map_err(|error| {
        print_error(format!(
            "cannot find the project folder `{}`: {error}",
            folder.display()
        ));
        Exit::Invalid
    })
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
    state_dir: &std::path::Path,
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

/// Says why nothing is run from the journal of `run_id`.
fn refuse_journal(run_id: &str, error: &journal::ReadError) {
    if error.is_damaged() {
        print_error(format!(
            "run `{run_id}` is damaged: {error}; nothing was run from it\nhint: the journal is not the one gantry wrote, so its hooks and grants cannot be trusted; compensate this run by hand"
        ));
    } else {
        print_error(format!(
            "cannot read the journal of run `{run_id}`: {error}"
        ));
    }
}

pub(super) fn record(journal: &Journal, entry: Entry) -> Result<(), Exit> {
    journal.record(entry).map_err(|error| {
        journal.mark_unwritable();
        print_error(format!(
            "cannot write the journal `{}`: {error}",
            journal.path().display()
        ));
        Exit::RollbackFailed
    })
}
