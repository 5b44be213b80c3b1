//! `gantry run`: loads the pipeline through the load stage (the values
//! given, `--job`, the checks, the pins), takes the state folder, and
//! hands the locked plan to [`engine::launch`](crate::engine::launch);
//! the verdict becomes the exit status.

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::{
    RunStateArgs, SecretArgs, cores, memory_budget, read_draft, read_lock, runtime, watch_signals,
};
use super::console::errln;
use super::{Failure, Outcome, Problem, print_error};
use crate::engine::RunOptions;
use crate::engine::launch::{HandOn, Launch, ReportSettings, launch};
use crate::exit::Exit;
use crate::handoff::{self, Handoff};
use crate::load::admit::SandboxSetup;
use crate::report::{ColorChoice, Format};
use crate::sandbox::DEFAULT_OUTPUT_LIMIT;

/// Run a pipeline.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Run only this job and the jobs it needs; with `--import` or
    /// `--export`, only this job, its needs having run elsewhere
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// Run only combination N (from 0) of the job's matrix, as one machine
    /// of an exported pipeline does
    #[arg(long, value_name = "N", requires = "job")]
    instance: Option<usize>,
    /// Read the hand-off bundles of the jobs `--job` needs, which ran on
    /// other machines: a bundle folder, or a folder of bundle folders (may
    /// be repeated); see docs/SCALE.md
    #[arg(long = "import", value_name = "DIR", requires = "job")]
    imports: Vec<PathBuf>,
    /// When the job has ended, write its hand-off bundle (outputs, journal,
    /// artifacts) to DIR, a new or empty folder, for the jobs after it and
    /// the rollback job
    #[arg(long = "export", value_name = "DIR", requires = "job")]
    export: Option<PathBuf>,
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
    #[command(flatten)]
    given: super::given::GivenArgs,
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
    #[command(flatten)]
    attest: super::attest::AttestArgs,
}

impl RunCommand {
    pub fn execute(self) -> Outcome {
        let mut draft = read_draft(self.manifest.as_deref())?;
        let lock = read_lock(&draft.plan().root)?;
        // Inputs are checked before anything else can start; the folder of
        // `runner.temp` lives as long as the run.
        let _runner_temp = self.given.for_run(&mut draft)?;
        let invalid = |message: String| Failure::msg(Exit::Invalid, message);
        // One machine's share of an exported pipeline: this job alone, its
        // needs read from their bundles.
        let handoff_mode =
            !self.imports.is_empty() || self.export.is_some() || self.instance.is_some();
        let mut handoff = None;
        if let Some(job) = &self.job {
            draft.narrow_to(std::slice::from_ref(job))?;
            if handoff_mode {
                let bundles =
                    handoff::read_all(&self.imports).map_err(|e| Failure::new(Exit::Invalid, e))?;
                let target = draft
                    .plan()
                    .jobs
                    .iter()
                    .find(|j| j.id == *job)
                    .expect("the job was kept");
                if let Some(index) = self.instance
                    && index >= target.matrix.len()
                {
                    return Err(invalid(format!(
                        "job `{job}` has {} matrix combinations; there is no combination {index} (they count from 0)",
                        target.matrix.len()
                    )));
                }
                if self.instance.is_none() && !target.matrix.is_empty() && self.export.is_some() {
                    return Err(invalid(format!(
                        "job `{job}` has a matrix: export one combination per machine with --instance N"
                    )));
                }
                let assembled =
                    Handoff::assemble(draft.plan(), target, &bundles).map_err(invalid)?;
                draft.keep_only(job);
                handoff = Some((bundles, assembled));
            }
        }
        if let Some(ca_file) = &self.ca_file {
            draft.set_ca_file(ca_file)?;
        }
        let secrets = self.secrets.load()?;
        let attester = self.attest.prepare()?;
        // A secret no one provides would reach its step as an empty string.
        let provided: Vec<&str> = secrets.iter().map(|(name, _)| name).collect();
        draft.check_secrets(&provided)?;
        let max_parallel = self.max_parallel.map_or_else(cores, |n| n as usize).max(1);
        let steps = draft.plan().step_count();
        let state_dir = self.state.folder_of(&draft.plan().root)?;
        let protected = self.state.protect(&draft, &state_dir)?;
        let memory_budget = memory_budget(&draft, self.memory_budget)?;
        // From here the plan is final.
        let locked = draft.lock(&lock, Some(&state_dir))?;
        let setup = SandboxSetup {
            steps,
            concurrent_steps: max_parallel,
            protected,
            memory_budget: Some(memory_budget),
            ca_file: locked.plan.ca_file.clone(),
            no_cache: self.no_cache,
        };
        let _lock = self.state.lock(&state_dir)?;
        let runtime = runtime()?;
        let options = RunOptions {
            state_dir: state_dir.clone(),
            output_limit: self.output_limit.max(1),
            max_parallel,
            secrets,
            cancel: CancellationToken::new(),
            stop_rollback: CancellationToken::new(),
            plugin_hashes: Default::default(),
            artifact_limit: self.artifact_limit.saturating_mul(1 << 20),
            imported: None,
        };
        watch_signals(
            &runtime,
            options.cancel.clone(),
            options.stop_rollback.clone(),
        );
        let launched = launch(Launch {
            locked,
            setup,
            options,
            handoff: handoff.map(|(bundles, assembled)| HandOn {
                bundles,
                assembled,
                instance: self.instance,
                export: self.export.as_deref(),
            }),
            report: ReportSettings {
                format: self.format,
                color: self.color,
                verbose: self.verbose,
                junit: self.junit.clone(),
            },
            runtime: &runtime,
        })?;
        if let Some(error) = launched.junit_error.clone() {
            print_error(Problem::msg(error));
        }
        let mut exit: Exit = launched.outcome.verdict.into();
        if let Some(attester) = &attester {
            exit = attester.write(
                &launched.plan,
                &launched.hashes,
                self.job.as_deref(),
                &state_dir,
                &launched.outcome.run_id,
                exit,
            );
        }
        match launched.export {
            Some(Ok(dir)) => errln!("gantry: hand-off bundle written to `{}`", dir.display()),
            // The jobs after this one and the rollback job depend on the
            // bundle: without it this machine failed.
            Some(Err(error)) => {
                print_error(Problem::new(error));
                if exit == Exit::Success {
                    exit = Exit::StepFailed;
                }
            }
            None => {}
        }
        Ok(exit)
    }
}
