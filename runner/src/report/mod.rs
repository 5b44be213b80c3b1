//! What a run tells the person or the CI system watching it.
//!
//! The engine describes a run as a sequence of [`Event`]s, masked on their
//! way by [`masked::Masked`]; a [`Reporter`] turns them into output:
//! [`human::Human`] for people, [`json::Json`] for machines, [`ci::Ci`] for
//! GitHub Actions and GitLab logs, and [`junit::JUnit`] for test-report
//! readers. [`build`] picks them from the command line and the environment.
//! Text a step controls is shown, never obeyed: [`visible`] makes its
//! control characters visible wherever the reader is not a terminal.

pub mod ci;
pub mod human;
pub mod json;
pub mod junit;
pub mod live;
pub mod masked;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::secrets::Secrets;

use crate::abi::Annotation;
use crate::sandbox::output::Stream;

/// A step's or job's result, as in GitHub Actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl Conclusion {
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::Success => "success",
            Conclusion::Failure => "failure",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Skipped => "skipped",
        }
    }
}

/// The severity of an annotation a step emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Notice,
    Warning,
    Error,
}

/// One thing worth telling about a run. Every event from inside a job
/// names the job instance (`build (linux)` for a matrix job), since jobs
/// run in parallel and their events interleave.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    RunStarted {
        pipeline: &'a str,
        run_id: &'a str,
        /// The state folder the run's records go to.
        state_dir: &'a std::path::Path,
    },
    JobStarted {
        job: &'a str,
    },
    JobSkipped {
        job: &'a str,
        reason: &'a str,
    },
    JobFinished {
        job: &'a str,
        conclusion: Conclusion,
        /// The job's `outputs:`, secrets masked.
        outputs: &'a BTreeMap<String, String>,
    },
    StepStarted {
        job: &'a str,
        step: StepRef<'a>,
        plugin: &'a str,
    },
    /// A plain line of a step's output.
    StepLog {
        job: &'a str,
        stream: Stream,
        text: &'a str,
    },
    /// A workflow command annotation (`::warning file=…::…`).
    StepAnnotation {
        job: &'a str,
        level: Level,
        message: &'a str,
        annotation: &'a Annotation,
    },
    GroupStarted {
        job: &'a str,
        name: &'a str,
    },
    GroupEnded {
        job: &'a str,
    },
    /// Something gantry itself says about a step (an ignored command, a
    /// retry, say).
    StepNote {
        job: &'a str,
        text: &'a str,
    },
    /// gantry refused a connection or request a component step made: the
    /// destination (`scheme://host:port`) was not granted, or resolved to
    /// an address it may not reach. Written by gantry, never by the guest.
    NetworkDenied {
        job: &'a str,
        /// The step's display name.
        step: &'a str,
        destination: &'a str,
        reason: &'a str,
    },
    StepSkipped {
        job: &'a str,
        step: StepRef<'a>,
        reason: &'a str,
    },
    StepFinished {
        job: &'a str,
        step: StepRef<'a>,
        /// `Err` holds the failure reason.
        outcome: Result<(), &'a str>,
        /// The step's own outcome: success, failure or cancelled (before
        /// `continue-on-error` is applied).
        status: Conclusion,
        continued_on_error: bool,
        /// The names of the outputs the step set.
        outputs: &'a [String],
        duration: Duration,
    },
    /// A step's rollback hook starts.
    RollbackStarted {
        job: &'a str,
        step: StepRef<'a>,
        plugin: &'a str,
        /// How the compensated step ended: `success` or `failure`.
        outcome: &'a str,
    },
    RollbackFinished {
        job: &'a str,
        step: StepRef<'a>,
        /// `Err` holds the failure reason.
        outcome: Result<(), &'a str>,
        duration: Duration,
    },
    RunFinished {
        verdict: Verdict,
        failed_steps: &'a [String],
        summary_path: Option<&'a std::path::Path>,
        duration: Duration,
    },
}

