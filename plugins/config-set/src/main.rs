//! `config-set`: sets a value at a dotted path in a YAML or JSON file —
//! bumping an image tag, say — and can put the file back in the rollback
//! phase. See README.md.
//!
//! YAML files are edited as text: only the bytes of the one scalar change,
//! so comments, quoting and layout survive (see `yaml.rs` for what is
//! supported). JSON files are parsed and written back with their key order
//! and indentation width.

mod yaml;

use std::fs;

use gantry_sdk::{Context, Error, Result, ResultExt, Step, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};

gantry_sdk::metadata!(include_str!("../gantry-step.json"));
gantry_sdk::main!(ConfigSet);

/// The step.
struct ConfigSet;

/// What the edit asks for, from the inputs.
struct Request {
    path: Vec<String>,
    value: Value,
    create: bool,
}

impl Step for ConfigSet {
    fn run(&mut self, ctx: &Context) -> Result<()> {
        let file: String = ctx.input("file")?;
        let request = request(ctx)?;
        let location = ctx.workspace_path(&file);
        let original = fs::read_to_string(&location)
            .with_context(|| format!("cannot read `{}`", location.display()))?;
        let format: String = ctx.input_or("format", "auto".to_owned())?;
        let is_json = match format.as_str() {
            "json" => true,
            "yaml" => false,
            "auto" => file.ends_with(".json"),
            other => bail!("input `format`: expected yaml, json or auto, found `{other}`"),
        };
        let (text, previous) = if is_json {
            set_json(&original, &request)
        } else {
            set_yaml(&original, &request)
        }
        .map_err(|e| Error::new(e).file(file.clone()))?;

        let changed = text != original;
        if changed {
            // Saved before writing, so a rollback can always undo the write.
            ctx.save_state("file", location.display().to_string())?;
            ctx.save_state("original", serde_json::to_string(&original)?)?;
            ctx.save_state("written", sha256(&text))?;
            fs::write(&location, &text)
                .with_context(|| format!("cannot write `{}`", location.display()))?;
        }
        let shown = match &previous {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        println!(
            "{file}: {} = {} (was {})",
            request.path.join("."),
            match &request.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            if previous.is_some() {
                shown.as_str()
            } else {
                "missing"
            }
        );
        ctx.set_output("previous", &shown)?;
        ctx.set_output("changed", changed.to_string())?;
        Ok(())
    }

    /// Puts the file back as it was, unless someone changed it since.
    fn rollback(&mut self, ctx: &Context) -> Result<()> {
        let (Some(file), Some(original), Some(written)) = (
            ctx.state("file"),
            ctx.state("original"),
            ctx.state("written"),
        ) else {
            println!("nothing to undo: the file was not changed");
            return Ok(());
        };
        let original: String = serde_json::from_str(original)?;
        let current = fs::read_to_string(file).with_context(|| format!("cannot read `{file}`"))?;
        if current == original {
            println!("`{file}` is already as it was");
            return Ok(());
        }
        if sha256(&current) != written {
            bail!("`{file}` changed after this step wrote it; not restoring it");
        }
        fs::write(file, original).with_context(|| format!("cannot restore `{file}`"))?;
        println!("restored `{file}`");
        Ok(())
    }
}

fn request(ctx: &Context) -> Result<Request> {
    let path: String = ctx.input("path")?;
    let path: Vec<String> = path.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        bail!("input `path`: `{}` has an empty segment", path.join("."));
    }
    // An empty `value` is a legitimate empty string, so read it raw.
    let raw = ctx
        .var(&gantry_sdk::input::input_variable("value"))
        .ok_or_else(|| Error::new("input `value` is required (it may be empty)"))?;
    let kind: String = ctx.input_or("type", "string".to_owned())?;
    let value = typed_value(raw, &kind).map_err(|e| Error::new(format!("input `value`: {e}")))?;
    Ok(Request {
        path,
        value,
        create: ctx.input_or("create", false)?,
    })
}

