//! [`Error`]: what a step returns when it fails, carrying what the failure
//! annotation should say and which exit status to use.

use std::fmt;

use crate::log::{Annotation, Level};

/// `Result<T, gantry_sdk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A step failure: a message, optionally where it points (file, line,
/// column, title) and the exit status (1 unless set).
///
/// Any standard error converts into it with `?`, keeping its chain of
/// causes in the message. When [`run`](crate::run) gets one back from a
/// step, it prints it as an `::error` annotation and exits with its status.
///
/// ```
/// use gantry_sdk::Error;
///
/// let error = Error::new("image tag is empty")
///     .file("deploy/values.yaml")
///     .line(12)
///     .title("config-set");
/// assert_eq!(
///     error.annotation().to_string(),
///     "::error file=deploy/values.yaml,line=12,title=config-set::image tag is empty"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    file: Option<String>,
    line: Option<u32>,
    col: Option<u32>,
    title: Option<String>,
    code: u8,
}

impl Error {
    /// An error with this message and exit status 1.
    ///
    /// ```
    /// let e = gantry_sdk::Error::new(format!("{} files missing", 2));
    /// assert_eq!(e.message(), "2 files missing");
    /// ```
    pub fn new(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
            file: None,
            line: None,
            col: None,
            title: None,
            code: 1,
        }
    }

    /// Points the annotation at a file.
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("bad").file("a.yml");
    /// assert!(e.annotation().to_string().contains("file=a.yml"));
    /// ```
    pub fn file(mut self, file: impl Into<String>) -> Error {
        self.file = Some(file.into());
        self
    }

    /// Points the annotation at a line (1-based).
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("bad").line(3);
    /// assert!(e.annotation().to_string().contains("line=3"));
    /// ```
    pub fn line(mut self, line: u32) -> Error {
        self.line = Some(line);
        self
    }

    /// Points the annotation at a column (1-based).
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("bad").col(7);
    /// assert!(e.annotation().to_string().contains("col=7"));
    /// ```
    pub fn col(mut self, col: u32) -> Error {
        self.col = Some(col);
        self
    }

    /// Gives the annotation a title.
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("bad").title("lint");
    /// assert!(e.annotation().to_string().contains("title=lint"));
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Error {
        self.title = Some(title.into());
        self
    }

    /// Sets the exit status (clamped to 1..=255: a failure is never 0).
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("usage").exit_code(2);
    /// assert_eq!(e.code(), 2);
    /// assert_eq!(gantry_sdk::Error::new("x").exit_code(0).code(), 1);
    /// ```
    pub fn exit_code(mut self, code: u8) -> Error {
        self.code = code.max(1);
        self
    }

    /// The message.
    ///
    /// ```
    /// assert_eq!(gantry_sdk::Error::new("nope").message(), "nope");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The exit status the step ends with.
    ///
    /// ```
    /// assert_eq!(gantry_sdk::Error::new("nope").code(), 1);
    /// ```
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The `::error` annotation that reports this error.
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("100% wrong");
    /// assert_eq!(e.annotation().to_string(), "::error::100%25 wrong");
    /// ```
    pub fn annotation(&self) -> Annotation {
        let mut a = Annotation::new(Level::Error, &self.message);
        if let Some(file) = &self.file {
            a = a.file(file);
        }
        if let Some(line) = self.line {
            a = a.line(line);
        }
        if let Some(col) = self.col {
            a = a.col(col);
        }
        if let Some(title) = &self.title {
            a = a.title(title);
        }
        a
    }

    /// Prefixes the message with what was being done: `"{context}: {message}"`.
    ///
    /// ```
    /// let e = gantry_sdk::Error::new("no such file").context("reading `a.txt`");
    /// assert_eq!(e.message(), "reading `a.txt`: no such file");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Error {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::new(message)
    }
}

/// Adds what was being done to any failing `Result`.
///
/// ```
/// use gantry_sdk::ResultExt;
///
/// let read = std::fs::read_to_string("/no/such/file").context("reading the template");
/// assert!(read.unwrap_err().message().starts_with("reading the template: "));
/// ```
pub trait ResultExt<T> {
    /// On error, prefixes the message with `context`.
    fn context(self, context: impl fmt::Display) -> Result<T>;

    /// Like [`ResultExt::context`], building the text only on error.
    ///
    /// ```
    /// use gantry_sdk::ResultExt;
    /// let path = "x.json";
    /// let r = std::fs::read(path).with_context(|| format!("reading `{path}`"));
    /// assert!(r.is_err());
    /// ```
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}

/// Returns early from a step with an [`Error`] built like `format!`.
///
/// ```
/// fn check(replicas: u32) -> gantry_sdk::Result<()> {
///     if replicas == 0 {
///         gantry_sdk::bail!("`replicas` must be at least 1, found {replicas}");
///     }
///     Ok(())
/// }
/// assert!(check(0).is_err());
/// ```
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::new(::std::format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot load")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn conversion_keeps_the_cause_chain() {
        let inner = std::io::Error::other("disk on fire");
        let error: Error = Outer(inner).into();
        assert_eq!(error.message(), "cannot load: disk on fire");
        assert_eq!(error.code(), 1);
    }

    #[test]
    fn context_on_results() {
        let r: std::result::Result<(), std::io::Error> = Err(std::io::Error::other("gone"));
        let e = r.context("step two").unwrap_err();
        assert_eq!(e.to_string(), "step two: gone");
        let r: Result<()> = Err(Error::new("x").exit_code(3));
        let e = r.with_context(|| "outer").unwrap_err();
        assert_eq!((e.message(), e.code()), ("outer: x", 3));
    }

    #[test]
    fn annotation_escapes_properties() {
        let e = Error::new("line1\nline2")
            .file("a,b:c.txt")
            .line(1)
            .col(2)
            .title("t");
        assert_eq!(
            e.annotation().to_string(),
            "::error file=a%2Cb%3Ac.txt,line=1,col=2,title=t::line1%0Aline2"
        );
    }
}
