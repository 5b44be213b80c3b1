//! `gantry inspect`: what a plugin file says about itself — its kind, its
//! metadata, the imports it needs from the host (and, for a component, its
//! exports: its world), its size and its sha256.

use super::console::out;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use wasmparser::{Parser, Payload, TypeRef};

use super::plugin::read_module;
use super::{Failure, Outcome};
use crate::exit::Exit;
use crate::plugin::metadata::{self, Metadata, SECTION, WorkspaceNeed};
use crate::plugin::{PluginKind, sha256_hex};

/// Show a plugin's metadata, imports, size and sha256.
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// The WebAssembly module
    plugin: PathBuf,
}

impl InspectCommand {
    pub fn execute(self) -> Outcome {
        let module = read_module(&self.plugin)?;
        let kind = PluginKind::of(&module);
        let world = match kind {
            PluginKind::Module => imports(&module).map(|imports| (imports, Vec::new())),
            PluginKind::Component => component_world(&module),
        };
        let (imports, exports) = world.map_err(|reason| {
            Failure::msg(
                Exit::Invalid,
                format!("`{}`: {reason}", self.plugin.display()),
            )
        })?;
        let mut text = String::new();
        let _ = writeln!(text, "{}", self.plugin.display());
        let _ = writeln!(
            text,
            "  kind: {}",
            match kind {
                PluginKind::Module => "WASI preview 1 module",
                PluginKind::Component => "WASI 0.2 component",
            }
        );
        let _ = writeln!(text, "  size: {} bytes", module.len());
        let _ = writeln!(text, "  sha256: {}", sha256_hex(&module));
        // An unreadable section fails the command after the rest is shown.
        let mut failure = None;
        match metadata::read(&module) {
            Ok(Some(meta)) => describe(&meta, &mut text),
            Ok(None) => {
                let _ = writeln!(text, "  metadata: none (no `{SECTION}` section)");
            }
            Err(error) => {
                let _ = writeln!(text, "  metadata: unreadable");
                failure = Some(Failure::msg(
                    Exit::Invalid,
                    format!(
                        "`{}`: {}",
                        self.plugin.display(),
                        crate::hint::one_line(&error)
                    ),
                ));
            }
        }
        let _ = writeln!(text, "  imports:");
        if imports.is_empty() {
            let _ = writeln!(text, "    (none)");
        }
        for import in imports {
            let _ = writeln!(text, "    {import}");
        }
        if kind == PluginKind::Component {
            let _ = writeln!(text, "  exports:");
            for export in exports {
                let _ = writeln!(text, "    {export}");
            }
        }
        out!("{text}");
        match failure {
            Some(failure) => Err(failure),
            None => Ok(Exit::Success),
        }
    }
}

/// Writes the metadata, one field a line.
fn describe(meta: &Metadata, text: &mut String) {
    let _ = writeln!(text, "  name: {}", meta.name);
    if let Some(version) = &meta.version {
        let _ = writeln!(text, "  version: {version}");
    }
    if let Some(description) = &meta.description {
        let _ = writeln!(text, "  description: {description}");
    }
    match &meta.inputs {
        None => {
            let _ = writeln!(text, "  inputs: not declared (any `with:` key is accepted)");
        }
        Some(inputs) if inputs.is_empty() => {
            let _ = writeln!(text, "  inputs: none");
        }
        Some(inputs) => {
            let _ = writeln!(text, "  inputs:");
            for (name, input) in inputs {
                let mut line = format!("    {name}");
                if input.required {
                    line.push_str(" (required)");
                } else if let Some(value) = &input.default {
                    let _ = write!(line, " (default: {value})");
                } else {
                    line.push_str(" (optional)");
                }
                if let Some(description) = &input.description {
                    let _ = write!(line, ": {description}");
                }
                let _ = writeln!(text, "{line}");
            }
        }
    }
    let described = |text: &mut String, name: &str, description: &Option<String>| {
        let _ = match description {
            Some(description) => writeln!(text, "    {name}: {description}"),
            None => writeln!(text, "    {name}"),
        };
    };
    if meta.outputs.is_empty() {
        let _ = writeln!(text, "  outputs: none");
    } else {
        let _ = writeln!(text, "  outputs:");
        for (name, output) in &meta.outputs {
            described(text, name, &output.description);
        }
    }
    match &meta.env {
        None => {}
        Some(env) if env.is_empty() => {
            let _ = writeln!(text, "  env: none read");
        }
        Some(env) => {
            let _ = writeln!(text, "  env (variables of the step's `env:` it reads):");
            for (name, variable) in env {
                described(text, name, &variable.description);
            }
        }
    }
    let _ = writeln!(
        text,
        "  rollback: {}",
        if meta.rollback { "yes" } else { "no" }
    );
    let needs = &meta.permissions;
    let _ = writeln!(text, "  permissions:");
    let _ = writeln!(
        text,
        "    workspace: {}{}",
        needs.workspace,
        if needs.workspace == WorkspaceNeed::None {
            " (needs nothing)"
        } else {
            ""
        }
    );
    for dir in &needs.dirs {
        let _ = writeln!(text, "    dir: {} ({})", dir.guest, dir.access);
    }
    for name in &needs.env {
        let _ = writeln!(text, "    env: {name}");
    }
    for destination in &needs.network {
        let _ = writeln!(text, "    network: {destination}");
    }
}

/// A component's world: the names of its top-level imports and exports
/// (`wasi:cli/environment@0.2.0`), those of the modules and components it
/// embeds left out.
fn component_world(component: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| format!("malformed import section: {e}"))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| format!("malformed export section: {e}"))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}

/// The module's imports as `module::name (kind)`.
fn imports(module: &[u8]) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| format!("not a WebAssembly module: {e}"))?;
        if let Payload::ImportSection(reader) = payload {
            for import in reader.into_imports() {
                let import = import.map_err(|e| format!("malformed import section: {e}"))?;
                let kind = match import.ty {
                    TypeRef::Func(_) | TypeRef::FuncExact(_) => "function",
                    TypeRef::Table(_) => "table",
                    TypeRef::Memory(_) => "memory",
                    TypeRef::Global(_) => "global",
                    TypeRef::Tag(_) => "tag",
                };
                found.push(format!("{}::{} ({kind})", import.module, import.name));
            }
        }
    }
    Ok(found)
}
