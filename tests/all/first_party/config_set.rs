//! `config-set`: keys bumped in YAML and JSON, the rest kept, rolled back.

use super::*;

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
