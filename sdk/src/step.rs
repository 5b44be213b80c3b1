//! Phases and dispatch: the [`Step`] trait, and [`run`], which picks the
//! phase from `GANTRY_PHASE`, calls the step and turns its result into an
//! exit status.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;

use crate::context::Context;
use crate::error::{Error, Result};

/// Which hook gantry is running (`GANTRY_PHASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `run`: the step's normal work.
    Run,
    /// `rollback`: compensating for the step after the run failed.
    Rollback,
}

impl Phase {
    /// The word gantry uses.
    ///
    /// ```
    /// assert_eq!(gantry_sdk::Phase::Rollback.as_str(), "rollback");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Run => "run",
            Phase::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = Error;

    /// ```
    /// use gantry_sdk::Phase;
    /// assert_eq!("run".parse::<Phase>()?, Phase::Run);
    /// assert!("cleanup".parse::<Phase>().is_err());
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    fn from_str(text: &str) -> Result<Phase> {
        match text {
            "run" => Ok(Phase::Run),
            "rollback" => Ok(Phase::Rollback),
            other => Err(Error::new(format!(
                "unknown phase `{other}` in GANTRY_PHASE (this SDK knows `run` and `rollback`)"
            ))),
        }
    }
}

/// How the step being compensated ended (`GANTRY_STEP_OUTCOME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The step succeeded; a later step failed.
    Success,
    /// The step itself failed, possibly half-way.
    Failure,
}

impl FromStr for Outcome {
    type Err = Error;

    /// ```
    /// use gantry_sdk::Outcome;
    /// assert_eq!("failure".parse::<Outcome>()?, Outcome::Failure);
    /// # Ok::<(), gantry_sdk::Error>(())
    /// ```
    fn from_str(text: &str) -> Result<Outcome> {
        match text {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            other => Err(Error::new(format!("unknown step outcome `{other}`"))),
        }
    }
}

/// A step: its work, and optionally how to undo it.
///
/// Closures taking `&Context` are steps too (run phase only).
///
/// ```no_run
/// use gantry_sdk::{Context, Result, Step};
///
/// struct Deploy;
///
/// impl Step for Deploy {
///     fn run(&mut self, ctx: &Context) -> Result<()> {
///         let tag: String = ctx.input("tag")?;
///         ctx.save_state("deployed", &tag)?;
///         println!("deploying {tag}");
///         Ok(())
///     }
///
///     fn rollback(&mut self, ctx: &Context) -> Result<()> {
///         if let Some(tag) = ctx.state("deployed") {
///             println!("removing {tag} (step ended: {:?})", ctx.outcome());
///         }
///         Ok(())
///     }
/// }
///
/// gantry_sdk::main!(Deploy);
/// ```
pub trait Step {
    /// The `run` phase.
    fn run(&mut self, ctx: &Context) -> Result<()>;

    /// The `rollback` phase. The default does nothing and succeeds; a
    /// plugin that overrides it should say `"rollback": true` in its
    /// metadata.
    fn rollback(&mut self, ctx: &Context) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
}

impl<F> Step for F
where
    F: FnMut(&Context) -> Result<()>,
{
    fn run(&mut self, ctx: &Context) -> Result<()> {
        self(ctx)
    }
}

/// Calls the hook of `step` that `ctx`'s phase asks for.
///
/// ```
/// use gantry_sdk::{Context, step::dispatch};
///
/// let mut ran = Vec::new();
/// let ctx = Context::from_vars([("GANTRY_PHASE", "run")]);
/// dispatch(&mut |_: &Context| { ran.push("run"); Ok(()) }, &ctx)?;
/// assert_eq!(ran, ["run"]);
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn dispatch<S: Step + ?Sized>(step: &mut S, ctx: &Context) -> Result<()> {
    match ctx.phase()? {
        Phase::Run => step.run(ctx),
        Phase::Rollback => step.rollback(ctx),
    }
}

