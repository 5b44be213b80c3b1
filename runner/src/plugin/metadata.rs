//! Self-describing plugins: the `gantry:step` custom section.
//!
//! A plugin may carry UTF-8 JSON describing itself — its name, inputs,
//! outputs, whether it has a rollback phase and the permissions it needs —
//! in one WebAssembly custom section named `gantry:step` (see the *Plugin
//! metadata* contract in `DESIGN.md` and `sdk/ABI.md`). The model of that
//! JSON is `gantry-abi`'s, shared with the SDK; this module reads it out of
//! a module's or component's bytes, and [`annotate`] writes it into a
//! plugin built by any toolchain.

use wasm_encoder::Encode;
use wasmparser::{Parser, Payload};

pub use gantry_abi::metadata::{
    DirAccess, DirNeed, EnvMeta, InputMeta, MAX_METADATA_BYTES, Metadata, Needs, OutputMeta,
    SECTION, WorkspaceNeed,
};

/// Why metadata could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("not a WebAssembly module: {0}")]
    NotAModule(String),
    #[error("the module has {0} `{SECTION}` custom sections; at most one is allowed")]
    Duplicate(usize),
    /// The JSON itself is not valid metadata.
    #[error(transparent)]
    Content(#[from] gantry_abi::metadata::MetadataError),
}

/// Where the `gantry:step` sections of a module or component are, and
/// what they hold.
struct Sections<'a> {
    /// Byte ranges of whole top-level sections (id, size and contents).
    ranges: Vec<std::ops::Range<usize>>,
    /// The contents of the first one.
    first: Option<&'a [u8]>,
    /// In a component: the byte ranges of the core modules it embeds,
    /// where a toolchain may have left the section (Rust's `wasm32-wasip2`
    /// keeps a `#[link_section]` in the program's core module).
    nested: Vec<std::ops::Range<usize>>,
}

/// Walks the top-level sections of a core module or a component. Nested
/// modules and components are skipped over, their ranges noted.
fn find_sections(module: &[u8]) -> Result<Sections<'_>, MetadataError> {
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut sections = Sections {
        ranges: Vec::new(),
        first: None,
        nested: Vec::new(),
    };
    let not_a_module = |e: wasmparser::BinaryReaderError| MetadataError::NotAModule(e.to_string());
    loop {
        let (consumed, payload) = match parser
            .parse(&module[offset..], true)
            .map_err(not_a_module)?
        {
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
            wasmparser::Chunk::NeedMoreData(_) => {
                return Err(MetadataError::NotAModule("unexpected end of file".into()));
            }
        };
        let start = offset;
        offset += consumed;
        match payload {
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                offset = nested_end(module, &unchecked_range)?;
                sections.nested.push(unchecked_range);
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => offset = nested_end(module, &unchecked_range)?,
            Payload::CustomSection(reader) if reader.name() == SECTION => {
                sections.ranges.push(start..offset);
                sections.first.get_or_insert(reader.data());
            }
            Payload::End(_) => return Ok(sections),
            _ => {}
        }
    }
}

/// Where a nested module or component ends. Its range is as the section's
/// header claims it ("unchecked" by wasmparser): a file cut short, or made
/// to lie, claims more bytes than it has.
fn nested_end(module: &[u8], range: &std::ops::Range<usize>) -> Result<usize, MetadataError> {
    if range.end > module.len() {
        return Err(MetadataError::NotAModule(
            "a nested module runs past the end of the file".into(),
        ));
    }
    Ok(range.end)
}

