//! Bad manifests are rejected before anything runs: exit 2, with the file,
//! line and column, the offending name, and a hint.

use std::process::Stdio;
use std::time::{Duration, Instant};

use gantry_tests::{Outcome, Project};

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

#[test]
fn broken_yaml_names_the_exact_line_and_column() {
    // Line 9 of the manifest is the step's line; each problem is pointed at.
    for (step, location) in [
        (
            "      - uses: hello: world\n",
            "gantry.yml:9:20: mapping values are not allowed in this context",
        ),
        ("      - uses: \"hello\n", "gantry.yml:9:15: unclosed quote"),
        (
            "      - uses: hello\n        with: { a: 1, b: ]\n",
            "gantry.yml:10:15: mismatched bracket '{' closed by ']'",
        ),
    ] {
        project_with_jobs(&format!("  build:\n    steps:\n{step}"))
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has(location)
            .stdout_lacks("hello from wat");
    }
}

/// Runs `gantry args` in `project` and returns what it printed, how long it
/// took and its peak resident memory in KiB (0 when it never held more
/// than the copy of this process it started as: then it cannot be told
/// apart, and is under the cap whenever this process is). Its address space is capped at
/// 4 GiB, so a runaway parse fails instead of exhausting the machine.
fn measured(project: &Project, args: &[&str]) -> (Outcome, Duration, u64) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;

    let mut command = project.command(args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and changes the child alone.
    unsafe {
        command.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            match libc::setrlimit(libc::RLIMIT_AS, &cap) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let inherited_kib = own_resident_kib();
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by `wait4` below, which also reports its memory"
    )]
    let mut child = command.spawn().expect("running gantry");
    let drain = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for this child alone, writing only the two locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "{}", std::io::Error::last_os_error());
    let took = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let outcome = Outcome {
        code,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    // The child starts as a copy of this (large, many-threaded) test
    // process, and Linux carries the copy's resident size into the
    // child's `ru_maxrss` across exec: only a peak above that copy (with
    // room for this process growing meanwhile) is gantry's own.
    let peak_kib = usage.ru_maxrss as u64;
    let own = if peak_kib > inherited_kib + 64 * 1024 {
        peak_kib
    } else {
        0
    };
    (outcome, took, own)
}

/// This process's resident memory now, in KiB (`VmRSS`).
fn own_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// Checks `gantry run` refused the manifest (exit 2) with `message`, within
/// seconds and without holding much memory.
#[track_caller]
fn refused_cheaply(project: &Project, message: &str) {
    let (outcome, took, peak_kib) = measured(project, &["run"]);
    outcome
        .expect_code(2)
        .stderr_has(message)
        .stdout_lacks("hello from wat");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        peak_kib < 256 * 1024,
        "gantry held {peak_kib} KiB\n{}",
        outcome.stderr
    );
}

/// "Billion laughs": ten levels of anchors, each aliasing the one before
/// nine times, in a matrix (which takes any YAML value). Expanded, it would
/// be 9^10 strings; the parser's budget stops it.
#[test]
fn an_alias_bomb_is_refused_quickly_and_in_little_memory() {
    let mut axes = String::from("        a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        axes.push_str(&format!(
            "        a{level}: &a{level} [{}]\n",
            vec![previous; 9].join(", ")
        ));
    }
    let project = project_with_jobs(&format!(
        "  build:\n    strategy:\n      matrix:\n{axes}    steps:\n      - uses: hello\n"
    ));
    refused_cheaply(&project, "the manifest holds too many values");
}

#[test]
fn very_deep_nesting_is_refused() {
    let depth = 100_000;
    let flow = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let project = project_with_jobs(&format!(
        "  build:\n    strategy:\n      matrix:\n        deep: {flow}\n    steps:\n      - uses: hello\n"
    ));
    refused_cheaply(&project, "recursion limit exceeded");

    let mut block = String::new();
    for level in 0..200 {
        block.push_str(&format!("{}- a:\n", " ".repeat(10 + 2 * level)));
    }
    let project = project_with_jobs(&format!(
        "  build:\n    strategy:\n      matrix:\n        deep:\n{block}    steps:\n      - uses: hello\n"
    ));
    refused_cheaply(&project, "the manifest is nested too deeply");
}

/// A manifest over the 4 MiB cap is refused without being parsed (one
/// that never ends, a device, is refused as one: see
/// `trust::a_manifest_or_lock_file_gantry_cannot_trust_is_never_read`).
#[test]
fn a_manifest_over_the_size_cap_is_refused() {
    let project = project_with_jobs("  build:\n    steps:\n      - uses: hello\n");
    let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    let padding = 4 * 1024 * 1024 + 1 - manifest.len();
    project.manifest(&format!("{manifest}#{}", "x".repeat(padding - 1)));
    refused_cheaply(
        &project,
        "gantry.yml: the manifest is 4194305 bytes; the limit is 4194304",
    );
}

