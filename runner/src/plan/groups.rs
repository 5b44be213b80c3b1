//! Step groups in the plan: a step written `uses: ./steps/publish.yml`
//! calls the group in that file, like a GitHub composite action.
//!
//! Resolving a call reads the group file (once per file, whatever the
//! number of calls), checks the `with:` it is given against the group's
//! `inputs:`, registers the group's own `plugins:` under a qualified alias
//! (`steps/publish.yml:upload`, so two groups may both say `upload` and the
//! lock file pins each), and resolves the group's steps *in place*: the
//! job's list of steps holds every step of every group, each pointing at
//! its [`GroupCall`]. Everything that checks steps (grants against the state
//! folder, plugin metadata, network admission, artifacts, lint) therefore
//! sees a group's steps exactly as it sees the job's own; the engine uses
//! the calls to scope them (see `engine::job::group`).
//!
//! Scoping, as in a composite action: inside a group `steps.X` is a step
//! of that group, and `inputs.X` is one of the group's inputs. Pipeline
//! inputs (the manifest's own top-level `inputs:`) are a separate context
//! that a group does not see; where both exist, this module's
//! [`Scope::group_inputs`] wins inside a group and the pipeline's outside.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_saphyr::Location;

use super::{
    Input, PluginRef, Resolver, Scope, StepPlan, did_you_mean, input_variable, is_identifier,
};
use crate::expr::Template;
use crate::manifest::group::{self, LoadedGroup, is_group_reference};
use crate::manifest::model;

/// How deep groups may call groups: deeper is a mistake, not a design.
const MAX_DEPTH: usize = 16;

/// One call of a step group, as the engine runs it: the calling step's
/// own settings, the group's outputs, and the call it is written in.
#[derive(Debug)]
pub struct GroupCall {
    /// The calling step: its id, name, number, `if:`, `continue-on-error`
    /// and `timeout-minutes`, which apply to the group as a whole, and its
    /// inputs (its `with:`, then the group's defaults for the rest).
    pub step: StepPlan,
    /// Its path from the job: `publish`, `publish/notify`, or `step-3`
    /// for a call without an id.
    pub key: String,
    /// Its name as reports show it, with the names of the calls around it:
    /// `Publish / Notify`.
    pub display: String,
    /// The group file as messages name it.
    pub file: PathBuf,
    /// The group file's text, to point at its lines in later checks.
    pub source: Arc<str>,
    /// The group's `outputs:`, evaluated in the group's scope once its
    /// steps are done.
    pub outputs: Vec<(String, Template)>,
    /// The call this one is written in, when groups nest.
    pub parent: Option<Arc<GroupCall>>,
}

impl GroupCall {
    /// The calls around a step, from the outermost to `innermost`.
    pub fn chain(innermost: &Arc<GroupCall>) -> Vec<Arc<GroupCall>> {
        let mut chain = vec![innermost.clone()];
        while let Some(parent) = chain.last().and_then(|call| call.parent.clone()) {
            chain.push(parent);
        }
        chain.reverse();
        chain
    }
}

/// The group files met while resolving a manifest.
#[derive(Default)]
pub(super) struct GroupFiles {
    /// Each file by its path below the manifest's folder; `None` when it
    /// could not be read (the error was reported once).
    loaded: BTreeMap<PathBuf, Option<Rc<LoadedGroup>>>,
    /// The files being resolved, outermost first: a file met again while
    /// it is on this stack is a cycle.
    stack: Vec<(PathBuf, Rc<LoadedGroup>)>,
    /// The groups' plugins, by qualified alias.
    plugins: IndexMap<String, PluginRef>,
}

impl GroupFiles {
    /// The group file being resolved now, if any: errors point into it.
    pub(super) fn current(&self) -> Option<(&Path, &str)> {
        self.stack
            .last()
            .map(|(_, group)| (group.path.as_path(), group.source.as_str()))
    }

