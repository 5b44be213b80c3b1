//! Signed plugins (`verify:` on a plugin entry): a Sigstore bundle beside
//! the plugin must sign its exact sha256, checked offline against the key or
//! trusted root before anything compiles; anything else is exit 3 with
//! nothing run. Keys are made here by rcgen, not by gantry, so the format
//! is what other tools write.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gantry_tests::{Project, sha256_hex};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData as _};

use crate::fixture;

/// A new ECDSA P-256 key pair, written as `keys/NAME.key` (PKCS#8) and
/// `keys/NAME.pub`; returns the public key's fingerprint as gantry shows it.
pub fn key_pair(project: &Project, name: &str) -> String {
    let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    project.write(&format!("keys/{name}.key"), pair.serialize_pem());
    project.write(&format!("keys/{name}.pub"), pair.public_key_pem());
    format!("SHA256:{}", sha256_hex(&pair.subject_public_key_info()))
}

/// A project whose plugin `hello` must be signed with `keys/release.pub`.
fn signed_project() -> (Project, String, String) {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    let fingerprint = key_pair(&project, "release");
    project.manifest(&manifest(&sha, "{ key: keys/release.pub }"));
    (project, sha, fingerprint)
}

/// `gantry plugin sign PLUGIN --key keys/KEY.key`.
fn sign(project: &Project, plugin: &str, key: &str) -> gantry_tests::Outcome {
    project.gantry(&[
        "plugin",
        "sign",
        plugin,
        "--key",
        &format!("keys/{key}.key"),
    ])
}

fn manifest(sha: &str, verify: &str) -> String {
    format!(
        "name: signed\nplugins:\n  hello:\n    source: plugins/hello.wasm\n    sha256: {sha}\n    verify: {verify}\njobs:\n  build:\n    steps:\n      - uses: hello\n"
    )
}

