//! The contexts a GitHub Actions user writes without thinking: pipeline
//! `inputs` (declared in the manifest, given with `--input`), `vars`
//! (`--var`, `--vars-file`), `github` (from the hosting CI's variables or
//! the git repository around the manifest) and `runner`, through `gantry
//! run`, `plan` and `validate` as a user runs them.

use std::path::Path;
use std::process::Command;

use gantry_tests::{Outcome, Project, outside_tool, probe_pipeline};

/// The inputs of a release pipeline, one of each type; `version` is on
/// line 2, `region`'s `options` on line 11.
const INPUTS: &str = "\
inputs:
  version:
    type: string
    required: true
    description: The version to release
  dry-run:
    type: boolean
    default: false
  region:
    type: choice
    options: [eu, us]
    default: eu
  replicas:
    type: number
";

/// A project with the probe plugin, `header` (top-level YAML such as
/// `inputs:`) and one job `main` made of `steps`.
fn project_with(header: &str, steps: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!("{header}{}", probe_pipeline(&sha, steps)));
    project
}

/// One probe step printing `text` (YAML single-quoted).
fn print(text: &str) -> String {
    format!(
        "      - uses: probe\n        with:\n          action: print\n          text: '{text}'\n"
    )
}

/// `gantry run` with `args`, shown in the human format.
fn run(project: &Project, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut all = vec!["run", "--format", "human"];
    all.extend_from_slice(args);
    project.gantry_with_env(&all, env)
}

#[track_caller]
fn nothing_ran(project: &Project) {
    assert!(
        !project.state_dir().join("runs").exists(),
        "a run was started"
    );
}

#[test]
fn inputs_are_typed_as_github_types_them() {
    let steps = print(
        "v=${{ inputs.version }} dry=${{ inputs.dry-run }} region=${{ inputs.region }} n=${{ toJSON(inputs.replicas) }} ver=${{ toJSON(inputs.version) }} more=${{ inputs.replicas > 2 }}",
    ) + "      - name: dry\n        if: inputs.dry-run\n        uses: probe\n        with: { action: print, text: dry-run-step }\n";
    let project = project_with(INPUTS, &steps);
    // Defaults fill what is not given; a boolean `false` is falsy, which
    // the string "false" would not be.
    run(
        &project,
        &["--input", "version=1.4.2", "--input", "replicas=3"],
        &[],
    )
    .expect_code(0)
    .stdout_has(r#"v=1.4.2 dry=false region=eu n=3 ver="1.4.2" more=true"#)
    .stdout_lacks("dry-run-step");
    // A number-like string stays a string; a number may have a fraction.
    run(
        &project,
        &[
            "--input",
            "version=2",
            "--input",
            "dry-run=true",
            "--input",
            "region=us",
            "--input",
            "replicas=1.5",
        ],
        &[],
    )
    .expect_code(0)
    .stdout_has(r#"v=2 dry=true region=us n=1.5 ver="2" more=false"#)
    .stdout_has("dry-run-step");
}

#[test]
fn wrong_inputs_stop_the_run_before_anything_runs() {
    let project = project_with(INPUTS, &print("ran"));
    run(&project, &[], &[])
        .expect_code(2)
        .stderr_has("input `version` is required and was not given: add `--input version=VALUE`");
    run(
        &project,
        &[
            "--input",
            "version=1",
            "--input",
            "regoin=eu",
            "--input",
            "replicas=three",
            "--input",
            "region=asia",
            "--input",
            "dry-run=yes",
        ],
        &[],
    )
    .expect_code(2)
    .stderr_has("the pipeline has no input `regoin`; did you mean `region`?")
    .stderr_has("input `replicas` is a number, and `three` is not one: give a number such as `--input replicas=3`")
    .stderr_has("input `region` must be one of `eu`, `us`, not `asia`")
    .stderr_has("input `dry-run` is a boolean, and `yes` is not one: give `--input dry-run=true` or `--input dry-run=false`")
    .stdout_lacks("ran");
    // Without any declaration, every input is unknown.
    let bare = project_with("", &print("ran"));
    run(&bare, &["--input", "version=1"], &[])
        .expect_code(2)
        .stderr_has("no input `version`; the manifest declares no `inputs:`");
    nothing_ran(&project);
    nothing_ran(&bare);
}

#[test]
fn malformed_declarations_are_located_manifest_errors() {
    let cases = [
        (
            "inputs:\n  region:\n    type: choice\n",
            "gantry.yml:2:3: choice input `region` has no `options`",
        ),
        (
            "inputs:\n  stage:\n    type: environment\n",
            "gantry.yml:3:11: input `stage` has `type: environment`, which gantry does not support",
        ),
        (
            "inputs:\n  dry-run:\n    type: boolean\n    default: maybe\n",
            "gantry.yml:4:14: the default of input `dry-run` does not fit its type",
        ),
        (
            "inputs:\n  region:\n    type: choice\n    options: [eu, us]\n    default: asia\n",
            "gantry.yml:5:14: the default of input `region` does not fit its type: input `region` must be one of `eu`, `us`, not `asia`",
        ),
        (
            "inputs:\n  replicas:\n    type: string\n    options: [a]\n",
            "gantry.yml:4:14: input `replicas` is a string and cannot have `options`",
        ),
        (
            "inputs:\n  1st:\n    type: string\n",
            "gantry.yml:2:3: `1st` is not a valid input name",
        ),
        (
            "inputs:\n  v:\n    type: strng\n",
            "gantry.yml:3:11: unknown value `strng`",
        ),
    ];
    for (header, expected) in cases {
        let project = project_with(header, &print("ran"));
        project
            .gantry(&["validate"])
            .expect_code(2)
            .stderr_has(expected);
        run(&project, &[], &[]).expect_code(2).stderr_has(expected);
        nothing_ran(&project);
    }
}

#[test]
fn undeclared_inputs_and_unknown_contexts_are_plan_time_errors() {
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            INPUTS,
            "${{ inputs.versoin }}",
            &[
                "gantry.yml:26:17: `inputs.versoin` is not a declared input",
                "did you mean `version`?",
            ],
        ),
        (
            "",
            "${{ inputs.version }}",
            &[
                "`inputs.version` is not a declared input",
                "declare it under the top-level `inputs:`",
            ],
        ),
        (
            "",
            "${{ github.event.inputs.version }}",
            &[
                "`github.event` is not a field gantry fills",
                "gantry fills: sha, ref, ref_name, repository, run_id, run_number, run_attempt, actor, event_name, server_url, workspace, job",
            ],
        ),
        (
            "",
            "${{ runner.tmp }}",
            &[
                "`runner.tmp` is not a field gantry fills",
                "did you mean `temp`?",
            ],
        ),
        (
            "",
            "${{ input.version }}",
            &["unknown context `input`", "did you mean `inputs`?"],
        ),
        (
            "",
            "${{ workflow.name }}",
            &[
                "unknown context `workflow`",
                "the contexts are: env, steps, needs, matrix, strategy, secrets, job, gantry, inputs, vars, github, runner",
            ],
        ),
    ];
    for (header, text, expected) in cases {
        let project = project_with(header, &print(text));
        let outcome = project.gantry(&["validate"]);
        outcome.expect_code(2);
        for part in expected {
            outcome.stderr_has(part);
        }
    }
}

