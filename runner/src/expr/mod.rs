//! The `${{ }}` expression language, compatible with GitHub Actions.
//!
//! This module owns everything between workflow text and a value: lexing,
//! parsing (with byte offsets for errors), values and their coercions,
//! evaluation against caller-supplied [`Contexts`], the built-in functions
//! (`case`, `contains`, `startsWith`, `endsWith`, `format`, `join`,
//! `toJSON`, `fromJSON`), and [`Template`]s that embed `${{ expr }}` in
//! text.
//!
//! It does not own status functions (`success()`, `always()`, ...), and it
//! does not call `hashFiles()` itself, since that needs the workspace: the
//! engine supplies those through a [`FunctionHost`] (`hashFiles()` walks the
//! workspace in the engine's `hash_files`)
//! and declares them to the parser as [`FunctionSpec`]s, so that a call to an
//! unknown function, or with the wrong number of arguments, is a parse error
//! as in GitHub. Every input is bounded (length, nesting depth, evaluation
//! steps, memory), so no expression can crash or stall the runner.
//!
//! The rules follow GitHub's documentation and, where it is silent, what its
//! runner does: numbers print in .NET's `G15` form (`1.0` → `1`, `1e15` →
//! `1E+15`); arrays and objects turn into the text `Array` / `Object`
//! (`toJSON` shows their content); `==` coerces mismatched primitives to
//! numbers and compares arrays and objects by identity (a value read twice
//! from the same context is the same instance; anything built during an
//! evaluation is new); strings compare ordinally after .NET's invariant
//! upper-casing (so `ı` is not `I`); object keys keep the order they were
//! written in; nesting is limited to GitHub's 50 levels and memory to its
//! 1 MiB, both measured as GitHub's runner measures them. Deliberate
//! differences: unknown contexts are reported by the plan (which knows the
//! contexts of each place) or when evaluated, not by the parser; redundant
//! parentheses are limited to [`MAX_NESTING`] levels.

mod eval;
mod json;
mod lexer;
mod parser;
#[cfg(test)]
mod proptests;
mod template;
mod value;

pub use eval::FunctionHost;
pub use parser::BUILTIN_FUNCTIONS;
pub use template::Template;
pub use value::{MAX_JSON_DEPTH, Map, Value};

/// Longest accepted expression, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 16 * 1024;
/// Deepest accepted expression tree, GitHub's `MaxDepth`: a leaf is one
/// level, and each operator, function call, `.name` and `[index]` one more.
pub const MAX_DEPTH: usize = 50;
/// Deepest textual nesting (parentheses included), a guard against runaway
/// recursion on text that GitHub would accept only because it drops
/// parentheses: more than 64 levels of `(` are refused. (64 is what the
/// recursive parser is known to handle on a test thread's 2 MiB stack.)
pub const MAX_NESTING: usize = 64;
/// Evaluation steps (nodes visited plus values fanned out by `.*`) per evaluation.
pub const MAX_STEPS: usize = 100_000;
/// Memory an evaluation may hold at once, GitHub's default `MaxMemory`
/// (1 MiB), measured as GitHub measures it: a string is 26 bytes plus two
/// per UTF-16 code unit, any other value 24. A function building a string
/// (`format`, `join`, `toJSON`) fails before its text passes the budget; a
/// whole template counts as one evaluation, as GitHub turns it into one
/// `format` call.
pub const MAX_MEMORY_BYTES: usize = 1 << 20;

/// A function an expression may call, and how many arguments it takes.
/// Names compare ignoring ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSpec {
    /// The name as documented (`startsWith`).
    pub name: &'static str,
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted.
    pub max_args: usize,
}

impl FunctionSpec {
    /// A function taking `min_args..=max_args` arguments.
    pub const fn new(name: &'static str, min_args: usize, max_args: usize) -> Self {
        FunctionSpec {
            name,
            min_args,
            max_args,
        }
    }
}

/// A parse or evaluation error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ExprError {
    /// What went wrong, in plain words; names and tokens are in backticks.
    pub message: String,
    /// Byte offset into the parsed text (the whole template for templates).
    pub offset: usize,
}

/// Shorthand used inside the module.
pub(crate) type Res<T> = Result<T, ExprError>;

impl ExprError {
    pub(crate) fn new(message: impl Into<String>, offset: usize) -> Self {
        ExprError {
            message: message.into(),
            offset,
        }
    }
}

/// The named contexts an expression can read (`env`, `steps`, `matrix`, ...).
/// Names are matched case-insensitively, like GitHub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contexts {
    values: Map,
}

impl Contexts {
    /// No contexts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a context, returning the previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) -> Option<Value> {
        self.values.insert(name.into(), value)
    }

    /// Looks a context up, exact name first, then ignoring case.
    pub fn get(&self, name: &str) -> Option<&Value> {
        value::get_ignore_case(&self.values, name)
    }

    /// Context names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.into_iter()
    }
}

