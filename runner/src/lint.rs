//! Warnings about a manifest that is valid but probably not what its
//! author meant, shown by `gantry validate`.

use crate::manifest::model::WorkspaceAccess;
use crate::plan::Plan;

/// Every warning for `plan`, each a sentence naming what it is about.
pub fn lints(plan: &Plan) -> Vec<String> {
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
        }
    }
    warnings
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
        let warnings = lints(&plan(&format!(
            "name: x\nplugins:\n  used: {{ source: a.wasm, sha256: {sha} }}\n  idle: {{ source: b.wasm, sha256: {sha} }}\njobs:\n  main:\n    steps:\n      - name: writer\n        uses: used\n        permissions: {{ workspace: write }}\n      - uses: used\n"
        )));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("plugin `idle` is declared but no step uses it"));
        assert!(warnings[1].starts_with("step `writer` in job `main` may write to /workspace"));
    }
}
