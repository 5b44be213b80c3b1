//! `gantry runs`: the runs of a state folder, newest first, each with how
//! it ended and how far its rollback got, read from its journal.

use super::console::outln;
use clap::Args;

use super::state::StateFolderArgs;
use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::journal::RunState;
use crate::journal::{self, Entry, Record};
use crate::run_lock::RunLock;
use crate::runs;

/// List the runs of a pipeline, newest first, with their status.
#[derive(Debug, Args)]
pub struct RunsCommand {
    #[command(flatten)]
    state: StateFolderArgs,
}

impl RunsCommand {
    pub fn execute(self) -> Outcome {
        let state_dir = self.state.state_dir()?;
        let ids = runs::list(&state_dir).map_err(|error| {
            Failure::new(Exit::Invalid, error)
                .with_context(format!("cannot list the runs in `{}`", state_dir.display()))
        })?;
        if ids.is_empty() {
            outln!("no runs in `{}`", state_dir.display());
            return Ok(Exit::Success);
        }
        // A run without an end is still going only if someone holds the
        // lock; otherwise its runner died.
        let live = RunLock::acquire(&state_dir, false).is_err();
        outln!("state folder {}", state_dir.display());
        outln!("{:<24} {:<20} {:>5}  STATUS", "RUN", "PIPELINE", "STEPS");
        for (index, id) in ids.iter().enumerate() {
            let path = runs::run_dir(&state_dir, id).join(journal::FILE_NAME);
            let line = match journal::read(&path) {
                Ok(records) => {
                    let (pipeline, steps) = overview(&records);
                    let unwritable = path.with_file_name(journal::UNWRITABLE_MARK).exists();
                    let status = status(&records, live && index == 0, unwritable);
                    format!("{id:<24} {pipeline:<20} {steps:>5}  {status}")
                }
                Err(error) if error.is_missing() => format!(
                    "{id:<24} {:<20} {:>5}  no journal: the runner died before the run began; nothing to compensate",
                    "?", "?"
                ),
                Err(error) if error.is_damaged() => format!(
                    "{id:<24} {:<20} {:>5}  DAMAGED: {error}; `gantry rollback` and `resume` refuse it",
                    "?", "?"
                ),
                Err(error) => format!(
                    "{id:<24} {:<20} {:>5}  unreadable journal: {}",
                    "?",
                    "?",
                    crate::hint::one_line(&error)
                ),
            };
            outln!("{line}");
        }
        Ok(Exit::Success)
    }
}

/// The pipeline's name and how many steps started.
fn overview(records: &[Record]) -> (String, usize) {
    let mut pipeline = String::from("?");
    let mut steps = 0;
    for record in records {
        match &record.entry {
            Entry::RunStarted { pipeline: name, .. } => pipeline = name.clone(),
            Entry::StepStarted { .. } => steps += 1,
            _ => {}
        }
    }
    (pipeline, steps)
}

/// How a run ended, and its rollback, in a few words. `unwritable`: its
/// journal could not be written at some point (a full disk), which is why
/// an unsettled run stopped, not because its runner died.
pub fn status(records: &[Record], maybe_running: bool, unwritable: bool) -> String {
    let run = records.iter().rev().find_map(|r| match &r.entry {
        Entry::RunFinished { status } => Some(status.as_str()),
        _ => None,
    });
    let rollback = records.iter().rev().find_map(|r| match &r.entry {
        Entry::RollbackEnded { status } => Some(status.as_str()),
        Entry::RollbackBegun { .. } => Some("running"),
        _ => None,
    });
    let state = RunState::of(records);
    if unwritable && state != RunState::Settled && !maybe_running {
        return "stopped: its journal could not be written (is the disk full?); `gantry resume` finishes it once it can be".into();
    }
    match (state, run, rollback) {
        (RunState::Unfinished, _, _) if maybe_running => "running".into(),
        (RunState::Unfinished, _, _) => {
            "interrupted: the runner died (`gantry resume` rolls it back)".into()
        }
        (RunState::RollbackUnfinished, Some(run), _) => {
            format!("{run}, rollback interrupted (`gantry resume` finishes it)")
        }
        (_, Some(run), Some("success")) => format!("{run}, rolled back"),
        (_, Some(run), Some("failure")) => format!("{run}, rollback FAILED"),
        (_, Some(run), _) => run.to_owned(),
        (_, None, _) => "unknown".into(),
    }
}
