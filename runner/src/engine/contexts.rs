//! The contexts `${{ }}` expressions read: `env`, `steps`, `needs`,
//! `matrix`, `strategy`, `secrets`, `job`, `gantry`, and what the run is
//! given from outside the manifest ([`crate::given`]): `inputs`, `vars`,
//! `github` and `runner`.
//!
//! Which contexts exist where is checked when the plan is made; here each
//! is filled with what the run knows at the moment of evaluation.

use std::collections::BTreeMap;

use super::{JobResult, Strategy, matrix_value};
use crate::expr::{Contexts, Map, Value};
use crate::plan::{MatrixCombination, Plan};
use crate::report::Conclusion;
use crate::secrets::Secrets;

/// What later steps of a job can see of an earlier one.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub outputs: BTreeMap<String, String>,
    pub outcome: Conclusion,
    pub conclusion: Conclusion,
}

/// Assembles a [`Contexts`] from whichever parts apply.
pub struct ContextsBuilder<'a> {
    plan: &'a Plan,
    run_id: &'a str,
    job: Option<&'a str>,
    env: Option<&'a BTreeMap<String, String>>,
    steps: Option<&'a BTreeMap<String, StepRecord>>,
    needs: Option<&'a BTreeMap<String, JobResult>>,
    matrix: Option<(Option<&'a MatrixCombination>, Strategy, bool, Option<usize>)>,
    secrets: Option<&'a Secrets>,
    job_status: Option<Conclusion>,
    /// Inside a step group: the group's inputs.
    group_inputs: Option<&'a BTreeMap<String, String>>,
}

impl<'a> ContextsBuilder<'a> {
    pub fn new(plan: &'a Plan, run_id: &'a str) -> Self {
        ContextsBuilder {
            plan,
            run_id,
            job: None,
            env: None,
            steps: None,
            needs: None,
            matrix: None,
            secrets: None,
            job_status: None,
            group_inputs: None,
        }
    }

    pub fn job(mut self, id: &'a str, status: Conclusion) -> Self {
        self.job = Some(id);
        self.job_status = Some(status);
        self
    }

    pub fn env(mut self, env: &'a BTreeMap<String, String>) -> Self {
        self.env = Some(env);
        self
    }

    pub fn steps(mut self, steps: &'a BTreeMap<String, StepRecord>) -> Self {
        self.steps = Some(steps);
        self
    }

    pub fn needs(mut self, needs: &'a BTreeMap<String, JobResult>) -> Self {
        self.needs = Some(needs);
        self
    }

    pub fn matrix(
        mut self,
        combination: Option<&'a MatrixCombination>,
        strategy: Strategy,
        fail_fast: bool,
        max_parallel: Option<usize>,
    ) -> Self {
        self.matrix = Some((combination, strategy, fail_fast, max_parallel));
        self
    }

    /// Inside a step group, `inputs` is the group's inputs, as in a
    /// composite action; it replaces whatever `inputs` the pipeline has.
    pub fn group_inputs(mut self, inputs: Option<&'a BTreeMap<String, String>>) -> Self {
        self.group_inputs = inputs;
        self
    }

    pub fn secrets(mut self, secrets: &'a Secrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    pub fn build(self) -> Contexts {
        let mut contexts = Contexts::new();
        let strings = |map: &BTreeMap<String, String>| {
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        contexts.insert(
            "env",
            self.env.map(strings).unwrap_or(Value::Object(Map::new())),
        );
        let mut gantry = Map::from([
            ("run_id".to_owned(), Value::from(self.run_id)),
            (
                "workspace".to_owned(),
                Value::from(self.plan.root.display().to_string().as_str()),
            ),
            ("pipeline".to_owned(), Value::from(self.plan.name.as_str())),
        ]);
        if let Some(job) = self.job {
            gantry.insert("job".into(), Value::from(job));
        }
        contexts.insert("gantry", Value::Object(gantry));
        let given = &self.plan.given;
        contexts.insert(
            "inputs",
            Value::Object(given.inputs.clone().into_iter().collect()),
        );
        // Not secrets: never masked, readable everywhere.
        contexts.insert(
            "vars",
            Value::Object(
                given
                    .vars
                    .iter()
                    .map(|(k, v)| (k.to_owned(), Value::from(v)))
                    .collect(),
            ),
        );
        contexts.insert("github", given.github_context(self.run_id, self.job));
        contexts.insert(
            "runner",
            Value::Object(
                given
                    .runner
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect(),
            ),
        );
        if let Some(status) = self.job_status {
            let job = Map::from([("status".to_owned(), Value::from(status.as_str()))]);
            contexts.insert("job", Value::Object(job));
        }
        if let Some(steps) = self.steps {
            let steps = steps
                .iter()
                .map(|(id, record)| {
                    let fields = Map::from([
                        ("outputs".to_owned(), strings(&record.outputs)),
                        ("outcome".to_owned(), Value::from(record.outcome.as_str())),
                        (
                            "conclusion".to_owned(),
                            Value::from(record.conclusion.as_str()),
                        ),
                    ]);
                    (id.clone(), Value::Object(fields))
                })
                .collect();
            contexts.insert("steps", Value::Object(steps));
        }
        if let Some(needs) = self.needs {
            let needs = needs
                .iter()
                .map(|(id, result)| {
                    let fields = Map::from([
                        ("outputs".to_owned(), strings(&result.outputs)),
                        ("result".to_owned(), Value::from(result.conclusion.as_str())),
                    ]);
                    (id.clone(), Value::Object(fields))
                })
                .collect();
            contexts.insert("needs", Value::Object(needs));
        }
        if let Some((combination, strategy, fail_fast, max_parallel)) = self.matrix {
            contexts.insert("matrix", matrix_value(combination));
            let strategy = Map::from([
                ("fail-fast".to_owned(), Value::Bool(fail_fast)),
                (
                    "job-index".to_owned(),
                    Value::Number(strategy.job_index as f64),
                ),
                (
                    "job-total".to_owned(),
                    Value::Number(strategy.job_total as f64),
                ),
                (
                    "max-parallel".to_owned(),
                    Value::Number(max_parallel.unwrap_or(strategy.job_total) as f64),
                ),
            ]);
            contexts.insert("strategy", Value::Object(strategy));
        }
        if let Some(secrets) = self.secrets {
            let secrets = secrets
                .iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v)))
                .collect();
            contexts.insert("secrets", Value::Object(secrets));
        }
        if let Some(inputs) = self.group_inputs {
            // Last, so the group's inputs win over the pipeline's.
            contexts.insert("inputs", strings(inputs));
        }
        contexts
    }
}
