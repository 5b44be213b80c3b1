//! The one door every event of a run goes through before any reporter sees
//! it: [`Masked`] hides the run's secrets in every string of the event and
//! the values steps registered with `::add-mask::` in the step-controlled
//! ones (see [`crate::abi::mask`]).
//!
//! The engine composes its notes and reasons freely and marks the parts a
//! step controls with [`step_text`](crate::abi::step_text); masking here,
//! rather than where each message is made, means no new message can forget
//! it, and the marks never reach a reporter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Event, Reporter, StepRef};
use crate::abi::Masks;

/// Masks each event, then hands it to the reporter it wraps.
pub struct Masked {
    inner: Arc<dyn Reporter>,
    masks: Arc<Mutex<Masks>>,
}

impl Masked {
    /// Wraps `inner`; `masks` is shared with the run, which adds to it as
    /// steps register values.
    pub fn new(inner: Arc<dyn Reporter>, masks: Arc<Mutex<Masks>>) -> Self {
        Masked { inner, masks }
    }
}

/// A [`StepRef`] whose name and id were masked.
struct OwnedStep {
    name: String,
    id: Option<String>,
    number: usize,
}

impl OwnedStep {
    fn as_ref(&self) -> StepRef<'_> {
        StepRef {
            name: &self.name,
            id: self.id.as_deref(),
            number: self.number,
        }
    }
}

