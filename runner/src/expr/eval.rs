//! Tree-walking evaluator, built-in functions and the cost budget.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::parser::{Expr, Kind, Seg};
use super::value::{Value, fold, get_ignore_case, loose_cmp, loose_eq, to_json};
use super::{Contexts, ExprError, MAX_OUTPUT_BYTES, MAX_STEPS, Res};

/// Supplies functions the expression module does not define itself, such as
/// the engine's `success()`, `always()` or `hashFiles()`.
///
/// The evaluator only asks for names that are not built in. Function names
/// are case-insensitive in the language, so compare with
/// `eq_ignore_ascii_case`. Closures of the same shape implement this trait.
pub trait FunctionHost {
    /// Calls `name` with already-evaluated arguments. Returns `None` when the
    /// host does not know `name`, `Some(Err(message))` to fail evaluation
    /// (reported at the call's offset).
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
}

impl<F> FunctionHost for F
where
    F: Fn(&str, &[Value]) -> Option<Result<Value, String>>,
{
    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        self(name, args)
    }
}

/// Evaluation state. One evaluator may serve several expressions (all the
/// pieces of a template) so they share one cost budget.
pub(crate) struct Evaluator<'a> {
    ctx: &'a Contexts,
    host: Option<&'a dyn FunctionHost>,
    steps: usize,
    bytes: usize,
}

