//! Plain text for people: each step's start, its log lines indented under
//! it, its outcome and duration, and failures in plain words. When a
//! pipeline can run several jobs at once, every line inside a job starts
//! with `[job]` so interleaved lines stay attributable. On a terminal,
//! [`Live`] progress lines follow the running jobs below the text.
//!
//! Text from a step or the manifest is written with its control characters
//! made visible ([`visible`]) unless stdout is a terminal, where a tool's
//! colours are let through: piped or redirected output then never holds a
//! raw escape sequence, a bell or a lone carriage return.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use super::live::Live;
use super::{Event, Level, Reporter, run_verdict, visible};
use crate::display::human_duration;
use crate::sandbox::output::Stream;

/// Writes human-readable progress to a stream (stdout by default).
pub struct Human {
    out: Mutex<Box<dyn Write + Send>>,
    verbose: bool,
    label_jobs: bool,
    color: bool,
    /// Step text keeps its control characters (stdout is a terminal).
    raw_controls: bool,
    /// `::group::` nesting per job instance.
    group_depth: Mutex<HashMap<String, usize>>,
    live: Option<Live>,
}

impl Human {
    /// `label_jobs` prefixes every line inside a job with its name.
    pub fn new(out: Box<dyn Write + Send>, verbose: bool, label_jobs: bool) -> Self {
        Human {
            out: Mutex::new(out),
            verbose,
            label_jobs,
            color: false,
            raw_controls: false,
            group_depth: Mutex::new(HashMap::new()),
            live: None,
        }
    }

    pub fn stdout(verbose: bool, label_jobs: bool) -> Self {
        Human::new(Box::new(std::io::stdout()), verbose, label_jobs)
    }

    /// Colours outcomes (green ok, red FAIL, yellow skip) with ANSI codes.
    pub fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Lets control characters in step text through (for a terminal, where
    /// a tool's colours are wanted).
    pub fn with_raw_controls(mut self, raw: bool) -> Self {
        self.raw_controls = raw;
        self
    }

    /// Text from a step or the manifest, as it may be written.
    fn shown<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.raw_controls {
            Cow::Borrowed(text)
        } else {
            visible(text)
        }
    }

    /// Shows live progress below the lines (for a terminal).
    pub fn with_live(mut self, live: Option<Live>) -> Self {
        self.live = live;
        self
    }

    /// `text` in ANSI colour `code` when colour is on.
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A line inside job `job`.
    fn job_line(&self, job: &str, text: &str) {
        if self.label_jobs {
            self.line(&format!("[{}] {text}", self.shown(job)));
        } else {
            self.line(text);
        }
    }

