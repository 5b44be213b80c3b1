//! Warnings about a manifest that is valid but probably not what its
//! author meant, shown by `gantry validate`.

use indexmap::IndexMap;

use crate::plan::WorkspaceAccess;
use crate::plan::{Plan, StepPlan};
use crate::plugin::metadata::Metadata;

/// Every warning for `plan`, each a sentence naming what it is about.
/// `described` holds the metadata of the plugins that have some, by alias;
/// the warnings that need it are left out for the others.
pub fn lints(plan: &Plan, described: &IndexMap<String, Metadata>) -> Vec<String> {
    let mut warnings = Vec::new();
    for alias in plan.plugins.keys() {
        let used = plan
            .jobs
            .iter()
            .flat_map(|job| &job.steps)
            .any(|step| &step.plugin == alias);
        if !used {
            warnings.push(format!(
                "plugin `{alias}` is declared but no step uses it; remove it so it is not pinned and shipped for nothing"
            ));
        }
    }
    for job in &plan.jobs {
        for step in &job.steps {
            let writes_workspace = step.grants.workspace == WorkspaceAccess::Write;
            let writable_dirs: Vec<&str> = step
                .grants
                .dirs
                .iter()
                .filter(|dir| dir.writable)
                .map(|dir| dir.guest.as_str())
                .collect();
            if (writes_workspace || !writable_dirs.is_empty()) && step.rollback.is_none() {
                let mut what: Vec<String> = Vec::new();
                if writes_workspace {
                    what.push("/workspace".into());
                }
                what.extend(writable_dirs.iter().map(|d| d.to_string()));
                warnings.push(format!(
                    "step `{}` in job `{}` may write to {} but has no `rollback:` hook, so a failed run cannot undo what it changed",
                    step.display_name,
                    job.id,
                    what.join(", ")
                ));
            }
            if let Some(meta) = described.get(&step.plugin) {
                unread_secrets(step, &job.id, meta, &mut warnings);
            }
        }
    }
    warnings
}

