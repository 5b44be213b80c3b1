//! Logs that look native inside a CI system's own job log.
//!
//! GitHub Actions (`--format github`, automatic when `GITHUB_ACTIONS=true`)
//! gets each step's log in a `::group::`, its annotations passed on as
//! workflow commands, a failed step as an `::error title=…::`, every secret
//! registered with `::add-mask::` before anything else is printed, a run
//! summary appended to `$GITHUB_STEP_SUMMARY` and the jobs' outputs written
//! to `$GITHUB_OUTPUT`. GitLab CI (`--format gitlab`, automatic when
//! `GITLAB_CI=true`) gets a collapsible section per step.
//!
//! Jobs run in parallel and a CI log has no notion of interleaved groups, so
//! each step's lines are held back and printed together when it finishes.
//! A step's own text is printed between `::stop-commands::` markers, so a
//! guest can never issue commands to the CI runner hosting gantry, with its
//! control characters made visible ([`visible`]), so it cannot forge a
//! GitLab section marker either. Every other line is gantry's own, and any
//! text in it that a step or the manifest wrote goes through one function,
//! [`host_text`] (or, inside a workflow command, GitHub's own escaping of
//! its visible form): it can neither end the line nor start a command.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Event, Level, Reporter, Verdict, run_verdict, visible};
use crate::display::human_duration;
use crate::sandbox::output::Stream;
use crate::secrets::Secrets;

/// Which CI system's conventions to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    GitHub,
    GitLab,
}

/// Where GitHub Actions wants the run's summary and outputs.
#[derive(Debug, Clone, Default)]
pub struct GitHubFiles {
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
}

impl GitHubFiles {
    pub fn from_env() -> Self {
        let path = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        GitHubFiles {
            step_summary: path("GITHUB_STEP_SUMMARY"),
            output: path("GITHUB_OUTPUT"),
        }
    }
}

/// A CI reporter.
pub struct Ci {
    flavor: Flavor,
    files: GitHubFiles,
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    /// The running step of each job instance and what it printed so far.
    steps: HashMap<String, StepBuffer>,
    /// Every step's result, for the summary table.
    rows: Vec<Row>,
    outputs: Vec<(String, BTreeMap<String, String>)>,
    sections: usize,
}

#[derive(Default)]
struct StepBuffer {
    name: String,
    lines: Vec<String>,
    annotations: Vec<String>,
    started: Option<SystemTime>,
}

struct Row {
    job: String,
    step: String,
    status: &'static str,
    duration: Duration,
}

impl Ci {
    /// Creates the reporter; for GitHub, registers every secret with
    /// `::add-mask::` at once, before any other line.
    pub fn new(
        flavor: Flavor,
        mut out: Box<dyn Write + Send>,
        secrets: &Secrets,
        files: GitHubFiles,
    ) -> Self {
        if flavor == Flavor::GitHub {
            for (_, value) in secrets.iter() {
                // GitHub masks line by line, so a multi-line secret is also
                // registered one line at a time.
                let lines = value.lines().filter(|_| value.contains('\n'));
                for part in std::iter::once(value).chain(lines) {
                    if !part.trim().is_empty() {
                        let _ = writeln!(out, "::add-mask::{}", escape_data(part));
                    }
                }
            }
            let _ = out.flush();
        }
        Ci {
            flavor,
            files,
            state: Mutex::new(State {
                out,
                steps: HashMap::new(),
                rows: Vec::new(),
                outputs: Vec::new(),
                sections: 0,
            }),
        }
    }
}