/// The current selection while walking `a.b[c].*...`: one value, or the many
/// values a `.*` filter fans out to (later steps apply to each of them).
enum Sel<'a> {
    One(Cow<'a, Value>),
    Many(Vec<Cow<'a, Value>>),
}

enum Key<'k> {
    Name(&'k str),
    Val(&'k Value),
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(ctx: &'a Contexts, host: Option<&'a dyn FunctionHost>) -> Self {
        Evaluator {
            ctx,
            host,
            steps: 0,
            bytes: 0,
        }
    }

    fn charge(&mut self, steps: usize, bytes: usize, offset: usize) -> Res<()> {
        self.steps = self.steps.saturating_add(steps);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.steps > MAX_STEPS || self.bytes > MAX_OUTPUT_BYTES {
            return Err(ExprError::new("expression too expensive", offset));
        }
        Ok(())
    }

    fn bytes_left(&self) -> usize {
        MAX_OUTPUT_BYTES.saturating_sub(self.bytes)
    }

    /// Stringifies for output, charging the budget for arrays/objects, whose
    /// JSON can be far larger than anything written in the expression.
    pub(crate) fn output_string(&mut self, v: &Value, offset: usize) -> Res<String> {
        match v {
            Value::Array(_) | Value::Object(_) => {
                let text = to_json(v, self.bytes_left()).ok_or_else(|| too_expensive(offset))?;
                self.charge(0, text.len(), offset)?;
                Ok(text)
            }
            other => Ok(other.to_output_string()),
        }
    }

    /// Evaluates `e`. Recursion follows the AST, whose height the parser bounds.
    pub(crate) fn eval(&mut self, e: &'a Expr) -> Res<Cow<'a, Value>> {
        let at = e.span.start;
        self.charge(1, 0, at)?;
        match &e.kind {
            Kind::Lit(v) => Ok(Cow::Borrowed(v)),
            Kind::Ctx(name) => self.ctx.get(name).map(Cow::Borrowed).ok_or_else(|| {
                let names: Vec<&str> = self.ctx.names().collect();
                let list = if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                };
                ExprError::new(format!("unknown context `{name}`; available: {list}"), at)
            }),
            Kind::Not(x) => Ok(Cow::Owned(Value::Bool(!self.eval(x)?.is_truthy()))),
            Kind::Logic(is_or, items) => {
                // Short-circuits and yields the deciding operand itself.
                let mut last = Cow::Owned(Value::Null);
                for item in items {
                    last = self.eval(item)?;
                    if last.is_truthy() == *is_or {
                        break;
                    }
                }
                Ok(last)
            }
            Kind::Cmp(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let ord = loose_cmp(&a, &b);
                Ok(Cow::Owned(Value::Bool(match *op {
                    "==" => loose_eq(&a, &b),
                    "!=" => !loose_eq(&a, &b),
                    "<" => ord.is_some_and(Ordering::is_lt),
                    "<=" => ord.is_some_and(Ordering::is_le),
                    ">" => ord.is_some_and(Ordering::is_gt),
                    _ => ord.is_some_and(Ordering::is_ge),
                })))
            }
            Kind::Access(base, segs) => {
                let mut sel = Sel::One(self.eval(base)?);
                for seg in segs {
                    sel = match seg {
                        Seg::Prop(name) => sel.step(&Key::Name(name)),
                        Seg::Index(ix) => sel.step(&Key::Val(self.eval(ix)?.as_ref())),
                        Seg::Star => sel.star(),
                    };
                    let fanout = if let Sel::Many(v) = &sel { v.len() } else { 1 };
                    self.charge(fanout, 0, at)?;
                }
                Ok(match sel {
                    Sel::One(v) => v,
                    Sel::Many(v) => {
                        Cow::Owned(Value::Array(v.into_iter().map(Cow::into_owned).collect()))
                    }
                })
            }
            Kind::Call(name, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a)?);
                }
                self.call(name, vals, at).map(Cow::Owned)
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Cow<'a, Value>>, at: usize) -> Res<Value> {
        let arg = |i: usize| args.get(i).map_or(&Value::Null, |v| v.as_ref());
        let text = |i: usize| arg(i).to_output_string();
        match name.to_ascii_lowercase().as_str() {
            "contains" => Ok(Value::Bool(match arg(0) {
                Value::Array(items) => items.iter().any(|x| loose_eq(x, arg(1))),
                _ => fold(&text(0)).contains(&fold(&text(1))),
            })),
            "startswith" => Ok(Value::Bool(fold(&text(0)).starts_with(&fold(&text(1))))),
            "endswith" => Ok(Value::Bool(fold(&text(0)).ends_with(&fold(&text(1))))),
            "format" => self.format(&args, at).map(Value::String),
            "join" => {
                let sep = match args.get(1) {
                    Some(sep) => self.output_string(sep, at)?,
                    None => ",".to_owned(),
                };
                let Value::Array(items) = arg(0) else {
                    return self.output_string(arg(0), at).map(Value::String);
                };
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    let piece = self.output_string(item, at)?;
                    self.emit(&mut out, if i > 0 { &sep } else { "" }, at)?;
                    self.emit(&mut out, &piece, at)?;
                }
                self.charge(0, out.len(), at)?;
                Ok(Value::String(out))
            }
            "tojson" => {
                let json = to_json(arg(0), self.bytes_left()).ok_or_else(|| too_expensive(at))?;
                self.charge(0, json.len(), at)?;
                Ok(Value::String(json))
            }
            "fromjson" => {
                let src = text(0);
                let json: serde_json::Value = serde_json::from_str(&src)
                    .map_err(|e| ExprError::new(format!("fromJSON: invalid JSON: {e}"), at))?;
                Value::from_json(&json)
                    .ok_or_else(|| ExprError::new("fromJSON: JSON is nested too deeply", at))
            }
            _ => {
                let unknown = || ExprError::new(format!("unknown function `{name}`"), at);
                let host = self.host.ok_or_else(unknown)?;
                let owned: Vec<Value> = args.into_iter().map(Cow::into_owned).collect();
                match host.call(name, &owned) {
                    None => Err(unknown()),
                    Some(Ok(v)) => Ok(v),
                    Some(Err(msg)) => Err(ExprError::new(msg, at)),
                }
            }
        }
    }

    /// Appends to a function's output, failing once it outgrows the budget
    /// (checked before the text is built, not after).
    fn emit(&self, out: &mut String, piece: &str, at: usize) -> Res<()> {
        if out.len() + piece.len() > self.bytes_left() {
            return Err(too_expensive(at));
        }
        out.push_str(piece);
        Ok(())
    }

    /// `format('{0} and {1}', a, b)`; `{{` and `}}` stand for literal braces.
    fn format(&mut self, args: &[Cow<'a, Value>], at: usize) -> Res<String> {
        let pattern = args
            .first()
            .map(|v| v.to_output_string())
            .unwrap_or_default();
        let fail = |msg: String| Err(ExprError::new(format!("format: {msg}"), at));
        let mut out = String::new();
        let mut rest = pattern.as_str();
        while let Some((text, tail)) = rest.find(['{', '}']).and_then(|i| rest.split_at_checked(i))
        {
            self.emit(&mut out, text, at)?;
            if let Some(r) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
                self.emit(&mut out, tail.get(..1).unwrap_or_default(), at)?;
                rest = r;
                continue;
            }
            let Some((index, r)) = tail.strip_prefix('{').and_then(|t| t.split_once('}')) else {
                return fail(format!(
                    "unmatched `{}` in format string",
                    tail.get(..1).unwrap_or_default()
                ));
            };
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return fail(format!("invalid placeholder `{{{index}}}`"));
            }
            let Some(value) = index
                .parse::<usize>()
                .ok()
                .and_then(|i| args.get(i.checked_add(1)?))
            else {
                let given = args.len().saturating_sub(1);
                return fail(format!(
                    "placeholder `{{{index}}}` has no argument ({given} given)"
                ));
            };
            let piece = self.output_string(value, at)?;
            self.emit(&mut out, &piece, at)?;
            rest = r;
        }
        self.emit(&mut out, rest, at)?;
        self.charge(0, out.len(), at)?;
        Ok(out)
    }
}