/// The raw contents of the plugin's `gantry:step` section, if it has one:
/// a module's own; a component's top-level one, else the first one found
/// in the core modules it embeds.
pub fn section(module: &[u8]) -> Result<Option<&[u8]>, MetadataError> {
    let sections = find_sections(module)?;
    match sections.ranges.len() {
        0 => {}
        1 => return Ok(sections.first),
        n => return Err(MetadataError::Duplicate(n)),
    }
    for range in sections.nested {
        let Some(nested) = module.get(range) else {
            return Err(MetadataError::NotAModule(
                "a nested module runs past the end of the file".into(),
            ));
        };
        if let Some(found) = section(nested)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The module's metadata, if it has any.
pub fn read(module: &[u8]) -> Result<Option<Metadata>, MetadataError> {
    Ok(section(module)?.map(Metadata::from_bytes).transpose()?)
}

/// Returns `module` with `json` as its `gantry:step` section: the JSON is
/// checked first, any existing `gantry:step` section is removed, and the new
/// one is appended at the end. Everything else is kept byte for byte.
pub fn annotate(module: &[u8], json: &str) -> Result<Vec<u8>, MetadataError> {
    Metadata::from_json(json)?;
    let sections = find_sections(module)?;
    let mut out = Vec::with_capacity(module.len() + json.len() + 32);
    let mut kept_from = 0;
    for range in &sections.ranges {
        out.extend_from_slice(&module[kept_from..range.start]);
        kept_from = range.end;
    }
    out.extend_from_slice(&module[kept_from..]);
    out.extend_from_slice(&custom_section(SECTION, json.as_bytes()));
    Ok(out)
}

/// Encodes a custom section: its id, the size of the rest, the name and
/// the payload. The same bytes in a module and in a component.
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let section = wasm_encoder::CustomSection {
        name: name.into(),
        data: payload.into(),
    };
    let mut out = vec![wasm_encoder::SectionId::Custom as u8];
    section.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
      "permissions": { "workspace": "read" }
    }"#;

    fn module() -> Vec<u8> {
        wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (memory (export "memory") 1)
                 (func (export "_start")))"#,
        )
        .unwrap()
    }

    #[test]
    fn parses_the_contract_example() {
        let meta = Metadata::from_json(EXAMPLE).unwrap();
        assert_eq!(meta.name, "render");
        let inputs = meta.inputs.as_ref().unwrap();
        assert!(inputs["template"].required);
        assert_eq!(inputs["out"].default_text().as_deref(), Some("index.html"));
        assert!(meta.outputs.contains_key("digest"));
        assert_eq!(meta.permissions.workspace, WorkspaceNeed::Read);
        assert!(!meta.rollback);
    }

    #[test]
    fn annotate_then_read_round_trips() {
        let plain = module();
        assert_eq!(read(&plain).unwrap(), None);
        let annotated = annotate(&plain, EXAMPLE).unwrap();
        assert_eq!(section(&annotated).unwrap(), Some(EXAMPLE.as_bytes()));
        assert_eq!(
            read(&annotated).unwrap(),
            Some(Metadata::from_json(EXAMPLE).unwrap())
        );
        // The module is still a valid module, and its code is untouched.
        wasmparser::Validator::new()
            .validate_all(&annotated)
            .unwrap();
        assert!(annotated.starts_with(&plain));
    }

    #[test]
    fn annotate_replaces_an_existing_section() {
        let once = annotate(&module(), EXAMPLE).unwrap();
        let twice = annotate(&once, r#"{"name": "other"}"#).unwrap();
        assert_eq!(read(&twice).unwrap().unwrap().name, "other");
        assert_eq!(find_sections(&twice).unwrap().ranges.len(), 1);
        let again = annotate(&twice, EXAMPLE).unwrap();
        assert_eq!(again, once);
    }

    #[test]
    fn long_sections_use_multi_byte_sizes() {
        let description = "x".repeat(70_000);
        let json = format!(r#"{{"name": "big", "description": "{description}"}}"#);
        let annotated = annotate(&module(), &json).unwrap();
        let meta = read(&annotated).unwrap().unwrap();
        assert_eq!(meta.description.unwrap().len(), 70_000);
        wasmparser::Validator::new()
            .validate_all(&annotated)
            .unwrap();
    }

    /// Found by the `metadata_wasm` fuzz target: a component whose nested
    /// module claims more bytes than the file holds made the reader slice
    /// past the end and panic, so a plugin file could crash `gantry`.
    #[test]
    fn a_nested_module_longer_than_the_file_is_refused() {
        // A component header, then a module section claiming 16 bytes of
        // which only a core module's 8-byte header follows.
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.extend_from_slice(&[0x01, 0x10]);
        component.extend_from_slice(b"\0asm\x01\0\0\0");
        let error = section(&component).unwrap_err();
        assert!(
            matches!(&error, MetadataError::NotAModule(why) if why.contains("past the end")),
            "{error}"
        );
        assert!(read(&component).is_err());
        assert!(annotate(&component, EXAMPLE).is_err());
    }

    #[test]
    fn duplicate_sections_are_refused() {
        let mut doubled = annotate(&module(), EXAMPLE).unwrap();
        doubled.extend_from_slice(&custom_section(SECTION, br#"{"name": "again"}"#));
        assert!(matches!(read(&doubled), Err(MetadataError::Duplicate(2))));
        // Annotating repairs it: both go, one comes back.
        let repaired = annotate(&doubled, EXAMPLE).unwrap();
        assert_eq!(read(&repaired).unwrap().unwrap().name, "render");
    }

    #[test]
    fn malformed_sections_are_refused_with_a_reason() {
        let with = |payload: &[u8]| {
            let mut bytes = module();
            bytes.extend_from_slice(&custom_section(SECTION, payload));
            read(&bytes).unwrap_err().to_string()
        };
        assert!(with(b"{not json").contains("not valid"));
        assert!(with(&[0xff, 0xfe]).contains("not UTF-8"));
        assert!(with(br#"{"description": "no name"}"#).contains("missing field `name`"));
        assert!(with(br#"{"name": " "}"#).contains("`name` is empty"));
        assert!(with(br#"{"name": "x", "rollback": "yes"}"#).contains("invalid type"));
        assert!(
            with(br#"{"name": "x", "inputs": {"a": {"required": true, "default": 1}}}"#)
                .contains("both required and defaulted")
        );
        assert!(
            with(br#"{"name": "x", "inputs": {"a": {"default": [1]}}}"#)
                .contains("must be a string, a number or a boolean")
        );
        assert!(
            with(br#"{"name": "x", "permissions": {"workspace": "all"}}"#)
                .contains("unknown variant")
        );
        assert!(
            with(br#"{"name": "x", "permissions": {"network": true}}"#).contains("invalid type")
        );
        assert!(
            with(br#"{"name": "x", "permissions": {"network": ["api.example.com"]}}"#)
                .contains("`permissions.network`: `api.example.com` is not a destination")
        );
        assert!(
            with(br#"{"name": "x", "permissions": {"sockets": true}}"#).contains("unknown field")
        );
        assert!(
            with(br#"{"name": "x", "permissions": {"dirs": [{"guest": "rel"}]}}"#)
                .contains("must be absolute")
        );
        // Other sections are no concern of ours.
        let mut other = module();
        other.extend_from_slice(&custom_section("producers", b"\xff"));
        assert_eq!(read(&other).unwrap(), None);
    }

    #[test]
    fn unknown_keys_outside_permissions_are_tolerated() {
        let meta = Metadata::from_json(
            r#"{"name": "x", "homepage": "later", "inputs": {"a": {"type": "int"}}}"#,
        )
        .unwrap();
        assert!(meta.inputs.unwrap().contains_key("a"));
    }

    #[test]
    fn annotate_refuses_bad_json_and_non_modules() {
        assert!(matches!(
            annotate(&module(), "{}"),
            Err(MetadataError::Content(_))
        ));
        assert!(matches!(
            annotate(b"not wasm", r#"{"name": "x"}"#),
            Err(MetadataError::NotAModule(_))
        ));
        let mut truncated = module();
        truncated.pop();
        assert!(matches!(
            annotate(&truncated, r#"{"name": "x"}"#),
            Err(MetadataError::NotAModule(_))
        ));
    }

    #[test]
    fn a_component_carries_metadata_at_its_top_or_in_its_core_module() {
        let component = wat::parse_str("(component (core module))").unwrap();
        assert_eq!(read(&component).unwrap(), None);
        let annotated = annotate(&component, r#"{"name": "top"}"#).unwrap();
        wasmparser::Validator::new()
            .validate_all(&annotated)
            .expect("an annotated component is valid");
        assert_eq!(read(&annotated).unwrap().unwrap().name, "top");

        // As Rust's wasm32-wasip2 leaves it: inside the embedded module.
        let inner = annotate(&wat::parse_str("(module)").unwrap(), r#"{"name": "inner"}"#).unwrap();
        let mut nested = wasm_encoder::Component::new();
        nested.section(&wasm_encoder::RawSection {
            id: wasm_encoder::ComponentSectionId::CoreModule as u8,
            data: &inner,
        });
        let nested = nested.finish();
        wasmparser::Validator::new()
            .validate_all(&nested)
            .expect("a component embedding a module is valid");
        assert_eq!(read(&nested).unwrap().unwrap().name, "inner");
        // A top-level section wins over the embedded one.
        let both = annotate(&nested, r#"{"name": "top"}"#).unwrap();
        assert_eq!(read(&both).unwrap().unwrap().name, "top");
    }

    #[test]
    fn defaults_become_input_text() {
        let meta = Metadata::from_json(
            r#"{"name": "x", "inputs": {"n": {"default": 1}, "b": {"default": false}, "s": {"default": "a b"}}}"#,
        )
        .unwrap();
        let inputs = meta.inputs.unwrap();
        assert_eq!(inputs["n"].default_text().as_deref(), Some("1"));
        assert_eq!(inputs["b"].default_text().as_deref(), Some("false"));
        assert_eq!(inputs["s"].default_text().as_deref(), Some("a b"));
    }
}
