//! Self-describing plugins (issue 5): `gantry plugin annotate`, `gantry
//! inspect`, and the checks of every step against its plugin's metadata
//! before anything runs.

use gantry_tests::{Outcome, Project};

use crate::fixture;

/// Metadata for the probe guest: `action` is required, `greeting` has a
/// default, and nothing else is accepted.
const PROBE_META: &str = r#"{
  "name": "probe",
  "description": "Does what its action says",
  "version": "1.0.0",
  "inputs": {
    "action": { "description": "what to do", "required": true },
    "message": { "description": "what to echo" },
    "greeting": { "description": "a defaulted input", "default": "hi there" },
    "count": { "default": 3 }
  },
  "outputs": { "message": { "description": "the echoed message" } },
  "permissions": { "workspace": "none" }
}"#;

/// A project holding the probe guest annotated with `meta` as `probe.wasm`,
/// a manifest made of `steps` (list items indented by six spaces), and a
/// lock file pinning the annotated module.
fn annotated_probe(meta: &str, steps: &str) -> Project {
    let project = Project::new();
    project.probe_plugin("plain.wasm");
    project.write("meta.json", meta);
    project
        .gantry(&[
            "plugin",
            "annotate",
            "plain.wasm",
            "meta.json",
            "-o",
            "probe.wasm",
        ])
        .expect_code(0);
    project.manifest(&format!(
        "name: meta\nplugins:\n  probe:\n    source: probe.wasm\njobs:\n  main:\n    steps:\n{steps}"
    ));
    project.gantry(&["lock"]).expect_code(0);
    project
}

fn run(project: &Project) -> Outcome {
    project.gantry(&["run"])
}

#[test]
fn annotate_and_inspect_a_wat_module() {
    let project = Project::new();
    project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.write("meta.json", PROBE_META);
    let plain = project.gantry(&["inspect", "hello.wasm"]);
    plain
        .expect_code(0)
        .stdout_has("metadata: none (no `gantry:step` section)")
        .stdout_has("wasi_snapshot_preview1::fd_write (function)");

    // OUT may be the input file itself; annotating twice replaces.
    for _ in 0..2 {
        project
            .gantry(&[
                "plugin",
                "annotate",
                "hello.wasm",
                "meta.json",
                "-o",
                "hello.wasm",
            ])
            .expect_code(0)
            .stdout_has("wrote hello.wasm");
    }
    let bytes = std::fs::read(project.path().join("hello.wasm")).unwrap();
    let sha = gantry_tests::sha256_hex(&bytes);
    project
        .gantry(&["inspect", "hello.wasm"])
        .expect_code(0)
        .stdout_has("name: probe")
        .stdout_has("version: 1.0.0")
        .stdout_has("description: Does what its action says")
        .stdout_has("action (required): what to do")
        .stdout_has("greeting (default: \"hi there\"): a defaulted input")
        .stdout_has("count (default: 3)")
        .stdout_has("message: the echoed message")
        .stdout_has("rollback: no")
        .stdout_has("workspace: none")
        .stdout_has("wasi_snapshot_preview1::fd_write (function)")
        .stdout_has(&format!("size: {} bytes", bytes.len()))
        .stdout_has(&format!("sha256: {sha}"));
    // The annotated module still runs.
    project.manifest(&format!(
        "name: m\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: hello\n        with: {{ action: x }}\n        permissions: {{ workspace: none }}\n"
    ));
    run(&project).expect_code(0).stdout_has("hello from wat");
}

