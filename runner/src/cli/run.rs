//! `gantry run`: verifies every plugin, admits it into the sandbox, and
//! executes the pipeline (or one job and the jobs it needs).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::common::load_plan_and_lock;
use super::print_error;
use crate::engine::{self, RunOptions};
use crate::exit::Exit;
use crate::plugin;
use crate::plugin::cache::ModuleCache;
use crate::report::{self, ColorChoice, Format, ReportOptions};
use crate::run_lock::RunLock;
use crate::sandbox::{DEFAULT_OUTPUT_LIMIT, Sandbox};
use crate::secrets::Secrets;

/// Run a pipeline.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Run only this job and the jobs it needs
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// Where run records are kept [default: `.gantry` beside the manifest]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Wait for another run using the same state folder to finish, instead
    /// of failing at once
    #[arg(long)]
    wait: bool,
    /// How many jobs may run at once [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// A secret for `${{ secrets.NAME }}`: NAME=VALUE, or NAME to take the
    /// value of the host variable NAME (may be repeated)
    #[arg(long = "secret", value_name = "NAME[=VALUE]")]
    secrets: Vec<String>,
    /// A dotenv file of secrets (NAME=VALUE lines)
    #[arg(long, value_name = "PATH")]
    secrets_file: Vec<PathBuf>,
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
}

impl RunCommand {
    pub fn execute(self) -> Exit {
        let (mut plan, lock) = match load_plan_and_lock(self.manifest.as_deref()) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
        };
        if let Some(job) = &self.job
            && let Err(message) = plan.keep_job_and_needs(job)
        {
            print_error(message);
            return Exit::Invalid;
        }
        let secrets = match self.secrets() {
            Ok(secrets) => secrets,
            Err(message) => {
                print_error(message);
                return Exit::Invalid;
            }
        };
        let verified = match plugin::verify_all(&plan, &lock) {
            Ok(verified) => verified,
            Err(errors) => {
                for error in errors {
                    print_error(error);
                }
                eprintln!("nothing ran: every plugin must match its pin");
                return Exit::Verification;
            }
        };
        if let Err(errors) = plugin::check::apply_metadata(&mut plan, &verified) {
            for error in errors {
                print_error(error);
            }
            eprintln!("nothing ran: every step must fit its plugin's metadata");
            return Exit::Invalid;
        }
        let state_dir = self
            .state_dir
            .clone()
            .unwrap_or_else(|| plan.root.join(".gantry"));
        if self.wait {
            eprintln!(
                "gantry: waiting for the state folder `{}`",
                state_dir.display()
            );
        }
        let _lock = match RunLock::acquire(&state_dir, self.wait) {
            Ok(lock) => lock,
            Err(error) => {
                print_error(error);
                return Exit::Invalid;
            }
        };
        let sandbox = match Sandbox::new() {
            Ok(sandbox) => Arc::new(sandbox),
            Err(error) => {
                print_error(format!("cannot start the WebAssembly engine: {error:#}"));
                return Exit::StepFailed;
            }
        };
        // The verified bytes are compiled here and then dropped: what was
        // hashed is exactly what runs.
        let cache = if self.no_cache {
            None
        } else {
            ModuleCache::open_default()
                .map_err(|error| eprintln!("gantry: compiling without the module cache: {error}"))
                .ok()
        };
        let (admitted, notes) = sandbox.admit_all(&verified, cache.as_ref());
        drop(verified);
        for note in notes {
            eprintln!("gantry: {note}");
        }
        let admitted: engine::AdmittedPlugins = admitted;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let options = RunOptions {
            state_dir,
            output_limit: self.output_limit.max(1),
            max_parallel: self.max_parallel.map_or(cores, |n| n as usize),
            secrets,
            cancel: CancellationToken::new(),
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                print_error(format!("cannot start the async runtime: {error}"));
                return Exit::StepFailed;
            }
        };
        let label_jobs = plan.jobs.iter().map(|j| j.instance_count()).sum::<usize>() > 1;
        let reporters = report::build(&ReportOptions {
            format: self.format,
            color: self.color,
            verbose: self.verbose,
            label_jobs,
            junit: self.junit.clone(),
            secrets: &options.secrets,
        });
        let reporter = reporters.reporter.clone();
        let plan = Arc::new(plan);
        let outcome = runtime.block_on(engine::run(
            plan,
            sandbox,
            Arc::new(admitted),
            reporter,
            options,
        ));
        if let Some(error) = reporters.junit.as_ref().and_then(|junit| junit.error()) {
            print_error(error);
        }
        if outcome.success {
            Exit::Success
        } else {
            Exit::StepFailed
        }
    }

    fn secrets(&self) -> Result<Secrets, String> {
        let mut secrets = Secrets::default();
        for path in &self.secrets_file {
            secrets.add_file(path)?;
        }
        for argument in &self.secrets {
            secrets.add_argument(argument, |name| std::env::var(name).ok())?;
        }
        Ok(secrets)
    }
}
