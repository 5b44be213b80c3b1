//! `gantry-sdk`: the guest side of gantry's step ABI, for steps written in
//! Rust and built to `wasm32-wasip1`.
//!
//! A gantry step is a WASI command module. It reads its inputs from
//! `INPUT_*` variables, appends results to the files that `GANTRY_OUTPUT`,
//! `GANTRY_ENV`, `GANTRY_STATE` and `GANTRY_STEP_SUMMARY` name, and talks to
//! the log through `::command::` lines on stdout. This crate wraps all of
//! that in typed Rust, so a step reads like this:
//!
//! ```no_run
//! use gantry_sdk::{Context, Result, Step};
//!
//! struct Greet;
//!
//! impl Step for Greet {
//!     fn run(&mut self, ctx: &Context) -> Result<()> {
//!         let who: String = ctx.input_or("who", "world".to_owned())?;
//!         let times: u32 = ctx.input_or("times", 1)?;
//!         for _ in 0..times {
//!             println!("Hello, {who}!");
//!         }
//!         ctx.set_output("message", format!("Hello, {who}!"))?;
//!         Ok(())
//!     }
//! }
//!
//! gantry_sdk::metadata!(r#"{ "name": "greet", "inputs": { "who": { "default": "world" } } }"#);
//! gantry_sdk::main!(Greet);
//! ```
//!
//! What lives where:
//!
//! - [`Context`]: everything the step reads and writes (inputs, the ABI
//!   files, phase, paths), built from the process environment or, in
//!   tests, from any map of variables pointing at a temporary folder.
//!   The free functions of this crate ([`input()`], [`set_output`], …) are
//!   shorthands for the same methods on the process-wide context.
//! - [`input`](mod@input): turning the text of an input into typed values
//!   ([`FromInput`], [`Json`], lists).
//! - [`files`]: the `name=value` / heredoc format of the ABI files.
//! - [`log`]: log levels, annotations with GitHub's escaping, masks, groups.
//! - [`step`]: the [`Step`] trait, [`Phase`], [`Outcome`] and [`run`], which
//!   dispatches the phase and turns an error into an annotation and an exit
//!   status.
//! - [`meta`]: the [`metadata!`] macro that embeds the plugin's description
//!   in the `gantry:step` custom section, and a model to check it.
//! - [`Error`]: the error type steps return.
//!
//! The ABI itself, for any language, is described in `sdk/ABI.md`.

mod context;
mod error;
pub mod files;
pub mod input;
pub mod log;
pub mod meta;
pub mod step;

use std::path::PathBuf;
use std::sync::OnceLock;

pub use context::Context;
pub use error::{Error, Result, ResultExt};
pub use input::{FromInput, Json};
pub use step::{Outcome, Phase, Step, run};

/// The context of the running step, read once from the process environment.
///
/// Every free function of this crate goes through it. Tests should build
/// their own [`Context`] with [`Context::from_vars`] instead.
///
/// ```no_run
/// let ctx = gantry_sdk::context();
/// println!("phase: {}", ctx.phase()?);
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(Context::from_env)
}

/// A required input, parsed: see [`Context::input`].
///
/// ```no_run
/// let replicas: u32 = gantry_sdk::input("replicas")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn input<T: FromInput>(name: &str) -> Result<T> {
    context().input(name)
}

/// An optional input, parsed: see [`Context::input_opt`].
///
/// ```no_run
/// let tag: Option<String> = gantry_sdk::input_opt("tag")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn input_opt<T: FromInput>(name: &str) -> Result<Option<T>> {
    context().input_opt(name)
}

/// An input with a default, parsed: see [`Context::input_or`].
///
/// ```no_run
/// let dry_run: bool = gantry_sdk::input_or("dry-run", false)?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn input_or<T: FromInput>(name: &str, default: T) -> Result<T> {
    context().input_or(name, default)
}

/// Sets an output of this step: see [`Context::set_output`].
///
/// ```no_run
/// gantry_sdk::set_output("digest", "9f2c…")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn set_output(name: &str, value: impl AsRef<str>) -> Result<()> {
    context().set_output(name, value)
}

/// Exports a variable to the following steps of the job: see
/// [`Context::export_env`].
///
/// ```no_run
/// gantry_sdk::export_env("IMAGE_TAG", "1.4.2")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn export_env(name: &str, value: impl AsRef<str>) -> Result<()> {
    context().export_env(name, value)
}

/// Saves a value for this step's rollback: see [`Context::save_state`].
///
/// ```no_run
/// gantry_sdk::save_state("previous-tag", "1.4.1")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn save_state(name: &str, value: impl AsRef<str>) -> Result<()> {
    context().save_state(name, value)
}

/// A value saved by [`save_state`], as seen in the rollback phase: see
/// [`Context::state`].
///
/// ```no_run
/// if let Some(tag) = gantry_sdk::state("previous-tag") {
///     println!("restoring {tag}");
/// }
/// ```
pub fn state(name: &str) -> Option<&'static str> {
    context().state(name)
}

/// Appends Markdown to the run's summary: see [`Context::append_summary`].
///
/// ```no_run
/// gantry_sdk::append_summary("### Deployed\n- version 1.4.2")?;
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn append_summary(markdown: &str) -> Result<()> {
    context().append_summary(markdown)
}

/// The phase the step runs in: see [`Context::phase`].
///
/// ```no_run
/// if gantry_sdk::phase()? == gantry_sdk::Phase::Rollback {
///     println!("undoing");
/// }
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
pub fn phase() -> Result<Phase> {
    context().phase()
}

/// In the rollback phase, how the compensated step ended: see
/// [`Context::outcome`].
///
/// ```no_run
/// if gantry_sdk::outcome() == Some(gantry_sdk::Outcome::Failure) {
///     println!("the step itself failed");
/// }
/// ```
pub fn outcome() -> Option<Outcome> {
    context().outcome()
}

/// The folder of a declared artifact, `/artifacts/<name>`: see
/// [`Context::artifact`].
///
/// ```no_run
/// let site = gantry_sdk::artifact("site");
/// std::fs::write(site.join("index.html"), "<h1>hi</h1>")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn artifact(name: &str) -> PathBuf {
    context().artifact(name)
}

/// A path given by the user, resolved against the workspace: see
/// [`Context::workspace_path`].
///
/// ```no_run
/// let config = gantry_sdk::workspace_path("deploy/values.yaml");
/// assert!(config.is_absolute());
/// ```
pub fn workspace_path(path: &str) -> PathBuf {
    context().workspace_path(path)
}
