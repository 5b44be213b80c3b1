//! What several commands share: finding, loading and resolving a manifest,
//! reading its lock file, verifying and compiling its plugins, the state
//! folder and its lock, secrets and signals; each failure printed with its
//! exit status.

use super::console::errln;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::print_error;
use crate::engine::AdmittedPlugins;
use crate::exit::Exit;
use crate::manifest;
use crate::plan::{self, Plan};
use crate::plugin::cache::ModuleCache;
use crate::plugin::kept::KeptPlugins;
use crate::plugin::{self, LockFile};
use crate::run_lock::RunLock;
use crate::sandbox::Sandbox;
use crate::secrets::Secrets;
use crate::state::{self, Protected};

/// Loads and resolves the manifest at `path` (a file, a folder, or the
/// current folder's `gantry.yml`). Errors are printed; the `Err` is the
/// exit status.
pub fn load_plan(path: Option<&Path>) -> Result<Plan, Exit> {
    let file = manifest::locate(path);
    let loaded = manifest::load(&file).map_err(|error| {
        print_error(error);
        Exit::Invalid
    })?;
    plan::resolve(&loaded).map_err(|errors| {
        for error in errors.0 {
            print_error(error);
        }
        Exit::Invalid
    })
}

/// The path of the plan's lock file.
pub fn lock_path(plan: &Plan) -> PathBuf {
    LockFile::path_in(&plan.root)
}

/// Reads the plan's lock file; a broken one fails verification.
pub fn read_lock(plan: &Plan) -> Result<LockFile, Exit> {
    LockFile::read(&lock_path(plan)).map_err(|error| {
        print_error(error);
        Exit::Verification
    })
}

/// [`load_plan`] and [`read_lock`] together, as every command that checks
/// pins needs both.
pub fn load_plan_and_lock(path: Option<&Path>) -> Result<(Plan, LockFile), Exit> {
    let plan = load_plan(path)?;
    let lock = read_lock(&plan)?;
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
    pub fn load(&self) -> Result<Secrets, Exit> {
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
        loaded.map(|()| secrets).map_err(|message| {
            print_error(message);
            Exit::Invalid
        })
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
    /// The state folder of `plan`: `--state-dir`, or the project's folder
    /// under `$XDG_STATE_HOME/gantry/projects`.
    pub fn folder(&self, plan: &Plan) -> Result<PathBuf, Exit> {
        self.folder_of(&plan.root)
    }

    /// The state folder of the project whose manifest lies in `root`.
    pub fn folder_of(&self, root: &Path) -> Result<PathBuf, Exit> {
        match &self.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => state::default_folder(root).map_err(|error| {
                print_error(error);
                Exit::Invalid
            }),
        }
    }

    /// The folders no step of `plan` may write, checked against its
    /// writable grants: a step that could write gantry's state folder or
    /// its compiled-module cache refuses the pipeline (exit 2).
    pub fn protect(&self, plan: &Plan, state_dir: &Path) -> Result<Protected, Exit> {
        let protected = protected_folders(state_dir);
        let problems = protected.check_plan(plan);
        if problems.is_empty() {
            return Ok(protected);
        }
        for problem in problems {
            print_error(problem);
        }
        errln!("nothing ran: no step may write gantry's own files");
        Err(Exit::Invalid)
    }

    /// Takes the state folder's run lock, held until the guard is dropped.
    pub fn lock(&self, folder: &Path) -> Result<RunLock, Exit> {
        if self.wait {
            errln!(
                "gantry: waiting for the state folder `{}`",
                folder.display()
            );
        }
        RunLock::acquire(folder, self.wait).map_err(|error| {
            print_error(error);
            Exit::Invalid
        })
    }
}

/// The state folder and the module cache: what no step may write.
pub fn protected_folders(state_dir: &Path) -> Protected {
    let cache = ModuleCache::default_dir().ok();
    Protected::new(state_dir, cache.as_deref())
}

/// Every plugin of a plan verified against its pin and compiled.
pub struct Admitted {
    pub sandbox: Arc<Sandbox>,
    pub plugins: AdmittedPlugins,
    /// The verified sha256 of each alias.
    pub hashes: BTreeMap<String, String>,
}

