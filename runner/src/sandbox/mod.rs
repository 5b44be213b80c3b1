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

pub mod component;
mod disk;
pub mod leftovers;
pub mod limits;
pub mod output;
pub mod step_files;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, WasiView};

use self::component::ComponentState;
use self::limits::StepLimiter;
use self::output::{LineSink, OutputCapture, Stream};
use self::step_files::{StepFiles, StepFolder, StepFolders};
use crate::display::human_duration;
use crate::fsutil;
use crate::network::{DenialSink, NetworkGrant, StepNetwork, TlsRoots};
use crate::plan::DirMount;
use crate::plugin::VerifiedPlugin;
use crate::plugin::cache::{Compiled, Lookup, ModuleCache};
use crate::plugin::compile_limits::CompileLimits;
use crate::state::{Protected, relation};

/// The only import module a step may use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// Default cap on what one step may print, stdout and stderr together.
pub const DEFAULT_OUTPUT_LIMIT: usize = 4 * 1024 * 1024;
/// How often the epoch advances; a running guest yields at each tick, so
/// this bounds how late a timeout can fire.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource-table entries a step has besides its mounted folders and the
/// files it opens: its three standard streams (measured on wasmtime-wasi
/// 48's preview 1 adapter; the file-limit test pins it). A folder being
/// listed counts as an open file while it is.
const TABLE_OVERHEAD: usize = 3;

/// The same for a component, whose table also holds its streams, pollables
/// and HTTP requests and responses while it uses them: a generous margin,
/// so the limit still counts files and not the plumbing of WASI 0.2.
const COMPONENT_TABLE_OVERHEAD: usize = 64;

/// How waiting for a guest ended.
enum Ended<T> {
    Cancelled,
    DiskFull,
    Ran(T),
}

/// What lives in a step's store.
struct StepState {
    wasi: WasiP1Ctx,
    limiter: StepLimiter,
}

/// A compiled, admitted step plugin, linked and ready to instantiate.
#[derive(Clone)]
pub struct StepModule {
    program: Program,
    /// Whether the module imports `poll_oneoff`, the only way a WASI
    /// preview 1 guest can sleep.
    can_sleep: bool,
    /// Whether the module imports a function that can create, change or
    /// remove a file; one that does not leaves its step folder as it got
    /// it, so there is nothing to read back or empty.
    changes_files: bool,
    /// Whether the module imports a function that can open or list
    /// anything in a folder; one that does not is given no folder at all.
    reaches_folders: bool,
}

/// The linked program of a step, of either kind.
#[derive(Clone)]
enum Program {
    Module(InstancePre<StepState>),
    Component(CommandPre<ComponentState>),
}

/// Why a module was refused before running.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    reason: String,
    /// Refused for passing a compile limit: the run fails before any step
    /// rather than only the steps using the plugin.
    past_limit: bool,
}

impl Refused {
    fn new(reason: impl Into<String>) -> Refused {
        Refused {
            reason: reason.into(),
            past_limit: false,
        }
    }

    fn past_limit(reason: impl Into<String>) -> Refused {
        Refused {
            reason: reason.into(),
            past_limit: true,
        }
    }
}

/// What admitting a run's plugins gave: each alias's module or why it was
/// refused, what the cache had to say, and the plugins past a compile
/// limit, which fail the run before any step.
pub struct Admission {
    pub plugins: IndexMap<String, Result<StepModule, String>>,
    pub notes: Vec<String>,
    pub past_limits: Vec<(String, String)>,
}

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

/// How the sandbox allocates each step's memory, tables and stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Mapped for each step and unmapped after it.
    OnDemand,
    /// Reserved once, in slots reused from step to step (wasmtime's pooling
    /// allocator): no `mmap` of a fresh fiber stack and memory per step,
    /// which is most of what a small step costs in wasmtime.
    Pooling {
        /// Steps that may run at once; more wait for a slot.
        slots: u32,
    },
}

