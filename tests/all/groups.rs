//! Reusable step groups (`uses: ./steps/publish.yml`), as a user meets
//! them through `gantry run`, `plan`, `resume`: inputs and outputs, nesting
//! in reports and the journal, the saga across group boundaries, the
//! calling step's `if:`, `continue-on-error` and `timeout-minutes`, and the
//! errors that stop a run before it starts.

use gantry_tests::{Outcome, Project, probe_pipeline};

use crate::rollback::log;

/// A project with the probe as `probe.wasm`, `steps` as the manifest's one
/// job, and each `(path, text)` of `files` written beside it.
fn project(steps: &str, files: &[(&str, &str)]) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(&sha, steps));
    for (path, text) in files {
        project.write(path, text);
    }
    project
}

fn events(outcome: &Outcome) -> Vec<serde_json::Value> {
    outcome
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// A hooked step of the probe's `record` action, indented for `steps:`
/// at `indent` spaces.
fn recorded(indent: usize, label: &str, extra: &str) -> String {
    let pad = " ".repeat(indent);
    format!(
        "{pad}- id: {label}\n{pad}  uses: probe\n{pad}  with: {{ action: record, label: {label}, log: /workspace/log.txt{extra} }}\n{pad}  permissions: {{ workspace: write }}\n{pad}  rollback: {{}}\n"
    )
}

const PUBLISH: &str = "name: Publish
description: says a message, twice over
inputs:
  message: { description: what to say, required: true }
  suffix: { description: put after it, default: '!' }
outputs:
  said: { value: '${{ steps.say.outputs.message }}' }
steps:
  - id: say
    name: Say
    uses: probe
    with: { action: echo, message: '${{ inputs.message }}${{ inputs.suffix }}' }
  - uses: ./steps/inner.yml
    id: inner
    with: { text: 'inner ${{ steps.say.outputs.message }}' }
";

const INNER: &str = "name: Inner
inputs:
  text: { required: true }
steps:
  - id: echo
    uses: probe
    with: { action: echo, message: '${{ inputs.text }}' }
";

const CALL: &str = "      - id: publish
        uses: ./steps/publish.yml
        with: { message: hello }
      - id: after
        uses: probe
        with: { action: echo, message: 'got ${{ steps.publish.outputs.said }}' }
";

#[test]
fn a_group_takes_inputs_gives_outputs_and_nests_in_reports() {
    let project = project(
        CALL,
        &[("steps/publish.yml", PUBLISH), ("steps/inner.yml", INNER)],
    );
    let outcome = project.gantry(&["run", "--format", "json"]);
    outcome.expect_code(0);
    let events = events(&outcome);
    let started: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .map(|e| {
            (
                e["step"].as_str().unwrap(),
                e["step_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        started,
        [
            ("publish", "publish"),
            ("publish/say", "publish / Say"),
            ("publish/inner", "publish / inner"),
            ("publish/inner/echo", "publish / inner / echo"),
            ("after", "after"),
        ]
    );
    let logs: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "log" && e["text"].as_str().unwrap().starts_with("message:"))
        .map(|e| (e["step"].as_str().unwrap(), e["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logs,
        [
            ("publish/say", "message: hello!"),
            ("publish/inner/echo", "message: inner hello!"),
            ("after", "message: got hello!"),
        ]
    );
    // The journal names each inner step by its path.
    let journal = std::fs::read_to_string(project.latest_run_dir().join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"publish/inner/echo\""), "{journal}");

    // Human output and JUnit name them `group / step`.
    let human = project.gantry(&["run"]);
    human.expect_code(0).stdout_has("publish / Say");
    let junit = project.path().join("report.xml");
    project
        .gantry(&["run", "--junit", junit.to_str().unwrap()])
        .expect_code(0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("publish / inner / echo"), "{xml}");

    // The CI formats put the group's steps, named by its path, between
    // the group's start and its verdict.
    for format in ["github", "gitlab"] {
        let ci = project.gantry(&["run", "--format", format]);
        ci.expect_code(0)
            .stdout_has("main / publish [./steps/publish.yml]: step group started")
            .stdout_has("main / publish / inner / echo [probe]")
            .stdout_has("gantry: main / publish: ok")
            .stdout_lacks("did not finish");
    }

    // `gantry plan` shows the group's steps under it.
    let plan = project.gantry(&["plan"]);
    plan.expect_code(0)
        .stdout_has("group publish: ./steps/publish.yml (steps/publish.yml), its steps follow")
        .stdout_has("group publish / inner: ./steps/inner.yml (steps/inner.yml)")
        .stdout_has("publish / Say")
        .stdout_has("publish / inner / echo");
}

#[test]
fn rollback_hooks_inside_groups_join_the_saga_in_reverse_order() {
    let group = format!(
        "name: Deploy\nsteps:\n{}{}",
        recorded(2, "second", ""),
        recorded(2, "third", ", fail: true")
    );
    let project = project(
        &format!(
            "{}      - id: deploy\n        uses: ./deploy.yml\n{}",
            recorded(6, "first", ""),
            recorded(6, "never", "")
        ),
        &[("deploy.yml", &group)],
    );
    project.gantry(&["run"]).expect_code(1);
    assert_eq!(
        log(&project),
        [
            "run first",
            "run second",
            "run third",
            "rollback third outcome=failure state=saved-by-third",
            "rollback second outcome=success state=saved-by-second",
            "rollback first outcome=success state=saved-by-first",
        ]
    );
}

#[test]
fn a_run_killed_inside_a_group_is_rolled_back_by_resume() {
    let group = format!(
        "name: Deploy\nsteps:\n{}{}",
        recorded(2, "second", ""),
        recorded(2, "third", ", sleep: 30")
    );
    let make = || {
        project(
            &format!(
                "{}      - id: deploy\n        uses: ./deploy.yml\n",
                recorded(6, "first", "")
            ),
            &[("deploy.yml", &group)],
        )
    };
    // Kill the runner right after it journals that `deploy/third` started.
    let probe = make();
    let journal_point = {
        let mut child = probe.command(&["run"]).spawn().unwrap();
        let journal = loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let dir = probe.state_dir().join("runs");
            let text = std::fs::read_dir(&dir)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| std::fs::read_to_string(e.ok()?.path().join("journal.jsonl")).ok())
                .unwrap_or_default();
            if text.contains("deploy/third") {
                break text;
            }
        };
        child.kill().unwrap();
        child.wait().unwrap();
        journal
            .lines()
            .position(|line| line.contains("deploy/third"))
            .unwrap()
            + 1
    };
    let project = make();
    let run = project.gantry_with_env(
        &["run"],
        &[(
            "GANTRY_CRASH_AFTER_JOURNAL_WRITES",
            &journal_point.to_string(),
        )],
    );
    assert_eq!(run.code, -1, "the runner was killed: {}", run.stdout);
    assert_eq!(log(&project), ["run first", "run second"]);
    let resume = project.gantry(&["resume"]);
    assert!(resume.code == 0 || resume.code == 1, "{}", resume.stderr);
    let log = log(&project);
    assert_eq!(
        log[..2],
        ["run first".to_owned(), "run second".to_owned()],
        "{log:?}"
    );
    // The step killed mid-way started with a hook, so it is compensated
    // too: every hook once, in reverse order of start.
    let hooks: Vec<&str> = log
        .iter()
        .filter_map(|l| l.strip_prefix("rollback "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(hooks, ["third", "second", "first"], "{log:?}");
}

#[test]
fn the_calling_step_decides_if_continue_on_error_and_timeout() {
    let failing = "name: Failing\nsteps:\n  - uses: probe\n    with: { action: exit, code: 3 }\n  - id: skipped\n    uses: probe\n    with: { action: echo, message: never }\n";
    let sleeping =
        "name: Sleepy\nsteps:\n  - uses: probe\n    with: { action: sleep, seconds: 60 }\n";
    // `if:` false skips the whole group.
    let skipped = project(
        "      - uses: ./failing.yml\n        if: false\n",
        &[("failing.yml", failing)],
    );
    let outcome = skipped.gantry(&["run", "--format", "json"]);
    outcome.expect_code(0);
    assert!(
        !events(&outcome)
            .iter()
            .any(|e| e["event"] == "step_started"),
        "{}",
        outcome.stdout
    );
    // `continue-on-error` on the call: the group fails, the job does not.
    let tolerated = project(
        "      - id: g\n        uses: ./failing.yml\n        continue-on-error: true\n      - uses: probe\n        with: { action: echo, message: 'outcome ${{ steps.g.outcome }}' }\n",
        &[("failing.yml", failing)],
    );
    let outcome = tolerated.gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("message: outcome failure")
        .stdout_lacks("message: never");
    // Without it, the group's failure fails the run.
    let failed = project("      - uses: ./failing.yml\n", &[("failing.yml", failing)]);
    failed.gantry(&["run"]).expect_code(1);
    // `timeout-minutes` bounds the group as a whole.
    let slow = project(
        "      - uses: ./sleepy.yml\n        timeout-minutes: 0.02\n",
        &[("sleepy.yml", sleeping)],
    );
    let started = std::time::Instant::now();
    let outcome = slow.gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("the step group `Sleepy` reached its timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A manifest's steps, the files beside it, and what the error says.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn group_mistakes_stop_the_run_before_it_starts() {
    let cases: [Case; 8] = [
        (
            "      - uses: ./a.yml\n",
            &[
                ("a.yml", "name: A\nsteps:\n  - uses: ./b.yml\n"),
                ("b.yml", "name: B\nsteps:\n  - uses: ./a.yml\n"),
            ],
            "the step groups form a cycle: a.yml -> b.yml -> a.yml",
        ),
        (
            "      - uses: ./missing.yml\n",
            &[],
            "step group `missing.yml`: cannot read the step group",
        ),
        (
            "      - uses: ./../outside.yml\n",
            &[],
            "leaves the manifest's folder",
        ),
        (
            "      - uses: ./bad.yml\n",
            &[("bad.yml", "name: Bad\nstepz: []\n")],
            "bad.yml:2:1: unknown key `stepz`",
        ),
        (
            "      - uses: ./steps/publish.yml\n",
            &[("steps/publish.yml", PUBLISH), ("steps/inner.yml", INNER)],
            "needs input `message`, which is not given",
        ),
        (
            "      - uses: ./steps/publish.yml\n        with: { message: hi, mesage: typo }\n",
            &[("steps/publish.yml", PUBLISH), ("steps/inner.yml", INNER)],
            "has no input `mesage`",
        ),
        (
            "      - uses: ./g.yml\n",
            &[(
                "g.yml",
                "name: G\nsteps:\n  - uses: probe\n    with: { action: echo, message: '${{ inputs.nope }}' }\n",
            )],
            "g.yml:4:",
        ),
        (
            "      - uses: ./g.yml\n",
            &[(
                "g.yml",
                "name: G\nsteps:\n  - uses: probe\n    with: { action: echo, message: hi }\n    artifacts: { download: [nowhere] }\n",
            )],
            "g.yml:5:16: artifact `nowhere` is downloaded but no step uploads it",
        ),
    ];
    for (steps, files, expected) in cases {
        let project = project(steps, files);
        project.gantry(&["run"]).expect_code(2).stderr_has(expected);
    }
}

#[test]
fn a_group_may_pin_its_own_plugins() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.probe_plugin("tools/own.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - uses: ./g.yml\n        with: { message: hi }\n",
    ));
    let group = |pin: &str| {
        format!(
            "name: G\ninputs:\n  message: {{ required: true }}\nplugins:\n  own:\n    source: tools/own.wasm\n    sha256: {pin}\nsteps:\n  - uses: own\n    with: {{ action: echo, message: '${{{{ inputs.message }}}}' }}\n"
        )
    };
    project.write("g.yml", group(&sha));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("message: hi");
    project.write("g.yml", group(&"0".repeat(64)));
    project.gantry(&["run"]).expect_code(3);
    // Unpinned in the group file: `gantry lock` pins it in gantry.lock,
    // under the group's qualified alias.
    project.write(
        "g.yml",
        group(&sha).replace(&format!("    sha256: {sha}\n"), ""),
    );
    project.gantry(&["run"]).expect_code(3);
    project.gantry(&["lock"]).expect_code(0);
    let lock = std::fs::read_to_string(project.path().join("gantry.lock")).unwrap();
    assert!(lock.contains("g.yml:own"), "{lock}");
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("message: hi");
}

#[test]
fn a_group_file_linked_from_outside_the_folder_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("g.yml"),
        "name: G\nsteps:\n  - uses: probe\n    with: { action: echo, message: secret-outside }\n",
    )
    .unwrap();
    let project = project("      - uses: ./g.yml\n", &[]);
    std::os::unix::fs::symlink(outside.path().join("g.yml"), project.path().join("g.yml")).unwrap();
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("outside the manifest's folder")
        .stderr_lacks("secret-outside");
}
