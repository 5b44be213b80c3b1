//! Runtime values and the coercion rules GitHub Actions applies to them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// JSON nesting accepted when converting `serde_json` data into a [`Value`].
pub const MAX_JSON_DEPTH: usize = 128;

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
    /// An object; keys keep their original case, lookups ignore it.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// Coerces the value to the text GitHub substitutes for `${{ }}`:
    /// null → `""`, booleans → `true`/`false`, integral numbers without a
    /// fractional part, arrays and objects → pretty JSON (2-space indent).
    pub fn to_output_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) | Value::Object(_) => to_json(self, usize::MAX).unwrap_or_default(),
        }
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
    /// null → 0, booleans → 0/1, `""` → 0, numeric strings (surrounding
    /// whitespace ignored, hex allowed) parsed, anything else → NaN.
    pub fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) if s.trim().is_empty() => 0.0,
            Value::String(s) => parse_numeric(s.trim()).unwrap_or(f64::NAN),
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
/// Formats a number the way it appears in output: no `.0` on integers,
/// `-0` as `0`, and the .NET spellings for non-finite values.
pub(crate) fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if n == 0.0 {
        "0".into()
    } else {
        // Rust's Display already omits the fraction of integral floats.
        n.to_string()
    }
}

/// Parses trimmed, non-empty numeric text: optional sign, then hex (`0x..`),
/// `Infinity`, or a decimal with optional fraction and exponent.
pub(crate) fn parse_numeric(t: &str) -> Option<f64> {
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, t.get(1..)?),
        Some(b'+') => (1.0, t.get(1..)?),
        _ => (1.0, t),
    };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // Accumulate in f64 so long hex strings lose precision, not validity.
        let v = hex.bytes().fold(0.0_f64, |acc, b| {
            acc * 16.0 + f64::from(char::from(b).to_digit(16).unwrap_or(0))
        });
        return Some(sign * v);
    }
    if body == "Infinity" {
        return Some(sign * f64::INFINITY);
    }
    // Restricting the alphabet keeps Rust's `inf`/`nan` spellings out.
    let numeric = |c: char| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-');
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') || !body.chars().all(numeric) {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

/// Upper-cases for comparisons; GitHub compares strings ordinally ignoring case.
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_uppercase).collect()
}

/// Case-insensitive string equality.
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    a == b
        || a.chars()
            .flat_map(char::to_uppercase)
            .eq(b.chars().flat_map(char::to_uppercase))
}

/// Object lookup as GitHub does it: exact key first, then ignoring case.
pub(crate) fn get_ignore_case<'m>(
    map: &'m BTreeMap<String, Value>,
    key: &str,
) -> Option<&'m Value> {
    let loose = || map.iter().find(|(k, _)| fold_eq(k, key)).map(|(_, v)| v);
    map.get(key).or_else(loose)
}

/// GitHub's loose `==`. Arrays and objects are equal in GitHub only when
/// they are the same instance; values here carry no identity, so two
/// arrays/objects are never equal (not even to themselves).
pub(crate) fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x == y,
        (Value::String(x), Value::String(y)) => fold_eq(x, y),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        _ => a.to_number() == b.to_number(),
    }
}

/// GitHub's ordering for `<`, `<=`, `>`, `>=`; `None` (so every comparison
/// is false) when a NaN or an array/object is involved.
pub(crate) fn loose_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(fold(x).cmp(&fold(y))),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => None,
        _ => a.to_number().partial_cmp(&b.to_number()),
    }
}

/// Pretty JSON (2-space indent) as GitHub's `toJSON` prints it, or `None` once
/// the text would exceed `limit` bytes. Iterative so caller-built values of
/// any depth cannot overflow the stack.
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
                Value::String(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
                other => out.push_str(&other.to_output_string()),
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
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
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
        let nested = Value::Object(BTreeMap::from([("n".into(), Value::Null)]));
        let obj = Value::Object(BTreeMap::from([
            ("k".into(), nested),
            ("z".into(), false.into()),
        ]));
        let arr = Value::Array(vec![n(1.0), "a\"b".into(), Value::Array(vec![])]);
        let cases = [
            (Value::Null, ""),
            (true.into(), "true"),
            (n(3.0), "3"),
            (n(-0.0), "0"),
            (n(1.5), "1.5"),
            (n(1e21), "1000000000000000000000"),
            (n(f64::NAN), "NaN"),
            (n(f64::NEG_INFINITY), "-Infinity"),
            (arr, "[\n  1,\n  \"a\\\"b\",\n  []\n]"),
            (
                obj,
                "{\n  \"k\": {\n    \"n\": null\n  },\n  \"z\": false\n}",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(v.to_output_string(), want, "{v:?}");
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
        assert!(Value::Object(BTreeMap::new()).is_truthy());
    }

    #[test]
    fn numbers_from_values() {
        let cases = [
            (Value::Null, 0.0),
            (true.into(), 1.0),
            ("".into(), 0.0),
            (" 42\n".into(), 42.0),
        ];
        let more = [
            ("0xFF".into(), 255.0),
            ("-1.5e2".into(), -150.0),
            ("+.5".into(), 0.5),
        ];
        for (v, want) in cases.into_iter().chain(more) {
            assert_eq!(v.to_number(), want, "{v:?}");
        }
        let nan = ["abc", "inf", "NaN", "1 2", "0x", "1e", "--1"].map(Value::from);
        assert!(
            nan.iter()
                .chain([&Value::Array(vec![])])
                .all(|v| v.to_number().is_nan())
        );
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