    /// The plugins every group declared, to join the plan's.
    pub(super) fn take_plugins(&mut self) -> IndexMap<String, PluginRef> {
        std::mem::take(&mut self.plugins)
    }
}

/// The number of the next step of a job: one past the last so far.
pub(super) fn next_number(steps: &[StepPlan]) -> usize {
    steps.last().map_or(1, |step| step.number + 1)
}

/// The number of the next step inside `call`, which holds a number of its
/// own before its first step.
fn number_in(steps: &[StepPlan], call: &GroupCall) -> usize {
    next_number(steps).max(call.step.number + 1)
}

impl Resolver<'_> {
    /// Resolves a step that calls a group: its steps are appended to
    /// `steps`, each pointing at the call.
    pub(super) fn group_call(
        &mut self,
        step: &model::Step,
        plugins: &IndexMap<String, PluginRef>,
        scope: &Scope,
        parent: Option<&Arc<GroupCall>>,
        steps: &mut Vec<StepPlan>,
    ) {
        let uses = &step.uses;
        let relative = match group::relative_path(&uses.value) {
            Ok(relative) => relative,
            Err(message) => {
                self.error(uses.referenced, message).hint = Some(
                    "put the group file in the manifest's folder and write `uses: ./path/to/group.yml`"
                        .into(),
                );
                return;
            }
        };
        if let Some(start) = self.groups.stack.iter().position(|(r, _)| *r == relative) {
            let mut cycle: Vec<String> = self.groups.stack[start..]
                .iter()
                .map(|(r, _)| r.display().to_string())
                .collect();
            cycle.push(relative.display().to_string());
            self.error(
                uses.referenced,
                format!(
                    "the step groups form a cycle: {} (each uses the next)",
                    cycle.join(" -> ")
                ),
            )
            .hint = Some("a group cannot call itself, directly or through another group".into());
            return;
        }
        if self.groups.stack.len() >= MAX_DEPTH {
            self.error(
                uses.referenced,
                format!("step groups nest more than {MAX_DEPTH} deep"),
            );
            return;
        }
        let Some(loaded) = self.load_group(&relative, uses.referenced) else {
            return;
        };
        self.refuse_call_keys(step);
        let mut call_step = self.step(step, plugins, scope);
        self.check_with(step, &relative, &loaded);

        self.groups.stack.push((relative.clone(), loaded.clone()));
        let group = &loaded.group;
        let input_names: Vec<String> = group.inputs.keys().map(|k| k.value.clone()).collect();
        for (name, input) in &group.inputs {
            if !is_identifier(&name.value) {
                self.error(
                    name.referenced,
                    format!("invalid input name `{}`", name.value),
                )
                .hint = Some("use letters, digits, `-` and `_`".into());
            }
            // An input the call leaves out takes its default, evaluated
            // where the call is (as a composite action's defaults are).
            let given = step.with.keys().any(|k| k.value == name.value);
            if let (false, Some(default)) = (given, &input.default) {
                let default_scope = Scope {
                    steps: None,
                    secrets: false,
                    group_inputs: None,
                    place: "a step group input's `default`",
                    ..scope.clone()
                };
                let value = self.template(default, &default_scope);
                call_step.inputs.push(Input {
                    name: name.value.clone(),
                    variable: input_variable(&name.value),
                    value,
                    location: default.referenced,
                });
            }
        }
        let local_plugins = self.group_plugins(&relative, &loaded, plugins);
        let step_ids: Vec<String> = group
            .steps
            .iter()
            .filter_map(|s| s.id.as_ref().map(|id| id.value.clone()))
            .collect();
        let outputs_scope = Scope {
            steps: Some(step_ids),
            secrets: false,
            group_inputs: Some(input_names.clone()),
            place: "a step group's `outputs`",
            ..scope.clone()
        };
        let outputs = group
            .outputs
            .iter()
            .map(|(name, output)| {
                if !is_identifier(&name.value) {
                    self.error(
                        name.referenced,
                        format!("invalid output name `{}`", name.value),
                    )
                    .hint = Some("use letters, digits, `-` and `_`".into());
                }
                (
                    name.value.clone(),
                    self.template(&output.value, &outputs_scope),
                )
            })
            .collect();

        call_step.number = parent.map_or_else(|| next_number(steps), |p| number_in(steps, p));
        let own_key = call_step
            .id
            .clone()
            .unwrap_or_else(|| format!("step-{}", call_step.number));
        if step.name.is_none() && step.id.is_none() {
            call_step.display_name = group.name.value.clone();
        }
        let (key, display) = match parent {
            Some(p) => (
                format!("{}/{own_key}", p.key),
                format!("{} / {}", p.display, call_step.display_name),
            ),
            None => (own_key, call_step.display_name.clone()),
        };
        call_step.display_name = display.clone();
        call_step.path = parent.map(|_| key.clone());
        call_step.group = parent.cloned();
        let call = Arc::new(GroupCall {
            step: call_step,
            key,
            display,
            file: loaded.path.clone(),
            source: Arc::from(loaded.source.as_str()),
            outputs,
            parent: parent.cloned(),
        });

        let mut earlier: Vec<String> = Vec::new();
        for inner in &group.steps {
            let inner_scope = Scope {
                steps: Some(earlier.clone()),
                secrets: true,
                group_inputs: Some(input_names.clone()),
                place: "a step",
                ..scope.clone()
            };
            if is_group_reference(&inner.uses.value) {
                self.group_call(inner, &local_plugins, &inner_scope, Some(&call), steps);
            } else {
                let mut planned = self.step(inner, &local_plugins, &inner_scope);
                planned.number = number_in(steps, &call);
                // A group's own plugin runs under its qualified alias.
                if let Some(plugin) = local_plugins.get(&planned.plugin) {
                    planned.plugin = plugin.alias.clone();
                }
                if let Some(hook) = &mut planned.rollback
                    && let Some(plugin) = local_plugins.get(&hook.plugin)
                {
                    hook.plugin = plugin.alias.clone();
                }
                let own = planned
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("step-{}", planned.number));
                planned.path = Some(format!("{}/{own}", call.key));
                planned.display_name = format!("{} / {}", call.display, planned.display_name);
                planned.group = Some(call.clone());
                steps.push(planned);
            }
            if let Some(id) = &inner.id {
                if earlier.contains(&id.value) {
                    self.error(
                        id.referenced,
                        format!(
                            "duplicate step id `{}` in step group `{}`",
                            id.value,
                            relative.display()
                        ),
                    )
                    .hint = Some("step ids must be unique within their group".into());
                }
                earlier.push(id.value.clone());
            }
        }
        if group.steps.is_empty() {
            self.error(
                group.name.referenced,
                format!("step group `{}` has no steps", relative.display()),
            );
        }
        self.groups.stack.pop();
    }

    /// Reads a group file once; a file that cannot be read is reported
    /// once, at the first `uses:` naming it.
    fn load_group(&mut self, relative: &Path, at: Location) -> Option<Rc<LoadedGroup>> {
        if let Some(known) = self.groups.loaded.get(relative) {
            return known.clone();
        }
        let shown = match self.loaded.path.parent() {
            Some(folder) => folder.join(relative),
            None => relative.to_owned(),
        };
        let result = match group::load(&self.loaded.root, relative, &shown) {
            Ok(loaded) => Some(Rc::new(loaded)),
            Err(error) if error.position.is_none() => {
                // Missing or unreadable: the mistake is the `uses:` line.
                let message = format!("step group `{}`: {}", shown.display(), error.message);
                self.error(at, message).hint = error.hint;
                None
            }
            Err(error) => {
                self.errors.push(error);
                None
            }
        };
        self.groups
            .loaded
            .insert(relative.to_owned(), result.clone());
        result
    }

    /// A calling step runs no plugin of its own: what would configure one
    /// belongs on the group's steps.
    fn refuse_call_keys(&mut self, step: &model::Step) {
        let permissions = &step.permissions;
        let keys = [
            (
                "permissions",
                permissions.workspace.is_some()
                    || !permissions.dirs.is_empty()
                    || !permissions.env.is_empty()
                    || !permissions.network.is_empty(),
            ),
            (
                "limits",
                step.limits.memory_mb.is_some()
                    || step.limits.files.is_some()
                    || step.limits.disk_mb.is_some(),
            ),
            ("artifacts", step.artifacts.is_some()),
            ("rollback", step.rollback.is_some()),
            ("retry", step.retry.is_some()),
            ("env", !step.env.is_empty()),
        ];
        for (key, present) in keys {
            if present {
                self.error(
                    step.uses.referenced,
                    format!("a step that calls a step group cannot have `{key}`"),
                )
                .hint = Some(format!(
                    "write `{key}` on the steps inside `{}`, or pass values through `with:`",
                    step.uses.value
                ));
            }
        }
    }

    /// The call's `with:` against the group's `inputs:`: every key must be
    /// declared, every required input without a default given.
    fn check_with(&mut self, step: &model::Step, relative: &Path, loaded: &LoadedGroup) {
        let declared = &loaded.group.inputs;
        let names: Vec<&str> = declared.keys().map(|k| k.value.as_str()).collect();
        for name in step.with.keys() {
            if names.contains(&name.value.as_str()) {
                continue;
            }
            let hint = match did_you_mean(&name.value, names.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None if names.is_empty() => "the group declares no `inputs:`".to_owned(),
                None => format!("the group's inputs are: {}", names.join(", ")),
            };
            self.error(
                name.referenced,
                format!(
                    "step group `{}` has no input `{}`",
                    relative.display(),
                    name.value
                ),
            )
            .hint = Some(hint);
        }
        for (name, input) in declared {
            let required = input.required.as_ref().is_some_and(|r| r.value);
            let given = step.with.keys().any(|k| k.value == name.value);
            if required && !given && input.default.is_none() {
                self.error(
                    step.uses.referenced,
                    format!(
                        "step group `{}` needs input `{}`, which is not given",
                        relative.display(),
                        name.value
                    ),
                )
                .hint = Some(format!("add `{}: …` under the step's `with:`", name.value));
            }
        }
    }

    /// The plugins a group's steps may use: the manifest's, and the
    /// group's own under its local alias (the group's wins on a clash).
    /// The group's are registered for the plan once per file.
    fn group_plugins(
        &mut self,
        relative: &Path,
        loaded: &LoadedGroup,
        manifest_plugins: &IndexMap<String, PluginRef>,
    ) -> IndexMap<String, PluginRef> {
        let mut local = manifest_plugins.clone();
        for (alias, spec) in &loaded.group.plugins {
            let qualified = format!("{}:{}", relative.display(), alias.value);
            if !self.groups.plugins.contains_key(&qualified) {
                let mut plugin = self.plugin_ref(alias, spec);
                plugin.alias = qualified.clone();
                self.groups.plugins.insert(qualified.clone(), plugin);
            }
            let plugin = self.groups.plugins[&qualified].clone();
            local.insert(alias.value.clone(), plugin);
        }
        local
    }

    /// `inputs.NAME` inside a group must name one of its inputs: any other
    /// would always read as empty.
    pub(super) fn group_input_reference(
        &mut self,
        location: Location,
        path: &[String],
        scope: &Scope,
    ) {
        let Some(declared) = &scope.group_inputs else {
            return;
        };
        let Some(name) = path.get(1) else {
            return;
        };
        if declared.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return;
        }
        let hint = match did_you_mean(name, declared.iter().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if declared.is_empty() => "the group declares no `inputs:`".to_owned(),
            None => format!("the group's inputs are: {}", declared.join(", ")),
        };
        self.error(
            location,
            format!("`inputs.{name}` is not an input of this step group"),
        )
        .hint = Some(hint);
    }
}
