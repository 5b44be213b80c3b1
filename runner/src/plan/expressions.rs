//! What an expression may read where it is written: the [`Scope`] of each
//! place in a manifest, and the checks that every `${{ }}` parses and names
//! only contexts, steps, jobs, outputs, inputs and fields that exist
//! there, so a typo is a manifest error instead of an empty string at run
//! time.

use std::collections::BTreeMap;

use serde_saphyr::{Location, Spanned};

use super::Resolver;
use crate::expr::{self, Expression, Template};
use crate::manifest::model::Scalar;
use crate::manifest::{ManifestError, did_you_mean};

/// The contexts an expression may read.
const CONTEXTS: [&str; 12] = [
    "env", "steps", "needs", "matrix", "strategy", "secrets", "job", "gantry", "inputs", "vars",
    "github", "runner",
];

impl Resolver<'_> {
    /// Parses a `with:`/`env:` value; strings may embed `${{ }}`.
    pub(super) fn template(&mut self, value: &Spanned<Scalar>, scope: &Scope) -> Template {
        let text = value.value.to_string();
        if !matches!(value.value, Scalar::String(_)) {
            return Template::literal(text);
        }
        match Template::parse_with(&text, crate::engine::FUNCTIONS) {
            Ok(template) => {
                self.check_references(value.referenced, &template.references(), scope);
                template
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                Template::literal(text)
            }
        }
    }

    pub(super) fn condition(
        &mut self,
        value: &Spanned<Scalar>,
        scope: &Scope,
    ) -> Option<Expression> {
        // `if:` is an expression with or without `${{ }}` around it.
        let text = value.value.to_string();
        let parsed = if text.trim_start().starts_with("${{") {
            Template::parse_with(text.trim(), crate::engine::FUNCTIONS).and_then(|template| {
                template
                    .as_single_expression()
                    .cloned()
                    .ok_or_else(|| expr::ExprError {
                        message:
                            "an `if:` holds one expression; put all of it inside a single `${{ }}`"
                                .into(),
                        offset: 0,
                    })
            })
        } else {
            expr::parse_expression_with(&text, crate::engine::FUNCTIONS)
        };
        match parsed {
            Ok(expression) => {
                self.check_references(value.referenced, &expression.references(), scope);
                Some(expression)
            }
            Err(error) => {
                self.expr_error(value.referenced, &error);
                None
            }
        }
    }

    fn expr_error(&mut self, location: Location, error: &expr::ExprError) {
        let column_shift = error.offset + self.quote_width(location);
        let (file, source) = self.current_file();
        let error = ManifestError::at(
            file,
            source,
            location,
            format!("in an expression: {}", error.message),
        )
        .shifted(column_shift);
        self.errors.push(error);
    }

    /// 1 when the scalar at `location` is quoted, so columns inside it line up.
    fn quote_width(&self, location: Location) -> usize {
        let line = self
            .current_file()
            .1
            .lines()
            .nth((location.line() as usize).saturating_sub(1));
        let first = line.and_then(|l| {
            l.chars()
                .nth((location.column() as usize).saturating_sub(1))
        });
        usize::from(matches!(first, Some('\'' | '"')))
    }

    /// Every context an expression reads must exist where it is written:
    /// `steps.<id>` an earlier step of the job, `needs.<id>` a job in
    /// `needs`, secrets only in a step's `with:` and `env:`.
    fn check_references(&mut self, location: Location, references: &[Vec<String>], scope: &Scope) {
        for path in references {
            let Some(context) = path.first() else {
                continue;
            };
            let place = scope.place;
            let unavailable =
                |context: &str| format!("the `{context}` context is not available in {place}");
            match context.to_ascii_lowercase().as_str() {
                "env" | "job" | "gantry" | "vars" => {}
                "github" => {
                    let fields = crate::given::GITHUB_FIELDS.map(|(field, ..)| field);
                    self.check_field(location, "github", path.get(1), &fields);
                }
                "runner" => {
                    let fields = crate::given::RUNNER_FIELDS;
                    self.check_field(location, "runner", path.get(1), &fields);
                }
                // Inside a step group, `inputs` are the group's (see
                // `plan::groups`); elsewhere the pipeline's (`check_input`).
                "inputs" if scope.group_inputs.is_some() => {
                    self.group_input_reference(location, path, scope);
                }
                "inputs" => self.check_input(location, path.get(1)),
                "steps" => match &scope.steps {
                    None => {
                        self.error(location, unavailable("steps"));
                    }
                    Some(ids) => {
                        if let Some(step) = path.get(1)
                            && !ids.iter().any(|id| id.eq_ignore_ascii_case(step))
                        {
                            let hint = if ids.is_empty() {
                                "a step can only read the outputs of earlier steps with an `id` in its job"
                                    .to_owned()
                            } else {
                                format!("the earlier steps of this job are: {}", ids.join(", "))
                            };
                            self.error(
                                location,
                                format!("`steps.{step}` is not an earlier step of this job"),
                            )
                            .hint = Some(hint);
                        }
                    }
                },
                "needs" => match &scope.needs {
                    None => {
                        self.error(location, unavailable("needs"));
                    }
                    Some(ids) => {
                        if let Some(job) = path.get(1)
                            && !ids.iter().any(|id| id.eq_ignore_ascii_case(job))
                        {
                            self.error(
                                location,
                                format!("`needs.{job}` is not a job this job needs"),
                            )
                            .hint = Some(format!("add `{job}` to the job's `needs:`"));
                        } else if let (Some(job), Some(outputs), Some(name)) =
                            (path.get(1), path.get(2), path.get(3))
                            && outputs == "outputs"
                            && let Some(declared) = scope
                                .job_outputs
                                .iter()
                                .find(|(id, _)| id.eq_ignore_ascii_case(job))
                                .map(|(_, names)| names)
                            && !declared.iter().any(|n| n.eq_ignore_ascii_case(name))
                        {
                            // A job's outputs are exactly its `outputs:`: any
                            // other name would always read as empty.
                            let hint = match did_you_mean(name, declared.iter().map(String::as_str))
                            {
                                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                                None if declared.is_empty() => {
                                    format!("job `{job}` declares no `outputs:`")
                                }
                                None => {
                                    format!("the outputs of `{job}` are: {}", declared.join(", "))
                                }
                            };
                            self.error(location, format!("job `{job}` has no output `{name}`"))
                                .hint = Some(hint);
                        }
                    }
                },
                "matrix" | "strategy" if !scope.matrix => {
                    self.error(location, unavailable(context));
                }
                "matrix"
                    if path.get(1).is_some_and(|key| {
                        !scope
                            .matrix_keys
                            .iter()
                            .any(|k| k.eq_ignore_ascii_case(key))
                    }) =>
                {
                    let key = &path[1];
                    // Without the key, the value is always empty.
                    let hint = match did_you_mean(key, scope.matrix_keys.iter().map(String::as_str))
                    {
                        Some(suggestion) => format!("did you mean `{suggestion}`?"),
                        None if scope.matrix_keys.is_empty() => {
                            "this job has no `strategy.matrix`".to_owned()
                        }
                        None => format!("the matrix keys are: {}", scope.matrix_keys.join(", ")),
                    };
                    self.error(
                        location,
                        format!("`matrix.{key}` is not a key of this job's matrix"),
                    )
                    .hint = Some(hint);
                }
                "matrix" | "strategy" => {}
                "secrets" if !scope.secrets => {
                    self.error(location, format!("secrets cannot be used in {place}"))
                        .hint = Some(
                        "pass a secret through a step's `with:` or `env:`, so it reaches only that step".into(),
                    );
                }
                "secrets" => {}
                _ => {
                    let hint = did_you_mean(context, CONTEXTS)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("the contexts are: {}", CONTEXTS.join(", ")));
                    self.error(location, format!("unknown context `{context}`"))
                        .hint = Some(hint);
                }
            }
        }
    }
}

