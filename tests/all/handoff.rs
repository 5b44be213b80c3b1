//! Job hand-off bundles across "machines" (each a project folder and a
//! state folder of its own): `gantry run --job ID --export DIR`, `--import
//! DIR…`, and the rollback job's `gantry rollback --import DIR…`.

use std::path::{Path, PathBuf};

use gantry_tests::{Outcome, Project};

/// A pipeline of three jobs: `build` uploads an artifact and sets an
/// output, `deploy` reads both, `check` fails when `fail_check`. Each step
/// with a hook records what it does in `<target>/log.txt`, a folder outside
/// every machine's checkout (the deployment target they share).
pub fn three_jobs(sha: &str, target: &Path, fail_check: bool) -> String {
    let target = target.display();
    let record = |label: &str, fail: bool| {
        format!(
            "      - id: {label}\n        uses: probe\n        with: {{ action: record, label: {label}, log: /target/log.txt, fail: {fail} }}\n        permissions: {{ dirs: [{{ host: \"{target}\", guest: /target, access: write }}] }}\n        rollback: {{}}\n"
        )
    };
    format!(
        "name: handoff\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  build:\n    outputs:\n      version: ${{{{ steps.make.outputs.message }}}}\n    steps:\n{}      - id: make\n        uses: probe\n        with: {{ action: echo, message: v1.2.3 }}\n      - uses: probe\n        with: {{ action: write, path: /artifacts/site/index.html, content: hello-site }}\n        artifacts: {{ upload: [site] }}\n  deploy:\n    needs: build\n    steps:\n{}      - uses: probe\n        with: {{ action: echo, message: \"got ${{{{ needs.build.outputs.version }}}}\" }}\n      - uses: probe\n        with: {{ action: read, path: /artifacts/site/index.html }}\n        artifacts: {{ download: [site] }}\n  check:\n    needs: deploy\n    steps:\n{}",
        record("build", false),
        record("deploy", false),
        record("check", fail_check),
    )
}

/// A machine: a checkout of the project of its own, with its own state.
pub struct Machine {
    pub project: Project,
}

impl Machine {
    pub fn new(manifest: &str) -> Machine {
        let project = Project::new();
        project.probe_plugin("probe.wasm");
        project.manifest(manifest);
        Machine { project }
    }

    pub fn gantry(&self, args: &[&str]) -> Outcome {
        self.project.gantry(args)
    }
}

