//! `gantry plugin push`: publishes a plugin file to an OCI registry in the
//! CNCF wasm artifact layout and prints what to pin.

use std::path::PathBuf;

use clap::Args;

use super::console::outln;
use super::plugin::read_module;
use super::print_error;
use crate::exit::Exit;
use crate::plugin::oci::{OciRef, push};

/// Publish a plugin to an OCI registry, by tag.
///
/// The manifest carries the plugin's `gantry:step` metadata as annotations
/// (`dev.gantry.step.*`). Prints the manifest digest and the `source:` and
/// `sha256:` lines that pin exactly what was pushed.
#[derive(Debug, Args)]
pub struct PushCommand {
    /// The WebAssembly module or component
    plugin: PathBuf,
    /// Where to push it: oci://REGISTRY/REPO:TAG
    reference: String,
    /// A Sigstore bundle for the plugin, attached to it as a referrer
    #[arg(long, value_name = "FILE.sigstore.json")]
    bundle: Option<PathBuf>,
}

impl PushCommand {
    pub fn execute(self) -> Exit {
        let target = match OciRef::parse(&self.reference) {
            Ok(target) => target,
            Err(error) => {
                print_error(error);
                return Exit::Invalid;
            }
        };
        let wasm = match read_module(&self.plugin) {
            Ok(bytes) => bytes,
            Err(exit) => return exit,
        };
        if wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&wasm)
            .is_err()
        {
            print_error(format!(
                "`{}` is not a WebAssembly module or component",
                self.plugin.display()
            ));
            return Exit::Invalid;
        }
        let bundle = match &self.bundle {
            Some(path) => match crate::fsutil::read_capped(path, 1024 * 1024) {
                Ok(Some(bytes)) => Some(bytes),
                Ok(None) => {
                    print_error(format!("`{}` is larger than 1 MiB", path.display()));
                    return Exit::Invalid;
                }
                Err(error) => {
                    print_error(format!("cannot read `{}`: {error}", path.display()));
                    return Exit::Invalid;
                }
            },
            None => None,
        };
        let title = self
            .plugin
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let annotations = match push::annotations(&wasm, &title) {
            Ok(annotations) => annotations,
            Err(error) => {
                print_error(format!("`{}`: {error}", self.plugin.display()));
                return Exit::Invalid;
            }
        };
        match push::push(&wasm, &annotations, &target, bundle.as_deref()) {
            Ok(pushed) => {
                outln!("pushed {} to {target}", self.plugin.display());
                outln!(
                    "digest: sha256:{}",
                    pushed.pinned.digest().unwrap_or_default()
                );
                if let Some(hex) = &pushed.bundle_manifest_hex {
                    outln!("bundle: attached as sha256:{hex}");
                }
                outln!("pin it with:");
                outln!("    source: {}", pushed.pinned);
                outln!("    sha256: {}", pushed.wasm_hex);
                Exit::Success
            }
            Err(error) => {
                print_error(format!("cannot push to `{target}`: {error}"));
                Exit::Verification
            }
        }
    }
}
