//! The file-command format shared by `GANTRY_OUTPUT`, `GANTRY_ENV` and
//! `GANTRY_STATE` (GitHub Actions' `$GITHUB_OUTPUT` family).
//!
//! Each entry is either a single line `name=value` or a heredoc:
//!
//! ```text
//! name<<DELIM
//! first line
//! second line
//! DELIM
//! ```

use thiserror::Error;

/// Why a file-command file could not be read. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FileCommandError {
    /// A non-blank line that is neither `name=value` nor `name<<DELIM`.
    #[error("line {line}: expected `name=value` or `name<<DELIMITER`")]
    MissingSeparator {
        /// 1-based line number.
        line: usize,
    },
    /// Nothing before the `=` or `<<`.
    #[error("line {line}: the name before `=` or `<<` is empty")]
    EmptyName {
        /// 1-based line number.
        line: usize,
    },
    /// `name<<` with nothing after the `<<`.
    #[error("line {line}: the heredoc delimiter after `<<` is empty")]
    EmptyDelimiter {
        /// 1-based line number.
        line: usize,
    },
    /// The file ended before a line consisting of exactly the delimiter.
    // The delimiter is the step's text: marked, so its masks reach it.
    #[error(
        "heredoc `{}` opened on line {line} is never closed",
        crate::abi::mask::step_text(.delimiter)
    )]
    UnclosedHeredoc {
        /// The delimiter that was expected.
        delimiter: String,
        /// 1-based line of the `name<<DELIM` opener.
        line: usize,
    },
}

/// Parses the content of a file-command file into `(name, value)` pairs in
/// file order. A name may repeat; the caller decides (later wins for a map).
///
/// Both `\n` and `\r\n` line endings are accepted and blank lines are skipped.
/// Names are kept exactly as written; only an empty name is rejected.
pub fn parse_file_commands(content: &str) -> Result<Vec<(String, String)>, FileCommandError> {
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
        // Whichever separator comes first decides the form, so `a=b<<c` is a
        // plain value and `a<<X=Y` a heredoc with delimiter `X=Y`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(content: &str) -> Vec<(String, String)> {
        parse_file_commands(content).expect("should parse")
    }

    fn err(content: &str) -> FileCommandError {
        parse_file_commands(content).expect_err("should fail")
    }

    fn pair(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
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
    fn empty_content_gives_nothing() {
        assert!(ok("").is_empty());
        assert!(ok("\n\r\n").is_empty());
    }

    #[test]
    fn heredoc_single_multi_and_empty() {
        let got = ok("one<<EOF\nhello\nEOF\nmulti<<END\nl1\n\nl3 = x\nEND\nnone<<X\nX\n");
        let want = [pair("one", "hello"), pair("multi", "l1\n\nl3 = x")];
        assert_eq!(got[..2], want);
        assert_eq!(got[2..], [pair("none", "")]);
    }

    #[test]
    fn heredoc_delimiter_must_match_whole_line() {
        let got = ok("v<<EOF\nEOF \n EOF\nEOFX\nEOF");
        assert_eq!(got, [pair("v", "EOF \n EOF\nEOFX")]);
    }

    #[test]
    fn first_separator_decides_the_form() {
        assert_eq!(ok("a=b<<c"), [pair("a", "b<<c")]);
        assert_eq!(ok("a<<X=Y\nv\nX=Y"), [pair("a", "v")]);
    }

    #[test]
    fn crlf_line_endings() {
        let got = ok("\u{feff}a=1\r\nh<<EOF\r\nx\r\ny\r\nEOF\r\nb=2\r\n");
        assert_eq!(got, [pair("a", "1"), pair("h", "x\ny"), pair("b", "2")]);
    }

    #[test]
    fn unclosed_heredoc_reports_its_opening_line() {
        let e = err("a=1\n\nbody<<EOF\nx\nEO\n");
        let delimiter = "EOF".into();
        assert_eq!(e, FileCommandError::UnclosedHeredoc { delimiter, line: 3 });
        let text = "heredoc `EOF` opened on line 3 is never closed";
        assert_eq!(crate::abi::mask::plain(&e.to_string()), text);
    }

    #[test]
    fn missing_separator_reports_its_line() {
        let e = err("a=1\nb=2\njust text\n");
        assert_eq!(e, FileCommandError::MissingSeparator { line: 3 });
        assert!(e.to_string().starts_with("line 3: "));
    }

    #[test]
    fn empty_name_and_empty_delimiter() {
        use FileCommandError::{EmptyDelimiter, EmptyName};
        assert_eq!(err("a=1\n=value"), EmptyName { line: 2 });
        assert_eq!(err("<<EOF\nx\nEOF"), EmptyName { line: 1 });
        assert_eq!(err("x=1\r\nname<<\r\n"), EmptyDelimiter { line: 2 });
    }
}