/// The most pool slots a sandbox reserves; each reserves address space (not
/// memory) for a whole 4 GiB linear memory plus its guard.
pub const MAX_POOL_SLOTS: u32 = 256;
/// Runs with fewer steps than this allocate on demand: reserving and
/// releasing a pool costs about what it saves on 15 to 30 steps (see
/// `Sandbox::new` in docs/BENCHMARKS.md), so a small run would only pay.
pub const POOL_MIN_STEPS: usize = 32;
/// Linear memories a step module may define.
const MEMORIES_PER_MODULE: u32 = 1;
/// Tables a step module may define.
const TABLES_PER_MODULE: u32 = 4;

impl Sandbox {
    /// A sandbox for a run of `steps` steps, up to `concurrent_steps` of
    /// them at a time: with the pooling allocator when the run is long
    /// enough for the pool to pay for itself ([`POOL_MIN_STEPS`]), and
    /// allocating on demand otherwise or where the pool's address space
    /// cannot be reserved (a `ulimit -v`, say).
    pub fn new(steps: usize, concurrent_steps: usize) -> wasmtime::Result<Sandbox> {
        if steps < POOL_MIN_STEPS {
            return Sandbox::with_allocation(Allocation::OnDemand);
        }
        let slots = u32::try_from(concurrent_steps.min(steps))
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_POOL_SLOTS);
        match Sandbox::with_allocation(Allocation::Pooling { slots }) {
            Ok(sandbox) => Ok(sandbox),
            Err(error) => {
                let mut sandbox = Sandbox::with_allocation(Allocation::OnDemand)?;
                sandbox.pool_refused = Some(root_cause(&error));
                Ok(sandbox)
            }
        }
    }

    /// Why the pool could not be reserved, when this sandbox fell back to
    /// allocating on demand.
    pub fn pool_refused(&self) -> Option<&str> {
        self.pool_refused.as_deref()
    }

    pub fn with_allocation(allocation: Allocation) -> wasmtime::Result<Sandbox> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut slots = None;
        if let Allocation::Pooling { slots: count } = allocation {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_core_instances(count)
                .total_memories(count)
                .total_tables(count * TABLES_PER_MODULE)
                .max_memories_per_module(MEMORIES_PER_MODULE)
                .max_tables_per_module(TABLES_PER_MODULE)
                .table_elements(limits::MAX_TABLE_ELEMENTS)
                .total_stacks(count);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            slots = Some(tokio::sync::Semaphore::new(count as usize));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut StepState| {
            &mut state.wasi
        })?;
        let ticker = Some(EpochTicker::start(engine.clone()));
        Ok(Sandbox {
            engine,
            linker,
            ticker,
            folders: StepFolders::default(),
            allocation,
            slots,
            pool_refused: None,
            project: None,
            protected: Protected::default(),
            memory_budget: None,
            components: OnceLock::new(),
            tls: Arc::new(TlsRoots::default()),
        })
    }

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

    /// How this sandbox allocates steps.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// The engine every step of this sandbox runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `bytes` and checks the module or component is a WASI
    /// command that imports only what gantry provides.
    pub fn admit(&self, bytes: &[u8]) -> Result<StepModule, Refused> {
        self.check(self.compile(bytes)?)
    }

    /// Admits a verified plugin, taking its native code from `cache` when
    /// an entry keyed by the plugin's verified sha256 is there, and storing
    /// it after compiling otherwise. What the cache had to say (a rejected
    /// entry, a failed write) comes back as a note.
    pub fn admit_plugin(
        &self,
        plugin: &VerifiedPlugin,
        cache: Option<&ModuleCache>,
    ) -> (Result<StepModule, Refused>, Option<String>) {
        // A module compiled before (same bytes, same engine) passed its
        // limits then; a new one is measured before the compiler sees it.
        let mut note = None;
        if let Some(cache) = cache {
            match cache.load(&self.engine, &plugin.sha256, plugin.kind()) {
                Lookup::Hit(module) => return (self.check(module), None),
                Lookup::Miss => {}
                Lookup::Rejected(reason) => note = Some(reason),
            }
        }
        if let Some(limits) = &plugin.limits
            && let Err(reason) = limits.check(&plugin.bytes)
        {
            return (Err(Refused::past_limit(reason)), note);
        }
        let compiled = match &plugin.limits {
            Some(limits) => self.compile_within(&plugin.bytes, limits),
            None => self.compile(&plugin.bytes),
        };
        let Some(cache) = cache else {
            return (compiled.and_then(|module| self.check(module)), note);
        };
        let admitted = compiled.and_then(|module| {
            let admitted = self.check(module.clone())?;
            if let Err(e) = cache.store(&self.engine, &plugin.sha256, &module) {
                note = Some(format!(
                    "cannot store the compiled plugin `{}` in `{}`: {e}",
                    plugin.alias,
                    cache.dir().display()
                ));
            }
            Ok(admitted)
        });
        (admitted, note)
    }

    /// Admits every plugin, each distinct module (by sha256) compiled or
    /// loaded once, on its own thread. Returns each alias's module or the
    /// reason it was refused, in the given order, and the cache's notes.
    pub fn admit_all(
        &self,
        plugins: &IndexMap<String, VerifiedPlugin>,
        cache: Option<&ModuleCache>,
    ) -> Admission {
        let mut distinct: IndexMap<&str, &VerifiedPlugin> = IndexMap::new();
        for plugin in plugins.values() {
            distinct.entry(plugin.sha256.as_str()).or_insert(plugin);
        }
        let results: Vec<_> = if distinct.len() <= 1 {
            distinct
                .values()
                .map(|plugin| self.admit_plugin(plugin, cache))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = distinct
                    .values()
                    .map(|plugin| scope.spawn(move || self.admit_plugin(plugin, cache)))
                    .collect();
                handles
                    .into_iter()
                    .map(|handle| match handle.join() {
                        Ok(result) => result,
                        Err(_) => (Err(Refused::new("the compiler stopped unexpectedly")), None),
                    })
                    .collect()
            })
        };
        let mut notes = Vec::new();
        let mut past_limits = Vec::new();
        let mut by_sha = IndexMap::new();
        for ((sha, plugin), (admitted, note)) in distinct.iter().zip(results) {
            notes.extend(note);
            if let Err(refused) = &admitted
                && refused.past_limit
            {
                past_limits.push((plugin.alias.clone(), refused.reason.clone()));
            }
            by_sha.insert(*sha, admitted.map_err(|refused| refused.to_string()));
        }
        let plugins = plugins
            .iter()
            .map(|(alias, plugin)| (alias.clone(), by_sha[plugin.sha256.as_str()].clone()))
            .collect();
        Admission {
            plugins,
            notes,
            past_limits,
        }
    }

    /// Compiles on a thread of its own, giving up after the deadline: the
    /// thread is left to finish (or be ended with the process, as the run
    /// fails before any step), never waited for.
    fn compile_within(&self, bytes: &[u8], limits: &CompileLimits) -> Result<Compiled, Refused> {
        let (done, result) = std::sync::mpsc::channel();
        let engine = self.engine.clone();
        let owned = bytes.to_vec();
        let spawned = std::thread::Builder::new()
            .name("gantry-compile".into())
            .spawn(move || {
                let _ = done.send(Compiled::from_binary(&engine, &owned));
            });
        if spawned.is_err() {
            // No thread to spare: compile here, without a deadline.
            return self.compile(bytes);
        }
        match result.recv_timeout(limits.deadline) {
            Ok(compiled) => compiled.map_err(|e| compile_refusal(&e)),
            Err(_) => Err(Refused::past_limit(limits.too_slow())),
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<Compiled, Refused> {
        Compiled::from_binary(&self.engine, bytes).map_err(|e| compile_refusal(&e))
    }

    /// Checks a compiled module or component and links it.
    fn check(&self, compiled: Compiled) -> Result<StepModule, Refused> {
        match compiled {
            Compiled::Module(module) => self.check_module(module),
            Compiled::Component(component) => {
                let linker = self
                    .components
                    .get_or_init(|| component::linker(&self.engine).map_err(|e| root_cause(&e)))
                    .as_ref()
                    .map_err(|e| Refused::new(format!("cannot link WASI 0.2: {e}")))?;
                // A component is taken as doing everything a module can:
                // sleeping, changing files, reaching folders. Its imports
                // are interfaces, too coarse to tell otherwise.
                Ok(StepModule {
                    program: Program::Component(component::check(
                        &self.engine,
                        linker,
                        &component,
                    )?),
                    can_sleep: true,
                    changes_files: true,
                    reaches_folders: true,
                })
            }
        }
    }

    /// Checks a compiled core module and links it.
    fn check_module(&self, module: Module) -> Result<StepModule, Refused> {
        within_one_share(&module)?;
        let (mut can_sleep, mut changes_files, mut reaches_folders) = (false, false, false);
        for import in module.imports() {
            if import.module() != WASI_MODULE {
                return Err(Refused::new(format!(
                    "it imports `{}::{}`, which gantry does not provide; a step may only import WASI preview 1 (`{WASI_MODULE}`)",
                    import.module(),
                    import.name()
                )));
            }
            can_sleep |= import.name() == "poll_oneoff";
            changes_files |= can_change_files(import.name());
            reaches_folders |= can_reach_folders(import.name());
        }
        match module.get_export("_start") {
            Some(wasmtime::ExternType::Func(func))
                if func.params().len() == 0 && func.results().len() == 0 => {}
            Some(_) => {
                return Err(Refused::new(
                    "its `_start` export is not a function without parameters or results",
                ));
            }
            None => {
                return Err(Refused::new(
                    "it does not export `_start`; a step must be a WASI command (a program with a `main`)",
                ));
            }
        }
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            let cause = root_cause(&e);
            match cause.strip_prefix("unknown import: ") {
                Some(rest) => Refused::new(format!(
                    "it imports {}, which is not a WASI preview 1 function gantry provides",
                    rest.trim_end_matches(" has not been defined")
                )),
                None => Refused::new(cause),
            }
        })?;
        Ok(StepModule {
            program: Program::Module(pre),
            can_sleep,
            changes_files,
            reaches_folders,
        })
    }

    /// Runs one step in a fresh store and collects what it left behind.
    pub async fn run(&self, module: &StepModule, mut invocation: StepInvocation<'_>) -> StepRun {
        let _memory = match &self.memory_budget {
            Some(budget) => tokio::select! {
                biased;
                () = invocation.cancel.cancelled() => {
                    return early_failure(Instant::now(), Failure::Cancelled);
                }
                permit = budget.reserve(invocation.memory_bytes) => match permit {
                    Some(permit) => Some(permit),
                    None => return early_failure(
                        Instant::now(),
                        Failure::Setup(format!(
                            "its memory cap of {} MiB is more than the run's memory budget of {} MiB; raise it with `--memory-budget`",
                            invocation.memory_bytes.div_ceil(1 << 20),
                            budget.bytes() >> 20
                        )),
                    ),
                },
            },
            None => None,
        };
        let _slot = match &self.slots {
            Some(slots) => tokio::select! {
                biased;
                () = invocation.cancel.cancelled() => {
                    return early_failure(Instant::now(), Failure::Cancelled);
                }
                permit = slots.acquire() => permit.ok(),
            },
            None => None,
        };
        let started = Instant::now();
        let capture = OutputCapture::new(invocation.output_limit, invocation.sink.clone());
        // A module that can reach no folder gets none, not even its own
        // `/tmp` and step files: it could not use them.
        let folder = if module.reaches_folders {
            match self.folders.take() {
                Ok(folder) => Some(folder),
                Err(e) => {
                    return early_failure(
                        started,
                        Failure::Setup(format!("cannot create its private folder: {e}")),
                    );
                }
            }
        } else {
            None
        };
        // Until the guest starts, the folder is as it was handed out.
        let unused = |folder: Option<StepFolder>| {
            if let Some(folder) = folder {
                self.folders.put_back_unchanged(folder);
            }
        };
        if let Some(tell) = invocation.on_state_file.take()
            && let Some(state_file) = folder.as_ref().map(StepFolder::state_file)
            && let Err(reason) = tell(&state_file)
        {
            unused(folder);
            return early_failure(started, Failure::Setup(reason));
        }
        let (mut builder, mounts) =
            match self.build_wasi(&invocation, module, folder.as_ref(), &capture) {
                Ok(built) => built,
                Err(failure) => {
                    unused(folder);
                    return early_failure(started, failure);
                }
            };
        // What the step may fill: its private `/tmp` and upload folders.
        let filled: Vec<PathBuf> = match (&folder, module.changes_files) {
            (Some(folder), true) => std::iter::once(folder.scratch())
                .chain(
                    invocation
                        .extra_dirs
                        .iter()
                        .filter(|dir| dir.writable)
                        .map(|dir| dir.host.clone()),
                )
                .collect(),
            _ => Vec::new(),
        };
        let limiter = StepLimiter::new(invocation.memory_bytes);
        let (cancel, timeout) = (&invocation.cancel, invocation.timeout);
        let disk_bytes = invocation.disk_bytes;
        // Each kind gets its own store; the store (and the guest's files
        // with it) is dropped at the end of its arm, before the step
        // folder is read back.
        let (result, memory_refused) = match &module.program {
            Program::Module(pre) => {
                let wasi = with_file_limit(builder.build_p1(), mounts, invocation.max_files);
                let mut store = Store::new(&self.engine, StepState { wasi, limiter });
                store.limiter(|state| &mut state.limiter);
                store.epoch_deadline_async_yield_and_update(1);
                let guest = run_guest(pre, &mut store);
                let result = supervise(cancel, timeout, &filled, disk_bytes, guest).await;
                (result, store.data().limiter.memory_refused.is_some())
            }
            Program::Component(pre) => {
                let mut table = ResourceTable::new();
                table.set_max_capacity(
                    mounts + COMPONENT_TABLE_OVERHEAD + invocation.max_files as usize,
                );
                let denied = invocation
                    .on_network_denied
                    .clone()
                    .unwrap_or_else(|| Arc::new(|_: &str, _: &str| {}));
                let network = StepNetwork::new(invocation.network, self.tls.clone(), denied);
                network.configure_sockets(&mut builder);
                let state = ComponentState {
                    wasi: builder.build(),
                    table,
                    http: wasmtime_wasi_http::WasiHttpCtx::new(),
                    network,
                    limiter,
                };
                let mut store = Store::new(&self.engine, state);
                store.limiter(|state| &mut state.limiter);
                store.epoch_deadline_async_yield_and_update(1);
                let guest = component::run(pre, &mut store);
                let result = supervise(cancel, timeout, &filled, disk_bytes, guest).await;
                (result, store.data().limiter.memory_refused.is_some())
            }
        };
        let flooded = capture.finish();
        let outcome = match result {
            Ended::Cancelled => Err(Failure::Cancelled),
            Ended::DiskFull => Err(Failure::DiskLimit {
                limit: invocation.disk_bytes,
            }),
            Ended::Ran(Err(_elapsed)) => Err(Failure::Timeout(invocation.timeout)),
            Ended::Ran(Ok(Ok(()))) => Ok(()),
            Ended::Ran(Ok(Err(error))) => classify(&error, flooded, memory_refused, &invocation),
        };
        // A guest quicker than the watch may end past its limit: measured
        // once more now.
        let outcome = outcome.and_then(|()| {
            if disk::used(&filled) > invocation.disk_bytes {
                Err(Failure::DiskLimit {
                    limit: invocation.disk_bytes,
                })
            } else {
                Ok(())
            }
        });
        let read = match folder {
            Some(folder) if module.changes_files => self.folders.finish(folder),
            folder => {
                unused(folder);
                Ok(StepFiles::default())
            }
        };
        let (outcome, files) = match read {
            Ok(files) => (outcome, files),
            Err(reason) => (
                outcome.and(Err(Failure::StepFiles(reason))),
                StepFiles::default(),
            ),
        };
        StepRun {
            outcome,
            files,
            duration: started.elapsed(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Waits for the guest, its timeout, a cancellation or a full disk,
/// whichever comes first.
/// (Given the invocation's parts, not the invocation: a reference to it
/// could not be held across an await by a future sent between threads.)
async fn supervise(
    cancel: &CancellationToken,
    timeout: Duration,
    filled: &[PathBuf],
    disk_bytes: u64,
    guest: impl Future<Output = wasmtime::Result<()>>,
) -> Ended<Result<wasmtime::Result<()>, tokio::time::error::Elapsed>> {
    let guarded = tokio::time::timeout(timeout, guest);
    tokio::select! {
        biased;
        () = cancel.cancelled() => Ended::Cancelled,
        () = disk::watch(filled, disk_bytes) => Ended::DiskFull,
        result = guarded => Ended::Ran(result),
    }
}

async fn run_guest(
    pre: &InstancePre<StepState>,
    store: &mut Store<StepState>,
) -> wasmtime::Result<()> {
    // Instantiation runs the module's start function, so it sits inside the
    // timeout as well.
    let instance = pre.instantiate_async(&mut *store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await
}

/// Refuses a module that defines more than a step may have, whichever way
/// the sandbox allocates: the pool checks this while compiling, and the
/// same limits hold on demand, so a module is admitted or refused the same
/// in a small run as in a large one.
fn within_one_share(module: &Module) -> Result<(), Refused> {
    let needs = module.resources_required();
    let too_many = |count: u32, what: &str, most: u32| {
        beyond_one_share(format!(
            "it defines {count} {what}, and a step may define at most {most}"
        ))
    };
    if needs.num_memories > MEMORIES_PER_MODULE {
        return Err(too_many(
            needs.num_memories,
            "linear memories",
            MEMORIES_PER_MODULE,
        ));
    }
    if needs.num_tables > TABLES_PER_MODULE {
        return Err(too_many(needs.num_tables, "tables", TABLES_PER_MODULE));
    }
    match needs.max_initial_table_size {
        Some(elements) if elements > limits::MAX_TABLE_ELEMENTS as u64 => {
            Err(beyond_one_share(format!(
                "a table starts with {elements} elements, and a step may have at most {}",
                limits::MAX_TABLE_ELEMENTS
            )))
        }
        _ => Ok(()),
    }
}

/// Why the compiler refused a module.
fn compile_refusal(error: &wasmtime::Error) -> Refused {
    let cause = root_cause(error);
    // The pooling allocator checks a module against its slots here.
    if cause.contains("per-instance limit") || cause.contains("exceeds the limit of") {
        beyond_one_share(cause)
    } else {
        Refused::new(format!("not a valid WebAssembly module: {cause}"))
    }
}

/// The refusal of a module that needs more than a step may have, in the
/// same words whether the pool or [`within_one_share`] found it.
fn beyond_one_share(detail: impl fmt::Display) -> Refused {
    Refused::new(format!("it needs more than one step's share: {detail}"))
}

fn early_failure(started: Instant, failure: Failure) -> StepRun {
    StepRun {
        outcome: Err(failure),
        files: StepFiles::default(),
        duration: started.elapsed(),
    }
}

/// Whether the WASI preview 1 function `name` can create, write, rename or
/// remove anything. Every such function takes a path (`path_open` is the
/// only way to get a writable file); the preopened folders themselves
/// cannot be written through.
fn can_change_files(name: &str) -> bool {
    name.starts_with("path_") && !matches!(name, "path_filestat_get" | "path_readlink")
}

/// Whether the WASI preview 1 function `name` can reach into a folder:
/// every path function resolves a path in one, and `fd_readdir` lists one.
/// Without any of them a module can neither open nor list a file, so the
/// folders it would be given could only be counted, never used.
fn can_reach_folders(name: &str) -> bool {
    name.starts_with("path_") || name == "fd_readdir"
}

impl Sandbox {
    /// The WASI context of one step: only what the invocation grants.
    fn build_wasi(
        &self,
        invocation: &StepInvocation<'_>,
        module: &StepModule,
        folder: Option<&StepFolder>,
        capture: &OutputCapture,
    ) -> Result<(WasiCtxBuilder, usize), Failure> {
        let mut builder = WasiCtxBuilder::new();
        // File operations run inline on this thread instead of hopping to a
        // blocking pool; must be set before the folders are opened. The
        // same switch makes wasmtime-wasi serve a plain relative sleep with
        // `std::thread::sleep`, which no timeout can interrupt, so a module
        // that can sleep keeps the (slower, interruptible) thread hop.
        builder.allow_blocking_current_thread(!module.can_sleep);
        builder.stdout(capture.stream(Stream::Stdout));
        builder.stderr(capture.stream(Stream::Stderr));
        builder.args(&[invocation.program]);
        for (name, value) in &invocation.env {
            builder.env(name, value);
        }
        for (name, value) in StepFolder::guest_env() {
            builder.env(name, value);
        }
        let granted = invocation.dirs.iter().chain(&invocation.extra_dirs);
        // A missing grant is a mistake in the manifest, said whether or not
        // this module could have used the folder.
        if let Some(dir) = granted.clone().find(|dir| !dir.host.is_dir()) {
            return Err(Failure::Setup(format!(
                "the folder `{}` granted at `{}` does not exist",
                dir.host.display(),
                dir.guest
            )));
        }
        let Some(folder) = folder else {
            return Ok((builder, 0));
        };
        // The step's own folders: made by gantry, never a grant.
        let own = |builder: &mut WasiCtxBuilder, host: &std::path::Path, guest: &str| {
            builder
                .preopened_dir(host, guest, FsPerms::ReadWrite)
                .map(|_| ())
                .map_err(|e| cannot_open(host, guest, &root_cause(&e)))
        };
        own(&mut builder, &folder.scratch(), "/tmp")?;
        own(&mut builder, &folder.files(), step_files::GUEST_FILES_DIR)?;
        let mut mounts = 2;
        if let Some(workspace) = &invocation.workspace {
            self.mount(
                &mut builder,
                &workspace.host,
                "/workspace",
                workspace.writable,
            )?;
            mounts += 1;
        }
        for dir in granted {
            self.mount(&mut builder, &dir.host, &dir.guest, dir.writable)?;
            mounts += 1;
        }
        Ok((builder, mounts))
    }

    /// Mounts a granted host folder at `guest`. Below the manifest's
    /// folder no symlink is followed on the way (a step may have replaced
    /// a folder by a link to anywhere), and a writable mount of a folder
    /// holding gantry's own files is refused. The folder is opened once
    /// and mounted through its descriptor, so a link planted between the
    /// check and the mount changes nothing.
    fn mount(
        &self,
        builder: &mut WasiCtxBuilder,
        host: &std::path::Path,
        guest: &str,
        writable: bool,
    ) -> Result<(), Failure> {
        let below_project = self
            .project
            .as_deref()
            .and_then(|project| host.strip_prefix(project).ok().map(|rel| (project, rel)));
        let opened = match below_project {
            Some((project, relative)) => fsutil::open_dir_beneath(project, relative),
            None => fsutil::open_dir(host),
        }
        .map_err(|e| cannot_open(host, guest, &e.to_string()))?;
        if writable {
            let real =
                fsutil::real_path(&opened).map_err(|e| cannot_open(host, guest, &e.to_string()))?;
            if let Some(overlap) = self.protected.overlap(&real) {
                return Err(Failure::Setup(format!(
                    "refused to mount `{}` writable at `{guest}`: it {} gantry's {} `{}`, which no step may write",
                    overlap.grant.display(),
                    relation(&overlap),
                    overlap.what,
                    overlap.protected.display()
                )));
            }
        }
        let perms = if writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(fsutil::fd_path(&opened), guest, perms)
            .map(|_| ())
            .map_err(|e| cannot_open(host, guest, &root_cause(&e)))
    }
}

/// Caps the guest's resource table: every file it opens is a host
/// descriptor held there, so the cap bounds what one step can take from
/// the host (and from the steps beside it). `mounts` folders were
/// preopened.
fn with_file_limit(mut wasi: WasiP1Ctx, mounts: usize, max_files: u32) -> WasiP1Ctx {
    wasi.ctx()
        .table
        .set_max_capacity(mounts + TABLE_OVERHEAD + max_files as usize);
    wasi
}

fn cannot_open(host: &std::path::Path, guest: &str, why: &str) -> Failure {
    Failure::Setup(format!(
        "cannot open `{}` for `{guest}`: {why}",
        host.display()
    ))
}

/// Turns a guest error into the reason a person reads.
fn classify(
    error: &wasmtime::Error,
    flooded: bool,
    memory_refused: bool,
    invocation: &StepInvocation<'_>,
) -> Result<(), Failure> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return if exit.0 == 0 {
            Ok(())
        } else {
            Err(Failure::Exit(exit.0))
        };
    }
    if flooded {
        return Err(Failure::OutputFlood {
            limit: invocation.output_limit,
        });
    }
    if memory_refused {
        return Err(Failure::MemoryLimit {
            limit: invocation.memory_bytes,
        });
    }
    if error
        .chain()
        .any(|cause| cause.is::<wasmtime::component::ResourceTableError>())
    {
        return Err(Failure::FileLimit {
            limit: invocation.max_files,
        });
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return Err(Failure::Trap(describe_trap(*trap)));
    }
    Err(Failure::Trap(root_cause(error)))
}

fn describe_trap(trap: Trap) -> String {
    match trap {
        Trap::StackOverflow => "stack overflow (the guest recursed too deeply)".into(),
        Trap::UnreachableCodeReached => {
            "`unreachable` executed (this is how Rust and C guests abort or panic)".into()
        }
        // Rust and C keep their stack in linear memory, so their stack
        // overflows land here rather than on wasmtime's stack guard.
        Trap::MemoryOutOfBounds => {
            "out-of-bounds memory access (a stack overflow in a Rust or C guest looks like this)"
                .into()
        }
        Trap::IntegerDivisionByZero => "integer division by zero".into(),
        Trap::IntegerOverflow => "integer overflow".into(),
        Trap::IndirectCallToNull => "call through a null function reference".into(),
        Trap::BadSignature => "indirect call with the wrong signature".into(),
        Trap::Interrupt => "interrupted".into(),
        other => other.to_string(),
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

/// Advances the engine's epoch every [`EPOCH_TICK`] while the sandbox lives.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("gantry-epoch".into())
            .spawn(move || {
                // Parked rather than asleep, so `stop` can wake it at once
                // instead of waiting out the tick (a spurious wake-up only
                // advances the epoch early, which is harmless).
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_a_run_long_enough_reserves_a_pool_and_it_is_never_larger_than_the_run() {
        let allocation = |steps, concurrent| Sandbox::new(steps, concurrent).unwrap().allocation();
        assert_eq!(allocation(1, 8), Allocation::OnDemand);
        assert_eq!(allocation(POOL_MIN_STEPS - 1, 8), Allocation::OnDemand);
        assert_eq!(
            allocation(POOL_MIN_STEPS, 8),
            Allocation::Pooling { slots: 8 }
        );
        assert_eq!(
            allocation(POOL_MIN_STEPS, 10_000),
            Allocation::Pooling {
                slots: u32::try_from(POOL_MIN_STEPS).unwrap()
            }
        );
        assert_eq!(
            allocation(100_000, 10_000),
            Allocation::Pooling {
                slots: MAX_POOL_SLOTS
            }
        );
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
