//! Logs that look native inside a CI system's own job log.
//!
//! GitHub Actions (`--format github`, automatic when `GITHUB_ACTIONS=true`)
//! gets each step's log in a `::group::`, a result line after it, its
//! annotations passed on as workflow commands, a failed step as an
//! `::error title=…::`, every secret registered with `::add-mask::` before
//! anything else is printed, a run summary appended to
//! `$GITHUB_STEP_SUMMARY` and the jobs' outputs written to `$GITHUB_OUTPUT`.
//! GitLab CI (`--format gitlab`, automatic when `GITLAB_CI=true`) gets a
//! section per step, annotations as `path:line:col: level: message` lines.
//!
//! Lines are printed as they come, so a long step is seen working and a
//! cancelled CI job keeps what was printed. A CI log cannot interleave
//! groups, so one job at a time is *live*: its steps' lines stream into
//! their group; what parallel jobs print meanwhile is held, in order, and
//! printed when the live job is between steps. No job's own lines are ever
//! reordered. A group is opened before its step's verdict is known, so the
//! verdict follows it on a result line (GitHub cannot rename a group), and a
//! GitLab section is collapsed only when its step is already known to have
//! succeeded as it is printed: a failure, or a step still running, stays open.
//!
//! A step's own text is printed between `::stop-commands::` markers, so a
//! guest can never issue commands to the CI runner hosting gantry, with its
//! control characters made visible ([`visible`]), so it cannot forge a
//! GitLab section marker either. Every other line is gantry's own, and any
//! text in it that a step or the manifest wrote goes through one function,
//! [`host_text`] (or, inside a workflow command, GitHub's own escaping of
//! its visible form): it can neither end the line nor start a command.
//!
//! Annotation paths are relative to the manifest's folder; the CI host
//! resolves them against its checkout (`GITHUB_WORKSPACE`,
//! `CI_PROJECT_DIR`), so when the manifest lies below it they are rebased
//! ([`Rebase`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Event, Level, Reporter, Verdict, located, run_verdict, visible};
use crate::abi::Annotation;
use crate::display::human_duration;
use crate::sandbox::output::Stream;
use crate::secrets::Secrets;

/// Which CI system's conventions to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    GitHub,
    GitLab,
}

impl Flavor {
    /// The variable naming the checkout the host resolves paths against.
    pub fn workspace_variable(self) -> &'static str {
        match self {
            Flavor::GitHub => "GITHUB_WORKSPACE",
            Flavor::GitLab => "CI_PROJECT_DIR",
        }
    }
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

/// How an annotation's `file` (relative to the manifest's folder, or under
/// the guest's `/workspace`) becomes a path the CI host resolves against its
/// checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebase {
    /// The manifest's folder relative to the checkout (`deploy`, or empty
    /// when the manifest is at its root); `None` when the manifest is not
    /// inside the checkout, and paths are left as the step wrote them.
    prefix: Option<String>,
}

impl Rebase {
    /// Paths stay as the step wrote them.
    pub fn none() -> Self {
        Rebase::default()
    }

    /// The rebase for a manifest in `manifest_dir` and a checkout at
    /// `checkout` (either may be relative to the current folder).
    pub fn new(manifest_dir: &Path, checkout: &Path) -> Self {
        let (Ok(dir), Ok(root)) = (manifest_dir.canonicalize(), checkout.canonicalize()) else {
            return Rebase::none();
        };
        let prefix = dir.strip_prefix(&root).ok().and_then(|relative| {
            let parts: Option<Vec<&str>> = relative.iter().map(|p| p.to_str()).collect();
            parts.map(|parts| parts.join("/"))
        });
        Rebase { prefix }
    }

    /// The rebase for `manifest_dir` inside the checkout `flavor` names in
    /// the environment, if it names one.
    pub fn from_env(flavor: Flavor, manifest_dir: Option<&Path>) -> Self {
        let checkout = std::env::var_os(flavor.workspace_variable()).filter(|v| !v.is_empty());
        match (manifest_dir, checkout) {
            (Some(dir), Some(checkout)) => Rebase::new(dir, Path::new(&checkout)),
            _ => Rebase::none(),
        }
    }

