//! `gantry plugin`: tools for plugin files. `gantry plugin annotate` writes
//! a plugin's metadata into its `gantry:step` custom section, for modules
//! built by any toolchain.

use super::console::outln;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::fsutil::write_atomic;
use crate::plugin::{MAX_PLUGIN_BYTES, metadata, sha256_hex};

/// Work with plugin files.
#[derive(Debug, Args)]
pub struct PluginCommand {
    #[command(subcommand)]
    command: PluginSubcommand,
}

#[derive(Debug, Subcommand)]
enum PluginSubcommand {
    Annotate(AnnotateCommand),
    Keygen(super::sign::KeygenCommand),
    Sign(super::sign::SignCommand),
    Push(super::plugin_push::PushCommand),
}

impl PluginCommand {
    pub fn execute(self) -> Outcome {
        match self.command {
            PluginSubcommand::Annotate(command) => command.execute(),
            PluginSubcommand::Keygen(command) => command.execute(),
            PluginSubcommand::Sign(command) => command.execute(),
            PluginSubcommand::Push(command) => command.execute(),
        }
    }
}

/// Embed metadata JSON in a module's `gantry:step` custom section.
///
/// The JSON is checked first; an existing `gantry:step` section is
/// replaced. Annotating changes the module's bytes: pin the written file
/// (`gantry lock --update`), not the one the compiler produced.
#[derive(Debug, Args)]
pub struct AnnotateCommand {
    /// The WebAssembly module
    plugin: PathBuf,
    /// The metadata, as JSON (see "Plugin metadata" in sdk/ABI.md)
    meta: PathBuf,
    /// Where to write the annotated module (may be PLUGIN itself)
    #[arg(short, long, value_name = "OUT.wasm")]
    output: PathBuf,
}

impl AnnotateCommand {
    pub fn execute(self) -> Outcome {
        let module = read_module(&self.plugin)?;
        let json = std::fs::read_to_string(&self.meta).map_err(|error| {
            Failure::new(Exit::Invalid, error)
                .with_context(format!("cannot read `{}`", self.meta.display()))
        })?;
        let annotated = metadata::annotate(&module, &json).map_err(|error| {
            let culprit = match error {
                metadata::MetadataError::NotAModule(_) => &self.plugin,
                _ => &self.meta,
            };
            // `FILE: problem` on one line: the file is where, not a cause.
            let message = format!("`{}`: {}", culprit.display(), crate::hint::one_line(&error));
            Failure::msg(Exit::Invalid, message)
        })?;
        write_atomic(&self.output, &annotated).map_err(|error| {
            Failure::new(Exit::Invalid, error)
                .with_context(format!("cannot write `{}`", self.output.display()))
        })?;
        outln!(
            "wrote {} ({} bytes, sha256 {})",
            self.output.display(),
            annotated.len(),
            sha256_hex(&annotated)
        );
        Ok(Exit::Success)
    }
}

/// Reads a module file for the plugin tools, refusing oversized ones.
pub(super) fn read_module(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    let cannot_read = || format!("cannot read `{}`", path.display());
    let refuse =
        |error: std::io::Error| Failure::new(Exit::Invalid, error).with_context(cannot_read());
    match std::fs::metadata(path) {
        Ok(info) if info.len() > MAX_PLUGIN_BYTES => {
            return Err(Failure::msg(
                Exit::Invalid,
                format!(
                    "{}: larger than the {MAX_PLUGIN_BYTES}-byte limit",
                    cannot_read()
                ),
            ));
        }
        Ok(_) => {}
        Err(error) => return Err(refuse(error)),
    }
    std::fs::read(path).map_err(refuse)
}
