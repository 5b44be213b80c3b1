//! `gantry cache`: where the cache (compiled modules, registry blobs)
//! lives, and emptying it.

use super::console::outln;
use clap::{Args, Subcommand};

use super::{Failure, Outcome};
use crate::display::plural;
use crate::exit::Exit;
use crate::plugin::cache::ModuleCache;
use crate::plugin::oci::blobs::BlobCache;

/// Manage the compiled-module cache (`$XDG_CACHE_HOME/gantry`)
#[derive(Debug, Args)]
pub struct CacheCommand {
    #[command(subcommand)]
    action: CacheAction,
}

#[derive(Debug, Subcommand)]
enum CacheAction {
    /// Print the cache folder
    Dir,
    /// Remove every compiled module, and every blob pulled from a
    /// registry, from the cache
    Clear,
}

impl CacheCommand {
    pub fn execute(self) -> Outcome {
        let dir = ModuleCache::default_dir().map_err(|e| Failure::hinted(Exit::Invalid, e))?;
        match self.action {
            CacheAction::Dir => {
                outln!("{}", dir.display());
                Ok(Exit::Success)
            }
            CacheAction::Clear => {
                if !dir.exists() {
                    outln!("the cache `{}` is already empty", dir.display());
                    return Ok(Exit::Success);
                }
                let cannot_clear = || format!("cannot clear `{}`", dir.display());
                let cache = ModuleCache::open(&dir)
                    .map_err(|e| Failure::hinted(Exit::Invalid, e).with_context(cannot_clear()))?;
                let count = cache.clear().map_err(|e| {
                    Failure::new(Exit::Invalid, anyhow::Error::new(e).context(cannot_clear()))
                })?;
                let blobs = BlobCache::in_cache_dir(&dir).clear().map_err(|e| {
                    Failure::new(Exit::Invalid, anyhow::Error::new(e).context(cannot_clear()))
                })?;
                let pulled = if blobs == 0 {
                    String::new()
                } else {
                    format!(" and {}", plural(blobs, "registry blob"))
                };
                outln!(
                    "removed {count} compiled module{}{pulled} from `{}`",
                    if count == 1 { "" } else { "s" },
                    dir.display()
                );
                Ok(Exit::Success)
            }
        }
    }
}
