//! The manifest loader, from text: parsing (serde-saphyr with gantry's
//! options and budget), then resolving into a plan, then printing every
//! error the way the CLI does (the `file:line:column` caret rendering).
//!
//! Properties: nothing panics; an error's quoted source line is the line
//! its position names (counting line breaks as YAML does), and its
//! position lies inside the text.

#![no_main]

use std::path::Path;

use gantry::manifest::{self, LoadedManifest, ManifestError};
use libfuzzer_sys::fuzz_target;

/// The lines as YAML counts them: `\r\n`, `\r` and `\n` each end one.
/// Said another way than the library says it, to check it.
fn yaml_lines(source: &str) -> Vec<String> {
    let unix = source.replace("\r\n", "\n").replace('\r', "\n");
    unix.lines().map(str::to_owned).collect()
}

fn check(error: &ManifestError, source: &str) {
    if let Some((line, _)) = error.position {
        let all = yaml_lines(source);
        let lines = all.len().max(1) as u64;
        // A parser may point one past the last line (end of input).
        assert!(
            (1..=lines + 1).contains(&line),
            "line {line} of a {lines}-line manifest: {error:?}"
        );
        if let Some(quoted) = &error.source_line {
            assert_eq!(Some(quoted), all.get(line as usize - 1));
        }
    }
    // The rendering a person sees: must not panic on any text or column.
    let _ = error.to_string();
}

fuzz_target!(|source: &str| {
    let path = Path::new("gantry.yml");
    match manifest::parse(path, source) {
        Err(error) => check(&error, source),
        Ok(parsed) => {
            // A folder that does not exist: resolving must not depend on
            // what is on this machine.
            let loaded = LoadedManifest {
                path: path.to_owned(),
                root: Path::new("/nonexistent/gantry-fuzz").to_owned(),
                source: source.to_owned(),
                manifest: parsed,
            };
            if let Err(errors) = gantry::plan::resolve(&loaded) {
                for error in &errors.0 {
                    check(error, source);
                }
                let _ = errors.to_string();
            }
        }
    }
});
