//! The sandbox: a wasmtime engine, the admission check for step plugins, and
//! one fresh, deny-by-default WASI store per step — preview 1 for a core
//! module, WASI 0.2 for a component ([`component`]).
//!
//! A step gets exactly what its manifest line grants and nothing from the
//! host by accident: no host environment variable unless listed, no folder
//! unless mounted (`/workspace`, granted `dirs`, its private `/tmp` and the
//! step files at `/gantry`), and none at all for a module that imports no
//! function able to reach into a folder; no stdin; no network but the
//! destinations a component step is granted ([`crate::network`]). Path escapes
//! are stopped by wasmtime-wasi's capability-based filesystem, which
//! resolves every path beneath its preopened folder and refuses `..`,
//! absolute paths and symlinks that would leave it. The host side is as
//! careful: a granted folder below the manifest's folder is opened without
//! following any link (a step may have replaced it by one), and no
//! writable mount may overlap gantry's state folder or module cache
//! ([`Sandbox::guard_host`]).
//!
//! Steps are cheap because little is made per step: modules are compiled
//! and linked once per run ([`StepModule`]), instances take their memory,
//! tables and fiber stack from a pool reserved once ([`Allocation`]),
//! wiped by wasmtime between steps, and step folders are emptied and
//! reused ([`step_files::StepFolders`]).
//!
//! Limits are enforced here too: linear memory through a resource limiter,
//! wall-clock time through epoch interruption plus an async timeout (which
//! also ends a guest blocked in a host call, such as a long sleep), and
//! output through the capped capture of [`output`].
//!
//! The rooms: this module holds the [`Sandbox`] and the types a caller
//! uses; `engine` sets up wasmtime (its configuration, the pool, the
//! linker, the epoch ticker); `admission` compiles, checks and links plugins; `context` builds a
//! step's WASI context from its grants; `run` runs one step and says how it
//! ended; [`component`] is what is particular to WASI 0.2 components.

mod admission;
pub mod component;
mod context;
mod disk;
mod engine;
pub mod leftovers;
pub mod limits;
pub mod output;
mod run;
pub mod step_files;

pub use self::admission::{Admission, Refused, StepModule, WASI_MODULE};
pub use self::engine::{Allocation, MAX_POOL_SLOTS, POOL_MIN_STEPS};
use self::engine::{EpochTicker, MEMORIES_PER_MODULE, TABLES_PER_MODULE};

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::{Engine, Linker};

use self::component::ComponentState;
use self::output::LineSink;
use self::run::StepState;
use self::step_files::{StepFiles, StepFolders};
use crate::display::human_duration;
use crate::network::{DenialSink, NetworkGrant, TlsRoots};
use crate::plan::DirMount;
use crate::state::Protected;

/// Default cap on what one step may print, stdout and stderr together.
pub const DEFAULT_OUTPUT_LIMIT: usize = 4 * 1024 * 1024;

/// The engine shared by every step of a run.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<StepState>,
    ticker: Option<EpochTicker>,
    folders: StepFolders,
    allocation: Allocation,
    /// One permit per pool slot, so a step waits for a slot rather than
    /// fails to instantiate; `None` when allocating on demand.
    slots: Option<tokio::sync::Semaphore>,
    pool_refused: Option<String>,
    /// The manifest's folder: a granted folder below it is opened without
    /// following any symlink, since a step may have planted one there.
    project: Option<PathBuf>,
    /// Folders no step may write (the state folder, the module cache).
    protected: Protected,
    /// What running steps' memory caps may add up to; `None`: no limit.
    memory_budget: Option<limits::MemoryBudget>,
    /// The linker of component steps, made when the first one is admitted:
    /// a run of modules only never pays for it.
    components: OnceLock<Result<wasmtime::component::Linker<ComponentState>, String>>,
    /// The roots HTTPS requests of component steps are verified against.
    tls: Arc<TlsRoots>,
}

/// What one run of a step is given.
pub struct StepInvocation<'a> {
    /// `argv[0]` of the guest.
    pub program: &'a str,
    /// The guest's whole environment, except the step-file variables the
    /// sandbox adds itself.
    pub env: Vec<(String, String)>,
    /// The manifest's folder, mounted at `/workspace` unless `None`.
    pub workspace: Option<Mount>,
    pub dirs: &'a [DirMount],
    /// Folders the runner adds itself: `/artifacts/<name>`.
    pub extra_dirs: Vec<DirMount>,
    pub timeout: Duration,
    pub memory_bytes: u64,
    /// Files the guest may hold open at once, besides its standard streams
    /// and mounted folders.
    pub max_files: u32,
    /// Bytes its private `/tmp` and upload folders may hold together.
    pub disk_bytes: u64,
    pub output_limit: usize,
    pub sink: LineSink,
    /// Stops the guest at once when cancelled (fail-fast, an interrupted
    /// run); the step then fails as [`Failure::Cancelled`].
    pub cancel: CancellationToken,
    /// The destinations a component step may reach.
    pub network: &'a [NetworkGrant],
    /// Told of each connection or request the step was refused.
    pub on_network_denied: Option<DenialSink>,
    /// Told the host path of the step's `GANTRY_STATE` file before the
    /// guest starts; an `Err` it returns fails the step unstarted.
    pub on_state_file: Option<Box<StateFileHook<'a>>>,
}

