//! `--junit PATH`: a JUnit XML report, read by Jenkins, GitLab, Buildkite and
//! Azure Pipelines: a test suite per job instance, a test case per step,
//! failures with their reason and the step's `::error`/`::warning`
//! annotations, each step's log in its `<system-out>`, skipped steps and
//! skipped jobs marked. Written atomically when the run ends.
//!
//! The document keeps to Jenkins' `junit-10.xsd` (the strictest of the
//! readers; the tests validate against a copy of it): no `skipped` count on
//! `<testsuites>`, `errors` on every `<testsuite>`, times as plain decimals.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{Conclusion, Event, Level, Reporter};

/// Collects the run and writes the report at its end.
pub struct JUnit {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pipeline: String,
    /// Suites in the order their jobs started.
    suites: Vec<Suite>,
    /// The step (or rollback hook) running in each job instance.
    running: std::collections::HashMap<String, Running>,
    error: Option<String>,
}

struct Suite {
    name: String,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    time: Duration,
    result: CaseResult,
    /// The step's log, one line each (empty for skipped steps).
    log: Vec<String>,
    /// Its annotations, as `path:line:col: level: message`.
    annotations: Vec<String>,
}

/// What the running step of a job instance printed so far.
#[derive(Default)]
struct Running {
    log: Vec<String>,
    annotations: Vec<String>,
}

enum CaseResult {
    Passed,
    Failed(String),
    Skipped(String),
}

impl JUnit {
    pub fn new(path: PathBuf) -> Self {
        JUnit {
            path,
            state: Mutex::new(State::default()),
        }
    }

    /// Why the report could not be written, if it could not.
    pub fn error(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .clone()
    }
}

impl State {
    fn suite(&mut self, job: &str) -> &mut Suite {
        if let Some(index) = self.suites.iter().position(|s| s.name == job) {
            return &mut self.suites[index];
        }
        self.suites.push(Suite {
            name: job.to_owned(),
            cases: Vec::new(),
        });
        self.suites.last_mut().expect("just pushed")
    }

    fn render(&self) -> String {
        let count = |pick: fn(&Case) -> bool| -> usize {
            self.suites
                .iter()
                .map(|s| s.cases.iter().filter(|c| pick(c)).count())
                .sum()
        };
        let tests = count(|_| true);
        let failures = count(|c| matches!(c.result, CaseResult::Failed(_)));
        let total: Duration = self
            .suites
            .iter()
            .flat_map(|s| &s.cases)
            .map(|c| c.time)
            .sum();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            // junit-10.xsd has no `skipped` on `<testsuites>`: each suite counts its own.
            "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
            escape(&self.pipeline),
            total.as_secs_f64()
        );
        for suite in &self.suites {
            let failures = suite
                .cases
                .iter()
                .filter(|c| matches!(c.result, CaseResult::Failed(_)))
                .count();
            let skipped = suite
                .cases
                .iter()
                .filter(|c| matches!(c.result, CaseResult::Skipped(_)))
                .count();
            let time: Duration = suite.cases.iter().map(|c| c.time).sum();
            let _ = writeln!(
                xml,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
                escape(&suite.name),
                suite.cases.len(),
                time.as_secs_f64()
            );
            for case in &suite.cases {
                let open = format!(
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    escape(&case.name),
                    escape(&suite.name),
                    case.time.as_secs_f64()
                );
                let _ = writeln!(xml, "{open}>");
                match &case.result {
                    CaseResult::Passed => {}
                    CaseResult::Failed(reason) => {
                        // The body says why, then what the step itself
                        // flagged: the reader's failure view shows both.
                        let mut body = reason.clone();
                        for annotation in &case.annotations {
                            body.push('\n');
                            body.push_str(annotation);
                        }
                        let _ = writeln!(
                            xml,
                            "      <failure message=\"{}\" type=\"step failure\">{}</failure>",
                            escape(reason),
                            escape_text(&body)
                        );
                    }
                    CaseResult::Skipped(reason) => {
                        let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(reason));
                    }
                }
                if !case.log.is_empty() {
                    let _ = writeln!(
                        xml,
                        "      <system-out>{}</system-out>",
                        escape_text(&(case.log.join("\n") + "\n"))
                    );
                }
                xml.push_str("    </testcase>\n");
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        xml
    }
}

