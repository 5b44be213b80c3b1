//! Workflow commands: `::name key=value,key=value::message` lines that a step
//! prints on stdout to talk to the host (annotations, log groups, masking).
//!
//! Anything that is not a well-formed, known command is plain text, so a
//! step's ordinary output can never be misread as a failure.

use gantry_abi::commands::{unescape_data, unescape_property};
use std::fmt;

/// Where an annotation points, from the command's properties. Every field is
/// optional; numbers that do not parse are dropped rather than rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotation {
    /// `file=`: path of the file concerned.
    pub file: Option<String>,
    /// `line=`: first line (1-based).
    pub line: Option<u32>,
    /// `col=`: first column (1-based).
    pub col: Option<u32>,
    /// `endLine=`: last line.
    pub end_line: Option<u32>,
    /// `endColumn=`: last column.
    pub end_column: Option<u32>,
    /// `title=`: a short heading for the message.
    pub title: Option<String>,
}

/// A command the host acts on. Messages are already unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `::debug::message`
    Debug(String),
    /// `::notice props::message`, as (properties, message).
    Notice(Annotation, String),
    /// `::warning props::message`, as (properties, message).
    Warning(Annotation, String),
    /// `::error props::message`, as (properties, message).
    Error(Annotation, String),
    /// `::group::name` opens a collapsible log section.
    Group(String),
    /// `::endgroup::` closes it.
    EndGroup,
    /// `::add-mask::value` registers a secret to hide from logs.
    AddMask(String),
    /// `::stop-commands::token`: until `::token::`, lines are plain text.
    StopCommands(String),
    /// The `::token::` line ending a `stop-commands` section. Only
    /// [`CommandParser`] produces this, since it needs the token.
    ResumeCommands,
}

/// A recognised command that gantry deliberately does not honour. The host
/// should warn (the [`fmt::Display`] text says why) and not print the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// Deprecated `::set-output name=x::value`; outputs go to `GANTRY_OUTPUT`.
    SetOutput {
        /// Its `name` property, if any.
        name: Option<String>,
    },
    /// Deprecated `::save-state name=x::value`; state goes to `GANTRY_STATE`.
    SaveState {
        /// Its `name` property, if any.
        name: Option<String>,
    },
    /// `::stop-commands::` with a blank token, or one whose resume line
    /// `::token::` would itself be a command.
    InvalidStopToken(String),
}

/// The text quotes what the step wrote, marked with
/// [`step_text`](super::mask::step_text) for the step's masks.
impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::mask::step_text;
        let (cmd, name, file) = match self {
            Ignored::SetOutput { name } => ("set-output", name, "GANTRY_OUTPUT"),
            Ignored::SaveState { name } => ("save-state", name, "GANTRY_STATE"),
            Ignored::InvalidStopToken(token) => {
                return write!(
                    f,
                    "`::stop-commands` token `{}` is not usable; ignored",
                    step_text(token)
                );
            }
        };
        let name = step_text(name.as_deref().unwrap_or(""));
        write!(
            f,
            "`::{cmd}` ({name}) is not supported; append `name=value` to {file}"
        )
    }
}

/// One line of step output, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// Ordinary output, returned exactly as given.
    Text(&'a str),
    /// A command to act on; the line itself is not shown in the log.
    Command(Command),
    /// A known command that is not honoured; warn instead of acting.
    Ignored(Ignored),
}

/// Classifies one line on its own, without `stop-commands` state; use
/// [`CommandParser`] for a stream. A trailing `\n` or `\r\n` is tolerated.
/// Command names are matched exactly (lowercase); property keys ignore case.
pub fn parse_line(line: &str) -> Line<'_> {
    classify(line, true)
}

