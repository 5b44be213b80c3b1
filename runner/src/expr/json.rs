//! `fromJSON`'s reader: JSON text straight into a [`Value`], keeping object
//! keys in the order they were written.
//!
//! Going through `serde_json::Value` would sort the keys (its map is a
//! `BTreeMap` unless serde_json's `preserve_order` feature is on, and turning
//! that on would change the key order of every `serde_json::Value` in the
//! workspace: reports, the journal, plugin metadata). Reading with our own
//! visitor keeps the change inside the expression language. Nesting is
//! bounded by [`MAX_JSON_DEPTH`], so hostile text cannot overflow the stack.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::value::{MAX_JSON_DEPTH, Map, Value};

/// Parses `text` as one JSON value. Duplicate keys keep the position of
/// their first occurrence and the value of their last, as Newtonsoft.Json
/// (GitHub's parser) does when it fills a `JObject`.
pub(crate) fn parse_json(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Depth(0).deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Builds a [`Value`] at nesting level `.0`.
#[derive(Clone, Copy)]
struct Depth(usize);

impl<'de> DeserializeSeed<'de> for Depth {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Depth {
    /// The seed for the items of a container at this level.
    fn inner<E: de::Error>(self) -> Result<Depth, E> {
        if self.0 >= MAX_JSON_DEPTH {
            return Err(E::custom(format!(
                "JSON is nested too deeply (limit {MAX_JSON_DEPTH})"
            )));
        }
        Ok(Depth(self.0 + 1))
    }
}

impl<'de> Visitor<'de> for Depth {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    // Every number is a 64-bit float in the language; integers beyond 2^53
    // round, as they do in GitHub.
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        match v {
            Value::Object(m) => m.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn objects_keep_written_order() {
        let v = parse_json(r#"{"zeta": 1, "alpha": {"y": 2, "b": 3}, "Mid": null}"#).unwrap();
        assert_eq!(keys(&v), ["zeta", "alpha", "Mid"]);
        let Value::Object(m) = &v else { panic!() };
        assert_eq!(keys(&m["alpha"]), ["y", "b"]);
        // A repeated key stays where it first appeared and takes the last value.
        let v = parse_json(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(keys(&v), ["b", "a"]);
        assert_eq!(
            v,
            Value::Object(Map::from([
                ("b".into(), Value::Number(3.0)),
                ("a".into(), Value::Number(2.0))
            ]))
        );
    }

    #[test]
    fn numbers_and_errors() {
        assert_eq!(parse_json(" 12 "), Ok(Value::Number(12.0)));
        assert_eq!(parse_json("-1.5e2"), Ok(Value::Number(-150.0)));
        assert!(parse_json("[1,]").is_err());
        assert!(parse_json("{} x").is_err());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        // serde_json's own recursion limit (128) may answer first.
        let err = parse_json(&deep).unwrap_err();
        assert!(
            err.contains("nested too deeply") || err.contains("recursion limit"),
            "{err}"
        );
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_json(&ok).is_ok());
    }
}
