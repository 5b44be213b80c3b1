//! The step-file format shared by `GANTRY_OUTPUT`, `GANTRY_ENV` and
//! `GANTRY_STATE` (GitHub Actions' `$GITHUB_OUTPUT` family): what a guest
//! writes ([`format_entry`]) and what the host reads ([`parse`]).
//!
//! Each entry is either a single line `name=value` or a heredoc:
//!
//! ```text
//! name<<DELIM
//! first line
//! second line
//! DELIM
//! ```
//!
//! A reader takes `\r\n` as a line ending, so a value keeps its line
//! breaks as `\n`, and a value whose line ends in `\r` loses that `\r`.

use std::fmt;

/// Why a step file could not be read. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCommandError {
    /// A non-blank line that is neither `name=value` nor `name<<DELIM`.
    MissingSeparator { line: usize },
    /// Nothing before the `=` or `<<`.
    EmptyName { line: usize },
    /// `name<<` with nothing after the `<<`.
    EmptyDelimiter { line: usize },
    /// The file ended before a line consisting of exactly the delimiter.
    UnclosedHeredoc {
        /// The delimiter that was expected.
        delimiter: String,
        /// The line of the `name<<DELIM` opener.
        line: usize,
    },
}

impl fmt::Display for FileCommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileCommandError::MissingSeparator { line } => {
                write!(f, "line {line}: expected `name=value` or `name<<DELIMITER`")
            }
            FileCommandError::EmptyName { line } => {
                write!(f, "line {line}: the name before `=` or `<<` is empty")
            }
            FileCommandError::EmptyDelimiter { line } => {
                write!(f, "line {line}: the heredoc delimiter after `<<` is empty")
            }
            FileCommandError::UnclosedHeredoc { delimiter, line } => {
                write!(
                    f,
                    "heredoc `{delimiter}` opened on line {line} is never closed"
                )
            }
        }
    }
}

impl std::error::Error for FileCommandError {}

/// Parses a step file into `(name, value)` pairs in file order. A name may
/// repeat; the caller decides (later wins for a map).
///
/// Both `\n` and `\r\n` line endings are accepted and blank lines are
/// skipped. Names are kept exactly as written; only an empty one is
/// refused. Whichever separator comes first decides the form, so `a=b<<c`
/// is a plain value and `a<<X=Y` a heredoc with delimiter `X=Y`.
pub fn parse(content: &str) -> Result<Vec<(String, String)>, FileCommandError> {
    // Some Windows tools start files with a byte-order mark; it is never part of a name.
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut lines = content
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .zip(1usize..);
    let mut pairs = Vec::new();

    while let Some((text, number)) = lines.next() {
        if text.trim().is_empty() {
            continue;
        }
        let eq = text.find('=');
        let heredoc = text.find("<<").filter(|&h| eq.is_none_or(|e| h < e));

        if let Some(at) = heredoc {
            let name = &text[..at];
            let delimiter = &text[at + 2..];
            if name.is_empty() {
                return Err(FileCommandError::EmptyName { line: number });
            }
            if delimiter.is_empty() {
                return Err(FileCommandError::EmptyDelimiter { line: number });
            }
            let mut body: Vec<&str> = Vec::new();
            let mut closed = false;
            for (inner, _) in lines.by_ref() {
                if inner == delimiter {
                    closed = true;
                    break;
                }
                body.push(inner);
            }
            if !closed {
                return Err(FileCommandError::UnclosedHeredoc {
                    delimiter: delimiter.to_owned(),
                    line: number,
                });
            }
            pairs.push((name.to_owned(), body.join("\n")));
        } else if let Some(at) = eq {
            let name = &text[..at];
            if name.is_empty() {
                return Err(FileCommandError::EmptyName { line: number });
            }
            pairs.push((name.to_owned(), text[at + 1..].to_owned()));
        } else {
            return Err(FileCommandError::MissingSeparator { line: number });
        }
    }
    Ok(pairs)
}

