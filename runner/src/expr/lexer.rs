//! Splits expression text into tokens carrying byte offsets.

use super::value::parse_numeric;
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
pub(crate) fn lex(src: &str, base: usize) -> Res<Vec<Token>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(rest) = src.get(i..) {
        let Some(c) = rest.chars().next() else { break };
        let at = base + i;
        let starts_number = c.is_ascii_digit()
            || (c == '-' && rest.as_bytes().get(1).is_some_and(u8::is_ascii_digit));
        let (tok, len) = if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            (Tok::Op(op), op.len())
        } else if c == '\'' {
            lex_string(rest, at)?
        } else if starts_number {
            lex_number(rest, at)?
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

/// Numbers are scanned as one run of number-ish characters and validated
/// afterwards, so `12ab` is reported whole rather than as `12` then `ab`.
fn lex_number(rest: &str, at: usize) -> Res<(Tok, usize)> {
    let b = rest.as_bytes();
    let hex = rest
        .trim_start_matches('-')
        .get(..2)
        .is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    let mut len = 1;
    while let Some(&c) = b.get(len) {
        let exp_sign =
            !hex && matches!(c, b'+' | b'-') && matches!(b.get(len - 1), Some(b'e' | b'E'));
        if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign) {
            break;
        }
        len += 1;
    }
    let text = rest.get(..len).unwrap_or_default();
    match parse_numeric(text) {
        Some(n) => Ok((Tok::Num(n), len)),
        None => Err(ExprError::new(format!("invalid number `{text}`"), at)),
    }
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
        let cases = [("42", 42.0), ("-7", -7.0), ("3.25", 3.25), ("0xff", 255.0)];
        let more = [
            ("-0x10", -16.0),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            ("1e+2", 100.0),
        ];
        for (src, n) in cases.into_iter().chain(more) {
            assert_eq!(toks(src), vec![Tok::Num(n)], "{src}");
        }
        for bad in ["12ab", "1.2.3", "0x", "0xfg", "1e", "1_0"] {
            assert_eq!(err(bad), (format!("invalid number `{bad}`"), 0));
        }
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
