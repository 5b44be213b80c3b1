//! Pipelines as GitHub Actions runs them: jobs as a parallel DAG, job
//! outputs and `needs`, conditions, matrices, retries, secrets, one run at
//! a time per state folder, `gantry plan` and `gantry run --job`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use gantry_tests::{Project, gantry_bin};

/// A project with the probe plugin and the given `jobs:` body (YAML indented
/// by two spaces).
fn pipeline(jobs: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: dag\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n{jobs}"
    ));
    project
}

/// Two independent jobs whose steps succeed only if they run at the same
/// time: each waits up to `wait` seconds for the other's marker.
fn meeting_pair(wait: u32) -> Project {
    let step = |me: &str, peer: &str| {
        format!(
            "    steps:\n      - uses: probe\n        with: {{ action: meet, me: {me}, peer: {peer}, dir: /workspace, wait: {wait} }}\n        permissions: {{ workspace: write }}\n"
        )
    };
    pipeline(&format!(
        "  one:\n{}  two:\n{}",
        step("one", "two"),
        step("two", "one")
    ))
}

#[test]
fn independent_jobs_run_in_parallel() {
    // Whether the jobs overlap is observed by the steps themselves, not by
    // timing: the machine may be busy, so the wait is generous.
    meeting_pair(60)
        .gantry(&["run", "--max-parallel", "2"])
        .expect_code(0)
        .stdout_has("met two")
        .stdout_has("met one");
    meeting_pair(1)
        .gantry(&["run", "--max-parallel", "1"])
        .expect_code(1)
        .stdout_has("alone");
}

/// Two jobs each capped at 64 MiB run together within a 128 MiB budget,
/// but not within 100 MiB: the second waits for the first (it does not
/// fail for lack of room), so the first waits for it alone. A step whose own
/// cap exceeds the budget is refused before anything runs.
#[test]
fn steps_run_together_only_while_their_memory_caps_fit_the_budget() {
    let capped = |wait: u32| {
        let project = meeting_pair(wait);
        let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
        project.manifest(&manifest.replace(
            "        permissions:",
            "        limits: { memory-mb: 64 }\n        permissions:",
        ));
        project
    };
    capped(60)
        .gantry(&["run", "--max-parallel", "2", "--memory-budget", "128"])
        .expect_code(0)
        .stdout_has("met two")
        .stdout_has("met one");
    let outcome = capped(1).gantry(&["run", "--max-parallel", "2", "--memory-budget", "100"]);
    // The first to start waits alone; the other starts once it ended.
    outcome.expect_code(1).stdout_has("alone");
    capped(1)
        .gantry(&["run", "--memory-budget", "32"])
        .expect_code(2)
        .stderr_has("gantry.yml:")
        .stderr_has("may use 64 MiB of memory (`limits.memory-mb`), more than the run's memory budget of 32 MiB")
        .stderr_has("--memory-budget MB")
        .stdout_lacks("job ");
}

#[test]
fn job_outputs_and_results_flow_through_needs() {
    pipeline(
        "  build:\n    outputs:\n      version: ${{ steps.make.outputs.message }}\n    steps:\n      - id: make\n        uses: probe\n        with: { action: echo, message: v1.2.3 }\n\
         \x20 release:\n    needs: build\n    steps:\n      - uses: probe\n        with:\n          action: print\n          text: 'releasing ${{ needs.build.outputs.version }} after ${{ needs.build.result }}'\n",
    )
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("releasing v1.2.3 after success");
}

