//! The `gantry:step` metadata: the UTF-8 JSON a plugin describes itself
//! with, in a custom section of that name — its name, inputs, outputs,
//! whether it has a rollback phase and the permissions it needs (the
//! *Plugin metadata* contract in `DESIGN.md`, and `sdk/ABI.md`).
//!
//! Unknown keys: tolerated at the top level and inside `inputs` and
//! `outputs` entries, so a plugin written for a newer gantry still loads.
//! Inside `permissions` they are refused: a need a runner cannot check
//! must not be silently treated as met. `inputs` absent means "any input",
//! present and empty means "no inputs": the two stay apart through every
//! round trip.

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The name of the custom section holding a plugin's metadata.
pub const SECTION: &str = "gantry:step";

/// The most metadata JSON gantry accepts, in bytes.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Why metadata JSON is not valid.
#[derive(Debug)]
pub enum MetadataError {
    TooLarge,
    NotUtf8(std::str::Utf8Error),
    Json(serde_json::Error),
    Invalid(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::TooLarge => {
                write!(
                    f,
                    "the `{SECTION}` section is larger than {MAX_METADATA_BYTES} bytes"
                )
            }
            MetadataError::NotUtf8(e) => write!(f, "the `{SECTION}` metadata is not UTF-8: {e}"),
            MetadataError::Json(e) => write!(f, "the `{SECTION}` metadata is not valid: {e}"),
            MetadataError::Invalid(why) => {
                write!(f, "the `{SECTION}` metadata is not valid: {why}")
            }
        }
    }
}

impl std::error::Error for MetadataError {}

impl From<std::str::Utf8Error> for MetadataError {
    fn from(e: std::str::Utf8Error) -> Self {
        MetadataError::NotUtf8(e)
    }
}

impl From<serde_json::Error> for MetadataError {
    fn from(e: serde_json::Error) -> Self {
        MetadataError::Json(e)
    }
}

/// A plugin's description of itself. Every field but `name` is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `with:` keys the plugin reads, in the order written. `None` when
    /// the metadata does not say, in which case any key is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<IndexMap<String, InputMeta>>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: IndexMap<String, OutputMeta>,
    /// The variables of its step's `env:` the plugin reads. `None` when the
    /// metadata does not say; then `gantry validate` cannot tell a variable
    /// the plugin ignores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<IndexMap<String, EnvMeta>>,
    /// Whether the plugin does something in the rollback phase.
    #[serde(default)]
    pub rollback: bool,
    /// What a step must grant for the plugin to work.
    #[serde(default)]
    pub permissions: Needs,
}

/// One entry of [`Metadata::inputs`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// A string, number or boolean used when a step does not give the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

impl InputMeta {
    /// The default as the text a step would see in `INPUT_*`.
    pub fn default_text(&self) -> Option<String> {
        self.default.as_ref().map(|value| match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    }
}

/// One entry of [`Metadata::outputs`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One entry of [`Metadata::env`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `permissions` in metadata: the shape of a step's `permissions`, read as
/// what the plugin needs rather than what it is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    /// `none` (the default here) needs nothing of the workspace.
    #[serde(default)]
    pub workspace: WorkspaceNeed,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirNeed>,
    /// Host environment variables the plugin expects passed through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Destinations the plugin needs to reach (`scheme://host[:port]`); a
    /// step using it must grant each (components only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
}

/// Workspace access a plugin needs, ordered from least to most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceNeed {
    #[default]
    None,
    Read,
    Write,
}

impl fmt::Display for WorkspaceNeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkspaceNeed::None => "none",
            WorkspaceNeed::Read => "read",
            WorkspaceNeed::Write => "write",
        })
    }
}

/// A folder a plugin expects mounted at `guest`. A `host` may be written,
/// to keep the shape of a step's grant, but only the step decides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirNeed {
    pub guest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default)]
    pub access: DirAccess,
}

/// Access to a folder a plugin needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirAccess {
    #[default]
    Read,
    Write,
}

impl fmt::Display for DirAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirAccess::Read => "read",
            DirAccess::Write => "write",
        })
    }
}

