//! The step through both phases on the host, over a scripted transport:
//! what it sends, the outputs and state it writes, and what its rollback
//! does with that state.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use gantry_sdk::meta::Metadata;
use gantry_sdk::step::dispatch;

use super::*;
use crate::client::{Response, SendError};

/// Answers from a script and records every request.
#[derive(Default)]
struct Scripted {
    answers: Vec<std::result::Result<Response, SendError>>,
    sent: Vec<Request>,
    slept: Vec<Duration>,
}

impl Transport for &mut Scripted {
    fn send(
        &mut self,
        request: &Request,
        keep_body: bool,
    ) -> std::result::Result<Response, SendError> {
        self.sent.push(request.clone());
        let mut answer = self.answers.remove(0);
        if let Ok(response) = &mut answer
            && !keep_body
        {
            response.body = None;
        }
        answer
    }

    fn sleep(&mut self, duration: Duration) {
        self.slept.push(duration);
    }
}

fn answer(
    status: u16,
    body: &str,
    headers: &[(&str, &str)],
) -> std::result::Result<Response, SendError> {
    Ok(Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        sha256: format!("sha-of-{body}"),
        bytes: body.len() as u64,
        body: Some(body.as_bytes().to_vec()),
    })
}

fn refused_connection() -> std::result::Result<Response, SendError> {
    Err(SendError {
        message: "the connection was refused".into(),
        retryable: true,
        reached: false,
    })
}

/// A temporary folder with the ABI files and a workspace.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("ws")).unwrap();
        Sandbox { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.path(p)).unwrap_or_default()
    }

    /// The run phase's context with these inputs (names as in `with:`).
    fn run(&self, inputs: &[(&str, &str)]) -> Context {
        for file in ["output", "state", "summary"] {
            fs::write(self.path(file), "").unwrap();
        }
        let mut vars = self.base();
        vars.extend(
            inputs
                .iter()
                .map(|(k, v)| (input_variable(k), v.to_string())),
        );
        Context::from_vars(vars)
    }

    /// The rollback phase's context: these inputs, and the state the last
    /// run saved, the later entry of a name winning as in gantry.
    fn rollback(&self, inputs: &[(&str, &str)], outcome: &str) -> Context {
        let mut vars = self.base();
        vars.push(("GANTRY_PHASE".into(), "rollback".into()));
        vars.push(("GANTRY_STEP_OUTCOME".into(), outcome.into()));
        vars.extend(
            inputs
                .iter()
                .map(|(k, v)| (input_variable(k), v.to_string())),
        );
        for line in self.read("state").lines() {
            let (name, value) = line.split_once('=').unwrap();
            vars.push((format!("STATE_{name}"), value.to_owned()));
        }
        Context::from_vars(vars)
    }

    fn base(&self) -> Vec<(String, String)> {
        let path = |p: &str| self.path(p).display().to_string();
        vec![
            ("GANTRY_WORKSPACE".into(), path("ws")),
            ("GANTRY_OUTPUT".into(), path("output")),
            ("GANTRY_STATE".into(), path("state")),
            ("GANTRY_STEP_SUMMARY".into(), path("summary")),
        ]
    }

    /// The last value of each state entry.
    fn state(&self, name: &str) -> Option<String> {
        self.read("state")
            .lines()
            .filter_map(|line| line.split_once('='))
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
            .next_back()
    }
}

fn input_variable(name: &str) -> String {
    gantry_sdk::input::input_variable(name)
}

fn step(transport: &mut Scripted, ctx: &Context) -> Result<()> {
    dispatch(&mut Http::new(transport), ctx)
}

const PUT: &[(&str, &str)] = &[
    ("url", "http://127.0.0.1:8080/site/index.html"),
    ("method", "put"),
    ("body", "<h1>hi</h1>"),
    ("expect", "201,204"),
    ("rollback-method", "DELETE"),
];

