//! `render`: templates into artifacts and the workspace, strict by default.

use super::*;

#[test]
fn render_fills_templates_into_an_artifact_and_the_workspace() {
    let project = pipeline(
        &["render", "hello", "checksum", "probe"],
        r#"env:
  SITE: demo
jobs:
  build:
    steps:
      - id: greet
        uses: hello
        with: { who: render }
      - id: page
        uses: render
        with:
          template: site/index.html.tmpl
          artifact: site
          escape: html
          vars: |
            # the page's variables
            title=${{ env.SITE }} & co

            greeting=${{ steps.greet.outputs.message }}
        artifacts: { upload: [site] }
      - id: note
        uses: render
        with:
          text: 'tag={{ app.tag }} hosts={{ hosts }} second={{ hosts.1 }} n={{n}} on={{ on }}'
          vars: '{"app": {"tag": "v2"}, "hosts": ["a", "b"], "n": 3, "on": true}'
          out: out/tag.txt
        permissions: { workspace: write }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: '${{ steps.page.outputs.path }} ${{ steps.page.outputs.digest }} ${{ steps.page.outputs.bytes }} ${{ steps.note.outputs.path }}'
        permissions: { workspace: write }
  verify:
    needs: build
    steps:
      - uses: checksum
        with:
          files: /artifacts/site/index.html
          expected: '@EXPECTED@'
        artifacts: { download: [site] }
"#,
    );
    project.write(
        "site/index.html.tmpl",
        "<h1>{{ title }}</h1>\n<p>{{greeting}}</p>\n<code>\\{{ kept }}</code>\n",
    );
    let page = "<h1>demo &amp; co</h1>\n<p>Hello, render!</p>\n<code>{{ kept }}</code>\n";
    let digest = sha256_hex(page.as_bytes());
    let yaml = read(&project, "gantry.yml").replace("@EXPECTED@", &digest);
    project.manifest(&yaml);

    let run = JsonRun::new(&project);
    run.expect_code(0)
        .logs_have("`/artifacts/site/index.html` matches the expected sha256");
    assert_eq!(
        read(&project, "out/tag.txt"),
        r#"tag=v2 hosts=["a","b"] second=b n=3 on=true"#
    );
    assert_eq!(
        read(&project, "outputs.txt"),
        format!(
            "/artifacts/site/index.html {digest} {} /workspace/out/tag.txt",
            page.len()
        )
    );
    // Nothing was written beside the template.
    assert_eq!(
        fs::read_dir(project.path().join("site")).unwrap().count(),
        1
    );
}

#[test]
fn render_points_at_an_undefined_variable_unless_not_strict() {
    let project = pipeline(
        &["render"],
        r#"jobs:
  main:
    steps:
      - uses: render
        with: { template: page.tmpl, vars: 'known=yes', out: out.txt }
        permissions: { workspace: write }
"#,
    );
    project.write("page.tmpl", "known={{ known }}\nmissing={{ nope }}\n");
    let run = JsonRun::new(&project);
    run.expect_code(1);
    let error = run
        .events
        .iter()
        .find(|e| e["event"] == "annotation" && e["level"] == "error")
        .expect("an error annotation");
    assert_eq!(
        (&error["file"], &error["line"], &error["col"]),
        (&Value::from("page.tmpl"), &Value::from(2), &Value::from(9)),
        "{error}"
    );
    assert!(
        error["text"].as_str().unwrap().contains("`nope`"),
        "{error}"
    );
    assert!(!project.path().join("out.txt").exists());

    let yaml = read(&project, "gantry.yml").replace("out: out.txt", "out: out.txt, strict: false");
    project.manifest(&yaml);
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("`nope` is not defined; left empty");
    assert_eq!(read(&project, "out.txt"), "known=yes\nmissing=\n");
}