impl Metadata {
    /// Parses and checks metadata JSON: a JSON object with a non-empty
    /// `name`, well-typed fields, scalar defaults, no input both required
    /// and defaulted, and well-formed permissions.
    pub fn from_json(json: &str) -> Result<Metadata, MetadataError> {
        if json.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge);
        }
        let meta: Metadata = serde_json::from_str(json)?;
        meta.check()?;
        Ok(meta)
    }

    /// Like [`Metadata::from_json`], from the section's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metadata, MetadataError> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge);
        }
        Metadata::from_json(std::str::from_utf8(bytes)?)
    }

    fn check(&self) -> Result<(), MetadataError> {
        let invalid = |message: String| Err(MetadataError::Invalid(message));
        if self.name.trim().is_empty() {
            return invalid("`name` is empty".into());
        }
        for (name, input) in self.inputs.iter().flatten() {
            if name.is_empty() || name.contains(['=', '\0']) {
                return invalid(format!("invalid input name `{name}`"));
            }
            if input.required && input.default.is_some() {
                return invalid(format!("input `{name}` is both required and defaulted"));
            }
            if let Some(value) = &input.default
                && !(value.is_string() || value.is_number() || value.is_boolean())
            {
                return invalid(format!(
                    "the default of input `{name}` must be a string, a number or a boolean, found `{value}`"
                ));
            }
        }
        for dir in &self.permissions.dirs {
            if !dir.guest.starts_with('/') || dir.guest.split('/').any(|part| part == "..") {
                return invalid(format!(
                    "`permissions.dirs`: the guest path `{}` must be absolute, without `..`",
                    dir.guest
                ));
            }
        }
        for name in &self.permissions.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return invalid(format!("`permissions.env`: invalid variable name `{name}`"));
            }
        }
        for destination in &self.permissions.network {
            if let Err(why) = crate::network::NetworkGrant::parse(destination) {
                return invalid(format!("`permissions.network`: {why}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"{
      "name": "render",
      "description": "Fill templates from inputs",
      "version": "1.2.0",
      "inputs": {
        "template": { "description": "template path", "required": true },
        "out":      { "description": "output name", "default": "index.html" }
      },
      "outputs": { "digest": { "description": "sha256 of the result" } },
      "rollback": false,
      "permissions": { "workspace": "read", "network": ["https://api.example.com"] }
    }"#;

    #[test]
    fn the_contract_example_reads_in_order() {
        let meta = Metadata::from_json(EXAMPLE).unwrap();
        let inputs: Vec<&String> = meta.inputs.as_ref().unwrap().keys().collect();
        assert_eq!(inputs, ["template", "out"]);
        assert_eq!(meta.permissions.workspace, WorkspaceNeed::Read);
        assert_eq!(meta.permissions.network, ["https://api.example.com"]);
    }

    #[test]
    fn no_inputs_and_any_input_stay_apart() {
        let any = Metadata::from_json(r#"{"name": "x"}"#).unwrap();
        let none = Metadata::from_json(r#"{"name": "x", "inputs": {}}"#).unwrap();
        assert_eq!(any.inputs, None);
        assert_eq!(none.inputs, Some(IndexMap::new()));
        for meta in [any, none] {
            let again = Metadata::from_json(&serde_json::to_string(&meta).unwrap()).unwrap();
            assert_eq!(again, meta);
        }
    }

    #[test]
    fn a_malformed_destination_is_refused() {
        let error =
            Metadata::from_json(r#"{"name": "x", "permissions": {"network": ["ftp://x"]}}"#)
                .unwrap_err()
                .to_string();
        assert!(error.contains("`permissions.network`"), "{error}");
    }

    fn input() -> impl Strategy<Value = InputMeta> {
        (
            proptest::option::of("[ -~]{0,20}"),
            any::<bool>(),
            proptest::option::of(prop_oneof![
                "[ -~]{0,10}".prop_map(serde_json::Value::from),
                any::<i32>().prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
            ]),
        )
            .prop_map(|(description, required, default)| InputMeta {
                description,
                // Required and defaulted is refused; keep the pair valid.
                required: required && default.is_none(),
                default,
            })
    }

    proptest! {
        #[test]
        fn metadata_round_trips_through_json(
            name in "[a-z][a-z0-9-]{0,12}",
            inputs in proptest::option::of(prop::collection::vec(("[a-z][a-z0-9_-]{0,8}", input()), 0..6)),
            outputs in prop::collection::vec("[a-z][a-z0-9_-]{0,8}", 0..4),
            rollback in any::<bool>(),
            env in prop::collection::vec("[A-Z][A-Z0-9_]{0,8}", 0..3),
        ) {
            let meta = Metadata {
                name,
                description: None,
                version: Some("1.0.0".into()),
                inputs: inputs.map(|inputs| inputs.into_iter().collect()),
                outputs: outputs.into_iter().map(|o| (o, OutputMeta::default())).collect(),
                env: None,
                rollback,
                permissions: Needs { env, ..Needs::default() },
            };
            let json = serde_json::to_string(&meta).unwrap();
            prop_assert_eq!(Metadata::from_json(&json).unwrap(), meta);
        }
    }
}