fn bundle_of(project: &Project, plugin: &str) -> serde_json::Value {
    let path = project.path().join(format!("{plugin}.sigstore.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_bundle(project: &Project, plugin: &str, bundle: &serde_json::Value) {
    project.write(
        &format!("{plugin}.sigstore.json"),
        serde_json::to_vec_pretty(bundle).unwrap(),
    );
}

/// Nothing ran: no step printed, and no run was recorded.
fn assert_nothing_ran(project: &Project, outcome: &gantry_tests::Outcome) {
    assert!(
        !outcome.stdout.contains("hello from wat"),
        "{}",
        outcome.stdout
    );
    let runs = project.state_dir().join("runs");
    let count = std::fs::read_dir(&runs).map_or(0, |entries| entries.count());
    assert_eq!(count, 0, "a run was recorded in {}", runs.display());
}

#[test]
fn a_plugin_signed_with_the_required_key_runs() {
    let (project, sha, fingerprint) = signed_project();
    sign(&project, "plugins/hello.wasm", "release")
        .expect_code(0)
        .stdout_has(&format!("sha256 {sha} signed by {fingerprint}"));
    let bundle = bundle_of(&project, "plugins/hello.wasm");
    assert_eq!(
        bundle["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json",
        "{bundle}"
    );
    let digest = STANDARD
        .decode(
            bundle["messageSignature"]["messageDigest"]["digest"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(gantry::digest::hex(&digest), sha);
    assert_eq!(
        bundle["verificationMaterial"]["publicKey"]["hint"],
        fingerprint.as_str()
    );
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
    project.gantry(&["verify"]).expect_code(0);
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let (project, _, fingerprint) = signed_project();
    let other = key_pair(&project, "other");
    sign(&project, "plugins/hello.wasm", "other").expect_code(0);
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has(&format!(
            "expected a signature by key `keys/release.pub` ({fingerprint}), found a signature that does not verify with that key (the bundle names key `{other}`)"
        ));
    assert_nothing_ran(&project, &outcome);
    project.gantry(&["verify"]).expect_code(3);
}

#[test]
fn a_signature_over_another_file_is_refused() {
    let (project, sha, fingerprint) = signed_project();
    let other_sha = project.wat_plugin("plugins/other.wasm", &fixture("exit_zero.wat"));
    sign(&project, "plugins/other.wasm", "release").expect_code(0);
    // The other file's (good) bundle, put beside this plugin.
    let bundle = bundle_of(&project, "plugins/other.wasm");
    write_bundle(&project, "plugins/hello.wasm", &bundle);
    let outcome = project.gantry(&["run"]);
    outcome.expect_code(3).stderr_has(&format!(
        "expected a signature by key `keys/release.pub` ({fingerprint}), found a signature over another file: the bundle signs sha256 {other_sha}, the plugin is sha256 {sha}"
    ));
    assert_nothing_ran(&project, &outcome);

    // Claiming the right digest does not help: the signature is checked
    // over the digest of the bytes gantry holds.
    let mut forged = bundle.clone();
    forged["messageSignature"]["messageDigest"]["digest"] = STANDARD.encode(hex_bytes(&sha)).into();
    write_bundle(&project, "plugins/hello.wasm", &forged);
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has("found a signature that does not verify with that key");
    assert_nothing_ran(&project, &outcome);
}

#[test]
fn an_unsigned_plugin_where_a_signature_is_required_never_runs() {
    let (project, sha, fingerprint) = signed_project();
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has(&format!(
            "plugin `hello` (`plugins/hello.wasm`, sha256 {sha}) is not signed as required\n  Caused by: expected a signature by key `keys/release.pub` ({fingerprint}), found no signature"
        ))
        .stderr_has("hello.wasm.sigstore.json` does not exist")
        .stderr_has("gantry plugin sign");
    assert_nothing_ran(&project, &outcome);
    project.gantry(&["validate"]).expect_code(0);
    project.gantry(&["verify"]).expect_code(3);
}

#[test]
fn lock_never_pins_a_plugin_whose_signature_fails() {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    key_pair(&project, "release");
    project.manifest(
        "name: signed\nplugins:\n  hello:\n    source: plugins/hello.wasm\n    verify: { key: keys/release.pub }\njobs:\n  build:\n    steps:\n      - uses: hello\n",
    );
    project
        .gantry(&["lock"])
        .expect_code(3)
        .stderr_has("is not signed as required")
        .stdout_lacks("pinned");
    assert!(!project.path().join("gantry.lock").exists());
    sign(&project, "plugins/hello.wasm", "release").expect_code(0);
    project
        .gantry(&["lock"])
        .expect_code(0)
        .stdout_has(&format!("pinned  hello (plugins/hello.wasm): sha256 {sha}"));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
}

#[test]
fn a_tampered_bundle_is_refused() {
    let (project, _, _) = signed_project();
    sign(&project, "plugins/hello.wasm", "release").expect_code(0);
    let good = bundle_of(&project, "plugins/hello.wasm");

    // One bit of the signature flipped.
    let mut signature = STANDARD
        .decode(good["messageSignature"]["signature"].as_str().unwrap())
        .unwrap();
    let last = signature.len() - 2;
    signature[last] ^= 1;
    let mut tampered = good.clone();
    tampered["messageSignature"]["signature"] = STANDARD.encode(&signature).into();
    write_bundle(&project, "plugins/hello.wasm", &tampered);
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has("found a signature that does not verify with that key");
    assert_nothing_ran(&project, &outcome);

    // A bundle that is not one at all.
    project.write("plugins/hello.wasm.sigstore.json", "{\"mediaType\": 1}");
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("cannot read the Sigstore bundle");

    // Another bundle version.
    let mut old = good.clone();
    old["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
    write_bundle(&project, "plugins/hello.wasm", &old);
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has("not `application/vnd.dev.sigstore.bundle.v0.3+json`");

    // The good bundle still works: the refusals were the tampering's.
    write_bundle(&project, "plugins/hello.wasm", &good);
    project.gantry(&["run"]).expect_code(0);
}

#[test]
fn keygen_writes_a_pair_that_signs_and_never_overwrites() {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    project.manifest(&manifest(&sha, "{ key: keys/release.pub }"));
    std::fs::create_dir_all(project.path().join("keys")).unwrap();
    project
        .gantry(&["plugin", "keygen", "keys/release"])
        .expect_code(0);
    let private = project.path().join("keys/release.key");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the private key is readable by others");
    let before = std::fs::read(&private).unwrap();
    project
        .gantry(&["plugin", "keygen", "keys/release"])
        .expect_code(2)
        .stderr_has("never overwrites a key");
    assert_eq!(std::fs::read(&private).unwrap(), before);
    sign(&project, "plugins/hello.wasm", "release").expect_code(0);
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
}

#[test]
fn malformed_verify_entries_are_located_errors() {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    key_pair(&project, "release");
    let cases = [
        (
            "{ key: ../release.pub }",
            "gantry.yml:6:20: the `key` `../release.pub` of plugin `hello` is outside the manifest's folder",
        ),
        (
            "{ key: keys/absent.pub }",
            "cannot read the `key` `keys/absent.pub` of plugin `hello`",
        ),
        ("{ key: keys/release.key }", "the key `"),
        (
            "{ key: keys/release.pub, identity: me@example.com }",
            "has both `key` and a certificate identity",
        ),
        (
            "{ identity: me@example.com }",
            "`verify:` of plugin `hello` is missing `issuer`, `trusted-root`",
        ),
        ("{ keys: keys/release.pub }", "keys"),
    ];
    for (verify, message) in cases {
        project.manifest(&manifest(&sha, verify));
        project
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has(message)
            .stderr_has("gantry.yml:6:")
            .stdout_lacks("hello from wat");
    }
}

/// The certificate mode: a trusted root made here, with one certificate
/// authority. gantry checks such bundles with `sigstore-verify` and
/// nothing skipped, so a bundle without transparency-log proof or a
/// certificate from another authority is refused.
#[test]
fn identity_mode_refuses_what_it_cannot_verify() {
    let project = Project::new();
    let sha = project.wat_plugin("plugins/hello.wasm", &fixture("hello.wat"));
    let identity = "https://github.com/acme/steps/.github/workflows/release.yml@refs/heads/main";
    let issuer = "https://token.actions.githubusercontent.com";

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test fulcio");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let root = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [],
        "certificateAuthorities": [{
            "subject": { "organization": "test", "commonName": "test fulcio" },
            "uri": "https://fulcio.test",
            "certChain": { "certificates": [{ "rawBytes": STANDARD.encode(ca.der()) }] },
            "validFor": { "start": "2020-01-01T00:00:00Z" }
        }],
        "ctlogs": [],
        "timestampAuthorities": []
    });
    project.write("trusted_root.json", serde_json::to_vec(&root).unwrap());
    project.manifest(&manifest(
        &sha,
        &format!(
            "{{ identity: \"{identity}\", issuer: \"{issuer}\", trusted-root: trusted_root.json }}"
        ),
    ));
    let expected = format!("expected a certificate for identity `{identity}` issued by `{issuer}`");

    // No bundle.
    project
        .gantry(&["run"])
        .expect_code(3)
        .stderr_has(&format!("{expected}, found no signature"));

    // A key signature is not a certificate signature.
    key_pair(&project, "release");
    sign(&project, "plugins/hello.wasm", "release").expect_code(0);
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has(&format!("{expected}, found a bundle that does not verify"));
    assert_nothing_ran(&project, &outcome);

    // A certificate for the right identity from the trusted authority,
    // signing the right digest, but with no transparency-log proof and no
    // verified time: refused, never taken on the certificate's word.
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.subject_alt_names = vec![rcgen::SanType::URI(identity.try_into().unwrap())];
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    let issuer_der = [&[0x0c, issuer.len() as u8][..], issuer.as_bytes()].concat();
    leaf_params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
        issuer_der,
    )];
    let issuer_cert = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer_cert).unwrap();
    let plugin = std::fs::read(project.path().join("plugins/hello.wasm")).unwrap();
    use rcgen::SigningKey as _;
    let signature = leaf_key.sign(&plugin).unwrap();
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": { "rawBytes": STANDARD.encode(leaf.der()) },
            "tlogEntries": [],
            "timestampVerificationData": {}
        },
        "messageSignature": {
            "messageDigest": { "algorithm": "SHA2_256", "digest": STANDARD.encode(hex_bytes(&sha)) },
            "signature": STANDARD.encode(signature)
        }
    });
    write_bundle(&project, "plugins/hello.wasm", &bundle);
    let outcome = project.gantry(&["run"]);
    outcome
        .expect_code(3)
        .stderr_has(&format!("{expected}, found a bundle that does not verify"));
    assert_nothing_ran(&project, &outcome);

    // A trusted root that is not one is a manifest error, located.
    project.write(
        "trusted_root.json",
        "{\"mediaType\": \"x\", \"certificateAuthorities\": [{}]}",
    );
    project
        .gantry(&["run"])
        .expect_code(2)
        .stderr_has("gantry.yml:6:")
        .stderr_has("the trusted root `");
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