    /// `file` as the host should see it; `None` to keep it as it is (no
    /// checkout, an absolute host path, or a path climbing out of it).
    pub fn path(&self, file: &str) -> Option<String> {
        let prefix = self.prefix.as_ref()?;
        // The guest sees the manifest's folder as `/workspace`.
        let relative = match file.strip_prefix(GUEST_WORKSPACE) {
            Some(rest) if rest.starts_with('/') => &rest[1..],
            Some(_) => return None,
            None if file.starts_with('/') => return None,
            None => file,
        };
        let mut parts: Vec<&str> = if prefix.is_empty() {
            Vec::new()
        } else {
            prefix.split('/').collect()
        };
        for component in Path::new(relative).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str()?),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        (!parts.is_empty()).then(|| parts.join("/"))
    }
}

/// A CI reporter.
pub struct Ci {
    flavor: Flavor,
    files: GitHubFiles,
    rebase: Rebase,
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    pipeline: String,
    run_id: String,
    /// What each job instance has to print, oldest first: its lines wait
    /// here while another job is live.
    queues: HashMap<String, VecDeque<Item>>,
    /// The job whose output is being printed as it comes.
    live: Option<String>,
    /// Orders the queued items of different jobs as they happened.
    sequence: u64,
    /// Every step's result, for the summary table.
    rows: Vec<Row>,
    outputs: Vec<(String, BTreeMap<String, String>)>,
    sections: usize,
}

/// Something a job prints: a line of gantry's own, or a step's block.
enum Item {
    Line { sequence: u64, text: String },
    Block { sequence: u64, block: Block },
}

impl Item {
    fn sequence(&self) -> u64 {
        match self {
            Item::Line { sequence, .. } | Item::Block { sequence, .. } => *sequence,
        }
    }
}

/// A step's (or rollback hook's) group.
struct Block {
    /// `job / step [plugin]`.
    name: String,
    /// Lines not printed yet.
    lines: Vec<String>,
    /// GitHub workflow commands to print after the group (annotations).
    after: Vec<String>,
    /// Its `::error` annotations, located, for the summary.
    errors: Vec<String>,
    started: SystemTime,
    /// Set once the group is on screen: how to close it.
    open: Option<Opened>,
    end: Option<Ending>,
}

enum Opened {
    GitHub { token: String },
    GitLab { id: String },
}

/// How a step ended, known when its `StepFinished` arrives.
struct Ending {
    /// `ok (12ms)`, `failure (12ms): reason`.
    verdict: String,
    succeeded: bool,
    /// GitHub: the `::error`/`::warning` line for a failure.
    command: Option<String>,
    ended: SystemTime,
}

struct Row {
    job: String,
    step: String,
    status: &'static str,
    duration: Duration,
    /// Why it failed, for the summary.
    reason: Option<String>,
    /// The step's `::error` annotations, as `path:line:col: error: message`.
    errors: Vec<String>,
    rollback: bool,
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
                    // As the masker: a line too short to hide alone is not
                    // registered alone (GitHub would mask it everywhere).
                    let shortest = crate::abi::mask::MIN_REGISTERED_CHARS;
                    if part.trim().chars().count() >= shortest {
                        let _ = writeln!(out, "::add-mask::{}", escape_data(part));
                    }
                }
            }
            let _ = out.flush();
        }
        Ci {
            flavor,
            files,
            rebase: Rebase::none(),
            state: Mutex::new(State {
                out,
                pipeline: String::new(),
                run_id: String::new(),
                queues: HashMap::new(),
                live: None,
                sequence: 0,
                rows: Vec::new(),
                outputs: Vec::new(),
                sections: 0,
            }),
        }
    }

    /// Rebases annotation paths as `rebase` says.
    pub fn with_rebase(mut self, rebase: Rebase) -> Self {
        self.rebase = rebase;
        self
    }
}

/// Where a step sees the manifest's folder (`GANTRY_WORKSPACE`).
const GUEST_WORKSPACE: &str = "/workspace";

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

fn level_label(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Notice => "notice",
        Level::Warning => "warning",
        Level::Error => "error",
    }
}

impl State {
    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// Queues a line of gantry's own for `job`.
    fn job_line(&mut self, job: &str, text: String) {
        let sequence = self.next_sequence();
        self.queues
            .entry(job.to_owned())
            .or_default()
            .push_back(Item::Line { sequence, text });
    }

    /// Queues a new block for `job`.
    fn start_block(&mut self, job: &str, name: String) {
        let sequence = self.next_sequence();
        let block = Block {
            name,
            lines: Vec::new(),
            after: Vec::new(),
            errors: Vec::new(),
            started: SystemTime::now(),
            open: None,
            end: None,
        };
        self.queues
            .entry(job.to_owned())
            .or_default()
            .push_back(Item::Block { sequence, block });
    }

