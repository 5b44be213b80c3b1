//! Step ABI v1 through whole pipelines: inputs, outputs, exported env,
//! state, summaries, workflow commands and masking, expressions, and the
//! order jobs run in.

use gantry_tests::{Outcome, Project, probe_project};

#[test]
fn inputs_reach_the_step_as_input_variables() {
    probe_project(
        "      - uses: probe\n        with:\n          action: env\n          image-tag: v1.2\n          two words: yes\n          replicas: 3\n          enabled: true\n",
    )
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("INPUT_IMAGE_TAG=v1.2")
    .stdout_has("INPUT_TWO_WORDS=yes")
    .stdout_has("INPUT_REPLICAS=3")
    .stdout_has("INPUT_ENABLED=true");
}

#[test]
fn outputs_and_exported_env_flow_to_later_steps() {
    let project = probe_project(
        "      - id: first\n        uses: probe\n        with: { action: echo, message: hi-there }\n\
         \x20     - uses: probe\n        env:\n          FROM_OUTPUT: ${{ steps.first.outputs.message }}\n          LINES: ${{ steps.first.outputs.lines }}\n          OUTCOME: ${{ steps.first.outcome }}\n        with:\n          action: env\n          combined: ${{ steps.first.outputs.message }}-and-${{ env.EXPORTED_MESSAGE }}\n",
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("message: hi-there")
        .stdout_has("FROM_OUTPUT=hi-there")
        .stdout_has("EXPORTED_MESSAGE=hi-there")
        .stdout_has("INPUT_COMBINED=hi-there-and-hi-there")
        .stdout_has("LINES=first")
        .stdout_has("second")
        .stdout_has("OUTCOME=success");
}

#[test]
fn env_layers_pipeline_job_step() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: layers\nenv:\n  A: pipeline\n  B: pipeline\n  C: pipeline\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  main:\n    env:\n      B: job\n      C: job\n    steps:\n      - uses: probe\n        env:\n          C: step\n          D: ${{{{ env.A }}}}-${{{{ env.B }}}}\n        with: {{ action: env }}\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("A=pipeline")
        .stdout_has("B=job")
        .stdout_has("C=step")
        .stdout_has("D=pipeline-job");
}

#[test]
fn a_run_time_value_is_never_evaluated_again() {
    // The value reaches the first step's output from a file, so it is data
    // that merely looks like an expression.
    let project = probe_project(
        "      - id: first\n        uses: probe\n        with: { action: read, path: /workspace/value.txt }\n\
         \x20     - uses: probe\n        with:\n          action: print\n          text: got ${{ steps.first.outputs.text }}\n",
    );
    project.write("value.txt", b"${{ env.HOME }}");
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("got ${{ env.HOME }}");
}

#[test]
fn workflow_commands_are_honoured() {
    let text = "::notice::just so you know|::warning file=app.rs,line=3,col=7,title=Careful::watch out|::error::it broke%0Atwice|::debug::hidden detail|::group::Details|inside the group|::endgroup::|::set-output name=x::y|::add-mask::hunter2|the password is hunter2|::stop-commands::pause1|::warning::not a command now|::pause1::|::notice::back on";
    probe_project(&format!(
        "      - uses: probe\n        with:\n          action: print\n          text: \"{text}\"\n"
    ))
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("notice: just so you know")
    .stdout_has("warning: Careful: watch out (app.rs:3:7)")
    .stdout_has("error: it broke\ntwice")
    .stdout_lacks("hidden detail")
    .stdout_has("> Details")
    .stdout_has("      inside the group")
    .stdout_has("set-output")
    .stdout_has("the password is ***")
    .stdout_lacks("hunter2")
    .stdout_has("::warning::not a command now")
    .stdout_has("notice: back on");
}

#[test]
fn debug_lines_show_with_verbose() {
    probe_project(
        "      - uses: probe\n        with: { action: print, text: '::debug::hidden detail' }\n",
    )
    .gantry(&["run", "--verbose"])
    .expect_code(0)
    .stdout_has("debug: hidden detail");
}

#[test]
fn a_mask_applies_to_later_steps_and_failure_reasons() {
    probe_project(
        "      - uses: probe\n        with: { action: print, text: '::add-mask::opensesame' }\n\
         \x20     - uses: probe\n        with: { action: stderr, message: opensesame }\n",
    )
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("[stderr] to stderr: ***")
    .stdout_lacks("opensesame");
}

#[test]
fn summaries_are_collected_into_the_run_folder() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: echo, message: one }\n      - uses: probe\n        with: { action: echo, message: two }\n",
    );
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(0)
        .stdout_has("step summaries written to");
    let run = project.latest_run_dir();
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert_eq!(summary, "### probe says one\n### probe says two\n");
}

