//! `gantry schema`: the JSON Schema of `gantry.yml`, generated from the
//! manifest's Rust types, for editors to validate and complete manifests.

use super::console::outln;
use clap::Args;

use super::Outcome;
use crate::exit::Exit;
use crate::manifest::model::Manifest;

/// Print the JSON Schema of the pipeline manifest.
#[derive(Debug, Args)]
pub struct SchemaCommand {}

impl SchemaCommand {
    pub fn execute(self) -> Outcome {
        outln!("{}", manifest_schema());
        Ok(Exit::Success)
    }
}

/// The schema as pretty JSON.
pub fn manifest_schema() -> String {
    let mut schema = schemars::schema_for!(Manifest);
    schema.insert("title".into(), "gantry pipeline manifest v1".into());
    serde_json::to_string_pretty(&schema).expect("a schema is plain JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy editors use (`docs/gantry.schema.json`) must match the types.
    #[test]
    fn the_published_schema_is_up_to_date() {
        let published = include_str!("../../../docs/gantry.schema.json");
        assert!(
            published.trim_end() == manifest_schema(),
            "docs/gantry.schema.json is out of date: run `cargo run -p gantry -- schema > docs/gantry.schema.json`"
        );
    }

    #[test]
    fn the_schema_names_every_top_level_key() {
        let schema: serde_json::Value = serde_json::from_str(&manifest_schema()).unwrap();
        let properties = schema["properties"].as_object().unwrap();
        for key in ["name", "env", "plugins", "jobs"] {
            assert!(properties.contains_key(key), "{key} missing");
        }
        assert_eq!(schema["additionalProperties"], false);
    }
}
