//! [`Hinted`]: an error that says what the person reading it can do.
//!
//! Below the command line, errors are thiserror enums whose message names
//! what failed and whose `#[source]` says why; the fix is a separate value,
//! so that the command line prints it on its own `hint:` line
//! (`cli::Failure`) instead of it being glued into the message. It lives
//! here, not in `cli`, so that the model layers need not know the CLI.

/// An error that knows what the person reading it can do about it.
pub trait Hinted: std::error::Error + Send + Sync + 'static {
    /// The fix, one line, printed as `hint: …` under the error.
    fn hint(&self) -> Option<String>;
}

/// `error` and each of its sources on one line, joined by `: `, for the
/// places that quote an error inside a line of their own (a table row, a
/// journal note) rather than print it through `cli::Failure`.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `x`")]
    struct Read(#[source] std::io::Error);

    #[test]
    fn one_line_names_every_cause() {
        let error = Read(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(super::one_line(&error), "cannot read `x`: entity not found");
    }
}
