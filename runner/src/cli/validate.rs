//! `gantry validate`: checks a manifest without reading any plugin.

use std::path::PathBuf;

use clap::Args;

use super::common::load_plan;
use crate::exit::Exit;

/// Check a manifest for mistakes without running anything.
#[derive(Debug, Args)]
pub struct ValidateCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
}

impl ValidateCommand {
    pub fn execute(self) -> Exit {
        match load_plan(self.manifest.as_deref()) {
            Ok(plan) => {
                let steps: usize = plan.jobs.iter().map(|j| j.steps.len()).sum();
                println!(
                    "{}: valid ({} jobs, {steps} steps, {} plugins)",
                    plan.manifest_path.display(),
                    plan.jobs.len(),
                    plan.plugins.len()
                );
                Exit::Success
            }
            Err(exit) => exit,
        }
    }
}