fn too_expensive(offset: usize) -> ExprError {
    ExprError::new("expression too expensive", offset)
}

impl<'a> Sel<'a> {
    /// Applies a property/index step; on a fanned-out selection it maps over
    /// the items and drops those lacking the key.
    fn step(self, key: &Key<'_>) -> Sel<'a> {
        match self {
            Sel::One(v) => Sel::One(child(v, key).unwrap_or(Cow::Owned(Value::Null))),
            Sel::Many(items) => {
                Sel::Many(items.into_iter().filter_map(|v| child(v, key)).collect())
            }
        }
    }

    /// `.*`: the elements of an array or the values of an object; applied to
    /// a fanned-out selection it flattens one level. Scalars contribute nothing.
    fn star(self) -> Sel<'a> {
        let items = match self {
            Sel::One(v) => vec![v],
            Sel::Many(items) => items,
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Cow::Borrowed(Value::Array(a)) => out.extend(a.iter().map(Cow::Borrowed)),
                Cow::Borrowed(Value::Object(o)) => out.extend(o.values().map(Cow::Borrowed)),
                Cow::Owned(Value::Array(a)) => out.extend(a.into_iter().map(Cow::Owned)),
                Cow::Owned(Value::Object(o)) => out.extend(o.into_values().map(Cow::Owned)),
                _ => {}
            }
        }
        Sel::Many(out)
    }
}

fn child<'a>(v: Cow<'a, Value>, key: &Key<'_>) -> Option<Cow<'a, Value>> {
    match v {
        Cow::Borrowed(b) => lookup(b, key).map(Cow::Borrowed),
        Cow::Owned(o) => lookup(&o, key).cloned().map(Cow::Owned),
    }
}

