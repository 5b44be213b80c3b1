//! What `gantry inspect` and the plan say of the first-party plugins.

use super::*;

#[test]
fn inspect_shows_each_plugins_name_inputs_and_outputs() {
    let project = Fixture::new();
    for name in FIRST_PARTY_PLUGINS {
        let relative = format!("{name}.wasm");
        let sha = project.first_party_plugin(name, &relative);
        let json = fs::read_to_string(format!(
            "{}/../plugins/{name}/gantry-step.json",
            gantry_tests::TESTS_DIR
        ))
        .unwrap();
        let meta: Value = serde_json::from_str(&json).unwrap();
        let outcome = project.gantry(&["inspect", &relative]);
        outcome
            .expect_code(0)
            .stdout_has(&format!("sha256: {sha}"))
            .stdout_has(&format!("  name: {name}\n"))
            .stdout_has(&format!(
                "  description: {}\n",
                meta["description"].as_str().unwrap()
            ));
        let inputs = meta["inputs"].as_object().unwrap();
        assert!(!inputs.is_empty(), "{name} declares no inputs");
        for (input, spec) in inputs {
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
        let rollback = if meta["rollback"] == true {
            "yes"
        } else {
            "no"
        };
        outcome.stdout_has(&format!("  rollback: {rollback}\n"));
    }
}

#[test]
fn an_unknown_input_to_a_first_party_plugin_is_refused_with_a_suggestion() {
    let cases = [
        ("archive", "archiv: a.tar.gz", "archive"),
        ("checksum", "file: a.txt", "files"),
        ("config-set", "{ file: a.yml, path: a, values: b }", "value"),
        ("deploy", "{ artefact: site, target: /srv }", "artifact"),
        ("hello", "whom: you", "who"),
        ("render", "{ templat: a.tmpl }", "template"),
    ];
    for (plugin, with, suggestion) in cases {
        let with = if with.starts_with('{') {
            with.to_owned()
        } else {
            format!("{{ {with} }}")
        };
        let project = pipeline(
            &[plugin, "probe"],
            &format!(
                "jobs:\n  main:\n    steps:\n      - uses: probe\n        with: {{ action: write, path: /workspace/ran.txt, content: ran }}\n        permissions: {{ workspace: write }}\n      - id: typo\n        uses: {plugin}\n        with: {with}\n        permissions: {{ workspace: write }}\n"
            ),
        );
        project
            .gantry(&["run"])
            .expect_code(2)
            .stderr_has("unknown input `")
            .stderr_has(&format!(
                "for step `typo` of job `main` (plugin `{plugin}`)"
            ))
            .stderr_has(&format!("did you mean `{suggestion}`?"));
        assert!(
            !project.path().join("ran.txt").exists(),
            "a step ran before the manifest was refused ({plugin})"
        );
    }
}
