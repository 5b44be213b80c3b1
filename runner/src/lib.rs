//! gantry: a GitHub Actions-style pipeline runner whose steps are sandboxed
//! WebAssembly plugins.
//!
//! Data flows one way through the modules:
//!
//! - [`manifest`] reads `gantry.yml` into a serde model, with file, line and
//!   column on every error;
//! - [`plan`] resolves it into a checked, ordered [`plan::Plan`];
//! - [`load`] is the stage that makes that plan final: the values a
//!   command gives it, the pins, the plugins' metadata, every check that
//!   points at a manifest line; then admits the verified plugins;
//! - [`plugin`] reads each module once (from a file or an OCI registry) and
//!   verifies it against its sha256 pin, and [`signature`] against the
//!   Sigstore signature its entry requires;
//! - [`sandbox`] admits modules and components and runs each step in a
//!   fresh, deny-by-default wasmtime store; [`network`] is what a component
//!   step may reach, checked destination by destination;
//! - [`engine`] executes the plan, passing outputs and environment between
//!   steps, using [`abi`] for the text protocols steps speak and [`expr`] for
//!   `${{ }}` expressions;
//! - [`report`] tells the person or CI system watching;
//! - [`state`] says where the runner keeps its files, and keeps steps
//!   from writing them; [`journal`] is a run's durable record, [`runs`]
//!   the run folders of a state folder, [`artifacts`] the content-addressed
//!   store, and [`run_lock`] keeps one run at a time per state folder;
//! - [`secrets`] gathers a run's secrets; [`inputs`] checks the pipeline's
//!   declared inputs and the values given them, [`vars`] gathers its
//!   configuration variables, and [`given`] (with [`git`]) what the host
//!   and its CI say (`github`, `runner`); [`lint`] warns about manifests
//!   that run but likely do not do what was meant;
//! - [`fsutil`] opens and writes files carefully (atomically, never
//!   following a link a step could have planted), and [`digest`] writes
//!   sha256 digests; [`display`] writes durations and sizes for people;
//! - [`handoff`] is the bundle one machine's job leaves for the next, and
//!   [`export`] writes a pipeline for an outside engine that runs each job
//!   on a machine of its own;
//! - [`attest`] writes and checks the signed in-toto record of a run;
//! - [`cli`] is the command line, and [`exit`] its exit statuses; what
//!   any layer prints for a person goes through `console`'s writers, and
//!   an error below the command line says how to fix it through
//!   [`hint::Hinted`].

pub mod abi;
pub mod artifacts;
pub mod attest;
pub mod cli;
mod console;
pub mod digest;
pub mod display;
pub mod engine;
pub mod exit;
pub mod export;
pub mod expr;
pub mod fsutil;
pub mod git;
pub mod given;
pub mod handoff;
pub mod hint;
pub mod inputs;
pub mod journal;
pub mod lint;
pub mod load;
pub mod manifest;
pub mod network;
pub mod plan;
pub mod plugin;
pub mod report;
pub mod run_lock;
pub mod runs;
pub mod sandbox;
pub mod secrets;
pub mod signature;
pub mod state;
pub mod vars;
