//! `gantry verify`: checks every plugin against its pin, running nothing.

use super::console::outln;
use std::path::PathBuf;

use clap::Args;

use super::common::load_plan_and_lock;
use super::print_error;
use crate::exit::Exit;
use crate::plugin;

/// Check every plugin's sha256 pin without running anything.
#[derive(Debug, Args)]
pub struct VerifyCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
}

impl VerifyCommand {
    pub fn execute(self) -> Exit {
        let (plan, lock) = match load_plan_and_lock(self.manifest.as_deref()) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
        };
        let mut exit = Exit::Success;
        for plugin in plan.plugins.values() {
            match plugin::verify(plugin, &lock) {
                Ok(verified) => outln!("ok      {} sha256:{}", plugin.alias, verified.sha256),
                Err(error) => {
                    print_error(error);
                    exit = Exit::Verification;
                }
            }
        }
        exit
    }
}
