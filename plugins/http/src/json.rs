//! `output-json`: one field of a JSON response body, picked by a small path
//! (`.id`, `data.version`, `items[0].name`, `items.0.name`), as the text an
//! output holds.
//!
//! The path language is deliberately tiny, jq's simplest form: keys
//! separated by dots, array indexes in brackets or as a numeric key. A key
//! holding a `.` or `[` cannot be named.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path; empty (`.`) is the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    segments: Vec<Segment>,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let trimmed = text.trim();
        let body = trimmed.strip_prefix('.').unwrap_or(trimmed);
        let mut segments = Vec::new();
        if !body.is_empty() {
            for part in body.split('.') {
                let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
                if key.is_empty() && rest.is_empty() {
                    return Err(format!("`{trimmed}` has an empty key (`..`)"));
                }
                if !key.is_empty() {
                    segments.push(Segment::Key(key.to_owned()));
                }
                while !rest.is_empty() {
                    let index = rest
                        .strip_prefix('[')
                        .and_then(|r| r.split_once(']'))
                        .and_then(|(n, after)| Some((n.parse::<usize>().ok()?, after)));
                    let Some((index, after)) = index else {
                        return Err(format!(
                            "`{trimmed}`: expected `[N]` with N a number at `{rest}`"
                        ));
                    };
                    segments.push(Segment::Index(index));
                    rest = after;
                }
            }
        }
        Ok(Path {
            text: trimmed.to_owned(),
            segments,
        })
    }

    /// The value at this path in `document`.
    pub fn find<'a>(&self, document: &'a Value) -> Result<&'a Value, String> {
        let mut value = document;
        for (depth, segment) in self.segments.iter().enumerate() {
            let next = match (segment, value) {
                (Segment::Key(key), Value::Object(map)) => map.get(key),
                (Segment::Index(i), Value::Array(items)) => items.get(*i),
                // `items.0` reads as an index too.
                (Segment::Key(key), Value::Array(items)) => {
                    key.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            };
            value = next.ok_or_else(|| {
                let at = match segment {
                    Segment::Key(key) => format!("key `{key}`"),
                    Segment::Index(i) => format!("index {i}"),
                };
                format!(
                    "the response's JSON has no {at} at step {} of `{}` (found {} there)",
                    depth + 1,
                    self.text,
                    kind(value)
                )
            })?;
        }
        Ok(value)
    }
}

/// What kind of value `value` is, for messages (never the value: a
/// response may hold secrets).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value as an output: a string as it is, anything else as compact
/// JSON (`42`, `true`, `null`, `{"a":1}`).
pub fn as_output(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Parses `body` and picks `path` from it.
pub fn extract(body: &[u8], path: &Path) -> Result<String, String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| format!("the response body is not JSON ({e})"))?;
    path.find(&document).map(as_output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"id": 7, "data": {"version": "1.2.0", "ok": true, "none": null}, "items": [{"name": "a"}, {"name": "b"}]}"#;

    fn pick(path: &str) -> Result<String, String> {
        extract(BODY, &Path::parse(path)?)
    }

    #[test]
    fn paths_pick_fields_as_outputs() {
        assert_eq!(pick(".id").unwrap(), "7");
        assert_eq!(pick("data.version").unwrap(), "1.2.0");
        assert_eq!(pick(".data.ok").unwrap(), "true");
        assert_eq!(pick("data.none").unwrap(), "null");
        assert_eq!(pick("items[1].name").unwrap(), "b");
        assert_eq!(pick(".items.0.name").unwrap(), "a");
        assert_eq!(pick("items[0]").unwrap(), r#"{"name":"a"}"#);
        assert_eq!(
            extract(b"[[1,2],[3]]", &Path::parse("[1][0]").unwrap()).unwrap(),
            "3"
        );
        assert_eq!(
            extract(b"\"just text\"", &Path::parse(".").unwrap()).unwrap(),
            "just text"
        );
    }

    #[test]
    fn misses_say_where_without_quoting_values() {
        let error = pick("data.version.major").unwrap_err();
        assert!(error.contains("no key `major` at step 3"), "{error}");
        assert!(error.contains("found a string"), "{error}");
        assert!(!error.contains("1.2.0"), "{error}");
        assert!(pick("items[5]").unwrap_err().contains("no index 5"));
        assert!(pick("missing").unwrap_err().contains("no key `missing`"));
        let error = extract(b"<html>", &Path::parse(".id").unwrap()).unwrap_err();
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["a..b", "items[x]", "items[0", "a[0]b"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }
}
