//! Plain text for people: each step's start, its log lines indented under
//! it, its outcome and duration, and failures in plain words.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Level, Reporter};
use crate::sandbox::human_duration;
use crate::sandbox::output::Stream;

/// Writes human-readable progress to a stream (stdout by default).
pub struct Human {
    out: Mutex<Box<dyn Write + Send>>,
    verbose: bool,
    group_depth: Mutex<usize>,
}

impl Human {
    pub fn new(out: Box<dyn Write + Send>, verbose: bool) -> Self {
        Human {
            out: Mutex::new(out),
            verbose,
            group_depth: Mutex::new(0),
        }
    }

    pub fn stdout(verbose: bool) -> Self {
        Human::new(Box::new(std::io::stdout()), verbose)
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stdout (`gantry run | head`) must not stop the run.
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn log_indent(&self) -> String {
        let depth = *self.group_depth.lock().unwrap_or_else(|e| e.into_inner());
        " ".repeat(4 + 2 * depth)
    }
}

impl Reporter for Human {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::RunStarted { pipeline, run_id } => {
                self.line(&format!("gantry: running `{pipeline}` (run {run_id})"));
            }
            Event::JobStarted { job } => self.line(&format!("job {job}")),
            Event::JobSkipped { job, reason } => {
                self.line(&format!("job {job}: skipped ({reason})"))
            }
            Event::JobFinished { job, conclusion } => {
                self.line(&format!("job {job}: {}", conclusion.as_str()));
            }
            Event::StepStarted { step, plugin, .. } => {
                *self.group_depth.lock().unwrap_or_else(|e| e.into_inner()) = 0;
                self.line(&format!("  step {step} [{plugin}]"));
            }
            Event::StepLog { stream, text } => {
                let marker = match stream {
                    Stream::Stdout => "",
                    Stream::Stderr => "[stderr] ",
                };
                self.line(&format!("{}{marker}{text}", self.log_indent()));
            }
            Event::StepAnnotation {
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
                let mut text = format!("{}{label}: ", self.log_indent());
                if let Some(title) = &annotation.title {
                    text.push_str(&format!("{title}: "));
                }
                text.push_str(message);
                if let Some(file) = &annotation.file {
                    text.push_str(&format!(" ({file}"));
                    if let Some(line) = annotation.line {
                        text.push_str(&format!(":{line}"));
                        if let Some(col) = annotation.col {
                            text.push_str(&format!(":{col}"));
                        }
                    }
                    text.push(')');
                }
                self.line(&text);
            }
            Event::GroupStarted { name } => {
                self.line(&format!("{}> {name}", self.log_indent()));
                *self.group_depth.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
            Event::GroupEnded => {
                let mut depth = self.group_depth.lock().unwrap_or_else(|e| e.into_inner());
                *depth = depth.saturating_sub(1);
            }
            Event::StepNote { text } => self.line(&format!("{}gantry: {text}", self.log_indent())),
            Event::StepSkipped { step, reason } => self.line(&format!("  skip {step}: {reason}")),
            Event::StepFinished {
                step,
                outcome,
                continued_on_error,
                duration,
            } => {
                let took = human_duration(duration);
                match outcome {
                    Ok(()) => self.line(&format!("  ok   {step} ({took})")),
                    Err(reason) => {
                        let tail = if continued_on_error {
                            " [continue-on-error]"
                        } else {
                            ""
                        };
                        self.line(&format!("  FAIL {step} ({took}): {reason}{tail}"));
                    }
                }
            }
            Event::RunFinished {
                success,
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
                let took = human_duration(duration);
                if success {
                    self.line(&format!("gantry: run succeeded in {took}"));
                } else if failed_steps.is_empty() {
                    self.line(&format!("gantry: run failed in {took}"));
                } else {
                    self.line(&format!(
                        "gantry: run failed in {took}: {} failed",
                        failed_steps.join(", ")
                    ));
                }
            }
        }
    }
}