impl State {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

/// GitHub's escaping of a command's message (`%25`, `%0D`, `%0A`), with
/// every other control character made visible.
/// The words of a refused request, the same in every format.
pub fn network_denied(step: &str, destination: &str, reason: &str) -> String {
    format!("step `{step}` was refused {destination}: {reason}")
}

fn escape_data(text: &str) -> String {
    let escaped = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    visible(&escaped).into_owned()
}

/// Text a step or the manifest wrote, made safe to put on a line gantry
/// writes to the CI host's log (a GitHub or GitLab job log) outside any
/// workflow command: `%`, CR and LF are escaped as in GitHub's commands
/// (`%25`, `%0D`, `%0A`), so the text can neither end the line nor start
/// another; other control characters are made visible, so no ESC-led
/// GitLab section marker or terminal sequence gets through; and a `::`
/// that would open the line is escaped too (`%3A:`), in case the text is
/// put first.
pub fn host_text(text: &str) -> String {
    no_command_start(escape_data(text))
}

/// One line of gantry's own text for a CI host's log, kept readable (no
/// `%` escaping) but unable to issue a command: control characters are
/// made visible (a CR or LF could start a new line) and a `::` opening
/// the line is escaped.
pub fn host_line(text: &str) -> String {
    no_command_start(super::visible(text).replace('\n', "\\x0a"))
}

/// `text` with a `::` that opens it (after blanks) escaped as `%3A:`, so
/// the host never reads it as a workflow command.
fn no_command_start(mut text: String) -> String {
    let indent = text.len() - text.trim_start().len();
    if text[indent..].starts_with("::") {
        text.replace_range(indent..indent + 1, "%3A");
    }
    text
}

/// GitHub's escaping of a command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The most GitHub Actions takes in one step's `$GITHUB_STEP_SUMMARY`.
const GITHUB_STEP_SUMMARY_LIMIT: u64 = 1 << 20;

/// A token no step can guess, to switch command processing off and on:
/// 128 bits from the kernel's random source (time and pid only where it
/// cannot be read, which a step could guess).
fn stop_token() -> String {
    use std::io::Read;
    let mut random = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
    if read.is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("gantry-{:x}-{:x}", nanos, std::process::id());
    }
    format!("gantry-{}", crate::digest::hex(&random))
}

