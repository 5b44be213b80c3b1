//! Network grants, deny by default: a component step reaches exactly the
//! destinations its `permissions.network` names, checked by gantry before
//! anything leaves the machine, against real servers on 127.0.0.1.
//!
//! The guest is `netprobe`, a component making `wasi:http` requests and
//! `wasi:sockets` connections as its inputs say.

use gantry_tests::servers::{PrivateCa, Reply, Server, loopback_alias};
use gantry_tests::{NETPROBE_WASM, Outcome, PROBE_WASM, Project};

/// Runs one netprobe step with `with` inputs and `grants` (YAML list items,
/// already quoted), and returns what gantry did.
fn probe(with: &str, grants: &[String]) -> (Project, Outcome) {
    let project = Project::new();
    let sha = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    let network = if grants.is_empty() {
        String::new()
    } else {
        format!(
            "        permissions:\n          network:\n{}",
            grants
                .iter()
                .map(|grant| format!("            - \"{grant}\"\n"))
                .collect::<String>()
        )
    };
    project.manifest(&format!(
        "name: net\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: call\n        uses: netprobe\n        with: {{ {with} }}\n{network}"
    ));
    let outcome = project.gantry(&["run"]);
    (project, outcome)
}

fn hello_server() -> Server {
    Server::http(|_, path| match path {
        "/hello" => Reply::ok("hello from the server"),
        _ => Reply {
            status: 404,
            headers: Vec::new(),
            body: "not here".into(),
        },
    })
}

/// Checks a request was refused: inside the guest with the protocol's
/// error, and by gantry's own warning naming the step and destination.
#[track_caller]
fn refused(outcome: &Outcome, destination: &str, reason: &str) {
    outcome
        .expect_code(1)
        .stdout_has("error=")
        .stdout_has(&format!(
            "gantry: warning: step `call` was refused {destination}: {reason}"
        ));
}

#[test]
fn a_granted_request_reaches_the_server() {
    let server = hello_server();
    let url = format!("{}/hello", server.origin());
    let (project, outcome) = probe(&format!("action: get, url: \"{url}\""), &[server.origin()]);
    outcome
        .expect_code(0)
        .stdout_has("status=200")
        .stdout_has("body=hello from the server");
    assert_eq!(server.connections(), 1);
    // The plan shows the grant, canonical, with its port.
    project
        .gantry(&["plan"])
        .expect_code(0)
        .stdout_has(&format!("network http://127.0.0.1:{}", server.port()));
}

#[test]
fn with_no_grant_every_request_is_refused_before_any_connection() {
    let server = hello_server();
    let url = format!("{}/hello", server.origin());
    let (_project, outcome) = probe(&format!("action: get, url: \"{url}\""), &[]);
    refused(
        &outcome,
        &format!("http://127.0.0.1:{}", server.port()),
        "no `permissions.network` grant of the step names it",
    );
    outcome.stdout_has("HttpRequestDenied");
    assert_eq!(server.connections(), 0, "nothing left the machine");
}

