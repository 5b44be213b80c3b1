//! The log of one running step: every line the guest prints is read for
//! workflow commands and handed to the reporter as an event, which masks
//! it (see [`crate::report::masked`]).
//!
//! A line longer than the capture holds arrives in pieces. A secret split
//! across two pieces would be masked in neither, so the end of each piece
//! that could still begin a masked value is held back and joined to the
//! next one (see [`StepLog::text`]); a piece that continues a line is
//! never read as a workflow command.

use std::sync::{Arc, Mutex};

use crate::abi::mask::{MIN_REGISTERED_CHARS, MaskRefused, replace};
use crate::abi::{Command, CommandParser, Line, Masks};
use crate::report::{Event, Level, Reporter};
use crate::sandbox::output::{LineEnd, LineSink, Stream};

/// How many values one step may register with `::add-mask::`.
pub const MAX_MASKS_PER_STEP: usize = 1000;

/// Turns a step's raw output lines into report events.
#[derive(Clone)]
pub struct StepLog {
    reporter: Arc<dyn Reporter>,
    masks: Arc<Mutex<Masks>>,
    state: Arc<Mutex<State>>,
    /// The job instance the step belongs to.
    job: Arc<str>,
    /// The step, as people know it, for warnings about what it did.
    step: Arc<str>,
}

#[derive(Default)]
struct State {
    parser: CommandParser,
    stdout: Pending,
    stderr: Pending,
    /// Values this step registered so far.
    registered: usize,
}

/// What is known of a line that arrived in pieces.
#[derive(Default)]
struct Pending {
    /// The next piece continues a line.
    continuing: bool,
    /// That line is a workflow command: its remaining pieces are dropped.
    dropping: bool,
    /// The held-back end of the last piece, unmasked.
    carry: String,
    /// How many bytes at the start of `carry` belong to a value whose
    /// start was already masked: they are masked too.
    forced: usize,
}

impl StepLog {
    pub fn new(
        reporter: Arc<dyn Reporter>,
        masks: Arc<Mutex<Masks>>,
        job: &str,
        step: &str,
    ) -> Self {
        StepLog {
            reporter,
            masks,
            state: Arc::new(Mutex::new(State::default())),
            job: job.into(),
            step: step.into(),
        }
    }

    /// Where the sandbox tells of each destination it refused the step:
    /// reported as gantry's own warning, masked like the step's lines
    /// (a URL may carry a secret).
    pub fn denial_sink(&self) -> crate::network::DenialSink {
        let log = self.clone();
        Arc::new(move |destination, reason| {
            log.reporter.report(Event::NetworkDenied {
                job: &log.job,
                step: &log.step,
                destination,
                reason,
            });
        })
    }

    /// The sink to give the sandbox's output capture.
    pub fn sink(&self) -> LineSink {
        let log = self.clone();
        Arc::new(move |stream, line, end| log.line(stream, line, end))
    }

    fn note(&self, text: &str) {
        self.reporter.report(Event::StepNote {
            job: &self.job,
            text,
        });
    }

