//! Configuration variables: `--var NAME=VALUE` and `--vars-file PATH`
//! (dotenv, the format `--secrets-file` reads), read as `${{ vars.NAME }}`
//! the way GitHub's repository and organisation variables are.
//!
//! Variables are not secrets: they are never registered with the masker,
//! they are recorded in the run's journal in clear, and they may be used
//! anywhere an expression may (secrets only in a step's `with:`/`env:`).
//! A variable nobody set reads as an empty string, as on GitHub, so a
//! pipeline can give a default with `${{ vars.REGION || 'eu' }}`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::secrets::{GivenError, check_name, parse_dotenv};

/// The variables of one run, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds one `--var NAME=VALUE`; a later value of a name replaces an
    /// earlier one, so the command line can override a file.
    pub fn add_argument(&mut self, argument: &str) -> Result<(), GivenError> {
        let (name, value) = argument.split_once('=').ok_or_else(|| {
            format!("`--var {argument}` has no value: write `--var {argument}=VALUE`")
        })?;
        check(name).map_err(|e| format!("--var {name}: {e}"))?;
        self.values.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Adds every variable of a dotenv file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), GivenError> {
        let text = std::fs::read_to_string(path).map_err(|source| GivenError::Read {
            what: "vars",
            path: path.to_owned(),
            source,
        })?;
        let entries = parse_dotenv(&text).map_err(|e| format!("{}:{e}", path.display()))?;
        for (name, value) in entries {
            check(&name).map_err(|e| format!("{}: {e}", path.display()))?;
            self.values.insert(name, value);
        }
        Ok(())
    }
}

/// GitHub's rules for variable names: those of secrets, and no `GITHUB_`
/// prefix (that namespace is the runner's).
fn check(name: &str) -> Result<(), String> {
    check_name(name)?;
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(format!(
            "variable `{name}` starts with `GITHUB_`, which is reserved; rename it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_overrides_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.env");
        std::fs::write(&file, "REGION=eu\nexport TIER='gold plan'\n# note\n").unwrap();
        let mut vars = Vars::default();
        vars.add_file(&file).unwrap();
        vars.add_argument("REGION=us=west").unwrap();
        let all: Vec<_> = vars.iter().collect();
        assert_eq!(all, [("REGION", "us=west"), ("TIER", "gold plan")]);
    }

    #[test]
    fn bad_names_and_missing_values_are_refused() {
        let mut vars = Vars::default();
        assert!(
            vars.add_argument("REGION")
                .unwrap_err()
                .to_string()
                .contains("--var REGION=VALUE")
        );
        assert!(vars.add_argument("1X=a").is_err());
        assert!(
            vars.add_argument("github_token=a")
                .unwrap_err()
                .to_string()
                .contains("reserved")
        );
        assert!(vars.is_empty());
    }
}
