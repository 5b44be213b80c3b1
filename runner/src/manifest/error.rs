//! Manifest errors that point at the file, line and column of the problem.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// One problem found in a manifest, with where it is and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(u64, u64)>,
    pub message: String,
    pub hint: Option<String>,
    /// The offending source line, shown under the message with a caret.
    pub source_line: Option<String>,
}

impl ManifestError {
    /// An error about the file as a whole (it cannot be read, say).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ManifestError {
            file: file.to_owned(),
            position: None,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    /// An error at `location` in `source` (the manifest's text).
    pub fn at(file: &Path, source: &str, location: Location, message: impl Into<String>) -> Self {
        let position = (location.line() > 0).then(|| (location.line(), location.column()));
        Self::at_position(file, source, position, message)
    }

    /// An error at a 1-based `(line, column)` in `source`.
    pub fn at_position(
        file: &Path,
        source: &str,
        position: Option<(u64, u64)>,
        message: impl Into<String>,
    ) -> Self {
        let source_line = position.and_then(|(line, _)| {
            let index = usize::try_from(line).ok()?.checked_sub(1)?;
            yaml_lines(source).nth(index).map(str::to_owned)
        });
        ManifestError {
            file: file.to_owned(),
            position,
            message: message.into(),
            hint: None,
            source_line,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Moves the reported column right by `by` characters (for a problem
    /// found inside a scalar, such as an expression).
    pub fn shifted(mut self, by: usize) -> Self {
        if let Some((_, column)) = &mut self.position {
            *column += by as u64;
        }
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some(text), Some((line, column))) = (&self.source_line, self.position) {
            let gutter = line.to_string().len();
            let caret_pad: String = text
                .chars()
                .take(column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{:gutter$} |\n{line} | {text}\n{:gutter$} | {caret_pad}^",
                "", ""
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// The lines of a manifest as YAML counts them: `\r\n`, a lone `\r` and
/// `\n` each end a line (YAML 1.2's line breaks), so a line number the
/// parser reports names the same line here. `str::lines` keeps a lone `\r`
/// inside a line, and would quote the wrong line, or none, under the
/// message.
pub(crate) fn yaml_lines(source: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(source);
    std::iter::from_fn(move || {
        let text = rest.filter(|text| !text.is_empty())?;
        let Some(at) = text.find(['\r', '\n']) else {
            rest = None;
            return Some(text);
        };
        let width = if text[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = Some(&text[at + width..]);
        Some(&text[..at])
    })
}

/// Several manifest errors, reported together so a person fixes them in one go.
#[derive(Debug)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

impl From<ManifestError> for ManifestErrors {
    fn from(error: ManifestError) -> Self {
        ManifestErrors(vec![error])
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be a
/// plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edits (insert, delete, substitute, or swap two neighbours) between `a`
/// and `b`, ignoring ASCII case: a swapped pair (`evn`) is one slip, as a
/// person types it.
fn edit_distance(a: &str, b: &str) -> usize {
    // strsim's optimal string alignment distance is exactly that.
    strsim::osa_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["timeout-minutes", "permissions", "with", "env"];
        assert_eq!(
            did_you_mean("timeout-minute", keys),
            Some("timeout-minutes")
        );
        assert_eq!(did_you_mean("permisions", keys), Some("permissions"));
        assert_eq!(did_you_mean("whith", keys), Some("with"));
        assert_eq!(did_you_mean("banana", keys), None);
        // A swapped pair is one slip, even in a short name.
        assert_eq!(did_you_mean("evn", keys), Some("env"));
        assert_eq!(did_you_mean("wiht", keys), Some("with"));
        assert_eq!(did_you_mean("xyz", keys), None);
    }

    #[test]
    fn renders_position_caret_and_hint() {
        let source = "name: x\njobs:\n  build:\n    stepz: []\n";
        let plain = ManifestError::at(Path::new("g.yml"), source, Location::UNKNOWN, "boom");
        assert_eq!(plain.to_string(), "g.yml: boom");
        let pointed =
            ManifestError::at_position(Path::new("g.yml"), source, Some((4, 5)), "bad key")
                .with_hint("did you mean `steps`?");
        assert_eq!(
            pointed.to_string(),
            "g.yml:4:5: bad key\n  |\n4 |     stepz: []\n  |     ^\n  hint: did you mean `steps`?"
        );
    }
}