#[test]
fn failure_skips_the_rest_unless_asked() {
    probe_project(
        "      - uses: probe\n        with: { action: exit, code: 3 }\n\
         \x20     - name: skipped\n        uses: probe\n        with: { action: print, text: should-not-run }\n\
         \x20     - name: cleanup\n        if: failure()\n        uses: probe\n        with: { action: print, text: cleaning-up }\n\
         \x20     - name: always\n        if: ${{ always() }}\n        uses: probe\n        with: { action: print, text: always-runs }\n\
         \x20     - name: implicit\n        if: \"'a' == 'a'\"\n        uses: probe\n        with: { action: print, text: implicit-success-ran }\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("exited with status 3")
    .stdout_has("skip implicit: its `if:` condition is false")
    .stdout_lacks("implicit-success-ran")
    .stdout_has("skip skipped: an earlier step failed")
    .stdout_lacks("should-not-run")
    .stdout_has("cleaning-up")
    .stdout_has("always-runs");
}

#[test]
fn continue_on_error_keeps_the_run_green() {
    probe_project(
        "      - id: flaky\n        uses: probe\n        continue-on-error: true\n        with: { action: exit, code: 1 }\n\
         \x20     - uses: probe\n        with: { action: print, text: 'outcome ${{ steps.flaky.outcome }} conclusion ${{ steps.flaky.conclusion }}' }\n",
    )
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("[continue-on-error]")
    .stdout_has("outcome failure conclusion success");
}

#[test]
fn jobs_wait_for_their_needs_and_skip_when_they_failed() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: order\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  deploy:\n    needs: [build]\n    steps:\n      - uses: probe\n        with: {{ action: print, text: deploying }}\n  build:\n    steps:\n      - uses: probe\n        with: {{ action: exit, code: 1 }}\n  docs:\n    steps:\n      - uses: probe\n        with: {{ action: print, text: docs-built }}\n"
    ));
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("job deploy: skipped (it needs build, which did not succeed)")
        .stdout_has("docs-built")
        .stdout_lacks("deploying");
    // `docs` needs nothing and runs beside `build`; `deploy` waits for it.
    let build = outcome.stdout.find("job build: failure").unwrap();
    let deploy = outcome.stdout.find("job deploy").unwrap();
    assert!(build < deploy, "{}", outcome.stdout);
}

#[test]
fn a_malformed_output_file_fails_the_step() {
    probe_project("      - uses: probe\n        with: { action: write, path: /gantry/output, content: no-equals-sign }\n")
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("wrote an unusable step file")
        .stdout_has("GANTRY_OUTPUT");
}

/// The value of `variable` in what the `env` action of step `step` printed.
fn seen_by<'a>(outcome: &'a Outcome, step: &str, variable: &str) -> Option<&'a str> {
    let prefix = format!("{variable}=");
    outcome
        .step_log(step)
        .into_iter()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
}

/// The ABI's order, later wins: pipeline `env`, job `env`, values exported
/// earlier in the job, the step's own `env`. Exports stay in their job.
#[test]
fn exported_env_sits_between_job_env_and_step_env() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    let env_step = |name: &str| {
        format!("      - name: {name}\n        uses: probe\n        with: {{ action: env }}\n")
    };
    project.manifest(&format!(
        "name: precedence\nenv:\n  EXPORTED_MESSAGE: from-pipeline\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  first:\n    env:\n      EXPORTED_MESSAGE: from-job\n    steps:\n{}      - name: exporter\n        uses: probe\n        with: {{ action: echo, message: from-export }}\n{}      - name: own-env\n        uses: probe\n        env:\n          EXPORTED_MESSAGE: from-step\n        with: {{ action: env }}\n{}  second:\n    needs: first\n    steps:\n{}",
        env_step("before-export"),
        env_step("after-export"),
        env_step("after-own-env"),
        env_step("other-job"),
    ));
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(0);
    for (step, expected) in [
        ("before-export", "from-job"),
        ("after-export", "from-export"),
        ("own-env", "from-step"),
        ("after-own-env", "from-export"),
        ("other-job", "from-pipeline"),
    ] {
        assert_eq!(
            seen_by(&outcome, step, "EXPORTED_MESSAGE"),
            Some(expected),
            "in step {step}\n{}",
            outcome.stdout
        );
    }
}

/// `::set-output` is not honoured: outputs come only from `GANTRY_OUTPUT`.
#[test]
fn set_output_commands_make_no_output() {
    probe_project(
        "      - id: talker\n        uses: probe\n        with: { action: print, text: '::set-output name=x::smuggled' }\n\
         \x20     - uses: probe\n        with: { action: print, text: 'x is [${{ steps.talker.outputs.x }}]' }\n",
    )
    .gantry(&["run"])
    .expect_code(0)
    .stdout_has("x is []")
    .stdout_lacks("x is [smuggled]");
}

/// A value registered with `::add-mask::` is masked in a later step's
/// failure reason (a heredoc delimiter the step chose is quoted in it) and
/// in a later `::error::` annotation.
#[test]
fn a_mask_applies_to_failure_reasons_and_error_annotations() {
    probe_project(
        "      - uses: probe\n        with: { action: print, text: '::add-mask::opensesame' }\n\
         \x20     - uses: probe\n        with: { action: write, path: /gantry/output, content: \"x<<opensesame\\nvalue\\n\" }\n\
         \x20     - if: always()\n        uses: probe\n        with: { action: print, text: '::error title=about opensesame::opensesame failed' }\n",
    )
    .gantry(&["run"])
    .expect_code(1)
    .stdout_has("heredoc `***` opened on line 1 is never closed")
    .stdout_has("error: about ***: *** failed")
    .stdout_lacks("opensesame");
}
