//! Component steps: a WASI 0.2 component speaks the same step ABI as a
//! preview 1 module, and is pinned, cached, limited and reported alike.
//! The guest is the same `probe` as elsewhere, built for wasm32-wasip2.

use gantry_tests::{PROBE_COMPONENT_WASM, Project, probe_pipeline};

/// A project with the probe component as plugin `probe` and one job of
/// `steps`.
fn component_project(steps: &str) -> Project {
    let project = Project::new();
    let sha = project.plugin_from(PROBE_COMPONENT_WASM, "probe.wasm");
    project.manifest(&probe_pipeline(&sha, steps));
    project
}

#[test]
fn a_component_step_gets_inputs_and_sets_outputs_env_state_and_summary() {
    let project = component_project(
        "      - id: say\n        uses: probe\n        with: { action: echo, message: from-a-component }\n      - uses: probe\n        with: { action: env }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("message: from-a-component")
        // The second step sees what the first exported.
        .stdout_has("EXPORTED_MESSAGE=from-a-component")
        .stdout_has("GANTRY_PHASE=run");
    let summary = std::fs::read_to_string(project.latest_run_dir().join("summary.md")).unwrap();
    assert!(summary.contains("probe says from-a-component"), "{summary}");
}

#[test]
fn a_component_reads_its_workspace_and_cannot_write_it_by_default() {
    let project = component_project(
        "      - uses: probe\n        with: { action: read, path: /workspace/notes.txt }\n      - uses: probe\n        with: { action: write, path: /workspace/new.txt, content: x }\n",
    );
    project.write("notes.txt", b"kept in the workspace\n");
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("read ok: kept in the workspace")
        .stdout_has("write failed");
    assert!(!project.path().join("new.txt").exists());
}

#[test]
fn a_panicking_component_fails_its_own_step_with_the_reason() {
    let project = component_project(
        "      - uses: probe\n        with: { action: panic }\n      - name: after\n        uses: probe\n        with: { action: echo }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("the probe was asked to panic")
        .stdout_has("skip after: an earlier step failed");
}

#[test]
fn a_component_exiting_with_failure_fails_its_step() {
    // WASI 0.2's `exit` carries success or failure, not a number, and
    // Rust's standard library reports every nonzero `exit` through it:
    // the step sees status 1 (a guest calling 0.2.12's `exit-with-code`
    // would report its own).
    component_project("      - uses: probe\n        with: { action: exit, code: 7 }\n")
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("exited with status 1");
}

#[test]
fn a_looping_component_times_out() {
    let started = std::time::Instant::now();
    component_project(
        "      - uses: probe\n        with: { action: spin }\n        timeout-minutes: 0.01\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("timed out after 600 ms");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_component_past_its_memory_cap_fails_with_the_limit() {
    component_project(
        "      - uses: probe\n        with: { action: alloc, megabytes: 200 }\n        limits: { memory-mb: 32 }\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("exceeded its memory limit of 32 MiB");
}

#[test]
fn a_flooding_component_is_cut_at_the_output_cap() {
    component_project("      - uses: probe\n        with: { action: flood }\n")
        .gantry(&["run", "--output-limit", "10000"])
        .expect_code(1)
        .stdout_has("printed more than its output cap of 10000 bytes");
}

#[test]
fn a_compiled_component_is_cached_and_reused() {
    let project = component_project("      - uses: probe\n        with: { action: echo }\n");
    project.gantry(&["run"]).expect_code(0);
    let cache = project.cache_dir();
    let entries = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("the cache {} holds entries: {e}", cache.display()))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        })
        .count();
    assert_eq!(entries, 1, "one compiled component in {}", cache.display());
    // The second run loads it, with nothing to say about the cache.
    project
        .gantry(&["run"])
        .expect_code(0)
        .stderr_lacks("cached module");
}

#[test]
fn a_component_importing_what_gantry_does_not_provide_is_refused_by_name() {
    let project = Project::new();
    let bytes = wat::parse_str(
        r#"(component
             (import "acme:vault/secrets@1.0.0" (instance))
           )"#,
    )
    .unwrap();
    project.write("vault.wasm", &bytes);
    let sha = gantry_tests::sha256_hex(&bytes);
    project.manifest(&format!(
        "name: t\nplugins:\n  vault:\n    source: vault.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: vault\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("it imports `acme:vault/secrets@1.0.0`, which gantry does not provide");
}

#[test]
fn a_component_that_is_not_a_command_is_refused() {
    let project = Project::new();
    let bytes = wat::parse_str("(component)").unwrap();
    project.write("library.wasm", &bytes);
    let sha = gantry_tests::sha256_hex(&bytes);
    project.manifest(&format!(
        "name: t\nplugins:\n  library:\n    source: library.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: library\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("it does not export `wasi:cli/run`");
}

#[test]
fn inspect_shows_a_components_world() {
    let project = Project::new();
    project.plugin_from(PROBE_COMPONENT_WASM, "probe.wasm");
    project
        .gantry(&["inspect", "probe.wasm"])
        .expect_code(0)
        .stdout_has("kind: WASI 0.2 component")
        .stdout_has("wasi:cli/environment@0.2")
        .stdout_has("exports:\n    wasi:cli/run@0.2");
}

#[test]
fn a_rollback_hook_of_a_component_runs_with_its_saved_state() {
    let project = component_project(
        "      - id: deploy\n        uses: probe\n        with: { action: echo, message: hooked }\n        rollback: {}\n      - uses: probe\n        with: { action: exit, code: 3 }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("rollback")
        .stdout_has("message: hooked");
}