#[test]
fn a_failed_need_skips_its_dependents_unless_their_if_asks() {
    pipeline(
        "  broken:\n    steps:\n      - uses: probe\n        with: { action: exit, code: 4 }\n\
         \x20 dependent:\n    needs: [broken]\n    steps:\n      - uses: probe\n        with: { action: print, text: dependent-ran }\n\
         \x20 cleanup:\n    needs: [broken]\n    if: failure()\n    steps:\n      - uses: probe\n        with: { action: print, text: 'cleanup saw ${{ needs.broken.result }}' }\n\
         \x20 report:\n    needs: [dependent]\n    if: ${{ always() }}\n    steps:\n      - uses: probe\n        with: { action: print, text: 'report saw ${{ needs.dependent.result }}' }\n\
         \x20 gated:\n    if: \"'a' == 'b'\"\n    steps:\n      - uses: probe\n        with: { action: print, text: gated-ran }\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("job dependent: skipped (it needs broken, which did not succeed)")
    .stdout_lacks("dependent-ran")
    .stdout_has("cleanup saw failure")
    .stdout_has("report saw skipped")
    .stdout_has("job gated: skipped (its `if:` condition is false)")
    .stdout_lacks("gated-ran");
}

#[test]
fn a_matrix_expands_with_include_and_exclude() {
    let outcome = pipeline(
        "  test:\n    strategy:\n      matrix:\n        os: [linux, mac]\n        version: [1, 2]\n        exclude:\n          - { os: mac, version: 1 }\n        include:\n          - { os: linux, extra: lts }\n          - { os: windows, version: 9 }\n    steps:\n      - uses: probe\n        with:\n          action: print\n          text: 'combo ${{ matrix.os }}-${{ matrix.version }}-${{ matrix.extra }} index ${{ strategy.job-index }} of ${{ strategy.job-total }}'\n",
    )
    .gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("job test (linux, 1, lts)")
        .stdout_has("[test (linux, 2, lts)]")
        .stdout_has("combo linux-1-lts index 0 of 4")
        .stdout_has("combo linux-2-lts index 1 of 4")
        .stdout_has("combo mac-2- index 2 of 4")
        .stdout_has("combo windows-9- index 3 of 4")
        .stdout_lacks("combo mac-1");
}

#[test]
fn fail_fast_cancels_the_other_combinations() {
    // The slow combination sleeps far longer than the run may take when it
    // is cancelled, so a busy machine cannot make this test lie.
    let jobs = |fail_fast: bool, slow: u32| {
        format!(
            "  test:\n    strategy:\n      fail-fast: {fail_fast}\n      matrix:\n        delay: [0, {slow}]\n    steps:\n      - uses: probe\n        with: {{ action: sleep, seconds: '${{{{ matrix.delay }}}}' }}\n      - uses: probe\n        if: matrix.delay == 0\n        with: {{ action: exit, code: 1 }}\n"
        )
    };
    let started = Instant::now();
    pipeline(&jobs(true, 120))
        .gantry(&["run", "--max-parallel", "2"])
        .expect_code(1)
        .stdout_has("FAIL probe")
        .stdout_has("cancelled")
        .stdout_has("job test: failure");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "fail-fast did not cancel"
    );

    pipeline(&jobs(false, 3))
        .gantry(&["run", "--max-parallel", "2"])
        .expect_code(1)
        .stdout_has("[test (3)]   ok   probe");
}

#[test]
fn max_parallel_bounds_a_matrix() {
    let project = pipeline(
        "  test:\n    strategy:\n      max-parallel: 1\n      matrix:\n        n: [a, b]\n    steps:\n      - uses: probe\n        with: { action: sleep, seconds: 1 }\n",
    );
    gantry_bin();
    let started = Instant::now();
    project
        .gantry(&["run", "--max-parallel", "4"])
        .expect_code(0);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn retries_back_off_and_stop_at_the_limit() {
    let flaky = |attempts: u32| {
        format!(
            "  main:\n    steps:\n      - uses: probe\n        retry: {{ attempts: {attempts}, backoff-seconds: 0.1 }}\n        permissions: {{ workspace: write }}\n        with: {{ action: flaky, path: /workspace/counter, succeed-on: 3 }}\n"
        )
    };
    let project = pipeline(&flaky(3));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("attempt 1 of 3 failed: exited with status 1; trying again in 100 ms")
        .stdout_has("attempt 2 of 3 failed: exited with status 1; trying again in 200 ms")
        .stdout_has("run 3: succeeding");

    let project = pipeline(&flaky(2));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("attempt 1 of 2 failed")
        .stdout_lacks("attempt 2 of 2 failed")
        .stdout_lacks("succeeding");
}

#[test]
fn a_job_timeout_bounds_all_its_steps() {
    pipeline(
        "  main:\n    timeout-minutes: 0.02\n    steps:\n      - uses: probe\n        with: { action: sleep, seconds: 30 }\n      - name: after\n        if: always()\n        uses: probe\n        with: { action: print, text: too-late }\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("the job reached its timeout of 1.2 s")
    .stdout_has("skip after: the job reached its timeout")
    .stdout_lacks("too-late");
}

#[test]
fn secrets_reach_only_the_steps_that_name_them_and_are_masked() {
    let project = pipeline(
        "  main:\n    steps:\n      - uses: probe\n        env: { TOKEN: '${{ secrets.TOKEN }}' }\n        with: { action: pieces, text: 'token=${{ secrets.TOKEN }} key=${{ secrets.API_KEY }} host=${{ secrets.FROM_HOST }}' }\n\
         \x20     - uses: probe\n        with: { action: env }\n\
         \x20     - uses: probe\n        with: { action: echo, message: '${{ secrets.TOKEN }}' }\n",
    );
    project.write("secrets.env", "# for the test\nAPI_KEY='key-from-file'\n");
    let outcome = project.gantry_with_env(
        &[
            "run",
            "--secret",
            "TOKEN=hunter2-value",
            "--secret",
            "FROM_HOST",
            "--secrets-file",
            "secrets.env",
        ],
        &[("FROM_HOST", "host-secret-value")],
    );
    outcome
        .expect_code(0)
        .stdout_has("pieces: token=*** key=*** host=***")
        .stdout_lacks("hunter2-value")
        .stdout_lacks("key-from-file")
        .stdout_lacks("host-secret-value")
        .stdout_has("message: ***");
    // The step that names no secret has no variable holding one.
    assert!(!outcome.stdout.contains("TOKEN="), "{}", outcome.stdout);
    let runs = project.state_dir().join("runs");
    for entry in walk(&runs) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains("hunter2-value"),
            "{} holds a secret",
            entry.display()
        );
    }
}