    /// The block `job` is running, if any.
    fn running(&mut self, job: &str) -> Option<&mut Block> {
        match self.queues.get_mut(job)?.back_mut()? {
            Item::Block { block, .. } if block.end.is_none() => Some(block),
            _ => None,
        }
    }

    /// Ends the block `job` is running with its verdict (and the command
    /// that reports a failure), and returns the `::error` lines its step
    /// printed, for the summary.
    fn end_block(
        &mut self,
        job: &str,
        verdict: String,
        succeeded: bool,
        command: Option<String>,
    ) -> Vec<String> {
        let Some(block) = self.running(job) else {
            return Vec::new();
        };
        block.end = Some(Ending {
            verdict,
            succeeded,
            command,
            ended: SystemTime::now(),
        });
        std::mem::take(&mut block.errors)
    }

    /// A line of a running step; outside a step (it should not happen), a
    /// line of the job's own.
    fn step_line(&mut self, job: &str, text: String) {
        match self.running(job) {
            Some(block) => block.lines.push(text),
            None => self.job_line(job, text),
        }
    }
}

impl Reporter for Ci {
    fn report(&self, event: Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        match event {
            Event::RunStarted {
                pipeline, run_id, ..
            } => {
                state.pipeline = pipeline.to_owned();
                state.run_id = run_id.to_owned();
                let pipeline = host_text(pipeline);
                state.line(&format!("gantry: running `{pipeline}` (run {run_id})"));
            }
            Event::JobStarted { job } => {
                state.job_line(job, format!("gantry: job {} started", host_text(job)));
            }
            Event::JobSkipped { job, reason } => {
                let (shown, reason) = (host_text(job), host_text(reason));
                state.job_line(job, format!("gantry: job {shown} skipped ({reason})"));
            }
            Event::JobFinished {
                job,
                conclusion,
                outputs,
            } => {
                let shown = host_text(job);
                state.job_line(job, format!("gantry: job {shown}: {}", conclusion.as_str()));
                if !outputs.is_empty() {
                    state.outputs.push((job.to_owned(), outputs.clone()));
                }
            }
            // A step group's call opens no block of its own (GitHub's
            // groups do not nest): a line before its steps' blocks, which
            // carry its name in front, and its verdict after them.
            Event::StepStarted { job, step, plugin }
                if crate::manifest::group::is_group_reference(plugin) =>
            {
                state.job_line(
                    job,
                    format!(
                        "gantry: {job} / {} [{plugin}]: step group started",
                        step.name
                    ),
                );
            }
            Event::StepStarted { job, step, plugin } => {
                state.start_block(job, format!("{job} / {} [{plugin}]", step.name));
            }
            Event::StepLog { job, stream, text } => {
                let marker = if stream == Stream::Stderr {
                    "[stderr] "
                } else {
                    ""
                };
                // The step's own line, as it wrote it but for its control
                // characters: inside the stop-commands region on GitHub.
                state.step_line(job, format!("{marker}{}", visible(text)));
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                let label = level_label(level);
                let file = annotation.file.as_deref().and_then(|f| self.rebase.path(f));
                match self.flavor {
                    Flavor::GitHub => {
                        let command = github_annotation(label, message, annotation, file.clone());
                        if let Some(block) = state.running(job) {
                            block.after.push(command);
                        }
                    }
                    Flavor::GitLab => {
                        let text = located(label, message, annotation, file.as_deref());
                        state.step_line(job, host_text(&text));
                    }
                }
                if level == Level::Error
                    && let Some(block) = state.running(job)
                {
                    // Kept for the summary, beside the step's failure.
                    let text = located(label, message, annotation, file.as_deref());
                    block.errors.push(text);
                }
            }
            Event::GroupStarted { job, name } => {
                state.step_line(job, format!("> {}", host_text(name)));
            }
            Event::GroupEnded { .. } => {}
            Event::StepNote { job, text } => {
                state.step_line(job, format!("gantry: {}", host_text(text)));
            }
            Event::NetworkDenied {
                job,
                step,
                destination,
                reason,
            } => {
                let text = network_denied(step, destination, reason);
                match self.flavor {
                    Flavor::GitHub => {
                        let command = format!(
                            "::warning title={}::{}",
                            escape_property("gantry: network refused"),
                            escape_data(&text)
                        );
                        match state.running(job) {
                            Some(block) => block.after.push(command),
                            None => state.job_line(job, command),
                        }
                    }
                    Flavor::GitLab => {
                        state.step_line(job, format!("gantry: warning: {}", host_text(&text)));
                    }
                }
            }
            Event::StepSkipped { job, step, reason } => {
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: step.name.to_owned(),
                    status: "skipped",
                    duration: Duration::ZERO,
                    reason: None,
                    errors: Vec::new(),
                    rollback: false,
                });
                let (shown_job, name) = (host_text(job), host_text(step.name));
                let reason = host_text(reason);
                state.job_line(
                    job,
                    format!("gantry: {shown_job} / {name} skipped: {reason}"),
                );
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
                let verdict = match outcome {
                    Ok(()) => format!("ok ({})", human_duration(duration)),
                    Err(reason) if continued_on_error => format!(
                        "{} ({}), continued on error: {reason}",
                        status.as_str(),
                        human_duration(duration)
                    ),
                    Err(reason) => format!(
                        "{} ({}): {reason}",
                        status.as_str(),
                        human_duration(duration)
                    ),
                };
                let command =
                    outcome
                        .err()
                        .filter(|_| self.flavor == Flavor::GitHub)
                        .map(|reason| {
                            let level = if continued_on_error {
                                "warning"
                            } else {
                                "error"
                            };
                            let title = escape_property(&format!("{job} / {} failed", step.name));
                            format!("::{level} title={title}::{}", escape_data(reason))
                        });
                let errors = if state.running(job).is_some() {
                    state.end_block(job, verdict, outcome.is_ok(), command)
                } else {
                    // A step group's call, which has no block.
                    state.job_line(job, format!("gantry: {job} / {}: {verdict}", step.name));
                    if let Some(command) = command {
                        state.job_line(job, command);
                    }
                    Vec::new()
                };
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: step.name.to_owned(),
                    status: status.as_str(),
                    duration,
                    reason: outcome.err().map(str::to_owned),
                    errors,
                    rollback: false,
                });
            }
            Event::RollbackStarted {
                job,
                step,
                plugin,
                outcome,
            } => {
                let name = format!(
                    "{job} / rollback of {} [{plugin}] (step {outcome})",
                    step.name
                );
                state.start_block(job, name);
            }
            Event::RollbackFinished {
                job,
                step,
                outcome,
                duration,
            } => {
                let verdict = match outcome {
                    Ok(()) => format!("ok ({})", human_duration(duration)),
                    Err(reason) => format!("failure ({}): {reason}", human_duration(duration)),
                };
                let command =
                    outcome
                        .err()
                        .filter(|_| self.flavor == Flavor::GitHub)
                        .map(|reason| {
                            let title = escape_property(&format!(
                                "{job} / rollback of {} failed",
                                step.name
                            ));
                            format!("::error title={title}::{}", escape_data(reason))
                        });
                let errors = state.end_block(job, verdict, outcome.is_ok(), command);
                state.rows.push(Row {
                    job: job.to_owned(),
                    step: format!("rollback of {}", step.name),
                    status: if outcome.is_ok() {
                        "success"
                    } else {
                        "failure"
                    },
                    duration,
                    reason: outcome.err().map(str::to_owned),
                    errors,
                    rollback: true,
                });
            }
            Event::RunFinished {
                verdict: outcome,
                failed_steps,
                summary_path,
                duration,
            } => {
                self.flush_all(state);
                let success = outcome.succeeded();
                let mut verdict = run_verdict(outcome, failed_steps, duration);
                if outcome == Verdict::Failed && failed_steps.is_empty() {
                    // The annotations above say why.
                    verdict.push_str(": see above");
                }
                state.line(&host_text(&verdict));
                if self.flavor == Flavor::GitHub {
                    let problems = self.write_github_files(state, success, &verdict, summary_path);
                    for problem in problems {
                        state.line(&format!(
                            "::warning title=gantry::{}",
                            escape_data(&problem)
                        ));
                    }
                }
                return;
            }
        }
        self.pump(state);
    }
}

