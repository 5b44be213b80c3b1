//! Admission: starting the sandbox a command's steps run in, and compiling
//! (or loading from the module cache) each plugin whose bytes were
//! verified. The verified bytes are compiled and dropped here: what was
//! hashed is exactly what runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::console::errln;
use crate::engine::AdmittedPlugins;
use crate::plugin::cache::ModuleCache;
use crate::plugin::{PluginKind, VerifiedPlugin};
use crate::sandbox::Sandbox;
use crate::state::Protected;

/// How the sandbox of a command is set up.
pub struct SandboxSetup {
    /// How many steps the command may run, and how many at once.
    pub steps: usize,
    pub concurrent_steps: usize,
    /// Folders no mount may make writable.
    pub protected: Protected,
    /// What the running steps' memory caps may add up to.
    pub memory_budget: Option<u64>,
    /// Private CA certificates component steps' HTTPS may be verified
    /// against, besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Compile every plugin, neither reading nor writing the module cache.
    pub no_cache: bool,
}

/// Every plugin of a command compiled in its sandbox.
pub struct Admitted {
    pub sandbox: Arc<Sandbox>,
    /// Each alias's compiled step, or why it cannot run.
    pub plugins: AdmittedPlugins,
    /// The verified sha256 of each alias.
    pub hashes: BTreeMap<String, String>,
}

/// Why a command's plugins could not be admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// wasmtime could not be set up on this machine.
    #[error("cannot start the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    /// Plugins that define more than a step may have, by alias, and why.
    #[error("{}", past_limits(.0))]
    PastLimits(Vec<(String, String)>),
}

fn past_limits(refused: &[(String, String)]) -> String {
    let lines: Vec<String> = refused
        .iter()
        .map(|(alias, reason)| refusal(alias, reason))
        .collect();
    lines.join("\n")
}

/// What is said of plugin `alias` refused for `reason`.
pub fn refusal(alias: &str, reason: &str) -> String {
    format!("plugin `{alias}` was refused: {reason}")
}

/// Starts the sandbox for the project in `root` and admits `verified`:
/// compiled, or loaded from the module cache unless the setup says not to.
/// What the person running the command should know that does not stop it
/// (no instance pool, no module cache) is said on stderr.
pub fn admit(
    verified: &IndexMap<String, VerifiedPlugin>,
    root: &Path,
    setup: SandboxSetup,
) -> Result<Admitted, AdmitError> {
    // The pool's slots are sized for one core module each, and a component
    // is made of several: a run with a component allocates on demand.
    let has_component = verified
        .values()
        .any(|plugin| plugin.kind() == PluginKind::Component);
    let pooled_steps = if has_component { 0 } else { setup.steps };
    let mut sandbox =
        Sandbox::new(pooled_steps, setup.concurrent_steps).map_err(AdmitError::Engine)?;
    sandbox.guard_host(root, setup.protected);
    if let Some(ca_file) = setup.ca_file {
        sandbox.trust_ca_file(ca_file);
    }
    if let Some(budget) = setup.memory_budget {
        sandbox.set_memory_budget(budget);
    }
    let sandbox = Arc::new(sandbox);
    let mut notes = Vec::new();
    if let Some(reason) = sandbox.pool_refused() {
        notes.push(format!(
            "cannot reserve the instance pool ({reason}); steps are allocated on demand, which is slower"
        ));
    }
    let cache = if setup.no_cache {
        None
    } else {
        ModuleCache::open_default()
            .map_err(|error| {
                use crate::hint::Hinted as _;
                // The cause and the fix, in the one line a note has.
                let mut note = format!(
                    "compiling without the module cache: {}",
                    crate::hint::one_line(&error)
                );
                if let Some(hint) = error.hint() {
                    note.push_str(&format!(" (hint: {hint})"));
                }
                notes.push(note)
            })
            .ok()
    };
    let admission = sandbox.admit_all(verified, cache.as_ref());
    notes.extend(admission.notes);
    for note in &notes {
        errln!("gantry: {note}");
    }
    if !admission.past_limits.is_empty() {
        return Err(AdmitError::PastLimits(admission.past_limits));
    }
    let hashes = verified
        .values()
        .map(|plugin| (plugin.alias.clone(), plugin.sha256.clone()))
        .collect();
    Ok(Admitted {
        sandbox,
        plugins: admission.plugins,
        hashes,
    })
}
