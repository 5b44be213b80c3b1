//! The scheduler: starts each job once every job it needs has finished,
//! decides from its needs and `if:` whether it runs, and runs its matrix
//! combinations (or the job once), `max-parallel` at a time, each as a
//! [`JobInstance`].
//!
//! Parallelism is bounded twice: by the job's `max-parallel` among its own
//! combinations, and by the run's `--max-parallel` (`Shared::slots`) across
//! all jobs. A panic inside a job fails that job instead of hanging the
//! jobs that need it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::job::JobInstance;
use super::status::{JobStatus, asks_for_status};
use super::{JobResult, Shared};
use crate::abi::step_text;
use crate::plan::{JobPlan, MatrixCombination};
use crate::report::{Conclusion, Event};

/// Starts each job once all it needs has finished; returns every result.
pub(super) async fn schedule(shared: &Arc<Shared>) -> HashMap<String, JobResult> {
    let jobs = &shared.plan.jobs;
    // Needs that finished on other machines are finished here too.
    let mut results: HashMap<String, JobResult> = shared
        .options
        .imported
        .iter()
        .flat_map(|imported| imported.needs.clone())
        .collect();
    let mut started = vec![false; jobs.len()];
    let mut running: JoinSet<(usize, JobResult)> = JoinSet::new();
    let mut task_job: HashMap<tokio::task::Id, usize> = HashMap::new();
    loop {
        for (index, job) in jobs.iter().enumerate() {
            if started[index] || !job.needs.iter().all(|n| results.contains_key(n)) {
                continue;
            }
            started[index] = true;
            let needs: BTreeMap<String, JobResult> = job
                .needs
                .iter()
                .map(|n| (n.clone(), results[n].clone()))
                .collect();
            let shared = shared.clone();
            let handle =
                running.spawn(async move { (index, run_job(&shared, index, &needs).await) });
            task_job.insert(handle.id(), index);
        }
        match running.join_next_with_id().await {
            None => break,
            Some(Ok((_, (index, result)))) => {
                results.insert(jobs[index].id.clone(), result);
            }
            Some(Err(error)) => {
                // A panic inside a job is a bug in gantry; the run carries on
                // with that job failed rather than hanging its dependents.
                if let Some(&index) = task_job.get(&error.id()) {
                    let job = &jobs[index];
                    shared.reporter.report(Event::StepNote {
                        job: &job.name,
                        text: &format!("internal error: the job stopped unexpectedly ({error})"),
                    });
                    results.insert(
                        job.id.clone(),
                        JobResult::without_outputs(Conclusion::Failure),
                    );
                }
            }
        }
    }
    results
}

/// Runs one job: decides from its needs and `if:` whether it runs, then
/// runs its matrix combinations (or itself once) and combines their results.
async fn run_job(
    shared: &Arc<Shared>,
    index: usize,
    needs: &BTreeMap<String, JobResult>,
) -> JobResult {
    let job = &shared.plan.jobs[index];
    let cancelled = shared.options.cancel.is_cancelled();
    let needs_met = needs.values().all(|r| r.conclusion == Conclusion::Success);
    let status = JobStatus::after_needs(needs, cancelled);
    let should_run = match &job.condition {
        None => Ok(needs_met && !cancelled),
        Some(condition) => {
            let contexts = shared.contexts().needs(needs).build();
            condition
                .evaluate_with(&contexts, &shared.functions(status))
                .map(|value| {
                    value.is_truthy() && (asks_for_status(condition) || (needs_met && !cancelled))
                })
                // An expression's error may quote a value a step set.
                .map_err(|e| step_text(&e.message))
        }
    };
    match should_run {
        Ok(true) => {}
        Ok(false) => {
            let unmet: Vec<&str> = needs
                .iter()
                .filter(|(_, r)| r.conclusion != Conclusion::Success)
                .map(|(id, _)| id.as_str())
                .collect();
            let reason = if cancelled {
                "the run was cancelled".to_owned()
            } else if job.condition.is_some() {
                "its `if:` condition is false".to_owned()
            } else {
                format!("it needs {}, which did not succeed", unmet.join(", "))
            };
            shared.reporter.report(Event::JobSkipped {
                job: &job.name,
                reason: &reason,
            });
            return JobResult::without_outputs(Conclusion::Skipped);
        }
        Err(message) => {
            let reason = format!("its `if:` could not be evaluated: {message}");
            shared.reporter.report(Event::JobSkipped {
                job: &job.name,
                reason: &reason,
            });
            shared
                .failed_steps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(job.id.clone());
            return JobResult::without_outputs(Conclusion::Failure);
        }
    }
    run_instances(shared, index, needs).await
}

