//! Live progress for a person at a terminal: below the log lines, one line
//! per running job with the step it runs and for how long, and a line for
//! the whole run with its elapsed time and the steps done so far.
//!
//! Only [`human::Human`](super::human::Human) uses it, and only when stdout
//! is a terminal: piped output never carries its cursor movements. Lines
//! printed while it is shown go through [`Live::print`], which takes the
//! progress lines away, prints, and draws them again below.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Event;

/// How often the spinners turn and the elapsed times move.
const TICK: Duration = Duration::from_millis(120);

/// The progress lines of one run.
pub struct Live {
    lines: MultiProgress,
    /// The run's own line; `None` until the run starts.
    run: Mutex<Option<ProgressBar>>,
    /// One line per running job instance, by name.
    jobs: Mutex<HashMap<String, ProgressBar>>,
    job_style: ProgressStyle,
    run_style: ProgressStyle,
    steps_done: AtomicUsize,
    steps_total: usize,
    ticking: bool,
}

impl Live {
    /// Progress for a run of `steps_total` steps, drawn on stdout.
    pub fn stdout(steps_total: usize, color: bool) -> Live {
        Live::new(ProgressDrawTarget::stdout(), steps_total, color, true)
    }

    /// `ticking` redraws on a timer; tests leave it off and draw on each
    /// event, so what they read does not depend on time.
    pub fn new(target: ProgressDrawTarget, steps_total: usize, color: bool, ticking: bool) -> Live {
        let style = |plain: &str, colored: &str| {
            ProgressStyle::with_template(if color { colored } else { plain })
                .expect("the progress templates are valid")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
        };
        Live {
            lines: MultiProgress::with_draw_target(target),
            run: Mutex::new(None),
            jobs: Mutex::new(HashMap::new()),
            job_style: style(
                "{spinner} {prefix}: {wide_msg} {elapsed}",
                "{spinner:.cyan} {prefix:.bold}: {wide_msg} {elapsed:.dim}",
            ),
            run_style: style("{msg} {elapsed}", "{msg:.bold} {elapsed:.dim}"),
            steps_done: AtomicUsize::new(0),
            steps_total,
            ticking,
        }
    }

    /// Runs `print` (which writes whole lines to stdout) with the progress
    /// lines out of the way.
    pub fn print(&self, print: impl FnOnce()) {
        self.lines.suspend(print);
    }

    /// Follows the run's progress.
    pub fn update(&self, event: &Event<'_>) {
        match event {
            Event::RunStarted { pipeline, .. } => {
                let line = ProgressBar::new_spinner()
                    .with_style(self.run_style.clone())
                    .with_prefix(pipeline.to_string());
                *self.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.clone());
                self.count_step(0);
                self.start(&self.lines.add(line));
            }
            Event::JobStarted { job } => {
                self.job_line(job, "starting");
            }
            Event::StepStarted { job, step, plugin } => {
                self.job_line(job, &format!("{} [{plugin}]", step.name));
            }
            Event::StepFinished { .. } | Event::StepSkipped { .. } => self.count_step(1),
            Event::RollbackStarted { job, step, .. } => {
                self.job_line(job, &format!("rolling back {}", step.name));
            }
            Event::JobFinished { job, .. } => {
                if let Some(line) = self.jobs().remove(*job) {
                    line.finish_and_clear();
                    self.lines.remove(&line);
                }
            }
            Event::RunFinished { .. } => {
                for (_, line) in self.jobs().drain() {
                    line.finish_and_clear();
                }
                if let Some(line) = self.run.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    line.finish_and_clear();
                }
                let _ = self.lines.clear();
            }
            _ => {}
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows `message` on the line of job instance `job`, timed from now;
    /// the line is added below the others if the job has none yet (a
    /// rollback hook can run after its job finished).
    fn job_line(&self, job: &str, message: &str) {
        let mut jobs = self.jobs();
        if let Some(line) = jobs.get(job) {
            line.reset_elapsed();
            line.set_message(message.to_owned());
            return;
        }
        let line = ProgressBar::new_spinner()
            .with_style(self.job_style.clone())
            .with_prefix(job.to_owned())
            .with_message(message.to_owned());
        let line = self.lines.add(line);
        self.start(&line);
        jobs.insert(job.to_owned(), line);
    }

    fn start(&self, line: &ProgressBar) {
        if self.ticking {
            line.enable_steady_tick(TICK);
        }
    }

    /// Adds `finished` to the steps done and says so on the run's line.
    fn count_step(&self, finished: usize) {
        let done = self.steps_done.fetch_add(finished, Ordering::Relaxed) + finished;
        if let Some(line) = &*self.run.lock().unwrap_or_else(|e| e.into_inner()) {
            line.set_message(format!(
                "{}: {done} of {} steps done",
                line.prefix(),
                self.steps_total
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use indicatif::{InMemoryTerm, TermLike};

    use super::*;
    use crate::report::{Conclusion, StepRef};

    fn step(name: &str) -> StepRef<'_> {
        StepRef {
            name,
            id: None,
            number: 1,
        }
    }

    #[test]
    fn shows_each_running_job_and_takes_it_away_when_done() {
        let term = InMemoryTerm::new(10, 60);
        let live = Live::new(
            ProgressDrawTarget::term_like(Box::new(term.clone())),
            3,
            false,
            false,
        );
        let outputs = Default::default();
        live.update(&Event::RunStarted {
            pipeline: "release",
            run_id: "r1",
            state_dir: std::path::Path::new("/state"),
        });
        live.update(&Event::JobStarted { job: "build" });
        live.update(&Event::JobStarted { job: "lint" });
        live.update(&Event::StepStarted {
            job: "build",
            step: step("compile"),
            plugin: "rustc",
        });
        live.update(&Event::StepStarted {
            job: "lint",
            step: step("check"),
            plugin: "clippy",
        });
        live.update(&Event::StepFinished {
            job: "lint",
            step: step("check"),
            outcome: Ok(()),
            status: Conclusion::Success,
            continued_on_error: false,
            outputs: &[],
            duration: Duration::ZERO,
        });
        live.print(|| term.write_line("a log line").unwrap());
        let screen = term.contents();
        assert!(screen.starts_with("a log line\n"), "{screen}");
        assert!(screen.contains("release: 1 of 3 steps done 0s"), "{screen}");
        assert!(screen.contains("build: compile [rustc] "), "{screen}");
        assert!(screen.contains("lint: check [clippy] "), "{screen}");

        live.update(&Event::JobFinished {
            job: "lint",
            conclusion: Conclusion::Success,
            outputs: &outputs,
        });
        live.update(&Event::StepFinished {
            job: "build",
            step: step("compile"),
            outcome: Err("exited with status 1"),
            status: Conclusion::Failure,
            continued_on_error: false,
            outputs: &[],
            duration: Duration::ZERO,
        });
        live.update(&Event::RollbackStarted {
            job: "build",
            step: step("compile"),
            plugin: "rustc",
            outcome: "failure",
        });
        let screen = term.contents();
        assert!(!screen.contains("lint:"), "{screen}");
        assert!(screen.contains("build: rolling back compile"), "{screen}");
        assert!(screen.contains("2 of 3 steps done"), "{screen}");

        live.update(&Event::RunFinished {
            verdict: crate::report::Verdict::Failed,
            failed_steps: &[],
            summary_path: None,
            duration: Duration::ZERO,
        });
        assert_eq!(term.contents(), "a log line", "only the printed line stays");
    }
}
