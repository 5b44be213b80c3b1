//! The first-party `http` plugin, a WASI 0.2 component, through the
//! `gantry` binary against a real nginx with WebDAV on 127.0.0.1 (and a
//! small flaky server for retries): uploads and downloads with their
//! outputs, statuses that fail the step, retries, masked credentials, and
//! the rollback that deletes what was uploaded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gantry_tests::nginx::Nginx;
use gantry_tests::servers::{Reply, Server};
use gantry_tests::{HTTP_PLUGIN_WASM, Outcome, Project, sha256_hex};

/// A project with the `http` plugin and `hello` pinned and the jobs `jobs`
/// (YAML under `jobs:`); its runs share one module cache with the other
/// tests here, so the component is compiled about once.
struct HttpProject {
    project: Project,
    cache: Arc<tempfile::TempDir>,
}

impl HttpProject {
    fn new(jobs: &str) -> HttpProject {
        static SHARED: Mutex<Weak<tempfile::TempDir>> = Mutex::new(Weak::new());
        let cache = {
            let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
            shared.upgrade().unwrap_or_else(|| {
                let cache = Arc::new(
                    tempfile::Builder::new()
                        .prefix("gantry-test-cache-")
                        .tempdir()
                        .expect("temp folder"),
                );
                *shared = Arc::downgrade(&cache);
                cache
            })
        };
        let project = Project::new();
        let http = project.plugin_from(HTTP_PLUGIN_WASM, "plugins/http.wasm");
        let hello = project.first_party_plugin("hello", "plugins/hello.wasm");
        project.manifest(&format!(
            "name: http-test\nplugins:\n  http: {{ source: plugins/http.wasm, sha256: {http} }}\n  hello: {{ source: plugins/hello.wasm, sha256: {hello} }}\njobs:\n{jobs}"
        ));
        HttpProject { project, cache }
    }

    /// `gantry run` with these extra arguments (e.g. `--secret`).
    fn run(&self, extra: &[&str]) -> Outcome {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        let cache = self.cache.path().to_str().expect("a UTF-8 temp path");
        self.project
            .gantry_with_env(&args, &[("XDG_CACHE_HOME", cache)])
    }

    /// Everything the run wrote to its state folder (journal, logs,
    /// summary), to check a secret left no trace there.
    fn run_records(&self) -> String {
        let mut text = String::new();
        let mut stack = vec![self.project.latest_run_dir()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("a run folder") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    text.push_str(&String::from_utf8_lossy(
                        &std::fs::read(&path).expect("a run file"),
                    ));
                }
            }
        }
        text
    }
}

impl std::ops::Deref for HttpProject {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.project
    }
}

/// `permissions:` granting `origin`, indented for a step's keys.
fn grant(origin: &str) -> String {
    format!("        permissions: {{ network: [\"{origin}\"] }}\n")
}

#[test]
fn a_put_then_a_get_round_trip_through_nginx_with_outputs() {
    if !Nginx::available() {
        return;
    }
    let nginx = Nginx::start();
    let origin = nginx.origin();
    let page = "{\"version\": \"1.4.2\", \"title\": \"hello\"}\n";
    let grant = grant(&origin);
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: put
        uses: http
        with:
          url: {origin}/site/v1/page.json
          method: PUT
          body-file: site/page.json
          headers: |
            Authorization: ${{{{ secrets.DAV_AUTH }}}}
            Content-Type: application/json
          expect: 201,204
{grant}      - id: get
        uses: http
        with:
          url: {origin}/site/v1/page.json
          expect: 200
          expect-sha256: {sha}
          output-header: Content-Type
          output-json: .version
{grant}      - uses: hello
        with:
          greeting: got
          who: ${{{{ steps.put.outputs.status }}}} then ${{{{ steps.get.outputs.status }}}} ${{{{ steps.get.outputs.json }}}} ${{{{ steps.get.outputs.header }}}} ${{{{ steps.get.outputs.bytes }}}} ${{{{ steps.get.outputs.sha256 }}}} ${{{{ steps.get.outputs.attempts }}}}
",
        sha = sha256_hex(page.as_bytes()),
    ));
    project.write("site/page.json", page);
    let auth = format!("DAV_AUTH={}", nginx.authorization());
    let outcome = project.run(&["--secret", &auth]);
    outcome.expect_code(0).stdout_has(&format!(
        "got, 201 then 200 1.4.2 application/json {} {} 1!",
        page.len(),
        sha256_hex(page.as_bytes())
    ));
    assert_eq!(
        nginx.served("site/v1/page.json").as_deref(),
        Some(page.as_bytes())
    );
    let log = outcome.step_log("put");
    assert!(
        log.iter().any(|line| line.contains(&format!(
            "PUT {origin}/site/v1/page.json, {} bytes from `/workspace/site/page.json`, headers Authorization, Content-Type, expecting 201,204",
            page.len()
        ))),
        "{log:#?}"
    );

    // The same PUT again replaces the file: 204, still accepted.
    let outcome = project.run(&["--secret", &auth]);
    outcome.expect_code(0).stdout_has("got, 204 then 200");
}

