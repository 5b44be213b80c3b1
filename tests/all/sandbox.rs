//! Deny by default: a step sees only what its manifest line grants.

use gantry_tests::probe_project;

use crate::single_wat_step;

#[test]
fn host_environment_is_not_inherited() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: env }\n        permissions:\n          env: [GANTRY_TEST_GRANTED]\n",
    );
    project
        .gantry_with_env(
            &["run"],
            &[
                ("GANTRY_TEST_SECRET", "s3cr3t"),
                ("GANTRY_TEST_GRANTED", "granted-value"),
            ],
        )
        .expect_code(0)
        .stdout_has("GANTRY_TEST_GRANTED=granted-value")
        .stdout_has("INPUT_ACTION=env")
        .stdout_has("GANTRY_PHASE=run")
        .stdout_has("GANTRY_WORKSPACE=/workspace")
        .stdout_has("GANTRY_ARTIFACTS=/artifacts")
        .stdout_has("GANTRY_OUTPUT=/gantry/output")
        .stdout_lacks("s3cr3t")
        .stdout_lacks("PATH=")
        .stdout_lacks("HOME=");
}

#[test]
fn workspace_is_read_only_by_default() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: read, path: /workspace/data.txt }\n\
         \x20     - uses: probe\n        with: { action: write, path: /workspace/data.txt, content: changed }\n",
    );
    project.write("data.txt", "original");
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("read ok: original")
        .stdout_has("write failed");
    assert_eq!(
        std::fs::read_to_string(project.path().join("data.txt")).unwrap(),
        "original"
    );
}

#[test]
fn workspace_write_and_none() {
    let project = probe_project(
        "      - uses: probe\n        permissions: { workspace: write }\n        with: { action: write, path: /workspace/data.txt, content: changed }\n\
         \x20     - uses: probe\n        permissions: { workspace: none }\n        with: { action: read, path: /workspace/data.txt }\n",
    );
    project.write("data.txt", "original");
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("write ok")
        .stdout_has("read failed");
    assert_eq!(
        std::fs::read_to_string(project.path().join("data.txt")).unwrap(),
        "changed"
    );
}

#[test]
fn granted_dirs_respect_their_access() {
    let project = probe_project(
        "      - uses: probe\n        permissions:\n          dirs:\n            - { host: ./out, guest: /out, access: write }\n        with: { action: write, path: /out/result.txt, content: made }\n\
         \x20     - uses: probe\n        permissions:\n          dirs: [{ host: ./out, guest: /out }]\n        with: { action: write, path: /out/other.txt, content: nope }\n\
         \x20     - uses: probe\n        with: { action: read, path: /out/result.txt }\n",
    );
    std::fs::create_dir(project.path().join("out")).unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("write ok")
        .stdout_has("write failed")
        .stdout_has("read failed");
    assert_eq!(
        std::fs::read_to_string(project.path().join("out/result.txt")).unwrap(),
        "made"
    );
    assert!(!project.path().join("out/other.txt").exists());
}

#[test]
fn a_missing_granted_dir_fails_the_step() {
    let project = probe_project(
        "      - uses: probe\n        permissions:\n          dirs: [{ host: ./absent, guest: /data }]\n        with: { action: echo }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("does not exist");
}

#[test]
fn paths_cannot_escape_their_mounts() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    let project = probe_project(&format!(
        "      - uses: probe\n        with: {{ action: read, path: /workspace/../{outside_name}/secret.txt }}\n\
         \x20     - uses: probe\n        with: {{ action: read, path: {outside}/secret.txt }}\n\
         \x20     - uses: probe\n        with: {{ action: read, path: /workspace/link/secret.txt }}\n\
         \x20     - uses: probe\n        permissions: {{ workspace: write }}\n        with: {{ action: read, path: /workspace/planted }}\n\
         \x20     - uses: probe\n        with: {{ action: list, path: / }}\n",
        outside = outside.path().display(),
        outside_name = outside.path().file_name().unwrap().to_string_lossy(),
    ));
    // Symlinks planted in the (writable) workspace, pointing out of it.
    std::os::unix::fs::symlink(outside.path(), project.path().join("link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        project.path().join("planted"),
    )
    .unwrap();
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(0).stdout_lacks("top secret");
    assert_eq!(
        outcome.stdout.matches("read failed").count(),
        4,
        "{}",
        outcome.stdout
    );
}

#[test]
fn tmp_is_private_to_each_step() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: write, path: /tmp/scratch.txt, content: mine }\n\
         \x20     - uses: probe\n        with: { action: read, path: /tmp/scratch.txt }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("write ok")
        .stdout_has("read failed");
}

#[test]
fn a_symlink_planted_over_a_step_file_is_not_followed() {
    let project = single_wat_step("plant_symlink.wat", "");
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("GANTRY_OUTPUT")
        .stdout_lacks("root:");
}
