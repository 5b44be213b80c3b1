//! The step-file parser (`GANTRY_OUTPUT`, `GANTRY_ENV`, `GANTRY_STATE`):
//! text a step writes and the host reads after it ends.
//!
//! Properties: nothing panics; an error's line number is a line of the
//! file; every pair read, written again with `format_entry`, reads back
//! as the same pair (except a value with a line ending in `\r`, which the
//! format documents it loses).

#![no_main]

use gantry_abi::files::{FileCommandError, format_entry, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|content: &str| {
    let pairs = match parse(content) {
        Ok(pairs) => pairs,
        Err(error) => {
            let line = match &error {
                FileCommandError::MissingSeparator { line }
                | FileCommandError::EmptyName { line }
                | FileCommandError::EmptyDelimiter { line }
                | FileCommandError::UnclosedHeredoc { line, .. } => *line,
            };
            let lines = content.split('\n').count();
            assert!(
                (1..=lines).contains(&line),
                "{error} in a {lines}-line file"
            );
            let _ = gantry::abi::file_commands::describe(&error);
            return;
        }
    };
    let mut written = String::new();
    let mut kept = Vec::new();
    for (name, value) in &pairs {
        if value.split('\n').any(|line| line.ends_with('\r')) {
            continue;
        }
        let mut n = 0u32;
        let entry = format_entry(name, value, || {
            n += 1;
            format!("FUZZ_EOF_{n}")
        });
        // A name the parser accepted may still hold a lone `\r` that a
        // writer refuses; refusing is the writer's documented choice.
        if let Ok(entry) = entry {
            written.push_str(&entry);
            kept.push((name.clone(), value.clone()));
        }
    }
    assert_eq!(parse(&written).as_ref(), Ok(&kept), "{written:?}");
});
