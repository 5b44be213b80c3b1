//! The serde model of `gantry.yml`, manifest v1.
//!
//! These types mirror the YAML one to one and know nothing of the runtime.
//! Every value an error message may need to point at is wrapped in
//! [`Spanned`], so validation can name the file, line and column. Unknown
//! keys are rejected everywhere (`deny_unknown_fields`): a typo must never be
//! silently ignored in a file that decides what a sandbox may touch.

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
pub use serde_saphyr::{Location, Spanned};

/// A whole pipeline manifest.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Scalar>")]
    pub env: BTreeMap<String, Spanned<Scalar>>,
    #[schemars(with = "IndexMap<String, PluginSpec>")]
    pub plugins: IndexMap<Spanned<String>, PluginSpec>,
    #[schemars(with = "IndexMap<String, Job>")]
    pub jobs: IndexMap<Spanned<String>, Job>,
    /// A PEM file of private CA certificates HTTPS requests of component
    /// steps may also be verified against, relative to the manifest.
    #[serde(default, rename = "ca-file")]
    #[schemars(with = "Option<String>")]
    pub ca_file: Option<Spanned<String>>,
    /// The pipeline's inputs, as `workflow_dispatch` declares them, given
    /// with `gantry run --input NAME=VALUE` and read as `${{ inputs.NAME }}`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, InputSpec>")]
    pub inputs: IndexMap<Spanned<String>, InputSpec>,
}

/// One entry of the top-level `inputs:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// What the value is [default: string].
    #[serde(default, rename = "type")]
    #[schemars(with = "Option<InputType>")]
    pub kind: Option<Spanned<InputType>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub description: Option<Spanned<String>>,
    /// Whether `gantry run` refuses to start without it.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub required: Option<Spanned<bool>>,
    /// The value when none is given.
    #[serde(default)]
    #[schemars(with = "Option<Scalar>")]
    pub default: Option<Spanned<Scalar>>,
    /// The values a `choice` input may take.
    #[serde(default)]
    #[schemars(with = "Option<Vec<Scalar>>")]
    pub options: Option<Spanned<Vec<Spanned<Scalar>>>>,
}

/// `type:` of an input, spelled as in `workflow_dispatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    String,
    Boolean,
    Number,
    Choice,
    /// Accepted by the parser so that a workflow's `environment` input gets
    /// a clear error: gantry has no deployment environments.
    Environment,
}

/// One entry of `plugins`: where the module is and, optionally, its pin.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    #[schemars(with = "String")]
    pub source: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sha256: Option<Spanned<String>>,
    /// What compiling it may take, past the defaults.
    #[serde(default)]
    pub limits: Option<PluginLimits>,
    /// A Sigstore signature the plugin's bytes must carry (see
    /// `signature`).
    #[serde(default)]
    #[schemars(with = "Option<VerifySpec>")]
    pub verify: Option<Spanned<VerifySpec>>,
}

/// `verify:` of a plugin: who must have signed it. Either `key` alone, or
/// `identity`, `issuer` and `trusted-root` together; paths are relative to
/// the manifest's folder.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VerifySpec {
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// The signing certificate's subject (a URI or an email address).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub identity: Option<Spanned<String>>,
    /// The OIDC issuer the certificate names.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub issuer: Option<Spanned<String>>,
    /// A Sigstore `trusted_root.json` the certificate must chain to.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub trusted_root: Option<Spanned<String>>,
}

/// Compile limits of one plugin (see the README's limits table).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginLimits {
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub functions: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub code_mb: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub locals: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub data_mb: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub compile_seconds: Option<Spanned<u64>>,
}

/// One job: a list of steps run in order in one job context, once or once
/// per combination of its matrix.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Job {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Needs>")]
    pub needs: Option<Spanned<Needs>>,
    #[serde(default, rename = "if")]
    #[schemars(with = "Option<Scalar>")]
    pub condition: Option<Spanned<Scalar>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Scalar>")]
    pub env: BTreeMap<String, Spanned<Scalar>>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Scalar>")]
    pub outputs: IndexMap<Spanned<String>, Spanned<Scalar>>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub timeout_minutes: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub continue_on_error: Option<Spanned<bool>>,
    pub steps: Vec<Step>,
}

/// `strategy:` of a job, as in GitHub Actions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Strategy {
    #[serde(default)]
    #[schemars(with = "Option<Matrix>")]
    pub matrix: Option<Spanned<Matrix>>,
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub fail_fast: Option<Spanned<bool>>,
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_parallel: Option<Spanned<u32>>,
}

