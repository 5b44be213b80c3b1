//! The step's log: plain lines, log levels, annotations, masks and groups,
//! written to stdout as GitHub Actions–style workflow commands.
//!
//! Every function here prints one or more lines; the types implement
//! [`Display`](std::fmt::Display) with the exact line, for tests or for
//! writing somewhere else.
//!
//! ```no_run
//! use gantry_sdk::log;
//!
//! log::info("starting");
//! log::debug("only shown with debug logging");
//! log::warning("deprecated input `tag`; use `image-tag`");
//! log::Annotation::error("unknown key `replicas`")
//!     .file("deploy/values.yaml")
//!     .line(4)
//!     .col(3)
//!     .emit();
//! log::add_mask("s3cr3t");
//! {
//!     let _group = log::group("Upload");
//!     log::info("inside the group");
//! } // `::endgroup::` printed here
//! ```

use std::fmt;

/// The level of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `::debug::` (never takes properties).
    Debug,
    /// `::notice::`
    Notice,
    /// `::warning::`
    Warning,
    /// `::error::`
    Error,
}

impl Level {
    /// The command name.
    ///
    /// ```
    /// assert_eq!(gantry_sdk::log::Level::Warning.command(), "warning");
    /// ```
    pub fn command(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A message at a level, optionally pointing at a place in a file.
///
/// ```
/// use gantry_sdk::log::Annotation;
/// let a = Annotation::warning("50% done, step 1: ok").file("a,b.txt").line(2).title("x:y");
/// assert_eq!(a.to_string(), "::warning file=a%2Cb.txt,line=2,title=x%3Ay::50%25 done, step 1: ok");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    level: Level,
    message: String,
    file: Option<String>,
    line: Option<u32>,
    col: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
    title: Option<String>,
}

impl Annotation {
    /// An annotation at `level`.
    ///
    /// ```
    /// use gantry_sdk::log::{Annotation, Level};
    /// assert_eq!(Annotation::new(Level::Notice, "hi").to_string(), "::notice::hi");
    /// ```
    pub fn new(level: Level, message: impl Into<String>) -> Annotation {
        Annotation {
            level,
            message: message.into(),
            file: None,
            line: None,
            col: None,
            end_line: None,
            end_column: None,
            title: None,
        }
    }

    /// A `::notice`.
    ///
    /// ```
    /// gantry_sdk::log::Annotation::notice("deployed").emit();
    /// ```
    pub fn notice(message: impl Into<String>) -> Annotation {
        Annotation::new(Level::Notice, message)
    }

    /// A `::warning`.
    ///
    /// ```
    /// gantry_sdk::log::Annotation::warning("slow disk").emit();
    /// ```
    pub fn warning(message: impl Into<String>) -> Annotation {
        Annotation::new(Level::Warning, message)
    }

    /// An `::error` (it does not fail the step by itself: return an error
    /// or exit non-zero for that).
    ///
    /// ```
    /// gantry_sdk::log::Annotation::error("bad line").line(3).emit();
    /// ```
    pub fn error(message: impl Into<String>) -> Annotation {
        Annotation::new(Level::Error, message)
    }

    /// `file=`: the file concerned, relative to the workspace.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::error("x").file("src/main.c");
    /// assert_eq!(a.to_string(), "::error file=src/main.c::x");
    /// ```
    pub fn file(mut self, file: impl Into<String>) -> Annotation {
        self.file = Some(file.into());
        self
    }

    /// `line=`: first line, 1-based.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::error("x").line(9);
    /// assert_eq!(a.to_string(), "::error line=9::x");
    /// ```
    pub fn line(mut self, line: u32) -> Annotation {
        self.line = Some(line);
        self
    }

    /// `col=`: first column, 1-based.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::error("x").col(4);
    /// assert_eq!(a.to_string(), "::error col=4::x");
    /// ```
    pub fn col(mut self, col: u32) -> Annotation {
        self.col = Some(col);
        self
    }

    /// `endLine=`: last line of a range.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::error("x").line(1).end_line(3);
    /// assert_eq!(a.to_string(), "::error line=1,endLine=3::x");
    /// ```
    pub fn end_line(mut self, line: u32) -> Annotation {
        self.end_line = Some(line);
        self
    }

    /// `endColumn=`: last column of a range.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::error("x").col(1).end_column(5);
    /// assert_eq!(a.to_string(), "::error col=1,endColumn=5::x");
    /// ```
    pub fn end_column(mut self, col: u32) -> Annotation {
        self.end_column = Some(col);
        self
    }

    /// `title=`: a short heading.
    ///
    /// ```
    /// let a = gantry_sdk::log::Annotation::notice("x").title("Build");
    /// assert_eq!(a.to_string(), "::notice title=Build::x");
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Annotation {
        self.title = Some(title.into());
        self
    }