/// The value to write, as the `type` input says. Strings are the default:
/// a tag like `1.10` must not become the number 1.1.
fn typed_value(raw: &str, kind: &str) -> std::result::Result<Value, String> {
    match kind {
        "string" => Ok(Value::String(raw.to_owned())),
        "number" => match serde_json::from_str::<Value>(raw.trim()) {
            Ok(n @ Value::Number(_)) => Ok(n),
            _ => Err(format!("`{raw}` is not a number")),
        },
        "boolean" => match raw.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not `true` or `false`")),
        },
        "null" => Ok(Value::Null),
        "json" => serde_json::from_str(raw).map_err(|e| format!("not valid JSON: {e}")),
        other => Err(format!(
            "unknown type `{other}` (string, number, boolean, null or json)"
        )),
    }
}

/// Sets the value in a parsed document; `Ok(previous)`.
fn set_in(
    doc: &mut Value,
    path: &[String],
    value: Value,
    create: bool,
) -> std::result::Result<Option<Value>, String> {
    let mut node = doc;
    for (depth, segment) in path.iter().enumerate() {
        let shown = path[..=depth].join(".");
        let last = depth + 1 == path.len();
        node = match node {
            Value::Object(map) => {
                if last {
                    if !map.contains_key(segment) && !create {
                        return Err(format!(
                            "`{shown}` does not exist (set `create: true` to add it)"
                        ));
                    }
                    return Ok(map.insert(segment.clone(), value));
                }
                map.get_mut(segment)
                    .ok_or_else(|| format!("`{shown}` does not exist"))?
            }
            Value::Array(items) => {
                let index: usize = segment
                    .parse()
                    .map_err(|_| format!("`{shown}`: the parent is a list; expected an index"))?;
                let slot = items
                    .get_mut(index)
                    .ok_or_else(|| format!("`{shown}`: the list is shorter"))?;
                if last {
                    return Ok(Some(std::mem::replace(slot, value)));
                }
                slot
            }
            _ => return Err(format!("`{shown}`: the parent is not a mapping or a list")),
        };
    }
    Err("the path is empty".into())
}

/// JSON: parse, set, write back with the file's indentation and final newline.
fn set_json(
    original: &str,
    request: &Request,
) -> std::result::Result<(String, Option<Value>), String> {
    let mut doc: Value =
        serde_json::from_str(original).map_err(|e| format!("not valid JSON: {e}"))?;
    let previous = set_in(
        &mut doc,
        &request.path,
        request.value.clone(),
        request.create,
    )?;
    let indent = original
        .lines()
        .nth(1)
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .filter(|i| !i.is_empty())
        .unwrap_or("  ");
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&doc, &mut serializer).map_err(|e| e.to_string())?;
    let mut text = String::from_utf8(out).map_err(|e| e.to_string())?;
    if original.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, previous))
}

/// YAML: edit the text in place, then check by parsing both versions that
/// exactly the one value changed.
fn set_yaml(
    original: &str,
    request: &Request,
) -> std::result::Result<(String, Option<Value>), String> {
    let mut expected: Value =
        serde_saphyr::from_str(original).map_err(|e| format!("not valid YAML: {e}"))?;
    let previous = set_in(
        &mut expected,
        &request.path,
        request.value.clone(),
        request.create,
    )?;
    let old_text = {
        // Quoting follows the old scalar's style where the value allows it.
        let probe = yaml::set(original, &request.path, "0", request.create)?;
        probe.previous
    };
    let new = yaml_scalar(&request.value, old_text.as_deref());
    let edit = yaml::set(original, &request.path, &new, request.create)?;
    let got: Value = serde_saphyr::from_str(&edit.text)
        .map_err(|e| format!("the edit made the YAML invalid ({e}); file left alone"))?;
    if got != expected {
        return Err("the edit would change more than the one value; file left alone".into());
    }
    Ok((edit.text, previous))
}

