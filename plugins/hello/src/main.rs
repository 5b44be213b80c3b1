//! `hello`: greets `who` and hands the greeting on.
//!
//! Inputs: `who` (default `world`), `greeting` (default `Hello`).
//! Outputs: `message`, the full greeting. Exports `GREETED` to later steps
//! and adds a line to the run's summary. Written against the raw step ABI:
//! inputs in `INPUT_*`, results appended to the files the `GANTRY_*`
//! variables name.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::ExitCode;

fn input(name: &str, default: &str) -> String {
    std::env::var(format!("INPUT_{name}"))
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn append(variable: &str, text: &str) -> Result<(), String> {
    let path = std::env::var(variable).map_err(|_| format!("`{variable}` is not set"))?;
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open `{path}`: {e}"))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write `{path}`: {e}"))
}

fn run() -> Result<(), String> {
    let who = input("WHO", "world");
    let greeting = input("GREETING", "Hello");
    if who.contains('\n') {
        return Err("`who` must be a single line".into());
    }
    let message = format!("{greeting}, {who}!");
    println!("{message}");
    println!("::notice title=hello::greeted {who}");
    append("GANTRY_OUTPUT", &format!("message={message}\n"))?;
    append("GANTRY_ENV", &format!("GREETED={who}\n"))?;
    append("GANTRY_STEP_SUMMARY", &format!("- {message}\n"))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            println!("::error title=hello::{reason}");
            ExitCode::FAILURE
        }
    }
}
