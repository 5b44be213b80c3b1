//! A signed record of each run (`gantry run --attest`): an in-toto
//! Statement v1 with a SLSA provenance v1 predicate, valid against the
//! statement's JSON schema (tests/fixtures, written from the spec), signed
//! as a DSSE envelope with `--attest-key`, and checked by `gantry
//! verify-run`, which refuses another key, an unsigned file where a key is
//! given, and any change to the payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_tests::{NETPROBE_WASM, Project, sha256_hex};
use serde_json::Value;

use crate::signatures::key_pair;

fn schema() -> jsonschema::Validator {
    let path = format!(
        "{}/fixtures/in-toto-statement-v1.schema.json",
        gantry_tests::TESTS_DIR
    );
    let schema: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("the fixture is a valid JSON Schema")
}

#[track_caller]
fn assert_valid(statement: &Value) {
    let errors: Vec<String> = schema()
        .iter_errors(statement)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{statement:#}");
}

/// A pipeline with a granted workspace, host variable and folder, an
/// uploaded artifact, and (when `fail`) a component step granted a network
/// destination that fails, so the first step's hook runs.
fn project(fail: bool) -> (Project, String, String) {
    let project = Project::new();
    let probe = project.probe_plugin("probe.wasm");
    let netprobe = project.plugin_from(NETPROBE_WASM, "netprobe.wasm");
    std::fs::create_dir_all(project.path().join("public")).unwrap();
    let failing = if fail {
        "      - id: call\n        uses: netprobe\n        permissions:\n          network: [\"https://api.example.com\"]\n"
    } else {
        ""
    };
    project.manifest(&format!(
        "name: attested\nplugins:\n  probe:\n    source: probe.wasm\n    sha256: {probe}\n  netprobe:\n    source: netprobe.wasm\n    sha256: {netprobe}\njobs:\n  main:\n    steps:\n      - id: first\n        uses: probe\n        with: {{ action: record, label: first, log: /workspace/log.txt }}\n        permissions:\n          workspace: write\n          env: [HOME]\n          dirs: [{{ host: ./public, guest: /public, access: write }}]\n        rollback: {{}}\n      - id: page\n        uses: probe\n        with: {{ action: write, path: /artifacts/site/index.txt, content: hello site }}\n        artifacts: {{ upload: [site] }}\n{failing}"
    ));
    (project, probe, netprobe)
}

fn read_json(project: &Project, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(project.path().join(name)).unwrap()).unwrap()
}

#[test]
fn an_unsigned_attestation_records_the_run_and_fits_the_schema() {
    let (project, probe, netprobe) = project(false);
    project
        .gantry(&["run", "--attest", "run.intoto.json"])
        .expect_code(0)
        .stderr_has("run attestation written to `run.intoto.json` (unsigned)");
    let statement = read_json(&project, "run.intoto.json");
    assert_valid(&statement);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");

    // The journal and the artifact, by digest.
    let run_dir = project.latest_run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    let journal = std::fs::read(run_dir.join("journal.jsonl")).unwrap();
    let subjects = statement["subject"].as_array().unwrap();
    assert_eq!(subjects[0]["digest"]["sha256"], sha256_hex(&journal));
    let index: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("artifacts.json")).unwrap()).unwrap();
    let site = &subjects[1];
    assert_eq!(site["name"], "artifact:site");
    assert_eq!(
        site["digest"]["sha256"],
        index["uploads"][0]["tree"]["digest"]
    );

    let definition = &statement["predicate"]["buildDefinition"];
    let manifest = std::fs::read(project.path().join("gantry.yml")).unwrap();
    assert_eq!(
        definition["externalParameters"]["manifest"]["sha256"],
        sha256_hex(&manifest)
    );
    let plugins = definition["resolvedDependencies"].as_array().unwrap();
    assert_eq!(plugins[0]["digest"]["sha256"], probe.as_str());
    assert_eq!(plugins[1]["digest"]["sha256"], netprobe.as_str());
    let first = &definition["internalParameters"]["steps"][0];
    assert_eq!(first["workspace"], "write");
    assert_eq!(first["env"][0], "HOME");
    assert_eq!(first["dirs"][0]["host"], "./public");
    assert_eq!(first["dirs"][0]["access"], "write");
    assert_eq!(first["plugin_sha256"], probe.as_str());
    assert_eq!(
        definition["internalParameters"]["steps"][1]["upload"][0],
        "site"
    );

    let details = &statement["predicate"]["runDetails"];
    assert_eq!(details["metadata"]["invocationId"], run_id.as_str());
    let outcome = &details["byproducts"][0]["annotations"];
    assert_eq!(outcome["status"], "success");
    assert_eq!(outcome["steps"][1]["status"], "success");
    assert!(outcome.get("rollback").is_none(), "{outcome}");

    project
        .gantry(&["verify-run", "run.intoto.json"])
        .expect_code(0)
        .stderr_has("is unsigned")
        .stdout_has(&format!("run: {run_id}"))
        .stdout_has(
            "main/first uses probe: workspace: write; ./public -> /public (write); env: HOME",
        )
        .stdout_has("outcome: success")
        .stdout_has("rollback: none");
}

