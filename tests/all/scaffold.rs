//! `gantry new`: a scaffolded Rust step passes its own test, builds for
//! `wasm32-wasip1` with its metadata embedded, and its pipeline runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_tests::Project;

fn repository() -> PathBuf {
    Path::new(gantry_tests::TESTS_DIR)
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `cargo` for the scaffolded crate: run from the repository so its
/// toolchain (and its `wasm32-wasip1` target) applies, with a target folder
/// shared between runs so only the new crate itself is compiled each time.
fn cargo(crate_dir: &Path, args: &[&str]) {
    let repo = repository();
    let manifest = crate_dir.join("Cargo.toml");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&repo)
        .args(args)
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .env(
            "CARGO_TARGET_DIR",
            repo.join("target").join("scaffold-test"),
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("running cargo");
    assert!(status.success(), "cargo {args:?} failed for the scaffold");
}

#[test]
fn a_new_rust_step_builds_tests_and_runs() {
    let project = Project::new();
    let sdk = repository().join("sdk");
    project
        .gantry(&[
            "new",
            "greeter",
            "--lang",
            "rust",
            "--sdk",
            sdk.to_str().unwrap(),
        ])
        .expect_code(0)
        .stdout_has("created the Rust step `greeter`");
    let step = project.path().join("greeter");
    for file in [
        "Cargo.toml",
        "src/main.rs",
        "gantry-step.json",
        "gantry.yml",
        "README.md",
    ] {
        assert!(step.join(file).is_file(), "{file} was not written");
    }
    let readme = std::fs::read_to_string(step.join("README.md")).unwrap();
    assert!(readme.contains("cargo build --release --target wasm32-wasip1"));

    cargo(&step, &["test"]);
    cargo(&step, &["build", "--release", "--target", "wasm32-wasip1"]);
    let built = repository().join("target/scaffold-test/wasm32-wasip1/release/greeter.wasm");
    std::fs::create_dir_all(step.join("plugins")).unwrap();
    std::fs::copy(&built, step.join("plugins/greeter.wasm")).unwrap();

    let in_step = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push(step.to_str().unwrap());
        project.gantry(&all)
    };
    project
        .gantry(&["inspect", "greeter/plugins/greeter.wasm"])
        .expect_code(0)
        .stdout_has("name: greeter")
        .stdout_has("who (default: \"world\")");
    in_step(&["lock"]).expect_code(0);
    in_step(&["run"])
        .expect_code(0)
        .stdout_has("Hello, world!")
        .stdout_has("Hello, Hello, world!!");
}

#[test]
fn a_new_c_step_has_everything_its_readme_names() {
    let project = Project::new();
    project
        .gantry(&["new", "c-greeter", "--lang", "c"])
        .expect_code(0);
    let step = project.path().join("c-greeter");
    for file in [
        "step.c",
        "meta.json",
        "build.sh",
        "test.sh",
        "gantry.yml",
        "README.md",
    ] {
        assert!(step.join(file).is_file(), "{file} was not written");
    }
    let build = std::fs::read_to_string(step.join("build.sh")).unwrap();
    assert!(build.contains("clang --target=wasm32-wasi"));
    assert!(build.contains("plugin annotate plugins/c-greeter.wasm meta.json"));
    // The pipeline is valid as written.
    project
        .gantry(&["validate", step.join("gantry.yml").to_str().unwrap()])
        .expect_code(0);
    // An existing folder is never overwritten.
    project
        .gantry(&["new", "c-greeter", "--lang", "c"])
        .expect_code(2)
        .stderr_has("already exists");
}
