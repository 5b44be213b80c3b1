//! `gantry export`: a pipeline for an outside engine (GitLab CI, GitHub
//! Actions) that runs each gantry job, and each matrix combination, on a
//! machine of its own, from the resolved [`Plan`].
//!
//! What the engine does and what gantry keeps:
//!
//! - the engine schedules: one engine job per gantry job instance, `needs`
//!   mapped one to one; every engine job starts once its needs finished,
//!   whatever they concluded, and gantry decides from the imported results
//!   whether the job runs (`if:`, `success()`, `failure()`, `always()` keep
//!   gantry's meaning);
//! - the engine carries: each job's hand-off bundle
//!   ([`crate::handoff`]) travels in the engine's artifact store, and gantry
//!   verifies it on import;
//! - the engine starts the rollback job when the pipeline failed; gantry
//!   compensates every machine's job from their journals.
//!
//! The text is written by hand rather than through a YAML serializer, so
//! the same plan always gives the same bytes, in plan order, with a header
//! saying where it came from. Secrets appear by name only.

mod github;
mod gitlab;

use std::collections::BTreeSet;

use crate::handoff::bundle_key;
use crate::plan::{JobPlan, Plan};

pub use github::github;
pub use gitlab::gitlab;

/// Where bundles live in an engine job's checkout.
pub const BUNDLES_DIR: &str = "gantry-bundles";
/// The engine job that compensates the pipeline when it failed.
pub const ROLLBACK_JOB: &str = "gantry-rollback";

/// What an export is made from.
pub struct ExportInput<'a> {
    pub plan: &'a Plan,
    /// The manifest's path as the engine's jobs see it, relative to the
    /// repository's root.
    pub manifest: &'a str,
    /// The command each engine job runs first to install `gantry`, or
    /// `None` when it is on the `PATH` already. For GitHub, `uses: X`
    /// makes it a step that uses the action X.
    pub install: Option<&'a str>,
    /// The version of gantry that wrote the export, for the header.
    pub version: &'a str,
}

/// One engine job: a gantry job, or one combination of its matrix.
struct Instance<'a> {
    job: &'a JobPlan,
    index: Option<usize>,
}

impl Instance<'_> {
    fn key(&self) -> String {
        bundle_key(&self.job.id, self.index)
    }
}

/// Every instance of `job`.
fn instances(job: &JobPlan) -> Vec<Instance<'_>> {
    if job.matrix.is_empty() {
        vec![Instance { job, index: None }]
    } else {
        (0..job.matrix.len())
            .map(|index| Instance {
                job,
                index: Some(index),
            })
            .collect()
    }
}

/// The bundle folders of every instance of the jobs `job` needs.
fn needed_bundles(plan: &Plan, job: &JobPlan) -> Vec<String> {
    plan.jobs
        .iter()
        .filter(|j| job.needs.contains(&j.id))
        .flat_map(instances)
        .map(|instance| format!("{BUNDLES_DIR}/{}", instance.key()))
        .collect()
}

/// The secrets `job` reads, by name: in its steps (inputs, env, their
/// hooks' inputs, `if:`), its env, its outputs and the pipeline's env.
pub fn secrets_of(plan: &Plan, job: &JobPlan) -> BTreeSet<String> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    let templates = plan
        .env
        .iter()
        .chain(&job.env)
        .chain(&job.outputs)
        .map(|(_, t)| t);
    for template in templates {
        paths.extend(template.references());
    }
    if let Some(condition) = &job.condition {
        paths.extend(condition.references());
    }
    for step in &job.steps {
        for (_, template) in &step.env {
            paths.extend(template.references());
        }
        let hook_inputs = step
            .rollback
            .as_ref()
            .and_then(|r| r.inputs.as_ref())
            .into_iter()
            .flatten();
        for input in step.inputs.iter().chain(hook_inputs) {
            paths.extend(input.value.references());
        }
        if let Some(condition) = &step.condition {
            paths.extend(condition.references());
        }
    }
    paths
        .into_iter()
        .filter_map(|path| match path.as_slice() {
            [context, name, ..] if context.eq_ignore_ascii_case("secrets") => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Every secret of the pipeline: what its rollback job may need.
fn all_secrets(plan: &Plan) -> BTreeSet<String> {
    plan.jobs
        .iter()
        .flat_map(|job| secrets_of(plan, job))
        .collect()
}

/// Checks that the plan can be exported: no job takes the rollback job's
/// name.
pub fn check(plan: &Plan) -> Result<(), String> {
    if plan.jobs.iter().any(|job| job.id == ROLLBACK_JOB) {
        return Err(format!(
            "job `{ROLLBACK_JOB}` would clash with the engine job that rolls the pipeline back; rename it"
        ));
    }
    Ok(())
}

/// A YAML double-quoted scalar (JSON's string syntax, which YAML accepts).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The `gantry run` command of one instance.
fn run_command(input: &ExportInput, instance: &Instance, index_expr: Option<&str>) -> String {
    let plan = input.plan;
    let job = instance.job;
    let mut words = vec![
        "gantry".to_owned(),
        "run".into(),
        shell_word(input.manifest),
        "--job".into(),
        job.id.clone(),
    ];
    let export = match (instance.index, index_expr) {
        (_, Some(expr)) => {
            words.extend(["--instance".into(), expr.to_owned()]);
            format!("{BUNDLES_DIR}/{}.{expr}", job.id)
        }
        (Some(index), None) => {
            words.extend(["--instance".into(), index.to_string()]);
            format!("{BUNDLES_DIR}/{}", instance.key())
        }
        (None, None) => format!("{BUNDLES_DIR}/{}", instance.key()),
    };
    words.extend(["--export".into(), export]);
    for bundle in needed_bundles(plan, job) {
        words.extend(["--import".into(), bundle]);
    }
    for secret in secrets_of(plan, job) {
        words.extend(["--secret".into(), secret]);
    }
    words.join(" ")
}

/// The rollback job's command.
fn rollback_command(input: &ExportInput) -> String {
    let mut words = vec![
        "gantry".to_owned(),
        "rollback".into(),
        "--manifest".into(),
        shell_word(input.manifest),
        "--import".into(),
        BUNDLES_DIR.into(),
    ];
    for secret in all_secrets(input.plan) {
        words.extend(["--secret".into(), secret]);
    }
    words.join(" ")
}

/// The comment every export starts with.
fn header(input: &ExportInput, engine: &str, secrets: &BTreeSet<String>) -> String {
    let mut text = format!(
        "# Generated by `gantry export --to {engine}` (gantry {}) from `{}`,\n# pipeline `{}`. Do not edit: export again after changing the manifest.\n#\n# Each engine job runs one gantry job (or matrix combination) on its own\n# machine; hand-off bundles in `{BUNDLES_DIR}/` carry outputs, journals\n# and artifacts between them, verified by gantry on import. When the\n# pipeline fails, `{ROLLBACK_JOB}` compensates every job. See docs/SCALE.md.\n",
        input.version,
        input.manifest,
        input.plan.name.replace('\n', " "),
    );
    if !secrets.is_empty() {
        let names: Vec<&str> = secrets.iter().map(String::as_str).collect();
        text.push_str(&format!(
            "#\n# Secrets, passed by name (define each as a masked secret of the engine):\n#   {}\n",
            names.join(", ")
        ));
    }
    text
}
