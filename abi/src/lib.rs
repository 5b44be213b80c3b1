//! `gantry-abi`: what crosses the line between gantry (the host) and a step
//! (the guest), defined once and used by both the runner and `gantry-sdk`.
//!
//! - [`metadata`]: the `gantry:step` custom section, the JSON a plugin
//!   describes itself with (inputs, outputs, permissions it needs).
//! - [`inputs`]: the `INPUT_<NAME>` variable a `with:` key arrives as.
//! - [`files`]: the `name=value` / heredoc format of `GANTRY_OUTPUT`,
//!   `GANTRY_ENV` and `GANTRY_STATE`, read by the host, written by guests.
//! - [`commands`]: the escaping of workflow commands (`::error file=…::…`),
//!   written by guests, read by the host.
//! - [`network`]: a network destination as a step grants it and a plugin's
//!   metadata says it needs (`https://api.example.com`).
//!
//! Each writer and its reader live side by side, and the tests check that
//! what one writes the other reads back unchanged. Nothing here panics on
//! any input; size limits are the caller's.

pub mod commands;
pub mod files;
pub mod inputs;
pub mod metadata;
pub mod network;