/// The YAML text for a value, in the style of the scalar it replaces.
fn yaml_scalar(value: &Value, old: Option<&str>) -> String {
    match value {
        Value::String(s) => match old.and_then(|o| o.chars().next()) {
            Some('\'') if !s.contains(['\n', '\r']) && s.chars().all(|c| !c.is_control()) => {
                format!("'{}'", s.replace('\'', "''"))
            }
            Some('"') => double_quoted(s),
            _ if plain_string_ok(s) => s.clone(),
            _ => double_quoted(s),
        },
        // JSON numbers, booleans, null and flow collections are valid YAML.
        other => other.to_string(),
    }
}

/// Whether `s` can be written unquoted and still read back as this string,
/// by YAML 1.2 and 1.1 readers alike.
pub(crate) fn plain_string_ok(s: &str) -> bool {
    const YAML11_WORDS: [&str; 8] = ["y", "n", "yes", "no", "on", "off", "true", "false"];
    if s.is_empty()
        || s != s.trim()
        || s.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%',
            '@', '`',
        ])
        || s.contains([',', '[', ']', '{', '}'])
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.chars().any(char::is_control)
        || YAML11_WORDS.contains(&s.to_ascii_lowercase().as_str())
    {
        return false;
    }
    let probe = format!("k: {s}\n");
    matches!(serde_saphyr::from_str::<Value>(&probe), Ok(Value::Object(map)) if map.get("k") == Some(&Value::String(s.to_owned())))
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
pub(crate) fn double_quoted(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::meta::Metadata;

    fn req(path: &str, value: Value) -> Request {
        Request {
            path: path.split('.').map(str::to_owned).collect(),
            value,
            create: false,
        }
    }

    const VALUES: &str = "\
# Helm values for web.
image:
  repository: registry.example/web
  tag: \"1.4.1\"   # bumped by the pipeline
replicas: 2
env:
  - name: MODE
    value: production
";

    #[test]
    fn yaml_bump_keeps_comments_and_quotes() {
        let (text, previous) =
            set_yaml(VALUES, &req("image.tag", Value::String("1.10".into()))).unwrap();
        assert_eq!(text, VALUES.replace("\"1.4.1\"", "\"1.10\""));
        assert_eq!(previous, Some(Value::String("1.4.1".into())));
    }

    #[test]
    fn yaml_plain_strings_stay_plain_when_safe() {
        let (text, _) =
            set_yaml(VALUES, &req("env.0.value", Value::String("staging".into()))).unwrap();
        assert_eq!(text, VALUES.replace("value: production", "value: staging"));
        // A string that would read back as a number gets quoted.
        let (text, _) =
            set_yaml(VALUES, &req("env.0.value", Value::String("1.10".into()))).unwrap();
        assert_eq!(text, VALUES.replace("value: production", "value: \"1.10\""));
        let (text, _) = set_yaml(VALUES, &req("env.0.value", Value::String("yes".into()))).unwrap();
        assert!(text.contains("value: \"yes\""));
    }

    #[test]
    fn yaml_typed_values() {
        let (text, previous) = set_yaml(VALUES, &req("replicas", serde_json::json!(5))).unwrap();
        assert_eq!(text, VALUES.replace("replicas: 2", "replicas: 5"));
        assert_eq!(previous, Some(serde_json::json!(2)));
        let (text, _) = set_yaml(VALUES, &req("replicas", serde_json::json!({"min": 1}))).unwrap();
        assert!(text.contains("replicas: {\"min\":1}\n"));
    }

    #[test]
    fn yaml_errors_leave_the_file_alone() {
        assert!(
            set_yaml(VALUES, &req("image.missing", Value::Null))
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            set_yaml("a: [1\n", &req("a", Value::Null))
                .unwrap_err()
                .contains("not valid YAML")
        );
    }

    #[test]
    fn json_keeps_order_and_indent() {
        let original = "{\n    \"b\": 1,\n    \"a\": {\"tag\": \"v1\"}\n}\n";
        let (text, previous) =
            set_json(original, &req("a.tag", Value::String("v2".into()))).unwrap();
        assert_eq!(
            text,
            "{\n    \"b\": 1,\n    \"a\": {\n        \"tag\": \"v2\"\n    }\n}\n"
        );
        assert_eq!(previous, Some(Value::String("v1".into())));
        let list = "[1, 2]";
        assert_eq!(
            set_json(list, &req("1", serde_json::json!(3))).unwrap().0,
            "[\n  1,\n  3\n]"
        );
        assert!(set_json(list, &req("5", Value::Null)).is_err());
        let mut create = req("c", Value::Bool(true));
        create.create = true;
        assert!(
            set_json(original, &create)
                .unwrap()
                .0
                .contains("\"c\": true")
        );
    }

    #[test]
    fn typed_values_from_inputs() {
        assert_eq!(
            typed_value("1.10", "string").unwrap(),
            Value::String("1.10".into())
        );
        assert_eq!(typed_value(" 3 ", "number").unwrap(), serde_json::json!(3));
        assert!(typed_value("x", "number").is_err());
        assert_eq!(typed_value("false", "boolean").unwrap(), Value::Bool(false));
        assert_eq!(typed_value("[1]", "json").unwrap(), serde_json::json!([1]));
        assert!(typed_value("1", "int").is_err());
    }

    fn context(dir: &std::path::Path, extra: &[(&str, &str)]) -> Context {
        let path = |p: &str| dir.join(p).to_str().unwrap().to_owned();
        let mut vars = vec![
            ("GANTRY_WORKSPACE".to_owned(), path("ws")),
            ("GANTRY_OUTPUT".to_owned(), path("output")),
            ("GANTRY_STATE".to_owned(), path("state")),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Context::from_vars(vars)
    }

    /// The `STATE_*` variables a rollback would get from the state file.
    fn state_vars(dir: &std::path::Path) -> Vec<(String, String)> {
        let text = fs::read_to_string(dir.join("state")).unwrap();
        let mut out = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some((name, delimiter)) = line.split_once("<<") {
                let body: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
                out.push((format!("STATE_{name}"), body.join("\n")));
            } else if let Some((name, value)) = line.split_once('=') {
                out.push((format!("STATE_{name}"), value.to_owned()));
            }
        }
        out
    }

    #[test]
    fn run_then_rollback_restores_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("ws")).unwrap();
        let file = dir.path().join("ws/values.yaml");
        fs::write(&file, VALUES).unwrap();
        let inputs = [
            ("INPUT_FILE", "values.yaml"),
            ("INPUT_PATH", "image.tag"),
            ("INPUT_VALUE", "1.5.0"),
        ];
        ConfigSet.run(&context(dir.path(), &inputs)).unwrap();
        assert!(
            fs::read_to_string(&file)
                .unwrap()
                .contains("tag: \"1.5.0\"   #")
        );
        let outputs = fs::read_to_string(dir.path().join("output")).unwrap();
        assert_eq!(outputs, "previous=1.4.1\nchanged=true\n");

        let mut vars: Vec<(String, String)> = state_vars(dir.path());
        vars.push(("GANTRY_PHASE".into(), "rollback".into()));
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        gantry_sdk::step::dispatch(&mut ConfigSet, &context(dir.path(), &refs)).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), VALUES);
    }

    #[test]
    fn rollback_refuses_to_clobber_later_changes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("ws")).unwrap();
        let file = dir.path().join("ws/c.json");
        fs::write(&file, "{\"v\": 1}").unwrap();
        let inputs = [
            ("INPUT_FILE", "c.json"),
            ("INPUT_PATH", "v"),
            ("INPUT_VALUE", "2"),
            ("INPUT_TYPE", "number"),
        ];
        ConfigSet.run(&context(dir.path(), &inputs)).unwrap();
        fs::write(&file, "{\"v\": 99}").unwrap();
        let mut vars = state_vars(dir.path());
        vars.push(("GANTRY_PHASE".into(), "rollback".into()));
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let e =
            gantry_sdk::step::dispatch(&mut ConfigSet, &context(dir.path(), &refs)).unwrap_err();
        assert!(e.message().contains("changed after this step"));
    }

    #[test]
    fn metadata_is_valid() {
        let meta = Metadata::from_bytes(&GANTRY_STEP_METADATA).unwrap();
        assert_eq!(meta.name, "config-set");
        assert!(meta.rollback);
    }
}
