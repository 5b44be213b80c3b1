//! Runtime values and the coercion rules GitHub Actions applies to them.

use std::cmp::Ordering;

use indexmap::IndexMap;

/// JSON nesting accepted when converting `serde_json` data into a [`Value`].
pub const MAX_JSON_DEPTH: usize = 128;

/// The map behind [`Value::Object`]: insertion-ordered, so `toJSON`, `.*`
/// and `fromJSON` keep keys in the order they were written.
pub type Map = IndexMap<String, Value>;

/// A value produced or consumed by an expression.
///
/// Rust's `==` on this type is structural equality; the expression language's
/// own (loose, case-insensitive) `==` lives in the evaluator.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`, also the result of reading a missing property.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Every number is a 64-bit float, as in GitHub Actions.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object; keys keep their original case and the order they were
    /// written in (as GitHub's dictionaries do), lookups ignore case.
    Object(Map),
}

impl Value {
    /// Coerces the value to text the way GitHub does (its `ConvertToString`),
    /// which is what `${{ }}` substitutes and what `format`, `join` and the
    /// string functions see: null → `""`, booleans → `true`/`false`, numbers
    /// in .NET's `G15` form (`1.0` → `1`, `1e15` → `1E+15`), and arrays and
    /// objects → the words `Array` and `Object` (use `toJSON` for their content).
    pub fn to_output_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".into(),
            Value::Object(_) => "Object".into(),
        }
    }

    /// Null, booleans, numbers and strings are primitives; arrays and
    /// objects are not. Several functions treat non-primitives specially.
    pub fn is_primitive(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::Object(_))
    }

    /// Truthiness: `null`, `false`, `0`, `-0`, `NaN` and `""` are falsy;
    /// everything else (including empty arrays and objects) is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// Numeric view used when operands of different types are compared:
    /// null → 0, booleans → 0/1, strings parsed as GitHub does (surrounding
    /// whitespace ignored, `""` → 0, `0x`/`0o` integers, otherwise NaN),
    /// arrays and objects → NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => parse_number(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// Converts parsed JSON into a value; `None` if it nests deeper than
    /// [`MAX_JSON_DEPTH`] (the bound keeps the conversion's recursion finite).
    pub fn from_json(json: &serde_json::Value) -> Option<Value> {
        from_json_at(json, 0)
    }
}

fn from_json_at(json: &serde_json::Value, depth: usize) -> Option<Value> {
    if depth > MAX_JSON_DEPTH {
        return None;
    }
    Some(match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| from_json_at(v, depth + 1))
                .collect::<Option<_>>()?,
        ),
        serde_json::Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.clone(), from_json_at(v, depth + 1)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
/// Formats a number as .NET's `ToString("G15")` does, which is what GitHub
/// prints: at most 15 significant digits, no trailing zeros, fixed notation
/// for decimal exponents from -4 to 14 and `1.5E+20` / `1E-07` outside them;
/// `-0`, `NaN`, `Infinity` and `-Infinity` spelled as .NET spells them.
pub(crate) fn format_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust rounds to 15 significant digits exactly; the exponent is the one
    // after rounding, as in .NET (999999999999999.9 becomes 1E+15).
    let sci = format!("{:.14e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if (-4..15).contains(&exp) {
        if exp >= 0 {
            let int_len = usize::try_from(exp).unwrap_or(0) + 1;
            match digits.split_at_checked(int_len) {
                Some((int, frac)) if !frac.is_empty() => {
                    out.push_str(int);
                    out.push('.');
                    out.push_str(frac);
                }
                _ => {
                    out.push_str(digits);
                    out.extend(std::iter::repeat_n(
                        '0',
                        int_len.saturating_sub(digits.len()),
                    ));
                }
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(digits);
        }
    } else {
        let (first, rest) = digits.split_at_checked(1).unwrap_or((digits, ""));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("E{sign}{:02}", exp.unsigned_abs()));
    }
    out
}

