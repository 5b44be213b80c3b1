//! Resolves a parsed manifest into a [`Plan`]: every name checked, every
//! path made absolute, every expression parsed, jobs put in execution order.
//!
//! All the errors of a manifest are collected and reported together, each
//! with its file, line and column. Once a plan exists the engine never looks
//! at YAML again, and nothing in a plan can fail to resolve at run time
//! except what depends on run-time values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_saphyr::{Location, Spanned};

use crate::expr::{self, Expression, Template};
use crate::manifest::model::{self, Access, Scalar, WorkspaceAccess};
use crate::manifest::{LoadedManifest, ManifestError, ManifestErrors, did_you_mean};

/// Default wall-clock limit of a step, as in GitHub Actions (360 minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(360 * 60);
/// Default cap on a step's linear memory.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// The most a 32-bit guest can address.
const MAX_MEMORY_MB: u64 = 4096;
/// Guest paths that gantry itself mounts.
const RESERVED_GUEST_PATHS: [&str; 4] = ["/workspace", "/tmp", "/artifacts", "/gantry"];

/// A fully resolved pipeline.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub manifest_path: PathBuf,
    /// The manifest's canonical folder.
    pub root: PathBuf,
    pub env: Vec<(String, Template)>,
    pub plugins: IndexMap<String, PluginRef>,
    /// Jobs in execution order: each after the jobs it needs, otherwise in
    /// file order.
    pub jobs: Vec<JobPlan>,
}

/// A plugin the pipeline may run.
#[derive(Debug, Clone)]
pub struct PluginRef {
    pub alias: String,
    /// The `source` as written, for messages and the lock file.
    pub source: String,
    /// The absolute path of the module.
    pub path: PathBuf,
    /// The inline pin from the manifest, if any (64 lowercase hex).
    pub inline_sha256: Option<String>,
}

#[derive(Debug)]
pub struct JobPlan {
    pub id: String,
    pub name: String,
    pub needs: Vec<String>,
    pub env: Vec<(String, Template)>,
    pub steps: Vec<StepPlan>,
}

#[derive(Debug)]
pub struct StepPlan {
    pub id: Option<String>,
    /// What a person reads in logs: the step's name, else its id, else its plugin.
    pub display_name: String,
    pub plugin: String,
    /// Inputs in manifest order, each with its `INPUT_*` variable name.
    pub inputs: Vec<Input>,
    pub env: Vec<(String, Template)>,
    pub condition: Option<Expression>,
    pub continue_on_error: bool,
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub grants: Grants,
}

#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub variable: String,
    pub value: Template,
}

/// Everything a step may touch besides its own private `/tmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    pub workspace: WorkspaceAccess,
    pub dirs: Vec<DirMount>,
    pub host_env: Vec<String>,
}

/// A host folder mounted into a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMount {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// The environment variable a `with:` key reaches a step as: `INPUT_` and the
/// name upper-cased, with `-` and spaces turned into `_`.
pub fn input_variable(name: &str) -> String {
    let mut variable = String::from("INPUT_");
    for c in name.chars() {
        match c {
            '-' | ' ' => variable.push('_'),
            c => variable.extend(c.to_uppercase()),
        }
    }
    variable
}

/// Checks and resolves a loaded manifest.
pub fn resolve(loaded: &LoadedManifest) -> Result<Plan, ManifestErrors> {
    let mut resolver = Resolver {
        loaded,
        errors: Vec::new(),
    };
    let plan = resolver.plan();
    if resolver.errors.is_empty() {
        Ok(plan)
    } else {
        Err(ManifestErrors(resolver.errors))
    }
}

struct Resolver<'a> {
    loaded: &'a LoadedManifest,
    errors: Vec<ManifestError>,
}