#[test]
fn plan_and_validate_show_the_inputs_and_vars() {
    let project = project_with(INPUTS, &print("ran"));
    project
        .gantry(&[
            "plan",
            "--input",
            "version=1.4.2",
            "--input",
            "replicas=3",
            "--var",
            "REGION=eu",
        ])
        .expect_code(0)
        .stdout_has("input version: 1.4.2 (string; required; The version to release)\n")
        .stdout_has("input dry-run: false (boolean; default false)\n")
        .stdout_has("input region: eu (choice of eu, us; default eu)\n")
        .stdout_has("input replicas: 3 (number)\n")
        .stdout_has("var REGION: eu\n");
    // A plan without the required input says so, and does not fail.
    project
        .gantry(&["plan"])
        .expect_code(0)
        .stdout_has("input version: not given (string; required; The version to release)\n")
        .stdout_has("input replicas: 0 (number)\n");
    project
        .gantry(&["validate", "--input", "region=us"])
        .expect_code(0)
        .stdout_has("  input region: us (choice of eu, us; default eu)\n");
    project
        .gantry(&["plan", "--input", "region=asia"])
        .expect_code(2)
        .stderr_has("input `region` must be one of `eu`, `us`, not `asia`");
    project
        .gantry(&["validate", "--var", "github_sha=x"])
        .expect_code(2)
        .stderr_has("reserved");
}

