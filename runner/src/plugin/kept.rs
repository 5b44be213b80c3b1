//! Copies of the plugins a run's rollback hooks use, kept in the state
//! folder by sha256 (`<state>/plugins/<sha256>.wasm`).
//!
//! A run's compensation must not depend on the project as it is today: the
//! manifest may have been edited or broken, a plugin file replaced or
//! deleted since the run. So before a run with rollback hooks starts, the
//! verified bytes of every hook's plugin are kept here, and `gantry
//! rollback` and `gantry resume` admit each hook's plugin from its copy,
//! found by the sha256 its journal recorded and checked against it again.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{MAX_PLUGIN_BYTES, sha256_hex};
use crate::fsutil;

/// The folder of kept plugins in a state folder.
pub const FOLDER: &str = "plugins";

/// The kept plugins of one state folder.
#[derive(Debug, Clone)]
pub struct KeptPlugins {
    dir: PathBuf,
}

impl KeptPlugins {
    /// The kept plugins of `state_dir` (nothing is created yet).
    pub fn of(state_dir: &Path) -> KeptPlugins {
        KeptPlugins {
            dir: state_dir.join(FOLDER),
        }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// Keeps `bytes`, whose sha256 is `sha256`, durably. A copy already
    /// there is kept if it still has that digest, and replaced otherwise.
    pub fn keep(&self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        debug_assert_eq!(sha256_hex(bytes), sha256);
        if self.load(sha256).is_ok() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        fsutil::write_atomic(&self.path(sha256), bytes)
    }

    /// The bytes kept under `sha256`, checked against it.
    pub fn load(&self, sha256: &str) -> Result<Vec<u8>, String> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{sha256}` is not a sha256"));
        }
        let path = self.path(sha256);
        let bytes = fsutil::read_regular_file_capped(&path, MAX_PLUGIN_BYTES)
            .map_err(|e| format!("no copy of the plugin in `{}`: {e}", path.display()))?
            .ok_or_else(|| format!("`{}` is larger than any plugin", path.display()))?;
        let found = sha256_hex(&bytes);
        if found != sha256 {
            return Err(format!(
                "the copy `{}` is damaged: expected sha256 {sha256}, found {found}",
                path.display()
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_plugin_comes_back_only_with_its_digest() {
        let state = tempfile::tempdir().unwrap();
        let kept = KeptPlugins::of(state.path());
        let bytes = b"\0asm\x01\0\0\0".to_vec();
        let sha = sha256_hex(&bytes);
        assert!(kept.load(&sha).unwrap_err().contains("no copy"));
        kept.keep(&sha, &bytes).unwrap();
        assert_eq!(kept.load(&sha).unwrap(), bytes);
        // Damaged in place: refused, and replaced by the next keep.
        std::fs::write(kept.path(&sha), b"\0asm\x01\0\0\x01").unwrap();
        assert!(kept.load(&sha).unwrap_err().contains("is damaged"));
        kept.keep(&sha, &bytes).unwrap();
        assert_eq!(kept.load(&sha).unwrap(), bytes);
        assert!(kept.load("../../etc/passwd").is_err());
    }
}