#[test]
fn a_grant_of_another_port_or_scheme_does_not_reach_this_one() {
    let server = hello_server();
    let other = Server::http(|_, _| Reply::ok("other"));
    let url = format!("{}/hello", server.origin());
    for grant in [
        other.origin(),
        format!("https://127.0.0.1:{}", server.port()),
    ] {
        let (_project, outcome) = probe(&format!("action: get, url: \"{url}\""), &[grant]);
        refused(
            &outcome,
            &format!("http://127.0.0.1:{}", server.port()),
            "no `permissions.network` grant",
        );
    }
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_wildcard_never_matches_its_apex() {
    let server = hello_server();
    let url = format!("http://localhost:{}/hello", server.port());
    let (_project, outcome) = probe(
        &format!("action: get, url: \"{url}\""),
        &[format!("http://*.localhost:{}", server.port())],
    );
    refused(
        &outcome,
        &format!("http://localhost:{}", server.port()),
        "no `permissions.network` grant",
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn localhost_granted_by_name_reaches_loopback() {
    let server = hello_server();
    let url = format!("http://localhost:{}/hello", server.port());
    let (_project, outcome) = probe(
        &format!("action: get, url: \"{url}\""),
        &[format!("http://localhost:{}", server.port())],
    );
    outcome.expect_code(0).stdout_has("status=200");
}

#[test]
fn a_name_resolving_to_loopback_is_refused_without_a_literal_grant() {
    let server = hello_server();
    let alias = loopback_alias();
    let url = format!("http://{alias}:{}/hello", server.port());
    let (_project, outcome) = probe(
        &format!("action: get, url: \"{url}\""),
        &[format!("http://{alias}:{}", server.port())],
    );
    refused(
        &outcome,
        &format!("http://{}:{}", alias.to_ascii_lowercase(), server.port()),
        "it resolves to 127.",
    );
    outcome.stdout_has(
        "a loopback address, which only a grant naming that address (or `localhost`, for loopback) may reach",
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_redirect_is_followed_only_to_a_granted_destination() {
    let elsewhere = hello_server();
    let target = format!("{}/hello", elsewhere.origin());
    let redirecting = Server::http(move |_, _| Reply::redirect(&target));
    let url = format!("{}/start", redirecting.origin());
    let with = format!("action: get, follow: \"true\", url: \"{url}\"");

    let (_project, outcome) = probe(&with, &[redirecting.origin()]);
    refused(
        &outcome,
        &format!("http://127.0.0.1:{}", elsewhere.port()),
        "no `permissions.network` grant",
    );
    outcome.stdout_has(&format!("redirect={}/hello", elsewhere.origin()));
    assert_eq!(elsewhere.connections(), 0);

    let (_project, outcome) = probe(&with, &[redirecting.origin(), elsewhere.origin()]);
    outcome
        .expect_code(0)
        .stdout_has("body=hello from the server");
}

#[test]
fn raw_tcp_reaches_a_granted_port_only() {
    let server = Server::tcp_pong();
    let address = format!("127.0.0.1:{}", server.port());
    let (_project, outcome) = probe(
        &format!("action: tcp, address: \"{address}\""),
        &[format!("tcp://{address}")],
    );
    outcome.expect_code(0).stdout_has("reply=pong");

    let (_project, outcome) = probe(&format!("action: tcp, address: \"{address}\""), &[]);
    refused(
        &outcome,
        &format!("tcp://{address}"),
        "no `tcp://` grant of the step names this address and port",
    );
    let other = Server::tcp_pong();
    let (_project, outcome) = probe(
        &format!("action: tcp, address: \"{address}\""),
        &[format!("tcp://127.0.0.1:{}", other.port())],
    );
    refused(&outcome, &format!("tcp://{address}"), "no `tcp://` grant");
    assert_eq!(server.connections(), 1, "only the granted connection");
}

#[test]
fn an_http_grant_is_not_a_tcp_grant() {
    let server = Server::tcp_pong();
    let address = format!("127.0.0.1:{}", server.port());
    let (_project, outcome) = probe(
        &format!("action: tcp, address: \"{address}\""),
        &[format!("http://{address}")],
    );
    refused(&outcome, &format!("tcp://{address}"), "no `tcp://` grant");
}

#[test]
fn a_preview_1_module_with_a_network_grant_is_refused_before_the_run() {
    let project = Project::new();
    let sha = project.plugin_from(PROBE_WASM, "probe.wasm");
    project.manifest(&format!(
        "name: t\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: probe\n        with: {{ action: echo }}\n        permissions:\n          network: [\"https://api.example.com\"]\n"
    ));
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("plugin `probe` is a WASI preview 1 module, which cannot use the network")
        .stderr_has("wasm32-wasip2");
    assert!(!project.state_dir().join("runs").exists(), "nothing ran");
}

#[test]
fn malformed_grants_are_manifest_errors_with_a_location() {
    let project = Project::new();
    let sha = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    project.manifest(&format!(
        "name: t\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: netprobe\n        permissions:\n          network:\n            - api.example.com\n            - tcp://db.internal\n"
    ));
    project
        .gantry(&["validate"])
        .expect_code(2)
        .stderr_has("gantry.yml:12:")
        .stderr_has("write `scheme://host[:port]`")
        .stderr_has("gantry.yml:13:")
        .stderr_has("must name its port");
}

#[test]
fn a_plugin_that_needs_a_destination_requires_the_step_to_grant_it() {
    let project = Project::new();
    let bytes = std::fs::read(NETPROBE_WASM).unwrap();
    project.write("netprobe.wasm", &bytes);
    project.write(
        "meta.json",
        br#"{"name": "netprobe", "permissions": {"network": ["https://api.example.com"]}}"#,
    );
    project
        .gantry(&[
            "plugin",
            "annotate",
            "netprobe.wasm",
            "meta.json",
            "-o",
            "netprobe.wasm",
        ])
        .expect_code(0);
    let sha =
        gantry_tests::sha256_hex(&std::fs::read(project.path().join("netprobe.wasm")).unwrap());
    let manifest = |grant: &str| {
        format!(
            "name: t\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: netprobe\n        permissions:\n          network: [\"{grant}\"]\n"
        )
    };
    project.manifest(&manifest("https://other.example.com"));
    project
        .gantry(&["validate"])
        .expect_code(2)
        .stderr_has("needs to reach `https://api.example.com:443`, which the step does not grant");
    project.manifest(&manifest("https://*.example.com"));
    project
        .gantry(&["validate"])
        .expect_code(0)
        .stdout_has("network: step `netprobe` of job `main` may reach https://*.example.com:443");
    project
        .gantry(&["inspect", "netprobe.wasm"])
        .stdout_has("network: https://api.example.com");
}

#[test]
fn a_hook_is_journaled_with_its_steps_grants() {
    let server = hello_server();
    let project = Project::new();
    let sha = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    let url = format!("{}/hello", server.origin());
    project.manifest(&format!(
        "name: t\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: call\n        uses: netprobe\n        with: {{ action: get, url: \"{url}\" }}\n        permissions:\n          network: [\"{}\"]\n        rollback: {{}}\n      - uses: netprobe\n        with: {{ action: nothing }}\n",
        server.origin()
    ));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("status=200");
    // The step's request and its hook's, both granted from the journal.
    assert_eq!(server.connections(), 2);
    let journal = std::fs::read_to_string(project.latest_run_dir().join("journal.jsonl")).unwrap();
    assert!(
        journal.contains(&format!(
            "\"network\":[\"http://127.0.0.1:{}\"]",
            server.port()
        )),
        "{journal}"
    );
}

/// A netprobe project requesting `url` with one `grant`, and the manifest's
/// extra top-level YAML.
fn https_project(url: &str, grant: &str, top: &str) -> Project {
    let project = Project::new();
    let sha = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    project.manifest(&format!(
        "name: tls\n{top}plugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: call\n        uses: netprobe\n        with: {{ action: get, url: \"{url}\" }}\n        permissions:\n          network: [\"{grant}\"]\n"
    ));
    project
}

#[test]
fn https_trusts_the_system_roots_and_a_private_ca_only_when_given() {
    let ca = PrivateCa::new();
    let server = Server::https(&ca, |_, _| Reply::ok("over TLS"));
    let url = format!("https://localhost:{}/", server.port());
    let grant = format!("https://localhost:{}", server.port());

    // Signed by a CA the system does not know: the handshake fails.
    let project = https_project(&url, &grant, "");
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("error=ErrorCode::Tls");

    // The same CA given on the command line, or named by the manifest.
    project.write("certs/ca.pem", ca.pem().as_bytes());
    project
        .gantry(&["run", "--ca-file", "certs/ca.pem"])
        .expect_code(0)
        .stdout_has("status=200")
        .stdout_has("body=over TLS");
    let project = https_project(&url, &grant, "ca-file: certs/ca.pem\n");
    project.write("certs/ca.pem", ca.pem().as_bytes());
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("body=over TLS");

    // A CA file that is not there is a manifest mistake.
    let project = https_project(&url, &grant, "ca-file: certs/missing.pem\n");
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("the CA file")
        .stderr_has("does not exist");
}

#[test]
fn a_secret_in_a_refused_destination_is_masked_in_the_warning() {
    let server = hello_server();
    let project = Project::new();
    let sha = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    project.manifest(&format!(
        "name: t\nplugins:\n  netprobe:\n    source: netprobe.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: call\n        uses: netprobe\n        with: {{ action: get, url: \"http://internal-${{{{ secrets.HOST }}}}.example:{}/\" }}\n",
        server.port()
    ));
    let outcome =
        project.gantry_with_env(&["run", "--secret", "HOST"], &[("HOST", "topsecretname")]);
    outcome
        .expect_code(1)
        .stdout_has("was refused http://internal-***.example:");
    assert!(
        !outcome.stdout.contains("topsecretname"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn a_tcp_grant_by_name_allows_looking_up_that_name_only() {
    let server = Server::tcp_pong();
    let port = server.port();
    let grant = [format!("tcp://localhost:{port}")];
    let (_project, outcome) = probe(
        &format!("action: tcp, address: \"localhost:{port}\""),
        &grant,
    );
    outcome.expect_code(0).stdout_has("reply=pong");

    let alias = loopback_alias();
    let (_project, outcome) = probe(&format!("action: tcp, address: \"{alias}:{port}\""), &grant);
    refused(
        &outcome,
        &format!("dns://{alias}"),
        "a step may only look up the names its `tcp://` grants hold",
    );
    assert_eq!(server.connections(), 1);
}
