//! `gantry.lock`: the pins of plugins that the manifest does not pin inline.
//!
//! The file is YAML, written only by `gantry lock`, sorted by alias so that
//! diffs stay small. Each entry records the `source` it was computed for: a
//! pin never silently carries over to a different file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::fsutil;
use crate::plan::is_sha256_hex;

/// The lock file's name, beside the manifest.
pub const LOCK_FILE_NAME: &str = "gantry.lock";

/// The pins of one manifest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LockFile {
    pub plugins: BTreeMap<String, LockedPlugin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    pub source: String,
    pub sha256: String,
    /// For a registry source named by tag: the digest reference the tag
    /// resolved to when it was locked. Runs pull that, never the tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFileV1 {
    version: u32,
    #[serde(default)]
    plugins: BTreeMap<String, LockedPlugin>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockFileError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a valid lock file: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The largest lock file gantry reads; a pin takes about a hundred bytes.
pub const MAX_LOCK_FILE_BYTES: u64 = 4 * 1024 * 1024;

impl LockFile {
    /// The lock file beside the manifest whose folder is `root`.
    pub fn path_in(root: &Path) -> PathBuf {
        root.join(LOCK_FILE_NAME)
    }

    /// Reads the lock file; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<LockFile, LockFileError> {
        // Capped while reading: a device or a pipe reports no length.
        // Only a regular file in the manifest's folder: a link leaving it,
        // a FIFO or a device is refused, never read.
        let folder = path.parent().unwrap_or(Path::new("."));
        let read =
            crate::fsutil::read_project_file(folder, path, MAX_LOCK_FILE_BYTES).and_then(|bytes| {
                bytes
                    .map(|bytes| {
                        String::from_utf8(bytes)
                            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
                    })
                    .transpose()
            });
        let text = match read {
            Ok(None) => {
                return Err(LockFileError::Invalid {
                    path: path.to_owned(),
                    message: format!("longer than the limit of {MAX_LOCK_FILE_BYTES} bytes"),
                });
            }
            Ok(Some(text)) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
            Err(source) => {
                return Err(LockFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let invalid = |message: String| LockFileError::Invalid {
            path: path.to_owned(),
            message,
        };
        let parsed: LockFileV1 =
            serde_saphyr::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if parsed.version != 1 {
            return Err(invalid(format!(
                "version {} is not supported; this gantry reads version 1",
                parsed.version
            )));
        }
        if let Some((alias, _)) = parsed
            .plugins
            .iter()
            .find(|(_, p)| !is_sha256_hex(&p.sha256))
        {
            return Err(invalid(format!(
                "the pin of `{alias}` is not 64 lowercase hex digits"
            )));
        }
        // A resolved reference must be a digest in the repository its tag
        // names: a hand-edited lock cannot redirect a tag elsewhere.
        for (alias, locked) in &parsed.plugins {
            let Some(resolved) = &locked.resolved else {
                continue;
            };
            let source = crate::plugin::oci::OciRef::parse(&locked.source);
            let target = crate::plugin::oci::OciRef::parse(resolved);
            let consistent = match (source, target) {
                (Ok(source), Ok(target)) => {
                    target.digest().is_some()
                        && target.registry == source.registry
                        && target.repository == source.repository
                }
                _ => false,
            };
            if !consistent {
                return Err(invalid(format!(
                    "`{alias}` resolves to `{resolved}`, which is not a digest reference in the repository of `{}`",
                    locked.source
                )));
            }
        }
        Ok(LockFile {
            plugins: parsed.plugins,
        })
    }

    /// The pin for `alias`, if it was computed for `source`.
    pub fn pin_for(&self, alias: &str, source: &str) -> Option<&str> {
        self.plugins
            .get(alias)
            .filter(|locked| locked.source == source)
            .map(|locked| locked.sha256.as_str())
    }

    /// The digest reference a tag `source` of `alias` was locked to.
    pub fn resolved_for(&self, alias: &str, source: &str) -> Option<&str> {
        self.plugins
            .get(alias)
            .filter(|locked| locked.source == source)
            .and_then(|locked| locked.resolved.as_deref())
    }

    /// Renders the lock file. Values are quoted as JSON strings, which YAML
    /// reads back unchanged whatever they contain.
    pub fn render(&self) -> String {
        let quote = |text: &str| serde_json::to_string(text).expect("strings always serialize");
        let mut out = String::from(
            "# Written by `gantry lock`: the sha256 pins of this pipeline's plugins.\n\
             # Review changes to this file like code: a pin decides what may run.\n\
             version: 1\nplugins:\n",
        );
        if self.plugins.is_empty() {
            out.truncate(out.len() - 1);
            out.push_str(" {}\n");
        }
        for (alias, locked) in &self.plugins {
            out.push_str(&format!(
                "  {}:\n    source: {}\n    sha256: {}\n",
                quote(alias),
                quote(&locked.source),
                locked.sha256
            ));
            if let Some(resolved) = &locked.resolved {
                out.push_str(&format!("    resolved: {}\n", quote(resolved)));
            }
        }
        out
    }

    /// Writes the lock file atomically.
    pub fn write(&self, path: &Path) -> Result<(), LockFileError> {
        fsutil::write_atomic(path, self.render().as_bytes()).map_err(|source| {
            LockFileError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_never_read_as_a_lock_file() {
        let error = LockFile::read(Path::new("/dev/zero")).unwrap_err();
        let text = crate::hint::one_line(&error);
        assert!(text.contains("not a regular file"), "{text}");
    }

    #[test]
    fn round_trips_through_disk() {
        let folder = tempfile::tempdir().unwrap();
        let path = LockFile::path_in(folder.path());
        let mut lock = LockFile::default();
        lock.plugins.insert(
            "hello: world".into(),
            LockedPlugin {
                source: "plugins/odd \"name\".wasm".into(),
                sha256: "ab".repeat(32),
                resolved: None,
            },
        );
        lock.plugins.insert(
            "remote".into(),
            LockedPlugin {
                source: "oci://127.0.0.1:5000/steps/hello:1".into(),
                sha256: "cd".repeat(32),
                resolved: Some(format!(
                    "oci://127.0.0.1:5000/steps/hello@sha256:{}",
                    "ef".repeat(32)
                )),
            },
        );
        lock.write(&path).unwrap();
        assert_eq!(LockFile::read(&path).unwrap(), lock);
        assert_eq!(
            lock.pin_for("hello: world", "plugins/odd \"name\".wasm"),
            Some(&*"ab".repeat(32))
        );
        assert_eq!(lock.pin_for("hello: world", "elsewhere.wasm"), None);
        assert_eq!(
            lock.resolved_for("remote", "oci://127.0.0.1:5000/steps/hello:1"),
            Some(&*format!(
                "oci://127.0.0.1:5000/steps/hello@sha256:{}",
                "ef".repeat(32)
            ))
        );
        assert_eq!(
            lock.resolved_for("remote", "oci://127.0.0.1:5000/steps/hello:2"),
            None
        );
    }

    #[test]
    fn missing_file_is_empty_and_bad_pins_are_refused() {
        let folder = tempfile::tempdir().unwrap();
        let path = LockFile::path_in(folder.path());
        assert_eq!(LockFile::read(&path).unwrap(), LockFile::default());
        LockFile::default().write(&path).unwrap();
        assert_eq!(LockFile::read(&path).unwrap(), LockFile::default());
        std::fs::write(
            &path,
            "version: 1\nplugins:\n  a:\n    source: a.wasm\n    sha256: XYZ\n",
        )
        .unwrap();
        assert!(matches!(
            LockFile::read(&path),
            Err(LockFileError::Invalid { .. })
        ));
    }
}