/// Step ids are `[A-Za-z0-9_-]`: anything else is refused by name, before
/// anything runs.
#[test]
fn step_ids_outside_the_allowed_characters_are_refused() {
    let ids = [
        "has space",
        "dotted.id",
        "ünï",
        "semi;colon",
        "$(whoami)",
        "a/b",
    ];
    let steps: String = ids
        .iter()
        .map(|id| format!("      - id: '{id}'\n        uses: hello\n"))
        .collect();
    let outcome = project_with_jobs(&format!(
        "  build:\n    steps:\n      - id: fine_Id-2\n        uses: hello\n{steps}"
    ))
    .gantry(&["run"]);
    outcome
        .expect_code(2)
        .stderr_has("gantry.yml:11:13: invalid step id `has space`")
        .stderr_has("a step id uses only letters, digits, `-` and `_`")
        .stderr_lacks("`fine_Id-2`")
        .stdout_lacks("hello from wat");
    for id in ids {
        outcome.stderr_has(&format!("invalid step id `{id}`"));
    }
}

/// Issue 20, point 11: the YAML mistakes people make, each named for what
/// it is: a tab in the indentation (pointed at the tab, not the line
/// before), an empty manifest, and a lost `jobs:` line.
#[test]
fn common_yaml_mistakes_are_named() {
    let project = Project::new();
    project.manifest(
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\njobs:\n  build:\n    steps:\n\t- uses: hello\n",
    );
    project
        .gantry(&["validate"])
        .expect_code(2)
        .stderr_has("gantry.yml:8:1: YAML does not allow tabs for indentation")
        .stderr_has("hint: indent with spaces");
    for empty in ["", "\n\n", "# nothing yet\n"] {
        project.manifest(empty);
        project
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has("the manifest is empty")
            .stderr_lacks("end of input");
    }
    project.manifest(
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\n  build:\n    strategy:\n      matrix: { os: [a, b] }\n    steps:\n      - uses: hello\n",
    );
    project
        .gantry(&["validate"])
        .expect_code(2)
        .stderr_has(
            "gantry.yml:6:5: unknown key `strategy` in a plugin: `strategy` is a key of a job",
        )
        .stderr_has("the `jobs:` line above it is probably missing")
        .stderr_lacks("allowed");
}

/// Issue 20, point 7: references that would silently read as empty are
/// located errors with a "did you mean": a key the job's matrix lacks, an
/// output the needed job does not declare, and (for `run`; a warning for
/// `validate`) a secret nothing provides, unless guarded by `||`/`&&`.
#[test]
fn references_that_would_read_as_empty_are_caught() {
    project_with_jobs(
        "  build:\n    strategy:\n      matrix: { flavor: [plain, fancy] }\n    steps:\n      - uses: hello\n        with: { a: '${{ matrix.flavour }}' }\n  lone:\n    steps:\n      - uses: hello\n        with: { a: '${{ matrix.os }}' }\n",
    )
    .gantry(&["validate"])
    .expect_code(2)
    .stderr_has("gantry.yml:12:20: `matrix.flavour` is not a key of this job's matrix")
    .stderr_has("hint: did you mean `flavor`?")
    .stderr_has("`matrix.os` is not a key of this job's matrix")
    .stderr_has("hint: this job has no `strategy.matrix`");

    project_with_jobs(
        "  build:\n    outputs:\n      version: '1.0'\n    steps:\n      - uses: hello\n  ship:\n    needs: build\n    steps:\n      - uses: hello\n        with: { v: '${{ needs.build.outputs.verison }}', ok: '${{ needs.build.outputs.version }}' }\n",
    )
    .gantry(&["validate"])
    .expect_code(2)
    .stderr_has("gantry.yml:16:20: job `build` has no output `verison`")
    .stderr_has("hint: did you mean `version`?")
    .stderr_lacks("no output `version`");

    let secrets = project_with_jobs(
        "  build:\n    steps:\n      - uses: hello\n        with: { token: '${{ secrets.TOKEN }}', optional: \"${{ secrets.EXTRA || 'none' }}\" }\n",
    );
    secrets
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:10:17: `secrets.TOKEN` in step `hello` of job `build` is not provided by any `--secret` or `--secrets-file`, so it would be empty")
        .stderr_lacks("`secrets.EXTRA` in step")
        .stdout_lacks("hello from wat");
    secrets
        .gantry(&["run", "--secret", "TOKNE=abcd"])
        .expect_code(2)
        .stderr_has("hint: did you mean `TOKNE`?");
    secrets
        .gantry(&["validate"])
        .expect_code(0)
        .stderr_has("warning: gantry.yml:10:17: `secrets.TOKEN` in step `hello`")
        .stderr_lacks("`secrets.EXTRA` in step");
    secrets
        .gantry(&["validate", "--secret", "TOKEN=abcd"])
        .expect_code(0)
        .stderr_lacks("secrets.TOKEN");
}
