//! Rollback as the contract describes it: hooks of every started step in
//! reverse order of start, the failed step included; a failing hook does
//! not stop the others; `gantry rollback` and `gantry resume` from the
//! journal, also after the runner was killed, never running a hook twice.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use gantry_tests::{Outcome, Project, probe_pipeline};

/// A step of the probe's `record` action: it logs `run LABEL` (and, in its
/// hook, `rollback LABEL outcome=… state=…`) to `log.txt` in the workspace.
fn recorded(label: &str, extra_inputs: &str) -> String {
    format!(
        "      - id: {label}\n        uses: probe\n        with: {{ action: record, label: {label}, log: /workspace/log.txt{extra_inputs} }}\n        permissions: {{ workspace: write }}\n        rollback: {{}}\n"
    )
}

fn project(steps: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(&sha, steps));
    project
}

/// The lines the probe's `record` action wrote to `log.txt`.
pub(crate) fn log(project: &Project) -> Vec<String> {
    std::fs::read_to_string(project.path().join("log.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The folder of the project's latest run.
fn latest_run(project: &Project) -> std::path::PathBuf {
    project.latest_run_dir()
}

fn journal(project: &Project) -> String {
    std::fs::read_to_string(latest_run(project).join("journal.jsonl")).expect("a journal")
}

/// The latest run's `summary.md`, where the hooks' summaries go too.
fn summary(project: &Project) -> String {
    std::fs::read_to_string(latest_run(project).join("summary.md")).unwrap_or_default()
}

#[test]
fn a_failed_run_rolls_back_in_reverse_order_of_start() {
    let project = project(&format!(
        "{}{}      - id: plain\n        uses: probe\n        with: {{ action: echo, message: hi }}\n{}{}",
        recorded("first", ""),
        recorded("second", ""),
        recorded("third", ", fail: true"),
        recorded("never", ""),
    ));
    let outcome = project.gantry(&["run", "--format", "json"]);
    outcome.expect_code(1);
    assert_eq!(
        log(&project),
        [
            "run first",
            "run second",
            "run third",
            "rollback third outcome=failure state=saved-by-third",
            "rollback second outcome=success state=saved-by-second",
            "rollback first outcome=success state=saved-by-first",
        ]
    );
    let events: Vec<serde_json::Value> = outcome
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let rollbacks: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "rollback_finished")
        .map(|e| (e["step"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rollbacks,
        [
            ("third", "success"),
            ("second", "success"),
            ("first", "success")
        ]
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["exit_code"], 1);

    let journal = journal(&project);
    for event in [
        "run_started",
        "step_started",
        "step_finished",
        "run_finished",
    ] {
        assert!(
            journal.contains(&format!(r#""event":"{event}""#)),
            "{journal}"
        );
    }
    assert_eq!(journal.matches(r#""event":"rollback_finished""#).count(), 3);
    // The steps' summaries, then the hooks' in the order they ran.
    assert_eq!(
        summary(&project),
        "### probe says hi\n- rolled back third\n- rolled back second\n- rolled back first\n"
    );
    assert!(
        journal.contains(r#""event":"rollback_ended","status":"success""#),
        "{journal}"
    );
    // Nothing is left: a later rollback or resume runs no hook again.
    project
        .gantry(&["rollback"])
        .expect_code(0)
        .stdout_has("no rollback hook is left to run");
    project
        .gantry(&["resume"])
        .expect_code(0)
        .stdout_has("nothing to resume");
    assert_eq!(log(&project).len(), 6);
}

#[test]
fn a_failing_hook_does_not_stop_the_others_and_exits_4() {
    let project = project(&format!(
        "{}{}{}",
        recorded("first", ""),
        recorded("second", ", fail_rollback: true"),
        recorded("third", ", fail: true"),
    ));
    project
        .gantry(&["run"])
        .expect_code(4)
        .stdout_has("rollback of second")
        .stdout_has("a rollback hook failed");
    let log = log(&project);
    assert_eq!(log.len(), 6, "{log:?}");
    assert!(log[5].starts_with("rollback first"), "{log:?}");
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("failure, rollback FAILED");
    // Nothing is left to run, but the run is not rolled back: a later
    // rollback says which hook failed, and how to run it again.
    project
        .gantry(&["rollback"])
        .expect_code(4)
        .stderr_has("the hook of `second` failed")
        .stderr_has("--rerun second");
    assert_eq!(
        crate::rollback::log(&project).len(),
        6,
        "no hook runs twice"
    );
    project
        .gantry(&["rollback", "--rerun", "second"])
        .expect_code(4);
    assert_eq!(
        crate::rollback::log(&project).len(),
        7,
        "run again on request"
    );
}

#[test]
fn hooks_use_their_own_plugin_and_inputs_when_given() {
    let project = project(&format!(
        "      - id: own\n        uses: probe\n        with: {{ action: record, label: step, log: /workspace/log.txt }}\n        permissions: {{ workspace: write }}\n        rollback:\n          uses: probe\n          with:\n            action: record\n            label: hook-${{{{ env.WHO }}}}\n            log: /workspace/log.txt\n        env: {{ WHO: custom }}\n{}",
        recorded("boom", ", fail: true")
    ));
    project.gantry(&["run"]).expect_code(1);
    assert_eq!(
        log(&project),
        [
            "run step",
            "run boom",
            "rollback boom outcome=failure state=saved-by-boom",
            "rollback hook-custom outcome=success state=saved-by-step",
        ]
    );
}

#[test]
fn a_successful_run_is_rolled_back_later_once() {
    let project = project(&format!("{}{}", recorded("a", ""), recorded("b", "")));
    project.gantry(&["run"]).expect_code(0);
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("success");
    project
        .gantry(&["rollback"])
        .expect_code(0)
        .stdout_has("rolled back");
    assert_eq!(
        log(&project)[2..],
        [
            "rollback b outcome=success state=saved-by-b",
            "rollback a outcome=success state=saved-by-a"
        ]
    );
    // The hooks' summaries join the run's, which had none of its own.
    assert_eq!(summary(&project), "- rolled back b\n- rolled back a\n");
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("success, rolled back");
    project.gantry(&["rollback"]).expect_code(0);
    assert_eq!(log(&project).len(), 4, "no hook runs twice");
    project
        .gantry(&["rollback", "20200101T000000Z-000000"])
        .expect_code(2)
        .stderr_has("no run `20200101T000000Z-000000`");
}

#[test]
fn parallel_jobs_roll_back_in_the_order_their_steps_started() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: par\nplugins:\n  probe: {{ source: probe.wasm, sha256: {sha} }}\njobs:\n  a:\n    steps:\n{}  b:\n    needs: a\n    steps:\n{}  c:\n    needs: b\n    steps:\n{}",
        recorded("a", ""),
        recorded("b", ""),
        recorded("c", ", fail: true"),
    ));
    project.gantry(&["run"]).expect_code(1);
    let rollbacks: Vec<String> = log(&project)
        .into_iter()
        .filter(|l| l.starts_with("rollback"))
        .map(|l| l.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(rollbacks, ["c", "b", "a"]);
}

#[test]
fn a_secret_input_is_masked_in_the_journal_and_given_again_later() {
    let project = project(
        "      - id: s\n        uses: probe\n        with: { action: record, label: 'tok-${{ secrets.TOKEN }}', log: /workspace/log.txt }\n        permissions: { workspace: write }\n        rollback: {}\n",
    );
    project
        .gantry(&["run", "--secret", "TOKEN=hunter2"])
        .expect_code(0);
    let journal = journal(&project);
    assert!(!journal.contains("hunter2"), "{journal}");
    assert!(journal.contains("tok-***"), "{journal}");
    // Without the secret the hook cannot get its input back: it fails.
    project
        .gantry(&["rollback"])
        .expect_code(4)
        .stdout_has("pass the secret with --secret");
    let project2 = project;
    std::fs::remove_dir_all(project2.state_dir()).unwrap();
    project2
        .gantry(&["run", "--secret", "TOKEN=hunter2"])
        .expect_code(0);
    project2
        .gantry(&["rollback", "--secret", "TOKEN=hunter2"])
        .expect_code(0);
    assert!(
        log(&project2)
            .contains(&"rollback tok-hunter2 outcome=success state=saved-by-tok-***".to_owned()),
        "{:?}",
        log(&project2)
    );
}

/// A run's compensation uses what its journal recorded, never the project
/// as it is today: the hook runs the very plugin bytes its step ran with
/// (kept by sha256 in the state folder when the run started), even after
/// the plugin file changed, was re-pinned and the manifest broke. A kept
/// copy that is gone or damaged fails the hook, naming the digest.
#[test]
fn a_hook_runs_the_plugin_its_step_ran_with_whatever_the_project_holds_now() {
    let project = project(&recorded("a", ""));
    project.gantry(&["run"]).expect_code(0);
    let original = std::fs::read(project.path().join("probe.wasm")).unwrap();
    let original_sha = gantry_tests::sha256_hex(&original);
    // Different bytes, re-pinned; then the manifest is broken altogether.
    let mut bytes = original.clone();
    bytes.extend_from_slice(&[0, 4, 1, b'x', 0]); // a trailing empty custom section
    let sha = gantry_tests::sha256_hex(&bytes);
    std::fs::write(project.path().join("probe.wasm"), &bytes).unwrap();
    project.manifest(&probe_pipeline(&sha, &recorded("a", "")));
    project.manifest("name: [this is not a pipeline\n");
    let kept = project
        .state_dir()
        .join("plugins")
        .join(format!("{original_sha}.wasm"));
    assert_eq!(std::fs::read(&kept).unwrap(), original);

    // A damaged copy is refused, the hook not run.
    std::fs::write(&kept, &bytes).unwrap();
    project
        .gantry(&["rollback"])
        .expect_code(4)
        .stdout_has(&format!(
            "plugin `probe` (sha256 {original_sha}) cannot be loaded"
        ))
        .stdout_has("is damaged");
    assert_eq!(log(&project), ["run a"]);

    // Restored, the copy serves a hook run again on request (`--rerun`),
    // from the journal alone: the manifest is still broken.
    std::fs::write(&kept, &original).unwrap();
    project
        .gantry(&["rollback", "--rerun", "a"])
        .expect_code(0)
        .stdout_has("will run again");
    assert_eq!(
        log(&project),
        ["run a", "rollback a outcome=success state=saved-by-a"]
    );
}

/// Waits until `log.txt` has `lines` lines, or panics after a while.
fn wait_for_log(project: &Project, lines: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while log(project).len() < lines {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("gantry ended early with {status}; log: {:?}", log(project));
        }
        assert!(
            Instant::now() < deadline,
            "timed out; log: {:?}",
            log(project)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(project: &Project, args: &[&str]) -> Child {
    project
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning gantry")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let result = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(result, 0);
}

fn finish(child: Child) -> Outcome {
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_killed_run_is_rolled_back_by_resume() {
    let project = project(&format!(
        "{}{}",
        recorded("a", ""),
        recorded("slow", ", sleep: 600")
    ));
    let mut child = spawn(&project, &["run"]);
    wait_for_log(&project, 2, &mut child);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("interrupted: the runner died");
    project
        .gantry(&["rollback"])
        .expect_code(2)
        .stderr_has("gantry resume");
    project
        .gantry(&["resume"])
        .expect_code(1)
        .stdout_has("the runner died while the run was executing");
    // The killed step had saved its state before it slept: its hook gets it.
    assert_eq!(
        log(&project)[2..],
        [
            "rollback slow outcome=failure state=saved-by-slow",
            "rollback a outcome=success state=saved-by-a"
        ]
    );
    project.gantry(&["resume"]).expect_code(0);
    assert_eq!(log(&project).len(), 4);
}

#[test]
fn a_rollback_killed_halfway_is_finished_without_running_a_hook_twice() {
    let project = project(&format!(
        "{}{}{}",
        recorded("a", ""),
        recorded("b", ", sleep_rollback: 600"),
        recorded("c", ", fail: true"),
    ));
    let mut child = spawn(&project, &["run"]);
    // run a, run b, run c, rollback c, rollback b (which then sleeps).
    wait_for_log(&project, 5, &mut child);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("rollback interrupted");
    project
        .gantry(&["resume"])
        .expect_code(4)
        .stdout_has("not run twice");
    let log = log(&project);
    assert_eq!(log.len(), 6, "{log:?}");
    assert_eq!(log[5], "rollback a outcome=success state=saved-by-a");
    assert_eq!(
        log.iter().filter(|l| l.starts_with("rollback b")).count(),
        1
    );
}

#[test]
fn an_interrupt_stops_the_step_and_rolls_back_and_a_second_stops_the_rollback() {
    let project = project(&format!(
        "{}{}",
        recorded("a", ", sleep_rollback: 600"),
        recorded("slow", ", sleep: 600")
    ));
    let started = Instant::now();
    let mut child = spawn(&project, &["run"]);
    wait_for_log(&project, 2, &mut child);
    signal(&child, libc::SIGINT);
    // The sleeping step stops, its hook runs, then `a`'s hook sleeps.
    wait_for_log(&project, 4, &mut child);
    signal(&child, libc::SIGTERM);
    let outcome = finish(child);
    assert!(started.elapsed() < Duration::from_secs(60));
    outcome
        .expect_code(4)
        .stderr_has("interrupted: stopping the running steps and rolling back")
        .stderr_has("gantry resume");
    // The stopped step saved its state before it slept; its hook gets it.
    assert_eq!(
        log(&project)[2..],
        [
            "rollback slow outcome=failure state=saved-by-slow",
            "rollback a outcome=success state=saved-by-a"
        ]
    );
    // `a`'s hook was stopped halfway: resume does not run it again.
    project.gantry(&["resume"]).expect_code(4);
    assert_eq!(log(&project).len(), 4);
}

#[test]
fn hook_timeout_is_its_own() {
    let project = project(
        "      - id: t\n        uses: probe\n        with: { action: record, label: t, log: /workspace/log.txt, sleep_rollback: 600, fail: true }\n        permissions: { workspace: write }\n        rollback: { timeout-minutes: 0.02 }\n",
    );
    project
        .gantry(&["run"])
        .expect_code(4)
        .stdout_has("rollback of t")
        .stdout_has("timed out after 1.2 s");
}

/// Output nobody reads is no reason to stop compensating: `gantry run`,
/// `rollback` and `resume` whose stdout is a closed pipe or a full disk
/// run every hook and end with their own status (a write that fails used
/// to panic, exit 101, between a journal entry and its work).
#[test]
fn a_closed_or_full_stdout_never_stops_a_run_or_its_rollback() {
    let closed_stdout = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    // A closed pipe: the reader is gone before gantry prints anything.
    let failing = project(&format!(
        "{}{}",
        recorded("a", ""),
        recorded("b", ", fail: true")
    ));
    let status = failing
        .command(&["run"])
        .stdout(closed_stdout())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "the run failed and rolled back");
    assert_eq!(
        log(&failing),
        [
            "run a",
            "run b",
            "rollback b outcome=failure state=saved-by-b",
            "rollback a outcome=success state=saved-by-a"
        ]
    );
    let later = project(&format!("{}{}", recorded("a", ""), recorded("b", "")));
    later.gantry(&["run"]).expect_code(0);
    let status = later
        .command(&["rollback"])
        .stdout(closed_stdout())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "every hook ran");
    assert_eq!(
        log(&later),
        [
            "run a",
            "run b",
            "rollback b outcome=success state=saved-by-b",
            "rollback a outcome=success state=saved-by-a"
        ]
    );
    // A full disk behind stdout: resume still rolls the killed run back.
    let killed = project(&format!(
        "{}{}",
        recorded("a", ""),
        recorded("slow", ", sleep: 600")
    ));
    let mut child = spawn(&killed, &["run"]);
    wait_for_log(&killed, 2, &mut child);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = killed
        .command(&["resume"])
        .stdout(full)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "resume exits as a rolled-back run");
    let log = log(&killed);
    assert!(
        log.contains(&"rollback slow outcome=failure state=saved-by-slow".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"rollback a outcome=success state=saved-by-a".to_owned()),
        "{log:?}"
    );
    killed
        .gantry(&["resume"])
        .expect_code(0)
        .stdout_has("nothing to resume");
}

/// Runs started within one second are told apart to the microsecond:
/// `gantry runs` lists them newest first in the order they started, and a
/// bare `gantry rollback` says which run it chose, and when it started,
/// before it does anything.
#[test]
fn the_newest_run_is_the_last_started_even_within_one_second() {
    let project = project(&recorded("deploy", ""));
    let mut ids = Vec::new();
    for _ in 0..4 {
        let outcome = project.gantry(&["run"]);
        outcome.expect_code(0);
        let id = outcome
            .stdout
            .split("(run ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("the run id")
            .to_owned();
        ids.push(id);
    }
    let listed: Vec<String> = project
        .gantry(&["runs"])
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| gantry::runs::is_run_id(word))
        .map(str::to_owned)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let newest = ids.last().unwrap();
    let outcome = project.gantry(&["rollback"]);
    outcome.expect_code(0);
    let first_line = outcome.stdout.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(&format!("gantry: the newest run is `{newest}`, started 20")),
        "{}",
        outcome.stdout
    );
    assert!(first_line.ends_with(" UTC"), "{first_line}");
}

/// A runner killed with SIGKILL leaves its temporary folders behind:
/// `gantry gc` removes those whose runner is gone, but keeps a step folder
/// holding state a killed step saved, which `gantry resume` then gives the
/// hook and removes.
#[test]
fn temporary_folders_of_killed_runs_are_swept_and_saved_state_kept_for_resume() {
    let project = project(&format!(
        "{}{}",
        recorded("a", ""),
        recorded("slow", ", sleep: 600")
    ));
    let temp = tempfile::tempdir().unwrap();
    let tmpdir = temp.path().to_str().unwrap();
    let leftovers = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("gantry-"))
            .collect();
        names.sort();
        names
    };
    let mut child = project
        .command(&["run"])
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_log(&project, 2, &mut child);
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    // An artifact folder of another killed run (pid 2^22 + 1 is above any
    // Linux pid, so its owner is surely gone).
    let dead = temp.path().join("gantry-artifacts-4194305-x");
    std::fs::create_dir_all(dead.join("site")).unwrap();
    std::fs::write(dead.join("site/index.html"), "old").unwrap();
    let step_folders: Vec<String> = leftovers()
        .into_iter()
        .filter(|name| name.starts_with("gantry-step-"))
        .collect();
    assert!(!step_folders.is_empty(), "{:?}", leftovers());

    let gc = project.gantry_with_env(&["gc", "--keep", "5"], &[("TMPDIR", tmpdir)]);
    // The other run's artifact folder, and the killed run's `runner.temp`.
    gc.expect_code(0)
        .stdout_has("removed 2 folders left in")
        .stdout_has("by killed runs")
        .stdout_has("kept 1 step folder");
    assert!(!dead.exists());
    project
        .gantry_with_env(&["resume"], &[("TMPDIR", tmpdir)])
        .expect_code(1);
    assert!(
        log(&project).contains(&"rollback slow outcome=failure state=saved-by-slow".to_owned()),
        "{:?}",
        log(&project)
    );
    project
        .gantry_with_env(&["gc", "--keep", "5"], &[("TMPDIR", tmpdir)])
        .expect_code(0);
    assert_eq!(leftovers(), Vec::<String>::new());
}