/// An annotation as a GitHub workflow command, its path rebased.
fn github_annotation(
    label: &str,
    message: &str,
    annotation: &Annotation,
    file: Option<String>,
) -> String {
    let mut properties = Vec::new();
    let mut property = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            properties.push(format!("{key}={}", escape_property(&value)));
        }
    };
    property("title", annotation.title.clone());
    property("file", file.or_else(|| annotation.file.clone()));
    property("line", annotation.line.map(|n| n.to_string()));
    property("col", annotation.col.map(|n| n.to_string()));
    let properties = if properties.is_empty() {
        String::new()
    } else {
        format!(" {}", properties.join(","))
    };
    format!("::{label}{properties}::{}", escape_data(message))
}

impl Ci {
    /// Prints what can be printed now: the live job's lines as they come;
    /// when it is between steps, the job whose held output is oldest.
    fn pump(&self, state: &mut State) {
        loop {
            if let Some(job) = state.live.clone() {
                if !self.print_ready(state, &job, false) {
                    return;
                }
                state.live = None;
            }
            let next = state
                .queues
                .iter()
                .filter_map(|(job, queue)| queue.front().map(|item| (item.sequence(), job)))
                .min()
                .map(|(_, job)| job.clone());
            match next {
                Some(job) => state.live = Some(job),
                None => return,
            }
        }
    }

