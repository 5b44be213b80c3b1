//! Builds the Rust guest programs in `guests/` and the first-party plugins
//! in `../plugins` for `wasm32-wasip1`, the guests again as WASI 0.2
//! components for `wasm32-wasip2`, the `http` plugin (a component only: it
//! needs `wasi:http`) for `wasm32-wasip2`, and tells the tests where they
//! are (wasmtime's test-programs pattern).
//!
//! Both are workspaces of their own, built by a nested `cargo` into target
//! folders under `OUT_DIR`, side by side so the builds overlap.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The first-party plugins the tests run, as their `.wasm` files are named.
const PLUGINS: [&str; 6] = [
    "archive",
    "checksum",
    "config-set",
    "deploy",
    "hello",
    "render",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let guests = manifest_dir.join("guests");
    let repository = manifest_dir.parent().expect("the repository root");
    let plugins = repository.join("plugins");

    rerun_if_changed(&guests.join("src"));
    rerun_if_changed(&guests.join("Cargo.toml"));
    rerun_if_changed(&plugins.join("Cargo.toml"));
    rerun_if_changed(&plugins.join("Cargo.lock"));
    for plugin in plugin_crates(&plugins) {
        rerun_if_changed(&plugin.join("src"));
        rerun_if_changed(&plugin.join("gantry-step.json"));
        rerun_if_changed(&plugin.join("Cargo.toml"));
    }
    rerun_if_changed(&repository.join("sdk").join("src"));
    rerun_if_changed(&repository.join("sdk").join("Cargo.toml"));

    for target in [WASIP1, WASIP2] {
        ensure_target_installed(target);
    }

    let guests_target = out_dir.join("guests-target");
    let plugins_target = out_dir.join("plugins-target");
    let components_target = out_dir.join("components-target");
    let guests_build = wasm_build(&guests, &guests_target, WASIP1, &["--bin", "probe"]);
    let components_build = wasm_build(&guests, &components_target, WASIP2, &["--bins"]);
    let plugins_build = wasm_build(
        &plugins,
        &plugins_target,
        WASIP1,
        &["--workspace", "--exclude", HTTP_PLUGIN],
    );
    finish(guests_build, "the test guests");
    finish(components_build, "the test guests as components");
    finish(plugins_build, "the first-party plugins");
    // After the wasip1 build, not beside it: both use the same target
    // folder (one lock), so the shared dependencies compile once.
    let http_build = wasm_build(&plugins, &plugins_target, WASIP2, &["-p", HTTP_PLUGIN]);
    finish(http_build, "the `http` plugin");

    let guests_release = guests_target.join(WASIP1).join("release");
    let probe = guests_release.join("probe.wasm");
    assert!(probe.exists(), "{} was not built", probe.display());
    let components_release = components_target.join(WASIP2).join("release");
    let probe_component = components_release.join("probe.wasm");
    let netprobe = components_release.join("netprobe.wasm");
    for component in [&probe_component, &netprobe] {
        assert!(component.exists(), "{} was not built", component.display());
    }
    let plugins_release = plugins_target.join("wasm32-wasip1").join("release");
    for plugin in PLUGINS {
        let wasm = plugins_release.join(format!("{plugin}.wasm"));
        assert!(wasm.exists(), "{} was not built", wasm.display());
    }
    let http_plugin = plugins_target
        .join(WASIP2)
        .join("release")
        .join(format!("{HTTP_PLUGIN}.wasm"));
    assert!(
        http_plugin.exists(),
        "{} was not built",
        http_plugin.display()
    );

    let generated = format!(
        "/// The `probe` guest, built for wasm32-wasip1.\n\
         pub const PROBE_WASM: &str = {:?};\n\
         /// The same `probe`, built for wasm32-wasip2: a WASI 0.2 component.\n\
         pub const PROBE_COMPONENT_WASM: &str = {:?};\n\
         /// The `netprobe` guest, a component that uses `wasi:http` and\n\
         /// `wasi:sockets`.\n\
         pub const NETPROBE_WASM: &str = {:?};\n\
         /// The folder holding the first-party plugins built for wasm32-wasip1\n\
         /// (`<name>.wasm`, e.g. `config-set.wasm`).\n\
         pub const PLUGINS_DIR: &str = {:?};\n\
         /// The names of the first-party plugins in [`PLUGINS_DIR`].\n\
         pub const FIRST_PARTY_PLUGINS: [&str; {}] = {:?};\n\
         /// The first-party `http` plugin, a component built for wasm32-wasip2.\n\
         pub const HTTP_PLUGIN_WASM: &str = {:?};\n",
        probe.display().to_string(),
        probe_component.display().to_string(),
        netprobe.display().to_string(),
        plugins_release.display().to_string(),
        PLUGINS.len(),
        PLUGINS,
        http_plugin.display().to_string(),
    );
    std::fs::write(out_dir.join("guests.rs"), generated).unwrap();
}

/// Asks cargo to run this script again when `path` changes. A path that
/// does not exist would make it rerun every time, so it is skipped.
fn rerun_if_changed(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The folders of the plugins workspace that hold a crate.
fn plugin_crates(plugins: &Path) -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(plugins)
        .unwrap_or_else(|e| panic!("reading {}: {e}", plugins.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    crates
}

/// The plugin built for wasm32-wasip2 only, left out of the wasip1 build.
const HTTP_PLUGIN: &str = "http";

const WASIP1: &str = "wasm32-wasip1";
const WASIP2: &str = "wasm32-wasip2";

/// Installs the standard library for `target` when the toolchain lacks it,
/// so that `cargo test --workspace` on a fresh machine needs no set-up
/// first: rustup installs `rust-toolchain.toml`'s targets by itself only
/// where auto-install is on (not with `RUSTUP_AUTO_INSTALL=0`), and never
/// `wasm32-wasip2`, which the file does not name. Says what it installs.
fn ensure_target_installed(target: &str) {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|e| panic!("running rustc --print sysroot: {e}"));
    assert!(output.status.success(), "rustc --print sysroot failed");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if sysroot.join("lib/rustlib").join(target).is_dir() {
        return;
    }
    println!(
        "cargo:warning=installing the Rust standard library for {target} \
         (rustup target add {target}): the tests build their guests for it"
    );
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", target]);
    // The toolchain this build runs on, whatever folder rustup is asked from.
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    // A build script's stdout is read by cargo: rustup's goes to stderr.
    rustup.stdout(std::io::stderr());
    let installed = rustup.status().is_ok_and(|status| status.success());
    assert!(
        installed,
        "the Rust standard library for {target} is not installed and \
         `rustup target add {target}` failed: install it by hand"
    );
}

/// Starts `cargo build --release --target TARGET` of the workspace in
/// `folder`, into `target_dir`.
fn wasm_build(folder: &Path, target_dir: &Path, target: &str, extra: &[&str]) -> Child {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    Command::new(cargo)
        .current_dir(folder)
        .args(["build", "--release", "--target", target])
        .args(extra)
        .arg("--target-dir")
        .arg(target_dir)
        // The host build's flags are not meant for the guest.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` the guests would be linted with the host's
        // flags; `.ci/run` lints them on their own.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .spawn()
        .unwrap_or_else(|e| panic!("running cargo to build {}: {e}", folder.display()))
}

fn finish(mut build: Child, what: &str) {
    let status = build
        .wait()
        .unwrap_or_else(|e| panic!("waiting for cargo to build {what}: {e}"));
    assert!(status.success(), "building {what} failed");
}