impl Reporter for Ci {
    fn report(&self, event: Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted {
                pipeline, run_id, ..
            } => {
                let pipeline = host_text(pipeline);
                state.line(&format!("gantry: running `{pipeline}` (run {run_id})"));
            }
            Event::JobStarted { job } => {
                state.line(&format!("gantry: job {} started", host_text(job)));
            }
            Event::JobSkipped { job, reason } => {
                let (job, reason) = (host_text(job), host_text(reason));
                state.line(&format!("gantry: job {job} skipped ({reason})"));
            }
            Event::JobFinished {
                job,
                conclusion,
                outputs,
            } => {
                let shown = host_text(job);
                state.line(&format!("gantry: job {shown}: {}", conclusion.as_str()));
                if !outputs.is_empty() {
                    state.outputs.push((job.to_owned(), outputs.clone()));
                }
            }
            Event::StepStarted { job, step, plugin } => {
                state.steps.insert(
                    job.to_owned(),
                    StepBuffer {
                        name: format!("{job} / {} [{plugin}]", step.name),
                        started: Some(SystemTime::now()),
                        ..StepBuffer::default()
                    },
                );
            }
            Event::StepLog { job, stream, text } => {
                let marker = if stream == Stream::Stderr {
                    "[stderr] "
                } else {
                    ""
                };
                let buffer = state.steps.entry(job.to_owned()).or_default();
                // The step's own line, as it wrote it but for its control
                // characters: inside the stop-commands region on GitHub.
                buffer.lines.push(format!("{marker}{}", visible(text)));
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                let flavor = self.flavor;
                let buffer = state.steps.entry(job.to_owned()).or_default();
                let label = match level {
                    Level::Debug => "debug",
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                    Level::Error => "error",
                };
                if flavor == Flavor::GitHub {
                    let mut properties = Vec::new();
                    let mut property = |key: &str, value: Option<String>| {
                        if let Some(value) = value {
                            properties.push(format!("{key}={}", escape_property(&value)));
                        }
                    };
                    property("title", annotation.title.clone());
                    property("file", annotation.file.clone());
                    property("line", annotation.line.map(|n| n.to_string()));
                    property("col", annotation.col.map(|n| n.to_string()));
                    let properties = if properties.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", properties.join(","))
                    };
                    buffer
                        .annotations
                        .push(format!("::{label}{properties}::{}", escape_data(message)));
                } else {
                    buffer
                        .lines
                        .push(format!("{label}: {}", host_text(message)));
                }
            }
            Event::GroupStarted { job, name } => {
                let buffer = state.steps.entry(job.to_owned()).or_default();
                buffer.lines.push(format!("> {}", host_text(name)));
            }
            Event::GroupEnded { .. } => {}
            Event::StepNote { job, text } => {
                let buffer = state.steps.entry(job.to_owned()).or_default();
                buffer.lines.push(format!("gantry: {}", host_text(text)));
            }
            Event::NetworkDenied {
                job,
                step,
                destination,
                reason,
            } => {
                let flavor = self.flavor;
                let buffer = state.steps.entry(job.to_owned()).or_default();
                let text = network_denied(step, destination, reason);
                if flavor == Flavor::GitHub {
                    buffer.annotations.push(format!(
                        "::warning title={}::{}",
                        escape_property("gantry: network refused"),
                        escape_data(&text)
                    ));
                } else {
                    buffer
                        .lines
                        .push(format!("gantry: warning: {}", host_text(&text)));
                }
            }
            Event::StepSkipped { job, step, reason } => {
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: step.name.to_owned(),
                    status: "skipped",
                    duration: Duration::ZERO,
                });
                let (shown_job, name) = (host_text(job), host_text(step.name));
                let reason = host_text(reason);
                state.line(&format!("gantry: {shown_job} / {name} skipped: {reason}"));
            }
            Event::StepFinished {
                job,
                step,
                outcome,
                status,
                continued_on_error,
                duration,
                ..
            } => {
                let buffer = state.steps.remove(job).unwrap_or_default();
                let verdict = match outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(reason) => format!("{}: {reason}", status.as_str()),
                };
                let header = format!("{} ({verdict}, {})", buffer.name, human_duration(duration));
                self.print_step(&mut state, &header, &buffer);
                if let Err(reason) = outcome
                    && self.flavor == Flavor::GitHub
                {
                    let level = if continued_on_error {
                        "warning"
                    } else {
                        "error"
                    };
                    let title = escape_property(&format!("{job} / {} failed", step.name));
                    state.line(&format!("::{level} title={title}::{}", escape_data(reason)));
                }
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: step.name.to_owned(),
                    status: status.as_str(),
                    duration,
                });
            }
            Event::RollbackStarted {
                job,
                step,
                plugin,
                outcome,
            } => {
                state.steps.insert(
                    job.to_owned(),
                    StepBuffer {
                        name: format!(
                            "{job} / rollback of {} [{plugin}] (step {outcome})",
                            step.name
                        ),
                        started: Some(SystemTime::now()),
                        ..StepBuffer::default()
                    },
                );
            }
            Event::RollbackFinished {
                job,
                step,
                outcome,
                duration,
            } => {
                let buffer = state.steps.remove(job).unwrap_or_default();
                let verdict = match outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(reason) => format!("failure: {reason}"),
                };
                let header = format!("{} ({verdict}, {})", buffer.name, human_duration(duration));
                self.print_step(&mut state, &header, &buffer);
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: format!("rollback of {}", step.name),
                    status: if outcome.is_ok() {
                        "success"
                    } else {
                        "failure"
                    },
                    duration,
                });
                if let Err(reason) = outcome
                    && self.flavor == Flavor::GitHub
                {
                    let title =
                        escape_property(&format!("{job} / rollback of {} failed", step.name));
                    state.line(&format!("::error title={title}::{}", escape_data(reason)));
                }
            }
            Event::RunFinished {
                verdict: outcome,
                failed_steps,
                summary_path,
                duration,
            } => {
                let success = outcome.succeeded();
                let mut verdict = run_verdict(outcome, failed_steps, duration);
                if outcome == Verdict::Failed && failed_steps.is_empty() {
                    // The annotations above say why.
                    verdict.push_str(": see above");
                }
                state.line(&host_text(&verdict));
                if self.flavor == Flavor::GitHub {
                    let problems = self.write_github_files(&state, success, summary_path);
                    for problem in problems {
                        state.line(&format!(
                            "::warning title=gantry::{}",
                            escape_data(&problem)
                        ));
                    }
                }
            }
        }
    }
}

impl Ci {
    fn print_step(&self, state: &mut State, header: &str, buffer: &StepBuffer) {
        match self.flavor {
            Flavor::GitHub => {
                let token = stop_token();
                state.line(&format!("::group::{}", escape_data(header)));
                state.line(&format!("::stop-commands::{token}"));
                for line in &buffer.lines {
                    state.line(line);
                }
                state.line(&format!("::{token}::"));
                state.line("::endgroup::");
                for annotation in &buffer.annotations {
                    state.line(annotation);
                }
            }
            Flavor::GitLab => {
                state.sections += 1;
                let id = format!("gantry_step_{}", state.sections);
                let started = buffer
                    .started
                    .unwrap_or_else(SystemTime::now)
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let ended = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // GitLab's section markers; the header follows on the same line.
                state.line(&format!(
                    "\x1b[0Ksection_start:{started}:{id}[collapsed=true]\r\x1b[0K{}",
                    host_text(header)
                ));
                for line in &buffer.lines {
                    state.line(line);
                }
                state.line(&format!("\x1b[0Ksection_end:{ended}:{id}\r\x1b[0K"));
            }
        }
    }