/// Objects are indexed by name (case-insensitively, exact match first);
/// arrays by a non-negative integral number. Anything else finds nothing.
fn lookup<'v>(v: &'v Value, key: &Key<'_>) -> Option<&'v Value> {
    match v {
        Value::Object(map) => {
            let name: Cow<'_, str> = match key {
                Key::Name(n) => Cow::Borrowed(n),
                Key::Val(Value::String(s)) => Cow::Borrowed(s),
                // Array/object keys name nothing (and are not worth stringifying).
                Key::Val(Value::Array(_) | Value::Object(_)) => return None,
                Key::Val(other) => Cow::Owned(other.to_output_string()),
            };
            get_ignore_case(map, &name)
        }
        Value::Array(items) => {
            let Key::Val(k) = key else { return None };
            let n = k.to_number();
            if n >= 0.0 && n.fract() == 0.0 && n < items.len() as f64 {
                items.get(n as usize)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, check};
    use super::super::{Contexts, Template, parse_expression};
    use super::*;

    fn eval(src: &str) -> Result<Value, ExprError> {
        parse_expression(src)?.evaluate(&CTX)
    }

    #[test]
    fn evaluation_table() {
        check(
            r#"
            null => null
            true => true
            false => false
            -2.5 => -2.5
            0xff => 255
            1e3 => 1000
            'it''s' => "it's"
            1 == '1' => true
            null == 0 => true
            'ABC' == 'abc' => true
            true == 1 => true
            '' == 0 => true
            ' 3 ' == 3 => true
            NaN == NaN => false
            NaN != NaN => true
            1 < NaN => false
            NaN >= NaN => false
            'abc' == 0 => false
            'a' < 'B' => true
            2 >= '2' => true
            fromJSON('[]') == fromJSON('[]') => false
            matrix.list < 1 => false
            '' || 'fallback' => "fallback"
            'a' && 'b' => "b"
            0 && 'b' => 0
            null || 0 => 0
            !'' => true
            !matrix.list => false
            true || nope.x => true
            false && nope.x => false
            steps.build.outputs.x => "b"
            STEPS.Build.OUTPUTS.X => "b"
            steps['my-step'].outputs['x'] => "m"
            steps.missing.outputs.x => null
            env.MAJOR.deeper => null
            matrix.list[1] => "two"
            matrix.list['0'] => 1
            matrix.list[3] => null
            matrix.list[-1] => null
            matrix.list[0.5] => null
            matrix['list'][0] => 1
            steps[matrix.list] => null
            matrix[true] => null
            steps.*.outputs.x => ["b", "m"]
            steps.*.*.minor => ["7", "7"]
            matrix.list.* => [1, "two", null]
            matrix.os.* => []
            fromJSON('{"a":[{"b":1},{"c":2},{"b":3}]}').a.*.b => [1, 3]
            fromJSON('[[1],[2]]')[1][0] => 2
            contains('Hello World', 'WORLD') => true
            contains('abc', 'd') => false
            contains(matrix.list, 'TWO') => true
            contains(matrix.list, '1') => true
            contains(matrix.list, 3) => false
            contains(123, 2) => true
            startsWith('Refs/Heads/main', 'refs/') => true
            StartsWith('abc', 'b') => false
            endsWith('file.TXT', '.txt') => true
            endsWith('abc', 'b') => false
            format('{0} {1}!', 'Hello', 'World') => "Hello World!"
            format('{{{0}}} {1}{0}', 1.5, null) => "{1.5} 1.5"
            format('{0}', matrix.list) => "[\n  1,\n  \"two\",\n  null\n]"
            join(matrix.list) => "1,two,"
            join(matrix.list, ' | ') => "1 | two | "
            join('solo', '-') => "solo"
            toJSON(matrix.os) => "\"linux\""
            toJSON(fromJSON('{"b":[],"a":{"x":null}}')) => "{\n  \"a\": {\n    \"x\": null\n  },\n  \"b\": []\n}"
            fromJSON('{"a": [true, 2.5, null]}').a[1] => 2.5
            fromJSON(' "s" ') => "s"
            stepz.a => !0: unknown context `stepz`; available: big, env, matrix, steps
            1 && Nope == 2 => !5: unknown context `Nope`; available: big, env, matrix, steps
            format('{1}', 'a') => !0: format: placeholder `{1}` has no argument (1 given)
            format('{x}', 'a') => !0: format: invalid placeholder `{x}`
            format('{}') => !0: format: invalid placeholder `{}`
            format('{0', 'a') => !0: format: unmatched `{` in format string
            '' || format('a}b') => !6: format: unmatched `}` in format string
            success() => !0: unknown function `success`
            "#,
            eval,
        );
        assert!(matches!(eval("NaN"), Ok(Value::Number(n)) if n.is_nan()));
        let none = parse_expression("x").and_then(|e| e.evaluate(&Contexts::new()));
        assert_eq!(
            none.map_err(|e| e.message),
            Err("unknown context `x`; available: (none)".into())
        );
        // serde_json's wording is not ours to pin; check our part and the offset.
        let deep = format!("fromJSON('{}{}')", "[".repeat(5000), "]".repeat(5000));
        for (bad, offset) in [("0 || fromJSON('{oops')", 5), (deep.as_str(), 0)] {
            let e = eval(bad).expect_err("invalid JSON");
            assert!(e.message.starts_with("fromJSON: invalid JSON: ") && e.offset == offset);
        }
    }

    #[test]
    fn function_host() {
        let host = |name: &str, args: &[Value]| match name.to_ascii_lowercase().as_str() {
            "success" => Some(Ok(Value::Bool(true))),
            "hashfiles" if args.is_empty() => Some(Err("hashFiles needs a pattern".to_owned())),
            "hashfiles" => Some(Ok(Value::from("abc123"))),
            _ => None,
        };
        let run = |src: &str| parse_expression(src)?.evaluate_with(&CTX, &host);
        let table = r#"
            Success() && steps.build.outcome == 'SUCCESS' => true
            hashFiles('**/x') => "abc123"
            1 && hashFiles() => !5: hashFiles needs a pattern
            foo(1) => !0: unknown function `foo`
            contains('ab', 'B') => true
        "#;
        check(table, run);
    }

    #[test]
    fn cost_bound() {
        // Output size: each format level quadruples the text; the error names
        // the call that crosses 1 MiB, the 14th from the outside (23 bytes each).
        let mut src = format!("'{}'", "x".repeat(64));
        for _ in 0..20 {
            src = format!("format('{{0}}{{0}}{{0}}{{0}}', {src})");
        }
        check(&format!("{src} => !299: expression too expensive"), eval);
        let render = |src: &str| {
            Ok(Value::Number(
                Template::parse(src)?.render(&CTX)?.len() as f64
            ))
        };
        // Context data is not charged; produced text is, per whole template.
        // `.*` fan-outs cost a unit per value: 11,000 per `big.rows.*.*`.
        let table = r#"
            ${{ big.s }} => 300000
            ${{ format('{0}{0}{0}', big.s) }} => 900000
            ${{ format('{0}{0}{0}{0}', big.s) }} => !4: expression too expensive
            ${{ join(big.rows.*, big.s) }} => !4: expression too expensive
            ${{ toJSON(big.many) }} => !4: expression too expensive
            ${{ big.many }} => !4: expression too expensive
            ${{ format('{0}{0}', big.s) }}${{ format('{0}{0}', big.s) }} => !34: expression too expensive
            ${{ big.rows.*.* && big.rows.*.* && big.rows.*.* && big.rows.*.* && big.rows.*.* }} => 50002
        "#;
        check(table, render);
        let steps = ["big.rows.*.*"; 10].join(" && ");
        check(&format!("{steps} => !144: expression too expensive"), eval);
    }
}
