//! A signed record of a run (`gantry run --attest FILE`): an in-toto
//! Statement v1 whose predicate is SLSA provenance v1, optionally wrapped in
//! a DSSE envelope signed with `--attest-key`; and the checks `gantry
//! verify-run` makes on one.
//!
//! What it says, and where:
//!
//! | what | where |
//! | --- | --- |
//! | the artifacts the run uploaded, by tree digest, and the run's journal | `subject` |
//! | the manifest's path and sha256, the pipeline, the job asked for | `predicate.buildDefinition.externalParameters` |
//! | each step's plugin and grants (workspace, folders, host variables, network destinations, artifacts) | `predicate.buildDefinition.internalParameters.steps` |
//! | every plugin, by sha256 | `predicate.buildDefinition.resolvedDependencies` |
//! | run id, start and end | `predicate.runDetails.metadata` |
//! | the outcome: each started step's status, and the rollback taken (each hook and its result) | `predicate.runDetails.byproducts[name = "gantry:outcome"].annotations` |
//!
//! Everything is read from what the run recorded: the plan that was admitted,
//! the plugins' verified hashes, the run's journal and its artifact index.

pub mod dsse;
pub mod statement;

pub use dsse::{Envelope, PAYLOAD_TYPE};
pub use statement::{PREDICATE_TYPE, STATEMENT_TYPE, Statement};
