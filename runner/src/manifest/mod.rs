//! The pipeline manifest, `gantry.yml` (manifest v1): reading it, parsing it
//! into the serde [`model`], and turning every parse failure into a
//! [`ManifestError`] that names the file, line and column.
//!
//! This module owns the *syntax* of a manifest. What the values mean (plugin
//! aliases, step references, permissions) is checked when the manifest is
//! resolved into a plan, in [`crate::plan`].

mod error;
pub mod group;
pub mod model;

use std::path::{Path, PathBuf};

use error::yaml_lines;
pub use error::{ManifestError, ManifestErrors, did_you_mean};
pub use model::Manifest;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options};

/// The file `gantry run` looks for when given a folder or no path at all.
pub const DEFAULT_FILE_NAME: &str = "gantry.yml";

/// Manifests are small; a bigger file is a mistake or an attack.
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed manifest together with where it came from.
#[derive(Debug)]
pub struct LoadedManifest {
    /// The manifest file, as the user named it (for messages).
    pub path: PathBuf,
    /// The manifest's folder, canonical: the root every relative path is
    /// resolved against and the folder mounted at `/workspace`.
    pub root: PathBuf,
    /// The text, kept to quote source lines in later errors.
    pub source: String,
    pub manifest: Manifest,
}

/// Resolves the path a user gave (a file, a folder, or nothing) to the
/// manifest file.
pub fn locate(path: Option<&Path>) -> PathBuf {
    match path {
        None => PathBuf::from(DEFAULT_FILE_NAME),
        Some(path) if path.is_dir() => path.join(DEFAULT_FILE_NAME),
        Some(path) => path.to_owned(),
    }
}

/// Reads and parses the manifest at `path`.
pub fn load(path: &Path) -> Result<LoadedManifest, ManifestError> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        let error = ManifestError::whole_file(path, format!("cannot read the manifest: {e}"));
        if e.kind() == std::io::ErrorKind::NotFound {
            error.with_hint(format!(
                "run gantry in a folder with a `{DEFAULT_FILE_NAME}`, or pass the manifest's path"
            ))
        } else {
            error
        }
    })?;
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::whole_file(
            path,
            format!(
                "the manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                metadata.len()
            ),
        ));
    }
    // Only a regular file in the manifest's own folder is read: a link to
    // a file elsewhere (whose content an error could print), a FIFO or a
    // device is refused. The cap holds while reading, as a file may grow.
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let bytes = crate::fsutil::read_project_file(folder, path, MAX_MANIFEST_BYTES)
        .map_err(|e| ManifestError::whole_file(path, format!("cannot read the manifest: {e}")))?
        .ok_or_else(|| {
            ManifestError::whole_file(
                path,
                format!("the manifest is longer than the limit of {MAX_MANIFEST_BYTES} bytes"),
            )
        })?;
    let source = String::from_utf8(bytes)
        .map_err(|e| ManifestError::whole_file(path, format!("the manifest is not UTF-8: {e}")))?;
    let manifest = parse(path, &source)?;
    let root = folder.canonicalize().map_err(|e| {
        ManifestError::whole_file(path, format!("cannot resolve the manifest's folder: {e}"))
    })?;
    Ok(LoadedManifest {
        path: path.to_owned(),
        root,
        source,
        manifest,
    })
}

/// Parses manifest text; `path` is only used in error messages.
pub fn parse(path: &Path, source: &str) -> Result<Manifest, ManifestError> {
    if source
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        // serde-saphyr would say "unexpected end of input".
        return Err(
            ManifestError::at_position(path, source, None, "the manifest is empty").with_hint(
                "a manifest needs at least `name:`, `plugins:` and `jobs:`; `gantry new` writes one to start from",
            ),
        );
    }
    parse_document(path, source)
}

/// Parses YAML text (a manifest or a step group) into `T` with the
/// manifest's reading rules; `path` is only used in error messages.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(
    path: &Path,
    source: &str,
) -> Result<T, ManifestError> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.budget = Some(Budget::default());
    // YAML 1.2 booleans, as GitHub Actions reads workflows: `yes`, `on` and
    // `n` stay strings instead of surprising a step author.
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options(source, options).map_err(|e| {
        let error = parse_error(path, source, &e);
        indentation_tab(path, source, error.position).unwrap_or(error)
    })
}

/// The keys of a job that a plugin does not have: met under `plugins:`,
/// they mean the `jobs:` line above the job was lost.
const JOB_ONLY_KEYS: [&str; 8] = [
    "steps",
    "needs",
    "strategy",
    "outputs",
    "if",
    "env",
    "timeout-minutes",
    "continue-on-error",
];

