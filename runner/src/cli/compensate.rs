//! `gantry rollback` and `gantry resume`: the state folder's lock taken,
//! the run compensated from its journal by
//! [`engine::rollback::later`](crate::engine::rollback::later), and the
//! outcome mapped to the contract's exit status. `--manifest` only says
//! where the project, and so its state folder, is: the manifest is not
//! read (a run's compensation must not depend on it).

use std::path::{Path, PathBuf};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{RunStateArgs, SecretArgs, runtime, watch_signals};
use super::{Failure, Outcome};
use crate::engine::rollback::later::{self, HookEnvironment, Mode, Request, Settled};
use crate::exit::Exit;
use crate::manifest;
use crate::report::ColorChoice;
use crate::secrets::Secrets;

/// Undo a finished run: run the rollback hooks of its steps, newest first.
///
/// Hooks that already ran (after the run failed, or an earlier `gantry
/// rollback`) never run again. Exits 0 when every hook succeeded, 4 when
/// one failed, now or before (until `--rerun` runs it again and it
/// succeeds).
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

impl RollbackCommand {
    pub fn execute(self) -> Outcome {
        if !self.imports.is_empty() {
            return super::rollback_import::compensate_imported(&self.imports, &self.options);
        }
        compensate(Mode::Rollback, self.run.as_deref(), &self.options)
    }
}

impl ResumeCommand {
    pub fn execute(self) -> Outcome {
        compensate(Mode::Resume, self.run.as_deref(), &self.options)
    }
}

fn compensate(mode: Mode, run: Option<&str>, args: &CompensateArgs) -> Outcome {
    let project = project_folder(args.manifest.as_deref())?;
    let secrets = args.secrets.load()?;
    let state_dir = args.state.folder_of(&project)?;
    let _lock = args.state.lock(&state_dir)?;
    let runtime = runtime()?;
    let request = Request {
        mode,
        run,
        rerun: args.rerun.as_deref(),
        state_dir: &state_dir,
        project: &project,
        hooks: args.hook_environment(&secrets, &runtime),
    };
    let settled = later::compensate(&request)?;
    // `resume` reports the run it finished: a run that needed resuming
    // failed, or was interrupted, even once its rollback succeeded.
    Ok(match (mode, settled) {
        (_, Settled::HooksFailed) => Exit::RollbackFailed,
        (_, Settled::NothingToResume) | (Mode::Rollback, _) => Exit::Success,
        (Mode::Resume, Settled::NoHookLeft | Settled::RolledBack) => Exit::StepFailed,
    })
}

impl CompensateArgs {
    /// How the hooks run: on `runtime`, the first signal stopping them
    /// where they are (for `gantry resume`).
    pub(super) fn hook_environment<'a>(
        &self,
        secrets: &'a Secrets,
        runtime: &'a tokio::runtime::Runtime,
    ) -> HookEnvironment<'a> {
        let stop = CancellationToken::new();
        watch_signals(runtime, stop.clone(), stop.clone());
        HookEnvironment {
            secrets,
            no_cache: self.no_cache,
            color: self.color,
            runtime,
            stop,
        }
    }
}

/// The canonical folder of the manifest `--manifest` names (or of
/// `./gantry.yml`); the manifest itself is not read.
fn project_folder(manifest: Option<&Path>) -> Result<PathBuf, Failure> {
    let file = manifest::locate(manifest);
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    folder.canonicalize().map_err(|error| {
        Failure::new(Exit::Invalid, error).with_context(format!(
            "cannot find the project folder `{}`",
            folder.display()
        ))
    })
}
