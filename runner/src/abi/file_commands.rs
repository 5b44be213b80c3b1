//! The step-file format shared by `GANTRY_OUTPUT`, `GANTRY_ENV` and
//! `GANTRY_STATE` (GitHub Actions' `$GITHUB_OUTPUT` family). The format,
//! its reader and the SDK's writer are `gantry-abi`'s ([`gantry_abi::files`]);
//! what the host adds is how a mistake is told: the part of the message a
//! step wrote (a heredoc delimiter) is marked, so its masks reach it.

pub use gantry_abi::files::{FileCommandError, parse as parse_file_commands};

use super::mask::step_text;

/// The reason a step file was refused, as the host tells it.
pub fn describe(error: &FileCommandError) -> String {
    match error {
        FileCommandError::UnclosedHeredoc { delimiter, line } => format!(
            "heredoc `{}` opened on line {line} is never closed",
            step_text(delimiter)
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delimiter_is_marked_as_the_steps_text() {
        let error = parse_file_commands("a=1\n\nbody<<EOF\nx\nEO\n").unwrap_err();
        let told = describe(&error);
        assert_ne!(told, error.to_string(), "the delimiter is marked");
        assert_eq!(
            crate::abi::mask::plain(&told),
            "heredoc `EOF` opened on line 3 is never closed"
        );
    }
}
