//! `gantry artifacts`: lists what a run uploaded, and extracts one artifact,
//! verified, into a folder.

use super::console::{out, outln};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::state::StateFolderArgs;
use super::{Failure, Outcome};
use crate::artifacts::{ArtifactError, ArtifactIndex, EntryKind, Store, Tree};
use crate::display::{human_bytes, plural};
use crate::exit::Exit;
use crate::runs;

/// List a run's artifacts, or extract one.
///
/// RUN is a run id, or the start of exactly one, and defaults to the newest
/// run. The state folder is `.gantry` beside the manifest (`--manifest`,
/// default ./gantry.yml), or `--state-dir`.
///
/// Exit status: 0 when done; 2 when the run, the artifact or the
/// destination is wrong; 1 when the store cannot be read or is corrupt.
#[derive(Debug, Args)]
pub struct ArtifactsCommand {
    #[command(subcommand)]
    action: Option<ArtifactsAction>,
    /// The run: an id, a unique prefix of one [default: the newest run]
    run: Option<String>,
    /// Also list every entry of each artifact, with its mode and size
    #[arg(long)]
    files: bool,
    #[command(flatten)]
    state: StateFolderArgs,
}

#[derive(Debug, Subcommand)]
enum ArtifactsAction {
    Get(GetArgs),
}

/// Extract an artifact into a folder, checking every file against its
/// sha256.
///
/// The artifact is the run's latest upload of NAME. DIR must be empty or
/// not exist; if extraction fails, it is left as it was.
#[derive(Debug, Args)]
struct GetArgs {
    /// The artifact's name
    name: String,
    /// The run: an id, a unique prefix of one [default: the newest run]
    #[arg(long, value_name = "RUN")]
    run: Option<String>,
    /// Where to extract it [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
}

impl ArtifactsCommand {
    pub fn execute(self) -> Outcome {
        let state_dir = self.state.state_dir()?;
        match self.action {
            Some(ArtifactsAction::Get(mut get)) => {
                // `gantry artifacts RUN get NAME` reads as it should.
                match (self.run, &get.run) {
                    (Some(_), Some(_)) => {
                        return Err(Failure::msg(
                            Exit::Invalid,
                            "the run is given twice; use `--run RUN` alone",
                        ));
                    }
                    (Some(run), None) => get.run = Some(run),
                    _ => {}
                }
                if self.files {
                    return Err(Failure::msg(
                        Exit::Invalid,
                        "`--files` belongs to the listing, not to `get`",
                    ));
                }
                get.execute(&state_dir)
            }
            None => list(&state_dir, self.run.as_deref(), self.files),
        }
    }
}

/// The run `wanted` names and its index, or why there is none.
fn load(state_dir: &Path, wanted: Option<&str>) -> Result<(String, ArtifactIndex), Failure> {
    let run = runs::resolve(state_dir, wanted).map_err(|error| {
        let exit = match error {
            runs::RunError::Io { .. } => Exit::StepFailed,
            _ => Exit::Invalid,
        };
        Failure::new(exit, error)
    })?;
    let index = ArtifactIndex::load(state_dir, &run)
        .map_err(|error| Failure::new(Exit::StepFailed, error))?;
    Ok((run, index))
}

fn list(state_dir: &Path, wanted: Option<&str>, files: bool) -> Outcome {
    let (run, index) = load(state_dir, wanted)?;
    let latest = index.latest_each();
    if latest.is_empty() {
        outln!("run {run} has no artifacts");
        return Ok(Exit::Success);
    }
    let mut rows = vec![[
        "NAME".to_owned(),
        "UPLOADED BY".to_owned(),
        "FILES".to_owned(),
        "SIZE".to_owned(),
        "DIGEST".to_owned(),
    ]];
    for upload in &latest {
        rows.push([
            upload.name.clone(),
            format!("{}/{}", upload.job, upload.step),
            upload.tree.file_count().to_string(),
            human_bytes(upload.tree.size),
            format!("sha256:{}", upload.tree.digest),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "run {run}: {}", plural(latest.len(), "artifact"));
    for (number, row) in rows.iter().enumerate() {
        let _ = writeln!(
            text,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        if files && number > 0 {
            list_entries(&latest[number - 1].tree, &mut text);
        }
    }
    for upload in &latest {
        let count = index.upload_count(&upload.name);
        if count > 1 {
            let _ = writeln!(
                text,
                "note: `{}` was uploaded {count} times in this run; the latest upload is listed",
                upload.name
            );
        }
    }
    out!("{text}");
    Ok(Exit::Success)
}

/// One line per entry: an `ls`-style mode, the size, the path.
fn list_entries(tree: &Tree, text: &mut String) {
    for entry in &tree.entries {
        let (kind, mode, size, suffix) = match &entry.kind {
            EntryKind::File { size, mode, .. } => ('-', *mode, human_bytes(*size), String::new()),
            EntryKind::Dir { mode } => ('d', *mode, String::new(), "/".to_owned()),
            EntryKind::Symlink { target } => ('l', 0o777, String::new(), format!(" -> {target}")),
        };
        let _ = writeln!(
            text,
            "    {kind}{} {size:>10}  {}{suffix}",
            mode_text(mode),
            entry.path
        );
    }
}

/// `rwxr-xr-x` for `0o755`.
fn mode_text(mode: u32) -> String {
    (0..9)
        .map(|bit| {
            if mode & (0o400 >> bit) == 0 {
                '-'
            } else {
                ['r', 'w', 'x'][bit % 3]
            }
        })
        .collect()
}

impl GetArgs {
    fn execute(self, state_dir: &Path) -> Outcome {
        let (run, index) = load(state_dir, self.run.as_deref())?;
        let Some(upload) = index.latest(&self.name) else {
            let names: Vec<String> = index
                .latest_each()
                .iter()
                .map(|upload| format!("`{}`", upload.name))
                .collect();
            return Err(Failure::msg(
                Exit::Invalid,
                if names.is_empty() {
                    format!("run {run} has no artifacts")
                } else {
                    format!(
                        "run {run} has no artifact `{}`; it has {}",
                        self.name,
                        names.join(", ")
                    )
                },
            ));
        };
        let to = self.to.unwrap_or_else(|| PathBuf::from(&self.name));
        match Store::existing(state_dir).materialize(&upload.tree, &to) {
            Ok(()) => {
                outln!(
                    "extracted `{}` from run {run} into `{}`: {}, {}, each checked against its sha256",
                    self.name,
                    to.display(),
                    plural(upload.tree.file_count(), "file"),
                    human_bytes(upload.tree.size)
                );
                Ok(Exit::Success)
            }
            Err(error) => {
                let exit = match error {
                    ArtifactError::DestinationNotEmpty { .. } => Exit::Invalid,
                    _ => Exit::StepFailed,
                };
                Err(Failure::new(exit, error)
                    .with_context(format!("cannot extract `{}` from run {run}", self.name)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_text(0o755), "rwxr-xr-x");
        assert_eq!(mode_text(0o640), "rw-r-----");
    }
}
