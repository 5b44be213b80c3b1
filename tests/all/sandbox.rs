//! Deny by default: a step sees only what its manifest line grants.

use gantry_tests::{Project, probe_project};

use crate::{fixture, single_wat_step};

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
    outcome
        .expect_code(0)
        .stdout_lacks("top secret")
        // `/` is no folder of the guest's: nothing of the host's root shows.
        .stdout_has("list failed: No such file or directory")
        .stdout_lacks("list ok");
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

/// Each step starts from a fresh instance, with nothing an earlier step left
/// in its memory (initial or grown), its globals or its data segment, in
/// one job or the next: in a short run, which allocates on demand, and in
/// one long enough to pool, where memory slots are reused.
#[test]
fn each_step_starts_from_a_fresh_instance() {
    let pooled = gantry::sandbox::POOL_MIN_STEPS;
    for (first, second) in [(3, 2), (pooled / 2, pooled - pooled / 2)] {
        let project = Project::new();
        let sha = project.wat_plugin("slate.wasm", &fixture("fresh_instance.wat"));
        let steps = |count: usize| "      - uses: slate\n".repeat(count);
        project.manifest(&format!(
            "name: fresh\nplugins:\n  slate:\n    source: slate.wasm\n    sha256: {sha}\njobs:\n  first:\n    steps:\n{}  second:\n    needs: first\n    steps:\n{}",
            steps(first),
            steps(second)
        ));
        let outcome = project.gantry(&["run"]);
        outcome.expect_code(0).stdout_lacks("left-over");
        for check in [
            "memory size",
            "memory word",
            "grown page",
            "global",
            "data segment",
        ] {
            assert_eq!(
                outcome.stdout.matches(&format!("{check} clean")).count(),
                first + second,
                "{check}\n{}",
                outcome.stdout
            );
        }
    }
}

/// No network in v1: every socket call, on every descriptor a step has and
/// on some it has not, fails with an error the step sees, and the run
/// carries on.
#[test]
fn there_is_no_network() {
    let project = single_wat_step("sockets.wat", "");
    let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    project.manifest(&format!(
        "{manifest}      - name: after\n        uses: step\n"
    ));
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("sock_accept fd 3: errno 57")
        .stdout_has("sock_recv fd 3: errno 57")
        .stdout_has("sock_accept fd 8: errno 8")
        .stdout_has("ok   after");
    let calls: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|line| line.contains("sock_"))
        .collect();
    // Two steps, four calls, nine descriptors.
    assert_eq!(calls.len(), 2 * 4 * 9, "{}", outcome.stdout);
    for call in calls {
        assert!(
            call.ends_with(": errno 57") || call.ends_with(": errno 8"),
            "a socket call did not fail: {call}"
        );
    }
}

/// Runs `symlink_escape.wat` with `grants` (YAML for a step's keys) and
/// checks that its symlinks out of the folder lead nowhere while one inside
/// works; `folder` is the host side of the guest's first granted folder.
fn guest_symlinks_stay_inside(grants: &str, folder: &str) {
    let project = single_wat_step("symlink_escape.wat", grants);
    project.write(&format!("{folder}/inside.txt"), "inside content");
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("open inside.txt: errno 0\n    read: inside content")
        .stdout_has("open inside-link: errno 0\n    read: inside content")
        .stdout_lacks("root:");
    for link in ["up-link", "abs-link"] {
        assert!(
            !outcome.stdout.contains(&format!("open {link}: errno 0")),
            "{link} was opened\n{}",
            outcome.stdout
        );
        assert!(
            outcome.stdout.contains(&format!("open {link}: errno ")),
            "{}",
            outcome.stdout
        );
    }
    // The links were planted in the granted folder, the one leading out
    // included: only following it was refused.
    for link in ["inside-link", "up-link"] {
        let planted = project.path().join(folder).join(link);
        assert!(
            planted.symlink_metadata().is_ok_and(|m| m.is_symlink()),
            "{link} was not planted\n{}",
            outcome.stdout
        );
    }
}

#[test]
fn symlinks_a_guest_plants_in_the_workspace_lead_nowhere_outside() {
    guest_symlinks_stay_inside("        permissions: { workspace: write }\n", ".");
}

