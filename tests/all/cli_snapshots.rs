//! Whole CLI outputs pinned as insta snapshots (`tests/all/snapshots/`):
//! the caret rendering of manifest mistakes, the `--format json` event
//! stream, `gantry plan`, and the GitHub Actions and GitLab logs. A
//! substring check lets a change of wording, order or layout slip past;
//! here it shows up as a snapshot diff to review.
//!
//! What changes from run to run is normalised first: the project, state
//! and cache folders (replaced by name), run ids, durations, sha256
//! digests, the random `stop-commands` token and GitLab's section times.
//! Update with `cargo insta review` (or `INSTA_UPDATE=always`) after a
//! deliberate change; under `CI=true` or `INSTA_UPDATE=no` (as `.ci/run`
//! sets it) a changed or missing snapshot fails instead of being written.

use gantry_tests::{Outcome, Project, probe_pipeline};

use crate::fixture;

/// Replaces what differs between runs and machines, then compares `text`
/// with the snapshot `name`.
#[track_caller]
fn pin(name: &str, project: &Project, text: &str) {
    // Exact folders first: longest first, so the state and cache folders
    // (siblings of the project's) are never half-replaced.
    let text = text
        .replace(&project.state_dir().display().to_string(), "[STATE]")
        .replace(&project.state_home().display().to_string(), "[STATE_HOME]")
        .replace(&project.cache_home().display().to_string(), "[CACHE_HOME]")
        .replace(&project.path().display().to_string(), "[PROJECT]");
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (pattern, replacement) in [
        // 20261123T170000.482113Z-1a2b3c
        (r"\d{8}T\d{6}(\.\d+)?Z-[0-9a-f]+", "[RUN_ID]"),
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
        (r#""duration_ms":\d+"#, r#""duration_ms":"[MS]""#),
        // How long a step or run took: `ok (12 ms)`, `failed in 1.5 s`.
        // A configured timeout (`timeout: 2 min` in `plan`) is kept.
        (r"(\(|\bin )\d+(\.\d+)? (ms|s|min)\b", "${1}[DURATION]"),
        (r"gantry-[0-9a-f]{32}", "[STOP_TOKEN]"),
        (r"section_(start|end):\d+:", "section_$1:[TIME]:"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

/// Exit status, stdout and stderr as one text.
fn whole(outcome: &Outcome) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        outcome.code, outcome.stdout, outcome.stderr
    )
}

/// Runs `gantry args` in `project`, which must exit with `code`, and pins
/// what it printed as the snapshot `name`.
#[track_caller]
fn pin_run(name: &str, project: &Project, args: &[&str], code: i32) {
    let outcome = project.gantry(args);
    outcome.expect_code(code);
    pin(name, project, &whole(&outcome));
}

/// [`pin_run`] on a project holding only `manifest`.
#[track_caller]
fn pin_command(name: &str, manifest: &str, args: &[&str], code: i32) {
    let project = Project::new();
    project.manifest(manifest);
    pin_run(name, &project, args, code);
}

/// `gantry validate` of a project whose `hello` plugin is pinned, with
/// `jobs` given as YAML, pinned as the snapshot `name`.
#[track_caller]
fn pin_manifest_error(name: &str, jobs: &str) {
    let project = Project::new();
    let sha = project.wat_plugin("hello.wasm", &fixture("hello.wat"));
    project.manifest(&format!(
        "name: errors\nplugins:\n  hello:\n    source: hello.wasm\n    sha256: {sha}\njobs:\n{jobs}"
    ));
    pin_run(name, &project, &["validate"], 2);
}

#[test]
fn manifest_error_unknown_key_suggests_the_nearest() {
    pin_manifest_error(
        "manifest_error_unknown_key_suggests_the_nearest",
        "  build:\n    steps:\n      - uses: hello\n        timeout-minute: 1\n",
    );
}

#[test]
fn manifest_error_unknown_plugin_alias() {
    pin_manifest_error(
        "manifest_error_unknown_plugin_alias",
        "  build:\n    steps:\n      - uses: helo\n",
    );
}

#[test]
fn manifest_error_unclosed_quote() {
    pin_manifest_error(
        "manifest_error_unclosed_quote",
        "  build:\n    steps:\n      - uses: \"hello\n",
    );
}

#[test]
fn manifest_error_inside_an_expression_points_into_the_line() {
    pin_manifest_error(
        "manifest_error_inside_an_expression_points_into_the_line",
        "  build:\n    steps:\n      - uses: hello\n        with:\n          x: ${{ env.A == }}\n",
    );
}

#[test]
fn manifest_error_several_reported_together() {
    pin_manifest_error(
        "manifest_error_several_reported_together",
        "  build:\n    steps:\n      - uses: nope\n      - uses: hello\n        timeout-minutes: -1\n  deploy:\n    needs: biuld\n    steps:\n      - uses: hello\n",
    );
}

/// The tab itself is pointed at, not the line before it, where the YAML
/// parser stops.
#[test]
fn manifest_error_tab_in_the_indentation() {
    pin_command(
        "manifest_error_tab_in_the_indentation",
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\njobs:\n  build:\n    steps:\n\t- uses: hello\n",
        &["validate"],
        2,
    );
}

#[test]
fn manifest_error_lost_jobs_line() {
    pin_command(
        "manifest_error_lost_jobs_line",
        "name: x\nplugins:\n  hello:\n    source: hello.wasm\n  build:\n    strategy:\n      matrix: { os: [a, b] }\n    steps:\n      - uses: hello\n",
        &["validate"],
        2,
    );
}

#[test]
fn manifest_error_empty_manifest() {
    pin_command(
        "manifest_error_empty_manifest",
        "# nothing yet\n",
        &["run"],
        2,
    );
}

/// Two jobs, one of them a matrix needing the other, with grants, `env`,
/// outputs and a rollback hook: what `gantry plan` shows of each.
#[test]
fn plan_of_a_matrix_pipeline_with_grants_and_a_hook() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: shaped\nenv:\n  SITE: demo\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n\
         \x20 build:\n    outputs:\n      greeting: ${{{{ steps.hello.outputs.message }}}}\n    steps:\n\
         \x20     - id: hello\n        uses: probe\n        with: {{ action: echo, message: hi }}\n\
         \x20 deploy:\n    needs: build\n    strategy:\n      matrix:\n        region: [eu, us]\n    steps:\n\
         \x20     - id: upload\n        name: Upload to ${{{{ matrix.region }}}}\n        uses: probe\n\
         \x20       with: {{ action: echo, message: '${{{{ needs.build.outputs.greeting }}}}' }}\n\
         \x20       env:\n          REGION: ${{{{ matrix.region }}}}\n\
         \x20       permissions:\n          workspace: write\n          env: [HOME]\n\
         \x20       timeout-minutes: 2\n        rollback: {{}}\n"
    ));
    pin_run(
        "plan_of_a_matrix_pipeline_with_grants_and_a_hook",
        &project,
        &["plan"],
        0,
    );
}

