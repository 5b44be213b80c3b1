//! Plugins: reading a module's bytes once, checking them against their
//! sha256 pin, and the lock file that holds pins not written inline.
//!
//! The bytes hashed here are the very bytes handed to the compiler: a plugin
//! file is read exactly once per run, so it cannot change between the check
//! and its use.

pub mod cache;
pub mod check;
pub mod compile_limits;
pub mod kept;
pub mod lockfile;
pub mod metadata;
pub mod oci;

use std::fmt;
use std::path::Path;

use indexmap::IndexMap;

pub use lockfile::{LOCK_FILE_NAME, LockFile};

use self::compile_limits::CompileLimits;
use crate::plan::{Plan, PluginRef};

/// Modules bigger than this are refused before hashing.
pub const MAX_PLUGIN_BYTES: u64 = 256 * 1024 * 1024;

/// A plugin whose bytes matched their pin.
#[derive(Debug, Clone)]
pub struct VerifiedPlugin {
    pub alias: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
    /// What compiling it may take; `None` for a plugin compiled under its
    /// limits before (a hook's kept copy).
    pub limits: Option<CompileLimits>,
}

impl VerifiedPlugin {
    /// Whether the plugin is a core module or a component, by its header.
    pub fn kind(&self) -> PluginKind {
        PluginKind::of(&self.bytes)
    }
}

/// The two kinds of step a plugin can be. Both speak the same step ABI;
/// only a component can use the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// A WASI preview 1 command module (exports `_start`).
    Module,
    /// A WASI 0.2 component of the `wasi:cli/command` world.
    Component,
}

impl PluginKind {
    /// Tells the two apart by the binary's header; anything that is not a
    /// component is taken as a module (and refused as one if it is not).
    pub fn of(bytes: &[u8]) -> PluginKind {
        if wasmparser::Parser::is_component(bytes) {
            PluginKind::Component
        } else {
            PluginKind::Module
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Module => "module",
            PluginKind::Component => "component",
        }
    }
}

/// Where a pin came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOrigin {
    Manifest,
    LockFile,
}

impl fmt::Display for PinOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinOrigin::Manifest => "the manifest",
            PinOrigin::LockFile => LOCK_FILE_NAME,
        })
    }
}

/// Why a plugin failed verification.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("plugin `{alias}` (`{source_path}`) is not pinned")]
    Unpinned { alias: String, source_path: String },
    #[error(
        "plugin `{alias}` (`{source_path}`) does not match its pin in {origin}: expected sha256 {expected}, found {found}"
    )]
    Mismatch {
        alias: String,
        source_path: String,
        origin: PinOrigin,
        expected: String,
        found: String,
    },
    /// The `source:` names no file: nothing to pin or verify yet.
    #[error("plugin `{alias}`: its source `{source_path}` does not exist")]
    Missing { alias: String, source_path: String },
    /// A registry source named by a tag that `gantry lock` has not
    /// resolved to a digest: tags move, so a run never follows one.
    #[error("plugin `{alias}` (`{source_path}`) names a tag, which is not locked to a digest")]
    UnresolvedTag { alias: String, source_path: String },
    /// A registry source that could not be pulled, or whose registry
    /// served something other than a wasm artifact matching its digests.
    #[error("plugin `{alias}`: cannot pull `{reference}`")]
    Registry {
        alias: String,
        reference: String,
        #[source]
        error: oci::RegistryError,
    },
    #[error("plugin `{alias}`: cannot read `{source_path}`: {reason}")]
    Unreadable {
        alias: String,
        source_path: String,
        reason: String,
    },
    /// The bytes match their pin but not the signature `verify:` requires.
    #[error("plugin `{alias}` (`{source_path}`, sha256 {sha256}) is not signed as required")]
    Signature {
        alias: String,
        source_path: String,
        sha256: String,
        #[source]
        error: Box<crate::signature::SignatureError>,
    },
}