#[test]
fn symlinks_a_guest_plants_in_a_granted_dir_lead_nowhere_outside() {
    guest_symlinks_stay_inside(
        "        permissions:\n          workspace: none\n          dirs: [{ host: ./out, guest: /out, access: write }]\n",
        "out",
    );
}

/// Where the instance pool's address space cannot be reserved (a
/// `ulimit -v`, as some CI hosts set), a run long enough to pool allocates
/// its steps on demand instead, with a line saying so, and works the same.
#[test]
fn without_room_for_the_pool_steps_are_allocated_on_demand() {
    let project = single_wat_step("hello.wat", "");
    let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    project.manifest(&format!(
        "{manifest}{}",
        "      - uses: step\n".repeat(gantry::sandbox::POOL_MIN_STEPS)
    ));
    let cache = tempfile::tempdir().unwrap();
    let run = |limit: &str| {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" run --max-parallel 4"))
            .arg(gantry_tests::gantry_bin())
            .current_dir(project.path())
            .env("XDG_CACHE_HOME", cache.path())
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .output()
            .expect("running gantry under sh");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Four slots need about 17 GiB of address space; 6 GiB leaves room
    // for one memory allocated on demand.
    let (code, stdout, stderr) = run("ulimit -v 6291456 && ");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("hello from wat"), "{stdout}");
    assert!(
        stderr.contains("cannot reserve the instance pool")
            && stderr.contains("allocated on demand"),
        "{stderr}"
    );
    let (code, _, stderr) = run("");
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("instance pool"), "{stderr}");
}

/// One step cannot hold the host's descriptors: past `limits.files` open
/// at once (default 256) it fails with the limit named, and the steps
/// after it, and the runner, carry on.
#[test]
fn a_step_holding_too_many_files_open_fails_naming_the_limit() {
    let open = |count: u32, limits: &str| {
        format!(
            "      - uses: probe\n        with: {{ action: open, path: /workspace/gantry.yml, count: {count} }}\n{limits}"
        )
    };
    let project = gantry_tests::probe_project(&format!(
        "{}{}{}",
        open(256, ""),
        open(120, "        limits: { files: 120 }\n"),
        open(100_000, "        continue-on-error: true\n")
    ));
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("opened 256")
        .stdout_has("opened 120")
        .stdout_has("opened more than 256 files at once, its limit; raise it with `limits.files`");
    let project = gantry_tests::probe_project(&open(121, "        limits: { files: 120 }\n"));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("opened more than 120 files at once");
}

/// A step's private `/tmp` and upload folders hold at most `limits.disk-mb`
/// (default 1024 MiB) together: a step past it is stopped while it runs
/// (here it would sleep for a minute after writing), or fails when it
/// ends, naming the limit; what it wrote goes with its folders.
#[test]
fn a_step_filling_its_folders_past_the_disk_limit_fails_naming_it() {
    let fill = |path: &str, extra: &str| {
        format!(
            "      - uses: probe\n        with: {{ action: fill, path: {path}, kib: 3072{extra} }}\n        limits: {{ disk-mb: 2 }}\n        artifacts: {{ upload: [site] }}\n        continue-on-error: true\n"
        )
    };
    let project = gantry_tests::probe_project(&format!(
        "{}{}{}",
        fill("/tmp/big", ", then_sleep: 60"),
        fill("/artifacts/site/big", ""),
        "      - uses: probe\n        with: { action: fill, path: /tmp/fine, kib: 3072 }\n        limits: { disk-mb: 4 }\n"
    ));
    let started = std::time::Instant::now();
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(0).stdout_has("filled 3072 KiB");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "the sleeping step was not stopped"
    );
    assert_eq!(
        outcome
            .stdout
            .matches("wrote more than 2 MiB to its /tmp and upload folders, its limit; raise it with `limits.disk-mb`")
            .count(),
        2,
        "{}",
        outcome.stdout
    );
    let blobs = project.state_dir().join("store/blobs");
    assert_eq!(std::fs::read_dir(&blobs).map_or(0, |s| s.count()), 0);
}