/// `strategy.matrix`: named lists of values, plus `include` and `exclude`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Matrix {
    #[serde(default)]
    pub include: Vec<IndexMap<String, serde_json::Value>>,
    #[serde(default)]
    pub exclude: Vec<IndexMap<String, serde_json::Value>>,
    #[serde(flatten)]
    pub axes: IndexMap<String, Vec<serde_json::Value>>,
}

/// `needs:` is a single job id or a list of them, as in GitHub Actions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Needs {
    One(String),
    Many(Vec<String>),
}

impl Needs {
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Needs::One(id) => vec![id.as_str()],
            Needs::Many(ids) => ids.iter().map(String::as_str).collect(),
        }
    }
}

/// One step: a plugin invocation with its inputs, environment and grants.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    #[schemars(with = "String")]
    pub uses: Spanned<String>,
    #[serde(default)]
    #[schemars(with = "IndexMap<String, Scalar>")]
    pub with: IndexMap<Spanned<String>, Spanned<Scalar>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Scalar>")]
    pub env: BTreeMap<String, Spanned<Scalar>>,
    #[serde(default, rename = "if")]
    #[schemars(with = "Option<Scalar>")]
    pub condition: Option<Spanned<Scalar>>,
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub continue_on_error: Option<Spanned<bool>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub timeout_minutes: Option<Spanned<f64>>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub permissions: Permissions,
    #[serde(default)]
    #[schemars(with = "Option<Artifacts>")]
    pub artifacts: Option<Spanned<Artifacts>>,
    #[serde(default)]
    #[schemars(with = "Option<Rollback>")]
    pub rollback: Option<Spanned<Rollback>>,
    #[serde(default)]
    #[schemars(with = "Option<Retry>")]
    pub retry: Option<Spanned<Retry>>,
}

/// Retrying a failed step: `attempts` in all, waiting `backoff-seconds`
/// before the second, twice that before the third, and so on.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Retry {
    #[schemars(with = "u32")]
    pub attempts: Spanned<u32>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub backoff_seconds: Option<Spanned<f64>>,
}

/// Resource limits of one step.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub memory_mb: Option<Spanned<u64>>,
    /// Files the step may hold open at once.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub files: Option<Spanned<u64>>,
    /// What its private `/tmp` and upload folders may hold, in MiB.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub disk_mb: Option<Spanned<u64>>,
}

/// What a step may touch. Everything absent here is denied.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default)]
    #[schemars(with = "Option<WorkspaceAccess>")]
    pub workspace: Option<Spanned<WorkspaceAccess>>,
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub env: Vec<Spanned<String>>,
    /// Destinations a component step may reach: `scheme://host[:port]`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub network: Vec<Spanned<String>>,
}

/// Access to the manifest's folder, mounted at `/workspace`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceAccess {
    None,
    #[default]
    Read,
    Write,
}

/// One extra host folder granted to a step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    #[schemars(with = "String")]
    pub guest: Spanned<String>,
    #[serde(default)]
    pub access: Access,
}

/// Read or write access to a granted folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Read,
    Write,
}

/// Artifacts a step uploads (an empty writable `/artifacts/<name>`, stored
/// when the step succeeds) or downloads (the run's latest upload of that
/// name, read-only).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    #[serde(default)]
    pub upload: Vec<String>,
    #[serde(default)]
    pub download: Vec<String>,
}

/// A step's compensation hook, run when a later failure undoes the run.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rollback {
    /// The plugin that compensates; by default the step's own.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub uses: Option<Spanned<String>>,
    /// The hook's inputs; by default the step's own.
    #[serde(default)]
    #[schemars(with = "Option<IndexMap<String, Scalar>>")]
    pub with: Option<IndexMap<Spanned<String>, Spanned<Scalar>>>,
    /// How long the hook may run; by default the step's own timeout.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub timeout_minutes: Option<Spanned<f64>>,
}

/// A scalar value in `with:` or `env:`: a string, a number or a boolean.
///
/// YAML has typed scalars, but a step sees text, so each kind keeps the
/// spelling a person expects: `true`/`false`, integers without a fraction.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    Integer(i128),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::String(s) => f.write_str(s),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A string, a number or a boolean; strings may hold `${{ }}` expressions",
            "type": ["string", "number", "boolean"]
        })
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                i128::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::String(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Err(E::custom(
                    "expected a string, a number or a boolean, found an empty value; write '' for an empty string",
                ))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                self.visit_unit()
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}
