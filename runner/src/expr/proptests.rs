//! Property tests: no input string makes the lexer, parser, template parser
//! or evaluator panic, hang or overflow the stack, and every error points
//! inside the text it came from.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;

use super::tests::CTX;
use super::value::{format_number, parse_number};
use super::{ExprError, Template, Value, parse_expression};

/// Generous: a debug build on two shared cores; real cases take microseconds
/// to a few milliseconds.
const SLOW: Duration = Duration::from_secs(3);

/// Pieces of the expression language (and near misses) that random inputs
/// are assembled from.
const PIECES: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    ".",
    "*",
    ",",
    "!",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "=",
    "&",
    "|",
    "'",
    "''",
    "'x'",
    "'{0}'",
    "'{{'",
    "'}}'",
    "'[1,[2]]'",
    "'{\"a\":1}'",
    "${{",
    "}}",
    "{",
    "}",
    " ",
    "\n",
    "\t",
    "a",
    "env",
    "MAJOR",
    "matrix",
    "list",
    "steps",
    "build",
    "outputs",
    "fruits",
    "name",
    "github",
    "event",
    "big",
    "rows",
    "s",
    "0",
    "1",
    "-1",
    "1.5",
    ".5",
    "1e3",
    "1e",
    "0x1f",
    "0o7",
    "-",
    "+",
    "null",
    "true",
    "false",
    "NaN",
    "Infinity",
    "contains(",
    "startsWith(",
    "endsWith(",
    "format(",
    "join(",
    "toJSON(",
    "fromJSON(",
    "success(",
    "hashFiles(",
    "f(",
    "é",
    "🎉",
    "\u{0}",
    "#",
    "\\",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(select(PIECES), 0..80).prop_map(|v| v.concat())
}

/// A long run of one opener (up to 20,000), then a random tail.
fn deep() -> impl Strategy<Value = String> {
    let openers = select(
        &[
            "(",
            "!",
            "[",
            "a[",
            "f(",
            "fromJSON(",
            "-",
            "'",
            "${{ ",
            "!(",
        ][..],
    );
    (openers, 0..20_000usize, soup()).prop_map(|(open, n, tail)| open.repeat(n) + &tail)
}

fn host(name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
    match name.to_ascii_lowercase().as_str() {
        "success" => Some(Ok(Value::Bool(true))),
        "hashfiles" => Some(Err("no workspace here".into())),
        _ => None,
    }
}

fn within(e: &ExprError, text: &str) -> bool {
    e.offset <= text.len()
}

/// Runs every entry point on `text`; panics (failing the property) on a
/// bad offset or a slow case. Returning at all proves no panic or overflow.
fn exercise(text: &str) {
    let started = Instant::now();
    match parse_expression(text) {
        Ok(e) => {
            for result in [e.evaluate(&CTX), e.evaluate_with(&CTX, &host)] {
                if let Err(err) = result {
                    assert!(within(&err, text), "{err:?} for {text:?}");
                }
            }
            let _ = (e.references(), e.calls("success"));
        }
        Err(err) => assert!(within(&err, text), "{err:?} for {text:?}"),
    }
    for template in [text.to_owned(), format!("x ${{{{ {text} }}}} y")] {
        match Template::parse(&template) {
            Ok(t) => {
                if let Err(err) = t.render_with(&CTX, &host) {
                    assert!(within(&err, &template), "{err:?} for {template:?}");
                }
                let _ = (t.references(), t.is_literal(), t.as_single_expression());
            }
            Err(err) => assert!(within(&err, &template), "{err:?} for {template:?}"),
        }
    }
    assert!(started.elapsed() < SLOW, "slow: {text:?}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn language_soup_never_panics(text in soup()) {
        exercise(&text);
    }

    #[test]
    fn any_string_never_panics(text in "\\PC{0,200}") {
        exercise(&text);
    }

    #[test]
    fn numbers_never_panic_and_print_back(x in any::<f64>(), text in "[-+.0-9eExXoOa-f ]{0,24}") {
        let _ = parse_number(&text);
        let printed = format_number(x);
        let back = parse_number(&printed);
        if x.is_nan() {
            prop_assert!(back.is_nan());
        } else if x.is_infinite() || x == 0.0 {
            prop_assert_eq!(back, x);
        } else {
            // 15 significant digits survive the round trip.
            prop_assert!(((back - x) / x).abs() < 1e-14, "{} -> {} -> {}", x, printed, back);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn deep_nesting_never_overflows(text in deep()) {
        exercise(&text);
    }
}

/// 100,000 levels of every kind of nesting are rejected with an error, not
/// a stack overflow.
#[test]
fn hundred_thousand_levels_are_an_error() {
    for open in ["(", "!", "a[", "f(", "!(", "format('', "] {
        let text = open.repeat(100_000);
        let err = parse_expression(&text).expect_err("too deep");
        assert!(within(&err, &text), "{open}: {err:?}");
        let closed = format!("{text}a{}", ")".repeat(100_000));
        assert!(parse_expression(&closed).is_err(), "{open}");
        let template = format!("${{{{ {closed} }}}}");
        assert!(Template::parse(&template).is_err(), "{open}");
    }
    // Within the length limit, the depth limit is what answers.
    for open in ["(", "!", "a[", "f("] {
        let err = parse_expression(&open.repeat(8_000)).expect_err("too deep");
        assert!(err.message.contains("nested too deeply"), "{open}: {err:?}");
    }
}