impl Reporter for Masked {
    fn report(&self, event: Event<'_>) {
        let masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        // gantry's own text, possibly quoting a step's (marked).
        let own = |text: &str| masks.message(text).into_owned();
        // Text a step wrote, all of it.
        let step_text = |text: &str| masks.step(text).into_owned();
        let step = |s: &StepRef<'_>| OwnedStep {
            name: own(s.name),
            id: s.id.map(own),
            number: s.number,
        };
        let reason = |outcome: Result<(), &str>| outcome.err().map(own);
        // The masks are not held while a reporter writes: a slow stdout
        // must not stall a step's log, which needs them.
        macro_rules! forward {
            ($event:expr) => {{
                drop(masks);
                self.inner.report($event)
            }};
        }
        match event {
            Event::RunStarted {
                pipeline,
                run_id,
                state_dir,
            } => {
                let pipeline = own(pipeline);
                forward!(Event::RunStarted {
                    pipeline: &pipeline,
                    run_id,
                    state_dir,
                })
            }
            Event::JobStarted { job } => {
                let job = own(job);
                forward!(Event::JobStarted { job: &job })
            }
            Event::JobSkipped { job, reason } => {
                let (job, reason) = (own(job), own(reason));
                forward!(Event::JobSkipped {
                    job: &job,
                    reason: &reason,
                })
            }
            Event::JobFinished {
                job,
                conclusion,
                outputs,
            } => {
                let job = own(job);
                let outputs: BTreeMap<String, String> = outputs
                    .iter()
                    .map(|(name, value)| (step_text(name), step_text(value)))
                    .collect();
                forward!(Event::JobFinished {
                    job: &job,
                    conclusion,
                    outputs: &outputs,
                })
            }
            Event::StepStarted {
                job,
                step: s,
                plugin,
            } => {
                let (job, s, plugin) = (own(job), step(&s), own(plugin));
                forward!(Event::StepStarted {
                    job: &job,
                    step: s.as_ref(),
                    plugin: &plugin,
                })
            }
            Event::StepLog { job, stream, text } => {
                let (job, text) = (own(job), step_text(text));
                forward!(Event::StepLog {
                    job: &job,
                    stream,
                    text: &text,
                })
            }
            Event::StepAnnotation {
                job,
                level,
                message,
                annotation,
            } => {
                let (job, message) = (own(job), step_text(message));
                let mut annotation = annotation.clone();
                annotation.title = annotation.title.as_deref().map(step_text);
                annotation.file = annotation.file.as_deref().map(step_text);
                forward!(Event::StepAnnotation {
                    job: &job,
                    level,
                    message: &message,
                    annotation: &annotation,
                })
            }
            Event::GroupStarted { job, name } => {
                let (job, name) = (own(job), step_text(name));
                forward!(Event::GroupStarted {
                    job: &job,
                    name: &name,
                })
            }
            Event::GroupEnded { job } => {
                let job = own(job);
                forward!(Event::GroupEnded { job: &job })
            }
            Event::StepNote { job, text } => {
                let (job, text) = (own(job), own(text));
                forward!(Event::StepNote {
                    job: &job,
                    text: &text,
                })
            }
            Event::NetworkDenied {
                job,
                step,
                destination,
                reason,
            } => {
                let (job, step) = (own(job), own(step));
                let (destination, reason) = (own(destination), own(reason));
                forward!(Event::NetworkDenied {
                    job: &job,
                    step: &step,
                    destination: &destination,
                    reason: &reason,
                })
            }
            Event::StepSkipped {
                job,
                step: s,
                reason,
            } => {
                let (job, s, reason) = (own(job), step(&s), own(reason));
                forward!(Event::StepSkipped {
                    job: &job,
                    step: s.as_ref(),
                    reason: &reason,
                })
            }
            Event::StepFinished {
                job,
                step: s,
                outcome: result,
                status,
                continued_on_error,
                outputs,
                duration,
            } => {
                let (job, s, why) = (own(job), step(&s), reason(result));
                // Output names are the step's text too.
                let outputs: Vec<String> = outputs.iter().map(|n| step_text(n)).collect();
                forward!(Event::StepFinished {
                    job: &job,
                    step: s.as_ref(),
                    outcome: why.as_deref().map_or(Ok(()), Err),
                    status,
                    continued_on_error,
                    outputs: &outputs,
                    duration,
                })
            }
            Event::RollbackStarted {
                job,
                step: s,
                plugin,
                outcome: compensated,
            } => {
                let (job, s, plugin) = (own(job), step(&s), own(plugin));
                forward!(Event::RollbackStarted {
                    job: &job,
                    step: s.as_ref(),
                    plugin: &plugin,
                    outcome: compensated,
                })
            }
            Event::RollbackFinished {
                job,
                step: s,
                outcome: result,
                duration,
            } => {
                let (job, s, why) = (own(job), step(&s), reason(result));
                forward!(Event::RollbackFinished {
                    job: &job,
                    step: s.as_ref(),
                    outcome: why.as_deref().map_or(Ok(()), Err),
                    duration,
                })
            }
            Event::RunFinished {
                verdict,
                failed_steps,
                summary_path,
                duration,
            } => {
                let failed_steps: Vec<String> = failed_steps.iter().map(|s| own(s)).collect();
                forward!(Event::RunFinished {
                    verdict,
                    failed_steps: &failed_steps,
                    summary_path,
                    duration,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::abi::{Masker, step_text};
    use crate::report::Conclusion;

    /// Records each event as debug text.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Reporter for Recorder {
        fn report(&self, event: Event<'_>) {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
    }

    #[test]
    fn every_string_is_masked_and_marks_never_reach_a_reporter() {
        let mut secrets = Masker::new();
        secrets.add("s3cret");
        let mut masks = Masks::new(secrets);
        masks.register("failed").unwrap();
        let recorder = Arc::new(Recorder::default());
        let masked = Masked::new(recorder.clone(), Arc::new(Mutex::new(masks)));
        let reason = format!("failed: `{}` s3cret", step_text("it failed"));
        let step = StepRef {
            name: "s3cret step",
            id: None,
            number: 1,
        };
        masked.report(Event::StepFinished {
            job: "main",
            step,
            outcome: Err(&reason),
            status: Conclusion::Failure,
            continued_on_error: false,
            outputs: &["failed".to_owned()],
            duration: Duration::ZERO,
        });
        masked.report(Event::StepLog {
            job: "main",
            stream: crate::sandbox::output::Stream::Stdout,
            text: "the step failed with s3cret",
        });
        let seen = recorder.0.lock().unwrap().join("\n");
        assert!(!seen.contains("s3cret"), "{seen}");
        assert!(!seen.contains(['\u{E000}', '\u{E001}']), "{seen}");
        assert!(seen.contains("\"failed: `it ***` ***\""), "{seen}");
        assert!(seen.contains("\"*** step\""), "{seen}");
        assert!(seen.contains("\"the step *** with ***\""), "{seen}");
    }
}
