//! `gantry artifacts` and `gantry gc` through the real binary, on state
//! folders prepared with the library (no pipeline uploads artifacts yet).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gantry::artifacts::{RunArtifacts, Store, Tree};
use gantry::run_lock::RunLock;
use gantry::runs;
use gantry_tests::Project;

const OLD: &str = "20261123T120102Z-3fa9c2";
const NEW: &str = "20261124T080000Z-0b1c2d";

/// Stores `files` (path, contents) as an upload and returns its tree.
fn store_files(state: &Path, files: &[(&str, &str)]) -> Tree {
    let upload = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = upload.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    Store::open(state).unwrap().put_tree(upload.path()).unwrap()
}

fn record(state: &Path, run: &str, name: &str, job: &str, step: &str, tree: &Tree) {
    RunArtifacts::open(state, run)
        .unwrap()
        .record(name, job, step, tree.clone())
        .unwrap();
}

/// A project whose state folder holds two runs: the old one uploaded `site`
/// (v1), the new one `site` (v2, with a folder and a link) and `report`.
fn project_with_runs() -> (Project, PathBuf) {
    let project = Project::new();
    let state = project.state_dir();
    let v1 = store_files(&state, &[("index.html", "v1")]);
    record(&state, OLD, "site", "build", "page", &v1);
    let v2 = store_files(
        &state,
        &[
            ("index.html", "v2"),
            ("css/site.css", "body { color: red }"),
        ],
    );
    record(&state, NEW, "site", "build", "page", &v2);
    let report = store_files(&state, &[("report.txt", &"x".repeat(3000))]);
    record(&state, NEW, "report", "test (linux)", "junit", &report);
    (project, state)
}

#[test]
fn the_newest_run_is_listed_by_default() {
    let (project, _state) = project_with_runs();
    let outcome = project.gantry(&["artifacts"]);
    outcome
        .expect_code(0)
        .stdout_has(&format!("run {NEW}: 2 artifacts"))
        .stdout_has("NAME")
        .stdout_has("test (linux)/junit")
        .stdout_has("2.9 KiB")
        .stdout_has("sha256:");
    let site = outcome
        .stdout
        .lines()
        .find(|line| line.starts_with("site "))
        .expect("a line for `site`");
    assert!(
        site.contains("build/page") && site.contains(" 2 "),
        "{site}"
    );
    // `report` sorts before `site`.
    assert!(outcome.stdout.find("report").unwrap() < outcome.stdout.find("site ").unwrap());
    outcome.stdout_lacks("index.html");
}

#[test]
fn a_run_is_chosen_by_id_or_unique_prefix() {
    let (project, _state) = project_with_runs();
    project
        .gantry(&["artifacts", OLD])
        .expect_code(0)
        .stdout_has(&format!("run {OLD}: 1 artifact"));
    project
        .gantry(&["artifacts", "20261123"])
        .expect_code(0)
        .stdout_has(&format!("run {OLD}"));
    project
        .gantry(&["artifacts", "2026112"])
        .expect_code(2)
        .stderr_has("error: `2026112` is the start of 2 runs")
        .stderr_has(OLD)
        .stderr_has(NEW);
    project
        .gantry(&["artifacts", "1999"])
        .expect_code(2)
        .stderr_has("no run `1999`")
        .stderr_has(NEW);
}

#[test]
fn files_are_listed_on_request() {
    let (project, _state) = project_with_runs();
    project
        .gantry(&["artifacts", "--files"])
        .expect_code(0)
        .stdout_has("drwx")
        .stdout_has("css/")
        .stdout_has("css/site.css")
        .stdout_has("-rw")
        .stdout_has("report.txt");
}

#[test]
fn the_state_folder_comes_from_the_manifest_or_state_dir() {
    let (project, state) = project_with_runs();
    // Elsewhere (the same user, so the same `XDG_STATE_HOME`): `--manifest`
    // names the project (folder or file), or `--state-dir` the state
    // folder itself.
    let elsewhere = Project::new();
    let same_user = [("XDG_STATE_HOME", project.state_home().to_str().unwrap())];
    let folder = project.path().to_str().unwrap();
    elsewhere
        .gantry_with_env(&["artifacts", "--manifest", folder], &same_user)
        .expect_code(0)
        .stdout_has(NEW);
    let file = project.path().join("gantry.yml");
    elsewhere
        .gantry_with_env(&["artifacts", "-m", file.to_str().unwrap()], &same_user)
        .expect_code(0)
        .stdout_has(NEW);
    elsewhere
        .gantry(&["artifacts", "--state-dir", state.to_str().unwrap(), OLD])
        .expect_code(0)
        .stdout_has(OLD);
    elsewhere
        .gantry(&["artifacts"])
        .expect_code(2)
        .stderr_has("there are no runs in the state folder")
        .stderr_has("--state-dir");
}

#[test]
fn a_run_without_artifacts_says_so() {
    let project = Project::new();
    fs::create_dir_all(runs::run_dir(&project.state_dir(), OLD)).unwrap();
    project
        .gantry(&["artifacts"])
        .expect_code(0)
        .stdout_has(&format!("run {OLD} has no artifacts"));
}

