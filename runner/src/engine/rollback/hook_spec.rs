//! A step's rollback hook as the journal keeps it ([`HookSpec`]): built
//! when the step starts, before its guest runs, so that whoever
//! compensates later (this run, `gantry rollback`, `gantry resume` after a
//! crash) finds everything the hook needs in the journal alone.
//!
//! It lives beside the code that runs hooks because the two must agree on
//! what a spec holds: the hook's inputs (its own `with:`, else the step's),
//! the step's environment, grants and limits, each value masked and, when
//! masking changed it, the template it came from so it can be evaluated
//! again at rollback time instead of running with `***`.

use std::collections::BTreeMap;

use crate::abi::step_text;
use crate::engine::Shared;
use crate::engine::status::JobStatus;
use crate::expr::{Contexts, FunctionHost, Template};
use crate::journal::{HookDir, HookSpec, HookValue};
use crate::plan::StepPlan;

/// The step a hook compensates, as reports and the journal name it.
pub(in crate::engine) struct HookOwner<'a> {
    /// The job instance's name: `build (linux)`.
    pub job: &'a str,
    /// The step's name, its `name:` expanded.
    pub step_name: &'a str,
    /// Its id, or its path inside a step group.
    pub step_id: Option<&'a str>,
}

/// The step's rollback hook as the journal keeps it: its inputs (the
/// hook's own `with:`, else the step's), environment and grants; `None`
/// when the step declares no hook. `guest_env` and `inputs` are the
/// step's own, evaluated; the hook's own `with:` is evaluated here in
/// `contexts`, with the status functions answering as `status` says.
pub(in crate::engine) fn hook_spec(
    shared: &Shared,
    status: JobStatus,
    owner: HookOwner<'_>,
    step: &StepPlan,
    guest_env: &BTreeMap<String, String>,
    inputs: &[(String, String)],
    contexts: &Contexts,
) -> Result<Option<Box<HookSpec>>, String> {
    let Some(hook) = &step.rollback else {
        return Ok(None);
    };
    let masked = |name: &str, value: &str, template: Option<&Template>| {
        let shown = shared.mask_step(value);
        let template = (shown != value)
            .then(|| {
                template
                    .filter(|t| !t.is_literal())
                    .map(|t| t.source().to_owned())
            })
            .flatten();
        HookValue {
            name: name.to_owned(),
            value: shown,
            template,
        }
    };
    let hook_inputs = match &hook.inputs {
        None => step
            .inputs
            .iter()
            .zip(inputs)
            .map(|(input, (name, value))| masked(name, value, Some(&input.value)))
            .collect(),
        Some(own) => {
            let functions = shared.functions(status);
            let mut values = Vec::with_capacity(own.len());
            for input in own {
                let value = input
                    .value
                    .render_with(contexts, &functions as &dyn FunctionHost)
                    .map_err(|e| {
                        format!(
                            "rollback input `{}` could not be evaluated: {}",
                            input.name,
                            step_text(&e.message)
                        )
                    })?;
                values.push(masked(&input.variable, &value, Some(&input.value)));
            }
            values
        }
    };
    let step_templates: BTreeMap<&str, &Template> =
        step.env.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let env = guest_env
        .iter()
        .map(|(name, value)| masked(name, value, step_templates.get(name.as_str()).copied()))
        .collect();
    let sha256 = shared
        .options
        .plugin_hashes
        .get(&hook.plugin)
        .cloned()
        .unwrap_or_default();
    Ok(Some(Box::new(HookSpec {
        job: owner.job.to_owned(),
        step_name: owner.step_name.to_owned(),
        step_id: owner.step_id.map(str::to_owned),
        step_number: step.number,
        plugin: hook.plugin.clone(),
        sha256,
        inputs: hook_inputs,
        env,
        workspace: step.grants.workspace.as_str().into(),
        dirs: step
            .grants
            .dirs
            .iter()
            .map(|dir| HookDir {
                host: dir.host.clone(),
                guest: dir.guest.clone(),
                writable: dir.writable,
            })
            .collect(),
        host_env: step.grants.host_env.clone(),
        network: step
            .grants
            .network
            .iter()
            .map(ToString::to_string)
            .collect(),
        memory_bytes: step.memory_bytes,
        max_files: step.max_files,
        disk_bytes: step.disk_bytes,
        timeout_ms: u64::try_from(hook.timeout.as_millis()).unwrap_or(u64::MAX),
    })))
}