/// How a run ended, compensation included: what the engine concludes, and
/// the command line turns into an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every job succeeded (or was skipped).
    Succeeded,
    /// The run failed, and its compensation, if any, succeeded.
    Failed,
    /// A rollback hook failed, was cut short, or could not be journaled:
    /// the target may be inconsistent.
    RollbackFailed,
}

impl Verdict {
    pub fn succeeded(self) -> bool {
        self == Verdict::Succeeded
    }
}

/// The line that ends a run for people: how it ended, how long it took,
/// and which steps failed.
pub fn run_verdict(verdict: Verdict, failed_steps: &[String], duration: Duration) -> String {
    let took = crate::display::human_duration(duration);
    let success = verdict.succeeded();
    if verdict == Verdict::RollbackFailed {
        format!(
            "gantry: run failed in {took} and a rollback hook failed: the target may be inconsistent"
        )
    } else if success {
        format!("gantry: run succeeded in {took}")
    } else if failed_steps.is_empty() {
        format!("gantry: run failed in {took}")
    } else {
        format!(
            "gantry: run failed in {took}: {} failed",
            failed_steps.join(", ")
        )
    }
}

/// `text` with every control character but line feed and tab made visible
/// as `\xNN` (`\u{NN}` for C1 controls), so a step's ESC sequences, OSC
/// titles, bells and lone carriage returns are shown, never obeyed, by
/// whatever displays the report.
pub fn visible(text: &str) -> Cow<'_, str> {
    let shown = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(shown) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if shown(c) {
            out.push(c);
        } else if c.is_ascii() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    Cow::Owned(out)
}

/// An annotation as one line in the compilers' `path:line:col: level:
/// message` form, which CI log viewers (GitLab's among them) and editors
/// turn into links; `file` replaces the annotation's own path when given
/// (a path rebased onto the CI checkout). Without a file it is `level:
/// message`; a title leads the message.
pub fn located(level: &str, message: &str, annotation: &Annotation, file: Option<&str>) -> String {
    let message = match &annotation.title {
        Some(title) => format!("{title}: {message}"),
        None => message.to_owned(),
    };
    match file.or(annotation.file.as_deref()) {
        Some(file) => {
            let mut place = file.to_owned();
            if let Some(line) = annotation.line {
                place.push_str(&format!(":{line}"));
                if let Some(col) = annotation.col {
                    place.push_str(&format!(":{col}"));
                }
            }
            format!("{place}: {level}: {message}")
        }
        None => format!("{level}: {message}"),
    }
}

/// Which step an event is about.
#[derive(Debug, Clone, Copy)]
pub struct StepRef<'a> {
    /// What a person reads: the step's name, else its id, else its plugin.
    pub name: &'a str,
    /// The step's `id:`, when it has one.
    pub id: Option<&'a str>,
    /// Its position in the job, from 1.
    pub number: usize,
}

impl StepRef<'_> {
    /// A stable key for machines: the id, else `step-N`.
    pub fn key(&self) -> String {
        self.id
            .map_or_else(|| format!("step-{}", self.number), str::to_owned)
    }
}

/// Sends every event to several reporters, in order.
pub struct Tee(pub Vec<std::sync::Arc<dyn Reporter>>);

impl Reporter for Tee {
    fn report(&self, event: Event<'_>) {
        for reporter in &self.0 {
            reporter.report(event.clone());
        }
    }
}

/// Receives a run's events as they happen.
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event<'_>);
}

/// `--format`: how a run is shown on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `github` inside GitHub Actions, `gitlab` inside GitLab CI, else `human`
    Auto,
    Human,
    Json,
    Github,
    Gitlab,
}

/// `--color`: whether the human format uses colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless `NO_COLOR` is set (`CLICOLOR_FORCE`
    /// forces it)
    Auto,
    Always,
    Never,
}

