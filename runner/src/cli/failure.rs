//! How a command fails: one [`Failure`] carries the exit status, each
//! error with its cause chain and hint, and is printed in one place
//! ([`Failure::print`], called by `cli::main`).
//!
//! The layout is uv's:
//!
//! ```text
//! error: cannot create the state folder `/x/.gantry`
//!   Caused by: Permission denied (os error 13)
//! hint: give another one with `--state-dir DIR`
//! ```
//!
//! The model layers keep their thiserror enums with `#[source]`, so a
//! cause is printed once, on its own `Caused by:` line, instead of being
//! glued into the message; a hint is a value ([`Hinted::hint`]), never a
//! `"\n  hint: …"` suffix. `error` is red and bold, `Caused by` bold,
//! `hint` cyan and bold, only when stderr is a terminal and `NO_COLOR` is
//! unset (anstream decides, as clap does for `--help`).
//!
//! Errors quote the manifest and plugins (a hostile pull request writes
//! both), and a CI host reads stderr for workflow commands too: inside
//! GitHub Actions or GitLab CI each printed line goes through
//! [`host_line`](crate::report::ci::host_line), so no quoted text can
//! issue a command to the host.

use std::fmt::{self, Display};
use std::io::Write as _;

use anstyle::{AnsiColor, Style};

use crate::engine::launch::LaunchError;
use crate::engine::rollback::imported::ImportError;
use crate::engine::rollback::later::CompensateError;
use crate::exit::Exit;
use crate::hint::Hinted;
use crate::load::LoadError;
use crate::load::admit::{self, AdmitError};

/// One error as printed: the error with its cause chain, and its hint.
#[derive(Debug)]
pub struct Problem {
    error: anyhow::Error,
    hint: Option<String>,
}

impl Problem {
    /// `error` (with its `source()` chain) and no hint.
    pub fn new(error: impl Into<anyhow::Error>) -> Problem {
        Problem {
            error: error.into(),
            hint: None,
        }
    }

    /// `error` with the hint it carries.
    pub fn hinted(error: impl Hinted) -> Problem {
        let hint = error.hint();
        Problem {
            error: error.into(),
            hint,
        }
    }

    /// A plain message, no cause.
    pub fn msg(message: impl Display + fmt::Debug + Send + Sync + 'static) -> Problem {
        Problem::new(anyhow::Error::msg(message))
    }

    /// Puts `context` above the error: it becomes the `error:` line and
    /// the error its first `Caused by:`.
    pub fn context(mut self, context: impl Display + Send + Sync + 'static) -> Problem {
        self.error = self.error.context(context);
        self
    }

    /// Sets (or replaces) the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }
}

/// Why a command stopped: the exit status and what to print about it.
#[derive(Debug)]
#[must_use]
pub struct Failure {
    exit: Exit,
    problems: Vec<Problem>,
    /// A closing line after several errors, e.g. `nothing ran: …`.
    closing: Option<String>,
}