#[test]
fn secrets_are_refused_outside_a_step() {
    pipeline(
        "  main:\n    env:\n      LEAK: ${{ secrets.TOKEN }}\n    steps:\n      - uses: probe\n        if: secrets.TOKEN == 'x'\n        with: { action: env }\n",
    )
    .gantry(&["run", "--secret", "TOKEN=x"])
    .expect_code(2)
    .stderr_has("gantry.yml:9:13")
    .stderr_has("secrets cannot be used in a job's `env`")
    .stderr_has("secrets cannot be used in a step's `if`");
}

#[test]
fn a_missing_host_secret_is_a_usage_error() {
    pipeline("  main:\n    steps:\n      - uses: probe\n        with: { action: env }\n")
        .gantry(&["run", "--secret", "GANTRY_TEST_SURELY_UNSET"])
        .expect_code(2)
        .stderr_has("the host has no environment variable `GANTRY_TEST_SURELY_UNSET`");
}

#[test]
fn one_run_at_a_time_per_state_folder() {
    let project = pipeline(
        "  main:\n    steps:\n      - uses: probe\n        with: { action: sleep, seconds: 2 }\n",
    );
    let mut first = project
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let the first run take the lock.
    let lock = project.state_dir().join("run.lock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map_or(true, |pid| pid.trim().is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("another gantry run (pid")
        .stderr_has("--wait");
    // The lock is on the state folder itself: removing `run.lock` (which
    // only says who holds it) does not let a second run in.
    std::fs::remove_file(&lock).unwrap();
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("another gantry run");
    project.gantry(&["run", "--wait"]).expect_code(0);
    assert!(first.wait().unwrap().success());
    // The lock died with its holder: a plain run works again.
    project.gantry(&["run"]).expect_code(0);
}

#[test]
fn plan_shows_what_would_run() {
    let project = pipeline(
        "  build:\n    strategy:\n      max-parallel: 1\n      matrix:\n        os: [linux, mac]\n    steps:\n      - name: compile\n        uses: probe\n        timeout-minutes: 2\n        limits: { memory-mb: 64 }\n        retry: { attempts: 3, backoff-seconds: 2 }\n        permissions:\n          workspace: write\n          env: [HOME]\n        with: { action: env }\n\
         \x20 deploy:\n    needs: build\n    if: success()\n    steps:\n      - uses: probe\n        with: { action: env }\n",
    );
    let outcome = project.gantry(&["plan"]);
    outcome
        .expect_code(0)
        .stdout_has("job build\n  needs: nothing")
        .stdout_has("matrix: 2 combinations, 1 at a time, fail-fast")
        .stdout_has("    - build (linux)\n    - build (mac)")
        .stdout_has("  step compile\n    uses: probe sha256:")
        .stdout_has("(from the manifest)")
        .stdout_has("permissions: workspace write; host env HOME")
        .stdout_has("limits: memory 64 MiB, 256 open files, disk 1024 MiB, timeout 2 min, 3 attempts, backoff 2 s")
        .stdout_has("rollback: none")
        .stdout_has("job deploy\n  needs: build\n  if: success()");
    let build = outcome.stdout.find("job build").unwrap();
    let deploy = outcome.stdout.find("job deploy").unwrap();
    assert!(build < deploy);
    assert!(!project.state_dir().exists(), "planning wrote state");
}

#[test]
fn run_job_runs_it_and_what_it_needs() {
    let project = pipeline(
        "  base:\n    steps:\n      - uses: probe\n        with: { action: print, text: base-ran }\n\
         \x20 middle:\n    needs: base\n    steps:\n      - uses: probe\n        with: { action: print, text: middle-ran }\n\
         \x20 unrelated:\n    steps:\n      - uses: probe\n        with: { action: print, text: unrelated-ran }\n",
    );
    project
        .gantry(&["run", "--job", "middle"])
        .expect_code(0)
        .stdout_has("base-ran")
        .stdout_has("middle-ran")
        .stdout_lacks("unrelated-ran");
    project
        .gantry(&["run", "--job", "midle"])
        .expect_code(2)
        .stderr_has("there is no job `midle` in this pipeline; did you mean `middle`?");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn hash_files_reads_the_workspace() {
    use sha2::{Digest, Sha256};
    let project = pipeline(
        "  main:\n    steps:\n      - uses: probe\n        with: { action: print, text: \"hash ${{ hashFiles('config/*.txt') }} none '${{ hashFiles('nothing/**') }}'\" }\n",
    );
    project.write("config/a.txt", "alpha");
    project.write("config/b.txt", "beta");
    let mut outer = Sha256::new();
    for content in ["alpha", "beta"] {
        outer.update(Sha256::digest(content.as_bytes()));
    }
    let expected: String = outer
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has(&format!("hash {expected} none ''"));
}

/// A step without `limits` or `timeout-minutes` gets the documented
/// defaults, and `gantry plan` says which.
#[test]
fn plan_shows_the_default_limits() {
    pipeline("  build:\n    steps:\n      - uses: probe\n")
        .gantry(&["plan"])
        .expect_code(0)
        .stdout_has("  step probe\n")
        .stdout_has("    limits: memory 256 MiB, 256 open files, disk 1024 MiB, timeout 360 min\n");
}

/// A state folder removed under a live run is noticed at the next entry
/// its journal must make durable: the run stops and says why, instead of
/// going on with a compensation record that no longer exists.
#[test]
fn a_state_folder_removed_under_a_run_stops_it() {
    let project = pipeline(
        "  main:\n    steps:\n      - uses: probe\n        with: { action: sleep, seconds: 2 }\n        permissions: { workspace: write }\n        rollback: {}\n",
    );
    let child = project
        .command(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the step's guest is about to start (the run has made all its
    // folders), the state folder goes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let runs = project.state_dir().join("runs");
    let started = || {
        let run = std::fs::read_dir(&runs).ok()?.next()?.ok()?.path();
        let journal = std::fs::read_to_string(run.join("journal.jsonl")).ok()?;
        journal.contains("step_state_file").then_some(())
    };
    while started().is_none() {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(project.state_dir()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_ne!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("the journal was deleted while the run was writing it"),
        "{stdout}"
    );
}

/// Issue 20, point 9: a step's `name:` with `${{ }}` is expanded, as in
/// GitHub Actions, in the log, the CI formats and the JUnit report; a bad
/// reference in it is a located error before anything runs.
#[test]
fn step_names_expand_their_expressions() {
    let project = pipeline(
        "  build:\n    strategy:\n      matrix: { flavor: [plain, fancy] }\n    steps:\n      - id: first\n        uses: probe\n        with: { action: echo, message: hi }\n      - name: Stamp ${{ matrix.flavor }} after ${{ steps.first.outputs.message }}\n        uses: probe\n        with: { action: echo, message: stamped }\n",
    );
    let outcome = project.gantry(&["run", "--junit", "junit.xml"]);
    outcome
        .expect_code(0)
        .stdout_has("Stamp plain after hi")
        .stdout_has("Stamp fancy after hi")
        .stdout_lacks("${{");
    let junit = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<testcase name=\"Stamp fancy after hi\""),
        "{junit}"
    );
    project
        .gantry_with_env(&["run"], &[("GITHUB_ACTIONS", "true")])
        .expect_code(0)
        .stdout_has("::group::build (plain) / Stamp plain after hi [probe]");
    let bad = pipeline(
        "  build:\n    steps:\n      - name: Stamp ${{ steps.nope.outputs.x }}\n        uses: probe\n",
    );
    bad.gantry(&["validate"])
        .expect_code(2)
        .stderr_has("gantry.yml:9:")
        .stderr_has("nope");
}
