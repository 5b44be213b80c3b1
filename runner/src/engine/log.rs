//! The log of one running step: every line the guest prints is read for
//! workflow commands, masked, and handed to the reporter as an event.

use std::sync::{Arc, Mutex};

use crate::abi::{Command, CommandParser, Line, Masker};
use crate::report::{Event, Level, Reporter};
use crate::sandbox::output::{LineSink, Stream};

/// Turns a step's raw output lines into report events.
#[derive(Clone)]
pub struct StepLog {
    reporter: Arc<dyn Reporter>,
    masker: Arc<Mutex<Masker>>,
    parser: Arc<Mutex<CommandParser>>,
    /// The job instance the step belongs to.
    job: Arc<str>,
}

impl StepLog {
    pub fn new(reporter: Arc<dyn Reporter>, masker: Arc<Mutex<Masker>>, job: &str) -> Self {
        StepLog {
            reporter,
            masker,
            parser: Arc::new(Mutex::new(CommandParser::new())),
            job: job.into(),
        }
    }

    /// The sink to give the sandbox's output capture.
    pub fn sink(&self) -> LineSink {
        let log = self.clone();
        Arc::new(move |stream, line| log.line(stream, line))
    }

    fn line(&self, stream: Stream, raw: &str) {
        let job = &*self.job;
        // Workflow commands are read from stdout only, as the ABI says.
        if stream == Stream::Stderr {
            let masked = self
                .masker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .mask(raw)
                .into_owned();
            self.reporter.report(Event::StepLog {
                job,
                stream,
                text: &masked,
            });
            return;
        }
        let mut parser = self.parser.lock().unwrap_or_else(|e| e.into_inner());
        let parsed = parser.parse(raw);
        drop(parser);
        let mut masker = self.masker.lock().unwrap_or_else(|e| e.into_inner());
        match parsed {
            Line::Text(text) => {
                let masked = masker.mask(text).into_owned();
                drop(masker);
                self.reporter.report(Event::StepLog {
                    job,
                    stream,
                    text: &masked,
                });
            }
            Line::Command(Command::AddMask(value)) => masker.add(&value),
            Line::Command(command) => {
                let (level, annotation, message) = match command {
                    Command::Debug(message) => (Level::Debug, Default::default(), message),
                    Command::Notice(annotation, message) => (Level::Notice, annotation, message),
                    Command::Warning(annotation, message) => (Level::Warning, annotation, message),
                    Command::Error(annotation, message) => (Level::Error, annotation, message),
                    Command::Group(name) => {
                        let name = masker.mask(&name).into_owned();
                        drop(masker);
                        self.reporter
                            .report(Event::GroupStarted { job, name: &name });
                        return;
                    }
                    Command::EndGroup => {
                        drop(masker);
                        self.reporter.report(Event::GroupEnded { job });
                        return;
                    }
                    Command::AddMask(_) | Command::StopCommands(_) | Command::ResumeCommands => {
                        return;
                    }
                };
                let message = masker.mask(&message).into_owned();
                let mut annotation = annotation;
                annotation.title = annotation.title.map(|t| masker.mask(&t).into_owned());
                annotation.file = annotation.file.map(|f| masker.mask(&f).into_owned());
                drop(masker);
                self.reporter.report(Event::StepAnnotation {
                    job,
                    level,
                    message: &message,
                    annotation: &annotation,
                });
            }
            Line::Ignored(ignored) => {
                drop(masker);
                self.reporter.report(Event::StepNote {
                    job,
                    text: &ignored.to_string(),
                });
            }
        }
    }
}
