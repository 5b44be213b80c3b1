//! Recursive-descent parser producing a span-annotated AST.
//!
//! Precedence, tightest first: `()` grouping, `[]` index, `.` property,
//! `!`, `< <= > >=`, `== !=`, `&&`, `||`.

use super::lexer::{Tok, Token, lex};
use super::value::Value;
use super::{ExprError, FunctionSpec, MAX_DEPTH, MAX_EXPRESSION_LEN, MAX_NESTING, Res};

/// Byte range of a node in the whole source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

/// An AST node. `height` is tracked so the depth bound also covers trees
/// that grow without textual nesting (`a == b == c == ...`).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: Kind,
    pub span: Span,
    pub height: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Lit(Value),
    /// A top-level context name such as `env`.
    Ctx(String),
    /// A base followed by `.name`, `[index]` and `.*` steps, kept flat so
    /// long property chains cost no recursion depth.
    Access(Box<Expr>, Vec<Seg>),
    Not(Box<Expr>),
    /// A comparison or equality; the operator as written.
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    /// An `||` chain (flag set) or `&&` chain; n-ary for the same reason.
    Logic(bool, Vec<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Prop(String),
    Index(Expr),
    Star,
}

type Parsed = Res<Expr>;

/// The built-in functions and their argument counts, as GitHub's runner
/// declares them (`ExpressionConstants`): `case` takes 3 to 255 arguments
/// there (the language service allows more; we follow the runner).
pub const BUILTIN_FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec::new("case", 3, 255),
    FunctionSpec::new("contains", 2, 2),
    FunctionSpec::new("endsWith", 2, 2),
    FunctionSpec::new("format", 1, 255),
    FunctionSpec::new("fromJSON", 1, 1),
    FunctionSpec::new("join", 1, 2),
    FunctionSpec::new("startsWith", 2, 2),
    FunctionSpec::new("toJSON", 1, 1),
];

/// Parses `src`, whose first byte sits at `base` in the enclosing text.
/// A call must name a built-in function or one of `functions`, with an
/// accepted number of arguments, wherever it stands: as in GitHub, this is
/// a parse error even in a branch that evaluation would skip.
#[cfg(test)]
pub(crate) fn parse(src: &str, base: usize) -> Parsed {
    parse_with(src, base, &[])
}

/// [`parse`], also accepting calls to `functions`.
pub(crate) fn parse_with(src: &str, base: usize, functions: &[FunctionSpec]) -> Parsed {
    if src.len() > MAX_EXPRESSION_LEN {
        let msg = format!("expression is too long (limit {MAX_EXPRESSION_LEN} bytes)");
        return Err(ExprError::new(msg, base));
    }
    let end = base + src.len();
    let mut p = Parser {
        src,
        base,
        end,
        toks: lex(src, base)?,
        pos: 0,
        depth: 0,
        functions,
    };
    if p.toks.is_empty() {
        return Err(ExprError::new("empty expression", base));
    }
    let e = p.or()?;
    match p.toks.get(p.pos) {
        Some(t) => Err(p.unexpected(t)),
        None => Ok(e),
    }
}

struct Parser<'s> {
    src: &'s str,
    base: usize,
    end: usize,
    toks: Vec<Token>,
    pos: usize,
    /// Current textual nesting, bounded so recursion cannot run away.
    depth: usize,
    /// Functions callable besides the built-in ones.
    functions: &'s [FunctionSpec],
}