/// GitHub's string-to-number rule (its `ParseNumber`), used both for number
/// literals and for coercing strings: surrounding whitespace is ignored, the
/// empty string is 0, then a decimal with optional sign, fraction and
/// exponent (`.5`, `5.`, `-2.99e-2`), `Infinity`/`NaN` in any case, or a
/// 32-bit `0x` hex / `0o` octal integer (two's complement, so `0xffffffff`
/// is -1, as in .NET's `Int32` parsing). Anything else is NaN.
pub(crate) fn parse_number(text: &str) -> f64 {
    let t = text.trim();
    if t.is_empty() {
        return 0.0;
    }
    if let Some(v) = parse_decimal(t) {
        return v;
    }
    let radix_int = |digits: &str, radix: u32| -> Option<f64> {
        let digits = digits.trim_start_matches('0');
        if digits.len() > 32 {
            return None;
        }
        let v = u64::from_str_radix(if digits.is_empty() { "0" } else { digits }, radix).ok()?;
        let v = u32::try_from(v).ok()?;
        Some(f64::from(v.cast_signed()))
    };
    let int = if let Some(hex) = t.strip_prefix("0x") {
        hex.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| radix_int(hex, 16))
            .flatten()
            .filter(|_| !hex.is_empty())
    } else if let Some(oct) = t.strip_prefix("0o") {
        oct.bytes()
            .all(|b| matches!(b, b'0'..=b'7'))
            .then(|| radix_int(oct, 8))
            .flatten()
            .filter(|_| !oct.is_empty())
    } else {
        None
    };
    int.unwrap_or(f64::NAN)
}

/// `[+-]` then digits with an optional `.` (at least one digit in all), then
/// an optional `e[+-]digits`; also the .NET symbols `Infinity` and `NaN`,
/// matched ignoring case. Restricting the grammar keeps Rust's own extras
/// (`inf`, `infinity` without sign rules, ...) from leaking in.
fn parse_decimal(t: &str) -> Option<f64> {
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    let signed = |v: f64| if negative { -v } else { v };
    if body.eq_ignore_ascii_case("infinity") {
        return Some(signed(f64::INFINITY));
    }
    if body.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let dots = mantissa.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || dots > 1 || digits + dots != mantissa.len() {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    body.parse::<f64>().ok().map(signed)
}

/// One character upper-cased by its simple (one-to-one) mapping, as .NET's
/// `ToUpperInvariant` / `OrdinalIgnoreCase` (what GitHub's runner compares
/// with) do: `ß` stays `ß` rather than becoming `SS`, and the dotless `ı`
/// stays `ı`: .NET special-cases U+0131 to upper-case to itself in the
/// invariant culture (ICU alone would give `I`), so `'ı' == 'I'` is false
/// and `'ı'` sorts after every ASCII letter. act compares with Go's
/// `strings.EqualFold`, which folds `ı` and `ſ` differently; we follow GitHub.
fn upper(c: char) -> char {
    if c == '\u{131}' {
        return c;
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Upper-cases for comparisons; GitHub compares strings ordinally ignoring
/// case. The result has as many characters as the input.
pub(crate) fn fold(s: &str) -> String {
    s.chars().map(upper).collect()
}

/// Case-insensitive string equality.
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    a == b || a.chars().map(upper).eq(b.chars().map(upper))
}

/// Case-insensitive ordinal ordering, by UTF-16 code units as in .NET.
pub(crate) fn fold_cmp(a: &str, b: &str) -> Ordering {
    fn units(s: &str) -> impl Iterator<Item = u16> + '_ {
        s.chars().map(upper).flat_map(|c| {
            let mut buf = [0u16; 2];
            let n = c.encode_utf16(&mut buf).len();
            buf.into_iter().take(n)
        })
    }
    units(a).cmp(units(b))
}

/// Object lookup as GitHub does it: exact key first, then ignoring case.
pub(crate) fn get_ignore_case<'m>(map: &'m Map, key: &str) -> Option<&'m Value> {
    let loose = || map.iter().find(|(k, _)| fold_eq(k, key)).map(|(_, v)| v);
    map.get(key).or_else(loose)
}

/// Two operands after GitHub's type coercion (its `CoerceTypes`): values of
/// the same kind stay as they are; otherwise, unless an array or object is
/// involved, both become numbers.
enum Coerced<'v> {
    Null,
    Bool(bool, bool),
    Num(f64, f64),
    Str(&'v str, &'v str),
    /// Two arrays or two objects: whether they are the same instance.
    Same(bool),
    /// Different kinds that do not coerce (an array against anything else).
    Mismatch,
}

fn coerce<'v>(a: &'v Value, b: &'v Value) -> Coerced<'v> {
    match (a, b) {
        (Value::Null, Value::Null) => Coerced::Null,
        (Value::Bool(x), Value::Bool(y)) => Coerced::Bool(*x, *y),
        (Value::Number(x), Value::Number(y)) => Coerced::Num(*x, *y),
        (Value::String(x), Value::String(y)) => Coerced::Str(x, y),
        // Identity: a value read twice from the same context is the same
        // instance (same address); anything built during evaluation is new.
        (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)) => {
            Coerced::Same(std::ptr::eq(a, b))
        }
        _ if !a.is_primitive() || !b.is_primitive() => Coerced::Mismatch,
        _ => Coerced::Num(a.to_number(), b.to_number()),
    }
}

