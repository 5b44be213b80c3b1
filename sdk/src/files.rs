//! The entry format of the `GANTRY_OUTPUT`, `GANTRY_ENV` and `GANTRY_STATE`
//! files.
//!
//! A single-line value is written `name=value`. A value with a line break
//! is written as a heredoc:
//!
//! ```text
//! name<<gantry_delimiter_5f0c2a9e41d7b836
//! first line
//! second line
//! gantry_delimiter_5f0c2a9e41d7b836
//! ```
//!
//! The delimiter is random and checked against the value, so no line of the
//! value can end the heredoc early (a value chosen by a user could otherwise
//! inject extra outputs). gantry reads lines ending in `\r\n` as ending in
//! `\n`, so a multi-line value comes back with `\n` line breaks.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::error::{Error, Result};

/// Formats one entry, ending with a newline, in the format the runner
/// reads (`gantry-abi`'s): a value with a line break becomes a heredoc with
/// a random delimiter that does not occur in it.
///
/// The name must be non-empty and free of `=`, `<<` and line breaks, or the
/// reader would split it differently.
///
/// ```
/// use gantry_sdk::files::format_entry;
/// assert_eq!(format_entry("tag", "1.2.3")?, "tag=1.2.3\n");
/// let entry = format_entry("notes", "a\nb")?;
/// assert!(entry.starts_with("notes<<gantry_delimiter_"));
/// assert!(format_entry("a=b", "x").is_err());
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn format_entry(name: &str, value: &str) -> Result<String> {
    gantry_abi::files::format_entry(name, value, random_delimiter)
        .map_err(|bad| Error::new(bad.to_string()))
}

/// A fresh delimiter: `gantry_delimiter_` and 16 random hex digits.
///
/// ```
/// let a = gantry_sdk::files::random_delimiter();
/// assert!(a.starts_with("gantry_delimiter_"));
/// assert_ne!(a, gantry_sdk::files::random_delimiter());
/// ```
pub fn random_delimiter() -> String {
    // Each `RandomState` is seeded from the system's random source (WASI's
    // `random_get` in a guest); hashing a counter as well keeps two calls
    // apart even if a platform reused seeds.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("gantry_delimiter_{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's reader.
    fn parse(content: &str) -> Vec<(String, String)> {
        gantry_abi::files::parse(content).unwrap()
    }

    #[test]
    fn values_round_trip() {
        let values = [
            "plain",
            "",
            "with=equals<<and heredoc marks",
            "two\nlines",
            "trailing newline\n",
            "\nleading newline",
            "EOF\nlooks like a delimiter\nEOF",
            "gantry_delimiter_0000000000000000\nx",
            "   spaces   ",
        ];
        let mut file = String::new();
        for (i, value) in values.iter().enumerate() {
            file.push_str(&format_entry(&format!("v{i}"), value).unwrap());
        }
        let got = parse(&file);
        assert_eq!(got.len(), values.len());
        for (i, (name, value)) in got.iter().enumerate() {
            assert_eq!(name, &format!("v{i}"));
            assert_eq!(value, values[i]);
        }
    }

    #[test]
    fn delimiter_never_occurs_in_the_value() {
        for _ in 0..100 {
            let value = format!("x\n{}\n", random_delimiter());
            let entry = format_entry("n", &value).unwrap();
            let delimiter = entry.lines().next().unwrap().strip_prefix("n<<").unwrap();
            assert!(!value.contains(delimiter));
        }
    }

    #[test]
    fn carriage_return_forces_a_heredoc() {
        let entry = format_entry("n", "a\rb").unwrap();
        assert!(entry.starts_with("n<<"));
    }

    #[test]
    fn bad_names() {
        for name in ["", "a=b", "a<<b", "a\nb", "a\rb"] {
            assert!(format_entry(name, "v").is_err(), "{name:?}");
        }
        assert_eq!(
            format_entry("a=b", "v").unwrap_err().message(),
            "the name `a=b` contains `=`"
        );
    }
}