/// Why a name cannot be written as an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName {
    pub name: String,
    /// What is wrong with it: `is empty`, `contains \`=\``, …
    pub problem: &'static str,
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the name `{}` {}",
            self.name.escape_debug(),
            self.problem
        )
    }
}

impl std::error::Error for BadName {}

/// Formats one entry, ending with a newline. A value with a line break
/// becomes a heredoc; `delimiter` gives candidates for its delimiter (a
/// guest passes random ones: a value chosen by a user must not be able to
/// guess it and end the heredoc early), the first not found in the value
/// is used.
///
/// The name must be non-empty, free of `=`, `<<` and line breaks, and
/// neither end with `<` nor start with a byte-order mark, or [`parse`]
/// would read it differently.
///
/// ```
/// use gantry_abi::files::{format_entry, parse};
/// let mut n = 0;
/// let mut next = || { n += 1; format!("EOF{n}") };
/// assert_eq!(format_entry("tag", "1.2.3", &mut next).unwrap(), "tag=1.2.3\n");
/// let entry = format_entry("notes", "a\nEOF1", &mut next).unwrap();
/// assert_eq!(entry, "notes<<EOF2\na\nEOF1\nEOF2\n");
/// assert_eq!(parse(&entry).unwrap(), [("notes".to_owned(), "a\nEOF1".to_owned())]);
/// ```
pub fn format_entry(
    name: &str,
    value: &str,
    mut delimiter: impl FnMut() -> String,
) -> Result<String, BadName> {
    check_name(name)?;
    if !value.contains(['\n', '\r']) {
        return Ok(format!("{name}={value}\n"));
    }
    let delimiter = loop {
        let candidate = delimiter();
        // Never empty, and never a line of the value (nor part of one, to
        // be safe with any reader).
        if !candidate.is_empty() && !candidate.contains(['\n', '\r']) && !value.contains(&candidate)
        {
            break candidate;
        }
    };
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

fn check_name(name: &str) -> Result<(), BadName> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains('=') {
        "contains `=`"
    } else if name.contains("<<") {
        "contains `<<`"
    } else if name.contains(['\n', '\r']) {
        "contains a line break"
    } else if name.ends_with('<') {
        // `name<` then `<<DELIM` reads as `name` and the delimiter `<DELIM`.
        "ends with `<`"
    } else if name.starts_with('\u{feff}') {
        // A reader drops a byte-order mark starting the file.
        "starts with a byte-order mark"
    } else {
        return Ok(());
    };
    Err(BadName {
        name: name.to_owned(),
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(content: &str) -> Vec<(String, String)> {
        parse(content).expect("should parse")
    }

    fn err(content: &str) -> FileCommandError {
        parse(content).expect_err("should fail")
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    fn counter() -> impl FnMut() -> String {
        let mut n = 0u32;
        move || {
            n += 1;
            format!("gantry_delimiter_{n:016x}")
        }
    }

    #[test]
    fn plain_values_in_order_with_blank_lines_skipped() {
        let got = ok("a=1\n\n  \nUrl=x=y==z\nempty=\nb=2\na=3\n");
        let want = [
            pair("a", "1"),
            pair("Url", "x=y==z"),
            pair("empty", ""),
            pair("b", "2"),
            pair("a", "3"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn heredocs_single_multi_and_empty() {
        let got = ok("one<<EOF\nhello\nEOF\nmulti<<END\nl1\n\nl3 = x\nEND\nnone<<X\nX\n");
        assert_eq!(
            got,
            [
                pair("one", "hello"),
                pair("multi", "l1\n\nl3 = x"),
                pair("none", "")
            ]
        );
        // The delimiter must be the whole line.
        assert_eq!(
            ok("v<<EOF\nEOF \n EOF\nEOFX\nEOF"),
            [pair("v", "EOF \n EOF\nEOFX")]
        );
    }

    #[test]
    fn the_first_separator_decides_the_form() {
        assert_eq!(ok("a=b<<c"), [pair("a", "b<<c")]);
        assert_eq!(ok("a<<X=Y\nv\nX=Y"), [pair("a", "v")]);
    }

    #[test]
    fn crlf_line_endings_and_a_byte_order_mark() {
        let got = ok("\u{feff}a=1\r\nh<<EOF\r\nx\r\ny\r\nEOF\r\nb=2\r\n");
        assert_eq!(got, [pair("a", "1"), pair("h", "x\ny"), pair("b", "2")]);
    }

    #[test]
    fn mistakes_name_their_line() {
        use FileCommandError::*;
        let unclosed = err("a=1\n\nbody<<EOF\nx\nEO\n");
        assert_eq!(
            unclosed,
            UnclosedHeredoc {
                delimiter: "EOF".into(),
                line: 3
            }
        );
        assert_eq!(
            unclosed.to_string(),
            "heredoc `EOF` opened on line 3 is never closed"
        );
        assert_eq!(err("a=1\nb=2\njust text\n"), MissingSeparator { line: 3 });
        assert_eq!(err("a=1\n=value"), EmptyName { line: 2 });
        assert_eq!(err("<<EOF\nx\nEOF"), EmptyName { line: 1 });
        assert_eq!(err("x=1\r\nname<<\r\n"), EmptyDelimiter { line: 2 });
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for name in ["", "a=b", "a<<b", "a\nb", "a\rb"] {
            assert!(format_entry(name, "v", counter()).is_err(), "{name:?}");
        }
        assert_eq!(
            format_entry("a=b", "v", counter()).unwrap_err().to_string(),
            "the name `a=b` contains `=`"
        );
    }

    /// Found by the `step_file` fuzz target: `<` accepted as a name was
    /// written as the heredoc `<<<EOF`, which reads as an empty name; a
    /// name `a<` would read as `a`. A leading byte-order mark would be
    /// dropped from the first entry's name the same way.
    #[test]
    fn names_a_reader_would_split_differently_are_refused() {
        for name in ["<", "a<", "\u{feff}a"] {
            let error = format_entry(name, "two\nlines", counter()).unwrap_err();
            assert_eq!(error.name, name);
            assert!(
                format_entry(name, "one line", counter()).is_err(),
                "{name:?}"
            );
        }
        // `<` inside a name, not at its end, reads back as written.
        let entry = format_entry("a<b", "x\ny", counter()).unwrap();
        assert_eq!(parse(&entry).unwrap(), [pair("a<b", "x\ny")]);
    }

    #[test]
    fn a_delimiter_found_in_the_value_is_never_used() {
        let value = "x\ngantry_delimiter_0000000000000001\ny";
        let entry = format_entry("n", value, counter()).unwrap();
        assert!(entry.starts_with("n<<gantry_delimiter_0000000000000002\n"));
        assert_eq!(parse(&entry).unwrap(), [pair("n", value)]);
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_.-]{0,12}"
    }

    proptest! {
        // What a guest writes, the host reads back: names exactly, values
        // exactly but for a `\r` ending a line, which the reader takes as
        // part of the line ending.
        #[test]
        fn entries_round_trip(entries in prop::collection::vec((name(), any::<String>()), 0..8)) {
            let mut file = String::new();
            for (name, value) in &entries {
                file.push_str(&format_entry(name, value, counter()).unwrap());
            }
            let read = parse(&file).unwrap();
            let line_ends_dropped = |value: &str| {
                value
                    .split('\n')
                    .map(|line| line.strip_suffix('\r').unwrap_or(line))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let expected: Vec<(String, String)> = entries
                .iter()
                .map(|(n, v)| (n.clone(), line_ends_dropped(v)))
                .collect();
            prop_assert_eq!(read, expected);
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(text in any::<String>()) {
            let _ = parse(&text);
        }
    }
}
