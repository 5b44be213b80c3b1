//! How a run is shown: the JSON event stream, JUnit XML, GitHub Actions and
//! GitLab logs, and plain text without escape codes when piped.

use gantry_tests::{Project, probe_pipeline};
use serde_json::Value;

/// A run with a passing step with outputs, a warning annotation, a secret
/// printed, a failing step and a skipped one.
fn eventful() -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - id: hello\n        uses: probe\n        with: { action: echo, message: hi }\n\
         \x20     - id: noisy\n        uses: probe\n        with: { action: print, text: '::warning file=app.rs,line=3::careful|secret ${{ secrets.TOKEN || ''unset'' }}|::set-env name=X::y' }\n\
         \x20     - id: broken\n        uses: probe\n        with: { action: exit, code: 3 }\n\
         \x20     - id: never\n        uses: probe\n        with: { action: echo, message: never }\n",
    ));
    project
}

#[test]
fn json_events_one_per_line() {
    let outcome = eventful().gantry(&["run", "--format", "json", "--secret", "TOKEN=s3cr3t-value"]);
    outcome.expect_code(1).stdout_lacks("s3cr3t-value");
    let events: Vec<Value> = outcome
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let run_id = events[0]["run_id"].as_str().unwrap().to_owned();
    assert!(!run_id.is_empty());
    for event in &events {
        assert_eq!(event["run_id"], run_id.as_str(), "{event}");
        assert!(event["event"].is_string());
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    for kind in [
        "job_started",
        "step_started",
        "log",
        "annotation",
        "step_finished",
        "job_finished",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    let finished = |step: &str| {
        events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"] == step)
            .unwrap_or_else(|| panic!("no step_finished for {step}"))
    };
    assert_eq!(finished("hello")["status"], "success");
    assert_eq!(
        finished("hello")["outputs"],
        serde_json::json!(["message", "lines"])
    );
    assert!(finished("hello")["duration_ms"].is_u64());
    assert_eq!(finished("hello")["job"], "main");
    assert_eq!(finished("broken")["status"], "failure");
    assert_eq!(finished("broken")["reason"], "exited with status 3");
    assert_eq!(finished("never")["status"], "skipped");
    let log = events
        .iter()
        .find(|e| {
            e["event"] == "log" && e["text"].as_str().is_some_and(|t| t.starts_with("secret"))
        })
        .unwrap();
    assert_eq!(log["text"], "secret ***");
    assert_eq!(log["step"], "noisy");
    assert_eq!(log["stream"], "stdout");
    let end = events.last().unwrap();
    assert_eq!(end["status"], "failure");
    assert_eq!(end["exit_code"], 1);
}

#[test]
fn junit_report_for_ci_readers() {
    let project = eventful();
    project
        .gantry(&["run", "--junit", "report/junit.xml"])
        .expect_code(1);
    let xml = std::fs::read_to_string(project.path().join("report/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("1"));
    // junit-10.xsd has no `skipped` on `<testsuites>` (issue 20): the suite counts it.
    assert_eq!(root.attribute("skipped"), None);
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("main"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let failure = cases[2]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(failure.attribute("message"), Some("exited with status 3"));
    assert!(cases[3].children().any(|n| n.has_tag_name("skipped")));
}

/// Validates `xml` against Jenkins' `junit-10.xsd` (a copy in the fixtures)
/// with libxml2's `xmllint`, which `.ci/run` installs.
#[track_caller]
fn assert_valid_for_jenkins(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    std::fs::write(&report, xml).unwrap();
    let schema = &format!("{}/fixtures/junit-10.xsd", gantry_tests::TESTS_DIR);
    let checked = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&report)
        .output()
        .expect("xmllint (Debian's libxml2-utils, installed by .ci/run) checks the JUnit report");
    assert!(
        checked.status.success(),
        "junit-10.xsd rejects the report:\n{}\n{xml}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Issue 20, point 5: Jenkins' schema accepts the report; a skipped job
/// has its suite; a failure carries the step's annotations and every case
/// its log.
#[test]
fn junit_is_valid_for_jenkins_and_says_why_a_step_failed() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: junit\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: fine\n        uses: probe\n        with: {{ action: echo, message: hello-log }}\n      - id: broken\n        uses: probe\n        with: {{ action: print, code: 1, text: 'compiling <app>|::error file=src/app.c,line=3,col=5::undefined `x`|::warning::slow' }}\n      - id: never\n        uses: probe\n  later:\n    needs: main\n    steps:\n      - uses: probe\n"
    ));
    project
        .gantry(&["run", "--junit", "junit.xml"])
        .expect_code(1);
    let xml = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert_valid_for_jenkins(&xml);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<_> = suites
        .iter()
        .map(|s| s.attribute("name").unwrap())
        .collect();
    assert_eq!(names, ["main", "later"], "{xml}");
    assert_eq!(suites[1].attribute("skipped"), Some("1"), "{xml}");
    let case = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .unwrap_or_else(|| panic!("no case {name}\n{xml}"))
    };
    let text = |node: roxmltree::Node<'_, '_>, tag: &str| {
        node.children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("no {tag} in {}\n{xml}", node.attribute("name").unwrap()))
            .to_owned()
    };
    assert_eq!(
        text(case("fine"), "system-out").lines().next(),
        Some("message: hello-log")
    );
    let failure = text(case("broken"), "failure");
    assert_eq!(
        failure,
        "exited with status 1\nsrc/app.c:3:5: error: undefined `x`\nwarning: slow"
    );
    assert!(text(case("broken"), "system-out").starts_with("compiling <app>\n"));
    assert!(case("never").children().any(|n| n.has_tag_name("skipped")));
    assert!(case("later").children().any(|n| n.has_tag_name("skipped")));
}

#[test]
fn github_actions_logs_look_native() {
    let project = eventful();
    let summary = project.write("gh/summary.md", "");
    let output = project.write("gh/output", "");
    project.manifest(
        &std::fs::read_to_string(project.path().join("gantry.yml"))
            .unwrap()
            .replace("jobs:\n  main:\n", "jobs:\n  main:\n    outputs:\n      greeting: ${{ steps.hello.outputs.message }}\n"),
    );
    let outcome = project.gantry_with_env(
        &["run", "--secret", "TOKEN=s3cr3t-value"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ],
    );
    outcome.expect_code(1);
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines[0], "::add-mask::s3cr3t-value", "masks come first");
    outcome
        // Issue 20: the group opens before the verdict is known, which
        // follows it on a result line.
        .stdout_has("::group::main / hello [probe]\n")
        .stdout_has("::endgroup::\ngantry: main / hello [probe]: ok (")
        .stdout_has("::warning file=app.rs,line=3::careful")
        .stdout_has("::error title=main / broken failed::exited with status 3")
        .stdout_has("secret ***");
    assert_eq!(
        outcome.stdout.matches("s3cr3t-value").count(),
        1,
        "only the mask names it"
    );
    // A guest's own text is fenced off from the runner's command parser.
    let set_env = lines
        .iter()
        .position(|l| *l == "::set-env name=X::y")
        .unwrap();
    let stop = lines[..set_env]
        .iter()
        .rposition(|l| l.starts_with("::stop-commands::"))
        .unwrap();
    let token = lines[stop].trim_start_matches("::stop-commands::");
    let resume = lines[set_env..]
        .iter()
        .position(|l| *l == format!("::{token}::"));
    assert!(resume.is_some(), "commands were never resumed");

    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.contains("| job | step | outcome | duration |"),
        "{summary}"
    );
    assert!(summary.contains("| main | broken | failure |"), "{summary}");
    assert!(summary.contains("| main | never | skipped |"), "{summary}");
    assert!(summary.contains("### probe says hi"), "{summary}");
    let output = std::fs::read_to_string(output).unwrap();
    assert!(output.starts_with("main-greeting<<"), "{output}");
    assert!(output.contains("\nhi\n"), "{output}");
}