/// A parsed bare expression, such as the text of an `if:` condition.
#[derive(Debug, Clone)]
pub struct Expression {
    root: parser::Expr,
    source: String,
}

/// Parses a bare expression (no `${{ }}` around it) that may call the
/// built-in functions only.
pub fn parse_expression(text: &str) -> Result<Expression, ExprError> {
    parse_expression_with(text, &[])
}

/// Parses a bare expression that may also call `functions` (the ones a
/// [`FunctionHost`] will answer when it is evaluated).
pub fn parse_expression_with(
    text: &str,
    functions: &[FunctionSpec],
) -> Result<Expression, ExprError> {
    Expression::parse_at(text, 0, functions)
}

impl Expression {
    /// Parses `text` found at byte `base` of some enclosing text.
    pub(crate) fn parse_at(
        text: &str,
        base: usize,
        functions: &[FunctionSpec],
    ) -> Result<Expression, ExprError> {
        Ok(Expression {
            root: parser::parse_with(text, base, functions)?,
            source: text.to_owned(),
        })
    }

    /// The expression of an empty `${{ }}`: GitHub's parser returns no tree
    /// for it, which evaluates to null (an empty string in text).
    pub(crate) fn empty(base: usize) -> Expression {
        Expression {
            root: parser::null_at(base),
            source: String::new(),
        }
    }

    pub(crate) fn root(&self) -> &parser::Expr {
        &self.root
    }

    /// The expression's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates with the built-in functions only.
    pub fn evaluate(&self, ctx: &Contexts) -> Result<Value, ExprError> {
        self.run(ctx, None)
    }

    /// Evaluates, asking `host` for functions that are not built in.
    pub fn evaluate_with(
        &self,
        ctx: &Contexts,
        host: &dyn FunctionHost,
    ) -> Result<Value, ExprError> {
        self.run(ctx, Some(host))
    }

    fn run(&self, ctx: &Contexts, host: Option<&dyn FunctionHost>) -> Res<Value> {
        Ok(eval::Evaluator::new(ctx, host)
            .eval(&self.root)?
            .into_owned())
    }

    /// Context paths the expression reads, e.g. `["steps", "build",
    /// "outputs", "x"]` for `steps.build.outputs.x`, without duplicates.
    /// A path stops at the first step that is not a fixed name (`.*` or a
    /// computed index); `['name']` with a string literal counts as a name.
    pub fn references(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        collect_refs(&self.root, &mut out);
        out
    }

    /// Whether the expression calls the function `name` anywhere (function
    /// names compare case-insensitively, as everywhere in the language).
    pub fn calls(&self, name: &str) -> bool {
        calls(&self.root, name)
    }
}

/// Recursion is bounded by the AST height limit.
fn calls(e: &parser::Expr, name: &str) -> bool {
    use parser::{Kind, Seg};
    match &e.kind {
        Kind::Lit(_) | Kind::Ctx(_) => false,
        Kind::Not(x) => calls(x, name),
        Kind::Cmp(_, a, b) => calls(a, name) || calls(b, name),
        Kind::Logic(_, v) => v.iter().any(|x| calls(x, name)),
        Kind::Call(called, v) => {
            called.eq_ignore_ascii_case(name) || v.iter().any(|x| calls(x, name))
        }
        Kind::Access(base, segs) => {
            calls(base, name)
                || segs.iter().any(|seg| match seg {
                    Seg::Index(ix) => calls(ix, name),
                    Seg::Prop(_) | Seg::Star => false,
                })
        }
    }
}

pub(crate) fn push_unique(out: &mut Vec<Vec<String>>, path: Vec<String>) {
    if !out.contains(&path) {
        out.push(path);
    }
}

