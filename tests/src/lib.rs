//! Test support for gantry's integration tests: a fresh project folder per
//! test, plugins made from `.wat` fixtures or the Rust guests, and a way to
//! run the real `gantry` binary on it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

pub mod nginx;
pub mod registry;
pub mod servers;

/// This crate's folder (`tests/`), where the fixtures are.
pub const TESTS_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The repository's root folder.
pub fn repository() -> &'static Path {
    Path::new(TESTS_DIR).parent().expect("the repository root")
}

/// `PATH` with the repository's `tools/bin` first, where
/// `scripts/toolchains.sh` puts componentize-py, componentize-js and Go,
/// for the build scripts of steps in other languages. A tool missing from
/// both fails the build that needs it, and so the test.
pub fn toolchains_path() -> std::ffi::OsString {
    let tools = repository().join("tools").join("bin");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(tools).chain(std::env::split_paths(&rest)))
        .expect("PATH entries without a `:`")
}

/// Whether `tool` is installed, in `tools/bin` (where
/// scripts/toolchains.sh puts the Python, JavaScript and Go toolchains) or
/// on the PATH. When it is not, the test says so and should stop, unless
/// `GANTRY_REQUIRE_TOOLS=1` (as `.ci/run` sets it): then this fails it.
pub fn installed_tool(tool: &str) -> bool {
    let path = toolchains_path();
    let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
    if !found {
        let required = std::env::var("GANTRY_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "`{tool}` is not installed, and GANTRY_REQUIRE_TOOLS=1 says it must be (run scripts/toolchains.sh)"
        );
        eprintln!(
            "skipping the rest of this test: `{tool}` is not installed (run scripts/toolchains.sh)"
        );
    }
    found
}

/// The `gantry` binary the tests run.
///
/// The tests in `tests/all` are the `gantry` package's own integration
/// tests, so Cargo builds its binary before running them, beside the test
/// executable: `<target>/<profile>/gantry` for `<target>/<profile>/deps/all-…`.
pub fn gantry_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let bin = profile_dir.join("gantry");
        assert!(
            bin.is_file(),
            "{} was not built: run the tests with `cargo test -p gantry` (or `--workspace`)",
            bin.display()
        );
        bin
    })
}

/// The lowercase hex sha256 of `bytes`, as gantry writes pins.
pub use gantry::digest::sha256_hex;

/// The path of the first-party plugin `name`, built for wasm32-wasip1.
///
/// Panics on a name that is not one of [`FIRST_PARTY_PLUGINS`].
pub fn first_party_wasm(name: &str) -> PathBuf {
    assert!(
        FIRST_PARTY_PLUGINS.contains(&name),
        "`{name}` is not a first-party plugin (one of {FIRST_PARTY_PLUGINS:?})"
    );
    Path::new(PLUGINS_DIR).join(format!("{name}.wasm"))
}

/// What one `gantry` invocation did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit status, showing everything printed when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts stdout contains `text`.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts stderr does not contain `text`.
    #[track_caller]
    pub fn stderr_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stderr.contains(text),
            "stderr has {text:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// Asserts stdout does not contain `text`.
    #[track_caller]
    pub fn stdout_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.stdout.contains(text),
            "stdout has {text:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }

    /// What the step named `step` logged in the human output: the lines
    /// between its start line and its outcome line, without indentation or
    /// `[job]` label. Panics if the step never started.
    #[track_caller]
    pub fn step_log(&self, step: &str) -> Vec<&str> {
        let start = format!("step {step} [");
        let ok = format!("ok   {step} (");
        let fail = format!("FAIL {step} (");
        let mut lines = self.stdout.lines().map(|line| {
            let line = match line.strip_prefix('[') {
                Some(rest) => rest.split_once("] ").map_or(line, |(_, text)| text),
                None => line,
            };
            line.trim_start()
        });
        if !lines.by_ref().any(|line| line.starts_with(&start)) {
            panic!("step `{step}` never started\n--- stdout\n{}", self.stdout);
        }
        lines
            .take_while(|line| !line.starts_with(&ok) && !line.starts_with(&fail))
            .collect()
    }
}

/// A throwaway project folder holding a manifest and its plugins.
pub struct Project {
    dir: tempfile::TempDir,
    /// `XDG_CACHE_HOME` of every run, so tests never touch the real
    /// user's compiled-module cache.
    cache: tempfile::TempDir,
    /// `XDG_STATE_HOME` of every run: where the project's state folder
    /// (runs, artifact store, lock) is made.
    state: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::Builder::new()
                .prefix("gantry-test-")
                .tempdir()
                .expect("temp folder"),
            cache: tempfile::Builder::new()
                .prefix("gantry-test-cache-")
                .tempdir()
                .expect("temp folder"),
            state: tempfile::Builder::new()
                .prefix("gantry-test-state-")
                .tempdir()
                .expect("temp folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `XDG_CACHE_HOME` this project's runs use.
    pub fn cache_home(&self) -> &Path {
        self.cache.path()
    }

    /// The compiled-module cache this project's runs use:
    /// `$XDG_CACHE_HOME/gantry`.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache.path().join("gantry")
    }

