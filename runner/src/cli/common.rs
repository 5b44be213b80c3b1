//! What several commands share: finding, loading and resolving a manifest,
//! reading its lock file, verifying and compiling its plugins, the state
//! folder and its lock, secrets and signals; each failure a [`Failure`]
//! with its exit status, printed by `cli::main`.

use super::console::errln;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Failure, Problem};
use crate::exit::Exit;
use crate::load::Draft;
use crate::plan::Plan;
use crate::plugin::LockFile;
use crate::run_lock::RunLock;
use crate::secrets::Secrets;
use crate::state::{self, Protected};

/// Reads and resolves the manifest at `path` (a file, a folder, or the
/// current folder's `gantry.yml`) into a draft.
pub fn read_draft(path: Option<&Path>) -> Result<Draft, Failure> {
    Ok(Draft::read(path)?)
}

/// The final plan at `path`, for commands that only read it.
pub fn load_plan(path: Option<&Path>) -> Result<Plan, Failure> {
    read_draft(path).map(Draft::finish)
}

/// The path of the lock file of the project in `root`.
pub fn lock_path(root: &Path) -> PathBuf {
    LockFile::path_in(root)
}

/// Reads the lock file of the project in `root`; a broken one fails
/// verification.
pub fn read_lock(root: &Path) -> Result<LockFile, Failure> {
    LockFile::read(&lock_path(root)).map_err(|error| Failure::new(Exit::Verification, error))
}

/// [`load_plan`] and [`read_lock`] together, as every command that checks
/// pins needs both.
pub fn load_plan_and_lock(path: Option<&Path>) -> Result<(Plan, LockFile), Failure> {
    let plan = load_plan(path)?;
    let lock = read_lock(&plan.root)?;
    Ok((plan, lock))
}

/// The secrets of a run, from the command line.
#[derive(Debug, clap::Args)]
pub struct SecretArgs {
    /// A secret for `${{ secrets.NAME }}`: NAME=VALUE, or NAME to take the
    /// value of the host variable NAME (may be repeated)
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    secrets: Vec<String>,
    /// A dotenv file of secrets (NAME=VALUE lines)
    #[arg(long, value_name = "PATH")]
    secrets_file: Vec<PathBuf>,
}

impl SecretArgs {
    /// Reads the secrets; a bad argument or file is a usage error.
    pub fn load(&self) -> Result<Secrets, Failure> {
        let mut secrets = Secrets::default();
        let loaded = self
            .secrets_file
            .iter()
            .try_for_each(|path| secrets.add_file(path))
            .and_then(|()| {
                self.secrets.iter().try_for_each(|argument| {
                    secrets.add_argument(argument, |name| std::env::var(name).ok())
                })
            });
        loaded
            .map(|()| secrets)
            .map_err(|error| Failure::new(Exit::Invalid, error))
    }
}

/// The state folder and its lock, from the command line.
#[derive(Debug, clap::Args)]
pub struct RunStateArgs {
    /// Where run records are kept [default:
    /// `$XDG_STATE_HOME/gantry/projects/<folder>-<hash>`]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Wait for another run using the same state folder to finish, instead
    /// of failing at once
    #[arg(long)]
    pub wait: bool,
}

impl RunStateArgs {
    /// The state folder of the project whose manifest lies in `root`.
    pub fn folder_of(&self, root: &Path) -> Result<PathBuf, Failure> {
        match &self.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => {
                state::default_folder(root).map_err(|error| Failure::hinted(Exit::Invalid, error))
            }
        }
    }

    /// The folders no step of the draft may write, checked against its
    /// writable grants: a step that could write gantry's state folder or
    /// its compiled-module cache refuses the pipeline (exit 2).
    pub fn protect(&self, draft: &Draft, state_dir: &Path) -> Result<Protected, Failure> {
        let protected = Protected::of(state_dir);
        draft.check_protected(&protected).map_err(|error| {
            Failure::from(error).with_closing("nothing ran: no step may write gantry's own files")
        })?;
        Ok(protected)
    }

    /// Takes the state folder's run lock, held until the guard is dropped.
    pub fn lock(&self, folder: &Path) -> Result<RunLock, Failure> {
        if self.wait {
            errln!(
                "gantry: waiting for the state folder `{}`",
                folder.display()
            );
        }
        RunLock::acquire(folder, self.wait).map_err(|error| Failure::new(Exit::Invalid, error))
    }
}

/// The run-wide memory budget (`--memory-budget MB`, else half of the
/// machine's memory), refusing a draft with a step whose own memory cap
/// is larger (exit 2): it could never start.
pub fn memory_budget(draft: &Draft, megabytes: Option<u64>) -> Result<u64, Failure> {
    let budget = megabytes.map_or_else(crate::sandbox::limits::default_memory_budget, |mb| {
        mb.saturating_mul(1 << 20)
    });
    draft.check_memory(budget).map_err(|error| {
        Failure::from(error).with_closing("nothing ran: every step must fit in the memory budget")
    })?;
    Ok(budget)
}

/// The multi-threaded runtime the engine runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()
        .map_err(|error| {
            Failure::of(
                Exit::StepFailed,
                Problem::new(error).context("cannot start the async runtime"),
            )
        })
}

/// The processors this process may use, read once: finding out reads the
/// cgroup's CPU quota from `/proc` and `/sys` each time.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Turns SIGINT and SIGTERM into cancellation: the first cancels `run`
/// (running steps stop, the rollback starts), the second cancels
/// `rollback` (the rollback stops where it is, for `gantry resume`).
pub fn watch_signals(
    runtime: &tokio::runtime::Runtime,
    run: CancellationToken,
    rollback: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        runtime.block_on(async { signal(SignalKind::interrupt()) }),
        runtime.block_on(async { signal(SignalKind::terminate()) }),
    ) else {
        errln!("gantry: cannot watch for signals; an interrupt stops gantry at once");
        return;
    };
    runtime.spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            if received == 1 {
                errln!(
                    "gantry: interrupted: stopping the running steps and rolling back (interrupt again to stop the rollback)"
                );
                run.cancel();
            } else {
                errln!(
                    "gantry: interrupted again: stopping the rollback; `gantry resume` finishes it"
                );
                rollback.cancel();
                run.cancel();
            }
        }
    });
}