    /// Prints the annotation on stdout.
    ///
    /// ```
    /// gantry_sdk::log::Annotation::notice("done").emit();
    /// ```
    pub fn emit(&self) {
        println!("{self}");
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let numbers = [
            ("line", self.line),
            ("col", self.col),
            ("endLine", self.end_line),
            ("endColumn", self.end_column),
        ];
        let mut props: Vec<(&str, String)> = Vec::new();
        if let Some(file) = &self.file {
            props.push(("file", file.clone()));
        }
        for (key, value) in numbers {
            if let Some(n) = value {
                props.push((key, n.to_string()));
            }
        }
        if let Some(title) = &self.title {
            props.push(("title", title.clone()));
        }
        // `::debug` takes no properties in the protocol.
        if self.level == Level::Debug {
            props.clear();
        }
        let props: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
        f.write_str(&command(self.level.command(), &props, &self.message))
    }
}

/// Escapes a command's message (`%` → `%25`, `\r` → `%0D`, `\n` → `%0A`),
/// and a property value (also `:` → `%3A`, `,` → `%2C`): the rules the
/// runner unescapes by, both from `gantry-abi`.
///
/// ```
/// assert_eq!(gantry_sdk::log::escape_data("100%\nok"), "100%25%0Aok");
/// assert_eq!(gantry_sdk::log::escape_property("a:b,c%"), "a%3Ab%2Cc%25");
/// ```
pub use gantry_abi::commands::{escape_data, escape_property};

/// Builds any workflow command line, escaping properties and message.
///
/// ```
/// use gantry_sdk::log::command;
/// assert_eq!(command("group", &[], "Build: web"), "::group::Build: web");
/// assert_eq!(command("error", &[("file", "a.c"), ("line", "2")], "x"), "::error file=a.c,line=2::x");
/// ```
pub fn command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let mut line = format!("::{name}");
    for (i, (key, value)) in properties.iter().enumerate() {
        line.push(if i == 0 { ' ' } else { ',' });
        line.push_str(key);
        line.push('=');
        line.push_str(&escape_property(value));
    }
    line.push_str("::");
    line.push_str(&escape_data(message));
    line
}

/// Prints a plain log line (no command). Text starting with `::` may be
/// read as a command; log untrusted text through [`log_verbatim`] instead.
///
/// ```
/// gantry_sdk::log::info("copied 3 files");
/// ```
pub fn info(message: impl fmt::Display) {
    println!("{message}");
}

/// Prints `::debug::message`.
///
/// ```
/// gantry_sdk::log::debug("cache miss");
/// ```
pub fn debug(message: impl fmt::Display) {
    Annotation::new(Level::Debug, message.to_string()).emit();
}

/// Prints `::notice::message`.
///
/// ```
/// gantry_sdk::log::notice("3 files rendered");
/// ```
pub fn notice(message: impl fmt::Display) {
    Annotation::notice(message.to_string()).emit();
}

/// Prints `::warning::message`.
///
/// ```
/// gantry_sdk::log::warning("no files matched `*.tmp`");
/// ```
pub fn warning(message: impl fmt::Display) {
    Annotation::warning(message.to_string()).emit();
}

/// Prints `::error::message`. The step still has to fail on its own.
///
/// ```
/// gantry_sdk::log::error("checksum mismatch");
/// ```
pub fn error(message: impl fmt::Display) {
    Annotation::error(message.to_string()).emit();
}

/// Asks gantry to replace `value` with `***` in every later line of text
/// steps control (logs, annotations, outputs, summaries) for the rest of
/// the run; gantry's own words are never masked. Call it before the value
/// can appear in the log. gantry refuses, with a warning, a value shorter
/// than 4 characters and more than 1,000 values per step.
///
/// ```
/// let token = "s3cr3t-from-a-file";
/// gantry_sdk::log::add_mask(token);
/// ```
pub fn add_mask(value: &str) {
    println!("{}", command("add-mask", &[], value));
}

/// Prints untrusted text so that none of its lines can act as a command:
/// the text is wrapped in `::stop-commands::TOKEN` … `::TOKEN::` with a
/// random token.
///
/// ```
/// gantry_sdk::log::log_verbatim("::error::this is just text from a file");
/// ```
pub fn log_verbatim(text: &str) {
    let token = crate::files::random_delimiter();
    println!("::stop-commands::{token}");
    println!("{text}");
    println!("::{token}::");
}

/// An open log group; prints `::endgroup::` when dropped.
///
/// ```
/// let group = gantry_sdk::log::group("Compile");
/// println!("cc -O2 …");
/// drop(group);
/// ```
#[must_use = "the group ends when this guard is dropped"]
#[derive(Debug)]
pub struct Group(());

impl Drop for Group {
    fn drop(&mut self) {
        println!("::endgroup::");
    }
}

/// Opens a collapsible log group named `name` until the guard is dropped.
///
/// ```
/// let _group = gantry_sdk::log::group("Tests");
/// println!("42 passed");
/// ```
pub fn group(name: &str) -> Group {
    println!("{}", command("group", &[], name));
    Group(())
}

/// Runs `f` inside a log group and returns what it returns.
///
/// ```
/// let sum = gantry_sdk::log::with_group("Adding", || 2 + 2);
/// assert_eq!(sum, 4);
/// ```
pub fn with_group<R>(name: &str, f: impl FnOnce() -> R) -> R {
    let _group = group(name);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_data_and_properties() {
        assert_eq!(escape_data("a:b,c"), "a:b,c");
        assert_eq!(escape_data("%0A literal"), "%250A literal");
        assert_eq!(escape_data("x\r\ny"), "x%0D%0Ay");
        assert_eq!(escape_property("C:\\dir,x\n%"), "C%3A\\dir%2Cx%0A%25");
        assert_eq!(escape_data("ünïcödé"), "ünïcödé");
    }

    #[test]
    fn all_properties_in_order() {
        let a = Annotation::error("m")
            .title("T")
            .end_column(9)
            .end_line(8)
            .col(2)
            .line(1)
            .file("f");
        assert_eq!(
            a.to_string(),
            "::error file=f,line=1,col=2,endLine=8,endColumn=9,title=T::m"
        );
    }

    #[test]
    fn debug_has_no_properties() {
        let a = Annotation::new(Level::Debug, "d").file("x");
        assert_eq!(a.to_string(), "::debug::d");
    }

    #[test]
    fn message_with_colons_stays_readable() {
        assert_eq!(
            Annotation::notice("a::b").to_string(),
            "::notice::a::b",
            "only the first `::` after the name splits, so data keeps its colons"
        );
    }
}
