//! `gantry export --to gitlab|github`: deterministic text, checked by the
//! engines' own tools (check-jsonschema's GitLab and GitHub schemas,
//! actionlint), and the GitLab export executed end to end by
//! `gitlab-ci-local`, each job in its own copy of the repository.

use std::path::Path;
use std::process::Command;

use gantry_tests::{Project, outside_tool};

use crate::handoff::three_jobs;

/// A project holding the three-job pipeline, its hooks logging to
/// `target`.
fn three_job_project(target: &Path, fail_check: bool) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&three_jobs(&sha, target, fail_check));
    project
}

fn export(project: &Project, engine: &str, extra: &[&str]) -> String {
    let mut args = vec!["export", "--to", engine];
    args.extend(extra);
    let outcome = project.gantry(&args);
    outcome.expect_code(0);
    outcome.stdout
}

#[test]
fn the_same_plan_exports_the_same_bytes() {
    let target = tempfile::tempdir().unwrap();
    let one = three_job_project(target.path(), false);
    let other = three_job_project(target.path(), false);
    for engine in ["gitlab", "github"] {
        let first = export(&one, engine, &[]);
        assert_eq!(first, export(&one, engine, &[]), "{engine}: twice");
        assert_eq!(
            first,
            export(&other, engine, &[]),
            "{engine}: the same manifest in another folder"
        );
        // Written to a file, the same bytes again.
        one.gantry(&["export", "--to", engine, "-o", "out.yml"])
            .expect_code(0);
        assert_eq!(
            std::fs::read_to_string(one.path().join("out.yml")).unwrap(),
            first
        );
    }
}

#[test]
fn jobs_needs_conditions_and_secrets_map_to_the_engine() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: mapped\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  build:\n    steps:\n      - uses: probe\n        with: {{ action: echo, message: \"${{{{ secrets.TOKEN }}}}\" }}\n  deploy:\n    needs: build\n    strategy:\n      matrix:\n        region: [eu, us]\n    steps:\n      - uses: probe\n        with: {{ action: echo, message: hi }}\n  notify:\n    needs: deploy\n    if: ${{{{ failure() }}}}\n    steps:\n      - uses: probe\n        with: {{ action: echo, message: \"${{{{ secrets.HOOK_URL }}}}\" }}\n"
    ));
    let gitlab = project
        .gantry_with_env(&["export", "--to", "gitlab"], &[("TOKEN", "hunter2")])
        .expect_code(0)
        .stdout
        .clone();
    // One engine job per instance, needs one to one, gantry decides.
    for name in [
        "\"build\":",
        "\"deploy:0\":",
        "\"deploy:1\":",
        "\"notify\":",
    ] {
        assert!(gitlab.contains(name), "{name} in\n{gitlab}");
    }
    assert!(
        gitlab.contains(
            "  needs:\n    - job: \"deploy:0\"\n      artifacts: true\n    - job: \"deploy:1\"\n      artifacts: true\n  when: always\n"
        ),
        "{gitlab}"
    );
    assert!(
        !gitlab.contains("failure()"),
        "the condition stays in gantry"
    );
    assert!(
        gitlab.contains("--job build --export gantry-bundles/build --secret TOKEN\""),
        "{gitlab}"
    );
    assert!(gitlab.contains("--job notify --export gantry-bundles/notify --import gantry-bundles/deploy.0 --import gantry-bundles/deploy.1 --secret HOOK_URL\""), "{gitlab}");
    assert!(gitlab.contains("gantry-rollback:\n  stage: gantry-rollback\n  when: on_failure\n"));
    assert!(
        gitlab.contains("#   HOOK_URL, TOKEN\n"),
        "secrets listed by name"
    );
    assert!(!gitlab.contains("hunter2"), "never a value");

    let github = export(&project, "github", &[]);
    assert!(github.contains(
        "    strategy:\n      fail-fast: false\n      matrix:\n        instance: [0, 1]\n"
    ));
    assert!(github.contains("    needs: [deploy]\n    if: ${{ !cancelled() }}\n"));
    assert!(github.contains("          TOKEN: ${{ secrets.TOKEN }}\n"));
    assert!(github.contains("    if: ${{ failure() || cancelled() }}\n"));
    assert!(github.contains(
        "--instance ${{ matrix.instance }} --export gantry-bundles/deploy.${{ matrix.instance }}"
    ));

    // --job narrows to a job and what it needs.
    let narrowed = export(&project, "gitlab", &["--job", "deploy"]);
    assert!(narrowed.contains("\"deploy:1\":") && !narrowed.contains("\"notify\":"));
    project
        .gantry(&["export", "--to", "gitlab", "--job", "nope"])
        .expect_code(2)
        .stderr_has("there is no job `nope`");
}