    fn depth(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.group_depth.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn line(&self, text: &str) {
        let write = || {
            let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
            // A closed stdout (`gantry run | head`) must not stop the run.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        };
        match &self.live {
            Some(live) => live.print(write),
            None => write(),
        }
    }

    fn log_indent(&self, job: &str) -> String {
        let depth = self.depth().get(job).copied().unwrap_or(0);
        " ".repeat(4 + 2 * depth)
    }
}

impl Reporter for Human {
    fn report(&self, event: Event<'_>) {
        if let Some(live) = &self.live {
            live.update(&event);
        }
        match event {
            Event::RunStarted {
                pipeline,
                run_id,
                state_dir,
            } => {
                let pipeline = self.shown(pipeline);
                self.line(&format!("gantry: running `{pipeline}` (run {run_id})"));
                self.line(&format!("gantry: state folder {}", state_dir.display()));
            }
            Event::JobStarted { job } => self.line(&format!("job {}", self.shown(job))),
            Event::JobSkipped { job, reason } => {
                let (job, reason) = (self.shown(job), self.shown(reason));
                self.line(&format!("job {job}: skipped ({reason})"))
            }
            Event::JobFinished {
                job, conclusion, ..
            } => {
                let job = self.shown(job);
                self.line(&format!("job {job}: {}", conclusion.as_str()));
            }
            Event::StepStarted { job, step, plugin } => {
                self.depth().remove(job);
                let (name, plugin) = (self.shown(step.name), self.shown(plugin));
                self.job_line(job, &format!("  step {name} [{plugin}]"));
            }
            Event::StepLog { job, stream, text } => {
                let marker = match stream {
                    Stream::Stdout => "",
                    Stream::Stderr => "[stderr] ",
                };
                let text = self.shown(text);
                self.job_line(job, &format!("{}{marker}{text}", self.log_indent(job)));
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                if level == Level::Debug && !self.verbose {
                    return;
                }
                let label = match level {
                    Level::Debug => "debug",
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                    Level::Error => "error",
                };
                let mut text = format!("{}{label}: ", self.log_indent(job));
                if let Some(title) = &annotation.title {
                    text.push_str(&format!("{}: ", self.shown(title)));
                }
                text.push_str(&self.shown(message));
                if let Some(file) = &annotation.file {
                    text.push_str(&format!(" ({}", self.shown(file)));
                    if let Some(line) = annotation.line {
                        text.push_str(&format!(":{line}"));
                        if let Some(col) = annotation.col {
                            text.push_str(&format!(":{col}"));
                        }
                    }
                    text.push(')');
                }
                self.job_line(job, &text);
            }
            Event::GroupStarted { job, name } => {
                let name = self.shown(name);
                self.job_line(job, &format!("{}> {name}", self.log_indent(job)));
                *self.depth().entry(job.to_owned()).or_default() += 1;
            }
            Event::GroupEnded { job } => {
                if let Some(depth) = self.depth().get_mut(job) {
                    *depth = depth.saturating_sub(1);
                }
            }
            Event::StepNote { job, text } => {
                let text = self.shown(text);
                self.job_line(job, &format!("{}gantry: {text}", self.log_indent(job)))
            }
            Event::NetworkDenied {
                job,
                step,
                destination,
                reason,
            } => {
                let text = super::ci::network_denied(step, destination, reason);
                let warning = self.paint("33", "warning");
                let text = self.shown(&text);
                self.job_line(
                    job,
                    &format!("{}gantry: {warning}: {text}", self.log_indent(job)),
                )
            }
            Event::StepSkipped { job, step, reason } => {
                let (name, reason) = (self.shown(step.name), self.shown(reason));
                let skip = self.paint("33", "skip");
                self.job_line(job, &format!("  {skip} {name}: {reason}"))
            }
            Event::StepFinished {
                job,
                step,
                outcome,
                continued_on_error,
                duration,
                ..
            } => {
                let step = self.shown(step.name);
                let took = human_duration(duration);
                match outcome {
                    Ok(()) => self.job_line(
                        job,
                        &format!("  {}   {step} ({took})", self.paint("32", "ok")),
                    ),
                    Err(reason) => {
                        let tail = if continued_on_error {
                            " [continue-on-error]"
                        } else {
                            ""
                        };
                        let fail = self.paint("31", "FAIL");
                        let reason = self.shown(reason);
                        self.job_line(job, &format!("  {fail} {step} ({took}): {reason}{tail}"));
                    }
                }
            }
            Event::RollbackStarted {
                job,
                step,
                plugin,
                outcome,
            } => self.job_line(
                job,
                &format!(
                    "  {} {} [{}] (the step's outcome: {outcome})",
                    self.paint("35", "rollback"),
                    self.shown(step.name),
                    self.shown(plugin)
                ),
            ),
            Event::RollbackFinished {
                job,
                step,
                outcome,
                duration,
            } => {
                let took = human_duration(duration);
                let name = self.shown(step.name);
                let line = match outcome {
                    Ok(()) => format!("  {} rolled back {name} ({took})", self.paint("32", "ok")),
                    Err(reason) => format!(
                        "  {} rollback of {name} ({took}): {}",
                        self.paint("31", "FAIL"),
                        self.shown(reason)
                    ),
                };
                self.job_line(job, &line);
            }
            Event::RunFinished {
                verdict,
                failed_steps,
                summary_path,
                duration,
            } => {
                if let Some(path) = summary_path {
                    self.line(&format!(
                        "gantry: step summaries written to {}",
                        path.display()
                    ));
                }
                let verdict = run_verdict(verdict, failed_steps, duration);
                self.line(&self.shown(&verdict));
            }
        }
    }
}