/// `check_stop_token` is off only for the one-level look at a resume marker.
fn classify(line: &str, check_stop_token: bool) -> Line<'_> {
    let Some((name, props, data)) = split_command(line) else {
        return Line::Text(line);
    };
    let message = || unescape_data(data);
    let name_prop = || prop(props, "name");
    let command = match name {
        "debug" => Command::Debug(message()),
        "notice" => Command::Notice(annotation(props), message()),
        "warning" => Command::Warning(annotation(props), message()),
        "error" => Command::Error(annotation(props), message()),
        "group" => Command::Group(message()),
        "endgroup" => Command::EndGroup,
        "add-mask" => Command::AddMask(message()),
        "stop-commands" => {
            let token = message();
            // A token whose `::token::` is itself a command could never be told
            // apart from that command, so it is refused.
            let marker = format!("::{token}::");
            let clashes = || !matches!(classify(&marker, false), Line::Text(_));
            if check_stop_token && (token.trim().is_empty() || clashes()) {
                return Line::Ignored(Ignored::InvalidStopToken(token));
            }
            Command::StopCommands(token)
        }
        // The value of these is deliberately not kept: it may be a secret.
        "set-output" => return Line::Ignored(Ignored::SetOutput { name: name_prop() }),
        "save-state" => return Line::Ignored(Ignored::SaveState { name: name_prop() }),
        _ => return Line::Text(line),
    };
    Line::Command(command)
}

/// Parses a stream of lines, honouring `::stop-commands::token` (every line
/// is plain text until one that is exactly `::token::`, surrounding
/// whitespace aside).
#[derive(Debug, Clone, Default)]
pub struct CommandParser {
    stop_token: Option<String>,
}

impl CommandParser {
    /// A parser with commands enabled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether commands are currently stopped.
    pub fn is_stopped(&self) -> bool {
        self.stop_token.is_some()
    }

    /// Classifies the next line of output.
    pub fn parse<'a>(&mut self, line: &'a str) -> Line<'a> {
        if let Some(token) = &self.stop_token {
            let inner = line
                .trim()
                .strip_prefix("::")
                .and_then(|r| r.strip_suffix("::"));
            if inner == Some(token.as_str()) {
                self.stop_token = None;
                return Line::Command(Command::ResumeCommands);
            }
            return Line::Text(line);
        }
        let parsed = parse_line(line);
        if let Line::Command(Command::StopCommands(token)) = &parsed {
            self.stop_token = Some(token.clone());
        }
        parsed
    }
}

/// Splits `::name props::data` into its parts, or `None` if the line is not
/// shaped like a command.
fn split_command(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.trim_start().strip_prefix("::")?;
    let body = body.strip_suffix('\n').unwrap_or(body);
    let body = body.strip_suffix('\r').unwrap_or(body);
    let (info, data) = body.split_once("::")?;
    let (name, props) = info.split_once(' ').unwrap_or((info, ""));
    Some((name, props, data))
}

/// `key=value` pairs separated by commas; malformed or empty entries are skipped.
fn properties(props: &str) -> impl Iterator<Item = (&str, &str)> {
    props.split(',').filter_map(|entry| {
        let (key, value) = entry.split_once('=')?;
        let key = key.trim();
        (!key.is_empty() && !value.is_empty()).then_some((key, value))
    })
}

/// The last value of property `key` (case-insensitive), unescaped.
fn prop(props: &str, key: &str) -> Option<String> {
    properties(props)
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .last()
        .map(|(_, v)| unescape_property(v))
}