#[test]
fn an_unexpected_status_fails_the_step_and_stops_the_job() {
    if !Nginx::available() {
        return;
    }
    let nginx = Nginx::start();
    let origin = nginx.origin();
    let grant = grant(&origin);
    // No credentials: nginx refuses the write with 401.
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: put
        uses: http
        with: {{ url: \"{origin}/x.txt\", method: PUT, body: text, expect: \"201\" }}
{grant}      - id: after
        uses: hello
"
    ));
    let outcome = project.run(&[]);
    outcome.expect_code(1).stdout_has(&format!(
        "PUT {origin}/x.txt answered 401, expected 201 (1 attempt)"
    ));
    // The job stopped there.
    outcome.stdout_lacks("Hello, world!");
    assert_eq!(nginx.served("x.txt"), None);

    // Without a grant the request never leaves: the guest sees a denial.
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: put
        uses: http
        with: {{ url: \"{origin}/x.txt\" }}
"
    ));
    project
        .run(&[])
        .expect_code(1)
        .stdout_has("the request was denied")
        .stdout_has("step `put` was refused");
    assert!(!nginx.access_log().contains("GET /x.txt"));
}

#[test]
fn server_errors_are_retried_until_the_server_recovers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        Server::http(move |_, _| match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply {
                status: 503,
                headers: Vec::new(),
                body: "busy".into(),
            },
            _ => Reply::ok("{\"ready\": true}"),
        })
    };
    let origin = server.origin();
    let grant = grant(&origin);
    let jobs = |retries: u32| {
        format!(
            "  check:
    steps:
      - id: ready
        uses: http
        with: {{ url: \"{origin}/ready\", retries: {retries}, backoff-ms: 50, output-json: ready }}
{grant}      - uses: hello
        with: {{ greeting: ready, who: \"${{{{ steps.ready.outputs.json }}}} after ${{{{ steps.ready.outputs.attempts }}}}\" }}
"
        )
    };
    let project = HttpProject::new(&jobs(2));
    project
        .run(&[])
        .expect_code(0)
        .stdout_has("attempt 1 failed; retrying in 50 ms")
        .stdout_has("ready, true after 2!");
    assert_eq!(server.connections(), 2);

    // With no retries, the first 503 is the answer.
    calls.store(0, Ordering::SeqCst);
    let project = HttpProject::new(&jobs(0));
    project
        .run(&[])
        .expect_code(1)
        .stdout_has("answered 503, expected 2xx (1 attempt)");
    assert_eq!(server.connections(), 3);
}

#[test]
fn credentials_in_headers_never_reach_the_log() {
    if !Nginx::available() {
        return;
    }
    let nginx = Nginx::start();
    let origin = nginx.origin();
    let grant = grant(&origin);
    // A server that echoes a key it was sent: the plugin masks credential
    // headers itself, so even a value that is not a gantry secret is
    // hidden when it comes back in an output.
    let api_key = "plain-key-8c1f";
    std::fs::write(
        nginx.root().join("echo.json"),
        format!("{{\"echo\": \"{api_key}\"}}"),
    )
    .unwrap();
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: put
        uses: http
        with:
          url: {origin}/secret.txt
          method: PUT
          body: uploaded
          headers: \"Authorization: ${{{{ secrets.DAV_AUTH }}}}\"
{grant}      - id: echo
        uses: http
        with:
          url: {origin}/echo.json
          headers: \"X-Api-Key: {api_key}\"
          output-json: echo
{grant}      - uses: hello
        with: {{ who: \"${{{{ steps.echo.outputs.json }}}}\" }}
"
    ));
    let authorization = nginx.authorization();
    let credentials = authorization.strip_prefix("Basic ").unwrap();
    let outcome = project.run(&["--secret", &format!("DAV_AUTH={authorization}")]);
    outcome.expect_code(0).stdout_has("Hello, ***!");
    // It was sent: nginx accepted the write.
    assert_eq!(
        nginx.served("secret.txt").as_deref(),
        Some(&b"uploaded"[..])
    );
    let records = project.run_records();
    for value in [credentials, api_key] {
        assert!(!outcome.stdout.contains(value), "stdout shows {value}");
        assert!(!outcome.stderr.contains(value), "stderr shows {value}");
        assert!(!records.contains(value), "the run's records hold {value}");
    }
}

#[test]
fn a_failing_check_after_the_upload_rolls_it_back() {
    if !Nginx::available() {
        return;
    }
    // /healthz answers 503: the smoke test after the upload fails.
    let nginx = Nginx::start_with_health(503);
    let origin = nginx.origin();
    let grant = grant(&origin);
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: upload
        uses: http
        with:
          url: {origin}/site/index.html
          method: PUT
          body: <h1>v2</h1>
          headers: \"Authorization: ${{{{ secrets.DAV_AUTH }}}}\"
          expect: 201,204
          rollback-method: DELETE
{grant}        rollback: {{}}
      - id: notes
        uses: http
        with:
          url: {origin}/site/other.html
          method: PUT
          body: other
          expect: \"201\"
          headers: \"Authorization: ${{{{ secrets.DAV_AUTH }}}}\"
{grant}        rollback: {{}}
      - id: health
        uses: http
        with: {{ url: \"{origin}/healthz\", retries: 1, backoff-ms: 20 }}
{grant}"
    ));
    let outcome = project.run(&["--secret", &format!("DAV_AUTH={}", nginx.authorization())]);
    outcome
        .expect_code(1)
        .stdout_has(&format!(
            "GET {origin}/healthz answered 503, expected 2xx (2 attempts)"
        ))
        .stdout_has(&format!(
            "compensating (the step had succeeded): DELETE {origin}/site/index.html"
        ))
        .stdout_has(
            "nothing to undo (the step had succeeded): no compensating request is configured",
        );
    assert_eq!(
        nginx.served("site/index.html"),
        None,
        "the upload was deleted"
    );
    // The step without a compensation keeps what it did.
    assert_eq!(
        nginx.served("site/other.html").as_deref(),
        Some(&b"other"[..])
    );
    let log = nginx.access_log();
    let put = log
        .find("\"PUT /site/index.html")
        .expect("the PUT reached nginx");
    let delete = log
        .find("\"DELETE /site/index.html")
        .expect("the DELETE reached nginx");
    assert!(put < delete, "{log}");
}

#[test]
fn a_finished_run_is_undone_later_with_its_secret_given_again() {
    if !Nginx::available() {
        return;
    }
    let nginx = Nginx::start();
    let origin = nginx.origin();
    let grant = grant(&origin);
    let project = HttpProject::new(&format!(
        "  deploy:
    steps:
      - id: upload
        uses: http
        with:
          url: {origin}/later.txt
          method: PUT
          body: kept until rolled back
          headers: \"Authorization: ${{{{ secrets.DAV_AUTH }}}}\"
          rollback-method: DELETE
{grant}        rollback: {{}}
"
    ));
    let secret = format!("DAV_AUTH={}", nginx.authorization());
    project.run(&["--secret", &secret]).expect_code(0);
    assert!(nginx.served("later.txt").is_some());

    // The journal keeps the header masked; the hook gets the value back
    // only from the secret given to this command.
    let cache = project.cache.path().to_str().unwrap().to_owned();
    let env = [("XDG_CACHE_HOME", cache.as_str())];
    project
        .gantry_with_env(
            &["rollback", "--secret", "DAV_AUTH=Basic d3Jvbmc6d3Jvbmc="],
            &env,
        )
        .expect_code(4)
        .stdout_has(&format!("DELETE {origin}/later.txt answered 401"));
    assert!(nginx.served("later.txt").is_some());
    // A hook that ran never runs again by itself: rerunning it is asked
    // for by name, with the right secret this time.
    project
        .gantry_with_env(&["rollback", "--secret", &secret], &env)
        .stdout_has("no rollback hook is left to run");
    assert!(nginx.served("later.txt").is_some());
    let rerun =
        project.gantry_with_env(&["resume", "--rerun", "upload", "--secret", &secret], &env);
    rerun
        .stdout_has(&format!(
            "compensating (the step had succeeded): DELETE {origin}/later.txt"
        ))
        .stdout_has("ok rolled back upload");
    assert_ne!(rerun.code, 4, "{}", rerun.stdout);
    assert_eq!(nginx.served("later.txt"), None, "the upload was deleted");
}

#[test]
fn inspect_shows_a_component_with_every_documented_input_and_output() {
    let project = Project::new();
    let sha = project.plugin_from(HTTP_PLUGIN_WASM, "http.wasm");
    let outcome = project.gantry(&["inspect", "http.wasm"]);
    outcome
        .expect_code(0)
        .stdout_has("kind: WASI 0.2 component")
        .stdout_has(&format!("sha256: {sha}"))
        .stdout_has("  name: http\n");
    let json = std::fs::read_to_string(format!(
        "{}/../plugins/http/gantry-step.json",
        gantry_tests::TESTS_DIR
    ))
    .unwrap();
    let meta: serde_json::Value = serde_json::from_str(&json).unwrap();
    for (input, spec) in meta["inputs"].as_object().unwrap() {
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
}