    /// Appends the run summary to `$GITHUB_STEP_SUMMARY` and the jobs'
    /// outputs to `$GITHUB_OUTPUT`; returns what could not be written.
    fn write_github_files(
        &self,
        state: &State,
        success: bool,
        summary_path: Option<&std::path::Path>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(path) = &self.files.step_summary {
            let verdict = if success { "succeeded" } else { "failed" };
            let mut text = format!(
                "## gantry run {verdict}\n\n| job | step | outcome | duration |\n| --- | --- | --- | --- |\n"
            );
            for row in &state.rows {
                text.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    table_cell(&row.job),
                    table_cell(&row.step),
                    row.status,
                    human_duration(row.duration)
                ));
            }
            // GitHub refuses a step summary over 1 MiB whole: the steps'
            // summaries go in only as far as they fit, the rest pointed to.
            let room = GITHUB_STEP_SUMMARY_LIMIT.saturating_sub(text.len() as u64 + 1024);
            let steps_summary = summary_path.and_then(|path| {
                crate::fsutil::read_regular_file_capped(path, room)
                    .ok()
                    .map(|read| (path, read))
            });
            match steps_summary {
                Some((_, Some(bytes))) if !bytes.trim_ascii().is_empty() => {
                    text.push('\n');
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    if !bytes.ends_with(b"\n") {
                        text.push('\n');
                    }
                }
                Some((path, None)) => text.push_str(&format!(
                    "\nThe steps' summaries are larger than a GitHub step summary may be (1 MiB); they are in `{}`.\n",
                    table_cell(&path.display().to_string())
                )),
                _ => {}
            }
            if let Err(e) = append(path, &text) {
                problems.push(format!("cannot append to {}: {e}", path.display()));
            }
        }
        if let Some(path) = &self.files.output {
            let mut text = String::new();
            for (job, outputs) in &state.outputs {
                for (name, value) in outputs {
                    let key = format!("{}-{name}", output_key(job));
                    let delimiter = format!("gantry_{}", stop_token());
                    text.push_str(&format!("{key}<<{delimiter}\n{value}\n{delimiter}\n"));
                }
            }
            if !text.is_empty()
                && let Err(e) = append(path, &text)
            {
                problems.push(format!("cannot append to {}: {e}", path.display()));
            }
        }
        problems
    }
}

/// A job instance's name as an output key: `build (linux)` → `build-linux`.
fn output_key(job: &str) -> String {
    let mut key = String::new();
    for c in job.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            key.push(c);
        } else if !key.ends_with('-') {
            key.push('-');
        }
    }
    key.trim_end_matches('-').to_owned()
}

fn table_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Which CI system, if any, gantry is running inside.
pub fn detect() -> Option<Flavor> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| v == "true");
    if set("GITHUB_ACTIONS") {
        Some(Flavor::GitHub)
    } else if set("GITLAB_CI") {
        Some(Flavor::GitLab)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_tokens_are_random_and_host_lines_issue_no_command() {
        let (a, b) = (stop_token(), stop_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), "gantry-".len() + 32, "{a}");
        assert_eq!(host_line("  ::error::x"), "  %3A:error::x");
        assert_eq!(host_line("a\r::b 100%"), "a\\x0d::b 100%");
    }

    #[test]
    fn escaping_follows_github() {
        assert_eq!(escape_data("50%\r\nnext"), "50%25%0D%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn host_text_cannot_end_a_line_or_start_a_command() {
        let hostile = "linux\n::error title=x::injected\r50%\x1b[0Ksection_end:1:x";
        let shown = host_text(hostile);
        assert!(!shown.contains(['\n', '\r', '\x1b']), "{shown}");
        assert_eq!(
            shown,
            "linux%0A::error title=x::injected%0D50%25\\x1b[0Ksection_end:1:x"
        );
        assert_eq!(host_text("  ::stop-commands::x"), "  %3A:stop-commands::x");
        assert_eq!(host_text("build (linux)"), "build (linux)");
    }

    #[test]
    fn output_keys_are_plain() {
        assert_eq!(output_key("build (linux, 1)"), "build-linux-1");
        assert_eq!(output_key("deploy"), "deploy");
    }
}