impl Parser<'_> {
    /// Consumes the operator `op` if it is next, returning its span.
    fn eat(&mut self, op: &str) -> Option<Span> {
        let t = self
            .toks
            .get(self.pos)
            .filter(|t| matches!(t.tok, Tok::Op(o) if o == op))?;
        let span = Span {
            start: t.start,
            end: t.end,
        };
        self.pos += 1;
        Some(span)
    }

    fn unexpected(&self, t: &Token) -> ExprError {
        let text = self
            .src
            .get(t.start - self.base..t.end - self.base)
            .unwrap_or_default();
        ExprError::new(format!("unexpected `{text}`"), t.start)
    }

    /// Requires the closing `op` for the bracket opened at `open`.
    fn close(&mut self, op: &str, open: usize) -> Res<usize> {
        if let Some(span) = self.eat(op) {
            return Ok(span.end);
        }
        Err(match self.toks.get(self.pos) {
            Some(t) => ExprError::new(
                format!("{}; expected `{op}`", self.unexpected(t).message),
                t.start,
            ),
            None => ExprError::new(format!("missing `{op}`"), open),
        })
    }

    /// Runs `f` one nesting level deeper.
    fn nested<T, F>(&mut self, at: usize, f: F) -> Res<T>
    where
        F: FnOnce(&mut Self) -> Res<T>,
    {
        // Parentheses add textual nesting but no tree depth (GitHub drops
        // them), so this bound sits above MAX_DEPTH and only stops runaway
        // recursion on text such as thousands of `(`.
        if self.depth >= MAX_NESTING {
            return Err(too_deep(at));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Parsed {
        self.logic("||", Self::and)
    }

    fn and(&mut self) -> Parsed {
        self.logic("&&", Self::equality)
    }

    fn logic(&mut self, op: &str, operand: fn(&mut Self) -> Parsed) -> Parsed {
        let first = operand(self)?;
        let start = first.span.start;
        let mut items = vec![first];
        while self.eat(op).is_some() {
            items.push(operand(self)?);
        }
        // GitHub flattens `(a && b) && c` into one `&&` of three operands
        // (`FlushTopOperator`), which matters for the depth limit only.
        let is_or = op == "||";
        items = items
            .into_iter()
            .flat_map(|item| match item.kind {
                Kind::Logic(or, inner) if or == is_or => inner,
                kind => vec![Expr { kind, ..item }],
            })
            .collect();
        let end = items.last().map_or(start, |e| e.span.end);
        match (items.len(), items.pop()) {
            (1, Some(only)) => Ok(only),
            (_, last) => {
                items.extend(last);
                node(Kind::Logic(op == "||", items), Span { start, end })
            }
        }
    }

    fn equality(&mut self) -> Parsed {
        self.binary(&["==", "!="], Self::comparison)
    }

    fn comparison(&mut self) -> Parsed {
        self.binary(&["<=", ">=", "<", ">"], Self::unary)
    }

    fn binary(&mut self, ops: &[&'static str], operand: fn(&mut Self) -> Parsed) -> Parsed {
        let mut lhs = operand(self)?;
        while let Some(op) = ops.iter().copied().find(|op| self.eat(op).is_some()) {
            let rhs = operand(self)?;
            let (start, end) = (lhs.span.start, rhs.span.end);
            lhs = node(
                Kind::Cmp(op, Box::new(lhs), Box::new(rhs)),
                Span { start, end },
            )?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Parsed {
        let Some(Span { start, .. }) = self.eat("!") else {
            return self.postfix();
        };
        let inner = self.nested(start, Self::unary)?;
        let end = inner.span.end;
        node(Kind::Not(Box::new(inner)), Span { start, end })
    }

    fn postfix(&mut self) -> Parsed {
        let literal = matches!(
            self.toks.get(self.pos).map(|t| &t.tok),
            Some(Tok::Num(_) | Tok::Str(_))
        ) || self.next_is_keyword_literal();
        let base = self.primary()?;
        // As in GitHub, a literal cannot be indexed: `'abc'.x` and `1[0]` are
        // syntax errors (the `.` or `[` is reported as unexpected).
        if literal {
            return Ok(base);
        }
        let (start, mut end) = (base.span.start, base.span.end);
        let mut segs = Vec::new();
        loop {
            if let Some(dot) = self.eat(".") {
                let (seg, seg_end) = match self.toks.get(self.pos) {
                    Some(Token {
                        tok: Tok::Ident(name),
                        end,
                        ..
                    }) => (Seg::Prop(name.clone()), *end),
                    Some(Token {
                        tok: Tok::Op("*"),
                        end,
                        ..
                    }) => (Seg::Star, *end),
                    other => {
                        let at = other.map_or(dot.end, |t| t.start);
                        let msg = "expected a property name or `*` after `.`";
                        return Err(ExprError::new(msg, at));
                    }
                };
                self.pos += 1;
                segs.push(seg);
                end = seg_end;
            } else if let Some(open) = self.eat("[") {
                // `[*]` is the same filter as `.*`.
                let star = matches!(self.toks.get(self.pos).map(|t| &t.tok), Some(Tok::Op("*")))
                    && matches!(
                        self.toks.get(self.pos + 1).map(|t| &t.tok),
                        Some(Tok::Op("]"))
                    );
                if star {
                    self.pos += 1;
                    segs.push(Seg::Star);
                } else {
                    segs.push(Seg::Index(self.nested(open.start, Self::or)?));
                }
                end = self.close("]", open.start)?;
            } else {
                break;
            }
        }
        if segs.is_empty() {
            return Ok(base);
        }
        node(Kind::Access(Box::new(base), segs), Span { start, end })
    }

    /// Whether the next token is a keyword literal (`true`, `null`, ...)
    /// rather than a context or function name.
    fn next_is_keyword_literal(&self) -> bool {
        matches!(
            self.toks.get(self.pos).map(|t| &t.tok),
            Some(Tok::Ident(name)) if matches!(name.as_str(), "true" | "false" | "null" | "NaN" | "Infinity")
        )
    }

    fn primary(&mut self) -> Parsed {
        let t = self.toks.get(self.pos).cloned();
        let t = t.ok_or_else(|| ExprError::new("unexpected end of expression", self.end))?;
        self.pos += 1;
        let kind = match t.tok {
            Tok::Num(n) => Kind::Lit(Value::Number(n)),
            Tok::Str(s) => Kind::Lit(Value::String(s)),
            Tok::Op("(") => {
                let inner = self.nested(t.start, Self::or)?;
                self.close(")", t.start)?;
                return Ok(inner);
            }
            Tok::Ident(name) => match name.as_str() {
                "true" | "false" => Kind::Lit(Value::Bool(name == "true")),
                "null" => Kind::Lit(Value::Null),
                "NaN" => Kind::Lit(Value::Number(f64::NAN)),
                "Infinity" => Kind::Lit(Value::Number(f64::INFINITY)),
                _ if self.eat("(").is_some() => return self.call(name, t.start),
                _ => Kind::Ctx(name),
            },
            Tok::Op(_) => return Err(self.unexpected(&t)),
        };
        node(
            kind,
            Span {
                start: t.start,
                end: t.end,
            },
        )
    }

    /// Arguments of `name(`, whose `(` was just consumed.
    fn call(&mut self, name: String, start: usize) -> Parsed {
        let args = self.nested(start, |p| {
            let mut args = Vec::new();
            if p.eat(")").is_none() {
                args.push(p.or()?);
                while p.eat(",").is_some() {
                    args.push(p.or()?);
                }
                p.close(")", start)?;
            }
            Ok(args)
        })?;
        let end = self
            .toks
            .get(self.pos.wrapping_sub(1))
            .map_or(start, |t| t.end);
        let known = || BUILTIN_FUNCTIONS.iter().chain(self.functions);
        let Some(spec) = known().find(|f| f.name.eq_ignore_ascii_case(&name)) else {
            let mut names: Vec<&str> = known().map(|f| f.name).collect();
            names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
            let msg = format!(
                "unknown function `{name}`; the functions are: {}",
                names.join(", ")
            );
            return Err(ExprError::new(msg, start));
        };
        let (min, max, got) = (spec.min_args, spec.max_args, args.len());
        if !(min..=max).contains(&got) {
            let wanted = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, b) => format!("{a} to {b}"),
            };
            let msg = format!("function `{name}` takes {wanted} argument(s), got {got}");
            return Err(ExprError::new(msg, start));
        }
        if spec.name == "case" && got % 2 == 0 {
            let msg = format!(
                "function `{name}` takes an odd number of arguments (predicate and value \
                 pairs, then a default), got {got}"
            );
            return Err(ExprError::new(msg, start));
        }
        node(Kind::Call(name, args), Span { start, end })
    }
}

/// A `null` literal at `at`, the tree of an empty `${{ }}`.
pub(crate) fn null_at(at: usize) -> Expr {
    Expr {
        kind: Kind::Lit(Value::Null),
        span: Span { start: at, end: at },
        height: 1,
    }
}

fn too_deep(offset: usize) -> ExprError {
    ExprError::new(
        format!(
            "expression is nested too deeply (GitHub's limit is {MAX_DEPTH} levels; each \
             operator, function call, `.property` and `[index]` is one); split it up"
        ),
        offset,
    )
}

/// Builds a node, computing its height and enforcing the depth bound.
///
/// Height is counted as GitHub's runner counts depth (`CheckMaxDepth` over
/// its tree): a leaf is one level, and each operator, function call and
/// each `.name`, `.*` or `[index]` step adds one, since the runner builds
/// `a.b.c` as `Index(Index(a, 'b'), 'c')`. Parentheses add nothing, and a
/// chain of `&&` (or `||`) is one node. GitHub's language service counts
/// parser recursion instead (parentheses count, comparisons do not); the
/// runner is what decides whether a workflow runs, so we follow it.
fn node(kind: Kind, span: Span) -> Parsed {
    let max = |items: &[Expr]| items.iter().map(|e| e.height).max().unwrap_or(0);
    let child = match &kind {
        Kind::Lit(_) | Kind::Ctx(_) => 0,
        Kind::Not(e) => e.height,
        Kind::Cmp(_, a, b) => a.height.max(b.height),
        Kind::Logic(_, v) | Kind::Call(_, v) => max(v),
        // Step i of n sits under n - i index nodes of the chain (0-based i);
        // a `.name` or `.*` is a one-level leaf of its index node.
        Kind::Access(base, segs) => {
            let n = segs.len();
            let steps = segs.iter().enumerate().map(|(i, s)| {
                let own = match s {
                    Seg::Index(e) => e.height,
                    Seg::Prop(_) | Seg::Star => 1,
                };
                own + (n - i - 1)
            });
            steps.fold(base.height + n - 1, usize::max)
        }
    };
    if child >= MAX_DEPTH {
        return Err(too_deep(span.start));
    }
    Ok(Expr {
        kind,
        span,
        height: child + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints the tree in prefix form to check its shape.
    fn show(e: &Expr) -> String {
        let list = |v: &[Expr]| v.iter().map(show).collect::<Vec<_>>().join(" ");
        match &e.kind {
            Kind::Lit(v) => v.to_output_string(),
            Kind::Ctx(n) => n.clone(),
            Kind::Not(x) => format!("(! {})", show(x)),
            Kind::Cmp(op, a, b) => format!("({op} {} {})", show(a), show(b)),
            Kind::Logic(or, v) => format!("({} {})", if *or { "||" } else { "&&" }, list(v)),
            Kind::Call(n, v) => format!("({n} {})", list(v)),
            Kind::Access(b, segs) => segs.iter().fold(show(b), |s, seg| match seg {
                Seg::Prop(p) => format!("{s}.{p}"),
                Seg::Index(i) => format!("{s}[{}]", show(i)),
                Seg::Star => format!("{s}.*"),
            }),
        }
    }

    fn err(src: &str) -> (String, usize) {
        let e = parse(src, 0).expect_err(src);
        (e.message, e.offset)
    }

    #[test]
    fn precedence_and_shape() {
        let cases = [
            ("a || b && c", "(|| a (&& b c))"),
            ("a && b == c", "(&& a (== b c))"),
            ("a == b < c", "(== a (< b c))"),
            ("a != b != c", "(!= (!= a b) c)"),
            ("!a.b == c", "(== (! a.b) c)"),
            ("!(a || b)", "(! (|| a b))"),
            ("a || b || c", "(|| a b c)"),
            ("a.b['c'].*.d[0]", "a.b[c].*.d[0]"),
            ("a[*].b[ * ]", "a.*.b.*"),
            ("(1)[0]", "1[0]"),
            ("format('{0}', true, null)", "(format {0} true )"),
            ("fromJSON('{}').a", "(fromJSON {}).a"),
            ("steps.null.true", "steps.null.true"),
            ("f()", "(f )"),
            // `&&` / `||` chains flatten through parentheses, as in GitHub.
            ("(a && b) && (c && d)", "(&& a b c d)"),
            ("(a || b) && c", "(&& (|| a b) c)"),
        ];
        let f = [FunctionSpec::new("f", 0, 1)];
        for (src, want) in cases {
            assert_eq!(show(&parse_with(src, 0, &f).expect(src)), want, "{src}");
        }
        let e = parse("  a.b == 'x'", 7).expect("parses");
        assert_eq!(e.span, Span { start: 9, end: 19 });
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let cases = [
            ("a &&", "unexpected end of expression", 4),
            ("a b", "unexpected `b`", 2),
            ("(a", "missing `)`", 0),
            ("(a b", "unexpected `b`; expected `)`", 3),
            ("a[1", "missing `]`", 1),
            ("a.'x'", "expected a property name or `*` after `.`", 2),
            ("a.", "expected a property name or `*` after `.`", 2),
            (")", "unexpected `)`", 0),
            ("  ", "empty expression", 0),
            ("f(a,)", "unexpected `)`", 4),
            ("x * 2", "unexpected `*`", 2),
            ("'a'.b", "unexpected `.`", 3),
            ("null[0]", "unexpected `[`", 4),
            ("a[*", "unexpected `*`", 2),
            (
                "a == contains('x')",
                "function `contains` takes 2 argument(s), got 1",
                5,
            ),
            (
                "JOIN(a, b, c)",
                "function `JOIN` takes 1 to 2 argument(s), got 3",
                0,
            ),
            (
                "format()",
                "function `format` takes 1 to 255 argument(s), got 0",
                0,
            ),
        ];
        for (src, msg, offset) in cases {
            assert_eq!(err(src), (msg.to_owned(), offset), "{src}");
        }
    }

    #[test]
    fn unknown_functions_and_counts_are_parse_errors() {
        let cases = [
            // Even where evaluation would never reach the call.
            (
                "false && nonExistentFunction()",
                "unknown function `nonExistentFunction`; the functions are: case, contains, endsWith, format, fromJSON, join, startsWith, toJSON",
                9,
            ),
            (
                "true || f(1)",
                "unknown function `f`; the functions are: case, contains, endsWith, format, fromJSON, join, startsWith, toJSON",
                8,
            ),
            (
                "case(true, 1)",
                "function `case` takes 3 to 255 argument(s), got 2",
                0,
            ),
            (
                "case(true, 1, false, 2)",
                "function `case` takes an odd number of arguments (predicate and value pairs, then a default), got 4",
                0,
            ),
            (
                "a || toJSON()",
                "function `toJSON` takes 1 argument(s), got 0",
                5,
            ),
        ];
        for (src, msg, offset) in cases {
            assert_eq!(err(src), (msg.to_owned(), offset), "{src}");
        }
        assert!(parse("CASE(a, 1, b, 2, 3)", 0).is_ok());
        // Functions the caller declares are known, with their counts.
        let host = [
            FunctionSpec::new("success", 0, 0),
            FunctionSpec::new("hashFiles", 1, 255),
        ];
        assert!(parse_with("false && SUCCESS() || hashfiles('x')", 0, &host).is_ok());
        let e = parse_with("success(1)", 0, &host).unwrap_err();
        assert_eq!(e.message, "function `success` takes 0 argument(s), got 1");
        let e = parse_with("nope()", 0, &host).unwrap_err();
        assert!(
            e.message
                .ends_with("format, fromJSON, hashFiles, join, startsWith, success, toJSON"),
            "{}",
            e.message
        );
    }

    /// GitHub's `MaxDepth` of 50, counted over the tree as its runner does:
    /// 50 levels parse, 51 do not, for each kind of node.
    #[test]
    fn github_depth_limit() {
        let msg = "expression is nested too deeply (GitHub's limit is 50 levels; each operator, function call, `.property` and `[index]` is one); split it up";
        let ok_and_too_deep = |build: &dyn Fn(usize) -> String, levels: usize| {
            let ok = build(levels);
            assert!(parse(&ok, 0).is_ok(), "{ok}");
            let deep = build(levels + 1);
            assert_eq!(
                parse(&deep, 0).map(|_| ()).map_err(|e| e.message),
                Err(msg.to_owned()),
                "{deep}"
            );
        };
        // n operators over a leaf: n + 1 levels.
        ok_and_too_deep(&|n| format!("{}a", "!".repeat(n)), 49);
        ok_and_too_deep(&|n| format!("a{}", ".b".repeat(n)), 49);
        ok_and_too_deep(&|n| format!("a{}", "[0]".repeat(n)), 49);
        ok_and_too_deep(&|n| format!("a{}", ".*".repeat(n)), 49);
        ok_and_too_deep(
            &|n| format!("{}a{}", "toJSON(".repeat(n), ")".repeat(n)),
            49,
        );
        ok_and_too_deep(
            &|n| {
                ["a"; 100]
                    .iter()
                    .take(n + 1)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" == ")
            },
            49,
        );
        // Mixed: 10 `!`, a call, then 38 property steps = 50 levels.
        ok_and_too_deep(
            &|n| format!("{}toJSON(a{})", "!".repeat(10), ".b".repeat(n - 11)),
            49,
        );
        // An index expression sits one level under its `[ ]`.
        ok_and_too_deep(&|n| format!("a[{}b]", "!".repeat(n - 1)), 49);
        // Parentheses and `&&` chains add nothing.
        let parens = format!("{}{}a{}", "(".repeat(10), "!".repeat(49), ")".repeat(10));
        assert!(parse(&parens, 0).is_ok(), "{parens}");
        let chain = format!("{} && x", ["(a && b)"; 200].join(" && "));
        assert!(parse(&chain, 0).is_ok());
    }

    #[test]
    fn depth_and_length_bounds() {
        let too_deep = err(&"(".repeat(10_000));
        assert!(too_deep.0.contains("nested too deeply") && too_deep.1 == MAX_NESTING);
        assert!(err(&"!".repeat(10_000)).0.contains("too deeply"));
        assert!(err(&"f(".repeat(5_000)).0.contains("too deeply"));
        assert!(err(&"x[".repeat(5_000)).0.contains("too deeply"));
        assert!(err(&["a"; 100].join(" == ")).0.contains("too deeply"));
        // Flat chains are fine however long.
        assert!(parse(&["a"; 1000].join(" && "), 0).is_ok());
        assert!(parse(&format!("{}a{}", "(".repeat(64), ")".repeat(64)), 0).is_ok());
        let long = format!("'{}'", "x".repeat(MAX_EXPRESSION_LEN));
        assert_eq!(err(&long).0, "expression is too long (limit 16384 bytes)");
    }
}
