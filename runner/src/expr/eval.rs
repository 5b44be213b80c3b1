//! Tree-walking evaluator, built-in functions and the cost budget.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::json::parse_json;
use super::parser::{Expr, Kind, Seg};
use super::value::{Value, fold, get_ignore_case, loose_eq, loose_order, to_json};
use super::{Contexts, ExprError, MAX_MEMORY_BYTES, MAX_STEPS, Res};

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
///
/// Memory is measured as GitHub's runner measures it (its
/// `EvaluationMemory`): every result a node produces stays charged, at the
/// node's level in the tree, until the node above it has produced its own
/// result; then the deeper levels are released. So the total is what is
/// alive at once: the operands being combined plus the results of finished
/// siblings, never the garbage of finished subtrees.
pub(crate) struct Evaluator<'a> {
    ctx: &'a Contexts,
    host: Option<&'a dyn FunctionHost>,
    steps: usize,
    /// Level in the tree of the node being evaluated (0 for a root).
    level: usize,
    /// Bytes held by the results at each level, and their sum.
    held: Vec<usize>,
    held_total: usize,
}

/// GitHub's measure of a string's memory (its `CalculateBytes`): 26 bytes of
/// overhead plus two per UTF-16 code unit. Other values count 24.
pub(crate) fn memory_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => string_bytes(utf16_len(s)),
        _ => 24,
    }
}

