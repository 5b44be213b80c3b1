//! `deploy`: release folders, `current`, pruning and rollback, also when
//! the runner is killed mid-deployment.

use super::*;

/// Release `id` of `www`, as `current` names it: `releases/<id>`.
fn current(project: &Project) -> Option<String> {
    fs::read_link(project.path().join("www/current"))
        .ok()
        .map(|target| target.display().to_string())
}

/// The release folders of `www`, sorted (leftovers included).
fn releases(project: &Project) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(project.path().join("www/releases"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Job `build` renders the site for `version` into artifact `site`; job
/// `release` deploys it to `./www`, then runs `after` (step list items).
fn deploy_pipeline(project: &Project, version: &str, after: &str) {
    let rest = r#"env:
  VERSION: @VERSION@
jobs:
  build:
    steps:
      - uses: render
        with:
          text: '<h1>site {{ version }}</h1>'
          vars: version=${{ env.VERSION }}
          artifact: site
          out: index.html
        artifacts: { upload: [site] }
  release:
    needs: build
    steps:
      - id: deploy
        uses: deploy
        with: { artifact: site, target: /srv/site }
        permissions:
          dirs: [{ host: ./www, guest: /srv/site, access: write }]
        artifacts: { download: [site] }
        rollback: {}
      - uses: probe
        with:
          action: write
          path: /srv/site/outputs.txt
          content: '${{ steps.deploy.outputs.release }} [${{ steps.deploy.outputs.previous }}] ${{ steps.deploy.outputs.path }}'
        permissions:
          dirs: [{ host: ./www, guest: /srv/site, access: write }]
"#
    .replace("@VERSION@", version);
    manifest(
        project,
        &["render", "deploy", "probe"],
        &format!("{rest}{after}"),
    );
}

#[test]
fn deploy_switches_current_and_rolls_back_a_failed_release() {
    let project = Fixture::new();
    fs::create_dir(project.path().join("www")).unwrap();
    deploy_pipeline(&project, "v1", "");
    let first = JsonRun::new(&project);
    first.expect_code(0);
    let one = first.run_id();
    assert_eq!(
        current(&project).as_deref(),
        Some(&*format!("releases/{one}"))
    );
    assert_eq!(releases(&project), [one.as_str()]);
    assert_eq!(read(&project, "www/current/index.html"), "<h1>site v1</h1>");
    assert_eq!(read(&project, "www/releases.log"), format!("{one}\n"));
    assert_eq!(
        read(&project, "www/outputs.txt"),
        format!("{one} [] /srv/site/releases/{one}")
    );
    assert!(
        first.summary().contains(&format!(
            "Deployed release `{one}` to `/srv/site` (1 file, first release)."
        )),
        "{}",
        first.summary()
    );

    // A second release whose smoke test fails is rolled back: `current`
    // goes back to the first, and the failed release is gone.
    deploy_pipeline(
        &project,
        "v2",
        "      - uses: probe\n        with: { action: exit, code: 1 }\n",
    );
    let second = JsonRun::new(&project);
    second.expect_code(1);
    let two = second.run_id();
    assert_ne!(one, two);
    assert_eq!(
        read(&project, "www/outputs.txt"),
        format!("{two} [{one}] /srv/site/releases/{two}"),
        "the second release went live before the failing step"
    );
    let rollbacks: Vec<(&str, &str)> = second
        .events
        .iter()
        .filter(|e| e["event"] == "rollback_finished")
        .map(|e| (e["step"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(rollbacks, [("deploy", "success")]);
    assert_eq!(
        current(&project).as_deref(),
        Some(&*format!("releases/{one}"))
    );
    assert_eq!(releases(&project), [one.as_str()]);
    assert_eq!(read(&project, "www/current/index.html"), "<h1>site v1</h1>");
    assert_eq!(read(&project, "www/releases.log"), format!("{one}\n"));

    // Undoing the first run later takes it down: there was nothing before.
    project
        .gantry(&["rollback", &one])
        .expect_code(0)
        .stdout_has(&format!("rolling back release `{one}`"));
    assert_eq!(current(&project), None);
    assert!(
        project
            .path()
            .join("www/current")
            .symlink_metadata()
            .is_err(),
        "`current` is still there"
    );
    assert_eq!(releases(&project), Vec::<String>::new());
    // Undone once is undone: nothing is left to run.
    project
        .gantry(&["rollback", &one])
        .expect_code(0)
        .stdout_has("no rollback hook is left to run");
}

/// Deploys release `id` (its page says `id`) with `keep: 1`.
fn deploy_release(project: &Fixture, id: &str) -> JsonRun {
    let rest = r#"env:
  RELEASE: @ID@
jobs:
  build:
    steps:
      - uses: render
        with: { text: '{{ id }}', vars: 'id=${{ env.RELEASE }}', artifact: site, out: index.html }
        artifacts: { upload: [site] }
  release:
    needs: build
    steps:
      - uses: deploy
        with: { artifact: site, target: /srv/site, release-id: '${{ env.RELEASE }}', keep: 1 }
        permissions:
          dirs: [{ host: ./www, guest: /srv/site, access: write }]
        artifacts: { download: [site] }
        rollback: {}
"#
    .replace("@ID@", id);
    manifest(project, &["render", "deploy"], &rest);
    JsonRun::new(project)
}

#[test]
fn deploy_prunes_old_releases_and_never_undoes_a_superseded_one() {
    let project = Fixture::new();
    fs::create_dir(project.path().join("www")).unwrap();
    deploy_release(&project, "r1").expect_code(0);
    let second = deploy_release(&project, "r2");
    second.expect_code(0);
    // `keep: 1`, but the release live before is always kept.
    assert_eq!(releases(&project), ["r1", "r2"]);
    let third = deploy_release(&project, "r3");
    third.expect_code(0);
    assert_eq!(releases(&project), ["r2", "r3"]);
    assert_eq!(read(&project, "www/releases.log"), "r2\nr3\n");
    assert_eq!(current(&project).as_deref(), Some("releases/r3"));
    assert_eq!(read(&project, "www/current/index.html"), "r3");
    assert!(
        third.summary().contains(
            "Deployed release `r3` to `/srv/site` (1 file, previous release `r2`, pruned `r1`)."
        ),
        "{}",
        third.summary()
    );

    // A release is never overwritten: deploying `r3` again fails, and its
    // hook finds nothing to undo.
    deploy_release(&project, "r3")
        .expect_code(1)
        .logs_have("error: release `r3` already exists")
        .logs_have("nothing to undo");
    assert_eq!(current(&project).as_deref(), Some("releases/r3"));
    assert_eq!(releases(&project), ["r2", "r3"]);

    // Undoing `r2` now would undo `r3`'s deploy: the hook refuses, and
    // nothing changes.
    project
        .gantry(&["rollback", &second.run_id()])
        .expect_code(4)
        .stdout_has("another deploy probably ran since");
    assert_eq!(current(&project).as_deref(), Some("releases/r3"));
    assert_eq!(releases(&project), ["r2", "r3"]);
    assert_eq!(read(&project, "www/releases.log"), "r2\nr3\n");

    // Undoing `r3` goes back to `r2`.
    project
        .gantry(&["rollback", &third.run_id()])
        .expect_code(0)
        .stdout_has("switched `current` back to release `r2`");
    assert_eq!(current(&project).as_deref(), Some("releases/r2"));
    assert_eq!(releases(&project), ["r2"]);
    assert_eq!(read(&project, "www/releases.log"), "r2\n");
    assert_eq!(read(&project, "www/current/index.html"), "r2");
}

#[test]
fn a_site_packed_by_archive_is_deployed_whole() {
    let project = pipeline(
        &["archive", "checksum", "deploy"],
        r#"jobs:
  build:
    steps:
      - uses: archive
        with: { archive: dist/site.tar.gz, base: public }
        permissions: { workspace: write }
      - uses: archive
        with: { mode: extract, archive: dist/site.tar.gz, dest: /artifacts/site }
        permissions: { workspace: write }
        artifacts: { upload: [site] }
  release:
    needs: build
    steps:
      - uses: checksum
        with: { files: '/artifacts/site/index.html', expected: '@SHA@' }
        artifacts: { download: [site] }
      - uses: deploy
        with: { artifact: site, target: /srv/site }
        permissions:
          dirs: [{ host: ./www, guest: /srv/site, access: write }]
        artifacts: { download: [site] }
        rollback: {}
"#,
    );
    project.write("public/index.html", "<h1>home</h1>\n");
    project.write("public/css/site.css", "body { margin: 0 }\n");
    project.write("public/docs/guide/intro.html", "<p>intro</p>\n");
    fs::create_dir_all(project.path().join("public/uploads")).unwrap();
    fs::create_dir(project.path().join("www")).unwrap();
    let yaml = read(&project, "gantry.yml").replace("@SHA@", &sha256_hex(b"<h1>home</h1>\n"));
    project.manifest(&yaml);

    let run = JsonRun::new(&project);
    run.expect_code(0);
    let id = run.run_id();
    assert_eq!(current(&project), Some(format!("releases/{id}")));
    assert_eq!(
        tree(&project.path().join("www/current")),
        tree(&project.path().join("public"))
    );
    let summary = run.summary();
    assert!(
        summary.contains(&format!(
            "Deployed release `{id}` to `/srv/site` (3 files, first release)."
        )),
        "{summary}"
    );
}

#[test]
fn deploy_refuses_a_target_it_does_not_manage() {
    // Without the grant, the step fails and says what is missing.
    let project = pipeline(
        &["render", "deploy"],
        r#"jobs:
  main:
    steps:
      - uses: render
        with: { text: hi, artifact: site }
        artifacts: { upload: [site] }
      - uses: deploy
        with: { artifact: site, target: /srv/site }
        artifacts: { download: [site] }
        rollback: {}
"#,
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("/srv/site")
        .stdout_has("permissions.dirs");

    // A `current` that is a real folder is not deploy's to replace.
    let yaml = read(&project, "gantry.yml").replace(
        "        rollback: {}\n",
        "        permissions:\n          dirs: [{ host: ./www, guest: /srv/site, access: write }]\n        rollback: {}\n",
    );
    project.manifest(&yaml);
    project.write("www/current/index.html", "hand-made");
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("exists and is not a symbolic link");
    assert_eq!(read(&project, "www/current/index.html"), "hand-made");
    assert_eq!(releases(&project), Vec::<String>::new());
}

/// The crash harness on a real deployment: a failing second release whose
/// runner is killed after each journal entry, then resumed until settled.
/// Whatever the point, `current` points at a complete release, and at the
/// first one unless a hook was cut short (reported, never run twice).
#[test]
fn a_deployment_killed_at_any_journal_write_leaves_current_on_a_complete_release() {
    const CRASH: &str = "GANTRY_CRASH_AFTER_JOURNAL_WRITES";
    let failing = "      - uses: probe\n        with: { action: exit, code: 1 }\n";
    let deployed_once = || {
        let project = Fixture::new();
        fs::create_dir(project.path().join("www")).unwrap();
        deploy_pipeline(&project, "v1", "");
        project.gantry(&["run"]).expect_code(0);
        deploy_pipeline(&project, "v2", failing);
        project
    };
    let writes = {
        let project = deployed_once();
        project.gantry(&["run"]).expect_code(1);
        fs::read_to_string(project.latest_run_dir().join("journal.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    for point in 1..=writes {
        let project = deployed_once();
        let run = project.gantry_with(&["run"], &[(CRASH, &point.to_string())]);
        assert_eq!(run.code, -1, "the run survived write {point}");
        let mut said = String::new();
        for _ in 0..3 {
            let resumed = project.gantry(&["resume"]);
            said.push_str(&resumed.stdout);
            if resumed.stdout.contains("nothing to resume") {
                break;
            }
        }
        assert!(said.contains("nothing to resume"), "write {point}: {said}");
        let page = read(&project, "www/current/index.html");
        let interrupted = said.contains("was interrupted earlier");
        let expected: &[&str] = if interrupted {
            &["<h1>site v1</h1>", "<h1>site v2</h1>"]
        } else {
            &["<h1>site v1</h1>"]
        };
        assert!(
            expected.contains(&page.as_str()),
            "write {point}: {page}\n{said}"
        );
    }
}
