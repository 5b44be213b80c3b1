//! Artifacts between steps and jobs of one run: an upload is stored when
//! its step succeeds, a download mounts the run's latest upload read-only,
//! and every downloaded file is checked against its digest.

use std::time::{Duration, Instant};

use gantry_tests::Project;

fn pipeline(jobs: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: artifacts\nplugins:\n  probe: {{ source: probe.wasm, sha256: {sha} }}\njobs:\n{jobs}"
    ));
    project
}

const BUILD: &str = "  build:\n    steps:\n      - uses: probe\n        with: { action: write, path: /artifacts/site/index.txt, content: hello site }\n        artifacts: { upload: [site] }\n";

#[test]
fn an_upload_reaches_a_later_job_read_only() {
    let project = pipeline(&format!(
        "{BUILD}  release:\n    needs: build\n    steps:\n      - id: read\n        uses: probe\n        with: {{ action: read, path: /artifacts/site/index.txt }}\n        artifacts: {{ download: [site] }}\n      - uses: probe\n        with: {{ action: write, path: /artifacts/site/index.txt, content: changed }}\n        artifacts: {{ download: [site] }}\n      - uses: probe\n        with: {{ action: echo, message: 'got ${{{{ steps.read.outputs.text }}}}' }}\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("read ok: hello site")
        .stdout_has("write failed")
        .stdout_has("message: got hello site");
    project
        .gantry(&["artifacts"])
        .expect_code(0)
        .stdout_has("site");
}

#[test]
fn an_upload_folder_starts_empty_and_a_failed_step_stores_nothing() {
    let project = pipeline(
        "  build:\n    steps:\n      - uses: probe\n        with: { action: list, path: /artifacts/site }\n        artifacts: { upload: [site] }\n      - uses: probe\n        with: { action: exit, code: 3 }\n        artifacts: { upload: [broken] }\n        continue-on-error: true\n      - uses: probe\n        with: { action: read, path: /artifacts/broken/x }\n        artifacts: { download: [broken] }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("artifact `broken` was not uploaded in this run");
}

/// A retried step starts each attempt with empty upload folders, so what
/// it stores is what its successful attempt left, as on its first try.
#[test]
fn a_retry_starts_with_empty_upload_folders() {
    let project = pipeline(
        "  build:\n    steps:\n      - uses: probe\n        retry: { attempts: 3, backoff-seconds: 0.1 }\n        permissions: { workspace: write }\n        with: { action: flaky, path: /workspace/counter, succeed-on: 2, marks: /artifacts/out }\n        artifacts: { upload: [out] }\n  check:\n    needs: build\n    steps:\n      - uses: probe\n        with: { action: list, path: /artifacts/out }\n        artifacts: { download: [out] }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("run 2: succeeding")
        .stdout_has("attempt-2")
        .stdout_lacks("attempt-1");
}

#[test]
fn a_download_nobody_uploads_is_refused_before_anything_runs() {
    pipeline(
        "  main:\n    steps:\n      - uses: probe\n        with: { action: echo, message: hi }\n        artifacts: { download: [nothing] }\n",
    )
    .gantry(&["run"])
    .expect_code(2)
    .stderr_has("artifact `nothing` is downloaded but no step uploads it")
    .stdout_lacks("message: hi");
}

#[test]
fn a_corrupted_blob_fails_the_downloading_step_naming_the_file() {
    let project = pipeline(&format!(
        "{BUILD}  release:\n    needs: build\n    steps:\n      - uses: probe\n        with: {{ action: record, label: waiting, log: /workspace/log.txt, sleep: 3 }}\n        permissions: {{ workspace: write }}\n      - uses: probe\n        with: {{ action: read, path: /artifacts/site/index.txt }}\n        artifacts: {{ download: [site] }}\n"
    ));
    let child = project
        .command(&["run"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !project.path().join("log.txt").exists() {
        assert!(Instant::now() < deadline, "the waiting step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let blobs = project.state_dir().join("store/blobs");
    let mut corrupted = 0;
    for shard in std::fs::read_dir(&blobs).unwrap() {
        for blob in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = blob.unwrap().path();
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, "tampered").unwrap();
            corrupted += 1;
        }
    }
    assert_eq!(corrupted, 1);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("index.txt"), "{stdout}");
    assert!(stdout.contains("corrupt"), "{stdout}");
    assert!(!stdout.contains("read ok"), "{stdout}");
}

/// An upload larger than the artifact limit (`--artifact-limit`, 2 GiB by
/// default) fails its step before anything is copied into the store.
#[test]
fn an_upload_past_the_artifact_limit_is_refused_before_copying() {
    let project = pipeline(
        "  build:\n    steps:\n      - uses: probe\n        with: { action: fill, path: /artifacts/site/big.bin, kib: 3072 }\n        artifacts: { upload: [site] }\n",
    );
    project
        .gantry(&["run", "--artifact-limit", "2"])
        .expect_code(1)
        .stdout_has("filled 3072 KiB")
        .stdout_has("the upload holds 3 MiB, more than the limit of 2 MiB for one artifact")
        .stdout_has("--artifact-limit MB");
    let blobs = project.state_dir().join("store/blobs");
    let stored = std::fs::read_dir(&blobs).map_or(0, |shards| shards.count());
    assert_eq!(stored, 0, "nothing was copied into the store");
    project
        .gantry(&["run", "--artifact-limit", "4"])
        .expect_code(0);
}

/// Issue 20, point 8: the instances of a matrix job would each upload the
/// same name and silently replace each other; that is refused before
/// anything runs, pointing at the step. One combination is no conflict.
#[test]
fn matrix_instances_uploading_one_name_are_refused() {
    let job = |values: &str| {
        format!(
            "  build:\n    strategy:\n      matrix: {{ flavor: [{values}] }}\n    steps:\n      - uses: probe\n        with: {{ action: write, path: /artifacts/site/index.txt, content: hello }}\n        artifacts: {{ upload: [site] }}\n"
        )
    };
    let project = pipeline(&job("plain, fancy"));
    for command in ["validate", "run"] {
        project
            .gantry(&[command])
            .expect_code(2)
            .stderr_has("gantry.yml:11:20: the 2 instances of matrix job `build` would each upload artifact `site`, replacing each other's")
            .stdout_lacks("wrote");
    }
    pipeline(&job("plain")).gantry(&["run"]).expect_code(0);
}
