//! `gantry verify`: checks every plugin against its pin, running nothing.

use super::console::outln;
use std::path::PathBuf;

use clap::Args;

use super::common::load_plan_and_lock;
use super::{Failure, Outcome, Problem};
use crate::exit::Exit;
use crate::plugin;

/// Check every plugin's sha256 pin without running anything.
#[derive(Debug, Args)]
pub struct VerifyCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
}

impl VerifyCommand {
    pub fn execute(self) -> Outcome {
        let (plan, lock) = load_plan_and_lock(self.manifest.as_deref())?;
        // Every plugin is checked, and every failure reported together.
        let mut problems = Vec::new();
        for plugin in plan.plugins.values() {
            match plugin::verify(plugin, &lock) {
                Ok(verified) => outln!("ok      {} sha256:{}", plugin.alias, verified.sha256),
                Err(error) => problems.push(Problem::hinted(error)),
            }
        }
        if problems.is_empty() {
            return Ok(Exit::Success);
        }
        let closing = format!(
            "{} of {} plugins failed verification; `gantry run` would run nothing",
            problems.len(),
            plan.plugins.len()
        );
        Err(Failure::several(Exit::Verification, problems).with_closing(closing))
    }
}
