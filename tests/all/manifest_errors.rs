//! Bad manifests are rejected before anything runs: exit 2, with the file,
//! line and column, the offending name, and a hint.

use gantry_tests::Project;

use crate::fixture;

/// A project whose `hello` plugin is pinned, with `jobs` given as YAML.
fn project_with_jobs(jobs: &str) -> Project {
    let project = Project::new();
    let sha = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.manifest(&format!(
        "name: errors\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: {sha}\njobs:\n{jobs}"
    ));
    project
}

#[test]
fn unknown_key_with_suggestion() {
    project_with_jobs("  build:\n    steps:\n      - uses: hello\n        timeout-minute: 1\n")
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:10:9: unknown key `timeout-minute`")
        .stderr_has("hint: did you mean `timeout-minutes`?")
        .stdout_lacks("hello from wat");
}

#[test]
fn unknown_plugin_alias_with_suggestion() {
    project_with_jobs("  build:\n    steps:\n      - uses: helo\n")
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:9:15: unknown plugin `helo`")
        .stderr_has("did you mean `hello`?");
}

#[test]
fn duplicate_step_ids() {
    project_with_jobs("  build:\n    steps:\n      - id: a\n        uses: hello\n      - id: a\n        uses: hello\n")
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:11:13: duplicate step id `a` in job `build`");
}

#[test]
fn malformed_hash() {
    let project = Project::new();
    project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.manifest("name: x\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: ABC123\njobs:\n  b:\n    steps:\n      - uses: hello\n");
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:5:13: malformed sha256 `ABC123` for plugin `hello`")
        .stderr_has("64 lowercase hex");
}

#[test]
fn source_outside_the_manifest_folder() {
    let project = Project::new();
    for source in ["../elsewhere.wasm", "/etc/passwd", "sub/../../x.wasm"] {
        project.manifest(&format!(
            "name: x\nplugins:\n  hello:\n    source: {source}\njobs:\n  b:\n    steps:\n      - uses: hello\n"
        ));
        project
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has("gantry.yml:4:13: the source")
            .stderr_has("is outside the manifest's folder");
    }
    // A symlink inside the folder that points out of it.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.wasm"), b"\0asm").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("evil.wasm"),
        project.path().join("link.wasm"),
    )
    .unwrap();
    project.manifest("name: x\nplugins:\n  hello:\n    source: link.wasm\njobs:\n  b:\n    steps:\n      - uses: hello\n");
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("is outside the manifest's folder");
}

#[test]
fn broken_yaml() {
    let project = Project::new();
    project.manifest("name: x\njobs:\n  b:\n    steps: [\n      - uses: hello\n");
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(2).stderr_has("gantry.yml:");
}

#[test]
fn missing_required_key() {
    let project = Project::new();
    project.manifest("plugins: {}\njobs: {}\n");
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("missing required key `name`");
}

#[test]
fn unknown_step_reference_in_an_expression() {
    project_with_jobs("  build:\n    steps:\n      - uses: hello\n        with:\n          x: ${{ steps.nope.outputs.y }}\n")
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("`steps.nope` is not an earlier step of this job");
}

#[test]
fn broken_expression_points_inside_it() {
    project_with_jobs(
        "  build:\n    steps:\n      - uses: hello\n        with:\n          x: ${{ env.A == }}\n",
    )
    .gantry(&["run"])
    .expect_code(2)
    .stderr_has("gantry.yml:11:")
    .stderr_has("in an expression");
}

#[test]
fn needs_unknown_job_and_cycles() {
    project_with_jobs("  a:\n    needs: zzz\n    steps:\n      - uses: hello\n")
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("job `a` needs `zzz`, which is not a job");
    project_with_jobs(
        "  a:\n    needs: b\n    steps:\n      - uses: hello\n  b:\n    needs: [a]\n    steps:\n      - uses: hello\n",
    )
    .gantry(&["run"])
    .expect_code(2)
    .stderr_has("form a cycle: a -> b -> a");
}

#[test]
fn several_errors_are_reported_together() {
    let outcome = project_with_jobs(
        "  build:\n    steps:\n      - uses: nope\n      - uses: hello\n        timeout-minutes: -1\n",
    )
    .gantry(&["validate"]);
    outcome
        .expect_code(2)
        .stderr_has("unknown plugin `nope`")
        .stderr_has("`timeout-minutes` must be a positive");
}

#[test]
fn no_manifest_in_the_folder() {
    Project::new()
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml: cannot read the manifest")
        .stderr_has("hint:");
}

#[test]
fn usage_errors_exit_2() {
    Project::new()
        .gantry(&["run", "--no-such-flag"])
        .expect_code(2);
    Project::new().gantry(&["frobnicate"]).expect_code(2);
}

#[test]
fn validate_warns_about_valid_but_doubtful_manifests() {
    let project = Project::new();
    let sha = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.manifest(&format!(
        "name: lints\nplugins:\n  hello: {{ source: hello.wasm, sha256: {sha} }}\n  spare: {{ source: hello.wasm, sha256: {sha} }}\njobs:\n  build:\n    steps:\n      - name: writer\n        uses: hello\n        permissions: {{ workspace: write }}\n"
    ));
    project
        .gantry(&["validate"])
        .expect_code(0)
        .stderr_has("warning: plugin `spare` is declared but no step uses it")
        .stderr_has("warning: step `writer` in job `build` may write to /workspace but has no `rollback:` hook");
}
