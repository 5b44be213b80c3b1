//! The status functions of `if:` conditions — `success()`, `failure()`,
//! `always()`, `cancelled()` — and GitHub's rule that a condition calling
//! none of them means `success() && (condition)`.

use std::collections::BTreeMap;
use std::path::Path;

use super::JobResult;
use crate::expr::{Expression, FunctionHost, FunctionSpec, Value};
use crate::report::Conclusion;

/// What the status functions answer at one point of a run.
#[derive(Debug, Clone, Copy)]
pub struct JobStatus {
    /// An earlier step of the job (or, for a job's `if:`, a job it needs)
    /// failed.
    pub failed: bool,
    pub cancelled: bool,
}

impl JobStatus {
    /// The status a job's `if:` sees: failed when a job it needs failed.
    pub fn after_needs(needs: &BTreeMap<String, JobResult>, cancelled: bool) -> JobStatus {
        JobStatus {
            failed: needs.values().any(|r| r.conclusion == Conclusion::Failure),
            cancelled,
        }
    }
}

impl FunctionHost for JobStatus {
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let value = match name.to_ascii_lowercase().as_str() {
            "success" => !self.failed && !self.cancelled,
            "failure" => self.failed,
            "always" => true,
            "cancelled" => self.cancelled,
            _ => return None,
        };
        if !args.is_empty() {
            return Some(Err(format!("`{name}()` takes no arguments")));
        }
        Some(Ok(Value::Bool(value)))
    }
}

/// The functions the engine answers (status functions and `hashFiles`), declared to the parser so that a
/// manifest calling anything else (or with other argument counts) is
/// refused when it is validated. Counts as in GitHub's runner: the status
/// functions take none, `hashFiles` 1 to 255 patterns.
pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec::new("success", 0, 0),
    FunctionSpec::new("failure", 0, 0),
    FunctionSpec::new("always", 0, 0),
    FunctionSpec::new("cancelled", 0, 0),
    FunctionSpec::new("hashFiles", 1, 255),
];

/// Every function the engine adds to the language: the status functions,
/// and `hashFiles` over the workspace.
pub struct Functions<'a> {
    pub status: JobStatus,
    pub workspace: &'a Path,
}

impl FunctionHost for Functions<'_> {
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if name.eq_ignore_ascii_case("hashFiles") {
            let patterns: Vec<String> = args.iter().map(Value::to_output_string).collect();
            return Some(
                super::hash_files::hash_files(self.workspace, &patterns).map(Value::String),
            );
        }
        self.status.call(name, args)
    }
}

/// Whether a condition calls a status function itself; when it does not,
/// it only applies while everything so far succeeded.
pub fn asks_for_status(condition: &Expression) -> bool {
    ["success", "failure", "always", "cancelled"]
        .iter()
        .any(|name| condition.calls(name))
}

/// Whether a condition asks to run even after the run was cancelled.
pub fn runs_when_cancelled(condition: &Expression) -> bool {
    condition.calls("always") || condition.calls("cancelled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{Contexts, parse_expression_with};

    fn parse_expression(source: &str) -> Result<Expression, crate::expr::ExprError> {
        parse_expression_with(source, FUNCTIONS)
    }

    fn check(source: &str, status: JobStatus) -> bool {
        parse_expression(source)
            .unwrap()
            .evaluate_with(&Contexts::new(), &status)
            .unwrap()
            .is_truthy()
    }

    #[test]
    fn status_functions() {
        let ok = JobStatus {
            failed: false,
            cancelled: false,
        };
        let failed = JobStatus {
            failed: true,
            cancelled: false,
        };
        let cancelled = JobStatus {
            failed: false,
            cancelled: true,
        };
        assert!(
            check("success()", ok) && !check("success()", failed) && !check("success()", cancelled)
        );
        assert!(check("failure()", failed) && !check("failure()", ok));
        assert!(check("cancelled()", cancelled) && !check("cancelled()", ok));
        assert!(check("always()", failed) && check("always()", cancelled));
    }

    #[test]
    fn implicit_success() {
        assert!(!asks_for_status(&parse_expression("env.A == 'b'").unwrap()));
        assert!(asks_for_status(
            &parse_expression("failure() || env.A").unwrap()
        ));
        assert!(runs_when_cancelled(&parse_expression("always()").unwrap()));
        assert!(!runs_when_cancelled(
            &parse_expression("failure()").unwrap()
        ));
    }
}