#[test]
fn get_extracts_the_latest_upload_verified() {
    let (project, _state) = project_with_runs();
    project
        .gantry(&["artifacts", "get", "site", "--to", "out"])
        .expect_code(0)
        .stdout_has(&format!(
            "extracted `site` from run {NEW} into `out`: 2 files"
        ));
    let out = project.path().join("out");
    assert_eq!(fs::read_to_string(out.join("index.html")).unwrap(), "v2");
    assert_eq!(
        fs::read_to_string(out.join("css/site.css")).unwrap(),
        "body { color: red }"
    );

    // From an older run, into ./NAME by default.
    project
        .gantry(&["artifacts", "get", "site", "--run", "20261123"])
        .expect_code(0);
    assert_eq!(
        fs::read_to_string(project.path().join("site/index.html")).unwrap(),
        "v1"
    );

    // The run may come first, and the state folder from anywhere.
    let elsewhere = Project::new();
    let state = project.state_dir();
    elsewhere
        .gantry(&[
            "artifacts",
            "--state-dir",
            state.to_str().unwrap(),
            OLD,
            "get",
            "site",
            "--to",
            "old",
        ])
        .expect_code(0);
    assert_eq!(
        fs::read_to_string(elsewhere.path().join("old/index.html")).unwrap(),
        "v1"
    );
    project
        .gantry(&["artifacts", OLD, "get", "site", "--run", NEW])
        .expect_code(2)
        .stderr_has("the run is given twice");
}

#[test]
fn get_refuses_a_wrong_name_or_a_non_empty_folder() {
    let (project, _state) = project_with_runs();
    project
        .gantry(&["artifacts", "get", "nope", "--to", "out"])
        .expect_code(2)
        .stderr_has(&format!("run {NEW} has no artifact `nope`"))
        .stderr_has("`report`, `site`");
    assert!(!project.path().join("out").exists());
    project.write("full/mine.txt", "keep me");
    project
        .gantry(&["artifacts", "get", "site", "--to", "full"])
        .expect_code(2)
        .stderr_has("is not empty");
    assert_eq!(
        fs::read_to_string(project.path().join("full/mine.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn get_detects_a_corrupt_store_naming_the_file() {
    let (project, state) = project_with_runs();
    let store = Store::open(&state).unwrap();
    let sha = gantry_tests::sha256_hex(b"body { color: red }");
    let blob = store.blob_path(&sha);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, "body { color: blue }").unwrap();
    project
        .gantry(&["artifacts", "get", "site", "--to", "out"])
        .expect_code(1)
        .stderr_has("cannot extract `site`")
        .stderr_has("store is corrupt")
        .stderr_has("`css/site.css`");
    assert!(
        !project.path().join("out").exists(),
        "nothing half-extracted is left"
    );
    fs::remove_file(&blob).unwrap();
    project
        .gantry(&["artifacts", "get", "site", "--to", "out"])
        .expect_code(1)
        .stderr_has("`css/site.css` is missing");
}

#[test]
fn gc_keeps_the_newest_runs_and_their_artifacts() {
    let (project, state) = project_with_runs();
    let blobs = |state: &Path| {
        fs::read_dir(state.join("store/blobs"))
            .unwrap()
            .map(|shard| fs::read_dir(shard.unwrap().path()).unwrap().count())
            .sum::<usize>()
    };
    assert_eq!(blobs(&state), 4);

    project
        .gantry(&["gc", "--keep", "1", "--dry-run"])
        .expect_code(0)
        .stdout_has(&format!("would remove run {OLD}"))
        .stdout_has("would remove 1 unused artifact blob (2 B)");
    assert!(runs::run_dir(&state, OLD).exists());

    project
        .gantry(&["gc", "--keep", "1"])
        .expect_code(0)
        .stdout_has(&format!("removed run {OLD}"))
        .stdout_has("removed 1 unused artifact blob (2 B)")
        .stdout_has("freed ")
        .stdout_has("kept 1 run")
        .stdout_lacks(NEW);
    assert!(!runs::run_dir(&state, OLD).exists());
    assert_eq!(blobs(&state), 3);
    project
        .gantry(&["artifacts", "get", "site", "--to", "out"])
        .expect_code(0);

    project
        .gantry(&["gc", "--keep", "0"])
        .expect_code(0)
        .stdout_has(&format!("removed run {NEW}"))
        .stdout_has("removed 3 unused artifact blobs");
    assert_eq!(blobs(&state), 0);
    project
        .gantry(&["artifacts"])
        .expect_code(2)
        .stderr_has("no runs");
}

#[test]
fn gc_never_overlaps_a_run() {
    let (project, state) = project_with_runs();
    let lock = RunLock::acquire(&state, false).unwrap();
    project
        .gantry(&["gc", "--keep", "0"])
        .expect_code(2)
        .stderr_has("another gantry run")
        .stderr_has("--wait");
    assert!(runs::run_dir(&state, OLD).exists());

    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(lock);
    });
    project
        .gantry(&["gc", "--keep", "1", "--wait"])
        .expect_code(0)
        .stderr_has("waiting for the state folder")
        .stdout_has(&format!("removed run {OLD}"));
    release.join().unwrap();
}

#[test]
fn gc_without_a_state_folder_removes_nothing() {
    let project = Project::new();
    project
        .gantry(&["gc", "--keep", "3"])
        .expect_code(0)
        .stdout_has("nothing to remove");
    assert!(!project.state_dir().exists());
}
