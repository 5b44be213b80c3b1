//! `gantry plugin`: tools for plugin files. `gantry plugin annotate` writes
//! a plugin's metadata into its `gantry:step` custom section, for modules
//! built by any toolchain.

use super::console::outln;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::print_error;
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
    pub fn execute(self) -> Exit {
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
    pub fn execute(self) -> Exit {
        let module = match read_module(&self.plugin) {
            Ok(bytes) => bytes,
            Err(exit) => return exit,
        };
        let json = match std::fs::read_to_string(&self.meta) {
            Ok(json) => json,
            Err(error) => {
                print_error(format!("cannot read `{}`: {error}", self.meta.display()));
                return Exit::Invalid;
            }
        };
        let annotated = match metadata::annotate(&module, &json) {
            Ok(bytes) => bytes,
            Err(error) => {
                let culprit = match error {
                    metadata::MetadataError::NotAModule(_) => &self.plugin,
                    _ => &self.meta,
                };
                print_error(format!("`{}`: {error}", culprit.display()));
                return Exit::Invalid;
            }
        };
        if let Err(error) = write_atomic(&self.output, &annotated) {
            print_error(format!("cannot write `{}`: {error}", self.output.display()));
            return Exit::Invalid;
        }
        outln!(
            "wrote {} ({} bytes, sha256 {})",
            self.output.display(),
            annotated.len(),
            sha256_hex(&annotated)
        );
        Exit::Success
    }
}

/// Reads a module file for the plugin tools, refusing oversized ones.
pub(super) fn read_module(path: &std::path::Path) -> Result<Vec<u8>, Exit> {
    let refuse = |reason: String| {
        print_error(format!("cannot read `{}`: {reason}", path.display()));
        Exit::Invalid
    };
    match std::fs::metadata(path) {
        Ok(info) if info.len() > MAX_PLUGIN_BYTES => {
            return Err(refuse(format!(
                "larger than the {MAX_PLUGIN_BYTES}-byte limit"
            )));
        }
        Ok(_) => {}
        Err(error) => return Err(refuse(error.to_string())),
    }
    std::fs::read(path).map_err(|error| refuse(error.to_string()))
}
