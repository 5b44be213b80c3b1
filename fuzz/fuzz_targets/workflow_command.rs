//! The workflow-command parser: every line a step prints on stdout goes
//! through it (`::error file=a.rs,line=3::message`, `::stop-commands::`…).
//!
//! Properties: nothing panics; ordinary text comes back exactly as given;
//! escaping round-trips; a command, written again with the escaping rules,
//! parses back to the same command; inside `stop-commands` only the
//! resume marker is a command.

#![no_main]

use gantry::abi::workflow::{Annotation, Command, CommandParser, Line, parse_line};
use gantry_abi::commands::{escape_data, escape_property, unescape_data, unescape_property};
use libfuzzer_sys::fuzz_target;

/// Writes an annotation's properties as a step would.
fn properties(a: &Annotation) -> String {
    let mut out = Vec::new();
    if let Some(file) = &a.file {
        out.push(format!("file={}", escape_property(file)));
    }
    for (key, value) in [
        ("line", a.line),
        ("col", a.col),
        ("endLine", a.end_line),
        ("endColumn", a.end_column),
    ] {
        if let Some(value) = value {
            out.push(format!("{key}={value}"));
        }
    }
    if let Some(title) = &a.title {
        out.push(format!("title={}", escape_property(title)));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" {}", out.join(","))
    }
}

/// The line a step would print for `command`, when it has one of its own.
fn written(command: &Command) -> Option<String> {
    Some(match command {
        Command::Debug(m) => format!("::debug::{}", escape_data(m)),
        Command::Notice(a, m) => format!("::notice{}::{}", properties(a), escape_data(m)),
        Command::Warning(a, m) => format!("::warning{}::{}", properties(a), escape_data(m)),
        Command::Error(a, m) => format!("::error{}::{}", properties(a), escape_data(m)),
        Command::Group(m) => format!("::group::{}", escape_data(m)),
        Command::EndGroup => "::endgroup::".to_owned(),
        Command::AddMask(m) => format!("::add-mask::{}", escape_data(m)),
        Command::StopCommands(t) => format!("::stop-commands::{}", escape_data(t)),
        Command::ResumeCommands => return None,
    })
}

fuzz_target!(|output: &str| {
    // Escaping is lossless for any text.
    assert_eq!(unescape_data(&escape_data(output)), output);
    assert_eq!(unescape_property(&escape_property(output)), output);

    let mut parser = CommandParser::new();
    for line in output.split_inclusive('\n') {
        let stopped = parser.is_stopped();
        let alone = parse_line(line);
        let streamed = parser.parse(line);
        if let Line::Text(text) = &alone {
            assert_eq!(*text, line);
        }
        if stopped {
            assert!(
                matches!(streamed, Line::Text(t) if t == line)
                    || streamed == Line::Command(Command::ResumeCommands),
                "{line:?} acted on while commands are stopped: {streamed:?}"
            );
        } else {
            assert_eq!(streamed, alone);
        }
        if let Line::Command(command) = &alone
            && let Some(again) = written(command)
        {
            assert_eq!(parse_line(&again), alone, "{line:?} written as {again:?}");
        }
    }
});
