//! Leaks and injections (issue 13, points 4–9): what a hostile step can
//! smuggle past masking, into the CI host's log, into the next step's
//! environment, or onto a terminal, each case pinned through the binary.

use gantry_tests::{Outcome, Project, probe_pipeline, probe_project};
use serde_json::Value;

/// Runs `project` in the human, GitHub and JSON formats.
fn in_three_formats(project: &Project, args: &[&str]) -> [(&'static str, Outcome); 3] {
    let run = |format: &str, env: &[(&str, &str)]| {
        let mut all = vec!["run", "--format", format];
        all.extend_from_slice(args);
        project.gantry_with_env(&all, env)
    };
    [
        ("human", run("human", &[])),
        ("github", run("github", &[("GITHUB_ACTIONS", "true")])),
        ("json", run("json", &[])),
    ]
}

/// The lines a CI host would read as workflow commands: those that start,
/// after blanks, with `::`.
fn command_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with("::"))
        .collect()
}

/// Point 4: a secret that straddles the 64 KiB point where a long line is
/// cut is masked on both sides of the cut, in every format.
#[test]
fn a_secret_split_at_the_64_kib_line_boundary_is_masked() {
    let secret = "SPLITSECRET42";
    let before = "x".repeat(65530);
    let after = "y".repeat(70000);
    let project = probe_project(&format!(
        "      - uses: probe\n        with: {{ action: print, text: '{before}${{{{ secrets.TOK }}}}' }}\n\
         \x20     - uses: probe\n        with: {{ action: print, text: '{before}${{{{ secrets.TOK }}}}{after}' }}\n"
    ));
    for (format, outcome) in in_three_formats(&project, &["--secret", &format!("TOK={secret}")]) {
        outcome.expect_code(0);
        // Under GitHub the `::add-mask::` line names it, once.
        let allowed = usize::from(format == "github");
        for piece in [secret, "SPLITS", "ECRET42", "SPLITSECRET", "SECRET42"] {
            assert_eq!(
                outcome.stdout.matches(piece).count(),
                allowed,
                "{format}: `{piece}` shown"
            );
        }
        assert!(outcome.stdout.contains("***"), "{format}: nothing masked");
    }
}

/// Point 5: gantry's own note about `::set-output` quotes the step's text,
/// and masks it: the run's secret, and a value the step registered.
#[test]
fn gantrys_own_notes_are_masked() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: print, text: '::add-mask::hunter22|::set-output name=${{ secrets.TOK }}::v|::save-state name=hunter22::v' }\n",
    );
    for (format, outcome) in in_three_formats(&project, &["--secret", "TOK=s3cr3t-value"]) {
        outcome
            .expect_code(0)
            .stdout_has("is not supported")
            .stdout_lacks("hunter22");
        let allowed = usize::from(format == "github");
        assert_eq!(
            outcome.stdout.matches("s3cr3t-value").count(),
            allowed,
            "{format}: the secret is shown\n{}",
            outcome.stdout
        );
    }
}

/// Point 6: a matrix value with a newline cannot put a workflow command at
/// the start of a line of the host's log.
#[test]
fn a_matrix_value_cannot_inject_a_host_annotation() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: test\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  build:\n    strategy:\n      matrix:\n        os: [\"linux\\n::error title=x::injected\", \"mac\\r\\n::warning::injected\"]\n    steps:\n      - uses: probe\n        with: {{ action: print, text: ok }}\n"
    ));
    let outcome = project.gantry_with_env(&["run"], &[("GITHUB_ACTIONS", "true")]);
    outcome
        .expect_code(0)
        .stdout_has("linux%0A::error title=x::injected");
    for line in command_lines(&outcome.stdout) {
        let forged = line.starts_with("::error title=x") || line.starts_with("::warning::");
        assert!(!forged, "injected: {line:?}");
    }
    assert!(!outcome.stdout.contains('\r'), "{:?}", outcome.stdout);
}

/// Point 6: a job output carrying a newline and `::stop-commands::` reaches
/// the host's log in the reason a job is skipped (the `if:` that reads it
/// fails and quotes it), escaped, never at the start of a line.
#[test]
fn a_job_output_cannot_stop_the_hosts_commands_through_a_skip_reason() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: test\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  first:\n    outputs:\n      v: ${{{{ steps.s.outputs.v }}}}\n    steps:\n      - id: s\n        uses: probe\n        with: {{ action: append, file: GANTRY_OUTPUT, content: \"v<<EOF\\n{{x\\n::stop-commands::pwned}}\\nEOF\\n\" }}\n  second:\n    needs: first\n    if: ${{{{ format(needs.first.outputs.v) == 'x' }}}}\n    steps:\n      - uses: probe\n        with: {{ action: print, text: never }}\n"
    ));
    for env in [("GITHUB_ACTIONS", "true"), ("GITLAB_CI", "true")] {
        let outcome = project.gantry_with_env(&["run"], &[env]);
        outcome
            .expect_code(1)
            .stdout_has("second skipped (its `if:` could not be evaluated")
            .stdout_has("%0A::stop-commands::pwned");
        for line in command_lines(&outcome.stdout) {
            let forged = line.starts_with("::stop-commands::pwned");
            assert!(!forged, "{env:?}: injected: {line:?}");
        }
    }
}

