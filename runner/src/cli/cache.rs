//! `gantry cache`: where the compiled-module cache lives, and emptying it.

use super::console::outln;
use clap::{Args, Subcommand};

use super::print_error;
use crate::exit::Exit;
use crate::plugin::cache::ModuleCache;

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
    /// Remove every compiled module from the cache
    Clear,
}

impl CacheCommand {
    pub fn execute(self) -> Exit {
        let dir = match ModuleCache::default_dir() {
            Ok(dir) => dir,
            Err(error) => {
                print_error(error);
                return Exit::Invalid;
            }
        };
        match self.action {
            CacheAction::Dir => {
                outln!("{}", dir.display());
                Exit::Success
            }
            CacheAction::Clear => {
                if !dir.exists() {
                    outln!("the cache `{}` is already empty", dir.display());
                    return Exit::Success;
                }
                let cleared = ModuleCache::open(&dir)
                    .map_err(|e| e.to_string())
                    .and_then(|cache| cache.clear().map_err(|e| e.to_string()));
                match cleared {
                    Ok(count) => {
                        outln!(
                            "removed {count} compiled module{} from `{}`",
                            if count == 1 { "" } else { "s" },
                            dir.display()
                        );
                        Exit::Success
                    }
                    Err(error) => {
                        print_error(format!("cannot clear `{}`: {error}", dir.display()));
                        Exit::Invalid
                    }
                }
            }
        }
    }
}