    fn line(&self, stream: Stream, raw: &str, end: LineEnd) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let pending = match stream {
            Stream::Stdout => &mut state.stdout,
            Stream::Stderr => &mut state.stderr,
        };
        if pending.continuing {
            if pending.dropping {
                if end == LineEnd::Complete {
                    *pending = Pending::default();
                }
                return;
            }
            return self.text(stream, pending, raw, end);
        }
        // Workflow commands are read from stdout only, as the ABI says.
        if stream == Stream::Stderr {
            return self.text(stream, pending, raw, end);
        }
        let command = match state.parser.parse(raw) {
            Line::Text(text) => return self.text(stream, &mut state.stdout, text, end),
            Line::Command(command) => command,
            Line::Ignored(ignored) => {
                // The text quotes the step's, marked for its masks.
                self.note(&ignored.to_string());
                return;
            }
        };
        if end == LineEnd::Continues {
            state.stdout = Pending {
                continuing: true,
                dropping: true,
                ..Pending::default()
            };
            self.note(&format!(
                "a workflow command longer than {} KiB was cut there; the rest of its line is dropped",
                crate::sandbox::output::MAX_LINE_BYTES / 1024
            ));
        }
        let job = &*self.job;
        let (level, annotation, message) = match command {
            Command::Debug(message) => (Level::Debug, Default::default(), message),
            Command::Notice(annotation, message) => (Level::Notice, annotation, message),
            Command::Warning(annotation, message) => (Level::Warning, annotation, message),
            Command::Error(annotation, message) => (Level::Error, annotation, message),
            Command::Group(name) => {
                drop(state);
                self.reporter
                    .report(Event::GroupStarted { job, name: &name });
                return;
            }
            Command::EndGroup => {
                drop(state);
                self.reporter.report(Event::GroupEnded { job });
                return;
            }
            Command::AddMask(value) => return self.add_mask(&mut state, &value),
            Command::StopCommands(_) | Command::ResumeCommands => return,
        };
        drop(state);
        self.reporter.report(Event::StepAnnotation {
            job,
            level,
            message: &message,
            annotation: &annotation,
        });
    }

    /// Registers a value from `::add-mask::`, or says why not: a step may
    /// hide its own text, not pieces of gantry's or everyone's words.
    fn add_mask(&self, state: &mut State, value: &str) {
        let step = &self.step;
        if state.registered >= MAX_MASKS_PER_STEP {
            if state.registered == MAX_MASKS_PER_STEP {
                state.registered += 1;
                self.note(&format!(
                    "warning: step `{step}` registered more than {MAX_MASKS_PER_STEP} masks; the rest are refused"
                ));
            }
            return;
        }
        let registered = self
            .masks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register(value);
        match registered {
            Ok(()) => state.registered += 1,
            Err(MaskRefused::TooShort) => self.note(&format!(
                "warning: step `{step}` registered a mask shorter than {MIN_REGISTERED_CHARS} characters; it is refused, as it would hide pieces of ordinary words"
            )),
        }
    }

    /// Reports a piece of plain text. A complete line goes out masked as
    /// it is; a piece that continues keeps back its last bytes, as many as
    /// the longest masked value less one, since a value that runs on into
    /// the next piece can only start there. A value straddling the point
    /// where the piece is cut is masked on both sides of it.
    fn text(&self, stream: Stream, pending: &mut Pending, piece: &str, end: LineEnd) {
        if end == LineEnd::Complete && !pending.continuing {
            // A whole line: the reporter masks it like any event.
            self.reporter.report(Event::StepLog {
                job: &self.job,
                stream,
                text: piece,
            });
            return;
        }
        let mut joint = std::mem::take(&mut pending.carry);
        joint.push_str(piece);
        let masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        let mut ranges = masks.step_matches(&joint);
        if pending.forced > 0 {
            ranges.push((0, pending.forced));
        }
        let cut = match end {
            LineEnd::Complete => joint.len(),
            LineEnd::Continues => {
                let keep = masks.longest().saturating_sub(1);
                joint.floor_char_boundary(joint.len().saturating_sub(keep))
            }
        };
        drop(masks);
        let mut forced = 0;
        for range in &mut ranges {
            if range.1 > cut {
                if range.0 < cut || (range.0 == 0 && pending.forced > 0) {
                    forced = forced.max(range.1 - cut);
                }
                range.1 = cut;
            }
        }
        ranges.retain(|r| r.0 < r.1);
        let shown = replace(&joint[..cut], ranges).into_owned();
        *pending = match end {
            LineEnd::Complete => Pending::default(),
            LineEnd::Continues => Pending {
                continuing: true,
                dropping: false,
                carry: joint[cut..].to_owned(),
                forced,
            },
        };
        self.reporter.report(Event::StepLog {
            job: &self.job,
            stream,
            text: &shown,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Masker;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl Reporter for Lines {
        fn report(&self, event: Event<'_>) {
            if let Event::StepLog { text, .. } = event {
                self.0.lock().unwrap().push(text.to_owned());
            }
        }
    }

    /// Feeds `pieces` as one line in pieces; returns what was reported.
    fn split(secret: &str, pieces: &[&str]) -> Vec<String> {
        let mut secrets = Masker::new();
        secrets.add(secret);
        let lines = Arc::new(Lines::default());
        let masks = Arc::new(Mutex::new(Masks::new(secrets)));
        let log = StepLog::new(lines.clone(), masks, "job", "step");
        for (i, piece) in pieces.iter().enumerate() {
            let end = if i + 1 == pieces.len() {
                LineEnd::Complete
            } else {
                LineEnd::Continues
            };
            log.line(Stream::Stdout, piece, end);
        }
        lines.0.lock().unwrap().clone()
    }

    #[test]
    fn a_value_split_between_pieces_is_masked() {
        let got = split("SECRET", &["xxxxxxSEC", "RETyyy"]);
        assert_eq!(got.concat(), "xxxxxx***yyy");
        // A value that ends inside the held-back tail is cut where the
        // piece is: masked on both sides of the cut, nothing of it shown.
        let got = split("SECRET", &["xxSECRETy", "zz"]);
        assert_eq!(got, ["xx***", "***yzz"]);
        let got = split("abcdef", &["..abcd", "ef..abc", "def"]);
        assert_eq!(got.concat(), "..***..***");
    }

    #[test]
    fn a_continued_piece_is_not_a_command() {
        let got = split("zzzz", &["text ", "::error::not a command"]);
        assert_eq!(got.concat(), "text ::error::not a command");
    }
}
