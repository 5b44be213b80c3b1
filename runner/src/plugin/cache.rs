//! The compiled-module cache: native code wasmtime produced for a plugin
//! (a core module or a component), kept in the user's cache folder so the
//! next run skips the compiler.
//!
//! Loading native code is the one place gantry trusts bytes it did not just
//! verify — `Module::deserialize` runs whatever it is given — so the cache
//! is careful about what it loads:
//!
//! - it lives in `$XDG_CACHE_HOME/gantry` (else `~/.cache/gantry`), created
//!   with mode 0700; a folder another user owns, or that the group or the
//!   world may write to, is refused and every plugin is compiled instead;
//! - an entry's name and its trailer carry its key: the sha256 of the
//!   verified plugin bytes, the wasmtime version and a hash of the engine
//!   configuration ([`Engine::precompile_compatibility_hash`]). A plugin
//!   whose bytes changed, or another engine, finds nothing;
//! - the trailer also holds the length and CRC-32 of the serialized code,
//!   checked before wasmtime sees a byte. A truncated, corrupt or foreign
//!   entry is removed and the plugin is compiled again;
//! - the code comes first and the trailer after it, so wasmtime maps the
//!   entry file itself: its code, and the initial memory of each instance
//!   (copy-on-write), come straight from the page cache. A component from
//!   componentize-py is tens of MB, and a cached run must not read, hash
//!   and copy all of it (a CRC-32 of the mapped file costs a few ms where a
//!   sha256 of a copy cost tens);
//! - entries are written atomically (temporary file, fsync, rename, fsync
//!   of the folder), so a crash never leaves a torn entry under a real name.
//!
//! The checksum finds accidents (a full disk, a bit flip, a file from
//! another tool); the folder's ownership and mode keep other users out. Code
//! running as the same user could plant an entry, but such code can already
//! change the `gantry` binary itself.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use super::PluginKind;
use crate::digest::hex;
use crate::fsutil;

/// A plugin's native code, as wasmtime compiled it.
#[derive(Clone)]
pub enum Compiled {
    Module(Module),
    Component(Component),
}

impl Compiled {
    /// Compiles `bytes` as what their header says they are.
    pub fn from_binary(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Compiled> {
        Ok(match PluginKind::of(bytes) {
            PluginKind::Module => Compiled::Module(Module::from_binary(engine, bytes)?),
            PluginKind::Component => Compiled::Component(Component::from_binary(engine, bytes)?),
        })
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Compiled::Module(module) => module.serialize(),
            Compiled::Component(component) => component.serialize(),
        }
    }
}

/// The wasmtime this gantry is built with; part of every key (a unit test
/// keeps it in step with `Cargo.lock`). The engine hash covers it too.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Begins every entry's trailer; the version of the entry format.
const MAGIC: &[u8; 16] = b"gantry-cwasm-v2\n";
/// The trailer after the code: magic, key (64 hex), the code's CRC-32
/// (u32 LE) and length (u64 LE).
const TRAILER_LEN: usize = MAGIC.len() + 64 + 4 + 8;
/// Entries end in this; anything else in the folder is left alone.
const ENTRY_SUFFIX: &str = ".cwasm";

/// An opened, checked cache folder.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// What a lookup found.
pub enum Lookup {
    /// A verified entry, deserialized.
    Hit(Compiled),
    /// No entry for this key.
    Miss,
    /// An entry existed but failed its checks; it has been removed.
    Rejected(String),
}

/// Why the cache folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no cache folder: neither XDG_CACHE_HOME nor HOME is set")]
    NoHome,
    #[error("cannot create the cache folder `{}`", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the cache folder `{}` {reason}", path.display())]
    Unsafe {
        path: PathBuf,
        reason: String,
        /// The fix, when there is a simple one.
        hint: Option<String>,
    },
}

impl crate::hint::Hinted for CacheError {
    fn hint(&self) -> Option<String> {
        match self {
            CacheError::NoHome => Some("set `XDG_CACHE_HOME` or `HOME` to an absolute path".into()),
            CacheError::Unsafe { hint, .. } => hint.clone(),
            CacheError::Create { .. } => None,
        }
    }
}

impl ModuleCache {
    /// `$XDG_CACHE_HOME/gantry`, else `$HOME/.cache/gantry`. Relative
    /// values of either variable are ignored, as the XDG spec asks.
    pub fn default_dir() -> Result<PathBuf, CacheError> {
        crate::state::xdg_base("XDG_CACHE_HOME", ".cache")
            .map(|base| base.join("gantry"))
            .ok_or(CacheError::NoHome)
    }

