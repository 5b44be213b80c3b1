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

/// `cargo build` (examples/run.sh) and `cargo test` resolve features
/// separately; a test-only dependency that turns on one more feature of a
/// crate below wasmtime (serde_json's `float_roundtrip`, wat's `default`)
/// gives wasmtime another build hash, and a fresh machine compiles wasmtime
/// and Cranelift twice. The crates under wasmtime must resolve the same
/// with and without the tests' dependencies.
#[test]
fn building_and_testing_gantry_compile_wasmtime_once() {
    let without_tests = closure("wasmtime", "normal,build");
    let with_tests = closure("wasmtime", "normal,build,dev");
    assert!(without_tests.len() > 20, "{without_tests:?}");
    let only_build: Vec<&String> = without_tests.difference(&with_tests).collect();
    let only_test: Vec<&String> = with_tests.difference(&without_tests).collect();
    assert!(
        only_build.is_empty() && only_test.is_empty(),
        "crates under wasmtime resolve differently when the tests are built, so wasmtime is compiled twice:\n\
         for cargo build only: {only_build:#?}\nfor cargo test only: {only_test:#?}"
    );
}

/// Every package reachable from `root` in `cargo tree -p gantry -e EDGES`,
/// as `NAME vVERSION|FEATURES`.
fn closure(root: &str, edges: &str) -> BTreeSet<String> {
    let repository = Path::new(gantry_tests::TESTS_DIR).parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(repository)
        .args(["tree", "--offline", "-p", "gantry", "-e", edges])
        .args(["--prefix", "depth", "-f", "{p}|{f}"])
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // With `--prefix depth` each line is `DEPTH` then the package; a
    // package's dependencies follow it one level deeper, printed in full at
    // its first appearance only, so the graph is rebuilt from all lines.
    let text = String::from_utf8(output.stdout).unwrap();
    let mut children: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut ancestors: Vec<String> = Vec::new();
    for line in text.lines() {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        let node = line[digits..].replace(" (*)", "").trim().to_owned();
        ancestors.truncate(depth);
        if let Some(parent) = ancestors.last() {
            children
                .entry(parent.clone())
                .or_default()
                .insert(node.clone());
        }
        children.entry(node.clone()).or_default();
        ancestors.push(node);
    }
    let mut queue: Vec<String> = children
        .keys()
        .filter(|node| node.starts_with(&format!("{root} v")))
        .cloned()
        .collect();
    assert!(!queue.is_empty(), "{root} is not a dependency of gantry");
    let mut seen = BTreeSet::new();
    while let Some(node) = queue.pop() {
        if seen.insert(node.clone()) {
            queue.extend(children[&node].iter().cloned());
        }
    }
    seen
}
