//! The first-party plugins (`plugins/`), built for wasm32-wasip1 by
//! `tests/build.rs`, in real pipelines through the `gantry` binary: each
//! test checks what a plugin did on disk, in its outputs (passed on to a
//! later step) and in the run's summary, as its README promises.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use gantry_tests::{FIRST_PARTY_PLUGINS, Outcome, Project, sha256_hex};
use serde_json::Value;

/// A test project whose runs share one compiled-module cache with the
/// other tests of this module running at the same time, so each plugin is
/// compiled about once rather than once per test. The cache folder goes
/// away with the last test using it; the cache itself is tested in
/// `cache.rs`.
struct Fixture {
    project: Project,
    cache: Arc<tempfile::TempDir>,
}

impl Fixture {
    fn new() -> Fixture {
        static SHARED: Mutex<Weak<tempfile::TempDir>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let cache = shared.upgrade().unwrap_or_else(|| {
            let cache = Arc::new(
                tempfile::Builder::new()
                    .prefix("gantry-test-cache-")
                    .tempdir()
                    .expect("temp folder"),
            );
            *shared = Arc::downgrade(&cache);
            cache
        });
        Fixture {
            project: Project::new(),
            cache,
        }
    }

    /// Runs `gantry` with `args` in the project folder, with the shared cache.
    fn gantry(&self, args: &[&str]) -> Outcome {
        self.gantry_with(args, &[])
    }

    /// [`Fixture::gantry`] with more environment variables.
    fn gantry_with(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let cache = self.cache.path().to_str().expect("a UTF-8 temp path");
        let mut all = vec![("XDG_CACHE_HOME", cache)];
        all.extend_from_slice(env);
        self.project.gantry_with_env(args, &all)
    }
}

impl Deref for Fixture {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.project
    }
}

/// Copies `plugins` (first-party names, or `probe` for the test guest)
/// into `plugins/` of the project and writes a manifest that pins them
/// inline, followed by `rest` (top-level YAML: `env:`, `jobs:`).
fn manifest(project: &Project, plugins: &[&str], rest: &str) {
    let mut yaml = String::from("name: first-party\nplugins:\n");
    for name in plugins {
        let relative = format!("plugins/{name}.wasm");
        let sha = if *name == "probe" {
            project.probe_plugin(&relative)
        } else {
            project.first_party_plugin(name, &relative)
        };
        yaml.push_str(&format!(
            "  {name}: {{ source: {relative}, sha256: {sha} }}\n"
        ));
    }
    yaml.push_str(rest);
    project.manifest(&yaml);
}

/// A fresh project with `plugins` pinned and the manifest body `rest`.
fn pipeline(plugins: &[&str], rest: &str) -> Fixture {
    let project = Fixture::new();
    manifest(&project, plugins, rest);
    project
}

/// What `gantry run --format json` did: its outcome and its events.
struct JsonRun {
    outcome: Outcome,
    events: Vec<Value>,
}

impl JsonRun {
    fn new(project: &Fixture) -> JsonRun {
        let outcome = project.gantry(&["run", "--format", "json"]);
        let events = outcome
            .stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON event per line ({e}): {line}"))
            })
            .collect();
        JsonRun { outcome, events }
    }

    #[track_caller]
    fn expect_code(&self, code: i32) -> &Self {
        self.outcome.expect_code(code);
        self
    }

    fn run_id(&self) -> String {
        let started = self
            .events
            .iter()
            .find(|e| e["event"] == "run_started")
            .expect("a run_started event");
        started["run_id"].as_str().expect("a run id").to_owned()
    }

    /// Everything the steps printed, one line each; workflow commands
    /// (annotations) as `LEVEL: TEXT`.
    fn logs(&self) -> String {
        let mut logs = String::new();
        for event in &self.events {
            let text = event["text"].as_str().unwrap_or_default();
            if event["event"] == "log" {
                logs.push_str(&format!("{text}\n"));
            } else if event["event"] == "annotation" {
                logs.push_str(&format!("{}: {text}\n", event["level"].as_str().unwrap()));
            }
        }
        logs
    }

    #[track_caller]
    fn logs_have(&self, text: &str) -> &Self {
        let logs = self.logs();
        assert!(logs.contains(text), "the logs lack {text:?}\n{logs}");
        self
    }

    fn summary(&self) -> String {
        let finished = self.events.last().expect("some events");
        assert_eq!(finished["event"], "run_finished", "{finished}");
        let path = finished["summary_path"]
            .as_str()
            .unwrap_or_else(|| panic!("the run wrote no summary: {finished}"));
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading `{path}`: {e}"))
    }
}

