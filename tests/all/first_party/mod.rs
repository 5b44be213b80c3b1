//! The first-party plugins (`plugins/`), built for wasm32-wasip1 by
//! `tests/build.rs`, in real pipelines through the `gantry` binary: each
//! test checks what a plugin did on disk, in its outputs (passed on to a
//! later step) and in the run's summary, as its README promises.

mod archive;
mod checksum;
mod config_set;
mod deploy;
mod hello;
mod inspect;
mod render;

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