impl Resolver<'_> {
    fn error(&mut self, location: Location, message: impl Into<String>) -> &mut ManifestError {
        let error = ManifestError::at(&self.loaded.path, &self.loaded.source, location, message);
        self.errors.push(error);
        self.errors.last_mut().expect("just pushed")
    }

    fn plan(&mut self) -> Plan {
        let manifest = &self.loaded.manifest;
        let plugins = self.plugins();
        let env = self.env_block(&manifest.env, &[]);
        let order = self.job_order();
        let jobs = order
            .into_iter()
            .map(|index| {
                let (id, job) = manifest
                    .jobs
                    .get_index(index)
                    .expect("index from job_order");
                self.job(id, job, &plugins)
            })
            .collect();
        Plan {
            name: manifest.name.value.clone(),
            manifest_path: self.loaded.path.clone(),
            root: self.loaded.root.clone(),
            env,
            plugins,
            jobs,
        }
    }

    fn plugins(&mut self) -> IndexMap<String, PluginRef> {
        let mut plugins = IndexMap::new();
        for (alias, spec) in &self.loaded.manifest.plugins {
            if !is_identifier(&alias.value) {
                self.error(
                    alias.referenced,
                    format!("invalid plugin alias `{}`", alias.value),
                )
                .hint = Some("use letters, digits, `-` and `_`".into());
            }
            let path = self.plugin_path(&alias.value, &spec.source);
            let inline_sha256 = spec.sha256.as_ref().and_then(|pin| {
                if is_sha256_hex(&pin.value) {
                    Some(pin.value.clone())
                } else {
                    self.error(
                        pin.referenced,
                        format!("malformed sha256 `{}` for plugin `{}`", pin.value, alias.value),
                    )
                    .hint = Some(
                        "a pin is 64 lowercase hex digits; remove it and run `gantry lock` to compute it"
                            .into(),
                    );
                    None
                }
            });
            plugins.insert(
                alias.value.clone(),
                PluginRef {
                    alias: alias.value.clone(),
                    source: spec.source.value.clone(),
                    path: path.unwrap_or_default(),
                    inline_sha256,
                },
            );
        }
        plugins
    }

    /// A plugin's absolute path, refusing anything outside the manifest's
    /// folder tree, whether by `..`, an absolute path or a symlink.
    fn plugin_path(&mut self, alias: &str, source: &Spanned<String>) -> Option<PathBuf> {
        let root = &self.loaded.root;
        let outside = |resolver: &mut Self| {
            resolver
                .error(
                    source.referenced,
                    format!(
                        "the source `{}` of plugin `{alias}` is outside the manifest's folder",
                        source.value
                    ),
                )
                .hint = Some(format!(
                "copy the module under `{}` and point `source` at it",
                root.display()
            ));
            None
        };
        let relative = Path::new(&source.value);
        if source.value.is_empty() || relative.is_absolute() {
            return outside(self);
        }
        let Some(normal) = normalize_within(relative) else {
            return outside(self);
        };
        let path = root.join(normal);
        // A symlink inside the tree may still point out of it.
        if let Ok(real) = path.canonicalize()
            && !real.starts_with(root)
        {
            return outside(self);
        }
        Some(path)
    }

    /// Job indices in execution order: needs first, otherwise file order.
    fn job_order(&mut self) -> Vec<usize> {
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

    fn job(
        &mut self,
        id: &Spanned<String>,
        job: &model::Job,
        plugins: &IndexMap<String, PluginRef>,
    ) -> JobPlan {
        if !is_identifier(&id.value) {
            self.error(id.referenced, format!("invalid job id `{}`", id.value))
                .hint = Some("use letters, digits, `-` and `_`".into());
        }
        let env = self.env_block(&job.env, &[]);
        let mut earlier_ids: Vec<String> = Vec::new();
        let mut steps = Vec::with_capacity(job.steps.len());
        for step in &job.steps {
            steps.push(self.step(step, plugins, &earlier_ids));
            if let Some(step_id) = &step.id {
                if earlier_ids.contains(&step_id.value) {
                    self.error(
                        step_id.referenced,
                        format!(
                            "duplicate step id `{}` in job `{}`",
                            step_id.value, id.value
                        ),
                    )
                    .hint = Some("step ids must be unique within their job".into());
                }
                earlier_ids.push(step_id.value.clone());
            }
        }
        if job.steps.is_empty() {
            self.error(id.referenced, format!("job `{}` has no steps", id.value));
        }
        JobPlan {
            id: id.value.clone(),
            name: job
                .name
                .as_ref()
                .map_or_else(|| id.value.clone(), |n| n.value.clone()),
            needs: job
                .needs
                .as_ref()
                .map(|n| n.value.ids().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            env,
            steps,
        }
    }

    fn step(
        &mut self,
        step: &model::Step,
        plugins: &IndexMap<String, PluginRef>,
        earlier_ids: &[String],
    ) -> StepPlan {
        if let Some(id) = &step.id
            && !is_identifier(&id.value)
        {
            self.error(id.referenced, format!("invalid step id `{}`", id.value))
                .hint = Some("a step id uses only letters, digits, `-` and `_`".into());
        }
        if !plugins.contains_key(&step.uses.value) {
            let hint = did_you_mean(&step.uses.value, plugins.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "add the plugin under `plugins:` with its source".into());
            self.error(
                step.uses.referenced,
                format!("unknown plugin `{}`", step.uses.value),
            )
            .hint = Some(hint);
        }
        if let Some(artifacts) = &step.artifacts {
            self.not_yet(artifacts.referenced, "artifacts");
        }
        if let Some(rollback) = &step.rollback {
            self.not_yet(rollback.referenced, "rollback");
        }

        let mut inputs: Vec<Input> = Vec::with_capacity(step.with.len());
        for (name, value) in &step.with {
            let variable = input_variable(&name.value);
            if name.value.is_empty() || name.value.contains('=') {
                self.error(
                    name.referenced,
                    format!("invalid input name `{}`", name.value),
                );
            } else if let Some(other) = inputs.iter().find(|i| i.variable == variable) {
                self.error(
                    name.referenced,
                    format!(
                        "inputs `{}` and `{}` both become `{variable}`",
                        other.name, name.value
                    ),
                );
            }
            let value = self.template(value, earlier_ids);
            inputs.push(Input {
                name: name.value.clone(),
                variable,
                value,
            });
        }
        let env = self.env_block(&step.env, earlier_ids);
        let condition = step
            .condition
            .as_ref()
            .and_then(|c| self.condition(c, earlier_ids));

        let timeout = match &step.timeout_minutes {
            None => DEFAULT_TIMEOUT,
            Some(minutes)
                if minutes.value.is_finite()
                    && minutes.value > 0.0
                    && minutes.value <= 525_600.0 =>
            {
                Duration::from_secs_f64(minutes.value * 60.0)
            }
            Some(minutes) => {
                self.error(
                    minutes.referenced,
                    format!(
                        "`timeout-minutes` must be a positive number of minutes, found {}",
                        minutes.value
                    ),
                );
                DEFAULT_TIMEOUT
            }
        };
        let memory_mb = match &step.limits.memory_mb {
            None => DEFAULT_MEMORY_MB,
            Some(mb) if (1..=MAX_MEMORY_MB).contains(&mb.value) => mb.value,
            Some(mb) => {
                self.error(
                    mb.referenced,
                    format!(
                        "`memory-mb` must be between 1 and {MAX_MEMORY_MB}, found {}",
                        mb.value
                    ),
                );
                DEFAULT_MEMORY_MB
            }
        };

        StepPlan {
            id: step.id.as_ref().map(|id| id.value.clone()),
            display_name: step
                .name
                .as_ref()
                .or(step.id.as_ref())
                .map_or_else(|| step.uses.value.clone(), |n| n.value.clone()),
            plugin: step.uses.value.clone(),
            inputs,
            env,
            condition,
            continue_on_error: step.continue_on_error.as_ref().is_some_and(|c| c.value),
            timeout,
            memory_bytes: memory_mb * 1024 * 1024,
            grants: self.grants(&step.permissions),
        }
    }

    fn not_yet(&mut self, location: Location, key: &str) {
        self.error(
            location,
            format!("`{key}` is not supported by this version of gantry yet"),
        )
        .hint = Some(format!("remove `{key}` from the step"));
    }

    fn grants(&mut self, permissions: &model::Permissions) -> Grants {
        let mut dirs: Vec<DirMount> = Vec::new();
        for grant in &permissions.dirs {
            let guest = grant.guest.value.trim_end_matches('/').to_owned();
            let guest_path = Path::new(&guest);
            let reserved = RESERVED_GUEST_PATHS
                .iter()
                .find(|r| guest_path.starts_with(r) || Path::new(r).starts_with(guest_path));
            if !guest.starts_with('/')
                || normalize_within(guest_path.strip_prefix("/").unwrap_or(guest_path)).is_none()
            {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{}` must be absolute, without `..`",
                        grant.guest.value
                    ),
                );
            } else if guest == "/" {
                self.error(grant.guest.referenced, "a folder cannot be mounted at `/`");
            } else if let Some(reserved) = reserved {
                self.error(
                    grant.guest.referenced,
                    format!(
                        "the guest path `{guest}` overlaps `{reserved}`, which gantry mounts itself"
                    ),
                );
            } else if dirs.iter().any(|d| d.guest == guest) {
                self.error(
                    grant.guest.referenced,
                    format!("`{guest}` is mounted twice"),
                );
            }
            let host = Path::new(&grant.host.value);
            dirs.push(DirMount {
                host: if host.is_absolute() {
                    host.to_owned()
                } else {
                    self.loaded.root.join(host)
                },
                guest,
                writable: grant.access == Access::Write,
            });
        }
        let mut host_env = Vec::new();
        for name in &permissions.env {
            if name.value.is_empty() || name.value.contains(['=', '\0']) {
                self.error(
                    name.referenced,
                    format!("invalid environment variable name `{}`", name.value),
                );
            } else {
                host_env.push(name.value.clone());
            }
        }
        Grants {
            workspace: permissions
                .workspace
                .as_ref()
                .map_or(WorkspaceAccess::Read, |w| w.value),
            dirs,
            host_env,
        }
    }

    fn env_block(
        &mut self,
        env: &BTreeMap<String, Spanned<Scalar>>,
        earlier_ids: &[String],
    ) -> Vec<(String, Template)> {
        env.iter()
            .map(|(name, value)| {
                if name.is_empty() || name.contains(['=', '\0']) {
                    self.error(
                        value.referenced,
                        format!("invalid environment variable name `{name}`"),
                    );
                }
                (name.clone(), self.template(value, earlier_ids))
            })
            .collect()
    }

    /// Parses a `with:`/`env:` value; strings may embed `${{ }}`.
    fn template(&mut self, value: &Spanned<Scalar>, earlier_ids: &[String]) -> Template {
        let text = value.value.to_string();
        if !matches!(value.value, Scalar::String(_)) {
            return Template::literal(text);
        }
        match Template::parse(&text) {
            Ok(template) => {
                self.check_references(value.referenced, &template.references(), earlier_ids);
                template
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                Template::literal(text)
            }
        }
    }

    fn condition(&mut self, value: &Spanned<Scalar>, earlier_ids: &[String]) -> Option<Expression> {
        // `if:` is an expression with or without `${{ }}` around it.
        let text = value.value.to_string();
        let parsed = if text.trim_start().starts_with("${{") {
            Template::parse(text.trim()).and_then(|template| {
                template
                    .as_single_expression()
                    .cloned()
                    .ok_or_else(|| expr::ExprError {
                        message:
                            "an `if:` holds one expression; put all of it inside a single `${{ }}`"
                                .into(),
                        offset: 0,
                    })
            })
        } else {
            expr::parse_expression(&text)
        };
        match parsed {
            Ok(expression) => {
                self.check_references(value.referenced, &expression.references(), earlier_ids);
                Some(expression)
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                None
            }
        }
    }

    fn expr_error(&mut self, location: Location, error: &expr::ExprError) {
        let column_shift = error.offset + self.quote_width(location);
        let error = ManifestError::at(
            &self.loaded.path,
            &self.loaded.source,
            location,
            format!("in an expression: {}", error.message),
        )
        .shifted(column_shift);
        self.errors.push(error);
    }

    /// 1 when the scalar at `location` is quoted, so columns inside it line up.
    fn quote_width(&self, location: Location) -> usize {
        let line = self
            .loaded
            .source
            .lines()
            .nth((location.line() as usize).saturating_sub(1));
        let first = line.and_then(|l| {
            l.chars()
                .nth((location.column() as usize).saturating_sub(1))
        });
        usize::from(matches!(first, Some('\'' | '"')))
    }

    /// `steps.<id>` must name an earlier step of the same job.
    fn check_references(
        &mut self,
        location: Location,
        references: &[Vec<String>],
        earlier_ids: &[String],
    ) {
        for path in references {
            if let [context, step, ..] = path.as_slice()
                && context == "steps"
                && !earlier_ids.iter().any(|id| id.eq_ignore_ascii_case(step))
            {
                let hint = if earlier_ids.is_empty() {
                    "a step can only read the outputs of earlier steps with an `id` in its job"
                        .to_owned()
                } else {
                    format!(
                        "the earlier steps of this job are: {}",
                        earlier_ids.join(", ")
                    )
                };
                self.error(
                    location,
                    format!("`steps.{step}` is not an earlier step of this job"),
                )
                .hint = Some(hint);
            }
        }
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

/// `[A-Za-z0-9_-]+`, the shape of ids and aliases.
fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Normalises a relative path lexically, or `None` if it climbs out of its
/// starting folder.
fn normalize_within(path: &Path) -> Option<PathBuf> {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_variables_follow_the_abi() {
        assert_eq!(input_variable("name"), "INPUT_NAME");
        assert_eq!(input_variable("image-tag"), "INPUT_IMAGE_TAG");
        assert_eq!(input_variable("two words"), "INPUT_TWO_WORDS");
    }

    #[test]
    fn sha256_shape() {
        assert!(is_sha256_hex(&"a".repeat(64)));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }

    #[test]
    fn relative_paths_may_not_climb_out() {
        assert_eq!(
            normalize_within(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize_within(Path::new("a/../../b")), None);
        assert_eq!(normalize_within(Path::new("/etc")), None);
    }

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