    /// Prints everything still held, closing any group whose step never
    /// said it ended (the run ends, so nothing more will come).
    fn flush_all(&self, state: &mut State) {
        loop {
            let job = match state.live.clone() {
                Some(job) => job,
                None => {
                    let next = state
                        .queues
                        .iter()
                        .filter_map(|(job, queue)| queue.front().map(|item| (item.sequence(), job)))
                        .min()
                        .map(|(_, job)| job.clone());
                    match next {
                        Some(job) => job,
                        None => return,
                    }
                }
            };
            self.print_ready(state, &job, true);
            state.live = None;
        }
    }

    /// Prints `job`'s held items in order; returns whether its queue was
    /// emptied (else a step is still running, its group open). `force`
    /// closes a running step's group.
    fn print_ready(&self, state: &mut State, job: &str, force: bool) -> bool {
        loop {
            let Some(queue) = state.queues.get_mut(job) else {
                return true;
            };
            let Some(front) = queue.pop_front() else {
                state.queues.remove(job);
                return true;
            };
            match front {
                Item::Line { text, .. } => state.line(&text),
                Item::Block {
                    sequence,
                    mut block,
                } => {
                    if block.open.is_none() {
                        self.open_block(state, &mut block);
                    }
                    for line in std::mem::take(&mut block.lines) {
                        state.line(&line);
                    }
                    if block.end.is_none() && !force {
                        state
                            .queues
                            .entry(job.to_owned())
                            .or_default()
                            .push_front(Item::Block { sequence, block });
                        return false;
                    }
                    self.close_block(state, block);
                }
            }
        }
    }

    fn open_block(&self, state: &mut State, block: &mut Block) {
        match self.flavor {
            Flavor::GitHub => {
                let token = stop_token();
                state.line(&format!("::group::{}", escape_data(&block.name)));
                state.line(&format!("::stop-commands::{token}"));
                block.open = Some(Opened::GitHub { token });
            }
            Flavor::GitLab => {
                state.sections += 1;
                let id = format!("gantry_step_{}", state.sections);
                let started = unix_seconds(block.started);
                // Collapsed only when it is already known to have succeeded;
                // a failure, or a step still running, stays open.
                let collapsed = block.end.as_ref().is_some_and(|end| end.succeeded);
                let header = match &block.end {
                    Some(end) => format!("{} {}", block.name, end.verdict),
                    None => block.name.clone(),
                };
                // GitLab's section markers; the header follows on the same line.
                state.line(&format!(
                    "\x1b[0Ksection_start:{started}:{id}[collapsed={collapsed}]\r\x1b[0K{}",
                    host_text(&header)
                ));
                block.open = Some(Opened::GitLab { id });
            }
        }
    }

