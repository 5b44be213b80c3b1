//! Steps written in Go, Python and JavaScript, end to end: each example in
//! `examples/` is built by its own `build.sh` with the toolchains that
//! `scripts/toolchains.sh` installs, given its `meta.json` with `gantry
//! plugin annotate`, and run by `gantry run`. The Go step is a WASI
//! preview 1 module; the Python and JavaScript steps are WASI 0.2
//! components, the JavaScript one fetching from a real server on
//! 127.0.0.1 through its network grant. Where a toolchain is missing a test
//! says so and stops there, except under `GANTRY_REQUIRE_TOOLS=1` (as
//! `.ci/run` sets it), where it fails.
//!
//! Building is slow (seconds per example) and compiling a component of
//! tens of MB too, so each example is built once per test run, and its
//! own pipeline is run then, filling a compiled-module cache that every
//! test of this file shares.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gantry_tests::servers::{Reply, Server};
use gantry_tests::{Outcome, Project, gantry_bin, installed_tool, repository, toolchains_path};

/// An example step, built, annotated, and run with its own pipeline.
struct Built {
    /// The annotated plugin, outside the example's folder.
    wasm: PathBuf,
    /// What `gantry run` did with the example's `gantry.yml`.
    run: Outcome,
    /// That run's `summary.md`.
    summary: String,
}

/// Where this file's tests keep the built plugins and the shared module
/// cache: beside the test binary in the target folder (so wherever
/// `CARGO_TARGET_DIR` puts it), replaced by every test run.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // <target>/<profile>/deps/all-<hash>
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let dir = profile.join("languages-test");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch folder");
        dir
    })
}

/// `XDG_CACHE_HOME` for every run here: one compiled-module cache, so a
/// component is compiled once per test run rather than once per test.
fn shared_cache() -> [(&'static str, &'static str); 1] {
    static CACHE: OnceLock<String> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let cache = scratch().join("cache");
        cache.to_str().expect("a UTF-8 path").to_owned()
    });
    [("XDG_CACHE_HOME", cache)]
}

/// Runs `gantry` in `project` with the shared module cache.
fn gantry(project: &Project, args: &[&str]) -> Outcome {
    project.gantry_with_env(args, &shared_cache())
}

/// Builds `examples/<name>` with its `build.sh` and annotates the plugin
/// with its `meta.json`, into the scratch folder.
fn build(name: &str) -> PathBuf {
    let folder = repository().join("examples").join(name);
    let output = Command::new(folder.join("build.sh"))
        .env("PATH", toolchains_path())
        .output()
        .unwrap_or_else(|e| panic!("running examples/{name}/build.sh: {e}"));
    assert!(
        output.status.success(),
        "examples/{name}/build.sh failed (are the toolchains installed? run scripts/toolchains.sh)\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let built = folder.join("plugins").join(format!("{name}.wasm"));
    let annotated = scratch().join(format!("{name}.wasm"));
    let status = Command::new(gantry_bin())
        .args(["plugin", "annotate"])
        .arg(&built)
        .arg(folder.join("meta.json"))
        .arg("-o")
        .arg(&annotated)
        .output()
        .expect("running gantry plugin annotate");
    assert!(
        status.status.success(),
        "annotating {name}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    annotated
}

/// A project holding a copy of the example's `files` and its plugin at
/// `plugins/<name>.wasm`, pinned by `gantry lock`, then run.
fn run_example(name: &str, wasm: &Path, files: &[(&str, String)]) -> Built {
    let project = Project::new();
    for (relative, text) in files {
        project.write(relative, text);
    }
    project.write(
        &format!("plugins/{name}.wasm"),
        std::fs::read(wasm).expect("the built plugin"),
    );
    gantry(&project, &["lock"]).expect_code(0);
    let run = gantry(&project, &["run"]);
    let summary =
        std::fs::read_to_string(project.latest_run_dir().join("summary.md")).unwrap_or_default();
    Built {
        wasm: wasm.to_owned(),
        run,
        summary,
    }
}

/// A file of an example, as text.
fn example_file(name: &str, relative: &str) -> String {
    let path = repository().join("examples").join(name).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn go_step() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let wasm = build("go-step");
        // The pipeline counts its README and itself, found in the workspace.
        let files = ["gantry.yml", "README.md"].map(|f| (f, example_file("go-step", f)));
        run_example("go-step", &wasm, &files)
    })
}

