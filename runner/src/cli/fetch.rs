//! `gantry fetch`: pulls every registry plugin a manifest needs into the
//! content cache ahead of time, checked against its pins, so that a later
//! run needs no network (air-gapped CI).

use std::path::PathBuf;

use clap::Args;

use super::common::load_plan_and_lock;
use super::console::outln;
use super::print_error;
use crate::exit::Exit;
use crate::plugin::{self, oci};

/// Pull the manifest's registry plugins into the local cache.
///
/// Each plugin is checked as a run would check it (its digest, the wasm
/// artifact layout, its sha256 pin); a run then finds it in the cache and
/// works offline. A tag must be locked first (`gantry lock`).
#[derive(Debug, Args)]
pub struct FetchCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
}

impl FetchCommand {
    pub fn execute(self) -> Exit {
        let (plan, lock) = match load_plan_and_lock(self.manifest.as_deref()) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
        };
        let mut exit = Exit::Success;
        let mut fetched = 0;
        for plugin in plan.plugins.values() {
            if !oci::is_oci(&plugin.source) {
                continue;
            }
            // The same check a run makes: the reference, the pin, the bytes.
            match plugin::verify(plugin, &lock) {
                Ok(verified) => {
                    fetched += 1;
                    outln!(
                        "fetched {} ({}): sha256 {}",
                        plugin.alias,
                        plugin.source,
                        verified.sha256
                    );
                }
                Err(error) => {
                    print_error(error);
                    exit = Exit::Verification;
                }
            }
        }
        if exit == Exit::Success {
            match oci::BlobCache::open_default() {
                Ok(cache) => outln!(
                    "{fetched} registry plugin{} in {}",
                    if fetched == 1 { "" } else { "s" },
                    cache.dir().display()
                ),
                Err(error) => {
                    print_error(format!("no content cache: {error}"));
                    exit = Exit::Verification;
                }
            }
        }
        exit
    }
}
