//! `gantry export`: writes the pipeline for an outside engine, each job on
//! a machine of its own (see [`crate::export`] and docs/SCALE.md).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::common::read_draft;
use super::console::outln;
use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::export::{self, ExportInput};

/// Write a GitLab CI or GitHub Actions pipeline that runs each job (and
/// each matrix combination) on a machine of its own, handing outputs,
/// artifacts and journals on in bundles, with a rollback job for when it
/// fails. The same manifest always gives the same bytes.
#[derive(Debug, Args)]
pub struct ExportCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// The engine to write for
    #[arg(long = "to", value_enum)]
    engine: Engine,
    /// Export only these jobs and the jobs they need (may be repeated)
    #[arg(long = "job", value_name = "ID")]
    jobs: Vec<String>,
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The command each engine job runs first to install gantry [default:
    /// none: gantry is on the PATH]; for GitHub, `uses: OWNER/gantry@REF`
    /// makes it a step using gantry's action with `install-only: true`
    #[arg(long, value_name = "CMD")]
    install: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Engine {
    Gitlab,
    Github,
}

impl ExportCommand {
    pub fn execute(self) -> Outcome {
        let mut draft = read_draft(self.manifest.as_deref())?;
        if !self.jobs.is_empty() {
            draft.narrow_to(&self.jobs).map_err(Failure::from)?;
        }
        let plan = draft.finish();
        let invalid = |message: String| Failure::msg(Exit::Invalid, message);
        export::check(&plan).map_err(invalid)?;
        let manifest = manifest_in_repository(&plan.manifest_path);
        let input = ExportInput {
            plan: &plan,
            manifest: &manifest,
            install: self.install.as_deref(),
            version: env!("CARGO_PKG_VERSION"),
        };
        let text = match self.engine {
            Engine::Gitlab => export::gitlab(&input),
            Engine::Github => export::github(&input),
        };
        match &self.output {
            Some(path) => {
                crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| {
                    Failure::new(Exit::Invalid, e)
                        .with_context(format!("cannot write `{}`", path.display()))
                })?;
            }
            None => outln!("{}", text.trim_end()),
        }
        Ok(Exit::Success)
    }
}

/// The manifest's path as engine jobs see it: relative to the current
/// folder (the repository's root, where `gantry export` is meant to run).
fn manifest_in_repository(manifest: &Path) -> String {
    let here = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    let absolute = manifest
        .canonicalize()
        .unwrap_or_else(|_| manifest.to_owned());
    here.as_deref()
        .and_then(|here| absolute.strip_prefix(here).ok())
        .unwrap_or(manifest)
        .display()
        .to_string()
}
