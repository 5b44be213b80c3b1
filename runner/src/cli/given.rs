//! The flags that give a run values from outside its manifest: `--input`,
//! `--var` and `--vars-file`, shared by `gantry run`, `plan` and
//! `validate`, and the host's facts (`github`, `runner`) a run reads.

use std::path::PathBuf;

use super::{Failure, Problem};
use crate::exit::Exit;
use crate::given;
use crate::load::Draft;
use crate::plan::Plan;
use crate::vars::Vars;

/// Pipeline inputs and configuration variables, from the command line.
#[derive(Debug, clap::Args)]
pub struct GivenArgs {
    /// A value for an input the manifest declares under `inputs:`, read as
    /// `${{ inputs.NAME }}`: NAME=VALUE (may be repeated)
    #[arg(long = "input", value_name = "NAME=VALUE")]
    inputs: Vec<String>,
    /// A configuration variable for `${{ vars.NAME }}`, not a secret and
    /// never masked: NAME=VALUE (may be repeated; wins over --vars-file)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// A dotenv file of variables (NAME=VALUE lines, as --secrets-file)
    #[arg(long, value_name = "PATH")]
    vars_file: Vec<PathBuf>,
}

impl GivenArgs {
    /// Checks the inputs given against the plan's declarations (with
    /// `require_all`, a missing required input is an error too) and reads
    /// the variables into what the draft is given. Every problem is
    /// reported; any is a usage error, before anything runs.
    pub fn apply(&self, draft: &mut Draft, require_all: bool) -> Result<(), Failure> {
        let mut problems = Vec::new();
        match crate::inputs::resolve(&draft.plan().inputs, &self.inputs, require_all) {
            Ok(values) => draft.given_mut().inputs = values,
            Err(errors) => problems.extend(errors.into_iter().map(Problem::msg)),
        }
        let mut vars = Vars::default();
        let loaded = self
            .vars_file
            .iter()
            .try_for_each(|path| vars.add_file(path))
            .and_then(|()| {
                self.vars
                    .iter()
                    .try_for_each(|argument| vars.add_argument(argument))
            });
        match loaded {
            Ok(()) => draft.given_mut().vars = vars,
            Err(error) => problems.push(Problem::new(error)),
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Failure::several(Exit::Invalid, problems))
    }

    /// [`GivenArgs::apply`] for a run, which also reads the host's facts
    /// and makes the run's `runner.temp`, removed when the guard is
    /// dropped.
    pub fn for_run(&self, draft: &mut Draft) -> Result<tempfile::TempDir, Failure> {
        self.apply(draft, true)?;
        let temp = given::run_temp().map_err(|e| {
            Failure::new(Exit::Invalid, e).with_context("cannot make the run's temporary folder")
        })?;
        let (github, runner) = given::host_facts(&draft.plan().root, temp.path());
        let given = draft.given_mut();
        given.github = github;
        given.runner = runner;
        Ok(temp)
    }
}

/// The declared inputs with the values they would have, and the variables
/// given, one line each, for `gantry plan` and `validate`.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    for decl in &plan.inputs {
        let value = match plan.given.inputs.get(&decl.name) {
            Some(crate::expr::Value::String(text)) if text.is_empty() => "\"\"".to_owned(),
            Some(value) => value.to_output_string(),
            None => "not given".to_owned(),
        };
        let mut about = vec![decl.kind.as_str().to_owned()];
        if decl.kind == crate::inputs::InputKind::Choice {
            about[0] = format!("choice of {}", decl.options.join(", "));
        }
        if decl.required {
            about.push("required".into());
        }
        if let Some(default) = &decl.default {
            about.push(format!("default {}", default.to_output_string()));
        }
        if let Some(description) = &decl.description {
            about.push(description.clone());
        }
        out.push_str(&format!(
            "input {}: {value} ({})\n",
            decl.name,
            about.join("; ")
        ));
    }
    for (name, value) in plan.given.vars.iter() {
        out.push_str(&format!("var {name}: {value}\n"));
    }
    out
}