/// See [`StepInvocation::on_state_file`].
pub type StateFileHook<'a> = dyn FnOnce(&std::path::Path) -> Result<(), String> + Send + 'a;

/// A host folder to mount.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub writable: bool,
}

/// How a step ended.
#[derive(Debug)]
pub struct StepRun {
    pub outcome: Result<(), Failure>,
    pub files: StepFiles,
    pub duration: Duration,
}

/// Why a step failed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The module was refused before it ran.
    Refused(String),
    /// The step could not be set up (a granted folder is missing, say).
    Setup(String),
    Exit(i32),
    Trap(String),
    Timeout(Duration),
    Cancelled,
    MemoryLimit {
        limit: u64,
    },
    OutputFlood {
        limit: usize,
    },
    /// It wrote more to its `/tmp` and upload folders than it may.
    DiskLimit {
        limit: u64,
    },
    /// It tried to hold more files open at once than it may.
    FileLimit {
        limit: u32,
    },
    /// The step ran, but what it wrote to its files is unusable.
    StepFiles(String),
    /// The step succeeded, but an artifact it uploaded could not be stored.
    Artifact(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(reason) => write!(f, "the plugin was refused: {reason}"),
            Failure::Setup(reason) => write!(f, "the step could not start: {reason}"),
            Failure::Exit(code) => write!(f, "exited with status {code}"),
            Failure::Trap(reason) => write!(f, "trapped: {reason}"),
            Failure::Timeout(limit) => write!(f, "timed out after {}", human_duration(*limit)),
            Failure::Cancelled => f.write_str("cancelled"),
            Failure::MemoryLimit { limit } => write!(
                f,
                "exceeded its memory limit of {} MiB (raise `limits.memory-mb` if it needs more)",
                limit / (1024 * 1024)
            ),
            Failure::OutputFlood { limit } => {
                write!(
                    f,
                    "printed more than its output cap of {limit} bytes; the log was cut"
                )
            }
            Failure::DiskLimit { limit } => write!(
                f,
                "wrote more than {} MiB to its /tmp and upload folders, its limit; raise it with `limits.disk-mb`",
                limit >> 20
            ),
            Failure::FileLimit { limit } => write!(
                f,
                "opened more than {limit} files at once, its limit; raise it with `limits.files`"
            ),
            Failure::StepFiles(reason) => write!(f, "wrote an unusable step file: {reason}"),
            Failure::Artifact(reason) => write!(f, "its upload could not be stored: {reason}"),
        }
    }
}

impl Sandbox {
    /// Adds the CA certificates of a PEM file to the roots HTTPS servers
    /// are verified against (read on the first HTTPS request).
    pub fn trust_ca_file(&mut self, path: PathBuf) {
        self.tls = Arc::new(TlsRoots::new(Some(path)));
    }

    /// Admits a step only while the memory caps of the running steps,
    /// its own included, fit in `bytes`; the others wait.
    pub fn set_memory_budget(&mut self, bytes: u64) {
        self.memory_budget = Some(limits::MemoryBudget::new(bytes));
    }

    /// Sets the host boundary every mount is checked against: folders
    /// granted below `project` (the manifest's folder) are opened without
    /// following links, and no writable mount may overlap a `protected`
    /// folder. Every step and every rollback hook passes this check, also
    /// one run from a journal.
    pub fn guard_host(&mut self, project: &std::path::Path, protected: Protected) {
        self.project = Some(project.to_owned());
        self.protected = protected;
    }
}

