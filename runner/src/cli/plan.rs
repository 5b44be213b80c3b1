//! `gantry plan`: what a run would do, without running anything.

use super::console::out;
use std::path::PathBuf;

use clap::Args;

use super::common::{read_draft, read_lock};
use super::{Failure, Outcome};
use crate::display::human_duration;
use crate::exit::Exit;
use crate::expr::{Contexts, Value};
use crate::plan::{JobPlan, MatrixCombination, Plan, StepPlan};
use crate::plugin;

/// Show the jobs in order with their needs, matrix, steps, plugins and
/// pins, permissions and limits, without running anything.
#[derive(Debug, Args)]
pub struct PlanCommand {
    /// The manifest, or a folder holding `gantry.yml` [default: ./gantry.yml]
    manifest: Option<PathBuf>,
    /// Only this job and the jobs it needs
    #[arg(long, value_name = "ID")]
    job: Option<String>,
    /// The inputs and variables the run would be given, checked and shown
    #[command(flatten)]
    given: super::given::GivenArgs,
}

impl PlanCommand {
    pub fn execute(self) -> Outcome {
        let mut draft = read_draft(self.manifest.as_deref())?;
        let lock = read_lock(&draft.plan().root)?;
        if let Some(job) = &self.job {
            draft
                .narrow_to(std::slice::from_ref(job))
                .map_err(Failure::from)?;
        }
        self.given.apply(&mut draft, false)?;
        let plan = draft.finish();
        out!(
            "{}",
            describe(&plan, |alias| {
                let plugin = &plan.plugins[alias];
                match plugin::pin_of(plugin, &lock) {
                    Some((pin, origin)) => format!("sha256:{pin} (from {origin})"),
                    None => "UNPINNED (run `gantry lock`)".to_owned(),
                }
            })
        );
        Ok(Exit::Success)
    }
}

/// The plan as text; `pin` describes a plugin's pin.
pub fn describe(plan: &Plan, pin: impl Fn(&str) -> String) -> String {
    let mut out = format!(
        "pipeline {} ({})\n",
        plan.name,
        plan.manifest_path.display()
    );
    for (alias, plugin) in &plan.plugins {
        out.push_str(&format!(
            "plugin {alias}: {} {}\n",
            plugin.source,
            pin(alias)
        ));
    }
    out.push_str(&super::given::describe(plan));
    for job in &plan.jobs {
        out.push_str(&format!("\njob {}", job.id));
        if job.name != job.id {
            out.push_str(&format!(" ({})", job.name));
        }
        out.push('\n');
        let needs = if job.needs.is_empty() {
            "nothing".to_owned()
        } else {
            job.needs.join(", ")
        };
        out.push_str(&format!("  needs: {needs}\n"));
        if let Some(condition) = &job.condition {
            out.push_str(&format!("  if: {}\n", condition.source()));
        }
        out.push_str(&format!("  timeout: {}\n", human_duration(job.timeout)));
        if !job.matrix.is_empty() {
            let parallel = job
                .max_parallel
                .map_or_else(|| "all at once".to_owned(), |n| format!("{n} at a time"));
            let fail_fast = if job.fail_fast {
                "fail-fast"
            } else {
                "no fail-fast"
            };
            out.push_str(&format!(
                "  matrix: {} combinations, {parallel}, {fail_fast}\n",
                job.matrix.len()
            ));
            for combination in &job.matrix {
                out.push_str(&format!("    - {}\n", job.instance_name(Some(combination))));
            }
        }
        let mut shown_calls: Vec<String> = Vec::new();
        for step in &job.steps {
            describe_group_calls(&mut out, step, &mut shown_calls);
            describe_step(&mut out, step, &pin(&step.plugin));
            expanded_names(&mut out, job, step);
        }
    }
    out
}