/// Escaping for element text, where line feeds stay line feeds (a log
/// reads as lines in the reader's view).
fn escape_text(text: &str) -> String {
    escape(text).replace("&#10;", "\n")
}

/// XML text and attribute escaping; characters XML 1.0 cannot hold at all
/// (most control characters) become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

impl Reporter for JUnit {
    fn report(&self, event: Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted { pipeline, .. } => state.pipeline = pipeline.to_owned(),
            Event::JobStarted { job } => {
                state.suite(job);
            }
            Event::JobSkipped { job, reason } => {
                // A job that never ran still shows, as one skipped case, so
                // the reader counts it rather than losing it.
                state.suite(job).cases.push(Case {
                    name: job.to_owned(),
                    time: Duration::ZERO,
                    result: CaseResult::Skipped(format!("job skipped: {reason}")),
                    log: Vec::new(),
                    annotations: Vec::new(),
                });
            }
            Event::StepStarted { job, .. } | Event::RollbackStarted { job, .. } => {
                state.running.insert(job.to_owned(), Running::default());
            }
            Event::StepLog { job, stream, text } => {
                let marker = if stream == crate::sandbox::output::Stream::Stderr {
                    "[stderr] "
                } else {
                    ""
                };
                let running = state.running.entry(job.to_owned()).or_default();
                running.log.push(format!("{marker}{text}"));
            }
            Event::GroupStarted { job, name } => {
                let running = state.running.entry(job.to_owned()).or_default();
                running.log.push(format!("> {name}"));
            }
            Event::StepNote { job, text } => {
                let running = state.running.entry(job.to_owned()).or_default();
                running.log.push(format!("gantry: {text}"));
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                let label = match level {
                    Level::Debug => "debug",
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                    Level::Error => "error",
                };
                let line = super::located(label, message, annotation, None);
                let running = state.running.entry(job.to_owned()).or_default();
                running.log.push(line.clone());
                if matches!(level, Level::Warning | Level::Error) {
                    running.annotations.push(line);
                }
            }
            Event::StepSkipped { job, step, reason } => state.suite(job).cases.push(Case {
                name: step.name.to_owned(),
                time: Duration::ZERO,
                result: CaseResult::Skipped(reason.to_owned()),
                log: Vec::new(),
                annotations: Vec::new(),
            }),
            Event::StepFinished {
                job,
                step,
                outcome,
                status,
                duration,
                ..
            } => {
                let result = match (outcome, status) {
                    (Ok(()), _) => CaseResult::Passed,
                    (Err(reason), Conclusion::Cancelled) => CaseResult::Skipped(reason.to_owned()),
                    (Err(reason), _) => CaseResult::Failed(reason.to_owned()),
                };
                let running = state.running.remove(job).unwrap_or_default();
                state.suite(job).cases.push(Case {
                    name: step.name.to_owned(),
                    time: duration,
                    result,
                    log: running.log,
                    annotations: running.annotations,
                });
            }
            Event::RollbackFinished {
                job,
                step,
                outcome,
                duration,
            } => {
                let result = match outcome {
                    Ok(()) => CaseResult::Passed,
                    Err(reason) => CaseResult::Failed(reason.to_owned()),
                };
                let running = state.running.remove(job).unwrap_or_default();
                state.suite(job).cases.push(Case {
                    name: format!("rollback of {}", step.name),
                    time: duration,
                    result,
                    log: running.log,
                    annotations: running.annotations,
                });
            }
            Event::RunFinished { .. } => {
                let xml = state.render();
                let written = match self.path.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => {
                        std::fs::create_dir_all(parent)
                    }
                    _ => Ok(()),
                }
                .and_then(|()| crate::fsutil::write_atomic(&self.path, xml.as_bytes()));
                if let Err(e) = written {
                    state.error = Some(format!(
                        "cannot write the JUnit report to `{}`: {e}",
                        self.path.display()
                    ));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_xml_well_formed() {
        assert_eq!(
            escape("a<b & \"c\"\n\u{1b}"),
            "a&lt;b &amp; &quot;c&quot;&#10;\u{FFFD}"
        );
    }
}
