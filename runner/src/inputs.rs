//! Pipeline inputs: the top-level `inputs:` a manifest declares, the way a
//! GitHub workflow's `workflow_dispatch` does, and the values `gantry run
//! --input NAME=VALUE` gives them.
//!
//! A declaration is checked when the plan is made (a mistake in it is a
//! manifest error with its file, line and column); the values given are
//! checked against the declarations before anything runs, and typed as
//! GitHub types them: a `boolean` input reads as a boolean in `${{ }}`, a
//! `number` as a number, everything else as a string. `type: environment`
//! is refused: gantry has no deployment environments to choose from, and
//! a `choice` with `options:` says the same thing explicitly.

use std::collections::BTreeMap;

use crate::expr::Value;
use crate::manifest::model::{InputType, Scalar};
use crate::manifest::{LoadedManifest, ManifestError, did_you_mean};

/// The type of a declared input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    String,
    Boolean,
    Number,
    Choice,
}

impl InputKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::String => "string",
            InputKind::Boolean => "boolean",
            InputKind::Number => "number",
            InputKind::Choice => "choice",
        }
    }
}

/// One declared input, checked.
#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: String,
    pub kind: InputKind,
    pub description: Option<String>,
    pub required: bool,
    /// The typed value used when none is given.
    pub default: Option<Value>,
    /// The values a `choice` may take, in the order written.
    pub options: Vec<String>,
}

impl InputDecl {
    /// The value an input has when it is not given and has no default:
    /// as on GitHub, an empty string, `false` or `0`.
    fn empty(&self) -> Value {
        match self.kind {
            InputKind::Boolean => Value::Bool(false),
            InputKind::Number => Value::Number(0.0),
            InputKind::String | InputKind::Choice => Value::String(String::new()),
        }
    }

    /// Types `text` as this input's value, or says what is wrong and how
    /// to give a valid one.
    fn parse(&self, text: &str) -> Result<Value, String> {
        let name = &self.name;
        match self.kind {
            InputKind::String => Ok(Value::String(text.to_owned())),
            InputKind::Boolean => parse_bool(text).map(Value::Bool).ok_or_else(|| {
                format!(
                    "input `{name}` is a boolean, and `{text}` is not one: give `--input {name}=true` or `--input {name}=false`"
                )
            }),
            InputKind::Number => parse_number(text).map(Value::Number).ok_or_else(|| {
                format!(
                    "input `{name}` is a number, and `{text}` is not one: give a number such as `--input {name}=3`"
                )
            }),
            InputKind::Choice if self.options.iter().any(|o| o == text) => {
                Ok(Value::String(text.to_owned()))
            }
            InputKind::Choice => Err(format!(
                "input `{name}` must be one of {}, not `{text}`",
                self.options_list()
            )),
        }
    }