#[test]
fn a_put_sends_its_body_and_sets_outputs_and_state() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(201, "", &[("etag", "\"v1\"")])],
        ..Scripted::default()
    };
    let mut inputs = PUT.to_vec();
    inputs.push(("output-header", "ETag"));
    inputs.push((
        "headers",
        "Content-Type: text/html\nAuthorization: Bearer s3cr3t-token",
    ));
    step(&mut transport, &sb.run(&inputs)).unwrap();

    let sent = &transport.sent[0];
    assert_eq!(sent.method, "PUT");
    assert_eq!(
        sent.url.to_string(),
        "http://127.0.0.1:8080/site/index.html"
    );
    assert_eq!(sent.body.as_deref(), Some(&b"<h1>hi</h1>"[..]));
    assert_eq!(sent.headers.len(), 2);
    assert_eq!(sent.headers[1].value, "Bearer s3cr3t-token");
    assert_eq!(
        sb.read("output"),
        "attempts=1\nstatus=201\nsha256=sha-of-\nbytes=0\nheader=\"v1\"\n"
    );
    assert_eq!(sb.state("effect").as_deref(), Some("done"));
    assert_eq!(sb.state("status").as_deref(), Some("201"));
    // Written before sending, in case the step dies mid-request.
    assert!(sb.read("state").starts_with("effect=unknown\n"));
    assert!(sb.read("summary").contains("answered 201 (1 attempt)"));
}