fn python_step() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let wasm = build("python-step");
        let files = [("gantry.yml", example_file("python-step", "gantry.yml"))];
        run_example("python-step", &wasm, &files)
    })
}

/// The README the JavaScript example's pipeline fetches, served here.
const SERVED_README: &str = "# served by the test\n";

fn js_step() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let wasm = build("js-step");
        // The example's pipeline as written, but pointed at a server of
        // this test instead of one on port 8080.
        let server = Server::http(|_, path| match path {
            "/README.md" => Reply::ok(SERVED_README),
            _ => not_found(),
        });
        let manifest = example_file("js-step", "gantry.yml");
        assert!(manifest.contains("127.0.0.1:8080"), "{manifest}");
        let manifest = manifest.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", server.port()));
        run_example("js-step", &wasm, &[("gantry.yml", manifest)])
    })
}

fn not_found() -> Reply {
    Reply {
        status: 404,
        headers: Vec::new(),
        body: "no such page".into(),
    }
}

/// A project with `built` as plugin `step` and the probe as plugin
/// `probe`, both pinned inline, and one job of `steps` (YAML list items
/// indented by six spaces).
fn project_with(built: &Built, steps: &str) -> Project {
    let project = Project::new();
    let step = project.plugin_from(built.wasm.to_str().unwrap(), "step.wasm");
    let probe = project.probe_plugin("probe.wasm");
    project.manifest(&format!(
        "name: languages\nplugins:\n  step:\n    source: step.wasm\n    sha256: {step}\n  probe:\n    source: probe.wasm\n    sha256: {probe}\njobs:\n  main:\n    steps:\n{steps}"
    ));
    project
}

/// Lines and words as `wc` counts them (a last line without its line
/// break counts too), which the Go step must agree with.
fn lines_and_words(text: &str) -> (usize, usize) {
    (text.lines().count(), text.split_whitespace().count())
}

#[test]
fn the_go_example_counts_the_files_of_its_workspace() {
    if !installed_tool("go") {
        return;
    }
    let built = go_step();
    built.run.expect_code(0);
    for (step, file) in [
        ("Count the README", "README.md"),
        ("Count the manifest", "gantry.yml"),
    ] {
        let (lines, words) = lines_and_words(&example_file("go-step", file));
        let log = built.run.step_log(step);
        assert!(
            log.contains(&format!("{file}: {lines} lines, {words} words").as_str()),
            "{log:?}"
        );
        assert!(
            log.contains(&format!("notice: go-step: counted {file}").as_str()),
            "{log:?}"
        );
        assert!(
            built.summary.contains(&format!(
                "- Go step: `{file}` has {lines} lines and {words} words"
            )),
            "{}",
            built.summary
        );
    }
}

#[test]
fn a_go_steps_outputs_reach_the_next_step() {
    if !installed_tool("go") {
        return;
    }
    let text = "one two\nthree\n\nfour five six";
    let project = project_with(
        go_step(),
        "      - id: count\n        uses: step\n        with: { file: data/words.txt }\n\
         \x20     - uses: probe\n        with:\n          action: print\n          text: 'lines=${{ steps.count.outputs.lines }} words=${{ steps.count.outputs.words }} sha256=${{ steps.count.outputs.sha256 }}'\n",
    );
    project.write("data/words.txt", text);
    let (lines, words) = lines_and_words(text);
    assert_eq!((lines, words), (4, 6));
    let sha = gantry_tests::sha256_hex(text.as_bytes());
    gantry(&project, &["run"])
        .expect_code(0)
        .stdout_has(&format!("lines={lines} words={words} sha256={sha}"));
}