#[test]
fn vars_come_from_flags_and_a_dotenv_file_and_are_not_secrets() {
    // Vars may be read where secrets may not: the pipeline's `env` and a
    // job's `if:`.
    let header = "env:\n  TARGET: 'deploy-${{ vars.REGION }}'\n";
    let steps = print(
        "region=${{ vars.REGION }} tier=${{ vars.TIER }} unset=[${{ vars.UNSET }}] or=${{ vars.UNSET || ''fallback'' }}",
    ) + "      - uses: probe\n        with: { action: env }\n";
    let project = project_with(header, &steps);
    project.write(
        "vars.env",
        "# configuration\nREGION=eu\nexport TIER='gold plan'\n",
    );
    let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    project.manifest(&manifest.replace("  main:\n", "  main:\n    if: vars.TIER == 'gold plan'\n"));
    let outcome = run(
        &project,
        &["--vars-file", "vars.env", "--var", "REGION=us-east"],
        &[],
    );
    outcome
        .expect_code(0)
        .stdout_has("region=us-east tier=gold plan unset=[] or=fallback")
        .stdout_has("TARGET=deploy-us-east");
    // Recorded in clear for the run's later compensation.
    let journal = std::fs::read_to_string(project.latest_run_dir().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(r#""vars":{"REGION":"us-east","TIER":"gold plan"}"#),
        "{journal}"
    );
    run(&project, &["--vars-file", "missing.env"], &[])
        .expect_code(2)
        .stderr_has("cannot read the vars file `missing.env`");
    // Without the var the job's `if:` is false: it is skipped.
    run(&project, &[], &[])
        .expect_code(0)
        .stdout_lacks("region=");
}

/// The `github` fields, one per line, as a step sees them.
const GITHUB_FIELDS: [&str; 12] = [
    "sha",
    "ref",
    "ref_name",
    "repository",
    "run_id",
    "run_number",
    "run_attempt",
    "actor",
    "event_name",
    "server_url",
    "workspace",
    "job",
];

fn github_printer() -> Project {
    let text: Vec<String> = GITHUB_FIELDS
        .iter()
        .map(|field| format!("github.{field}=${{{{ github.{field} }}}}"))
        .collect();
    project_with("", &print(&text.join("|")))
}

/// The value of `github.FIELD` a run printed.
fn field<'a>(outcome: &'a Outcome, name: &str) -> &'a str {
    let prefix = format!("github.{name}=");
    outcome
        .stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{}", outcome.stdout))
}

/// Asserts every `github.FIELD` the run printed.
#[track_caller]
fn expect_fields(outcome: &Outcome, expected: &[(&str, &str)]) {
    for (name, value) in expected {
        assert_eq!(field(outcome, name), *value, "github.{name}");
    }
}

#[test]
fn github_fields_come_from_github_actions_variables() {
    let project = github_printer();
    let outcome = run(
        &project,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53"),
            ("GITHUB_REF", "refs/tags/v1.4.2"),
            ("GITHUB_REF_NAME", "v1.4.2"),
            ("GITHUB_REPOSITORY", "acme/site"),
            ("GITHUB_RUN_ID", "1658821493"),
            ("GITHUB_RUN_NUMBER", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_WORKSPACE", "/home/runner/work/site/site"),
            // GitLab's variables mean nothing inside GitHub Actions.
            ("CI_COMMIT_SHA", "0000000000000000000000000000000000000000"),
        ],
    );
    outcome.expect_code(0);
    let expected = [
        ("sha", "ffac537e6cbbf934b08745a378932722df287a53"),
        ("ref", "refs/tags/v1.4.2"),
        ("ref_name", "v1.4.2"),
        ("repository", "acme/site"),
        ("run_id", "1658821493"),
        ("run_number", "42"),
        ("run_attempt", "2"),
        ("actor", "octocat"),
        ("event_name", "push"),
        ("server_url", "https://github.com"),
        ("workspace", "/home/runner/work/site/site"),
        ("job", "main"),
    ];
    expect_fields(&outcome, &expected);
}