/// Runs `step` in the phase gantry asks for, with the process's context,
/// and returns the exit status for `main`. An error is printed as an
/// `::error` annotation and gives its exit status (1 unless set); a panic
/// is reported as an `::error` too before the module traps.
///
/// ```no_run
/// use gantry_sdk::Context;
///
/// fn main() -> std::process::ExitCode {
///     gantry_sdk::run(|ctx: &Context| {
///         ctx.set_output("answer", "42")?;
///         Ok(())
///     })
/// }
/// ```
pub fn run<S: Step>(mut step: S) -> ExitCode {
    report_panics();
    let result = dispatch(&mut step, crate::context());
    ExitCode::from(finish(result))
}

/// Prints the failure of `result`, if any, and returns the exit status.
///
/// ```
/// use gantry_sdk::{Error, step::finish};
/// assert_eq!(finish(Ok(())), 0);
/// assert_eq!(finish(Err(Error::new("bad").exit_code(3))), 3);
/// ```
pub fn finish(result: Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(error) => {
            error.annotation().emit();
            error.code()
        }
    }
}

/// Makes a panic print an `::error` annotation, then do what it did before.
fn report_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let mut annotation = crate::log::Annotation::error(message).title("panic");
        if let Some(location) = info.location() {
            annotation = annotation.file(location.file()).line(location.line());
        }
        annotation.emit();
        previous(info);
    }));
}

/// Writes `fn main` for a step: `gantry_sdk::main!(MyStep)` expands to a
/// `main` that calls [`run`](crate::run) with the given value.
///
/// ```no_run
/// use gantry_sdk::{Context, Result, Step};
///
/// #[derive(Default)]
/// struct Hello;
///
/// impl Step for Hello {
///     fn run(&mut self, _ctx: &Context) -> Result<()> {
///         println!("hello");
///         Ok(())
///     }
/// }
///
/// gantry_sdk::main!(Hello::default());
/// ```
#[macro_export]
macro_rules! main {
    ($step:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::run($step)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        calls: Vec<&'static str>,
        fail_run: bool,
    }

    impl Step for Recorder {
        fn run(&mut self, _ctx: &Context) -> Result<()> {
            self.calls.push("run");
            if self.fail_run {
                crate::bail!("run failed");
            }
            Ok(())
        }
        fn rollback(&mut self, ctx: &Context) -> Result<()> {
            self.calls.push(match ctx.outcome() {
                Some(Outcome::Failure) => "rollback after failure",
                _ => "rollback",
            });
            Ok(())
        }
    }

    #[test]
    fn phases_dispatch_to_their_hook() {
        let mut step = Recorder::default();
        dispatch(&mut step, &Context::default()).unwrap();
        let rollback = Context::from_vars([
            ("GANTRY_PHASE", "rollback"),
            ("GANTRY_STEP_OUTCOME", "failure"),
        ]);
        dispatch(&mut step, &rollback).unwrap();
        assert_eq!(step.calls, ["run", "rollback after failure"]);
    }

    #[test]
    fn unknown_phase_runs_nothing() {
        let mut step = Recorder::default();
        let ctx = Context::from_vars([("GANTRY_PHASE", "later")]);
        assert!(dispatch(&mut step, &ctx).is_err());
        assert!(step.calls.is_empty());
    }

    #[test]
    fn errors_become_exit_codes() {
        let mut step = Recorder {
            fail_run: true,
            ..Recorder::default()
        };
        let result = dispatch(&mut step, &Context::default());
        assert_eq!(finish(result), 1);
    }

    #[test]
    fn default_rollback_succeeds() {
        let mut step = |_: &Context| -> Result<()> { Err(Error::new("only run")) };
        let ctx = Context::from_vars([("GANTRY_PHASE", "rollback")]);
        assert!(dispatch(&mut step, &ctx).is_ok());
    }
}