    /// Opens the default folder, creating it if needed.
    pub fn open_default() -> Result<ModuleCache, CacheError> {
        ModuleCache::open(&ModuleCache::default_dir()?)
    }

    /// Opens `dir`, creating it (mode 0700, parents as needed), and refuses
    /// it unless it is a real folder owned by this user that neither the
    /// group nor others may write to.
    pub fn open(dir: &Path) -> Result<ModuleCache, CacheError> {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|source| CacheError::Create {
                path: parent.to_owned(),
                source,
            })?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CacheError::Create {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
        check_private(dir)?;
        Ok(ModuleCache {
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a plugin under `engine`: the sha256 (hex) of the plugin's
    /// verified sha256, the wasmtime version and the engine's compilation
    /// settings.
    pub fn key(engine: &Engine, plugin_sha256: &str) -> String {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.0.update(b"gantry module cache key v1\0");
        hasher.0.update(plugin_sha256.as_bytes());
        hasher.0.update(b"\0");
        hasher.0.update(WASMTIME_VERSION.as_bytes());
        hasher.0.update(b"\0");
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex(&hasher.0.finalize())
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{ENTRY_SUFFIX}"))
    }

    /// Looks up the native code of the plugin of `kind` with
    /// `plugin_sha256`. Only an entry whose trailer names this exact key and
    /// whose payload matches its checksum reaches wasmtime; a bad entry is
    /// removed.
    pub fn load(&self, engine: &Engine, plugin_sha256: &str, kind: PluginKind) -> Lookup {
        let key = ModuleCache::key(engine, plugin_sha256);
        let path = self.entry_path(&key);
        let file = match fsutil::open_regular(&path, false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return self.reject(&path, format!("cannot be read: {e}")),
        };
        if let Err(reason) = check_entry(&file, &key) {
            return self.reject(&path, reason);
        }
        // Mapped through the descriptor just checked, so the file wasmtime
        // maps is the one whose trailer and checksum were read.
        let mapped = fsutil::fd_path(&file);
        // SAFETY: the entry's code is exactly what `store` serialized with an
        // engine of this key: its length and CRC-32 match the trailer, the
        // trailer names this key, the folder is private to this user, and
        // entries are only ever replaced by a rename, never written in place
        // (the mapping stays valid).
        let loaded = match kind {
            PluginKind::Module => {
                unsafe { Module::deserialize_file(engine, &mapped) }.map(Compiled::Module)
            }
            PluginKind::Component => {
                unsafe { Component::deserialize_file(engine, &mapped) }.map(Compiled::Component)
            }
        };
        match loaded {
            Ok(compiled) => Lookup::Hit(compiled),
            Err(e) => self.reject(&path, format!("was refused by wasmtime: {e}")),
        }
    }

    fn reject(&self, path: &Path, reason: String) -> Lookup {
        let _ = fs::remove_file(path);
        Lookup::Rejected(format!(
            "the cached module `{}` {reason}; it was removed and the plugin compiled again",
            path.display()
        ))
    }

    /// Stores `compiled`, compiled from the plugin with `plugin_sha256`.
    pub fn store(
        &self,
        engine: &Engine,
        plugin_sha256: &str,
        compiled: &Compiled,
    ) -> io::Result<()> {
        let mut entry = compiled.serialize().map_err(io::Error::other)?;
        let key = ModuleCache::key(engine, plugin_sha256);
        add_trailer(&mut entry, &key);
        fsutil::write_atomic(&self.entry_path(&key), &entry)
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Entries, and temporary files a crashed writer left behind.
            if name.ends_with(ENTRY_SUFFIX) || name.starts_with(".gantry-tmp-") {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Refuses a folder that is a symlink, not owned by this user, or writable
/// by group or others.
fn check_private(dir: &Path) -> Result<(), CacheError> {
    let unsafe_because = |reason: String| CacheError::Unsafe {
        path: dir.to_owned(),
        reason,
        hint: None,
    };
    let meta = fs::symlink_metadata(dir).map_err(|source| CacheError::Create {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(unsafe_because("is not a folder".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_because(format!(
            "is owned by user {}, not by you (user {me})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(CacheError::Unsafe {
            path: dir.to_owned(),
            reason: format!("may be written by other users (mode {mode:o})"),
            hint: Some(format!("`chmod 700 {}`", dir.display())),
        });
    }
    Ok(())
}

/// Appends the trailer to serialized code.
fn add_trailer(code: &mut Vec<u8>, key: &str) {
    let (checksum, length) = (crc32fast::hash(code), code.len() as u64);
    code.extend_from_slice(MAGIC);
    code.extend_from_slice(key.as_bytes());
    code.extend_from_slice(&checksum.to_le_bytes());
    code.extend_from_slice(&length.to_le_bytes());
}

/// Checks an entry's trailer against `key`, and its code against the
/// trailer's length and CRC-32.
fn check_entry(file: &fs::File, key: &str) -> Result<(), String> {
    use std::os::unix::fs::FileExt;

    let size = file
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?
        .len();
    if size < TRAILER_LEN as u64 {
        return Err(format!(
            "is truncated ({size} bytes, shorter than its trailer)"
        ));
    }
    let code_len = size - TRAILER_LEN as u64;
    let mut trailer = [0u8; TRAILER_LEN];
    file.read_exact_at(&mut trailer, code_len)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let (magic, rest) = trailer.split_at(MAGIC.len());
    if magic != MAGIC {
        // A cut entry loses its trailer: the two look alike from here.
        return Err("is truncated, or is not a gantry cache entry".into());
    }
    let (found_key, rest) = rest.split_at(64);
    if found_key != key.as_bytes() {
        return Err(format!(
            "is for another plugin or engine: expected key {key}, found {}",
            String::from_utf8_lossy(found_key)
        ));
    }
    let (checksum, length) = rest.split_at(4);
    let checksum = u32::from_le_bytes(checksum.try_into().expect("4 bytes"));
    let length = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    if length != code_len {
        return Err(format!(
            "is truncated or padded: expected {length} bytes of code, found {code_len}"
        ));
    }
    if crc_of(file, code_len).map_err(|e| format!("cannot be read: {e}"))? != checksum {
        return Err("is corrupt: its checksum does not match".into());
    }
    Ok(())
}

/// The CRC-32 of the first `len` bytes of `file`, read through a mapping
/// (the same pages wasmtime maps next, without copying them).
fn crc_of(file: &fs::File, len: u64) -> io::Result<u32> {
    use std::os::fd::AsRawFd;

    let Ok(len) = usize::try_from(len) else {
        return Err(io::Error::other("larger than the address space"));
    };
    if len == 0 {
        return Ok(crc32fast::hash(&[]));
    }
    // SAFETY: a private, read-only mapping of a file this process opened;
    // it is read only here and unmapped before returning. Entries are
    // replaced by rename, never truncated in place, so the pages stay.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_POPULATE,
            file.as_raw_fd(),
            0,
        );
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let crc = crc32fast::hash(std::slice::from_raw_parts(map.cast::<u8>(), len));
        libc::munmap(map, len);
        Ok(crc)
    }
}

/// Feeds a [`Hash`] value into a sha256, so the key is the same in every
/// process (std's `DefaultHasher` promises no such thing).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the sha256 is read")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Config;

    const WAT: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

    fn engine() -> Engine {
        let mut config = Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).unwrap()
    }

    fn cache() -> (tempfile::TempDir, ModuleCache) {
        let base = tempfile::tempdir().unwrap();
        let cache = ModuleCache::open(&base.path().join("gantry")).unwrap();
        (base, cache)
    }

    fn compiled(engine: &Engine) -> Compiled {
        Compiled::Module(Module::new(engine, wat::parse_str(WAT).unwrap()).unwrap())
    }

    fn only_entry(cache: &ModuleCache) -> PathBuf {
        let entries: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn the_wasmtime_version_matches_the_lock_file() {
        let lock = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
        let text = fs::read_to_string(lock).unwrap();
        let expected = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(text.contains(&expected), "update WASMTIME_VERSION");
    }

    #[test]
    fn a_stored_module_is_found_again() {
        let engine = engine();
        let (_base, cache) = cache();
        assert!(matches!(
            cache.load(&engine, "aa", PluginKind::Module),
            Lookup::Miss
        ));
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        let Lookup::Hit(Compiled::Module(module)) = cache.load(&engine, "aa", PluginKind::Module)
        else {
            panic!("expected a hit");
        };
        assert!(module.get_export("_start").is_some());
    }

    #[test]
    fn keys_differ_by_plugin_and_engine_configuration() {
        let engine = engine();
        let (_base, cache) = cache();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        assert!(matches!(
            cache.load(&engine, "bb", PluginKind::Module),
            Lookup::Miss
        ));

        let mut config = Config::new();
        config.epoch_interruption(false);
        let other = Engine::new(&config).unwrap();
        assert_ne!(
            ModuleCache::key(&engine, "aa"),
            ModuleCache::key(&other, "aa")
        );
        assert!(matches!(
            cache.load(&other, "aa", PluginKind::Module),
            Lookup::Miss
        ));
        // The key is stable across engines built alike.
        assert_eq!(
            ModuleCache::key(&engine, "aa"),
            ModuleCache::key(&self::engine(), "aa")
        );
    }

    fn assert_rejected(cache: &ModuleCache, engine: &Engine, needle: &str) {
        match cache.load(engine, "aa", PluginKind::Module) {
            Lookup::Rejected(reason) => assert!(reason.contains(needle), "{reason}"),
            Lookup::Hit(_) => panic!("a bad entry was loaded"),
            Lookup::Miss => panic!("a bad entry was not noticed"),
        }
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0, "removed");
        assert!(matches!(
            cache.load(engine, "aa", PluginKind::Module),
            Lookup::Miss
        ));
    }

    #[test]
    fn truncated_entries_are_rejected_and_removed() {
        let engine = engine();
        let (_base, cache) = cache();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        let path = only_entry(&cache);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert_rejected(&cache, &engine, "truncated");

        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        fs::write(&path, &bytes[..20]).unwrap();
        assert_rejected(&cache, &engine, "truncated");
    }

    #[test]
    fn corrupt_entries_are_rejected_and_removed() {
        let engine = engine();
        let (_base, cache) = cache();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        let path = only_entry(&cache);
        let mut bytes = fs::read(&path).unwrap();
        // A flipped bit inside the code, which only the checksum can see.
        let middle = (bytes.len() - TRAILER_LEN) / 2;
        bytes[middle] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert_rejected(&cache, &engine, "checksum");
    }

    #[test]
    fn foreign_entries_are_rejected_and_removed() {
        let engine = engine();
        let (_base, cache) = cache();
        let path = cache.entry_path(&ModuleCache::key(&engine, "aa"));
        // Another plugin's entry copied under this plugin's name.
        cache.store(&engine, "bb", &compiled(&engine)).unwrap();
        fs::rename(only_entry(&cache), &path).unwrap();
        assert_rejected(&cache, &engine, "another plugin");
        // A raw wasmtime artifact, with no header.
        fs::write(&path, compiled(&engine).serialize().unwrap()).unwrap();
        assert_rejected(&cache, &engine, "not a gantry cache entry");
        // A symlink is not followed.
        let elsewhere = cache.dir().parent().unwrap().join("elsewhere");
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_rejected(&cache, &engine, "cannot be read");
    }

    #[test]
    fn a_checksummed_entry_wasmtime_refuses_is_removed() {
        let engine = engine();
        let (_base, cache) = cache();
        let key = ModuleCache::key(&engine, "aa");
        let mut entry = b"not native code".to_vec();
        add_trailer(&mut entry, &key);
        fs::write(cache.entry_path(&key), entry).unwrap();
        assert_rejected(&cache, &engine, "refused by wasmtime");
    }

    #[test]
    fn writes_leave_no_temporary_files() {
        let engine = engine();
        let (_base, cache) = cache();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        let path = only_entry(&cache);
        assert!(path.to_string_lossy().ends_with(ENTRY_SUFFIX));
    }

    #[test]
    fn the_folder_is_private_and_checked() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("deep").join("gantry");
        ModuleCache::open(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let error = ModuleCache::open(&dir).unwrap_err().to_string();
        assert!(error.contains("may be written by other users"), "{error}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o720)).unwrap();
        assert!(ModuleCache::open(&dir).is_err());
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            ModuleCache::open(&dir).is_ok(),
            "readable by others is fine"
        );

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let error = ModuleCache::open(&link).unwrap_err().to_string();
        assert!(error.contains("is not a folder"), "{error}");

        let file = base.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(ModuleCache::open(&file).is_err());
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        // Only root can give a folder away; elsewhere `/` stands in, which
        // root owns.
        let error = if unsafe { libc::geteuid() } == 0 {
            let base = tempfile::tempdir().unwrap();
            let dir = base.path().join("gantry");
            fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            ModuleCache::open(&dir).unwrap_err()
        } else {
            ModuleCache::open(Path::new("/")).unwrap_err()
        };
        assert!(error.to_string().contains("is owned by user"), "{error}");
    }

    #[test]
    fn clear_removes_entries_only() {
        let engine = engine();
        let (_base, cache) = cache();
        cache.store(&engine, "aa", &compiled(&engine)).unwrap();
        cache.store(&engine, "bb", &compiled(&engine)).unwrap();
        fs::write(cache.dir().join("README"), b"keep").unwrap();
        assert_eq!(cache.clear().unwrap(), 2);
        assert!(matches!(
            cache.load(&engine, "aa", PluginKind::Module),
            Lookup::Miss
        ));
        assert!(cache.dir().join("README").exists());
    }
}
