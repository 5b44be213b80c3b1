//! `--format json`: one JSON object per line, for machines. The schema is
//! documented in `docs/EVENTS.md` and, for validators, in
//! `docs/events.schema.json`; every object has an `"event"` field and
//! the run id, and, inside a job, the job and step. Every string has its
//! control characters made visible (`\x1b`, see [`visible`]) before it is
//! encoded: a consumer that prints a decoded field prints no escape code.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Mutex;

use serde::{Serialize, Serializer};

use super::{Conclusion, Event, Level, Reporter, StepRef, visible};
use crate::sandbox::output::Stream;

/// Writes NDJSON events to a stream (stdout by default).
pub struct Json {
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    run_id: String,
    /// The step currently running in each job instance, for log events.
    current_step: HashMap<String, String>,
}

impl Json {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Json {
            state: Mutex::new(State {
                out,
                run_id: String::new(),
                current_step: HashMap::new(),
            }),
        }
    }

    pub fn stdout() -> Self {
        Json::new(Box::new(std::io::stdout()))
    }
}

/// A string as the stream carries it: its control characters made
/// visible when it is written.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&visible(&self.0))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text(Cow::Borrowed(text))
    }
}

impl From<String> for Text<'_> {
    fn from(text: String) -> Self {
        Text(Cow::Owned(text))
    }
}

/// A list of names (outputs, failed steps), each made visible.
#[derive(Debug)]
struct Texts<'a>(&'a [String]);

impl Serialize for Texts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|text| visible(text)))
    }
}

/// A job's outputs, keys and values made visible. Keys are ordered as
/// shown, as they always were, so an output name with a control
/// character may sort differently from the raw name.
#[derive(Debug)]
struct Outputs<'a>(&'a BTreeMap<String, String>);

impl Serialize for Outputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shown: BTreeMap<Cow<'_, str>, Cow<'_, str>> = self
            .0
            .iter()
            .map(|(name, value)| (visible(name), visible(value)))
            .collect();
        shown.serialize(serializer)
    }
}

/// One line of the stream, as `docs/EVENTS.md` documents it.
///
/// Each variant's fields are in alphabetical order: that is the order the
/// stream has always had (it was built as a sorted map), and a consumer
/// may compare lines as text. `event` is a field like the others rather
/// than a serde tag, because a tag would always come first. Optional
/// fields serialize as `null` unless marked as omitted when absent.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Line<'a> {
    RunStarted {
        event: &'static str,
        pipeline: Text<'a>,
        run_id: Text<'a>,
    },
    JobStarted {
        event: &'static str,
        job: Text<'a>,
        run_id: Text<'a>,
    },
    JobSkipped {
        event: &'static str,
        job: Text<'a>,
        reason: Text<'a>,
        run_id: Text<'a>,
        status: &'static str,
    },
    JobFinished {
        event: &'static str,
        job: Text<'a>,
        outputs: Outputs<'a>,
        run_id: Text<'a>,
        status: &'static str,
    },
    StepStarted {
        event: &'static str,
        job: Text<'a>,
        plugin: Text<'a>,
        run_id: Text<'a>,
        step: Text<'a>,
        step_name: Text<'a>,
    },
    Log {
        event: &'static str,
        job: Text<'a>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
        stream: &'static str,
        text: Text<'a>,
    },
    Annotation {
        col: Option<u32>,
        event: &'static str,
        file: Option<Text<'a>>,
        job: Text<'a>,
        level: &'static str,
        line: Option<u32>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
        text: Text<'a>,
        title: Option<Text<'a>>,
    },
    GroupStarted {
        event: &'static str,
        job: Text<'a>,
        name: Text<'a>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
    },
    GroupEnded {
        event: &'static str,
        job: Text<'a>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
    },
    Note {
        event: &'static str,
        job: Text<'a>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
        text: Text<'a>,
    },
    NetworkDenied {
        destination: Text<'a>,
        event: &'static str,
        job: Text<'a>,
        reason: Text<'a>,
        run_id: Text<'a>,
        step: Option<Text<'a>>,
        step_name: Text<'a>,
    },
    /// `step_finished`, for a step that ran or was skipped.
    StepFinished {
        continue_on_error: bool,
        duration_ms: u64,
        event: &'static str,
        job: Text<'a>,
        outputs: Texts<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Text<'a>>,
        run_id: Text<'a>,
        status: &'static str,
        step: Text<'a>,
        step_name: Text<'a>,
    },
    RollbackStarted {
        event: &'static str,
        job: Text<'a>,
        plugin: Text<'a>,
        run_id: Text<'a>,
        step: Text<'a>,
        step_name: Text<'a>,
        step_outcome: Text<'a>,
    },
    RollbackFinished {
        duration_ms: u64,
        event: &'static str,
        job: Text<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Text<'a>>,
        run_id: Text<'a>,
        status: &'static str,
        step: Text<'a>,
        step_name: Text<'a>,
    },
    RunFinished {
        duration_ms: u64,
        event: &'static str,
        exit_code: i32,
        failed_steps: Texts<'a>,
        run_id: Text<'a>,
        status: &'static str,
        summary_path: Option<Text<'a>>,
    },
}