#[test]
fn gitlab_gets_collapsible_sections() {
    let outcome = eventful().gantry_with_env(&["run"], &[("GITLAB_CI", "true")]);
    outcome
        .expect_code(1)
        .stdout_has("\x1b[0Ksection_start:")
        // Issue 20: streamed live, a section opens before its outcome is
        // known, so it is left open (a failure must not be collapsed).
        .stdout_has("[collapsed=false]\r\x1b[0Kmain / hello [probe]\n")
        .stdout_has("gantry: main / hello [probe]: ok (")
        .stdout_has("\x1b[0Ksection_end:");
}

#[test]
fn a_piped_run_has_no_escape_codes() {
    let project = eventful();
    let plain = project.gantry(&["run"]);
    plain.expect_code(1).stdout_has("FAIL broken");
    assert!(
        !plain.stdout.contains('\x1b'),
        "escape codes in piped output"
    );
    let forced = project.gantry(&["run", "--color", "always"]);
    assert!(forced.stdout.contains("\x1b[31mFAIL\x1b[0m"));
    let no_color = project.gantry_with_env(&["run", "--color", "auto"], &[("NO_COLOR", "1")]);
    assert!(!no_color.stdout.contains('\x1b'));
}

/// Runs gantry with its stdout on a pseudo-terminal, as in a person's
/// terminal, and returns its exit status and everything it drew there.
fn run_on_a_terminal(project: &Project, args: &[&str]) -> (i32, String) {
    drawn_on_a_terminal(project.command(args), false)
}

