//! Pins are mandatory: `gantry lock` writes them, `gantry verify` checks
//! them, and a run with a missing or wrong pin exits 3 with nothing run.

use gantry_tests::{Project, sha256_hex};

use crate::fixture;

const UNPINNED: &str = "name: pins\nplugins:\n  hello:\n    source: plugins/hello.wasm\njobs:\n  build:\n    steps:\n      - uses: hello\n";

fn unpinned_project() -> (Project, String) {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    project.manifest(UNPINNED);
    (project, sha)
}

#[test]
fn an_unpinned_plugin_never_runs() {
    let (project, _) = unpinned_project();
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("plugin `hello` (`plugins/hello.wasm`) is not pinned")
        .stderr_has("gantry lock")
        .stdout_lacks("hello from wat");
    project.gantry(&["verify"]).expect_code(3);
}

#[test]
fn lock_then_run_then_tamper() {
    let (project, sha) = unpinned_project();
    project
        .gantry(&["lock"])
        .expect_code(0)
        .stdout_has(&format!("pinned  hello (plugins/hello.wasm): sha256 {sha}"));
    let lock = std::fs::read_to_string(project.path().join("gantry.lock")).unwrap();
    assert!(lock.contains(&sha), "{lock}");
    project
        .gantry(&["verify"])
        .expect_code(0)
        .stdout_has(&format!("ok      hello sha256:{sha}"));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
    project
        .gantry(&["lock"])
        .expect_code(0)
        .stdout_has("gantry.lock is up to date");

    // Change the plugin: everything refuses it until it is re-pinned.
    let new_sha = project.wat_plugin("plugins/hello.wasm", &fixture("exit_zero.wat"));
    let mismatch = format!("expected sha256 {sha}, found {new_sha}");
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&mismatch)
        .stdout_lacks("hello from wat");
    project
        .gantry(&["verify"])
        .expect_code(3)
        .stderr_has(&mismatch);
    project
        .gantry(&["lock"])
        .expect_code(3)
        .stderr_has("gantry lock --update");
    assert_eq!(
        std::fs::read_to_string(project.path().join("gantry.lock")).unwrap(),
        lock
    );

    project
        .gantry(&["lock", "--update"])
        .expect_code(0)
        .stdout_has(&format!("updated hello: {sha} -> {new_sha}"));
    project.gantry(&["run"]).expect_code(0);
}

#[test]
fn inline_pins_are_checked() {
    let project = Project::new();
    let sha = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    let wrong = sha256_hex(b"something else");
    project.manifest(&format!(
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: {wrong}\njobs:\n  b:\n    steps:\n      - uses: hello\n"
    ));
    // Issue 20, point 10: the hint is the fix that works for an inline
    // pin, not `gantry lock --update` (which refuses to edit it).
    let fix = format!("write `sha256: {sha}` in the manifest");
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!(
            "does not match its pin in the manifest: expected sha256 {wrong}, found {sha}"
        ))
        .stderr_has(&fix)
        .stderr_lacks("run `gantry lock --update`");
    project
        .gantry(&["lock"])
        .expect_code(3)
        .stderr_has(&fix)
        .stderr_has("`gantry lock --update` does not edit inline pins");
}

#[test]
fn one_bad_plugin_stops_the_whole_run() {
    let project = Project::new();
    let sha = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.wat_plugin("other.wasm", &fixture("exit_zero.wat"));
    project.manifest(&format!(
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: {sha}\n  other:\n    source: other.wasm\njobs:\n  b:\n    steps:\n      - uses: hello\n      - uses: other\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stdout_lacks("hello from wat")
        .stderr_has("nothing ran");
}

#[test]
fn a_missing_plugin_file_fails_verification() {
    let project = Project::new();
    project.manifest(UNPINNED);
    project
        .gantry(&["lock"])
        .expect_code(3)
        .stderr_has("cannot read `plugins/hello.wasm`");
}

/// Issue 20, point 10: a `source:` that names no file is said to be
/// missing, pinned or not, never "not pinned … run `gantry lock`".
#[test]
fn a_missing_source_is_named_as_missing_not_unpinned() {
    let project = Project::new();
    project.manifest(UNPINNED);
    for args in [&["run"][..], &["verify"]] {
        project
            .gantry(args)
            .expect_code(3)
            .stderr_has("plugin `hello`: its source `plugins/hello.wasm` does not exist")
            .stderr_has("`source:` is relative to the manifest's folder")
            .stderr_lacks("is not pinned")
            .stderr_lacks("gantry lock");
    }
}

#[test]
fn a_manifest_path_or_folder_can_be_given() {
    let (project, _) = unpinned_project();
    project.gantry(&["lock"]).expect_code(0);
    let elsewhere = Project::new();
    let folder = project.path().to_str().unwrap();
    let file = project.path().join("gantry.yml");
    elsewhere
        .gantry(&["run", folder])
        .expect_code(0)
        .stdout_has("hello from wat");
    elsewhere
        .gantry(&["run", file.to_str().unwrap()])
        .expect_code(0)
        .stdout_has("hello from wat");
}

/// `gantry verify` runs nothing, and checks every pin rather than stopping
/// at the first bad one: each tampered plugin is named, the good one is
/// listed as ok, and it exits 3.
#[test]
fn verify_checks_every_pin_and_runs_nothing() {
    let project = Project::new();
    let hello = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.wat_plugin("first.wasm", &fixture("hello.wat"));
    project.wat_plugin("last.wasm", &fixture("hello.wat"));
    let manifest = format!(
        "name: x\nplugins:\n  first:\n    source: first.wasm\n    sha256: {hello}\n  good:\n    source: hello.wasm\n    sha256: {hello}\n  last:\n    source: last.wasm\n    sha256: {hello}\njobs:\n  b:\n    steps:\n      - uses: first\n      - uses: good\n      - uses: last\n"
    );
    project.manifest(&manifest);
    project
        .gantry(&["verify"])
        .expect_code(0)
        .stdout_has(&format!("ok      first sha256:{hello}"))
        .stdout_has(&format!("ok      good sha256:{hello}"))
        .stdout_has(&format!("ok      last sha256:{hello}"))
        .stdout_lacks("hello from wat");

    // Tamper with the first and the last.
    let tampered = project.wat_plugin("first.wasm", &fixture("exit_zero.wat"));
    project.wat_plugin("last.wasm", &fixture("exit_zero.wat"));
    let mismatch = format!(
        "does not match its pin in the manifest: expected sha256 {hello}, found {tampered}"
    );
    project
        .gantry(&["verify"])
        .expect_code(3)
        .stderr_has(&format!("plugin `first` (`first.wasm`) {mismatch}"))
        .stderr_has(&format!("plugin `last` (`last.wasm`) {mismatch}"))
        .stderr_lacks("plugin `good`")
        .stdout_has(&format!("ok      good sha256:{hello}"))
        .stdout_lacks("hello from wat");
    assert!(!project.state_dir().exists(), "verifying left run state");
}
