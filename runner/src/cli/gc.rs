//! `gantry gc`: removes old runs from a state folder, and the stored
//! artifacts only they used.

use super::console::{errln, outln};
use clap::Args;

use super::state::StateFolderArgs;
use super::{Failure, Outcome};
use crate::artifacts::collect_garbage;
use crate::display::{human_bytes, plural};
use crate::exit::Exit;
use crate::run_lock::RunLock;
use crate::sandbox::leftovers;

/// Remove all runs but the newest N, and the artifacts no kept run uses.
///
/// Removes the run folders (journal, logs, summary, artifact index) of every
/// run but the newest N, then every stored artifact file that no remaining
/// run refers to. A run that still needs `gantry resume` (its runner died,
/// or its rollback was cut short) is kept, and so is one whose journal is
/// damaged unless `--remove-damaged`. It takes the state folder's run
/// lock, so it never overlaps a run. It also removes the temporary folders
/// of killed runners. The state folder is the project's (`--manifest`,
/// default ./gantry.yml), or `--state-dir`.
///
/// Exit status: 0 when done; 2 when the state folder is in use (see
/// `--wait`); 1 when something could not be read or removed.
#[derive(Debug, Args)]
pub struct GcCommand {
    /// How many of the newest runs to keep (0 removes every run)
    #[arg(long, value_name = "N")]
    keep: usize,
    /// Wait for a run using the state folder to finish, instead of failing
    /// at once
    #[arg(long)]
    wait: bool,
    /// Show what would be removed, and remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Also remove old runs whose journal is damaged (kept otherwise, for
    /// a person to look at: whether they need compensating cannot be told)
    #[arg(long)]
    remove_damaged: bool,
    #[command(flatten)]
    state: StateFolderArgs,
}

impl GcCommand {
    pub fn execute(self) -> Outcome {
        let state_dir = self.state.state_dir()?;
        if !state_dir.is_dir() {
            outln!(
                "nothing to remove: there is no state folder `{}`",
                state_dir.display()
            );
            return Ok(Exit::Success);
        }
        if self.wait {
            errln!(
                "gantry: waiting for the state folder `{}`",
                state_dir.display()
            );
        }
        let lock = RunLock::acquire(&state_dir, self.wait)
            .map_err(|error| Failure::new(Exit::Invalid, error))?;
        let report = collect_garbage(
            &state_dir,
            self.keep,
            self.dry_run,
            self.remove_damaged,
            &lock,
        )
        .map_err(|error| Failure::new(Exit::StepFailed, error))?;
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for (run, bytes) in &report.removed_runs {
            outln!("{verb} run {run} ({})", human_bytes(*bytes));
        }
        for run in &report.kept_unsettled {
            outln!(
                "kept run {run}: it has not settled, or its journal is damaged (see `gantry runs`; `gantry resume {run}` finishes it, `--remove-damaged` lets a damaged one go)"
            );
        }
        outln!(
            "{verb} {} ({})",
            plural(report.removed_blobs, "unused artifact blob"),
            human_bytes(report.store_bytes)
        );
        let temp = std::env::temp_dir();
        let swept = leftovers::sweep(&temp, self.dry_run).unwrap_or_else(|error| {
            errln!(
                "gantry: cannot look for what killed runs left in `{}`: {error}",
                temp.display()
            );
            leftovers::Swept::default()
        });
        if swept.folders > 0 {
            outln!(
                "{verb} {} left in `{}` by killed runs ({})",
                plural(swept.folders, "folder"),
                temp.display(),
                human_bytes(swept.bytes)
            );
        }
        if swept.kept_for_resume > 0 {
            outln!(
                "kept {} in `{}`: they hold state a killed step saved for its rollback hook (`gantry resume` reads and removes them)",
                plural(swept.kept_for_resume, "step folder"),
                temp.display()
            );
        }
        outln!(
            "{} {}; kept {}",
            if self.dry_run { "would free" } else { "freed" },
            human_bytes(report.freed_bytes() + swept.bytes),
            plural(report.kept_runs.len(), "run")
        );
        Ok(Exit::Success)
    }
}