impl crate::hint::Hinted for VerifyError {
    fn hint(&self) -> Option<String> {
        match self {
            VerifyError::Unpinned { .. } => Some(format!(
                "run `gantry lock` to pin it in {LOCK_FILE_NAME}, after checking the file is the one you mean to run"
            )),
            VerifyError::Mismatch { origin, found, .. } => Some(mismatch_hint(*origin, found)),
            VerifyError::Missing { .. } => Some(
                "`source:` is relative to the manifest's folder; fix the path, or build the plugin first".into(),
            ),
            VerifyError::UnresolvedTag { .. } => Some(format!(
                "run `gantry lock` to resolve it to a digest in {LOCK_FILE_NAME}, or write `oci://REGISTRY/REPO@sha256:DIGEST` in the manifest"
            )),
            VerifyError::Signature { error, .. } => error.hint(),
            VerifyError::Registry { error, .. } => error.hint(),
            VerifyError::Unreadable { .. } => None,
        }
    }
}

pub use crate::digest::sha256_hex;

/// Reads a plugin file, refusing oversized ones.
pub fn read_plugin(plugin: &PluginRef) -> Result<Vec<u8>, VerifyError> {
    let unreadable = |reason: String| VerifyError::Unreadable {
        alias: plugin.alias.clone(),
        source_path: plugin.source.clone(),
        reason,
    };
    read_capped(&plugin.path).map_err(unreadable)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    crate::fsutil::read_capped(path, MAX_PLUGIN_BYTES)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("larger than the {MAX_PLUGIN_BYTES}-byte limit"))
}

/// The pin that applies to `plugin`: inline first, then the lock file.
pub fn pin_of<'a>(plugin: &'a PluginRef, lock: &'a LockFile) -> Option<(&'a str, PinOrigin)> {
    match &plugin.inline_sha256 {
        Some(pin) => Some((pin, PinOrigin::Manifest)),
        None => lock
            .pin_for(&plugin.alias, &plugin.source)
            .map(|pin| (pin, PinOrigin::LockFile)),
    }
}

/// The fix for a pin that does not match: the lock file is `gantry lock
/// --update`'s to rewrite, but an inline pin is the manifest's own text,
/// which gantry never edits.
fn mismatch_hint(origin: PinOrigin, found: &str) -> String {
    match origin {
        PinOrigin::LockFile => "if the change is intended, run `gantry lock --update`".into(),
        PinOrigin::Manifest => format!(
            "if the change is intended, write `sha256: {found}` in the manifest (or remove the inline pin and run `gantry lock`); `gantry lock --update` does not edit inline pins"
        ),
    }
}

/// Reads and verifies one plugin against its pin.
pub fn verify(plugin: &PluginRef, lock: &LockFile) -> Result<VerifiedPlugin, VerifyError> {
    if oci::is_oci(&plugin.source) {
        return verify_oci(plugin, lock);
    }
    // A missing file is the problem to name, pinned or not: "not pinned"
    // would send the reader to `gantry lock`, which cannot help.
    if let Err(e) = std::fs::symlink_metadata(&plugin.path)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        return Err(VerifyError::Missing {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
        });
    }
    let Some((expected, origin)) = pin_of(plugin, lock) else {
        return Err(VerifyError::Unpinned {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
        });
    };
    let bytes = read_plugin(plugin)?;
    check_pin(plugin, expected, origin, bytes)
}

/// Checks `bytes` against the pin `expected` and hands the very same bytes
/// on for compiling.
fn check_pin(
    plugin: &PluginRef,
    expected: &str,
    origin: PinOrigin,
    bytes: Vec<u8>,
) -> Result<VerifiedPlugin, VerifyError> {
    let found = sha256_hex(&bytes);
    if found != expected {
        return Err(VerifyError::Mismatch {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
            origin,
            expected: expected.to_owned(),
            found,
        });
    }
    // The signature is checked over the very bytes that matched the pin,
    // before anything compiles them.
    check_signature(plugin, &bytes, &found)?;
    Ok(VerifiedPlugin {
        alias: plugin.alias.clone(),
        sha256: found,
        bytes,
        limits: Some(plugin.compile_limits),
    })
}

/// Checks `bytes` (whose sha256 is `sha256`) against the signature the
/// plugin's `verify:` requires, if any.
pub fn check_signature(plugin: &PluginRef, bytes: &[u8], sha256: &str) -> Result<(), VerifyError> {
    let Some(policy) = &plugin.signature else {
        return Ok(());
    };
    let bundle = crate::signature::bundle_path(plugin, sha256);
    crate::signature::verify_bytes(policy, bytes, sha256, &bundle).map_err(|error| {
        VerifyError::Signature {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
            sha256: sha256.to_owned(),
            error: Box::new(error),
        }
    })
}

