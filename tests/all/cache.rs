//! The compiled-module cache through the real binary: entries appear in
//! `$XDG_CACHE_HOME/gantry` with private permissions, are keyed by the
//! verified plugin, and a bad entry is removed and recompiled, never run.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gantry_tests::Project;

use crate::fixture;

const BYE: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "bye from wat\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 13))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// A project whose one step runs `wat` as plugin `step`.
fn project_with(wat: &str) -> Project {
    let project = Project::new();
    write_plugin(&project, wat);
    project
}

fn write_plugin(project: &Project, wat: &str) {
    let sha = project.wat_plugin("step.wasm", wat);
    project.manifest(&format!(
        "name: cached\nplugins:\n  step:\n    source: step.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - uses: step\n"
    ));
}

fn cache_dir(project: &Project) -> PathBuf {
    project.cache_home().join("gantry")
}

fn entries(project: &Project) -> Vec<PathBuf> {
    let Ok(read) = fs::read_dir(cache_dir(project)) else {
        return Vec::new();
    };
    let mut entries: Vec<PathBuf> = read.map(|e| e.unwrap().path()).collect();
    entries.sort();
    entries
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_run_fills_a_private_cache_and_the_next_run_uses_it() {
    let project = project_with(&fixture("hello.wat"));
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
    assert_eq!(mode(&cache_dir(&project)), 0o700);
    let first = entries(&project);
    assert_eq!(first.len(), 1, "one entry per plugin: {first:?}");
    assert!(first[0].to_string_lossy().ends_with(".cwasm"));
    let written = fs::read(&first[0]).unwrap();

    let second = project.gantry(&["run"]);
    second.expect_code(0).stdout_has("hello from wat");
    assert!(!second.stderr.contains("cache"), "{}", second.stderr);
    assert_eq!(entries(&project), first);
    assert_eq!(
        fs::read(&first[0]).unwrap(),
        written,
        "a hit rewrites nothing"
    );
}

#[test]
fn a_changed_plugin_misses_the_cache() {
    let project = project_with(&fixture("hello.wat"));
    project.gantry(&["run"]).expect_code(0);
    write_plugin(&project, BYE);
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("bye from wat")
        .stdout_lacks("hello from wat");
    assert_eq!(entries(&project).len(), 2);
}

#[test]
fn an_entry_moved_to_another_plugins_name_is_not_run() {
    let project = project_with(&fixture("hello.wat"));
    project.gantry(&["run"]).expect_code(0);
    let hello = entries(&project);
    write_plugin(&project, BYE);
    project.gantry(&["run"]).expect_code(0);
    let bye: Vec<_> = entries(&project)
        .into_iter()
        .filter(|e| !hello.contains(e))
        .collect();
    assert_eq!(bye.len(), 1);
    // The `hello` code, header and all, under the `bye` plugin's name.
    fs::copy(&hello[0], &bye[0]).unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("bye from wat")
        .stdout_lacks("hello from wat")
        .stderr_has("is for another plugin or engine")
        .stderr_has("removed and the plugin compiled again");
    let fixed = project.gantry(&["run"]);
    fixed.expect_code(0).stdout_has("bye from wat");
    assert!(!fixed.stderr.contains("cache"), "{}", fixed.stderr);
}

#[test]
fn corrupt_and_truncated_entries_are_recompiled() {
    let project = project_with(&fixture("hello.wat"));
    project.gantry(&["run"]).expect_code(0);
    let entry = entries(&project).remove(0);
    let good = fs::read(&entry).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    fs::write(&entry, &flipped).unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat")
        .stderr_has("is corrupt");
    assert_eq!(
        fs::read(&entry).unwrap(),
        good,
        "recompiled and stored again"
    );

    fs::write(&entry, &good[..good.len() / 3]).unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat")
        .stderr_has("is truncated");

    fs::write(&entry, b"").unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat")
        .stderr_has("is truncated");
    assert_eq!(fs::read(&entry).unwrap(), good);
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let project = project_with(&fixture("hello.wat"));
    project
        .gantry(&["run", "--no-cache"])
        .expect_code(0)
        .stdout_has("hello from wat");
    assert!(entries(&project).is_empty());

    project.gantry(&["run"]).expect_code(0);
    let entry = entries(&project).remove(0);
    fs::write(&entry, b"garbage").unwrap();
    let bypassed = project.gantry(&["run", "--no-cache"]);
    bypassed.expect_code(0).stdout_has("hello from wat");
    assert!(!bypassed.stderr.contains("cache"), "{}", bypassed.stderr);
    assert_eq!(fs::read(&entry).unwrap(), b"garbage", "left untouched");
}

#[test]
fn a_folder_others_may_write_is_not_used() {
    let project = project_with(&fixture("hello.wat"));
    let dir = cache_dir(&project);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat")
        .stderr_has("compiling without the module cache")
        .stderr_has("may be written by other users");
    assert!(entries(&project).is_empty());
}

#[test]
fn cache_dir_and_clear() {
    let project = project_with(&fixture("hello.wat"));
    let dir = project.gantry(&["cache", "dir"]);
    dir.expect_code(0);
    assert_eq!(dir.stdout.trim(), cache_dir(&project).to_str().unwrap());

    project.gantry(&["cache", "clear"]).expect_code(0);
    project.gantry(&["run"]).expect_code(0);
    assert_eq!(entries(&project).len(), 1);
    project
        .gantry(&["cache", "clear"])
        .expect_code(0)
        .stdout_has("removed 1 compiled module");
    assert!(entries(&project).is_empty());
    project
        .gantry(&["run"])
        .expect_code(0)
        .stdout_has("hello from wat");
    // What registries served is cached beside the modules, and cleared
    // with them.
    let blobs = cache_dir(&project).join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join("0".repeat(64)), b"a pulled layer").unwrap();
    project
        .gantry(&["cache", "clear"])
        .expect_code(0)
        .stdout_has("removed 1 compiled module and 1 registry blob");
    assert!(entries(&project).is_empty());
}

#[test]
fn the_home_cache_is_used_without_xdg_cache_home() {
    let project = project_with(&fixture("hello.wat"));
    let home = project.cache_home().join("home");
    fs::create_dir(&home).unwrap();
    project
        .gantry_with_env(
            &["run"],
            &[("XDG_CACHE_HOME", ""), ("HOME", home.to_str().unwrap())],
        )
        .expect_code(0);
    let dir = home.join(".cache").join("gantry");
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    assert_eq!(mode(&dir), 0o700);
}
