//! `--format json`: one JSON object per line, for machines. The schema is
//! documented in `docs/EVENTS.md` and, for validators, in
//! `docs/events.schema.json`; every object has an `"event"` field and
//! the run id, and, inside a job, the job and step. Every string has its
//! control characters made visible (`\x1b`, see [`visible`]) before it is
//! encoded: a consumer that prints a decoded field prints no escape code.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

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

/// Makes the control characters of every string in `value` visible, keys
/// (a step's output names) included.
fn make_visible(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(shown) = visible(text) {
                *text = shown;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_visible),
        Value::Object(map) => {
            let fields = std::mem::take(map);
            for (key, mut field) in fields {
                make_visible(&mut field);
                map.insert(visible(&key).into_owned(), field);
            }
        }
        _ => {}
    }
}

fn step_fields(fields: &mut Map<String, Value>, step: &StepRef<'_>) {
    fields.insert("step".into(), json!(step.key()));
    fields.insert("step_name".into(), json!(step.name));
}

impl Reporter for Json {
    fn report(&self, event: Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut fields = Map::new();
        let name = match &event {
            Event::RunStarted {
                pipeline, run_id, ..
            } => {
                state.run_id = (*run_id).to_owned();
                fields.insert("pipeline".into(), json!(pipeline));
                "run_started"
            }
            Event::JobStarted { job } => {
                fields.insert("job".into(), json!(job));
                "job_started"
            }
            Event::JobSkipped { job, reason } => {
                fields.insert("job".into(), json!(job));
                fields.insert("status".into(), json!("skipped"));
                fields.insert("reason".into(), json!(reason));
                "job_finished"
            }
            Event::JobFinished {
                job,
                conclusion,
                outputs,
            } => {
                fields.insert("job".into(), json!(job));
                fields.insert("status".into(), json!(conclusion.as_str()));
                fields.insert("outputs".into(), json!(outputs));
                "job_finished"
            }
            Event::StepStarted { job, step, plugin } => {
                state.current_step.insert((*job).to_owned(), step.key());
                fields.insert("job".into(), json!(job));
                step_fields(&mut fields, step);
                fields.insert("plugin".into(), json!(plugin));
                "step_started"
            }
            Event::StepLog { job, stream, text } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                let stream = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                fields.insert("stream".into(), json!(stream));
                fields.insert("text".into(), json!(text));
                "log"
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                let level = match level {
                    Level::Debug => "debug",
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                    Level::Error => "error",
                };
                fields.insert("level".into(), json!(level));
                fields.insert("text".into(), json!(message));
                fields.insert("title".into(), json!(annotation.title));
                fields.insert("file".into(), json!(annotation.file));
                fields.insert("line".into(), json!(annotation.line));
                fields.insert("col".into(), json!(annotation.col));
                "annotation"
            }
            Event::GroupStarted { job, name } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                fields.insert("name".into(), json!(name));
                "group_started"
            }
            Event::GroupEnded { job } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                "group_ended"
            }
            Event::StepNote { job, text } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                fields.insert("text".into(), json!(text));
                "note"
            }
            Event::NetworkDenied {
                job,
                step,
                destination,
                reason,
            } => {
                fields.insert("job".into(), json!(job));
                fields.insert("step".into(), json!(state.current_step.get(*job)));
                fields.insert("step_name".into(), json!(step));
                fields.insert("destination".into(), json!(destination));
                fields.insert("reason".into(), json!(reason));
                "network_denied"
            }
            Event::StepSkipped { job, step, reason } => {
                fields.insert("job".into(), json!(job));
                step_fields(&mut fields, step);
                fields.insert("status".into(), json!("skipped"));
                fields.insert("reason".into(), json!(reason));
                // Always present, as documented: a step that never ran did
                // not go on past an error.
                fields.insert("continue_on_error".into(), json!(false));
                fields.insert("duration_ms".into(), json!(0));
                fields.insert("outputs".into(), json!([] as [&str; 0]));
                "step_finished"
            }
            Event::StepFinished {
                job,
                step,
                outcome,
                status,
                continued_on_error,
                outputs,
                duration,
            } => {
                state.current_step.remove(*job);
                fields.insert("job".into(), json!(job));
                step_fields(&mut fields, step);
                fields.insert("status".into(), json!(status.as_str()));
                if let Err(reason) = outcome {
                    fields.insert("reason".into(), json!(reason));
                }
                fields.insert("continue_on_error".into(), json!(continued_on_error));
                fields.insert("duration_ms".into(), json!(duration.as_millis() as u64));
                fields.insert("outputs".into(), json!(outputs));
                "step_finished"
            }
            Event::RollbackStarted {
                job,
                step,
                plugin,
                outcome,
            } => {
                fields.insert("job".into(), json!(job));
                step_fields(&mut fields, step);
                fields.insert("plugin".into(), json!(plugin));
                fields.insert("step_outcome".into(), json!(outcome));
                "rollback_started"
            }
            Event::RollbackFinished {
                job,
                step,
                outcome,
                duration,
            } => {
                fields.insert("job".into(), json!(job));
                step_fields(&mut fields, step);
                let status = if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                };
                fields.insert("status".into(), json!(status));
                if let Err(reason) = outcome {
                    fields.insert("reason".into(), json!(reason));
                }
                fields.insert("duration_ms".into(), json!(duration.as_millis() as u64));
                "rollback_finished"
            }
            Event::RunFinished {
                verdict,
                failed_steps,
                summary_path,
                duration,
            } => {
                let status = if verdict.succeeded() {
                    Conclusion::Success
                } else {
                    Conclusion::Failure
                };
                fields.insert("status".into(), json!(status.as_str()));
                // The one place a report speaks of exit statuses: the
                // event says what `gantry` exits with, as documented.
                let exit_code = crate::exit::Exit::from(*verdict) as i32;
                fields.insert("exit_code".into(), json!(exit_code));
                fields.insert("failed_steps".into(), json!(failed_steps));
                fields.insert(
                    "summary_path".into(),
                    json!(summary_path.map(|p| p.display().to_string())),
                );
                fields.insert("duration_ms".into(), json!(duration.as_millis() as u64));
                "run_finished"
            }
        };
        let mut object = Map::new();
        object.insert("event".into(), json!(name));
        object.insert("run_id".into(), json!(state.run_id));
        object.extend(fields);
        let mut value = Value::Object(object);
        make_visible(&mut value);
        let line = value.to_string();
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
    fn every_event_prints_as_documented() {
        let expected = include_str!("json_events.ndjson");
        assert_eq!(lines().join("\n") + "\n", expected);
    }
}
