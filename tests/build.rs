//! Builds the Rust guest programs in `guests/` for `wasm32-wasip1` and
//! tells the tests where they are (wasmtime's test-programs pattern).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let guests = manifest_dir.join("guests");
    println!("cargo:rerun-if-changed={}", guests.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );

    let target_dir = out_dir.join("guests-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&guests)
        .args(["build", "--release", "--target", "wasm32-wasip1", "--bins"])
        .arg("--target-dir")
        .arg(&target_dir)
        // The host build's flags are not meant for the guest.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        // Under `cargo clippy` the guests would be linted with the host's
        // flags; `.ci/run` lints them on their own.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .expect("running cargo to build the test guests");
    assert!(
        status.success(),
        "building the test guests for wasm32-wasip1 failed"
    );

    let release = target_dir.join("wasm32-wasip1").join("release");
    let probe = release.join("probe.wasm");
    assert!(probe.exists(), "{} was not built", probe.display());
    let generated = format!(
        "/// The `probe` guest, built for wasm32-wasip1.\npub const PROBE_WASM: &str = {:?};\n",
        probe.display().to_string()
    );
    std::fs::write(out_dir.join("guests.rs"), generated).unwrap();
}
