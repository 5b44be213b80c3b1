//! Splits expression text into tokens carrying byte offsets.

use super::value::parse_number;
use super::{ExprError, Res};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Num(f64),
    Str(String),
    /// Also `true`, `null`, ...: the parser resolves keywords, so they still
    /// work as property names (`steps.null`).
    Ident(String),
    /// Punctuation and operators, spelled as in the source.
    Op(&'static str),
}

/// A token and its byte range in the whole source text.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Two-character operators first so `<=` is not read as `<` then `=`.
const OPS: [&str; 16] = [
    "<=", ">=", "==", "!=", "&&", "||", "(", ")", "[", "]", ".", ",", "!", "<", ">", "*",
];

/// Lexes `src`; `base` is added to every offset so positions refer to the
/// enclosing text (e.g. a template) rather than to `src` alone.
///
/// As in GitHub, a number starts with a digit, `-` or `+`, or with `.` where
/// a value is expected (first, or after `,`, `(`, `[` or an operator), so
/// `.5` is a number but `a.b` is a property access.
pub(crate) fn lex(src: &str, base: usize) -> Res<Vec<Token>> {
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    while let Some(rest) = src.get(i..) {
        let Some(c) = rest.chars().next() else { break };
        let at = base + i;
        let value_expected = match out.last().map(|t| &t.tok) {
            None => true,
            Some(Tok::Op(op)) => !matches!(*op, ")" | "]" | "*" | "."),
            Some(_) => false,
        };
        let starts_number =
            c.is_ascii_digit() || matches!(c, '-' | '+') || (c == '.' && value_expected);
        let (tok, len) = if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        } else if starts_number {
            lex_number(rest, at)?
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            (Tok::Op(op), op.len())
        } else if c == '\'' {
            lex_string(rest, at)?
        } else if c.is_ascii_alphabetic() || c == '_' {
            let ident = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
            let len = rest.bytes().take_while(ident).count();
            (
                Tok::Ident(rest.get(..len).unwrap_or_default().to_owned()),
                len,
            )
        } else if matches!(c, '=' | '&' | '|') {
            return Err(ExprError::new(
                format!("unexpected `{c}`; did you mean `{c}{c}`?"),
                at,
            ));
        } else {
            return Err(ExprError::new(format!("unexpected character `{c}`"), at));
        };
        out.push(Token {
            tok,
            start: at,
            end: at + len,
        });
        i += len;
    }
    Ok(out)
}

/// Single-quoted string at the start of `rest`; `''` inside is one quote.
fn lex_string(rest: &str, at: usize) -> Res<(Tok, usize)> {
    let mut text = String::new();
    let mut chars = rest.char_indices().skip(1).peekable();
    while let Some((j, ch)) = chars.next() {
        if ch != '\'' {
            text.push(ch);
        } else if chars.next_if(|&(_, c)| c == '\'').is_some() {
            text.push('\'');
        } else {
            return Ok((Tok::Str(text), j + 1));
        }
    }
    Err(ExprError::new("unterminated string literal", at))
}

/// Characters that end a number token (besides whitespace); `.` does not,
/// so `1.2.3` is read whole and rejected whole, as in GitHub.
fn is_boundary(c: char) -> bool {
    matches!(
        c,
        '(' | '[' | ')' | ']' | ',' | '!' | '>' | '<' | '=' | '&' | '|'
    ) || c.is_whitespace()
}

/// A number runs to the next boundary and is then parsed by GitHub's rule
/// (decimal with exponent, `0x` hex, `0o` octal, `-Infinity`, ...), so
/// `12ab` is reported whole rather than as `12` then `ab`.
fn lex_number(rest: &str, at: usize) -> Res<(Tok, usize)> {
    let len = rest
        .char_indices()
        .skip(1)
        .find(|&(_, c)| is_boundary(c))
        .map_or(rest.len(), |(j, _)| j);
    let text = rest.get(..len).unwrap_or_default();
    let n = parse_number(text);
    if n.is_nan() {
        return Err(ExprError::new(format!("invalid number `{text}`"), at));
    }
    Ok((Tok::Num(n), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src, 0)
            .expect("lexes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn err(src: &str) -> (String, usize) {
        let e = lex(src, 0).expect_err(src);
        (e.message, e.offset)
    }

    #[test]
    fn numbers() {
        let cases = [
            ("42", 42.0),
            ("-7", -7.0),
            ("+7", 7.0),
            ("3.25", 3.25),
            (".5", 0.5),
            ("-.5", -0.5),
            ("5.", 5.0),
            ("0xff", 255.0),
            ("0xFF", 255.0),
            ("0xffffffff", -1.0),
            ("0o17", 15.0),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            ("1e+2", 100.0),
            ("-2.99e-2", -0.0299),
            ("-Infinity", f64::NEG_INFINITY),
        ];
        for (src, n) in cases {
            assert_eq!(toks(src), vec![Tok::Num(n)], "{src}");
        }
        let bad = [
            "12ab",
            "1.2.3",
            "0x",
            "0xfg",
            "0X1F",
            "-0x10",
            "0x100000000",
            "1e",
            "1_0",
            "-",
            "+",
            "1*2",
            ".",
        ];
        for bad in bad {
            assert_eq!(err(bad), (format!("invalid number `{bad}`"), 0));
        }
        // `.` is a number only where a value is expected.
        assert_eq!(toks("(.5)")[1], Tok::Num(0.5));
        assert_eq!(toks("a==.5")[2], Tok::Num(0.5));
        assert_eq!(toks("f(1,.5)")[4], Tok::Num(0.5));
        assert_eq!(toks("a.b")[1], Tok::Op("."));
        assert_eq!(toks("a[0].b")[4], Tok::Op("."));
        assert_eq!(toks("1<2")[1], Tok::Op("<"));
    }

    #[test]
    fn strings_and_offsets() {
        assert_eq!(toks("'it''s'"), vec![Tok::Str("it's".into())]);
        assert_eq!(toks("''"), vec![Tok::Str(String::new())]);
        assert_eq!(toks("'}}é'''"), vec![Tok::Str("}}é'".into())]);
        let e = lex("a == 'oops", 10).expect_err("unterminated");
        assert_eq!(
            (e.message.as_str(), e.offset),
            ("unterminated string literal", 15)
        );
        let t = lex("  ab <= 'c'", 3).expect("lexes");
        let offsets: Vec<_> = t.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(offsets, vec![(5, 7), (8, 10), (11, 14)]);
    }

    #[test]
    fn identifiers_and_operators() {
        let id = |s: &str| Tok::Ident(s.into());
        let want = [
            id("steps"),
            Tok::Op("."),
            id("my-step"),
            Tok::Op("."),
            id("some_name"),
        ];
        assert_eq!(toks("steps.my-step.some_name"), want);
        let all = OPS.join(" ");
        assert_eq!(toks(&all), OPS.map(Tok::Op));
        assert_eq!(toks("a<=b"), vec![id("a"), Tok::Op("<="), id("b")]);
        assert_eq!(
            err("a = b"),
            ("unexpected `=`; did you mean `==`?".into(), 2)
        );
        assert_eq!(
            err("a & b"),
            ("unexpected `&`; did you mean `&&`?".into(), 2)
        );
        assert_eq!(err("é # b"), ("unexpected character `é`".into(), 0));
        assert_eq!(err("a # b"), ("unexpected character `#`".into(), 2));
    }
}
