//! The crash harness: a pipeline of hooked steps whose runner is killed
//! (SIGKILL) right after each journal entry it writes, in `gantry run` and
//! in `gantry resume`, then resumed. Whatever the point, every started
//! hook runs exactly once or is reported as interrupted, and no run is
//! left settled with a hook pending.
//!
//! The runner kills itself through `GANTRY_CRASH_AFTER_JOURNAL_WRITES`,
//! a test-only switch read by the journal.

use gantry_tests::{Outcome, Project, probe_pipeline};

const CRASH: &str = "GANTRY_CRASH_AFTER_JOURNAL_WRITES";
const LABELS: [&str; 3] = ["first", "second", "third"];

/// Three hooked steps; the third fails, so the run always rolls back.
fn project() -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    let steps: String = LABELS
        .iter()
        .map(|label| {
            let fail = if *label == "third" { ", fail: true" } else { "" };
            format!(
                "      - id: {label}\n        uses: probe\n        with: {{ action: record, label: {label}, log: /workspace/log.txt{fail} }}\n        permissions: {{ workspace: write }}\n        rollback: {{}}\n"
            )
        })
        .collect();
    project.manifest(&probe_pipeline(&sha, &steps));
    project
}

fn log(project: &Project) -> String {
    std::fs::read_to_string(project.path().join("log.txt")).unwrap_or_default()
}

/// The journal of the project's only run.
fn journal_text(project: &Project) -> String {
    std::fs::read_to_string(project.latest_run_dir().join("journal.jsonl")).unwrap()
}

fn journal_lines(project: &Project) -> usize {
    journal_text(project).lines().count()
}

/// The crash point right after the entry containing `entry` is written,
/// found in the journal of an uncrashed run.
fn point_after(entry: &str) -> usize {
    let clean = project();
    clean.gantry(&["run"]).expect_code(1);
    journal_text(&clean)
        .lines()
        .position(|line| line.contains(entry))
        .unwrap_or_else(|| panic!("no entry with {entry}"))
        + 1
}

fn killed(outcome: &Outcome) -> bool {
    outcome.code == -1
}

/// Resumes until nothing is left (at most three times), then checks the
/// promises: each hook ran at most once; a step that ran had its hook run
/// or reported interrupted (here, or in `earlier`, what killed commands
/// said); the run is settled.
fn resume_and_check(project: &Project, context: &str, earlier: &str) {
    let mut said = earlier.to_owned();
    for _ in 0..3 {
        let outcome = project.gantry(&["resume"]);
        assert!(
            !killed(&outcome) && outcome.code != 2,
            "{context}: resume failed\n{}\n{}",
            outcome.stdout,
            outcome.stderr
        );
        said.push_str(&outcome.stdout);
        if outcome.stdout.contains("nothing to resume") {
            break;
        }
    }
    assert!(
        said.contains("nothing to resume"),
        "{context}: the run was never settled\n{said}"
    );
    let log = log(project);
    for label in LABELS {
        let ran = log.contains(&format!("run {label}\n"));
        let hooks = log.matches(&format!("rollback {label} ")).count();
        let interrupted = said.contains(&format!("the rollback hook of `{label}` was interrupted"));
        assert!(
            hooks <= 1,
            "{context}: hook `{label}` ran {hooks} times\n{log}"
        );
        if ran {
            assert!(
                hooks == 1 || interrupted,
                "{context}: `{label}` ran but its hook neither ran nor was reported\n{log}\n{said}"
            );
        }
    }
    let runs = project.gantry(&["runs"]);
    runs.expect_code(0);
    assert!(
        !runs.stdout.contains("resume") && !runs.stdout.contains("DAMAGED"),
        "{context}: {}",
        runs.stdout
    );
}

