//! `gantry rollback` and `gantry resume`: compensating a run from its
//! journal, after the process that ran it has gone.
//!
//! Both verify the manifest's plugins as `gantry run` does, take the state
//! folder's lock (so they never race a live run, and a run whose lock is
//! free is known to be over), and run the pending hooks newest first. A
//! hook only runs with the plugin bytes its step ran with: the journal
//! keeps each hook's sha256.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{
    RunStateArgs, SecretArgs, admit_plugins, load_plan_and_lock, runtime, watch_signals,
};
use super::print_error;
use crate::abi::Masks;
use crate::engine::rollback::{Compensation, HookRunner};
use crate::exit::Exit;
use crate::journal::{self, Entry, Journal, RunState};
use crate::report::masked::Masked;
use crate::report::{self, ColorChoice, Format, ReportOptions};
use crate::runs;
use crate::sandbox::DEFAULT_OUTPUT_LIMIT;

/// Undo a finished run: run the rollback hooks of its steps, newest first.
///
/// Hooks that already ran (after the run failed, or an earlier `gantry
/// rollback`) never run again. Exits 0 when every hook succeeded, 4 when
/// one failed.
#[derive(Debug, Args)]
pub struct RollbackCommand {
    /// The run: its id, the start of its id [default: the newest run]
    run: Option<String>,
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
struct CompensateArgs {
    /// The manifest the run came from, or its folder [default: ./gantry.yml]
    #[arg(long, short = 'm', value_name = "PATH")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    state: RunStateArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    /// Compile every plugin, neither reading nor writing the module cache
    #[arg(long)]
    no_cache: bool,
    /// Colour in the human format
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

/// Which command is compensating, for what it accepts and says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rollback,
    Resume,
}

impl RollbackCommand {
    pub fn execute(self) -> Exit {
        compensate(Mode::Rollback, self.run.as_deref(), &self.options).unwrap_or_else(|e| e)
    }
}

impl ResumeCommand {
    pub fn execute(self) -> Exit {
        compensate(Mode::Resume, self.run.as_deref(), &self.options).unwrap_or_else(|e| e)
    }
}

fn compensate(mode: Mode, wanted: Option<&str>, args: &CompensateArgs) -> Result<Exit, Exit> {
    let (mut plan, lock) = load_plan_and_lock(args.manifest.as_deref())?;
    let secrets = args.secrets.load()?;
    let state_dir = args.state.folder(&plan);
    let _lock = args.state.lock(&state_dir)?;
    let run_id = runs::resolve(&state_dir, wanted).map_err(|error| {
        print_error(error);
        Exit::Invalid
    })?;
    let path = runs::run_dir(&state_dir, &run_id).join(journal::FILE_NAME);
    let records = journal::read(&path).map_err(|error| {
        print_error(format!(
            "cannot read the journal of run `{run_id}`: {error}"
        ));
        Exit::Invalid
    })?;
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
        (Mode::Resume, RunState::RollbackUnfinished) => "finishing a rollback that was cut short",
        (Mode::Resume, RunState::Settled) => {
            println!("gantry: run `{run_id}` has nothing to resume");
            return Ok(Exit::Success);
        }
    };
    let compensation = Compensation::from_journal(&records);
    let journal = Journal::open(&path).map_err(|error| {
        print_error(format!(
            "cannot open the journal of run `{run_id}` to append to it: {error}"
        ));
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
        println!("gantry: run `{run_id}`: no rollback hook is left to run");
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
    // Hooks run one at a time.
    let hooks = compensation.pending.len();
    let admitted = admit_plugins(&mut plan, &lock, args.no_cache, hooks, 1)?;
    let runtime = runtime()?;
    let stop = CancellationToken::new();
    // Here the first signal already stops the rollback.
    watch_signals(&runtime, stop.clone(), stop.clone());
    let masks = Arc::new(Mutex::new(Masks::new(secrets.masker())));
    let reporters = report::build(&ReportOptions {
        format: Format::Auto,
        color: args.color,
        verbose: false,
        label_jobs: true,
        junit: None,
        secrets: &secrets,
        live_steps: None,
    });
    println!(
        "gantry: rolling back run `{run_id}` ({reason}): {} hooks to run",
        compensation.pending.len()
    );
    let runner = HookRunner {
        sandbox: &admitted.sandbox,
        plugins: &admitted.plugins,
        hashes: &admitted.hashes,
        journal: &journal,
        reporter: Arc::new(Masked::new(reporters.reporter.clone(), masks.clone())),
        secrets: &secrets,
        masks,
        run_id: &run_id,
        workspace: &plan.root,
        output_limit: DEFAULT_OUTPUT_LIMIT,
        stop,
    };
    let outcome = runtime
        .block_on(runner.compensate(&compensation, reason))
        .map_err(|error| {
            print_error(format!(
                "cannot write the journal of run `{run_id}`: {error}; the rollback stopped"
            ));
            Exit::RollbackFailed
        })?;
    if !outcome.summaries.is_empty() {
        add_to_summary(&journal, &outcome.summaries);
    }
    if outcome.stopped {
        eprintln!("gantry: the rollback was stopped; `gantry resume {run_id}` finishes it");
    }
    if !outcome.succeeded() {
        eprintln!(
            "gantry: {} of the rollback hooks failed: the target may be inconsistent",
            outcome.failed
        );
        return Ok(Exit::RollbackFailed);
    }
    println!("gantry: run `{run_id}` rolled back");
    Ok(match mode {
        Mode::Rollback => Exit::Success,
        Mode::Resume => Exit::StepFailed,
    })
}

/// Appends the hooks' summaries to the run's `summary.md`, beside its
/// journal, as a run's own hooks would have.
fn add_to_summary(journal: &Journal, summaries: &str) {
    let path = journal.path().with_file_name("summary.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(summaries);
    match crate::fsutil::write_atomic(&path, text.as_bytes()) {
        Ok(()) => println!("gantry: hook summaries added to {}", path.display()),
        Err(error) => eprintln!(
            "gantry: cannot add the hooks' summaries to `{}`: {error}",
            path.display()
        ),
    }
}

fn record(journal: &Journal, entry: Entry) -> Result<(), Exit> {
    journal.record(entry).map_err(|error| {
        print_error(format!(
            "cannot write the journal `{}`: {error}",
            journal.path().display()
        ));
        Exit::RollbackFailed
    })
}
