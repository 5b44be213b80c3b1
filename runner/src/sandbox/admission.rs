//! Admission: compiling a verified plugin (or loading its native code from
//! the module cache), checking it is a step gantry can run — a WASI
//! preview 1 command importing only WASI and within one step's share of
//! the pool, or a WASI 0.2 command component ([`super::component`]) — and
//! linking it, once per run.

use std::fmt;

use indexmap::IndexMap;
use wasmtime::{InstancePre, Module};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::component::{self, ComponentState};
use super::run::StepState;
use super::{MEMORIES_PER_MODULE, Sandbox, TABLES_PER_MODULE, limits, root_cause};
use crate::plugin::VerifiedPlugin;
use crate::plugin::cache::{Compiled, Lookup, ModuleCache};
use crate::plugin::compile_limits::CompileLimits;

/// The only import module a step may use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// A compiled, admitted step plugin, linked and ready to instantiate.
#[derive(Clone)]
pub struct StepModule {
    pub(super) program: Program,
    /// Whether the module imports `poll_oneoff`, the only way a WASI
    /// preview 1 guest can sleep.
    pub(super) can_sleep: bool,
    /// Whether the module imports a function that can create, change or
    /// remove a file; one that does not leaves its step folder as it got
    /// it, so there is nothing to read back or empty.
    pub(super) changes_files: bool,
    /// Whether the module imports a function that can open or list
    /// anything in a folder; one that does not is given no folder at all.
    pub(super) reaches_folders: bool,
}

/// The linked program of a step, of either kind.
#[derive(Clone)]
pub(super) enum Program {
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
    pub(super) fn new(reason: impl Into<String>) -> Refused {
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

impl Sandbox {
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
}

/// What admitting a run's plugins gave: each alias's module or why it was
/// refused, what the cache had to say, and the plugins past a compile
/// limit, which fail the run before any step.
pub struct Admission {
    pub plugins: IndexMap<String, Result<StepModule, String>>,
    pub notes: Vec<String>,
    pub past_limits: Vec<(String, String)>,
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

/// Whether the WASI preview 1 function `name` can create, write, rename or
/// remove anything. Every such function takes a path (`path_open` is the
/// only way to get a writable file); the preopened folders themselves
/// cannot be written through.
pub(super) fn can_change_files(name: &str) -> bool {
    name.starts_with("path_") && !matches!(name, "path_filestat_get" | "path_readlink")
}

/// Whether the WASI preview 1 function `name` can reach into a folder:
/// every path function resolves a path in one, and `fd_readdir` lists one.
/// Without any of them a module can neither open nor list a file, so the
/// folders it would be given could only be counted, never used.
pub(super) fn can_reach_folders(name: &str) -> bool {
    name.starts_with("path_") || name == "fd_readdir"
}
