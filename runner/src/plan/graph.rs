//! The job graph: each job's `needs` resolved to jobs, the jobs put in
//! execution order (a cycle reported with its path), and a plan narrowed
//! to some jobs and everything they need. Its own room because the order
//! is what the scheduler relies on: every job comes after its needs.

use std::collections::BTreeSet;

use serde_saphyr::Spanned;

use super::{Plan, Resolver};
use crate::manifest::did_you_mean;

impl Plan {
    /// Narrows the plan to the jobs `ids` and every job they need (`gantry
    /// run --job`, `plan --job`, `export --job`); only the load stage's
    /// [`Draft::narrow_to`](crate::load::Draft::narrow_to) calls it, before
    /// the plan is final.
    pub(crate) fn keep_jobs_and_needs(&mut self, ids: &[String]) -> Result<(), String> {
        for id in ids {
            if !self.jobs.iter().any(|job| job.id == *id) {
                let hint = did_you_mean(id, self.jobs.iter().map(|j| j.id.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!("there is no job `{id}` in this pipeline{hint}"));
            }
        }
        let mut wanted: BTreeSet<String> = ids.iter().cloned().collect();
        // Plan order puts every job after its needs, so one backward pass
        // collects the whole closure.
        for job in self.jobs.iter().rev() {
            if wanted.contains(&job.id) {
                wanted.extend(job.needs.iter().cloned());
            }
        }
        self.jobs.retain(|job| wanted.contains(&job.id));
        Ok(())
    }
}

impl Resolver<'_> {
    /// Job indices in execution order: needs first, otherwise file order.
    pub(super) fn job_order(&mut self) -> Vec<usize> {
        let jobs = &self.loaded.manifest.jobs;
        let mut needs: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
        for (id, job) in jobs {
            let mut list = Vec::new();
            if let Some(spanned) = &job.needs {
                for need in spanned.value.ids() {
                    match jobs.keys().position(|key| key.value == need) {
                        Some(index) => list.push(index),
                        None => {
                            let known = jobs.keys().map(|k| k.value.as_str());
                            let hint = did_you_mean(need, known)
                                .map(|s| format!("did you mean `{s}`?"))
                                .unwrap_or_else(|| {
                                    format!("the jobs are: {}", job_list(jobs.keys()))
                                });
                            self.error(
                                spanned.referenced,
                                format!("job `{}` needs `{need}`, which is not a job", id.value),
                            )
                            .hint = Some(hint);
                        }
                    }
                }
            }
            needs.push(list);
        }
        let mut done = vec![false; jobs.len()];
        let mut order = Vec::with_capacity(jobs.len());
        while order.len() < jobs.len() {
            let ready = (0..jobs.len()).find(|&i| !done[i] && needs[i].iter().all(|&n| done[n]));
            match ready {
                Some(index) => {
                    done[index] = true;
                    order.push(index);
                }
                None => {
                    let cycle = find_cycle(&needs, &done);
                    let names: Vec<&str> = cycle
                        .iter()
                        .map(|&i| jobs.get_index(i).expect("job index").0.value.as_str())
                        .collect();
                    let (first, _) = jobs.get_index(cycle[0]).expect("job index");
                    self.error(
                        first.referenced,
                        format!(
                            "the jobs' `needs` form a cycle: {} (each needs the next)",
                            names.join(" -> ")
                        ),
                    );
                    return order;
                }
            }
        }
        order
    }
}

fn job_list<'a>(keys: impl Iterator<Item = &'a Spanned<String>>) -> String {
    keys.map(|k| k.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One cycle among the jobs not yet ordered, as indices in `needs` order.
fn find_cycle(needs: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let start = (0..needs.len())
        .find(|&i| !done[i])
        .expect("an unordered job exists");
    let mut path = vec![start];
    let mut seen = BTreeSet::from([start]);
    let mut current = start;
    loop {
        let next = needs[current]
            .iter()
            .copied()
            .find(|&n| !done[n])
            .expect("an unordered job waits on another unordered job");
        if seen.contains(&next) {
            let from = path.iter().position(|&i| i == next).expect("seen on path");
            let mut cycle = path.split_off(from);
            cycle.push(next);
            return cycle;
        }
        seen.insert(next);
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_reported_in_order() {
        // 0 needs 1, 1 needs 2, 2 needs 0.
        let needs = vec![vec![1], vec![2], vec![0]];
        let cycle = find_cycle(&needs, &[false, false, false]);
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        for pair in cycle.windows(2) {
            assert!(needs[pair[0]].contains(&pair[1]), "{cycle:?}");
        }
    }
}