/// Runs `command` with its stdout (or, with `stderr`, its stderr instead)
/// on a pseudo-terminal whose `TERM` is xterm's and where `NO_COLOR` is
/// unset unless `command` sets it; returns its exit status and everything
/// it drew there.
pub(crate) fn drawn_on_a_terminal(
    mut command: std::process::Command,
    stderr: bool,
) -> (i32, String) {
    use std::io::Read;
    use std::os::fd::FromRawFd;

    let (mut leader, mut follower) = (0, 0);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the integers given.
    let opened = unsafe {
        libc::openpty(
            &mut leader,
            &mut follower,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned here alone.
    let (mut screen, terminal) = unsafe {
        (
            std::fs::File::from_raw_fd(leader),
            std::fs::File::from_raw_fd(follower),
        )
    };
    if !command.get_envs().any(|(key, _)| key == "NO_COLOR") {
        command.env_remove("NO_COLOR");
    }
    command.env("TERM", "xterm-256color");
    if stderr {
        command.stdout(std::process::Stdio::null()).stderr(terminal);
    } else {
        command.stdout(terminal).stderr(std::process::Stdio::null());
    }
    let mut child = command.spawn().expect("running gantry");
    // The only other copy of the terminal's end is the child's, so reading
    // ends (with EIO) once it exits.
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut drawn = Vec::new();
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = screen.read(&mut chunk) {
            drawn.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&drawn).into_owned()
    });
    let status = child.wait().expect("gantry exits");
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

#[test]
fn a_terminal_gets_live_progress_of_the_running_steps() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - name: warm up\n        uses: probe\n        with: { action: echo, message: first }\n\
         \x20     - name: slow step\n        uses: probe\n        with: { action: sleep, seconds: 1 }\n",
    ));
    let (code, drawn) = run_on_a_terminal(&project, &["run", "--color", "never"]);
    assert_eq!(code, 0, "{drawn}");
    // The progress lines: the step running in its job, with the elapsed
    // time, and the run's count of steps done.
    assert!(drawn.contains("main: slow step [probe]"), "{drawn}");
    assert!(drawn.contains("1 of 2 steps done"), "{drawn}");
    // They are drawn with cursor movements and line erasing...
    assert!(drawn.contains("\x1b[2K"), "{drawn:?}");
    // ...and the lines of the plain output are all there.
    assert!(drawn.contains("ok   slow step"), "{drawn}");
    assert!(drawn.contains("run succeeded"), "{drawn}");

    // The same run piped has none of it.
    let piped = project.gantry(&["run"]);
    piped.expect_code(0).stdout_lacks("steps done");
    assert!(!piped.stdout.contains('\x1b'));
}

