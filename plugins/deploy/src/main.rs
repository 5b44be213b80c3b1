//! `deploy`: copies a downloaded artifact into a new release folder of a
//! target, switches the target's `current` link to it in one step and
//! prunes old releases; its rollback phase switches back. See README.md.
//!
//! `tree.rs` copies the artifact (and refuses links that leave it);
//! `site.rs` owns the target's layout, the switch, pruning and rollback.
//! Both take base paths, so their tests run on the host.

mod site;
mod tree;

use std::path::Path;

use gantry_sdk::{Context, Result, Step, bail};

use site::Site;

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(Deploy);

/// The step.
struct Deploy;

impl Step for Deploy {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let artifact: String = ctx.input("artifact")?;
        check_artifact_name(&artifact)?;
        let target: String = ctx.input("target")?;
        let id = release_id(ctx)?;
        let keep: usize = ctx.input_or("keep", 5)?;
        let source = ctx.artifact(&artifact);
        if !source.is_dir() {
            bail!(
                "artifact `{artifact}` is not at `{}`; list it under the step's `artifacts.download`",
                source.display()
            );
        }
        let site = Site::new(ctx.workspace_path(&target));

        let deployed = site::deploy(&site, &source, &id, keep, &mut |name, value| {
            ctx.save_state(name, value)
        })?;

        let previous = deployed.previous.as_deref().unwrap_or("");
        let copied = deployed.copied;
        println!(
            "copied artifact `{artifact}` into `{}`: {}, {}, {}, {}",
            deployed.path.display(),
            count(copied.files as u64, "file"),
            count(copied.dirs as u64, "folder"),
            count(copied.links as u64, "link"),
            count(copied.bytes, "byte")
        );
        match &deployed.previous {
            Some(previous) => println!("`current` switched from `{previous}` to `{id}`"),
            None => println!("`current` now points to `{id}` (first release)"),
        }
        if !deployed.pruned.is_empty() {
            println!("pruned: {}", deployed.pruned.join(", "));
        }
        ctx.set_output("release", &id)?;
        ctx.set_output("previous", previous)?;
        ctx.set_output("path", deployed.path.display().to_string())?;
        ctx.append_summary(&summary(site.root(), &deployed))?;
        Ok(())
    }

    fn rollback(&mut self, ctx: &Context) -> Result<()> {
        let outcome = match ctx.outcome() {
            Some(gantry_sdk::Outcome::Failure) => "the deploy step failed",
            Some(gantry_sdk::Outcome::Success) => "a later step failed",
            None => "rollback requested",
        };
        let Some(id) = ctx.state("release").filter(|id| !id.is_empty()) else {
            println!("nothing to undo ({outcome}): the step saved no state, so it changed nothing");
            return Ok(());
        };
        let root = match ctx.state("target").filter(|t| !t.is_empty()) {
            Some(saved) => Path::new(saved).to_owned(),
            None => ctx.workspace_path(&ctx.input::<String>("target")?),
        };
        let site = Site::new(root);
        println!(
            "rolling back release `{id}` in `{}` ({outcome})",
            site.root().display()
        );
        let actions = site::rollback(&site, id, ctx.state("previous"))?;
        for action in &actions {
            println!("{action}");
        }
        if ctx
            .var("GANTRY_STEP_SUMMARY")
            .is_some_and(|s| !s.is_empty())
        {
            ctx.append_summary(&format!(
                "Rolled back release `{id}` in `{}`: {}.",
                site.root().display(),
                actions.join("; ")
            ))?;
        }
        Ok(())
    }
}

/// The release id: the `release-id` input, else the run's id.
fn release_id(ctx: &Context) -> Result<String> {
    let id = match ctx.input_opt::<String>("release-id")? {
        Some(id) => id,
        None => match ctx.var("GANTRY_RUN_ID").filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None => bail!(
                "no release id: set the `release-id` input (GANTRY_RUN_ID, its default, is not set)"
            ),
        },
    };
    site::check_id(&id)?;
    Ok(id)
}