#[test]
fn github_fields_come_from_gitlab_variables_under_githubs_names() {
    let project = github_printer();
    let outcome = run(
        &project,
        &[],
        &[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_SHA", "ffac537e6cbbf934b08745a378932722df287a53"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_PROJECT_PATH", "group/sub/site"),
            ("CI_PIPELINE_ID", "991"),
            ("CI_PIPELINE_IID", "17"),
            ("GITLAB_USER_LOGIN", "alice"),
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_SERVER_URL", "https://gitlab.example.com"),
            ("CI_PROJECT_DIR", "/builds/group/sub/site"),
            ("GITHUB_SHA", "0000000000000000000000000000000000000000"),
        ],
    );
    outcome.expect_code(0);
    let expected = [
        ("sha", "ffac537e6cbbf934b08745a378932722df287a53"),
        ("ref", "refs/heads/main"),
        ("ref_name", "main"),
        ("repository", "group/sub/site"),
        ("run_id", "991"),
        ("run_number", "17"),
        ("actor", "alice"),
        ("event_name", "push"),
        ("server_url", "https://gitlab.example.com"),
        ("workspace", "/builds/group/sub/site"),
        ("job", "main"),
    ];
    expect_fields(&outcome, &expected);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("running git");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn run_locally_github_fields_come_from_the_git_repository() {
    if outside_tool("git").is_none() {
        return;
    }
    let project = github_printer();
    let dir = project.path();
    git(dir, &["init", "-q", "-b", "release"]);
    git(dir, &["config", "user.email", "dev@example.com"]);
    git(dir, &["config", "user.name", "Dev"]);
    git(
        dir,
        &["remote", "add", "origin", "git@github.com:acme/site.git"],
    );
    git(dir, &["add", "gantry.yml", "probe.wasm"]);
    git(dir, &["commit", "-q", "-m", "first"]);
    let sha = git(dir, &["rev-parse", "HEAD"]);
    // Whatever the CI these tests run in says, a local run reads git.
    let outcome = run(&project, &[], &[("GITHUB_SHA", "from-the-ci")]);
    outcome.expect_code(0);
    let run_id = project
        .latest_run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let workspace = dir.canonicalize().unwrap().display().to_string();
    let expected = [
        ("sha", sha.as_str()),
        ("ref", "refs/heads/release"),
        ("ref_name", "release"),
        ("repository", "acme/site"),
        ("server_url", "https://github.com"),
        ("run_id", run_id.as_str()),
        ("run_attempt", "1"),
        ("run_number", ""),
        ("actor", ""),
        ("event_name", ""),
        ("workspace", workspace.as_str()),
        ("job", "main"),
    ];
    expect_fields(&outcome, &expected);
    // Packed refs and a detached HEAD are read too.
    git(dir, &["pack-refs", "--all"]);
    git(dir, &["checkout", "-q", "--detach"]);
    let outcome = run(&project, &[], &[]);
    outcome.expect_code(0);
    assert_eq!(field(&outcome, "sha"), sha);
    assert_eq!(field(&outcome, "ref"), "");
}

#[test]
fn a_broken_or_missing_repository_leaves_the_fields_empty_and_runs() {
    let project = github_printer();
    // Not a repository a git could read: the run goes on regardless.
    project.write(".git/HEAD", "ref: refs/heads/../../../etc/passwd\n");
    project.write(
        ".git/config",
        "[remote \"origin\"]\n\turl = /srv/local/path\n",
    );
    let outcome = run(&project, &[], &[]);
    outcome.expect_code(0);
    for name in ["sha", "ref", "ref_name", "repository", "server_url"] {
        assert_eq!(field(&outcome, name), "", "github.{name}");
    }
}

#[test]
fn runner_fields_name_the_host_and_a_temp_folder_of_the_run() {
    let project = project_with(
        "",
        &print(
            "os=${{ runner.os }}|arch=${{ runner.arch }}|name=${{ runner.name }}|temp=${{ runner.temp }}",
        ),
    );
    let outcome = run(&project, &[], &[]);
    outcome.expect_code(0);
    let value = |key: &str| {
        let prefix = format!("{key}=");
        outcome
            .stdout
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(&prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix}\n{}", outcome.stdout))
    };
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "macOS",
        other => other,
    };
    assert_eq!(value("os"), os);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        other => other,
    };
    assert_eq!(value("arch"), arch);
    assert!(!value("name").is_empty());
    let temp = value("temp");
    let temp = Path::new(&temp);
    assert!(
        temp.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("gantry-runner-temp-"),
        "{}",
        temp.display()
    );
    assert!(!temp.exists(), "the run's temp folder outlived the run");
    // Inside GitHub Actions the runner's own name is used.
    run(
        &project,
        &[],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_NAME", "deploy-runner-3"),
        ],
    )
    .expect_code(0)
    .stdout_has("name=deploy-runner-3");
}

#[test]
fn a_rollback_later_sees_the_inputs_and_vars_the_run_was_given() {
    let steps = "      - id: release\n        uses: probe\n        with: { action: record, label: 'v${{ inputs.version }}-${{ vars.REGION }}', log: /workspace/log.txt }\n        permissions: { workspace: write }\n        rollback: {}\n";
    let project = project_with(INPUTS, steps);
    run(
        &project,
        &["--input", "version=1.4.2", "--var", "REGION=eu"],
        &[],
    )
    .expect_code(0);
    let journal = std::fs::read_to_string(project.latest_run_dir().join("journal.jsonl")).unwrap();
    let started = journal.lines().next().unwrap();
    assert!(
        started.contains(
            r#""inputs":{"dry-run":false,"region":"eu","replicas":0,"version":"1.4.2"},"vars":{"REGION":"eu"}"#
        ),
        "{started}"
    );
    // Given nothing now, with a manifest that changed since.
    project.manifest("name: gone\n");
    project.gantry(&["rollback"]).expect_code(0).stdout_has(
        "was given inputs dry-run=false, region=eu, replicas=0, version=1.4.2; vars REGION=eu",
    );
    let log = std::fs::read_to_string(project.path().join("log.txt")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "run v1.4.2-eu",
            "rollback v1.4.2-eu outcome=success state=saved-by-v1.4.2-eu"
        ]
    );
}