/// Runs `tool args…` in `dir`; fails the test with its output unless it
/// succeeds.
fn check_with(tool: &Path, args: &[&str], dir: &Path) {
    let output = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    assert!(
        output.status.success(),
        "{} {args:?} refused the export:\n{}\n{}",
        tool.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_engines_own_tools_accept_both_exports() {
    let target = tempfile::tempdir().unwrap();
    let project = three_job_project(target.path(), false);
    project.write(".gitlab-ci.yml", export(&project, "gitlab", &[]));
    project.write(
        ".github/workflows/gantry.yml",
        export(
            &project,
            "github",
            &["--install", "uses: gantry-dev/gantry@v1"],
        ),
    );
    let Some(schema) = outside_tool("check-jsonschema") else {
        return;
    };
    check_with(
        &schema,
        &["--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml"],
        project.path(),
    );
    check_with(
        &schema,
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            ".github/workflows/gantry.yml",
        ],
        project.path(),
    );
    let Some(actionlint) = outside_tool("actionlint") else {
        return;
    };
    check_with(
        &actionlint,
        &[".github/workflows/gantry.yml"],
        project.path(),
    );
    // The checks can fail: a workflow reading an output no job has is
    // refused.
    let broken =
        export(&project, "github", &[]).replace("needs.build.outputs", "needs.bulid.outputs");
    project.write(".github/workflows/gantry.yml", broken);
    let refused = Command::new(&actionlint)
        .arg(".github/workflows/gantry.yml")
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(!refused.status.success(), "actionlint checks expressions");
}

/// The GitLab export run by `gitlab-ci-local`: three jobs, each in its own
/// copy of the repository with its own state folder (a machine each), the
/// artifact and the output handed on through GitLab's artifacts, the last
/// job failing, and the rollback job compensating the other two.
#[test]
fn gitlab_ci_local_runs_the_export_and_its_rollback_job() {
    let tools = ["gitlab-ci-local", "git", "rsync"].map(outside_tool);
    let [Some(gitlab_ci_local), Some(git), Some(_)] = tools else {
        return;
    };
    let target = tempfile::tempdir().unwrap();
    let project = three_job_project(target.path(), true);
    let pipeline = export(&project, "gitlab", &[]);
    project.write(".gitlab-ci.yml", &pipeline);
    let git = |args: &[&str]| {
        let status = Command::new(&git)
            .args(args)
            .current_dir(project.path())
            .env("GIT_AUTHOR_NAME", "gantry tests")
            .env("GIT_AUTHOR_EMAIL", "tests@gantry.invalid")
            .env("GIT_COMMITTER_NAME", "gantry tests")
            .env("GIT_COMMITTER_EMAIL", "tests@gantry.invalid")
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "the pipeline"]);
    // The jobs find this build's gantry on the PATH; each job's checkout
    // is its own project, so its state folder is its own too.
    let bin_dir = gantry_tests::gantry_bin().parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let output = Command::new(gitlab_ci_local)
        .args(["--shell-isolation", "--no-color"])
        .current_dir(project.path())
        .env("PATH", path)
        .env("XDG_STATE_HOME", project.state_home())
        .env("XDG_CACHE_HOME", project.cache_home())
        .env_remove("GITLAB_CI")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("gitlab-ci-local runs");
    let log_text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "the pipeline fails:\n{log_text}");
    for expected in [
        "message: got v1.2.3",
        "read ok: hello-site",
        "2 hooks to run",
        "the pipeline's jobs are rolled back",
    ] {
        assert!(log_text.contains(expected), "{expected:?} in\n{log_text}");
    }
    // Each job ran in a checkout of its own: separate machines.
    let builds = project.path().join(".gitlab-ci-local/builds");
    for job in ["build", "deploy", "check", "gantry-rollback"] {
        assert!(builds.join(job).is_dir(), "{job} in {}", builds.display());
    }
    // `check` rolled itself back on its machine; the rollback job did the
    // rest, newest first, and no hook ran twice.
    let hooks: Vec<String> = std::fs::read_to_string(target.path().join("log.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        hooks,
        [
            "run build",
            "run deploy",
            "run check",
            "rollback check outcome=failure state=saved-by-check",
            "rollback deploy outcome=success state=saved-by-deploy",
            "rollback build outcome=success state=saved-by-build",
        ],
        "\n{log_text}"
    );
}