/// When parsing failed, a tab in the indentation of a line at or before
/// the one the parser stopped on (or the line after it) is the cause: YAML
/// forbids tabs there, and the parser reports the trouble elsewhere (often
/// on the line before). Points at the tab itself.
fn indentation_tab(
    path: &Path,
    source: &str,
    reported: Option<(u64, u64)>,
) -> Option<ManifestError> {
    let last_line = reported.map_or(usize::MAX, |(line, _)| line as usize + 1);
    let mut in_block_scalar: Option<usize> = None;
    for (index, line) in yaml_lines(source).enumerate().take(last_line) {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let leading = &line[..indent];
        let content = line.trim();
        // Inside a `|` or `>` block, a tab after the block's indentation
        // is text, not indentation.
        if let Some(block_indent) = in_block_scalar {
            let spaces = leading.len() - leading.trim_start_matches(' ').len();
            if content.is_empty() || spaces > block_indent {
                continue;
            }
            in_block_scalar = None;
        }
        if let Some(column) = leading.find('\t') {
            return Some(
                ManifestError::at_position(
                    path,
                    source,
                    Some((index as u64 + 1, column as u64 + 1)),
                    "YAML does not allow tabs for indentation",
                )
                .with_hint("indent with spaces"),
            );
        }
        let opens_block = content
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
            .ends_with(['|', '>']);
        if opens_block && (content.contains(": ") || content.starts_with("- ")) {
            in_block_scalar = Some(leading.len());
        }
    }
    None
}

/// Rewords a serde-saphyr error for a person, with a "did you mean" for
/// misspelt keys.
fn parse_error(path: &Path, source: &str, error: &serde_saphyr::Error) -> ManifestError {
    let location = error.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
    // We show the source line ourselves; look through the snippet wrapper.
    let mut error = error;
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    match error {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let error = ManifestError::at(path, source, location, format!("unknown key `{field}`"));
            let in_a_plugin = expected.contains(&"source") && expected.contains(&"sha256");
            if in_a_plugin && JOB_ONLY_KEYS.contains(&field.as_str()) {
                return ManifestError::at(
                    path,
                    source,
                    location,
                    format!("unknown key `{field}` in a plugin: `{field}` is a key of a job"),
                )
                .with_hint("this job sits under `plugins:`; the `jobs:` line above it is probably missing");
            }
            match did_you_mean(field, expected.iter().copied()) {
                Some(suggestion) => error.with_hint(format!("did you mean `{suggestion}`?")),
                None => error.with_hint(format!(
                    "the keys allowed here are: {}",
                    expected.join(", ")
                )),
            }
        }
        serde_saphyr::Error::SerdeMissingField { field, .. } => ManifestError::at(
            path,
            source,
            location,
            format!("missing required key `{field}`"),
        ),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let error =
                ManifestError::at(path, source, location, format!("unknown value `{variant}`"));
            error.with_hint(format!("expected one of: {}", expected.join(", ")))
        }
        serde_saphyr::Error::Budget { breach, .. } => {
            ManifestError::at(path, source, location, over_budget(breach)).with_hint(
                "gantry refuses a manifest it could not read in bounded time and memory; write the values out instead",
            )
        }
        other => ManifestError::at(path, source, location, without_position(&other.to_string())),
    }
}

/// What a breached parser budget means, in words.
fn over_budget(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Aliases { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. }
        | B::MergeKeys { .. } => {
            "the manifest's aliases (`*name`) expand to more than gantry accepts".into()
        }
        B::Anchors { anchors } => format!("the manifest defines too many anchors ({anchors})"),
        B::Depth { depth } => format!("the manifest is nested too deeply ({depth} levels)"),
        B::Nodes { nodes } => format!("the manifest holds too many values ({nodes})"),
        B::Events { .. } => "the manifest holds too many values".into(),
        B::ScalarBytes { .. } | B::InputBytes { .. } | B::CommentBytes { .. } => {
            "the manifest is too large".into()
        }
        _ => "the manifest is too large or too complex to read safely".into(),
    }
}

