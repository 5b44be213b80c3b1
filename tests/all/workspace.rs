//! The workspace's shape: what a plain `cargo build` builds.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The crate whose build script builds the test guests and first-party
/// plugins for wasm32: only the tests and the benchmarks need it.
const WASM_BUILDING_CRATE: &str = "gantry-tests";

/// A plain `cargo build` (the default members and what they need to build,
/// not to test) must not reach the crate that builds the wasm plugins: a
/// user building gantry should not wait for, or need the targets of, the
/// test guests.
#[test]
fn a_plain_build_does_not_build_the_wasm_plugins() {
    let root = Path::new(gantry_tests::TESTS_DIR).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--offline"])
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();

    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            (
                package["id"].as_str().unwrap(),
                package["name"].as_str().unwrap(),
            )
        })
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap(), node))
        .collect();

    // Walk the normal and build dependencies of the default members.
    let mut seen = BTreeSet::new();
    let mut queue: Vec<&str> = metadata["workspace_default_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    assert!(!queue.is_empty(), "the workspace names its default members");
    while let Some(id) = queue.pop() {
        if !seen.insert(names[id]) {
            continue;
        }
        for dependency in nodes[id]["deps"].as_array().unwrap() {
            let built = dependency["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|kind| kind["kind"].as_str() != Some("dev"));
            if built {
                queue.push(dependency["pkg"].as_str().unwrap());
            }
        }
    }
    assert!(seen.contains("gantry"), "gantry is built: {seen:?}");
    assert!(
        !seen.contains(WASM_BUILDING_CRATE),
        "a plain `cargo build` builds {WASM_BUILDING_CRATE}, and with it every wasm plugin"
    );
}
