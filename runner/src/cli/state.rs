//! What the commands that read or tidy a state folder share: finding the
//! folder from `--manifest` or `--state-dir`, and printing sizes.

use std::path::PathBuf;

use clap::Args;

use super::print_error;
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
    pub fn state_dir(&self) -> Result<PathBuf, Exit> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let file = manifest::locate(self.manifest.as_deref());
        let folder = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        state::default_folder(&folder).map_err(|error| {
            print_error(error);
            Exit::Invalid
        })
    }
}

/// `bytes` for a person: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `count` and `noun`, with an `s` unless there is exactly one.
pub fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
    }
}