/// How the sandbox of a command is set up.
pub struct SandboxSetup {
    /// How many steps the command may run, and how many at once.
    pub steps: usize,
    pub concurrent_steps: usize,
    /// Folders no mount may make writable.
    pub protected: Protected,
    /// What the running steps' memory caps may add up to.
    pub memory_budget: Option<u64>,
    /// The state folder to keep a copy of every hook's plugin in, so a
    /// later rollback does not depend on the project as it will be.
    pub keep_hooks_in: Option<PathBuf>,
    /// Private CA certificates component steps' HTTPS may be verified
    /// against, besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// Verifies every plugin (exit 3 on a bad pin), checks the steps against
/// the plugins' metadata (exit 2), and compiles them. The verified bytes
/// are compiled and dropped here: what was hashed is exactly what runs.
pub fn admit_plugins(
    plan: &mut Plan,
    lock: &LockFile,
    no_cache: bool,
    setup: SandboxSetup,
) -> Result<Admitted, Exit> {
    let verified = plugin::verify_all(plan, lock).map_err(|errors| {
        for error in errors {
            print_error(error);
        }
        errln!("nothing ran: every plugin must match its pin, and its signature where `verify:` asks for one");
        Exit::Verification
    })?;
    plugin::check::apply_metadata(plan, &verified).map_err(|errors| {
        for error in errors {
            print_error(error);
        }
        errln!("nothing ran: every step must fit its plugin's metadata");
        Exit::Invalid
    })?;
    if let Some(state_dir) = &setup.keep_hooks_in {
        keep_hook_plugins(plan, &verified, state_dir)?;
    }
    admit_verified(&verified, &plan.root, no_cache, setup)
}

/// Starts the sandbox for the project in `root` and admits plugins whose
/// bytes were verified: compiled, or loaded from the module cache unless
/// `no_cache`.
pub fn admit_verified(
    verified: &indexmap::IndexMap<String, plugin::VerifiedPlugin>,
    root: &Path,
    no_cache: bool,
    setup: SandboxSetup,
) -> Result<Admitted, Exit> {
    // The pool's slots are sized for one core module each, and a component
    // is made of several: a run with a component allocates on demand.
    let has_component = verified
        .values()
        .any(|plugin| plugin.kind() == plugin::PluginKind::Component);
    let pooled_steps = if has_component { 0 } else { setup.steps };
    let mut sandbox = Sandbox::new(pooled_steps, setup.concurrent_steps).map_err(|error| {
        print_error(format!("cannot start the WebAssembly engine: {error:#}"));
        Exit::StepFailed
    })?;
    sandbox.guard_host(root, setup.protected);
    if let Some(ca_file) = setup.ca_file {
        sandbox.trust_ca_file(ca_file);
    }
    if let Some(budget) = setup.memory_budget {
        sandbox.set_memory_budget(budget);
    }
    let sandbox = Arc::new(sandbox);
    if let Some(reason) = sandbox.pool_refused() {
        errln!(
            "gantry: cannot reserve the instance pool ({reason}); steps are allocated on demand, which is slower"
        );
    }
    let cache = if no_cache {
        None
    } else {
        ModuleCache::open_default()
            .map_err(|error| errln!("gantry: compiling without the module cache: {error}"))
            .ok()
    };
    let admission = sandbox.admit_all(verified, cache.as_ref());
    for note in &admission.notes {
        errln!("gantry: {note}");
    }
    if !admission.past_limits.is_empty() {
        for (alias, reason) in &admission.past_limits {
            print_error(format!("plugin `{alias}` was refused: {reason}"));
        }
        errln!("nothing ran: every plugin must compile within its limits");
        return Err(Exit::Invalid);
    }
    let plugins = admission.plugins;
    let hashes = verified
        .values()
        .map(|plugin| (plugin.alias.clone(), plugin.sha256.clone()))
        .collect();
    Ok(Admitted {
        sandbox,
        plugins,
        hashes,
    })
}

/// Keeps a copy of every rollback hook's plugin in the state folder.
fn keep_hook_plugins(
    plan: &Plan,
    verified: &indexmap::IndexMap<String, plugin::VerifiedPlugin>,
    state_dir: &Path,
) -> Result<(), Exit> {
    let kept = KeptPlugins::of(state_dir);
    // Each hook plugin once, however many steps use it.
    let aliases: std::collections::BTreeSet<&str> = plan
        .jobs
        .iter()
        .flat_map(|job| &job.steps)
        .filter_map(|step| step.rollback.as_ref())
        .map(|hook| hook.plugin.as_str())
        .collect();
    for alias in aliases {
        let Some(plugin) = verified.get(alias) else {
            continue;
        };
        kept.keep(&plugin.sha256, &plugin.bytes).map_err(|error| {
            print_error(format!(
                "cannot keep a copy of plugin `{}` for its rollback hooks in `{}`: {error}\nnothing ran: a run's compensation must not depend on the project staying as it is",
                plugin.alias,
                state_dir.display()
            ));
            Exit::StepFailed
        })?;
    }
    Ok(())
}

/// The run-wide memory budget (`--memory-budget MB`, else half of the
/// machine's memory), refusing a plan with a step whose own memory cap is
/// larger (exit 2): it could never start.
pub fn memory_budget(plan: &Plan, megabytes: Option<u64>) -> Result<u64, Exit> {
    let budget = megabytes.map_or_else(crate::sandbox::limits::default_memory_budget, |mb| {
        mb.saturating_mul(1 << 20)
    });
    let mut too_big = false;
    for job in &plan.jobs {
        for step in &job.steps {
            if step.memory_bytes > budget {
                too_big = true;
                print_error(
                    crate::manifest::ManifestError::at(
                        &plan.manifest_path,
                        &plan.source,
                        step.location,
                        format!(
                            "step `{}` of job `{}` may use {} MiB of memory (`limits.memory-mb`), more than the run's memory budget of {} MiB, so it could never start",
                            step.display_name,
                            job.id,
                            step.memory_bytes.div_ceil(1 << 20),
                            budget >> 20
                        ),
                    )
                    .with_hint("lower `limits.memory-mb`, or raise the budget with `--memory-budget MB`"),
                );
            }
        }
    }
    if too_big {
        errln!("nothing ran: every step must fit in the memory budget");
        return Err(Exit::Invalid);
    }
    Ok(budget)
}

/// The multi-threaded runtime the engine runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()
        .map_err(|error| {
            print_error(format!("cannot start the async runtime: {error}"));
            Exit::StepFailed
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