fn read(project: &Project, relative: &str) -> String {
    let path = project.path().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()))
}

/// Every file and folder under `root`, by relative path: a file maps to
/// its bytes, a folder to `None`.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, entries: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_owned();
            if path.is_dir() {
                entries.insert(relative, None);
                walk(root, &path, entries);
            } else {
                entries.insert(relative, Some(fs::read(&path).unwrap()));
            }
        }
    }
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}

#[test]
fn hello_greets_and_hands_its_output_env_and_summary_on() {
    let project = pipeline(
        &["hello", "probe"],
        r#"jobs:
  main:
    steps:
      - id: greet
        uses: hello
        with: { who: gantry, greeting: Hi }
      - uses: probe
        with:
          action: write
          path: /workspace/seen.txt
          content: '${{ steps.greet.outputs.message }} / ${{ env.GREETED }}'
        permissions: { workspace: write }
"#,
    );
    let run = JsonRun::new(&project);
    run.expect_code(0).logs_have("Hi, gantry!\n");
    assert_eq!(read(&project, "seen.txt"), "Hi, gantry! / gantry");
    assert!(
        run.events.iter().any(|e| e["event"] == "annotation"
            && e["level"] == "notice"
            && e["text"] == "greeted gantry"),
        "no notice annotation: {:?}",
        run.events
    );
    assert!(run.summary().contains("- Hi, gantry!"), "{}", run.summary());
}

#[test]
fn render_fills_templates_into_an_artifact_and_the_workspace() {
    let project = pipeline(
        &["render", "hello", "checksum", "probe"],
        r#"env:
  SITE: demo
jobs:
  build:
    steps:
      - id: greet
        uses: hello
        with: { who: render }
      - id: page
        uses: render
        with:
          template: site/index.html.tmpl
          artifact: site
          escape: html
          vars: |
            # the page's variables
            title=${{ env.SITE }} & co

            greeting=${{ steps.greet.outputs.message }}
        artifacts: { upload: [site] }
      - id: note
        uses: render
        with:
          text: 'tag={{ app.tag }} hosts={{ hosts }} second={{ hosts.1 }} n={{n}} on={{ on }}'
          vars: '{"app": {"tag": "v2"}, "hosts": ["a", "b"], "n": 3, "on": true}'
          out: out/tag.txt
        permissions: { workspace: write }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: '${{ steps.page.outputs.path }} ${{ steps.page.outputs.digest }} ${{ steps.page.outputs.bytes }} ${{ steps.note.outputs.path }}'
        permissions: { workspace: write }
  verify:
    needs: build
    steps:
      - uses: checksum
        with:
          files: /artifacts/site/index.html
          expected: '@EXPECTED@'
        artifacts: { download: [site] }
"#,
    );
    project.write(
        "site/index.html.tmpl",
        "<h1>{{ title }}</h1>\n<p>{{greeting}}</p>\n<code>\\{{ kept }}</code>\n",
    );
    let page = "<h1>demo &amp; co</h1>\n<p>Hello, render!</p>\n<code>{{ kept }}</code>\n";
    let digest = sha256_hex(page.as_bytes());
    let yaml = read(&project, "gantry.yml").replace("@EXPECTED@", &digest);
    project.manifest(&yaml);

    let run = JsonRun::new(&project);
    run.expect_code(0)
        .logs_have("`/artifacts/site/index.html` matches the expected sha256");
    assert_eq!(
        read(&project, "out/tag.txt"),
        r#"tag=v2 hosts=["a","b"] second=b n=3 on=true"#
    );
    assert_eq!(
        read(&project, "outputs.txt"),
        format!(
            "/artifacts/site/index.html {digest} {} /workspace/out/tag.txt",
            page.len()
        )
    );
    // Nothing was written beside the template.
    assert_eq!(
        fs::read_dir(project.path().join("site")).unwrap().count(),
        1
    );
}

