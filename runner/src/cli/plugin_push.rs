//! `gantry plugin push`: publishes a plugin file to an OCI registry in the
//! CNCF wasm artifact layout and prints what to pin.

use std::path::PathBuf;

use clap::Args;

use super::console::outln;
use super::plugin::read_module;
use super::{Failure, Outcome};
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
    pub fn execute(self) -> Outcome {
        let target =
            OciRef::parse(&self.reference).map_err(|error| Failure::msg(Exit::Invalid, error))?;
        let wasm = read_module(&self.plugin)?;
        if let Err(error) =
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&wasm)
        {
            return Err(Failure::new(Exit::Invalid, error).with_context(format!(
                "`{}` is not a WebAssembly module or component",
                self.plugin.display()
            )));
        }
        let bundle = match &self.bundle {
            Some(path) => match crate::fsutil::read_capped(path, 1024 * 1024) {
                Ok(Some(bytes)) => Some(bytes),
                Ok(None) => {
                    return Err(Failure::msg(
                        Exit::Invalid,
                        format!("`{}` is larger than 1 MiB", path.display()),
                    ));
                }
                Err(error) => {
                    return Err(Failure::new(Exit::Invalid, error)
                        .with_context(format!("cannot read `{}`", path.display())));
                }
            },
            None => None,
        };
        let title = self
            .plugin
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let annotations = push::annotations(&wasm, &title).map_err(|error| {
            Failure::msg(
                Exit::Invalid,
                format!("`{}`: {error}", self.plugin.display()),
            )
        })?;
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
                Ok(Exit::Success)
            }
            Err(error) => Err(Failure::hinted(Exit::Verification, error)
                .with_context(format!("cannot push to `{target}`"))),
        }
    }
}