/// Runs every matrix combination of a job, `max-parallel` at a time; with
/// `fail-fast`, the first failure cancels the others.
async fn run_instances(
    shared: &Arc<Shared>,
    index: usize,
    needs: &BTreeMap<String, JobResult>,
) -> JobResult {
    let job: &JobPlan = &shared.plan.jobs[index];
    let combinations: Vec<Option<MatrixCombination>> = if job.matrix.is_empty() {
        vec![None]
    } else {
        job.matrix.iter().cloned().map(Some).collect()
    };
    let total = combinations.len();
    // On a machine of its own, one combination runs, keeping its place in
    // the matrix (`strategy.job-index`).
    let only = shared.options.imported.as_ref().and_then(|i| i.instance);
    let cancel = shared.options.cancel.child_token();
    let limit = Arc::new(Semaphore::new(job.max_parallel.unwrap_or(total).max(1)));
    let needs = Arc::new(needs.clone());
    let mut running: JoinSet<JobResult> = JoinSet::new();
    for (position, combination) in combinations.into_iter().enumerate() {
        if only.is_some_and(|only| only != position) {
            continue;
        }
        let shared = shared.clone();
        let cancel = cancel.clone();
        let limit = limit.clone();
        let needs = needs.clone();
        running.spawn(async move {
            let job = &shared.plan.jobs[index];
            let name = job.instance_name(combination.as_ref());
            let Ok(_in_job) = limit.acquire().await else {
                return JobResult::without_outputs(Conclusion::Cancelled);
            };
            let Ok(_in_run) = shared.slots.acquire().await else {
                return JobResult::without_outputs(Conclusion::Cancelled);
            };
            if cancel.is_cancelled() {
                shared.reporter.report(Event::JobSkipped {
                    job: &name,
                    reason: "the job was cancelled",
                });
                return JobResult::without_outputs(Conclusion::Cancelled);
            }
            let strategy = Strategy {
                job_index: position,
                job_total: total,
            };
            JobInstance::new(
                &shared,
                job,
                name,
                combination.as_ref(),
                strategy,
                &needs,
                cancel,
            )
            .run()
            .await
        });
    }
    let mut conclusions = Vec::with_capacity(total);
    let mut outputs = BTreeMap::new();
    while let Some(joined) = running.join_next().await {
        let result = joined.unwrap_or_else(|error| {
            shared.reporter.report(Event::StepNote {
                job: &job.name,
                text: &format!("internal error: a job instance stopped unexpectedly ({error})"),
            });
            JobResult::without_outputs(Conclusion::Failure)
        });
        if result.conclusion == Conclusion::Failure && job.fail_fast && total > 1 {
            cancel.cancel();
        }
        // As in GitHub Actions, a matrix job's outputs are whatever its
        // instances set, the last to finish winning.
        outputs.extend(result.outputs.into_iter().filter(|(_, v)| !v.is_empty()));
        conclusions.push(result.conclusion);
    }
    let conclusion = if conclusions.contains(&Conclusion::Failure) {
        if job.continue_on_error {
            Conclusion::Success
        } else {
            Conclusion::Failure
        }
    } else if conclusions.contains(&Conclusion::Cancelled) {
        Conclusion::Cancelled
    } else {
        Conclusion::Success
    };
    if total > 1 && only.is_none() {
        shared.reporter.report(Event::JobFinished {
            job: &job.name,
            conclusion,
            outputs: &outputs,
        });
    }
    JobResult {
        conclusion,
        outputs,
    }
}

/// Where one instance sits in its job's matrix (the `strategy` context).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strategy {
    pub job_index: usize,
    pub job_total: usize,
}