fn bundle(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn log(target: &Path) -> Vec<String> {
    std::fs::read_to_string(target.join("log.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Engine-side storage between machines.
struct Setup {
    target: tempfile::TempDir,
    carried: tempfile::TempDir,
    manifest: String,
}

fn setup(fail_check: bool) -> Setup {
    let target = tempfile::tempdir().unwrap();
    let sha = gantry_tests::sha256_hex(&std::fs::read(gantry_tests::PROBE_WASM).unwrap());
    let manifest = three_jobs(&sha, target.path(), fail_check);
    Setup {
        target,
        carried: tempfile::tempdir().unwrap(),
        manifest,
    }
}

impl Setup {
    fn path(&self, name: &str) -> String {
        bundle(self.carried.path(), name).display().to_string()
    }

    /// Runs `job` on a fresh machine, importing `imports`, exporting to
    /// its own bundle.
    fn run(&self, job: &str, imports: &[&str]) -> Outcome {
        let machine = Machine::new(&self.manifest);
        let export = self.path(job);
        let mut args = vec!["run", "--job", job, "--export", export.as_str()];
        let imports: Vec<String> = imports.iter().map(|i| self.path(i)).collect();
        for import in &imports {
            args.extend(["--import", import.as_str()]);
        }
        machine.gantry(&args)
    }
}

#[test]
fn three_machines_hand_on_outputs_and_artifacts_and_one_rollback_job_compensates_them_all() {
    let setup = setup(true);
    setup.run("build", &[]).expect_code(0);
    setup
        .run("deploy", &["build"])
        .expect_code(0)
        .stdout_has("message: got v1.2.3")
        .stdout_has("read ok: hello-site");
    // The failing job rolls back its own step on its machine.
    setup.run("check", &["deploy"]).expect_code(1);
    assert_eq!(
        log(setup.target.path()),
        [
            "run build",
            "run deploy",
            "run check",
            "rollback check outcome=failure state=saved-by-check"
        ]
    );
    // The rollback job, on a fourth machine, gathers every bundle.
    let rollback = Machine::new(&setup.manifest);
    let carried = setup.carried.path().display().to_string();
    rollback
        .gantry(&["rollback", "--import", &carried])
        .expect_code(0)
        .stdout_has("2 hooks to run");
    // `check`'s hook already ran on its machine: it never runs twice.
    assert_eq!(
        log(setup.target.path())[4..],
        [
            "rollback deploy outcome=success state=saved-by-deploy",
            "rollback build outcome=success state=saved-by-build"
        ]
    );
    // The rollback job's journal names the runs it took over and chains
    // like any other.
    let run = rollback.project.latest_run_dir();
    let records = gantry::journal::read(&run.join("journal.jsonl")).expect("an intact chain");
    let imported_runs = records
        .iter()
        .filter(|r| matches!(r.entry, gantry::journal::Entry::ImportedRun { .. }))
        .count();
    assert_eq!(imported_runs, 3);
    assert_eq!(
        gantry::journal::RunState::of(&records),
        gantry::journal::RunState::Settled
    );
    // `gantry runs` lists the rollback job's run like any other.
    rollback.gantry(&["runs"]).expect_code(0);
}

#[test]
fn a_rollback_job_cut_short_is_finished_by_resume_on_its_machine() {
    let setup = setup(true);
    setup.run("build", &[]).expect_code(0);
    setup.run("deploy", &["build"]).expect_code(0);
    setup.run("check", &["deploy"]).expect_code(1);
    let rollback = Machine::new(&setup.manifest);
    let carried = setup.carried.path().display().to_string();
    // Killed right after `rollback_begun`, the 8th entry (run_started,
    // three imported_run, two imported_step, run_finished): no hook ran.
    let killed = rollback.project.gantry_with_env(
        &["rollback", "--import", &carried],
        &[("GANTRY_CRASH_AFTER_JOURNAL_WRITES", "8")],
    );
    assert_ne!(killed.code, 0, "killed");
    assert_eq!(log(setup.target.path()).len(), 4, "no hook ran yet");
    rollback.gantry(&["resume"]).expect_code(1);
    assert_eq!(
        log(setup.target.path())[4..],
        [
            "rollback deploy outcome=success state=saved-by-deploy",
            "rollback build outcome=success state=saved-by-build"
        ]
    );
    rollback
        .gantry(&["resume"])
        .expect_code(0)
        .stdout_has("nothing to resume");
}

#[test]
fn a_rollback_job_with_no_bundle_has_nothing_to_do_and_a_folder_without_one_is_an_error() {
    let setup = setup(false);
    let machine = Machine::new(&setup.manifest);
    machine
        .gantry(&["rollback", "--import", &setup.path("never-written")])
        .expect_code(0)
        .stdout_has("no bundle was imported");
    let empty = setup.carried.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    machine
        .gantry(&["rollback", "--import", &empty.display().to_string()])
        .expect_code(2)
        .stderr_has(&format!("bundle `{}`", empty.display()));
}

#[test]
fn a_matrix_job_runs_one_combination_per_machine() {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: fan\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  deploy:\n    strategy:\n      matrix:\n        region: [eu, us, ap]\n    outputs:\n      last: ${{{{ steps.say.outputs.message }}}}\n    steps:\n      - id: say\n        uses: probe\n        with: {{ action: echo, message: \"at ${{{{ matrix.region }}}} ${{{{ strategy.job-index }}}}\" }}\n  report:\n    needs: deploy\n    steps:\n      - uses: probe\n        with: {{ action: echo, message: \"saw ${{{{ needs.deploy.outputs.last }}}}\" }}\n"
    ));
    let carried = tempfile::tempdir().unwrap();
    let dir = |name: &str| carried.path().join(name).display().to_string();
    for index in 0..3 {
        let instance = index.to_string();
        project
            .gantry(&[
                "run",
                "--job",
                "deploy",
                "--instance",
                &instance,
                "--export",
                &dir(&format!("deploy.{index}")),
            ])
            .expect_code(0)
            .stdout_has(&format!(
                "message: at {} {index}",
                ["eu", "us", "ap"][index]
            ));
    }
    // Every combination's bundle is a need; the last one's output wins.
    project
        .gantry(&["run", "--job", "report", "--import", &dir("")])
        .expect_code(0)
        .stdout_has("message: saw at ap 2");
    // One combination missing is a missing need, named.
    std::fs::remove_dir_all(carried.path().join("deploy.1")).unwrap();
    project
        .gantry(&["run", "--job", "report", "--import", &dir("")])
        .expect_code(2)
        .stderr_has("no bundle of `deploy.1` was imported (missing need)");
    project
        .gantry(&[
            "run",
            "--job",
            "deploy",
            "--instance",
            "3",
            "--export",
            &dir("x"),
        ])
        .expect_code(2)
        .stderr_has("there is no combination 3");
}

#[test]
fn a_tampered_blob_a_foreign_bundle_or_a_missing_need_is_an_error_naming_the_bundle() {
    let setup = setup(false);
    setup.run("build", &[]).expect_code(0);
    let build = setup.carried.path().join("build");

    // A missing need: deploy without build's bundle.
    let machine = Machine::new(&setup.manifest);
    machine.gantry(&["run", "--job", "deploy"]).expect_code(0);
    machine
        .gantry(&[
            "run",
            "--job",
            "deploy",
            "--export",
            &setup.path("deploy-alone"),
        ])
        .expect_code(2)
        .stderr_has("job `deploy` needs `build`, and no bundle of `build` was imported");
    assert!(!setup.carried.path().join("deploy-alone").exists());

    // A bundle of another pipeline (the manifest changed since).
    let other = Machine::new(&setup.manifest.replace("v1.2.3", "v9"));
    other
        .gantry(&["run", "--job", "deploy", "--import", &setup.path("build")])
        .expect_code(2)
        .stderr_has(&format!("bundle `{}`", build.display()))
        .stderr_has("comes from another pipeline");

    // A bundle of a job that is not a need.
    setup.run("deploy", &["build"]).expect_code(0);
    Machine::new(&setup.manifest)
        .gantry(&[
            "run",
            "--job",
            "check",
            "--import",
            &setup.path("deploy"),
            "--import",
            &setup.path("build"),
        ])
        .expect_code(2)
        .stderr_has("which job `check` does not need");

    // A tampered blob: the bytes no longer match their name.
    let blobs = build.join("blobs");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut permissions = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&blob, permissions).unwrap();
    std::fs::write(&blob, "tampered").unwrap();
    let outcome = Machine::new(&setup.manifest).gantry(&[
        "run",
        "--job",
        "deploy",
        "--import",
        &setup.path("build"),
    ]);
    outcome
        .expect_code(2)
        .stderr_has(&format!("bundle `{}`", build.display()))
        .stderr_has("was altered");
    assert!(!outcome.stdout.contains("read ok"), "nothing ran");

    // An edited journal breaks its chain, and so the bundle.
    let deploy = setup.carried.path().join("deploy");
    let journal = deploy.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, text.replace("deploy", "depl0y")).unwrap();
    Machine::new(&setup.manifest)
        .gantry(&["rollback", "--import", &setup.path("deploy")])
        .expect_code(2)
        .stderr_has(&format!("bundle `{}`", deploy.display()))
        .stderr_has("`journal.jsonl` was altered");
}