impl Failure {
    /// `exit`, printing `error`'s chain.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure::of(exit, Problem::new(error))
    }

    /// `exit`, printing `error`'s chain and the hint it carries.
    pub fn hinted(exit: Exit, error: impl Hinted) -> Failure {
        Failure::of(exit, Problem::hinted(error))
    }

    /// `exit`, printing a plain message.
    pub fn msg(exit: Exit, message: impl Display + fmt::Debug + Send + Sync + 'static) -> Failure {
        Failure::of(exit, Problem::msg(message))
    }

    /// `exit`, printing one problem.
    pub fn of(exit: Exit, problem: Problem) -> Failure {
        Failure::several(exit, vec![problem])
    }

    /// `exit`, printing every problem (a pin check reports each plugin).
    pub fn several(exit: Exit, problems: Vec<Problem>) -> Failure {
        Failure {
            exit,
            problems,
            closing: None,
        }
    }

    /// Sets the hint of the last problem.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        if let Some(last) = self.problems.pop() {
            self.problems.push(last.with_hint(hint));
        }
        self
    }

    /// Puts `context` above the last problem's error ([`Problem::context`]).
    pub fn with_context(mut self, context: impl Display + Send + Sync + 'static) -> Failure {
        if let Some(last) = self.problems.pop() {
            self.problems.push(last.context(context));
        }
        self
    }

    /// Adds a line printed after every error.
    pub fn with_closing(mut self, closing: impl Into<String>) -> Failure {
        self.closing = Some(closing.into());
        self
    }

    /// Drops the closing line (`validate` runs nothing, so "nothing ran"
    /// says nothing).
    pub fn without_closing(mut self) -> Failure {
        self.closing = None;
        self
    }

    /// The exit status the process ends with.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// The text printed for this failure, styled when `color`.
    pub fn render(&self, color: bool) -> String {
        let paint = |style: Style, text: &str| {
            if color {
                format!("{}{text}{}", style.render(), style.render_reset())
            } else {
                text.to_owned()
            }
        };
        let error = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
        let bold = Style::new().bold();
        let hint = Style::new().bold().fg_color(Some(AnsiColor::Cyan.into()));
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&format!("{}: {}\n", paint(error, "error"), problem.error));
            for cause in problem.error.chain().skip(1) {
                // A cause of several lines stays under its `Caused by:`.
                let cause = cause.to_string().replace('\n', "\n    ");
                out.push_str(&format!("  {}: {cause}\n", paint(bold, "Caused by")));
            }
            if let Some(text) = &problem.hint {
                out.push_str(&format!("{}: {text}\n", paint(hint, "hint")));
            }
        }
        if let Some(closing) = &self.closing {
            out.push_str(closing);
            out.push('\n');
        }
        out
    }

    /// The text printed inside a CI host: unstyled, each line escaped so
    /// that quoted text cannot issue a workflow command.
    pub fn render_for_host(&self) -> String {
        self.render(false)
            .lines()
            .map(|line| crate::report::ci::host_line(line) + "\n")
            .collect()
    }

    /// Prints the failure on stderr; a failed write is ignored (the
    /// reader has gone, the exit status still says what happened).
    pub fn print(&self) {
        let text = if crate::report::ci::detect().is_some() {
            self.render_for_host()
        } else {
            let stderr = std::io::stderr();
            let color = anstream::AutoStream::choice(&stderr) != anstream::ColorChoice::Never;
            self.render(color)
        };
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// A load that failed: every problem, with the hints of pin errors and
/// the cause of a copy that could not be kept, then the line saying that
/// nothing ran. A pin or signature that does not match is 3, a copy that
/// cannot be kept 1, anything else 2.
impl From<LoadError> for Failure {
    fn from(error: LoadError) -> Failure {
        let closing = error.nothing_ran();
        let (exit, problems) = match error {
            LoadError::Manifest(errors) => (Exit::Invalid, all(errors)),
            LoadError::Usage(messages) => (Exit::Invalid, all(messages)),
            LoadError::Metadata(errors) => (
                Exit::Invalid,
                errors
                    .into_iter()
                    .map(|error| Problem::msg(error.to_string()))
                    .collect(),
            ),
            LoadError::Pins(errors) => (
                Exit::Verification,
                errors.into_iter().map(Problem::hinted).collect(),
            ),
            error @ LoadError::KeepHooks { .. } => (Exit::StepFailed, vec![Problem::new(error)]),
        };
        let failure = Failure::several(exit, problems);
        match closing {
            Some(line) => failure.with_closing(line),
            None => failure,
        }
    }
}

/// Plugins that could not be admitted: an engine that cannot start is 1,
/// a plugin past its limits 2 (each refused plugin, then the closing line).
impl From<AdmitError> for Failure {
    fn from(error: AdmitError) -> Failure {
        match error {
            error @ AdmitError::Engine(_) => Failure::new(Exit::StepFailed, error),
            AdmitError::PastLimits(refused) => Failure::several(
                Exit::Invalid,
                refused
                    .into_iter()
                    .map(|(alias, reason)| Problem::msg(admit::refusal(&alias, &reason)))
                    .collect(),
            )
            .with_closing("nothing ran: every plugin must compile within its limits"),
        }
    }
}

/// A compensation that did not run, or stopped: a refusal is 2, a journal
/// that cannot be written 4 (its hint says how to finish), a sandbox that
/// cannot start as admission says.
impl From<CompensateError> for Failure {
    fn from(error: CompensateError) -> Failure {
        match error {
            CompensateError::Admit(error) => error.into(),
            error @ CompensateError::Refused { .. } => Failure::hinted(Exit::Invalid, error),
            error @ CompensateError::Journal { .. } => Failure::hinted(Exit::RollbackFailed, error),
        }
    }
}

/// The rollback of imported jobs that did not run: bundles that are not
/// this pipeline's are 2; the rest as loading and compensating say.
impl From<ImportError> for Failure {
    fn from(error: ImportError) -> Failure {
        match error {
            ImportError::Load(error) => error.into(),
            ImportError::Bundles(message) => Failure::msg(Exit::Invalid, message),
            ImportError::Compensate(error) => error.into(),
        }
    }
}

/// A pipeline that could not start: a bundle that is not this pipeline's,
/// or whose artifacts cannot be stored, is 2.
impl From<LaunchError> for Failure {
    fn from(error: LaunchError) -> Failure {
        match error {
            LaunchError::Admit(error) => error.into(),
            LaunchError::Handoff(message) => Failure::msg(Exit::Invalid, message),
        }
    }
}

/// Each message as a problem of its own.
fn all<T: Display + fmt::Debug + Send + Sync + 'static>(messages: Vec<T>) -> Vec<Problem> {
    messages.into_iter().map(Problem::msg).collect()
}