impl<'a> Line<'a> {
    /// The line for `event`; `current_step` is the step running in the
    /// event's job, if any, which log events name.
    fn new(event: &Event<'a>, run_id: &'a str, current_step: Option<String>) -> Line<'a> {
        let run_id = Text::from(run_id);
        let step = current_step.map(Text::from);
        let key = |step: &StepRef<'_>| Text::from(step.key());
        match *event {
            Event::RunStarted { pipeline, .. } => Line::RunStarted {
                event: "run_started",
                pipeline: pipeline.into(),
                run_id,
            },
            Event::JobStarted { job } => Line::JobStarted {
                event: "job_started",
                job: job.into(),
                run_id,
            },
            Event::JobSkipped { job, reason } => Line::JobSkipped {
                event: "job_finished",
                job: job.into(),
                reason: reason.into(),
                run_id,
                status: "skipped",
            },
            Event::JobFinished {
                job,
                conclusion,
                outputs,
            } => Line::JobFinished {
                event: "job_finished",
                job: job.into(),
                outputs: Outputs(outputs),
                run_id,
                status: conclusion.as_str(),
            },
            Event::StepStarted {
                job,
                ref step,
                plugin,
            } => Line::StepStarted {
                event: "step_started",
                job: job.into(),
                plugin: plugin.into(),
                run_id,
                step: key(step),
                step_name: step.name.into(),
            },
            Event::StepLog { job, stream, text } => Line::Log {
                event: "log",
                job: job.into(),
                run_id,
                step,
                stream: match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                },
                text: text.into(),
            },
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => Line::Annotation {
                col: annotation.col,
                event: "annotation",
                file: annotation.file.as_deref().map(Text::from),
                job: job.into(),
                level: match level {
                    Level::Debug => "debug",
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                    Level::Error => "error",
                },
                line: annotation.line,
                run_id,
                step,
                text: message.into(),
                title: annotation.title.as_deref().map(Text::from),
            },
            Event::GroupStarted { job, name } => Line::GroupStarted {
                event: "group_started",
                job: job.into(),
                name: name.into(),
                run_id,
                step,
            },
            Event::GroupEnded { job } => Line::GroupEnded {
                event: "group_ended",
                job: job.into(),
                run_id,
                step,
            },
            Event::StepNote { job, text } => Line::Note {
                event: "note",
                job: job.into(),
                run_id,
                step,
                text: text.into(),
            },
            Event::NetworkDenied {
                job,
                step: step_name,
                destination,
                reason,
            } => Line::NetworkDenied {
                destination: destination.into(),
                event: "network_denied",
                job: job.into(),
                reason: reason.into(),
                run_id,
                step,
                step_name: step_name.into(),
            },
            // Always with every field, as documented: a step that never
            // ran did not go on past an error.
            Event::StepSkipped {
                job,
                ref step,
                reason,
            } => Line::StepFinished {
                continue_on_error: false,
                duration_ms: 0,
                event: "step_finished",
                job: job.into(),
                outputs: Texts(&[]),
                reason: Some(reason.into()),
                run_id,
                status: "skipped",
                step: key(step),
                step_name: step.name.into(),
            },
            Event::StepFinished {
                job,
                ref step,
                outcome,
                status,
                continued_on_error,
                outputs,
                duration,
            } => Line::StepFinished {
                continue_on_error: continued_on_error,
                duration_ms: duration.as_millis() as u64,
                event: "step_finished",
                job: job.into(),
                outputs: Texts(outputs),
                reason: outcome.err().map(Text::from),
                run_id,
                status: status.as_str(),
                step: key(step),
                step_name: step.name.into(),
            },
            Event::RollbackStarted {
                job,
                ref step,
                plugin,
                outcome,
            } => Line::RollbackStarted {
                event: "rollback_started",
                job: job.into(),
                plugin: plugin.into(),
                run_id,
                step: key(step),
                step_name: step.name.into(),
                step_outcome: outcome.into(),
            },
            Event::RollbackFinished {
                job,
                ref step,
                outcome,
                duration,
            } => Line::RollbackFinished {
                duration_ms: duration.as_millis() as u64,
                event: "rollback_finished",
                job: job.into(),
                reason: outcome.err().map(Text::from),
                run_id,
                status: if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                },
                step: key(step),
                step_name: step.name.into(),
            },
            Event::RunFinished {
                verdict,
                failed_steps,
                summary_path,
                duration,
            } => Line::RunFinished {
                duration_ms: duration.as_millis() as u64,
                event: "run_finished",
                // The one place a report speaks of exit statuses: the
                // event says what `gantry` exits with, as documented.
                exit_code: crate::exit::Exit::from(verdict) as i32,
                failed_steps: Texts(failed_steps),
                run_id,
                status: if verdict.succeeded() {
                    Conclusion::Success
                } else {
                    Conclusion::Failure
                }
                .as_str(),
                summary_path: summary_path.map(|path| path.display().to_string().into()),
            },
        }
    }
}

