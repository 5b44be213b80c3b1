//! What the commands that read or tidy a state folder share: finding the
//! folder from `--manifest` or `--state-dir`.

use std::path::PathBuf;

use clap::Args;

use super::Failure;
use crate::exit::Exit;
use crate::manifest;
use crate::state;

/// Which state folder a command works on.
#[derive(Debug, Args)]
pub struct StateFolderArgs {
    /// The manifest, or a folder holding `gantry.yml`, whose state folder
    /// to use [default: ./gantry.yml]
    #[arg(long, short = 'm', value_name = "PATH", global = true)]
    manifest: Option<PathBuf>,
    /// The state folder, as given to `gantry run --state-dir` [default:
    /// `$XDG_STATE_HOME/gantry/projects/<folder>-<hash>`]
    #[arg(long, value_name = "DIR", global = true)]
    state_dir: Option<PathBuf>,
}

impl StateFolderArgs {
    /// `--state-dir`, or the project's state folder as `gantry run`
    /// resolves it. The manifest itself is not read. Printed on stderr, so
    /// a person knows where to look.
    pub fn state_dir(&self) -> Result<PathBuf, Failure> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let file = manifest::locate(self.manifest.as_deref());
        let folder = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        state::default_folder(&folder).map_err(|error| Failure::hinted(Exit::Invalid, error))
    }
}