#[test]
fn render_points_at_an_undefined_variable_unless_not_strict() {
    let project = pipeline(
        &["render"],
        r#"jobs:
  main:
    steps:
      - uses: render
        with: { template: page.tmpl, vars: 'known=yes', out: out.txt }
        permissions: { workspace: write }
"#,
    );
    project.write("page.tmpl", "known={{ known }}\nmissing={{ nope }}\n");
    let run = JsonRun::new(&project);
    run.expect_code(1);
    let error = run
        .events
        .iter()
        .find(|e| e["event"] == "annotation" && e["level"] == "error")
        .expect("an error annotation");
    assert_eq!(
        (&error["file"], &error["line"], &error["col"]),
        (&Value::from("page.tmpl"), &Value::from(2), &Value::from(9)),
        "{error}"
    );
    assert!(
        error["text"].as_str().unwrap().contains("`nope`"),
        "{error}"
    );
    assert!(!project.path().join("out.txt").exists());

    let yaml = read(&project, "gantry.yml").replace("out: out.txt", "out: out.txt, strict: false");
    project.manifest(&yaml);
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("`nope` is not defined; left empty");
    assert_eq!(read(&project, "out.txt"), "known=yes\nmissing=\n");
}

#[test]
fn checksum_digests_match_sha256_in_outputs_sums_file_and_summary() {
    let project = pipeline(
        &["checksum", "probe"],
        r#"jobs:
  main:
    steps:
      - id: sums
        uses: checksum
        with:
          files: |
            dist/**/*.bin
            notes.txt
          sums-file: SHA256SUMS
        permissions: { workspace: write }
      - id: one
        uses: checksum
        with: { files: notes.txt, expected: '@NOTES_UPPER@' }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: |
            count=${{ steps.sums.outputs.count }}
            sha256=${{ steps.sums.outputs.sha256 }}
            one=${{ steps.one.outputs.sha256 }} ${{ steps.one.outputs.count }}
            ${{ steps.sums.outputs.sums }}
        permissions: { workspace: write }
"#,
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    project.write("dist/a.bin", "abc");
    project.write("dist/sub/deep/b.bin", &binary);
    project.write("dist/skip.txt", "not a .bin");
    project.write("dist/.hidden.bin", "wildcards skip hidden names");
    project.write("notes.txt", "release notes\n");
    let a = sha256_hex(b"abc");
    let b = sha256_hex(&binary);
    let notes = sha256_hex(b"release notes\n");
    let yaml = read(&project, "gantry.yml").replace("@NOTES_UPPER@", &notes.to_ascii_uppercase());
    project.manifest(&yaml);

    let run = JsonRun::new(&project);
    run.expect_code(0)
        .logs_have("`notes.txt` matches the expected sha256");
    let listing = format!("{a}  dist/a.bin\n{b}  dist/sub/deep/b.bin\n{notes}  notes.txt\n");
    assert_eq!(read(&project, "SHA256SUMS"), listing);
    let overall = sha256_hex(listing.as_bytes());
    assert_eq!(
        read(&project, "outputs.txt"),
        format!("count=3\nsha256={overall}\none={notes} 1\n{listing}")
    );
    let summary = run.summary();
    assert!(summary.contains("### Checksums"), "{summary}");
    for (digest, path) in [(&a, "dist/a.bin"), (&b, "dist/sub/deep/b.bin")] {
        assert!(
            summary.contains(&format!("| `{path}` | `{digest}` |")),
            "{summary}"
        );
    }
    // The summary is the run's, in its folder.
    let in_folder = project
        .state_dir()
        .join("runs")
        .join(run.run_id())
        .join("summary.md");
    assert_eq!(fs::read_to_string(in_folder).unwrap(), summary);

    // A digest that does not match fails the step, saying both.
    let wrong = sha256_hex(b"something else");
    project.manifest(&yaml.replace(&notes.to_ascii_uppercase(), &wrong));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has(&format!("sha256 mismatch: expected {wrong}, found {notes}"));
}

#[test]
fn archive_creates_a_reproducible_tar_gz_that_extracts_to_the_same_files() {
    let project = pipeline(
        &["archive", "probe"],
        r#"jobs:
  main:
    steps:
      - id: pack
        uses: archive
        with: { archive: dist/site.tar.gz, base: public }
        permissions: { workspace: write }
      - id: unpack
        uses: archive
        with: { mode: extract, archive: dist/site.tar.gz, dest: unpacked }
        permissions: { workspace: write }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: '${{ steps.pack.outputs.archive }} ${{ steps.pack.outputs.count }} ${{ steps.pack.outputs.sha256 }} ${{ steps.unpack.outputs.count }} ${{ steps.unpack.outputs.sha256 }}'
        permissions: { workspace: write }
"#,
    );
    project.write("public/index.html", "<h1>site</h1>\n");
    project.write("public/css/site.css", "body { color: red }\n");
    project.write("public/img/deep/logo.bin", [0u8, 1, 2, 255, 254]);
    fs::create_dir_all(project.path().join("public/empty")).unwrap();
    let public = tree(&project.path().join("public"));
    assert_eq!(public.len(), 7);

    project.gantry(&["run"]).expect_code(0);
    assert_eq!(tree(&project.path().join("unpacked")), public);
    let bytes = fs::read(project.path().join("dist/site.tar.gz")).unwrap();
    assert_eq!(bytes[..2], [0x1f, 0x8b], "not gzip");
    let sha = sha256_hex(&bytes);
    let outputs = read(&project, "outputs.txt");
    let fields: Vec<&str> = outputs.split(' ').collect();
    assert_eq!(fields.len(), 5, "{outputs}");
    assert_eq!(fields[0], "/workspace/dist/site.tar.gz");
    // Folders count; the base folder itself is not an entry.
    assert_eq!(fields[1], "7", "{outputs}");
    assert_eq!(fields[3], "7", "{outputs}");
    assert_eq!(fields[2], sha);
    assert_eq!(fields[4], sha);

    // Other file times give the same bytes.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for file in ["public/index.html", "public/css/site.css"] {
        fs::File::options()
            .write(true)
            .open(project.path().join(file))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fs::remove_dir_all(project.path().join("unpacked")).unwrap();
    fs::remove_dir_all(project.path().join("dist")).unwrap();
    project.gantry(&["run"]).expect_code(0);
    assert_eq!(
        fs::read(project.path().join("dist/site.tar.gz")).unwrap(),
        bytes
    );
    assert_eq!(tree(&project.path().join("unpacked")), public);
}

const VALUES_YAML: &str = r#"# Helm values for the site
image:
  repository: registry.example/site
  tag: "1.4.2"   # bumped by CI

replicas: 2
hosts:
  - name: a.example
    tls: false
"#;

const PACKAGE_JSON: &str = r#"{
  "name": "site",
  "version": "1.4.2",
  "scripts": {
    "build": "make"
  }
}
"#;