    fn options_list(&self) -> String {
        self.options
            .iter()
            .map(|o| format!("`{o}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `true` or `false`, as GitHub accepts them (any case).
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A finite number in decimal (`3`, `-0.5`, `1e3`); `NaN` and infinities
/// are not numbers a person gives on purpose.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    text.parse::<f64>()
        .ok()
        .filter(|n| looks_numeric && n.is_finite())
}

/// Input names as GitHub allows them: a letter or `_` first, then letters,
/// digits, `-` and `_`.
fn is_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Checks the manifest's `inputs:` and returns them in the order written,
/// with an error for each mistake.
pub fn declarations(loaded: &LoadedManifest) -> (Vec<InputDecl>, Vec<ManifestError>) {
    let mut errors = Vec::new();
    let mut error = |location, message: String, hint: String| {
        errors.push(
            ManifestError::at(&loaded.path, &loaded.source, location, message).with_hint(hint),
        );
    };
    let mut declared: Vec<InputDecl> = Vec::new();
    for (name, spec) in &loaded.manifest.inputs {
        let at = name.referenced;
        let name = name.value.clone();
        if !is_input_name(&name) {
            error(
                at,
                format!("`{name}` is not a valid input name"),
                "use letters, digits, `-` and `_`, starting with a letter or `_`".into(),
            );
            continue;
        }
        // `${{ inputs.X }}` ignores case, so two names differing only in
        // case would read the same value.
        if let Some(other) = declared.iter().find(|d| d.name.eq_ignore_ascii_case(&name)) {
            error(
                at,
                format!("input `{name}` is declared twice (as `{}` too)", other.name),
                "input names ignore case; rename one of them".into(),
            );
            continue;
        }
        let kind = match spec.kind.as_ref().map(|k| (k.value, k.referenced)) {
            None | Some((InputType::String, _)) => InputKind::String,
            Some((InputType::Boolean, _)) => InputKind::Boolean,
            Some((InputType::Number, _)) => InputKind::Number,
            Some((InputType::Choice, _)) => InputKind::Choice,
            Some((InputType::Environment, location)) => {
                error(
                    location,
                    format!("input `{name}` has `type: environment`, which gantry does not support"),
                    "gantry has no deployment environments: use `type: choice` with the environments as `options:`".into(),
                );
                continue;
            }
        };
        let mut options = Vec::new();
        match (&spec.options, kind) {
            (Some(list), InputKind::Choice) => {
                for option in &list.value {
                    let text = option.value.to_string();
                    if options.contains(&text) {
                        error(
                            option.referenced,
                            format!("input `{name}` lists option `{text}` twice"),
                            "remove the repeated option".into(),
                        );
                    }
                    options.push(text);
                }
                if options.is_empty() {
                    error(
                        list.referenced,
                        format!("choice input `{name}` has no `options`"),
                        "list the values it may take, e.g. `options: [eu, us]`".into(),
                    );
                }
            }
            (None, InputKind::Choice) => error(
                at,
                format!("choice input `{name}` has no `options`"),
                "list the values it may take, e.g. `options: [eu, us]`".into(),
            ),
            (Some(list), _) => error(
                list.referenced,
                format!(
                    "input `{name}` is a {} and cannot have `options`",
                    kind.as_str()
                ),
                "`options` belong to `type: choice`".into(),
            ),
            (None, _) => {}
        }
        let mut decl = InputDecl {
            name: name.clone(),
            kind,
            description: spec.description.as_ref().map(|d| d.value.clone()),
            required: spec.required.as_ref().is_some_and(|r| r.value),
            default: None,
            options,
        };
        if let Some(default) = &spec.default {
            let typed = match (&default.value, kind) {
                (Scalar::Bool(b), InputKind::Boolean) => Ok(Value::Bool(*b)),
                (Scalar::Integer(n), InputKind::Number) => Ok(Value::Number(*n as f64)),
                (Scalar::Float(x), InputKind::Number) => Ok(Value::Number(*x)),
                (Scalar::Bool(_), InputKind::Number)
                | (Scalar::Integer(_) | Scalar::Float(_), InputKind::Boolean) => {
                    Err(format!("input `{name}` is a {}", kind.as_str()))
                }
                (other, _) => decl.parse(&other.to_string()),
            };
            match typed {
                Ok(value) => decl.default = Some(value),
                Err(why) => error(
                    default.referenced,
                    format!("the default of input `{name}` does not fit its type: {why}"),
                    match kind {
                        InputKind::Choice => "make the default one of the `options`".to_owned(),
                        _ => format!("give a {} default", kind.as_str()),
                    },
                ),
            }
        }
        declared.push(decl);
    }
    (declared, errors)
}

/// The values of every declared input: each `--input NAME=VALUE`, typed,
/// then the defaults. With `require_all`, a required input that is not
/// given is an error (for `gantry run`); without it (`gantry plan`), it is
/// left out. All the problems are returned together, each naming the input
/// and the fix.
pub fn resolve(
    declared: &[InputDecl],
    given: &[String],
    require_all: bool,
) -> Result<BTreeMap<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    for argument in given {
        let Some((name, text)) = argument.split_once('=') else {
            errors.push(format!(
                "`--input {argument}` has no value: write `--input {argument}=VALUE`"
            ));
            continue;
        };
        let Some(decl) = declared.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
            let hint = match did_you_mean(name, declared.iter().map(|d| d.name.as_str())) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None if declared.is_empty() => "the manifest declares no `inputs:`".to_owned(),
                None => format!(
                    "the declared inputs are: {}",
                    declared
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            errors.push(format!(
                "`--input {name}=…`: the pipeline has no input `{name}`; {hint}"
            ));
            continue;
        };
        match decl.parse(text) {
            // As GitHub's form does, a required input must say something.
            Ok(Value::String(empty)) if empty.is_empty() && decl.required => {
                errors.push(format!(
                    "input `{}` is required and was given empty: add a value, `--input {}=VALUE`",
                    decl.name, decl.name
                ));
            }
            Ok(value) => {
                if values.insert(decl.name.clone(), value).is_some() {
                    errors.push(format!(
                        "input `{}` is given twice: give each input once",
                        decl.name
                    ));
                }
            }
            Err(why) => errors.push(why),
        }
    }
    for decl in declared {
        if values.contains_key(&decl.name) {
            continue;
        }
        match &decl.default {
            Some(default) => {
                values.insert(decl.name.clone(), default.clone());
            }
            None if decl.required && require_all => errors.push(format!(
                "input `{name}` is required and was not given: add `--input {name}=VALUE`{choices}",
                name = decl.name,
                choices = if decl.kind == InputKind::Choice {
                    format!(" (one of {})", decl.options_list())
                } else {
                    String::new()
                }
            )),
            None if decl.required => {}
            None => {
                values.insert(decl.name.clone(), decl.empty());
            }
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The names an `${{ inputs.X }}` may read, for the plan-time check.
pub fn declared_names(loaded: &LoadedManifest) -> Vec<String> {
    loaded
        .manifest
        .inputs
        .keys()
        .map(|name| name.value.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(kind: InputKind, options: &[&str]) -> InputDecl {
        InputDecl {
            name: "x".into(),
            kind,
            description: None,
            required: false,
            default: None,
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn values_are_typed_as_github_types_them() {
        assert_eq!(
            decl(InputKind::Boolean, &[]).parse("TRUE"),
            Ok(Value::Bool(true))
        );
        assert!(decl(InputKind::Boolean, &[]).parse("yes").is_err());
        assert_eq!(
            decl(InputKind::Number, &[]).parse("2.5"),
            Ok(Value::Number(2.5))
        );
        for not_a_number in ["three", "NaN", "inf", ""] {
            assert!(
                decl(InputKind::Number, &[]).parse(not_a_number).is_err(),
                "{not_a_number}"
            );
        }
        assert_eq!(
            decl(InputKind::String, &[]).parse("007"),
            Ok(Value::String("007".into()))
        );
        let choice = decl(InputKind::Choice, &["eu", "us"]);
        assert_eq!(choice.parse("us"), Ok(Value::String("us".into())));
        let refused = choice.parse("EU").unwrap_err();
        assert!(refused.contains("one of `eu`, `us`"), "{refused}");
    }

    #[test]
    fn unset_inputs_read_as_githubs_empty_values() {
        let declared = vec![
            InputDecl {
                name: "flag".into(),
                ..decl(InputKind::Boolean, &[])
            },
            InputDecl {
                name: "count".into(),
                ..decl(InputKind::Number, &[])
            },
            InputDecl {
                name: "text".into(),
                ..decl(InputKind::String, &[])
            },
        ];
        let values = resolve(&declared, &[], true).unwrap();
        assert_eq!(values["flag"], Value::Bool(false));
        assert_eq!(values["count"], Value::Number(0.0));
        assert_eq!(values["text"], Value::String(String::new()));
    }

    #[test]
    fn a_required_input_is_only_demanded_by_a_run() {
        let declared = vec![InputDecl {
            required: true,
            ..decl(InputKind::String, &[])
        }];
        let errors = resolve(&declared, &[], true).unwrap_err();
        assert!(errors[0].contains("add `--input x=VALUE`"), "{errors:?}");
        assert!(resolve(&declared, &[], false).unwrap().is_empty());
        let given = resolve(&declared, &["X=1".into()], true).unwrap();
        assert_eq!(given["x"], Value::String("1".into()));
        let errors = resolve(&declared, &["x=".into()], true).unwrap_err();
        assert!(errors[0].contains("was given empty"), "{errors:?}");
    }
}