/// Everything that decides how a run is reported.
pub struct ReportOptions<'a> {
    pub format: Format,
    pub color: ColorChoice,
    pub verbose: bool,
    /// Prefix lines with their job (the pipeline can run jobs in parallel).
    pub label_jobs: bool,
    pub junit: Option<PathBuf>,
    pub secrets: &'a Secrets,
    /// The steps of the run, for live progress when stdout is a terminal
    /// and the format is for people; `None` for no live progress.
    pub live_steps: Option<usize>,
    /// The manifest's folder, against which steps' annotation paths are
    /// relative: the CI formats rebase them onto the host's checkout.
    pub manifest_dir: Option<&'a std::path::Path>,
}

/// The reporters a run writes to; `junit` is kept to ask, after the run,
/// whether its file could be written.
pub struct Reporters {
    pub reporter: Arc<dyn Reporter>,
    pub junit: Option<Arc<junit::JUnit>>,
}

/// Builds the reporters for stdout and any report files.
pub fn build(options: &ReportOptions<'_>) -> Reporters {
    let format = match options.format {
        Format::Auto => match ci::detect() {
            Some(ci::Flavor::GitHub) => Format::Github,
            Some(ci::Flavor::GitLab) => Format::Gitlab,
            None => Format::Human,
        },
        other => other,
    };
    let stdout: Arc<dyn Reporter> = match format {
        Format::Json => Arc::new(json::Json::stdout()),
        Format::Github | Format::Gitlab => {
            let flavor = if format == Format::Github {
                ci::Flavor::GitHub
            } else {
                ci::Flavor::GitLab
            };
            Arc::new(
                ci::Ci::new(
                    flavor,
                    Box::new(std::io::stdout()),
                    options.secrets,
                    ci::GitHubFiles::from_env(),
                )
                .with_rebase(ci::Rebase::from_env(flavor, options.manifest_dir)),
            )
        }
        Format::Auto | Format::Human => {
            let color = match options.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                // anstream decides as clap does for `--help`: a terminal,
                // unless `NO_COLOR` (or `CLICOLOR=0`, or `TERM=dumb`) says
                // no; `CLICOLOR_FORCE` says yes.
                ColorChoice::Auto => {
                    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
                }
            };
            let terminal = std::io::stdout().is_terminal()
                && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
            let live = options
                .live_steps
                .filter(|_| terminal)
                .map(|steps| live::Live::stdout(steps, color));
            Arc::new(
                human::Human::stdout(options.verbose, options.label_jobs)
                    .with_color(color)
                    .with_raw_controls(terminal)
                    .with_live(live),
            )
        }
    };
    let junit = options
        .junit
        .clone()
        .map(|path| Arc::new(junit::JUnit::new(path)));
    let reporter: Arc<dyn Reporter> = match &junit {
        Some(junit) => Arc::new(Tee(vec![stdout, junit.clone()])),
        None => stdout,
    };
    Reporters { reporter, junit }
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(visible("plain\ttext\nnext"), "plain\ttext\nnext");
        let hostile = "\x1b]0;title\x07\x1b[2J50%\r\u{9b}31m\x7f";
        assert_eq!(
            visible(hostile),
            "\\x1b]0;title\\x07\\x1b[2J50%\\x0d\\u{9b}31m\\x7f"
        );
    }

    #[test]
    fn annotations_read_as_compiler_locations() {
        let mut annotation = crate::abi::Annotation {
            file: Some("src/app.c".into()),
            line: Some(3),
            col: Some(5),
            ..Default::default()
        };
        assert_eq!(
            super::located("error", "boom", &annotation, None),
            "src/app.c:3:5: error: boom"
        );
        assert_eq!(
            super::located("error", "boom", &annotation, Some("deploy/src/app.c")),
            "deploy/src/app.c:3:5: error: boom"
        );
        annotation.col = None;
        annotation.title = Some("Lint".into());
        assert_eq!(
            super::located("warning", "w", &annotation, None),
            "src/app.c:3: warning: Lint: w"
        );
        annotation.file = None;
        assert_eq!(
            super::located("notice", "n", &annotation, None),
            "notice: Lint: n"
        );
    }
}