#[test]
fn a_go_step_fails_with_an_annotation_on_a_path_it_must_not_read() {
    if !installed_tool("go") {
        return;
    }
    for (file, reason) in [
        ("missing.txt", "cannot read `missing.txt`"),
        (
            "../outside.txt",
            "input `file` must be a path inside the workspace, found `../outside.txt`",
        ),
    ] {
        let project = project_with(
            go_step(),
            &format!("      - id: count\n        uses: step\n        with: {{ file: '{file}' }}\n"),
        );
        gantry(&project, &["run"])
            .expect_code(1)
            .stdout_has(&format!("error: go-step: {reason}"))
            .stdout_has("exited with status 1");
    }
}

#[test]
fn the_python_example_summarizes_numbers_and_feeds_its_second_step() {
    if !installed_tool("componentize-py") {
        return;
    }
    let built = python_step();
    built.run.expect_code(0);
    // The example's inputs: 120, 85, 97, 143, 101 (mean 109.2, median
    // 101), then that mean with a target of 100.
    let first = built.run.step_log("Response times");
    assert!(
        first.contains(&"response time (ms): count 5, mean 109.2, median 101, max 143"),
        "{first:?}"
    );
    assert!(
        first.contains(&"notice: python-step: response time (ms): mean 109.2 of 5 values"),
        "{first:?}"
    );
    let second = built.run.step_log("Against the target");
    assert!(
        second.contains(&"mean and target (ms): count 2, mean 104.6, median 104.6, max 109.2"),
        "{second:?}"
    );
    assert!(
        built
            .summary
            .contains("### response time (ms)\n\n| statistic | value |\n| --- | --- |\n| count | 5 |\n| mean | 109.2 |\n| median | 101 |\n| max | 143 |\n"),
        "{}",
        built.summary
    );
}

#[test]
fn a_python_steps_outputs_reach_the_next_step() {
    if !installed_tool("componentize-py") {
        return;
    }
    let project = project_with(
        python_step(),
        "      - id: stats\n        uses: step\n        with: { values: '4 8, 15 16 23 42' }\n\
         \x20     - uses: probe\n        with:\n          action: print\n          text: 'count=${{ steps.stats.outputs.count }} mean=${{ steps.stats.outputs.mean }} median=${{ steps.stats.outputs.median }} max=${{ steps.stats.outputs.max }}'\n",
    );
    // 108 / 6 = 18; the median of an even count is the middle two's mean.
    gantry(&project, &["run"])
        .expect_code(0)
        .stdout_has("values: count 6, mean 18, median 15.5, max 42")
        .stdout_has("count=6 mean=18 median=15.5 max=42");
}

#[test]
fn a_python_step_fails_with_an_annotation_on_a_value_that_is_not_a_number() {
    if !installed_tool("componentize-py") {
        return;
    }
    let project = project_with(
        python_step(),
        "      - id: stats\n        uses: step\n        with: { values: '1 two 3' }\n",
    );
    gantry(&project, &["run"])
        .expect_code(1)
        .stdout_has("error: python-step: input `values`: `two` is not a number")
        .stdout_has("exited with status 1");
}

/// A project where the Python step reads `url` (and the number 9), with
/// `grants`.
fn python_url_project(url: &str, grants: &[String]) -> Project {
    let network: String = grants
        .iter()
        .map(|grant| format!("            - \"{grant}\"\n"))
        .collect();
    project_with(
        python_step(),
        &format!(
            "      - id: stats\n        uses: step\n        with: {{ values: '9', url: \"{url}\" }}\n        permissions:\n          network:\n{network}"
        ),
    )
}

