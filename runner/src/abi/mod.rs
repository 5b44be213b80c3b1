//! The text protocols between a step and the host.
//!
//! A step is an untrusted WebAssembly guest; everything it hands back to the
//! host is plain text that this module interprets:
//!
//! - [`file_commands`]: the `name=value` / heredoc format of the files a step
//!   appends to (`GANTRY_OUTPUT`, `GANTRY_ENV`, `GANTRY_STATE`), modelled on
//!   GitHub Actions' `$GITHUB_OUTPUT` family.
//! - [`workflow`]: `::command key=value::message` lines on a step's stdout
//!   (annotations, log groups, `add-mask`, `stop-commands`).
//! - [`mask`]: replacing secrets and step-registered values with `***`.
//!
//! The formats themselves (the step-file format, command escaping, input
//! names, the metadata model) are defined once in `gantry-abi`, whose
//! writers the SDK uses; this module is the host's side of reading them.
//!
//! Every function here accepts arbitrary input without panicking; size limits
//! are the caller's job.

pub mod file_commands;
pub mod mask;
pub mod workflow;

pub use file_commands::{FileCommandError, parse_file_commands};
pub use mask::{Masker, Masks, step_text};
pub use workflow::{Annotation, Command, CommandParser, Ignored, Line, parse_line};
