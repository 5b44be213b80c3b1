//! The template language: `{{ name }}` is replaced by the variable's value.
//!
//! - Names are letters, digits, `_` and `-`; a dotted name (`app.version`)
//!   looks inside JSON objects (and arrays, by index).
//! - Blanks inside the braces are ignored: `{{name}}` = `{{  name  }}`.
//! - `\{{` writes a literal `{{`.
//! - Strings are inserted as they are; numbers, booleans and `null` as their
//!   JSON text; objects and arrays as compact JSON.

use serde_json::{Map, Value};

/// How values are escaped when inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are.
    None,
    /// `&`, `<`, `>`, `"` and `'` as HTML entities.
    Html,
}

/// A problem in a template, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// Variables from the `vars` input: a JSON object, or `name=value` lines
/// (blank lines and lines starting with `#` skipped).
pub fn parse_vars(text: &str) -> Result<Map<String, Value>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return match serde_json::from_str(trimmed) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err("`vars` must be a JSON object".into()),
            Err(e) => Err(format!("`vars` is not valid JSON: {e}")),
        };
    }
    let mut map = Map::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("`vars` line {}: expected `name=value`", number + 1))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(format!("`vars` line {}: invalid name `{name}`", number + 1));
        }
        map.insert(name.to_owned(), Value::String(value.trim().to_owned()));
    }
    Ok(map)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
}

/// Fills `template`. With `strict`, an undefined variable is an error;
/// otherwise it becomes empty and is listed in the second value returned.
pub fn render(
    template: &str,
    vars: &Map<String, Value>,
    escape: Escape,
    strict: bool,
) -> Result<(String, Vec<String>), TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut missing = Vec::new();
    let mut rest = template;
    let position = |rest: &str| {
        let done = &template[..template.len() - rest.len()];
        let line = done.matches('\n').count() as u32 + 1;
        let col = done.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
        (line, col)
    };
    while let Some(at) = rest.find("{{") {
        if rest[..at].ends_with('\\') {
            out.push_str(&rest[..at - 1]);
            out.push_str("{{");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let (line, col) = position(&rest[at..]);
        let error = |message: String| TemplateError { line, col, message };
        let body = &rest[at + 2..];
        let end = body
            .find("}}")
            .ok_or_else(|| error("`{{` is never closed with `}}`".into()))?;
        let name = body[..end].trim();
        if name.is_empty() || !name.split('.').all(valid_name) {
            return Err(error(format!("`{{{{ {name} }}}}` is not a variable name")));
        }
        match lookup(vars, name) {
            Some(value) => out.push_str(&escaped(&text_of(value), escape)),
            None if strict => {
                let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
                known.sort_unstable();
                let known = if known.is_empty() {
                    "no variables are defined".to_owned()
                } else {
                    format!("defined: {}", known.join(", "))
                };
                return Err(error(format!("undefined variable `{name}` ({known})")));
            }
            None => missing.push(name.to_owned()),
        }
        rest = &body[end + 2..];
    }
    out.push_str(rest);
    Ok((out, missing))
}

fn lookup<'a>(vars: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut parts = name.split('.');
    let mut value = vars.get(parts.next()?)?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn escaped(text: &str, escape: Escape) -> String {
    match escape {
        Escape::None => text.to_owned(),
        Escape::Html => {
            let mut out = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn ok(template: &str, v: Value) -> String {
        render(template, &vars(v), Escape::None, true).unwrap().0
    }

    #[test]
    fn fills_names_with_or_without_blanks() {
        let v = json!({"title": "Demo", "n": 3, "ok": true, "site-name": "x"});
        assert_eq!(
            ok("<h1>{{ title }}</h1>{{n}}/{{  ok }} {{site-name}}", v),
            "<h1>Demo</h1>3/true x"
        );
    }

    #[test]
    fn dotted_names_look_inside_json() {
        let v = json!({"app": {"version": "1.2", "hosts": ["a", "b"]}});
        assert_eq!(
            ok("{{ app.version }} {{ app.hosts.1 }}", v.clone()),
            "1.2 b"
        );
        assert_eq!(ok("{{ app.hosts }}", v), r#"["a","b"]"#);
    }

    #[test]
    fn literal_braces_and_single_braces() {
        assert_eq!(
            ok(r"\{{ not a var }} { x } }}", json!({})),
            "{{ not a var }} { x } }}"
        );
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = render(
            "a\nb {{ nope }}",
            &vars(json!({"yes": 1})),
            Escape::None,
            true,
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        assert_eq!(e.message, "undefined variable `nope` (defined: yes)");
        let e = render("x {{ open", &Map::new(), Escape::None, true).unwrap_err();
        assert!(e.message.contains("never closed"));
        let e = render("{{ a b }}", &Map::new(), Escape::None, true).unwrap_err();
        assert!(e.message.contains("not a variable name"));
    }

    #[test]
    fn lenient_mode_lists_missing_names() {
        let (text, missing) = render(
            "[{{ a }}][{{ b }}]",
            &vars(json!({"a": "1"})),
            Escape::None,
            false,
        )
        .unwrap();
        assert_eq!(text, "[1][]");
        assert_eq!(missing, ["b"]);
    }

    #[test]
    fn html_escaping() {
        let v = vars(json!({"x": "<a href=\"q\">'&'</a>"}));
        let (text, _) = render("{{x}}", &v, Escape::Html, true).unwrap();
        assert_eq!(
            text,
            "&lt;a href=&quot;q&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn vars_as_lines_or_json() {
        let lines = parse_vars("# comment\ntitle = My site\n\nurl=https://x/?a=b\n").unwrap();
        assert_eq!(lines["title"], "My site");
        assert_eq!(lines["url"], "https://x/?a=b");
        let object = parse_vars(r#" {"n": 2}"#).unwrap();
        assert_eq!(object["n"], 2);
        assert!(parse_vars("no equals sign").unwrap_err().contains("line 1"));
        assert!(parse_vars("[1]").is_err());
        assert!(parse_vars("bad name=1").is_err());
    }

    #[test]
    fn multibyte_text_keeps_columns_in_characters() {
        let e = render("é {{ x }}", &Map::new(), Escape::None, true).unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
    }
}
