//! Running a job's steps with the step groups around them.
//!
//! The plan lists a group's steps in place, each pointing at its call
//! (`plan::GroupCall`). Walking the list, a group is *opened* when its
//! first step comes up and *closed* after its last: opening evaluates the
//! call's `if:` and `with:` in the caller's contexts, reports and journals
//! the call as a step, and gives the group a scope of its own (its `steps`,
//! its `inputs`, its failure state, its `timeout-minutes` as a deadline);
//! closing evaluates its `outputs:` in that scope, puts the caller's scope
//! back and finishes the call as one step, `continue-on-error` included.
//!
//! The group's steps are journaled and reported like any other step, by
//! their path (`publish/upload`), so the saga, `resume` and `rollback`
//! treat their hooks exactly as the job's own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{JobInstance, StepRecord};
use crate::abi::step_text;
use crate::display::human_duration;
use crate::expr::FunctionHost;
use crate::plan::GroupCall;
use crate::report::{Conclusion, Event};
use crate::sandbox::Failure;
use crate::sandbox::step_files::StepFiles;

/// A group that is open: what its call changed in the job instance, to
/// put back when it closes.
struct Frame {
    call: Arc<GroupCall>,
    /// Whether its steps run; those of a skipped group (whose call was
    /// reported skipped, or that sits in one) are passed over silently.
    runs: bool,
    started: Instant,
    /// The call's journal number.
    seq: Option<(u64, bool)>,
    outer: Option<Outer>,
}

/// The caller's scope, kept while a group runs.
struct Outer {
    steps: BTreeMap<String, StepRecord>,
    failed: bool,
    inputs: Option<BTreeMap<String, String>>,
    deadline: Instant,
    deadline_of: Option<(String, Duration)>,
}

impl JobInstance<'_> {
    /// Runs the job's steps in order, opening and closing step groups
    /// around theirs.
    pub(super) async fn run_steps(&mut self) {
        let job = self.job;
        let mut open: Vec<Frame> = Vec::new();
        for step in &job.steps {
            let chain = step
                .group
                .as_ref()
                .map(GroupCall::chain)
                .unwrap_or_default();
            let kept = open
                .iter()
                .zip(&chain)
                .take_while(|(frame, call)| Arc::ptr_eq(&frame.call, call))
                .count();
            while open.len() > kept {
                let frame = open.pop().expect("more open than kept");
                self.close_group(frame);
            }
            for call in &chain[open.len()..] {
                let inside_skipped = open.last().is_some_and(|frame| !frame.runs);
                let frame = self.open_group(call, inside_skipped);
                open.push(frame);
            }
            if open.last().is_some_and(|frame| !frame.runs) {
                continue;
            }
            let record = self.step(step).await;
            self.record(step.id.as_deref(), record);
        }
        while let Some(frame) = open.pop() {
            self.close_group(frame);
        }
    }

    /// What a finished step (or group) means for the steps after it.
    fn record(&mut self, id: Option<&str>, record: StepRecord) {
        if record.conclusion == Conclusion::Failure {
            self.failed = true;
        }
        if let Some(id) = id {
            self.steps.insert(id.to_owned(), record);
        }
    }

    /// Starts a group: its call's `if:`, then its inputs, then its scope.
    fn open_group(&mut self, call: &Arc<GroupCall>, inside_skipped: bool) -> Frame {
        let mut frame = Frame {
            call: call.clone(),
            runs: false,
            started: Instant::now(),
            seq: None,
            outer: None,
        };
        if inside_skipped {
            return frame;
        }
        let step = &call.step;
        self.expand_name(step);
        let reason = match self.skip_reason(step.condition.as_ref()) {
            Ok(reason) => reason,
            Err(reason) => {
                let record = self.fail_before_start(step, &reason);
                self.record(step.id.as_deref(), record);
                return frame;
            }
        };
        if !reason.is_empty() {
            self.shared.reporter.report(Event::StepSkipped {
                job: &self.name,
                step: self.step_ref(step),
                reason,
            });
            let skipped = StepRecord {
                outputs: BTreeMap::new(),
                outcome: Conclusion::Skipped,
                conclusion: Conclusion::Skipped,
            };
            self.record(step.id.as_deref(), skipped);
            return frame;
        }
        // The call's `with:` (and the group's defaults) see the caller's
        // contexts, secrets included, as a step's inputs do.
        let contexts = self.contexts(true).build();
        let functions = self.shared.functions(self.job_status());
        let mut inputs = BTreeMap::new();
        for input in &step.inputs {
            match input
                .value
                .render_with(&contexts, &functions as &dyn FunctionHost)
            {
                Ok(value) => {
                    inputs.insert(input.name.clone(), value);
                }
                Err(e) => {
                    let reason = format!(
                        "input `{}` could not be evaluated: {}",
                        input.name,
                        step_text(&e.message)
                    );
                    let record = self.fail_before_start(step, &reason);
                    self.record(step.id.as_deref(), record);
                    return frame;
                }
            }
        }
        self.started(step, None);
        frame.seq = self.current_seq.take();
        frame.runs = true;
        frame.started = Instant::now();
        let own_deadline = frame.started + step.timeout;
        frame.outer = Some(Outer {
            steps: std::mem::take(&mut self.steps),
            failed: std::mem::replace(&mut self.failed, false),
            inputs: self.group_inputs.replace(inputs),
            deadline: self.deadline,
            deadline_of: self.deadline_of.clone(),
        });
        if own_deadline < self.deadline {
            self.deadline = own_deadline;
            self.deadline_of = Some((call.display.clone(), step.timeout));
        }
        frame
    }

    /// Ends a group: its outputs in its own scope, then the caller's scope
    /// back, then the call finished as one step.
    fn close_group(&mut self, frame: Frame) {
        let Some(outer) = frame.outer else {
            return;
        };
        let call = &frame.call;
        let outputs = self.render_outputs(&call.outputs);
        // This group's own deadline passed, rather than an outer one.
        let own_timeout = self.timed_out && self.deadline != outer.deadline;
        let outcome = if own_timeout {
            Err(Failure::Setup(format!(
                "the step group reached its timeout of {}",
                human_duration(call.step.timeout)
            )))
        } else if self.failed {
            Err(Failure::Setup("a step of the group failed".into()))
        } else if self.cancel.is_cancelled() {
            Err(Failure::Cancelled)
        } else {
            Ok(())
        };
        self.timed_out = self.timed_out && !own_timeout;
        self.steps = outer.steps;
        self.failed = outer.failed;
        self.group_inputs = outer.inputs;
        self.deadline = outer.deadline;
        self.deadline_of = outer.deadline_of;
        self.current_seq = frame.seq;
        let files = StepFiles {
            outputs: outputs.into_iter().collect(),
            ..StepFiles::default()
        };
        let record = self.finish(&call.step, outcome, files, frame.started.elapsed());
        self.record(call.step.id.as_deref(), record);
    }

    /// Why the deadline a step just ran into is there.
    pub(super) fn deadline_reason(&self) -> String {
        match &self.deadline_of {
            Some((group, timeout)) => format!(
                "the step group `{group}` reached its timeout of {}",
                human_duration(*timeout)
            ),
            None => format!(
                "the job reached its timeout of {}",
                human_duration(self.job.timeout)
            ),
        }
    }
}