/// Recursion is bounded by the AST height limit.
fn collect_refs(e: &parser::Expr, out: &mut Vec<Vec<String>>) {
    use parser::{Kind, Seg};
    match &e.kind {
        Kind::Lit(_) => {}
        Kind::Ctx(name) => push_unique(out, vec![name.clone()]),
        Kind::Not(x) => collect_refs(x, out),
        Kind::Cmp(_, a, b) => [a, b].iter().for_each(|x| collect_refs(x, out)),
        Kind::Logic(_, v) | Kind::Call(_, v) => v.iter().for_each(|x| collect_refs(x, out)),
        Kind::Access(base, segs) => {
            if let Kind::Ctx(name) = &base.kind {
                let mut path = vec![name.clone()];
                for seg in segs {
                    match seg {
                        Seg::Prop(p) => path.push(p.clone()),
                        Seg::Index(parser::Expr {
                            kind: Kind::Lit(Value::String(s)),
                            ..
                        }) => {
                            path.push(s.clone());
                        }
                        _ => break,
                    }
                }
                push_unique(out, path);
            } else {
                collect_refs(base, out);
            }
            for seg in segs {
                if let Seg::Index(ix) = seg {
                    collect_refs(ix, out);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn finds_function_calls_anywhere() {
        let host = [
            FunctionSpec::new("failure", 0, 0),
            FunctionSpec::new("always", 0, 0),
        ];
        let src = "env.x == 'failure()' || !(Failure() && a[always()])";
        let e = parse_expression_with(src, &host).unwrap();
        assert!(e.calls("failure"));
        assert!(e.calls("always"));
        assert!(!e.calls("success"));
        assert!(!parse_expression("'always()'").unwrap().calls("always"));
    }
    use std::sync::LazyLock;

    /// Contexts shared by the module's tests, built once.
    pub(crate) static CTX: LazyLock<Contexts> = LazyLock::new(|| {
        let json = r#"{
            "env": {"MAJOR": "2", "TRAP": "${{ env.MAJOR }}"},
            "matrix": {"os": "linux", "list": [1, "two", null]},
            "steps": {
                "build": {"outputs": {"x": "b", "minor": "7"}, "outcome": "success"},
                "my-step": {"outputs": {"x": "m", "minor": "7"}, "outcome": "success"},
                "t": {}
            },
            "github": {
                "event_name": "push",
                "ref": "refs/heads/main",
                "event": {"issue": {"labels": [{"name": "bug"}, {"name": "help wanted"}]}}
            },
            "job": {"status": "success"},
            "fruits": [
                {"name": "apple", "quantity": 1},
                {"name": "orange", "quantity": 2},
                {"name": "pear", "quantity": 1}
            ],
            "vegetables": {
                "scallions": {
                    "colors": ["green", "white", "red"],
                    "ediblePortions": ["roots", "stalks"]
                },
                "beets": {
                    "colors": ["purple", "red", "gold", "white", "pink"],
                    "ediblePortions": ["roots", "stems", "leaves"]
                },
                "artichokes": {
                    "colors": ["green", "purple", "red", "black"],
                    "ediblePortions": ["hearts", "stems", "leaves"]
                }
            }
        }"#;
        let parsed = json_value(json);
        let mut c = Contexts::new();
        if let Some(Value::Object(map)) = parsed {
            map.into_iter().for_each(|(k, v)| _ = c.insert(k, v));
        }
        // Large data for the cost tests: 300 kB of text, four copies of it,
        // and 1,000 rows of 10 numbers.
        let text = Value::from("y".repeat(300_000));
        let row = Value::Array((0..10).map(f64::from).map(Value::Number).collect());
        let big = [
            ("many".to_owned(), Value::Array(vec![text.clone(); 4])),
            ("rows".to_owned(), Value::Array(vec![row; 1000])),
            ("s".to_owned(), text),
        ];
        c.insert("big", Value::Object(big.into_iter().collect()));
        c
    });

    fn json_value(text: &str) -> Option<Value> {
        Value::from_json(&serde_json::from_str(text).ok()?)
    }

    /// Runs a table of `input => expected` lines; expected is JSON, or
    /// `!offset: message` for an error. Lines starting with `# ` are comments.
    pub(crate) fn check(table: &str, run: impl Fn(&str) -> Result<Value, ExprError>) {
        let lines = table.lines().map(str::trim);
        for line in lines.filter(|l| !l.is_empty() && !l.starts_with("# ")) {
            let (input, want) = line.split_once(" => ").expect("a `=>` in every case");
            let got = run(input);
            if let Some(err) = want.strip_prefix('!') {
                let got = got.map_err(|e| format!("{}: {}", e.offset, e.message));
                assert_eq!(got, Err(err.to_owned()), "{input}");
            } else {
                assert_eq!(got.ok(), json_value(want), "{input}");
            }
        }
    }

    #[test]
    fn references_list_paths() {
        let dotted = |src: &str| {
            let refs = parse_expression(src)
                .map(|e| e.references())
                .unwrap_or_default();
            refs.iter().map(|p| p.join(".")).collect::<Vec<_>>()
        };
        let src = "steps.build.outputs.x || env['MAJOR'] || matrix.list[env.I] || steps.*.a";
        let want = [
            "steps.build.outputs.x",
            "env.MAJOR",
            "matrix.list",
            "env.I",
            "steps",
        ];
        assert_eq!(dotted(&format!("{src} || env.MAJOR")), want);
        let src = "!contains(fromJSON(inputs.list).a, github.ref)";
        assert_eq!(dotted(src), ["inputs.list", "github.ref"]);
    }

    #[test]
    fn hostile_input_never_panics() {
        let junk = [
            "${{".repeat(100),
            "a[".repeat(5_000),
            "'".into(),
            "\u{0}é🎉".into(),
        ];
        let more = ["-", "a..b", ".*", "f(,)", "${{ '", "${{ }} }}"].map(String::from);
        for (i, src) in junk.iter().chain(&more).enumerate() {
            assert!(parse_expression(src).is_err(), "case {i}");
            let template = Template::parse(&format!("${{{{ {src} }}}}"));
            assert!(template.and_then(|t| t.render(&CTX)).is_err(), "case {i}");
        }
    }
}