/// The innermost message of an error chain, on one line.
fn root_cause(error: &wasmtime::Error) -> String {
    let cause = error
        .chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_default();
    cause.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::admission::{can_change_files, can_reach_folders};
    use super::*;
    use crate::plugin::cache::ModuleCache;
    use std::sync::atomic::Ordering;

    fn invocation(cancel: CancellationToken) -> StepInvocation<'static> {
        StepInvocation {
            program: "step",
            env: Vec::new(),
            workspace: None,
            dirs: &[],
            extra_dirs: Vec::new(),
            timeout: Duration::from_secs(30),
            memory_bytes: 16 << 20,
            max_files: 256,
            disk_bytes: 1 << 30,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            sink: Arc::new(|_, _, _| {}),
            cancel,
            on_state_file: None,
            network: &[],
            on_network_denied: None,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    const NO_OP: &str = r#"(module (memory 1) (func (export "_start")))"#;

    #[test]
    fn steps_beyond_the_pool_wait_for_a_slot_instead_of_failing() {
        let sandbox = Arc::new(Sandbox::new(POOL_MIN_STEPS, 1).unwrap());
        assert_eq!(sandbox.allocation(), Allocation::Pooling { slots: 1 });
        // Sleeps 50 ms in `poll_oneoff`, holding the only slot meanwhile.
        let sleeper = sandbox
            .admit(
                &wat::parse_str(
                    r#"(module
                        (import "wasi_snapshot_preview1" "poll_oneoff"
                          (func $poll (param i32 i32 i32 i32) (result i32)))
                        (memory (export "memory") 1)
                        ;; a relative clock subscription: monotonic, 50 ms
                        (data (i32.const 8) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00\80\f0\fa\02\00\00\00\00")
                        (func (export "_start")
                          (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#,
                )
                .unwrap(),
            )
            .unwrap();
        let runtime = runtime();
        let outcomes = runtime.block_on(async {
            let runs: Vec<_> = (0..3)
                .map(|_| {
                    let (sandbox, module) = (sandbox.clone(), sleeper.clone());
                    tokio::spawn(async move {
                        sandbox
                            .run(&module, invocation(CancellationToken::new()))
                            .await
                            .outcome
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for run in runs {
                outcomes.push(run.await.unwrap());
            }
            outcomes
        });
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    }

    #[test]
    fn a_step_waiting_for_a_slot_can_be_cancelled() {
        let sandbox = Sandbox::new(POOL_MIN_STEPS, 1).unwrap();
        let module = sandbox.admit(&wat::parse_str(NO_OP).unwrap()).unwrap();
        let runtime = runtime();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let _held = sandbox.slots.as_ref().unwrap().try_acquire().unwrap();
        let run = runtime.block_on(sandbox.run(&module, invocation(cancel)));
        assert_eq!(run.outcome, Err(Failure::Cancelled));
    }

    #[test]
    fn a_module_needing_more_than_one_share_is_refused_however_steps_are_allocated() {
        let pooled = Sandbox::new(POOL_MIN_STEPS, 2).unwrap();
        let on_demand = Sandbox::new(1, 2).unwrap();
        assert_eq!(pooled.allocation(), Allocation::Pooling { slots: 2 });
        assert_eq!(on_demand.allocation(), Allocation::OnDemand);
        for (wat, what) in [
            (
                r#"(module (memory 1) (memory 1) (func (export "_start")))"#,
                "memories",
            ),
            (
                r#"(module (table 1 funcref) (table 1 funcref) (table 1 funcref)
                    (table 1 funcref) (table 1 funcref) (func (export "_start")))"#,
                "table",
            ),
            (
                r#"(module (table 2000000 funcref) (func (export "_start")))"#,
                "table",
            ),
        ] {
            let bytes = wat::parse_str(wat).unwrap();
            for sandbox in [&pooled, &on_demand] {
                let refused = sandbox.admit(&bytes).err().unwrap().to_string();
                assert!(
                    refused.starts_with("it needs more than one step's share")
                        && refused.contains(what),
                    "{:?}: {refused}",
                    sandbox.allocation()
                );
            }
        }
        // One memory and four tables fit either way.
        let fits = wat::parse_str(
            r#"(module (memory 1) (table 1 funcref) (table 1 funcref) (table 1 funcref)
                (table 1 funcref) (func (export "_start")))"#,
        )
        .unwrap();
        assert!(pooled.admit(&fits).is_ok() && on_demand.admit(&fits).is_ok());
    }

    /// Modules compiled under one allocation load from the cache under the
    /// other: a small run and a large one share their cache entries.
    #[test]
    fn both_allocations_share_a_cache_key() {
        let pooled = Sandbox::new(POOL_MIN_STEPS, 2).unwrap();
        let on_demand = Sandbox::new(1, 2).unwrap();
        let sha = "0".repeat(64);
        assert_eq!(
            ModuleCache::key(pooled.engine(), &sha),
            ModuleCache::key(on_demand.engine(), &sha)
        );
    }

    #[test]
    fn the_memory_cap_holds_in_a_pool_slot() {
        let sandbox = Sandbox::new(POOL_MIN_STEPS, 1).unwrap();
        let grower = sandbox
            .admit(
                &wat::parse_str(
                    r#"(module (memory 1)
                        (func (export "_start") (drop (memory.grow (i32.const 1000)))))"#,
                )
                .unwrap(),
            )
            .unwrap();
        let run = runtime().block_on(sandbox.run(&grower, invocation(CancellationToken::new())));
        assert_eq!(run.outcome, Err(Failure::MemoryLimit { limit: 16 << 20 }));
    }

    /// A module importing no path function and not `fd_readdir` is given
    /// no folder: its first descriptor after stdio is not a preopen. The
    /// same module with `path_open` imported (never called) has its `/tmp`
    /// there. A missing granted folder fails both.
    #[test]
    fn a_module_that_can_reach_no_folder_is_given_none() {
        let probe = |extra_import: &str| {
            wat::parse_str(format!(
                r#"(module
                    (import "wasi_snapshot_preview1" "fd_prestat_get"
                      (func $prestat (param i32 i32) (result i32)))
                    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                    {extra_import}
                    (memory (export "memory") 1)
                    (func (export "_start")
                      (call $exit (call $prestat (i32.const 3) (i32.const 0)))))"#
            ))
            .unwrap()
        };
        let sandbox = Sandbox::new(1, 1).unwrap();
        let runtime = runtime();
        let folderless = sandbox.admit(&probe("")).unwrap();
        let reaching = sandbox
            .admit(&probe(
                r#"(import "wasi_snapshot_preview1" "path_open"
                     (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
            ))
            .unwrap();
        assert!(!folderless.reaches_folders && reaching.reaches_folders);
        let told = std::sync::atomic::AtomicBool::new(false);
        let mut folderless_run = invocation(CancellationToken::new());
        folderless_run.on_state_file = Some(Box::new(|_| {
            told.store(true, Ordering::Relaxed);
            Ok(())
        }));
        let run = runtime.block_on(sandbox.run(&folderless, folderless_run));
        // errno 8: EBADF, no descriptor 3.
        assert_eq!(run.outcome, Err(Failure::Exit(8)));
        assert!(!told.load(Ordering::Relaxed), "no state file to tell of");
        let run = runtime.block_on(sandbox.run(&reaching, invocation(CancellationToken::new())));
        assert_eq!(run.outcome, Ok(()));

        let missing = [DirMount {
            host: PathBuf::from("/nonexistent/gantry-granted"),
            guest: "/data".into(),
            writable: false,
        }];
        for module in [&folderless, &reaching] {
            let mut granted = invocation(CancellationToken::new());
            granted.dirs = &missing;
            let run = runtime.block_on(sandbox.run(module, granted));
            assert!(
                matches!(&run.outcome, Err(Failure::Setup(reason)) if reason.contains("does not exist")),
                "{:?}",
                run.outcome
            );
        }
    }

    #[test]
    fn which_functions_reach_into_a_folder() {
        for name in [
            "path_open",
            "path_filestat_get",
            "path_readlink",
            "fd_readdir",
        ] {
            assert!(can_reach_folders(name), "{name}");
        }
        for name in [
            "fd_write",
            "fd_prestat_get",
            "fd_prestat_dir_name",
            "fd_filestat_get",
            "proc_exit",
        ] {
            assert!(!can_reach_folders(name), "{name}");
        }
    }

    /// Only a module that can change files has its folder read back; the
    /// check must count every WASI function that creates, writes, renames
    /// or removes something.
    #[test]
    fn which_modules_can_change_their_folder() {
        for name in [
            "path_open",
            "path_create_directory",
            "path_link",
            "path_symlink",
            "path_rename",
            "path_unlink_file",
            "path_remove_directory",
            "path_filestat_set_times",
        ] {
            assert!(can_change_files(name), "{name}");
        }
        for name in [
            "fd_write",
            "fd_readdir",
            "fd_filestat_set_size",
            "path_filestat_get",
            "path_readlink",
            "proc_exit",
        ] {
            assert!(!can_change_files(name), "{name}");
        }
        let sandbox = Sandbox::new(POOL_MIN_STEPS, 1).unwrap();
        let unlinker = sandbox
            .admit(
                &wat::parse_str(
                    r#"(module
                        (import "wasi_snapshot_preview1" "path_unlink_file"
                          (func (param i32 i32 i32) (result i32)))
                        (memory (export "memory") 1)
                        (func (export "_start")))"#,
                )
                .unwrap(),
            )
            .unwrap();
        assert!(unlinker.changes_files);
        let no_op = sandbox.admit(&wat::parse_str(NO_OP).unwrap()).unwrap();
        assert!(!no_op.changes_files);
    }
}
