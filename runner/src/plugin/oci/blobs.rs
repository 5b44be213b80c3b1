//! The content cache of blobs pulled from registries: plugin manifests,
//! wasm layers and the Sigstore bundles attached to them, each stored under
//! `$XDG_CACHE_HOME/gantry/blobs/sha256/<hex>`, beside the compiled-module
//! cache and under the same private folder.
//!
//! A blob's name is its digest, and the name is checked against the bytes
//! every time a blob is read: a file someone edited, truncated or swapped
//! is never handed out, it is removed and pulled again. Writes are atomic,
//! so a crash mid-pull leaves either the whole blob or nothing.
//!
//! A Sigstore bundle is named after the wasm it signs
//! (`<wasm-hex>.sigstore.json`), not after its own digest: verification
//! looks it up by the plugin's pin, and checks it cryptographically itself.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::plugin::cache::{CacheError, ModuleCache};
use crate::plugin::sha256_hex;

/// The cache folder's blob store.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

/// Where the Sigstore bundle attached to the plugin whose wasm has sha256
/// `wasm_sha256_hex` is kept once pulled, under the default cache folder.
/// `None` when neither `XDG_CACHE_HOME` nor `HOME` is set.
pub fn cached_bundle_path(wasm_sha256_hex: &str) -> Option<PathBuf> {
    ModuleCache::default_dir()
        .ok()
        .map(|dir| BlobCache::in_cache_dir(&dir).bundle_path(wasm_sha256_hex))
}

impl BlobCache {
    /// The blob store inside the cache folder `cache_dir`.
    pub fn in_cache_dir(cache_dir: &Path) -> BlobCache {
        BlobCache {
            dir: cache_dir.join("blobs").join("sha256"),
        }
    }

    /// Opens the blob store of the default cache folder, checking that the
    /// folder is private to this user as the module cache does.
    pub fn open_default() -> Result<BlobCache, CacheError> {
        let dir = ModuleCache::default_dir()?;
        // Opening the module cache creates the folder and refuses one that
        // others may write: the blobs live under it and need the same care.
        ModuleCache::open(&dir)?;
        let cache = BlobCache::in_cache_dir(&dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cache.dir)
            .map_err(|source| CacheError::Create {
                path: cache.dir.clone(),
                source,
            })?;
        Ok(cache)
    }

    /// The folder holding the blobs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the blob with sha256 `hex`.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join(hex)
    }

    /// The path of the Sigstore bundle for the wasm with sha256 `wasm_hex`.
    pub fn bundle_path(&self, wasm_hex: &str) -> PathBuf {
        self.dir.join(format!("{wasm_hex}.sigstore.json"))
    }

    /// The blob with sha256 `hex`, if it is cached and its bytes still hash
    /// to its name. A blob that does not is removed, so the next pull
    /// replaces it.
    pub fn read(&self, hex: &str, limit: u64) -> Option<Vec<u8>> {
        let path = self.blob_path(hex);
        let bytes = fsutil::read_capped(&path, limit).ok().flatten()?;
        if sha256_hex(&bytes) == hex {
            Some(bytes)
        } else {
            let _ = fs::remove_file(&path);
            None
        }
    }

    /// Stores `bytes`, which the caller has checked hash to `hex`.
    pub fn write(&self, hex: &str, bytes: &[u8]) -> io::Result<()> {
        debug_assert_eq!(sha256_hex(bytes), hex);
        fsutil::write_atomic(&self.blob_path(hex), bytes)
    }

    /// Stores the Sigstore bundle for the wasm with sha256 `wasm_hex`.
    pub fn write_bundle(&self, wasm_hex: &str, bundle: &[u8]) -> io::Result<()> {
        fsutil::write_atomic(&self.bundle_path(wasm_hex), bundle)
    }

    /// Removes every blob and bundle (and what a crashed writer left), then
    /// the store's folders once empty; returns how many files went. A
    /// store that was never made is empty.
    pub fn clear(&self) -> io::Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            // Files only: nothing gantry writes here is a folder, and a
            // link is removed, never followed.
            if !entry.file_type()?.is_dir() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        // `blobs/sha256`, then `blobs`: gone when nothing else is there.
        let _ = fs::remove_dir(&self.dir);
        if let Some(blobs) = self.dir.parent() {
            let _ = fs::remove_dir(blobs);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_that_no_longer_matches_its_name_is_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let cache = BlobCache::in_cache_dir(folder.path());
        fs::create_dir_all(cache.dir()).unwrap();
        let hex = sha256_hex(b"wasm");
        cache.write(&hex, b"wasm").unwrap();
        assert_eq!(cache.read(&hex, 1024).as_deref(), Some(&b"wasm"[..]));
        // Over the limit: not read, but not removed either.
        assert_eq!(cache.read(&hex, 2), None);
        assert!(cache.blob_path(&hex).exists());
        fs::write(cache.blob_path(&hex), b"evil").unwrap();
        assert_eq!(cache.read(&hex, 1024), None);
        assert!(!cache.blob_path(&hex).exists());
        assert_eq!(
            cache.bundle_path(&hex),
            folder
                .path()
                .join(format!("blobs/sha256/{hex}.sigstore.json"))
        );
    }
    #[test]
    fn clearing_removes_every_blob_and_bundle_and_the_empty_folders() {
        let folder = tempfile::tempdir().unwrap();
        let cache = BlobCache::in_cache_dir(folder.path());
        assert_eq!(cache.clear().unwrap(), 0, "a store never made is empty");
        fs::create_dir_all(cache.dir()).unwrap();
        let hex = sha256_hex(b"wasm");
        cache.write(&hex, b"wasm").unwrap();
        cache.write_bundle(&hex, b"{}").unwrap();
        assert_eq!(cache.clear().unwrap(), 2);
        assert!(!folder.path().join("blobs").exists());
    }
}
