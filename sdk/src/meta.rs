//! Self-describing plugins: the `gantry:step` custom section.
//!
//! gantry reads a plugin's name, inputs, outputs, rollback support and the
//! permissions it needs from a WebAssembly custom section named
//! `gantry:step` holding UTF-8 JSON. [`metadata!`](crate::metadata) puts that
//! JSON into the module a Rust step compiles to; [`Metadata`] is the model
//! of the JSON, for checking it in tests.
//!
//! ```
//! gantry_sdk::metadata!(r#"{
//!     "name": "greet",
//!     "description": "Says hello",
//!     "version": "1.0.0",
//!     "inputs": { "who": { "description": "whom to greet", "default": "world" } },
//!     "outputs": { "message": { "description": "the greeting" } }
//! }"#);
//!
//! let meta = gantry_sdk::meta::Metadata::from_bytes(&GANTRY_STEP_METADATA)?;
//! assert_eq!(meta.name, "greet");
//! assert_eq!(meta.inputs["who"].default, Some(serde_json::json!("world")));
//! # Ok::<(), gantry_sdk::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of the custom section gantry reads.
pub const SECTION: &str = "gantry:step";

/// Embeds plugin metadata in the module, in the `gantry:step` custom
/// section.
///
/// The argument is a constant string: a literal, or
/// `include_str!("../gantry-step.json")`. The macro defines a
/// `pub static GANTRY_STEP_METADATA: [u8; N]` holding its bytes; on
/// WebAssembly targets the static is placed in the custom section and kept
/// by the linker even though nothing reads it. On other targets it is an
/// ordinary static, so host tests can parse it with
/// [`Metadata::from_bytes`]. Use the macro once per binary.
///
/// ```
/// gantry_sdk::metadata!(r#"{ "name": "noop", "rollback": false }"#);
/// assert!(GANTRY_STEP_METADATA.starts_with(b"{"));
/// ```
#[macro_export]
macro_rules! metadata {
    ($json:expr $(,)?) => {
        /// This plugin's metadata, as JSON: the content of its `gantry:step`
        /// custom section.
        #[cfg_attr(target_family = "wasm", unsafe(link_section = "gantry:step"))]
        #[used]
        pub static GANTRY_STEP_METADATA: [u8; { $json.len() }] =
            $crate::meta::embed::<{ $json.len() }>($json);
    };
}

/// Copies a constant string into a byte array of its length; used by
/// [`metadata!`](crate::metadata) at compile time.
///
/// ```
/// const BYTES: [u8; 2] = gantry_sdk::meta::embed::<2>("{}");
/// assert_eq!(&BYTES, b"{}");
/// ```
pub const fn embed<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == N, "length mismatch");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The JSON of the `gantry:step` section. Every key but `name` is optional;
/// unknown keys are ignored here, so newer metadata still parses.
///
/// ```
/// use gantry_sdk::meta::Metadata;
/// let meta = Metadata::from_json(r#"{"name": "x", "inputs": {"path": {"required": true}}}"#)?;
/// assert!(meta.inputs["path"].required);
/// assert!(!meta.rollback);
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The plugin's name.
    pub name: String,
    /// One line saying what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `with:` keys it reads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputMeta>,
    /// The outputs it sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, OutputMeta>,
    /// The variables of its step's `env:` it reads; `None` when not said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, EnvMeta>>,
    /// Whether it does something in the rollback phase.
    #[serde(default)]
    pub rollback: bool,
    /// What it needs granted, shaped like a step's `permissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<serde_json::Value>,
}

/// One input in [`Metadata::inputs`].
///
/// ```
/// let input: gantry_sdk::meta::InputMeta = serde_json::from_str(r#"{"default": 3}"#)?;
/// assert_eq!(input.default, Some(serde_json::json!(3)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InputMeta {
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a step must give it.
    #[serde(default)]
    pub required: bool,
    /// The value used when a step does not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
}

/// One output in [`Metadata::outputs`].
///
/// ```
/// let output: gantry_sdk::meta::OutputMeta = serde_json::from_str(r#"{"description": "sha256"}"#)?;
/// assert_eq!(output.description.as_deref(), Some("sha256"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutputMeta {
    /// What it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One variable in [`Metadata::env`], described, like an output, by what
/// it holds.
pub type EnvMeta = OutputMeta;

impl Metadata {
    /// Parses and checks metadata JSON: valid JSON, a non-empty `name`, no
    /// input both required and defaulted.
    ///
    /// ```
    /// use gantry_sdk::meta::Metadata;
    /// assert!(Metadata::from_json(r#"{"name": ""}"#).is_err());
    /// assert!(Metadata::from_json(r#"{"description": "no name"}"#).is_err());
    /// ```
    pub fn from_json(json: &str) -> Result<Metadata> {
        let meta: Metadata = serde_json::from_str(json)
            .map_err(|e| Error::new(format!("invalid `{SECTION}` metadata: {e}")))?;
        if meta.name.trim().is_empty() {
            return Err(Error::new(format!("`{SECTION}` metadata: `name` is empty")));
        }
        if let Some((name, _)) = meta
            .inputs
            .iter()
            .find(|(_, i)| i.required && i.default.is_some())
        {
            return Err(Error::new(format!(
                "`{SECTION}` metadata: input `{name}` is required and has a default"
            )));
        }
        Ok(meta)
    }

    /// Like [`Metadata::from_json`], from the section's bytes.
    ///
    /// ```
    /// let meta = gantry_sdk::meta::Metadata::from_bytes(br#"{"name": "x"}"#)?;
    /// assert_eq!(meta.name, "x");
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Metadata> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::new(format!("`{SECTION}` metadata is not UTF-8: {e}")))?;
        Metadata::from_json(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::metadata!(include_str!("../tests/example-meta.json"));

    #[test]
    fn macro_embeds_the_exact_bytes() {
        let expected = include_str!("../tests/example-meta.json");
        assert_eq!(&GANTRY_STEP_METADATA[..], expected.as_bytes());
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "render");
        assert_eq!(meta.version.as_deref(), Some("1.2.0"));
        assert!(meta.inputs["template"].required);
        assert_eq!(
            meta.inputs["out"].default,
            Some(serde_json::json!("index.html"))
        );
        assert!(meta.outputs.contains_key("digest"));
        assert_eq!(
            meta.permissions,
            Some(serde_json::json!({"workspace": "read"}))
        );
    }

    #[test]
    fn round_trip_through_json() {
        let meta = Metadata::from_json(include_str!("../tests/example-meta.json")).unwrap();
        let again = Metadata::from_json(&serde_json::to_string(&meta).unwrap()).unwrap();
        assert_eq!(meta, again);
    }

    #[test]
    fn checks() {
        assert!(Metadata::from_json("not json").is_err());
        assert!(Metadata::from_bytes(&[0xff]).is_err());
        let both = r#"{"name":"x","inputs":{"a":{"required":true,"default":1}}}"#;
        assert!(Metadata::from_json(both).is_err());
        let extra = r#"{"name":"x","homepage":"later"}"#;
        assert_eq!(Metadata::from_json(extra).unwrap().name, "x");
    }
}
