//! Leaks and injections (issue 13, points 4–9): what a hostile step can
//! smuggle past masking, into the CI host's log, into the next step's
//! environment, or onto a terminal, each case pinned through the binary.

use gantry_tests::{Outcome, Project, probe_pipeline, probe_project};

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
