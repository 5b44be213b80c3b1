//! The command line: one clap struct per subcommand, each with an
//! `execute` that returns the contract's [`Exit`](crate::exit::Exit) status
//! or a `Failure`, printed in one place ([`main`]). Doc comments on the
//! structs are the `--help` text.

mod artifacts;
mod attest;
mod cache;
mod common;
mod compensate;
mod console;
mod export;
mod failure;
mod fetch;
mod gc;
mod given;
mod inspect;
mod lock;
mod new;
mod plan;
mod plugin;
mod plugin_push;
mod registry;
mod rollback_import;
mod run;
mod runs;
mod schema;
mod sign;
mod state;
mod validate;
mod verify;

pub(crate) use failure::{Failure, Outcome, Problem};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit;

/// gantry runs GitHub Actions-style pipelines whose steps are sandboxed
/// WebAssembly plugins, pinned by sha256.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    registry: registry::RegistryArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Boxed: `run` has the most flags by far; the others stay small.
    Run(Box<run::RunCommand>),
    Plan(plan::PlanCommand),
    Runs(runs::RunsCommand),
    Rollback(compensate::RollbackCommand),
    Export(export::ExportCommand),
    Resume(compensate::ResumeCommand),
    Schema(schema::SchemaCommand),
    Lock(lock::LockCommand),
    Verify(verify::VerifyCommand),
    Validate(validate::ValidateCommand),
    Cache(cache::CacheCommand),
    Plugin(plugin::PluginCommand),
    Inspect(inspect::InspectCommand),
    New(new::NewCommand),
    Artifacts(artifacts::ArtifactsCommand),
    Gc(gc::GcCommand),
    VerifyRun(attest::VerifyRunCommand),
    Fetch(fetch::FetchCommand),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.registry.configure();
    // Every command fails with a `Failure`, printed here.
    let outcome: Outcome = match cli.command {
        Command::Run(command) => command.execute(),
        Command::Plan(command) => command.execute(),
        Command::Runs(command) => command.execute(),
        Command::Rollback(command) => command.execute(),
        Command::Export(command) => command.execute(),
        Command::Resume(command) => command.execute(),
        Command::Schema(command) => command.execute(),
        Command::Lock(command) => command.execute(),
        Command::Verify(command) => command.execute(),
        Command::Validate(command) => command.execute(),
        Command::Cache(command) => command.execute(),
        Command::Plugin(command) => command.execute(),
        Command::Inspect(command) => command.execute(),
        Command::New(command) => command.execute(),
        Command::Artifacts(command) => command.execute(),
        Command::Gc(command) => command.execute(),
        Command::VerifyRun(command) => command.execute(),
        Command::Fetch(command) => command.execute(),
    };
    let exit = failure::finish(outcome);
    exit.into()
}

/// Prints an error that does not end the command (a report file that
/// could not be written), the way a [`Failure`] is printed.
pub(crate) fn print_error(problem: Problem) {
    Failure::of(exit::Exit::StepFailed, problem).print();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_match_the_contract() {
        assert_eq!(Exit::Success as u8, 0);
        assert_eq!(Exit::StepFailed as u8, 1);
        assert_eq!(Exit::Invalid as u8, 2);
        assert_eq!(Exit::Verification as u8, 3);
        assert_eq!(Exit::RollbackFailed as u8, 4);
    }
}