    fn close_block(&self, state: &mut State, block: Block) {
        let (verdict, command, ended) = match block.end {
            Some(end) => (end.verdict, end.command, end.ended),
            None => ("did not finish".to_owned(), None, SystemTime::now()),
        };
        let result = host_text(&format!("gantry: {}: {verdict}", block.name));
        match block.open {
            Some(Opened::GitHub { token }) => {
                state.line(&format!("::{token}::"));
                state.line("::endgroup::");
                state.line(&result);
                for line in block.after.iter().chain(&command) {
                    state.line(line);
                }
            }
            Some(Opened::GitLab { id }) => {
                let ended = unix_seconds(ended);
                state.line(&format!("\x1b[0Ksection_end:{ended}:{id}\r\x1b[0K"));
                state.line(&result);
            }
            None => state.line(&result),
        }
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
impl Ci {
    /// Appends the run summary to `$GITHUB_STEP_SUMMARY` and the jobs'
    /// outputs to `$GITHUB_OUTPUT`; returns what could not be written.
    fn write_github_files(
        &self,
        state: &State,
        success: bool,
        verdict: &str,
        summary_path: Option<&std::path::Path>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(path) = &self.files.step_summary {
            let mut text = summary_markdown(state, success, verdict);
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

/// The most `::error` lines the summary lists for one step.
const SUMMARY_ERRORS_PER_STEP: usize = 20;

/// The run's summary for `$GITHUB_STEP_SUMMARY`: which pipeline and run,
/// how it ended and why, what rollback did, then every step's row.
fn summary_markdown(state: &State, success: bool, verdict: &str) -> String {
    let outcome = if success { "succeeded" } else { "failed" };
    let mut text = format!(
        "## gantry: {} {outcome}\n\nRun `{}`: {}\n",
        markdown_text(&state.pipeline),
        table_cell(&state.run_id),
        markdown_text(verdict.strip_prefix("gantry: ").unwrap_or(verdict))
    );
    let failed: Vec<&Row> = state
        .rows
        .iter()
        .filter(|row| !row.rollback && row.reason.is_some() && row.status != "skipped")
        .collect();
    if !failed.is_empty() {
        text.push_str("\n### Failed steps\n\n");
        for row in failed {
            let reason = row.reason.as_deref().unwrap_or_default();
            text.push_str(&format!(
                "- **{} / {}** ({}): {}\n",
                markdown_text(&row.job),
                markdown_text(&row.step),
                row.status,
                markdown_text(reason)
            ));
            for error in row.errors.iter().take(SUMMARY_ERRORS_PER_STEP) {
                text.push_str(&format!("  - {}\n", markdown_text(error)));
            }
            if row.errors.len() > SUMMARY_ERRORS_PER_STEP {
                text.push_str(&format!(
                    "  - and {} more errors, in the log\n",
                    row.errors.len() - SUMMARY_ERRORS_PER_STEP
                ));
            }
        }
    }
    let hooks: Vec<&Row> = state.rows.iter().filter(|row| row.rollback).collect();
    if !hooks.is_empty() {
        text.push_str("\n### Rollback\n\n");
        for row in hooks {
            let result = match &row.reason {
                Some(reason) => format!("failed: {}", markdown_text(reason)),
                None => "succeeded".to_owned(),
            };
            text.push_str(&format!(
                "- {} / {}: {result}\n",
                markdown_text(&row.job),
                markdown_text(&row.step)
            ));
        }
    }
    text.push_str("\n| job | step | outcome | duration |\n| --- | --- | --- | --- |\n");
    for row in &state.rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            table_cell(&row.job),
            table_cell(&row.step),
            row.status,
            human_duration(row.duration)
        ));
    }
    text
}

/// Text a step or the manifest wrote, shown as itself in Markdown: the
/// characters that would format, link or embed HTML are escaped, and line
/// breaks become spaces.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn annotation_paths_rebase_onto_the_checkout() {
        let checkout = tempfile::tempdir().unwrap();
        let deploy = checkout.path().join("deploy");
        std::fs::create_dir(&deploy).unwrap();
        let below = Rebase::new(&deploy, checkout.path());
        assert_eq!(below.path("src/app.c").as_deref(), Some("deploy/src/app.c"));
        assert_eq!(
            below.path("./src/../lib/x.c").as_deref(),
            Some("deploy/lib/x.c")
        );
        assert_eq!(
            below.path("/workspace/src/app.c").as_deref(),
            Some("deploy/src/app.c")
        );
        assert_eq!(below.path("../README.md").as_deref(), Some("README.md"));
        // Out of the checkout, or a host path: kept as written.
        assert_eq!(below.path("../../etc/passwd"), None);
        assert_eq!(below.path("/etc/passwd"), None);
        assert_eq!(below.path("/workspacex/a"), None);
        let at_root = Rebase::new(checkout.path(), checkout.path());
        assert_eq!(at_root.path("src/app.c").as_deref(), Some("src/app.c"));
        assert_eq!(at_root.path("/workspace/a.c").as_deref(), Some("a.c"));
        let outside = Rebase::new(checkout.path(), &deploy);
        assert_eq!(outside.path("src/app.c"), None);
        assert_eq!(Rebase::none().path("src/app.c"), None);
    }

    #[test]
    fn markdown_text_shows_itself() {
        assert_eq!(
            markdown_text("a_b *c* [x](y) <b>|#\nnext"),
            "a\\_b \\*c\\* \\[x\\](y) \\<b\\>\\|\\# next"
        );
    }
}