/// Point 6 (GitLab): a step cannot close gantry's collapsible section or
/// open one of its own with a forged marker.
#[test]
fn a_step_cannot_forge_a_gitlab_section_marker() {
    let outcome = probe_project(
        "      - uses: probe\n        with: { action: print, text: \"\\e[0Ksection_end:1:gantry_step_1\\r\\e[0K|\\e[0Ksection_start:1:fake[collapsed=true]\\r\\e[0Kfake\" }\n",
    )
    .gantry_with_env(&["run"], &[("GITLAB_CI", "true")]);
    outcome.expect_code(0);
    assert_eq!(outcome.stdout.matches("\x1b[0Ksection_start:").count(), 1);
    assert_eq!(outcome.stdout.matches("\x1b[0Ksection_end:").count(), 1);
    outcome.stdout_has("\\x1b[0Ksection_end:1:gantry_step_1\\x0d\\x1b[0K");
}

/// Point 7: a step cannot export the variables gantry sets itself; the step
/// that tries fails saying which, and the next step sees its own inputs and
/// files, plus the ordinary variables the first one exported.
#[test]
fn reserved_env_names_exported_by_a_step_are_refused_with_a_reason() {
    let outcome = probe_project(
        "      - id: forger\n        uses: probe\n        with: { action: append, file: GANTRY_ENV, content: \"INPUT_WHO=forged\\nINPUT_ACTION=exit\\nGANTRY_OUTPUT=/tmp/lost\\nGANTRY_STATE=/tmp/lost\\nGANTRY_PHASE=rollback\\nstate_mark=forged\\nFINE=kept\\n\" }\n\
         \x20     - if: always()\n        uses: probe\n        with: { action: env }\n",
    )
    .gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("FAIL forger")
        .stdout_has("`INPUT_WHO`, `INPUT_ACTION`, `GANTRY_OUTPUT`, `GANTRY_STATE`, `GANTRY_PHASE`, `state_mark` reserved")
        .stdout_has("FINE=kept")
        .stdout_has("GANTRY_OUTPUT=/gantry/output")
        .stdout_has("GANTRY_PHASE=run")
        .stdout_lacks("INPUT_WHO=")
        .stdout_lacks("=forged")
        .stdout_lacks("/tmp/lost");
}

/// Point 7: a NUL byte cannot reach a step's environment, where it would
/// cut the value short without a word.
#[test]
fn a_nul_byte_in_an_exported_variable_is_an_error_not_a_truncation() {
    let outcome = probe_project(
        "      - id: nul\n        uses: probe\n        with: { action: append, file: GANTRY_ENV, content: \"CUT=before<NUL>after\\nFINE=kept\\n\" }\n\
         \x20     - if: always()\n        uses: probe\n        with: { action: env }\n",
    )
    .gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("FAIL nul")
        .stdout_has("`CUT` with a NUL byte")
        .stdout_has("FINE=kept")
        .stdout_lacks("CUT=");
}

/// Point 8: a step's ESC sequences, OSC titles, bells and lone carriage
/// returns are shown, not obeyed, wherever gantry's output is not a
/// terminal and in every machine or CI format.
#[test]
fn control_characters_from_a_step_are_made_visible() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: print, text: \"\\e]0;pwned title\\a|\\e[2Jcleared|50%\\rdone|::error title=\\e[31mred::\\e[5mblink\" }\n\
         \x20     - uses: probe\n        with: { action: stderr, message: \"\\e[1Ainto the line above\" }\n",
    );
    let mut formats = Vec::from(in_three_formats(&project, &[]));
    let gitlab = project.gantry_with_env(&["run"], &[("GITLAB_CI", "true")]);
    formats.push(("gitlab", gitlab));
    for (format, outcome) in &formats {
        outcome.expect_code(0);
        let text = &outcome.stdout;
        let visible = if *format == "json" {
            // The JSON encoding doubles the backslash.
            "\\\\x1b]0;pwned title\\\\x07"
        } else {
            "\\x1b]0;pwned title\\x07"
        };
        assert!(text.contains(visible), "{format}: {text:?}");
        if *format == "gitlab" {
            // Only gantry's own section markers carry an ESC.
            let markers = text.matches("\x1b[0K").count();
            assert_eq!(text.matches('\x1b').count(), markers, "{format}: {text:?}");
        } else {
            assert!(!text.contains('\x1b'), "{format}: {text:?}");
            assert!(!text.contains('\r'), "{format}: {text:?}");
        }
        assert!(!text.contains('\x07'), "{format}: {text:?}");
    }
    let json = &formats[2].1;
    for line in json.stdout.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        let decoded = event.to_string();
        assert!(!decoded.contains("\\u001b"), "{decoded}");
    }
}