#[test]
fn config_set_bumps_yaml_and_json_keeping_the_rest_and_rolls_back() {
    let project = pipeline(
        &["config-set", "probe"],
        r#"jobs:
  main:
    steps:
      - id: tag
        uses: config-set
        with: { file: deploy/values.yaml, path: image.tag, value: 1.5.0 }
        permissions: { workspace: write }
      - id: replicas
        uses: config-set
        with: { file: deploy/values.yaml, path: replicas, value: 3, type: number }
        permissions: { workspace: write }
      - id: tls
        uses: config-set
        with: { file: deploy/values.yaml, path: hosts.0.tls, value: 'true', type: boolean }
        permissions: { workspace: write }
      - id: version
        uses: config-set
        with: { file: package.json, path: version, value: 1.5.0 }
        permissions: { workspace: write }
      - id: private
        uses: config-set
        with: { file: package.json, path: private, value: 'true', type: boolean, create: true }
        permissions: { workspace: write }
      - id: same
        uses: config-set
        with: { file: package.json, path: name, value: site }
        permissions: { workspace: write }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: 'tag=${{ steps.tag.outputs.previous }},${{ steps.tag.outputs.changed }} replicas=${{ steps.replicas.outputs.previous }} tls=${{ steps.tls.outputs.previous }} version=${{ steps.version.outputs.previous }} private=[${{ steps.private.outputs.previous }}] same=${{ steps.same.outputs.changed }}'
        permissions: { workspace: write }
"#,
    );
    project.write("deploy/values.yaml", VALUES_YAML);
    project.write("package.json", PACKAGE_JSON);
    project.gantry(&["run"]).expect_code(0);
    let bumped_yaml = VALUES_YAML
        .replace("\"1.4.2\"", "\"1.5.0\"")
        .replace("replicas: 2", "replicas: 3")
        .replace("tls: false", "tls: true");
    let bumped_json = PACKAGE_JSON
        .replace("\"1.4.2\"", "\"1.5.0\"")
        .replace("  }\n}", "  },\n  \"private\": true\n}");
    assert_eq!(read(&project, "deploy/values.yaml"), bumped_yaml);
    assert_eq!(read(&project, "package.json"), bumped_json);
    assert_eq!(
        read(&project, "outputs.txt"),
        "tag=1.4.2,true replicas=2 tls=false version=1.4.2 private=[] same=false"
    );

    // A later failure puts both files back, byte for byte.
    manifest(
        &project,
        &["config-set", "probe"],
        r#"jobs:
  main:
    steps:
      - uses: config-set
        with: { file: deploy/values.yaml, path: image.tag, value: '1.10' }
        permissions: { workspace: write }
        rollback: {}
      - uses: config-set
        with: { file: package.json, path: scripts.build, value: make all }
        permissions: { workspace: write }
        rollback: {}
      - uses: probe
        with:
          action: record
          label: check
          log: /workspace/during.txt
        permissions: { workspace: write }
      - uses: probe
        with: { action: exit, code: 1 }
"#,
    );
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("restored `/workspace/deploy/values.yaml`")
        .stdout_has("restored `/workspace/package.json`");
    assert_eq!(read(&project, "during.txt"), "run check\n");
    assert_eq!(read(&project, "deploy/values.yaml"), bumped_yaml);
    assert_eq!(read(&project, "package.json"), bumped_json);
}

