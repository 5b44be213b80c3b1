//! The trust boundary: nothing a step can write is ever trusted by the
//! runner. The runner's own files live outside the project and no
//! writable grant may reach them; the journal is a hash chain that gantry
//! refuses to act on once broken; the host follows no link a step could
//! have planted; the manifest and lock file are read only when they are
//! regular files of the project.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gantry_tests::{Outcome, Project, probe_pipeline, probe_project, sha256_hex};

use crate::fixture;

/// A step of the probe's `record` action with a rollback hook: it logs
/// `run LABEL` (and, in its hook, `rollback LABEL …`) to `log.txt`.
const HOOKED_STEP: &str = "      - id: deploy\n        uses: probe\n        with: { action: record, label: deploy, log: /workspace/log.txt }\n        permissions: { workspace: write }\n        rollback: {}\n";

/// The journal of the project's newest run.
fn journal_path(project: &Project) -> PathBuf {
    project.latest_run_dir().join("journal.jsonl")
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn log(project: &Project) -> String {
    fs::read_to_string(project.path().join("log.txt")).unwrap_or_default()
}

/// A `step_started` entry copied from the journal's first hooked step,
/// renumbered and with its hook granted `dirs`, chained to `prev`.
fn forged_hook_line(lines: &[String], dirs: serde_json::Value, prev: &str) -> String {
    let original = lines
        .iter()
        .find(|line| line.contains(r#""event":"step_started""#) && line.contains(r#""hook""#))
        .expect("a hooked step in the journal");
    let mut entry: serde_json::Value = serde_json::from_str(original).unwrap();
    entry["seq"] = 99.into();
    entry["hook"]["dirs"] = dirs;
    entry["hook"]["step_name"] = "forged".into();
    entry["prev"] = prev.into();
    entry.to_string()
}

#[test]
fn the_state_folder_lies_outside_the_project_and_is_printed() {
    let project = probe_project(HOOKED_STEP);
    project.gantry(&["run"]).expect_code(0).stdout_has(&format!(
        "gantry: state folder {}",
        project.state_dir().display()
    ));
    assert!(journal_path(&project).is_file());
    assert!(!project.state_dir().starts_with(project.path()));
    assert!(
        !project.path().join(".gantry").exists(),
        "nothing of gantry's in the project"
    );
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has(&format!("state folder {}", project.state_dir().display()));
}

/// The journal escape of issue 13: with the state folder inside a
/// writable workspace, a step could append a hook of its own making.
#[test]
fn a_writable_grant_over_the_state_folder_refuses_the_pipeline() {
    let project = probe_project(HOOKED_STEP);
    let root = project.path().canonicalize().unwrap();
    project
        .gantry(&["run", "--state-dir", "state"])
        .expect_code(2)
        .stderr_has("gantry.yml:")
        .stderr_has("step `deploy` of job `main` is granted `workspace: write`")
        .stderr_has(&format!(
            "`{}` holds gantry's state folder `{}`",
            root.display(),
            root.join("state").display()
        ))
        .stderr_has("hint: grant a narrower folder, or keep the state folder elsewhere with `--state-dir DIR`")
        .stderr_has("nothing ran");
    assert!(!project.path().join("state").join("runs").exists());
    assert!(!project.path().join("log.txt").exists(), "nothing ran");

    // A writable folder above the default state folder, granted by path.
    let state_home = project.state_home().to_str().unwrap().to_owned();
    let sha = project.probe_plugin("probe.wasm");
    let over = |access: &str| {
        probe_pipeline(
            &sha,
            &format!(
                "      - id: reach\n        uses: probe\n        with: {{ action: list, path: /state }}\n        permissions:\n          dirs: [{{ host: '{state_home}', guest: /state, access: {access} }}]\n"
            ),
        )
    };
    project.manifest(&over("write"));
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("step `reach` of job `main` is granted the writable folder")
        .stderr_has("holds gantry's state folder");
    // Reading it is no escape: allowed.
    project.manifest(&over("read"));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("list ok");
}

/// The cache escape of issue 13: the compiled-module cache is native code
/// the next run loads, so no step may write it.
#[test]
fn a_writable_grant_over_the_module_cache_refuses_the_pipeline() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    let cache = project.cache_home().join("gantry");
    fs::create_dir_all(&cache).unwrap();
    project.manifest(&probe_pipeline(
        &sha,
        &format!(
            "      - id: plant\n        uses: probe\n        with: {{ action: write, path: /cache/entry, content: code }}\n        permissions:\n          dirs: [{{ host: '{}', guest: /cache, access: write }}]\n",
            cache.display()
        ),
    ));
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("step `plant` of job `main` is granted the writable folder")
        .stderr_has("is gantry's compiled-module cache")
        .stderr_has("`XDG_CACHE_HOME`");
    assert!(!cache.join("entry").exists());
}

/// A journal whose chain is broken (a line appended by something else, a
/// line edited) is reported as damaged and nothing is run from it: not the
/// forged hook, not the real one.
#[test]
fn a_damaged_journal_is_never_acted_on() {
    let project = probe_project(HOOKED_STEP);
    project.gantry(&["run"]).expect_code(0);
    let path = journal_path(&project);
    let original = lines(&path);

    // Appended by someone who does not know the chain.
    let mut appended = original.clone();
    appended.push(forged_hook_line(
        &original,
        serde_json::json!([{ "host": "/", "guest": "/host", "writable": true }]),
        &"0".repeat(64),
    ));
    write_lines(&path, &appended);
    for command in ["rollback", "resume"] {
        project
            .gantry(&[command])
            .expect_code(2)
            .stderr_has("is damaged")
            .stderr_has(&format!("at line {}", appended.len()))
            .stderr_has("nothing was run from it")
            .stderr_has("hint:");
    }
    project
        .gantry(&["runs"])
        .expect_code(0)
        .stdout_has("DAMAGED");

    // A line edited in the middle breaks the chain after it.
    let mut edited = original.clone();
    edited[2] = edited[2].replace(r#""step":"deploy""#, r#""step":"other""#);
    assert_ne!(edited, original, "the edit changed something");
    write_lines(&path, &edited);
    project
        .gantry(&["rollback"])
        .expect_code(2)
        .stderr_has("is damaged at line 4");

    assert!(!log(&project).contains("rollback"), "no hook ran");
    // The journal as gantry wrote it is trusted again.
    write_lines(&path, &original);
    project.gantry(&["rollback"]).expect_code(0);
    assert!(
        log(&project).contains("rollback deploy"),
        "{}",
        log(&project)
    );
}

/// Defence in depth: even a hook read from an intact journal (one only
/// someone able to write the state folder could forge) never gets a
/// writable mount of gantry's own files; the sandbox checks every mount.
#[test]
fn a_hook_from_a_journal_never_gets_a_writable_grant_over_gantry_files() {
    let project = probe_project(HOOKED_STEP);
    project.gantry(&["run"]).expect_code(0);
    let path = journal_path(&project);
    let mut journal = lines(&path);
    let prev = sha256_hex(journal.last().unwrap().as_bytes());
    journal.push(forged_hook_line(
        &journal,
        serde_json::json!([{
            "host": project.state_dir(),
            "guest": "/state",
            "writable": true
        }]),
        &prev,
    ));
    write_lines(&path, &journal);
    project
        .gantry(&["rollback"])
        .expect_code(4)
        .stdout_has("refused to mount")
        .stdout_has("gantry's state folder");
}

/// Issue 13, 2(a): a step with a writable workspace replaces `./public` by
/// a link to a folder no grant names; a later step granted only
/// `./public` must not be given that folder.
#[test]
fn a_grant_a_step_replaced_by_a_symlink_is_refused() {
    let project = Project::new();
    let planter = project.wat_plugin("planter.wasm", &fixture("replace_grant_with_link.wat"));
    let probe = project.probe_plugin("probe.wasm");
    fs::create_dir(project.path().join("public")).unwrap();
    fs::create_dir(project.path().join("escaped")).unwrap();
    project.manifest(&format!(
        "name: links\nplugins:\n  planter:\n    source: planter.wasm\n    sha256: {planter}\n  probe:\n    source: probe.wasm\n    sha256: {probe}\njobs:\n  main:\n    steps:\n      - id: plant\n        uses: planter\n        permissions: {{ workspace: write }}\n      - id: publish\n        uses: probe\n        with: {{ action: write, path: /public/index.html, content: pwned }}\n        permissions:\n          workspace: none\n          dirs: [{{ host: ./public, guest: /public, access: write }}]\n"
    ));
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(1)
        .stdout_has("FAIL publish")
        .stdout_has("symbolic link");
    assert!(
        fs::symlink_metadata(project.path().join("public"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the hostile step did plant its link"
    );
    assert!(!project.path().join("escaped/index.html").exists());
}

/// Issue 13, 2(b): `store/tmp` replaced by a link to a host folder; `gantry
/// gc` must not empty that folder.
#[test]
fn gc_never_follows_a_link_in_place_of_a_store_folder() {
    let project =
        probe_project("      - uses: probe\n        with: { action: echo, message: hi }\n");
    project.gantry(&["run"]).expect_code(0);
    let precious = tempfile::tempdir().unwrap();
    fs::write(precious.path().join("keep.txt"), "mine").unwrap();
    let store = project.state_dir().join("store");
    let tmp = store.join("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&store).unwrap();
    std::os::unix::fs::symlink(precious.path(), &tmp).unwrap();
    let outcome = project.gantry(&["gc", "--keep", "0"]);
    assert_ne!(outcome.code, 0, "{}", outcome.stdout);
    outcome.stderr_has("symbolic link");
    assert!(precious.path().join("keep.txt").exists());

    // `runs` replaced by a link: nothing in its target is removed either.
    fs::remove_file(&tmp).unwrap();
    project.gantry(&["run"]).expect_code(0);
    let runs = project.state_dir().join("runs");
    let moved = project.state_dir().join("moved-runs");
    fs::rename(&runs, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &runs).unwrap();
    let outcome = project.gantry(&["gc", "--keep", "0"]);
    assert_ne!(outcome.code, 0, "{}", outcome.stdout);
    outcome.stderr_has("symbolic link");
    assert_eq!(fs::read_dir(&moved).unwrap().count(), 1, "the run is kept");
}

/// Runs `gantry` and fails the test if it has not ended within 30 s: a
/// FIFO must never make it block.
fn gantry_promptly(project: &Project, args: &[&str]) -> Outcome {
    let mut child = project
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gantry {args:?} blocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
}

/// The manifest and `gantry.lock` are read only as regular files of the
/// manifest's folder: a FIFO or a device is refused without blocking, and
/// a link leaving the folder is refused without its content being read,
/// so no error can print it.
#[test]
fn a_manifest_or_lock_file_gantry_cannot_trust_is_never_read() {
    let project = Project::new();
    project.probe_plugin("probe.wasm");
    project.manifest(
        "name: t\nplugins:\n  probe:\n    source: probe.wasm\njobs:\n  main:\n    steps:\n      - uses: probe\n",
    );
    let lock = project.path().join("gantry.lock");

    mkfifo(&lock);
    gantry_promptly(&project, &["verify"])
        .expect_code(3)
        .stderr_has("not a regular file");
    fs::remove_file(&lock).unwrap();

    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    let mut file = fs::File::create(&secret).unwrap();
    writeln!(file, "version: [the-secret-text").unwrap();
    std::os::unix::fs::symlink(&secret, &lock).unwrap();
    gantry_promptly(&project, &["verify"])
        .expect_code(3)
        .stderr_has("outside the manifest's folder")
        .stderr_lacks("the-secret-text");
    fs::remove_file(&lock).unwrap();

    let manifest = project.path().join("gantry.yml");
    fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink(&secret, &manifest).unwrap();
    gantry_promptly(&project, &["validate"])
        .expect_code(2)
        .stderr_has("outside the manifest's folder")
        .stderr_lacks("the-secret-text");
    fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    gantry_promptly(&project, &["validate"])
        .expect_code(2)
        .stderr_has("not a regular file");
    fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &manifest).unwrap();
    gantry_promptly(&project, &["validate"])
        .expect_code(2)
        .stderr_has("outside the manifest's folder");
}

/// A damaged run is kept by `gantry gc` (whether it needs compensating
/// cannot be told) until a person lets it go with `--remove-damaged`.
#[test]
fn gc_keeps_a_damaged_run_until_asked_to_remove_it() {
    let project = probe_project(HOOKED_STEP);
    project.gantry(&["run"]).expect_code(0);
    let path = journal_path(&project);
    let mut damaged = lines(&path);
    damaged.remove(1);
    write_lines(&path, &damaged);
    project
        .gantry(&["gc", "--keep", "0"])
        .expect_code(0)
        .stdout_has("kept run")
        .stdout_has("--remove-damaged");
    assert!(path.exists());
    project
        .gantry(&["gc", "--keep", "0", "--remove-damaged"])
        .expect_code(0)
        .stdout_has("removed run");
    assert!(!path.exists());
}
