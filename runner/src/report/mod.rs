//! What a run tells the person or the CI system watching it.
//!
//! The engine describes a run as a sequence of [`Event`]s, already masked;
//! a [`Reporter`] turns them into output. [`human::Human`] writes plain,
//! line-by-line text that reads well in a terminal and in a CI log.

pub mod human;

use std::time::Duration;

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
#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        pipeline: &'a str,
        run_id: &'a str,
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
    },
    StepStarted {
        job: &'a str,
        step: &'a str,
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
    StepSkipped {
        job: &'a str,
        step: &'a str,
        reason: &'a str,
    },
    StepFinished {
        job: &'a str,
        step: &'a str,
        /// `Err` holds the failure reason.
        outcome: Result<(), &'a str>,
        continued_on_error: bool,
        duration: Duration,
    },
    RunFinished {
        success: bool,
        failed_steps: &'a [String],
        summary_path: Option<&'a std::path::Path>,
        duration: Duration,
    },
}

/// Receives a run's events as they happen.
pub trait Reporter: Send + Sync {
    fn report(&self, event: Event<'_>);
}