/// serde-saphyr's text carries the position, which our message shows in
/// front already: drop a leading `line N column M: ` and a trailing
/// ` at line N column M`.
fn without_position(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or_default();
    let text = first_line.trim_start_matches("error: ");
    let text = match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => text,
    };
    let text = text.split(" at line ").next().unwrap_or(text);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(source: &str) -> ManifestError {
        parse(Path::new("gantry.yml"), source).expect_err("the manifest should be rejected")
    }

    const MINIMAL: &str = "name: demo\nplugins:\n  hello:\n    source: hello.wasm\njobs:\n  build:\n    steps:\n      - uses: hello\n";

    /// Found by the `manifest` fuzz target: YAML ends a line at a lone
    /// `\r` too, so the parser's line numbers count it; the quoted source
    /// line was taken from `str::lines`, which does not, and named another
    /// line (or none, past the last `\n`).
    #[test]
    fn a_lone_carriage_return_ends_a_line_for_the_quoted_source_too() {
        let error = error_of("name: demo\rplugins:\r  hello: [\n");
        let (line, _) = error.position.expect("a position");
        assert_eq!(line, 3, "{error}");
        assert_eq!(error.source_line.as_deref(), Some("  hello: ["), "{error}");
        assert_eq!(
            error_lines("a\r\nb\rc\n\nd"),
            ["a", "b", "c", "", "d"],
            "CRLF is one break"
        );
    }

    fn error_lines(source: &str) -> Vec<&str> {
        yaml_lines(source).collect()
    }

    #[test]
    fn an_empty_manifest_says_so() {
        for source in ["", "\n  \n", "# only a comment\n"] {
            let error = error_of(source);
            assert_eq!(error.message, "the manifest is empty", "{source:?}");
            assert!(error.hint.unwrap().contains("gantry new"));
        }
    }

    #[test]
    fn a_tab_in_the_indentation_is_pointed_at() {
        let source = MINIMAL.replace("    steps:\n", "\tsteps:\n");
        let error = error_of(&source);
        assert_eq!(error.message, "YAML does not allow tabs for indentation");
        assert_eq!(error.position, Some((7, 1)));
        let source = MINIMAL.replace("      - uses: hello\n", "    \t  - uses: hello\n");
        let error = error_of(&source);
        assert_eq!(error.message, "YAML does not allow tabs for indentation");
        assert_eq!(error.position, Some((8, 5)));
        // A tab inside a block scalar's text is text.
        let source = format!(
            "{MINIMAL}        with:\n          script: |\n            \tindented\n          x: [\n"
        );
        assert_ne!(
            error_of(&source).message,
            "YAML does not allow tabs for indentation"
        );
    }

    #[test]
    fn a_missing_jobs_line_is_named() {
        let source = MINIMAL.replace("jobs:\n", "");
        let error = error_of(&source);
        assert_eq!(
            error.message,
            "unknown key `steps` in a plugin: `steps` is a key of a job"
        );
        assert!(
            error
                .hint
                .unwrap()
                .contains("`jobs:` line above it is probably missing")
        );
    }

    #[test]
    fn parses_a_minimal_manifest() {
        let manifest = parse(Path::new("gantry.yml"), MINIMAL).unwrap();
        assert_eq!(manifest.name.value, "demo");
        assert_eq!(manifest.jobs.len(), 1);
        let step = &manifest.jobs[0].steps[0];
        assert_eq!(step.uses.value, "hello");
        assert_eq!(step.uses.referenced.line(), 8);
    }

    #[test]
    fn unknown_key_names_line_column_and_suggestion() {
        let source = MINIMAL.replace(
            "      - uses: hello",
            "      - uses: hello\n        timeout-minute: 3",
        );
        let error = error_of(&source);
        assert_eq!(error.message, "unknown key `timeout-minute`");
        assert_eq!(error.position.map(|p| p.0), Some(9));
        assert_eq!(
            error.hint.as_deref(),
            Some("did you mean `timeout-minutes`?")
        );
    }

    #[test]
    fn broken_yaml_is_located() {
        let error = error_of("name: demo\njobs: [unclosed\n");
        assert!(error.position.is_some(), "{error}");
        assert!(!error.message.contains("line "), "{error}");
    }

    #[test]
    fn positions_are_not_repeated_in_messages() {
        assert_eq!(without_position("line 3 column 9: bad thing"), "bad thing");
        assert_eq!(
            without_position("bad thing at line 3 column 9"),
            "bad thing"
        );
        assert_eq!(without_position("plain"), "plain");
    }

    #[test]
    fn a_device_is_never_read_as_a_manifest() {
        let error = load(Path::new("/dev/zero")).expect_err("a device");
        assert!(
            error.message.contains("not a regular file"),
            "{}",
            error.message
        );
    }

    #[test]
    fn an_alias_bomb_breaks_the_budget() {
        let mut axes = String::from("        a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let aliases = vec![format!("*a{}", level - 1); 8].join(", ");
            axes.push_str(&format!("        a{level}: &a{level} [{aliases}]\n"));
        }
        let source = MINIMAL.replace(
            "  build:\n",
            &format!("  build:\n    strategy:\n      matrix:\n{axes}"),
        );
        let error = error_of(&source);
        assert!(error.message.contains("holds too many values"), "{error}");
        assert!(error.position.is_some(), "{error}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let source = MINIMAL.replace("jobs:\n", "jobs:\n  build:\n    steps: []\n");
        let error = error_of(&source);
        assert!(
            error.message.contains("build") || error.message.contains("duplicate"),
            "{error}"
        );
    }

    #[test]
    fn null_input_values_are_rejected_with_advice() {
        let source = MINIMAL.replace(
            "      - uses: hello",
            "      - uses: hello\n        with:\n          name:",
        );
        let error = error_of(&source);
        assert!(
            error.message.contains("write '' for an empty string"),
            "{error}"
        );
    }
}
