//! `hello`: its greeting, output, environment and summary.

use super::*;

#[test]
fn hello_greets_and_hands_its_output_env_and_summary_on() {
    let project = pipeline(
        &["hello", "probe"],
        r#"jobs:
  main:
    steps:
      - id: greet
        uses: hello
        with: { who: gantry, greeting: Hi }
      - uses: probe
        with:
          action: write
          path: /workspace/seen.txt
          content: '${{ steps.greet.outputs.message }} / ${{ env.GREETED }}'
        permissions: { workspace: write }
"#,
    );
    let run = JsonRun::new(&project);
    run.expect_code(0).logs_have("Hi, gantry!\n");
    assert_eq!(read(&project, "seen.txt"), "Hi, gantry! / gantry");
    assert!(
        run.events.iter().any(|e| e["event"] == "annotation"
            && e["level"] == "notice"
            && e["text"] == "greeted gantry"),
        "no notice annotation: {:?}",
        run.events
    );
    assert!(run.summary().contains("- Hi, gantry!"), "{}", run.summary());
}