    /// The `XDG_STATE_HOME` this project's runs use.
    pub fn state_home(&self) -> &Path {
        self.state.path()
    }

    /// The project's default state folder, as `gantry run` makes it:
    /// `$XDG_STATE_HOME/gantry/projects/<folder>-<hash>`.
    pub fn state_dir(&self) -> PathBuf {
        self.state
            .path()
            .join("gantry")
            .join("projects")
            .join(gantry::state::project_key(self.path()))
    }

    /// The folder of the newest run in the default state folder.
    pub fn latest_run_dir(&self) -> PathBuf {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(self.state_dir().join("runs"))
            .expect("a runs folder")
            .map(|entry| entry.expect("a run folder").path())
            .collect();
        runs.sort();
        runs.pop().expect("a run")
    }

    /// The folder of run `run_id` in the default state folder.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.state_dir().join("runs").join(run_id)
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// Compiles WebAssembly text to `relative` and returns the module's sha256.
    pub fn wat_plugin(&self, relative: &str, wat: &str) -> String {
        let bytes = wat::parse_str(wat).expect("valid WebAssembly text");
        self.write(relative, &bytes);
        sha256_hex(&bytes)
    }

    /// Copies the Rust `probe` guest to `relative` and returns its sha256.
    pub fn probe_plugin(&self, relative: &str) -> String {
        let bytes = std::fs::read(PROBE_WASM).expect("the probe guest was built");
        self.write(relative, &bytes);
        sha256_hex(&bytes)
    }

    /// Copies the plugin file at `path` to `relative` and returns its sha256.
    pub fn plugin_from(&self, path: &str, relative: &str) -> String {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading `{path}`: {e}"));
        self.write(relative, &bytes);
        sha256_hex(&bytes)
    }

    /// Copies the first-party plugin `name` (e.g. `"render"`, `"config-set"`)
    /// to `relative` and returns its sha256.
    pub fn first_party_plugin(&self, name: &str, relative: &str) -> String {
        let bytes = std::fs::read(first_party_wasm(name))
            .unwrap_or_else(|e| panic!("the first-party plugin `{name}` was built: {e}"));
        self.write(relative, &bytes);
        sha256_hex(&bytes)
    }

    /// Writes `gantry.yml`.
    pub fn manifest(&self, yaml: &str) -> PathBuf {
        self.write("gantry.yml", yaml)
    }

    /// Runs `gantry` with `args` in the project folder.
    pub fn gantry(&self, args: &[&str]) -> Outcome {
        self.gantry_with_env(args, &[])
    }

    /// `gantry` with `args`, to run in the project folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(gantry_bin());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.cache.path())
            .env("XDG_STATE_HOME", self.state.path())
            // Whatever CI runs these tests, gantry must not take on its format.
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_WORKSPACE")
            .env_remove("CI_PROJECT_DIR");
        command
    }

    /// Runs `gantry` with extra host environment variables.
    pub fn gantry_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .expect("running gantry");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A one-job manifest around `steps` (YAML for the list under `steps:`,
/// indented by six spaces), with the plugin `probe` pinned inline.
pub fn probe_pipeline(sha: &str, steps: &str) -> String {
    format!(
        "name: test\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n{steps}"
    )
}

/// A project holding the probe guest as `probe.wasm` and a one-job pipeline
/// made of `steps` (YAML list items indented by six spaces).
pub fn probe_project(steps: &str) -> Project {
    let project = Project::new();
    let sha = project.probe_plugin("probe.wasm");
    project.manifest(&probe_pipeline(&sha, steps));
    project
}

/// An outside tool a test drives (`gitlab-ci-local`, `actionlint`,
/// `check-jsonschema`, `rsync`), found on the `PATH`.
///
/// `.ci/run` installs every such tool and sets `GANTRY_REQUIRE_TOOLS=1`:
/// there a missing tool fails the test. On a developer's machine without
/// it, this prints why the test does not go on, and the test returns early.
#[track_caller]
pub fn outside_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        let required = std::env::var("GANTRY_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "`{name}` is not on the PATH, and GANTRY_REQUIRE_TOOLS=1 says every outside tool must be (scripts/ci-tools.sh installs them)"
        );
        eprintln!(
            "skipping the rest of this test: `{name}` is not on the PATH (scripts/ci-tools.sh installs it)"
        );
    }
    found
}
