//! `gantry lock`: pins unpinned plugins in `gantry.lock`. It is the only
//! command that trusts a file it has not verified, so it says exactly what
//! it pinned.

use super::console::outln;
use std::path::PathBuf;

use clap::Args;

use super::common::{load_plan_and_lock, lock_path};
use super::{Failure, Outcome, Problem};
use crate::exit::Exit;
use crate::plugin::lockfile::LockedPlugin;
use crate::plugin::{self, LOCK_FILE_NAME, LockFile};

/// Pin the plugins the manifest does not pin inline, in `gantry.lock`.
///
/// Run it after checking that each new or changed module is the one you
/// mean to run: from then on, gantry runs only those exact bytes.
#[derive(Debug, Args)]
pub struct LockCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Re-pin plugins whose file changed since they were pinned
    #[arg(long)]
    update: bool,
}

impl LockCommand {
    pub fn execute(self) -> Outcome {
        let (plan, old) = load_plan_and_lock(self.manifest.as_deref())?;
        let mut new = LockFile::default();
        // Every plugin is pinned or reported; the problems are printed
        // together at the end, and the lock file keeps their old pins.
        let mut problems = Vec::new();
        for plugin in plan.plugins.values() {
            let read = if plugin::oci::is_oci(&plugin.source) {
                lock_from_registry(plugin)
            } else {
                plugin::read_plugin(plugin).map(|bytes| (bytes, None))
            };
            let (bytes, resolved) = match read {
                Ok(read) => read,
                Err(error) => {
                    problems.push(Problem::hinted(error));
                    // Keep the old pin: a missing file is no reason to forget it.
                    if let Some(locked) = old.plugins.get(&plugin.alias) {
                        new.plugins.insert(plugin.alias.clone(), locked.clone());
                    }
                    continue;
                }
            };
            let found = plugin::sha256_hex(&bytes);
            // A plugin that must be signed is never pinned on its bytes
            // alone: lock is the one command that trusts unpinned files.
            if let Err(error) = plugin::check_signature(plugin, &bytes, &found) {
                problems.push(Problem::hinted(error));
                if let Some(locked) = old.plugins.get(&plugin.alias) {
                    new.plugins.insert(plugin.alias.clone(), locked.clone());
                }
                continue;
            }
            if let Some(inline) = &plugin.inline_sha256 {
                // Inline pins belong to the manifest; lock never rewrites them.
                if *inline != found {
                    problems.push(Problem::hinted(plugin::VerifyError::Mismatch {
                        alias: plugin.alias.clone(),
                        source_path: plugin.source.clone(),
                        origin: plugin::PinOrigin::Manifest,
                        expected: inline.clone(),
                        found,
                    }));
                }
                continue;
            }
            let old_resolved = old.resolved_for(&plugin.alias, &plugin.source);
            if let (Some(was), Some(now)) = (old_resolved, &resolved)
                && was != now
                && old.pin_for(&plugin.alias, &plugin.source) == Some(found.as_str())
            {
                // The tag moved to another manifest holding the same wasm:
                // nothing that runs changes, so the new digest is taken.
                outln!(
                    "moved   {} ({}): {was} -> {now}",
                    plugin.alias,
                    plugin.source
                );
            }
            let mut keep_resolved = false;
            let pin = match old.pin_for(&plugin.alias, &plugin.source) {
                Some(pinned) if pinned == found => found,
                Some(pinned) if self.update => {
                    outln!("updated {}: {pinned} -> {found}", plugin.alias);
                    found
                }
                Some(pinned) => {
                    problems.push(
                        Problem::msg(format!(
                            "plugin `{}` (`{}`) changed since it was pinned: expected sha256 {pinned}, found {found}",
                            plugin.alias, plugin.source
                        ))
                        .with_hint("run `gantry lock --update` if the change is intended"),
                    );
                    keep_resolved = true;
                    pinned.to_owned()
                }
                None => {
                    outln!(
                        "pinned  {} ({}): sha256 {found}",
                        plugin.alias,
                        plugin.source
                    );
                    if let Some(resolved) = &resolved {
                        outln!("        resolved to {resolved}");
                    }
                    found
                }
            };
            new.plugins.insert(
                plugin.alias.clone(),
                LockedPlugin {
                    source: plugin.source.clone(),
                    sha256: pin,
                    resolved: if keep_resolved {
                        old_resolved.map(str::to_owned)
                    } else {
                        resolved
                    },
                },
            );
        }
        for alias in old.plugins.keys().filter(|a| !new.plugins.contains_key(*a)) {
            if plan
                .plugins
                .get(alias)
                .is_none_or(|p| p.inline_sha256.is_none())
            {
                outln!("removed {alias}: no longer in the manifest");
            }
        }
        if new != old {
            let path = lock_path(&plan.root);
            if let Err(error) = new.write(&path) {
                problems.push(Problem::new(error));
                return Err(Failure::several(Exit::Verification, problems));
            }
            outln!("wrote {}", path.display());
        } else if problems.is_empty() {
            outln!("{LOCK_FILE_NAME} is up to date");
        }
        if problems.is_empty() {
            Ok(Exit::Success)
        } else {
            Err(Failure::several(Exit::Verification, problems))
        }
    }
}

/// Pulls a registry plugin for locking: a tag is resolved at the registry
/// (the one time gantry follows a tag) and its digest reference returned
/// with the wasm; a digest reference is pulled, or read from the cache.
fn lock_from_registry(
    plugin: &crate::plan::PluginRef,
) -> Result<(Vec<u8>, Option<String>), plugin::VerifyError> {
    use crate::plugin::oci::{self, OciRef};
    let failed = |reference: String, error: oci::RegistryError| plugin::VerifyError::Registry {
        alias: plugin.alias.clone(),
        reference,
        error,
    };
    let reference =
        OciRef::parse(&plugin.source).map_err(|e| failed(plugin.source.clone(), e.into()))?;
    if reference.digest().is_some() {
        let pulled = oci::pull(&reference).map_err(|e| failed(reference.to_string(), e))?;
        return Ok((pulled.wasm, None));
    }
    let pulled = oci::resolve(&reference).map_err(|e| failed(reference.to_string(), e))?;
    let resolved = reference.at_digest(&pulled.manifest_hex).to_string();
    Ok((pulled.wasm, Some(resolved)))
}