#[test]
fn a_signed_attestation_records_the_rollback_and_detects_tampering() {
    let (project, _, _) = project(true);
    let fingerprint = key_pair(&project, "attest");
    let other = key_pair(&project, "other");
    project
        .gantry(&[
            "run",
            "--attest",
            "run.dsse.json",
            "--attest-key",
            "keys/attest.key",
        ])
        .expect_code(1)
        .stderr_has(&format!("(signed by {fingerprint})"));
    let envelope = read_json(&project, "run.dsse.json");
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(envelope["signatures"][0]["keyid"], fingerprint.as_str());
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_valid(&statement);

    // The failed step's grants, and the rollback that was taken.
    let call = &statement["predicate"]["buildDefinition"]["internalParameters"]["steps"][2];
    assert_eq!(call["network"][0], "https://api.example.com:443");
    let outcome = &statement["predicate"]["runDetails"]["byproducts"][0]["annotations"];
    assert_eq!(outcome["status"], "failure");
    assert_eq!(outcome["steps"][2]["status"], "failure");
    assert_eq!(outcome["rollback"]["status"], "success");
    let hooks = outcome["rollback"]["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["step"], "first");
    assert_eq!(hooks[0]["status"], "success");

    project
        .gantry(&["verify-run", "run.dsse.json", "--key", "keys/attest.pub"])
        .expect_code(0)
        .stdout_has("outcome: failure")
        .stdout_has("network: https://api.example.com:443")
        .stdout_has("rollback: success")
        .stdout_has("main/first: success");

    // Another key.
    project
        .gantry(&["verify-run", "run.dsse.json", "--key", "keys/other.pub"])
        .expect_code(3)
        .stderr_has(&format!(
            "expected a signature by key `keys/other.pub` ({other}), found a signature that does not verify with that key"
        ));
    // Without a key, a signed record is not taken at its word.
    project
        .gantry(&["verify-run", "run.dsse.json"])
        .expect_code(2)
        .stderr_has("give the public key with `--key PUB`");

    // The payload changed: the outcome rewritten as a success.
    let mut changed = statement.clone();
    changed["predicate"]["runDetails"]["byproducts"][0]["annotations"]["status"] = "success".into();
    let mut tampered = envelope.clone();
    tampered["payload"] = STANDARD
        .encode(serde_json::to_vec(&changed).unwrap())
        .into();
    project.write("tampered.json", serde_json::to_vec(&tampered).unwrap());
    project
        .gantry(&["verify-run", "tampered.json", "--key", "keys/attest.pub"])
        .expect_code(3)
        .stderr_has("found a signature that does not verify with that key")
        .stdout_lacks("outcome");

    // The payload type changed.
    let mut retyped = envelope.clone();
    retyped["payloadType"] = "application/json".into();
    project.write("retyped.json", serde_json::to_vec(&retyped).unwrap());
    project
        .gantry(&["verify-run", "retyped.json", "--key", "keys/attest.pub"])
        .expect_code(3);

    // The statement alone, its signature stripped, where a key is required.
    project.write("stripped.json", &payload);
    project
        .gantry(&["verify-run", "stripped.json", "--key", "keys/attest.pub"])
        .expect_code(3)
        .stderr_has("found an unsigned statement");
}

#[test]
fn verify_run_checks_the_statements_shape() {
    let (project, _, _) = project(false);
    project
        .gantry(&["run", "--attest", "run.json"])
        .expect_code(0);
    let statement = read_json(&project, "run.json");
    let broken = [
        (
            "/_type",
            Value::from("https://in-toto.io/Statement/v0.1"),
            "`_type`",
        ),
        (
            "/predicateType",
            Value::from("https://slsa.dev/provenance/v0.2"),
            "`predicateType`",
        ),
        ("/subject", Value::Array(vec![]), "no subject"),
        (
            "/subject/0/digest/sha256",
            Value::from("abc"),
            "malformed sha256",
        ),
    ];
    for (pointer, value, message) in broken {
        let mut changed = statement.clone();
        *changed.pointer_mut(pointer).unwrap() = value;
        assert!(
            !schema().is_valid(&changed) || pointer == "/predicateType",
            "the schema accepts a broken {pointer}"
        );
        project.write("broken.json", serde_json::to_vec(&changed).unwrap());
        project
            .gantry(&["verify-run", "broken.json"])
            .expect_code(3)
            .stderr_has(message);
    }
}

#[test]
fn an_unusable_attestation_key_is_refused_before_the_run() {
    let (project, _, _) = project(false);
    project.write("keys/bad.key", "not a key");
    project
        .gantry(&[
            "run",
            "--attest",
            "run.json",
            "--attest-key",
            "keys/bad.key",
        ])
        .expect_code(2)
        .stderr_has("is not a PEM file");
    assert!(!project.path().join("log.txt").exists(), "a step ran");
    assert!(!project.path().join("run.json").exists());
}