/// An artifact name is one folder name under `/artifacts`.
fn check_artifact_name(name: &str) -> Result<()> {
    if name == "." || name == ".." || name.contains(['/', '\\']) {
        bail!("input `artifact`: `{name}` is not an artifact name");
    }
    Ok(())
}

/// `1 file`, `2 files`.
fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// One Markdown line for the run's summary.
fn summary(root: &Path, deployed: &site::Deployed) -> String {
    let mut line = format!(
        "Deployed release `{}` to `{}` ({}",
        deployed.release,
        root.display(),
        count(deployed.copied.files as u64, "file")
    );
    match &deployed.previous {
        Some(previous) => line.push_str(&format!(", previous release `{previous}`")),
        None => line.push_str(", first release"),
    }
    if !deployed.pruned.is_empty() {
        let pruned: Vec<String> = deployed.pruned.iter().map(|id| format!("`{id}`")).collect();
        line.push_str(&format!(", pruned {}", pruned.join(", ")));
    }
    line.push_str(").");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;
    use std::fs;
    use std::path::PathBuf;

    /// A temporary folder with an artifact `site` under `artifacts/`, an
    /// empty target `www/` and the ABI files.
    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("artifacts/site")).unwrap();
            fs::write(dir.path().join("artifacts/site/index.html"), "v1").unwrap();
            fs::create_dir(dir.path().join("www")).unwrap();
            Sandbox { dir }
        }

        fn path(&self, p: &str) -> PathBuf {
            self.dir.path().join(p)
        }

        fn read(&self, p: &str) -> String {
            fs::read_to_string(self.path(p)).unwrap_or_default()
        }

        /// The context of the run phase, fresh ABI files each time.
        fn run_context(&self, extra: &[(&str, &str)]) -> Context {
            for file in ["output", "state", "summary"] {
                fs::write(self.path(file), "").unwrap();
            }
            let mut vars = self.base_vars();
            vars.extend([
                ("INPUT_ARTIFACT".to_owned(), "site".to_owned()),
                (
                    "INPUT_TARGET".to_owned(),
                    self.path("www").display().to_string(),
                ),
                ("INPUT_KEEP".to_owned(), "5".to_owned()),
            ]);
            vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Context::from_vars(vars)
        }

        /// The context of the rollback phase, with the state saved by the
        /// last run as `STATE_*`.
        fn rollback_context(&self, outcome: &str) -> Context {
            let mut vars = self.base_vars();
            vars.extend([
                ("GANTRY_PHASE".to_owned(), "rollback".to_owned()),
                ("GANTRY_STEP_OUTCOME".to_owned(), outcome.to_owned()),
                ("INPUT_ARTIFACT".to_owned(), "site".to_owned()),
                (
                    "INPUT_TARGET".to_owned(),
                    self.path("www").display().to_string(),
                ),
            ]);
            for line in self.read("state").lines() {
                let (name, value) = line.split_once('=').unwrap();
                vars.push((format!("STATE_{name}"), value.to_owned()));
            }
            Context::from_vars(vars)
        }

        fn base_vars(&self) -> Vec<(String, String)> {
            let path = |p: &str| self.path(p).display().to_string();
            vec![
                ("GANTRY_ARTIFACTS".to_owned(), path("artifacts")),
                ("GANTRY_WORKSPACE".to_owned(), path("ws")),
                ("GANTRY_OUTPUT".to_owned(), path("output")),
                ("GANTRY_STATE".to_owned(), path("state")),
                ("GANTRY_STEP_SUMMARY".to_owned(), path("summary")),
            ]
        }
    }

    fn dispatch(ctx: &Context) -> Result<()> {
        gantry_sdk::step::dispatch(&mut Deploy, ctx)
    }

    #[test]
    fn run_sets_outputs_state_and_summary() {
        let sb = Sandbox::new();
        dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "run-1")])).unwrap();
        let www = sb.path("www");
        assert_eq!(
            sb.read("output"),
            format!(
                "release=run-1\nprevious=\npath={}\n",
                www.join("releases/run-1").display()
            )
        );
        assert_eq!(
            sb.read("state"),
            format!("target={}\nrelease=run-1\nprevious=\n", www.display())
        );
        assert_eq!(
            sb.read("summary"),
            format!(
                "Deployed release `run-1` to `{}` (1 file, first release).\n",
                www.display()
            )
        );
        assert_eq!(sb.read("www/current/index.html"), "v1");

        // An explicit `release-id` wins over the run id.
        fs::write(sb.path("artifacts/site/index.html"), "v2").unwrap();
        let ctx = sb.run_context(&[("GANTRY_RUN_ID", "run-2"), ("INPUT_RELEASE_ID", "v2.0")]);
        dispatch(&ctx).unwrap();
        assert!(
            sb.read("output")
                .starts_with("release=v2.0\nprevious=run-1\n")
        );
        assert!(sb.read("summary").contains("previous release `run-1`"));
        assert_eq!(sb.read("www/current/index.html"), "v2");
    }

    #[test]
    fn run_then_rollback_restores_the_previous_release_twice() {
        let sb = Sandbox::new();
        dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "r1")])).unwrap();
        fs::write(sb.path("artifacts/site/index.html"), "v2").unwrap();
        dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "r2")])).unwrap();
        assert_eq!(sb.read("www/current/index.html"), "v2");
        for outcome in ["success", "failure"] {
            dispatch(&sb.rollback_context(outcome)).unwrap();
            assert_eq!(sb.read("www/current/index.html"), "v1");
            assert!(!sb.path("www/releases/r2").exists());
        }
        assert!(sb.read("summary").contains("Rolled back release `r2`"));
    }

    #[test]
    fn rollback_with_no_state_does_nothing() {
        let sb = Sandbox::new();
        // The step failed before saving anything: no release id at all.
        let error = dispatch(&sb.run_context(&[])).unwrap_err();
        assert!(error.message().contains("no release id"), "{error}");
        assert_eq!(sb.read("state"), "");
        dispatch(&sb.rollback_context("failure")).unwrap();
        assert!(!sb.path("www/releases").exists());
    }

    #[test]
    fn input_errors_are_clear() {
        let sb = Sandbox::new();
        let error =
            dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "r1"), ("INPUT_ARTIFACT", "missing")]))
                .unwrap_err();
        assert!(error.message().contains("artifacts.download"), "{error}");
        let error =
            dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "r1"), ("INPUT_ARTIFACT", "../x")]))
                .unwrap_err();
        assert!(error.message().contains("not an artifact name"), "{error}");
        let error = dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "a/b")])).unwrap_err();
        assert!(error.message().contains("release id"), "{error}");
        let error =
            dispatch(&sb.run_context(&[("GANTRY_RUN_ID", "r1"), ("INPUT_KEEP", "0")])).unwrap_err();
        assert!(error.message().contains("at least 1"), "{error}");
        let error = dispatch(
            &sb.run_context(&[("GANTRY_RUN_ID", "r1"), ("INPUT_TARGET", "/no/such/target")]),
        )
        .unwrap_err();
        assert!(error.message().contains("permissions.dirs"), "{error}");
        assert_eq!(sb.read("state"), "");
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "deploy");
        assert!(meta.rollback);
        assert!(meta.inputs.as_ref().unwrap()["artifact"].required);
        assert!(meta.inputs.as_ref().unwrap()["target"].required);
        assert!(!meta.inputs.as_ref().unwrap()["release-id"].required);
        assert_eq!(
            meta.inputs.as_ref().unwrap()["keep"]
                .default
                .as_ref()
                .and_then(|v| v.as_u64()),
            Some(5)
        );
        for output in ["release", "previous", "path"] {
            assert!(meta.outputs.contains_key(output), "{output}");
        }
    }
}