/// `(12 ms)`, `(1.5 s)`, `(2 min)` in `line` become `(<time>)`.
fn without_durations(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let number = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let after = &rest[number..];
        let unit = [" ms)", " s)", " min)"]
            .into_iter()
            .find(|unit| after.starts_with(unit));
        if let (true, Some(unit)) = (number > 0, unit) {
            out.push_str("<time>)");
            rest = &after[unit.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Piped, each step shows as its start line, its log lines indented under
/// it, then its outcome with its duration, or its failure in plain words;
/// in that order, step after step.
#[test]
fn a_piped_run_shows_each_step_its_log_and_its_outcome_in_order() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(
        &sha,
        "      - name: greet\n        uses: probe\n        with: { action: print, text: 'first line|second line' }\n\
         \x20     - name: complain\n        uses: probe\n        with: { action: stderr, message: oops }\n\
         \x20     - name: broken\n        uses: probe\n        with: { action: exit, code: 3 }\n\
         \x20     - name: never\n        uses: probe\n        with: { action: print, text: unseen }\n",
    ));
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(1);
    let lines: Vec<String> = outcome.stdout.lines().map(without_durations).collect();
    assert!(
        lines[0].starts_with("gantry: running `test` (run "),
        "{}",
        outcome.stdout
    );
    let last = lines.len() - 1;
    assert!(
        lines[last].starts_with("gantry: run failed in ")
            && lines[last].ends_with(": main/broken failed"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        lines[1],
        format!("gantry: state folder {}", project.state_dir().display())
    );
    assert_eq!(
        lines[2..last],
        [
            "job main",
            "  step greet [probe]",
            "    first line",
            "    second line",
            "  ok   greet (<time>)",
            "  step complain [probe]",
            "    [stderr] to stderr: oops",
            "  ok   complain (<time>)",
            "  step broken [probe]",
            "  FAIL broken (<time>): exited with status 3",
            "  skip never: an earlier step failed",
            "job main: failure",
        ]
    );
}

/// A reader that stops early (`gantry schema | head -1`) is a quiet end,
/// not a panic (exit 101): the command ends with its own status.
#[test]
fn a_closed_stdout_is_a_quiet_end() {
    let project = Project::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = project
        .command(&["schema"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Step summaries are kept on disk and capped: the run's `summary.md`
/// stops at 16 MiB with a line saying so, and what goes to GitHub's
/// `$GITHUB_STEP_SUMMARY` (which refuses more than 1 MiB) points to it
/// instead of holding it.
#[test]
fn summaries_are_capped_for_the_run_and_for_github() {
    let step = "      - uses: probe\n        with: { action: big-summary, kib: 1000 }\n";
    let project = gantry_tests::probe_project(&step.repeat(18));
    let github = tempfile::NamedTempFile::new().unwrap();
    let outcome = project.gantry_with_env(
        &["run", "--format", "github"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", github.path().to_str().unwrap()),
        ],
    );
    outcome.expect_code(0);
    let run = project.latest_run_dir();
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(summary.len() <= 16 * 1024 * 1024 + 200, "{}", summary.len());
    assert!(summary.len() > 15 * 1024 * 1024, "{}", summary.len());
    assert!(summary.ends_with(
        "_The run's summary reached its limit of 16 MiB; later step summaries were left out._\n"
    ));
    let posted = std::fs::read_to_string(github.path()).unwrap();
    assert!(posted.len() < 1024 * 1024, "{}", posted.len());
    assert!(
        posted.contains("larger than a GitHub step summary may be"),
        "{posted}"
    );
    assert!(posted.contains("| main |"), "the table of steps is kept");
}

/// `docs/EVENTS.md` names every event `--format json` emits, and every
/// event it names is emitted by some run (here: groups, annotations, a
/// failure with rollback hooks, a skipped job, a refused network request).
#[test]
fn the_documented_events_are_the_emitted_ones() {
    let docs =
        std::fs::read_to_string(format!("{}/../docs/EVENTS.md", gantry_tests::TESTS_DIR)).unwrap();
    let documented: std::collections::BTreeSet<String> = docs
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |").map(|(name, _)| name.to_owned()))
        .filter(|name| name != "event" && name != "run_id")
        .collect();
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    // A component step asking for a destination it was not granted: the
    // `network_denied` event (no connection is made, so no server).
    let net = project.plugin_from(gantry_tests::NETPROBE_WASM, "netprobe.wasm");
    project.manifest(&format!(
        "name: all\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {net}\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  net:\n    steps:\n      - uses: netprobe\n        continue-on-error: true\n        with: {{ action: get, url: \"http://127.0.0.1:9/x\" }}\n  main:\n    steps:\n      - uses: probe\n        with: {{ action: print, text: '::group::g|inside|::endgroup::|::warning::w|::set-output name=x::y' }}\n      - uses: probe\n        with: {{ action: exit, code: 1 }}\n        rollback: {{}}\n  later:\n    needs: main\n    steps:\n      - uses: probe\n"
    ));
    let outcome = project.gantry(&["run", "--format", "json"]);
    // The hook runs the same failing `exit`: a failed rollback, exit 4.
    outcome.expect_code(4);
    let emitted: std::collections::BTreeSet<String> = outcome
        .stdout
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(emitted, documented);
    // The run reached its rollback: the two agreeing is not both having
    // lost the rollback events.
    for rollback in ["rollback_started", "rollback_finished"] {
        assert!(
            documented.contains(rollback),
            "EVENTS.md lacks `{rollback}`"
        );
    }
    let schema = event_schema();
    for line in outcome.stdout.lines() {
        assert_valid_event(&schema, line);
    }
}

/// `docs/events.schema.json`, compiled; its events are those EVENTS.md lists.
fn event_schema() -> jsonschema::Validator {
    let path = &format!("{}/../docs/events.schema.json", gantry_tests::TESTS_DIR);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("docs/events.schema.json is a valid JSON Schema")
}

#[track_caller]
fn assert_valid_event(schema: &jsonschema::Validator, line: &str) {
    let event: Value = serde_json::from_str(line).unwrap();
    let errors: Vec<String> = schema.iter_errors(&event).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{line}\n{}", errors.join("\n"));
}

/// Issue 20, point 6: every event of a run with outputs, annotations, a
/// secret, a failure, a skipped step and a skipped job matches the schema,
/// and the schema is strict enough to refuse an event missing a field.
#[test]
fn every_event_matches_the_published_schema() {
    let project = eventful();
    let yaml = std::fs::read_to_string(project.path().join("gantry.yml")).unwrap();
    project.manifest(&format!(
        "{yaml}  later:\n    needs: main\n    steps:\n      - uses: probe\n"
    ));
    let outcome = project.gantry(&["run", "--format", "json", "--secret", "TOKEN=s3cr3t-value"]);
    outcome.expect_code(1);
    let schema = event_schema();
    for line in outcome.stdout.lines() {
        assert_valid_event(&schema, line);
    }
    let skipped = outcome
        .stdout
        .lines()
        .find(|l| l.contains("\"step_finished\"") && l.contains("\"skipped\""))
        .expect("a skipped step");
    let mut event: Value = serde_json::from_str(skipped).unwrap();
    assert_eq!(event["continue_on_error"], false);
    event.as_object_mut().unwrap().remove("continue_on_error");
    assert!(
        !schema.is_valid(&event),
        "the schema requires continue_on_error"
    );
    let later_skipped = outcome.stdout.lines().any(|line| {
        let event: Value = serde_json::from_str(line).unwrap();
        event["event"] == "job_finished" && event["job"] == "later" && event["status"] == "skipped"
    });
    assert!(later_skipped, "{}", outcome.stdout);
}
