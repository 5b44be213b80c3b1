//! `archive`: reproducible `.tar.gz` files, and no symbolic links.

use super::*;

#[test]
fn archive_creates_a_reproducible_tar_gz_that_extracts_to_the_same_files() {
    let project = pipeline(
        &["archive", "probe"],
        r#"jobs:
  main:
    steps:
      - id: pack
        uses: archive
        with: { archive: dist/site.tar.gz, base: public }
        permissions: { workspace: write }
      - id: unpack
        uses: archive
        with: { mode: extract, archive: dist/site.tar.gz, dest: unpacked }
        permissions: { workspace: write }
      - uses: probe
        with:
          action: write
          path: /workspace/outputs.txt
          content: '${{ steps.pack.outputs.archive }} ${{ steps.pack.outputs.count }} ${{ steps.pack.outputs.sha256 }} ${{ steps.unpack.outputs.count }} ${{ steps.unpack.outputs.sha256 }}'
        permissions: { workspace: write }
"#,
    );
    project.write("public/index.html", "<h1>site</h1>\n");
    project.write("public/css/site.css", "body { color: red }\n");
    project.write("public/img/deep/logo.bin", [0u8, 1, 2, 255, 254]);
    fs::create_dir_all(project.path().join("public/empty")).unwrap();
    let public = tree(&project.path().join("public"));
    assert_eq!(public.len(), 7);

    project.gantry(&["run"]).expect_code(0);
    assert_eq!(tree(&project.path().join("unpacked")), public);
    let bytes = fs::read(project.path().join("dist/site.tar.gz")).unwrap();
    assert_eq!(bytes[..2], [0x1f, 0x8b], "not gzip");
    let sha = sha256_hex(&bytes);
    let outputs = read(&project, "outputs.txt");
    let fields: Vec<&str> = outputs.split(' ').collect();
    assert_eq!(fields.len(), 5, "{outputs}");
    assert_eq!(fields[0], "/workspace/dist/site.tar.gz");
    // Folders count; the base folder itself is not an entry.
    assert_eq!(fields[1], "7", "{outputs}");
    assert_eq!(fields[3], "7", "{outputs}");
    assert_eq!(fields[2], sha);
    assert_eq!(fields[4], sha);

    // Other file times give the same bytes.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for file in ["public/index.html", "public/css/site.css"] {
        fs::File::options()
            .write(true)
            .open(project.path().join(file))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    fs::remove_dir_all(project.path().join("unpacked")).unwrap();
    fs::remove_dir_all(project.path().join("dist")).unwrap();
    project.gantry(&["run"]).expect_code(0);
    assert_eq!(
        fs::read(project.path().join("dist/site.tar.gz")).unwrap(),
        bytes
    );
    assert_eq!(tree(&project.path().join("unpacked")), public);
}

#[test]
fn archive_refuses_to_pack_a_symbolic_link() {
    let project = pipeline(
        &["archive"],
        r#"jobs:
  main:
    steps:
      - uses: archive
        with: { archive: site.tar.gz, base: public }
        permissions: { workspace: write }
"#,
    );
    project.write("public/index.html", "hi");
    std::os::unix::fs::symlink("index.html", project.path().join("public/link.html")).unwrap();
    project
        .gantry(&["run"])
        .expect_code(1)
        .stdout_has("link.html");
}
