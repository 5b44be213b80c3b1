//! Checks every step of a plan against its plugin's metadata before
//! anything runs, and applies the metadata's input defaults.
//!
//! It runs on verified bytes only (the metadata is part of what was
//! pinned), after the plan is resolved and before the first step starts. A
//! plugin without a `gantry:step` section is taken as it is: any `with:`
//! key, no defaults, no declared needs.

use std::fmt;
use std::path::Path;

use indexmap::IndexMap;

use super::metadata::{self, DirAccess, Metadata, MetadataError, WorkspaceNeed};
use super::{PluginKind, VerifiedPlugin};
use crate::expr::Template;
use crate::manifest::{ManifestError, did_you_mean};
use crate::network::NetworkGrant;
use crate::plan::WorkspaceAccess;
use crate::plan::{Input, Plan, StepPlan, input_variable};

/// One reason a plan does not fit its plugins.
#[derive(Debug)]
pub enum CheckError {
    /// A plugin's `gantry:step` section is malformed.
    Metadata {
        alias: String,
        source_path: String,
        error: MetadataError,
    },
    /// A step asks for what its plugin does not take, or does not give or
    /// grant what it needs.
    Step(ManifestError),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Metadata {
                alias,
                source_path,
                error,
            } => write!(f, "plugin `{alias}` (`{source_path}`): {error}"),
            CheckError::Step(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for CheckError {}

/// Reads the metadata of every verified plugin, checks each step that uses
/// one against it, and adds each defaulted input a step does not give, as
/// if it were written in `with:`. Every problem is reported at once.
/// Returns the metadata read, by alias, for the plugins that have some.
pub fn apply_metadata(
    plan: &mut Plan,
    manifest_text: &str,
    verified: &IndexMap<String, VerifiedPlugin>,
) -> Result<IndexMap<String, Metadata>, Vec<CheckError>> {
    let mut errors = Vec::new();
    let mut described: IndexMap<String, Metadata> = IndexMap::new();
    for (alias, plugin) in verified {
        match metadata::read(&plugin.bytes) {
            Ok(Some(meta)) => {
                described.insert(alias.clone(), meta);
            }
            Ok(None) => {}
            // Bytes that are not a core module are refused when the sandbox
            // admits them, with that reason; there is no metadata to check.
            Err(MetadataError::NotAModule(_)) => {}
            Err(error) => errors.push(CheckError::Metadata {
                alias: alias.clone(),
                source_path: plan
                    .plugins
                    .get(alias)
                    .map_or_else(|| alias.clone(), |p| p.source.clone()),
                error,
            }),
        }
    }
    let Plan {
        manifest_path,
        jobs,
        ..
    } = plan;
    for job in jobs.iter_mut() {
        // The outputs each earlier step's plugin declares, by step id.
        let mut declared: IndexMap<String, Vec<String>> = IndexMap::new();
        for step in &mut job.steps {
            // A step group's step is written in the group file.
            let call = step.group.clone();
            let (file, source) = match &call {
                Some(call) => (call.file.as_path(), &*call.source),
                None => (manifest_path.as_path(), manifest_text),
            };
            let mut at = StepChecker {
                file,
                source,
                job: &job.id,
                errors: &mut errors,
            };
            at.network_reachable(step, verified);
            at.output_references(step, &declared);
            if let Some(meta) = described.get(step.plugin.as_str()) {
                at.check(step, meta);
                if let Some(id) = &step.id
                    && !meta.outputs.is_empty()
                {
                    declared.insert(id.clone(), meta.outputs.keys().cloned().collect());
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(described)
    } else {
        Err(errors)
    }
}

struct StepChecker<'a> {
    file: &'a Path,
    source: &'a str,
    job: &'a str,
    errors: &'a mut Vec<CheckError>,
}

impl StepChecker<'_> {
    /// `steps.X.outputs.NAME` where X's plugin declares its outputs and
    /// NAME is not one of them would always read as empty.
    fn output_references(&mut self, step: &StepPlan, declared: &IndexMap<String, Vec<String>>) {
        let name = step
            .name_template
            .iter()
            .map(|template| (template, step.location));
        for (template, location) in step.input_templates().chain(name) {
            for path in template.references() {
                let [context, id, outputs, name, ..] = path.as_slice() else {
                    continue;
                };
                if !context.eq_ignore_ascii_case("steps") || outputs != "outputs" {
                    continue;
                }
                let Some((id, names)) = declared.iter().find(|(k, _)| k.eq_ignore_ascii_case(id))
                else {
                    continue;
                };
                if names.iter().any(|n| n == name) {
                    continue;
                }
                let hint =
                    match crate::manifest::did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None => format!("its outputs are: {}", names.join(", ")),
                    };
                self.error(
                    location,
                    format!("step `{id}` has no output `{name}`: its plugin's metadata does not declare it"),
                    Some(hint),
                );
            }
        }
    }

    fn error(&mut self, location: serde_saphyr::Location, message: String, hint: Option<String>) {
        let mut error = ManifestError::at(self.file, self.source, location, message);
        error.hint = hint;
        self.errors.push(CheckError::Step(error));
    }

    fn check(&mut self, step: &mut StepPlan, meta: &Metadata) {
        let who = format!(
            "step `{}` of job `{}` (plugin `{}`)",
            step.display_name, self.job, step.plugin
        );
        if let Some(declared) = &meta.inputs {
            self.inputs(step, &who, declared);
        }
        self.permissions(step, &who, meta);
    }

    /// A network grant is only usable by a component: granting one to a
    /// step (or its rollback hook, which runs with the step's grants) that
    /// runs a preview 1 module is a mistake, said before anything runs.
    fn network_reachable(&mut self, step: &StepPlan, verified: &IndexMap<String, VerifiedPlugin>) {
        let Some(first) = step.grants.network.first() else {
            return;
        };
        let hook = step.rollback.as_ref().map(|hook| hook.plugin.as_str());
        for alias in std::iter::once(step.plugin.as_str()).chain(hook) {
            if verified
                .get(alias)
                .is_some_and(|plugin| plugin.kind() == PluginKind::Module)
            {
                self.error(
                    step.location,
                    format!(
                        "step `{}` of job `{}` grants network access (`{first}`), but plugin `{alias}` is a WASI preview 1 module, which cannot use the network",
                        step.display_name, self.job
                    ),
                    Some(
                        "build the step as a WASI 0.2 component (e.g. `cargo build --target wasm32-wasip2`), or remove `permissions.network`".into(),
                    ),
                );
            }
        }
    }

    fn inputs(
        &mut self,
        step: &mut StepPlan,
        who: &str,
        declared: &IndexMap<String, metadata::InputMeta>,
    ) {
        // Keys are compared as the guest sees them: `out-dir` and `out_dir`
        // both reach it as `INPUT_OUT_DIR`.
        for input in &step.inputs {
            if declared
                .keys()
                .any(|name| input_variable(name) == input.variable)
            {
                continue;
            }
            let hint = match did_you_mean(&input.name, declared.keys().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`?"),
                None if declared.is_empty() => "this plugin takes no inputs".to_owned(),
                None => format!(
                    "this plugin takes: {}",
                    declared
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.error(
                input.location,
                format!("unknown input `{}` for {who}", input.name),
                Some(hint),
            );
        }
        for (name, spec) in declared {
            let variable = input_variable(name);
            if step.inputs.iter().any(|i| i.variable == variable) {
                continue;
            }
            if spec.required {
                let what = spec
                    .description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                self.error(
                    step.location,
                    format!("{who} is missing the required input `{name}`{what}"),
                    Some(format!("add `{name}:` under the step's `with:`")),
                );
            } else if let Some(text) = spec.default_text() {
                step.inputs.push(Input {
                    name: name.clone(),
                    variable,
                    value: Template::literal(text),
                    location: step.location,
                });
            }
        }
    }

    fn permissions(&mut self, step: &StepPlan, who: &str, meta: &Metadata) {
        let needs = &meta.permissions;
        let granted = match step.grants.workspace {
            WorkspaceAccess::None => WorkspaceNeed::None,
            WorkspaceAccess::Read => WorkspaceNeed::Read,
            WorkspaceAccess::Write => WorkspaceNeed::Write,
        };
        if needs.workspace > granted {
            self.error(
                step.location,
                format!(
                    "{who} needs {} access to the workspace, but the step grants `{granted}`",
                    needs.workspace
                ),
                Some(format!(
                    "add `permissions: {{ workspace: {} }}` to the step if it should have it",
                    needs.workspace
                )),
            );
        }
        for dir in &needs.dirs {
            let guest = dir.guest.trim_end_matches('/');
            let mount = step.grants.dirs.iter().find(|d| d.guest == guest);
            let enough = match (mount, dir.access) {
                (None, _) => false,
                (Some(_), DirAccess::Read) => true,
                (Some(mount), DirAccess::Write) => mount.writable,
            };
            if !enough {
                let found = match mount {
                    None => "the step mounts nothing there".to_owned(),
                    Some(_) => "the step grants it read-only".to_owned(),
                };
                self.error(
                    step.location,
                    format!(
                        "{who} needs {} access to the folder `{guest}`, but {found}",
                        dir.access
                    ),
                    Some(format!(
                        "grant it under `permissions.dirs`: {{ host: <folder>, guest: {guest}, access: {} }}",
                        dir.access
                    )),
                );
            }
        }
        for destination in &needs.network {
            // Metadata was validated when read: every entry parses.
            let Ok(needed) = NetworkGrant::parse(destination) else {
                continue;
            };
            if !step
                .grants
                .network
                .iter()
                .any(|granted| granted.covers(&needed))
            {
                self.error(
                    step.location,
                    format!("{who} needs to reach `{needed}`, which the step does not grant"),
                    Some(format!(
                        "add `{destination}` to the step's `permissions.network`"
                    )),
                );
            }
        }
        for name in &needs.env {
            if !step.grants.host_env.iter().any(|granted| granted == name) {
                self.error(
                    step.location,
                    format!("{who} needs the host environment variable `{name}`, which the step does not pass through"),
                    Some(format!("add `{name}` to the step's `permissions.env`")),
                );
            }
        }
    }
}
