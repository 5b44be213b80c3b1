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
//! assert_eq!(meta.inputs.unwrap()["who"].default, Some(serde_json::json!("world")));
//! # Ok::<(), gantry_sdk::Error>(())
//! ```

/// The name of the custom section gantry reads.
pub use gantry_abi::metadata::SECTION;

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

/// The model of the JSON: `gantry-abi`'s, the very types the runner reads
/// it with, so what a step author checks here is what gantry will accept.
pub use gantry_abi::metadata::{
    DirAccess, DirNeed, EnvMeta, InputMeta, Metadata, MetadataError, Needs, OutputMeta,
    WorkspaceNeed,
};

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
        let inputs = meta.inputs.as_ref().expect("inputs are declared");
        assert!(inputs["template"].required);
        assert_eq!(inputs["out"].default, Some(serde_json::json!("index.html")));
        assert!(meta.outputs.contains_key("digest"));
        assert_eq!(meta.permissions.workspace, WorkspaceNeed::Read);
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