/// What a command returns: the exit status it chose, or why it failed.
pub type Outcome = Result<Exit, Failure>;

/// The exit status of `outcome`, printing the failure if there is one:
/// the one place a command's error reaches the person.
pub fn finish(outcome: Outcome) -> Exit {
    match outcome {
        Ok(exit) => exit,
        Err(failure) => {
            failure.print();
            failure.exit()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot create the state folder `/x`")]
    struct NoFolder {
        #[source]
        source: std::io::Error,
    }

    impl Hinted for NoFolder {
        fn hint(&self) -> Option<String> {
            Some("give another one with `--state-dir DIR`".into())
        }
    }

    fn denied() -> NoFolder {
        NoFolder {
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }
    }

    #[test]
    fn prints_the_error_each_cause_once_then_the_hint() {
        let failure = Failure::hinted(Exit::Invalid, denied());
        assert_eq!(failure.exit(), Exit::Invalid);
        assert_eq!(
            failure.render(false),
            "error: cannot create the state folder `/x`\n  Caused by: permission denied\nhint: give another one with `--state-dir DIR`\n"
        );
    }

    #[test]
    fn context_and_every_source_get_a_line() {
        let error = anyhow::Error::new(denied()).context("cannot start the run");
        let failure = Failure::new(Exit::Invalid, error).with_hint("fix it");
        assert_eq!(
            failure.render(false),
            "error: cannot start the run\n  Caused by: cannot create the state folder `/x`\n  Caused by: permission denied\nhint: fix it\n"
        );
    }

    #[test]
    fn several_errors_then_the_closing_line() {
        let failure = Failure::several(
            Exit::Verification,
            vec![
                Problem::msg("plugin `a` is not pinned").with_hint("run `gantry lock`"),
                Problem::msg("plugin `b` is not pinned"),
            ],
        )
        .with_closing("nothing ran: 2 plugins failed verification");
        assert_eq!(
            failure.render(false),
            "error: plugin `a` is not pinned\nhint: run `gantry lock`\nerror: plugin `b` is not pinned\nnothing ran: 2 plugins failed verification\n"
        );
    }

    #[test]
    fn a_message_of_several_lines_is_kept_as_written() {
        // The caret rendering of a manifest error is pinned by snapshots.
        let failure = Failure::msg(Exit::Invalid, "g.yml:1:1: bad\n  |\n1 | x\n  | ^");
        assert_eq!(
            failure.render(false),
            "error: g.yml:1:1: bad\n  |\n1 | x\n  | ^\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let failure = Failure::hinted(Exit::Invalid, denied());
        let plain = failure.render(false);
        assert!(!plain.contains('\x1b'), "{plain:?}");
        let coloured = failure.render(true);
        let red_bold = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
        assert!(
            coloured.starts_with(&format!(
                "{}error{}: ",
                red_bold.render(),
                red_bold.render_reset()
            )),
            "{coloured:?}"
        );
        assert!(coloured.contains("Caused by"), "{coloured:?}");
        // Without its escapes, the coloured text is the plain text.
        let stripped: String = anstream::adapter::strip_str(&coloured).to_string();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn inside_a_ci_host_quoted_text_cannot_issue_a_command() {
        let failure = Failure::several(
            Exit::Invalid,
            vec![Problem::msg("bad value\n::add-mask::x\x1b[31m").with_hint("::stop-commands::t")],
        );
        let text = failure.render_for_host();
        assert!(!text.contains('\x1b'), "{text:?}");
        for line in text.lines() {
            assert!(!line.trim_start().starts_with("::"), "{line:?}");
        }
        assert!(text.contains("%3A:add-mask::x\\x1b[31m"), "{text:?}");
        assert!(text.contains("hint: ::stop-commands::t"), "{text:?}");
    }

    #[test]
    fn model_errors_print_their_hint_and_their_cause() {
        let unpinned = crate::plugin::VerifyError::Unpinned {
            alias: "a".into(),
            source_path: "a.wasm".into(),
        };
        let text = Failure::hinted(Exit::Verification, unpinned).render(false);
        assert_eq!(
            text,
            "error: plugin `a` (`a.wasm`) is not pinned\nhint: run `gantry lock` to pin it in gantry.lock, after checking the file is the one you mean to run\n"
        );
        let io = crate::run_lock::LockError::Io {
            path: "/s/lock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let text = Failure::new(Exit::Invalid, io).render(false);
        assert_eq!(
            text,
            "error: cannot lock `/s/lock`\n  Caused by: entity not found\n"
        );
        assert_eq!(finish(Ok(Exit::StepFailed)), Exit::StepFailed);
    }

    #[test]
    fn library_outcomes_keep_the_contracts_exit_statuses() {
        let refused = Failure::from(AdmitError::PastLimits(vec![("a".into(), "too big".into())]));
        assert_eq!(refused.exit(), Exit::Invalid);
        assert_eq!(
            refused.render(false),
            "error: plugin `a` was refused: too big\nnothing ran: every plugin must compile within its limits\n"
        );
        let journal = Failure::from(CompensateError::Journal {
            path: "/s/journal.jsonl".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            hint: Some("`gantry resume r` finishes it".into()),
        });
        assert_eq!(journal.exit(), Exit::RollbackFailed);
        assert_eq!(
            journal.render(false),
            "error: cannot write the journal `/s/journal.jsonl`\n  Caused by: no storage space\nhint: `gantry resume r` finishes it\n"
        );
        let refused = Failure::from(CompensateError::Refused {
            message: "run `r` is damaged".into(),
            hint: None,
        });
        assert_eq!(refused.exit(), Exit::Invalid);
        let pins = Failure::from(LoadError::Pins(Vec::new()));
        assert_eq!(pins.exit(), Exit::Verification);
    }
}