impl Reporter for Json {
    fn report(&self, event: Event<'_>) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        match &event {
            Event::RunStarted { run_id, .. } => state.run_id = (*run_id).to_owned(),
            // A rollback hook's lines belong to the step it compensates.
            Event::StepStarted { job, step, .. } | Event::RollbackStarted { job, step, .. } => {
                state.current_step.insert((*job).to_owned(), step.key());
            }
            _ => {}
        }
        let current_step = match &event {
            Event::StepLog { job, .. }
            | Event::StepAnnotation { job, .. }
            | Event::GroupStarted { job, .. }
            | Event::GroupEnded { job }
            | Event::StepNote { job, .. }
            | Event::NetworkDenied { job, .. } => state.current_step.get(*job).cloned(),
            Event::StepFinished { job, .. } | Event::RollbackFinished { job, .. } => {
                state.current_step.remove(*job);
                None
            }
            _ => None,
        };
        let line = Line::new(&event, &state.run_id, current_step);
        let line = serde_json::to_string(&line).expect("an event serializes");
        // A closed stdout must not stop the run.
        let _ = writeln!(state.out, "{line}");
        let _ = state.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::abi::Annotation;
    use crate::report::Verdict;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every kind of event once, with a control character in each text a
    /// step or a person controls, and both shapes of what is optional.
    fn every_event(report: &dyn Reporter) {
        let step = StepRef {
            name: "de\x1bploy",
            id: Some("deploy"),
            number: 1,
        };
        let unnamed = StepRef {
            name: "probe",
            id: None,
            number: 2,
        };
        let outputs = BTreeMap::from([
            ("b\x07".to_owned(), "two\x1b[31m".to_owned()),
            ("a".to_owned(), "one".to_owned()),
            // Made visible, `\x7f` sorts before `]`: keys are ordered as
            // shown, not as written.
            ("a]".to_owned(), "bracket".to_owned()),
            ("a\x7f".to_owned(), "delete".to_owned()),
        ]);
        let names = ["out\x01".to_owned(), "lines".to_owned()];
        let annotation = Annotation {
            file: Some("src/\x1bmain.rs".into()),
            line: Some(3),
            col: Some(7),
            title: Some("t\x00itle".into()),
            ..Annotation::default()
        };
        report.report(Event::RunStarted {
            pipeline: "pipe\x1bline",
            run_id: "20260101-000000-abcd",
            state_dir: Path::new("/state"),
        });
        report.report(Event::JobStarted { job: "build" });
        report.report(Event::StepLog {
            job: "build",
            stream: Stream::Stdout,
            text: "before any step",
        });
        report.report(Event::StepStarted {
            job: "build",
            step,
            plugin: "pro\x1bbe",
        });
        report.report(Event::StepLog {
            job: "build",
            stream: Stream::Stderr,
            text: "\x1b[2Jcleared",
        });
        for level in [Level::Debug, Level::Notice, Level::Warning, Level::Error] {
            report.report(Event::StepAnnotation {
                job: "build",
                level,
                message: "look\x1b",
                annotation: &annotation,
            });
        }
        report.report(Event::StepAnnotation {
            job: "build",
            level: Level::Notice,
            message: "bare",
            annotation: &Annotation::default(),
        });
        report.report(Event::GroupStarted {
            job: "build",
            name: "gr\x1boup",
        });
        report.report(Event::GroupEnded { job: "build" });
        report.report(Event::StepNote {
            job: "build",
            text: "no\x1bte",
        });
        report.report(Event::NetworkDenied {
            job: "build",
            step: "de\x1bploy",
            destination: "https://example.com:443",
            reason: "not gr\x1banted",
        });
        report.report(Event::StepFinished {
            job: "build",
            step,
            outcome: Ok(()),
            status: Conclusion::Success,
            continued_on_error: false,
            outputs: &names,
            duration: Duration::from_millis(1234),
        });
        report.report(Event::StepStarted {
            job: "build",
            step: unnamed,
            plugin: "probe",
        });
        report.report(Event::StepFinished {
            job: "build",
            step: unnamed,
            outcome: Err("exited with \x1bstatus 3"),
            status: Conclusion::Failure,
            continued_on_error: true,
            outputs: &[],
            duration: Duration::from_millis(5),
        });
        report.report(Event::StepSkipped {
            job: "build",
            step: unnamed,
            reason: "an earlier step \x1bfailed",
        });
        report.report(Event::JobFinished {
            job: "build",
            conclusion: Conclusion::Failure,
            outputs: &outputs,
        });
        report.report(Event::JobSkipped {
            job: "test",
            reason: "it needs \x1bbuild",
        });
        report.report(Event::RollbackStarted {
            job: "build",
            step,
            plugin: "undo",
            outcome: "success",
        });
        report.report(Event::RollbackFinished {
            job: "build",
            step,
            outcome: Ok(()),
            duration: Duration::from_millis(20),
        });
        report.report(Event::RollbackFinished {
            job: "build",
            step: unnamed,
            outcome: Err("hook \x1bfailed"),
            duration: Duration::from_millis(21),
        });
        report.report(Event::RunFinished {
            verdict: Verdict::RollbackFailed,
            failed_steps: &["build/step-2\x1b".to_owned()],
            summary_path: Some(Path::new("/state/runs/x/sum\x1bmary.md")),
            duration: Duration::from_millis(99),
        });
        report.report(Event::RunFinished {
            verdict: Verdict::Succeeded,
            failed_steps: &[],
            summary_path: None,
            duration: Duration::from_millis(100),
        });
    }

    fn lines() -> Vec<String> {
        let buffer = Buffer::default();
        let json = Json::new(Box::new(buffer.clone()));
        every_event(&json);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_line_has_its_keys_in_alphabetical_order() {
        for line in lines() {
            let object: indexmap::IndexMap<String, serde_json::Value> =
                serde_json::from_str(&line).unwrap();
            let keys: Vec<&String> = object.keys().collect();
            assert!(keys.is_sorted(), "{line}");
            assert!(object.contains_key("event") && object.contains_key("run_id"));
        }
    }

    /// Byte for byte what the writer printed when it built each event as
    /// a sorted map (the file was captured from that writer).
    #[test]
    fn every_event_prints_as_documented() {
        let expected = include_str!("json_events.ndjson");
        assert_eq!(lines().join("\n") + "\n", expected);
    }
}