/// GitHub's loose `==`: coercion as above, NaN equal to nothing, strings
/// compared ignoring case, arrays and objects equal only to themselves.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match coerce(a, b) {
        Coerced::Null => true,
        Coerced::Bool(x, y) => x == y,
        Coerced::Num(x, y) => x == y,
        Coerced::Str(x, y) => fold_eq(x, y),
        Coerced::Same(same) => same,
        Coerced::Mismatch => false,
    }
}

/// GitHub's `<` (`Less`) and `>` (`Greater`): numbers (false with NaN),
/// strings ignoring case, booleans (`false < true`); anything else is false.
/// `<=` and `>=` are `==` or the strict comparison, as in GitHub.
pub(crate) fn loose_order(a: &Value, b: &Value, want: Ordering) -> bool {
    let ord = match coerce(a, b) {
        Coerced::Num(x, y) => x.partial_cmp(&y),
        Coerced::Str(x, y) => Some(fold_cmp(x, y)),
        Coerced::Bool(x, y) => Some(x.cmp(&y)),
        Coerced::Null | Coerced::Same(_) | Coerced::Mismatch => None,
    };
    ord == Some(want)
}

/// Writes `s` as a JSON string the way Newtonsoft.Json (GitHub's `toJSON`)
/// escapes it: `"` and `\`, the short escapes, other control characters as
/// lowercase `\u00xx`, and U+0085, U+2028, U+2029; everything else as is.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Pretty JSON (2-space indent, `"key": value`) as GitHub's `toJSON` prints
/// it; object keys come in sorted order (GitHub keeps insertion order, which
/// [`Value::Object`] does not record). `None` once the text would exceed
/// `limit` bytes. Iterative so caller-built values of any depth cannot
/// overflow the stack.
pub(crate) fn to_json(value: &Value, limit: usize) -> Option<String> {
    type Items<'v> = Box<dyn Iterator<Item = (Option<&'v String>, &'v Value)> + 'v>;
    // Open containers: remaining items, closing bracket, "no item written yet".
    let mut stack: Vec<(Items<'_>, char, bool)> = Vec::new();
    let mut out = String::new();
    let mut next = Some(value);
    while out.len() <= limit {
        if let Some(v) = next.take() {
            match v {
                Value::Array(a) if !a.is_empty() => {
                    out.push('[');
                    stack.push((Box::new(a.iter().map(|v| (None, v))), ']', true));
                }
                Value::Object(o) if !o.is_empty() => {
                    out.push('{');
                    stack.push((Box::new(o.iter().map(|(k, v)| (Some(k), v))), '}', true));
                }
                Value::Array(_) => out.push_str("[]"),
                Value::Object(_) => out.push_str("{}"),
                Value::Null => out.push_str("null"),
                Value::String(s) => push_json_string(&mut out, s),
                // Numbers in the same `G15` form as everywhere else, so NaN
                // and the infinities come out bare, as GitHub writes them.
                Value::Number(n) => out.push_str(&format_number(*n)),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            }
            continue;
        }
        let depth = stack.len();
        let Some((items, close, first)) = stack.last_mut() else {
            return Some(out);
        };
        let indent = |out: &mut String, depth| {
            out.push('\n');
            out.extend(std::iter::repeat_n("  ", depth));
        };
        if let Some((key, v)) = items.next() {
            if !std::mem::replace(first, false) {
                out.push(',');
            }
            indent(&mut out, depth);
            if let Some(k) = key {
                push_json_string(&mut out, k);
                out.push_str(": ");
            }
            next = Some(v);
        } else {
            let close = *close;
            stack.pop();
            indent(&mut out, depth - 1);
            out.push(close);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn n(x: f64) -> Value {
        Value::Number(x)
    }

    #[test]
    fn output_strings() {
        let obj = Value::Object(Map::from([("k".into(), Value::Null)]));
        let cases = [
            (Value::Null, ""),
            (true.into(), "true"),
            (false.into(), "false"),
            ("text".into(), "text"),
            (Value::Array(vec![n(1.0)]), "Array"),
            (Value::Array(vec![]), "Array"),
            (obj, "Object"),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_output_string(), want, "{v:?}");
        }
    }

    /// .NET's `G15`: 15 significant digits, fixed notation for exponents
    /// -4..=14, `E+XX` otherwise.
    #[test]
    fn numbers_print_as_github_does() {
        let cases = [
            (3.0, "3"),
            (1.0, "1"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1.5, "1.5"),
            (-9.2, "-9.2"),
            (-0.0299, "-0.0299"),
            (255.0, "255"),
            (0.1 + 0.2, "0.3"),
            (1.0 / 3.0, "0.333333333333333"),
            (2.0 / 3.0, "0.666666666666667"),
            (123_456_789_012_345.0, "123456789012345"),
            (999_999_999_999_999.0, "999999999999999"),
            (999_999_999_999_999.9, "1E+15"),
            (1e15, "1E+15"),
            (1_234_567_890_123_456.0, "1.23456789012346E+15"),
            (1e21, "1E+21"),
            (-1.5e300, "-1.5E+300"),
            (0.0001, "0.0001"),
            (0.000_012_5, "1.25E-05"),
            (1e-7, "1E-07"),
            (5e-324, "4.94065645841247E-324"),
            (f64::MAX, "1.79769313486232E+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (x, want) in cases {
            assert_eq!(format_number(x), want, "{x:e}");
        }
    }

    #[test]
    fn truthiness() {
        let falsy = [
            Value::Null,
            false.into(),
            n(0.0),
            n(-0.0),
            n(f64::NAN),
            "".into(),
        ];
        let truthy = [
            true.into(),
            n(-1.0),
            "0".into(),
            "false".into(),
            Value::Array(vec![]),
        ];
        assert!(falsy.iter().all(|v| !v.is_truthy()));
        assert!(truthy.iter().all(Value::is_truthy));
        assert!(Value::Object(Map::new()).is_truthy());
    }

    #[test]
    fn numbers_from_values() {
        let cases = [
            (Value::Null, 0.0),
            (true.into(), 1.0),
            (false.into(), 0.0),
            ("".into(), 0.0),
            ("  \t".into(), 0.0),
            (" 42\n".into(), 42.0),
            ("-1.5e2".into(), -150.0),
            ("+.5".into(), 0.5),
            ("5.".into(), 5.0),
            ("1E+3".into(), 1000.0),
            ("0xff".into(), 255.0),
            ("0xFF".into(), 255.0),
            ("0x7fffffff".into(), 2_147_483_647.0),
            ("0xffffffff".into(), -1.0),
            ("0x0000000000000010".into(), 16.0),
            ("0o17".into(), 15.0),
            ("Infinity".into(), f64::INFINITY),
            ("-infinity".into(), f64::NEG_INFINITY),
            ("1e400".into(), f64::INFINITY),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_number(), want, "{v:?}");
        }
        let nan = [
            "abc",
            "inf",
            "NaN",
            "1 2",
            "0x",
            "0X1F",
            "-0x10",
            "0x100000000",
            "0o8",
            "1e",
            "e5",
            ".",
            "--1",
            "1,000",
            "1_000",
            "1.2.3",
            "0b101",
        ];
        for text in nan {
            assert!(Value::from(text).to_number().is_nan(), "{text}");
        }
        assert!(Value::Array(vec![]).to_number().is_nan());
        assert!(Value::Object(Map::new()).to_number().is_nan());
    }

    #[test]
    fn case_folding_is_simple_and_ordinal() {
        assert!(fold_eq("Straße", "STRAßE"));
        assert!(!fold_eq("straße", "STRASSE"));
        assert!(fold_eq("ÉCOLE", "école"));
        assert_eq!(fold_cmp("a", "B"), Ordering::Less);
        assert_eq!(fold_cmp("abc", "ABC"), Ordering::Equal);
        assert_eq!(fold_cmp("_", "a"), Ordering::Greater); // `_` sorts after `A`
        // UTF-16 order: a surrogate pair (U+1F600) sorts before U+FF21.
        assert_eq!(fold_cmp("\u{1F600}", "\u{FF21}"), Ordering::Less);
    }

    #[test]
    fn json_strings_escape_like_newtonsoft() {
        let mut out = String::new();
        push_json_string(
            &mut out,
            "q\"b\\n\n\t\r\u{8}\u{c}\u{1}\u{1f}\u{7f}é\u{85}\u{2028}</>'",
        );
        let want = concat!(
            r#""q\"b\\n\n\t\r\b\f\u0001\u001f"#,
            "\u{7f}é",
            r#"\u0085\u2028</>'""#
        );
        assert_eq!(out, want);
    }

    #[test]
    fn json_depth_is_bounded() {
        let nest = |json| serde_json::Value::Array(vec![json]);
        let json = (0..=MAX_JSON_DEPTH).fold(serde_json::Value::Null, |j, _| nest(j));
        assert!(Value::from_json(&json).is_none());
        assert!(Value::from_json(&nest(serde_json::Value::Null)).is_some());
        let deep = (0..100_000).fold(Value::Null, |v, _| Value::Array(vec![v]));
        assert!(to_json(&deep, 1000).is_none());
        // Take the deep value apart iteratively so dropping it is safe too.
        let mut cur = deep;
        while let Value::Array(mut items) = cur {
            cur = items.pop().unwrap_or_default();
        }
    }
}