fn annotation(props: &str) -> Annotation {
    let mut a = Annotation::default();
    for (key, value) in properties(props) {
        let number = || value.trim().parse::<u32>().ok();
        let key = |k: &str| key.eq_ignore_ascii_case(k);
        if key("file") {
            a.file = Some(unescape_property(value));
        } else if key("title") {
            a.title = Some(unescape_property(value));
        } else if key("line") {
            a.line = number();
        } else if key("col") {
            a.col = number();
        } else if key("endLine") {
            a.end_line = number();
        } else if key("endColumn") {
            a.end_column = number();
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        match parse_line(line) {
            Line::Command(c) => c,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn debug(message: &str) -> Command {
        Command::Debug(message.into())
    }

    fn ignored(line: &str) -> Ignored {
        match parse_line(line) {
            Line::Ignored(i) => i,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(cmd("::debug::hi there"), debug("hi there"));
        assert_eq!(cmd("::group::Build"), Command::Group("Build".into()));
        assert_eq!(cmd("::endgroup::"), Command::EndGroup);
        assert_eq!(cmd("::add-mask::a%25b"), Command::AddMask("a%b".into()));
        let none = Annotation::default;
        assert_eq!(cmd("::notice::n"), Command::Notice(none(), "n".into()));
        assert_eq!(cmd("::warning ::w"), Command::Warning(none(), "w".into()));
        assert_eq!(cmd("::error::"), Command::Error(none(), String::new()));
    }

    #[test]
    fn leading_whitespace_and_line_endings() {
        assert_eq!(cmd("  \t::debug::x\r\n"), debug("x"));
        assert_eq!(cmd("::debug::a::b"), debug("a::b"));
    }

    #[test]
    fn error_with_properties_and_escapes() {
        let line = "::error file=app.js,line=10,col=15,title=Bad%3A thing::Something%0Afailed";
        let annotation = Annotation {
            file: Some("app.js".into()),
            line: Some(10),
            col: Some(15),
            title: Some("Bad: thing".into()),
            ..Annotation::default()
        };
        let want = Command::Error(annotation, "Something\nfailed".into());
        assert_eq!(cmd(line), want);
    }

    #[test]
    fn property_keys_ignore_case_and_numbers_are_lenient() {
        let line =
            "::warning FILE=a%2Cb.rs,endLine= 7 ,ENDCOLUMN=9,Line=x,col=-1,bogus,=3,title=::m";
        let annotation = Annotation {
            file: Some("a,b.rs".into()),
            end_line: Some(7),
            end_column: Some(9),
            ..Annotation::default()
        };
        assert_eq!(cmd(line), Command::Warning(annotation, "m".into()));
    }

    #[test]
    fn message_escapes() {
        assert_eq!(cmd("::debug::a%0D%0Ab%25c"), debug("a\r\nb%c"));
        // Property-only escapes stay literal in messages; stray `%` is kept.
        assert_eq!(cmd("::debug::%3A%2C%zz%2%"), debug("%3A%2C%zz%2%"));
        // Decoding is a single pass: `%250A` is `%` then literal `0A`.
        assert_eq!(cmd("::debug::%250A%0a"), debug("%0A\n"));
        assert_eq!(cmd("::debug::%é%"), debug("%é%"));
    }

    #[test]
    fn deprecated_commands_are_ignored_variants() {
        let set_output = ignored("::set-output name=x::y");
        assert_eq!(
            set_output,
            Ignored::SetOutput {
                name: Some("x".into())
            }
        );
        assert!(set_output.to_string().contains("GANTRY_OUTPUT"));
        let save_state = ignored("::save-state NAME=s::v");
        assert_eq!(
            save_state,
            Ignored::SaveState {
                name: Some("s".into())
            }
        );
        assert_eq!(
            ignored("::set-output::v"),
            Ignored::SetOutput { name: None }
        );
    }

    #[test]
    fn non_commands_are_plain_text() {
        for line in [
            "",
            "hello",
            "echo foo::bar::baz",
            "::foo::bar",
            "::Warning::capitalised names are not commands",
            "::warning no closing separator",
            ":: ::x",
            "::",
        ] {
            assert_eq!(parse_line(line), Line::Text(line), "{line:?}");
        }
    }

    #[test]
    fn stop_and_resume_commands() {
        let mut p = CommandParser::new();
        let stop = Command::StopCommands("tok123".into());
        assert_eq!(p.parse("::stop-commands::tok123"), Line::Command(stop));
        assert!(p.is_stopped());
        assert_eq!(p.parse("::error::not now"), Line::Text("::error::not now"));
        assert_eq!(p.parse("::tok1234::"), Line::Text("::tok1234::"));
        let resume = Line::Command(Command::ResumeCommands);
        assert_eq!(p.parse("  ::tok123::\r\n"), resume);
        assert!(!p.is_stopped());
        assert_eq!(p.parse("::debug::back"), Line::Command(debug("back")));
        // Outside a stopped section the marker is just an unknown command.
        assert_eq!(p.parse("::tok123::"), Line::Text("::tok123::"));
    }

    #[test]
    fn invalid_stop_tokens_do_not_stop() {
        let mut p = CommandParser::new();
        let nested = "stop-commands::".repeat(100_000);
        for token in ["", " ", "error", "stop-commands", "endgroup", &nested] {
            let line = format!("::stop-commands::{token}");
            let want = Line::Ignored(Ignored::InvalidStopToken(token.into()));
            assert_eq!(p.parse(&line), want);
            assert!(!p.is_stopped());
        }
    }
}
