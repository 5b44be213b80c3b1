//! Plugins from OCI registries, through the `gantry` binary against a real
//! `docker-registry` on 127.0.0.1: push, pull by digest, lock a tag, pins
//! and digests that do not match, the wasm artifact layout, the content
//! cache when the registry is gone, credentials, plain HTTP, and
//! `gantry fetch` for offline runs.

use std::io::{Read, Write};
use std::net::TcpStream;

use gantry_tests::registry::Registry;
use gantry_tests::{Outcome, Project, first_party_wasm, sha256_hex};

/// What `gantry plugin push` printed to pin.
struct Pushed {
    source: String,
    sha256: String,
    digest: String,
}

/// A project whose docker config folder is its own (empty until a test
/// writes one), so no credentials of the machine's user are read.
struct OciProject {
    project: Project,
    docker: tempfile::TempDir,
}

impl OciProject {
    fn new() -> OciProject {
        OciProject {
            project: Project::new(),
            docker: tempfile::tempdir().expect("temp folder"),
        }
    }

    fn gantry(&self, args: &[&str]) -> Outcome {
        self.gantry_with_env(args, &[])
    }

    fn gantry_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let docker = self.docker.path().to_str().expect("UTF-8 temp path");
        let mut all = vec![("DOCKER_CONFIG", docker)];
        all.extend_from_slice(env);
        let mut command = self.project.command(args);
        // The machine's own token, if any, never; the test's, when given.
        command.env_remove("GANTRY_REGISTRY_TOKEN").envs(all);
        let output = command.output().expect("running gantry");
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Pushes the first-party plugin `name` to `reference`.
    fn push(&self, name: &str, reference: &str, extra: &[&str]) -> Pushed {
        let file = format!("plugins/{name}.wasm");
        self.project.first_party_plugin(name, &file);
        let mut args = vec!["plugin", "push", &file, reference];
        args.extend_from_slice(extra);
        let out = self.gantry(&args);
        out.expect_code(0);
        let line = |prefix: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` in {}", out.stdout))
                .to_owned()
        };
        Pushed {
            source: line("source: "),
            sha256: line("sha256: "),
            digest: line("digest: sha256:"),
        }
    }

    /// Writes a manifest running plugin `step` from `source`, pinned by
    /// `sha256` when given.
    fn pipeline(&self, source: &str, sha256: Option<&str>) {
        let pin = sha256.map(|s| format!(", sha256: {s}")).unwrap_or_default();
        self.project.manifest(&format!(
            "name: oci\nplugins:\n  step: {{ source: \"{source}\"{pin} }}\njobs:\n  main:\n    steps:\n      - uses: step\n        with: {{ who: registry }}\n"
        ));
    }

    /// Forgets everything pulled, as on a fresh machine.
    fn clear_blobs(&self) {
        let _ = std::fs::remove_dir_all(self.project.cache_dir().join("blobs"));
    }

    fn cached_blob(&self, hex: &str) -> std::path::PathBuf {
        self.project.cache_dir().join("blobs/sha256").join(hex)
    }
}

/// A registry with the first-party `hello` pushed to `steps/hello:1`, and a
/// project to pull it into; `None` (the test stops) without the registry.
fn pushed_hello() -> Option<(Registry, OciProject, Pushed)> {
    if !Registry::available() {
        return None;
    }
    let registry = Registry::start();
    let project = OciProject::new();
    let reference = format!("oci://{}/steps/hello:1", registry.address());
    let pushed = project.push("hello", &reference, &[]);
    Some((registry, project, pushed))
}

fn hello_sha() -> String {
    sha256_hex(&std::fs::read(first_party_wasm("hello")).expect("hello was built"))
}

/// One raw HTTP/1.1 request to the registry; returns status and body.
fn http(
    registry: &Registry,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(registry.address()).expect("registry reachable");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        registry.address(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let status = String::from_utf8_lossy(&response[9..12]).parse().unwrap();
    (status, response[split + 4..].to_vec())
}

#[test]
fn push_then_run_pulls_by_digest_with_the_metadata_as_annotations() {
    if !Registry::available() {
        return;
    }
    let registry = Registry::start();
    let project = OciProject::new();
    let reference = format!("oci://{}/steps/hello:1.0", registry.address());
    let pushed = project.push("hello", &reference, &[]);
    assert_eq!(pushed.sha256, hello_sha());
    assert_eq!(
        pushed.source,
        format!(
            "oci://{}/steps/hello@sha256:{}",
            registry.address(),
            pushed.digest
        )
    );

    // The manifest the registry holds: the wasm layout and the annotations.
    let (status, manifest) = http(
        &registry,
        "GET",
        &format!("/v2/steps/hello/manifests/sha256:{}", pushed.digest),
        "Accept: application/vnd.oci.image.manifest.v1+json\r\n",
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&manifest), pushed.digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        manifest["layers"][0]["digest"],
        format!("sha256:{}", pushed.sha256)
    );
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.title"], "hello.wasm");
    assert_eq!(annotations["dev.gantry.step.name"], "hello");
    assert!(
        annotations["dev.gantry.step.metadata"]
            .as_str()
            .unwrap()
            .contains("\"who\"")
    );

    // A project without the file runs it from the registry.
    std::fs::remove_file(project.project.path().join("plugins/hello.wasm")).unwrap();
    project.pipeline(&pushed.source, Some(&pushed.sha256));
    let run = project.gantry(&["run"]);
    run.expect_code(0).stdout_has("Hello, registry!");
    let cached = std::fs::read(project.cached_blob(&pushed.sha256)).expect("the wasm is cached");
    assert_eq!(sha256_hex(&cached), pushed.sha256);
    assert!(project.cached_blob(&pushed.digest).is_file());
}

#[test]
fn only_lock_resolves_a_tag_and_a_run_follows_the_locked_digest() {
    if !Registry::available() {
        return;
    }
    let registry = Registry::start();
    let project = OciProject::new();
    let tag = format!("oci://{}/steps/greeter:stable", registry.address());
    let first = project.push("hello", &tag, &[]);
    project.pipeline(&tag, None);

    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("names a tag, which is not locked to a digest")
        .stderr_has("run `gantry lock`")
        .stdout_lacks("Hello");

    project
        .gantry(&["lock"])
        .expect_code(0)
        .stdout_has(&format!("resolved to {}", first.source));
    let lock = std::fs::read_to_string(project.project.path().join("gantry.lock")).unwrap();
    assert!(
        lock.contains(&format!("sha256: {}", first.sha256)),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("resolved: \"{}\"", first.source)),
        "{lock}"
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("Hello, registry!");

    // The tag moves: runs keep the locked digest, lock refuses to follow
    // silently, and `--update` follows.
    let second = project.push("checksum", &tag, &[]);
    assert_ne!(second.digest, first.digest);
    project.clear_blobs();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("Hello, registry!");
    project
        .gantry(&["lock"])
        .expect_code(3)
        .stderr_has(&format!(
            "expected sha256 {}, found {}",
            first.sha256, second.sha256
        ));
    project.gantry(&["lock", "--update"]).expect_code(0);
    let lock = std::fs::read_to_string(project.project.path().join("gantry.lock")).unwrap();
    assert!(
        lock.contains(&format!("resolved: \"{}\"", second.source)),
        "{lock}"
    );

    // A lock entry pointing the tag at another repository is refused.
    let forged = lock.replace("/steps/greeter@", "/steps/other@");
    std::fs::write(project.project.path().join("gantry.lock"), forged).unwrap();
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("which is not a digest reference in the repository of");
}

#[test]
fn a_pin_that_does_not_match_the_pulled_wasm_stops_the_run() {
    let Some((registry, project, pushed)) = pushed_hello() else {
        return;
    };
    let other = "ab".repeat(32);
    project.pipeline(&pushed.source, Some(&other));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("expected sha256 {other}, found {}", pushed.sha256))
        .stdout_lacks("Hello");

    // Unpinned, a digest reference is no more trusted than a file.
    project.pipeline(&pushed.source, None);
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("is not pinned");

    // A digest the registry does not have names the reference.
    let missing = format!(
        "oci://{}/steps/hello@sha256:{}",
        registry.address(),
        "cd".repeat(32)
    );
    project.pipeline(&missing, Some(&pushed.sha256));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("cannot pull `{missing}`"))
        .stderr_has("the registry said");
}

#[test]
fn a_registry_serving_another_blob_than_its_manifest_claims_is_refused() {
    let Some((registry, project, pushed)) = pushed_hello() else {
        return;
    };
    // Same length, other bytes: only the digest can tell.
    let blob = registry.blob_file(&pushed.sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    project.pipeline(&pushed.source, Some(&pushed.sha256));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!(
            "the registry served a layer that does not match its manifest: expected sha256 {}, found {}",
            pushed.sha256,
            sha256_hex(&bytes)
        ))
        .stdout_lacks("Hello");
    assert!(!project.cached_blob(&pushed.sha256).exists());
    assert!(!project.cached_blob(&sha256_hex(&bytes)).exists());
}

#[test]
fn a_manifest_without_the_wasm_layout_is_refused_naming_what_it_has() {
    let Some((registry, project, pushed)) = pushed_hello() else {
        return;
    };
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json\r\n";
    let (_, manifest) = http(
        &registry,
        "GET",
        &format!("/v2/steps/hello/manifests/sha256:{}", pushed.digest),
        accept,
        b"",
    );
    let mut manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
    let body = serde_json::to_vec(&manifest).unwrap();
    let (status, answer) = http(
        &registry,
        "PUT",
        "/v2/steps/hello/manifests/tarball",
        "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
        &body,
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));

    let source = format!(
        "oci://{}/steps/hello@sha256:{}",
        registry.address(),
        sha256_hex(&body)
    );
    project.pipeline(&source, Some(&pushed.sha256));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(
            "its layer has media type `application/vnd.oci.image.layer.v1.tar`, expected `application/wasm`",
        )
        .stdout_lacks("Hello");
}

#[test]
fn an_unreachable_registry_is_an_error_unless_the_plugin_is_cached() {
    let Some((registry, project, pushed)) = pushed_hello() else {
        return;
    };
    project.pipeline(&pushed.source, Some(&pushed.sha256));
    project.gantry(&["run"]).expect_code(0);
    drop(registry);

    // Cached: the run never asks the registry.
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("Hello, registry!");

    // A cached blob someone edited is not used.
    std::fs::write(project.cached_blob(&pushed.sha256), b"not the plugin").unwrap();
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("cannot pull `{}`", pushed.source))
        .stderr_has("cannot reach the registry");

    project.clear_blobs();
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("cannot pull `{}`", pushed.source))
        .stderr_has("cannot reach the registry")
        .stdout_lacks("Hello");
}

#[test]
fn credentials_are_required_and_come_from_docker_config_or_the_token() {
    if !Registry::available() {
        return;
    }
    let registry = Registry::start_with_auth("ann", "s3cret-pw");
    let project = OciProject::new();
    let reference = format!("oci://{}/steps/hello:1", registry.address());
    project
        .project
        .first_party_plugin("hello", "plugins/hello.wasm");
    project
        .gantry(&["plugin", "push", "plugins/hello.wasm", &reference])
        .expect_code(3)
        .stderr_has(&format!("cannot push to `{reference}`"))
        .stderr_has(&format!("docker login {}", registry.address()));
    let pushed = project.push(
        "hello",
        &reference,
        &["--registry-user", "ann", "--registry-token", "s3cret-pw"],
    );

    project.pipeline(&pushed.source, Some(&pushed.sha256));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("docker login")
        .stdout_lacks("Hello");

    // docker's config.json, as `docker login` writes it.
    std::fs::write(
        project.docker.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YW5uOnMzY3JldC1wdw=="}}}}}}"#,
            registry.address()
        ),
    )
    .unwrap();
    let with_config = project.gantry(&["run"]);
    with_config.expect_code(0).stdout_has("Hello, registry!");
    std::fs::remove_file(project.docker.path().join("config.json")).unwrap();

    // The token from the command line, and from the environment.
    project.clear_blobs();
    project
        .gantry(&[
            "run",
            "--registry-user",
            "ann",
            "--registry-token",
            "s3cret-pw",
        ])
        .expect_code(0);
    project.clear_blobs();
    project
        .gantry_with_env(
            &["--registry-user", "ann", "run"],
            &[("GANTRY_REGISTRY_TOKEN", "s3cret-pw")],
        )
        .expect_code(0)
        .stderr_lacks("s3cret-pw")
        .stdout_lacks("s3cret-pw");
    project.clear_blobs();
    project
        .gantry(&["run", "--registry-user", "ann", "--registry-token", "wrong"])
        .expect_code(3)
        .stderr_lacks("wrong");
}

#[test]
fn plain_http_to_a_host_not_named_loopback_needs_insecure_registry() {
    if !Registry::available() {
        return;
    }
    // The machine's own name resolves to loopback here, but it is not a
    // loopback name: DNS can lie, so gantry speaks HTTPS to it.
    let host = String::from_utf8(
        std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let resolves_to_loopback = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), 1))
        .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST));
    if host.is_empty() || host == "localhost" || !resolves_to_loopback {
        eprintln!("skipping: the machine's name `{host}` does not resolve to 127.0.0.1");
        return;
    }
    let registry = Registry::start();
    let project = OciProject::new();
    let reference = format!("oci://{host}:{}/steps/hello:1", registry.port());
    project
        .project
        .first_party_plugin("hello", "plugins/hello.wasm");
    project
        .gantry(&["plugin", "push", "plugins/hello.wasm", &reference])
        .expect_code(3)
        .stderr_has("cannot reach the registry")
        .stderr_has(&format!("--insecure-registry {host}"));
    let pushed = project.push("hello", &reference, &["--insecure-registry", &host]);
    project.pipeline(&pushed.source, Some(&pushed.sha256));
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("--insecure-registry {host}"));
    project
        .gantry(&["run", "--insecure-registry", &host])
        .expect_code(0)
        .stdout_has("Hello, registry!");
}

#[test]
fn fetch_pulls_ahead_so_a_run_works_offline() {
    let Some((registry, project, pushed)) = pushed_hello() else {
        return;
    };
    let tag = format!("oci://{}/steps/hello:1", registry.address());
    project.pipeline(&tag, None);
    project
        .gantry(&["fetch", "--manifest", "gantry.yml"])
        .expect_code(3)
        .stderr_has("run `gantry lock`");
    project.gantry(&["lock"]).expect_code(0);
    project.clear_blobs();
    project
        .gantry(&["fetch", "--manifest", "gantry.yml"])
        .expect_code(0)
        .stdout_has(&format!("fetched step ({tag}): sha256 {}", pushed.sha256));
    drop(registry);
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("Hello, registry!");
}

#[test]
fn a_pushed_bundle_is_attached_as_a_referrer_and_cached_beside_the_wasm() {
    if !Registry::available() {
        return;
    }
    let registry = Registry::start();
    let project = OciProject::new();
    let bundle = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#;
    project.project.write("hello.sigstore.json", bundle);
    let pushed = project.push(
        "hello",
        &format!("oci://{}/steps/hello:1", registry.address()),
        &["--bundle", "hello.sigstore.json"],
    );
    project.pipeline(&pushed.source, Some(&pushed.sha256));
    project.gantry(&["run"]).expect_code(0);
    let cached = project
        .project
        .cache_dir()
        .join(format!("blobs/sha256/{}.sigstore.json", pushed.sha256));
    assert_eq!(std::fs::read(cached).expect("the bundle is cached"), bundle);
}

#[test]
fn a_malformed_registry_reference_is_a_manifest_error_at_its_position() {
    let project = OciProject::new();
    project.pipeline("oci://ghcr.io/Acme/steps/hello:1", Some(&"ab".repeat(32)));
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:3:")
        .stderr_has("`Acme/steps/hello` is not a repository name (lowercase")
        .stderr_has("oci://REGISTRY/REPO@sha256:DIGEST");
}