/// The digest reference a registry plugin is pulled by: its own, or for a
/// tag, the one `gantry lock` resolved it to.
pub fn oci_reference(plugin: &PluginRef, lock: &LockFile) -> Result<oci::OciRef, VerifyError> {
    let registry_error = |reference: &str, reason: String| VerifyError::Registry {
        alias: plugin.alias.clone(),
        reference: reference.to_owned(),
        error: reason.into(),
    };
    let reference =
        oci::OciRef::parse(&plugin.source).map_err(|e| registry_error(&plugin.source, e))?;
    if reference.digest().is_some() {
        return Ok(reference);
    }
    let resolved = lock
        .resolved_for(&plugin.alias, &plugin.source)
        .ok_or_else(|| VerifyError::UnresolvedTag {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
        })?;
    oci::OciRef::parse(resolved).map_err(|e| registry_error(resolved, e))
}

/// Pulls a registry plugin by digest (or takes it from the content cache)
/// and checks its pin against the very bytes returned for compiling.
fn verify_oci(plugin: &PluginRef, lock: &LockFile) -> Result<VerifiedPlugin, VerifyError> {
    let reference = oci_reference(plugin, lock)?;
    let Some((expected, origin)) = pin_of(plugin, lock) else {
        return Err(VerifyError::Unpinned {
            alias: plugin.alias.clone(),
            source_path: plugin.source.clone(),
        });
    };
    let pulled = oci::pull(&reference).map_err(|error| VerifyError::Registry {
        alias: plugin.alias.clone(),
        reference: reference.to_string(),
        error,
    })?;
    check_pin(plugin, expected, origin, pulled.wasm)
}

/// Verifies every plugin of the plan, reporting every failure at once.
pub fn verify_all(
    plan: &Plan,
    lock: &LockFile,
) -> Result<IndexMap<String, VerifiedPlugin>, Vec<VerifyError>> {
    let mut verified = IndexMap::new();
    let mut errors = Vec::new();
    for plugin in plan.plugins.values() {
        match verify(plugin, lock) {
            Ok(plugin) => {
                verified.insert(plugin.alias.clone(), plugin);
            }
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(verified)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn plugin_at(path: &Path, inline: Option<String>) -> PluginRef {
        PluginRef {
            alias: "p".into(),
            source: "p.wasm".into(),
            path: path.to_owned(),
            inline_sha256: inline,
            compile_limits: CompileLimits::default(),
            signature: None,
        }
    }

    #[test]
    fn verification_checks_the_bytes_it_returns() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("p.wasm");
        std::fs::write(&path, b"module bytes").unwrap();
        let good = plugin_at(&path, Some(sha256_hex(b"module bytes")));
        let verified = verify(&good, &LockFile::default()).unwrap();
        assert_eq!(verified.bytes, b"module bytes");

        let bad = plugin_at(&path, Some(sha256_hex(b"other bytes")));
        match verify(&bad, &LockFile::default()) {
            Err(VerifyError::Mismatch {
                expected, found, ..
            }) => {
                assert_eq!(expected, sha256_hex(b"other bytes"));
                assert_eq!(found, sha256_hex(b"module bytes"));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }

        let missing = plugin_at(&folder.path().join("absent.wasm"), None);
        let error = verify(&missing, &LockFile::default()).unwrap_err();
        assert!(matches!(error, VerifyError::Missing { .. }), "{error}");
        // The fix is the error's hint, printed on its own line.
        use crate::hint::Hinted as _;
        assert!(!error.hint().unwrap().contains("gantry lock"), "{error}");
        let inline = verify(&bad, &LockFile::default())
            .unwrap_err()
            .hint()
            .unwrap();
        assert!(
            inline.contains(&format!(
                "write `sha256: {}` in the manifest",
                sha256_hex(b"module bytes")
            )),
            "{inline}"
        );
        assert!(inline.contains("does not edit inline pins"), "{inline}");

        let unpinned = plugin_at(&path, None);
        assert!(matches!(
            verify(&unpinned, &LockFile::default()),
            Err(VerifyError::Unpinned { .. })
        ));

        let mut lock = LockFile::default();
        lock.plugins.insert(
            "p".into(),
            lockfile::LockedPlugin {
                source: "p.wasm".into(),
                sha256: sha256_hex(b"module bytes"),
                resolved: None,
            },
        );
        assert!(verify(&unpinned, &lock).is_ok());
    }
}
