//! `gantry run`: verifies every plugin, admits it into the sandbox, and
//! executes the pipeline.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use indexmap::IndexMap;

use super::common::load_plan_and_lock;
use super::print_error;
use crate::engine::{self, RunOptions};
use crate::exit::Exit;
use crate::plugin;
use crate::report::human::Human;
use crate::sandbox::{DEFAULT_OUTPUT_LIMIT, Sandbox};

/// Run a pipeline.
#[derive(Debug, Args)]
pub struct RunCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Where run records are kept [default: `.gantry` beside the manifest]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The most one step may print, in bytes; past it the step fails
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_OUTPUT_LIMIT)]
    output_limit: usize,
    /// Also show the steps' `::debug::` messages
    #[arg(short, long)]
    verbose: bool,
}

impl RunCommand {
    pub fn execute(self) -> Exit {
        let (plan, lock) = match load_plan_and_lock(self.manifest.as_deref()) {
            Ok(loaded) => loaded,
            Err(exit) => return exit,
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
        let sandbox = match Sandbox::new() {
            Ok(sandbox) => sandbox,
            Err(error) => {
                print_error(format!("cannot start the WebAssembly engine: {error:#}"));
                return Exit::StepFailed;
            }
        };
        // The verified bytes are compiled here and then dropped: what was
        // hashed is exactly what runs.
        let admitted: engine::AdmittedPlugins = verified
            .into_iter()
            .map(|(alias, plugin)| {
                let module = sandbox
                    .admit(&plugin.bytes)
                    .map_err(|refused| refused.to_string());
                (alias, module)
            })
            .collect::<IndexMap<_, _>>();
        let options = RunOptions {
            state_dir: self.state_dir.unwrap_or_else(|| plan.root.join(".gantry")),
            output_limit: self.output_limit.max(1),
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
        let reporter = Arc::new(Human::stdout(self.verbose));
        let outcome = runtime.block_on(engine::run(&plan, &sandbox, &admitted, reporter, &options));
        if outcome.success {
            Exit::Success
        } else {
            Exit::StepFailed
        }
    }
}