#[test]
fn the_body_can_come_from_a_file_and_json_fields_become_outputs() {
    let sb = Sandbox::new();
    fs::write(sb.path("ws/payload.json"), r#"{"v":1}"#).unwrap();
    let mut transport = Scripted {
        answers: vec![answer(200, r#"{"data":{"id":42,"name":"x"}}"#, &[])],
        ..Scripted::default()
    };
    let ctx = sb.run(&[
        ("url", "http://api.test/items"),
        ("method", "POST"),
        ("body-file", "payload.json"),
        ("output-json", ".data.id"),
    ]);
    step(&mut transport, &ctx).unwrap();
    assert_eq!(transport.sent[0].body.as_deref(), Some(&br#"{"v":1}"#[..]));
    assert!(
        sb.read("output").contains("json=42\n"),
        "{}",
        sb.read("output")
    );

    // So does a body that is not the one expected.
    let mut transport = Scripted {
        answers: vec![answer(200, "{}", &[])],
        ..Scripted::default()
    };
    let sha = "ab".repeat(32);
    let get = [
        ("url", "http://api.test/items/1"),
        ("expect-sha256", sha.as_str()),
    ];
    let error = step(&mut transport, &sb.run(&get)).unwrap_err();
    assert!(
        error
            .message()
            .contains(&format!("is sha-of-{{}}, expected {sha}")),
        "{error}"
    );

    // A missing field fails the step.
    let mut transport = Scripted {
        answers: vec![answer(200, r#"{"data":{}}"#, &[])],
        ..Scripted::default()
    };
    let error = step(&mut transport, &ctx).unwrap_err();
    assert!(error.message().contains("no key `id`"), "{error}");

    // A GET changes nothing, so its failure never hints otherwise.
    let mut transport = Scripted {
        answers: vec![answer(503, "", &[])],
        ..Scripted::default()
    };
    let error = step(&mut transport, &sb.run(&[("url", "http://x/")])).unwrap_err();
    assert!(
        error.message().ends_with("expected 2xx (1 attempt)"),
        "{error}"
    );
}

#[test]
fn an_unexpected_status_fails_the_step_after_setting_status() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(403, "forbidden", &[])],
        ..Scripted::default()
    };
    let error = step(&mut transport, &sb.run(PUT)).unwrap_err();
    assert!(
        error.message().contains("answered 403, expected 201,204"),
        "{error}"
    );
    assert!(sb.read("output").contains("status=403\n"));
    assert_eq!(sb.state("effect").as_deref(), Some("refused"));
}

#[test]
fn retries_wait_and_try_again() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![
            refused_connection(),
            answer(503, "", &[]),
            answer(201, "", &[]),
        ],
        ..Scripted::default()
    };
    let mut inputs = PUT.to_vec();
    inputs.extend([("retries", "3"), ("backoff-ms", "10")]);
    step(&mut transport, &sb.run(&inputs)).unwrap();
    assert_eq!(transport.sent.len(), 3);
    assert_eq!(transport.slept, [10, 20].map(Duration::from_millis));
    assert!(sb.read("output").starts_with("attempts=3\nstatus=201\n"));

    // Spent retries end in failure, naming how many attempts were made.
    let mut transport = Scripted {
        answers: vec![refused_connection(), refused_connection()],
        ..Scripted::default()
    };
    let mut inputs = PUT.to_vec();
    inputs.extend([("retries", "1"), ("backoff-ms", "0")]);
    let error = step(&mut transport, &sb.run(&inputs)).unwrap_err();
    assert!(
        error
            .message()
            .contains("connection was refused (2 attempts)"),
        "{error}"
    );
    assert_eq!(sb.state("effect").as_deref(), Some("none"));
}

#[test]
fn bad_inputs_fail_before_anything_is_sent() {
    let sb = Sandbox::new();
    for (inputs, expected) in [
        (vec![("url", "ftp://x/")], "input `url`: the scheme `ftp`"),
        (
            vec![("url", "http://x/"), ("method", "GE T")],
            "input `method`",
        ),
        (
            vec![("url", "http://x/"), ("expect", "2yy")],
            "input `expect`",
        ),
        (
            vec![
                ("url", "http://x/"),
                ("headers", "Authorization Bearer s3cr3t"),
            ],
            "input `headers`: header line 1 has no `:`",
        ),
        (
            vec![("url", "http://x/"), ("body", "a"), ("body-file", "b")],
            "not both",
        ),
        (
            vec![("url", "http://x/"), ("body-file", "missing.txt")],
            "input `body-file`: cannot read",
        ),
        (vec![("url", "http://x/"), ("retries", "21")], "at most 20"),
        (
            vec![("url", "http://x/"), ("expect-sha256", "abc")],
            "not a sha256",
        ),
        (
            vec![("url", "http://x/"), ("output-json", "a..b")],
            "input `output-json`",
        ),
        (
            vec![("url", "http://x/"), ("rollback-body", "{}")],
            "`rollback-body` is given without",
        ),
        (
            vec![("url", "http://x/"), ("rollback-url", "x")],
            "input `rollback-url`",
        ),
        (vec![("method", "GET")], "input `url` is required"),
    ] {
        let mut transport = Scripted::default();
        let error = step(&mut transport, &sb.run(&inputs)).unwrap_err();
        assert!(error.message().contains(expected), "{inputs:?}: {error}");
        assert!(!error.message().contains("s3cr3t"), "{error}");
        assert!(transport.sent.is_empty(), "{inputs:?}");
        assert_eq!(sb.read("state"), "", "{inputs:?}");
    }
}

#[test]
fn rollback_compensates_what_was_done_with_the_defaults() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(201, "", &[])],
        ..Scripted::default()
    };
    let mut inputs = PUT.to_vec();
    inputs.push(("headers", "Authorization: Bearer s3cr3t-token"));
    step(&mut transport, &sb.run(&inputs)).unwrap();

    // The file was already deleted (404): the compensation holds.
    let mut transport = Scripted {
        answers: vec![answer(204, "", &[]), answer(404, "", &[])],
        ..Scripted::default()
    };
    for _ in 0..2 {
        step(&mut transport, &sb.rollback(&inputs, "success")).unwrap();
    }
    let sent = &transport.sent[0];
    assert_eq!(sent.method, "DELETE");
    assert_eq!(
        sent.url.to_string(),
        "http://127.0.0.1:8080/site/index.html"
    );
    assert_eq!(sent.body, None);
    // `rollback-headers` defaults to `headers`: the same credentials.
    assert_eq!(sent.headers[0].value, "Bearer s3cr3t-token");
    assert!(sb.read("summary").contains("Compensated with `DELETE"));
}

#[test]
fn rollback_uses_its_own_url_method_body_and_expect() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(200, "", &[])],
        ..Scripted::default()
    };
    let inputs = [
        ("url", "http://api.test/flags/beta"),
        ("method", "POST"),
        ("body", "on"),
        ("rollback-url", "http://api.test/flags/beta/off"),
        ("rollback-method", "post"),
        ("rollback-body", "off"),
        ("rollback-headers", "X-Why: rollback"),
        ("rollback-expect", "200"),
    ];
    step(&mut transport, &sb.run(&inputs)).unwrap();
    let mut transport = Scripted {
        answers: vec![answer(202, "", &[])],
        ..Scripted::default()
    };
    let error = step(&mut transport, &sb.rollback(&inputs, "success")).unwrap_err();
    assert!(
        error.message().contains("answered 202, expected 200"),
        "{error}"
    );
    let sent = &transport.sent[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url.to_string(), "http://api.test/flags/beta/off");
    assert_eq!(sent.body.as_deref(), Some(&b"off"[..]));
    assert_eq!(sent.headers[0].name, "X-Why");
}