#[test]
fn config_set_rollback_refuses_to_discard_a_later_change() {
    let project = pipeline(
        &["config-set"],
        r#"jobs:
  main:
    steps:
      - uses: config-set
        with: { file: deploy/values.yaml, path: image.tag, value: 1.5.0 }
        permissions: { workspace: write }
        rollback: {}
"#,
    );
    project.write("deploy/values.yaml", VALUES_YAML);
    project.gantry(&["run"]).expect_code(0);
    let edited = VALUES_YAML.replace("\"1.4.2\"", "\"9.9.9\"");
    project.write("deploy/values.yaml", &edited);
    project
        .gantry(&["rollback"])
        .expect_code(4)
        .stdout_has("changed after this step wrote it; not restoring it");
    assert_eq!(read(&project, "deploy/values.yaml"), edited);
}

#[test]
fn archive_refuses_to_pack_a_symbolic_link() {
    let project = pipeline(
        &["archive"],
        r#"jobs:
  main:
    steps:
      - uses: archive
        with: { archive: site.tar.gz, base: public }
        permissions: { workspace: write }
"#,
    );
    project.write("public/index.html", "hi");
    std::os::unix::fs::symlink("index.html", project.path().join("public/link.html")).unwrap();
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("link.html");
}

/// README: "line endings all stay", also for a key added with `create: true`.
#[test]
fn config_set_keeps_crlf_line_endings_when_it_creates_a_key() {
    let project = pipeline(
        &["config-set"],
        r#"jobs:
  main:
    steps:
      - uses: config-set
        with: { file: values.yaml, path: image.pull, value: always, create: true }
        permissions: { workspace: write }
"#,
    );
    project.write("values.yaml", "image:\r\n  tag: v1\r\nreplicas: 2\r\n");
    project.gantry(&["run"]).expect_code(0);
    assert_eq!(
        read(&project, "values.yaml"),
        "image:\r\n  tag: v1\r\n  pull: always\r\nreplicas: 2\r\n"
    );
}

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

