//! `gantry fetch`: pulls every registry plugin a manifest needs into the
//! content cache ahead of time, checked against its pins, so that a later
//! run needs no network (air-gapped CI).

use std::path::PathBuf;

use clap::Args;

use super::common::load_plan_and_lock;
use super::console::outln;
use super::{Failure, Outcome, Problem};
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
    pub fn execute(self) -> Outcome {
        let (plan, lock) = load_plan_and_lock(self.manifest.as_deref())?;
        let mut problems = Vec::new();
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
                Err(error) => problems.push(Problem::hinted(error)),
            }
        }
        if !problems.is_empty() {
            return Err(Failure::several(Exit::Verification, problems));
        }
        let cache = oci::BlobCache::open_default().map_err(|error| {
            Failure::hinted(Exit::Verification, error).with_context("no content cache")
        })?;
        outln!(
            "{fetched} registry plugin{} in {}",
            if fetched == 1 { "" } else { "s" },
            cache.dir().display()
        );
        Ok(Exit::Success)
    }
}