#[test]
fn rollback_sends_nothing_when_nothing_happened() {
    let sb = Sandbox::new();
    // Refused by the server: nothing to undo.
    let mut transport = Scripted {
        answers: vec![answer(409, "", &[])],
        ..Scripted::default()
    };
    step(&mut transport, &sb.run(PUT)).unwrap_err();
    let mut transport = Scripted::default();
    step(&mut transport, &sb.rollback(PUT, "failure")).unwrap();
    assert!(transport.sent.is_empty());

    // Never reached the server.
    let mut transport = Scripted {
        answers: vec![refused_connection()],
        ..Scripted::default()
    };
    step(&mut transport, &sb.run(PUT)).unwrap_err();
    let mut transport = Scripted::default();
    step(&mut transport, &sb.rollback(PUT, "failure")).unwrap();
    assert!(transport.sent.is_empty());

    // Failed before saving any state.
    let sb = Sandbox::new();
    let mut transport = Scripted::default();
    step(&mut transport, &sb.rollback(PUT, "failure")).unwrap();
    assert!(transport.sent.is_empty());

    // No compensation configured, whatever happened.
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(201, "", &[])],
        ..Scripted::default()
    };
    let inputs = [("url", "http://x/"), ("method", "PUT"), ("body", "a")];
    step(&mut transport, &sb.run(&inputs)).unwrap();
    let mut transport = Scripted::default();
    step(&mut transport, &sb.rollback(&inputs, "success")).unwrap();
    assert!(transport.sent.is_empty());
}

#[test]
fn rollback_compensates_when_the_effect_is_unknown() {
    let sb = Sandbox::new();
    let mut transport = Scripted {
        answers: vec![answer(502, "", &[])],
        ..Scripted::default()
    };
    let error = step(&mut transport, &sb.run(PUT)).unwrap_err();
    assert!(
        error
            .message()
            .ends_with("answered 502, expected 201,204 (1 attempt); it may have reached the server all the same"),
        "{error}"
    );
    assert_eq!(sb.state("effect").as_deref(), Some("unknown"));
    let mut transport = Scripted {
        answers: vec![answer(404, "", &[])],
        ..Scripted::default()
    };
    step(&mut transport, &sb.rollback(PUT, "failure")).unwrap();
    assert_eq!(transport.sent.len(), 1);
    assert_eq!(transport.sent[0].method, "DELETE");
}

#[test]
fn metadata_is_valid_and_names_every_input_the_step_reads() {
    let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
    assert_eq!(meta.name, "http");
    assert!(meta.rollback);
    let inputs = meta.inputs.as_ref().expect("the metadata lists the inputs");
    assert!(inputs["url"].required);
    assert_eq!(inputs["method"].default, Some(serde_json::json!("GET")));
    assert_eq!(inputs["expect"].default, Some(serde_json::json!("2xx")));
    assert_eq!(
        inputs["rollback-expect"].default,
        Some(serde_json::json!(ROLLBACK_EXPECT))
    );
    // The destination is the user's: the plugin asks for no grant itself,
    // and the workspace only when `body-file` names a file in it.
    assert_eq!(meta.permissions, Default::default());
    let source = include_str!("main.rs");
    for input in inputs.keys() {
        let bare = input.strip_prefix("rollback-").unwrap_or(input);
        assert!(
            source.contains(&format!("\"{input}\"")) || source.contains(&format!("\"{bare}\"")),
            "input `{input}` is documented but never read"
        );
        assert!(inputs[input].description.is_some(), "{input}");
    }
    for output in ["status", "header", "json", "sha256", "bytes", "attempts"] {
        assert!(source.contains(&format!("\"{output}\"")), "{output}");
        assert!(meta.outputs.contains_key(output), "{output}");
    }
}