#[test]
fn inspect_shows_each_plugins_name_inputs_and_outputs() {
    let project = Fixture::new();
    for name in FIRST_PARTY_PLUGINS {
        let relative = format!("{name}.wasm");
        let sha = project.first_party_plugin(name, &relative);
        let json = fs::read_to_string(format!(
            "{}/../plugins/{name}/gantry-step.json",
            gantry_tests::TESTS_DIR
        ))
        .unwrap();
        let meta: Value = serde_json::from_str(&json).unwrap();
        let outcome = project.gantry(&["inspect", &relative]);
        outcome
            .expect_code(0)
            .stdout_has(&format!("sha256: {sha}"))
            .stdout_has(&format!("  name: {name}\n"))
            .stdout_has(&format!(
                "  description: {}\n",
                meta["description"].as_str().unwrap()
            ));
        let inputs = meta["inputs"].as_object().unwrap();
        assert!(!inputs.is_empty(), "{name} declares no inputs");
        for (input, spec) in inputs {
            let kind = if spec["required"] == true {
                "required".to_owned()
            } else if let Some(default) = spec.get("default") {
                format!("default: {default}")
            } else {
                "optional".to_owned()
            };
            outcome.stdout_has(&format!(
                "    {input} ({kind}): {}\n",
                spec["description"].as_str().unwrap()
            ));
        }
        for output in meta["outputs"].as_object().unwrap().keys() {
            outcome.stdout_has(&format!("    {output}: "));
        }
        let rollback = if meta["rollback"] == true {
            "yes"
        } else {
            "no"
        };
        outcome.stdout_has(&format!("  rollback: {rollback}\n"));
    }
}

#[test]
fn an_unknown_input_to_a_first_party_plugin_is_refused_with_a_suggestion() {
    let cases = [
        ("archive", "archiv: a.tar.gz", "archive"),
        ("checksum", "file: a.txt", "files"),
        ("config-set", "{ file: a.yml, path: a, values: b }", "value"),
        ("deploy", "{ artefact: site, target: /srv }", "artifact"),
        ("hello", "whom: you", "who"),
        ("render", "{ templat: a.tmpl }", "template"),
    ];
    for (plugin, with, suggestion) in cases {
        let with = if with.starts_with('{') {
            with.to_owned()
        } else {
            format!("{{ {with} }}")
        };
        let project = pipeline(
            &[plugin, "probe"],
            &format!(
                "jobs:\n  main:\n    steps:\n      - uses: probe\n        with: {{ action: write, path: /workspace/ran.txt, content: ran }}\n        permissions: {{ workspace: write }}\n      - id: typo\n        uses: {plugin}\n        with: {with}\n        permissions: {{ workspace: write }}\n"
            ),
        );
        project
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has("unknown input `")
            .stderr_has(&format!(
                "for step `typo` of job `main` (plugin `{plugin}`)"
            ))
            .stderr_has(&format!("did you mean `{suggestion}`?"));
        assert!(
            !project.path().join("ran.txt").exists(),
            "a step ran before the manifest was refused ({plugin})"
        );
    }
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