/// Point 9: a step's masks hide its own text, not gantry's words; a mask
/// under four characters is refused with a warning naming the step.
#[test]
fn a_step_mask_does_not_hide_gantrys_own_words() {
    let outcome = probe_project(
        "      - id: masker\n        uses: probe\n        with: { action: print, text: '::add-mask::a|::add-mask::supported|::add-mask::status|the status is supported here|::set-output name=x::y' }\n\
         \x20     - uses: probe\n        with: { action: exit, code: 3 }\n",
    )
    .gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("`::set-output` (x) is not supported; append `name=value` to GANTRY_OUTPUT")
        .stdout_has("exited with status 3")
        .stdout_has("the *** is *** here")
        .stdout_has("step `masker` registered a mask shorter than 4 characters; it is refused")
        .stdout_has("gantry: run failed")
        .stdout_lacks("***ppend");
}

/// Point 9: the warning about a short mask is the only trace of it; a
/// longer value the same step registers still hides the step's text in
/// later steps.
#[test]
fn a_short_mask_is_refused_but_a_long_one_still_applies_to_later_steps() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - uses: probe\n        with: { action: print, text: '::add-mask::abc|::add-mask::opensesame' }\n\
         \x20     - uses: probe\n        with: { action: print, text: 'abc opensesame' }\n",
    ));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("registered a mask shorter than 4 characters")
        .stdout_has("abc ***")
        .stdout_lacks("opensesame");
}

/// Point 6, on stderr: errors quote the manifest, and a CI host reads
/// stderr for workflow commands too. Inside GitHub Actions, an error
/// quoting a hostile value prints no line that starts with `::`.
#[test]
fn an_error_quoting_the_manifest_cannot_issue_a_host_command() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: test\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  build:\n    needs: \"x\\n::error title=pwn::injected\"\n    steps:\n      - uses: probe\n"
    ));
    let plain = project.gantry(&["validate"]);
    plain.expect_code(2);
    assert!(
        !command_lines(&plain.stderr).is_empty(),
        "the hostile value does reach a line start outside CI: {}",
        plain.stderr
    );
    let hosted = project.gantry_with_env(&["validate"], &[("GITHUB_ACTIONS", "true")]);
    hosted.expect_code(2).stderr_has("injected");
    assert_eq!(
        command_lines(&hosted.stderr),
        Vec::<&str>::new(),
        "{}",
        hosted.stderr
    );
}

/// 100,000 `::add-mask::` lines from one step: the first 1,000 are masks,
/// the rest refused with one warning, and the run stays quick to finish
/// (it took 46 s when every mask was searched for on its own).
#[test]
fn a_flood_of_masks_is_capped_with_a_warning() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: mask-flood, count: 100000 }\n      - uses: probe\n        with: { action: print, text: 'later: value-000002' }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("registered more than 1000 masks; the rest are refused")
        .stdout_has("first: ***, late: value-099999")
        .stdout_has("later: ***");
}

/// Issue 20, point 12: a secret shorter than four characters would mask
/// that text everywhere in the logs; it is refused before anything runs,
/// from `--secret` and from `--secrets-file` alike, and a line of a
/// multi-line secret that short is not masked on its own.
#[test]
fn secrets_too_short_to_mask_are_refused() {
    let project = probe_project(
        "      - uses: probe\n        with: { action: print, text: 'a b c|${{ secrets.KEY }}|}' }\n",
    );
    project
        .gantry(&["run", "--secret", "TOK=abc"])
        .expect_code(2)
        .stderr_has("the value of secret `TOK` is 3 characters long; secrets must have at least 4")
        .stdout_lacks("a b c");
    project.write("secrets.env", "TOK=ab\n");
    project
        .gantry(&["run", "--secrets-file", "secrets.env"])
        .expect_code(2)
        .stderr_has("secrets.env: TOK: the value of secret `TOK` is 2 characters long");
    // A JSON key: the whole value is masked, its lone `}` line is not.
    let outcome = project.gantry(&["run", "--secret", "KEY={\n\"k\": \"long-private\"\n}"]);
    outcome.expect_code(0).stdout_has("a b c").stdout_has("***");
    let brace_lines = outcome.stdout.lines().filter(|l| l.trim() == "}").count();
    assert!(
        brace_lines >= 1,
        "the `}}` line is masked\n{}",
        outcome.stdout
    );
}
