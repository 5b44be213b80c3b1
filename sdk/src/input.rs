//! Typed inputs: how the text of an `INPUT_*` variable becomes a value.
//!
//! | type | accepted text |
//! | --- | --- |
//! | `String`, `PathBuf` | anything, as is |
//! | integers (`u8`…`u128`, `i8`…`i128`, `usize`, `isize`) | decimal, surrounding blanks ignored |
//! | `f32`, `f64` | decimal or exponent notation |
//! | `bool` | `true` / `false` (also `True`, `TRUE`, `False`, `FALSE`) |
//! | `Vec<T>` | a list: see [`split_list`] |
//! | [`Json<T>`], `serde_json::Value` | a JSON document |
//! | `Option<T>` | as `T` (use it inside lists or with [`input_or`](crate::Context::input_or)) |
//!
//! Implement [`FromInput`] for your own types to read them the same way.

use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// The variable that carries `with:` key `name`: `INPUT_` followed by the
/// name upper-cased, with `-` and spaces turned into `_` (the runner's own
/// rule, from `gantry-abi`).
///
/// ```
/// use gantry_sdk::input::input_variable;
/// assert_eq!(input_variable("image-tag"), "INPUT_IMAGE_TAG");
/// assert_eq!(input_variable("two words"), "INPUT_TWO_WORDS");
/// ```
pub use gantry_abi::inputs::input_variable;

/// A type that can be read from the text of an input.
///
/// The error is a sentence saying what was expected; the SDK prefixes it
/// with the input's name.
///
/// ```
/// use gantry_sdk::FromInput;
///
/// #[derive(Debug, PartialEq)]
/// enum Strategy { Rolling, Recreate }
///
/// impl FromInput for Strategy {
///     fn from_input(text: &str) -> Result<Self, String> {
///         match text.trim() {
///             "rolling" => Ok(Strategy::Rolling),
///             "recreate" => Ok(Strategy::Recreate),
///             other => Err(format!("expected `rolling` or `recreate`, found `{other}`")),
///         }
///     }
/// }
///
/// assert_eq!(Strategy::from_input("rolling"), Ok(Strategy::Rolling));
/// ```
pub trait FromInput: Sized {
    /// Parses the text of an input.
    fn from_input(text: &str) -> Result<Self, String>;
}

impl FromInput for String {
    fn from_input(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl FromInput for PathBuf {
    fn from_input(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

impl FromInput for bool {
    fn from_input(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "True" | "TRUE" => Ok(true),
            "false" | "False" | "FALSE" => Ok(false),
            other => Err(format!("expected `true` or `false`, found `{other}`")),
        }
    }
}

macro_rules! parse_with_fromstr {
    ($what:literal: $($ty:ty),*) => {$(
        impl FromInput for $ty {
            fn from_input(text: &str) -> Result<Self, String> {
                let text = text.trim();
                text.parse::<$ty>().map_err(|e| {
                    format!("expected {} ({}), found `{text}`: {e}", $what, stringify!($ty))
                })
            }
        }
    )*};
}

parse_with_fromstr!("an integer": u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);
parse_with_fromstr!("a number": f32, f64);

impl<T: FromInput> FromInput for Option<T> {
    fn from_input(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            T::from_input(text).map(Some)
        }
    }
}

impl<T: FromInput> FromInput for Vec<T> {
    fn from_input(text: &str) -> Result<Self, String> {
        split_list(text)
            .enumerate()
            .map(|(i, item)| T::from_input(item).map_err(|e| format!("item {}: {e}", i + 1)))
            .collect()
    }
}

impl FromInput for serde_json::Value {
    fn from_input(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("expected JSON: {e}"))
    }
}

/// Splits a list input into its items, trimmed, empty ones dropped.
///
/// Text with a line break is one item per line, so items may contain
/// commas; text on one line is split at commas.
///
/// ```
/// use gantry_sdk::input::split_list;
/// let one_line: Vec<&str> = split_list(" a, b ,,c ").collect();
/// assert_eq!(one_line, ["a", "b", "c"]);
/// let lines: Vec<&str> = split_list("x, y\n\n z\n").collect();
/// assert_eq!(lines, ["x, y", "z"]);
/// ```
pub fn split_list(text: &str) -> impl Iterator<Item = &str> {
    let separator = if text.contains('\n') { '\n' } else { ',' };
    text.split(separator)
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// An input holding a JSON document, deserialized into `T` with serde.
///
/// ```
/// use gantry_sdk::{Context, Json};
/// use std::collections::BTreeMap;
///
/// let ctx = Context::from_vars([("INPUT_LABELS", r#"{"team": "web", "tier": "1"}"#)]);
/// let Json(labels): Json<BTreeMap<String, String>> = ctx.input("labels")?;
/// assert_eq!(labels["team"], "web");
/// # Ok::<(), gantry_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromInput for Json<T> {
    fn from_input(text: &str) -> Result<Self, String> {
        serde_json::from_str(text)
            .map(Json)
            .map_err(|e| format!("expected JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_floats() {
        assert_eq!(u8::from_input(" 42 "), Ok(42));
        assert_eq!(i64::from_input("-7"), Ok(-7));
        assert!(
            u8::from_input("256")
                .unwrap_err()
                .contains("expected an integer (u8)")
        );
        assert!(u32::from_input("1.5").is_err());
        assert_eq!(f64::from_input("2.5e3"), Ok(2500.0));
        assert!(
            f32::from_input("fast")
                .unwrap_err()
                .starts_with("expected a number")
        );
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(bool::from_input("true"), Ok(true));
        assert_eq!(bool::from_input("FALSE"), Ok(false));
        for bad in ["yes", "1", "on", "tRuE", ""] {
            assert!(bool::from_input(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_of_typed_items() {
        assert_eq!(Vec::<u16>::from_input("80, 443"), Ok(vec![80, 443]));
        assert_eq!(Vec::<String>::from_input(""), Ok(vec![]));
        let e = Vec::<u16>::from_input("80\nhttp").unwrap_err();
        assert!(e.starts_with("item 2: "), "{e}");
        let crlf = Vec::<String>::from_input("a,1\r\nb,2\r\n").unwrap();
        assert_eq!(crlf, ["a,1", "b,2"]);
    }

    #[test]
    fn json_inputs() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Target {
            host: String,
            port: u16,
        }
        let Json(t) = Json::<Target>::from_input(r#"{"host":"a","port":22}"#).unwrap();
        assert_eq!(
            t,
            Target {
                host: "a".into(),
                port: 22
            }
        );
        assert!(
            Json::<Target>::from_input("{")
                .unwrap_err()
                .starts_with("expected JSON")
        );
        let v = serde_json::Value::from_input("[1,2]").unwrap();
        assert_eq!(v, serde_json::json!([1, 2]));
    }

    #[test]
    fn optional_items() {
        assert_eq!(Option::<u8>::from_input(" "), Ok(None));
        assert_eq!(Option::<u8>::from_input("3"), Ok(Some(3)));
    }

    #[test]
    fn variable_names_match_the_runner() {
        assert_eq!(input_variable("who"), "INPUT_WHO");
        assert_eq!(input_variable("dry-run"), "INPUT_DRY_RUN");
        assert_eq!(input_variable("Mixed Case-x"), "INPUT_MIXED_CASE_X");
    }
}
