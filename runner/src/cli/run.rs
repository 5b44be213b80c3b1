//! `gantry run`: verifies every plugin, admits it into the sandbox, and
//! executes the pipeline (or one job and the jobs it needs).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{
    RunStateArgs, SandboxSetup, SecretArgs, admit_plugins, cores, load_plan_and_lock,
    memory_budget, runtime, watch_signals,
};
use super::print_error;
use crate::engine::{self, RunOptions};
use crate::exit::Exit;
use crate::report::{self, ColorChoice, Format, ReportOptions};
use crate::sandbox::DEFAULT_OUTPUT_LIMIT;

/// Run a pipeline.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Run only this job and the jobs it needs
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    #[command(flatten)]
    state: RunStateArgs,
    /// How many jobs may run at once [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// What the memory caps (`limits.memory-mb`) of the steps running at
    /// once may add up to; a step waits until it fits [default: half of
    /// the machine's memory]
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    memory_budget: Option<u64>,
    /// The most one uploaded artifact may hold, in MiB; a larger upload
    /// fails its step before anything is copied
    #[arg(long, value_name = "MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    artifact_limit: u64,
    #[command(flatten)]
    secrets: SecretArgs,
    /// The most one step may print, in bytes; past it the step fails
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OUTPUT_LIMIT)]
    output_limit: usize,
    /// Also show the steps' `::debug::` messages
    #[arg(short, long)]
    verbose: bool,
    /// How to show the run on stdout
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// Colour in the human format
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Also write a JUnit XML report to PATH
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Compile every plugin, neither reading nor writing the compiled-module
    /// cache
    #[arg(long)]
    no_cache: bool,
    /// Also trust the CA certificates in this PEM file for component
    /// steps' HTTPS requests, besides the system's roots [default: the
    /// manifest's `ca-file:`]
    #[arg(long, value_name = "PATH")]
    ca_file: Option<PathBuf>,
}

impl RunCommand {
    pub fn execute(self) -> Exit {
        match self.run() {
            Ok(exit) | Err(exit) => exit,
        }
    }

    fn run(self) -> Result<Exit, Exit> {
        let (mut plan, lock) = load_plan_and_lock(self.manifest.as_deref())?;
        if let Some(job) = &self.job {
            plan.keep_job_and_needs(job).map_err(|message| {
                print_error(message);
                Exit::Invalid
            })?;
        }
        if let Some(ca_file) = &self.ca_file {
            if !ca_file.is_file() {
                print_error(format!(
                    "the CA file `{}` does not exist",
                    ca_file.display()
                ));
                return Err(Exit::Invalid);
            }
            plan.ca_file = Some(std::path::absolute(ca_file).unwrap_or_else(|_| ca_file.clone()));
        }
        let secrets = self.secrets.load()?;
        // A secret no one provides would reach its step as an empty string.
        let provided: Vec<&str> = secrets.iter().map(|(name, _)| name).collect();
        let unprovided = crate::lint::unprovided_secrets(&plan, &provided);
        if !unprovided.is_empty() {
            for secret in &unprovided {
                print_error(
                    crate::manifest::ManifestError::at(
                        &plan.manifest_path,
                        &plan.source,
                        secret.location,
                        secret.message(),
                    )
                    .with_hint(secret.hint()),
                );
            }
            return Err(Exit::Invalid);
        }
        let max_parallel = self.max_parallel.map_or_else(cores, |n| n as usize).max(1);
        let steps = plan.step_count();
        let state_dir = self.state.folder(&plan)?;
        let protected = self.state.protect(&plan, &state_dir)?;
        let memory_budget = memory_budget(&plan, self.memory_budget)?;
        let setup = SandboxSetup {
            steps,
            concurrent_steps: max_parallel,
            protected,
            memory_budget: Some(memory_budget),
            keep_hooks_in: Some(state_dir.clone()),
            ca_file: plan.ca_file.clone(),
        };
        let admitted = admit_plugins(&mut plan, &lock, self.no_cache, setup)?;
        let _lock = self.state.lock(&state_dir)?;
        let runtime = runtime()?;
        let options = RunOptions {
            state_dir,
            output_limit: self.output_limit.max(1),
            max_parallel,
            secrets,
            cancel: CancellationToken::new(),
            stop_rollback: CancellationToken::new(),
            plugin_hashes: admitted.hashes,
            artifact_limit: self.artifact_limit.saturating_mul(1 << 20),
        };
        watch_signals(
            &runtime,
            options.cancel.clone(),
            options.stop_rollback.clone(),
        );
        let label_jobs = plan.jobs.iter().map(|j| j.instance_count()).sum::<usize>() > 1;
        let reporters = report::build(&ReportOptions {
            format: self.format,
            color: self.color,
            verbose: self.verbose,
            label_jobs,
            junit: self.junit.clone(),
            secrets: &options.secrets,
            live_steps: Some(steps),
            manifest_dir: Some(&plan.root),
        });
        let outcome = runtime.block_on(engine::run(
            Arc::new(plan),
            admitted.sandbox,
            Arc::new(admitted.plugins),
            reporters.reporter.clone(),
            options,
        ));
        if let Some(error) = reporters.junit.as_ref().and_then(|junit| junit.error()) {
            print_error(error);
        }
        Ok(outcome.verdict.into())
    }
}
