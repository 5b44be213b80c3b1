//! Secrets given to a run on the command line: `--secret NAME=VALUE`,
//! `--secret NAME` (the value read from the host variable of that name) and
//! `--secrets-file PATH` in dotenv format.
//!
//! A secret is only ever handed to a step through `${{ secrets.NAME }}` in
//! its `with:` or `env:` (the plan refuses it anywhere else), and every value
//! is registered with the run's masker before the first step starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::abi::Masker;

/// The secrets of one run, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl Secrets {
    pub fn insert(&mut self, name: String, value: String) {
        self.values.insert(name, value);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A masker that hides every secret value.
    pub fn masker(&self) -> Masker {
        let mut masker = Masker::default();
        for value in self.values.values() {
            masker.add(value);
        }
        masker
    }

    /// Adds one `--secret` argument; `host_env` looks up `NAME` alone.
    pub fn add_argument(
        &mut self,
        argument: &str,
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), GivenError> {
        let (name, value) = match argument.split_once('=') {
            Some((name, value)) => (name, value.to_owned()),
            None => {
                let value = host_env(argument).ok_or_else(|| {
                    format!(
                        "--secret {argument}: the host has no environment variable `{argument}`; \
                         set it, or write --secret {argument}=VALUE"
                    )
                })?;
                (argument, value)
            }
        };
        check_name(name).map_err(|e| format!("--secret {name}: {e}"))?;
        check_value(name, &value).map_err(|e| format!("--secret {name}: {e}"))?;
        self.insert(name.to_owned(), value);
        Ok(())
    }

    /// Adds every secret of a dotenv file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), GivenError> {
        let text = std::fs::read_to_string(path).map_err(|source| GivenError::Read {
            what: "secrets",
            path: path.to_owned(),
            source,
        })?;
        for (name, value) in parse_dotenv(&text).map_err(|e| format!("{}:{e}", path.display()))? {
            check_value(&name, &value).map_err(|e| format!("{}: {name}: {e}", path.display()))?;
            self.insert(name, value);
        }
        Ok(())
    }
}

/// Why a `--secret`/`--var` argument or a secrets or vars file was refused.
#[derive(Debug, thiserror::Error)]
pub enum GivenError {
    /// The file could not be read (`what`: `secrets` or `vars`).
    #[error("cannot read the {what} file `{}`", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What was read is not valid; the message names where and why.
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for GivenError {
    fn from(message: String) -> GivenError {
        GivenError::Invalid(message)
    }
}

/// The shortest secret gantry accepts. Masking replaces every occurrence of
/// a secret in every log: a one- to three-character value (`a`, `42`, `yes`)
/// would turn a log into asterisks while hiding nothing worth hiding, so it
/// is refused rather than masked badly or passed on unmasked.
pub const MIN_SECRET_CHARS: usize = crate::abi::mask::MIN_REGISTERED_CHARS;

/// Refuses a value too short to be masked usefully, blanks around it not
/// counted; an empty value (a CI secret that is not set, say) is accepted,
/// as there is nothing to hide.
fn check_value(name: &str, value: &str) -> Result<(), String> {
    let length = value.trim().chars().count();
    if length == 0 || length >= MIN_SECRET_CHARS {
        return Ok(());
    }
    Err(format!(
        "the value of secret `{name}` is {length} character{} long; secrets must have at least \
         {MIN_SECRET_CHARS}, since each is masked wherever it appears in the logs \
         (pass a value this short with `with:` or `env:`, not as a secret)",
        if length == 1 { "" } else { "s" }
    ))
}

/// Secret and variable names: letters, digits and `_`, not starting with
/// a digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (letters, digits and `_`, not starting with a digit)"
        ))
    }
}