/// Secrets a step puts in an `env:` variable its plugin says it does not
/// read. (Through `with:`, an input the plugin does not declare is already
/// an error.)
fn unread_secrets(step: &StepPlan, job: &str, meta: &Metadata, warnings: &mut Vec<String>) {
    let Some(reads) = &meta.env else { return };
    for (variable, value) in &step.env {
        if reads.contains_key(variable) {
            continue;
        }
        let mut secrets: Vec<String> = value
            .references()
            .into_iter()
            .filter(|path| {
                path.first()
                    .is_some_and(|root| root.eq_ignore_ascii_case("secrets"))
            })
            .map(|path| path.get(1).cloned().unwrap_or_else(|| "*".into()))
            .collect();
        secrets.dedup();
        if secrets.is_empty() {
            continue;
        }
        let names = secrets
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let read = if reads.is_empty() {
            "it reads no `env:` variable".to_owned()
        } else {
            let list: Vec<&str> = reads.keys().map(String::as_str).collect();
            format!("it reads {}", list.join(", "))
        };
        warnings.push(format!(
            "step `{}` in job `{job}` passes secret {names} in `env: {variable}`, which plugin `{}` never reads ({read}); remove it so the secret reaches no step that has no use for it",
            step.display_name, step.plugin
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::LoadedManifest;

    fn plan(yaml: &str) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gantry.yml");
        std::fs::write(&path, yaml).unwrap();
        let loaded: LoadedManifest = crate::manifest::load(&path).unwrap();
        crate::plan::resolve(&loaded).unwrap()
    }

    #[test]
    fn unused_plugins_and_unguarded_writes() {
        let sha = "a".repeat(64);
        let plan = plan(&format!(
            "name: x\nplugins:\n  used: {{ source: a.wasm, sha256: {sha} }}\n  idle: {{ source: b.wasm, sha256: {sha} }}\njobs:\n  main:\n    steps:\n      - name: writer\n        uses: used\n        permissions: {{ workspace: write }}\n      - uses: used\n"
        ));
        let warnings = lints(&plan, &IndexMap::new());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("plugin `idle` is declared but no step uses it"));
        assert!(warnings[1].starts_with("step `writer` in job `main` may write to /workspace"));
    }

    #[test]
    fn a_secret_in_a_variable_the_plugin_never_reads() {
        let sha = "a".repeat(64);
        let plan = plan(&format!(
            "name: x\nplugins:\n  push: {{ source: a.wasm, sha256: {sha} }}\n  quiet: {{ source: b.wasm, sha256: {sha} }}\n  silent: {{ source: c.wasm, sha256: {sha} }}\njobs:\n  main:\n    steps:\n\
             \x20     - name: deploy\n        uses: push\n        env:\n          TOKEN: ${{{{ secrets.TOKEN }}}}\n          STRAY: \"a ${{{{ secrets.TOKEN }}}} and ${{{{ secrets.OTHER }}}}\"\n          PLAIN: not a secret\n\
             \x20     - name: undeclared\n        uses: quiet\n        env: {{ TOKEN: \"${{{{ secrets.TOKEN }}}}\" }}\n\
             \x20     - name: reads-nothing\n        uses: silent\n        env: {{ TOKEN: \"${{{{ secrets.TOKEN }}}}\" }}\n"
        ));
        let meta = |json: &str| serde_json::from_str::<Metadata>(json).unwrap();
        let described = IndexMap::from([
            (
                "push".to_owned(),
                meta(r#"{"name": "push", "env": {"TOKEN": {}}}"#),
            ),
            // No `env` key: the plugin does not say, so nothing is warned.
            ("quiet".to_owned(), meta(r#"{"name": "quiet"}"#)),
            (
                "silent".to_owned(),
                meta(r#"{"name": "silent", "env": {}}"#),
            ),
        ]);
        let warnings = lints(&plan, &described);
        assert_eq!(warnings.len(), 2, "{warnings:#?}");
        assert!(
            warnings[0].starts_with(
                "step `deploy` in job `main` passes secret `TOKEN`, `OTHER` in `env: STRAY`, which plugin `push` never reads (it reads TOKEN)"
            ),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].contains("`reads-nothing`")
                && warnings[1].contains("it reads no `env:` variable"),
            "{}",
            warnings[1]
        );
    }
}

/// A `${{ secrets.NAME }}` in a step that no `--secret` or
/// `--secrets-file` provides: it would silently be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnprovidedSecret {
    pub name: String,
    pub job: String,
    pub step: String,
    /// The `with:` key that reads it, or the step's `uses:` for `env:`.
    pub location: serde_saphyr::Location,
    /// Provided names close to it, for "did you mean".
    pub suggestion: Option<String>,
}

impl UnprovidedSecret {
    pub fn message(&self) -> String {
        format!(
            "`secrets.{}` in step `{}` of job `{}` is not provided by any `--secret` or `--secrets-file`, so it would be empty",
            self.name, self.step, self.job
        )
    }

    pub fn hint(&self) -> String {
        match &self.suggestion {
            Some(name) => format!("did you mean `{name}`?"),
            None => format!(
                "pass `--secret {}` (or a `--secrets-file` holding it), or give a fallback: `${{{{ secrets.{} || '' }}}}`",
                self.name, self.name
            ),
        }
    }
}

/// Every unguarded secret reference of `plan` that `provided` lacks. A
/// reference inside an expression with `||` or `&&` is guarded: its
/// author gave a fallback or a condition for the empty case.
pub fn unprovided_secrets(plan: &Plan, provided: &[&str]) -> Vec<UnprovidedSecret> {
    let mut found = Vec::new();
    for job in &plan.jobs {
        for step in &job.steps {
            for (template, location) in step.input_templates() {
                for path in template.references() {
                    let (Some(context), Some(name)) = (path.first(), path.get(1)) else {
                        continue;
                    };
                    let missing = context.eq_ignore_ascii_case("secrets")
                        && !provided.iter().any(|p| p == name)
                        && !guarded(template.source(), name);
                    let already = found
                        .iter()
                        .any(|f: &UnprovidedSecret| f.name == *name && f.location == location);
                    if missing && !already {
                        found.push(UnprovidedSecret {
                            name: name.clone(),
                            job: job.id.clone(),
                            step: step.display_name.clone(),
                            location,
                            suggestion: crate::manifest::did_you_mean(
                                name,
                                provided.iter().copied(),
                            )
                            .map(str::to_owned),
                        });
                    }
                }
            }
        }
    }
    found
}

/// Whether every `${{ }}` of `source` that reads `secrets.NAME` also holds
/// `||` or `&&`.
fn guarded(source: &str, name: &str) -> bool {
    let needle = format!("secrets.{}", name.to_ascii_lowercase());
    let mut reads = 0;
    let mut guarded = 0;
    let mut rest = source;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let expression = after[..end].to_ascii_lowercase();
        if expression.contains(&needle) {
            reads += 1;
            if expression.contains("||") || expression.contains("&&") {
                guarded += 1;
            }
        }
        rest = &after[end + 2..];
    }
    reads > 0 && reads == guarded
}

#[cfg(test)]
mod unprovided_tests {
    use super::guarded;

    #[test]
    fn a_fallback_or_condition_guards_a_secret() {
        assert!(guarded("${{ secrets.TOKEN || 'none' }}", "TOKEN"));
        assert!(guarded("a ${{ secrets.token && 'set' }} b", "TOKEN"));
        assert!(!guarded("${{ secrets.TOKEN }}", "TOKEN"));
        assert!(!guarded(
            "${{ secrets.TOKEN }} ${{ secrets.TOKEN || 'x' }}",
            "TOKEN"
        ));
        assert!(!guarded("a || b ${{ secrets.TOKEN }}", "TOKEN"));
    }
}