impl Resolver<'_> {
    /// `github.X` and `runner.X` must name a field gantry fills: GitHub has
    /// more (`github.event`, `github.token`, …), and one of those would
    /// always read as empty here.
    fn check_field(
        &mut self,
        location: Location,
        context: &str,
        field: Option<&String>,
        fields: &[&str],
    ) {
        let Some(field) = field else {
            return;
        };
        if fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
            return;
        }
        let hint = match did_you_mean(field, fields.iter().copied()) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => format!("gantry fills: {}", fields.join(", ")),
        };
        self.error(
            location,
            format!("`{context}.{field}` is not a field gantry fills"),
        )
        .hint = Some(hint);
    }

    /// `inputs.NAME` must name a declared input: any other name would
    /// always read as empty.
    fn check_input(&mut self, location: Location, name: Option<&String>) {
        let Some(name) = name else {
            return;
        };
        let declared = crate::inputs::declared_names(self.loaded);
        if declared.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return;
        }
        let hint = match did_you_mean(name, declared.iter().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if declared.is_empty() => {
                format!(
                    "declare it under the top-level `inputs:`, e.g. `inputs: {{ {name}: {{ type: string }} }}`"
                )
            }
            None => format!("the declared inputs are: {}", declared.join(", ")),
        };
        self.error(location, format!("`inputs.{name}` is not a declared input"))
            .hint = Some(hint);
    }
}

/// What an expression may read where it is written.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    /// The steps whose results are visible; `None` where there is no
    /// `steps` context.
    pub(super) steps: Option<Vec<String>>,
    /// The jobs in `needs`; `None` where there is no `needs` context.
    pub(super) needs: Option<Vec<String>>,
    /// Whether `matrix` and `strategy` exist here.
    pub(super) matrix: bool,
    /// The keys of the job's matrix (empty without one): `matrix.KEY` must
    /// name one of them.
    pub(super) matrix_keys: Vec<String>,
    /// The `outputs:` each job declares, by job id: `needs.J.outputs.NAME`
    /// must name one of J's.
    pub(super) job_outputs: BTreeMap<String, Vec<String>>,
    pub(super) secrets: bool,
    /// Inside a step group: the inputs the group declares, which `inputs`
    /// means there. `None` outside groups.
    pub(super) group_inputs: Option<Vec<String>>,
    /// Where the expression is, for messages.
    pub(super) place: &'static str,
}

impl Scope {
    pub(super) fn pipeline() -> Scope {
        Scope {
            steps: None,
            needs: None,
            matrix: false,
            matrix_keys: Vec::new(),
            job_outputs: BTreeMap::new(),
            secrets: false,
            group_inputs: None,
            place: "the pipeline's `env`",
        }
    }
}