/// Parses dotenv text: `NAME=value` lines, optionally prefixed with
/// `export`, `#` comments and blank lines; values may be 'single-quoted'
/// (taken as they are, across lines) or "double-quoted" (with `\n`, `\t`,
/// `\"` and `\\` escapes, across lines). Errors start with the line number.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, rest)) = line.split_once('=') else {
            return Err(format!("{number}: expected NAME=VALUE"));
        };
        let name = name.trim();
        check_name(name).map_err(|e| format!("{number}: {e}"))?;
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let mut body = rest[1..].to_owned();
                let close = loop {
                    if let Some(at) = closing_quote(&body, quote) {
                        break at;
                    }
                    match lines.next() {
                        Some((_, next)) => {
                            body.push('\n');
                            body.push_str(next);
                        }
                        None => return Err(format!("{number}: the quoted value is never closed")),
                    }
                };
                let trailing = body[close + 1..].trim();
                if !trailing.is_empty() && !trailing.starts_with('#') {
                    return Err(format!("{number}: unexpected text after the closing quote"));
                }
                let raw = &body[..close];
                if quote == '"' {
                    unescape(raw)
                } else {
                    raw.to_owned()
                }
            }
            _ => {
                // An unquoted value ends at ` #` (a comment) or the line's end.
                let value = rest.split(" #").next().unwrap_or_default();
                value.trim_end().to_owned()
            }
        };
        entries.push((name.to_owned(), value));
    }
    Ok(entries)
}

/// The byte index of the quote that closes `body`, skipping `\"` escapes in
/// double-quoted values.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in body.char_indices() {
        if quote == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == quote && !escaped {
            return Some(at);
        }
        escaped = false;
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines() {
        let text = "# deploy secrets\n\nTOKEN=abc123\nexport API_KEY = 'raw \\n kept' \nPLAIN=spaced value # note\n\
                    QUOTED=\"line one\\nline \\\"two\\\"\"\nMULTI='first\nsecond'\nEMPTY=\n";
        let entries = parse_dotenv(text).unwrap();
        let get = |name: &str| {
            entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("TOKEN"), Some("abc123"));
        assert_eq!(get("PLAIN"), Some("spaced value"));
        assert_eq!(get("QUOTED"), Some("line one\nline \"two\""));
        assert_eq!(get("MULTI"), Some("first\nsecond"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("API_KEY"), Some("raw \\n kept"));
    }

    #[test]
    fn dotenv_errors_name_the_line() {
        assert_eq!(
            parse_dotenv("A=1\nnonsense\n").unwrap_err(),
            "2: expected NAME=VALUE"
        );
        assert!(
            parse_dotenv("A=\"open\n")
                .unwrap_err()
                .starts_with("1: the quoted value")
        );
        assert!(
            parse_dotenv("1A=x")
                .unwrap_err()
                .starts_with("1: `1A` is not a valid")
        );
    }

    #[test]
    fn an_unreadable_file_keeps_its_cause() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("absent.env");
        let error = Secrets::default().add_file(&missing).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot read the secrets file `{}`", missing.display())
        );
        let cause = std::error::Error::source(&error).expect("the io error");
        assert_eq!(
            cause
                .downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn secret_arguments() {
        let mut secrets = Secrets::default();
        let host = |name: &str| (name == "FROM_HOST").then(|| "host-value".to_owned());
        secrets.add_argument("TOKEN=a=b=c", host).unwrap();
        secrets.add_argument("FROM_HOST", host).unwrap();
        assert!(
            secrets
                .add_argument("MISSING", host)
                .unwrap_err()
                .to_string()
                .contains("no environment variable")
        );
        assert!(secrets.add_argument("bad-name=x", host).is_err());
        let short = secrets
            .add_argument("PIN=abc", host)
            .unwrap_err()
            .to_string();
        assert!(short.contains("`PIN` is 3 characters long"), "{short}");
        assert!(short.contains("at least 4"), "{short}");
        secrets.add_argument("EMPTY=", host).unwrap();
        secrets.add_argument("FOUR=abcd", host).unwrap();
        secrets.values.remove("EMPTY");
        secrets.values.remove("FOUR");
        let all: Vec<_> = secrets.iter().collect();
        assert_eq!(all, vec![("FROM_HOST", "host-value"), ("TOKEN", "a=b=c")]);
    }
}