/// A pipeline of two steps, the first with a rollback hook; `tail` is the
/// second step's `with:`.
fn two_steps(tail: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        &format!(
            "      - id: deploy\n        uses: probe\n        with: {{ action: echo, message: deployed }}\n        rollback: {{}}\n\
             \x20     - id: check\n        uses: probe\n        with: {tail}\n"
        ),
    ));
    project
}

#[test]
fn json_events_of_a_successful_run() {
    let project = two_steps("{ action: print, text: '::notice title=ok::all good|done' }");
    pin_run(
        "json_events_of_a_successful_run",
        &project,
        &["run", "--format", "json"],
        0,
    );
}

/// The second step fails, so the first one's hook runs: the rollback
/// events between the failure and the run's end.
#[test]
fn json_events_of_a_failure_rolled_back() {
    let project = two_steps("{ action: exit, code: 3 }");
    pin_run(
        "json_events_of_a_failure_rolled_back",
        &project,
        &["run", "--format", "json"],
        1,
    );
}

/// A step that warns, prints a secret and a command of its own, and a
/// failing step, as GitHub Actions' log shows them.
fn ci_run() -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - id: noisy\n        uses: probe\n        with: { action: print, text: '::warning file=app.rs,line=3::careful|secret ${{ secrets.TOKEN }}|::set-env name=X::y' }\n\
         \x20     - id: broken\n        uses: probe\n        with: { action: exit, code: 3 }\n\
         \x20     - id: never\n        uses: probe\n        with: { action: echo, message: never }\n",
    ));
    project
}

#[test]
fn github_format_of_a_failing_run() {
    let project = ci_run();
    pin_run(
        "github_format_of_a_failing_run",
        &project,
        &[
            "run",
            "--format",
            "github",
            "--secret",
            "TOKEN=s3cr3t-value",
        ],
        1,
    );
}

#[test]
fn gitlab_format_of_a_failing_run() {
    let project = ci_run();
    pin_run(
        "gitlab_format_of_a_failing_run",
        &project,
        &[
            "run",
            "--format",
            "gitlab",
            "--secret",
            "TOKEN=s3cr3t-value",
        ],
        1,
    );
}

#[test]
fn error_with_a_cause_and_a_hint() {
    // A cache folder others may write is refused: the command's error,
    // the cache's refusal as its cause, and the fix.
    use std::os::unix::fs::PermissionsExt;
    let project = Project::new();
    std::fs::create_dir_all(project.cache_dir()).unwrap();
    std::fs::set_permissions(project.cache_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    pin_run(
        "error_with_a_cause_and_a_hint",
        &project,
        &["cache", "clear"],
        2,
    );
}

#[test]
fn errors_of_every_unpinned_plugin_then_a_closing_line() {
    let project = crate::errors::two_unpinned();
    pin_run(
        "errors_of_every_unpinned_plugin_then_a_closing_line",
        &project,
        &["verify"],
        3,
    );
}