/// The step group calls a step is the first of, each once, outermost
/// first: `group publish: ./steps/publish.yml (steps/publish.yml)`, so a
/// reader sees where a group's steps (named `publish / …`) come from.
fn describe_group_calls(out: &mut String, step: &StepPlan, shown: &mut Vec<String>) {
    let Some(innermost) = &step.group else {
        return;
    };
    for call in crate::plan::GroupCall::chain(innermost) {
        if shown.contains(&call.key) {
            continue;
        }
        shown.push(call.key.clone());
        out.push_str(&format!(
            "  group {}: {} ({}), its steps follow\n",
            call.display,
            call.step.plugin,
            call.file.display()
        ));
    }
}

/// A step `name:` with `${{ }}`, as each matrix instance will show it,
/// when it reads nothing but the matrix (other contexts exist only once
/// the run is under way).
fn expanded_names(out: &mut String, job: &JobPlan, step: &StepPlan) {
    let Some(template) = &step.name_template else {
        return;
    };
    let only_matrix = template.references().iter().all(|path| {
        path.first()
            .is_some_and(|c| c.eq_ignore_ascii_case("matrix"))
    });
    let combinations: Vec<Option<&MatrixCombination>> = if job.matrix.is_empty() {
        vec![None]
    } else {
        job.matrix.iter().map(Some).collect()
    };
    if !only_matrix {
        out.push_str("    name: expanded when the step runs\n");
        return;
    }
    for combination in combinations {
        let mut contexts = Contexts::new();
        let matrix = combination.map(|values| {
            values
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        });
        contexts.insert("matrix", Value::Object(matrix.unwrap_or_default()));
        if let Ok(name) = template.render(&contexts) {
            out.push_str(&format!(
                "    name in {}: {name}\n",
                job.instance_name(combination)
            ));
        }
    }
}

fn describe_step(out: &mut String, step: &StepPlan, pin: &str) {
    out.push_str(&format!("  step {}\n", step.display_name));
    out.push_str(&format!("    uses: {} {pin}\n", step.plugin));
    if let Some(condition) = &step.condition {
        out.push_str(&format!("    if: {}\n", condition.source()));
    }
    let workspace = step.grants.workspace.as_str();
    let mut grants = vec![format!("workspace {workspace}")];
    for dir in &step.grants.dirs {
        let access = if dir.writable { "write" } else { "read" };
        grants.push(format!(
            "{} at {} ({access})",
            dir.host.display(),
            dir.guest
        ));
    }
    if !step.grants.host_env.is_empty() {
        grants.push(format!("host env {}", step.grants.host_env.join(", ")));
    }
    if !step.grants.network.is_empty() {
        grants.push(format!("network {}", step.grants.destinations()));
    }
    out.push_str(&format!("    permissions: {}\n", grants.join("; ")));
    let mut limits = vec![
        format!("memory {} MiB", step.memory_bytes / (1024 * 1024)),
        format!("{} open files", step.max_files),
        format!("disk {} MiB", step.disk_bytes >> 20),
        format!("timeout {}", human_duration(step.timeout)),
    ];
    if step.retry.attempts > 1 {
        limits.push(format!(
            "{} attempts, backoff {}",
            step.retry.attempts,
            human_duration(step.retry.backoff)
        ));
    }
    if step.continue_on_error {
        limits.push("continue-on-error".into());
    }
    out.push_str(&format!("    limits: {}\n", limits.join(", ")));
    if !step.artifacts.upload.is_empty() || !step.artifacts.download.is_empty() {
        let mut artifacts = Vec::new();
        if !step.artifacts.upload.is_empty() {
            artifacts.push(format!("uploads {}", step.artifacts.upload.join(", ")));
        }
        if !step.artifacts.download.is_empty() {
            artifacts.push(format!("downloads {}", step.artifacts.download.join(", ")));
        }
        out.push_str(&format!("    artifacts: {}\n", artifacts.join("; ")));
    }
    match &step.rollback {
        None => out.push_str("    rollback: none\n"),
        Some(hook) => out.push_str(&format!(
            "    rollback: {} ({}, timeout {})\n",
            hook.plugin,
            if hook.inputs.is_some() {
                "its own inputs"
            } else {
                "the step's inputs"
            },
            human_duration(hook.timeout)
        )),
    }
}