/// `examples/fan-out/exported/` holds the example exported to both engines,
/// as its README shows; re-exporting gives the same bytes (`BLESS=1`
/// rewrites them after a deliberate change).
#[test]
fn the_fan_out_example_exports_as_committed() {
    let root = Path::new(gantry_tests::TESTS_DIR).parent().unwrap();
    let folder = root.join("examples/fan-out/exported");
    for (engine, file, install) in [
        ("gitlab", "gitlab-ci.yml", "cargo install --locked gantry"),
        ("github", "github-workflow.yml", "uses: OWNER/gantry@v0.1.0"),
    ] {
        let output = Command::new(gantry_tests::gantry_bin())
            .args([
                "export",
                "examples/fan-out",
                "--to",
                engine,
                "--install",
                install,
            ])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let exported = String::from_utf8(output.stdout).unwrap();
        let path = folder.join(file);
        if std::env::var("BLESS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(&path, &exported).unwrap();
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
        assert_eq!(
            exported,
            committed,
            "{} is out of date: BLESS=1 rewrites it",
            path.display()
        );
        // Eight deploy targets: eight machines.
        if engine == "gitlab" {
            assert_eq!(exported.matches("--job deploy --instance").count(), 8);
        } else {
            assert!(exported.contains("instance: [0, 1, 2, 3, 4, 5, 6, 7]"));
        }
    }
}

/// The repository's own workflows (the release build among them) and the
/// action they use pass actionlint, which also reads `action.yml` through
/// `uses: ./`, and the GitHub schemas.
#[test]
fn the_release_workflow_and_the_action_pass_the_engines_tools() {
    let root = Path::new(gantry_tests::TESTS_DIR).parent().unwrap();
    let Some(schema) = outside_tool("check-jsonschema") else {
        return;
    };
    check_with(
        &schema,
        &["--builtin-schema", "vendor.github-actions", "action.yml"],
        root,
    );
    check_with(
        &schema,
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            ".github/workflows/release.yml",
            ".github/workflows/gantry.yml",
        ],
        root,
    );
    let Some(actionlint) = outside_tool("actionlint") else {
        return;
    };
    // actionlint finds the repository from the folder it runs in; a copy
    // outside any git repository would not be linted at all.
    if !root.join(".git").exists() {
        eprintln!(
            "skipping actionlint: {} is not a git checkout",
            root.display()
        );
        return;
    }
    check_with(
        &actionlint,
        &[
            ".github/workflows/release.yml",
            ".github/workflows/gantry.yml",
        ],
        root,
    );
}
