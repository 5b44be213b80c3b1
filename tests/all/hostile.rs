//! Hostile and broken guests: each fails its own step with a reason a
//! person understands, the run exits 1, and the runner stays healthy.

use std::time::{Duration, Instant};

use gantry_tests::{Project, probe_pipeline};

use crate::single_wat_step;

/// Runs a one-step pipeline and checks it failed with `reason`, and that a
/// step after it was skipped (the runner carried on normally).
fn contained(fixture: &str, extra: &str, reason: &str) {
    let project = single_wat_step(fixture, extra);
    let manifest = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    project.manifest(&format!(
        "{manifest}      - name: after\n        uses: step\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has(reason)
        .stdout_has("skip after: an earlier step failed")
        .stdout_has("gantry: run failed");
}

#[test]
fn infinite_loop_times_out() {
    let started = Instant::now();
    contained(
        "infinite_loop.wat",
        "        timeout-minutes: 0.01\n",
        "timed out after 600 ms",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn loop_in_the_start_function_times_out() {
    contained(
        "start_function_loop.wat",
        "        timeout-minutes: 0.01\n",
        "timed out after 600 ms",
    );
}

#[test]
fn a_guest_blocked_in_a_host_call_still_times_out() {
    let started = Instant::now();
    contained(
        "sleep_forever.wat",
        "        timeout-minutes: 0.01\n",
        "timed out after 600 ms",
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn memory_growth_past_the_cap_fails() {
    contained(
        "memory_bomb.wat",
        "        limits:\n          memory-mb: 16\n",
        "exceeded its memory limit of 16 MiB",
    );
}

#[test]
fn initial_memory_over_the_cap_fails() {
    contained(
        "huge_initial_memory.wat",
        "        limits:\n          memory-mb: 64\n",
        "exceeded its memory limit of 64 MiB",
    );
}

#[test]
fn stack_overflow_fails() {
    contained("stack_overflow.wat", "", "trapped: stack overflow");
}

#[test]
fn unreachable_fails() {
    contained("unreachable.wat", "", "trapped: `unreachable` executed");
}

#[test]
fn exit_codes_are_reported() {
    contained("exit_code.wat", "", "exited with status 7");
    single_wat_step("exit_zero.wat", "")
        .gantry(&["run"])
        .expect_code(0);
}

#[test]
fn a_non_wasi_import_is_refused_by_name() {
    contained(
        "foreign_import.wat",
        "",
        "it imports `env::launch_missiles`, which gantry does not provide",
    );
}

#[test]
fn an_unknown_wasi_function_is_refused_by_name() {
    contained("unknown_wasi_import.wat", "", "open_backdoor");
}

#[test]
fn a_module_without_start_is_refused() {
    contained("no_start.wat", "", "does not export `_start`");
}

#[test]
fn bytes_that_are_not_webassembly_are_refused() {
    let project = Project::new();
    project.write("step.wasm", b"#!/bin/sh\necho pwned\n");
    let sha = gantry_tests::sha256_hex(b"#!/bin/sh\necho pwned\n");
    project.manifest(&format!(
        "name: x\nplugins:\n  step:\n    source: step.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: step\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("not a valid WebAssembly module");
}

#[test]
fn output_flood_is_cut_and_fails() {
    let project = single_wat_step("output_flood.wat", "");
    let outcome = project.gantry(&["run", "--output-limit", "200000"]);
    outcome
        .expect_code(1)
        .stdout_has("printed more than its output cap of 200000 bytes");
    assert!(
        outcome.stdout.len() < 400_000,
        "the log was not cut: {} bytes",
        outcome.stdout.len()
    );
}

#[test]
fn rust_guest_flood_memory_and_stack() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - uses: probe\n        continue-on-error: true\n        with: { action: flood }\n\
         \x20     - uses: probe\n        continue-on-error: true\n        limits: { memory-mb: 32 }\n        with: { action: alloc, megabytes: 100 }\n\
         \x20     - uses: probe\n        continue-on-error: true\n        with: { action: recurse }\n\
         \x20     - uses: probe\n        continue-on-error: true\n        with: { action: panic }\n\
         \x20     - uses: probe\n        with: { action: echo, message: still-alive }\n",
    ));
    project
        .gantry(&["run", "--output-limit", "100000"])
        .expect_code(0)
        .stdout_has("printed more than its output cap")
        .stdout_has("exceeded its memory limit of 32 MiB")
        .stdout_has("trapped: out-of-bounds memory access (a stack overflow")
        .stdout_has("the probe was asked to panic")
        .stdout_has("message: still-alive");
}

#[test]
fn a_sleeping_rust_guest_times_out() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - uses: probe\n        timeout-minutes: 0.01\n        with: { action: sleep, seconds: 3600 }\n",
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("timed out");
}

/// Without `limits`, a step's memory is capped at the documented default.
#[test]
fn memory_growth_past_the_default_cap_fails() {
    contained(
        "memory_bomb.wat",
        "",
        "exceeded its memory limit of 256 MiB",
    );
}

/// Without `--output-limit`, a flood is cut at the documented default of
/// 4 MiB, and the log shows where.
#[test]
fn output_flood_is_cut_at_the_default_cap() {
    let project = single_wat_step("output_flood.wat", "");
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has(
            "[gantry] the log was cut here: the step printed more than its 4194304-byte output cap",
        )
        .stdout_has("printed more than its output cap of 4194304 bytes");
    let logged: usize = outcome
        .stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && line.bytes().all(|b| b == b'x'))
        .map(str::len)
        .sum();
    assert_eq!(logged, 4 * 1024 * 1024, "bytes of the flood logged");
}

/// The output cap counts stdout and stderr together: a flood on stderr is
/// cut, and so is output that passes the cap only when both streams are
/// added up.
#[test]
fn the_output_cap_counts_stdout_and_stderr_together() {
    // 100,000 bytes on stderr, then 100,000 on stdout, then `both written`.
    let project = single_wat_step("two_stream_output.wat", "");
    project
        .gantry(&["run", "--output-limit", "50000"])
        .expect_code(1)
        .stdout_has("[stderr] [gantry] the log was cut here")
        .stdout_has("printed more than its output cap of 50000 bytes");
    project
        .gantry(&["run", "--output-limit", "150000"])
        .expect_code(1)
        .stdout_has("printed more than its output cap of 150000 bytes")
        .stdout_lacks("both written");
    project
        .gantry(&["run", "--output-limit", "250000"])
        .expect_code(0)
        .stdout_has("both written");
}

/// A module importing anything but WASI is refused before any of its code
/// runs: neither its start function nor `_start` prints a thing.
#[test]
fn a_non_wasi_import_is_refused_before_any_code_runs() {
    single_wat_step("foreign_import_after_output.wat", "")
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("it imports `env::exfiltrate`, which gantry does not provide")
        .stdout_lacks("the start function ran")
        .stdout_lacks("_start ran");
}

/// A module of `functions` functions, each running `adds` additions on a
/// local, with a `_start` that returns: written as bytes directly, since
/// the text of a large one takes longer to parse than the test should.
fn many_functions(functions: u32, adds: usize) -> Vec<u8> {
    fn leb(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }
    let total = u64::from(functions) + 1;
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut module);
    let mut declared = Vec::new();
    leb(total, &mut declared);
    declared.resize(declared.len() + total as usize, 0);
    section(3, &declared, &mut module);
    section(5, &[1, 0, 1], &mut module);
    let mut exports = vec![1, 6];
    exports.extend_from_slice(b"_start\0");
    leb(u64::from(functions), &mut exports);
    section(7, &exports, &mut module);
    let mut body = vec![1, 1, 0x7f];
    for _ in 0..adds {
        body.extend_from_slice(&[0x20, 0, 0x41, 1, 0x6a, 0x21, 0]);
    }
    body.push(0x0b);
    let mut code = Vec::new();
    leb(total, &mut code);
    for _ in 0..functions {
        leb(body.len() as u64, &mut code);
        code.extend_from_slice(&body);
    }
    code.extend_from_slice(&[2, 0, 0x0b]);
    section(10, &code, &mut module);
    module
}

/// A compile bomb (a module of more functions than any step needs) is
/// measured before the compiler sees it and refused before any step runs,
/// naming the plugin, the limit and how to raise it; raising it on the
/// plugin admits it. A compilation past its deadline is refused the same
/// way.
#[test]
fn a_compile_bomb_is_refused_before_any_step_naming_the_limit() {
    let project = Project::new();
    let bomb = many_functions(100_001, 0);
    project.write("bomb.wasm", &bomb);
    let sha = gantry_tests::sha256_hex(&bomb);
    let manifest = |limits: &str| {
        format!(
            "name: bomb\nplugins:\n  bomb:\n    source: bomb.wasm\n    sha256: {sha}\n{limits}jobs:\n  main:\n    steps:\n      - uses: bomb\n"
        )
    };
    project.manifest(&manifest(""));
    project
        .gantry(&["run", "--no-cache"])
        .expect_code(2)
        .stderr_has("plugin `bomb` was refused: it has 100002 functions, more than the compile limit of 100000")
        .stderr_has("raise it with `limits: { functions: N }` on the plugin")
        .stderr_has("nothing ran")
        .stdout_lacks("job main");
    project.manifest(&manifest("    limits: { functions: 100002 }\n"));
    project.gantry(&["run", "--no-cache"]).expect_code(0);

    // Several seconds of compiling, against a deadline of one.
    let slow = many_functions(90_000, 20);
    project.write("bomb.wasm", &slow);
    let sha = gantry_tests::sha256_hex(&slow);
    project.manifest(&format!(
        "name: bomb\nplugins:\n  bomb:\n    source: bomb.wasm\n    sha256: {sha}\n    limits: {{ compile-seconds: 1 }}\njobs:\n  main:\n    steps:\n      - uses: bomb\n"
    ));
    project
        .gantry(&["run", "--no-cache"])
        .expect_code(2)
        .stderr_has("compiling it took longer than 1 s, its compile deadline")
        .stderr_has("`limits: { compile-seconds: N }`");
}