#[test]
fn a_run_killed_after_any_journal_write_is_finished_by_resume() {
    let clean = project();
    clean.gantry(&["run"]).expect_code(1);
    let writes = journal_lines(&clean);
    assert!(writes > 10, "a run and its rollback write {writes} entries");
    for point in 1..=writes {
        let project = project();
        let outcome = project.gantry_with_env(&["run"], &[(CRASH, &point.to_string())]);
        assert!(
            killed(&outcome),
            "the run survived write {point}: {}",
            outcome.stdout
        );
        resume_and_check(&project, &format!("run killed after write {point}"), "");
    }
}

#[test]
fn a_resume_killed_after_any_journal_write_is_finished_by_the_next() {
    // Killed once both first steps have finished: the third is running.
    let run_point = point_after(r#""event":"step_started","seq":2"#);
    let resume_writes = {
        let project = project();
        project.gantry_with_env(&["run"], &[(CRASH, &run_point.to_string())]);
        let before = journal_lines(&project);
        project.gantry(&["resume"]).expect_code(1);
        journal_lines(&project) - before
    };
    assert!(resume_writes >= 4, "resume writes {resume_writes} entries");
    for point in 1..=resume_writes {
        let project = project();
        let run = project.gantry_with_env(&["run"], &[(CRASH, &run_point.to_string())]);
        assert!(killed(&run));
        let resume = project.gantry_with_env(&["resume"], &[(CRASH, &point.to_string())]);
        assert!(
            killed(&resume),
            "resume survived write {point}: {}",
            resume.stdout
        );
        resume_and_check(
            &project,
            &format!("resume killed after write {point}"),
            &resume.stdout,
        );
    }
}

/// A hook the runner died in is never run again by itself (nobody knows
/// how far it got), but a person may ask: `gantry resume --rerun STEP`
/// journals the request, then runs it once more.
#[test]
fn an_interrupted_hook_runs_again_only_when_asked() {
    // Killed right after the hook of `second` (seq 1) is journaled as
    // started, before it ran.
    let point = point_after(r#""event":"rollback_started","seq":1"#);
    let project = project();
    let run = project.gantry_with_env(&["run"], &[(CRASH, &point.to_string())]);
    assert!(killed(&run));
    project
        .gantry(&["resume"])
        .expect_code(4)
        .stdout_has("the rollback hook of `second` was interrupted earlier; it is not run twice");
    assert!(
        !log(&project).contains("rollback second"),
        "{}",
        log(&project)
    );
    project
        .gantry(&["resume", "--rerun", "nope"])
        .expect_code(2)
        .stderr_has("has no step `nope` with a rollback hook");
    project
        .gantry(&["resume", "--rerun", "second"])
        .expect_code(1)
        .stdout_has("the rollback hook of `second` will run again");
    assert_eq!(
        log(&project)
            .matches("rollback second outcome=success")
            .count(),
        1,
        "{}",
        log(&project)
    );
    project
        .gantry(&["resume"])
        .expect_code(0)
        .stdout_has("nothing to resume");
}

/// A run folder without a journal (the runner died between creating the
/// folder and the file) had nothing to compensate: `gantry runs` says so,
/// and a bare `gantry resume` passes over it to the newest run that does
/// need resuming, naming it first.
#[test]
fn a_run_folder_without_a_journal_does_not_hide_an_older_interrupted_run() {
    let project = project();
    let run = project.gantry_with_env(&["run"], &[(CRASH, "6")]);
    assert!(killed(&run));
    let interrupted = std::fs::read_dir(project.state_dir().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let empty = "29991231T235959.000000Z-ffffff";
    std::fs::create_dir(project.state_dir().join("runs").join(empty)).unwrap();
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("no journal: the runner died before the run began");
    project
        .gantry(&["resume"])
        .expect_code(1)
        .stdout_has(&format!("the newest run to resume is `{interrupted}`"));
    project
        .gantry(&["resume"])
        .expect_code(0)
        .stdout_has("nothing to resume: no run in");
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None`
/// where mounting is not allowed (the test is then skipped, saying so).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Free bytes, in whole blocks.
    fn free(&self) -> u64 {
        let path = std::ffi::CString::new(self.path().to_str().unwrap()).unwrap();
        // SAFETY: a valid path and a zeroed struct for statvfs to fill.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bavail * stat.f_bsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// A full disk stops a run at the journal entry it cannot write, leaves no
/// torn line, is told apart from a dead runner by `gantry runs`, and once
/// space is back `gantry resume` finishes the compensation: every started
/// hook runs exactly once.
#[test]
fn a_full_disk_stops_the_run_and_resume_finishes_it_once_there_is_room() {
    let Some(disk) = Tmpfs::mount("4m") else {
        return;
    };
    let state = disk.path().join("state");
    let state = state.to_str().unwrap();
    let project = project();
    // A first run keeps the plugin's copy in the state folder.
    project
        .gantry(&["run", "--state-dir", state])
        .expect_code(1);
    std::fs::remove_file(project.path().join("log.txt")).unwrap();
    // All the room but one page: the second run's journal fills it.
    let filler = disk.path().join("filler");
    let room = disk.free() - 4096;
    std::fs::write(&filler, vec![0u8; room as usize]).unwrap();
    let run = project.gantry(&["run", "--state-dir", state]);
    assert!(
        run.code != 0 && !killed(&run),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout_has("cannot write the run journal");
    let runs = project.gantry(&["runs", "--state-dir", state]);
    runs.expect_code(0)
        .stdout_has("stopped: its journal could not be written")
        .stdout_lacks("the runner died");
    // Resuming on a full disk runs no hook it cannot journal first.
    let before = log(&project);
    let full = project.gantry(&["resume", "--state-dir", state]);
    assert_ne!(full.code, 0, "{}", full.stdout);
    full.stderr_has("free some space");
    assert_eq!(log(&project), before, "{}", full.stdout);

    std::fs::remove_file(&filler).unwrap();
    let mut said = String::new();
    for _ in 0..3 {
        let outcome = project.gantry(&["resume", "--state-dir", state]);
        said.push_str(&outcome.stdout);
        if outcome.stdout.contains("nothing to resume") {
            break;
        }
    }
    assert!(said.contains("nothing to resume"), "{said}");
    let log = log(&project);
    for label in LABELS {
        if log.contains(&format!("run {label}\n")) {
            assert_eq!(
                log.matches(&format!("rollback {label} ")).count(),
                1,
                "{log}"
            );
        }
    }
    assert!(log.contains("run first"), "{log}");
    project
        .gantry(&["runs", "--state-dir", state])
        .expect_code(0)
        .stdout_lacks("DAMAGED")
        .stdout_lacks("resume");
}

/// Beside the kills at each journal write: kills at arbitrary moments of a
/// run and of its resume (the delays are printed, so a failure can be
/// replayed), each followed by resumes until the run is settled.
#[test]
fn a_run_killed_at_arbitrary_moments_is_finished_by_resume() {
    // A cheap, varied sequence: no need for a random crate, only spread.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut state = seed | 1;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for round in 0..8 {
        let project = project();
        let run_delay = next(40);
        let mut child = project
            .command(&["run"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The delay counts from the run's start (its journal), not from
        // the process's, which a busy machine makes vary more than a run.
        let runs = project.state_dir().join("runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_dir(&runs).map_or(true, |mut r| r.next().is_none())
            && child.try_wait().unwrap().is_none()
        {
            assert!(std::time::Instant::now() < deadline, "the run never began");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(run_delay));
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        child.wait().unwrap();
        let resume_delay = next(40);
        let resume = project
            .command(&["resume"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(resume_delay));
        // SAFETY: as above.
        unsafe { libc::kill(resume.id() as libc::pid_t, libc::SIGKILL) };
        let said = resume.wait_with_output().unwrap().stdout;
        resume_and_check(
            &project,
            &format!(
                "seed {seed}, round {round}: run killed after {run_delay} ms, resume after {resume_delay} ms"
            ),
            &String::from_utf8_lossy(&said),
        );
    }
}
