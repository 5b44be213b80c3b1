//! gantry's integration tests: whole pipelines through the real binary.
//! One test binary, one module per area.

mod artifacts;
mod attest;
mod cache;
mod ci_hosts;
mod cli_snapshots;
mod components;
mod contexts;
mod crash;
mod errors;
mod export;
mod expressions;
mod first_party;
mod groups;
mod handoff;
mod hostile;
mod http_plugin;
mod languages;
mod leaks;
mod manifest_errors;
mod metadata;
mod network;
mod oci;
mod pinning;
mod pipelines;
mod reports;
mod rollback;
mod sandbox;
mod scaffold;
mod signatures;
mod step_abi;
mod trust;
mod uploads;
mod workspace;

use gantry_tests::Project;

/// The text of a `.wat` fixture.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", gantry_tests::TESTS_DIR);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A project with one `.wat` fixture as plugin `step`, run by one step with
/// the given extra YAML (indented for a step's keys).
pub fn single_wat_step(fixture_name: &str, step_extra: &str) -> Project {
    let project = Project::new();
    let sha = project.wat_plugin("step.wasm", &fixture(fixture_name));
    project.manifest(&format!(
        "name: single\nplugins:\n  step:\n    source: step.wasm\n    sha256: {sha}\njobs:\n  main:\n    steps:\n      - id: only\n        uses: step\n{step_extra}"
    ));
    project
}
