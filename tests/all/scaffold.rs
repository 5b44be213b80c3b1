//! `gantry new`: a scaffolded Rust step passes its own test, builds for
//! `wasm32-wasip1` with its metadata embedded, and its pipeline runs; a
//! scaffolded Python or JavaScript step builds into a component and passes
//! its own `test.sh`, with the toolchains `scripts/toolchains.sh` installs
//! (missing, they fail the test).

use std::path::{Path, PathBuf};
use std::process::Command;

use gantry_tests::{Project, gantry_bin, installed_tool, toolchains_path};

fn repository() -> PathBuf {
    gantry_tests::repository().to_owned()
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

/// Scaffolds a `lang` step named `name`, checks it has `files`, and runs
/// its own `test.sh` as its README says: build, pin, run, check the
/// greeting.
fn scaffold_passes_its_own_test(lang: &str, name: &str, title: &str, files: &[&str]) {
    let project = Project::new();
    project
        .gantry(&["new", name, "--lang", lang])
        .expect_code(0)
        .stdout_has(&format!("created the {title} step `{name}`"));
    let step = project.path().join(name);
    for file in files.iter().chain(&[
        "meta.json",
        "build.sh",
        "test.sh",
        "gantry.yml",
        "README.md",
        "wit/cli.wit",
    ]) {
        assert!(step.join(file).is_file(), "{file} was not written");
    }
    let output = Command::new(step.join("test.sh"))
        .current_dir(&step)
        .env("PATH", toolchains_path())
        .env("GANTRY", gantry_bin())
        // The runs test.sh makes keep their state and cache in the project's
        // throwaway folders, as `Project::gantry` does.
        .env("XDG_CACHE_HOME", project.cache_home())
        .env("XDG_STATE_HOME", project.state_home())
        .output()
        .expect("running test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the {title} scaffold's test.sh failed (are the toolchains installed? run scripts/toolchains.sh)\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("Hello, Hello, world!!"), "{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    // What it built is a component carrying the scaffold's metadata.
    project
        .gantry(&["inspect", &format!("{name}/plugins/{name}.wasm")])
        .expect_code(0)
        .stdout_has("kind: WASI 0.2 component")
        .stdout_has(&format!("name: {name}"))
        .stdout_has("who (default: \"world\")");
}

#[test]
fn a_new_python_step_builds_and_passes_its_own_test() {
    if !installed_tool("componentize-py") {
        return;
    }
    scaffold_passes_its_own_test("python", "py-greeter", "Python", &["step.py"]);
}

#[test]
fn a_new_js_step_builds_and_passes_its_own_test() {
    if !installed_tool("componentize-js") {
        return;
    }
    scaffold_passes_its_own_test(
        "js",
        "js-greeter",
        "JavaScript",
        &["step.js", "package.json"],
    );
}