fn string_bytes(units: usize) -> usize {
    units.saturating_mul(2).saturating_add(26)
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The error for an expression outgrowing the memory budget: `what` names
/// the function or says "its values".
fn over_budget(what: &str, offset: usize) -> ExprError {
    let mib = MAX_MEMORY_BYTES >> 20;
    ExprError::new(
        format!(
            "{what} would need more than the {mib} MiB of memory an expression may use \
             (GitHub's limit; a string counts 2 bytes per character)"
        ),
        offset,
    )
}

/// Text a function is building, measured as it grows so that it fails
/// before the text outgrows the budget rather than after.
struct Output {
    name: &'static str,
    text: String,
    units: usize,
}

impl Output {
    fn new(name: &'static str) -> Self {
        Output {
            name,
            text: String::new(),
            units: 0,
        }
    }

    fn push(&mut self, piece: &str, at: usize) -> Res<()> {
        let units = self.units.saturating_add(utf16_len(piece));
        if string_bytes(units) > MAX_MEMORY_BYTES {
            return Err(over_budget(&format!("`{}`", self.name), at));
        }
        self.text.push_str(piece);
        self.units = units;
        Ok(())
    }
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
            level: 0,
            held: Vec::new(),
            held_total: 0,
        }
    }

    fn charge(&mut self, steps: usize, offset: usize) -> Res<()> {
        self.steps = self.steps.saturating_add(steps);
        if self.steps > MAX_STEPS {
            let msg = format!("expression too expensive (more than {MAX_STEPS} evaluation steps)");
            return Err(ExprError::new(msg, offset));
        }
        Ok(())
    }

    /// Charges `bytes` for a result produced at `level`, first releasing
    /// the results of the levels below it (its operands, now consumed).
    fn hold(&mut self, level: usize, bytes: usize, offset: usize) -> Res<()> {
        for released in self
            .held
            .drain(level.saturating_add(1).min(self.held.len())..)
        {
            self.held_total = self.held_total.saturating_sub(released);
        }
        if self.held.len() <= level {
            self.held.resize(level + 1, 0);
        }
        if let Some(slot) = self.held.get_mut(level) {
            *slot = slot.saturating_add(bytes);
        }
        self.held_total = self.held_total.saturating_add(bytes);
        if self.held_total > MAX_MEMORY_BYTES {
            return Err(over_budget("the expression's values", offset));
        }
        Ok(())
    }

    /// Stringifies for output (GitHub's `ConvertToString`: arrays and objects
    /// become `Array` / `Object`).
    pub(crate) fn output_string(&mut self, v: &Value, offset: usize) -> Res<String> {
        let text = v.to_output_string();
        if !matches!(v, Value::String(_)) {
            self.hold(self.level, string_bytes(text.len()), offset)?;
        }
        Ok(text)
    }

    /// Evaluates `e`, charging its result to the memory budget. Recursion
    /// follows the AST, whose height the parser bounds.
    pub(crate) fn eval(&mut self, e: &'a Expr) -> Res<Cow<'a, Value>> {
        let level = self.level;
        self.level += 1;
        let result = self.eval_node(e);
        self.level = level;
        let value = result?;
        self.hold(level, memory_bytes(&value), e.span.start)?;
        Ok(value)
    }

    fn eval_node(&mut self, e: &'a Expr) -> Res<Cow<'a, Value>> {
        let at = e.span.start;
        self.charge(1, at)?;
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
                let (a, b) = (a.as_ref(), b.as_ref());
                Ok(Cow::Owned(Value::Bool(match *op {
                    "==" => loose_eq(a, b),
                    "!=" => !loose_eq(a, b),
                    "<" => loose_order(a, b, Ordering::Less),
                    "<=" => loose_eq(a, b) || loose_order(a, b, Ordering::Less),
                    ">" => loose_order(a, b, Ordering::Greater),
                    _ => loose_eq(a, b) || loose_order(a, b, Ordering::Greater),
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
                    self.charge(fanout, at)?;
                }
                Ok(match sel {
                    Sel::One(v) => v,
                    Sel::Many(v) => {
                        Cow::Owned(Value::Array(v.into_iter().map(Cow::into_owned).collect()))
                    }
                })
            }
            Kind::Call(name, args) if name.eq_ignore_ascii_case("case") => self.case(args, at),
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
        // `contains`, `startsWith` and `endsWith` compare the text of two
        // primitives ignoring case; with an array or object they are false
        // (except `contains` on an array, which looks for an equal element).
        let texts = || {
            let (a, b) = (arg(0), arg(1));
            (a.is_primitive() && b.is_primitive())
                .then(|| (fold(&a.to_output_string()), fold(&b.to_output_string())))
        };
        match name.to_ascii_lowercase().as_str() {
            "contains" => Ok(Value::Bool(match arg(0) {
                Value::Array(items) => items.iter().any(|x| loose_eq(x, arg(1))),
                _ => texts().is_some_and(|(a, b)| a.contains(&b)),
            })),
            "startswith" => Ok(Value::Bool(texts().is_some_and(|(a, b)| a.starts_with(&b)))),
            "endswith" => Ok(Value::Bool(texts().is_some_and(|(a, b)| a.ends_with(&b)))),
            "format" => self.format(&args, at).map(Value::String),
            "join" => {
                let items = match arg(0) {
                    Value::Array(items) => items,
                    Value::Object(_) => return Ok(Value::from("")),
                    primitive => return self.output_string(primitive, at).map(Value::String),
                };
                // A separator that is not a primitive falls back to `,`.
                let sep = match args.get(1) {
                    Some(sep) if sep.is_primitive() => self.output_string(sep, at)?,
                    _ => ",".to_owned(),
                };
                let mut out = Output::new("join");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(&sep, at)?;
                    }
                    out.push(&item.to_output_string(), at)?;
                }
                Ok(Value::String(out.text))
            }
            "tojson" => {
                // UTF-8 takes at most 3 bytes per UTF-16 unit, so this byte
                // bound stops the writer soon after the budget is passed; the
                // exact measure is checked on the result.
                let units = (MAX_MEMORY_BYTES - 26) / 2;
                let json = to_json(arg(0), units.saturating_mul(3))
                    .filter(|json| utf16_len(json) <= units)
                    .ok_or_else(|| over_budget("`toJSON`", at))?;
                Ok(Value::String(json))
            }
            "fromjson" => parse_json(&arg(0).to_output_string())
                .map_err(|e| ExprError::new(format!("fromJSON: invalid JSON: {e}"), at)),
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

    /// `case(pred1, val1, pred2, val2, ..., default)`: the value after the
    /// first predicate that is `true`, else the last argument. As in GitHub's
    /// runner (`Functions/Case.cs`), predicates are evaluated in order and
    /// only until one holds, each must be a boolean (not merely truthy), and
    /// only the chosen value is evaluated. The parser has already checked
    /// that the count is odd and at least 3.
    fn case(&mut self, args: &'a [Expr], at: usize) -> Res<Cow<'a, Value>> {
        let (default, pairs) = args
            .split_last()
            .ok_or_else(|| ExprError::new("`case` needs arguments", at))?;
        for pair in pairs.chunks(2) {
            let [predicate, value] = pair else {
                return Err(ExprError::new(
                    "`case` takes an odd number of arguments",
                    at,
                ));
            };
            match self.eval(predicate)?.as_ref() {
                Value::Bool(true) => return self.eval(value),
                Value::Bool(false) => {}
                other => {
                    let kind = match other {
                        Value::Null => "null",
                        Value::Number(_) => "a number",
                        Value::String(_) => "a string",
                        Value::Array(_) => "an array",
                        _ => "an object",
                    };
                    let msg = format!(
                        "a `case` predicate must be a boolean, got {kind}; compare explicitly \
                         (for example `x == 'yes'`)"
                    );
                    return Err(ExprError::new(msg, predicate.span.start));
                }
            }
        }
        self.eval(default)
    }

    /// `format('{0} and {1}', a, b)`, as GitHub parses it: `{{` and `}}`
    /// stand for literal braces; a placeholder is `{N}` with N from 0 to 255,
    /// optionally followed by `:` and format specifiers, which GitHub accepts
    /// only when empty (`{0:}`). Anything else is an error.
    fn format(&mut self, args: &[Cow<'a, Value>], at: usize) -> Res<String> {
        let pattern = args
            .first()
            .map(|v| v.to_output_string())
            .unwrap_or_default();
        let fail = |msg: String| Err(ExprError::new(format!("format: {msg}"), at));
        let mut out = Output::new("format");
        let mut rest = pattern.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            let (text, tail) = rest.split_at(i);
            out.push(text, at)?;
            if let Some(r) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
                out.push(tail.get(..1).unwrap_or_default(), at)?;
                rest = r;
                continue;
            }
            let Some(inner) = tail.strip_prefix('{') else {
                return fail(
                    "unmatched `}` in format string (write `}}` for a literal `}`)".into(),
                );
            };
            let digits = inner.bytes().take_while(u8::is_ascii_digit).count();
            let (index, after) = inner.split_at(digits);
            let spec_end = match after.as_bytes().first() {
                Some(b'}') => Some(0),
                Some(b':') => after.find('}'),
                _ => None,
            };
            let (Some(end), false) = (spec_end, index.is_empty()) else {
                return match inner.find('}') {
                    Some(close) => fail(format!(
                        "invalid placeholder `{{{}}}`",
                        inner.get(..close).unwrap_or_default()
                    )),
                    None => {
                        fail("unmatched `{` in format string (write `{{` for a literal `{`)".into())
                    }
                };
            };
            let spec = after.get(1..end).unwrap_or_default();
            if !spec.is_empty() {
                return fail(format!(
                    "format specifiers are not supported: `{{{index}:{spec}}}`"
                ));
            }
            let given = args.len().saturating_sub(1);
            let Some(value) = index
                .parse::<u8>()
                .ok()
                .and_then(|i| args.get(usize::from(i) + 1))
            else {
                return fail(format!(
                    "placeholder `{{{index}}}` has no argument ({given} given)"
                ));
            };
            out.push(&value.to_output_string(), at)?;
            rest = after.get(end + 1..).unwrap_or_default();
        }
        out.push(rest, at)?;
        Ok(out.text)
    }
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

/// Objects are indexed by name (case-insensitively, exact match first), a
/// primitive key being turned into text (`obj[1]` reads key `1`); arrays by
/// number, floored as GitHub does (`list['1']`, `list[1.7]` and `list[true]`
/// all read index 1; `list[null]` reads index 0). Anything else finds nothing.
fn lookup<'v>(v: &'v Value, key: &Key<'_>) -> Option<&'v Value> {
    match v {
        Value::Object(map) => {
            let name: Cow<'_, str> = match key {
                Key::Name(n) => Cow::Borrowed(n),
                Key::Val(Value::String(s)) => Cow::Borrowed(s),
                Key::Val(other) if other.is_primitive() => Cow::Owned(other.to_output_string()),
                Key::Val(_) => return None,
            };
            get_ignore_case(map, &name)
        }
        Value::Array(items) => {
            let n = match key {
                Key::Val(k) => k.to_number(),
                Key::Name(name) => Value::from(*name).to_number(),
            };
            if n.is_nan() || n < 0.0 || n.floor() > f64::from(i32::MAX) {
                return None;
            }
            // In range by the test above; the cast truncates like `floor`.
            items.get(n.floor() as usize)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{CTX, check};
    use super::super::{Contexts, FunctionSpec, Template, parse_expression, parse_expression_with};
    use super::*;

    fn eval(src: &str) -> Result<Value, ExprError> {
        parse_expression(src)?.evaluate(&CTX)
    }

    /// The examples of GitHub's "Literals" section, plus the number forms
    /// its parser accepts.
    #[test]
    fn literals() {
        check(
            r#"
            null => null
            false => false
            true => true
            711 => 711
            -9.2 => -9.2
            0xff => 255
            -2.99e-2 => -0.0299
            'Mona the Octocat' => "Mona the Octocat"
            'It''s open source!' => "It's open source!"
            '' => ""
            '${{ env.MAJOR }}' => "${{ env.MAJOR }}"
            .5 => 0.5
            -.5 => -0.5
            +3 => 3
            5. => 5
            1e3 => 1000
            2.5E-1 => 0.25
            0o17 => 15
            0xffffffff => -1
            -Infinity < -1e308 => true
            Infinity > 1e308 => true
            0X1F => !0: invalid number `0X1F`
            -0x10 => !0: invalid number `-0x10`
            1..2 => !0: invalid number `1..2`
            'abc'.length => !5: unexpected `.`
            1[0] => !1: unexpected `[`
            true.x => !4: unexpected `.`
            "#,
            eval,
        );
        assert!(matches!(eval("NaN"), Ok(Value::Number(n)) if n.is_nan()));
    }

    /// GitHub's operator section: loose equality with its coercion table,
    /// NaN, identity for arrays and objects, case-insensitive strings, and
    /// `&&` / `||` yielding operands.
    #[test]
    fn operators() {
        check(
            r#"
            # grouping, not, comparisons
            (1 == 1) && !(1 == 2) => true
            !null => true
            !'' => true
            !'0' => false
            !0 => true
            !NaN => true
            !fromJSON('[]') => false
            !fromJSON('{}') => false
            !!'x' => true
            1 < 2 => true
            2 <= 2 => true
            3 > 2 => true
            2 >= 3 => false
            # loose equality: mismatched types become numbers
            null == 0 => true
            null == '' => true
            null == false => true
            null == null => true
            true == 1 => true
            false == 0 => true
            true == 'true' => false
            true == '1' => true
            1 == '1' => true
            1 == '1.0' => true
            16 == '0x10' => true
            '' == 0 => true
            ' 3 ' == 3 => true
            'abc' == 0 => false
            1 != '1' => false
            # NaN is equal to nothing, itself included
            NaN == NaN => false
            NaN != NaN => true
            'abc' == NaN => false
            1 < NaN => false
            NaN >= NaN => false
            # strings compare ignoring case, ordinally
            'ABC' == 'abc' => true
            'Straße' == 'STRAßE' => true
            'a' < 'B' => true
            'B' < 'a' => false
            'abc' <= 'ABC' => true
            '10' < '9' => true
            '10' > 9 => true
            # booleans order false < true; null only equals
            true > false => true
            false < true => true
            null < 1 => true
            null <= null => true
            null < null => false
            # arrays and objects: equal only to the same instance
            matrix.list == matrix.list => true
            matrix.list <= matrix.list => true
            matrix.list < matrix.list => false
            github.event == github.event => true
            github.event == github.event.issue => false
            (matrix.list || 1) == matrix.list => true
            fromJSON('[]') == fromJSON('[]') => false
            fruits.* == fruits.* => false
            matrix.list == 'Array' => false
            matrix.list == 0 => false
            matrix.list < 1 => false
            github.event != github.event => false
            # && and || short-circuit and yield the deciding operand
            '' || 'fallback' => "fallback"
            'a' && 'b' => "b"
            0 && 'b' => 0
            null || 0 => 0
            true || nope.x => true
            false && nope.x => false
            github.ref == 'refs/heads/main' && 'value_for_main_branch' || 'value_for_other_branches' => "value_for_main_branch"
            github.ref == 'refs/heads/dev' && 'value_for_main_branch' || 'value_for_other_branches' => "value_for_other_branches"
            matrix.list || 'x' => [1, "two", null]
            "#,
            eval,
        );
    }

    /// Property access, indexes and the `.*` filter, with the examples of
    /// GitHub's "Object filters" section.
    #[test]
    fn contexts_and_filters() {
        check(
            r#"
            steps.build.outputs.x => "b"
            STEPS.Build.OUTPUTS.X => "b"
            steps['my-step'].outputs['x'] => "m"
            steps.missing.outputs.x => null
            env.MAJOR.deeper => null
            # arrays: the index is a number, floored; strings and booleans coerce
            matrix.list[1] => "two"
            matrix.list['1'] => "two"
            matrix.list[1.7] => "two"
            matrix.list[true] => "two"
            matrix.list[null] => 1
            matrix.list[''] => 1
            matrix.list[3] => null
            matrix.list[-1] => null
            matrix.list[-0.5] => null
            matrix.list['x'] => null
            matrix.list.length => null
            matrix['list'][0] => 1
            fromJSON('[[1],[2]]')[1][0] => 2
            (matrix.list)[0] => 1
            # objects: a primitive key is used as text
            fromJSON('{"1": "one", "true": "yes", "": "empty", "1.5": "x"}')[1] => "one"
            fromJSON('{"1": "one", "true": "yes", "": "empty", "1.5": "x"}')[true] => "yes"
            fromJSON('{"1": "one", "true": "yes", "": "empty", "1.5": "x"}')[null] => "empty"
            fromJSON('{"1": "one", "true": "yes", "": "empty", "1.5": "x"}')[1.50] => "x"
            steps[matrix.list] => null
            matrix[true] => null
            # filters
            fruits.*.name => ["apple", "orange", "pear"]
            fruits[*].name => ["apple", "orange", "pear"]
            fruits.*.quantity => [1, 2, 1]
            github.event.issue.labels.*.name => ["bug", "help wanted"]
            vegetables.*.ediblePortions => [["hearts", "stems", "leaves"], ["roots", "stems", "leaves"], ["roots", "stalks"]]
            vegetables.*.ediblePortions.* => ["hearts", "stems", "leaves", "roots", "stems", "leaves", "roots", "stalks"]
            vegetables.*.colors[0] => ["green", "purple", "green"]
            vegetables.*.missing => []
            steps.*.outputs.x => ["b", "m"]
            steps.*.*.minor => ["7", "7"]
            matrix.list.* => [1, "two", null]
            matrix.list.*.x => []
            matrix.os.* => []
            fromJSON('{"a":[{"b":1},{"c":2},{"b":3}]}').a.*.b => [1, 3]
            fromJSON('[{"a":null},{"b":1}]').*.a => [null]
            fromJSON('[[1,2],[3]]').*.* => [1, 2, 3]
            fromJSON('[[1,2],[3]]').*[0] => [1, 3]
            fromJSON('[[1,2],[3]]').*[1] => [2]
            stepz.a => !0: unknown context `stepz`; available: big, env, fruits, github, job, matrix, steps, vegetables
            1 && Nope == 2 => !5: unknown context `Nope`; available: big, env, fruits, github, job, matrix, steps, vegetables
            "#,
            eval,
        );
    }

    /// The functions, with the examples of GitHub's "Functions" section.
    #[test]
    fn functions() {
        check(
            r#"
            contains('Hello world', 'llo') => true
            contains(github.event.issue.labels.*.name, 'bug') => true
            contains(fromJSON('["push", "pull_request"]'), github.event_name) => true
            contains('Hello World', 'WORLD') => true
            contains('abc', 'd') => false
            contains(matrix.list, 'TWO') => true
            contains(matrix.list, '1') => true
            contains(matrix.list, null) => true
            contains(matrix.list, 3) => false
            contains(fromJSON('[]'), null) => false
            contains(fruits, fruits[0]) => true
            contains(fruits, fromJSON('{"name": "apple", "quantity": 1}')) => false
            contains(123, 2) => true
            contains(true, 'RU') => true
            contains(null, '') => true
            contains(1.50, '.5') => true
            contains(github.event, 'issue') => false
            contains('Object', github.event) => false
            startsWith('Hello world', 'He') => true
            startsWith('Refs/Heads/main', 'refs/') => true
            StartsWith('abc', 'b') => false
            startsWith(github.event, 'Obj') => false
            startsWith(null, '') => true
            endsWith('Hello world', 'ld') => true
            endsWith('file.TXT', '.txt') => true
            endsWith('abc', 'b') => false
            endsWith(matrix.list, 'y') => false
            format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat') => "Hello Mona the Octocat"
            format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat') => "{Hello Mona the Octocat!}"
            format('{0} {1}!', 'Hello', 'World') => "Hello World!"
            format('{{{0}}} {1}{0}', 1.5, null) => "{1.5} 1.5"
            format('{0}|{1}|{2}|{3}|{4}', null, true, 1.0, matrix.list, github.event) => "|true|1|Array|Object"
            format('{0}{0}{00}', 'x') => "xxx"
            format('{0:}', 'x') => "x"
            format('}}{{') => "}{"
            format('no placeholders') => "no placeholders"
            format(1e15) => "1E+15"
            format('{1}', 'a') => !0: format: placeholder `{1}` has no argument (1 given)
            format('{256}', 'a') => !0: format: placeholder `{256}` has no argument (1 given)
            format('{x}', 'a') => !0: format: invalid placeholder `{x}`
            format('{ 0}', 'a') => !0: format: invalid placeholder `{ 0}`
            format('{}') => !0: format: invalid placeholder `{}`
            format('{0', 'a') => !0: format: unmatched `{` in format string (write `{{` for a literal `{`)
            '' || format('a}b') => !6: format: unmatched `}` in format string (write `}}` for a literal `}`)
            format('{0:x}', 255) => !0: format: format specifiers are not supported: `{0:x}`
            join(github.event.issue.labels.*.name, ', ') => "bug, help wanted"
            join(matrix.list) => "1,two,"
            join(matrix.list, ' | ') => "1 | two | "
            join(fromJSON('[]'), '-') => ""
            join(fromJSON('["a"]'), '-') => "a"
            join(fromJSON('[[1], {}, 2.50]')) => "Array,Object,2.5"
            join(fromJSON('["a", "b"]'), fromJSON('[]')) => "a,b"
            join(fromJSON('["a", "b"]'), true) => "atrueb"
            join('solo', '-') => "solo"
            join(12.50) => "12.5"
            join(null) => ""
            join(github.event) => ""
            toJSON(job) => "{\n  \"status\": \"success\"\n}"
            toJSON(matrix.os) => "\"linux\""
            toJSON(matrix.list) => "[\n  1,\n  \"two\",\n  null\n]"
            toJSON(1.0) => "1"
            toJSON(-0.5) => "-0.5"
            toJSON(true) => "true"
            toJSON(null) => "null"
            toJSON('') => "\"\""
            toJSON(fromJSON('[]')) => "[]"
            toJSON(fromJSON('{}')) => "{}"
            toJSON(fromJSON('[1e20, 0.1, "a\"b\\c\n"]')) => "[\n  1E+20,\n  0.1,\n  \"a\\\"b\\\\c\\n\"\n]"
            toJSON(fromJSON('{"b":[],"a":{"x":null,"y":[{}]}}')) => "{\n  \"b\": [],\n  \"a\": {\n    \"x\": null,\n    \"y\": [\n      {}\n    ]\n  }\n}"
            toJSON(fruits.*.name) => "[\n  \"apple\",\n  \"orange\",\n  \"pear\"\n]"
            fromJSON('{"a": [true, 2.5, null]}').a[1] => 2.5
            fromJSON(' "s" ') => "s"
            fromJSON('true') => true
            fromJSON('null') => null
            fromJSON(env.MAJOR) => 2
            fromJSON(toJSON(fruits)).*.name => ["apple", "orange", "pear"]
            success() => !0: unknown function `success`; the functions are: case, contains, endsWith, format, fromJSON, join, startsWith, toJSON
            "#,
            eval,
        );
        // serde_json's wording is not ours to pin; check our part and the offset.
        let deep = format!("fromJSON('{}{}')", "[".repeat(5000), "]".repeat(5000));
        let cases = [
            ("0 || fromJSON('{oops')", 5),
            ("fromJSON('')", 0),
            (deep.as_str(), 0),
        ];
        for (bad, offset) in cases {
            let e = eval(bad).expect_err("invalid JSON");
            assert!(e.message.starts_with("fromJSON: invalid JSON: ") && e.offset == offset);
        }
        let none = parse_expression("x").and_then(|e| e.evaluate(&Contexts::new()));
        assert_eq!(
            none.map_err(|e| e.message),
            Err("unknown context `x`; available: (none)".into())
        );
    }

    #[test]
    fn function_host() {
        let host = |name: &str, args: &[Value]| match name.to_ascii_lowercase().as_str() {
            "success" => Some(Ok(Value::Bool(true))),
            "hashfiles" if args.is_empty() => Some(Err("hashFiles needs a pattern".to_owned())),
            "hashfiles" => Some(Ok(Value::from("abc123"))),
            _ => None,
        };
        let specs = [
            FunctionSpec::new("success", 0, 0),
            FunctionSpec::new("hashFiles", 0, 1),
            FunctionSpec::new("foo", 1, 1),
        ];
        let run = |src: &str| parse_expression_with(src, &specs)?.evaluate_with(&CTX, &host);
        let table = r#"
            Success() && steps.build.outcome == 'SUCCESS' => true
            hashFiles('**/x') => "abc123"
            1 && hashFiles() => !5: hashFiles needs a pattern
            foo(1) => !0: unknown function `foo`
            contains('ab', 'B') => true
        "#;
        // `foo` is declared but the host does not answer it: evaluation
        // still refuses it rather than inventing a value.
        check(table, run);
    }

    #[test]
    fn cost_bound() {
        // Output size: each format level quadruples the text; the error names
        // the call whose text would pass 1 MiB at 2 bytes a character
        // (64 * 4^7 characters), the 14th from the outside (23 bytes each).
        let mut src = format!("'{}'", "x".repeat(64));
        for _ in 0..20 {
            src = format!("format('{{0}}{{0}}{{0}}{{0}}', {src})");
        }
        let budget = "would need more than the 1 MiB of memory an expression may use (GitHub's limit; a string counts 2 bytes per character)";
        check(&format!("{src} => !299: `format` {budget}"), eval);
        let render = |src: &str| {
            Ok(Value::Number(
                Template::parse(src)?.render(&CTX)?.len() as f64
            ))
        };
        // `big.s` is 300,000 characters: 600,026 bytes by GitHub's measure,
        // so one copy fits in 1 MiB and two do not, whether a function
        // builds them or two values are alive at once. Finished operands
        // are released: three nested copies never coexist.
        // `.*` fan-outs cost a unit per value: 11,000 per `big.rows.*.*`.
        let table = r#"
            ${{ big.s }} => 300000
            ${{ format('{0}', big.s) }} => 300000
            ${{ format('{0}', format('{0}', format('{0}', big.s))) }} => 300000
            ${{ format('{0}{0}', big.s) }} => !4: `format` BUDGET
            ${{ join(big.rows.*, big.s) }} => !4: `join` BUDGET
            ${{ toJSON(big.many) }} => !4: `toJSON` BUDGET
            ${{ big.many }} => 5
            ${{ big.s }}${{ big.s }} => !16: the expression's values BUDGET
            ${{ big.s == format('{0}', big.s) }} => !27: the expression's values BUDGET
            ${{ big.rows.*.* && big.rows.*.* && big.rows.*.* && big.rows.*.* && big.rows.*.* }} => 5
        "#;
        check(&table.replace("BUDGET", budget), render);
        let steps = ["big.rows.*.*"; 10].join(" && ");
        check(
            &format!(
                "{steps} => !144: expression too expensive (more than 100000 evaluation steps)"
            ),
            eval,
        );
        // Non-ASCII text counts in UTF-16 units, as in .NET: 'é' is one
        // unit (two bytes) however UTF-8 spells it.
        let wide = "é".repeat(270_000);
        let mut ctx = Contexts::new();
        ctx.insert("w", Value::from(wide.as_str()));
        let two = parse_expression("format('{0}{0}', w)").unwrap();
        assert!(two.evaluate(&ctx).is_err());
        let one = parse_expression("format('{0}', w)").unwrap();
        assert_eq!(one.evaluate(&ctx), Ok(Value::String(wide)));
    }
}

/// Issue 18, point 1: where gantry used to disagree with GitHub's runner.
#[cfg(test)]
mod github_agreement {
    use super::super::tests::{CTX, check};
    use super::super::{Contexts, Template, parse_expression};
    use super::*;

    fn eval(src: &str) -> Result<Value, ExprError> {
        parse_expression(src)?.evaluate(&CTX)
    }

    /// Ordinal comparison after .NET's invariant upper-casing, which leaves
    /// the dotless `ı` alone (so it is not `I`, and sorts after ASCII).
    #[test]
    fn case_folding_follows_dotnet_invariant() {
        check(
            r#"
            'ı' == 'I' => false
            'ı' == 'i' => false
            'ı' != 'I' => true
            'ı' == 'ı' => true
            'i' == 'I' => true
            'é' == 'É' => true
            'ß' == 'SS' => false
            'ı' < 'J' => false
            'ı' > 'Z' => true
            'ıa' > 'IZ' => true
            'I' < 'J' => true
            'i' < 'J' => true
            'ı' >= 'I' => true
            'ı' <= 'I' => false
            startsWith('ırmak', 'I') => false
            startsWith('irmak', 'I') => true
            endsWith('KAPı', 'i') => false
            endsWith('kapi', 'I') => true
            contains('ıI', 'ii') => false
            contains('ıIı', 'ıi') => true
            contains(fromJSON('["ı"]'), 'I') => false
            "#,
            eval,
        );
    }

    /// Keys come out in the order they were written, not sorted.
    #[test]
    fn object_keys_keep_insertion_order() {
        check(
            r#"
            toJSON(fromJSON('{"zeta": 1, "alpha": 2, "Mid": {"y": 1, "b": 2}}')) => "{\n  \"zeta\": 1,\n  \"alpha\": 2,\n  \"Mid\": {\n    \"y\": 1,\n    \"b\": 2\n  }\n}"
            join(fromJSON('{"z": "1", "a": "2", "m": "3"}').*, ',') => "1,2,3"
            toJSON(fromJSON('{"z": {"v": 1}, "a": {"v": 2}}').*.v) => "[\n  1,\n  2\n]"
            toJSON(vegetables.*.colors[0]) => "[\n  \"green\",\n  \"purple\",\n  \"green\"\n]"
            "#,
            eval,
        );
    }

    /// `case(pred, value, ..., default)`, lazily, with boolean predicates.
    #[test]
    fn case_function() {
        check(
            r#"
            case(true, 'a', 'b') => "a"
            case(false, 'a', 'b') => "b"
            case(false, 'a', 1 == 1, 'b', 'c') => "b"
            case(false, 'a', false, 'b', 'c') => "c"
            CASE(matrix.os == 'linux', 'penguin', 'other') => "penguin"
            case(true, fromJSON('[1]'), 2)[0] => 1
            case(true, 'x', nope.y) => "x"
            case(false, nope.y, 'z') => "z"
            case(true, 'x', false, nope.y, 'z') => "x"
            case(1, 'a', 'b') => !5: a `case` predicate must be a boolean, got a number; compare explicitly (for example `x == 'yes'`)
            case(false, 'a', 'yes', 'b', 'c') => !17: a `case` predicate must be a boolean, got a string; compare explicitly (for example `x == 'yes'`)
            case(null, 'a', 'b') => !5: a `case` predicate must be a boolean, got null; compare explicitly (for example `x == 'yes'`)
            case(false, 'a', nope.y, 'b', 'c') => !17: unknown context `nope`; available: big, env, fruits, github, job, matrix, steps, vegetables
            "#,
            eval,
        );
    }

    /// `${{ }}` is an empty value, in text and as a whole value.
    #[test]
    fn empty_expression_is_null() {
        let t = Template::parse("a${{ }}b${{}}c").unwrap();
        assert_eq!(t.render(&Contexts::new()), Ok("abc".to_owned()));
        let whole = Template::parse("${{   }}").unwrap();
        let e = whole.as_single_expression().expect("one expression");
        assert_eq!(e.evaluate(&Contexts::new()), Ok(Value::Null));
        assert!(whole.references().is_empty());
    }
}
