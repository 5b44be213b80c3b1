//! `checksum`: sha256 digests in outputs, a sums file and the summary.

use super::*;

#[test]
fn checksum_digests_match_sha256_in_outputs_sums_file_and_summary() {
    let project = pipeline(
        &["checksum", "probe"],
        r#"jobs:
  main:
    steps:
      - id: sums
        uses: checksum
        with:
          files: |
            dist/**/*.bin
            notes.txt
          sums-file: SHA256SUMS
        permissions: { workspace: write }
      - id: one
        uses: checksum
        with: { files: notes.txt, expected: '@NOTES_UPPER@' }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: |
            count=${{ steps.sums.outputs.count }}
            sha256=${{ steps.sums.outputs.sha256 }}
            one=${{ steps.one.outputs.sha256 }} ${{ steps.one.outputs.count }}
            ${{ steps.sums.outputs.sums }}
        permissions: { workspace: write }
"#,
    );
    let binary: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    project.write("dist/a.bin", "abc");
    project.write("dist/sub/deep/b.bin", &binary);
    project.write("dist/skip.txt", "not a .bin");
    project.write("dist/.hidden.bin", "wildcards skip hidden names");
    project.write("notes.txt", "release notes\n");
    let a = sha256_hex(b"abc");
    let b = sha256_hex(&binary);
    let notes = sha256_hex(b"release notes\n");
    let yaml = read(&project, "gantry.yml").replace("@NOTES_UPPER@", &notes.to_ascii_uppercase());
    project.manifest(&yaml);

    let run = JsonRun::new(&project);
    run.expect_code(0)
        .logs_have("`notes.txt` matches the expected sha256");
    let listing = format!("{a}  dist/a.bin\n{b}  dist/sub/deep/b.bin\n{notes}  notes.txt\n");
    assert_eq!(read(&project, "SHA256SUMS"), listing);
    let overall = sha256_hex(listing.as_bytes());
    assert_eq!(
        read(&project, "outputs.txt"),
        format!("count=3\nsha256={overall}\none={notes} 1\n{listing}")
    );
    let summary = run.summary();
    assert!(summary.contains("### Checksums"), "{summary}");
    for (digest, path) in [(&a, "dist/a.bin"), (&b, "dist/sub/deep/b.bin")] {
        assert!(
            summary.contains(&format!("| `{path}` | `{digest}` |")),
            "{summary}"
        );
    }
    // The summary is the run's, in its folder.
    let in_folder = project
        .state_dir()
        .join("runs")
        .join(run.run_id())
        .join("summary.md");
    assert_eq!(fs::read_to_string(in_folder).unwrap(), summary);

    // A digest that does not match fails the step, saying both.
    let wrong = sha256_hex(b"something else");
    project.manifest(&yaml.replace(&notes.to_ascii_uppercase(), &wrong));
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has(&format!("sha256 mismatch: expected {wrong}, found {notes}"));
}