#[test]
fn annotate_refuses_malformed_metadata_and_non_modules() {
    let project = Project::new();
    project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.write("bad.json", r#"{"description": "no name"}"#);
    project.write("good.json", r#"{"name": "x"}"#);
    project.write("text.wasm", "not a module");
    project
        .gantry(&[
            "plugin",
            "annotate",
            "hello.wasm",
            "bad.json",
            "-o",
            "out.wasm",
        ])
        .expect_code(2)
        .stderr_has("bad.json`: the `gantry:step` metadata is not valid: missing field `name`");
    project
        .gantry(&[
            "plugin",
            "annotate",
            "text.wasm",
            "good.json",
            "-o",
            "out.wasm",
        ])
        .expect_code(2)
        .stderr_has("not a WebAssembly module");
    assert!(!project.path().join("out.wasm").exists());
}

#[test]
fn an_unknown_input_is_refused_with_a_suggestion() {
    let project = annotated_probe(
        PROBE_META,
        "      - id: greet\n        uses: probe\n        with:\n          action: env\n          mesage: hello\n        permissions: { workspace: none }\n",
    );
    run(&project)
        .expect_code(2)
        .stderr_has("gantry.yml:12:11: unknown input `mesage` for step `greet` of job `main` (plugin `probe`)")
        .stderr_has("hint: did you mean `message`?")
        .stdout_lacks("INPUT_");
}

#[test]
fn a_missing_required_input_is_refused() {
    let project = annotated_probe(
        PROBE_META,
        "      - id: greet\n        uses: probe\n        with: { message: hello }\n        permissions: { workspace: none }\n",
    );
    run(&project)
        .expect_code(2)
        .stderr_has("gantry.yml:9:15: step `greet` of job `main` (plugin `probe`) is missing the required input `action` (what to do)")
        .stderr_has("nothing ran");
    // `gantry validate` runs the same checks once the plugins verify.
    project
        .gantry(&["validate"])
        .expect_code(2)
        .stderr_has("missing the required input `action`");
}

#[test]
fn an_ungranted_permission_is_refused() {
    let meta = r#"{"name": "probe", "permissions": {"workspace": "write", "env": ["DEPLOY_TOKEN"], "dirs": [{"guest": "/site", "access": "write"}]}}"#;
    let project = annotated_probe(meta, "      - uses: probe\n        with: { action: env }\n");
    run(&project)
        .expect_code(2)
        .stderr_has("needs write access to the workspace, but the step grants `read`")
        .stderr_has("needs the host environment variable `DEPLOY_TOKEN`")
        .stderr_has("needs write access to the folder `/site`, but the step mounts nothing there")
        .stderr_has("gantry.yml:8:15:");

    // Granting all of it is enough.
    project.write("site/.keep", "");
    project.manifest(
        "name: meta\nplugins:\n  probe:\n    source: probe.wasm\njobs:\n  main:\n    steps:\n      - uses: probe\n        with: { action: env }\n        permissions:\n          workspace: write\n          env: [DEPLOY_TOKEN]\n          dirs: [{ host: site, guest: /site, access: write }]\n",
    );
    project
        .gantry_with_env(&["run"], &[("DEPLOY_TOKEN", "t0ken")])
        .expect_code(0)
        .stdout_has("DEPLOY_TOKEN=t0ken");
    project
        .gantry(&["validate"])
        .expect_code(0)
        .stdout_has("steps checked against plugin metadata");
}

#[test]
fn defaults_reach_the_step_as_input_variables() {
    let project = annotated_probe(
        PROBE_META,
        "      - uses: probe\n        with: { action: env, count: 7 }\n        permissions: { workspace: none }\n",
    );
    run(&project)
        .expect_code(0)
        .stdout_has("INPUT_ACTION=env")
        .stdout_has("INPUT_GREETING=hi there")
        .stdout_has("INPUT_COUNT=7")
        .stdout_lacks("INPUT_MESSAGE=");
}

#[test]
fn malformed_metadata_in_a_pinned_plugin_stops_the_run() {
    let project = Project::new();
    // A module with two `gantry:step` sections.
    let wat = fixture("exit_zero.wat").replacen(
        "(module",
        "(module (@custom \"gantry:step\" \"{\\\"name\\\": \\\"a\\\"}\") (@custom \"gantry:step\" \"{\\\"name\\\": \\\"b\\\"}\")",
        1,
    );
    let sha = project.wat_plugin("step.wasm", &wat);
    project.manifest(&format!(
        "name: m\nplugins:\n  step:\n    source: step.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: step\n"
    ));
    run(&project)
        .expect_code(2)
        .stderr_has("plugin `step` (`step.wasm`): the module has 2 `gantry:step` custom sections; at most one is allowed");
    project
        .gantry(&["inspect", "step.wasm"])
        .expect_code(2)
        .stdout_has("metadata: unreadable");
}

#[test]
fn validate_warns_about_a_secret_the_plugin_never_reads() {
    let meta = r#"{"name": "probe", "env": {"API_TOKEN": {"description": "the token it sends"}}}"#;
    let project = annotated_probe(
        meta,
        "      - id: push\n        uses: probe\n        with: { action: env }\n        env:\n          API_TOKEN: ${{ secrets.TOKEN }}\n          DEBUG_TOKEN: ${{ secrets.TOKEN }}\n",
    );
    project
        .gantry(&["validate"])
        .expect_code(0)
        .stderr_has("warning: step `push` in job `main` passes secret `TOKEN` in `env: DEBUG_TOKEN`, which plugin `probe` never reads (it reads API_TOKEN)")
        .stderr_lacks("env: API_TOKEN`");
    project
        .gantry(&["inspect", "probe.wasm"])
        .expect_code(0)
        .stdout_has(
            "  env (variables of the step's `env:` it reads):\n    API_TOKEN: the token it sends",
        );
}

/// Issue 20, point 7: `steps.X.outputs.NAME` where X's plugin declares its
/// outputs and NAME is not one of them is a located error with a "did you
/// mean", for `validate` and for `run`, before anything runs.
#[test]
fn an_output_the_plugin_does_not_declare_is_an_error() {
    let meta = r#"{"name": "probe", "outputs": {"message": {"description": "what it echoed"}, "lines": {}}}"#;
    let project = annotated_probe(
        meta,
        "      - id: hello\n        uses: probe\n        with: { action: echo, message: hi }\n      - uses: probe\n        with: { action: echo, message: '${{ steps.hello.outputs.mesage }}' }\n      - uses: probe\n        with: { action: echo, message: '${{ steps.hello.outputs.message }}' }\n",
    );
    for command in ["validate", "run"] {
        project
            .gantry(&[command])
            .expect_code(2)
            .stderr_has(
                "step `hello` has no output `mesage`: its plugin's metadata does not declare it",
            )
            .stderr_has("hint: did you mean `message`?")
            .stderr_lacks("no output `message`")
            .stdout_lacks("message: hi");
    }
}