#[test]
fn a_python_step_adds_the_numbers_a_granted_url_serves() {
    if !installed_tool("componentize-py") {
        return;
    }
    let server = Server::http(|_, path| match path {
        "/latency.txt" => Reply::ok("120 85\n97, 143\n101\n"),
        _ => not_found(),
    });
    let url = format!("{}/latency.txt", server.origin());
    let project = python_url_project(&url, &[server.origin()]);
    // 9 and the served five: 555 / 6 = 92.5; the median is (97 + 101) / 2.
    gantry(&project, &["run"])
        .expect_code(0)
        .stdout_has(&format!("GET {url}: 5 values"))
        .stdout_has("values: count 6, mean 92.5, median 99, max 143");
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_python_steps_request_to_an_ungranted_destination_never_connects() {
    if !installed_tool("componentize-py") {
        return;
    }
    let server = Server::http(|_, _| Reply::ok("1 2 3"));
    let other = Server::http(|_, _| Reply::ok("4 5 6"));
    let url = format!("{}/numbers.txt", server.origin());
    let project = python_url_project(&url, &[other.origin()]);
    gantry(&project, &["run"])
        .expect_code(1)
        .stdout_has(&format!(
            "gantry: warning: step `stats` was refused {}",
            server.origin()
        ))
        .stdout_has(&format!(
            "error: python-step: GET {url} failed: HttpRequestDenied"
        ));
    assert_eq!(server.connections(), 0);
    assert_eq!(other.connections(), 0);
}

#[test]
fn the_js_example_checks_a_served_url() {
    if !installed_tool("componentize-js") {
        return;
    }
    let built = js_step();
    built.run.expect_code(0);
    let log = built.run.step_log("Check the local server");
    let line = log
        .iter()
        .find(|line| line.starts_with("GET http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no GET line in {log:?}"));
    assert!(
        line.ends_with(&format!(
            "/README.md: 200 OK, {} bytes",
            SERVED_README.len()
        )),
        "{line}"
    );
    assert!(
        built
            .summary
            .contains("- JavaScript step: `GET http://127.0.0.1:"),
        "{}",
        built.summary
    );
}

/// A project where the JavaScript step fetches `url`, with `grants`, and
/// the probe prints its outputs.
fn js_project(url: &str, grants: &[String]) -> Project {
    let network: String = grants
        .iter()
        .map(|grant| format!("            - \"{grant}\"\n"))
        .collect();
    project_with(
        js_step(),
        &format!(
            "      - id: check\n        uses: step\n        with: {{ url: \"{url}\" }}\n        permissions:\n          network:\n{network}\
             \x20     - uses: probe\n        if: ${{{{ always() }}}}\n        with:\n          action: print\n          text: 'status=${{{{ steps.check.outputs.status }}}} bytes=${{{{ steps.check.outputs.bytes }}}}'\n"
        ),
    )
}

#[test]
fn a_js_step_fetches_a_granted_url_and_sets_its_status_as_output() {
    if !installed_tool("componentize-js") {
        return;
    }
    let body = "hello from the test server";
    let server = Server::http(move |method, path| match (method, path) {
        ("GET", "/health") => Reply::ok(body),
        _ => not_found(),
    });
    let url = format!("{}/health", server.origin());
    let project = js_project(&url, &[server.origin()]);
    gantry(&project, &["run"])
        .expect_code(0)
        .stdout_has(&format!("GET {url}: 200 OK, {} bytes", body.len()))
        .stdout_has(&format!("notice: js-step: {url} answered 200"))
        .stdout_has(&format!("status=200 bytes={}", body.len()));
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_js_step_fails_on_an_error_status_after_setting_its_outputs() {
    if !installed_tool("componentize-js") {
        return;
    }
    let server = Server::http(|_, _| not_found());
    let url = format!("{}/gone", server.origin());
    let project = js_project(&url, &[server.origin()]);
    gantry(&project, &["run"])
        .expect_code(1)
        .stdout_has(&format!("error: js-step: GET {url} answered 404"))
        .stdout_has(&format!("status=404 bytes={}", "no such page".len()));
}

#[test]
fn a_js_steps_fetch_to_an_ungranted_destination_never_connects() {
    if !installed_tool("componentize-js") {
        return;
    }
    let server = Server::http(|_, _| Reply::ok("must not be read"));
    let other = Server::http(|_, _| Reply::ok("granted, but not asked for"));
    let url = format!("{}/", server.origin());
    // A grant of another port on the same address is no grant of this one.
    let project = js_project(&url, &[other.origin()]);
    gantry(&project, &["run"])
        .expect_code(1)
        .stdout_has(&format!(
            "gantry: warning: step `check` was refused {}",
            server.origin()
        ))
        .stdout_has(&format!("error: js-step: GET {url} failed:"));
    assert_eq!(server.connections(), 0);
    assert_eq!(other.connections(), 0);
}
